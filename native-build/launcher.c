/*
 * deltaimg runtime launcher: /opt/deltaimg/deltaimg in the runtime image.
 *
 * Built with `gcc -static` (native-build/build.mjs, one per architecture), so it runs in a
 * FROM scratch stage and on any base image (glibc, musl, busybox, distroless) without using
 * the base's libc or shell. It runs the bundled node through the bundled glibc loader, with
 * the bundled libraries only:
 *
 *   ROOT/lib/<LOADER> --library-path ROOT/lib ROOT/bin/node ROOT/dist/cli/main.js ARGS...
 *
 * LOADER is the glibc loader's file name for the target architecture (-DLOADER=...).
 *
 * ROOT is the directory holding this launcher (found through /proc/self/exe), or
 * /opt/deltaimg when /proc is not mounted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_ROOT "/opt/deltaimg"
#ifndef LOADER
#error "build with -DLOADER='\"ld-linux-<arch>.so.N\"' (native-build/build.mjs does)"
#endif

/* Fills root with the launcher's directory; falls back to DEFAULT_ROOT. */
static void find_root(char *root, size_t size) {
  ssize_t n = readlink("/proc/self/exe", root, size - 1);
  if (n > 0) {
    root[n] = '\0';
    char *slash = strrchr(root, '/');
    if (slash && slash != root) {
      *slash = '\0';
      return;
    }
  }
  snprintf(root, size, "%s", DEFAULT_ROOT);
}

static char *join(const char *root, const char *rel) {
  size_t len = strlen(root) + strlen(rel) + 1;
  char *out = malloc(len);
  if (!out) {
    fputs("deltaimg launcher: out of memory\n", stderr);
    exit(127);
  }
  snprintf(out, len, "%s%s", root, rel);
  return out;
}

int main(int argc, char **argv) {
  char root[PATH_MAX];
  find_root(root, sizeof root);

  /* loader, --library-path, lib, node, main.js, user args..., NULL */
  char **args = calloc((size_t)argc + 6, sizeof *args);
  if (!args) {
    fputs("deltaimg launcher: out of memory\n", stderr);
    return 127;
  }
  char *loader = join(root, "/lib/" LOADER);
  int i = 0;
  args[i++] = loader;
  args[i++] = "--library-path";
  args[i++] = join(root, "/lib");
  args[i++] = join(root, "/bin/node");
  args[i++] = join(root, "/dist/cli/main.js");
  for (int a = 1; a < argc; a++) args[i++] = argv[a];
  args[i] = NULL;

  execv(loader, args);
  fprintf(stderr, "deltaimg launcher: cannot run %s: %s\n", loader, strerror(errno));
  return 127;
}
