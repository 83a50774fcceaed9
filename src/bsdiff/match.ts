/**
 * The bsdiff matching pass (after C. Percival, "Naive differences of executable code"):
 * walk the target, find exact matches in the source through its suffix array, and grow each
 * into an *approximate* match wherever at least half the bytes agree. Approximate regions
 * are stored as bytewise differences (target - source, mostly zero in recompiled code,
 * where only embedded addresses shifted), the rest of the target verbatim as "extra" bytes.
 */
import { buildSuffixArray } from './suffix-array.js';

/** One control step: add `diffLength` bytes, copy `extraLength` bytes, then move the source cursor by `seek`. */
export interface ControlStep {
  diffLength: number;
  extraLength: number;
  seek: number;
}

export interface Delta {
  steps: ControlStep[];
  /** target - source bytes of all approximate matches, in target order */
  diff: Uint8Array;
  /** target bytes not covered by any approximate match, in target order */
  extra: Uint8Array;
}

/**
 * An exact match must beat the current alignment by more than this many bytes before the
 * encoder switches to it (a new control step costs a few bytes and breaks the zero runs).
 */
const SWITCH_MARGIN = 8;

/**
 * A match farther than NEAR_BYTES from the current alignment must also be at least this long
 * to switch to. In changed code, short exact matches (common instruction sequences) turn up all
 * over the source; each switch to one costs a control step with a long seek (~4-5 bytes
 * compressed) and breaks the diff's zero runs, for a dozen bytes covered. On the densely changed
 * 4 MB of Biome 2.6.8 -> 2.6.9's .text (transformed): 73,626 steps and a 1,042 kB patch before,
 * 15,509 steps and 902 kB with 24 (16: 918 kB, 32: 901 kB); nearby switches (an insertion of
 * a few bytes) keep the plain margin.
 */
const FAR_MATCH_BYTES = 24;
const NEAR_BYTES = 65536;

/**
 * Exact matches at least this long are taken at once. Without it, long repeats (padding,
 * tables) make the scan re-search the same region byte by byte: quadratic time.
 */
const TAKE_AT_ONCE = 4096;

/** Longest-common-prefix search of target suffixes in the source's suffix array. */
class SourceIndex {
  private readonly sa: Int32Array;
  /** start of the best match found by the last `longest()` call */
  position = 0;

  /**
   * For each two-byte prefix, the range [pairStart, pairEnd) of suffixes starting with it
   * (pairStart -1: none). Starting the binary search there saves most of its ~log2(n) steps,
   * each a cache miss into the suffix array and the source: the search runs once per target
   * byte wherever the target has no match (new code), so this is the encoder's hot loop.
   */
  private readonly pairStart = new Int32Array(65536).fill(-1);
  private readonly pairEnd = new Int32Array(65536);

  constructor(private readonly source: Uint8Array) {
    this.sa = buildSuffixArray(source);
    this.findPairRanges();
  }

  /**
   * The ranges follow from counting alone, in one pass over the source in text order
   * (reading the suffix array's order instead is a cache miss per suffix): sorted suffixes
   * that start with each two-byte key form one run, the runs in key order, and the last
   * suffix (a single byte c) sorts just before all the others that start with c.
   */
  private findPairRanges(): void {
    const source = this.source;
    const counts = new Int32Array(65536);
    for (let i = 0; i + 1 < source.length; i++) counts[(source[i]! << 8) | source[i + 1]!]!++;
    const loneKey = source.length > 0 ? source[source.length - 1]! << 8 : -1;
    let at = 0;
    for (let key = 0; key < 65536; key++) {
      if (key === loneKey) at++;
      const count = counts[key]!;
      if (count === 0) continue;
      this.pairStart[key] = at;
      at += count;
      this.pairEnd[key] = at;
    }
  }

  private commonPrefix(sourceAt: number, target: Uint8Array, targetAt: number, known: number): number {
    const source = this.source;
    const limit = Math.min(source.length - sourceAt, target.length - targetAt);
    let n = known;
    while (n < limit && source[sourceAt + n] === target[targetAt + n]) n++;
    return n;
  }

  /** Length of the longest source substring equal to a prefix of target[at..]; sets `position`. */
  longest(target: Uint8Array, at: number): number {
    const sa = this.sa;
    const source = this.source;
    if (sa.length === 0) return 0;
    let lo = 0;
    let hi = sa.length - 1;
    let known = 0;
    if (at + 1 < target.length) {
      const key = (target[at]! << 8) | target[at + 1]!;
      // With a source suffix sharing the first two bytes, the longest match is among those.
      if (this.pairStart[key]! >= 0) {
        lo = this.pairStart[key]!;
        hi = this.pairEnd[key]! - 1;
        known = 2;
      }
    }
    let lcpLo = this.commonPrefix(sa[lo]!, target, at, known);
    let lcpHi = lo === hi ? lcpLo : this.commonPrefix(sa[hi]!, target, at, known);
    // Invariant: suffix sa[lo] <= target[at..] <= suffix sa[hi], except at the array ends.
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      const start = sa[mid]!;
      // Every suffix between lo and hi shares min(lcpLo, lcpHi) bytes with the target.
      const n = this.commonPrefix(start, target, at, Math.min(lcpLo, lcpHi));
      const targetEnded = at + n === target.length;
      const sourceEnded = start + n === source.length;
      if (!targetEnded && (sourceEnded || source[start + n]! < target[at + n]!)) {
        lo = mid;
        lcpLo = n;
      } else {
        hi = mid;
        lcpHi = n;
      }
    }
    if (lcpLo >= lcpHi) {
      this.position = sa[lo]!;
      return lcpLo;
    }
    this.position = sa[hi]!;
    return lcpHi;
  }
}

