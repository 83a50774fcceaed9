/**
 * The root a `docker build` RUN edits in place ("/" of the build container), as seen from inside:
 * which paths the builder mounts over (/proc, /sys, /dev, /etc/hosts, /etc/resolv.conf, ...), and
 * a walk of everything else with exact metadata (scanTree's, skipping the mounts).
 */
import { lstatSync, readFileSync, type BigIntStats } from 'node:fs';
import { resolve } from 'node:path';
import type { Entry, RelPath } from '../tree/entry.js';
import { compareRel, displayPath, toFsPath } from '../tree/paths.js';
import { entryFor, scanTree } from '../tree/scan.js';
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
 * Every entry under `root` (root itself first, path ''), sorted by path, hardlinks grouped, as
 * scanTree walks any tree; paths in `skip` (mount points) are left out with everything below
 * them. No content hashing: callers check the bytes they wrote themselves.
 */
export async function walkLiveRoot(root: string, skip: ReadonlySet<RelPath>): Promise<Entry[]> {
  return (await scanTree(root, { skip })).entries;
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
  return entryFor(abs, rel, stat);
}
