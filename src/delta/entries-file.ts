/**
 * Streaming writer and reader for entries.jsonl.br. The writer hashes the compressed
 * bytes (the header records that hash); the reader checks the hash before trusting
 * a single record, so a truncated or altered entries file is refused up front.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { brotliDecompressSync, constants as zlibConstants, createBrotliCompress, createBrotliDecompress } from 'node:zlib';
import { DeltaimgError, ioError } from '../util/errors.js';
import { hashingTap } from '../util/hashing.js';
import { sha256File } from '../tree/scan.js';
import type { DeltaRecord } from './format.js';
import { decodeRecord, encodeRecord } from './records.js';

export interface EntriesWriter {
  write(record: DeltaRecord): Promise<void>;
  /** Flushes and closes; returns what the header records about the file. */
  finish(): Promise<{ sha256: string; count: number; rawBytes: number }>;
}

export function createEntriesWriter(path: string): EntriesWriter {
  const brotli = createBrotliCompress({
    params: {
      [zlibConstants.BROTLI_PARAM_QUALITY]: 11,
      [zlibConstants.BROTLI_PARAM_LGWIN]: 24,
      [zlibConstants.BROTLI_PARAM_MODE]: zlibConstants.BROTLI_MODE_TEXT,
    },
  });
  const hashing = hashingTap();
  const out = createWriteStream(path, { flags: 'wx' });
  const done = pipeline(brotli, hashing.stream, out);
  done.catch(() => {});
  let count = 0;
  let rawBytes = 0;
  return {
    async write(record) {
      const line = encodeRecord(record) + '\n';
      rawBytes += Buffer.byteLength(line);
      count++;
      if (!brotli.write(line)) await once(brotli, 'drain');
    },
    async finish() {
      brotli.end();
      await done.catch((err: unknown) => {
        throw ioError('write', path, err);
      });
      return { sha256: hashing.sha256Hex(), count, rawBytes };
    },
  };
}

/**
 * Yields the records of an entries file after checking its sha256 against the header's.
 * Throws CORRUPT_DELTA when the hash, the record count or any record is wrong.
 * A file whose decompressed size the header gives, up to WHOLE_READ_MAX_BYTES, is read,
 * hashed and decompressed in one go (2-3x faster than the stream for the few-MiB files of a
 * root filesystem); larger ones, or without that size, stream through bounded buffers.
 */
export async function* readEntries(
  path: string,
  expected: { sha256: string; count: number; rawBytes?: number },
): AsyncGenerator<DeltaRecord> {
  const raw = expected.rawBytes;
  const whole = Number.isSafeInteger(raw) && raw! >= 0 && raw! <= WHOLE_READ_MAX_BYTES;
  const lines = whole ? wholeLines(path, expected, raw!) : streamedLines(path, expected);
  let n = 0;
  for await (const line of lines) {
    n++;
    yield decodeRecord(line, n);
  }
  if (n !== expected.count) {
    throw new DeltaimgError('CORRUPT_DELTA', `${path} holds ${n} records, the header says ${expected.count}`);
  }
}

/** zlib's smallest output chunk. */
const MIN_CHUNK_BYTES = 64;

/** Entries files up to this many decompressed bytes are read whole (see readEntries). */
const WHOLE_READ_MAX_BYTES = 256 * 1024 * 1024;

function* wholeLines(path: string, expected: { sha256: string }, rawBytes: number): Generator<string> {
  let stored: Buffer;
  try {
    stored = readFileSync(path);
  } catch (err) {
    throw ioError('read', path, err);
  }
  if (createHash('sha256').update(stored).digest('hex') !== expected.sha256) throw damaged(path);
  let text: Buffer;
  try {
    // One output buffer of the announced size (+1 to see the end): zlib's default 16 KiB
    // chunks and their concatenation would touch twice the memory.
    text = brotliDecompressSync(stored, { maxOutputLength: rawBytes + 1, chunkSize: Math.max(MIN_CHUNK_BYTES, rawBytes + 1) });
  } catch (err) {
    throw new DeltaimgError('CORRUPT_DELTA', `${path} cannot be decompressed: ${(err as Error).message}`);
  }
  if (text.length !== rawBytes) {
    throw new DeltaimgError('CORRUPT_DELTA', `${path} decompresses to ${text.length} bytes, the header says ${rawBytes}`);
  }
  let at = 0;
  for (let end = text.indexOf(0x0a, at); end !== -1; end = text.indexOf(0x0a, at)) {
    yield text.toString('utf8', at, end);
    at = end + 1;
  }
  if (at < text.length) yield text.toString('utf8', at);
}

async function* streamedLines(path: string, expected: { sha256: string }): AsyncGenerator<string> {
  const actual = await sha256File(path).catch((err: unknown) => {
    throw ioError('read', path, err);
  });
  if (actual !== expected.sha256) throw damaged(path);
  const text = new PassThrough();
  const decompress = pipeline(createReadStream(path), createBrotliDecompress(), text);
  decompress.catch((err: unknown) => text.destroy(err as Error));
  const lines = createInterface({ input: text, crlfDelay: Infinity });
  try {
    yield* lines;
    await decompress;
  } catch (err) {
    if (err instanceof DeltaimgError) throw err;
    throw new DeltaimgError('CORRUPT_DELTA', `${path} cannot be decompressed: ${(err as Error).message}`);
  }
}

function damaged(path: string): DeltaimgError {
  return new DeltaimgError('CORRUPT_DELTA', `${path} is damaged or truncated (sha256 mismatch); copy the delta again`);
}
