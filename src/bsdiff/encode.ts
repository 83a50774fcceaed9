/**
 * bsdiff encoding: both files and the source's suffix array are held in memory (see
 * bsdiffEncodeMemory); callers under a memory budget check the estimate first and encode larger
 * files in segments (segmented.ts).
 */
import { createHash } from 'node:crypto';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlibConstants } from 'node:zlib';
import { DeltaimgError, ioError } from '../util/errors.js';
import { encodeHeader, SECTION_NAMES, VarintWriter, type HeaderFields, type SectionName } from './format.js';
import { computeDelta, type ControlStep, type Delta } from './match.js';
import { writeAll } from './io.js';
import { showPath, type PathLike } from './paths.js';
import { encodeSparseDiff } from './sparse.js';

/**
 * Largest source or target the whole-file encoder accepts: the suffix array is an Int32Array
 * and SA-IS recurses on it. Memory, not this, is what callers check (bsdiffEncodeMemory).
 */
export const BSDIFF_MAX_SOURCE_BYTES = 1024 * 1024 * 1024;

const MiB = 1024 * 1024;

/**
 * Peak memory of one whole-file encode beyond the process's baseline: source and target, the
 * suffix array (4 B per source byte) and SA-IS's work space, the 8-byte window filter, the
 * diff and extra buffers (a target size each) and the compressed sections. Measured with
 * /usr/bin/time -v on containerd 1.6.20 amd64 (48.2 MB each side): 473 MB above node's 45 MB,
 * 9.8 B per source byte; ctr (23.2 MB): 257 MB, 11.1 B per byte.
 */
export function bsdiffEncodeMemory(sourceBytes: number, targetBytes: number): number {
  return 7 * sourceBytes + 4 * targetBytes + 16 * MiB;
}

/** Sections up to this size get brotli's best (slow) quality; larger ones quality 9. */
export const BEST_QUALITY_LIMIT = 8 * 1024 * 1024;

export interface BsdiffOptions {
  /**
   * Brotli quality (0..11) for all three sections. Default: 11 for sections up to
   * BEST_QUALITY_LIMIT (8 MiB raw), 9 above (quality 11 runs at well under 1 MB/s).
   */
  quality?: number;
}

export interface BsdiffResult {
  /** size of the patch file written */
  bytes: number;
  /** sha256 (hex) of the patch file written */
  sha256: string;
}

const compress = promisify(brotliCompress);

async function readCapped(path: PathLike, role: string): Promise<Buffer> {
  const shown = showPath(path);
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EINVAL' });
    size = st.size;
  } catch (err) {
    throw ioError(`read ${role}`, shown, err);
  }
  if (size > BSDIFF_MAX_SOURCE_BYTES) {
    throw new DeltaimgError(
      'USAGE',
      `bsdiff ${role} ${shown} is ${size} bytes, above the ${BSDIFF_MAX_SOURCE_BYTES}-byte limit; use VCDIFF for it`,
    );
  }
  try {
    return await readFile(path);
  } catch (err) {
    throw ioError(`read ${role}`, shown, err);
  }
}

function encodeControl(steps: ControlStep[]): Uint8Array {
  const out = new VarintWriter();
  for (const step of steps) {
    out.writeUnsigned(step.diffLength);
    out.writeUnsigned(step.extraLength);
    out.writeSigned(step.seek);
  }
  return out.result();
}

function checkQuality(quality: number | undefined): void {
  if (quality === undefined) return;
  if (!Number.isInteger(quality) || quality < 0 || quality > 11) {
    throw new DeltaimgError('USAGE', `bsdiff brotli quality must be an integer from 0 to 11 (got ${quality})`);
  }
}

async function compressSection(raw: Uint8Array, quality: number | undefined): Promise<Buffer> {
  return compress(raw, {
    params: {
      [zlibConstants.BROTLI_PARAM_QUALITY]: quality ?? (raw.length <= BEST_QUALITY_LIMIT ? 11 : 9),
      [zlibConstants.BROTLI_PARAM_LGWIN]: 24,
      [zlibConstants.BROTLI_PARAM_SIZE_HINT]: raw.length,
    },
  });
}

/** Writes `sourcePath` -> `targetPath` as a DIMGBSD1 patch to `patchPath` (replacing it). */
export async function bsdiffEncode(
  sourcePath: PathLike,
  targetPath: PathLike,
  patchPath: PathLike,
  opts: BsdiffOptions = {},
): Promise<BsdiffResult> {
  checkQuality(opts.quality);
  const source = await readCapped(sourcePath, 'source');
  const target = await readCapped(targetPath, 'target');
  return writePatch(patchPath, await encodePatchParts(source, target, opts));
}

/** The DIMGBSD1 patch turning `source` into `target`, in memory (bytes in, patch out). */
export async function bsdiffEncodeBytes(source: Uint8Array, target: Uint8Array, opts: BsdiffOptions = {}): Promise<Buffer> {
  checkQuality(opts.quality);
  return Buffer.concat(await encodePatchParts(source, target, opts));
}

/**
 * The patch of a target equal to its source: one step over all of it, every difference zero.
 * No suffix array: segmented encodes use it for the unchanged stretches of huge files.
 */
export async function bsdiffIdentityBytes(target: Uint8Array, opts: BsdiffOptions = {}): Promise<Buffer> {
  checkQuality(opts.quality);
  const steps = target.length > 0 ? [{ diffLength: target.length, extraLength: 0, seek: 0 }] : [];
  return Buffer.concat(
    await packPatch({ steps, diff: new Uint8Array(target.length), extra: new Uint8Array(0) }, target.length, target, opts),
  );
}

/** Header and the three compressed sections, in file order. */
async function encodePatchParts(source: Uint8Array, target: Uint8Array, opts: BsdiffOptions): Promise<Buffer[]> {
  return packPatch(computeDelta(source, target), source.length, target, opts);
}

async function packPatch(delta: Delta, sourceSize: number, target: Uint8Array, opts: BsdiffOptions): Promise<Buffer[]> {
  const raw: Record<SectionName, Uint8Array> = {
    control: encodeControl(delta.steps),
    diff: encodeSparseDiff(delta.diff),
    extra: delta.extra,
  };
  const stored = await Promise.all(SECTION_NAMES.map((name) => compressSection(raw[name], opts.quality)));
  const header: HeaderFields = {
    sourceSize,
    targetSize: target.length,
    sections: {
      control: { rawLength: raw.control.length, storedLength: stored[0]!.length },
      diff: { rawLength: raw.diff.length, storedLength: stored[1]!.length },
      extra: { rawLength: raw.extra.length, storedLength: stored[2]!.length },
    },
    diffBytes: delta.diff.length,
    targetSha256: createHash('sha256').update(target).digest(),
  };
  return [encodeHeader(header), ...stored];
}

async function writePatch(patchPath: PathLike, parts: Buffer[]): Promise<BsdiffResult> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    const fh = await open(patchPath, 'w');
    try {
      for (const part of parts) {
        await writeAll(fh, part);
        hash.update(part);
        bytes += part.length;
      }
    } finally {
      await fh.close();
    }
  } catch (err) {
    await rm(patchPath, { force: true }).catch(() => undefined);
    throw ioError('write patch', showPath(patchPath), err);
  }
  return { bytes, sha256: hash.digest('hex') };
}
