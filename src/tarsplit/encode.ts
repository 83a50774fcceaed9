/**
 * A skeleton as a compact blob for the .dimg: brotli alone, or VCDIFF against the
 * concatenation of the base image's layer skeletons (whose headers are nearly the same),
 * whichever is smaller. The blob records the skeleton's size and sha256, which decode checks.
 *
 *   offset  size  field
 *   0       8     magic "DIMGSKLZ"
 *   8       1     version = 1
 *   9       1     method: 1 = brotli, 2 = vcdiff-brotli (VCDIFF without secondary compression
 *                 against the references concatenated in the order given, then brotli)
 *   10      2     reserved, 0
 *   12      4     number of references (u32 BE) the vcdiff method was encoded against
 *   16      8     skeleton size (u64 BE)
 *   24      32    skeleton sha256
 *   56      8     total size of the references (u64 BE)
 *   64            payload
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zlib, createBrotliCompress, createBrotliDecompress } from 'node:zlib';
import { withTempFiles, writeFileAtomically } from '../util/atomic-output.js';
import { hashStream } from '../util/hashing.js';
import { byteLimit, vcdiffMaxBytes } from '../util/byte-limit.js';
import { DeltaimgError, ioError } from '../util/errors.js';
import { decodeStream, DEFAULT_WINDOW, encodeFile, MAX_WINDOW, MIN_WINDOW, type VcdiffOptions } from '../vcdiff/index.js';

const MAGIC = Buffer.from('DIMGSKLZ', 'latin1');
const VERSION = 1;
const HEADER_BYTES = 64;
const METHODS = { brotli: 1, 'vcdiff-brotli': 2 } as const;
export type SkeletonMethod = keyof typeof METHODS;

interface BlobHeader {
  method: SkeletonMethod;
  references: number;
  skeletonSize: number;
  skeletonSha256: string; // hex
  referencesSize: number;
}

function encodeHeader(h: BlobHeader): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(b, 0);
  b[8] = VERSION;
  b[9] = METHODS[h.method];
  b.writeUInt32BE(h.references, 12);
  b.writeBigUInt64BE(BigInt(h.skeletonSize), 16);
  Buffer.from(h.skeletonSha256, 'hex').copy(b, 24);
  b.writeBigUInt64BE(BigInt(h.referencesSize), 56);
  return b;
}

function decodeHeader(path: string, b: Buffer): BlobHeader {
  if (b.length < HEADER_BYTES || !b.subarray(0, 8).equals(MAGIC))
    throw new DeltaimgError('CORRUPT_DELTA', `${path} is not an encoded layer skeleton (bad magic; damaged or truncated)`);
  if (b[8] !== VERSION)
    throw new DeltaimgError(
      'UNSUPPORTED_VERSION',
      `encoded skeleton ${path} has version ${b[8]}; this deltaimg reads version ${VERSION} (upgrade deltaimg)`,
    );
  const method = (Object.keys(METHODS) as SkeletonMethod[]).find((m) => METHODS[m] === b[9]);
  if (!method) throw new DeltaimgError('CORRUPT_DELTA', `encoded skeleton ${path} has unknown method ${b[9]}`);
  return {
    method,
    references: b.readUInt32BE(12),
    skeletonSize: Number(b.readBigUInt64BE(16)),
    skeletonSha256: b.subarray(24, 56).toString('hex'),
    referencesSize: Number(b.readBigUInt64BE(56)),
  };
}

async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  try {
    const { sha256, bytes } = await hashStream(createReadStream(path));
    return { sha256, size: bytes };
  } catch (err) {
    throw ioError('read', path, err);
  }
}

/** The references, concatenated into one file (VCDIFF takes one source); returns its size. */
async function concatenate(references: string[], out: string): Promise<number> {
  const fh = await open(out, 'wx').catch((err: unknown) => Promise.reject(ioError('create', out, err)));
  let total = 0;
  try {
    for (const ref of references) {
      try {
        for await (const chunk of createReadStream(ref)) {
          await fh.write(chunk as Buffer);
          total += (chunk as Buffer).length;
        }
      } catch (err) {
        throw ioError('read reference skeleton', ref, err);
      }
    }
  } finally {
    await fh.close();
  }
  return total;
}

const MiB = 1024 * 1024;

