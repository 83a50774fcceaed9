#!/usr/bin/env bash
# One-time setup of a fresh Debian machine: the system packages deltaimg's tests,
# benchmark and Docker workflow use, the C toolchains `npm pack` builds the prebuilt
# addons with (x64 and arm64 glibc, x64 musl), then the npm install and build, and
# `deltaimg` on PATH (a symlink in /usr/local/bin to this checkout's CLI).
# Idempotent: re-running it is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(xdelta3 zstd attr docker.io docker-registry apache2-utils openssl debootstrap time gcc libc6-dev binutils gzip pigz golang-go python3 zsh fish)
# The benchmark builds HDiffPatch (bench/lib/hdiffpatch.mjs) from the sources an npm package ships.
packages+=(g++ make libzstd-dev zlib1g-dev libbz2-dev)
# Cross compilers for the prebuilds/ of the other architecture (native-build/build.mjs --all);
# they also build the small executables of the executable-transform tests for both architectures.
case "$(dpkg --print-architecture)" in
  amd64) packages+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross musl-tools) ;;
  arm64) packages+=(gcc-x86-64-linux-gnu libc6-dev-amd64-cross) ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

npm ci --no-fund --no-audit
npm run build

# `deltaimg` on PATH, as the README uses it: this checkout's CLI (re-pointed on every run).
bin_dir=${DELTAIMG_BIN_DIR:-/usr/local/bin}
if [ -w "$bin_dir" ]; then
  ln -sfn "$PWD/dist/cli/main.js" "$bin_dir/deltaimg"
else
  sudo ln -sfn "$PWD/dist/cli/main.js" "$bin_dir/deltaimg"
fi
"$bin_dir/deltaimg" --version >/dev/null || { echo "setup: $bin_dir/deltaimg does not run" >&2; exit 1; }
command -v deltaimg >/dev/null || echo "setup: note: $bin_dir is not on your PATH; add it to run deltaimg by name" >&2
