/**
 * The walk of scanTree: every path under a root with its lstat metadata, symlink target and
 * xattrs, never following a symlink. The fsext addon's scanDirs reads batches of directories on
 * threadpool threads (one batch per core in flight) and returns packed records, so this thread
 * only decodes: on a 100k-entry tree a Node lstat, llistxattr and readlink per entry cost more
 * of this thread than the syscalls themselves (BigIntStats objects, their GC).
 */
import { availableParallelism, constants as osc } from 'node:os';
import { getSystemErrorName } from 'node:util';
import type { Entry, FileEntry, Metadata, RelPath, Xattr } from './entry.js';
import { changedWhileReadingError, notRegularError } from './hash-files.js';
import { fsext } from './fsext.js';
import { compareRel, displayPath, joinRel } from './paths.js';
import { DeltaimgError, ioError } from '../util/errors.js';
import { buildFromSourceHint } from '../util/prebuilds.js';
import { Fifo } from '../util/limiter.js';

/** One lstat'ed path before hardlink resolution. */
export interface Found {
  entry: Entry;
  /** `${dev}:${ino}` of a regular file with more than one name. */
  inode?: string;
}

export interface WalkSink {
  found: Found[];
  warnings: string[];
  onEntry: () => void;
  skip?: ReadonlySet<RelPath>;
  /** Hash regular files on the way (sha256 set); called with each hashed file's size. */
  onHashed?: (bytes: number) => void;
}

/** At most this many directories per batch: enough to make a batch worth a thread hop, few enough to spread. */
const BATCH_DIRS = 32;

/** Shared by every entry without xattrs, so 200k plain entries cost no 200k arrays. */
export const NO_XATTRS: readonly Xattr[] = Object.freeze([]);

/** Adds everything below the root directory (the root's own entry is the caller's) to `sink`. */
export async function walkBelow(root: Buffer, sink: WalkSink): Promise<void> {
  const scanDirs = fsext().scanDirs;
  if (typeof scanDirs !== 'function')
    throw new DeltaimgError('INSTALL', `the native addon is older than this deltaimg (no scanDirs): ${buildFromSourceHint()}`);
  const pending = new Fifo<RelPath>();
  pending.push('' as RelPath);
  const parallel = Math.max(2, availableParallelism());
  const running = new Set<Promise<void>>();
  const launch = (): void => {
    const take = Math.min(BATCH_DIRS, Math.ceil(pending.length / parallel));
    const dirs: RelPath[] = [];
    while (dirs.length < take) dirs.push(pending.shift()!);
    const packed = Buffer.from(dirs.map((d) => d + '\0').join(''), 'latin1');
    const job: Promise<void> = scanDirs(root, packed, sink.onHashed !== undefined)
      .then((records) => decodeBatch(records, dirs, sink, pending))
      .finally(() => running.delete(job));
    running.add(job);
  };
  while (pending.length > 0 || running.size > 0) {
    while (pending.length > 0 && running.size < parallel) launch();
    try {
      await Promise.race(running);
    } catch (err) {
      // Nothing is left reading after the walk has failed.
      await Promise.allSettled(running);
      throw err;
    }
  }
}

/** Record layout of native-build/fsext/scandirs.c. */
const HEADER_BYTES = 128;
const HASH = { none: 0, ok: 1, open: 2, notRegular: 3, read: 4, size: 5, noSha: 6 } as const;
const STEP = { ok: 0, lstat: 1, readlink: 2, listxattr: 3, getxattr: 4, readdir: 5 } as const;
const S_IFMT = 0o170000;
const TYPE = { fifo: 0o010000, chr: 0o020000, dir: 0o040000, blk: 0o060000, reg: 0o100000, lnk: 0o120000, sock: 0o140000 } as const;

