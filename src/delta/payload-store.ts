/**
 * Payloads of one delta directory: written to a temp name, then either kept as
 * blobs/<sha256> (deduplicated: the same bytes are stored once) or, when smaller than
 * a tar member's overhead, returned inline to be kept inside the record.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { byteLimit } from '../util/byte-limit.js';
import { hashStream } from '../util/hashing.js';
import { openRegular } from '../util/regular-file.js';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { brotliDecompressSync, createBrotliDecompress } from 'node:zlib';
import { lstat, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hashSmallFileSync, readWholeFileSync, Scratch, SYNC_COPY_MAX_BYTES } from './file-codecs.js';
import { join } from 'node:path';
import { DeltaimgError, ioError } from '../util/errors.js';
import { BLOBS_DIR, PACK_MAX_BYTES, type PackedPayload, type Payload } from './format.js';
import { INLINE_MAX_BYTES } from './records.js';

export { INLINE_MAX_BYTES } from './records.js';

export class PayloadWriter {
  readonly blobDir: string;
  private counter = 0;
  private readonly tag = randomBytes(4).toString('hex');

  constructor(deltaDir: string) {
    this.blobDir = join(deltaDir, BLOBS_DIR);
  }

  /** A fresh path in the blob directory for an encoder to write to. */
  tempPath(): string {
    return join(this.blobDir, `.tmp-${this.tag}-${this.counter++}`);
  }

  /** Turns a finished temp file into a payload; the temp file is gone afterwards. */
  async keep(tempPath: string, sha256: string, bytes: number): Promise<Payload> {
    if (bytes <= INLINE_MAX_BYTES) {
      const inline = await readFile(tempPath);
      await unlink(tempPath);
      return { inline };
    }
    return this.keepBlob(tempPath, sha256);
  }

  /** Like keep, but always a blob, however small (the pack: the header names it by its blob). */
  async keepBlob(tempPath: string, sha256: string): Promise<{ blob: string }> {
    const final = join(this.blobDir, sha256);
    if (await exists(final)) await unlink(tempPath);
    else await rename(tempPath, final);
    return { blob: sha256 };
  }

  async discard(tempPath: string): Promise<void> {
    await unlink(tempPath).catch(() => {});
  }
}

/** Payloads of an existing delta directory, verified before use. */
export class PayloadReader {
  private readonly scratch = new Scratch();
  /** The decompressed pack (loadPack); packed payloads are slices of it. */
  private pack: Buffer | undefined;

  constructor(
    private readonly deltaDir: string,
    private readonly scratchDir: string,
  ) {}

  /**
   * Reads the header's pack: its blob checked against its name, decompressed to exactly the size
   * the header gives (at most PACK_MAX_BYTES, so a hostile pack cannot take more memory).
   */
  async loadPack(pack: { blob: string; bytes: number }): Promise<void> {
    const forPath = 'the pack';
    const stored = this.readBlobSync(pack.blob, forPath, PACK_MAX_BYTES + PACK_MAX_BYTES / 8);
    if (stored === null)
      throw new DeltaimgError('CORRUPT_DELTA', `the pack (blob ${pack.blob}) is larger than a pack can be; the delta is damaged`);
    let bytes: Buffer;
    try {
      bytes = brotliDecompressSync(stored, { maxOutputLength: Math.max(1, pack.bytes) });
    } catch (err) {
      throw new DeltaimgError(
        'CORRUPT_DELTA',
        `the pack (blob ${pack.blob}) cannot be decompressed (${(err as Error).message}); the delta is damaged`,
      );
    }
    if (bytes.length !== pack.bytes) {
      throw new DeltaimgError(
        'CORRUPT_DELTA',
        `the pack holds ${bytes.length} bytes, not the ${pack.bytes} its header gives; the delta is damaged`,
      );
    }
    this.pack = bytes;
  }

  /** The bytes of an inline or packed payload, undefined for a blob. */
  inMemory(payload: Payload, forPath: string): Buffer | undefined {
    if ('inline' in payload) return payload.inline;
    if ('packed' in payload) return this.packSlice(payload.packed, forPath);
    return undefined;
  }

  private packSlice({ at, size }: PackedPayload, forPath: string): Buffer {
    if (!this.pack || at + size > this.pack.length) {
      throw new DeltaimgError(
        'CORRUPT_DELTA',
        `payload for ${forPath} lies outside the pack (${at}+${size} of ${this.pack?.length ?? 0} bytes); the delta is damaged`,
      );
    }
    return this.pack.subarray(at, at + size);
  }

  blobPath(sha256: string): string {
    return join(this.deltaDir, BLOBS_DIR, sha256);
  }

  /** A fresh path in the scratch dir (removed with it), for a decoder's intermediate files. */
  scratchPath(prefix: string): string {
    return join(this.scratchDir, `${prefix}-${randomBytes(8).toString('hex')}`);
  }