/** Window length of WindowFilter; must not exceed SWITCH_MARGIN + 1 (see its use). */
const FILTER_BYTES = 8;

/**
 * A one-hash Bloom filter of every 8-byte window of the source. Where the target is new
 * (no long match anywhere), bsdiff would still binary-search the suffix array at every
 * byte; a filter miss proves that no match of 8+ bytes starts there, so the search is
 * skipped. Sized at 8+ bits per window (up to 64 MiB of bits), so false hits are ~12%.
 */
class WindowFilter {
  private readonly bits: Int32Array;
  private readonly shift: number;

  constructor(source: Uint8Array) {
    const windows = Math.max(0, source.length - FILTER_BYTES + 1);
    let log2 = 16;
    while (log2 < 29 && 2 ** log2 < windows * 8) log2++;
    this.bits = new Int32Array(2 ** (log2 - 5));
    this.shift = 32 - log2;
    if (windows === 0) return;
    let high = word(source, 0);
    let low = word(source, 4);
    for (let i = 0; ; i++) {
      this.set(this.slot(high, low));
      if (i + 1 >= windows) break;
      high = ((high << 8) | (low >>> 24)) >>> 0;
      low = ((low << 8) | source[i + FILTER_BYTES]!) >>> 0;
    }
  }

  private slot(high: number, low: number): number {
    return (Math.imul(high, 0x9e3779b1) ^ Math.imul(low ^ (high >>> 15), 0x85ebca77)) >>> this.shift;
  }

  private set(slot: number): void {
    this.bits[slot >>> 5]! |= 1 << (slot & 31);
  }

  /** False only when no source window equals target[at .. at + 8); true near the target's end. */
  mayMatch(target: Uint8Array, at: number): boolean {
    if (at + FILTER_BYTES > target.length) return true;
    const slot = this.slot(word(target, at), word(target, at + 4));
    return (this.bits[slot >>> 5]! & (1 << (slot & 31))) !== 0;
  }
}

