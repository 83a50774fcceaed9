/**
 * One brotli-compressed patch section, streamed: read by position from the patch file,
 * decompressed chunk by chunk, and held to the raw length the header declares, so a
 * damaged section can neither run short nor inflate without bound.
 */
import { createReadStream } from 'node:fs';
import { Readable, pipeline } from 'node:stream';
import { createBrotliDecompress } from 'node:zlib';
import { DeltaimgError, ioError } from '../util/errors.js';
import { MAX_VARINT_BYTES, type SectionInfo, type SectionName } from './format.js';
import type { PathLike } from './paths.js';

const EMPTY = Buffer.alloc(0);

export class SectionReader {
  private chunk: Buffer = EMPTY;
  private offset = 0;
  /** raw bytes handed out so far */
  private consumed = 0;
  private readonly stream: Readable;
  private readonly chunks: AsyncIterator<Buffer>;

  constructor(
    patchPath: PathLike,
    start: number,
    private readonly info: SectionInfo,
    private readonly name: SectionName,
    private readonly shownPath: string,
  ) {
    const stored =
      info.storedLength > 0 ? createReadStream(patchPath, { start, end: start + info.storedLength - 1 }) : Readable.from([] as Buffer[]);
    this.stream = pipeline(stored, createBrotliDecompress(), () => undefined);
    this.chunks = this.stream[Symbol.asyncIterator]();
  }

  get remaining(): number {
    return this.info.rawLength - this.consumed;
  }

  private corrupt(why: string): DeltaimgError {
    return new DeltaimgError('CORRUPT_DELTA', `bsdiff patch ${this.shownPath} is damaged: ${this.name} section ${why}`);
  }

  private async nextChunk(): Promise<Buffer | null> {
    try {
      const next = await this.chunks.next();
      return next.done ? null : (next.value as Buffer);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e?.syscall) throw ioError('read patch', this.shownPath, err);
      throw this.corrupt(`does not decompress (${e?.message ?? String(err)})`);
    }
  }

  /** Makes at least one unread byte available in `chunk`, or throws if the section ended. */
  private async fill(): Promise<void> {
    while (this.offset === this.chunk.length) {
      const next = await this.nextChunk();
      if (next === null) throw this.corrupt(`ends after ${this.consumed} of ${this.info.rawLength} bytes`);
      this.chunk = next;
      this.offset = 0;
    }
  }

  /** Returns the next 1..max bytes (a view valid until the next call); max <= remaining. */
  async take(max: number): Promise<Buffer> {
    if (max > this.remaining) throw this.corrupt(`is shorter than the control steps need`);
    await this.fill();
    const n = Math.min(max, this.chunk.length - this.offset);
    const view = this.chunk.subarray(this.offset, this.offset + n);
    this.offset += n;
    this.consumed += n;
    return view;
  }

  /** The next byte: synchronously while the current chunk lasts (the sparse diff's hot path). */
  byte(): number | Promise<number> {
    if (this.offset < this.chunk.length && this.consumed < this.info.rawLength) {
      this.consumed++;
      return this.chunk[this.offset++]!;
    }
    return this.slowByte();
  }

  private async slowByte(): Promise<number> {
    if (this.remaining === 0) throw this.corrupt('is shorter than the control steps need');
    await this.fill();
    this.consumed++;
    return this.chunk[this.offset++]!;
  }

  /** Reads one unsigned LEB128 varint. */
  async varint(): Promise<number> {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      let byte = this.byte();
      if (typeof byte !== 'number') byte = await byte;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (value > Number.MAX_SAFE_INTEGER) break;
        return value;
      }
      scale *= 0x80;
    }
    throw this.corrupt('holds an oversized number');
  }

  /** Checks that every declared byte was used and the stream holds nothing more. */
  async finish(): Promise<void> {
    if (this.remaining !== 0) throw this.corrupt(`has ${this.remaining} unused bytes`);
    if (this.offset < this.chunk.length) throw this.corrupt('is longer than declared');
    for (let next = await this.nextChunk(); next !== null; next = await this.nextChunk()) {
      if (next.length > 0) throw this.corrupt('is longer than declared');
    }
  }

  destroy(): void {
    this.stream.destroy();
  }
}
