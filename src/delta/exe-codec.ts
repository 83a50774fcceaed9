/**
 * bsdiff through the executable transform (src/exefilter/): both files' relative branch
 * targets made absolute before matching, undone after decoding. The encoder tries it on
 * ELF pairs of one architecture and keeps it only when its patch is smaller than plain
 * bsdiff's; the record carries each file's transform parameters (docs/format.md).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { bsdiffMatches } from '../bsdiff/index.js';
import {
  addressMapFor,
  BranchFilter,
  branchFilterStream,
  choosePairTransform,
  readElfCode,
  regionsOutside,
  transformFile,
  transformSourceBuffer,
  transformSourceFile,
  type PairTransform,
} from '../exefilter/index.js';
import { DeltaimgError } from '../util/errors.js';
import { writeAllSync } from '../util/write-all.js';
import { restoreFile, type Written } from './file-codecs.js';

type PathLike = string | Buffer;

export interface ExeFiles {
  source: { path: PathLike; size: number };
  target: { path: PathLike; size: number };
}

/** Both files' transforms, when they are ELF code of one architecture. */
export function exeTransformFor(files: ExeFiles): PairTransform | undefined {
  return choosePairTransform(readElfCode(files.source.path, files.source.size), readElfCode(files.target.path, files.target.size));
}

/**
 * `exe` with the source's addresses relabelled to the target's (docs/bsdiff.md, "Address
 * relabelling"), the map read from the alignment of `plainPatch` (a bsdiff patch of the
 * untransformed files, whole or segmented); `exe` itself when that finds nothing that moved.
 */
export async function withAddressMap(exe: PairTransform, files: ExeFiles, plainPatch: PathLike): Promise<PairTransform> {
  const source = readElfCode(files.source.path, files.source.size);
  const target = readElfCode(files.target.path, files.target.size);
  if (!source || !target) return exe;
  const map = addressMapFor(await bsdiffMatches(plainPatch), source.loads, target.loads);
  if (!map) return exe;
  const addressMap = source.unwind && target.unwind ? { ...map, unwind: source.unwind } : map;
  return { ...exe, source: { ...exe.source, addressMap } };
}

/**
 * Runs `encode` (a bsdiff of two paths) on transformed copies of both files, made at
 * `temps()` paths and removed afterwards.
 */
export async function encodeTransformed<T>(
  files: ExeFiles,
  exe: PairTransform,
  temps: () => string,
  encode: (source: string, target: string) => Promise<T>,
): Promise<T> {
  const source = temps();
  const target = temps();
  try {
    await transformSourceFile(files.source.path, source, exe.source);
    await transformFile(files.target.path, target, exe.target, 'forward');
    return await encode(source, target);
  } finally {
    await Promise.all([unlink(source).catch(() => {}), unlink(target).catch(() => {})]);
  }
}

/** Refuses recorded parameters that name code outside the files they apply to. */
export function checkExeFits(exe: PairTransform, sourceSize: number, targetSize: number, forPath: string): void {
  const bad = regionsOutside(exe.source, sourceSize) ?? regionsOutside(exe.target, targetSize);
  if (bad) {
    throw new DeltaimgError(
      'CORRUPT_DELTA',
      `the executable transform recorded for ${forPath} does not fit the files: ${bad}; the delta is damaged, make it again`,
    );
  }
}

/**
 * In-memory decode: transforms `source` in place, runs `decode` (which writes the
 * transformed target in chunks) and undoes the transform on those chunks on their way
 * to `fd`, hashing the restored bytes.
 */
export function decodeTransformedSync(
  exe: PairTransform,
  source: Buffer,
  fd: number,
  decode: (source: Buffer, write: (chunk: Uint8Array) => void) => void,
): Written {
  transformSourceBuffer(exe.source, source);
  const inverse = new BranchFilter(exe.target, 'inverse');
  const hash = createHash('sha256');
  let bytes = 0;
  const emit = (out: Buffer) => {
    if (out.length === 0) return;
    writeAllSync(fd, out);
    hash.update(out);
    bytes += out.length;
  };
  decode(source, (chunk) => emit(inverse.push(chunk)));
  emit(inverse.end());
  return { bytes, sha256: hash.digest('hex') };
}

/**
 * Streaming decode, for files too large for memory: the transformed source goes to a
 * scratch file, `decode` writes the transformed target to another, which is then streamed
 * through the inverse transform into `out` (created exclusively, at most `targetSize` bytes), hashed.
 */
export async function decodeTransformedFile(
  exe: PairTransform,
  source: PathLike,
  out: Buffer,
  targetSize: number,
  scratch: () => string,
  decode: (source: string, out: string) => Promise<unknown>,
): Promise<Written> {
  const transformedSource = scratch();
  const transformedTarget = scratch();
  try {
    await transformSourceFile(source, transformedSource, exe.source);
    await decode(transformedSource, transformedTarget);
    return await restoreFile(createReadStream(transformedTarget), out, {
      brotli: false,
      maxBytes: targetSize,
      through: branchFilterStream(exe.target, 'inverse'),
      sparse: true,
    });
  } finally {
    await Promise.all([unlink(transformedSource).catch(() => {}), unlink(transformedTarget).catch(() => {})]);
  }
}
