/**
 * bsdiff decoding of small files, synchronously and in memory: the tree engine restores files
 * up to 16 MiB on its main thread, where the streaming decoder's async file and stream
 * plumbing costs more than the decode itself. Same checks and error codes as decode.ts:
 * the header, every step against it, each section's declared raw length, the run-length
 * diff form, and the target's sha256. The target itself is handed out in chunks of one
 * reused buffer, never held whole: fresh memory costs more than the decode (a first touch of
 * 10 MB took ~60 ms on the benchmark machine, the decode itself less).
 */
import { createHash } from 'node:crypto';
import { brotliDecompressSync } from 'node:zlib';
import { DeltaimgError } from '../util/errors.js';
import {
  decodeHeader,
  MAX_HEADER_BYTES,
  MAX_VARINT_BYTES,
  sectionOffsets,
  unzigzag,
  type PatchHeader,
  type SectionName,
} from './format.js';

export interface InMemoryNames {
  /** how errors name the patch (default "patch") */
  patch?: string;
  /** how errors name the source (default "source") */
  source?: string;
  /** The size the caller expects (a record's): a patch building anything else is refused before decoding. */
  targetSize?: number;
}

type Corrupt = (why: string) => DeltaimgError;

export interface DecodedTarget {
  bytes: number;
  /** Hex sha256 of the target, computed (and checked against the patch's) here: callers need not hash it again. */
  sha256: string;
}

/**
 * Applies the DIMGBSD1 `patch` to `source`, handing the target to `write` in order, in chunks
 * that are only valid during the call. When it throws, what was written is not the target.
 */
/** A patch whose header announces another target size than the caller expects is corrupt: refused before any output. */
export function checkTargetSize(header: Pick<PatchHeader, 'targetSize'>, expected: number | undefined, shownPatch: string): void {
  if (expected !== undefined && header.targetSize !== expected) {
    throw new DeltaimgError(
      'CORRUPT_DELTA',
      `bsdiff patch ${shownPatch} builds ${header.targetSize} bytes, not the ${expected} expected; it is damaged`,
    );
  }
}

export function bsdiffDecodeInMemory(
  source: Buffer,
  patch: Buffer,
  write: (chunk: Buffer) => void,
  names: InMemoryNames = {},
): DecodedTarget {
  const shownPatch = names.patch ?? 'patch';
  const header = decodeHeader(patch.subarray(0, MAX_HEADER_BYTES), patch.length, shownPatch);
  checkTargetSize(header, names.targetSize, shownPatch);
  if (source.length !== header.sourceSize) {
    throw new DeltaimgError(
      'WRONG_SOURCE',
      `bsdiff patch ${shownPatch} was made against a ${header.sourceSize}-byte source, but ${names.source ?? 'source'} has ${source.length} bytes`,
    );
  }
  const corrupt: Corrupt = (why) => new DeltaimgError('CORRUPT_DELTA', `bsdiff patch ${shownPatch} is damaged: ${why}`);
  const sections = decompressSections(header, patch, corrupt);
  const hash = createHash('sha256');
  const out = new ChunkedOutput((chunk) => {
    hash.update(chunk);
    write(chunk);
  });
  new StepApplier(header, source, sections, out, corrupt).run();
  out.flush();
  const sha256 = hash.digest();
  if (!sha256.equals(header.targetSha256)) {
    throw new DeltaimgError(
      'CORRUPT_DELTA',
      `bsdiff patch ${shownPatch} produced output whose sha256 differs from the one it records (damaged patch or wrong source)`,
    );
  }
  return { bytes: header.targetSize, sha256: sha256.toString('hex') };
}

/** Output chunk size: one buffer, reused by every decode in the process. */
const CHUNK_BYTES = 1024 * 1024;
let chunkBuffer: Buffer | undefined;

/** The target as it is produced, in one reused buffer handed to `flushTo` whenever it fills. */
class ChunkedOutput {
  readonly buffer = (chunkBuffer ??= Buffer.allocUnsafe(CHUNK_BYTES));
  filled = 0;

  constructor(private readonly flushTo: (chunk: Buffer) => void) {}

  /** Room for at most `wanted` more bytes at `this.filled` (at least one), flushing first if full. */
  room(wanted: number): number {
    if (this.filled === this.buffer.length) this.flush();
    return Math.min(wanted, this.buffer.length - this.filled);
  }

  flush(): void {
    if (this.filled > 0) this.flushTo(this.buffer.subarray(0, this.filled));
    this.filled = 0;
  }
}

/**
 * The most raw bytes a section can hold for this header, so a hostile length cannot make
 * brotli inflate without bound: control steps are at most three varints and all but the
 * first produce a byte; a diff byte costs at most a varint and a literal; extra bytes are
 * target bytes. A longer section would fail the "unused bytes" check anyway.
 */
function rawCap(header: PatchHeader, name: SectionName): number {
  if (name === 'control') return 3 * MAX_VARINT_BYTES * (header.targetSize + 1);
  if (name === 'diff') return (MAX_VARINT_BYTES + 1) * header.diffBytes + MAX_VARINT_BYTES;
  return header.targetSize;
}

function decompressSections(header: PatchHeader, patch: Buffer, corrupt: Corrupt): Record<SectionName, Buffer> {
  const offsets = sectionOffsets(header);
  const section = (name: SectionName): Buffer => {
    const info = header.sections[name];
    const stored = patch.subarray(offsets[name], offsets[name] + info.storedLength);
    const cap = Math.min(info.rawLength, rawCap(header, name));
    let raw: Buffer;
    try {
      // One output buffer of the declared size (+1 to see the end), not zlib's 16 KiB chunks
      // concatenated: half the fresh memory.
      raw = brotliDecompressSync(stored, { maxOutputLength: cap + 1, chunkSize: Math.max(64, Math.min(cap + 1, MAX_CHUNK_BYTES)) });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw corrupt(`${name} section is longer than declared`);
      throw corrupt(`${name} section does not decompress (${(err as Error).message})`);
    }
    if (raw.length > info.rawLength) throw corrupt(`${name} section is longer than declared`);
    if (raw.length < info.rawLength) throw corrupt(`${name} section ends after ${raw.length} of ${info.rawLength} bytes`);
    return raw;
  };
  return { control: section('control'), diff: section('diff'), extra: section('extra') };
}

