/*
 * copyFiles(jobs) -> Promise<results>: copies many regular files on a background thread,
 * hashing (sha256) the bytes as they are copied and restoring owner, mode and ns mtime on
 * the new file's descriptor. For apply's unchanged files: thousands of small copies whose
 * per-file cost in JavaScript (a dozen calls, buffers, a hash object) exceeds the copy, and
 * which can run while the main thread decodes the changed files.
 *
 *   jobs[i]    = [source: Buffer, output: Buffer, uid, gid, mode, mtimeSec, mtimeNsec]
 *   results[i] = [step, errno, bytes, sha256: Buffer | null, chownErrno]
 *
 * step 0 = done; otherwise where it failed: 1 open source, 2 source not a regular file,
 * 3 create output, 4 read, 5 write, 6 chmod, 7 utimes, 8 no sha256 available. chown
 * failing (chownErrno) does not stop the rest: the caller decides whether that is allowed.
 * The source is opened O_NOFOLLOW; the output O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600 until
 * its own mode is set. sha256 comes from the OpenSSL inside the node binary (common.c: step 8
 * when absent, and the caller copies in JavaScript instead).
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

typedef struct {
  char *source;
  char *output;
  uint32_t uid, gid, mode;
  int64_t mtime_sec, mtime_nsec;
  /* results */
  int step, err, chown_err;
  int64_t bytes;
  unsigned char sha256[32];
} copy_job;

typedef struct {
  copy_job *jobs;
  uint32_t count;
  napi_async_work work;
  napi_deferred deferred;
} copy_batch;

#define COPY_BUFFER_BYTES (256 * 1024)

static int fail(copy_job *job, int step) {
  job->step = step;
  job->err = errno;
  return -1;
}

static int write_all(int fd, const unsigned char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Copies job->source into the new job->output, hashing what passes through. */
static int copy_content(copy_job *job, int in, int out, unsigned char *buffer, EVP_MD_CTX *ctx) {
  if (!evp.init(ctx, evp.sha256(), NULL)) return fail(job, 8);
  for (;;) {
    ssize_t n = read(in, buffer, COPY_BUFFER_BYTES);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(job, 4);
    }
    if (n == 0) break;
    evp.update(ctx, buffer, (size_t)n);
    if (write_all(out, buffer, (size_t)n) != 0) return fail(job, 5);
    job->bytes += n;
  }
  unsigned int len = 0;
  if (!evp.final(ctx, job->sha256, &len) || len != 32) return fail(job, 8);
  return 0;
}

/* Owner (its failure only recorded), then mode, then mtime: the order meta.ts uses. */
static int restore_metadata(copy_job *job, int out) {
  if (fchown(out, job->uid, job->gid) != 0) job->chown_err = errno;
  if (fchmod(out, job->mode) != 0) return fail(job, 6);
  struct timespec times[2] = {{job->mtime_sec, job->mtime_nsec}, {job->mtime_sec, job->mtime_nsec}};
  if (futimens(out, times) != 0) return fail(job, 7);
  return 0;
}

static void copy_one(copy_job *job, unsigned char *buffer, EVP_MD_CTX *ctx) {
  /* O_NONBLOCK: a FIFO in place of the file must not wait for a writer forever (on a regular
     file it changes nothing); fstat then refuses it. */
  int in = open(job->source, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (in < 0) {
    if (errno == ENXIO) { /* a socket: not a regular file either */
      fail(job, 2);
      return;
    }
    fail(job, 1);
    return;
  }
  struct stat st;
  if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
    errno = EINVAL;
    fail(job, 2);
    close(in);
    return;
  }
  int out = open(job->output, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) {
    fail(job, 3);
    close(in);
    return;
  }
  if (copy_content(job, in, out, buffer, ctx) == 0) restore_metadata(job, out);
  close(in);
  if (close(out) != 0 && job->step == 0) fail(job, 5);
}

static void execute(napi_env env, void *data) {
  (void)env;
  copy_batch *batch = (copy_batch *)data;
  unsigned char *buffer = malloc(COPY_BUFFER_BYTES);
  EVP_MD_CTX *ctx = evp.ctx_new();
  for (uint32_t i = 0; i < batch->count; i++) {
    copy_job *job = &batch->jobs[i];
    if (buffer == NULL || ctx == NULL) {
      job->step = 8;
      job->err = ENOMEM;
      continue;
    }
    copy_one(job, buffer, ctx);
  }
  if (ctx) evp.ctx_free(ctx);
  free(buffer);
}

static void free_batch(copy_batch *batch) {
  for (uint32_t i = 0; i < batch->count; i++) {
    free(batch->jobs[i].source);
    free(batch->jobs[i].output);
  }
  free(batch->jobs);
  free(batch);
}

