/**
 * The token rebuild: re-emits one deflate stream bit for bit from the scanner's token bytes
 * (scan.ts documents them) and the decompressed bytes, which supply every literal. Streams
 * both inputs through small cursors; output leaves in 64 KiB chunks.
 */
import { StreamCursor } from './bytes.js';
import { RANK_ESCAPE, type Window, advanceTo } from './window.js';
import {
  DeflateFormatError,
  FIXED_DIST_LENGTHS,
  FIXED_LITLEN_LENGTHS,
  LENGTH_BASE,
  LENGTH_EXTRA,
  LENGTH_SYMBOL,
  DIST_BASE,
  DIST_EXTRA,
  END_OF_BLOCK,
  type BitSource,
  canonicalCodes,
  distanceSymbol,
  readDynamicHeader,
} from './tables.js';

const OUT_CHUNK = 1 << 16;
/** A dynamic header never exceeds 2283 bits (14 + 19*3 + 316*7). */
const MAX_HEADER_BITS = 2283;
/** Token bytes of one token at most: three varints. */
const TOKEN_LOOKAHEAD = 32;

interface Code {
  codes: Uint16Array;
  lengths: Uint8Array;
}

function codeOf(lengths: Uint8Array): Code {
  const codes = canonicalCodes(lengths);
  if (!codes) throw new DeflateFormatError('recipe has an over-subscribed Huffman code');
  return { codes, lengths };
}

const FIXED_LIT = codeOf(FIXED_LITLEN_LENGTHS);
const FIXED_DIST = codeOf(FIXED_DIST_LENGTHS);

/** LSB-first bit output into a 64 KiB buffer. */
class BitOut {
  buf = new Uint8Array(OUT_CHUNK + 16384);
  o = 0;
  acc = 0;
  n = 0;

  put(value: number, bits: number): void {
    this.acc |= value << this.n;
    this.n += bits;
    while (this.n >= 8) {
      this.buf[this.o++] = this.acc & 255;
      this.acc >>>= 8;
      this.n -= 8;
    }
  }

  /** Bits needed to reach the next byte boundary. */
  get padBits(): number {
    return (8 - this.n) & 7;
  }

  get full(): boolean {
    return this.o >= OUT_CHUNK;
  }

  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.o));
    this.o = 0;
    return out;
  }
}

/** Reads varints from the token cursor; the caller has filled TOKEN_LOOKAHEAD bytes or reached the end. */
function varint(c: StreamCursor): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    if (c.pos >= c.buf.length) throw new DeflateFormatError('recipe tokens are cut short');
    const b = c.buf[c.pos++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) return value;
    scale *= 0x80;
  }
  throw new DeflateFormatError('recipe tokens hold an invalid number');
}

class ArrayBits implements BitSource {
  private pos = 0;
  constructor(
    private readonly bytes: Uint8Array,
    readonly bitCount: number,
  ) {}
  get consumed(): number {
    return this.pos;
  }
  bits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v |= this.bit() << i;
    return v;
  }
  symbol(table: Int32Array): number {
    let peek = 0;
    for (let i = 0; i < 15 && this.pos + i < this.bitCount; i++) peek |= this.peekBit(i) << i;
    const entry = table[peek]!;
    const len = entry & 15;
    if (len === 0 || this.pos + len > this.bitCount) throw new DeflateFormatError('recipe has an invalid dynamic header');
    this.pos += len;
    return entry >> 4;
  }
  private bit(): number {
    const b = this.peekBit(0);
    this.pos++;
    return b;
  }
  private peekBit(offset: number): number {
    const p = this.pos + offset;
    if (p >= this.bitCount) throw new DeflateFormatError('recipe dynamic header is cut short');
    return (this.bytes[p >> 3]! >> (p & 7)) & 1;
  }
}

/**
 * Re-emits one deflate stream of `memberSize` decompressed bytes, which start at `start` in the
 * window (absolute position).
 */
