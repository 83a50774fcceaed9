/**
 * Inputs that cannot be read twice (stdin, `docker save` output) are copied to a temp file
 * first, so they can be indexed and read by byte ranges like any archive file.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { makeScratchDir } from '../util/atomic-output.js';
import { ioError } from '../util/errors.js';

export interface Spool {
  /** The spooled archive. */
  file: string;
  remove(): Promise<void>;
}

/** Copies `input` into a new temp file (removed at exit at the latest); removes it again when the copy fails. */
export async function spool(
  input: NodeJS.ReadableStream,
  tmpDir: string | undefined,
  what: string,
  onFail?: (err: unknown) => Error,
): Promise<Spool> {
  const dir = await makeScratchDir(tmpDir, 'deltaimg-spool-');
  const file = join(dir.path, 'archive.tar');
  try {
    await pipeline(input, createWriteStream(file));
  } catch (err) {
    await dir.remove();
    throw onFail ? onFail(err) : ioError(`spool ${what} to`, file, err);
  }
  return { file, remove: dir.remove };
}
