/**
 * Segmented bsdiff encoding (DIMGBSD2, see format.ts): for a pair too large to encode whole
 * within a memory budget. One streaming pass fingerprints the source; then, for each target
 * segment in turn, its anchors locate the source ranges it comes from (moved code is found
 * anywhere in the source), the suffix array is built on that region only, and the segment's
 * DIMGBSD1 patch is appended. Memory: one segment, one region and its suffix array, the index.
 */
import { createHash } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { openRegular } from '../util/regular-file.js';
import { DeltaimgError, ioError } from '../util/errors.js';
import { bsdiffEncodeBytes, bsdiffEncodeMemory, bsdiffIdentityBytes, type BsdiffOptions, type BsdiffResult } from './encode.js';
import { AnchorScanner, chooseRegion, fingerprintMemory, SourceFingerprints, spacingFor, type SourceRange } from './fingerprints.js';
import { encodeSegmentTable, MAX_RANGES, SEGMENTED_MAGIC, type Segment } from './format.js';
import { writeAll } from './io.js';
import { showPath, type PathLike } from './paths.js';

const MiB = 1024 * 1024;

/** Sizes of the parts a segmented encode holds at once. */
export interface SegmentPlan {
  /** target bytes per segment */
  segmentBytes: number;
  /** source bytes (in a few ranges) each segment is matched against */
  regionBytes: number;
}

/** The smallest region worth a suffix array; below it a budget is too small for bsdiff. */
const MIN_REGION_BYTES = 1 * MiB;
/** Source read in chunks of this size while fingerprinting. */
const SCAN_CHUNK_BYTES = 4 * MiB;

/**
 * The largest segments that fit `memoryBytes` for this pair, or null when even a 1 MiB region
 * does not. The region is ~1.6x the segment: recompiled code drifts, and moved parts need room.
 */
export function planSegments(memoryBytes: number, sourceBytes: number, targetBytes: number): SegmentPlan | null {
  const room = memoryBytes - fingerprintMemory(sourceBytes);
  // bsdiffEncodeMemory(region, 0.6 * region) = 7R + 2.4R + 16 MiB.
  let regionBytes = Math.floor((room - 16 * MiB) / 9.4);
  if (regionBytes < MIN_REGION_BYTES) return null;
  regionBytes = Math.min(regionBytes, Math.max(sourceBytes, MIN_REGION_BYTES));
  const segmentBytes = Math.max(MIN_REGION_BYTES / 2, Math.min(Math.floor(regionBytes * 0.6), targetBytes));
  return { segmentBytes, regionBytes };
}

/** Peak memory of a segmented encode with this plan. */
export function segmentedEncodeMemory(plan: SegmentPlan, sourceBytes: number): number {
  return bsdiffEncodeMemory(plan.regionBytes, plan.segmentBytes) + fingerprintMemory(sourceBytes);
}

/** Writes `sourcePath` -> `targetPath` as a DIMGBSD2 patch to `patchPath` (replacing it). */
export async function bsdiffEncodeSegmented(
  sourcePath: PathLike,
  targetPath: PathLike,
  patchPath: PathLike,
  plan: SegmentPlan,
  opts: BsdiffOptions = {},
): Promise<BsdiffResult> {
  checkPlan(plan);
  const source = await openInput(sourcePath, 'source');
  try {
    const target = await openInput(targetPath, 'target');
    try {
      const index = await fingerprint(source);
      return await writeSegments(source, target, index, patchPath, plan, opts);
    } finally {
      await target.fh.close();
    }
  } finally {
    await source.fh.close();
  }
}

function checkPlan(plan: SegmentPlan): void {
  const ok = (n: number) => Number.isSafeInteger(n) && n > 0;
  if (!ok(plan.segmentBytes) || !ok(plan.regionBytes)) {
    throw new DeltaimgError('USAGE', `bsdiff segments need positive sizes (got segment ${plan.segmentBytes}, region ${plan.regionBytes})`);
  }
}

interface Input {
  fh: FileHandle;
  size: number;
  shown: string;
}

async function openInput(path: PathLike, role: string): Promise<Input> {
  const shown = showPath(path);
  try {
    const { fh, size } = await openRegular(path);
    return { fh, size, shown };
  } catch (err) {
    throw ioError(`read ${role}`, shown, err);
  }
}

/** Reads input[offset, offset + into.length) fully. */
async function readAt(input: Input, into: Uint8Array, offset: number): Promise<void> {
  for (let done = 0; done < into.length;) {
    let n: number;
    try {
      ({ bytesRead: n } = await input.fh.read(into, done, into.length - done, offset + done));
    } catch (err) {
      throw ioError('read', input.shown, err);
    }
    if (n === 0) throw ioError('read', input.shown, Object.assign(new Error('file shrank while deltaimg was reading it'), { code: 'EIO' }));
    done += n;
  }
}

