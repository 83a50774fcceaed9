/**
 * bsdiff decoding, streaming and bounded: the three sections are decompressed through
 * independent streams over the patch file, the source is read by position (a few cached
 * blocks), and the output is written sequentially. Every step is checked against the
 * header before any byte of it is produced.
 */
import { open, rm, type FileHandle } from 'node:fs/promises';
import { openRegular } from '../util/regular-file.js';
import { DeltaimgError, ioError } from '../util/errors.js';
import {
  decodeHeader,
  decodeSegmentTable,
  MAX_HEADER_BYTES,
  sectionOffsets,
  SECTION_NAMES,
  SEGMENTED_MAGIC,
  tableLength,
  TRAILER_BYTES,
  unzigzag,
  type PatchHeader,
  type SectionName,
  type SegmentTable,
} from './format.js';
import { HashedOutput, SourceBlocks, type SourceReader } from './io.js';
import { showPath, type PathLike } from './paths.js';
import { SectionReader } from './section.js';
import { SparseDiffReader } from './sparse.js';
import { checkTargetSize } from './decode-memory.js';

export interface BsdiffDecodeResult {
  outputBytes: number;
  /** sha256 (hex) of the output written */
  outputSha256: string;
}

type Sections = Record<SectionName, SectionReader>;

/**
 * Peak memory of one streaming decode, whatever the file sizes: three brotli decoders (each
 * up to its 16 MiB window), the cached source blocks, the output buffer and scratch.
 */
export const BSDIFF_DECODE_MEMORY = 64 * 1024 * 1024;

async function openRead(path: PathLike, role: string): Promise<{ fh: FileHandle; size: number }> {
  try {
    return await openRegular(path);
  } catch (err) {
    throw ioError(`open ${role}`, showPath(path), err);
  }
}

/**
 * Applies `patchPath` (DIMGBSD1, or DIMGBSD2: segmented) to `sourcePath`, creating `outPath`
 * (which must not exist). Runs of zero blocks in the output are left as holes.
 */
export async function bsdiffDecode(
  sourcePath: PathLike,
  patchPath: PathLike,
  outPath: PathLike,
  opts: { targetSize?: number } = {},
): Promise<BsdiffDecodeResult> {
  const shownPatch = showPath(patchPath);
  const patch = await openRead(patchPath, 'patch');
  let plan: DecodePlan;
  try {
    plan = await readPlan(patch.fh, patch.size, shownPatch);
  } finally {
    await patch.fh.close();
  }
  checkTargetSize(plan, opts.targetSize, shownPatch);
  const source = await openRead(sourcePath, 'source');
  try {
    if (source.size !== plan.sourceSize) {
      throw new DeltaimgError(
        'WRONG_SOURCE',
        `bsdiff patch ${shownPatch} was made against a ${plan.sourceSize}-byte source, but ${showPath(sourcePath)} has ${source.size} bytes`,
      );
    }
    const blocks = new SourceBlocks(source.fh, source.size, showPath(sourcePath));
    return await writeOutput(outPath, plan.targetSha256, shownPatch, (output) => applyPlan(plan, blocks, patchPath, output));
  } finally {
    await source.fh.close();
  }
}

/** What a patch file asks for: one whole patch, or segments each against its source ranges. */
type DecodePlan =
  | { kind: 'whole'; sourceSize: number; targetSize: number; targetSha256: Buffer; header: PatchHeader }
  | { kind: 'segmented'; sourceSize: number; targetSize: number; targetSha256: Buffer; table: SegmentTable };

