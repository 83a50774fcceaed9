/**
 * Reads a VCDIFF stream's framing (RFC 3284 section 4) as it passes to the decoder, for three
 * rules xdelta3 leaves to its caller:
 *
 * - every window must carry its adler32 checksum (xdelta3's VCD_ADLER32 extension), unless the
 *   caller accepts unchecked windows: a delta stripped of them decodes damaged bytes silently;
 * - no window may build more than MAX_TARGET_WINDOW bytes (16 MiB, xdelta3 3.0.x's hard window
 *   size, which native decoders enforce): a delta they refuse is refused here too;
 * - a delta using LZMA secondary compression (Debian's `xdelta3 -e` default) is refused with
 *   what to do, since this build of xdelta3 has no liblzma.
 *
 * Only the framing is read (headers, lengths); the sections are skipped. Anything else wrong is
 * the decoder's to find.
 */
import { DeltaimgError } from '../util/errors.js';
import { MAX_TARGET_WINDOW } from './options.js';

const VCD_DECOMPRESS = 0x01;
const VCD_CODETABLE = 0x02;
const VCD_APPHEADER = 0x04;
const VCD_SOURCE = 0x01;
const VCD_TARGET = 0x02;
const VCD_ADLER32 = 0x04;
/** xdelta3's secondary compressor id for LZMA (djw is 1, fgk 16). */
const LZMA = 2;

export interface ScanRules {
  /** Accept windows without an adler32 checksum (`vcdiff decode --no-checksum`). */
  allowUnchecked: boolean;
}

/** Thrown when not enough bytes are there yet to parse the next field. */
class NeedMore extends Error {}

export class VcdiffWindowScanner {
  private pending = Buffer.alloc(0);
  private skip = 0;
  private headerDone = false;
  private windows = 0;

  constructor(
    private readonly deltaName: string,
    private readonly rules: ScanRules,
  ) {}

  /** Looks at the next bytes of the delta (copied where kept: the caller reuses its buffer). */
  feed(chunk: Uint8Array): void {
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    data = this.skipIn(data);
    if (data.length === 0) return;
    let buf = this.pending.length ? Buffer.concat([this.pending, data]) : data;
    for (;;) {
      buf = this.skipIn(buf);
      if (this.skip > 0 || buf.length === 0) break;
      const used = this.parseNext(buf);
      if (used === 0) break;
      buf = buf.subarray(used);
    }
    this.pending = Buffer.from(buf);
  }

  private skipIn(data: Buffer): Buffer {
    if (this.skip === 0) return data;
    const n = Math.min(this.skip, data.length);
    this.skip -= n;
    return data.subarray(n);
  }

  /** Parses the file header or one window header at the start of `buf`; 0 when it is incomplete. */
  private parseNext(buf: Buffer): number {
    const r = new FieldReader(buf);
    try {
      if (!this.headerDone) this.parseFileHeader(r);
      else this.parseWindowHeader(r);
    } catch (err) {
      if (err instanceof NeedMore) return 0;
      throw err;
    }
    return r.pos;
  }

  private parseFileHeader(r: FieldReader): void {
    const magic = r.bytes(4);
    // Not VCDIFF at all: the decoder says so in its own words.
    if (magic[0] !== 0xd6 || magic[1] !== 0xc3 || magic[2] !== 0xc4) {
      this.headerDone = true;
      this.skip = Infinity;
      return;
    }
    const indicator = r.byte();
    if (indicator & VCD_DECOMPRESS) {
      const id = r.byte();
      if (id === LZMA) {
        throw new DeltaimgError(
          'CORRUPT_DELTA',
          `${this.deltaName} uses xdelta3's LZMA secondary compression (the default of Debian's xdelta3 -e), which deltaimg does not decode; ` +
            `make it with xdelta3 -e -S djw (or -S none), or with deltaimg vcdiff encode`,
        );
      }
    }
    // Both are skipped whole: their length comes first.
    if (indicator & VCD_CODETABLE) r.skipBytes(r.varint());
    if (indicator & VCD_APPHEADER) r.skipBytes(r.varint());
    this.headerDone = true;
  }

  private parseWindowHeader(r: FieldReader): void {
    const indicator = r.byte();
    if (indicator & (VCD_SOURCE | VCD_TARGET)) {
      r.varint(); // source segment length
      r.varint(); // source segment position
    }
    const encodingLength = r.varint();
    const encodingStart = r.pos;
    const targetLength = r.varint();
    this.windows++;
    if (targetLength > MAX_TARGET_WINDOW) {
      throw new DeltaimgError(
        'CORRUPT_DELTA',
        `${this.deltaName}: window ${this.windows} builds ${targetLength} bytes, more than xdelta3's hard window size (${MAX_TARGET_WINDOW}); native xdelta3 refuses it too`,
      );
    }
    if (!(indicator & VCD_ADLER32) && !this.rules.allowUnchecked) {
      throw new DeltaimgError(
        'CORRUPT_DELTA',
        `${this.deltaName}: window ${this.windows} has no adler32 checksum, so damage in it would go unnoticed; ` +
          `decode with --no-checksum to accept unchecked windows (xdelta3 -e -n makes them)`,
      );
    }
    // The rest of the delta encoding (sections included) is the decoder's.
    const consumedOfEncoding = r.pos - encodingStart;
    this.skip = encodingLength - consumedOfEncoding;
    if (this.skip < 0)
      throw new DeltaimgError('CORRUPT_DELTA', `${this.deltaName}: window ${this.windows} has an impossible length; the delta is damaged`);
  }
}

class FieldReader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  byte(): number {
    if (this.pos >= this.buf.length) throw new NeedMore();
    return this.buf[this.pos++]!;
  }

  bytes(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new NeedMore();
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Skips `n` bytes that must all be present (a header's code table or application header: small). */
  skipBytes(n: number): void {
    if (this.pos + n > this.buf.length) throw new NeedMore();
    this.pos += n;
  }

  /** RFC 3284's base-128 integer, most significant digit first; refused beyond 2^53. */
  varint(): number {
    let value = 0;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      value = value * 128 + (b & 0x7f);
      if (value > Number.MAX_SAFE_INTEGER) break;
      if ((b & 0x80) === 0) return value;
    }
    throw new DeltaimgError('CORRUPT_DELTA', 'the VCDIFF delta has an integer out of range; it is damaged');
  }
}
