/**
 * extractRootfs: the base image's flattened root filesystem as a delta source: layers applied
 * in order with OCI/Docker whiteouts, keeping only what a delta can use, regular files (by
 * content) and directories. Symlinks, devices and fifos are never created (a symlink would be
 * useless as a source and dangerous to write through) but they do replace what was at their
 * path, as they would in the real image. Hardlinks become hard links to their target.
 *
 * Safety: paths with '..', '.', empty components or NUL are skipped; since nothing but
 * directories and regular files is ever created below `dir`, no path can lead outside it.
 */
import { lstat, link, mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import type { RelPath } from '../tree/entry.js';
import { displayPath, joinRel, parentOf, toFsPath } from '../tree/paths.js';
import { ioError } from '../util/errors.js';
import { normalizeMemberPath } from '../tar/header.js';
import { ByteReader } from './reader.js';
import { scanTar, type Member } from './scan.js';
import { SkeletonWriter } from './skeleton.js';
import { creatable, DEFAULT_INLINE_MAX, prepareEmptyDir, SkeletonSplitter } from './split.js';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/** Applies the members of one layer after another onto a directory. */
class RootfsWriter {
  /** Paths written by the current layer: an opaque whiteout keeps them. */
  private thisLayer = new Set<string>();

  constructor(private readonly root: string) {}

  private fs(rel: string): Buffer {
    return toFsPath(this.root, rel as RelPath);
  }

  private shown(rel: string): string {
    return `${this.root}${displayPath(rel)}`;
  }

  startLayer(): void {
    this.thisLayer = new Set();
  }

  /** Applies a member; for a regular file, returns the open file its content goes to. */
  async member(m: Member): Promise<FileHandle | undefined> {
    const rel = normalizeMemberPath(m.name);
    // Unsafe paths, and names too long to create (a source file we cannot have, not an error).
    if (rel === undefined || !creatable(rel)) return undefined;
    const slash = rel.lastIndexOf('/');
    const base = rel.slice(slash + 1);
    if (base.startsWith(WHITEOUT)) {
      await this.whiteout(parentOf(rel as RelPath), base);
      return undefined;
    }
    this.thisLayer.add(rel);
    // Old (v7) tars mark directories by a trailing '/' on a regular-file typeflag.
    const isDir = m.typeflag === '5' || m.name.endsWith('/');
    if (m.regular && !isDir) return this.regularFile(rel);
    if (isDir) await this.directory(rel);
    else if (m.typeflag === '1') await this.hardlink(rel, m.linkname);
    else await this.remove(rel); // symlink, device, fifo, ...: replaces what was there
    return undefined;
  }

  private async whiteout(dir: RelPath, base: string): Promise<void> {
    if (base === OPAQUE) return this.opaque(dir);
    const hidden = base.slice(WHITEOUT.length);
    // '.wh..' and '.wh...' would name the directory itself or its parent; '.wh..wh.*' are aufs internals.
    if (hidden === '' || hidden === '.' || hidden === '..' || base.startsWith(`${WHITEOUT}${WHITEOUT}`)) return;
    await this.remove(joinRel(dir, hidden));
  }

  /** An opaque directory hides everything the layers below put in it. */
  private async opaque(dir: RelPath): Promise<void> {
    let names: Buffer[];
    try {
      names = await readdir(this.fs(dir), { encoding: 'buffer' });
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return;
      throw ioError('read directory', this.shown(dir), err);
    }
    for (const name of names) {
      const child = joinRel(dir, name);
      if (!this.thisLayer.has(child)) await this.remove(child);
    }
  }

  private async remove(rel: string): Promise<void> {
    try {
      await rm(this.fs(rel), { recursive: true, force: true });
    } catch (err) {
      if (errno(err) !== 'ENOTDIR') throw ioError('remove', this.shown(rel), err);
    }
  }

  /** Makes `rel` a directory, replacing a file in the way at any level. */
  private async directory(rel: string): Promise<void> {
    try {
      await mkdir(this.fs(rel), { recursive: true });
      return;
    } catch (err) {
      if (errno(err) !== 'EEXIST' && errno(err) !== 'ENOTDIR') throw ioError('create directory', this.shown(rel), err);
    }
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      const st = await lstat(this.fs(prefix)).catch(() => undefined);
      if (st?.isDirectory()) continue;
      if (st) await this.remove(prefix);
      await mkdir(this.fs(prefix)).catch((err: unknown) => Promise.reject(ioError('create directory', this.shown(prefix), err)));
    }
  }

  private async parentOf(rel: string): Promise<void> {
    const parent = parentOf(rel as RelPath);
    if (parent !== '') await this.directory(parent);
  }

  private async regularFile(rel: string): Promise<FileHandle> {
    await this.parentOf(rel);
    // Never write into an existing file: it may be a hard link shared with another path.
    await this.remove(rel);
    try {
      return await open(this.fs(rel), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    } catch (err) {
      throw ioError('create', this.shown(rel), err);
    }
  }

  private async hardlink(rel: string, linkname: string): Promise<void> {
    await this.remove(rel);
    const target = normalizeMemberPath(linkname);
    if (target === undefined || target === rel) return;
    const st = await lstat(this.fs(target)).catch(() => undefined);
    if (!st?.isFile()) return; // a link to something we did not keep
    await this.parentOf(rel);
    await link(this.fs(target), this.fs(rel)).catch((err: unknown) => Promise.reject(ioError('link', this.shown(rel), err)));
  }
}

/** Counts the regular files below `dir` and their bytes (hard links once per name). */
async function countFiles(dir: Buffer): Promise<{ files: number; bytes: number }> {
  const total = { files: 0, bytes: 0 };
  const entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' });
  for (const e of entries) {
    const full = Buffer.concat([dir, Buffer.from('/'), e.name]);
    if (e.isDirectory()) {
      const sub = await countFiles(full);
      total.files += sub.files;
      total.bytes += sub.bytes;
    } else if (e.isFile()) {
      total.files++;
      total.bytes += (await lstat(full)).size;
    }
  }
  return total;
}

async function extractLayer(
  open: () => Promise<NodeJS.ReadableStream>,
  rootfs: RootfsWriter,
  skeletonPath: string | undefined,
  inlineMax: number,
): Promise<void> {
  const splitter = skeletonPath === undefined ? undefined : new SkeletonSplitter(await SkeletonWriter.create(skeletonPath), inlineMax);
  let file: FileHandle | undefined;
  try {
    const reader = new ByteReader(await open());
    rootfs.startLayer();
    for await (const event of scanTar(reader)) {
      if (file && event.kind !== 'content') {
        await file.close();
        file = undefined;
      }
      await splitter?.handle(event);
      if (event.kind === 'member') file = await rootfs.member(event.member);
      else if (event.kind === 'content' && file) await file.write(event.bytes);
    }
    await file?.close();
    file = undefined;
    await splitter?.finish(reader);
  } catch (err) {
    await file?.close().catch(() => undefined);
    await splitter?.abort();
    throw err;
  }
}

/**
 * Writes the flattened root filesystem of `layers` (bottom first) into `dir` (new or empty).
 * opts.skeletons: also writes layer i's skeleton to skeletons[i], as splitTar would with the
 * same opts.inlineMax (default DEFAULT_INLINE_MAX).
 */
export async function extractRootfs(
  layers: Array<() => Promise<NodeJS.ReadableStream>>,
  dir: string,
  opts: { skeletons?: string[]; inlineMax?: number } = {},
): Promise<{ files: number; bytes: number }> {
  await prepareEmptyDir(dir, 'root filesystem directory');
  const rootfs = new RootfsWriter(dir);
  for (const [i, open] of layers.entries()) await extractLayer(open, rootfs, opts.skeletons?.[i], opts.inlineMax ?? DEFAULT_INLINE_MAX);
  return countFiles(Buffer.from(dir));
}
