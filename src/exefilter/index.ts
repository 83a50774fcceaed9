/**
 * Executable-aware transform for bsdiff (docs/bsdiff.md, "Executable transform"): relative
 * branch targets in ELF x86-64 and ARM64 code become absolute, reversibly, before matching;
 * the source's addresses may also be relabelled to the target's (address-map.ts).
 * Depends on nothing else of deltaimg's: callers in delta/ record and apply it.
 */
export { transformBuffer, transformRange, type Arch, type BranchTransform, type Direction, type Region } from './transform.js';
export { BranchFilter, branchFilterStream, transformFile, transformSourceFile } from './stream.js';
export { transformSourceBuffer } from './unwind.js';
export {
  addressMapFor,
  shiftAt,
  MAX_MAP_POINTS,
  type AddressMap,
  type LoadSegment,
  type MatchedBlock,
  type UnwindHeader,
} from './address-map.js';
export { parseElfCode, readElfCode, MAX_REGIONS, type ElfCode } from './elf.js';
export {
  choosePairTransform,
  decodePairTransform,
  encodePairTransform,
  regionsOutside,
  TransformParamsError,
  type PairTransform,
} from './params.js';
