/*
 * hashFiles(root: Buffer, paths: Buffer) -> Promise<Buffer>: the sha256 of many regular files,
 * read on a libuv threadpool thread. For the scan of a tree of 100k small files, where per-file
 * calls from JavaScript (open, read, close, a hash object, each a round trip) cost ten times the
 * reading; several batches in flight use several cores.
 *
 *   paths      relative paths, each ended by a NUL byte; each file is root + "/" + path
 *   result     RESULT_BYTES per file: int32 step, int32 errno, float64 bytes read, sha256[32]
 *              (little-endian, in the order of paths)
 *
 * step 0 = done; otherwise where it failed: 1 open, 2 not a regular file (a FIFO, socket or
 * device put in the file's place: opened O_NONBLOCK so it never waits for a writer), 4 read,
 * 8 no sha256. The file is opened O_NOFOLLOW: a symlink put in its place is refused (ELOOP).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <node_api.h>
#include "fsext.h"

#define RESULT_BYTES 48
#define READ_BUFFER_BYTES (256 * 1024)

typedef struct {
  char *root;
  size_t root_len;
  char *paths;
  size_t paths_len;
  uint32_t count;
  unsigned char *results;
  napi_async_work work;
  napi_deferred deferred;
} hash_batch;

static void put_result(unsigned char *row, int32_t step, int32_t err, double bytes) {
  memcpy(row, &step, 4);
  memcpy(row + 4, &err, 4);
  memcpy(row + 8, &bytes, 8);
}

/* Reads and hashes one open file; the row gets the outcome. */
static void hash_fd(int fd, unsigned char *row, unsigned char *buffer, EVP_MD_CTX *ctx) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    put_result(row, 1, errno, 0);
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    put_result(row, 2, EINVAL, 0);
    return;
  }
  if (!evp.init(ctx, evp.sha256(), NULL)) {
    put_result(row, 8, ENOMEM, 0);
    return;
  }
  double bytes = 0;
  for (;;) {
    ssize_t n = read(fd, buffer, READ_BUFFER_BYTES);
    if (n < 0) {
      if (errno == EINTR) continue;
      put_result(row, 4, errno, bytes);
      return;
    }
    if (n == 0) break;
    evp.update(ctx, buffer, (size_t)n);
    bytes += (double)n;
  }
  unsigned int len = 0;
  if (!evp.final(ctx, row + 16, &len) || len != 32) {
    put_result(row, 8, ENOMEM, bytes);
    return;
  }
  put_result(row, 0, 0, bytes);
}

static void execute(napi_env env, void *data) {
  (void)env;
  hash_batch *batch = (hash_batch *)data;
  unsigned char *buffer = malloc(READ_BUFFER_BYTES);
  /* root + "/" + the longest path fits: paths_len bounds every path. */
  char *full = malloc(batch->root_len + 1 + batch->paths_len + 1);
  EVP_MD_CTX *ctx = evp.ctx_new();
  const char *path = batch->paths;
  for (uint32_t i = 0; i < batch->count; i++) {
    unsigned char *row = batch->results + (size_t)i * RESULT_BYTES;
    size_t len = strlen(path);
    if (buffer == NULL || full == NULL || ctx == NULL) {
      put_result(row, 8, ENOMEM, 0);
    } else {
      memcpy(full, batch->root, batch->root_len);
      full[batch->root_len] = '/';
      memcpy(full + batch->root_len + 1, path, len + 1);
      int fd = open(full, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) {
        /* ENXIO: a socket, which cannot be opened; not a regular file either. */
        put_result(row, errno == ENXIO ? 2 : 1, errno, 0);
      } else {
        hash_fd(fd, row, buffer, ctx);
        close(fd);
      }
    }
    path += len + 1;
  }
  if (ctx) evp.ctx_free(ctx);
  free(full);
  free(buffer);
}

static void free_batch(hash_batch *batch) {
  free(batch->root);
  free(batch->paths);
  free(batch->results);
  free(batch);
}

static void complete(napi_env env, napi_status status, void *data) {
  hash_batch *batch = (hash_batch *)data;
  if (status == napi_ok) {
    napi_value results;
    void *copy;
    napi_create_buffer_copy(env, (size_t)batch->count * RESULT_BYTES, batch->results, &copy, &results);
    napi_resolve_deferred(env, batch->deferred, results);
  } else {
    napi_value message, error;
    napi_create_string_utf8(env, "fsext hashFiles: background work failed", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, batch->deferred, error);
  }
  napi_delete_async_work(env, batch->work);
  free_batch(batch);
}

napi_value js_hash_files(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], promise;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const char *usage = "hashFiles(root: Buffer, paths: Buffer of NUL-ended relative paths)";
  if (argc < 2) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  if (!resolve_evp()) {
    napi_throw_error(env, "ENOSYS", "hashFiles: no sha256 (EVP) in this node binary");
    return NULL;
  }
  hash_batch *batch = calloc(1, sizeof *batch);
  if (batch == NULL) {
    napi_throw_error(env, "ENOMEM", "hashFiles: out of memory");
    return NULL;
  }
  batch->root = fsext_buffer_copy(env, argv[0], &batch->root_len);
  batch->paths = fsext_buffer_copy(env, argv[1], &batch->paths_len);
  /* The root has no NUL; the paths end with one, so every path (the last too) is terminated. */
  int ok = batch->root != NULL && batch->paths != NULL && memchr(batch->root, 0, batch->root_len) == NULL &&
           (batch->paths_len == 0 || batch->paths[batch->paths_len - 1] == 0);
  if (!ok) {
    free_batch(batch);
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  for (size_t i = 0; i < batch->paths_len; i++) batch->count += batch->paths[i] == 0;
  batch->results = calloc(batch->count > 0 ? batch->count : 1, RESULT_BYTES);
  if (batch->results == NULL) {
    free_batch(batch);
    napi_throw_error(env, "ENOMEM", "hashFiles: out of memory");
    return NULL;
  }
  napi_value name;
  napi_create_string_utf8(env, "fsext.hashFiles", NAPI_AUTO_LENGTH, &name);
  napi_create_promise(env, &batch->deferred, &promise);
  napi_create_async_work(env, NULL, name, execute, complete, batch, &batch->work);
  napi_queue_async_work(env, batch->work);
  return promise;
}
