/**
 * The token scanner: reads a compressed stream (gzip members, zlib or raw deflate) and writes
 * what the decompressed bytes cannot tell about it: block boundaries and kinds, each dynamic
 * block's header bits verbatim, padding bits, and the LZ77 token shape (literal-run lengths and
 * match length/distance pairs). Literal values are not kept: the rebuild reads them from the
 * decompressed bytes. It needs no window, only the position, so memory is a few buffers.
 *
 * Token bytes, per deflate stream (varints unless said):
 *   block: kind byte (bit 0 final, bits 1-2 type)
 *     stored:  alignment padding value, LEN
 *     dynamic: header bit count, header bits (LSB first, padded to bytes), then tokens
 *     fixed:   tokens
 *   tokens: litRun, m: m = 0 ends the block, else a match of length m + 2 and distance (next) + 1
 *   after the final block: the value of the padding bits up to the byte boundary
 */
import { ByteWriter } from './bytes.js';
import { type Container, MAX_GZIP_HEADER, parseGzipHeader, parseZlibHeader, trailerLength } from './container.js';
import {
  DIST_BASE,
  DIST_EXTRA,
  DeflateFormatError,
  END_OF_BLOCK,
  FIXED_DIST_LENGTHS,
  FIXED_LITLEN_LENGTHS,
  LENGTH_BASE,
  LENGTH_EXTRA,
  decodingTable,
  readDynamicHeader,
} from './tables.js';

export interface ScannedMember {
  header: Buffer;
  trailer: Buffer;
  decompressedSize: number;
}

/** Trailing bytes after the last member kept verbatim up to this; more is not a compressor's output. */
export const MAX_TRAILING = 1 << 16;
/** Bytes of look-ahead that always hold a whole dynamic header (at most 2283 bits). */
const HEADER_LOOKAHEAD = 320;
/** Bytes of look-ahead that always hold one token (at most 48 bits). */
const TOKEN_LOOKAHEAD = 8;

const FIXED_LIT_TABLE = decodingTable(FIXED_LITLEN_LENGTHS)!;
const FIXED_DIST_TABLE = decodingTable(FIXED_DIST_LENGTHS)!;

type State = 'member-header' | 'block-header' | 'tokens' | 'stored' | 'stream-end' | 'trailer' | 'after-member' | 'trailing';

/** Feed it the compressed bytes in order; read `tokens` as it fills; `finish()` at the end. */
export class DeflateScanner {
  readonly members: ScannedMember[] = [];
  readonly tokens = new ByteWriter();
  trailing: Buffer = Buffer.alloc(0);
  compressedSize = 0;

  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private eof = false;
  private bitbuf = 0;
  private bitcnt = 0;
  private state: State;
  private header: Buffer = Buffer.alloc(0);
  private memberOut = 0;
  private finalBlock = false;
  private litTable = FIXED_LIT_TABLE;
  private distTable = FIXED_DIST_TABLE;
  private litRun = 0;
  private storedLeft = 0;
  private readonly trailingParts: Buffer[] = [];
  private trailingBytes = 0;
  /** Set while reading a dynamic header: every bit read is copied here. */
  private capture: ByteWriterBits | undefined;

  constructor(private readonly container: Container) {
    this.state = container === 'raw' ? 'block-header' : 'member-header';
  }

  feed(chunk: Buffer): void {
    this.compressedSize += chunk.length;
    this.buf = this.pos >= this.buf.length ? chunk : Buffer.concat([this.buf.subarray(this.pos), chunk]);
    this.pos = 0;
    this.run();
  }

  finish(): void {
    this.eof = true;
    this.run();
    if (this.state === 'after-member' && this.members.length > 0) return;
    if (this.state === 'trailing') {
      this.trailing = Buffer.concat(this.trailingParts);
      return;
    }
    throw new DeflateFormatError(`compressed stream is cut short (${this.state.replace('-', ' ')})`);
  }