async function fingerprint(source: Input): Promise<SourceFingerprints> {
  const index = new SourceFingerprints(spacingFor(source.size));
  const chunk = Buffer.allocUnsafe(Math.min(SCAN_CHUNK_BYTES, Math.max(1, source.size)));
  for (let at = 0; at < source.size; at += chunk.length) {
    const part = chunk.subarray(0, Math.min(chunk.length, source.size - at));
    await readAt(source, part, at);
    index.add(part, at);
  }
  index.seal();
  return index;
}

async function writeSegments(
  source: Input,
  target: Input,
  index: SourceFingerprints,
  patchPath: PathLike,
  plan: SegmentPlan,
  opts: BsdiffOptions,
): Promise<BsdiffResult> {
  const shownPatch = showPath(patchPath);
  let out: FileHandle;
  try {
    out = await open(patchPath, 'w');
  } catch (err) {
    throw ioError('write patch', shownPatch, err);
  }
  const patchHash = createHash('sha256');
  const targetHash = createHash('sha256');
  let bytes = 0;
  const emit = async (part: Uint8Array) => {
    try {
      await writeAll(out, part);
    } catch (err) {
      throw ioError('write patch', shownPatch, err);
    }
    patchHash.update(part);
    bytes += part.length;
  };
  let ok = false;
  try {
    await emit(SEGMENTED_MAGIC);
    const segments: Segment[] = [];
    const segmentBuffer = Buffer.allocUnsafe(Math.min(plan.segmentBytes, Math.max(1, target.size)));
    const gap = 2 ** (index.spacing.bits + 6);
    const scratch = Buffer.allocUnsafe(Math.min(SCAN_CHUNK_BYTES, segmentBuffer.length));
    for (let at = 0; at < target.size; at += segmentBuffer.length) {
      const segment = segmentBuffer.subarray(0, Math.min(segmentBuffer.length, target.size - at));
      await readAt(target, segment, at);
      targetHash.update(segment);
      const unchanged = await sameAsSource(source, segment, at, scratch);
      const ranges = unchanged
        ? [{ offset: at, length: segment.length }]
        : regionFor(index, segment, at, source.size, target.size, plan.regionBytes, gap);
      const patch = unchanged
        ? await bsdiffIdentityBytes(segment, opts)
        : await bsdiffEncodeBytes(await readRegion(source, ranges), segment, opts);
      await emit(patch);
      segments.push({ targetLength: segment.length, patchLength: patch.length, ranges });
    }
    await emit(encodeSegmentTable({ sourceSize: source.size, targetSize: target.size, segments, targetSha256: targetHash.digest() }));
    ok = true;
  } finally {
    await out.close().catch(() => undefined);
    if (!ok) await rm(patchPath, { force: true }).catch(() => undefined);
  }
  return { bytes, sha256: patchHash.digest('hex') };
}

/** The source ranges the segment at target offset `at` is matched against. */
function regionFor(
  index: SourceFingerprints,
  segment: Uint8Array,
  at: number,
  sourceSize: number,
  targetSize: number,
  regionBytes: number,
  gap: number,
): SourceRange[] {
  const hits: { source: number; target: number }[] = [];
  new AnchorScanner(index.spacing).scan(segment, at, (position, key) => {
    const source = index.lookup(key);
    if (source >= 0) hits.push({ source, target: position });
  });
  const ranges = chooseRegion(hits, { offset: at, length: segment.length }, sourceSize, targetSize, regionBytes, gap);
  return ranges.length <= MAX_RANGES ? ranges : ranges.slice(0, MAX_RANGES);
}

/**
 * True when the source holds exactly `segment` at the same offset: the unchanged stretches of a
 * huge file (most of a database or of model weights) then cost no suffix array.
 */
async function sameAsSource(source: Input, segment: Buffer, at: number, scratch: Buffer): Promise<boolean> {
  if (at + segment.length > source.size) return false;
  for (let done = 0; done < segment.length; done += scratch.length) {
    const n = Math.min(scratch.length, segment.length - done);
    await readAt(source, scratch.subarray(0, n), at + done);
    if (!scratch.subarray(0, n).equals(segment.subarray(done, done + n))) return false;
  }
  return true;
}

async function readRegion(source: Input, ranges: readonly SourceRange[]): Promise<Buffer> {
  const region = Buffer.allocUnsafe(ranges.reduce((n, r) => n + r.length, 0));
  let filled = 0;
  for (const r of ranges) {
    await readAt(source, region.subarray(filled, filled + r.length), r.offset);
    filled += r.length;
  }
  return region;
}
