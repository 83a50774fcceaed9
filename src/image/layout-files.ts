/**
 * The files of an image archive or layout, by name, whatever holds them: a tar archive
 * (indexed once, members read as byte ranges) or an OCI layout directory. Readers only
 * see this, so each format is read the same way from a directory or an archive.
 */
import { createReadStream } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { DeltaimgError, ioError } from '../util/errors.js';
import { safeMemberName } from './names.js';
import type { TarIndex } from './tar-index.js';

/** Manifests, configs and indexes are read whole; anything bigger than this is not one. */
export const MAX_JSON_BYTES = 16 << 20;

export interface LayoutFiles {
  /** The archive or directory, for messages. */
  readonly where: string;
  /** Size of a regular file, undefined when absent. */
  size(name: string): Promise<number | undefined>;
  open(name: string): Promise<Readable>;
  /** First bytes of a file (format sniffing). */
  head(name: string, bytes: number): Promise<Buffer>;
}

export function tarFiles(index: TarIndex): LayoutFiles {
  return {
    where: index.label,
    async size(name) {
      return index.file(name)?.size;
    },
    async open(name) {
      const m = index.file(name);
      if (!m) throw missing(index.label, name);
      return asIoErrors(index.openRange(m), 'read', `${index.label} (entry ${name})`);
    },
    async head(name, bytes) {
      const m = index.file(name);
      if (!m) throw missing(index.label, name);
      return readHead(index.openRange({ ...m, size: Math.min(bytes, m.size) }));
    },
  };
}

/** A layout directory; names are checked, and only regular files (no symlinks) are read. */
export function dirFiles(dir: string): LayoutFiles {
  const resolve = (name: string) => join(dir, safeMemberName(dir, name));
  const regular = async (name: string) => {
    const path = resolve(name);
    try {
      const st = await lstat(path);
      if (!st.isFile()) throw new DeltaimgError('HOSTILE_PATH', `layout ${dir}: ${name} is not a regular file; refusing it`);
      return { path, size: st.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (err instanceof DeltaimgError) throw err;
      throw ioError('stat', path, err);
    }
  };
  return {
    where: dir,
    async size(name) {
      return (await regular(name))?.size;
    },
    async open(name) {
      const f = await regular(name);
      if (!f) throw missing(dir, name);
      return asIoErrors(createReadStream(f.path), 'read', f.path);
    },
    async head(name, bytes) {
      const f = await regular(name);
      if (!f) throw missing(dir, name);
      const fh = await open(f.path, 'r');
      try {
        const buf = Buffer.alloc(Math.min(bytes, f.size));
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        return buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    },
  };
}

/** A small file whole (JSON documents), refusing oversized ones. */
export async function readSmall(files: LayoutFiles, name: string): Promise<Buffer> {
  const size = await files.size(name);
  if (size === undefined) throw missing(files.where, name);
  if (size > MAX_JSON_BYTES)
    throw new DeltaimgError('BAD_IMAGE', `${files.where}: ${name} is ${size} bytes, too big for a manifest or config`);
  return readHead(await files.open(name));
}

export async function readJson(files: LayoutFiles, name: string): Promise<{ bytes: Buffer; json: unknown }> {
  const bytes = await readSmall(files, name);
  try {
    return { bytes, json: JSON.parse(bytes.toString('utf8')) as unknown };
  } catch {
    throw new DeltaimgError('BAD_IMAGE', `${files.where}: ${name} is not valid JSON`);
  }
}

async function readHead(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** fs errors while streaming become one-line DeltaimgErrors naming the file. */
function asIoErrors(stream: Readable, action: string, path: string): Readable {
  const out = new PassThrough();
  stream.on('error', (err) => out.destroy(ioError(action, path, err)));
  out.once('close', () => stream.destroy());
  return stream.pipe(out);
}

export function missing(where: string, name: string): DeltaimgError {
  return new DeltaimgError('BAD_IMAGE', `${where}: ${name} is missing (referenced by the manifest or index)`);
}
