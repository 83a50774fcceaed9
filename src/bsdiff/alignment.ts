/**
 * The alignment a patch encodes: which target bytes were matched (approximately) against which
 * source bytes. Read back from a finished patch's control sections (DIMGBSD1, or each segment of
 * a DIMGBSD2, its positions translated through the segment's source ranges), so an encoder can
 * learn where things moved from a first pass (the executable transform's address relabelling,
 * src/exefilter/address-map.ts).
 */
import { readFile } from 'node:fs/promises';
import { brotliDecompressSync } from 'node:zlib';
import { DeltaimgError, ioError } from '../util/errors.js';
import {
  decodeHeader,
  decodeSegmentTable,
  sectionOffsets,
  SEGMENTED_MAGIC,
  tableLength,
  TRAILER_BYTES,
  unzigzag,
  VarintReader,
  type Segment,
} from './format.js';
import { showPath, type PathLike } from './paths.js';

/** `length` target bytes at `target` were coded as differences from the source at `source`. */
export interface MatchedBlock {
  source: number;
  target: number;
  length: number;
}

/** The matched blocks of the patch at `patchPath` (file offsets of source and target), in target order. */
export async function bsdiffMatches(patchPath: PathLike): Promise<MatchedBlock[]> {
  const shown = showPath(patchPath);
  let patch: Buffer;
  try {
    patch = await readFile(patchPath);
  } catch (err) {
    throw ioError('read patch', shown, err);
  }
  if (!patch.subarray(0, SEGMENTED_MAGIC.length).equals(SEGMENTED_MAGIC)) return wholeMatches(patch, shown);
  if (patch.length < SEGMENTED_MAGIC.length + TRAILER_BYTES)
    throw new DeltaimgError('CORRUPT_DELTA', `bsdiff patch ${shown} is damaged: shorter than its segment table`);
  const length = tableLength(patch.subarray(patch.length - TRAILER_BYTES), patch.length, shown);
  const table = decodeSegmentTable(
    patch.subarray(patch.length - TRAILER_BYTES - length, patch.length - TRAILER_BYTES),
    patch.length,
    shown,
  );
  const out: MatchedBlock[] = [];
  let start = SEGMENTED_MAGIC.length;
  let targetStart = 0;
  for (const [i, segment] of table.segments.entries()) {
    const blocks = wholeMatches(patch.subarray(start, start + segment.patchLength), `${shown} (segment ${i})`);
    for (const b of blocks) out.push(...throughRanges(b, segment.ranges, targetStart));
    start += segment.patchLength;
    targetStart += segment.targetLength;
  }
  return out;
}

/** A DIMGBSD1 patch's blocks. */
function wholeMatches(patch: Buffer, shown: string): MatchedBlock[] {
  const header = decodeHeader(patch, patch.length, shown);
  const at = sectionOffsets(header).control;
  const corrupt = () => new DeltaimgError('CORRUPT_DELTA', `bsdiff patch ${shown} is damaged: its control section does not decode`);
  let control: Buffer;
  try {
    control = brotliDecompressSync(patch.subarray(at, at + header.sections.control.storedLength), {
      maxOutputLength: Math.max(1, header.sections.control.rawLength),
    });
  } catch {
    throw corrupt();
  }
  const reader = new VarintReader(control, 0, control.length, corrupt, corrupt);
  const blocks: MatchedBlock[] = [];
  let source = 0;
  let target = 0;
  while (reader.at < control.length) {
    const diffLength = reader.next();
    const extraLength = reader.next();
    const seek = unzigzag(reader.next());
    if (diffLength > 0) blocks.push({ source, target, length: diffLength });
    source += diffLength + seek;
    target += diffLength + extraLength;
  }
  return blocks;
}

/** A block of a segment (source positions in its ranges laid end to end) as blocks of the files. */
function throughRanges(b: MatchedBlock, ranges: readonly Segment['ranges'][number][], targetStart: number): MatchedBlock[] {
  const out: MatchedBlock[] = [];
  let rangeStart = 0;
  for (const r of ranges) {
    const from = Math.max(b.source, rangeStart);
    const to = Math.min(b.source + b.length, rangeStart + r.length);
    if (from < to)
      out.push({ source: r.offset + (from - rangeStart), target: targetStart + b.target + (from - b.source), length: to - from });
    rangeStart += r.length;
  }
  return out;
}
