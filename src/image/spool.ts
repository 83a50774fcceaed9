/**
 * Inputs that cannot be read twice (stdin, `docker save` output) are copied to a temp file
 * first, so they can be indexed and read by byte ranges like any archive file.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ioError } from '../util/errors.js';

export interface Spool {
  /** The spooled archive. */
  file: string;
  remove(): Promise<void>;
}

export async function makeSpoolDir(tmpDir: string | undefined): Promise<{ dir: string; remove(): Promise<void> }> {
  const base = tmpDir ?? tmpdir();
  let dir: string;
  try {
    dir = await mkdtemp(join(base, 'deltaimg-spool-'));
  } catch (err) {
    throw ioError('create a temp directory in', base, err);
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Copies `input` into a new temp file; removes it again when the copy fails. */
export async function spool(input: NodeJS.ReadableStream, tmpDir: string | undefined, what: string, onFail?: (err: unknown) => Error): Promise<Spool> {
  const d = await makeSpoolDir(tmpDir);
  const file = join(d.dir, 'archive.tar');
  try {
    await pipeline(input, createWriteStream(file));
  } catch (err) {
    await d.remove();
    throw onFail ? onFail(err) : ioError(`spool ${what} to`, file, err);
  }
  return { file, remove: d.remove };
}
