#!/usr/bin/env bash
# Fetches and builds the benchmark's real data sets into bench/data/ (gitignored cache).
# Idempotent: each data set is built into a temporary name and renamed when complete, so a
# finished set is never rebuilt and an interrupted one is rebuilt from scratch.
# Only real published package versions are used (Debian archive, npm registry); the large
# pair is derived from real binaries by bench/make-big-pair.mjs.
#
# usage: bash bench/fetch-data.sh [--quick]     (--quick: only the small file pairs and the npm app)
set -euo pipefail
BENCH="$(cd "$(dirname "$0")" && pwd)"
DATA="$BENCH/data"
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
mkdir -p "$DATA/debs" "$DATA/files" "$DATA/trees"

log() { echo "fetch-data: $*" >&2; }

# --- versions (all real; see `apt-cache madison PKG`, `npm view PKG versions`) --------------------
LIBC_A=2.36-9+deb12u7      # bookworm-security
LIBC_B=2.36-9+deb12u14     # bookworm point release
SSL_A=3.0.20-1~deb12u2     # bookworm point release
SSL_B=3.0.22-1~deb12u2     # bookworm-security
KERNEL_A=linux-image-6.1.0-50-amd64   # 6.1.176-1 (bookworm)
KERNEL_B=linux-image-6.1.0-56-amd64   # 6.1.192-2 (bookworm-security)
NEXT_SWC=@next/swc-linux-x64-gnu; NEXT_A=16.4.5; NEXT_B=16.4.6
NPM_APP_A=(typescript@5.8.2 esbuild@0.25.4 prettier@3.5.2 lodash@4.17.20)
NPM_APP_B=(typescript@5.8.3 esbuild@0.25.5 prettier@3.5.3 lodash@4.17.21)
MIRROR=http://deb.debian.org/debian

# apt-get download PKG=VERSION into bench/data/debs (once); prints the .deb path.
deb_download() {
  local pkg=$1 version=$2 file
  file=$(ls "$DATA/debs/${pkg}_${version//:/%3a}_"*.deb 2>/dev/null | head -1 || true)
  if [ -z "$file" ]; then
    (cd "$DATA/debs" && apt-get download -q "$pkg=$version" >&2 2>/dev/null) ||
      (cd "$DATA/debs" && apt-get download -q "$pkg=$version" >&2)
    file=$(ls "$DATA/debs/${pkg}_${version//:/%3a}_"*.deb | head -1)
  fi
  echo "$file"
}

# Extracts one member file of a .deb to OUT.
deb_member() {
  local deb=$1 member=$2 out=$3 tmp
  tmp=$(mktemp -d "$DATA/.x.XXXXXX")
  dpkg-deb -x "$deb" "$tmp"
  cp "$tmp/$member" "$out.tmp" && mv "$out.tmp" "$out"
  rm -rf "$tmp"
}

file_pair_libs() {
  [ -f "$DATA/files/libc.b" ] || {
    log "libc6 $LIBC_A -> $LIBC_B (libc.so.6, ~2 MB)"
    deb_member "$(deb_download libc6 "$LIBC_A")" lib/x86_64-linux-gnu/libc.so.6 "$DATA/files/libc.a"
    deb_member "$(deb_download libc6 "$LIBC_B")" lib/x86_64-linux-gnu/libc.so.6 "$DATA/files/libc.b"
  }
  [ -f "$DATA/files/libcrypto.b" ] || {
    log "libssl3 $SSL_A -> $SSL_B (libcrypto.so.3, ~5 MB)"
    deb_member "$(deb_download libssl3 "$SSL_A")" usr/lib/x86_64-linux-gnu/libcrypto.so.3 "$DATA/files/libcrypto.a"
    deb_member "$(deb_download libssl3 "$SSL_B")" usr/lib/x86_64-linux-gnu/libcrypto.so.3 "$DATA/files/libcrypto.b"
  }
}

npm_member() {
  local spec=$1 member=$2 out=$3 tmp tgz
  tmp=$(mktemp -d "$DATA/.x.XXXXXX")
  tgz=$(cd "$tmp" && npm pack -q "$spec" 2>/dev/null | tail -1)
  tar -xzf "$tmp/$tgz" -C "$tmp"
  cp "$tmp/package/$member" "$out.tmp" && mv "$out.tmp" "$out"
  rm -rf "$tmp"
}

file_pair_next_swc() {
  [ -f "$DATA/files/next-swc.b" ] && return
  log "$NEXT_SWC $NEXT_A -> $NEXT_B (next-swc.linux-x64-gnu.node, ~100 MB)"
  npm_member "$NEXT_SWC@$NEXT_A" next-swc.linux-x64-gnu.node "$DATA/files/next-swc.a"
  npm_member "$NEXT_SWC@$NEXT_B" next-swc.linux-x64-gnu.node "$DATA/files/next-swc.b"
}

file_pair_big() {
  [ -f "$DATA/files/big.b" ] && return
  log "big pair: next-swc $NEXT_A + libLLVM-15 + libLLVM-16 (~330 MB), edited copy as B"
  local llvm15=$DATA/files/.libLLVM-15.so llvm16=$DATA/files/.libLLVM-16.so
  [ -f "$llvm15" ] || deb_member "$(deb_download libllvm15 1:15.0.6-4+b1)" usr/lib/x86_64-linux-gnu/libLLVM-15.so.1 "$llvm15"
  [ -f "$llvm16" ] || deb_member "$(deb_download libllvm16 1:16.0.6-15~deb12u1)" usr/lib/x86_64-linux-gnu/libLLVM-16.so.1 "$llvm16"
  node "$BENCH/make-big-pair.mjs" "$DATA/files/big.a.tmp" "$DATA/files/big.b.tmp" "$DATA/files/libc.a" \
    "$DATA/files/next-swc.a" "$llvm15" "$llvm16"
  mv "$DATA/files/big.a.tmp" "$DATA/files/big.a" && mv "$DATA/files/big.b.tmp" "$DATA/files/big.b"
  rm -f "$llvm15" "$llvm16"
}

