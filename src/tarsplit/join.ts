/**
 * joinTar: replays a skeleton's ops, interleaving its raw bytes with the content files, and
 * streams the exact original tar. Content files are read without following symlinks and must
 * have exactly the size the skeleton recorded.
 */
import { createHash } from 'node:crypto';
import { lstat, type FileHandle } from 'node:fs/promises';
import { openRegular } from '../util/regular-file.js';
import { once } from 'node:events';
import type { RelPath } from '../tree/entry.js';
import { assertSafeRelPath, displayPath, toFsPath } from '../tree/paths.js';
import { DeltaimgError, ioError } from '../util/errors.js';
import { BLOCK, canonicalChecksumField, headerChecksum } from '../tar/header.js';
import { SkeletonReader } from './skeleton.js';

const CHUNK = 1024 * 1024;
const ZEROS = Buffer.alloc(64 * 1024);

const BATCH = 256 * 1024;

/**
 * Writes to a Writable with backpressure, hashing and counting what it writes. Small pieces
 * (header blocks, padding) are batched: one write per tar header would cost a syscall each.
 */
class HashingSink {
  private readonly hash = createHash('sha256');
  private batch: Buffer[] = [];
  private batched = 0;
  size = 0;
  /** An error `out` emitted between our writes (kept so it fails the join instead of the process). */
  private failed: Error | undefined;

