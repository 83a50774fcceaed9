#!/usr/bin/env bash
# Builds deltaimg/runtime:<package version>, the self-contained runtime image that the
# generated Dockerfiles copy /opt/deltaimg from. Offline: the image is FROM scratch and its
# context is staged here from this machine's node, its shared libraries and `npm run build`.
#
#   /opt/deltaimg/deltaimg            static launcher (scripts/runtime-launcher.c)
#   /opt/deltaimg/bin/node            this machine's node, symbols stripped
#   /opt/deltaimg/lib/                exactly the libraries node and the addon need (ldd), loader included
#   /opt/deltaimg/{dist,wasm,package.json,node_modules}   the program, production dependencies only
#   /opt/deltaimg/native-build/fsext/build/Release/fsext.node   the native addon
#
# Usage: bash scripts/build-runtime-image.sh [TAG]   (run `npm run build` first; `npm run image` does both)
# Env: DOCKER (default /usr/bin/docker when present), DELTAIMG_STAGE (staging dir, default .tmp/runtime-image)
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(node -p 'require("./package.json").version')
tag=${1:-deltaimg/runtime:$version}
docker_bin=${DOCKER:-$( [ -x /usr/bin/docker ] && echo /usr/bin/docker || echo docker )}
stage=${DELTAIMG_STAGE:-.tmp/runtime-image}
root=$stage/opt/deltaimg
addon=native-build/fsext/build/Release/fsext.node

die() { echo "build-runtime-image: $*" >&2; exit 1; }
[ -f dist/cli/main.js ] || die "dist/cli/main.js is missing: run npm run build first"
[ -f wasm/xdelta3.wasm ] || die "wasm/xdelta3.wasm is missing: run npm run build:wasm first"
[ -f "$addon" ] || die "$addon is missing: run npm run build first"
command -v gcc >/dev/null || die "gcc is needed to build the static launcher"

rm -rf "$stage"
mkdir -p "$root/bin" "$root/lib" "$root/native-build/fsext/build/Release"

# node, without its debug info and symbol table (the dynamic symbols addons link against stay).
node_bin=$(command -v node)
node_bin=$(readlink -f "$node_bin")
strip --strip-all -o "$root/bin/node" "$node_bin"
cp "$addon" "$root/$addon"

# Every library node and the addon load, copied (symlinks resolved) under its soname.
# ldd lines: "libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)".
copy_libs() {
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 } $1 ~ /^\// { n = split($1, p, "/"); print p[n], $1 }' |
    while read -r soname path; do
      [ -e "$root/lib/$soname" ] || cp -L "$path" "$root/lib/$soname"
    done
}
copy_libs "$node_bin"
copy_libs "$addon"
[ -f "$root/lib/ld-linux-x86-64.so.2" ] || die "ldd did not name the x86-64 loader for $node_bin"

# The launcher: static, so it needs nothing from the base image.
gcc -static -Os -Wall -Wextra -o "$root/deltaimg" scripts/runtime-launcher.c
strip "$root/deltaimg"

# The program: compiled JS without declarations and source maps, the wasm, production deps.
cp -r dist "$root/dist"
find "$root/dist" \( -name '*.d.ts' -o -name '*.map' \) -delete
cp -r wasm "$root/wasm"
cp package.json package-lock.json "$root/"
cp -r node_modules "$root/node_modules"
(cd "$root" && npm prune --omit=dev --no-audit --no-fund --ignore-scripts >/dev/null 2>&1) ||
  die "npm prune --omit=dev failed in $root"
rm -rf "$root/node_modules/.bin" "$root/node_modules/.package-lock.json"

# Smoke test before building: the staged runtime runs on its own loader and libraries.
"$root/deltaimg" --version >/dev/null || die "the staged runtime does not start: $root/deltaimg --version failed"

previous=$("$docker_bin" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
DOCKER_BUILDKIT=1 "$docker_bin" build --quiet --network=none -t "$tag" -f Dockerfile "$stage" >/dev/null
current=$("$docker_bin" image inspect --format '{{.Id}}' "$tag")
# The image this tag named before is now untagged: remove it unless something still uses it.
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then "$docker_bin" rmi "$previous" >/dev/null 2>&1 || true; fi
size=$("$docker_bin" image inspect --format '{{.Size}}' "$tag")
echo "built $tag ($((size / 1024 / 1024)) MiB: node $(( $(stat -c %s "$root/bin/node") / 1024 / 1024 )) MiB," \
  "lib $(du -sm "$root/lib" | cut -f1) MiB, node_modules $(du -sm "$root/node_modules" | cut -f1) MiB)"
