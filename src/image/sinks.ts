/**
 * Where a writer puts the files of an archive or layout: a tar stream (to a file, stdout or
 * `docker load`) or a directory. Streamed blobs are checked against their digest and size as
 * they are written, so a wrong layer never lands silently.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { ioError } from '../util/errors.js';
import { digestCheck, type Expected } from './digest-stream.js';

export interface LayoutSink {
  /** Whether a file of that name was written already (blobs are shared between images). */
  has(name: string): boolean;
  addBuffer(name: string, data: Buffer): Promise<void>;
  /** Writes exactly expected.size bytes hashing to expected.digest, else fails. */
  addStream(name: string, stream: NodeJS.ReadableStream, expected: Expected & { size: number }): Promise<void>;
  /** Completes the archive (end-of-archive blocks, flushed output). */
  finish(): Promise<void>;
}

/** Fixed metadata: the same images always give the same archive bytes. */
const FILE_HEADER = { mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) };
const DIR_HEADER = { ...FILE_HEADER, mode: 0o755, type: 'directory' as const };

export function tarSink(out: Writable, opts: { endOutput: boolean }): LayoutSink {
  const pack = tar.pack();
  const written = new Set<string>();
  // tar-stream's streams are streamx streams: bridge to a Node Readable for Node's pipe semantics.
  const packed = Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
  packed.pipe(out, { end: opts.endOutput });
  const outDone = opts.endOutput ? finished(out) : finished(packed);
  outDone.catch(() => {}); // awaited in finish()
  // A dead output (disk full, docker load gone) must fail pending writes, not leave them waiting.
  const outFailed = new Promise<never>((_, reject) => {
    out.once('error', reject);
    packed.once('error', reject);
  });
  outFailed.catch(() => {});
  const guarded = <T>(op: Promise<T>) => Promise.race([op, outFailed]);
  const addParents = (name: string) => {
    const parts = name.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = `${parts.slice(0, i).join('/')}/`;
      if (!written.has(dir)) {
        written.add(dir);
        pack.entry({ ...DIR_HEADER, name: dir });
      }
    }
  };
  return {
    has: (name) => written.has(name),
    async addBuffer(name, data) {
      addParents(name);
      written.add(name);
      await guarded(
        new Promise<void>((resolve, reject) => pack.entry({ ...FILE_HEADER, name }, data, (err) => (err ? reject(err) : resolve()))),
      );
    },
    async addStream(name, stream, expected) {
      addParents(name);
      written.add(name);
      await guarded(
        new Promise<void>((resolve, reject) => {
          const entry = pack.entry({ ...FILE_HEADER, name, size: expected.size }, (err) => (err ? reject(err) : resolve()));
          const check = digestCheck(expected);
          const source = stream as Readable;
          source.once('error', reject);
          check.once('error', reject);
          source.pipe(check).pipe(entry as unknown as Writable);
        }),
      );
    },
    async finish() {
      pack.finalize();
      await guarded(outDone);
    },
  };
}

export function dirSink(root: string): LayoutSink {
  const written = new Set<string>();
  const place = async (name: string) => {
    const path = join(root, name);
    await mkdir(dirname(path), { recursive: true }).catch((err: unknown) => {
      throw ioError('create', dirname(path), err);
    });
    written.add(name);
    return path;
  };
  return {
    has: (name) => written.has(name),
    async addBuffer(name, data) {
      const path = await place(name);
      await writeFile(path, data).catch((err: unknown) => {
        throw ioError('write', path, err);
      });
    },
    async addStream(name, stream, expected) {
      const path = await place(name);
      await pipeline(stream, digestCheck(expected), createWriteStream(path));
    },
    async finish() {},
  };
}
