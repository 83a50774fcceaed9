/**
 * bsdiff-style binary deltas (approximate matches + bytewise differences), for recompiled
 * binaries where VCDIFF loses: see docs/bsdiff.md for the algorithm and the DIMGBSD1 format.
 */
export {
  bsdiffEncode,
  bsdiffEncodeBytes,
  bsdiffEncodeMemory,
  BSDIFF_MAX_SOURCE_BYTES,
  BEST_QUALITY_LIMIT,
  type BsdiffOptions,
  type BsdiffResult,
} from './encode.js';
export { bsdiffDecode, BSDIFF_DECODE_MEMORY, type BsdiffDecodeResult } from './decode.js';
export { buildSuffixArray } from './suffix-array.js';
export { bsdiffMatches, type MatchedBlock } from './alignment.js';
export { bsdiffEncodeSegmented, planSegments, segmentedEncodeMemory, type SegmentPlan } from './segmented.js';
export { bsdiffDecodeInMemory, type InMemoryNames } from './decode-memory.js';
export { AnchorScanner, type AnchorSpacing } from './fingerprints.js';
