/**
 * The skeleton file: every byte of a tar that is not a regular file's content, plus the
 * program that interleaves them with the content files again (docs/format.md, "Layer
 * skeletons").
 *
 *   offset  size  field
 *   0       8     magic "DIMGSKEL"
 *   8       4     version (u32 BE) = 1
 *   12      4     reserved, 0
 *   16      8     rawBytes (u64 BE): length of the raw section
 *   24      8     opsBytes (u64 BE): length of the ops section
 *   32      8     tarSize (u64 BE)
 *   40      32    sha256 of the tar
 *   72            raw section: the non-content bytes, in tar order
 *   72+raw        ops section: LEB128 varint ops, ending with END
 *
 * Ops: RAW n (copy the next n raw bytes), FILE size pathLen path (the content file at that
 * relative path, exactly size bytes), ZERO n (n zero bytes: padding), HEADER (the next 512 raw
 * bytes are a header block stored with its chksum field zeroed: recompute it), END.
 * Zeroing checksums matters for the delta against A's skeleton: a header whose mtime changed
 * otherwise differs in two fields, and the checksum is 30% of the delta (Debian: 21 -> 15 KB).
 * Header blocks and the content list live in separate sections so that the skeleton of a
 * layer compresses well against the skeleton of the layer it replaces: the raw sections are
 * nearly the same header blocks, the ops sections nearly the same paths.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { commitTemp, registerTemp, tempPathBeside, type TempPath } from '../util/atomic-output.js';
import { DeltaimgError, ioError } from '../util/errors.js';

export const SKELETON_MAGIC = Buffer.from('DIMGSKEL', 'latin1');
export const SKELETON_VERSION = 1;
export const SKELETON_HEADER_BYTES = 72;

export const enum Op {
  End = 0,
  Raw = 1,
  File = 2,
  Zero = 3,
  Header = 4,
}

export type SkeletonOp =
  { op: 'raw'; length: number } | { op: 'file'; size: number; path: string } | { op: 'zero'; length: number } | { op: 'header' };

export interface SkeletonHeader {
  rawBytes: number;
  opsBytes: number;
  tarSize: number;
  /** "sha256:<hex>" */
  tarSha256: string;
}

const FLUSH_AT = 1024 * 1024;
/** Content paths are at most PATH_MAX bytes (split.ts keeps longer ones in the raw section). */
export const MAX_CONTENT_PATH = 4096;
const MAX_OP_BYTES = 3 * 9 + MAX_CONTENT_PATH;

/** Appends to a file through a 1 MiB buffer (tar headers arrive 512 bytes at a time). */
class BufferedAppender {
  private chunks: Buffer[] = [];
  private buffered = 0;
  written = 0;
  constructor(
    private readonly fh: FileHandle,
    private position: number,
  ) {}

  async write(bytes: Buffer): Promise<void> {
    // Copy: the caller's buffer may be a view of a chunk that is reused.
    this.chunks.push(Buffer.from(bytes));
    this.buffered += bytes.length;
    this.written += bytes.length;
    if (this.buffered >= FLUSH_AT) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.buffered) return;
    const data = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    await this.fh.write(data, 0, data.length, this.position);
    this.position += data.length;
  }
}

