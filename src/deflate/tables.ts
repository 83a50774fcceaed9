/**
 * RFC 1951's fixed tables and canonical Huffman codes, shared by the scanner (which decodes
 * symbols) and the encoder (which writes them again with the same code lengths).
 */

/** Base length of length symbols 257..285 and their extra bits. */
export const LENGTH_BASE = [
  3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
];
export const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
/** Base distance of distance symbols 0..29 and their extra bits. */
export const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385,
  24577,
];
export const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
/** Order in which a dynamic header lists the code length code's lengths. */
export const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

export const MAX_BITS = 15;
export const END_OF_BLOCK = 256;

/** Length symbol (257..285) of a match length 3..258, the canonical one (258 is 285, never 284+31). */
export const LENGTH_SYMBOL = new Uint16Array(259);
/** Distance symbol of distance d is DIST_SYMBOL_LOW[d-1] for d <= 256, else DIST_SYMBOL_HIGH[(d-1) >> 7]. */
export const DIST_SYMBOL_LOW = new Uint8Array(256);
export const DIST_SYMBOL_HIGH = new Uint8Array(256);

for (let s = 0; s < 29; s++) {
  const top = s === 28 ? 258 : LENGTH_BASE[s]! + (1 << LENGTH_EXTRA[s]!) - 1;
  for (let len = LENGTH_BASE[s]!; len <= top && len <= 258; len++) LENGTH_SYMBOL[len] = 257 + s;
}
LENGTH_SYMBOL[258] = 285;
for (let s = 0; s < 30; s++) {
  const first = DIST_BASE[s]!;
  const last = first + (1 << DIST_EXTRA[s]!) - 1;
  for (let d = first; d <= last; d++) {
    if (d <= 256) DIST_SYMBOL_LOW[d - 1] = s;
    else DIST_SYMBOL_HIGH[(d - 1) >> 7] = s;
  }
}

export function distanceSymbol(distance: number): number {
  return distance <= 256 ? DIST_SYMBOL_LOW[distance - 1]! : DIST_SYMBOL_HIGH[(distance - 1) >> 7]!;
}

/** The fixed block's literal/length and distance code lengths. */
export const FIXED_LITLEN_LENGTHS = new Uint8Array(288).map((_, i) => (i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8));
export const FIXED_DIST_LENGTHS = new Uint8Array(30).fill(5);

/** Canonical codes, bit-reversed for LSB-first output; undefined when the lengths over-subscribe. */
export function canonicalCodes(lengths: Uint8Array): Uint16Array | undefined {
  const count = new Uint16Array(MAX_BITS + 1);
  for (const l of lengths) count[l]!++;
  count[0] = 0;
  let left = 1;
  for (let bits = 1; bits <= MAX_BITS; bits++) {
    left = left * 2 - count[bits]!;
    if (left < 0) return undefined;
  }
  const next = new Uint16Array(MAX_BITS + 2);
  let code = 0;
  for (let bits = 1; bits <= MAX_BITS; bits++) {
    code = (code + count[bits - 1]!) << 1;
    next[bits] = code;
  }
  const codes = new Uint16Array(lengths.length);
  for (let sym = 0; sym < lengths.length; sym++) {
    const len = lengths[sym]!;
    if (len === 0) continue;
    codes[sym] = reverseBits(next[len]!++, len);
  }
  return codes;
}

function reverseBits(code: number, len: number): number {
  let r = 0;
  for (let i = 0; i < len; i++) {
    r = (r << 1) | (code & 1);
    code >>= 1;
  }
  return r;
}

/**
 * A 2^15-entry decoding table indexed by the next 15 input bits: entry = symbol << 4 | length,
 * 0 where no code matches (an incomplete code, which zlib accepts until such bits appear).
 */
export function decodingTable(lengths: Uint8Array): Int32Array | undefined {
  const codes = canonicalCodes(lengths);
  if (!codes) return undefined;
  const table = new Int32Array(1 << MAX_BITS);
  for (let sym = 0; sym < lengths.length; sym++) {
    const len = lengths[sym]!;
    if (len === 0) continue;
    const entry = (sym << 4) | len;
    for (let i = codes[sym]!; i < table.length; i += 1 << len) table[i] = entry;
  }
  return table;
}

/** Why a stream cannot be scanned or rebuilt; callers turn it into a fallback or a one-line error. */
export class DeflateFormatError extends Error {
  override readonly name = 'DeflateFormatError';
}

/** Where a dynamic header's fields are read from: the scanner's live input or a recipe's stored bits. */
export interface BitSource {
  bits(n: number): number;
  symbol(table: Int32Array): number;
}

export interface DynamicCodes {
  litLengths: Uint8Array;
  distLengths: Uint8Array;
}

/** Reads a dynamic block's header (RFC 1951 3.2.7) and checks it the way zlib's inflate does. */
export function readDynamicHeader(src: BitSource): DynamicCodes {
  const nlit = src.bits(5) + 257;
  const ndist = src.bits(5) + 1;
  const nclen = src.bits(4) + 4;
  if (nlit > 286 || ndist > 30) throw new DeflateFormatError('dynamic block header has too many codes');
  const clLengths = new Uint8Array(19);
  for (let i = 0; i < nclen; i++) clLengths[CODE_LENGTH_ORDER[i]!] = src.bits(3);
  const clTable = decodingTable(clLengths);
  if (!clTable) throw new DeflateFormatError('dynamic block has an over-subscribed code length code');
  const lengths = new Uint8Array(nlit + ndist);
  let i = 0;
  while (i < lengths.length) {
    const sym = src.symbol(clTable);
    if (sym < 16) {
      lengths[i++] = sym;
      continue;
    }
    let repeat: number;
    let value = 0;
    if (sym === 16) {
      if (i === 0) throw new DeflateFormatError('dynamic block repeats a code length before the first');
      value = lengths[i - 1]!;
      repeat = 3 + src.bits(2);
    } else if (sym === 17) repeat = 3 + src.bits(3);
    else repeat = 11 + src.bits(7);
    if (i + repeat > lengths.length) throw new DeflateFormatError('dynamic block code lengths overflow');
    lengths.fill(value, i, i + repeat);
    i += repeat;
  }
  const litLengths = lengths.slice(0, nlit);
  const distLengths = lengths.slice(nlit);
  if (litLengths[END_OF_BLOCK] === 0) throw new DeflateFormatError('dynamic block has no end-of-block code');
  return { litLengths, distLengths };
}