/** Big-endian 32-bit word at `at` (matches the rolling update in WindowFilter). */
function word(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/** Computes the control steps and the diff / extra streams turning `source` into `target`. */
export function computeDelta(source: Uint8Array, target: Uint8Array): Delta {
  return new DeltaBuilder(source, target).run();
}

class DeltaBuilder {
  private readonly index: SourceIndex;
  private readonly filter: WindowFilter;
  private readonly steps: ControlStep[] = [];
  private readonly diff: Uint8Array;
  private readonly extra: Uint8Array;
  private diffLength = 0;
  private extraLength = 0;
  /** target offset up to which steps have been emitted */
  private doneTarget = 0;
  /** source offset paired with doneTarget (where the next step's diff starts, before backward growth) */
  private doneSource = 0;
  /** source offset minus target offset of the alignment in force */
  private alignment = 0;

  constructor(
    private readonly source: Uint8Array,
    private readonly target: Uint8Array,
  ) {
    this.index = new SourceIndex(source);
    this.filter = new WindowFilter(source);
    this.diff = new Uint8Array(target.length);
    this.extra = new Uint8Array(target.length);
  }

  /** 1 when target[t] equals the source byte at t under the current alignment. */
  private agreesAligned(t: number): number {
    const s = t + this.alignment;
    return s >= 0 && s < this.source.length && this.source[s] === this.target[t] ? 1 : 0;
  }

  run(): Delta {
    const target = this.target;
    let scan = 0;
    let matchLength = 0;
    let matchSource = 0;
    while (scan < target.length) {
      // Look for an exact match that beats what the current alignment already gives.
      let alignedScore = 0;
      scan += matchLength;
      let scored = scan;
      for (; scan < target.length; scan++) {
        // Below SWITCH_MARGIN + 1 bytes a match can never make the scan switch alignment:
        // skip the costly search when the filter proves there is none of FILTER_BYTES.
        matchLength = this.filter.mayMatch(target, scan) ? this.index.longest(target, scan) : 0;
        matchSource = this.index.position;
        for (; scored < scan + matchLength; scored++) alignedScore += this.agreesAligned(scored);
        const sameAsAligned = matchLength === alignedScore && matchLength !== 0;
        if (
          sameAsAligned ||
          matchLength >= TAKE_AT_ONCE ||
          (matchLength > alignedScore + SWITCH_MARGIN && this.worthSwitching(scan, matchSource, matchLength))
        ) {
          break;
        }
        // As in bsdiff: drop scan's agreement even when a zero-length match left it uncounted;
        // counting "fairly" (only if scored > scan) keeps stale alignments alive far too long
        // and made libapt-pkg's patch 6x larger.
        alignedScore -= this.agreesAligned(scan);
      }
      if (matchLength !== alignedScore || scan === target.length) {
        this.emitUpTo(scan, matchSource);
        this.alignment = matchSource - scan;
      }
    }
    return {
      steps: this.steps,
      diff: this.diff.subarray(0, this.diffLength),
      // A copy, so the target-sized scratch buffer can be freed while the sections compress.
      extra: this.extra.slice(0, this.extraLength),
    };
  }

  /** A long enough match, or one near the current alignment (see FAR_MATCH_BYTES). */
  private worthSwitching(scan: number, matchSource: number, matchLength: number): boolean {
    return matchLength >= FAR_MATCH_BYTES || Math.abs(matchSource - scan - this.alignment) <= NEAR_BYTES;
  }

  /**
   * Closes the region from doneTarget to the new match at target `scan` / source `matchSource`:
   * grows the previous alignment forwards and the new match backwards while at least half
   * the bytes agree, splits any overlap where it scores best, and emits one control step.
   */
  private emitUpTo(scan: number, matchSource: number): void {
    let forward = this.growForward(scan);
    let backward = scan < this.target.length ? this.growBackward(scan, matchSource) : 0;
    const overlap = this.doneTarget + forward - (scan - backward);
    if (overlap > 0) {
      const keep = this.bestSplit(overlap, forward, scan - backward, matchSource - backward);
      forward += keep - overlap;
      backward -= keep;
    }
    const extraStart = this.doneTarget + forward;
    const extraEnd = scan - backward;
    this.pushDiff(forward);
    this.extra.set(this.target.subarray(extraStart, extraEnd), this.extraLength);
    this.extraLength += extraEnd - extraStart;
    const nextSource = matchSource - backward;
    this.pushStep({ diffLength: forward, extraLength: extraEnd - extraStart, seek: nextSource - (this.doneSource + forward) });
    this.doneTarget = extraEnd;
    this.doneSource = nextSource;
  }

  /** Length after doneTarget (aligned with doneSource) that maximises 2*agreeing - length. */
  private growForward(scan: number): number {
    const { source, target } = this;
    let agree = 0;
    let bestScore = 0;
    let best = 0;
    for (let i = 0; this.doneTarget + i < scan && this.doneSource + i < source.length;) {
      if (source[this.doneSource + i] === target[this.doneTarget + i]) agree++;
      i++;
      if (agree * 2 - i > bestScore * 2 - best) {
        bestScore = agree;
        best = i;
      }
    }
    return best;
  }

  /** Length before `scan` (aligned with matchSource) that maximises 2*agreeing - length. */
  private growBackward(scan: number, matchSource: number): number {
    const { source, target } = this;
    let agree = 0;
    let bestScore = 0;
    let best = 0;
    for (let i = 1; scan >= this.doneTarget + i && matchSource >= i; i++) {
      if (source[matchSource - i] === target[scan - i]) agree++;
      if (agree * 2 - i > bestScore * 2 - best) {
        bestScore = agree;
        best = i;
      }
    }
    return best;
  }

  /**
   * The forward and backward growths overlap by `overlap` target bytes; returns how many of
   * them the forward side keeps, chosen where the forward alignment agrees most relative to
   * the backward one.
   */
  private bestSplit(overlap: number, forward: number, backStartTarget: number, backStartSource: number): number {
    const { source, target } = this;
    const fwdTarget = this.doneTarget + forward - overlap;
    const fwdSource = this.doneSource + forward - overlap;
    let score = 0;
    let bestScore = 0;
    let keep = 0;
    for (let i = 0; i < overlap; i++) {
      if (target[fwdTarget + i] === source[fwdSource + i]) score++;
      if (target[backStartTarget + i] === source[backStartSource + i]) score--;
      if (score > bestScore) {
        bestScore = score;
        keep = i + 1;
      }
    }
    return keep;
  }

  /** An empty step only moves the source cursor: fold it into the previous one (decoders reject empty steps after the first). */
  private pushStep(step: ControlStep): void {
    const previous = this.steps[this.steps.length - 1];
    if (previous && step.diffLength === 0 && step.extraLength === 0) previous.seek += step.seek;
    else this.steps.push(step);
  }

  private pushDiff(length: number): void {
    const { source, target, diff } = this;
    const t0 = this.doneTarget;
    const s0 = this.doneSource;
    let d = this.diffLength;
    for (let i = 0; i < length; i++) diff[d++] = (target[t0 + i]! - source[s0 + i]!) & 0xff;
    this.diffLength = d;
  }
}