export async function* encodeTokens(tokens: StreamCursor, win: Window, start: number, memberSize: number): AsyncGenerator<Buffer> {
  const out = new BitOut();
  let at = 0;
  for (let final = false; !final;) {
    await tokens.fill(TOKEN_LOOKAHEAD);
    if (tokens.available < 1) throw new DeflateFormatError('recipe tokens are cut short');
    const kind = tokens.buf[tokens.pos++]!;
    if (kind > 5) throw new DeflateFormatError(`recipe has block kind ${kind}`);
    final = (kind & 1) === 1;
    const type = kind >> 1;
    if (type === 3) throw new DeflateFormatError('recipe has block type 3');
    out.put(kind, 3);
    if (type === 0) {
      const pad = varint(tokens);
      const padBits = out.padBits;
      if (pad >= 1 << padBits) throw new DeflateFormatError('recipe padding does not fit its bits');
      out.put(pad, padBits);
      const len = varint(tokens);
      if (len > 0xffff) throw new DeflateFormatError('recipe stored block is longer than 65535');
      if (at + len > memberSize) throw new DeflateFormatError('recipe blocks hold more bytes than the member');
      out.put(len, 16);
      out.put(len ^ 0xffff, 16);
      for (let left = len; left > 0;) {
        const pos = start + at + len - left;
        const n = Math.min(left, 4096);
        await advanceTo(win, pos + n);
        out.buf.set(win.buf.subarray(pos - win.base, pos - win.base + n), out.o);
        out.o += n;
        left -= n;
        if (out.full) yield out.take();
      }
      at += len;
      continue;
    }
    let lit = FIXED_LIT;
    let dist = FIXED_DIST;
    if (type === 2) {
      const bitCount = varint(tokens);
      if (bitCount > MAX_HEADER_BITS) throw new DeflateFormatError('recipe dynamic header is too long');
      const byteCount = (bitCount + 7) >> 3;
      await tokens.fill(byteCount + TOKEN_LOOKAHEAD);
      if (tokens.available < byteCount) throw new DeflateFormatError('recipe tokens are cut short');
      const bytes = tokens.buf.subarray(tokens.pos, tokens.pos + byteCount);
      tokens.pos += byteCount;
      const src = new ArrayBits(bytes, bitCount);
      const codes = readDynamicHeader(src);
      if (src.consumed !== bitCount) throw new DeflateFormatError('recipe dynamic header has stray bits');
      for (let i = 0; i < bitCount; i += 8) out.put(bytes[i >> 3]! & ((1 << Math.min(8, bitCount - i)) - 1), Math.min(8, bitCount - i));
      lit = codeOf(codes.litLengths);
      dist = codeOf(codes.distLengths);
    }
    at = yield* encodeBlockTokens(tokens, win, start, out, lit, dist, at, memberSize);
  }
  await tokens.fill(TOKEN_LOOKAHEAD);
  const pad = varint(tokens);
  const padBits = out.padBits;
  if (pad >= 1 << padBits) throw new DeflateFormatError('recipe padding does not fit its bits');
  out.put(pad, padBits);
  if (at !== memberSize) throw new DeflateFormatError('recipe blocks hold fewer bytes than the member');
  if (out.o > 0) yield out.take();
}

async function* encodeBlockTokens(
  tokens: StreamCursor,
  win: Window,
  start: number,
  out: BitOut,
  lit: Code,
  dist: Code,
  from: number,
  memberSize: number,
): AsyncGenerator<Buffer, number> {
  const { codes: lc, lengths: ll } = lit;
  const { codes: dc, lengths: dl } = dist;
  let at = from;
  for (;;) {
    if (tokens.available < TOKEN_LOOKAHEAD) await tokens.fill(TOKEN_LOOKAHEAD);
    const run = varint(tokens);
    if (at + run > memberSize) throw new DeflateFormatError('recipe blocks hold more bytes than the member');
    for (let done = 0; done < run;) {
      const pos = start + at + done;
      // At most 4096 literals (15 bits each) between checks of the 64 KiB output buffer.
      const n = Math.min(run - done, 4096);
      await advanceTo(win, pos + n);
      const buf = win.buf;
      let i = pos - win.base;
      const stop = i + n;
      while (i < stop) {
        const b = buf[i++]!;
        const len = ll[b]!;
        if (len === 0) throw new DeflateFormatError('recipe code has no code for a literal the data holds');
        out.put(lc[b]!, len);
      }
      done += n;
      if (out.full) yield out.take();
    }
    at += run;
    if (tokens.available < TOKEN_LOOKAHEAD) await tokens.fill(TOKEN_LOOKAHEAD);
    const m = varint(tokens);
    if (m === 0) {
      if (ll[END_OF_BLOCK] === 0) throw new DeflateFormatError('recipe code has no end-of-block code');
      out.put(lc[END_OF_BLOCK]!, ll[END_OF_BLOCK]!);
      return at;
    }
    const length = m + 2;
    if (length > 258) throw new DeflateFormatError('recipe match is longer than 258');
    if (at + length > memberSize) throw new DeflateFormatError('recipe blocks hold more bytes than the member');
    const pos = start + at;
    await advanceTo(win, pos);
    await win.ensure(pos + length, pos);
    if (win.end < pos + length) throw new DeflateFormatError('decompressed bytes end before the recipe does');
    const code = varint(tokens);
    const distance = code === RANK_ESCAPE ? varint(tokens) + 1 : win.distanceOf(pos, length, code);
    if (distance > 32768 || distance > at) throw new DeflateFormatError('recipe match distance is out of range');
    const sym = LENGTH_SYMBOL[length]!;
    const dsym = distanceSymbol(distance);
    if (ll[sym] === 0 || dl[dsym] === 0) throw new DeflateFormatError('recipe code has no code for a match it holds');
    out.put(lc[sym]!, ll[sym]!);
    const lx = LENGTH_EXTRA[sym - 257]!;
    if (lx) out.put(length - LENGTH_BASE[sym - 257]!, lx);
    out.put(dc[dsym]!, dl[dsym]!);
    const dx = DIST_EXTRA[dsym]!;
    if (dx) out.put(distance - DIST_BASE[dsym]!, dx);
    at += length;
    if (out.full) yield out.take();
  }
}
