/**
 * The source of an `assembled` record (format v3): the concatenation, in order, of the files it
 * names (a part taken as JSON text escaped first), each checked against its recorded size and
 * sha256 as it is read. Diff and apply build it the same way: streamed into a scratch file (one
 * part in memory at a time, never the tree), or, when small, in one buffer for the in-memory decoder.
 */
import { createHash } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { displayPath } from '../tree/paths.js';
import { DeltaimgError, ioError } from '../util/errors.js';
import type { AssembledSource } from './format.js';
import { wrongSource } from './source-tree.js';

/**
 * A file's text as the body of a JSON string (without the quotes), as bundlers write a source
 * file into a source map's `sourcesContent`: JSON.stringify of its UTF-8 text (invalid bytes
 * become U+FFFD; the same on every side, and the result is checked by the record's sha256).
 */
export function escapeJson(bytes: Buffer): Buffer {
  return Buffer.from(JSON.stringify(bytes.toString('utf8')).slice(1, -1), 'utf8');
}

/**
 * Writes the parts one after another into the new file `out` (created, never overwritten),
 * reading each through `openPart`; a part of another size or sha256 than recorded is a wrong
 * base, refused naming its path, before the decoder sees a byte of it. Returns the bytes written.
 */
export async function writeAssembledSource(
  sources: readonly AssembledSource[],
  openPart: (part: AssembledSource) => Promise<Readable>,
  out: string,
): Promise<number> {
  const fh = await open(out, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600).catch((err: unknown) => {
    throw ioError('create', out, err);
  });
  let written = 0;
  try {
    for (const s of sources) {
      const hash = createHash('sha256');
      const held: Buffer[] = [];
      let bytes = 0;
      for await (const chunk of (await openPart(s)) as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > s.size) throw otherSize(s);
        hash.update(chunk);
        // A part taken as JSON text (at most ASSEMBLED_ESCAPED_MAX_BYTES) is escaped whole, once checked.
        if (s.escape) held.push(chunk);
        else written += await writeAll(fh, chunk);
      }
      if (bytes !== s.size) throw otherSize(s);
      const actual = hash.digest('hex');
      if (actual !== s.sha256) throw wrongSource(s.path, s.sha256, actual);
      if (s.escape) written += await writeAll(fh, escapeJson(Buffer.concat(held)));
    }
  } finally {
    await fh.close();
  }
  return written;
}

async function writeAll(fh: FileHandle, chunk: Buffer): Promise<number> {
  for (let done = 0; done < chunk.length;) done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten;
  return chunk.length;
}

/**
 * The parts in one buffer, each read whole and checked: `readPart(part)` returns its bytes
 * checked against its sha256 (in a buffer it may reuse), or null when the file is larger.
 */
export function readAssembledSource(sources: readonly AssembledSource[], readPart: (part: AssembledSource) => Buffer | null): Buffer {
  const parts = sources.map((s) => {
    const bytes = readPart(s);
    if (bytes === null || bytes.length !== s.size) throw otherSize(s);
    return s.escape ? escapeJson(bytes) : Buffer.from(bytes);
  });
  return Buffer.concat(parts);
}

function otherSize(s: AssembledSource): DeltaimgError {
  return new DeltaimgError(
    'WRONG_SOURCE',
    `source file ${displayPath(s.path)} does not match the delta's base (not the ${s.size} bytes recorded); apply the delta to the tree or image it was made from`,
  );
}
