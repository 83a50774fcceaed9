/*
 * scanDirs(root: Buffer, dirs: Buffer, hash: boolean) -> Promise<Buffer>: the children of many
 * directories, lstat'ed, with their symlink targets, extended attributes and (with `hash`) the
 * sha256 of regular files, read on a libuv threadpool thread. For the walk of a tree of 100k entries, where a Node lstat (a BigIntStats object),
 * an llistxattr call and a readlink per entry cost more main-thread time than the syscalls.
 * Never follows a symlink: directories are opened O_NOFOLLOW, children lstat'ed.
 *
 *   dirs     directory paths relative to root, each ended by a NUL ("" is the root itself)
 *   result   one record per child, in the order read (the caller sorts), little-endian:
 *
 *     0  u32 record length (all of it, 8-byte aligned)   4  u32 index of its dir in `dirs`
 *     8  i32 step (0 ok, see below)                      12 i32 errno
 *    16  u32 st_mode   20 u32 uid   24 u32 gid   28 u32 mtime nanoseconds
 *    32  i64 mtime seconds          40 f64 size
 *    48  u32 nlink (saturated)      52 u32 rdev major   56 u32 rdev minor
 *    60  u32 name bytes             64 u32 target bytes  68 u32 xattr bytes
 *    72  u64 st_dev                 80 u64 st_ino
 *    88  i32 hash outcome (below)   92 i32 its errno     96 sha256[32]
 *   128  name, symlink target, xattrs: (u32 name bytes, name, u32 value bytes, value) each
 *
 * step 0 = ok; 1 lstat failed (ENOENT: vanished since readdir), 2 readlink, 3 listxattr,
 * 4 getxattr, 5 the directory itself could not be opened or read (a record with no name).
 * A filesystem without xattr support (ENOTSUP) gives none, as llistxattr() in fsext.c.
 *
 * Hash outcome of a regular file: 0 not hashed (no `hash`), 1 hashed, 2 open failed, 3 no longer
 * a regular file (a FIFO, device, symlink or another file put in its place: opened O_NOFOLLOW |
 * O_NONBLOCK, so nothing waits, and its fstat must be the lstat'ed inode), 4 read failed, 5 the
 * size read is not the lstat'ed size (it changed meanwhile), 6 no sha256 in this node (the caller
 * hashes otherwise). Hashing here, through the open directory, spares a second walk of the paths.
 * The xattrs of a file opened for hashing are read through its descriptor.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <node_api.h>
#include "fsext.h"

#define HEADER_BYTES 128
#define READ_BUFFER_BYTES (256 * 1024)

enum { STEP_OK = 0, STEP_LSTAT = 1, STEP_READLINK = 2, STEP_LISTXATTR = 3, STEP_GETXATTR = 4, STEP_READDIR = 5 };
enum { HASH_NONE = 0, HASH_OK = 1, HASH_OPEN = 2, HASH_NOT_REGULAR = 3, HASH_READ = 4, HASH_SIZE = 5, HASH_NO_SHA = 6 };

typedef struct {
  unsigned char *data;
  size_t len, cap;
} out_buffer;

typedef struct {
  char *root;
  size_t root_len;
  char *dirs;
  size_t dirs_len;
  out_buffer out;
  int hash;
  int oom;
  napi_async_work work;
  napi_deferred deferred;
} scan_batch;

static int reserve(out_buffer *b, size_t more) {
  if (b->len + more <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64 * 1024;
  while (cap < b->len + more) cap *= 2;
  unsigned char *data = realloc(b->data, cap);
  if (data == NULL) return -1;
  b->data = data;
  b->cap = cap;
  return 0;
}

static void put32(unsigned char *at, uint32_t v) { memcpy(at, &v, 4); }
static void put64(unsigned char *at, uint64_t v) { memcpy(at, &v, 8); }

/* A growable scratch area for symlink targets and xattr lists/values. */
typedef struct {
  char *data;
  size_t cap;
} scratch;

static int grow(scratch *s, size_t need) {
  if (need <= s->cap) return 0;
  char *data = realloc(s->data, need);
  if (data == NULL) return -1;
  s->data = data;
  s->cap = need;
  return 0;
}

/* readlinkat into s; returns the length or -1 (errno set). */
static ssize_t read_target(int dirfd, const char *name, scratch *s) {
  for (size_t size = 256;; size *= 2) {
    if (grow(s, size) != 0) return -1;
    ssize_t n = readlinkat(dirfd, name, s->data, size);
    if (n < 0) return -1;
    if ((size_t)n < size) return n;
  }
}

