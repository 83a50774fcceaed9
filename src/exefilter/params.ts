/**
 * Transform parameters as recorded in a delta: chosen by the encoder from both files' ELF
 * headers, and validated field by field when read back, since a delta is outside input.
 */
import { MAX_ADDRESS, MAX_MAP_POINTS, type AddressMap } from './address-map.js';
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
  const map = t.addressMap ? { addressMap: encodeAddressMap(t.addressMap) } : {};
  return t.arch === 'x86-64' ? { arch: t.arch, rangeBits: t.rangeBits, regions, ...map } : { arch: t.arch, regions, ...map };
}

/** `{ range: [start, end], shifts: [gap, shift, ...] }`: each point as its distance from the previous one (from `start` for the first). */
function encodeAddressMap(m: AddressMap): Record<string, unknown> {
  const shifts: number[] = [];
  let previous = m.start;
  for (const [i, point] of m.points.entries()) {
    shifts.push(point - previous, m.shifts[i]!);
    previous = point;
  }
  return { range: [m.start, m.end], shifts, ...(m.unwind ? { unwind: [m.unwind.offset, m.unwind.vaddr] } : {}) };
}

function decodeAddressMap(v: unknown, side: string): AddressMap {
  const at = `${side}.addressMap`;
  if (!isObject(v)) throw new TransformParamsError(`${at} is not an object`);
  const [start, end] = Array.isArray(v.range) && v.range.length === 2 ? v.range : [];
  if (!isUint(start) || !isUint(end) || start >= end || end > MAX_ADDRESS)
    throw new TransformParamsError(`${at}.range must be [start, end] with start < end <= 2^52`);
  const pairs = v.shifts;
  if (!Array.isArray(pairs) || pairs.length === 0 || pairs.length % 2 !== 0 || pairs.length > 2 * MAX_MAP_POINTS)
    throw new TransformParamsError(`${at}.shifts must hold 1 to ${MAX_MAP_POINTS} [gap, shift] pairs`);
  const points: number[] = [];
  const shifts: number[] = [];
  let point = start;
  for (let i = 0; i < pairs.length; i += 2) {
    const gap: unknown = pairs[i];
    const shift: unknown = pairs[i + 1];
    if (!isUint(gap) || (i > 0 && gap === 0) || point + gap >= end)
      throw new TransformParamsError(`${at}.shifts[${i}] is not a gap keeping the points increasing inside the range`);
    if (typeof shift !== 'number' || !Number.isSafeInteger(shift) || Math.abs(shift) >= MAX_ADDRESS)
      throw new TransformParamsError(`${at}.shifts[${i + 1}] is not an integer shift below 2^52`);
    point += gap;
    points.push(point);
    shifts.push(shift);
  }
  if (v.unwind === undefined) return { start, end, points, shifts };
  const [offset, vaddr] = Array.isArray(v.unwind) && v.unwind.length === 2 ? v.unwind : [];
  if (!isUint(offset) || !isUint(vaddr) || vaddr >= MAX_ADDRESS) throw new TransformParamsError(`${at}.unwind is not [offset, vaddr]`);
  return { start, end, points, shifts, unwind: { offset, vaddr } };
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

function decodeTransform(v: unknown, side: 'source' | 'target'): BranchTransform {
  if (!isObject(v)) throw new TransformParamsError(`${side} is not an object`);
  const regions = decodeRegions(v.regions, side, v.arch === 'arm64' ? 4 : 1);
  if (v.addressMap !== undefined && side === 'target')
    throw new TransformParamsError('target has an addressMap (only the source is relabelled)');
  const map = v.addressMap === undefined ? {} : { addressMap: decodeAddressMap(v.addressMap, side) };
  if (v.arch === 'arm64') return { arch: 'arm64', regions, ...map };
  if (v.arch !== 'x86-64') throw new TransformParamsError(`${side} has unknown arch ${JSON.stringify(v.arch)}`);
  const bits = v.rangeBits;
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < MIN_RANGE_BITS || bits > MAX_RANGE_BITS) {
    throw new TransformParamsError(`${side}.rangeBits must be an integer from ${MIN_RANGE_BITS} to ${MAX_RANGE_BITS}`);
  }
  return { arch: 'x86-64', rangeBits: bits, regions, ...map };
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
