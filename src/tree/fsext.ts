/**
 * Loader and typed face of the fsext native addon (native-build/fsext): the Linux
 * calls Node's fs lacks — xattrs, mknod and nanosecond utimes, none following symlinks.
 *
 * The .node file is found relative to this module (src/tree or dist/tree, both two
 * levels below the package root), so it works from a checkout, under vitest and in a
 * Docker image where the package is copied to /opt/deltaimg. DELTAIMG_FSEXT overrides it.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DeltaimgError } from '../util/errors.js';

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
}

const ADDON_RELATIVE = '../../native-build/fsext/build/Release/fsext.node';

let loaded: FsExt | undefined;

/** The addon, loaded on first use; a one-line DeltaimgError when it has not been built. */
export function fsext(): FsExt {
  if (loaded) return loaded;
  const file = process.env.DELTAIMG_FSEXT || fileURLToPath(new URL(ADDON_RELATIVE, import.meta.url));
  if (!existsSync(file)) {
    throw new DeltaimgError('INTERNAL', `native addon missing at ${file}: run \`npm run build:native\` (needs python3, make, g++)`);
  }
  loaded = createRequire(import.meta.url)(file) as FsExt;
  return loaded;
}

/** glibc's major()/minor() on a 64-bit dev_t as returned by lstat({ bigint: true }).rdev. */
export function majorOf(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}

export function minorOf(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}
