/**
 * A skeleton as a compact blob for the .dimg: brotli alone, or VCDIFF against the
 * concatenation of the base image's layer skeletons (whose headers are nearly the same),
 * whichever is smaller. The blob records the skeleton's size and sha256, which decode checks.
 *
 *   offset  size  field
 *   0       8     magic "DIMGSKLZ"
 *   8       1     version = 1
 *   9       1     method: 1 = brotli, 2 = vcdiff (against the references, in the order given),
 *                 3 = vcdiff-brotli (the same VCDIFF without secondary compression, then brotli)
 *   10      2     reserved, 0
 *   12      4     number of references (u32 BE) the vcdiff method was encoded against
 *   16      8     skeleton size (u64 BE)
 *   24      32    skeleton sha256
 *   56      8     total size of the references (u64 BE)
 *   64            payload
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zlib, createBrotliCompress, createBrotliDecompress } from 'node:zlib';
import { DeltaimgError, ioError } from '../util/errors.js';
import { decodeStream, encodeFile, MAX_WINDOW, MIN_WINDOW } from '../vcdiff/index.js';

const MAGIC = Buffer.from('DIMGSKLZ', 'latin1');
const VERSION = 1;
const HEADER_BYTES = 64;
const METHODS = { brotli: 1, vcdiff: 2, 'vcdiff-brotli': 3 } as const;
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
  if (b.length < HEADER_BYTES || !b.subarray(0, 8).equals(MAGIC)) throw new DeltaimgError('CORRUPT_DELTA', `${path} is not an encoded layer skeleton (bad magic; damaged or truncated)`);
  if (b[8] !== VERSION) throw new DeltaimgError('UNSUPPORTED_VERSION', `encoded skeleton ${path} has version ${b[8]}; this deltaimg reads version ${VERSION} (upgrade deltaimg)`);
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

function tempName(path: string, what: string): string {
  return `${path}.deltaimg-${what}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of createReadStream(path)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  } catch (err) {
    throw ioError('read', path, err);
  }
  return { sha256: hash.digest('hex'), size };
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

/**
 * Quality 11 below 16 MiB (a 3.7 MB Debian skeleton: 119 KB in 3 s vs 137 KB at quality 9 in
 * 0.4 s), 9 above, where 11 gets too slow. A 16 MiB window: headers repeat across the whole
 * skeleton (same owners, modes, directories).
 */
function brotliParams(inputSize: number): Record<number, number> {
  return {
    [zlib.BROTLI_PARAM_QUALITY]: inputSize <= 16 * 1024 * 1024 ? 11 : 9,
    [zlib.BROTLI_PARAM_LGWIN]: 24,
    [zlib.BROTLI_PARAM_SIZE_HINT]: Math.min(inputSize, 2 ** 30),
  };
}

async function brotliFile(input: string, out: string): Promise<number> {
  const params = brotliParams((await stat(input)).size);
  await pipeline(createReadStream(input), createBrotliCompress({ params }), createWriteStream(out, { flags: 'wx' }));
  return (await stat(out)).size;
}

/** Writes header + payload file to `outPath` (via a temp name). */
async function writeBlob(outPath: string, header: BlobHeader, payload: string): Promise<number> {
  const temp = tempName(outPath, 'blob');
  try {
    const ws = createWriteStream(temp, { flags: 'wx' });
    ws.write(encodeHeader(header));
    await pipeline(createReadStream(payload), ws);
    await rename(temp, outPath);
  } catch (err) {
    await rm(temp, { force: true });
    throw ioError('write', outPath, err);
  }
  return HEADER_BYTES + (await stat(payload)).size;
}

/**
 * Skeleton -> compact blob. `references` are skeleton files of A's layers (may be empty):
 * VCDIFF against their concatenation when it beats brotli alone.
 */
