/**
 * The decompressed bytes as both sides of a token recipe see them: a sliding window (32 KiB of
 * history plus look-ahead) over the stream, with hash chains of every position, so a match's
 * distance can be coded as its rank among the earlier places whose bytes match as far: a
 * compressor that takes the longest, nearest match makes that rank 0, so distances, most of a
 * token recipe, shrink to almost nothing. Scan and rebuild insert positions identically.
 */
import { StreamCursor } from './bytes.js';
import { DeflateFormatError } from './tables.js';

const WSIZE = 32768;
const HASH_BITS = 16;
/** Chain steps a rank may take; a match further down is coded by its distance. */
export const MAX_CHAIN = 128;
/** Rank codes: 0 = a literal distance follows, 1 and 2 = distances 1 and 2, rank r = r + 3. */
export const RANK_ESCAPE = 0;
export const RANK_BASE = 3;
const KEEP = WSIZE + 1024;

export class Window {
  buf = new Uint8Array(1 << 18);
  /** Absolute position of buf[0]. */
  base = 0;
  /** Absolute position just past the last byte read. */
  end = 0;
  eof = false;
  private readonly head = new Int32Array(1 << HASH_BITS).fill(-1);
  private readonly prev = new Int32Array(WSIZE).fill(-1);
  /** Positions below this are in the chains. */
  private inserted = 0;

  get insertedTo(): number {
    return this.inserted;
  }

  constructor(private readonly source: StreamCursor) {}

  /** Reads until byte `absEnd - 1` is held (or the data ends); keeps 32 KiB before `from`. */
  async ensure(absEnd: number, from: number): Promise<void> {
    while (this.end < absEnd && !this.eof) {
      await this.source.fill(1);
      if (this.source.available === 0) {
        this.eof = true;
        break;
      }
      const chunk = this.source.buf.subarray(this.source.pos, this.source.pos + Math.min(this.source.available, 1 << 16));
      this.source.pos += chunk.length;
      this.makeRoom(chunk.length, from);
      this.buf.set(chunk, this.end - this.base);
      this.end += chunk.length;
    }
  }

  private makeRoom(extra: number, from: number): void {
    if (this.end - this.base + extra <= this.buf.length) return;
    const keepFrom = Math.max(this.base, Math.min(from, this.inserted) - KEEP);
    this.buf.copyWithin(0, keepFrom - this.base, this.end - this.base);
    this.base = keepFrom;
    if (this.end - this.base + extra > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.end - this.base + extra));
      bigger.set(this.buf.subarray(0, this.end - this.base));
      this.buf = bigger;
    }
  }

  at(pos: number): number {
    return this.buf[pos - this.base]!;
  }

  /** Puts every position up to p - 3 (whose three bytes are all before p) in the chains. */
  insertBefore(p: number): void {
    const buf = this.buf;
    const base = this.base;
    for (let q = this.inserted; q <= p - 3; q++) {
      const i = q - base;
      const h = hash(buf[i]!, buf[i + 1]!, buf[i + 2]!);
      this.prev[q & (WSIZE - 1)] = this.head[h]!;
      this.head[h] = q;
    }
    if (p - 3 >= this.inserted) this.inserted = p - 2;
  }

  /**
   * The rank code of a match at `p` of `length` at `distance`: how many nearer chain positions
   * match at least `length` bytes (bytes p..p+length-1 must be held).
   */
  rankOf(p: number, length: number, distance: number): number {
    if (distance < RANK_BASE) return distance;
    const target = p - distance;
    let count = 0;
    let found = -1;
    this.walk(p, length, (q) => {
      if (q === target) {
        found = count;
        return true;
      }
      count++;
      return false;
    });
    return found < 0 ? RANK_ESCAPE : found + RANK_BASE;
  }

  /** The distance a rank code names (RANK_ESCAPE is the caller's). */
  distanceOf(p: number, length: number, code: number): number {
    if (code < RANK_BASE) return code;
    const want = code - RANK_BASE;
    let count = 0;
    let found = -1;
    this.walk(p, length, (q) => {
      if (count === want) {
        found = q;
        return true;
      }
      count++;
      return false;
    });
    if (found < 0) throw new DeflateFormatError('recipe names a match the data does not hold');
    return p - found;
  }

  /** Visits, nearest first, the chain positions within 32 KiB whose `length` bytes equal p's. */
  private walk(p: number, length: number, visit: (q: number) => boolean): void {
    const buf = this.buf;
    const base = this.base;
    const pi = p - base;
    let q = this.head[hash(buf[pi]!, buf[pi + 1]!, buf[pi + 2]!)]!;
    for (let steps = 0; q >= 0 && p - q <= WSIZE && steps < MAX_CHAIN; steps++) {
      const qi = q - base;
      let n = 0;
      while (n < length && buf[qi + n] === buf[pi + n]) n++;
      if (n === length && visit(q)) return;
      const next = this.prev[q & (WSIZE - 1)]!;
      if (next >= q) return;
      q = next;
    }
  }
}

function hash(a: number, b: number, c: number): number {
  return ((a << 8) ^ (b << 4) ^ c ^ (a >> 4)) & ((1 << HASH_BITS) - 1);
}

/** Holds bytes up to `to` (exclusive) and puts the positions before it in the chains, 64 KiB at a time. */
export async function advanceTo(win: Window, to: number): Promise<void> {
  for (;;) {
    const target = Math.min(to, Math.max(win.end, win.insertedTo) + (1 << 16));
    await win.ensure(target, win.insertedTo);
    if (win.end < target) throw new DeflateFormatError('decompressed bytes end before the recipe does');
    win.insertBefore(target);
    if (target >= to) return;
  }
}
