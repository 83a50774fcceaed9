/**
 * Strategy one: find zlib settings whose output equals the stream's deflate bytes, so the
 * recipe is a few bytes. Each try streams the decompressed bytes through Node's zlib and
 * compares as output appears, stopping at the first differing byte (usually within the
 * first block), so a miss costs little. GNU gzip, Go, pigz and others never match (their
 * block splitting differs) and go to the token recipe.
 */
import { once } from 'node:events';
import { type Readable } from 'node:stream';
import { constants as zc, createDeflateRaw } from 'node:zlib';
import { StreamCursor } from './bytes.js';
import { type Container, gzipXfl } from './container.js';
import type { ZlibSettings } from './recipe.js';

/** Settings worth trying, most likely first (XFL says 9 or 1 when the compressor wrote it). */
export function zlibCandidates(container: Container, header: Uint8Array): ZlibSettings[] {
  let windowBits = 15;
  let levelsFirst = [6];
  if (container === 'zlib') {
    windowBits = (header[0]! >> 4) + 8;
    const flevel = header[1]! >> 6;
    levelsFirst = [[1], [2, 3, 4, 5], [6], [7, 8, 9]][flevel]!;
  } else if (container === 'gzip') {
    const xfl = gzipXfl(header);
    levelsFirst = xfl === 2 ? [9] : xfl === 4 ? [1] : [6];
  }
  const levels = [...levelsFirst, ...[1, 2, 3, 4, 5, 6, 7, 8, 9].filter((l) => !levelsFirst.includes(l))];
  const out: ZlibSettings[] = [];
  for (const memLevel of [8, 9]) for (const level of levels) out.push({ level, memLevel, strategy: zc.Z_DEFAULT_STRATEGY, windowBits });
  for (const strategy of [zc.Z_FILTERED, zc.Z_HUFFMAN_ONLY, zc.Z_RLE]) out.push({ level: 6, memLevel: 8, strategy, windowBits });
  return out;
}

export function zlibDeflater(s: ZlibSettings) {
  // zlib turns a raw windowBits of 8 into 9; ask for what the stream used.
  return createDeflateRaw({ level: s.level, memLevel: s.memLevel, strategy: s.strategy, windowBits: Math.max(9, s.windowBits) });
}

/**
 * Whether deflating `decompressed` with `settings` gives exactly the bytes of `compressed`
 * between its header (headerLength bytes) and its trailer (trailerLength bytes, then the end).
 */
export async function reproducesWith(
  settings: ZlibSettings,
  compressed: AsyncIterable<Buffer>,
  headerLength: number,
  trailerLength: number,
  decompressed: Readable,
): Promise<{ decompressedSize: number } | undefined> {
  const original = new StreamCursor(compressed);
  const deflate = zlibDeflater(settings);
  let decompressedSize = 0;
  const feed = (async () => {
    for await (const chunk of decompressed as AsyncIterable<Buffer>) {
      decompressedSize += chunk.length;
      if (!deflate.write(chunk)) await once(deflate, 'drain');
    }
    deflate.end();
  })();
  feed.catch((err: unknown) => deflate.destroy(err instanceof Error ? err : new Error(String(err))));
  try {
    await original.fill(headerLength);
    if (original.available < headerLength) return undefined;
    original.pos += headerLength;
    for await (const produced of deflate as AsyncIterable<Buffer>) {
      await original.fill(produced.length);
      if (original.available < produced.length) return undefined;
      if (!produced.equals(original.buf.subarray(original.pos, original.pos + produced.length))) return undefined;
      original.pos += produced.length;
    }
    await feed;
    await original.fill(trailerLength + 1);
    return original.available === trailerLength ? { decompressedSize } : undefined;
  } finally {
    deflate.destroy();
    decompressed.destroy();
    await original.close();
  }
}
