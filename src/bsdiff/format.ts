/**
 * The DIMGBSD1 patch file (see docs/bsdiff.md):
 *
 *   magic "DIMGBSD1" (8 bytes)
 *   nine unsigned LEB128 varints: source size, target size, diff bytes (the diff section's
 *     length once expanded), then raw (decompressed) and stored (brotli) length of the
 *     control, diff and extra sections
 *   sha256 of the target (32 bytes)
 *   control, diff, extra sections: each one brotli stream, back to back
 *
 * Control holds (diffLength, extraLength, zigzag(seek)) varint triples. The diff section
 * holds (zeroRun varint, nonzero byte) pairs, the last run without its byte (sparse.ts).
 */
import { ByteWriter } from '../util/byte-writer.js';
import { DeltaimgError } from '../util/errors.js';

export const MAGIC = Buffer.from('DIMGBSD1', 'latin1');
/** Longest possible header: magic, nine 8-byte varints, sha256. */
export const MAX_HEADER_BYTES = 8 + 9 * 8 + 32;

export type SectionName = 'control' | 'diff' | 'extra';
export const SECTION_NAMES: readonly SectionName[] = ['control', 'diff', 'extra'];

export interface SectionInfo {
  rawLength: number;
  storedLength: number;
}

export interface PatchHeader {
  sourceSize: number;
  targetSize: number;
  sections: Record<SectionName, SectionInfo>;
  /** bytes of target - source difference the diff section expands to */
  diffBytes: number;
  targetSha256: Buffer;
  /** length of the header itself (where the control section starts) */
  headerBytes: number;
}

/** What an encoder supplies; the header's own length follows from it. */
export type HeaderFields = Omit<PatchHeader, 'headerBytes'>;

/** The header's varints, in file order. */
function headerNumbers(h: HeaderFields): number[] {
  const { control, diff, extra } = h.sections;
  return [
    h.sourceSize,
    h.targetSize,
    h.diffBytes,
    control.rawLength,
    control.storedLength,
    diff.rawLength,
    diff.storedLength,
    extra.rawLength,
    extra.storedLength,
  ];
}

export function encodeHeader(header: HeaderFields): Buffer {
  const numbers = new VarintWriter();
  for (const value of headerNumbers(header)) numbers.writeUnsigned(value);
  return Buffer.concat([MAGIC, numbers.result(), header.targetSha256]);
}

/** Parses and sanity-checks a header from the patch's first bytes; `patchSize` is the file's length. */
export function decodeHeader(bytes: Buffer, patchSize: number, shownPath: string): PatchHeader {
  const corrupt = (why: string) => new DeltaimgError('CORRUPT_DELTA', `bsdiff patch ${shownPath} is damaged: ${why}`);
  if (bytes.length < MAGIC.length) throw corrupt('shorter than its header');
  if (!bytes.subarray(0, 8).equals(MAGIC)) {
    if (bytes.subarray(0, 8).equals(SEGMENTED_MAGIC)) throw corrupt('a segmented patch (DIMGBSD2) where a whole one (DIMGBSD1) belongs');
    if (bytes.subarray(0, 7).equals(MAGIC.subarray(0, 7))) {
      throw new DeltaimgError(
        'UNSUPPORTED_VERSION',
        `bsdiff patch ${shownPath} has format ${bytes.toString('latin1', 0, 8)}; this deltaimg reads DIMGBSD1 only`,
      );
    }
    throw corrupt('bad magic (not a DIMGBSD1 patch)');
  }
  const reader = new VarintReader(
    bytes,
    MAGIC.length,
    bytes.length,
    () => corrupt('shorter than its header'),
    () => corrupt('length field out of range'),
  );
  const next = () => reader.next();
  const [sourceSize, targetSize, diffBytes, controlRaw, controlStored, diffRaw, diffStored, extraRaw, extraStored] = Array.from(
    { length: 9 },
    next,
  ) as [number, number, number, number, number, number, number, number, number];
  const at = reader.at;
  if (at + 32 > bytes.length) throw corrupt('shorter than its header');
  const header: PatchHeader = {
    sourceSize,
    targetSize,
    diffBytes,
    sections: {
      control: { rawLength: controlRaw, storedLength: controlStored },
      diff: { rawLength: diffRaw, storedLength: diffStored },
      extra: { rawLength: extraRaw, storedLength: extraStored },
    },
    targetSha256: Buffer.from(bytes.subarray(at, at + 32)),
    headerBytes: at + 32,
  };
  const total = header.headerBytes + controlStored + diffStored + extraStored;
  if (total !== patchSize) throw corrupt(`header and sections add up to ${total} bytes but the file has ${patchSize}`);
  if (diffBytes + extraRaw !== targetSize) throw corrupt('diff and extra lengths do not add up to the target size');
  return header;
}

