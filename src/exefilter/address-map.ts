/**
 * Address relabelling (docs/bsdiff.md, "Address relabelling"): where the code and data of the
 * source moved in the target, every absolute address in the source (pointers in data, the
 * targets the branch transform made absolute) is replaced by the address the same thing has in
 * the target, so bsdiff finds them equal. The map comes from the alignment of a plain bsdiff of
 * the two files, in the spirit of Zucchini's "equivalences": matched blocks of file bytes, read
 * through both files' PT_LOAD segments, say by how much each stretch of addresses moved.
 *
 * It is applied to the source only, by diff and apply alike, so it needs no inverse: it only
 * has to be deterministic. A wrong map costs bytes, never correctness.
 */

/** Piecewise shifts of addresses: values in [start, end) move by the shift of the last point at or below them. */
export interface AddressMap {
  start: number;
  end: number;
  /** Strictly increasing, each in [start, end). */
  points: readonly number[];
  /** shifts[i] applies from points[i] up to points[i + 1] (0 below points[0]). */
  shifts: readonly number[];
}

/** A PT_LOAD segment: `fileSize` bytes at file `offset` loaded at `vaddr`, `memSize` in memory. */
export interface LoadSegment {
  offset: number;
  fileSize: number;
  vaddr: number;
  memSize: number;
}

/** `length` bytes of the target at `target` matched (approximately) the source at `source`. */
export interface MatchedBlock {
  source: number;
  target: number;
  length: number;
}

/** Most points a map may have: the record holds it inline (two numbers per point). */
export const MAX_MAP_POINTS = 65536;
/** Addresses and shifts stay below this, so shifted values are exact in a double. */
export const MAX_ADDRESS = 2 ** 52;
/**
 * Matched blocks shorter than this say nothing reliable about where code moved: bsdiff pairs
 * short runs of zeros or padding with any other.
 */
const MIN_BLOCK = 64;

/** The shift of `v` (0 outside the map or below its first point). */
export function shiftAt(map: AddressMap, v: number): number {
  if (v < map.start || v >= map.end) return 0;
  const points = map.points;
  let lo = 0;
  let hi = points.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid]! <= v) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found < 0 ? 0 : map.shifts[found]!;
}

/**
 * The map implied by `blocks` (file offsets of a bsdiff alignment) between two files with these
 * segments, or undefined when nothing moved or the map would be too large to record.
 */
export function addressMapFor(
  blocks: readonly MatchedBlock[],
  source: readonly LoadSegment[],
  target: readonly LoadSegment[],
): AddressMap | undefined {
  if (source.length === 0 || target.length === 0) return undefined;
  const pieces: { vaddr: number; shift: number }[] = [];
  for (const b of blocks) {
    if (b.length < MIN_BLOCK) continue;
    for (const s of source) {
      const from = Math.max(b.source, s.offset);
      const to = Math.min(b.source + b.length, s.offset + s.fileSize);
      if (to - from < MIN_BLOCK) continue;
      const targetOffset = b.target + (from - b.source);
      const t = target.find((x) => targetOffset >= x.offset && targetOffset < x.offset + x.fileSize);
      if (!t) continue;
      const vaddr = from - s.offset + s.vaddr;
      pieces.push({ vaddr, shift: targetOffset - t.offset + t.vaddr - vaddr });
    }
  }
  pieces.sort((x, y) => x.vaddr - y.vaddr);
  const start = Math.min(...source.map((s) => s.vaddr));
  const end = Math.max(...source.map((s) => s.vaddr + s.memSize));
  if (end > MAX_ADDRESS) return undefined;
  const points: number[] = [];
  const shifts: number[] = [];
  for (const p of pieces) {
    const last = points.length - 1;
    if (last >= 0 && points[last] === p.vaddr) {
      shifts[last] = p.shift;
    } else if ((last < 0 ? 0 : shifts[last]) !== p.shift) {
      points.push(p.vaddr);
      shifts.push(p.shift);
    }
  }
  if (points.length === 0 || points.length > MAX_MAP_POINTS || shifts.some((s) => Math.abs(s) >= MAX_ADDRESS)) return undefined;
  return { start, end, points, shifts };
}
