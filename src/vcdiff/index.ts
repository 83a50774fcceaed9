/** VCDIFF engine: xdelta3 3.1.1 compiled to WebAssembly, behind a streaming file API. */
export type { Secondary, VcdiffOptions } from './options.js';
export { DEFAULT_LEVEL, DEFAULT_SECONDARY, DEFAULT_WINDOW, DEFAULT_TARGET_WINDOW, MIN_WINDOW, MAX_WINDOW, parseSecondary } from './options.js';
export type { EncodeResult, DecodeResult } from './engine.js';
export type { PathLike, InputArg, OutputArg } from './files.js';
export { encodeFile, decodeFile, encodeStream, decodeStream } from './files.js';
export { VcdiffPool, type VcdiffPoolOptions } from './pool.js';
