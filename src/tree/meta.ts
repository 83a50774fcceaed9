/**
 * Restoring an Entry's metadata on a path we just created under an output root.
 *
 * Order matters: owner first (chown clears setuid/setgid and security.capability), then
 * xattrs (an unprivileged owner needs write permission to set user.* ones, which a
 * read-only mode would take away), then mode, then mtime last. Directories
 * must get their metadata in a final pass after all their children exist, deepest first
 * (see applyDirectoryMetadata): adding a child changes a directory's mtime, and a
 * read-only directory mode would stop a non-root writer from adding children.
 *
 * What the process may not do (chown when not root, trusted.* or security.* xattrs when
 * unprivileged, device nodes in a container without CAP_MKNOD) is recorded in the report
 * instead of failing; the caller prints one summary line (summarizeReport).
 */
import { chmodSync, lchownSync } from 'node:fs';
import type { DirEntry, Entry, RelPath } from './entry.js';
import { fsext } from './fsext.js';
import { compareRel, displayPath, toFsPath } from './paths.js';
import { ioError } from '../util/errors.js';

export interface RestoreReport {
  skipped: { what: 'owner' | 'xattr' | 'device'; path: RelPath; reason: string }[];
}

export function newRestoreReport(): RestoreReport {
  return { skipped: [] };
}

/** errnos meaning "not allowed for this process / on this filesystem", not a broken output. */
const NOT_PERMITTED = new Set(['EPERM', 'EACCES', 'ENOTSUP', 'EOPNOTSUPP', 'EINVAL']);

/**
 * Applies owner, xattrs, mode (not for symlinks) and mtime (ns, not following symlinks).
 * A hardlink shares its inode with the file it names, so there is nothing to do for it;
 * a device node that createNode could not make (recorded in the report) is left alone too.
 */
export async function applyMetadata(abs: Buffer, entry: Entry, report: RestoreReport): Promise<void> {
  applyMetadataSync(abs, entry, report);
}

/**
 * The same, synchronously: four short syscalls, and on a busy machine the threadpool round
 * trips of the async versions cost ten times the syscalls themselves (apply restores
 * thousands of small files).
 */
export function applyMetadataSync(abs: Buffer, entry: Entry, report: RestoreReport): void {
  if (entry.kind === 'hardlink') return;
  if ((entry.kind === 'chardev' || entry.kind === 'blockdev') && wasSkipped(report, 'device', entry.path)) return;
  const { meta } = entry;
  applyOwner(abs, entry, report);
  applyXattrs(abs, entry, report);
  if (entry.kind !== 'symlink') {
    try {
      chmodSync(abs, meta.mode);
    } catch (err) {
      throw ioError('set the mode of', displayPath(entry.path), err);
    }
  }
  try {
    fsext().lutimesNs(abs, meta.mtimeNs, meta.mtimeNs);
  } catch (err) {
    throw ioError('set the mtime of', displayPath(entry.path), err);
  }
}

function applyOwner(abs: Buffer, entry: Entry, report: RestoreReport): void {
  const { uid, gid } = entry.meta;
  try {
    lchownSync(abs, uid, gid);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (!NOT_PERMITTED.has(code)) throw ioError('set the owner of', displayPath(entry.path), err);
    const who = process.getuid?.() === 0 ? code : `${code} (not running as root)`;
    report.skipped.push({ what: 'owner', path: entry.path, reason: `uid ${uid} gid ${gid}: ${who}` });
  }
}

function applyXattrs(abs: Buffer, entry: Entry, report: RestoreReport): void {
  const ext = fsext();
  for (const { name, value } of entry.meta.xattrs) {
    try {
      ext.lsetxattr(abs, name, value);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (!NOT_PERMITTED.has(code)) throw ioError(`set xattr ${name} on`, displayPath(entry.path), err);
      report.skipped.push({ what: 'xattr', path: entry.path, reason: `${name}: ${code}` });
    }
  }
}

function wasSkipped(report: RestoreReport, what: 'owner' | 'xattr' | 'device', path: RelPath): boolean {
  return report.skipped.some((s) => s.what === what && s.path === path);
}

/**
 * The final pass: metadata of every directory among `entries`, deepest path first (reverse
 * byte order puts every child before its parent). Call it after all entries are written.
 */
export async function applyDirectoryMetadata(outRoot: string, entries: readonly Entry[], report: RestoreReport): Promise<void> {
  const dirs = entries.filter((e): e is DirEntry => e.kind === 'dir');
  dirs.sort((a, b) => compareRel(b.path, a.path));
  for (const dir of dirs) await applyMetadata(toFsPath(outRoot, dir.path), dir, report);
}

/** One line for the user, or undefined when nothing was skipped. */
export function summarizeReport(report: RestoreReport): string | undefined {
  if (report.skipped.length === 0) return undefined;
  const count = (what: string): number => report.skipped.filter((s) => s.what === what).length;
  const parts = [
    [count('owner'), 'ownerships'],
    [count('xattr'), 'extended attributes'],
    [count('device'), 'device nodes'],
  ]
    .filter(([n]) => (n as number) > 0)
    .map(([n, label]) => `${n} ${label}`);
  const first = report.skipped[0]!;
  const advice =
    process.getuid?.() === 0 ? 'the filesystem or a container without these privileges refused them' : 'run as root for an exact copy';
  return `warning: could not restore ${parts.join(', ')} (e.g. ${displayPath(first.path)}: ${first.reason}); ${advice}`;
}