static napi_value result_of(napi_env env, copy_job *job) {
  napi_value row, v;
  napi_create_array_with_length(env, 5, &row);
  napi_create_int32(env, job->step, &v);
  napi_set_element(env, row, 0, v);
  napi_create_int32(env, job->err, &v);
  napi_set_element(env, row, 1, v);
  napi_create_double(env, (double)job->bytes, &v);
  napi_set_element(env, row, 2, v);
  if (job->step == 0) {
    void *data;
    napi_create_buffer_copy(env, 32, job->sha256, &data, &v);
  } else {
    napi_get_null(env, &v);
  }
  napi_set_element(env, row, 3, v);
  napi_create_int32(env, job->chown_err, &v);
  napi_set_element(env, row, 4, v);
  return row;
}

static void complete(napi_env env, napi_status status, void *data) {
  copy_batch *batch = (copy_batch *)data;
  napi_value results;
  napi_create_array_with_length(env, batch->count, &results);
  for (uint32_t i = 0; i < batch->count; i++) napi_set_element(env, results, i, result_of(env, &batch->jobs[i]));
  if (status == napi_ok) {
    napi_resolve_deferred(env, batch->deferred, results);
  } else {
    napi_value message, error;
    napi_create_string_utf8(env, "fsext copyFiles: background work failed", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, batch->deferred, error);
  }
  napi_delete_async_work(env, batch->work);
  free_batch(batch);
}

/* A NUL-terminated copy of a Buffer's bytes (paths must not contain NUL). */
static char *path_copy(napi_env env, napi_value buffer) {
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, buffer, &data, &len) != napi_ok || memchr(data, 0, len) != NULL) return NULL;
  char *copy = malloc(len + 1);
  if (copy == NULL) return NULL;
  memcpy(copy, data, len);
  copy[len] = 0;
  return copy;
}

/* A JS number that is an integer in [min, max], exactly: never narrowed (2^32 + 1000 is not 1000). */
static int exact_int(napi_env env, napi_value value, double min, double max, int64_t *out) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok) return -1;
  if (!(d >= min && d <= max) || d != (double)(int64_t)d) return -1;
  *out = (int64_t)d;
  return 0;
}

static int parse_job(napi_env env, napi_value row, copy_job *job) {
  napi_value v[7];
  for (uint32_t k = 0; k < 7; k++) {
    if (napi_get_element(env, row, k, &v[k]) != napi_ok) return -1;
  }
  job->source = path_copy(env, v[0]);
  job->output = path_copy(env, v[1]);
  if (job->source == NULL || job->output == NULL) return -1;
  int64_t uid, gid, mode;
  /* 0xFFFFFFFF is (uid_t)-1, which fchown reads as "leave unchanged": not an owner. */
  if (exact_int(env, v[2], 0, 4294967294.0, &uid) != 0) return -1;
  if (exact_int(env, v[3], 0, 4294967294.0, &gid) != 0) return -1;
  if (exact_int(env, v[4], 0, 07777, &mode) != 0) return -1;
  if (exact_int(env, v[5], -9007199254740991.0, 9007199254740991.0, &job->mtime_sec) != 0) return -1;
  if (exact_int(env, v[6], 0, 999999999, &job->mtime_nsec) != 0) return -1;
  job->uid = (uint32_t)uid;
  job->gid = (uint32_t)gid;
  job->mode = (uint32_t)mode;
  return 0;
}

napi_value js_copy_files(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t count = 0;
  if (argc < 1 || napi_get_array_length(env, argv[0], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "copyFiles(jobs): jobs must be an array");
    return NULL;
  }
  if (!resolve_evp()) {
    napi_throw_error(env, "ENOSYS", "copyFiles: no sha256 (EVP) in this node binary");
    return NULL;
  }
  copy_batch *batch = calloc(1, sizeof *batch);
  if (batch == NULL || (count > 0 && (batch->jobs = calloc(count, sizeof(copy_job))) == NULL)) {
    free(batch);
    napi_throw_error(env, "ENOMEM", "copyFiles: out of memory");
    return NULL;
  }
  batch->count = count;
  for (uint32_t i = 0; i < count; i++) {
    napi_value row;
    if (napi_get_element(env, argv[0], i, &row) != napi_ok || parse_job(env, row, &batch->jobs[i]) != 0) {
      free_batch(batch);
      napi_throw_type_error(env, NULL, "copyFiles: each job is [source, output, uid 0..2^32-2, gid 0..2^32-2, mode 0..07777, mtimeSec, mtimeNsec 0..999999999]");
      return NULL;
    }
  }
  return fsext_start_work(env, "fsext.copyFiles", execute, complete, batch, &batch->deferred, &batch->work);
}
