/**
 * Whole-file transforms used by encode and apply, each a single streaming pass that
 * also hashes what it writes (encode) or what it restores (apply).
 */
import { createHash } from 'node:crypto';
import { closeSync, constants as fsc, createReadStream, createWriteStream, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { openRegular, openRegularSync } from '../util/regular-file.js';
import { availableParallelism, constants as osc } from 'node:os';
import { fsext, type CopyFilesJob, type CopyFilesRow } from '../tree/fsext.js';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { brotliCompressSync, constants as zc, createBrotliCompress, createBrotliDecompress } from 'node:zlib';
import { byteLimit } from '../util/byte-limit.js';
import { hashingTap } from '../util/hashing.js';
import { sparseFileSink } from '../util/sparse-write.js';
import { writeAllSync } from '../util/write-all.js';

export interface Written {
  bytes: number;
  sha256: string;
}

/**
 * Peak memory of one brotliFile (or a brotli decoder's window on restore) for an input of
 * `size` bytes: the window (up to 16 MiB) and the encoder's tables and buffers around it.
 * Measured with /usr/bin/time -v on a 48 MB file: 102 MB at quality 5, 119 MB at quality 9.
 */
export function brotliMemory(size: number): number {
  return 8 * 1024 * 1024 + 7 * Math.min(size, 16 * 1024 * 1024);
}

/** Brotli quality 11 is worth its time on files up to this size; larger ones get 9. */
const BROTLI_MAX_QUALITY_BYTES = 1 << 20;
/**
 * Up to this quality a small file is compressed right here, synchronously and in memory
 * (~1 ms per 100 KiB at quality 5): diff makes hundreds of such quick estimates, and a stream
 * pipeline each (open, threadpool round trips, close) cost more than the compression.
 */
const SYNC_BROTLI_MAX_QUALITY = 6;

/** Compresses `input` into the new file `output`; returns the compressed size and sha256. */
export async function brotliFile(input: string | Buffer, size: number, output: string, quality?: number): Promise<Written> {
  const params = {
    [zc.BROTLI_PARAM_QUALITY]: quality ?? (size <= BROTLI_MAX_QUALITY_BYTES ? 11 : 9),
    [zc.BROTLI_PARAM_LGWIN]: windowBitsFor(size),
    [zc.BROTLI_PARAM_SIZE_HINT]: Math.min(size, 2 ** 30),
  };
  if (params[zc.BROTLI_PARAM_QUALITY]! <= SYNC_BROTLI_MAX_QUALITY && size <= SYNC_COPY_MAX_BYTES) {
    const data = readWholeFileSync(input, SYNC_COPY_MAX_BYTES, brotliInputs);
    if (data !== null) return writeSmallFileSync(brotliCompressSync(data, { params }), output);
  }
  const counter = hashingCounter();
  await pipeline(createReadStream(input), createBrotliCompress({ params }), counter.stream, createWriteStream(output, { flags: 'wx' }));
  return counter.result();
}

/**
 * The smallest brotli window that holds the whole input (16 MiB at most): a larger one finds
 * nothing more, and its tables cost allocation and page faults on every one of many small files.
 */
function windowBitsFor(size: number): number {
  let bits = zc.BROTLI_MIN_WINDOW_BITS;
  while (bits < BROTLI_MAX_WINDOW_BITS && 2 ** bits - 16 < size) bits++;
  return bits;
}

const BROTLI_MAX_WINDOW_BITS = 24;

/**
 * Streams `input` (optionally through brotli decompression, or another stage `through`) into a
 * new file at `output`, refusing more than `maxBytes`. With `sparse`, whole zero blocks are left
 * as holes (a file bsdiff restored sparse keeps its holes on the way through a transform).
 */
export async function restoreFile(
  input: Readable,
  output: Buffer,
  opts: { brotli: boolean; maxBytes: number; through?: Transform; sparse?: boolean },
): Promise<Written> {
  const counter = hashingCounter();
  const fh = await open(output, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  const sink = opts.sparse ? sparseFileSink(fh) : fh.createWriteStream({ autoClose: false });
  try {
    const limit = byteLimit(opts.maxBytes, () =>
      Object.assign(new Error(`output exceeds the ${opts.maxBytes} bytes declared`), { code: 'EXCEEDS_DECLARED_SIZE' }),
    );
    const stage = opts.brotli ? createBrotliDecompress() : opts.through;
    if (stage) await pipeline(input, stage, limit, counter.stream, sink);
    else await pipeline(input, limit, counter.stream, sink);
  } finally {
    // A stream that does not close its handle still holds it: fh.close() would wait on it forever.
    sink.destroy();
    await fh.close();
  }
  return counter.result();
}

/** Opens a source file for reading, refusing a symlink in the last component. */
export async function openSourceStream(path: Buffer): Promise<Readable> {
  const { fh } = await openRegular(path, { noFollow: true });
  return fh.createReadStream({ highWaterMark: STREAM_CHUNK_BYTES });
}

/** Sources are hashed in 1 MiB reads: 16x fewer round trips than the stream default. */
const STREAM_CHUNK_BYTES = 1024 * 1024;

/** A pass-through that hashes what it passes; `result()` once the pipeline has finished. */
function hashingCounter(): { stream: Transform; result(): Written } {
  const tap = hashingTap();
  return { stream: tap.stream, result: () => ({ bytes: tap.bytes(), sha256: tap.sha256Hex() }) };
}

/** Files up to this size are copied with synchronous calls (see copySmallFileSync). */
export const SYNC_COPY_MAX_BYTES = 1 << 20;
const syncBuffer = Buffer.allocUnsafe(256 * 1024);

/**
 * Copies a small source file into a new output file, hashing it on the way, with
 * synchronous calls: for the thousands of small files of a root filesystem, the async
 * API's threadpool round trips cost far more than the copy. The source is opened with
 * O_NOFOLLOW and must be a regular file; the output is created with O_EXCL | O_NOFOLLOW.
 */
export function copySmallFileSync(source: Buffer, output: Buffer): Written {
  const input = openRegularSync(source, { noFollow: true }).fd;
  let out: number | undefined;
  try {
    out = openSync(output, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    const hash = createHash('sha256');
    let bytes = 0;
    for (;;) {
      const n = readSync(input, syncBuffer, 0, syncBuffer.length, null);
      if (n === 0) break;
      const chunk = syncBuffer.subarray(0, n);
      hash.update(chunk);
      writeAllSync(out, chunk);
      bytes += n;
    }
    return { bytes, sha256: hash.digest('hex') };
  } finally {
    closeSync(input);
    if (out !== undefined) closeSync(out);
  }
}

/** Writes a small in-memory payload (an inline raw file, a compressed one) into a new output file. */
export function writeSmallFileSync(data: Buffer, output: Buffer | string): Written {
  const out = openSync(output, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  try {
    writeAllSync(out, data);
  } finally {
    closeSync(out);
  }
  return { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}

/** sha256 of a small file with synchronous reads (O_NOFOLLOW); see copySmallFileSync for why. */
export function hashSmallFileSync(path: Buffer | string): Written {
  const { fd } = openRegularSync(path, { noFollow: true });
  try {
    const hash = createHash('sha256');
    let bytes = 0;
    for (;;) {
      const n = readSync(fd, syncBuffer, 0, syncBuffer.length, null);
      if (n === 0) break;
      hash.update(syncBuffer.subarray(0, n));
      bytes += n;
    }
    return { bytes, sha256: hash.digest('hex') };
  } finally {
    closeSync(fd);
  }
}

/**
 * A regular file's bytes (opened with O_NOFOLLOW), or null if it has more than `maxBytes`.
 * The caller hashes these very bytes and uses them, so a file changing meanwhile cannot
 * slip unchecked bytes in.
 */
export function readWholeFileSync(path: Buffer | string, maxBytes: number, scratch?: Scratch): Buffer | null {
  const { fd, size } = openRegularSync(path, { noFollow: true });
  try {
    if (size > maxBytes) return null;
    const bytes = scratch ? scratch.take(size) : Buffer.allocUnsafe(size);
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(fd, bytes, done, bytes.length - done, null);
      if (n === 0) break;
      done += n;
    }
    return done === bytes.length ? bytes : bytes.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

/**
 * One reusable buffer for whole-file reads that are used and dropped before the next one:
 * thousands of fresh multi-KiB buffers would cost page faults and garbage collections.
 * Each take() invalidates what the previous one returned.
 */
export class Scratch {
  private buffer = Buffer.allocUnsafe(0);

  take(size: number): Buffer {
    if (size > this.buffer.length) {
      let capacity = Math.max(64 * 1024, this.buffer.length);
      while (capacity < size) capacity *= 2;
      this.buffer = Buffer.allocUnsafe(capacity);
    }
    return this.buffer.subarray(0, size);
  }
}

/** Inputs of brotliFile's in-memory path, each dropped before the next. */
const brotliInputs = new Scratch();

export interface NativeCopyJob {
  source: Buffer;
  output: Buffer;
  uid: number;
  gid: number;
  mode: number;
  mtimeNs: bigint;
}

/**
 * Where a native copy stopped: 'done', or the step that failed with `code` (an errno name).
 * `chownCode` is set when only the owner could not be restored (the copy went on).
 */
export type NativeCopyResult =
  | { step: 'done'; bytes: number; sha256: string; chownCode: string | null }
  | { step: 'open-source' | 'not-a-file' | 'create' | 'read' | 'write' | 'chmod' | 'utimes' | 'hash'; code: string };

const NATIVE_STEPS = ['done', 'open-source', 'not-a-file', 'create', 'read', 'write', 'chmod', 'utimes', 'hash'] as const;

/**
 * Copies regular files on background threads of the fsext addon: content (hashed on the
 * way), then owner, mode and ns mtime on the new descriptor. Sources are opened O_NOFOLLOW,
 * outputs created O_EXCL | O_NOFOLLOW. The files go in batches, one batch per core in flight
 * (one thread for 100k small files left a core idle: their cost is syscalls, which run in
 * parallel). Null when the addon cannot (an older build, or no OpenSSL in this node binary):
 * the caller then copies in JavaScript. Results are in the order of `jobs`.
 */
export function copyFilesNative(jobs: readonly NativeCopyJob[]): Promise<NativeCopyResult[]> | null {
  const addon = fsext();
  const copyFiles = addon.copyFiles?.bind(addon);
  if (copyFiles === undefined) return null;
  const wire = jobs.map((j): CopyFilesJob => [j.source, j.output, j.uid, j.gid, j.mode, ...secondsAndNanos(j.mtimeNs)]);
  const batches: number[] = [];
  for (let at = 0; at < wire.length; at += COPY_BATCH_FILES) batches.push(at);
  let first: Promise<CopyFilesRow[]>;
  try {
    // The first batch starts here: an addon without sha256 refuses it at once, and the caller copies instead.
    first = copyFiles(wire.slice(0, COPY_BATCH_FILES));
  } catch {
    return null;
  }
  const results: NativeCopyResult[] = new Array(wire.length);
  const store = (at: number) => (rows: CopyFilesRow[]) => rows.forEach((row, k) => (results[at + k] = nativeResult(row)));
  let next = 1;
  const worker = async (start?: Promise<void>): Promise<void> => {
    if (start) await start;
    while (next < batches.length) {
      const at = batches[next++]!;
      await copyFiles(wire.slice(at, at + COPY_BATCH_FILES)).then(store(at));
    }
  };
  const workers = [worker(first.then(store(0)))];
  for (let i = 1; i < Math.max(2, availableParallelism()); i++) workers.push(worker());
  // Every batch settles before the outcome is known: none is left writing into a tree being removed.
  return Promise.allSettled(workers).then((settled) => {
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    return results;
  });
}

/** Files per copyFiles call: a few ms of work, many calls to spread over the cores. */
const COPY_BATCH_FILES = 512;

const NS = 1_000_000_000n;

/** timespec fields: nanoseconds always 0..999999999, also before 1970. */
function secondsAndNanos(ns: bigint): [number, number] {
  let seconds = ns / NS;
  let nanos = ns % NS;
  if (nanos < 0n) {
    nanos += NS;
    seconds -= 1n;
  }
  return [Number(seconds), Number(nanos)];
}

function nativeResult([step, errno, bytes, sha256, chownErrno]: CopyFilesRow): NativeCopyResult {
  if (step === 0) return { step: 'done', bytes, sha256: sha256!.toString('hex'), chownCode: chownErrno ? errnoName(chownErrno) : null };
  return { step: NATIVE_STEPS[step] ?? 'hash', code: errnoName(errno) } as NativeCopyResult;
}

const ERRNO_NAMES = new Map(Object.entries(osc.errno).map(([name, n]) => [n, name]));

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}