  /** `maxBytes`: the tar's size from the skeleton header; one byte more is a corrupt skeleton, refused before it is written. */
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly maxBytes: number,
    private readonly exceeded: () => Error,
  ) {
    out.on('error', (err: Error) => (this.failed ??= err));
  }

  private checkFailed(): void {
    if (this.failed) throw new DeltaimgError('IO', `cannot write the rebuilt tar: ${this.failed.message}`, { cause: this.failed });
  }

  /** Waits for `event` on `out`; an error before or during the wait fails it. */
  private async waitFor(event: string): Promise<void> {
    this.checkFailed();
    try {
      await once(this.out as unknown as NodeJS.EventEmitter, event);
    } catch {
      this.checkFailed();
      throw new DeltaimgError('IO', 'cannot write the rebuilt tar');
    }
  }

  async write(bytes: Buffer): Promise<void> {
    this.checkFailed();
    if (this.size + bytes.length > this.maxBytes) throw this.exceeded();
    this.hash.update(bytes);
    this.size += bytes.length;
    if (bytes.length >= BATCH) {
      await this.flush();
      await this.send(bytes);
      return;
    }
    // Copied: callers reuse their buffers (the zero block) or hand out views.
    this.batch.push(Buffer.from(bytes));
    this.batched += bytes.length;
    if (this.batched >= BATCH) await this.flush();
  }

  private async flush(): Promise<void> {
    if (!this.batched) return;
    const data = Buffer.concat(this.batch, this.batched);
    this.batch = [];
    this.batched = 0;
    await this.send(data);
  }

  private async send(bytes: Buffer): Promise<void> {
    if (!this.out.write(bytes)) await this.waitFor('drain');
  }

  async end(): Promise<void> {
    await this.flush();
    const finished = this.waitFor('finish');
    this.out.end();
    await finished;
  }

  /** Sends what is batched without ending the stream. */
  async flushed(): Promise<void> {
    await this.flush();
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

async function openContent(contentDir: string, rel: RelPath, size: number): Promise<FileHandle> {
  const shown = `${contentDir}${displayPath(rel)}`;
  let opened: { fh: FileHandle; size: number };
  try {
    // O_NOFOLLOW: the content tree is ours; a symlink in it is not a content file.
    opened = await openRegular(toFsPath(contentDir, rel), { noFollow: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new DeltaimgError(
        'VERIFY_FAILED',
        `content file ${shown} is missing; the layer cannot be rebuilt (the delta or the base is damaged)`,
      );
    if (code === 'ELOOP')
      throw new DeltaimgError(
        'HOSTILE_PATH',
        `content file ${shown} is a symlink; refusing to read through it (the delta is damaged or malicious)`,
      );
    if (code === 'EINVAL')
      throw new DeltaimgError(
        'VERIFY_FAILED',
        `content file ${shown} is not a regular file; the layer cannot be rebuilt (the delta or the base is damaged)`,
      );
    throw ioError('open content file', shown, err);
  }
  if (opened.size !== size) {
    await opened.fh.close();
    throw new DeltaimgError(
      'VERIFY_FAILED',
      `content file ${shown} has ${opened.size} bytes, but the tar header says ${size}; the layer cannot be rebuilt (the delta or the base is damaged)`,
    );
  }
  return opened.fh;
}

/**
 * Every directory on the way to a content file must be a real directory: a symlink there
 * (from a hostile delta) could make the tar embed a file from outside the content tree.
 * O_NOFOLLOW covers the last component; `checked` caches the directories already seen.
 */
async function checkParents(contentDir: string, rel: RelPath, checked: Set<string>): Promise<void> {
  for (let slash = rel.indexOf('/'); slash >= 0; slash = rel.indexOf('/', slash + 1)) {
    const dir = rel.slice(0, slash);
    if (checked.has(dir)) continue;
    const st = await lstat(toFsPath(contentDir, dir as RelPath)).catch(() => undefined);
    if (!st?.isDirectory()) {
      throw new DeltaimgError(
        'HOSTILE_PATH',
        `content file ${contentDir}${displayPath(rel)}: ${displayPath(dir)} is not a directory (a symlink?); refusing to read through it (the delta is damaged or malicious)`,
      );
    }
    checked.add(dir);
  }
}

async function copyContent(contentDir: string, rel: RelPath, size: number, sink: HashingSink, checked: Set<string>): Promise<void> {
  await checkParents(contentDir, rel, checked);
  const fh = await openContent(contentDir, rel, size);
  try {
    let pos = 0;
    while (pos < size) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - pos));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) {
        throw new DeltaimgError(
          'VERIFY_FAILED',
          `content file ${contentDir}${displayPath(rel)} shrank while it was read (${pos} of ${size} bytes)`,
        );
      }
      await sink.write(bytes(buf, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

function bytes(buf: Buffer, n: number): Buffer {
  return n === buf.length ? buf : buf.subarray(0, n);
}

async function writeZeros(length: number, sink: HashingSink): Promise<void> {
  for (let left = length; left > 0; left -= ZEROS.length) await sink.write(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
}

async function withChecksum(skeleton: SkeletonReader): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of skeleton.raw(BLOCK)) pieces.push(piece);
  const block = Buffer.concat(pieces);
  canonicalChecksumField(headerChecksum(block)).copy(block, 148);
  return block;
}

export interface JoinOptions {
  /** End `out` (and wait for it to finish) when done. Default true. */
  end?: boolean;
}

/**
 * Streams the exact original tar bytes to `out` from the skeleton and a content tree (same
 * relative paths). Returns sha256+size of what it wrote. Ends `out` and waits for 'finish'
 * unless opts.end is false.
 */
export async function joinTar(
  skeletonPath: string,
  contentDir: string,
  out: NodeJS.WritableStream,
  opts: JoinOptions = {},
): Promise<{ sha256: string; size: number }> {
  const skeleton = await SkeletonReader.open(skeletonPath);
  const tarSize = skeleton.header.tarSize;
  const sink = new HashingSink(
    out,
    tarSize,
    () =>
      new DeltaimgError('CORRUPT_DELTA', `skeleton ${skeletonPath} builds more than the ${tarSize}-byte tar it declares; it is damaged`),
  );
  const checkedDirs = new Set<string>();
  try {
    for (let op = await skeleton.nextOp(); op; op = await skeleton.nextOp()) {
      switch (op.op) {
        case 'raw':
          for await (const piece of skeleton.raw(op.length)) await sink.write(piece);
          break;
        case 'header':
          await sink.write(await withChecksum(skeleton));
          break;
        case 'zero':
          await writeZeros(op.length, sink);
          break;
        case 'file':
          await copyContent(contentDir, assertSafeRelPath(op.path, `skeleton ${skeletonPath}`), op.size, sink, checkedDirs);
          break;
      }
    }
    skeleton.checkAllRawUsed();
  } catch (err) {
    // A half-written tar must not look finished: the stream is destroyed, not ended.
    if (opts.end !== false) (out as NodeJS.WritableStream & { destroy?: () => void }).destroy?.();
    throw err;
  } finally {
    await skeleton.close();
  }
  if (opts.end !== false) await sink.end();
  else await sink.flushed();
  return { sha256: sink.digest(), size: sink.size };
}
