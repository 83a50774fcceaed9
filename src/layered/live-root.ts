/**
 * The root a `docker build` RUN edits in place ("/" of the build container), as seen from inside:
 * which paths the builder mounts over (/proc, /sys, /dev, /etc/hosts, /etc/resolv.conf, ...), and
 * a walk of everything else with exact metadata, never descending into a mount.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, type BigIntStats } from 'node:fs';
import { resolve } from 'node:path';
import type { Entry, RelPath } from '../tree/entry.js';
import { majorOf, minorOf } from '../tree/fsext.js';
import { compareRel, displayPath, joinRel, toFsPath } from '../tree/paths.js';
import { readXattrs } from '../tree/scan.js';
import { ioError } from '../util/errors.js';

/**
 * Mount points strictly below `root` that are not themselves below another such mount point,
 * relative to `root`, in path order. Read from /proc/self/mountinfo; [] when it is unreadable.
 */
export function topMountPoints(root: string, mountinfo = '/proc/self/mountinfo'): RelPath[] {
  let text: string;
  try {
    text = readFileSync(mountinfo, 'latin1');
  } catch {
    return [];
  }
  const base = resolve(root);
  const prefix = base === '/' ? '/' : `${base}/`;
  const below = new Set<RelPath>();
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    const point = unescapeMountField(field);
    if (point.startsWith(prefix) && point.length > prefix.length) below.add(point.slice(prefix.length) as RelPath);
  }
  const sorted = [...below].sort(compareRel);
  return sorted.filter((p) => !sorted.some((q) => q !== p && isUnder(p, q)));
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** True when `path` is `dir` or lies below it. */
export function isUnder(path: string, dir: string): boolean {
  return dir === '' || path === dir || path.startsWith(`${dir}/`);
}

/**
 * Every entry under `root` (root itself first, path ''), sorted by path, with hardlinks grouped
 * like scanTree does (first name a file, later names HardlinkEntry). Paths in `skip` (mount
 * points) are left out with everything below them. No content hashing: callers check the bytes
 * they wrote themselves.
 */
export function walkLiveRoot(root: string, skip: ReadonlySet<RelPath>): Entry[] {
  const rootBuf = Buffer.from(resolve(root));
  const found: { entry: Entry; inode?: string }[] = [];
  const pending: RelPath[] = ['' as RelPath];
  while (pending.length) {
    const dir = pending.pop()!;
    const abs = toFsPath(rootBuf, dir);
    const stat = lstatOrThrow(abs, dir);
    const entry = entryOf(abs, dir, stat);
    if (!entry) continue;
    found.push({ entry, inode: entry.kind === 'file' && stat.nlink > 1n ? `${stat.dev}:${stat.ino}` : undefined });
    if (entry.kind !== 'dir') continue;
    for (const name of readdirSync(abs, { encoding: 'buffer' })) {
      const child = joinRel(dir, name);
      if (!skip.has(child)) pending.push(child);
    }
  }
  found.sort((a, b) => compareRel(a.entry.path, b.entry.path));
  const firstName = new Map<string, RelPath>();
  return found.map(({ entry, inode }) => {
    if (inode === undefined) return entry;
    const first = firstName.get(inode);
    if (first === undefined) {
      firstName.set(inode, entry.path);
      return entry;
    }
    return { kind: 'hardlink', path: entry.path, meta: entry.meta, linkTo: first };
  });
}

function lstatOrThrow(abs: Buffer, rel: RelPath): BigIntStats {
  try {
    return lstatSync(abs, { bigint: true });
  } catch (err) {
    throw ioError('read', displayPath(rel), err);
  }
}

/** The entry at `rel` below `root` (not following a symlink there), or undefined when there is none. */
export function entryAt(root: string, rel: RelPath): Entry | undefined {
  const abs = toFsPath(resolve(root), rel);
  let stat: BigIntStats;
  try {
    stat = lstatSync(abs, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw ioError('read', displayPath(rel), err);
  }
  return entryOf(abs, rel, stat);
}

/** The entry for one lstat'ed path; undefined for sockets (never part of an image). */
function entryOf(abs: Buffer, path: RelPath, stat: BigIntStats): Entry | undefined {
  const meta = { mode: Number(stat.mode & 0o7777n), uid: Number(stat.uid), gid: Number(stat.gid), mtimeNs: stat.mtimeNs, xattrs: readXattrs(abs, path) };
  if (stat.isDirectory()) return { kind: 'dir', path, meta };
  if (stat.isFile()) return { kind: 'file', path, meta, size: Number(stat.size) };
  if (stat.isSymbolicLink()) return { kind: 'symlink', path, meta, target: readlinkSync(abs, { encoding: 'buffer' }).toString('latin1') };
  if (stat.isFIFO()) return { kind: 'fifo', path, meta };
  if (stat.isCharacterDevice() || stat.isBlockDevice()) {
    return { kind: stat.isCharacterDevice() ? 'chardev' : 'blockdev', path, meta, major: majorOf(stat.rdev), minor: minorOf(stat.rdev) };
  }
  return undefined;
}
