/**
 * Streaming writer and reader for entries.jsonl.br. The writer hashes the compressed
 * bytes (the header records that hash); the reader checks the hash before trusting
 * a single record, so a truncated or altered entries file is refused up front.
 */
import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, readSync } from 'node:fs';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import {
  brotliCompress,
  brotliDecompressSync,
  constants as zlibConstants,
  createBrotliCompress,
  createBrotliDecompress,
  type BrotliCompress,
} from 'node:zlib';
import { DeltaimgError, ioError } from '../util/errors.js';
import { hashingTap } from '../util/hashing.js';
import { openRegular, openRegularSync } from '../util/regular-file.js';
import type { DeltaRecord } from './format.js';
import { decodeRecord, encodeRecord } from './records.js';

const brotliCompressAsync = promisify(brotliCompress);

export interface EntriesWriter {
  /** A record in the v1/v2 coding (one JSON record per entry). */
  write(record: DeltaRecord): Promise<void>;
  /** One line of text, whatever the coding (format v3 writes runs, src/delta/runs.ts). */
  writeLine(text: string): Promise<void>;
  /** Flushes and closes; returns what the header records about the file. */
  finish(): Promise<{ sha256: string; count: number; rawBytes: number }>;
}

/**
 * Brotli at 11 costs ~1.4 CPU s per MiB of records, 10 a third of that for 3% more bytes, 9
 * a twentieth for 18% more (measured on a 100k-file tree's 17 MB of records): the effort is
 * chosen by how much there is, so a large tree's entries do not cost a minute. Up to
 * STRONG_MAX_BYTES the lines wait in memory and are compressed in one go at the end (on
 * the threadpool); past it they stream through a compressor at quality 9.
 */
const STRONG_MAX_BYTES = 4 * 1024 * 1024;
const STRONGEST_MAX_BYTES = 1024 * 1024;
const STREAM_QUALITY = 9;

function brotliParams(quality: number): { params: Record<number, number> } {
  return {
    params: {
      [zlibConstants.BROTLI_PARAM_QUALITY]: quality,
      [zlibConstants.BROTLI_PARAM_LGWIN]: 24,
      [zlibConstants.BROTLI_PARAM_MODE]: zlibConstants.BROTLI_MODE_TEXT,
    },
  };
}

export function createEntriesWriter(path: string): EntriesWriter {
  const hashing = hashingTap();
  let held: string[] = [];
  let stream: { brotli: BrotliCompress; done: Promise<void> } | undefined;
  let count = 0;
  let rawBytes = 0;

  const startStream = () => {
    const brotli = createBrotliCompress(brotliParams(STREAM_QUALITY));
    const done = pipeline(brotli, hashing.stream, createWriteStream(path, { flags: 'wx' }));
    done.catch(() => {});
    return { brotli, done };
  };
  const write = async (text: string): Promise<void> => {
    if (stream && !stream.brotli.write(text)) await once(stream.brotli, 'drain');
  };
  const writeLine = async (text: string): Promise<void> => {
    const line = text + '\n';
    rawBytes += Buffer.byteLength(line);
    count++;
    if (stream) return write(line);
    held.push(line);
    if (rawBytes <= STRONG_MAX_BYTES) return;
    stream = startStream();
    const joined = held.join('');
    held = [];
    await write(joined);
  };
  return {
    write: (record) => writeLine(encodeRecord(record)),
    writeLine,
    async finish() {
      try {
        if (stream) {
          stream.brotli.end();
          await stream.done;
        } else {
          const quality = rawBytes <= STRONGEST_MAX_BYTES ? 11 : 10;
          const packed = await brotliCompressAsync(Buffer.from(held.join('')), brotliParams(quality));
          held = [];
          await pipeline(Readable.from([packed]), hashing.stream, createWriteStream(path, { flags: 'wx' }));
        }
      } catch (err) {
        throw ioError('write', path, err);
      }
      return { sha256: hashing.sha256Hex(), count, rawBytes };
    },
  };
}

/**
 * Yields the records of an entries file after checking its sha256 against the header's.
 * Throws CORRUPT_DELTA when the hash, the decompressed size, the record count, a line's
 * length or any record is wrong. Decompression stops at the header's `rawBytes`: a small file
 * that would expand beyond what the header announced is refused without expanding it. Files of
 * up to WHOLE_READ_MAX_BYTES decompressed are read, hashed and decompressed in one go (2-3x
 * faster than the stream for the few-MiB files of a root filesystem); larger ones stream
 * through bounded buffers.
 */
export async function* readEntries(
  path: string,
  expected: { sha256: string; count: number; rawBytes: number },
): AsyncGenerator<DeltaRecord> {
  for await (const { text, line } of readEntryLines(path, expected)) yield decodeRecord(text, line);
}

/** The lines of an entries file, numbered from 1, with every check of readEntries but the decoding. */
export async function* readEntryLines(
  path: string,
  expected: { sha256: string; count: number; rawBytes: number },
): AsyncGenerator<{ text: string; line: number }> {
  const lines = expected.rawBytes <= WHOLE_READ_MAX_BYTES ? wholeLines(path, expected) : streamedLines(path, expected);
  let n = 0;
  for await (const text of lines) {
    n++;
    if (n > expected.count) break;
    yield { text, line: n };
  }
  if (n !== expected.count) {
    throw new DeltaimgError(
      'CORRUPT_DELTA',
      `${path} holds ${n > expected.count ? 'more than ' : ''}${n} records, the header says ${expected.count}`,
    );
  }
}

/** zlib's smallest output chunk. */
const MIN_CHUNK_BYTES = 64;

/** Entries files up to this many decompressed bytes are read whole (see readEntries). */
const WHOLE_READ_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The longest record line accepted. A record is a path (at most a few KiB), a few fields and
 * its xattrs (Linux caps each value at 64 KiB); 4 MiB leaves room for many and bounds what one
 * line can cost.
 */
