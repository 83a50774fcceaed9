/**
 * Content-defined block fingerprints, to find where in a large source each part of a large
 * target comes from without holding either whole. A gear rolling hash marks anchors where its
 * low bits are zero (so the same content gives the same anchors wherever it sits, moved or
 * not); each anchor's key hashes the 32 bytes before it. The source's anchors go into a compact
 * index (first occurrence of each key); a target segment's anchors look their keys up there.
 */

/** Bytes an anchor's key covers (and the gear hash's reach: a 32-bit hash shifted once per byte). */
export const ANCHOR_WINDOW = 32;

/** Gear table: 256 fixed pseudo-random words (xorshift32 from a fixed seed). */
const GEAR = (() => {
  const table = new Uint32Array(256);
  let x = 0x9e3779b9;
  for (let i = 0; i < 256; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    table[i] = x >>> 0;
  }
  return table;
})();

export interface AnchorSpacing {
  /** anchors fall on average every 2^bits bytes */
  bits: number;
  /** and never closer than this (a long run of one byte would otherwise anchor everywhere) */
  minGap: number;
}

/** At most about this many anchors in a source: the index costs ~20 bytes each. */
const MAX_SOURCE_ANCHORS = 2 * 1024 * 1024;

/** Anchor spacing for a source of `sourceBytes`: every 256 bytes, sparser above 512 MiB. */
export function spacingFor(sourceBytes: number): AnchorSpacing {
  let bits = 8;
  while (bits < 20 && sourceBytes / 2 ** bits > MAX_SOURCE_ANCHORS) bits++;
  return { bits, minGap: 2 ** bits / 4 };
}

/** Memory of a SourceFingerprints over `sourceBytes` (arrays grown by doubling, then the table). */
export function fingerprintMemory(sourceBytes: number): number {
  const anchors = sourceBytes / 2 ** spacingFor(sourceBytes).bits;
  return Math.ceil(anchors * 2 * 12 + anchors * 4 * 4) + 1024 * 1024;
}

/**
 * Finds anchors in a stream of chunks. `scan` may be called with consecutive chunks of one
 * stream; anchors closer than ANCHOR_WINDOW bytes to a chunk's start are skipped (their key
 * would need the previous chunk), a negligible loss for chunks of megabytes.
 */
export class AnchorScanner {
  private hash = 0;
  private sinceAnchor = 0;
  private readonly mask: number;

  constructor(private readonly spacing: AnchorSpacing) {
    this.mask = (2 ** spacing.bits - 1) >>> 0;
  }

  /** Calls `found(position, key)` for each anchor; positions are `base` + offset in `bytes`. */
  scan(bytes: Uint8Array, base: number, found: (position: number, key: number) => void): void {
    const { mask } = this;
    const minGap = this.spacing.minGap;
    let hash = this.hash;
    let since = this.sinceAnchor;
    for (let i = 0; i < bytes.length; i++) {
      hash = ((hash << 1) + GEAR[bytes[i]!]!) >>> 0;
      since++;
      if ((hash & mask) !== 0 || since < minGap || i + 1 < ANCHOR_WINDOW) continue;
      since = 0;
      found(base + i + 1, keyOf(bytes, i + 1, hash));
    }
    this.hash = hash;
    this.sinceAnchor = since;
  }
}