export async function encodeSkeleton(skeletonPath: string, references: string[], outPath: string): Promise<{ bytes: number; method: string }> {
  const skeleton = await sha256File(skeletonPath);
  const brotliOut = tempName(outPath, 'br');
  const vcdiffOut = tempName(outPath, 'vcdiff');
  const refsOut = tempName(outPath, 'refs');
  const plainOut = tempName(outPath, 'vcdiff-plain');
  const plainBrOut = tempName(outPath, 'vcdiff-br');
  try {
    let method: SkeletonMethod = 'brotli';
    let best = brotliOut;
    let bestSize = await brotliFile(skeletonPath, brotliOut);
    let referencesSize = 0;
    if (references.length) {
      referencesSize = await concatenate(references, refsOut);
      const windowBytes = Math.min(MAX_WINDOW, Math.max(MIN_WINDOW, referencesSize));
      const candidates: Array<[SkeletonMethod, string, number]> = [];
      const r = await encodeFile(refsOut, skeletonPath, vcdiffOut, { windowBytes });
      candidates.push(['vcdiff', vcdiffOut, r.deltaBytes]);
      // The changed header fields (mtime, size, chksum) compress better with brotli than with djw: 20.9 vs 26.0 KB on Debian.
      await encodeFile(refsOut, skeletonPath, plainOut, { windowBytes, secondary: 'none' });
      candidates.push(['vcdiff-brotli', plainBrOut, await brotliFile(plainOut, plainBrOut)]);
      for (const [m, file, size] of candidates) {
        if (size < bestSize) [method, best, bestSize] = [m, file, size];
      }
    }
    const header: BlobHeader = {
      method,
      references: method === 'brotli' ? 0 : references.length,
      skeletonSize: skeleton.size,
      skeletonSha256: skeleton.sha256,
      referencesSize: method === 'brotli' ? 0 : referencesSize,
    };
    return { bytes: await writeBlob(outPath, header, best), method };
  } finally {
    await Promise.all([brotliOut, vcdiffOut, refsOut, plainOut, plainBrOut].map((p) => rm(p, { force: true })));
  }
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
  const temp = tempName(outSkeletonPath, 'skel');
  const refsOut = tempName(outSkeletonPath, 'refs');
  try {
    await decodePayload(encodedPath, header, references, refsOut, temp);
    const got = await sha256File(temp);
    if (got.size !== header.skeletonSize || got.sha256 !== header.skeletonSha256) {
      throw new DeltaimgError('CORRUPT_DELTA', `encoded skeleton ${encodedPath} decodes to a skeleton of ${got.size} bytes with the wrong sha256; it is damaged`);
    }
    await rename(temp, outSkeletonPath).catch((err: unknown) => Promise.reject(ioError('write', outSkeletonPath, err)));
  } finally {
    await Promise.all([temp, refsOut].map((p) => rm(p, { force: true })));
  }
}

async function decodePayload(encodedPath: string, header: BlobHeader, references: string[], refsOut: string, out: string): Promise<void> {
  const payload = createReadStream(encodedPath, { start: HEADER_BYTES });
  let brotliError: Error | undefined;
  const unbrotli = (): Readable => payload.pipe(createBrotliDecompress().once('error', (err) => (brotliError = err)));
  try {
    if (header.method === 'brotli') {
      await pipeline(unbrotli(), createWriteStream(out, { flags: 'wx' }));
    } else {
      await checkReferences(encodedPath, header, references);
      await concatenate(references, refsOut);
      await decodeStream(refsOut, header.method === 'vcdiff' ? payload : unbrotli(), out);
    }
  } catch (err) {
    if (brotliError) throw new DeltaimgError('CORRUPT_DELTA', `encoded skeleton ${encodedPath} does not decompress (${brotliError.message}); it is damaged`, { cause: err });
    throw err;
  } finally {
    payload.destroy();
  }
}

async function checkReferences(encodedPath: string, header: BlobHeader, references: string[]): Promise<void> {
  let total = 0;
  for (const ref of references) total += (await stat(ref).catch((err: unknown) => Promise.reject(ioError('read reference skeleton', ref, err)))).size;
  if (references.length !== header.references || total !== header.referencesSize) {
    throw new DeltaimgError(
      'WRONG_SOURCE',
      `encoded skeleton ${encodedPath} was made against ${header.references} base skeletons of ${header.referencesSize} bytes, not the ${references.length} of ${total} bytes given; wrong base image`,
    );
  }
}
