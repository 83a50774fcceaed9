/** Bounded-memory file ports for bsdiff decoding: cached positioned source reads, buffered hashed output. */
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { ioError } from '../util/errors.js';
import { writeSkippingZeros } from '../util/sparse-write.js';

export async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

/** Where a patch's source bytes come from: the source file, or a segment's ranges of it. */
export interface SourceReader {
  /** Copies source[position .. position + into.length) into `into`; the caller checked the range. */
  readInto(into: Uint8Array, position: number): Promise<void>;
}

const BLOCK_BYTES = 64 * 1024;
const CACHED_BLOCKS = 32;

/**
 * The source file read by position. Diff regions are mostly short and move forward through
 * the source, so a few cached 64 KiB blocks turn many tiny reads into few large ones.
 */
export class SourceBlocks implements SourceReader {
  /** block index -> bytes; Map iteration order doubles as least-recently-used order */
  private readonly blocks = new Map<number, Buffer>();

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly shownPath: string,
  ) {}

  private async block(index: number): Promise<Buffer> {
    const hit = this.blocks.get(index);
    if (hit) {
      this.blocks.delete(index);
      this.blocks.set(index, hit);
      return hit;
    }
    const start = index * BLOCK_BYTES;
    const want = Math.min(BLOCK_BYTES, this.size - start);
    const bytes = Buffer.allocUnsafe(want);
    let done = 0;
    try {
      while (done < want) {
        const { bytesRead } = await this.fh.read(bytes, done, want - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } catch (err) {
      throw ioError('read source', this.shownPath, err);
    }
    if (done < want) throw ioError('read source', this.shownPath, Object.assign(new Error('file shrank while reading'), { code: 'EIO' }));
    if (this.blocks.size >= CACHED_BLOCKS) this.blocks.delete(this.blocks.keys().next().value!);
    this.blocks.set(index, bytes);
    return bytes;
  }

  /** Copies source[position .. position + into.length) into `into`; the caller checked the range. */
  async readInto(into: Uint8Array, position: number): Promise<void> {
    for (let done = 0; done < into.length;) {
      const at = position + done;
      const block = await this.block(Math.floor(at / BLOCK_BYTES));
      const offset = at % BLOCK_BYTES;
      const take = Math.min(block.length - offset, into.length - done);
      into.set(block.subarray(offset, offset + take), done);
      done += take;
    }
  }
}

const OUTPUT_BUFFER_BYTES = 1024 * 1024;
/**
 * Sequential output with a fixed buffer; hashes what it writes (the whole output, and the
 * current segment's part). Whole zero blocks are skipped, not written, so a sparse target
 * stays sparse (and an all-zero region costs no disk); finish() sets the final size.
 */
export class HashedOutput {
  private readonly buffer = Buffer.allocUnsafe(OUTPUT_BUFFER_BYTES);
  private used = 0;
  /** bytes of the buffer already fed to the hashes */
  private hashed = 0;
  private readonly hash: Hash = createHash('sha256');
  private segmentHash: Hash = createHash('sha256');
  written = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly shownPath: string,
  ) {}

  /** Room left in the buffer (at least 1); callers fill it through `reserve`. */
  reserve(max: number): Uint8Array {
    return this.buffer.subarray(this.used, this.used + Math.min(max, OUTPUT_BUFFER_BYTES - this.used));
  }

  /** Marks `count` bytes of the last `reserve` as filled; flushes when the buffer is full. */
  async commit(count: number): Promise<void> {
    this.used += count;
    if (this.used === OUTPUT_BUFFER_BYTES) await this.flush();
  }

  /** Starts hashing a new segment of the output separately (see segmentDigest). */
  startSegment(): void {
    this.updateHashes();
    this.segmentHash = createHash('sha256');
  }

  /** sha256 of what was committed since startSegment(). */
  segmentDigest(): Buffer {
    this.updateHashes();
    const digest = this.segmentHash.digest();
    this.segmentHash = createHash('sha256');
    return digest;
  }

  private updateHashes(): void {
    if (this.hashed === this.used) return;
    const bytes = this.buffer.subarray(this.hashed, this.used);
    this.hash.update(bytes);
    this.segmentHash.update(bytes);
    this.hashed = this.used;
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    this.updateHashes();
    try {
      await writeSkippingZeros(this.fh, this.buffer.subarray(0, this.used), this.written);
    } catch (err) {
      throw ioError('write', this.shownPath, err);
    }
    this.written += this.used;
    this.used = 0;
    this.hashed = 0;
  }

  /** Flushes and gives the file its full length (a trailing hole is not written). */
  async finish(): Promise<void> {
    await this.flush();
    try {
      await this.fh.truncate(this.written);
    } catch (err) {
      throw ioError('write', this.shownPath, err);
    }
  }

  digest(): Buffer {
    this.updateHashes();
    return this.hash.digest();
  }
}