async function readPlan(fh: FileHandle, size: number, shownPatch: string): Promise<DecodePlan> {
  const magic = await readAt(fh, 0, Math.min(size, SEGMENTED_MAGIC.length), shownPatch);
  if (!magic.equals(SEGMENTED_MAGIC)) {
    const header = await readHeader(fh, 0, size, shownPatch);
    return { kind: 'whole', sourceSize: header.sourceSize, targetSize: header.targetSize, targetSha256: header.targetSha256, header };
  }
  if (size < SEGMENTED_MAGIC.length + TRAILER_BYTES)
    throw new DeltaimgError('CORRUPT_DELTA', `bsdiff patch ${shownPatch} is damaged: shorter than its segment table`);
  const length = tableLength(await readAt(fh, size - TRAILER_BYTES, TRAILER_BYTES, shownPatch), size, shownPatch);
  const table = decodeSegmentTable(await readAt(fh, size - TRAILER_BYTES - length, length, shownPatch), size, shownPatch);
  return { kind: 'segmented', sourceSize: table.sourceSize, targetSize: table.targetSize, targetSha256: table.targetSha256, table };
}

async function readAt(fh: FileHandle, position: number, length: number, shownPatch: string): Promise<Buffer> {
  const bytes = Buffer.alloc(length);
  try {
    await fh.read(bytes, 0, length, position);
  } catch (err) {
    throw ioError('read patch', shownPatch, err);
  }
  return bytes;
}

async function readHeader(fh: FileHandle, start: number, size: number, shownPatch: string): Promise<PatchHeader> {
  return decodeHeader(await readAt(fh, start, Math.min(size, MAX_HEADER_BYTES), shownPatch), size, shownPatch);
}

async function applyPlan(plan: DecodePlan, source: SourceBlocks, patchPath: PathLike, output: HashedOutput): Promise<void> {
  const shownPatch = showPath(patchPath);
  if (plan.kind === 'whole') {
    await applyPatch(plan.header, 0, source, patchPath, output);
    return;
  }
  const patch = await openRead(patchPath, 'patch');
  try {
    let start = SEGMENTED_MAGIC.length;
    for (const [i, segment] of plan.table.segments.entries()) {
      const shown = `${shownPatch} (segment ${i})`;
      const header = await readHeader(patch.fh, start, segment.patchLength, shown);
      const region = new SourceRegion(source, segment.ranges);
      if (header.sourceSize !== region.size || header.targetSize !== segment.targetLength) {
        throw new DeltaimgError('CORRUPT_DELTA', `bsdiff patch ${shown} is damaged: its sizes disagree with the segment table`);
      }
      output.startSegment();
      await applyPatch(header, start, region, patchPath, output, shown);
      if (!output.segmentDigest().equals(header.targetSha256)) {
        throw new DeltaimgError(
          'CORRUPT_DELTA',
          `bsdiff patch ${shown} produced output whose sha256 differs from the one it records (damaged patch or wrong source)`,
        );
      }
      start += segment.patchLength;
    }
  } finally {
    await patch.fh.close();
  }
}

/** Runs one DIMGBSD1 patch that starts at `start` in the patch file. */
async function applyPatch(
  header: PatchHeader,
  start: number,
  source: SourceReader,
  patchPath: PathLike,
  output: HashedOutput,
  shown = showPath(patchPath),
): Promise<void> {
  const offsets = sectionOffsets(header);
  const sections = Object.fromEntries(
    SECTION_NAMES.map((name) => [name, new SectionReader(patchPath, start + offsets[name], header.sections[name], name, shown)]),
  ) as Sections;
  try {
    await applySteps(header, source, sections, output, shown);
    for (const name of SECTION_NAMES) await sections[name].finish();
  } finally {
    for (const name of SECTION_NAMES) sections[name].destroy();
  }
}

/** Creates `outPath`, lets `fill` write it, checks its sha256; removes it on any failure. */
async function writeOutput(
  outPath: PathLike,
  targetSha256: Buffer,
  shownPatch: string,
  fill: (output: HashedOutput) => Promise<void>,
): Promise<BsdiffDecodeResult> {
  const shownOut = showPath(outPath);
  let out: FileHandle;
  try {
    out = await open(outPath, 'wx');
  } catch (err) {
    throw ioError('create output', shownOut, err);
  }
  let ok = false;
  try {
    const output = new HashedOutput(out, shownOut);
    await fill(output);
    await output.finish();
    const digest = output.digest();
    if (!digest.equals(targetSha256)) {
      throw new DeltaimgError(
        'CORRUPT_DELTA',
        `bsdiff patch ${shownPatch} produced output whose sha256 differs from the one it records (damaged patch or wrong source)`,
      );
    }
    ok = true;
    return { outputBytes: output.written, outputSha256: digest.toString('hex') };
  } finally {
    await out.close().catch(() => undefined);
    if (!ok) await rm(outPath, { force: true }).catch(() => undefined);
  }
}