/** Offset of each section's stored bytes in the patch file. */
export function sectionOffsets(header: PatchHeader): Record<SectionName, number> {
  const control = header.headerBytes;
  const diff = control + header.sections.control.storedLength;
  const extra = diff + header.sections.diff.storedLength;
  return { control, diff, extra };
}

/** The control section's varints: the shared byte writer plus zigzag-coded signed numbers. */
export class VarintWriter extends ByteWriter {
  /** Unsigned LEB128 of a non-negative safe integer. */
  writeUnsigned(value: number): void {
    this.varint(value);
  }

  writeByte(value: number): void {
    this.byte(value);
  }

  /** Zigzag: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ... so small seeks of either sign stay short. */
  writeSigned(value: number): void {
    this.varint(value < 0 ? -value * 2 - 1 : value * 2);
  }
}

/** Reads unsigned LEB128 varints (at most MAX_VARINT_BYTES, safe integers) from bytes[at..end). */
export class VarintReader {
  constructor(
    private readonly bytes: Buffer,
    public at: number,
    private readonly end: number,
    private readonly truncated: () => Error,
    private readonly oversized: () => Error,
  ) {}

  next(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (this.at >= this.end) throw this.truncated();
      const byte = this.bytes[this.at++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (value > Number.MAX_SAFE_INTEGER) break;
        return value;
      }
      scale *= 0x80;
    }
    throw this.oversized();
  }
}

export function unzigzag(value: number): number {
  return value % 2 === 1 ? -(value + 1) / 2 : value / 2;
}

/** A varint longer than this cannot hold a safe integer (7 bits per byte, 53 bits). */
export const MAX_VARINT_BYTES = 8;

/**
 * DIMGBSD2, a segmented patch (docs/bsdiff.md): for files too large to encode whole within a
 * memory budget. The target is cut into segments; each is a complete DIMGBSD1 patch against its
 * own region of the source (a few ranges, concatenated), so neither side ever holds a file whole.
 *
 *   magic "DIMGBSD2" (8 bytes)
 *   the segments' DIMGBSD1 patches, back to back
 *   table: varints source size, target size, segment count, then per segment: target length,
 *     patch length, range count, (source offset, length) per range
 *   sha256 of the whole target (32 bytes)
 *   table length, including the sha256 (8 bytes, little-endian): the file's last bytes
 *
 * The table sits at the end because the encoder learns each patch's length only after writing it.
 */
export const SEGMENTED_MAGIC = Buffer.from('DIMGBSD2', 'latin1');
export const TRAILER_BYTES = 8;
/** A table longer than this is refused before it is read (a million segments of a few ranges). */
export const MAX_TABLE_BYTES = 64 * 1024 * 1024;
/** Ranges per segment region, at most. */
export const MAX_RANGES = 4096;

export interface Segment {
  targetLength: number;
  patchLength: number;
  ranges: { offset: number; length: number }[];
}