/* The xattrs of an open file (fd >= 0) or else of path itself (not following a symlink). */
static ssize_t list_of(int fd, const char *path, char *list, size_t size) {
  return fd >= 0 ? flistxattr(fd, list, size) : llistxattr(path, list, size);
}

static ssize_t value_of(int fd, const char *path, const char *name, void *value, size_t size) {
  return fd >= 0 ? fgetxattr(fd, name, value, size) : lgetxattr(path, name, value, size);
}

/* The name list into s; returns the length (0 when unsupported) or -1 (errno set). */
static ssize_t list_xattrs(int fd, const char *path, scratch *s) {
  for (;;) {
    ssize_t size = list_of(fd, path, NULL, 0);
    if (size < 0) return (errno == ENOTSUP) ? 0 : -1;
    if (size == 0) return 0;
    if (grow(s, (size_t)size) != 0) return -1;
    ssize_t n = list_of(fd, path, s->data, (size_t)size);
    if (n >= 0) return n;
    if (errno != ERANGE) return -1; /* ERANGE: the list grew meanwhile; ask again */
  }
}

/* Appends (u32 len, name, u32 len, value) for every xattr of path; the step and errno on failure. */
static int append_xattrs(out_buffer *out, int fd, const char *path, scratch *names, scratch *value, int *err) {
  ssize_t list_len = list_xattrs(fd, path, names);
  if (list_len < 0) {
    *err = errno;
    return STEP_LISTXATTR;
  }
  for (ssize_t at = 0; at < list_len;) {
    const char *name = names->data + at;
    size_t name_len = strnlen(name, (size_t)(list_len - at));
    at += (ssize_t)name_len + 1;
    ssize_t n;
    for (;;) {
      ssize_t size = value_of(fd, path, name, NULL, 0);
      if (size < 0 || grow(value, (size_t)size + 1) != 0) {
        *err = errno;
        return STEP_GETXATTR;
      }
      n = value_of(fd, path, name, value->data, (size_t)size);
      if (n >= 0) break;
      if (errno != ERANGE) {
        *err = errno;
        return STEP_GETXATTR;
      }
    }
    if (reserve(out, 8 + name_len + (size_t)n) != 0) {
      *err = ENOMEM;
      return STEP_GETXATTR;
    }
    put32(out->data + out->len, (uint32_t)name_len);
    memcpy(out->data + out->len + 4, name, name_len);
    put32(out->data + out->len + 4 + name_len, (uint32_t)n);
    memcpy(out->data + out->len + 8 + name_len, value->data, (size_t)n);
    out->len += 8 + name_len + (size_t)n;
  }
  return STEP_OK;
}

/* Starts a record; returns its offset, or (size_t)-1 out of memory. */
static size_t begin_record(out_buffer *out, uint32_t dir_index, const char *name, size_t name_len) {
  if (reserve(out, HEADER_BYTES + name_len + 8) != 0) return (size_t)-1;
  size_t at = out->len;
  memset(out->data + at, 0, HEADER_BYTES);
  put32(out->data + at + 4, dir_index);
  put32(out->data + at + 60, (uint32_t)name_len);
  memcpy(out->data + at + HEADER_BYTES, name, name_len);
  out->len += HEADER_BYTES + name_len;
  return at;
}

/* Pads to 8 bytes and writes the record's length. */
static int end_record(out_buffer *out, size_t at) {
  size_t padded = (out->len + 7) & ~(size_t)7;
  if (reserve(out, padded - out->len) != 0) return -1;
  memset(out->data + out->len, 0, padded - out->len);
  out->len = padded;
  put32(out->data + at, (uint32_t)(out->len - at));
  return 0;
}

static void put_stat(unsigned char *h, const struct stat *st) {
  put32(h + 16, st->st_mode);
  put32(h + 20, st->st_uid);
  put32(h + 24, st->st_gid);
  put32(h + 28, (uint32_t)st->st_mtim.tv_nsec);
  put64(h + 32, (uint64_t)(int64_t)st->st_mtim.tv_sec);
  double size = (double)st->st_size;
  memcpy(h + 40, &size, 8);
  put32(h + 48, st->st_nlink > UINT32_MAX ? UINT32_MAX : (uint32_t)st->st_nlink);
  put32(h + 52, major(st->st_rdev));
  put32(h + 56, minor(st->st_rdev));
  put64(h + 72, (uint64_t)st->st_dev);
  put64(h + 80, (uint64_t)st->st_ino);
}

typedef struct {
  char *path; /* root/dir/ + room for a name */
  size_t cap;
  scratch target, names, value;
  unsigned char *read_buffer;
  EVP_MD_CTX *ctx;
} walker;