/**
 * Quality by size, as quality 11 runs at ~0.5 MB/s: headers only, a 3.7 MB Debian skeleton
 * gives 119 KB at 11 (3 s) vs 137 KB at 9 (0.4 s); with the small files inline, 14.3 MB gives
 * 4.48 MB at 11 (41 s), 4.66 MB at 9 (8 s), 4.72 MB at 5 (1 s). A 16 MiB window: headers
 * repeat across the whole skeleton (same owners, modes, directories).
 */
export function brotliQuality(inputSize: number): number {
  return inputSize <= 4 * MiB ? 11 : inputSize <= 32 * MiB ? 9 : 5;
}

async function brotliFile(input: string, out: string, quality?: number): Promise<number> {
  const size = (await stat(input)).size;
  const params = {
    [zlib.BROTLI_PARAM_QUALITY]: quality ?? brotliQuality(size),
    [zlib.BROTLI_PARAM_LGWIN]: 24,
    [zlib.BROTLI_PARAM_SIZE_HINT]: Math.min(size, 2 ** 30),
  };
  await pipeline(createReadStream(input), createBrotliCompress({ params }), createWriteStream(out, { flags: 'wx' }));
  return (await stat(out)).size;
}

/** Writes header + payload file to `outPath` (via a temp name). */
async function writeBlob(outPath: string, header: BlobHeader, payload: string): Promise<number> {
  await writeFileAtomically(
    outPath,
    async (temp) => {
      try {
        const ws = createWriteStream(temp, { flags: 'wx' });
        ws.write(encodeHeader(header));
        await pipeline(createReadStream(payload), ws);
      } catch (err) {
        throw ioError('write', outPath, err);
      }
    },
    { replace: true },
  );
  return HEADER_BYTES + (await stat(payload)).size;
}

/**
 * Skeleton -> compact blob. `references` are skeleton files of A's layers (may be empty):
 * VCDIFF against their concatenation when it beats brotli alone.
 */
/** Runs the VCDIFF encode (a worker pool keeps this thread free for signals and other work). */
export interface SkeletonEncoder {
  encodeFile(sourcePath: string, targetPath: string, deltaPath: string, opts: VcdiffOptions): Promise<unknown>;
}

const onThisThread: SkeletonEncoder = { encodeFile: (source, target, delta, opts) => encodeFile(source, target, delta, opts) };

export async function encodeSkeleton(
  skeletonPath: string,
  references: string[],
  outPath: string,
  encoder: SkeletonEncoder = onThisThread,
): Promise<{ bytes: number; method: string }> {
  const skeleton = await sha256File(skeletonPath);
  return withTempFiles(outPath, ['brotli', 'refs', 'plain', 'vcdiffBrotli'], async (temps) => {
    const chosen = references.length
      ? await smallestAgainst(skeletonPath, references, temps, encoder)
      : { method: 'brotli' as const, file: temps.brotli, referencesSize: 0, size: await brotliFile(skeletonPath, temps.brotli) };
    const { method, file: best, referencesSize } = chosen;
    const header: BlobHeader = {
      method,
      references: method === 'brotli' ? 0 : references.length,
      skeletonSize: skeleton.size,
      skeletonSha256: skeleton.sha256,
      referencesSize: method === 'brotli' ? 0 : referencesSize,
    };
    return { bytes: await writeBlob(outPath, header, best), method };
  });
}

/**
 * The window covers all the references (up to 512 MiB): B's layer may match any of A's layers.
 * Above 64 MiB, level 3 as for large files in src/delta/diff.ts: level 9's hash table would
 * take twice the window in memory.
 */
function vcdiffOptions(referencesSize: number): VcdiffOptions {
  const windowBytes = Math.min(MAX_WINDOW, Math.max(MIN_WINDOW, referencesSize));
  return { windowBytes, secondary: 'none', ...(referencesSize > DEFAULT_WINDOW ? { level: 3 } : {}) };
}

interface Candidate {
  method: SkeletonMethod;
  file: string;
  size: number;
  referencesSize: number;
}

/**
 * With references: VCDIFF without secondary compression, then brotli (the changed header
 * fields compress better so than with xdelta3's djw: 20.9 vs 26.0 KB on Debian), unless
 * brotli alone is smaller. Brotli alone is first estimated at a fast quality and only done
 * properly when it comes close: against related references it is 5 to 300 times bigger.
 */
