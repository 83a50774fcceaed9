/**
 * The three byte ports an xd3 job talks to: a random-access source (read by block),
 * a sequential input (target or delta) and a sequential output (delta or target).
 * Each fills or drains wasm memory directly; none holds more than one chunk.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { ioError } from '../util/errors.js';

export type PathLike = string | Buffer;

/** Printable form of a path that may hold non-UTF-8 bytes. */
export function showPath(path: PathLike): string {
  return typeof path === 'string' ? path : path.toString('latin1');
}

export interface RandomAccessSource {
  readonly size: number;
  /** Fills `into` from `position` (short only at end of file); returns the bytes read. */
  readAt(into: Uint8Array, position: number): Promise<number>;
}

export interface SequentialInput {
  /** Fills `into` as far as the input allows; fewer bytes than asked means end of input. */
  readFull(into: Uint8Array): Promise<number>;
}

export interface SequentialOutput {
  /** Writes all of `bytes`; the caller may reuse the memory once this resolves. */
  write(bytes: Uint8Array): Promise<void>;
}

async function fillFrom(fh: FileHandle, into: Uint8Array, position: number | null): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position === null ? null : position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** A regular file opened for reading: serves as source (by offset) or as input. */
export class FileReader implements RandomAccessSource, SequentialInput {
  private offset = 0;
  private constructor(
    private readonly fh: FileHandle,
    readonly path: PathLike,
    readonly size: number,
  ) {}

  static async open(path: PathLike, role: string): Promise<FileReader> {
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'r');
      const st = await fh.stat();
      if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EINVAL' });
      return new FileReader(fh, path, st.size);
    } catch (err) {
      await fh?.close();
      throw ioError(`open ${role}`, showPath(path), err);
    }
  }

  async readAt(into: Uint8Array, position: number): Promise<number> {
    try {
      return await fillFrom(this.fh, into, position);
    } catch (err) {
      throw ioError('read', showPath(this.path), err);
    }
  }

  async readFull(into: Uint8Array): Promise<number> {
    const n = await this.readAt(into, this.offset);
    this.offset += n;
    return n;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** A file being written (always a fresh temp file; see files.ts). */
export class FileWriter implements SequentialOutput {
  private constructor(
    private readonly fh: FileHandle,
    readonly path: PathLike,
  ) {}

  static async create(path: PathLike): Promise<FileWriter> {
    try {
      return new FileWriter(await open(path, 'wx', 0o644), path);
    } catch (err) {
      throw ioError('create', showPath(path), err);
    }
  }

  async write(bytes: Uint8Array): Promise<void> {
    try {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await this.fh.write(bytes, done, bytes.length - done);
        done += bytesWritten;
      }
    } catch (err) {
      throw ioError('write', showPath(this.path), err);
    }
  }

  async sync(): Promise<void> {
    await this.fh.datasync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Adapts a Readable (e.g. stdin) to readFull(), keeping at most one chunk aside. */
export class StreamInput implements SequentialInput {
  private readonly chunks: AsyncIterator<Buffer | string>;
  private leftover: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(
    stream: Readable,
    private readonly name: string,
  ) {
    this.chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  }

  async readFull(into: Uint8Array): Promise<number> {
    let done = 0;
    while (done < into.length) {
      if (this.leftover.length === 0 && !(await this.pull())) break;
      const n = Math.min(this.leftover.length, into.length - done);
      into.set(this.leftover.subarray(0, n), done);
      this.leftover = this.leftover.subarray(n);
      done += n;
    }
    return done;
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    let next: IteratorResult<Buffer | string>;
    try {
      next = await this.chunks.next();
    } catch (err) {
      throw ioError('read', this.name, err);
    }
    if (next.done) {
      this.ended = true;
      return false;
    }
    this.leftover = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    return true;
  }
}

/** Adapts a Writable (e.g. stdout), copying out of wasm memory and honouring backpressure. */
export class StreamOutput implements SequentialOutput {
  constructor(
    private readonly stream: Writable,
    private readonly name: string,
  ) {}

  write(bytes: Uint8Array): Promise<void> {
    const copy = Buffer.from(bytes);
    return new Promise((resolve, reject) => {
      const onError = (err: unknown) => reject(ioError('write', this.name, err));
      this.stream.once('error', onError);
      this.stream.write(copy, (err) => {
        this.stream.off('error', onError);
        if (err) reject(ioError('write', this.name, err));
        else resolve();
      });
    });
  }
}
