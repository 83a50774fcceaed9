/**
 * Whole-file transforms used by encode and apply, each a single streaming pass that
 * also hashes what it writes (encode) or what it restores (apply).
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants as fsc,
  createReadStream,
  createWriteStream,
  fstatSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zc, createBrotliCompress, createBrotliDecompress } from 'node:zlib';

export interface Written {
  bytes: number;
  sha256: string;
}

/** Brotli quality 11 is worth its time on small files; large ones get 9 with the same 16 MiB window. */
const BROTLI_MAX_QUALITY_BYTES = 1 << 20;

export async function brotliFile(input: string | Buffer, size: number, output: string): Promise<Written> {
  const brotli = createBrotliCompress({
    params: {
      [zc.BROTLI_PARAM_QUALITY]: size <= BROTLI_MAX_QUALITY_BYTES ? 11 : 9,
      [zc.BROTLI_PARAM_LGWIN]: 24,
      [zc.BROTLI_PARAM_SIZE_HINT]: Math.min(size, 2 ** 30),
    },
  });
  const counter = hashingCounter();
  await pipeline(createReadStream(input), brotli, counter.stream, createWriteStream(output, { flags: 'wx' }));
  return counter.result();
}

/** Streams `input` (optionally through brotli decompression) into a new file at `output`. */
export async function restoreFile(
  input: Readable,
  output: Buffer,
  opts: { brotli: boolean },
): Promise<Written> {
  const counter = hashingCounter();
  const fh = await open(output, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  const sink = fh.createWriteStream();
  if (opts.brotli) await pipeline(input, createBrotliDecompress(), counter.stream, sink);
  else await pipeline(input, counter.stream, sink);
  return counter.result();
}

/** Opens a source file for reading, refusing a symlink in the last component. */
export async function openSourceStream(path: Buffer): Promise<Readable> {
  const fh = await open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw Object.assign(new Error('not a regular file'), { code: 'EINVAL' });
  }
  return fh.createReadStream();
}

function hashingCounter(): { stream: Transform; result(): Written } {
  const hash = createHash('sha256');
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  return { stream, result: () => ({ bytes, sha256: hash.digest('hex') }) };
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
  const input = openSync(source, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  let out: number | undefined;
  try {
    if (!fstatSync(input).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EINVAL' });
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

/** Writes a small in-memory payload (an inline raw file) into a new output file. */
export function writeSmallFileSync(data: Buffer, output: Buffer): Written {
  const out = openSync(output, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  try {
    writeAllSync(out, data);
  } finally {
    closeSync(out);
  }
  return { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}

function writeAllSync(fd: number, data: Buffer): void {
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off);
}

/** sha256 of a small file with synchronous reads (O_NOFOLLOW); see copySmallFileSync for why. */
export function hashSmallFileSync(path: Buffer | string): Written {
  const fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
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
export function readWholeFileSync(path: Buffer | string, maxBytes: number): Buffer | null {
  const fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EINVAL' });
    if (st.size > maxBytes) return null;
    const bytes = Buffer.allocUnsafe(st.size);
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
