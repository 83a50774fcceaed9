/**
 * The DIMGBSD1 patch file (see docs/bsdiff.md):
 *
 *   offset  size  field
 *   0       8     magic "DIMGBSD1"
 *   8       8     source size (u64 LE)
 *   16      8     target size
 *   24      8     control section: raw (decompressed) length
 *   32      8     control section: stored (brotli) length
 *   40      8     diff section: raw length (of its run-length form)
 *   48      8     diff section: stored length
 *   56      8     extra section: raw length
 *   64      8     extra section: stored length
 *   72      8     diff bytes: the diff section's length once its zero runs are expanded
 *   80      32    sha256 of the target
 *   112     ...   control, diff, extra sections, each one brotli stream, back to back
 *
 * Control holds (diffLength, extraLength, zigzag(seek)) varint triples. The diff section
 * holds (zeroRun varint, nonzero byte) pairs, the last run without its byte (sparse.ts).
 */
import { DeltaimgError } from '../util/errors.js';

export const MAGIC = Buffer.from('DIMGBSD1', 'latin1');
export const HEADER_BYTES = 112;

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
}

export function encodeHeader(header: PatchHeader): Buffer {
  const out = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(out, 0);
  const numbers = [header.sourceSize, header.targetSize];
  for (const name of SECTION_NAMES) numbers.push(header.sections[name].rawLength, header.sections[name].storedLength);
  numbers.push(header.diffBytes);
  numbers.forEach((value, i) => out.writeBigUInt64LE(BigInt(value), 8 + 8 * i));
  header.targetSha256.copy(out, 80);
  return out;
}

/** Parses and sanity-checks a header; `patchSize` is the patch file's length. */
export function decodeHeader(bytes: Buffer, patchSize: number, shownPath: string): PatchHeader {
  const corrupt = (why: string) => new DeltaimgError('CORRUPT_DELTA', `bsdiff patch ${shownPath} is damaged: ${why}`);
  if (bytes.length < HEADER_BYTES) throw corrupt(`shorter than its ${HEADER_BYTES}-byte header`);
  if (!bytes.subarray(0, 8).equals(MAGIC)) {
    if (bytes.subarray(0, 7).equals(MAGIC.subarray(0, 7))) {
      throw new DeltaimgError('UNSUPPORTED_VERSION', `bsdiff patch ${shownPath} has format ${bytes.toString('latin1', 0, 8)}; this deltaimg reads DIMGBSD1 only`);
    }
    throw corrupt('bad magic (not a DIMGBSD1 patch)');
  }
  const field = (i: number): number => {
    const value = bytes.readBigUInt64LE(8 + 8 * i);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt('length field out of range');
    return Number(value);
  };
  const sections = {} as Record<SectionName, SectionInfo>;
  SECTION_NAMES.forEach((name, i) => {
    sections[name] = { rawLength: field(2 + 2 * i), storedLength: field(3 + 2 * i) };
  });
  const header: PatchHeader = {
    sourceSize: field(0),
    targetSize: field(1),
    sections,
    diffBytes: field(8),
    targetSha256: Buffer.from(bytes.subarray(80, HEADER_BYTES)),
  };
  const stored = SECTION_NAMES.reduce((sum, name) => sum + sections[name].storedLength, 0);
  if (HEADER_BYTES + stored !== patchSize) throw corrupt(`sections add up to ${HEADER_BYTES + stored} bytes but the file has ${patchSize}`);
  if (header.diffBytes + sections.extra.rawLength !== header.targetSize) throw corrupt('diff and extra lengths do not add up to the target size');
  return header;
}

/** Offset of each section's stored bytes in the patch file. */
export function sectionOffsets(header: PatchHeader): Record<SectionName, number> {
  const control = HEADER_BYTES;
  const diff = control + header.sections.control.storedLength;
  const extra = diff + header.sections.diff.storedLength;
  return { control, diff, extra };
}

/** Growable byte buffer for the control section's varints. */
export class VarintWriter {
  private bytes = new Uint8Array(4096);
  private length = 0;

  private ensure(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    const bigger = new Uint8Array(Math.max(this.bytes.length * 2, this.length + extra));
    bigger.set(this.bytes.subarray(0, this.length));
    this.bytes = bigger;
  }

  /** Unsigned LEB128 of a non-negative safe integer. */
  writeUnsigned(value: number): void {
    this.ensure(8);
    let v = value;
    while (v >= 0x80) {
      this.bytes[this.length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.bytes[this.length++] = v;
  }

  writeByte(value: number): void {
    this.ensure(1);
    this.bytes[this.length++] = value;
  }

  /** Zigzag: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ... so small seeks of either sign stay short. */
  writeSigned(value: number): void {
    this.writeUnsigned(value < 0 ? -value * 2 - 1 : value * 2);
  }

  result(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}

export function unzigzag(value: number): number {
  return value % 2 === 1 ? -(value + 1) / 2 : value / 2;
}

/** A varint longer than this cannot hold a safe integer (7 bits per byte, 53 bits). */
export const MAX_VARINT_BYTES = 8;
