/**
 * Can a gzip'd layer blob be reproduced from its tar? A manifest names its layers by the
 * digest of the compressed bytes, so a restored image keeps its manifest digest only if
 * every blob comes back byte for byte. That works when the blob was made by the zlib Node
 * bundles (Node tools) at a level we can find: we keep its gzip header verbatim and re-deflate.
 * Blobs made by other deflaters (GNU gzip, Go's compress/gzip, pigz, and even the system zlib
 * Python uses, whose output differs from Node's bundled build) are reported as not reproducible;
 * apply checks every replayed blob against its digest and stores the tar when it differs.
 */
import { createHash } from 'node:crypto';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zc, crc32, createDeflateRaw } from 'node:zlib';
import type { GzipReplay } from './format.js';

export interface GzipBlob {
  digest: string;
  openStored(): Promise<NodeJS.ReadableStream>;
  openUncompressed(): Promise<NodeJS.ReadableStream>;
}

const FHCRC = 2;
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;
/** Header bytes beyond this are not a gzip header a compressor would write. */
const MAX_HEADER_BYTES = 64 * 1024;

/** Tries the levels the header's XFL byte suggests; undefined when none reproduces the blob. */
export async function findGzipReplay(blob: GzipBlob): Promise<GzipReplay | undefined> {
  const header = parseGzipHeader(await readPrefix(await blob.openStored(), MAX_HEADER_BYTES));
  if (!header) return undefined;
  for (const level of candidateLevels(header[8]!)) {
    const replay: GzipReplay = { kind: 'gzip', level, headerHex: header.toString('hex') };
    if ((await digestOf(replayGzip(await blob.openUncompressed(), replay))) === blob.digest) return replay;
  }
  return undefined;
}

/** The blob's bytes again: the recorded header, the tar deflated at the recorded level, the trailer. */
export function replayGzip(tar: NodeJS.ReadableStream, replay: GzipReplay): Readable {
  const out = new PassThrough();
  out.write(Buffer.from(replay.headerHex, 'hex'));
  let crc = 0;
  let length = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      crc = crc32(chunk, crc);
      length = (length + chunk.length) % 2 ** 32;
      cb(null, chunk);
    },
  });
  const deflate = createDeflateRaw({ level: replay.level, memLevel: 8, windowBits: 15, strategy: zc.Z_DEFAULT_STRATEGY });
  pipeline(tar, measure, deflate, async function* (chunks) {
    for await (const c of chunks) yield c as Buffer;
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(crc >>> 0, 0);
    trailer.writeUInt32LE(length, 4);
    yield trailer;
  }, out).catch((err: unknown) => out.destroy(err as Error));
  return out;
}

/** XFL 2 means "maximum compression", 4 "fastest"; anything else is most often the default 6. */
function candidateLevels(xfl: number): number[] {
  if (xfl === 2) return [9];
  if (xfl === 4) return [1];
  return [6];
}

/** The RFC 1952 header up to the deflate stream, or undefined if this is not gzip. */
export function parseGzipHeader(b: Buffer): Buffer | undefined {
  if (b.length < 10 || b[0] !== 0x1f || b[1] !== 0x8b || b[2] !== 8) return undefined;
  const flags = b[3]!;
  let pos = 10;
  if (flags & FEXTRA) {
    if (b.length < pos + 2) return undefined;
    pos += 2 + b.readUInt16LE(pos);
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if (!(flags & flag)) continue;
    const end = b.indexOf(0, pos);
    if (end < 0) return undefined;
    pos = end + 1;
  }
  if (flags & FHCRC) pos += 2;
  return pos <= b.length ? Buffer.from(b.subarray(0, pos)) : undefined;
}

async function readPrefix(stream: NodeJS.ReadableStream, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    chunks.push(c);
    n += c.length;
    if (n >= max) break;
  }
  (stream as Readable).destroy?.();
  return Buffer.concat(chunks).subarray(0, max);
}

async function digestOf(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const c of stream) hash.update(c as Buffer);
  return `sha256:${hash.digest('hex')}`;
}
