#!/usr/bin/env bash
# One-time setup of a fresh Debian machine: the system packages deltaimg's tests,
# benchmark and Docker workflow use, then the npm install and build.
# Idempotent: re-running it is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc and the arm64 cross compiler build the small executables of the executable-transform tests.
packages=(xdelta3 zstd attr docker.io docker-registry debootstrap time gcc libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
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
