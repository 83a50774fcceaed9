/**
 * The gzip content op: a `.gz` file (Debian changelogs and man pages, gz assets) changes wholesale
 * when one line of what it holds changes, so it is diffed decompressed and its exact bytes come
 * back from an exact-deflate recipe (src/deflate). Members are small: both sides work in memory,
 * bounded by the limits below; a larger or unrebuildable file keeps today's handling.
 */
import { closeSync, constants as fsc, openSync, readFileSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { brotliCompressSync, constants as zc, gunzipSync } from 'node:zlib';
import { makeRecipe, rebuild } from '../deflate/index.js';
import type { RelPath } from '../tree/entry.js';
import { displayPath } from '../tree/paths.js';
import { vcdiffMaxBytes } from '../util/byte-limit.js';
import { DeltaimgError } from '../util/errors.js';
import { decodeInMemory } from '../vcdiff/index.js';
import { restoreFile, type Written } from './file-codecs.js';
import type { ContentOp, FileRecord, Payload } from './format.js';

type GzipOp = Extract<ContentOp, { op: 'gzip' }>;

/** gzip files up to this size are tried (compressed bytes). */
export const GZIP_MEMBER_MAX_BYTES = 16 * 1024 * 1024;
/** ...and only when they decompress to at most this much. */
export const GZIP_INNER_MAX_BYTES = 64 * 1024 * 1024;
/** A recipe never exceeds this (it is at most about the compressed size). */
export const GZIP_RECIPE_MAX_BYTES = GZIP_MEMBER_MAX_BYTES + (1 << 20);
/** Estimated peak of trying one member: both files, both decompressed, the encodes' buffers. */
export const GZIP_MEMBER_MEMORY = 3 * GZIP_MEMBER_MAX_BYTES + 3 * GZIP_INNER_MAX_BYTES;

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 18 && bytes[0] === 0x1f && bytes[1] === 0x8b && bytes[2] === 8;
}

/** The decompressed bytes, or undefined when they are not valid gzip or too large. */
export function gunzipBounded(bytes: Buffer): Buffer | undefined {
  try {
    return gunzipSync(bytes, { maxOutputLength: GZIP_INNER_MAX_BYTES });
  } catch {
    return undefined;
  }
}

/** The recipe rebuilding `gz` from `inner`, or undefined when none reproduces it exactly. */
export async function recipeFor(gz: Buffer, inner: Buffer): Promise<Buffer | undefined> {
  const made = await makeRecipe('gzip', { compressed: () => Readable.from([gz]), decompressed: () => Readable.from([inner]) });
  return made.kind === 'recipe' ? made.recipe : undefined;
}

export function brotliBest(bytes: Buffer): Buffer {
  return brotliCompressSync(bytes, {
    params: { [zc.BROTLI_PARAM_QUALITY]: 11, [zc.BROTLI_PARAM_LGWIN]: 24, [zc.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  });
}

/** What restoring a gzip op reads: payloads by reference, verified source files. */
export interface GzipMemberInputs {
  readPayload(payload: Payload, opts: { brotli: boolean; maxBytes: number; declaredBytes?: number }): Buffer | null;
  readSource(from: RelPath, sha256: string, maxBytes: number): Buffer | null;
  scratchPath(): string;
}

/**
 * Writes the gzip file of record `r` at `abs`: its decompressed bytes first (brotli, or VCDIFF
 * against the source, decompressed when recorded so), bounded by `innerSize`, then the recipe's
 * rebuild, which checks its own size and sha256 (and the caller the record's).
 */
export async function restoreGzipMember(r: FileRecord, c: GzipOp, abs: Buffer, io: GzipMemberInputs): Promise<Written> {
  const name = displayPath(r.path);
  if (c.innerSize > GZIP_INNER_MAX_BYTES || r.size > GZIP_MEMBER_MAX_BYTES) throw damagedOp(name, 'its sizes are beyond what diff makes');
  // Copied: payload and source reads may hand out views of one reused scratch buffer.
  const stored = io.readPayload(c.recipe, { brotli: false, maxBytes: GZIP_RECIPE_MAX_BYTES });
  if (!stored) throw damagedOp(name, 'its recipe is larger than any diff makes');
  const recipe = Buffer.from(stored);
  const inner = await innerBytes(c, name, io);
  if (inner.length !== c.innerSize) throw damagedOp(name, `its decompressed bytes are ${inner.length}, not the ${c.innerSize} recorded`);
  return restoreFile(rebuild(recipe, Readable.from([inner])), abs, { brotli: false, maxBytes: r.size });
}

async function innerBytes(c: GzipOp, name: string, io: GzipMemberInputs): Promise<Buffer> {
  const i = c.inner;
  if (i.op === 'brotli') {
    const bytes = io.readPayload(i.payload, { brotli: true, maxBytes: GZIP_INNER_MAX_BYTES, declaredBytes: c.innerSize });
    if (!bytes) throw damagedOp(name, 'its decompressed bytes are missing');
    return bytes;
  }
  const read = io.readSource(i.from, i.fromSha256, GZIP_MEMBER_MAX_BYTES);
  const raw = read && Buffer.from(read);
  if (!raw) throw damagedOp(name, `its source ${displayPath(i.from)} is larger than any diff uses`);
  const source = i.gunzipFrom ? gunzipBounded(raw) : raw;
  if (!source)
    throw new DeltaimgError(
      'WRONG_SOURCE',
      `source file ${displayPath(i.from)} is not the gzip file ${name} was diffed against; pass the tree the delta was made from`,
    );
  const delta = io.readPayload(i.payload, { brotli: true, maxBytes: GZIP_INNER_MAX_BYTES * 2, declaredBytes: vcdiffMaxBytes(c.innerSize) });
  if (!delta) throw damagedOp(name, 'its VCDIFF is missing');
  const scratch = io.scratchPath();
  const fd = openSync(scratch, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  try {
    await decodeInMemory(
      {
        source,
        delta,
        outFd: fd,
        deltaName: `the VCDIFF payload for ${name}`,
        sourceName: `source file ${displayPath(i.from)}`,
        outName: name,
      },
      { maxOutputBytes: c.innerSize },
    );
    return readFileSync(scratch);
  } finally {
    closeSync(fd);
    rmSync(scratch, { force: true });
  }
}

function damagedOp(name: string, why: string): DeltaimgError {
  return new DeltaimgError('CORRUPT_DELTA', `the gzip op for ${name} is damaged: ${why}; the delta cannot be used, make it again`);
}
