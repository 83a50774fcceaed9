/**
 * The source of an `assembled` record (format v3): the concatenation, in order, of the source
 * files it names, each checked against its recorded size and sha256 as it is read. Diff and
 * apply build it the same way: streamed into a scratch file (one file's chunk in memory at a
 * time, never the tree), or, when small, in one buffer for the in-memory decoder.
 */
import { createHash } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { displayPath } from '../tree/paths.js';
import { DeltaimgError, ioError } from '../util/errors.js';
import type { AssembledSource } from './format.js';
import { wrongSource } from './source-tree.js';

/** Total bytes of the parts. */
export function assembledBytes(sources: readonly AssembledSource[]): number {
  return sources.reduce((n, s) => n + s.size, 0);
}

/**
 * Writes the parts one after another into the new file `out` (created, never overwritten),
 * reading each through `openPart`; a part of another size or sha256 than recorded is a wrong
 * base, refused naming its path, before the decoder sees a byte of it.
 */
export async function writeAssembledSource(
  sources: readonly AssembledSource[],
  openPart: (part: AssembledSource) => Promise<Readable>,
  out: string,
): Promise<void> {
  const fh = await open(out, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600).catch((err: unknown) => {
    throw ioError('create', out, err);
  });
  try {
    for (const s of sources) {
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of (await openPart(s)) as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > s.size) throw otherSize(s);
        hash.update(chunk);
        for (let done = 0; done < chunk.length;) done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten;
      }
      if (bytes !== s.size) throw otherSize(s);
      const actual = hash.digest('hex');
      if (actual !== s.sha256) throw wrongSource(s.path, s.sha256, actual);
    }
  } finally {
    await fh.close();
  }
}

/**
 * The parts in one buffer, each read whole and checked: `readPart(part)` returns its bytes
 * checked against its sha256 (in a buffer it may reuse), or null when the file is larger.
 */
export function readAssembledSource(sources: readonly AssembledSource[], readPart: (part: AssembledSource) => Buffer | null): Buffer {
  const whole = Buffer.allocUnsafe(assembledBytes(sources));
  let at = 0;
  for (const s of sources) {
    const bytes = readPart(s);
    if (bytes === null || bytes.length !== s.size) throw otherSize(s);
    at += bytes.copy(whole, at);
  }
  return whole;
}

function otherSize(s: AssembledSource): DeltaimgError {
  return new DeltaimgError(
    'WRONG_SOURCE',
    `source file ${displayPath(s.path)} does not match the delta's base (not the ${s.size} bytes recorded); apply the delta to the tree or image it was made from`,
  );
}
