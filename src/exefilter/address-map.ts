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
  /** The source's `.eh_frame_hdr`, whose tables are relabelled too (unwind.ts). */
  unwind?: UnwindHeader;
}

/** Where a file's `.eh_frame_hdr` lies: at file `offset`, loaded at `vaddr`. */
export interface UnwindHeader {
  offset: number;
  vaddr: number;
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
 * segments, or undefined when nothing moved. A map with more than MAX_MAP_POINTS points is
 * coarsened: only ever longer blocks count, until it fits (a 100 MB Rust program: 66,341 points
 * from blocks of 64+ bytes).
 */
export function addressMapFor(
  blocks: readonly MatchedBlock[],
  source: readonly LoadSegment[],
  target: readonly LoadSegment[],
): AddressMap | undefined {
  if (source.length === 0 || target.length === 0) return undefined;
  const start = Math.min(...source.map((s) => s.vaddr));
  const end = Math.max(...source.map((s) => s.vaddr + s.memSize));
  if (end > MAX_ADDRESS) return undefined;
  const pieces = addressPieces(blocks, source, target);
  for (let minLength = MIN_BLOCK; ; minLength *= 2) {
    const kept = pieces.filter((p) => p.length >= minLength);
    if (kept.length === 0) return undefined;
    const { points, shifts } = breakpoints(kept);
    if (points.length === 0) return undefined;
    if (points.length <= MAX_MAP_POINTS) return { start, end, points, shifts };
  }
}

interface Piece {
  vaddr: number;
  length: number;
  shift: number;
}

/** Each block cut at the source's segment boundaries, as (source address, length, shift), sorted by address. */
function addressPieces(blocks: readonly MatchedBlock[], source: readonly LoadSegment[], target: readonly LoadSegment[]): Piece[] {
  const pieces: Piece[] = [];
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
      const shift = targetOffset - t.offset + t.vaddr - vaddr;
      if (Math.abs(shift) < MAX_ADDRESS) pieces.push({ vaddr, length: to - from, shift });
    }
  }
  return pieces.sort((x, y) => x.vaddr - y.vaddr);
}

/** The points where the shift changes (a later piece at the same address wins). */
function breakpoints(pieces: readonly Piece[]): { points: number[]; shifts: number[] } {
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
  return { points, shifts };
}