/** Sections are decompressed into one buffer up to this size (a hostile length reserves no more). */
const MAX_CHUNK_BYTES = 32 * 1024 * 1024;

/** A read position in one decompressed section. */
class Cursor {
  at = 0;

  constructor(
    readonly bytes: Buffer,
    private readonly name: SectionName,
    private readonly corrupt: Corrupt,
  ) {}

  short(): DeltaimgError {
    return this.corrupt(`${this.name} section is shorter than the control steps need`);
  }

  byte(): number {
    if (this.at >= this.bytes.length) throw this.short();
    return this.bytes[this.at++]!;
  }

  /** Reads one unsigned LEB128 varint. */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const byte = this.byte();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (value > Number.MAX_SAFE_INTEGER) break;
        return value;
      }
      scale *= 0x80;
    }
    throw this.corrupt(`${this.name} section holds an oversized number`);
  }

  checkUsedUp(): void {
    const unused = this.bytes.length - this.at;
    if (unused !== 0) throw this.corrupt(`${this.name} section has ${unused} unused bytes`);
  }
}

/** Runs the control steps over in-memory sections, writing the target. */
class StepApplier {
  private readonly control: Cursor;
  private readonly diff: Cursor;
  private readonly extra: Cursor;
  /** run-length state of the diff section, as in SparseDiffReader */
  private zerosLeft = 0;
  private literalDue = false;
  private covered = 0;

  constructor(
    private readonly header: PatchHeader,
    private readonly source: Buffer,
    sections: Record<SectionName, Buffer>,
    private readonly out: ChunkedOutput,
    private readonly corrupt: Corrupt,
  ) {
    this.control = new Cursor(sections.control, 'control', corrupt);
    this.diff = new Cursor(sections.diff, 'diff', corrupt);
    this.extra = new Cursor(sections.extra, 'extra', corrupt);
  }

  run(): void {
    const { header, corrupt } = this;
    let produced = 0;
    let sourceAt = 0;
    for (let step = 0; produced < header.targetSize; step++) {
      const diffLength = this.control.varint();
      const extraLength = this.control.varint();
      const seek = unzigzag(this.control.varint());
      if (diffLength + extraLength > header.targetSize - produced) throw corrupt(`step ${step} runs past the target size`);
      if (sourceAt + diffLength > header.sourceSize) throw corrupt(`step ${step} reads past the end of the source`);
      if (step > 0 && diffLength === 0 && extraLength === 0) throw corrupt(`step ${step} is empty`);
      this.addDiff(sourceAt, diffLength);
      this.copyExtra(extraLength);
      produced += diffLength + extraLength;
      sourceAt += diffLength + seek;
      if (sourceAt < 0 || sourceAt > header.sourceSize) throw corrupt(`step ${step} seeks outside the source`);
    }
    if (!(this.covered === header.diffBytes && this.zerosLeft === 0 && !this.literalDue)) {
      throw corrupt('the diff section holds more bytes than the control steps use');
    }
    this.control.checkUsedUp();
    this.diff.checkUsedUp();
    this.extra.checkUsedUp();
  }

  /**
   * The next `length` target bytes = diff + source[sourceAt..] (mod 256): each piece of the
   * source range is copied at once, then only the nonzero diff bytes (~10% in recompiled
   * code) are added, so zero runs cost nothing per byte.
   */
  private addDiff(sourceAt: number, length: number): void {
    const { out } = this;
    for (let done = 0; done < length;) {
      const n = out.room(length - done);
      this.source.copy(out.buffer, out.filled, sourceAt + done, sourceAt + done + n);
      this.addLiterals(out.buffer, out.filled, n);
      out.filled += n;
      done += n;
    }
  }

  /** Adds the next `length` diff bytes onto buffer[at..]. */
  private addLiterals(buffer: Buffer, at: number, length: number): void {
    let done = 0;
    while (done < length) {
      if (this.zerosLeft > 0) {
        const n = Math.min(this.zerosLeft, length - done);
        this.zerosLeft -= n;
        done += n;
      } else if (this.literalDue) {
        const byte = this.diff.byte();
        if (byte === 0) throw this.corrupt('diff section holds a zero where a nonzero byte belongs');
        buffer[at + done] = (buffer[at + done]! + byte) & 0xff;
        this.literalDue = false;
        done++;
      } else {
        this.nextRun();
      }
    }
  }

  private nextRun(): void {
    const left = this.header.diffBytes - this.covered;
    if (left === 0) throw this.corrupt('control steps need more diff bytes than the header declares');
    const zeros = this.diff.varint();
    if (zeros > left) throw this.corrupt('diff section expands past its declared length');
    this.covered += zeros;
    this.zerosLeft = zeros;
    if (this.covered < this.header.diffBytes) {
      this.literalDue = true;
      this.covered++;
    }
  }

  private copyExtra(length: number): void {
    const { extra, out } = this;
    if (extra.at + length > extra.bytes.length) throw extra.short();
    for (let done = 0; done < length;) {
      const n = out.room(length - done);
      extra.bytes.copy(out.buffer, out.filled, extra.at, extra.at + n);
      extra.at += n;
      out.filled += n;
      done += n;
    }
  }
}
