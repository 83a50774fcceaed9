/** Scratch space for one image diff or apply, removed when it ends, however it ends. */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ioError } from '../util/errors.js';

export async function withWorkDir<T>(parent: string | undefined, purpose: string, body: (dir: string) => Promise<T>): Promise<T> {
  const base = parent ?? tmpdir();
  let dir: string;
  try {
    dir = await mkdtemp(join(base, `deltaimg-image-${purpose}-`));
  } catch (err) {
    throw ioError('create a scratch directory in', base, err);
  }
  // The CLI turns SIGINT/SIGTERM into exit: scratch space goes with it.
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', cleanup);
  try {
    return await body(dir);
  } finally {
    process.off('exit', cleanup);
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}
