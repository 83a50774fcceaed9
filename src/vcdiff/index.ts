/**
 * VCDIFF engine: xdelta3 3.1.1 compiled to WebAssembly (wasm/xdelta3.wasm, see native-build/),
 * behind a streaming API. Memory stays within the source window plus a few MiB (plus xdelta3's
 * hash tables, which scale with the window), for files of any size including > 4 GiB.
 *
 * - encodeFile / decodeFile: paths (string or Buffer for non-UTF-8 names); the output is written
 *   to a temp file beside it and renamed only on success.
 * - encodeStream / decodeStream: the same, where TARGET/DELTA may be a Readable and the output a
 *   Writable (the CLI's `-`). The source is always a file: xdelta3 reads it by block number.
 * - VcdiffPool: the same jobs on worker threads (one per core by default).
 *
 * Deltas carry an application header (source size + hash, target size) that native
 * `xdelta3 -d -s` ignores; ours uses it to tell WRONG_SOURCE from CORRUPT_DELTA and to catch a
 * delta cut at a window boundary. Every window carries an adler32 that is always verified.
 */
export type { Secondary, VcdiffOptions } from './options.js';
export {
  DEFAULT_LEVEL,
  DEFAULT_SECONDARY,
  DEFAULT_WINDOW,
  DEFAULT_TARGET_WINDOW,
  MIN_WINDOW,
  MAX_WINDOW,
  parseSecondary,
  sourceWindowFor,
  vcdiffDecodeMemory,
  vcdiffEncodeMemory,
} from './options.js';
export type { EncodeResult, DecodeResult } from './engine.js';
export type { PathLike, InputArg, OutputArg, OutputMode } from './files.js';
export { encodeFile, decodeFile, encodeStream, decodeStream, decodeInMemory, type InMemoryDecode } from './files.js';
export { VcdiffPool, type VcdiffPoolOptions } from './pool.js';
export { compileAhead } from './wasm.js';
