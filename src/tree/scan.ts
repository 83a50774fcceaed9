/**
 * Scans a root filesystem into a TreeSnapshot: one Entry per path with exact metadata
 * (mode incl. setuid/setgid/sticky, uid/gid, ns mtime, xattrs), never following symlinks.
 *
 * Three phases: walk (readdir + lstat), sort all paths by bytes and resolve hardlink
 * groups (the first name of an inode is the file, later names link to it), then optionally hash file contents through bounded buffers.
 */
import { lstatSync, promises as fsp, readlinkSync, realpathSync, type BigIntStats } from 'node:fs';
import { hashFileEntries } from './hash-files.js';
import { NO_XATTRS, walkBelow, type Found } from './walk.js';
import { createHash } from 'node:crypto';
import type { Entry, Metadata, RelPath, Xattr } from './entry.js';
import { fsext, majorOf, minorOf } from './fsext.js';
import { compareRel, displayPath } from './paths.js';
import { DeltaimgError, ioError } from '../util/errors.js';

export interface ScanOptions {
  /** Fill FileEntry.sha256 (reads every regular file once). */
  hash?: boolean;
  /** Called as the walk and the hashing advance; bytes counts hashed bytes. */
  onProgress?: (p: { entries: number; bytes: number }) => void;
  /** Paths left out with everything below them (a live root's mount points: /proc, /sys, ...). */
  skip?: ReadonlySet<RelPath>;
}

export interface TreeSnapshot {
  root: string;
  /** Sorted by path in byte order; the root directory itself comes first with path ''. */
  entries: Entry[];
  /** Things skipped or odd (sockets, paths that vanished mid-scan), one line each. */
  warnings: string[];
}

/** The read buffer of sha256File. */
const HASH_BUFFER_BYTES = 256 * 1024;

export async function scanTree(root: string, opts: ScanOptions = {}): Promise<TreeSnapshot> {
  const rootBuf = resolveRoot(root);
  const rootStat = lstatRoot(rootBuf, root);
  if (!rootStat.isDirectory()) {
    throw new DeltaimgError('USAGE', `cannot scan ${root}: not a directory (give the root directory of an unpacked filesystem)`);
  }
  const progress = new ProgressCounter(opts.onProgress);
  const warnings: string[] = [];
  const rootEntry = entryFor(rootBuf, '' as RelPath, rootStat)!;
  const found: Found[] = [{ entry: rootEntry }];
  progress.entry();
  // Regular files are hashed on the walk, through their open directory; hashFileEntries then
  // does only what that could not (a node without OpenSSL's sha256 for native code).
  const onHashed = opts.hash ? (n: number) => progress.bytes(n) : undefined;
  await walkBelow(rootBuf, { found, warnings, onEntry: () => progress.entry(), skip: opts.skip, onHashed });
  found.sort((a, b) => compareRel(a.entry.path, b.entry.path));
  const entries = found.map(resolveHardlinks());
  if (opts.hash) await hashFileEntries(rootBuf, entries, (n) => progress.bytes(n));
  progress.flush();
  return { root, entries, warnings };
}

/** The root alone may be reached through a symlink (a path the user typed); nothing below it is followed. */
function resolveRoot(root: string): Buffer {
  try {
    return realpathSync(Buffer.from(root, 'utf8'), { encoding: 'buffer' });
  } catch (err) {
    throw ioError('find', root, err);
  }
}

function lstatRoot(abs: Buffer, shown: string): BigIntStats {
  try {
    return lstatSync(abs, { bigint: true });
  } catch (err) {
    throw ioError('stat', shown, err);
  }
}

/** The entry for one lstat'ed path; undefined for sockets and other types an image cannot hold. */
export function entryFor(abs: Buffer, path: RelPath, stat: BigIntStats): Entry | undefined {
  const meta = metadataOf(abs, path, stat);
  if (stat.isFile()) return { kind: 'file', path, meta, size: Number(stat.size) };
  if (stat.isDirectory()) return { kind: 'dir', path, meta };
  if (stat.isSymbolicLink()) return { kind: 'symlink', path, meta, target: readTarget(abs, path) };
  if (stat.isCharacterDevice() || stat.isBlockDevice()) {
    const kind = stat.isCharacterDevice() ? 'chardev' : 'blockdev';
    return { kind, path, meta, major: majorOf(stat.rdev), minor: minorOf(stat.rdev) };
  }
  if (stat.isFIFO()) return { kind: 'fifo', path, meta };
  return undefined;
}

function readTarget(abs: Buffer, path: RelPath): string {
  try {
    return readlinkSync(abs, { encoding: 'buffer' }).toString('latin1');
  } catch (err) {
    throw ioError('read symlink', displayPath(path), err);
  }
}

function metadataOf(abs: Buffer, path: RelPath, stat: BigIntStats): Metadata {
  return {
    mode: Number(stat.mode & 0o7777n),
    uid: Number(stat.uid),
    gid: Number(stat.gid),
    mtimeNs: stat.mtimeNs,
    xattrs: readXattrs(abs, path),
  };
}

/** All xattrs of the path itself (every namespace the caller may read), sorted by name. */
export function readXattrs(abs: Buffer, path: RelPath): readonly Xattr[] {
  const ext = fsext();
  try {
    const names = ext.llistxattr(abs);
    if (names.length === 0) return NO_XATTRS;
    names.sort(compareRel);
    return names.map((name) => ({ name, value: ext.lgetxattr(abs, name) }));
  } catch (err) {
    throw ioError('read extended attributes of', displayPath(path), err);
  }
}

/**
 * Turns Found records (already in path order) into Entries: regular files with nlink > 1
 * are grouped by (dev, ino); the first name stays a FileEntry, the rest become HardlinkEntry.
 */
function resolveHardlinks(): (f: Found) => Entry {
  const firstNameOf = new Map<string, RelPath>();
  return ({ entry, inode }) => {
    if (inode === undefined) return entry;
    const first = firstNameOf.get(inode);
    if (first === undefined) {
      firstNameOf.set(inode, entry.path);
      return entry;
    }
    return { kind: 'hardlink', path: entry.path, meta: entry.meta, linkTo: first };
  };
}

/** Hex sha256 of a file's content, streamed through a bounded buffer. */
export async function sha256File(path: string | Buffer): Promise<string> {
  return hashWithBuffer(path, Buffer.allocUnsafe(HASH_BUFFER_BYTES), () => {});
}

async function hashWithBuffer(path: string | Buffer, buffer: Buffer, onBytes: (n: number) => void): Promise<string> {
  const hash = createHash('sha256');
  const handle = await fsp.open(path, 'r');
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      onBytes(bytesRead);
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/** Batches progress callbacks: every 256 entries / 4 MiB, plus a final flush. */
class ProgressCounter {
  private entries = 0;
  private bytesDone = 0;
  private lastEntries = 0;
  private lastBytes = 0;
  constructor(private readonly report?: (p: { entries: number; bytes: number }) => void) {}

  entry(): void {
    this.entries++;
    if (this.entries - this.lastEntries >= 256) this.flush();
  }

  bytes(n: number): void {
    this.bytesDone += n;
    if (this.bytesDone - this.lastBytes >= 4 * 1024 * 1024) this.flush();
  }

  flush(): void {
    this.lastEntries = this.entries;
    this.lastBytes = this.bytesDone;
    this.report?.({ entries: this.entries, bytes: this.bytesDone });
  }
}