/** FNV-1a over the ANCHOR_WINDOW bytes before `end`, mixed with the gear hash's high bits. */
function keyOf(bytes: Uint8Array, end: number, gear: number): number {
  let h = 0x811c9dc5 ^ gear;
  for (let i = end - ANCHOR_WINDOW; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

/** The source's anchors: key -> position of its first occurrence. */
export class SourceFingerprints {
  private keys = new Uint32Array(1024);
  private positions = new Float64Array(1024);
  private count = 0;
  private table = new Int32Array(0);
  private tableMask = 0;
  private readonly scanner: AnchorScanner;

  constructor(readonly spacing: AnchorSpacing) {
    this.scanner = new AnchorScanner(spacing);
  }

  /** Adds the anchors of the next chunk of the source (chunks in order). */
  add(bytes: Uint8Array, base: number): void {
    this.scanner.scan(bytes, base, (position, key) => {
      if (this.count === this.keys.length) this.grow();
      this.keys[this.count] = key;
      this.positions[this.count] = position;
      this.count++;
    });
  }

  /** Builds the lookup table once every chunk was added; the first occurrence of a key wins. */
  seal(): void {
    let size = 1024;
    while (size < this.count * 2) size *= 2;
    this.table = new Int32Array(size).fill(-1);
    this.tableMask = size - 1;
    for (let i = 0; i < this.count; i++) {
      let slot = mix(this.keys[i]!) & this.tableMask;
      for (;;) {
        const at = this.table[slot]!;
        if (at < 0) {
          this.table[slot] = i;
          break;
        }
        if (this.keys[at] === this.keys[i]) break;
        slot = (slot + 1) & this.tableMask;
      }
    }
  }

  /** Source position of the anchor with this key, or -1. */
  lookup(key: number): number {
    if (this.count === 0) return -1;
    let slot = mix(key) & this.tableMask;
    for (;;) {
      const at = this.table[slot]!;
      if (at < 0) return -1;
      if (this.keys[at] === key) return this.positions[at]!;
      slot = (slot + 1) & this.tableMask;
    }
  }

  private grow(): void {
    const keys = new Uint32Array(this.keys.length * 2);
    keys.set(this.keys);
    const positions = new Float64Array(this.positions.length * 2);
    positions.set(this.positions);
    this.keys = keys;
    this.positions = positions;
  }
}

function mix(key: number): number {
  return Math.imul(key ^ (key >>> 16), 0x45d9f3b) >>> 0;
}

/** One contiguous part of the source. */
export interface SourceRange {
  offset: number;
  length: number;
}

/**
 * The source ranges (at most `regionBytes` in all, in source order, not overlapping) that a
 * target segment most likely comes from, given the source positions its anchors were found at
 * (`hits`, with the target offset each was at) and, failing any, its proportional place.
 *
 * Hits are grouped into clusters (hits closer than `gap` in the source); the clusters with the
 * most hits are taken first, each widened to the target span it serves, and what room is left
 * widens them all evenly: recompiled code shifts by a little everywhere, so a cluster's
 * surroundings are where the rest of its bytes are.
 */
export function chooseRegion(
  hits: readonly { source: number; target: number }[],
  segment: SourceRange,
  sourceBytes: number,
  targetBytes: number,
  regionBytes: number,
  gap: number,
): SourceRange[] {
  const room = Math.min(regionBytes, sourceBytes);
  if (room === 0) return [];
  if (hits.length === 0) {
    const center = targetBytes === 0 ? 0 : ((segment.offset + segment.length / 2) * sourceBytes) / targetBytes;
    return [clampRange(Math.floor(center - room / 2), room, sourceBytes)];
  }
  const clusters = clusterHits(hits, gap, segment);
  clusters.sort((a, b) => b.hits - a.hits || a.start - b.start);
  const chosen: { start: number; end: number }[] = [];
  let used = 0;
  for (const c of clusters) {
    if (used >= room) break;
    const length = Math.min(c.end - c.start, room - used);
    const start = Math.max(0, Math.min(c.start, sourceBytes - length));
    chosen.push({ start, end: start + length });
    used += length;
  }
  // Widen every chosen range evenly with what room is left, then merge and trim to the room.
  const spare = Math.floor((room - used) / (2 * chosen.length));
  const widened = chosen.map((c) => ({ start: Math.max(0, c.start - spare), end: Math.min(sourceBytes, c.end + spare) }));
  return mergeRanges(widened, room);
}

/** Hits grouped by source position; each cluster spans the source its segment part would cover. */
function clusterHits(hits: readonly { source: number; target: number }[], gap: number, segment: SourceRange) {
  const sorted = [...hits].sort((a, b) => a.source - b.source);
  const clusters: { start: number; end: number; hits: number }[] = [];
  let current: { start: number; end: number; hits: number } | undefined;
  for (const h of sorted) {
    // The source bytes that would line up with the whole segment through this hit, trimmed to `gap` around it.
    const start = Math.max(0, h.source - Math.min(gap, h.target - segment.offset));
    const end = h.source + Math.min(gap, segment.offset + segment.length - h.target);
    if (current && start <= current.end) {
      current.end = Math.max(current.end, end);
      current.hits++;
    } else {
      current = { start, end, hits: 1 };
      clusters.push(current);
    }
  }
  return clusters;
}

function clampRange(start: number, length: number, size: number): SourceRange {
  const offset = Math.max(0, Math.min(start, size - length));
  return { offset, length };
}

/** Sorted, merged ranges totalling at most `room` bytes (the last ones trimmed). */
function mergeRanges(ranges: { start: number; end: number }[], room: number): SourceRange[] {
  ranges.sort((a, b) => a.start - b.start);
  const merged: SourceRange[] = [];
  let total = 0;
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    let start = r.start;
    if (last && start <= last.offset + last.length) start = last.offset + last.length;
    const length = Math.min(r.end - start, room - total);
    if (length <= 0) continue;
    if (last && start === last.offset + last.length) last.length += length;
    else merged.push({ offset: start, length });
    total += length;
  }
  return merged;
}
