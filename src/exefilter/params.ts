/**
 * Transform parameters as recorded in a delta: chosen by the encoder from both files' ELF
 * headers, and validated field by field when read back, since a delta is outside input.
 */
import { MAX_REGIONS, type ElfCode } from './elf.js';
import type { BranchTransform, Region } from './transform.js';

/** x86-64 displacement ranges the format allows (2^15 .. 2^31 bytes either way). */
export const MIN_RANGE_BITS = 16;
export const MAX_RANGE_BITS = 32;

/** The transforms of one file pair: the same kind for both, each with its own file's regions. */
export interface PairTransform {
  source: BranchTransform;
  target: BranchTransform;
}

/**
 * The transforms for a source/target pair, or undefined when they are not code of one
 * architecture. x86-64 converts displacements that reach no farther than the larger file's
 * size (rounded up to a power of two; RIP-relative loads reach the data beyond the code):
 * real references stay inside it, and a random `E8` byte in data or inside another
 * instruction passes that test only rarely.
 */
export function choosePairTransform(source: ElfCode | undefined, target: ElfCode | undefined): PairTransform | undefined {
  if (!source || !target || source.arch !== target.arch) return undefined;
  if (source.arch === 'arm64')
    return { source: { arch: 'arm64', regions: source.regions }, target: { arch: 'arm64', regions: target.regions } };
  const rangeBits = rangeBitsFor(Math.max(source.fileSize, target.fileSize));
  return { source: { arch: 'x86-64', rangeBits, regions: source.regions }, target: { arch: 'x86-64', rangeBits, regions: target.regions } };
}

function rangeBitsFor(span: number): number {
  let bits = MIN_RANGE_BITS;
  while (bits < MAX_RANGE_BITS && 2 ** (bits - 1) < span) bits++;
  return bits;
}

/** A recorded transform's parameters failing validation; the caller names the record. */
export class TransformParamsError extends Error {}

export function encodePairTransform(t: PairTransform): Record<string, unknown> {
  return { source: encodeTransform(t.source), target: encodeTransform(t.target) };
}

function encodeTransform(t: BranchTransform): Record<string, unknown> {
  const regions = t.regions.map((r) => [r.offset, r.size, r.vaddr]);
  return t.arch === 'x86-64' ? { arch: t.arch, rangeBits: t.rangeBits, regions } : { arch: t.arch, regions };
}

/** Validates recorded parameters (see docs/format.md, "Executable transform"). */
export function decodePairTransform(v: unknown): PairTransform {
  if (!isObject(v)) throw new TransformParamsError('is not an object');
  const source = decodeTransform(v.source, 'source');
  const target = decodeTransform(v.target, 'target');
  if (source.arch !== target.arch) throw new TransformParamsError('has source and target of different architectures');
  if (source.arch === 'x86-64' && target.arch === 'x86-64' && source.rangeBits !== target.rangeBits) {
    throw new TransformParamsError('has source and target with different rangeBits');
  }
  return { source, target };
}

function decodeTransform(v: unknown, side: string): BranchTransform {
  if (!isObject(v)) throw new TransformParamsError(`${side} is not an object`);
  const regions = decodeRegions(v.regions, side, v.arch === 'arm64' ? 4 : 1);
  if (v.arch === 'arm64') return { arch: 'arm64', regions };
  if (v.arch !== 'x86-64') throw new TransformParamsError(`${side} has unknown arch ${JSON.stringify(v.arch)}`);
  const bits = v.rangeBits;
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < MIN_RANGE_BITS || bits > MAX_RANGE_BITS) {
    throw new TransformParamsError(`${side}.rangeBits must be an integer from ${MIN_RANGE_BITS} to ${MAX_RANGE_BITS}`);
  }
  return { arch: 'x86-64', rangeBits: bits, regions };
}

function decodeRegions(v: unknown, side: string, vaddrAlign: number): Region[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_REGIONS)
    throw new TransformParamsError(`${side}.regions must list 1 to ${MAX_REGIONS} regions`);
  const out: Region[] = [];
  let previousEnd = 0;
  for (const [i, r] of v.entries()) {
    const at = `${side}.regions[${i}]`;
    const [offset, size, vaddr] = Array.isArray(r) && r.length === 3 ? r : [];
    if (!isUint(offset) || !isUint(size) || !isUint(vaddr)) throw new TransformParamsError(`${at} is not [offset, size, vaddr]`);
    if (size === 0 || offset < previousEnd || !Number.isSafeInteger(offset + size))
      throw new TransformParamsError(`${at} is empty, overlaps or is out of order`);
    if (vaddr > 0xffffffff || vaddr % vaddrAlign !== 0) throw new TransformParamsError(`${at} has an invalid vaddr`);
    out.push({ offset, size, vaddr });
    previousEnd = offset + size;
  }
  return out;
}

/** Undefined when every region lies inside a file of `size` bytes, else what is wrong. */
export function regionsOutside(t: BranchTransform, size: number): string | undefined {
  const last = t.regions[t.regions.length - 1]!;
  const end = last.offset + last.size;
  return end > size ? `its code regions end at byte ${end} of a ${size}-byte file` : undefined;
}

function isUint(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