  /** Aligned bytes available: whole bytes still in the bit buffer, then the input buffer. */
  private get alignedAvailable(): number {
    return (this.bitcnt >> 3) + this.buf.length - this.pos;
  }

  private run(): void {
    for (;;) {
      const progressed = this.step();
      if (!progressed) return;
    }
  }

  /** One unit of work; false when it needs more input (or is done). */
  private step(): boolean {
    switch (this.state) {
      case 'member-header':
        return this.memberHeader();
      case 'block-header':
        return this.blockHeader();
      case 'tokens':
        return this.scanTokens();
      case 'stored':
        return this.skipStored();
      case 'stream-end':
        return this.streamEnd();
      case 'trailer':
        return this.memberTrailer();
      case 'after-member':
        return this.afterMember();
      case 'trailing':
        return this.keepTrailing();
    }
  }

  private memberHeader(): boolean {
    const rest = this.buf.subarray(this.pos);
    const parsed = this.container === 'gzip' ? parseGzipHeader(rest, this.eof) : parseZlibHeader(rest, this.eof);
    if (parsed.kind === 'need-more') {
      if (rest.length > MAX_GZIP_HEADER) throw new DeflateFormatError('gzip header is longer than 64 KiB');
      return false;
    }
    if (parsed.kind === 'invalid') throw new DeflateFormatError(parsed.why);
    this.header = Buffer.from(rest.subarray(0, parsed.length));
    this.pos += parsed.length;
    this.memberOut = 0;
    this.state = 'block-header';
    return true;
  }

  private blockHeader(): boolean {
    if (this.alignedAvailable < HEADER_LOOKAHEAD && !this.eof) return false;
    this.finalBlock = this.bits(1) === 1;
    const type = this.bits(2);
    this.tokens.byte((this.finalBlock ? 1 : 0) | (type << 1));
    if (type === 0) return this.storedHeader();
    if (type === 1) {
      this.litTable = FIXED_LIT_TABLE;
      this.distTable = FIXED_DIST_TABLE;
    } else if (type === 2) {
      this.readDynamic();
    } else throw new DeflateFormatError('deflate block type 3 is invalid');
    this.litRun = 0;
    this.state = 'tokens';
    return true;
  }

  private readDynamic(): void {
    const capture = new ByteWriterBits();
    this.capture = capture;
    const codes = readDynamicHeader(this);
    this.capture = undefined;
    const lit = decodingTable(codes.litLengths);
    const dist = decodingTable(codes.distLengths);
    if (!lit || !dist) throw new DeflateFormatError('dynamic block has an over-subscribed code');
    this.litTable = lit;
    this.distTable = dist;
    this.tokens.varint(capture.bitCount);
    this.tokens.raw(capture.bytes());
  }

  private storedHeader(): boolean {
    this.tokens.varint(this.alignToByte());
    if (this.alignedAvailable < 4) throw new DeflateFormatError('stored block header is cut short');
    const len = this.alignedByte() | (this.alignedByte() << 8);
    const nlen = this.alignedByte() | (this.alignedByte() << 8);
    if ((len ^ 0xffff) !== nlen) throw new DeflateFormatError('stored block length check fails');
    this.tokens.varint(len);
    this.storedLeft = len;
    this.memberOut += len;
    this.state = 'stored';
    return true;
  }

  private skipStored(): boolean {
    while (this.storedLeft > 0 && this.bitcnt >= 8) {
      this.alignedByte();
      this.storedLeft--;
    }
    const n = Math.min(this.storedLeft, this.buf.length - this.pos);
    this.pos += n;
    this.storedLeft -= n;
    if (this.storedLeft > 0) {
      if (this.eof) throw new DeflateFormatError('stored block is cut short');
      return false;
    }
    this.state = this.finalBlock ? 'stream-end' : 'block-header';
    return true;
  }

