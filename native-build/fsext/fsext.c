/*
 * fsext: the few Linux filesystem calls Node's fs does not offer, for deltaimg's
 * exact tree snapshots and restores.
 *
 *   llistxattr(path)                 -> string[]   (names, latin1-held)
 *   lgetxattr(path, name)            -> Buffer
 *   lsetxattr(path, name, value)     -> undefined
 *   mknod(path, kind, mode, major, minor) -> undefined   kind: "char" | "block" | "fifo"
 *   lutimesNs(path, atimeNs, mtimeNs)     -> undefined   BigInt ns since epoch, no follow
 *   copyFiles(jobs)                  -> Promise   copies + sha256 + metadata on a background
 *                                                 thread (copyfiles.c)
 *   scanDirs(root, dirs, hash)       -> Promise   lstat, readlink, xattrs and sha256 of the children
 *                                                 of many directories on a background thread (scandirs.c)
 *
 * Every path is a Buffer (raw bytes: names need not be UTF-8), every attribute
 * name is a string of bytes, one char per byte (U+0001..U+00FF; anything else is refused). None of these calls follows a
 * symlink. All are synchronous: each is one short syscall (two for list/get).
 * Failures throw an Error shaped like Node's fs errors: code (errno name),
 * errno (negative), syscall and path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <uchar.h>
#include <node_api.h>

#include "fsext.h"

#define CHECK_NAPI(env, call)                                  \
  do {                                                         \
    if ((call) != napi_ok) {                                   \
      napi_throw_error((env), "EINTERNAL", "fsext: " #call);   \
      return NULL;                                             \
    }                                                          \
  } while (0)

/* errno -> name for the errors these calls can realistically raise. */
static const char *errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case E2BIG: return "E2BIG";
    case EBADF: return "EBADF";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case EMLINK: return "EMLINK";
    case ERANGE: return "ERANGE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case ELOOP: return "ELOOP";
    case ENODATA: return "ENODATA";
    case ENOTSUP: return "ENOTSUP";
    case EDQUOT: return "EDQUOT";
    default: return "EUNKNOWN";
  }
}

/* Throws a Node-style fs error; path is the raw bytes (shown latin1, as received). */
static void throw_errno(napi_env env, int err, const char *syscall, const char *path, size_t path_len) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %s, %s '%.*s'", errno_name(err), strerror(err), syscall,
           (int)(path_len > 300 ? 300 : path_len), path);
  napi_value message, error, code, errno_value, syscall_value, path_value;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_int32(env, -err, &errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_create_buffer_copy(env, path_len, path, NULL, &path_value);
  napi_set_named_property(env, error, "code", code);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  napi_set_named_property(env, error, "path", path_value);
  napi_throw(env, error);
}

/* A NUL-terminated copy of a Buffer argument; the caller frees it. NULL on a thrown error. */
static char *path_arg(napi_env env, napi_value value, size_t *len_out) {
  bool is_buffer = false;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsext: path must be a Buffer");
    return NULL;
  }
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, value, &data, &len) != napi_ok) return NULL;
  if (memchr(data, 0, len) != NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "fsext: path contains a NUL byte");
    return NULL;
  }
  char *copy = malloc(len + 1);
  if (!copy) {
    napi_throw_error(env, "ENOMEM", "fsext: out of memory");
    return NULL;
  }
  memcpy(copy, data, len);
  copy[len] = 0;
  *len_out = len;
  return copy;
}

/*
 * An attribute name argument as NUL-terminated bytes; the caller frees it. Names are held one
 * char per byte (U+0001..U+00FF); a char above U+00FF is not a byte and is refused, never
 * narrowed (napi's latin1 conversion would turn "user.\u20ac" into "user.\xac").
 */
static char *name_arg(napi_env env, napi_value value) {
  size_t len;
  if (napi_get_value_string_utf16(env, value, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsext: attribute name must be a string");
    return NULL;
  }
  char16_t *units = malloc((len + 1) * sizeof(char16_t));
  char *name = malloc(len + 1);
  if (!units || !name) {
    free(units);
    free(name);
    napi_throw_error(env, "ENOMEM", "fsext: out of memory");
    return NULL;
  }
  napi_get_value_string_utf16(env, value, units, len + 1, &len);
  for (size_t i = 0; i < len; i++) {
    if (units[i] == 0 || units[i] > 0xff) {
      free(units);
      free(name);
      napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "fsext: attribute name must be bytes U+0001..U+00FF, one char per byte");
      return NULL;
    }
    name[i] = (char)units[i];
  }
  name[len] = 0;
  free(units);
  return name;
}

/* A JS number that is an integer in [0, max], exactly (never narrowed); false after throwing. */
static bool uint_arg(napi_env env, napi_value value, double max, uint32_t *out) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok || !(d >= 0 && d <= max) || d != (double)(uint32_t)d) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "fsext: mknod mode, major and minor must be integers in range");
    return false;
  }
  *out = (uint32_t)d;
  return true;
}

static bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "fsext: missing arguments");
    return false;
  }
  return true;
}