static void put_hash(unsigned char *h, int32_t outcome, int32_t err) {
  memcpy(h + 88, &outcome, 4);
  memcpy(h + 92, &err, 4);
}

/*
 * Opens a regular child for hashing and checks it is still the lstat'ed file; returns the
 * descriptor, or -1 with the outcome written to the record header h.
 */
static int open_for_hash(int dirfd, const char *name, const struct stat *st, unsigned char *h) {
  int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    /* ELOOP: a symlink; ENXIO: a socket. Neither is the regular file lstat saw. */
    put_hash(h, errno == ELOOP || errno == ENXIO ? HASH_NOT_REGULAR : HASH_OPEN, errno);
    return -1;
  }
  struct stat now;
  if (fstat(fd, &now) != 0 || !S_ISREG(now.st_mode) || now.st_ino != st->st_ino || now.st_dev != st->st_dev) {
    put_hash(h, HASH_NOT_REGULAR, EINVAL);
    close(fd);
    return -1;
  }
  return fd;
}

/* Reads fd to its end through the hash; the outcome and digest go to the record header h. */
static void hash_open_file(walker *w, int fd, off_t size, unsigned char *h) {
  if (w->ctx == NULL || !evp.init(w->ctx, evp.sha256(), NULL)) {
    put_hash(h, HASH_NO_SHA, ENOMEM);
    return;
  }
  off_t bytes = 0;
  for (;;) {
    ssize_t n = read(fd, w->read_buffer, READ_BUFFER_BYTES);
    if (n < 0) {
      if (errno == EINTR) continue;
      put_hash(h, HASH_READ, errno);
      return;
    }
    if (n == 0) break;
    evp.update(w->ctx, w->read_buffer, (size_t)n);
    bytes += n;
  }
  unsigned int len = 0;
  if (!evp.final(w->ctx, h + 96, &len) || len != 32) {
    put_hash(h, HASH_NO_SHA, ENOMEM);
    return;
  }
  put_hash(h, bytes == size ? HASH_OK : HASH_SIZE, bytes == size ? 0 : EAGAIN);
}

/* One child of an open directory: lstat, readlink, xattrs, sha256. 0, or -1 out of memory. */
static int scan_child(scan_batch *b, walker *w, int dirfd, size_t prefix_len, uint32_t dir_index, const char *name) {
  size_t name_len = strlen(name);
  if (prefix_len + name_len + 1 > w->cap) {
    size_t cap = (prefix_len + name_len + 1) * 2;
    char *path = realloc(w->path, cap);
    if (path == NULL) return -1;
    w->path = path;
    w->cap = cap;
  }
  memcpy(w->path + prefix_len, name, name_len + 1);
  size_t at = begin_record(&b->out, dir_index, name, name_len);
  if (at == (size_t)-1) return -1;
  struct stat st;
  int step = STEP_OK, err = 0, fd = -1;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    step = STEP_LSTAT;
    err = errno;
  } else {
    put_stat(b->out.data + at, &st);
    if (S_ISLNK(st.st_mode)) {
      ssize_t n = read_target(dirfd, name, &w->target);
      if (n < 0 || reserve(&b->out, (size_t)n) != 0) {
        step = STEP_READLINK;
        err = n < 0 ? errno : ENOMEM;
      } else {
        memcpy(b->out.data + b->out.len, w->target.data, (size_t)n);
        b->out.len += (size_t)n;
        put32(b->out.data + at + 64, (uint32_t)n);
      }
    } else if (S_ISREG(st.st_mode) && b->hash) {
      if (w->ctx == NULL) put_hash(b->out.data + at, HASH_NO_SHA, 0);
      else fd = open_for_hash(dirfd, name, &st, b->out.data + at);
    }
    if (step == STEP_OK) {
      size_t before = b->out.len;
      step = append_xattrs(&b->out, fd, w->path, &w->names, &w->value, &err);
      put32(b->out.data + at + 68, (uint32_t)(b->out.len - before));
    }
    if (fd >= 0) {
      if (step == STEP_OK) hash_open_file(w, fd, st.st_size, b->out.data + at);
      close(fd);
    }
  }
  put32(b->out.data + at + 8, (uint32_t)step);
  put32(b->out.data + at + 12, (uint32_t)err);
  return end_record(&b->out, at);
}