  /** The hot loop: decode symbols, count literals, write matches. */
  private scanTokens(): boolean {
    const lit = this.litTable;
    const dist = this.distTable;
    const buf = this.buf;
    const out = this.tokens;
    let { pos, bitbuf, bitcnt, litRun, memberOut } = this;
    const end = buf.length;
    try {
      for (;;) {
        if (end - pos < TOKEN_LOOKAHEAD && !this.eof) return false;
        while (bitcnt < 15 && pos < end) {
          bitbuf |= buf[pos++]! << bitcnt;
          bitcnt += 8;
        }
        const entry = lit[bitbuf & 0x7fff]!;
        const len = entry & 15;
        if (len === 0) throw new DeflateFormatError('invalid literal/length code');
        if (len > bitcnt) throw new DeflateFormatError('deflate stream is cut short');
        bitbuf >>>= len;
        bitcnt -= len;
        const sym = entry >> 4;
        if (sym < END_OF_BLOCK) {
          litRun++;
          memberOut++;
          continue;
        }
        if (sym === END_OF_BLOCK) {
          out.varint(litRun);
          out.varint(0);
          litRun = 0;
          this.state = this.finalBlock ? 'stream-end' : 'block-header';
          return true;
        }
        const li = sym - 257;
        if (li >= 29) throw new DeflateFormatError('invalid length symbol');
        let length = LENGTH_BASE[li]!;
        const lx = LENGTH_EXTRA[li]!;
        if (lx > 0) {
          while (bitcnt < lx && pos < end) {
            bitbuf |= buf[pos++]! << bitcnt;
            bitcnt += 8;
          }
          if (lx > bitcnt) throw new DeflateFormatError('deflate stream is cut short');
          const extra = bitbuf & ((1 << lx) - 1);
          bitbuf >>>= lx;
          bitcnt -= lx;
          if (li === 27 && extra === 31)
            throw new DeflateFormatError('length 258 coded as symbol 284, which the rebuild does not reproduce');
          length += extra;
        }
        while (bitcnt < 15 && pos < end) {
          bitbuf |= buf[pos++]! << bitcnt;
          bitcnt += 8;
        }
        const dentry = dist[bitbuf & 0x7fff]!;
        const dlen = dentry & 15;
        if (dlen === 0) throw new DeflateFormatError('invalid distance code');
        if (dlen > bitcnt) throw new DeflateFormatError('deflate stream is cut short');
        bitbuf >>>= dlen;
        bitcnt -= dlen;
        const dsym = dentry >> 4;
        if (dsym >= 30) throw new DeflateFormatError('invalid distance symbol');
        let distance = DIST_BASE[dsym]!;
        const dx = DIST_EXTRA[dsym]!;
        if (dx > 0) {
          while (bitcnt < dx && pos < end) {
            bitbuf |= buf[pos++]! << bitcnt;
            bitcnt += 8;
          }
          if (dx > bitcnt) throw new DeflateFormatError('deflate stream is cut short');
          distance += bitbuf & ((1 << dx) - 1);
          bitbuf >>>= dx;
          bitcnt -= dx;
        }
        if (distance > memberOut) throw new DeflateFormatError('match distance reaches before the start of the stream');
        out.varint(litRun);
        out.varint(length - 2);
        out.varint(distance - 1);
        litRun = 0;
        memberOut += length;
      }
    } finally {
      this.pos = pos;
      this.bitbuf = bitbuf;
      this.bitcnt = bitcnt;
      this.litRun = litRun;
      this.memberOut = memberOut;
    }
  }

  private streamEnd(): boolean {
    this.tokens.varint(this.alignToByte());
    this.state = this.container === 'raw' ? 'after-member' : 'trailer';
    if (this.container === 'raw') this.endMember(Buffer.alloc(0));
    return true;
  }

  private memberTrailer(): boolean {
    const n = trailerLength(this.container);
    if (this.alignedAvailable < n) {
      if (this.eof) throw new DeflateFormatError('compressed stream trailer is cut short');
      return false;
    }
    const trailer = Buffer.alloc(n);
    for (let i = 0; i < n; i++) trailer[i] = this.alignedByte();
    this.endMember(trailer);
    this.state = 'after-member';
    return true;
  }

