/* What the addon's C files share (fsext.h): sha256 from the node binary's OpenSSL, Buffer arguments. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include "fsext.h"

fsext_evp evp;

int resolve_evp(void) {
  if (evp.resolved) return evp.resolved > 0;
  evp.ctx_new = (EVP_MD_CTX * (*)(void)) dlsym(RTLD_DEFAULT, "EVP_MD_CTX_new");
  evp.ctx_free = (void (*)(EVP_MD_CTX *))dlsym(RTLD_DEFAULT, "EVP_MD_CTX_free");
  evp.sha256 = (const EVP_MD *(*)(void))dlsym(RTLD_DEFAULT, "EVP_sha256");
  evp.init = (int (*)(EVP_MD_CTX *, const EVP_MD *, ENGINE *))dlsym(RTLD_DEFAULT, "EVP_DigestInit_ex");
  evp.update = (int (*)(EVP_MD_CTX *, const void *, size_t))dlsym(RTLD_DEFAULT, "EVP_DigestUpdate");
  evp.final = (int (*)(EVP_MD_CTX *, unsigned char *, unsigned int *))dlsym(RTLD_DEFAULT, "EVP_DigestFinal_ex");
  int ok = evp.ctx_new && evp.ctx_free && evp.sha256 && evp.init && evp.update && evp.final;
  evp.resolved = ok ? 1 : -1;
  return ok;
}

char *fsext_buffer_copy(napi_env env, napi_value value, size_t *len) {
  bool is_buffer = false;
  void *data;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer) return NULL;
  if (napi_get_buffer_info(env, value, &data, len) != napi_ok) return NULL;
  char *copy = malloc(*len + 1);
  if (copy == NULL) return NULL;
  memcpy(copy, data, *len);
  copy[*len] = 0;
  return copy;
}

napi_value fsext_start_work(napi_env env, const char *name, napi_async_execute_callback execute,
                            napi_async_complete_callback complete, void *data, napi_deferred *deferred,
                            napi_async_work *work) {
  napi_value resource_name, promise;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  napi_create_promise(env, deferred, &promise);
  napi_create_async_work(env, NULL, resource_name, execute, complete, data, work);
  napi_queue_async_work(env, *work);
  return promise;
}
