/** Byte-level helpers of the exact-deflate module: varints in, and a pull cursor over a stream. */

export { ByteWriter } from '../util/byte-writer.js';

/** A varint longer than this cannot hold a safe integer. */
const MAX_VARINT_BYTES = 8;

/** Reads varints and bytes from a fully buffered byte array; `fail` names what went wrong. */
export class ByteReader {
  pos = 0;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly fail: (what: string) => Error,
  ) {}

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  varint(what: string, max = Number.MAX_SAFE_INTEGER): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (this.pos >= this.bytes.length) throw this.fail(`${what} is cut short`);
      const b = this.bytes[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (value > max) throw this.fail(`${what} ${value} is larger than ${max}`);
        return value;
      }
      scale *= 0x80;
    }
    throw this.fail(`${what} is not a valid number`);
  }

  byte(what: string): number {
    if (this.pos >= this.bytes.length) throw this.fail(`${what} is cut short`);
    return this.bytes[this.pos++]!;
  }

  take(length: number, what: string): Uint8Array {
    if (length > this.remaining) throw this.fail(`${what} is cut short`);
    const out = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }
}

/**
 * Pulls bytes from an async stream with a small look-ahead buffer, so sync decoding loops run
 * on `buf[pos..]` and await only when it runs low.
 */
export class StreamCursor {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  eof = false;
  private readonly it: AsyncIterator<Buffer | Uint8Array | string>;

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>) {
    this.it = source[Symbol.asyncIterator]();
  }

  get available(): number {
    return this.buf.length - this.pos;
  }

  /** Reads until at least `want` bytes are buffered or the stream ends. */
  async fill(want: number): Promise<void> {
    while (this.available < want && !this.eof) {
      const next = await this.it.next();
      if (next.done) {
        this.eof = true;
        break;
      }
      const chunk =
        typeof next.value === 'string'
          ? Buffer.from(next.value)
          : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      this.buf = this.available === 0 ? chunk : Buffer.concat([this.buf.subarray(this.pos), chunk]);
      this.pos = 0;
    }
  }

  /** Stops reading the source early (on error or when the caller is done). */
  async close(): Promise<void> {
    await this.it.return?.();
  }
}
