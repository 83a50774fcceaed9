#!/usr/bin/env bash
# Rebuilds wasm/xdelta3.wasm from xdelta3 3.1.1 (Apache-2.0) plus native-build/xd3glue.c.
# Inputs and flags are explained in native-build/README.md.
#
# Needs: npm (registry access), Debian's `emscripten` package (emcc 3.1.x), sha512sum/base64, patch.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
vendor="$here/vendor"
out="$here/out"

# The xdelta3 sources come from the npm package xdelta3-wasm, pinned by version and
# by the registry's sha512 integrity string (checked below before anything is unpacked).
pkg_spec="xdelta3-wasm@1.0.0"
pkg_tgz="xdelta3-wasm-1.0.0.tgz"
pkg_integrity="sha512-vhS28BhVaE3S/PGG1KQIwjBVqJecuS5Sdh82UAZysbnYaU93KS6l8ZPtsqonNZMeuyFgrGW9D44hh2lwQCsidA=="

fetch_sources() {
  mkdir -p "$vendor"
  if [ ! -f "$vendor/$pkg_tgz" ]; then
    (cd "$vendor" && npm pack --silent "$pkg_spec" >/dev/null)
  fi
  local got
  got="sha512-$(sha512sum "$vendor/$pkg_tgz" | cut -d' ' -f1 | xxd -r -p | base64 -w0)"
  if [ "$got" != "$pkg_integrity" ]; then
    echo "build-wasm: $vendor/$pkg_tgz has integrity $got, expected $pkg_integrity; delete it and retry" >&2
    exit 1
  fi
  rm -rf "$vendor/package"
  tar -xzf "$vendor/$pkg_tgz" -C "$vendor"
}

fetch_sources
xd3src="$vendor/package/src/native/xdelta/xdelta3"
grep -q 'Xdelta version 3.1.1' "$xd3src/xdelta3-main.h" || { echo "build-wasm: expected xdelta3 3.1.1 sources in $xd3src" >&2; exit 1; }

# Our one fix to xdelta3 3.1.1: with 32-bit usize_t, `~maskby` is a 32-bit mask, and ANDing it
# into the 64-bit target_cksum_pos cleared the high bits, so past 4 GiB the encoder stopped
# indexing the source (no wrong output, but no new source matches either). Widen it first.
sed -i 's/target_cksum_pos &= ~stream->src->maskby;/target_cksum_pos \&= ~(xoff_t) stream->src->maskby;/' "$xd3src/xdelta3.c"
grep -q 'target_cksum_pos &= ~(xoff_t) stream->src->maskby;' "$xd3src/xdelta3.c" || { echo "build-wasm: could not apply the maskby fix to $xd3src/xdelta3.c" >&2; exit 1; }

# Two speed-ups, each documented in its patch's header and in native-build/README.md:
# table-driven Huffman decoding of djw sections (decodes exactly what xdelta3 decodes) and
# adler32 with wasm SIMD (the same checksum).
for p in xdelta3-djw-table-decode.patch xdelta3-adler32-simd.patch; do
  patch --quiet --forward -p1 -d "$xd3src" < "$here/$p" \
    || { echo "build-wasm: could not apply native-build/$p to $xd3src" >&2; exit 1; }
done

# Debian's emscripten finds its JS dependencies (acorn) only through NODE_PATH.
export NODE_PATH="${NODE_PATH:-/usr/share/nodejs}"
mkdir -p "$out" "$root/wasm"

defines=(
  -DXD3_USE_LARGEFILE64=1   # 64-bit source/target offsets (files > 4 GiB)
  -DXD3_USE_LARGESIZET=0    # 32-bit window sizes, as in xdelta3 3.0.x: wasm32-native, half-size hash tables
  -DSIZEOF_SIZE_T=4
  -DSIZEOF_UNSIGNED_LONG_LONG=8
  -DSECONDARY_DJW=1
  -DSECONDARY_FGK=1
  -DSECONDARY_LZMA=0
  -DXD3_MAIN=0
  -DREGRESSION_TEST=0
  -DXD3_DEBUG=0
  -DNDEBUG
  -include assert.h         # xdelta3.h uses C11 static_assert (normally pulled in by config.h)
)
exports='["_malloc","_free","_xg_create","_xg_config_error","_xg_set_source","_xg_set_appheader","_xg_appheader_ptr","_xg_appheader_len","_xg_input_ptr","_xg_input_cap","_xg_provide_input","_xg_run","_xg_output_ptr","_xg_output_len","_xg_consume_output","_xg_block_offset","_xg_block_ptr","_xg_block_len","_xg_block_done","_xg_message","_xg_strerror","_xg_total_in","_xg_total_out","_xg_current_window","_xg_close","_xg_destroy","_xg_malloc","_xg_free"]'

emcc -O3 -mbulk-memory -mnontrapping-fptoint -msimd128 "${defines[@]}" -I"$xd3src" -c "$xd3src/xdelta3.c" -o "$out/xdelta3.o"
emcc -O3 -mbulk-memory -mnontrapping-fptoint -msimd128 "${defines[@]}" -I"$xd3src" -c "$here/xd3glue.c" -o "$out/xd3glue.o"
emcc -O3 -mbulk-memory "$out/xdelta3.o" "$out/xd3glue.o" -o "$root/wasm/xdelta3.wasm" \
  -s STANDALONE_WASM=1 --no-entry \
  -s EXPORTED_FUNCTIONS="$exports" \
  -s ALLOW_MEMORY_GROWTH=1 -s INITIAL_MEMORY=16MB -s MAXIMUM_MEMORY=4GB \
  -s TOTAL_STACK=1MB -s FILESYSTEM=0 -s ERROR_ON_UNDEFINED_SYMBOLS=1

sha256sum "$root/wasm/xdelta3.wasm"
