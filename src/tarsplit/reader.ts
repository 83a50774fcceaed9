/**
 * Pull-style reading of a byte stream in exact amounts, hashing every byte that goes by, so
 * the tar parser can ask for "one 512-byte block" or "the next N payload bytes as they come"
 * without ever holding more than one incoming chunk (plus a block) in memory.
 */
import { createHash, type Hash } from 'node:crypto';

export class ByteReader {
  private readonly source: AsyncIterator<unknown>;
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;
  private readonly hash: Hash = createHash('sha256');
  /** Bytes pulled from the stream so far (all of them are hashed). */
  total = 0;

  constructor(stream: NodeJS.ReadableStream) {
    this.source = (stream as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  }

  /** Loads the next chunk into `pending`; false at the end of the stream. */
  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.source.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value, 'latin1') : (next.value as Buffer);
    this.hash.update(chunk);
    this.total += chunk.length;
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    return true;
  }

  /** Exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    while (this.pending.length < n && (await this.fill()));
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(out.length);
    return out;
  }

  /** The next n bytes as they arrive, in pieces (fewer in total only at the end of the stream). */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.pending.length === 0 && !(await this.fill())) return;
      const piece = this.pending.subarray(0, Math.min(left, this.pending.length));
      this.pending = this.pending.subarray(piece.length);
      left -= piece.length;
      yield piece;
    }
  }

  /** Everything left, in pieces. */
  async *rest(): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.pending.length === 0 && !(await this.fill())) return;
      const piece = this.pending;
      this.pending = Buffer.alloc(0);
      yield piece;
    }
  }

  /** "sha256:<hex>" of every byte read; call once, after the stream is drained. */
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}