function decodeBatch(buf: Buffer, dirs: readonly RelPath[], sink: WalkSink, pending: Fifo<RelPath>): void {
  for (let at = 0; at < buf.length; at += buf.readUInt32LE(at)) {
    const dir = dirs[buf.readUInt32LE(at + 4)]!;
    const step = buf.readInt32LE(at + 8);
    const nameEnd = at + HEADER_BYTES + buf.readUInt32LE(at + 60);
    if (step === STEP.readdir) throw ioError('read directory', displayPath(dir), errnoError(buf.readInt32LE(at + 12), 'opendir'));
    const path = joinRel(dir, buf.toString('latin1', at + HEADER_BYTES, nameEnd));
    if (sink.skip?.has(path)) continue;
    if (step !== STEP.ok) {
      const errno = buf.readInt32LE(at + 12);
      if (step === STEP.lstat && errno === osc.errno.ENOENT) sink.warnings.push(`vanished during scan: ${displayPath(path)}`);
      else throw failure(step, path, errno);
      continue;
    }
    const mode = buf.readUInt32LE(at + 16);
    const targetEnd = nameEnd + buf.readUInt32LE(at + 64);
    const meta: Metadata = {
      mode: mode & 0o7777,
      uid: buf.readUInt32LE(at + 20),
      gid: buf.readUInt32LE(at + 24),
      mtimeNs: buf.readBigInt64LE(at + 32) * 1_000_000_000n + BigInt(buf.readUInt32LE(at + 28)),
      xattrs: decodeXattrs(buf, targetEnd, targetEnd + buf.readUInt32LE(at + 68)),
    };
    const entry = entryOf(mode & S_IFMT, path, meta, buf, at, nameEnd, targetEnd, sink.onHashed);
    if (!entry) {
      sink.warnings.push(
        `skipped ${(mode & S_IFMT) === TYPE.sock ? 'socket' : `unsupported file type (mode ${mode.toString(8)})`} ${displayPath(path)}`,
      );
      continue;
    }
    const shared = entry.kind === 'file' && buf.readUInt32LE(at + 48) > 1;
    sink.found.push(shared ? { entry, inode: `${buf.readBigUInt64LE(at + 72)}:${buf.readBigUInt64LE(at + 80)}` } : { entry });
    sink.onEntry();
    if (entry.kind === 'dir') pending.push(path);
  }
}

function entryOf(
  type: number,
  path: RelPath,
  meta: Metadata,
  buf: Buffer,
  at: number,
  nameEnd: number,
  targetEnd: number,
  onHashed?: (bytes: number) => void,
): Entry | undefined {
  switch (type) {
    case TYPE.reg: {
      const file: FileEntry = { kind: 'file', path, meta, size: buf.readDoubleLE(at + 40) };
      const sha256 = onHashed ? hashOf(file, buf, at, onHashed) : undefined;
      return sha256 === undefined ? file : { kind: 'file', path, meta, size: file.size, sha256 };
    }
    case TYPE.dir:
      return { kind: 'dir', path, meta };
    case TYPE.lnk:
      return { kind: 'symlink', path, meta, target: buf.toString('latin1', nameEnd, targetEnd) };
    case TYPE.chr:
    case TYPE.blk:
      return {
        kind: type === TYPE.chr ? 'chardev' : 'blockdev',
        path,
        meta,
        major: buf.readUInt32LE(at + 52),
        minor: buf.readUInt32LE(at + 56),
      };
    case TYPE.fifo:
      return { kind: 'fifo', path, meta };
    default:
      return undefined;
  }
}

/** The sha256 read on the walk; undefined when this node has no sha256 there (hashFileEntries does it then). */
function hashOf(file: FileEntry, buf: Buffer, at: number, onHashed: (bytes: number) => void): string | undefined {
  const outcome = buf.readInt32LE(at + 88);
  switch (outcome) {
    case HASH.ok:
      onHashed(file.size);
      return buf.toString('hex', at + 96, at + 128);
    case HASH.noSha:
      return undefined;
    case HASH.notRegular:
      throw notRegularError(file);
    case HASH.size:
      throw changedWhileReadingError(file);
    default:
      throw ioError('read', displayPath(file.path), errnoError(buf.readInt32LE(at + 92), outcome === HASH.open ? 'open' : 'read'));
  }
}

/** (u32 name bytes, name, u32 value bytes, value) pairs, sorted by name; values copied out of the batch buffer. */
function decodeXattrs(buf: Buffer, start: number, end: number): readonly Xattr[] {
  if (start === end) return NO_XATTRS;
  const xattrs: Xattr[] = [];
  for (let at = start; at < end;) {
    const nameEnd = at + 4 + buf.readUInt32LE(at);
    const name = buf.toString('latin1', at + 4, nameEnd);
    const valueEnd = nameEnd + 4 + buf.readUInt32LE(nameEnd);
    xattrs.push({ name, value: Buffer.from(buf.subarray(nameEnd + 4, valueEnd)) });
    at = valueEnd;
  }
  return xattrs.sort((a, b) => compareRel(a.name, b.name));
}

function errnoError(errno: number, syscall: string): Error {
  const code = errno > 0 ? getSystemErrorName(-errno) : 'EIO';
  return Object.assign(new Error(`${syscall} failed`), { code, errno: -errno, syscall });
}

function failure(step: number, path: RelPath, errno: number): Error {
  const shown = displayPath(path);
  switch (step) {
    case STEP.lstat:
      return ioError('stat', shown, errnoError(errno, 'lstat'));
    case STEP.readlink:
      return ioError('read symlink', shown, errnoError(errno, 'readlink'));
    default:
      return ioError('read extended attributes of', shown, errnoError(errno, step === STEP.listxattr ? 'llistxattr' : 'lgetxattr'));
  }
}
