/**
 * bsdiff encoding: both files and the source's suffix array are held in memory, which is
 * why inputs are capped at BSDIFF_MAX_SOURCE_BYTES (about 9 bytes of heap per source byte,
 * plus 3 per target byte); callers fall back to VCDIFF above it.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlibConstants } from 'node:zlib';
import { DeltaimgError, ioError } from '../util/errors.js';
import { encodeHeader, SECTION_NAMES, VarintWriter, type HeaderFields, type SectionName } from './format.js';
import { computeDelta, type ControlStep } from './match.js';
import { writeAll } from './io.js';
import { showPath, type PathLike } from './paths.js';
import { encodeSparseDiff } from './sparse.js';

/** Largest source or target bsdiff accepts (memory bound of the in-memory encoder). */
export const BSDIFF_MAX_SOURCE_BYTES = 64 * 1024 * 1024;

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
    throw new DeltaimgError('USAGE', `bsdiff ${role} ${shown} is ${size} bytes, above the ${BSDIFF_MAX_SOURCE_BYTES}-byte limit; use VCDIFF for it`);
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
export async function bsdiffEncode(sourcePath: PathLike, targetPath: PathLike, patchPath: PathLike, opts: BsdiffOptions = {}): Promise<BsdiffResult> {
  checkQuality(opts.quality);
  const source = await readCapped(sourcePath, 'source');
  const target = await readCapped(targetPath, 'target');
  const delta = computeDelta(source, target);
  const raw: Record<SectionName, Uint8Array> = { control: encodeControl(delta.steps), diff: encodeSparseDiff(delta.diff), extra: delta.extra };
  const stored = await Promise.all(SECTION_NAMES.map((name) => compressSection(raw[name], opts.quality)));
  const header: HeaderFields = {
    sourceSize: source.length,
    targetSize: target.length,
    sections: {
      control: { rawLength: raw.control.length, storedLength: stored[0]!.length },
      diff: { rawLength: raw.diff.length, storedLength: stored[1]!.length },
      extra: { rawLength: raw.extra.length, storedLength: stored[2]!.length },
    },
    diffBytes: delta.diff.length,
    targetSha256: createHash('sha256').update(target).digest(),
  };
  return writePatch(patchPath, [encodeHeader(header), ...stored]);
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
