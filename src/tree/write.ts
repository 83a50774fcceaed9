/**
 * Creating entries under a new output root. Callers create in path order (parents before
 * children), write regular files themselves (e.g. copyFileEntry), then apply metadata
 * (meta.ts), directories last.
 *
 * Safety: every path is checked with assertSafeRelPath, and the parent of every new node
 * must be a real directory (lstat, not a symlink): by induction over path order no write
 * can go through a symlink planted by an earlier entry and escape the output root.
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import type { Entry, FileEntry, RelPath } from './entry.js';
import { fsext } from './fsext.js';
import { assertSafeRelPath, displayPath, parentOf, toFsPath } from './paths.js';
import type { RestoreReport } from './meta.js';
import { DeltaimgError, ioError } from '../util/errors.js';

/**
 * Creates one non-file entry: dir (owner-only 0700 until its metadata is applied), symlink,
 * hardlink (to the already written `linkTo`), char/block device or fifo. Path '' (the root)
 * makes the output root itself if missing. Returns false when a device node could not be
 * created for lack of privilege and `report` was given to record that; true otherwise.
 */
export async function createNode(outRoot: string, entry: Exclude<Entry, FileEntry>, report?: RestoreReport): Promise<boolean> {
  const rel = assertSafeRelPath(entry.path, 'entry');
  if (rel === '') {
    if (entry.kind !== 'dir') throw new DeltaimgError('HOSTILE_PATH', `the root entry must be a directory, not a ${entry.kind}`);
    await fsp.mkdir(outRoot, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      throw ioError('create', outRoot, err);
    });
    return true;
  }
  await assertParentIsDirectory(outRoot, rel);
  const abs = toFsPath(outRoot, rel);
  try {
    return await makeNode(outRoot, abs, entry, report);
  } catch (err) {
    if (err instanceof DeltaimgError) throw err;
    throw ioError(`create ${entry.kind}`, displayPath(rel), err);
  }
}

async function makeNode(outRoot: string, abs: Buffer, entry: Exclude<Entry, FileEntry>, report?: RestoreReport): Promise<boolean> {
  switch (entry.kind) {
    case 'dir':
      await fsp.mkdir(abs, { mode: 0o700 });
      return true;
    case 'symlink':
      await fsp.symlink(Buffer.from(entry.target, 'latin1'), abs);
      return true;
    case 'hardlink': {
      const target = assertSafeRelPath(entry.linkTo, `hardlink ${displayPath(entry.path)} target`);
      await assertParentIsDirectory(outRoot, target);
      // link(2) does not follow a symlink in the old path's last component.
      await fsp.link(toFsPath(outRoot, target), abs);
      return true;
    }
    case 'fifo':
      fsext().mknod(abs, 'fifo', 0o600, 0, 0);
      return true;
    case 'chardev':
    case 'blockdev':
      return makeDevice(abs, entry, report);
  }
}

function makeDevice(abs: Buffer, entry: Extract<Entry, { kind: 'chardev' | 'blockdev' }>, report?: RestoreReport): boolean {
  try {
    fsext().mknod(abs, entry.kind === 'chardev' ? 'char' : 'block', 0o600, entry.major, entry.minor);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!report || code !== 'EPERM') throw err;
    report.skipped.push({
      what: 'device',
      path: entry.path,
      reason: `${entry.kind} ${entry.major}:${entry.minor}: EPERM (needs root / CAP_MKNOD)`,
    });
    return false;
  }
}

/**
 * Throws unless the parent of `rel` under `outRoot` is a real directory. Use it before
 * writing any path that came from outside (regular files included).
 */
export async function assertParentIsDirectory(outRoot: string, rel: RelPath): Promise<void> {
  const parent = parentOf(rel);
  if (parent === rel) return;
  // The output root itself may be reached through a symlink the user chose; below it, nothing may be.
  const statParent = parent === '' ? fsp.stat : fsp.lstat;
  const stat = await statParent(toFsPath(outRoot, parent)).catch((err: unknown) => {
    throw ioError('find the parent directory of', displayPath(rel), err);
  });
  if (!stat.isDirectory()) {
    throw new DeltaimgError(
      'HOSTILE_PATH',
      `parent of ${displayPath(rel)} is not a directory (${displayPath(parent)}); refusing to write through it (the input is damaged or malicious)`,
    );
  }
}

/**
 * Writes a regular file entry by copying `source` (e.g. an unchanged file of the base tree).
 * Fails if the path exists. The content is not checked; metadata is applied separately.
 */
export async function copyFileEntry(outRoot: string, entry: FileEntry, source: string | Buffer): Promise<void> {
  const rel = assertSafeRelPath(entry.path, 'entry');
  await assertParentIsDirectory(outRoot, rel);
  // FICLONE makes a reflink where the filesystem can (btrfs, xfs) and falls back to a copy.
  await fsp.copyFile(source, toFsPath(outRoot, rel), fsc.COPYFILE_EXCL | fsc.COPYFILE_FICLONE).catch((err: unknown) => {
    throw ioError('copy a file to', displayPath(rel), err);
  });
}