  /**
   * A file path holding the payload's bytes, checked against its name's sha256.
   * Inline and packed payloads are written to the scratch dir; `release` removes such copies.
   */
  async materialize(
    payload: Payload,
    forPath: string,
    opts: { brotli?: { maxBytes: number } } = {},
  ): Promise<{ path: string; release(): Promise<void> }> {
    if ('blob' in payload) await this.verifyBlob(payload.blob, forPath);
    if (!opts.brotli && 'blob' in payload) return { path: this.blobPath(payload.blob), release: async () => {} };
    const path = this.scratchPath('payload');
    const input = 'blob' in payload ? await this.openBlob(payload.blob, forPath) : Readable.from([this.inMemory(payload, forPath)!]);
    try {
      if (opts.brotli) {
        const limit = opts.brotli.maxBytes;
        await pipeline(
          input,
          createBrotliDecompress(),
          byteLimit(limit, () => expandsBeyond(forPath, limit)),
          createWriteStream(path, { flags: 'wx' }),
        );
      } else {
        await pipeline(input, createWriteStream(path, { flags: 'wx' }));
      }
    } catch (err) {
      await unlink(path).catch(() => {});
      if (err instanceof DeltaimgError) throw err;
      throw new DeltaimgError(
        'CORRUPT_DELTA',
        `payload for ${forPath} cannot be decompressed (${(err as Error).message}); the delta is damaged`,
      );
    }
    return { path, release: () => unlink(path).catch(() => {}) };
  }

  /**
   * The payload's bytes in memory (blob checked against its name, brotli undone), read once;
   * null when the blob or the decompressed bytes would exceed `maxBytes` (use materialize).
   * A blob stored as is comes back in a reused buffer: valid until the next call.
   */
  readSmallSync(payload: Payload, forPath: string, opts: { brotli: boolean; maxBytes: number; declaredBytes?: number }): Buffer | null {
    const stored = 'blob' in payload ? this.readBlobSync(payload.blob, forPath, opts.maxBytes) : this.inMemory(payload, forPath)!;
    if (stored !== null && stored.length > opts.maxBytes) return null;
    if (stored === null || !opts.brotli) return stored;
    const declared = opts.declaredBytes;
    try {
      return brotliDecompressSync(stored, { maxOutputLength: declared === undefined ? opts.maxBytes : Math.max(1, declared) });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        if (declared !== undefined) throw expandsBeyond(forPath, declared);
        return null;
      }
      throw new DeltaimgError(
        'CORRUPT_DELTA',
        `payload for ${forPath} cannot be decompressed (${(err as Error).message}); the delta is damaged`,
      );
    }
  }

  private readBlobSync(sha256: string, forPath: string, maxBytes: number): Buffer | null {
    const path = this.blobPath(sha256);
    let bytes: Buffer | null;
    try {
      bytes = readWholeFileSync(path, maxBytes, this.scratch);
    } catch (err) {
      throw blobReadError(sha256, forPath, path, err);
    }
    if (bytes === null) return null;
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== sha256) throw damagedBlob(sha256, forPath, actual);
    return bytes;
  }

  private async openBlob(sha256: string, forPath: string): Promise<Readable> {
    const path = this.blobPath(sha256);
    return openBlobStream(path).catch((err: unknown) => {
      throw blobReadError(sha256, forPath, path, err);
    });
  }

  async verifyBlob(sha256: string, forPath: string): Promise<void> {
    const path = this.blobPath(sha256);
    let actual: string;
    try {
      actual =
        (await stat(path)).size <= SYNC_COPY_MAX_BYTES
          ? hashSmallFileSync(path).sha256
          : (await hashStream(await openBlobStream(path))).sha256;
    } catch (err) {
      throw blobReadError(sha256, forPath, path, err);
    }
    if (actual !== sha256) throw damagedBlob(sha256, forPath, actual);
  }
}

/** A blob's bytes, streamed, from a regular file opened without blocking (a FIFO there must not hang apply). */
async function openBlobStream(path: string): Promise<Readable> {
  const { fh } = await openRegular(path);
  return fh.createReadStream();
}

function expandsBeyond(forPath: string, maxBytes: number): DeltaimgError {
  return new DeltaimgError(
    'CORRUPT_DELTA',
    `payload for ${forPath} decompresses to more than the ${maxBytes} bytes it may have; the delta is damaged`,
  );
}

function blobReadError(sha256: string, forPath: string, path: string, err: unknown): DeltaimgError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    return new DeltaimgError('CORRUPT_DELTA', `blob ${sha256} for ${forPath} is missing from the delta; copy the delta again`);
  }
  if (code === 'EINVAL' || code === 'ELOOP') {
    return new DeltaimgError('CORRUPT_DELTA', `blob ${sha256} for ${forPath} is not a regular file; copy the delta again`);
  }
  return ioError('read', path, err);
}

function damagedBlob(sha256: string, forPath: string, actual: string): DeltaimgError {
  return new DeltaimgError('CORRUPT_DELTA', `blob ${sha256} for ${forPath} is damaged (sha256 ${actual}); copy the delta again`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}
