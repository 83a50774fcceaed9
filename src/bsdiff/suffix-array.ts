/**
 * Suffix array construction by induced sorting (SA-IS, Nong–Zhang–Chan 2009): linear time,
 * and in practice several times faster than prefix doubling on binaries, whose long repeats
 * (zero padding, tables) make doubling take many rounds.
 *
 * The text has a virtual sentinel after its last byte that sorts below every symbol, so the
 * result holds exactly the n suffixes of the text, in lexicographic order (a proper prefix
 * sorts before the longer suffix).
 */

/** The top level sorts bytes; recursion levels sort names of LMS substrings (Int32Array). */
type Text = Uint8Array | Int32Array;

/** Sorts all suffixes of `text`; returns their start offsets in lexicographic order. */
export function buildSuffixArray(text: Uint8Array): Int32Array {
  const sa = new Int32Array(text.length);
  if (text.length > 0) induceSort(text, sa, text.length, 256);
  return sa;
}

/** S-type: suffix i is smaller than suffix i+1. The last suffix is L-type (sentinel follows). */
function classify(text: Text, n: number): Uint8Array {
  const isS = new Uint8Array(n);
  for (let i = n - 2; i >= 0; i--) {
    const a = text[i]!;
    const b = text[i + 1]!;
    isS[i] = a < b || (a === b && isS[i + 1] === 1) ? 1 : 0;
  }
  return isS;
}

function isLms(isS: Uint8Array, i: number): boolean {
  return i > 0 && isS[i] === 1 && isS[i - 1] === 0;
}

function countSymbols(text: Text, n: number, alphabet: number): Int32Array {
  const counts = new Int32Array(alphabet);
  for (let i = 0; i < n; i++) counts[text[i]!]!++;
  return counts;
}

function bucketStarts(counts: Int32Array, into: Int32Array): Int32Array {
  let sum = 0;
  for (let c = 0; c < counts.length; c++) {
    into[c] = sum;
    sum += counts[c]!;
  }
  return into;
}

function bucketEnds(counts: Int32Array, into: Int32Array): Int32Array {
  let sum = 0;
  for (let c = 0; c < counts.length; c++) {
    sum += counts[c]!;
    into[c] = sum;
  }
  return into;
}

/**
 * Given LMS suffixes already placed at the ends of their buckets, induces the order of all
 * L-type suffixes (left to right) and then of all S-type suffixes (right to left).
 */
function induce(text: Text, sa: Int32Array, n: number, isS: Uint8Array, counts: Int32Array, bucket: Int32Array): void {
  bucketStarts(counts, bucket);
  // The last suffix is preceded (in sorted order) only by the virtual sentinel.
  sa[bucket[text[n - 1]!]!++] = n - 1;
  for (let i = 0; i < n; i++) {
    const j = sa[i]! - 1;
    if (j >= 0 && isS[j] === 0) sa[bucket[text[j]!]!++] = j;
  }
  bucketEnds(counts, bucket);
  for (let i = n - 1; i >= 0; i--) {
    const j = sa[i]! - 1;
    if (j >= 0 && isS[j] === 1) sa[--bucket[text[j]!]!] = j;
  }
}

/** True when the LMS substrings starting at a and b are equal (same symbols and types). */
function sameLmsSubstring(text: Text, n: number, isS: Uint8Array, a: number, b: number): boolean {
  for (let d = 0; ; d++) {
    if (a + d === n || b + d === n) return false;
    if (text[a + d] !== text[b + d] || isS[a + d] !== isS[b + d]) return false;
    if (d > 0 && isLms(isS, a + d)) return isLms(isS, b + d);
  }
}

function induceSort(text: Text, sa: Int32Array, n: number, alphabet: number): void {
  if (n === 1) {
    sa[0] = 0;
    return;
  }
  const isS = classify(text, n);
  const counts = countSymbols(text, n, alphabet);
  const bucket = new Int32Array(alphabet);

  // Stage 1: sort the LMS substrings by one induction pass from LMS positions in text order.
  sa.fill(-1);
  bucketEnds(counts, bucket);
  for (let i = n - 1; i > 0; i--) if (isLms(isS, i)) sa[--bucket[text[i]!]!] = i;
  induce(text, sa, n, isS, counts, bucket);

  // Compact the sorted LMS positions into sa[0..m).
  let m = 0;
  for (let i = 0; i < n; i++) {
    const p = sa[i]!;
    if (isLms(isS, p)) sa[m++] = p;
  }
  if (m === 0) {
    // No LMS position: the text is non-increasing, and induce() already sorted it fully.
    return;
  }

  // Name the LMS substrings (equal substrings share a name); names go to sa[m + p/2].
  sa.fill(-1, m);
  let names = 0;
  let previous = -1;
  for (let i = 0; i < m; i++) {
    const p = sa[i]!;
    if (previous < 0 || !sameLmsSubstring(text, n, isS, previous, p)) names++;
    previous = p;
    sa[m + (p >> 1)] = names - 1;
  }
  // Gather the names in text order into the reduced string at sa[n-m..n).
  for (let i = n - 1, j = n - 1; i >= m; i--) {
    const name = sa[i]!;
    if (name >= 0) sa[j--] = name;
  }

  // Stage 2: sort the reduced string's suffixes (recursively when names repeat).
  const reduced = sa.subarray(n - m, n);
  const reducedSa = sa.subarray(0, m);
  if (names < m) induceSort(reduced, reducedSa, m, names);
  else for (let i = 0; i < m; i++) reducedSa[reduced[i]!] = i;

  // Map reduced indexes back to text positions (reuse the reduced string's room).
  for (let i = 1, j = 0; i < n; i++) if (isLms(isS, i)) reduced[j++] = i;
  for (let i = 0; i < m; i++) reducedSa[i] = reduced[reducedSa[i]!]!;

  // Stage 3: place the sorted LMS suffixes at their bucket ends, then induce everything.
  sa.fill(-1, m);
  bucketEnds(counts, bucket);
  for (let i = m - 1; i >= 0; i--) {
    const p = sa[i]!;
    sa[i] = -1;
    sa[--bucket[text[p]!]!] = p;
  }
  induce(text, sa, n, isS, counts, bucket);
}