/* llistxattr(path: Buffer): string[] */
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  size_t path_len;
  char *path = path_arg(env, argv[0], &path_len);
  if (!path) return NULL;

  /* The list can grow between the size query and the read: retry on ERANGE. */
  char *list = NULL;
  ssize_t n;
  for (;;) {
    n = llistxattr(path, NULL, 0);
    if (n <= 0) break;
    char *grown = realloc(list, (size_t)n);
    if (!grown) { n = -1; errno = ENOMEM; break; }
    list = grown;
    ssize_t got = llistxattr(path, list, (size_t)n);
    if (got >= 0) { n = got; break; }
    if (errno != ERANGE) { n = -1; break; }
  }
  if (n < 0) {
    int err = errno;
    /* Filesystems without xattr support have no attributes, which is not an error. */
    if (err == ENOTSUP) n = 0;
    else {
      throw_errno(env, err, "llistxattr", path, path_len);
      free(list);
      free(path);
      return NULL;
    }
  }
  napi_value result;
  napi_create_array(env, &result);
  uint32_t index = 0;
  for (ssize_t off = 0; off < n;) {
    size_t len = strnlen(list + off, (size_t)(n - off));
    napi_value name;
    napi_create_string_latin1(env, list + off, len, &name);
    napi_set_element(env, result, index++, name);
    off += (ssize_t)len + 1;
  }
  free(list);
  free(path);
  return result;
}

/* lgetxattr(path: Buffer, name: string): Buffer */
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  size_t path_len;
  char *path = path_arg(env, argv[0], &path_len);
  if (!path) return NULL;
  char *name = name_arg(env, argv[1]);
  if (!name) { free(path); return NULL; }

  char *value = NULL;
  ssize_t n;
  for (;;) {
    n = lgetxattr(path, name, NULL, 0);
    if (n <= 0) break;
    char *grown = realloc(value, (size_t)n);
    if (!grown) { n = -1; errno = ENOMEM; break; }
    value = grown;
    ssize_t got = lgetxattr(path, name, value, (size_t)n);
    if (got >= 0) { n = got; break; }
    if (errno != ERANGE) { n = -1; break; }
  }
  napi_value result = NULL;
  if (n < 0) throw_errno(env, errno, "lgetxattr", path, path_len);
  else napi_create_buffer_copy(env, (size_t)n, n > 0 ? value : "", NULL, &result);
  free(value);
  free(name);
  free(path);
  return result;
}

/* lsetxattr(path: Buffer, name: string, value: Buffer): undefined */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  bool is_buffer = false;
  napi_is_buffer(env, argv[2], &is_buffer);
  if (!is_buffer) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsext: xattr value must be a Buffer");
    return NULL;
  }
  void *value;
  size_t value_len;
  CHECK_NAPI(env, napi_get_buffer_info(env, argv[2], &value, &value_len));
  size_t path_len;
  char *path = path_arg(env, argv[0], &path_len);
  if (!path) return NULL;
  char *name = name_arg(env, argv[1]);
  if (!name) { free(path); return NULL; }
  if (lsetxattr(path, name, value, value_len, 0) != 0) throw_errno(env, errno, "lsetxattr", path, path_len);
  free(name);
  free(path);
  return NULL;
}

/* mknod(path: Buffer, kind: "char"|"block"|"fifo", mode: number, major: number, minor: number) */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  char kind[8] = {0};
  size_t kind_len;
  uint32_t perm, major_no, minor_no;
  if (napi_get_value_string_utf8(env, argv[1], kind, sizeof kind, &kind_len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsext: mknod(path, kind, mode, major, minor)");
    return NULL;
  }
  /* Linux keeps a 12-bit major and a 20-bit minor; glibc refuses wider ones with EINVAL. */
  if (!uint_arg(env, argv[2], 07777, &perm) || !uint_arg(env, argv[3], 4294967295.0, &major_no) ||
      !uint_arg(env, argv[4], 4294967295.0, &minor_no)) {
    return NULL;
  }
  mode_t type;
  if (strcmp(kind, "char") == 0) type = S_IFCHR;
  else if (strcmp(kind, "block") == 0) type = S_IFBLK;
  else if (strcmp(kind, "fifo") == 0) type = S_IFIFO;
  else {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "fsext: mknod kind must be char, block or fifo");
    return NULL;
  }
  size_t path_len;
  char *path = path_arg(env, argv[0], &path_len);
  if (!path) return NULL;
  dev_t dev = type == S_IFIFO ? 0 : makedev(major_no, minor_no);
  if (mknod(path, type | (perm & 07777), dev) != 0) throw_errno(env, errno, "mknod", path, path_len);
  free(path);
  return NULL;
}

/* A BigInt of nanoseconds since the epoch as a timespec (floor division, so pre-1970 works). */
static bool ns_arg(napi_env env, napi_value value, struct timespec *ts) {
  int64_t ns;
  bool lossless;
  if (napi_get_value_bigint_int64(env, value, &ns, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsext: times must be BigInt nanoseconds within int64");
    return false;
  }
  int64_t sec = ns / 1000000000;
  int64_t nsec = ns % 1000000000;
  if (nsec < 0) { nsec += 1000000000; sec -= 1; }
  ts->tv_sec = (time_t)sec;
  ts->tv_nsec = (long)nsec;
  return true;
}

/* lutimesNs(path: Buffer, atimeNs: bigint, mtimeNs: bigint): undefined; never follows a symlink. */
static napi_value js_lutimes_ns(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  struct timespec times[2];
  if (!ns_arg(env, argv[1], &times[0]) || !ns_arg(env, argv[2], &times[1])) return NULL;
  size_t path_len;
  char *path = path_arg(env, argv[0], &path_len);
  if (!path) return NULL;
  if (utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW) != 0)
    throw_errno(env, errno, "utimensat", path, path_len);
  free(path);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"copyFiles", NULL, js_copy_files, NULL, NULL, NULL, napi_enumerable, NULL},
    {"scanDirs", NULL, js_scan_dirs, NULL, NULL, NULL, napi_enumerable, NULL},
    {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lutimesNs", NULL, js_lutimes_ns, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK_NAPI(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
