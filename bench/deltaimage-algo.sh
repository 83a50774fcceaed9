#!/usr/bin/env bash
# The deltaimage algorithm (github.com/deltaimage/deltaimage: pair files by identical path only),
# re-implemented with the xdelta3 CLI as the benchmark's baseline:
#   for each regular file of DST:
#     - same path in SRC, same bytes        -> empty placeholder file
#     - same path in SRC, different bytes   -> `xdelta3 -e -s SRC/path DST/path`
#     - no regular file at that path in SRC -> the file as is
#   directories, symlinks and other entries of DST are copied as they are.
# The delta is the resulting directory; the benchmark ships it as `tar | gzip -6`.
# xdelta3 runs at its default level (as deltaimage), with -D (no external decompression of .gz
# inputs, so the delta restores the exact bytes) and -B sized to the source: xdelta3's default
# -B 64 MiB costs ~130 MiB and ~0.3 s per process whatever the file size.
# To be a fair, not a strawman, baseline it forks little: one sha256sum pass per tree finds the
# unchanged files, new files are copied in one batch; only changed files cost a process each.
#
# usage: bash bench/deltaimage-algo.sh diff  SRC_ROOT DST_ROOT DELTA_DIR
#        bash bench/deltaimage-algo.sh apply SRC_ROOT DELTA_DIR OUT_ROOT
set -euo pipefail

source_window() {
  local size=$1 window=524288
  while ((window < size && window < 67108864)); do window=$((window * 2)); done
  echo "$window"
}

diff_trees() {
  local src=$1 dst=$2 out=$3
  mkdir -p "$out"
  # Directories, then the other non-regular entries (symlinks, devices, fifos) with their metadata.
  (cd "$dst" && find . -type d -print0) | (cd "$out" && xargs -0 -r mkdir -p)
  (cd "$dst" && find . ! -type f ! -type d -print0) | (cd "$dst" && xargs -0 -r cp -a --parents -t "$out")
  declare -A src_hash=()
  local hash rel
  while read -r hash rel; do src_hash[$rel]=$hash; done < <(cd "$src" && find . -type f -print0 | xargs -0 -r sha256sum)
  local new_list
  new_list=$(mktemp)
  while read -r hash rel; do
    if [ -z "${src_hash[$rel]+set}" ]; then
      printf '%s\0' "$rel" >>"$new_list"
    elif [ "${src_hash[$rel]}" = "$hash" ]; then
      : >"$out/$rel"
    else
      xdelta3 -e -D -f -B "$(source_window "$(stat -c %s "$src/$rel")")" -s "$src/$rel" "$dst/$rel" "$out/$rel"
    fi
  done < <(cd "$dst" && find . -type f -print0 | xargs -0 -r sha256sum)
  (cd "$dst" && xargs -0 -r cp -a --parents -t "$out" <"$new_list")
  rm -f "$new_list"
}

# Inverse, for completeness: empty placeholder -> SRC's file; a VCDIFF file whose SRC twin exists -> decoded.
# (Like deltaimage, an empty placeholder of an empty DST file is ambiguous; that is the algorithm's own limit.)
apply_delta() {
  local src=$1 delta=$2 out=$3
  cp -a "$delta" "$out"
  (cd "$delta" && find . -type f -print0) | while IFS= read -r -d '' rel; do
    local s="$src/$rel" d="$delta/$rel" o="$out/$rel"
    [ -f "$s" ] && [ ! -L "$s" ] || continue
    if [ ! -s "$d" ]; then
      cp -a "$s" "$o"
    elif [ "$(head -c 3 "$d" | od -An -tx1 | tr -d ' ')" = d6c3c4 ]; then
      xdelta3 -d -R -f -s "$s" "$d" "$o"
    fi
  done
}

abs() { realpath -m -- "$1"; }
case "${1:-}" in
  diff) diff_trees "$(abs "$2")" "$(abs "$3")" "$(abs "$4")" ;;
  apply) apply_delta "$(abs "$2")" "$(abs "$3")" "$(abs "$4")" ;;
  *) echo "usage: $0 diff SRC DST DELTA_DIR | apply SRC DELTA_DIR OUT" >&2; exit 2 ;;
esac
