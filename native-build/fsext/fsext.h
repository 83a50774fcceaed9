/*
 * What the addon's C files share (common.c): the sha256 of the OpenSSL inside the node binary
 * (EVP_*, looked up at run time with dlsym, so the addon links no libcrypto and loads on any
 * node), Buffer arguments, and the async entry points fsext.c registers.
 */
#ifndef FSEXT_H
#define FSEXT_H

#include <stddef.h>
#include <node_api.h>

typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct engine_st ENGINE;

typedef struct {
  int resolved;
  EVP_MD_CTX *(*ctx_new)(void);
  void (*ctx_free)(EVP_MD_CTX *);
  const EVP_MD *(*sha256)(void);
  int (*init)(EVP_MD_CTX *, const EVP_MD *, ENGINE *);
  int (*update)(EVP_MD_CTX *, const void *, size_t);
  int (*final)(EVP_MD_CTX *, unsigned char *, unsigned int *);
} fsext_evp;

extern fsext_evp evp;

/* Looks the EVP functions up once; call it on the main thread before queueing work. 0 when absent. */
int resolve_evp(void);

/* A malloc'd, NUL-terminated copy of a Buffer argument's bytes; *len gets its length. NULL when not a Buffer. */
char *fsext_buffer_copy(napi_env env, napi_value value, size_t *len);

/* Queues execute (threadpool) then complete (main thread) on data; returns the promise `deferred` settles. */
napi_value fsext_start_work(napi_env env, const char *name, napi_async_execute_callback execute,
                            napi_async_complete_callback complete, void *data, napi_deferred *deferred,
                            napi_async_work *work);

napi_value js_copy_files(napi_env env, napi_callback_info info); /* copyfiles.c */
napi_value js_scan_dirs(napi_env env, napi_callback_info info);  /* scandirs.c */

#endif
