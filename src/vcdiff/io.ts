/**
 * The three byte ports an xd3 job talks to: a random-access source (read by block),
 * a sequential input (target or delta) and a sequential output (delta or target).
 * Each fills or drains wasm memory directly; none holds more than one chunk.
 *
 * Files use synchronous reads and writes behind the async interface, on purpose: a job runs
 * in wasm synchronously for a whole window anyway, and blocking calls of 1-8 MiB avoid a
 * thread-pool round trip per block (which on a busy machine doubled decode wall time).
 * The exception is a big output chunk, which nothing waits for: FileWriter copies it aside
 * and writes it in the background. Pipes (stdin/stdout) stay asynchronous.
 */
import { closeSync, openSync, readSync, write } from 'node:fs';
import { openRegularSync } from '../util/regular-file.js';
import type { Readable, Writable } from 'node:stream';
import { showOutputPath } from '../util/atomic-output.js';
import { ioError } from '../util/errors.js';
import { writeAllSync } from '../util/write-all.js';

export type PathLike = string | Buffer;

/** Printable form of a path that may hold non-UTF-8 bytes. */
export const showPath = showOutputPath;

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

function fillFrom(fd: number, into: Uint8Array, position: number): number {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** A regular file opened for reading: serves as source (by offset) or as input. */
export class FileReader implements RandomAccessSource, SequentialInput {
  private offset = 0;
  private constructor(
    private readonly fd: number,
    readonly path: PathLike,
    readonly size: number,
  ) {}

  static async open(path: PathLike, role: string): Promise<FileReader> {
    try {
      const { fd, size } = openRegularSync(path);
      return new FileReader(fd, path, size);
    } catch (err) {
      throw ioError(`open ${role}`, showPath(path), err);
    }
  }

  async readAt(into: Uint8Array, position: number): Promise<number> {
    try {
      return fillFrom(this.fd, into, position);
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
    closeSync(this.fd);
  }
}

/**
 * Chunks at least this big are written in the background by FileWriter; smaller ones (most
 * files of a tree) are written at once, with no thread-pool round trip.
 */
export const BACKGROUND_WRITE_MIN = 1024 * 1024;

function writeSome(fd: number, bytes: Uint8Array, offset: number): Promise<number> {
  return new Promise((resolve, reject) => {
    write(fd, bytes, offset, bytes.length - offset, null, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

async function writeAll(fd: number, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await writeSome(fd, bytes, done);
}

/**
 * A file being written (always a fresh temp file; see files.ts). A big chunk (a decoded
 * window) is copied aside and written by libuv's thread pool while the caller goes on, so the
 * kernel's copy into the page cache overlaps the decoding of the next window; one write is in
 * flight at most (memory: one chunk), and its error surfaces at the next write or at close.
 */
export class FileWriter implements SequentialOutput {
  private closed = false;
  /** The background write, settled to its error (or null); never rejects. */
  private inFlight: Promise<unknown> | null = null;
  private spare: Buffer | null = null;

  private constructor(
    private readonly fd: number,
    readonly path: PathLike,
  ) {}

  static async create(path: PathLike): Promise<FileWriter> {
    try {
      return new FileWriter(openSync(path, 'wx', 0o644), path);
    } catch (err) {
      throw ioError('create', showPath(path), err);
    }
  }

  /** Returns once `bytes` may be reused: written, or copied aside for the background write. */
  async write(bytes: Uint8Array): Promise<void> {
    await this.settle();
    try {
      if (bytes.length < BACKGROUND_WRITE_MIN) {
        writeAllSync(this.fd, bytes);
        return;
      }
    } catch (err) {
      throw ioError('write', showPath(this.path), err);
    }
    if (!this.spare || this.spare.length < bytes.length) this.spare = Buffer.allocUnsafeSlow(bytes.length);
    const copy = this.spare.subarray(0, bytes.length);
    copy.set(bytes);
    this.inFlight = writeAll(this.fd, copy).then(
      () => null,
      (err: unknown) => err,
    );
  }

  /** Waits for the background write; throws its error. */
  private async settle(): Promise<void> {
    const pending = this.inFlight;
    if (!pending) return;
    this.inFlight = null;
    const err = await pending;
    if (err) throw ioError('write', showPath(this.path), err);
  }

  /** Idempotent: the failure path closes again after a successful close. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.settle();
    } finally {
      closeSync(this.fd);
    }
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

/** A source already in memory (e.g. a small file read once and verified by the caller). */
export class BufferSource implements RandomAccessSource {
  constructor(private readonly bytes: Uint8Array) {}

  get size(): number {
    return this.bytes.length;
  }

  async readAt(into: Uint8Array, position: number): Promise<number> {
    const n = Math.max(0, Math.min(into.length, this.bytes.length - position));
    into.set(this.bytes.subarray(position, position + n));
    return n;
  }
}

/** An input already in memory (e.g. a small delta payload). */
export class BufferInput implements SequentialInput {
  private offset = 0;
  constructor(private readonly bytes: Uint8Array) {}

  async readFull(into: Uint8Array): Promise<number> {
    const n = Math.min(into.length, this.bytes.length - this.offset);
    into.set(this.bytes.subarray(this.offset, this.offset + n));
    this.offset += n;
    return n;
  }
}

/** Output to a file descriptor the caller opened (and closes), written synchronously. */
export class FdOutput implements SequentialOutput {
  constructor(
    private readonly fd: number,
    private readonly name: string,
  ) {}

  async write(bytes: Uint8Array): Promise<void> {
    try {
      writeAllSync(this.fd, bytes);
    } catch (err) {
      throw ioError('write', this.name, err);
    }
  }
}