/* All children of one directory; a directory that cannot be read gives one nameless STEP_READDIR record. */
static int scan_dir(scan_batch *b, walker *w, uint32_t dir_index, const char *dir, size_t dir_len) {
  size_t prefix_len = b->root_len + 1 + dir_len + (dir_len > 0 ? 1 : 0);
  if (prefix_len + 256 > w->cap) {
    char *path = realloc(w->path, prefix_len + 256);
    if (path == NULL) return -1;
    w->path = path;
    w->cap = prefix_len + 256;
  }
  memcpy(w->path, b->root, b->root_len);
  w->path[b->root_len] = '/';
  memcpy(w->path + b->root_len + 1, dir, dir_len);
  if (dir_len > 0) w->path[prefix_len - 1] = '/';
  w->path[prefix_len] = 0;
  int fd = open(w->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (d == NULL) {
    int err = errno;
    if (fd >= 0) close(fd);
    size_t at = begin_record(&b->out, dir_index, "", 0);
    if (at == (size_t)-1) return -1;
    put32(b->out.data + at + 8, STEP_READDIR);
    put32(b->out.data + at + 12, (uint32_t)err);
    return end_record(&b->out, at);
  }
  int result = 0;
  for (;;) {
    errno = 0;
    struct dirent *ent = readdir(d);
    if (ent == NULL) {
      if (errno != 0) {
        int err = errno;
        size_t at = begin_record(&b->out, dir_index, "", 0);
        if (at == (size_t)-1) result = -1;
        else {
          put32(b->out.data + at + 8, STEP_READDIR);
          put32(b->out.data + at + 12, (uint32_t)err);
          result = end_record(&b->out, at);
        }
      }
      break;
    }
    const char *name = ent->d_name;
    if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
    if (scan_child(b, w, dirfd(d), prefix_len, dir_index, name) != 0) {
      result = -1;
      break;
    }
  }
  closedir(d);
  return result;
}

static void execute(napi_env env, void *data) {
  (void)env;
  scan_batch *b = (scan_batch *)data;
  walker w = {0};
  if (b->hash && evp.resolved > 0) {
    w.read_buffer = malloc(READ_BUFFER_BYTES);
    w.ctx = w.read_buffer ? evp.ctx_new() : NULL;
  }
  const char *dir = b->dirs;
  for (uint32_t i = 0; dir < b->dirs + b->dirs_len; i++) {
    size_t len = strlen(dir);
    if (scan_dir(b, &w, i, dir, len) != 0) {
      b->oom = 1;
      break;
    }
    dir += len + 1;
  }
  if (w.ctx) evp.ctx_free(w.ctx);
  free(w.read_buffer);
  free(w.path);
  free(w.target.data);
  free(w.names.data);
  free(w.value.data);
}

static void free_batch(scan_batch *b) {
  free(b->root);
  free(b->dirs);
  free(b->out.data);
  free(b);
}

static void complete(napi_env env, napi_status status, void *data) {
  scan_batch *b = (scan_batch *)data;
  if (status == napi_ok && !b->oom) {
    napi_value result;
    void *copy;
    napi_create_buffer_copy(env, b->out.len, b->out.len > 0 ? (void *)b->out.data : (void *)"", &copy, &result);
    napi_resolve_deferred(env, b->deferred, result);
  } else {
    napi_value message, error, code;
    napi_create_string_utf8(env, b->oom ? "fsext scanDirs: out of memory" : "fsext scanDirs: background work failed", NAPI_AUTO_LENGTH,
                            &message);
    napi_create_error(env, NULL, message, &error);
    napi_create_string_utf8(env, "ENOMEM", NAPI_AUTO_LENGTH, &code);
    if (b->oom) napi_set_named_property(env, error, "code", code);
    napi_reject_deferred(env, b->deferred, error);
  }
  napi_delete_async_work(env, b->work);
  free_batch(b);
}

napi_value js_scan_dirs(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const char *usage = "scanDirs(root: Buffer, dirs: Buffer of NUL-ended relative paths, hash: boolean)";
  bool hash = false;
  if (argc < 3 || napi_get_value_bool(env, argv[2], &hash) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  scan_batch *b = calloc(1, sizeof *b);
  if (b == NULL) {
    napi_throw_error(env, "ENOMEM", "scanDirs: out of memory");
    return NULL;
  }
  b->root = argc >= 2 ? fsext_buffer_copy(env, argv[0], &b->root_len) : NULL;
  b->dirs = argc >= 2 ? fsext_buffer_copy(env, argv[1], &b->dirs_len) : NULL;
  int ok = b->root != NULL && b->dirs != NULL && memchr(b->root, 0, b->root_len) == NULL &&
           (b->dirs_len == 0 || b->dirs[b->dirs_len - 1] == 0);
  if (!ok) {
    free_batch(b);
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  /* Resolved here, on the main thread; without it files are left unhashed (HASH_NO_SHA). */
  b->hash = hash && resolve_evp() ? 1 : hash ? 2 : 0;
  return fsext_start_work(env, "fsext.scanDirs", execute, complete, b, &b->deferred, &b->work);
}