export const MAX_RECORD_LINE_BYTES = 4 * 1024 * 1024;

/** Brotli never grows its input by more than a few bytes per 16 MiB: a bigger file is not what the header describes. */
function storedMaxBytes(rawBytes: number): number {
  return rawBytes + 1024 * 1024;
}

function readStored(path: string, rawBytes: number): Buffer {
  let opened: { fd: number; size: number } | undefined;
  try {
    opened = openRegularSync(path);
    if (opened.size > storedMaxBytes(rawBytes)) throw damaged(path);
    const bytes = Buffer.allocUnsafe(opened.size);
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(opened.fd, bytes, done, bytes.length - done, null);
      if (n === 0) break;
      done += n;
    }
    return bytes.subarray(0, done);
  } catch (err) {
    if (err instanceof DeltaimgError) throw err;
    throw entriesReadError(path, err);
  } finally {
    if (opened) closeSync(opened.fd);
  }
}

function* wholeLines(path: string, expected: { sha256: string; rawBytes: number }): Generator<string> {
  const stored = readStored(path, expected.rawBytes);
  if (createHash('sha256').update(stored).digest('hex') !== expected.sha256) throw damaged(path);
  const rawBytes = expected.rawBytes;
  let text: Buffer;
  try {
    // One output buffer of the announced size (+1 to see the end): zlib's default 16 KiB
    // chunks and their concatenation would touch twice the memory.
    text = brotliDecompressSync(stored, { maxOutputLength: rawBytes + 1, chunkSize: Math.max(MIN_CHUNK_BYTES, rawBytes + 1) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(path, rawBytes);
    throw new DeltaimgError('CORRUPT_DELTA', `${path} cannot be decompressed: ${(err as Error).message}`);
  }
  if (text.length > rawBytes) throw tooLarge(path, rawBytes);
  if (text.length !== rawBytes) {
    throw new DeltaimgError('CORRUPT_DELTA', `${path} decompresses to ${text.length} bytes, the header says ${rawBytes}`);
  }
  let at = 0;
  for (let end = text.indexOf(0x0a, at); ; end = text.indexOf(0x0a, at)) {
    const stop = end === -1 ? text.length : end;
    if (stop - at > MAX_RECORD_LINE_BYTES) throw lineTooLong(path);
    if (end === -1) {
      if (at < text.length) yield text.toString('utf8', at);
      return;
    }
    yield text.toString('utf8', at, end);
    at = end + 1;
  }
}

async function* streamedLines(path: string, expected: { sha256: string; rawBytes: number }): AsyncGenerator<string> {
  await verifyStreamed(path, expected.sha256);
  const { fh } = await openRegular(path).catch((err: unknown) => {
    throw entriesReadError(path, err);
  });
  const input = fh.createReadStream();
  const text = createBrotliDecompress();
  input.on('error', (err) => text.destroy(err));
  input.pipe(text);
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  let total = 0;
  try {
    for await (const chunk of text as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > expected.rawBytes) throw tooLarge(path, expected.rawBytes);
      let at = 0;
      for (let end = chunk.indexOf(0x0a); end !== -1; end = chunk.indexOf(0x0a, at)) {
        if (pendingBytes + end - at > MAX_RECORD_LINE_BYTES) throw lineTooLong(path);
        pending.push(chunk.subarray(at, end));
        yield Buffer.concat(pending).toString('utf8');
        pending.length = 0;
        pendingBytes = 0;
        at = end + 1;
      }
      pendingBytes += chunk.length - at;
      if (pendingBytes > MAX_RECORD_LINE_BYTES) throw lineTooLong(path);
      if (at < chunk.length) pending.push(chunk.subarray(at));
    }
  } catch (err) {
    if (err instanceof DeltaimgError) throw err;
    throw new DeltaimgError('CORRUPT_DELTA', `${path} cannot be decompressed: ${(err as Error).message}`);
  } finally {
    input.destroy();
    text.destroy();
  }
  if (pendingBytes > 0) yield Buffer.concat(pending).toString('utf8');
  if (total !== expected.rawBytes) {
    throw new DeltaimgError('CORRUPT_DELTA', `${path} decompresses to ${total} bytes, the header says ${expected.rawBytes}`);
  }
}

async function verifyStreamed(path: string, sha256: string): Promise<void> {
  const hash = createHash('sha256');
  try {
    const { fh } = await openRegular(path);
    for await (const chunk of fh.createReadStream()) hash.update(chunk as Buffer);
  } catch (err) {
    throw entriesReadError(path, err);
  }
  if (hash.digest('hex') !== sha256) throw damaged(path);
}

function entriesReadError(path: string, err: unknown): DeltaimgError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EINVAL') return new DeltaimgError('CORRUPT_DELTA', `${path} is not a regular file; the delta is damaged, copy it again`);
  if (code === 'ENOENT') return new DeltaimgError('CORRUPT_DELTA', `${path} is missing; the delta is incomplete, copy it again`);
  return ioError('read', path, err);
}

function tooLarge(path: string, rawBytes: number): DeltaimgError {
  return new DeltaimgError(
    'CORRUPT_DELTA',
    `${path} decompresses to more than the ${rawBytes} bytes the header says; the delta is damaged`,
  );
}

function lineTooLong(path: string): DeltaimgError {
  return new DeltaimgError('CORRUPT_DELTA', `${path} has a record line longer than ${MAX_RECORD_LINE_BYTES} bytes; the delta is damaged`);
}

function damaged(path: string): DeltaimgError {
  return new DeltaimgError('CORRUPT_DELTA', `${path} is damaged or truncated (sha256 mismatch); copy the delta again`);
}
