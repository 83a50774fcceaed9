/**
 * The last look before OUT appears: every entry as it is on disk (lstat) against its record.
 * The tree digest proves the records are the delta's; this proves the disk holds the records:
 * a filesystem that clamps an mtime (ext4 stops at 2446), an owner or a device number that
 * did not arrive as written, is a failed apply, not a silent difference.
 */
import { lstatSync, type BigIntStats } from 'node:fs';
import type { RestoreReport } from '../tree/meta.js';
import { majorOf, minorOf } from '../tree/fsext.js';
import { displayPath, toFsPath } from '../tree/paths.js';
import { DeltaimgError, ioError } from '../util/errors.js';
import type { DeltaRecord } from './format.js';

export function verifyOnDisk(outRoot: string, records: readonly DeltaRecord[], report: RestoreReport): void {
  const skipped = new Set(report.skipped.map((s) => `${s.what}\0${s.path}`));
  for (const r of records) {
    // A device node apply was not allowed to make (reported) is not there to check.
    if ((r.kind === 'chardev' || r.kind === 'blockdev') && skipped.has(`device\0${r.path}`)) continue;
    let st: BigIntStats;
    try {
      st = lstatSync(toFsPath(outRoot, r.path), { bigint: true });
    } catch (err) {
      throw ioError('check restored', displayPath(r.path) || '/', err);
    }
    const wrong = difference(r, st, (what) => skipped.has(`${what}\0${r.path}`));
    if (wrong) {
      throw new DeltaimgError(
        'VERIFY_FAILED',
        `restored ${displayPath(r.path) || '/'} differs from its record on disk (${wrong}); the filesystem under the output cannot hold it exactly`,
      );
    }
  }
}

function difference(r: DeltaRecord, st: BigIntStats, wasSkipped: (what: 'owner') => boolean): string | null {
  if (!kindMatches(r, st)) return 'type';
  // A hardlink is another name of an inode its file record already describes.
  if (r.kind === 'hardlink') return null;
  if (r.kind === 'chardev' || r.kind === 'blockdev') {
    if (majorOf(st.rdev) !== r.major || minorOf(st.rdev) !== r.minor)
      return `device ${majorOf(st.rdev)}:${minorOf(st.rdev)}, not ${r.major}:${r.minor}`;
  }
  if (r.kind === 'file' && st.size !== BigInt(r.size)) return `size ${st.size}, not ${r.size}`;
  // Without its owner restored, a file's setgid bit may be dropped by the kernel (chmod by a non-member).
  const ownerSkipped = wasSkipped('owner');
  const mask = ownerSkipped ? 0o5777 : 0o7777;
  if (r.kind !== 'symlink' && (Number(st.mode) & mask) !== (r.meta.mode & mask))
    return `mode ${(st.mode & 0o7777n).toString(8)}, not ${r.meta.mode.toString(8)}`;
  if (!ownerSkipped && (st.uid !== BigInt(r.meta.uid) || st.gid !== BigInt(r.meta.gid))) {
    return `owner ${st.uid}:${st.gid}, not ${r.meta.uid}:${r.meta.gid}`;
  }
  if (st.mtimeNs !== r.meta.mtimeNs) return `mtime ${st.mtimeNs} ns, not ${r.meta.mtimeNs}`;
  return null;
}

function kindMatches(r: DeltaRecord, st: BigIntStats): boolean {
  switch (r.kind) {
    case 'file':
    case 'hardlink':
      return st.isFile();
    case 'dir':
      return st.isDirectory();
    case 'symlink':
      return st.isSymbolicLink();
    case 'chardev':
      return st.isCharacterDevice();
    case 'blockdev':
      return st.isBlockDevice();
    case 'fifo':
      return st.isFIFO();
  }
}