async function smallestAgainst(
  skeletonPath: string,
  references: string[],
  temps: { brotli: string; refs: string; plain: string; vcdiffBrotli: string },
  encoder: SkeletonEncoder,
): Promise<Candidate> {
  const referencesSize = await concatenate(references, temps.refs);
  await encoder.encodeFile(temps.refs, skeletonPath, temps.plain, vcdiffOptions(referencesSize));
  const viaVcdiff: Candidate = {
    method: 'vcdiff-brotli',
    file: temps.vcdiffBrotli,
    referencesSize,
    size: await brotliFile(temps.plain, temps.vcdiffBrotli),
  };
  const estimate = await brotliFile(skeletonPath, temps.brotli, 5);
  if (estimate > viaVcdiff.size * 1.25) return viaVcdiff;
  await rm(temps.brotli, { force: true });
  const alone: Candidate = { method: 'brotli', file: temps.brotli, referencesSize: 0, size: await brotliFile(skeletonPath, temps.brotli) };
  return alone.size < viaVcdiff.size ? alone : viaVcdiff;
}

async function readBlobHeader(encodedPath: string): Promise<BlobHeader> {
  let fh;
  try {
    fh = await open(encodedPath, 'r');
  } catch (err) {
    throw ioError('open encoded skeleton', encodedPath, err);
  }
  try {
    const b = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await fh.read(b, 0, HEADER_BYTES, 0);
    return decodeHeader(encodedPath, b.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/** Blob -> skeleton, with the same `references` (in the same order) encode was given. */
export async function decodeSkeleton(encodedPath: string, references: string[], outSkeletonPath: string): Promise<void> {
  const header = await readBlobHeader(encodedPath);
  await withTempFiles(outSkeletonPath, ['refs'], (temps) =>
    writeFileAtomically(
      outSkeletonPath,
      async (temp) => {
        await decodePayload(encodedPath, header, references, temps.refs, temp);
        const got = await sha256File(temp);
        if (got.size !== header.skeletonSize || got.sha256 !== header.skeletonSha256) {
          throw new DeltaimgError(
            'CORRUPT_DELTA',
            `encoded skeleton ${encodedPath} decodes to a skeleton of ${got.size} bytes with the wrong sha256; it is damaged`,
          );
        }
      },
      { replace: true },
    ),
  );
}

async function decodePayload(encodedPath: string, header: BlobHeader, references: string[], refsOut: string, out: string): Promise<void> {
  const payload = createReadStream(encodedPath, { start: HEADER_BYTES });
  let brotliError: Error | undefined;
  const unbrotli = (): Readable => payload.pipe(createBrotliDecompress().once('error', (err) => (brotliError = err)));
  // Nothing decodes past the sizes the header declares: a hostile blob must not fill the disk.
  const exceeded = (what: string) => () =>
    new DeltaimgError('CORRUPT_DELTA', `encoded skeleton ${encodedPath} decodes to more than its header's ${what}; it is damaged`);
  try {
    if (header.method === 'brotli') {
      await pipeline(
        unbrotli(),
        byteLimit(header.skeletonSize, exceeded(`${header.skeletonSize} bytes`)),
        createWriteStream(out, { flags: 'wx' }),
      );
    } else {
      await checkReferences(encodedPath, header, references);
      await concatenate(references, refsOut);
      const vcdiff = unbrotli().pipe(byteLimit(vcdiffMaxBytes(header.skeletonSize), exceeded('size allows for its VCDIFF')));
      await decodeStream(refsOut, vcdiff, out, { maxOutputBytes: header.skeletonSize });
    }
  } catch (err) {
    if (brotliError)
      throw new DeltaimgError(
        'CORRUPT_DELTA',
        `encoded skeleton ${encodedPath} does not decompress (${brotliError.message}); it is damaged`,
        { cause: err },
      );
    throw err;
  } finally {
    payload.destroy();
  }
}

async function checkReferences(encodedPath: string, header: BlobHeader, references: string[]): Promise<void> {
  let total = 0;
  for (const ref of references)
    total += (await stat(ref).catch((err: unknown) => Promise.reject(ioError('read reference skeleton', ref, err)))).size;
  if (references.length !== header.references || total !== header.referencesSize) {
    throw new DeltaimgError(
      'WRONG_SOURCE',
      `encoded skeleton ${encodedPath} was made against ${header.references} base skeletons of ${header.referencesSize} bytes, not the ${references.length} of ${total} bytes given; wrong base image`,
    );
  }
}
