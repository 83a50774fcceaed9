/**
 * Loader and typed face of the fsext native addon (native-build/fsext): the Linux
 * calls Node's fs lacks — xattrs, mknod and nanosecond utimes, none following symlinks.
 *
 * The .node file is prebuilds/<platform>-<arch>[-musl]/fsext.node under the package root
 * (util/prebuilds.ts), shipped prebuilt for linux x64/arm64 (glibc) and x64 musl, so an
 * installed package needs no compiler; DELTAIMG_FSEXT overrides it.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { DeltaimgError } from '../util/errors.js';
import { buildFromSourceHint, prebuiltFile } from '../util/prebuilds.js';

export type NodeKind = 'char' | 'block' | 'fifo';

export interface FsExt {
  /** Attribute names (latin1-held) of the path itself; [] where the fs has no xattr support. */
  llistxattr(path: Buffer): string[];
  lgetxattr(path: Buffer, name: string): Buffer;
  lsetxattr(path: Buffer, name: string, value: Buffer): void;
  /** mknod(2) with makedev(major, minor); mode is the permission bits (umask applies). */
  mknod(path: Buffer, kind: NodeKind, mode: number, major: number, minor: number): void;
  /** utimensat(AT_FDCWD, path, [atime, mtime], AT_SYMLINK_NOFOLLOW), times in ns since the epoch. */
  lutimesNs(path: Buffer, atimeNs: bigint, mtimeNs: bigint): void;
  /**
   * Copies regular files on a background thread, hashing them (native-build/fsext/copyfiles.c):
   * each job [source, output, uid, gid, mode, mtimeSec, mtimeNsec] gives a row
   * [step, errno, bytes, sha256 | null, chownErrno]. Absent from addons built before it.
   */
  copyFiles?(jobs: CopyFilesJob[]): Promise<CopyFilesRow[]>;
  /**
   * The children of many directories (paths relative to `root`, each ended by a NUL), lstat'ed,
   * with symlink targets, xattrs and (`hash`) regular files' sha256, read on a background thread (native-build/fsext/scandirs.c,
   * which documents the packed records). Absent from addons built before it.
   */
  scanDirs?(root: Buffer, dirs: Buffer, hash: boolean): Promise<Buffer>;
}

export type CopyFilesJob = [source: Buffer, output: Buffer, uid: number, gid: number, mode: number, mtimeSec: number, mtimeNsec: number];
export type CopyFilesRow = [step: number, errno: number, bytes: number, sha256: Buffer | null, chownErrno: number];

let loaded: FsExt | undefined;

/**
 * The addon, loaded on first use. A missing or unloadable file (another architecture, a glibc
 * older than the one it was built against) is a one-line DeltaimgError saying how to build it.
 * Verbs that need it call this before any long work, so they fail at once, not minutes in.
 */
export function fsext(): FsExt {
  if (loaded) return loaded;
  const file = process.env.DELTAIMG_FSEXT || prebuiltFile('fsext.node').path;
  if (!existsSync(file)) throw new DeltaimgError('INSTALL', `native addon missing at ${file}: ${buildFromSourceHint()}`);
  try {
    loaded = createRequire(import.meta.url)(file) as FsExt;
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new DeltaimgError('INSTALL', `cannot load the native addon ${file} (${why}): ${buildFromSourceHint()}`, { cause: err });
  }
  return loaded;
}

/** glibc's major()/minor() on a 64-bit dev_t as returned by lstat({ bigint: true }).rdev. */
export function majorOf(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}

export function minorOf(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}
