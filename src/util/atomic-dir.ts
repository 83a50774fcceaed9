/**
 * Builds a directory under a temporary sibling name and renames it into place only
 * when the build succeeded, so a failed or interrupted run never leaves a
 * half-written output that looks complete.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { lstat, mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { DeltaimgError, ioError } from './errors.js';

export async function buildDirAtomically<T>(finalPath: string, build: (tempDir: string) => Promise<T>): Promise<T> {
  const target = resolve(finalPath);
  await assertAbsent(target);
  const temp = join(dirname(target), `.${basename(target)}.deltaimg-tmp-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(temp, { mode: 0o700 });
  } catch (err) {
    throw ioError('create', temp, err);
  }
  // An interrupted run (the CLI turns SIGINT/SIGTERM into exit) still removes its temp dir.
  const cleanup = () => rmSync(temp, { recursive: true, force: true });
  process.once('exit', cleanup);
  try {
    const result = await build(temp);
    await assertAbsent(target);
    await rename(temp, target).catch((err: unknown) => {
      throw ioError('rename into place', target, err);
    });
    return result;
  } catch (err) {
    await rm(temp, { recursive: true, force: true }).catch(() => {});
    throw err;
  } finally {
    process.off('exit', cleanup);
  }
}

export async function assertAbsent(path: string): Promise<void> {
  try {
    await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError('check', path, err);
  }
  throw new DeltaimgError('USAGE', `${path} already exists; remove it or choose another output path`);
}