# Deterministic tar of a directory (for zstd --patch-from and for "ship as is").
tar_tree() {
  local dir=$1 out=$2
  tar --sort=name --numeric-owner -C "$dir" -cf "$out.tmp" . && mv "$out.tmp" "$out"
}

tree_pair_npm_app() {
  local t=$DATA/trees/npm-app
  [ -f "$t/b.tar" ] && return
  log "npm app: ${NPM_APP_A[*]} -> ${NPM_APP_B[*]}"
  rm -rf "$t" && mkdir -p "$t"
  for side in a b; do
    local -n specs="NPM_APP_${side^^}"
    mkdir -p "$t/$side"
    echo '{"name":"bench-app","version":"1.0.0","private":true}' > "$t/$side/package.json"
    (cd "$t/$side" && npm install -q --no-audit --no-fund --ignore-scripts "${specs[@]}" >/dev/null)
  done
  tar_tree "$t/a" "$t/a.tar" && tar_tree "$t/b" "$t/b.tar"
}

tree_pair_kernel() {
  local t=$DATA/trees/kernel
  [ -f "$t/b.tar" ] && return
  log "kernel modules: $KERNEL_A -> $KERNEL_B"
  rm -rf "$t" && mkdir -p "$t"
  local deb_a deb_b
  deb_a=$(deb_download "$KERNEL_A" "$(apt-cache madison "$KERNEL_A" | awk 'NR==1{print $3}')")
  deb_b=$(deb_download "$KERNEL_B" "$(apt-cache madison "$KERNEL_B" | awk 'NR==1{print $3}')")
  dpkg-deb -x "$deb_a" "$t/a" && dpkg-deb -x "$deb_b" "$t/b"
  tar_tree "$t/a" "$t/a.tar" && tar_tree "$t/b" "$t/b.tar"
}

# Runs a command in the chroot with /proc mounted (apt and dpkg scripts want it); always unmounts.
in_chroot() {
  local root=$1; shift
  mount -t proc proc "$root/proc"
  local rc=0
  LC_ALL=C DEBIAN_FRONTEND=noninteractive chroot "$root" "$@" || rc=$?
  umount "$root/proc"
  return $rc
}

# As a Dockerfile would (`rm -rf /var/lib/apt/lists/*`): no downloaded .debs, no package lists.
drop_apt_caches() {
  rm -rf "$1/var/cache/apt/archives/"*.deb "$1/var/cache/apt/"*.bin "$1/var/lib/apt/lists/"*_*
}

tree_pair_debian() {
  local t=$DATA/trees/debian
  [ -f "$t/b.tar" ] && return
  log "debian minbase: bookworm -> + bookworm-updates + bookworm-security (debootstrap, a few minutes)"
  mkdir -p "$t"
  if [ ! -d "$t/a" ]; then
    rm -rf "$t/a.tmp"
    debootstrap --variant=minbase bookworm "$t/a.tmp" "$MIRROR" >"$t/debootstrap.log" 2>&1
    drop_apt_caches "$t/a.tmp"
    mv "$t/a.tmp" "$t/a"
  fi
  rm -rf "$t/b.tmp" && cp -a "$t/a" "$t/b.tmp"
  local root=$t/b.tmp resolv
  resolv=$(mktemp) && cp -a "$root/etc/resolv.conf" "$resolv" 2>/dev/null || true
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod +x "$root/usr/sbin/policy-rc.d"
  in_chroot "$root" apt-get update -q >"$t/upgrade.log" 2>&1
  in_chroot "$root" apt-get -y -q -o Dpkg::Options::=--force-confold upgrade >>"$t/upgrade.log" 2>&1
  drop_apt_caches "$root" && rm -f "$root/usr/sbin/policy-rc.d"
  if [ -s "$resolv" ]; then cp -a "$resolv" "$root/etc/resolv.conf"; fi
  rm -f "$resolv"
  mv "$root" "$t/b"
  grep -E '^(Unpacking|Setting up)' "$t/upgrade.log" | grep -c Unpacking | xargs -I{} echo "fetch-data: debian upgrade unpacked {} packages" >&2
  tar_tree "$t/a" "$t/a.tar" && tar_tree "$t/b" "$t/b.tar"
}

tree_pair_big() {
  local t=$DATA/trees/big
  [ -f "$t/b/big.bin" ] && return
  rm -rf "$t" && mkdir -p "$t/a" "$t/b"
  # Hard links: the one-file trees share the bytes of the file pair, no extra disk.
  ln "$DATA/files/big.a" "$t/a/big.bin" && ln "$DATA/files/big.b" "$t/b/big.bin"
}

file_pair_libs
tree_pair_npm_app
if [ "$QUICK" = 0 ]; then
  file_pair_next_swc
  file_pair_big
  tree_pair_kernel
  tree_pair_debian
  tree_pair_big
fi
log "data ready in $DATA"
du -sh "$DATA"/files "$DATA"/trees/* 2>/dev/null >&2 || true
