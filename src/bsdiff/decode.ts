/**
 * bsdiff decoding, streaming and bounded: the three sections are decompressed through
 * independent streams over the patch file, the source is read by position (a few cached
 * blocks), and the output is written sequentially. Every step is checked against the
 * header before any byte of it is produced.
 */
import { open, rm, type FileHandle } from 'node:fs/promises';
import { openRegular } from '../util/regular-file.js';
import { DeltaimgError, ioError } from '../util/errors.js';
import { decodeHeader, MAX_HEADER_BYTES, sectionOffsets, SECTION_NAMES, unzigzag, type PatchHeader, type SectionName } from './format.js';
import { HashedOutput, SourceBlocks } from './io.js';
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

async function readHeader(fh: FileHandle, size: number, shownPatch: string): Promise<PatchHeader> {
  const bytes = Buffer.alloc(Math.min(size, MAX_HEADER_BYTES));
  try {
    await fh.read(bytes, 0, bytes.length, 0);
  } catch (err) {
    throw ioError('read patch', shownPatch, err);
  }
  return decodeHeader(bytes, size, shownPatch);
}

/** Applies `patchPath` to `sourcePath`, creating `outPath` (which must not exist). */
export async function bsdiffDecode(sourcePath: PathLike, patchPath: PathLike, outPath: PathLike, opts: { targetSize?: number } = {}): Promise<BsdiffDecodeResult> {
  const shownPatch = showPath(patchPath);
  const patch = await openRead(patchPath, 'patch');
  let header: PatchHeader;
  try {
    header = await readHeader(patch.fh, patch.size, shownPatch);
  } finally {
    await patch.fh.close();
  }
  checkTargetSize(header, opts.targetSize, shownPatch);
  const source = await openRead(sourcePath, 'source');
  try {
    if (source.size !== header.sourceSize) {
      throw new DeltaimgError(
        'WRONG_SOURCE',
        `bsdiff patch ${shownPatch} was made against a ${header.sourceSize}-byte source, but ${showPath(sourcePath)} has ${source.size} bytes`,
      );
    }
    return await writeOutput(header, new SourceBlocks(source.fh, source.size, showPath(sourcePath)), patchPath, outPath);
  } finally {
    await source.fh.close();
  }
}

async function writeOutput(header: PatchHeader, source: SourceBlocks, patchPath: PathLike, outPath: PathLike): Promise<BsdiffDecodeResult> {
  const shownOut = showPath(outPath);
  let out: FileHandle;
  try {
    out = await open(outPath, 'wx');
  } catch (err) {
    throw ioError('create output', shownOut, err);
  }
  const offsets = sectionOffsets(header);
  const shownPatch = showPath(patchPath);
  const sections = Object.fromEntries(
    SECTION_NAMES.map((name) => [name, new SectionReader(patchPath, offsets[name], header.sections[name], name, shownPatch)]),
  ) as Sections;
  let ok = false;
  try {
    const output = new HashedOutput(out, shownOut);
    await applySteps(header, source, sections, output, shownPatch);
    for (const name of SECTION_NAMES) await sections[name].finish();
    await output.flush();
    const digest = output.digest();
    if (!digest.equals(header.targetSha256)) {
      throw new DeltaimgError('CORRUPT_DELTA', `bsdiff patch ${shownPatch} produced output whose sha256 differs from the one it records (damaged patch or wrong source)`);
    }
    ok = true;
    return { outputBytes: output.written, outputSha256: digest.toString('hex') };
  } finally {
    for (const name of SECTION_NAMES) sections[name].destroy();
    await out.close().catch(() => undefined);
    if (!ok) await rm(outPath, { force: true }).catch(() => undefined);
  }
}

async function applySteps(header: PatchHeader, source: SourceBlocks, sections: Sections, output: HashedOutput, shownPatch: string): Promise<void> {
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
  source: SourceBlocks,
  sourceAt: number,
  length: number,
  scratch: { source: Buffer; diff: Buffer },
  output: HashedOutput,
): Promise<void> {
  for (let done = 0; done < length; ) {
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
  for (let done = 0; done < length; ) {
    const room = output.reserve(length - done);
    const bytes = await extra.take(room.length);
    room.set(bytes);
    await output.commit(bytes.length);
    done += bytes.length;
  }
}