export interface SegmentTable {
  sourceSize: number;
  targetSize: number;
  segments: Segment[];
  targetSha256: Buffer;
}

/** The table and the trailer that ends the file. */
export function encodeSegmentTable(t: SegmentTable): Buffer {
  const w = new VarintWriter();
  w.writeUnsigned(t.sourceSize);
  w.writeUnsigned(t.targetSize);
  w.writeUnsigned(t.segments.length);
  for (const s of t.segments) {
    w.writeUnsigned(s.targetLength);
    w.writeUnsigned(s.patchLength);
    w.writeUnsigned(s.ranges.length);
    for (const r of s.ranges) {
      w.writeUnsigned(r.offset);
      w.writeUnsigned(r.length);
    }
  }
  const table = Buffer.concat([w.result(), t.targetSha256]);
  const trailer = Buffer.alloc(TRAILER_BYTES);
  trailer.writeBigUInt64LE(BigInt(table.length));
  return Buffer.concat([table, trailer]);
}

/** Length of the table from the file's last TRAILER_BYTES, checked against the file size. */
export function tableLength(trailer: Buffer, patchSize: number, shownPath: string): number {
  const n = trailer.readBigUInt64LE(0);
  if (n < 32n || n > BigInt(Math.min(MAX_TABLE_BYTES, patchSize - SEGMENTED_MAGIC.length - TRAILER_BYTES))) {
    throw new DeltaimgError('CORRUPT_DELTA', `bsdiff patch ${shownPath} is damaged: its segment table length is out of range`);
  }
  return Number(n);
}

/**
 * Parses and checks a segment table: lengths add up (segments to the target size, patches and
 * table to the file size), every range lies inside the source, no segment is empty.
 */
export function decodeSegmentTable(bytes: Buffer, patchSize: number, shownPath: string): SegmentTable {
  const corrupt = (why: string) => new DeltaimgError('CORRUPT_DELTA', `bsdiff patch ${shownPath} is damaged: ${why}`);
  const end = bytes.length - 32;
  const reader = new VarintReader(
    bytes,
    0,
    end,
    () => corrupt('segment table is truncated'),
    () => corrupt('segment table holds an oversized number'),
  );
  const next = () => reader.next();
  const sourceSize = next();
  const targetSize = next();
  const count = next();
  // Each segment takes at least three bytes of table: a hostile count cannot reserve memory.
  if (count * 3 > end) throw corrupt('segment table is truncated');
  const segments: Segment[] = [];
  let targetTotal = 0;
  let patchTotal = 0;
  for (let i = 0; i < count; i++) {
    const targetLength = next();
    const patchLength = next();
    const rangeCount = next();
    if (targetLength === 0) throw corrupt(`segment ${i} is empty`);
    if (rangeCount > MAX_RANGES) throw corrupt(`segment ${i} has ${rangeCount} source ranges (at most ${MAX_RANGES})`);
    const ranges: Segment['ranges'] = [];
    for (let j = 0; j < rangeCount; j++) {
      const offset = next();
      const length = next();
      if (length === 0 || offset + length > sourceSize) throw corrupt(`segment ${i} reads outside the source`);
      ranges.push({ offset, length });
    }
    segments.push({ targetLength, patchLength, ranges });
    targetTotal += targetLength;
    patchTotal += patchLength;
  }
  if (reader.at !== end) throw corrupt('segment table has unused bytes');
  if (targetTotal !== targetSize) throw corrupt('segment lengths do not add up to the target size');
  if (SEGMENTED_MAGIC.length + patchTotal + bytes.length + TRAILER_BYTES !== patchSize) {
    throw corrupt(
      `segments and table add up to ${SEGMENTED_MAGIC.length + patchTotal + bytes.length + TRAILER_BYTES} bytes but the file has ${patchSize}`,
    );
  }
  return { sourceSize, targetSize, segments, targetSha256: Buffer.from(bytes.subarray(end)) };
}
