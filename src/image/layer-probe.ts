/**
 * Looking into a layer without writing it anywhere: one small file's bytes, and the size the
 * layer has gzip'd (what a registry stores and a pull transfers).
 */
import { posix } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { DeltaimgError } from '../util/errors.js';
import type { Layer } from './types.js';

/**
 * The bytes of the regular file `name` (e.g. "__delta__/deltaimg.json") in the layer tar, or
 * undefined when the layer has none; a bigger file than maxBytes is refused, naming it.
 */
export async function readLayerFile(layer: Layer, name: string, maxBytes: number, where: string): Promise<Buffer | undefined> {
  const extract = tar.extract();
  const source = await layer.openUncompressed();
  let found: Buffer | undefined;
  const reading = (async () => {
    for await (const entry of extract) {
      const entryName = posix
        .normalize(entry.header.name)
        .replace(/^(\.\/|\/)+/, '')
        .replace(/\/$/, '');
      if (found === undefined && entryName === name && entry.header.type === 'file') {
        if ((entry.header.size ?? 0) > maxBytes) {
          throw new DeltaimgError('BAD_IMAGE', `${where}: /${name} has ${entry.header.size} bytes, more than it can (${maxBytes})`);
        }
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        found = Buffer.concat(chunks);
      } else {
        entry.resume();
      }
    }
  })();
  await Promise.all([pipeline(source, extract), reading]);
  return found;
}

/**
 * Bytes of the layer as a registry holds it: its stored size when it is stored gzip'd, else its
 * tar gzip'd at level 6 (the default of Go's compress/gzip, which docker push uses; the two
 * encoders' outputs differ by a few percent at most), counted, not kept.
 */
export async function gzippedSize(layer: Layer): Promise<number> {
  if (layer.compression === 'gzip') return layer.size;
  let bytes = 0;
  const counter = new Writable({
    write(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      done();
    },
  });
  await pipeline(await layer.openUncompressed(), createGzip({ level: 6 }), counter);
  return bytes;
}