function varint(n: number): Buffer {
  const bytes: number[] = [];
  let v = n;
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/**
 * Writes a skeleton in one pass: raw bytes go straight to the file after the header, ops to
 * a temp file appended at the end; the header is written last. The file is assembled under
 * a temp name and renamed into place by finish(), removed by abort().
 */
export class SkeletonWriter {
  private pendingRaw = 0;
  private constructor(
    private readonly path: string,
    private readonly temp: TempPath<string>,
    private readonly opsTemp: TempPath<string>,
    private readonly main: FileHandle,
    private readonly opsFile: FileHandle,
    private readonly raw: BufferedAppender,
    private readonly ops: BufferedAppender,
  ) {}

  static async create(path: string): Promise<SkeletonWriter> {
    const temp = registerTemp(tempPathBeside(path));
    const opsTemp = registerTemp(tempPathBeside(path, 'ops'));
    let main: FileHandle | undefined;
    try {
      main = await open(temp.path, 'wx');
      const opsFile = await open(opsTemp.path, 'wx+');
      return new SkeletonWriter(
        path,
        temp,
        opsTemp,
        main,
        opsFile,
        new BufferedAppender(main, SKELETON_HEADER_BYTES),
        new BufferedAppender(opsFile, 0),
      );
    } catch (err) {
      await main?.close();
      await Promise.all([temp.remove(), opsTemp.remove()]);
      throw ioError('create', path, err);
    }
  }

  /** Bytes kept in the skeleton. Adjacent raw pieces become one RAW op. */
  async rawBytes(bytes: Buffer): Promise<void> {
    if (!bytes.length) return;
    await this.raw.write(bytes);
    this.pendingRaw += bytes.length;
  }

  async file(path: string, size: number): Promise<void> {
    await this.flushRaw();
    const name = Buffer.from(path, 'latin1');
    await this.ops.write(Buffer.concat([varint(Op.File), varint(size), varint(name.length), name]));
  }

  /** A header block whose chksum field is canonical: stored with that field zeroed, recomputed on join. */
  async header(blockWithoutChecksum: Buffer): Promise<void> {
    await this.flushRaw();
    await this.raw.write(blockWithoutChecksum);
    await this.ops.write(varint(Op.Header));
  }

  async zero(length: number): Promise<void> {
    if (!length) return;
    await this.flushRaw();
    await this.ops.write(Buffer.concat([varint(Op.Zero), varint(length)]));
  }

  private async flushRaw(): Promise<void> {
    if (!this.pendingRaw) return;
    const length = this.pendingRaw;
    this.pendingRaw = 0;
    await this.ops.write(Buffer.concat([varint(Op.Raw), varint(length)]));
  }

  async finish(tarSize: number, tarSha256: string): Promise<void> {
    try {
      await this.flushRaw();
      await this.ops.write(varint(Op.End));
      await this.raw.flush();
      await this.ops.flush();
      await this.appendOps();
      const header = encodeHeader({ rawBytes: this.raw.written, opsBytes: this.ops.written, tarSize, tarSha256 });
      await this.main.write(header, 0, header.length, 0);
      await this.main.close();
      commitTemp(this.temp, this.path);
    } catch (err) {
      await this.abort();
      throw err instanceof DeltaimgError ? err : ioError('write', this.path, err);
    } finally {
      await this.opsTemp.remove();
    }
  }

  private async appendOps(): Promise<void> {
    const buf = Buffer.alloc(FLUSH_AT);
    let pos = 0;
    const dest = SKELETON_HEADER_BYTES + this.raw.written;
    for (;;) {
      const { bytesRead } = await this.opsFile.read(buf, 0, buf.length, pos);
      if (!bytesRead) break;
      await this.main.write(buf, 0, bytesRead, dest + pos);
      pos += bytesRead;
    }
    await this.opsFile.close();
  }

  async abort(): Promise<void> {
    await this.main.close().catch(() => undefined);
    await this.opsFile.close().catch(() => undefined);
    await this.temp.remove();
    await this.opsTemp.remove();
  }
}

function encodeHeader(h: SkeletonHeader): Buffer {
  const b = Buffer.alloc(SKELETON_HEADER_BYTES);
  SKELETON_MAGIC.copy(b, 0);
  b.writeUInt32BE(SKELETON_VERSION, 8);
  b.writeBigUInt64BE(BigInt(h.rawBytes), 16);
  b.writeBigUInt64BE(BigInt(h.opsBytes), 24);
  b.writeBigUInt64BE(BigInt(h.tarSize), 32);
  Buffer.from(h.tarSha256.replace(/^sha256:/, ''), 'hex').copy(b, 40);
  return b;
}

function corrupt(path: string, why: string): DeltaimgError {
  return new DeltaimgError('CORRUPT_DELTA', `skeleton ${path} is damaged: ${why}`);
}

/** Reads a skeleton: its header, then its ops in order, and its raw bytes on demand. */
export class SkeletonReader {
  private opsBuf = Buffer.alloc(0);
  private opsPos: number; // file offset of the next unread ops byte
  private opsEnd: number;
  private rawPos = SKELETON_HEADER_BYTES;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly header: SkeletonHeader,
  ) {
    this.opsPos = SKELETON_HEADER_BYTES + header.rawBytes;
    this.opsEnd = this.opsPos + header.opsBytes;
  }

  static async open(path: string): Promise<SkeletonReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw ioError('open skeleton', path, err);
    }
    try {
      const head = Buffer.alloc(SKELETON_HEADER_BYTES);
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      const header = decodeHeader(path, head.subarray(0, bytesRead));
      const { size } = await fh.stat();
      if (size !== SKELETON_HEADER_BYTES + header.rawBytes + header.opsBytes) {
        throw corrupt(
          path,
          `its size ${size} is not the ${SKELETON_HEADER_BYTES + header.rawBytes + header.opsBytes} bytes its header says (truncated?)`,
        );
      }
      return new SkeletonReader(path, fh, header);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  /** Makes sure the buffer holds the longest possible op (or all that is left). */
  private async fillOps(): Promise<void> {
    if (this.opsBuf.length >= MAX_OP_BYTES || this.opsPos >= this.opsEnd) return;
    const want = Math.min(256 * 1024, this.opsEnd - this.opsPos);
    const buf = Buffer.alloc(want);
    const { bytesRead } = await this.fh.read(buf, 0, want, this.opsPos);
    if (bytesRead !== want) throw corrupt(this.path, 'short read in its ops section');
    this.opsPos += want;
    this.opsBuf = Buffer.concat([this.opsBuf, buf]);
  }

  private opsByte(): number {
    if (this.opsBuf.length === 0) throw corrupt(this.path, 'its ops end without END');
    const b = this.opsBuf[0]!;
    this.opsBuf = this.opsBuf.subarray(1);
    return b;
  }

  private varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.opsByte();
      value += (b & 0x7f) * scale;
      if (!(b & 0x80)) {
        if (!Number.isSafeInteger(value)) break;
        return value;
      }
      scale *= 0x80;
    }
    throw corrupt(this.path, 'a number in its ops section is out of range');
  }

  /** The next op, or undefined at END. */
  async nextOp(): Promise<SkeletonOp | undefined> {
    await this.fillOps();
    const code = this.varint();
    switch (code) {
      case Op.End:
        return undefined;
      case Op.Raw:
        return { op: 'raw', length: this.varint() };
      case Op.Zero:
        return { op: 'zero', length: this.varint() };
      case Op.Header:
        return { op: 'header' };
      case Op.File: {
        const size = this.varint();
        const pathLen = this.varint();
        if (pathLen > MAX_CONTENT_PATH || pathLen > this.opsBuf.length) throw corrupt(this.path, `a content path of ${pathLen} bytes`);
        const path = this.opsBuf.subarray(0, pathLen).toString('latin1');
        this.opsBuf = this.opsBuf.subarray(pathLen);
        return { op: 'file', size, path };
      }
      default:
        throw corrupt(this.path, `unknown op ${code}`);
    }
  }

  /** The next `length` raw bytes, in pieces of at most 1 MiB. */
  async *raw(length: number): AsyncGenerator<Buffer> {
    const limit = SKELETON_HEADER_BYTES + this.header.rawBytes;
    if (this.rawPos + length > limit) throw corrupt(this.path, 'its ops use more raw bytes than its raw section has');
    let left = length;
    while (left > 0) {
      const n = Math.min(left, FLUSH_AT);
      const buf = Buffer.alloc(n);
      const { bytesRead } = await this.fh.read(buf, 0, n, this.rawPos);
      if (bytesRead !== n) throw corrupt(this.path, 'short read in its raw section');
      this.rawPos += n;
      left -= n;
      yield buf;
    }
  }

  /** After END: every raw byte must have been used. */
  checkAllRawUsed(): void {
    if (this.rawPos !== SKELETON_HEADER_BYTES + this.header.rawBytes) throw corrupt(this.path, 'raw bytes left over after its last op');
  }
}

function decodeHeader(path: string, b: Buffer): SkeletonHeader {
  if (b.length < SKELETON_HEADER_BYTES || !b.subarray(0, 8).equals(SKELETON_MAGIC)) {
    throw new DeltaimgError('CORRUPT_DELTA', `${path} is not a deltaimg layer skeleton (bad magic)`);
  }
  const version = b.readUInt32BE(8);
  if (version !== SKELETON_VERSION) {
    throw new DeltaimgError(
      'UNSUPPORTED_VERSION',
      `skeleton ${path} has version ${version}; this deltaimg reads version ${SKELETON_VERSION} (upgrade deltaimg)`,
    );
  }
  const num = (at: number): number => {
    const v = b.readBigUInt64BE(at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(path, 'a length in its header is out of range');
    return Number(v);
  };
  return { rawBytes: num(16), opsBytes: num(24), tarSize: num(32), tarSha256: `sha256:${b.subarray(40, 72).toString('hex')}` };
}