  private endMember(trailer: Buffer): void {
    this.members.push({ header: this.header, trailer, decompressedSize: this.memberOut });
  }

  /** Another gzip member follows, or whatever is left is trailing bytes kept verbatim. */
  private afterMember(): boolean {
    const avail = this.alignedAvailable;
    if (avail === 0 && this.eof) return false;
    if (this.container === 'gzip') {
      if (avail < 2 && !this.eof) return false;
      if (this.bitcnt === 0 && this.buf[this.pos] === 0x1f && this.buf[this.pos + 1] === 0x8b) {
        this.state = 'member-header';
        return true;
      }
    }
    if (avail === 0) return false;
    this.state = 'trailing';
    return true;
  }

  private keepTrailing(): boolean {
    const bytes: number[] = [];
    while (this.bitcnt >= 8) bytes.push(this.alignedByte());
    if (bytes.length) this.keep(Buffer.from(bytes));
    if (this.pos < this.buf.length) this.keep(Buffer.from(this.buf.subarray(this.pos)));
    this.pos = this.buf.length;
    return false;
  }

  private keep(part: Buffer): void {
    this.trailingBytes += part.length;
    if (this.trailingBytes > MAX_TRAILING) throw new DeflateFormatError('more than 64 KiB of data follow the compressed stream');
    this.trailingParts.push(part);
  }

  /** Drops the bits up to the next byte boundary and returns their value. */
  private alignToByte(): number {
    const pad = this.bitcnt & 7;
    const value = this.bitbuf & ((1 << pad) - 1);
    this.bitbuf >>>= pad;
    this.bitcnt -= pad;
    return value;
  }

  private alignedByte(): number {
    if (this.bitcnt >= 8) {
      const b = this.bitbuf & 255;
      this.bitbuf >>>= 8;
      this.bitcnt -= 8;
      return b;
    }
    if (this.pos >= this.buf.length) throw new DeflateFormatError('compressed stream is cut short');
    return this.buf[this.pos++]!;
  }

  /** BitSource for the dynamic header reader, copying every bit read while capturing. */
  bits(n: number): number {
    while (this.bitcnt < n) {
      if (this.pos >= this.buf.length) throw new DeflateFormatError('deflate stream is cut short');
      this.bitbuf |= this.buf[this.pos++]! << this.bitcnt;
      this.bitcnt += 8;
    }
    const v = this.bitbuf & ((1 << n) - 1);
    this.bitbuf >>>= n;
    this.bitcnt -= n;
    this.capture?.write(v, n);
    return v;
  }

  symbol(table: Int32Array): number {
    while (this.bitcnt < 15 && this.pos < this.buf.length) {
      this.bitbuf |= this.buf[this.pos++]! << this.bitcnt;
      this.bitcnt += 8;
    }
    const entry = table[this.bitbuf & 0x7fff]!;
    const len = entry & 15;
    if (len === 0) throw new DeflateFormatError('invalid code length code');
    if (len > this.bitcnt) throw new DeflateFormatError('deflate stream is cut short');
    this.capture?.write(this.bitbuf & ((1 << len) - 1), len);
    this.bitbuf >>>= len;
    this.bitcnt -= len;
    return entry >> 4;
  }
}

/** Collects bits LSB first, as deflate orders them. */
export class ByteWriterBits {
  private readonly out: number[] = [];
  private acc = 0;
  private n = 0;
  bitCount = 0;

  write(value: number, bits: number): void {
    this.acc |= value << this.n;
    this.n += bits;
    this.bitCount += bits;
    while (this.n >= 8) {
      this.out.push(this.acc & 255);
      this.acc >>>= 8;
      this.n -= 8;
    }
  }

  bytes(): Uint8Array {
    const tail = this.n > 0 ? [this.acc & ((1 << this.n) - 1)] : [];
    return Uint8Array.from([...this.out, ...tail]);
  }
}