/** A segment's source: its ranges of the source file, read as one run of bytes. */
class SourceRegion implements SourceReader {
  readonly size: number;
  /** region offset at which each range starts */
  private readonly starts: number[] = [];

  constructor(
    private readonly source: SourceBlocks,
    private readonly ranges: readonly { offset: number; length: number }[],
  ) {
    let at = 0;
    for (const r of ranges) {
      this.starts.push(at);
      at += r.length;
    }
    this.size = at;
  }

  async readInto(into: Uint8Array, position: number): Promise<void> {
    let i = this.rangeAt(position);
    for (let done = 0; done < into.length; i++) {
      const range = this.ranges[i]!;
      const within = position + done - this.starts[i]!;
      const n = Math.min(range.length - within, into.length - done);
      await this.source.readInto(into.subarray(done, done + n), range.offset + within);
      done += n;
    }
  }

  /** Index of the range holding region offset `position` (binary search). */
  private rangeAt(position: number): number {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.starts[mid]! <= position) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

async function applySteps(
  header: PatchHeader,
  source: SourceReader,
  sections: Sections,
  output: HashedOutput,
  shownPatch: string,
): Promise<void> {
  const corrupt = (why: string) => new DeltaimgError('CORRUPT_DELTA', `bsdiff patch ${shownPatch} is damaged: ${why}`);
  const diff = new SparseDiffReader(sections.diff, header.diffBytes, corrupt);
  const scratch = { source: Buffer.allocUnsafe(SCRATCH_BYTES), diff: Buffer.allocUnsafe(SCRATCH_BYTES) };
  let produced = 0;
  let sourceAt = 0;
  for (let step = 0; produced < header.targetSize; step++) {
    const diffLength = await sections.control.varint();
    const extraLength = await sections.control.varint();
    const seek = unzigzag(await sections.control.varint());
    if (diffLength + extraLength > header.targetSize - produced) throw corrupt(`step ${step} runs past the target size`);
    if (sourceAt + diffLength > header.sourceSize) throw corrupt(`step ${step} reads past the end of the source`);
    if (step > 0 && diffLength === 0 && extraLength === 0) throw corrupt(`step ${step} is empty`);
    await addDiff(diff, source, sourceAt, diffLength, scratch, output);
    await copyExtra(sections.extra, extraLength, output);
    produced += diffLength + extraLength;
    sourceAt += diffLength + seek;
    if (sourceAt < 0 || sourceAt > header.sourceSize) throw corrupt(`step ${step} seeks outside the source`);
  }
  if (!diff.done) throw corrupt('the diff section holds more bytes than the control steps use');
}

const SCRATCH_BYTES = 64 * 1024;

/** Output = diff byte + source byte (mod 256), for `length` bytes from `sourceAt`. */
async function addDiff(
  diff: SparseDiffReader,
  source: SourceReader,
  sourceAt: number,
  length: number,
  scratch: { source: Buffer; diff: Buffer },
  output: HashedOutput,
): Promise<void> {
  for (let done = 0; done < length;) {
    const room = output.reserve(Math.min(length - done, SCRATCH_BYTES));
    const n = room.length;
    const delta = scratch.diff.subarray(0, n);
    const base = scratch.source.subarray(0, n);
    await diff.fill(delta);
    await source.readInto(base, sourceAt + done);
    for (let i = 0; i < n; i++) room[i] = (delta[i]! + base[i]!) & 0xff;
    await output.commit(n);
    done += n;
  }
}

async function copyExtra(extra: SectionReader, length: number, output: HashedOutput): Promise<void> {
  for (let done = 0; done < length;) {
    const room = output.reserve(length - done);
    const bytes = await extra.take(room.length);
    room.set(bytes);
    await output.commit(bytes.length);
    done += bytes.length;
  }
}
