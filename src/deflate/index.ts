/**
 * Exact deflate: from a compressed stream (gzip, zlib or raw deflate) and its decompressed
 * bytes, make a small recipe that rebuilds the compressed bytes exactly from the decompressed
 * bytes alone; and the rebuild. Strategy one finds zlib settings that reproduce the stream
 * (recompress.ts); otherwise the token recipe keeps the block structure, Huffman headers and
 * LZ77 token shapes (scan.ts, encode.ts), as Android's puffin does. Both directions stream:
 * memory is a few buffers plus the recipe. Every rebuild is checked against the recorded
 * sha256 and size of the compressed bytes.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { constants as zc, crc32, createBrotliCompress, createBrotliDecompress } from 'node:zlib';
import { DeltaimgError, isDeltaimgError } from '../util/errors.js';
import { ByteWriter, StreamCursor } from './bytes.js';
import { RankCoder } from './model.js';
import { Window } from './window.js';
import { type Container, MAX_GZIP_HEADER, parseGzipHeader, parseZlibHeader, trailerLength } from './container.js';
import { encodeTokens } from './encode.js';
import { type Recipe, type RecipeMember, decodeRecipe, describeRecipe, encodeRecipe } from './recipe.js';
import { reproducesWith, zlibCandidates, zlibDeflater } from './recompress.js';
import { DeflateScanner } from './scan.js';
import { DeflateFormatError } from './tables.js';

export type { Container } from './container.js';
export { decodeRecipe, describeRecipe, type Recipe } from './recipe.js';

type AnyStream = Readable | NodeJS.ReadableStream;
type Source = () => AnyStream | Promise<AnyStream>;

/** Node's classic streams (what image layers open) as Readables we can destroy. */
function readable(s: AnyStream): Readable {
  return s instanceof Readable ? s : new Readable().wrap(s);
}

/** Opens the two sides afresh each time they are read (analysis reads them more than once). */
export interface StreamPair {
  compressed: Source;
  decompressed: Source;
}

export type RecipeOutcome = { kind: 'recipe'; recipe: Buffer; summary: string } | { kind: 'not-rebuildable'; why: string };

export interface RecipeOptions {
  /** Rebuild once from the recipe and compare before returning it (token recipes only). Default true. */
  verify?: boolean;
  /** false: only settings recipes (a few dozen bytes), no token recipe. Default true. */
  tokens?: boolean;
}

/** Makes the recipe, or says why this stream cannot be rebuilt exactly (the caller keeps it another way). */
export async function makeRecipe(container: Container, sources: StreamPair, opts: RecipeOptions = {}): Promise<RecipeOutcome> {
  try {
    const settings = await recompressRecipe(container, sources);
    if (!settings && opts.tokens === false) return { kind: 'not-rebuildable', why: 'no zlib settings reproduce it' };
    const recipe = settings ?? (await tokenRecipe(container, sources));
    if (recipe.members.some((m) => m.method.kind === 'tokens') && opts.verify !== false) await checkRebuild(recipe, sources);
    return { kind: 'recipe', recipe: encodeRecipe(recipe), summary: describeRecipe(recipe) };
  } catch (err) {
    if (err instanceof DeflateFormatError) return { kind: 'not-rebuildable', why: err.message };
    throw err;
  }
}

async function recompressRecipe(container: Container, sources: StreamPair): Promise<Recipe | undefined> {
  const prefix = await readPrefix(readable(await sources.compressed()), MAX_GZIP_HEADER + 1);
  const parsed =
    container === 'gzip'
      ? parseGzipHeader(prefix, true)
      : container === 'zlib'
        ? parseZlibHeader(prefix, true)
        : { kind: 'header' as const, length: 0 };
  if (parsed.kind !== 'header') throw new DeflateFormatError(parsed.kind === 'invalid' ? parsed.why : 'header is cut short');
  const header = Buffer.from(prefix.subarray(0, parsed.length));
  for (const settings of zlibCandidates(container, header)) {
    const match = await reproducesWith(
      settings,
      readable(await sources.compressed()),
      header.length,
      trailerLength(container),
      readable(await sources.decompressed()),
    );
    if (!match) continue;
    const facts = await streamFacts(readable(await sources.compressed()), trailerLength(container));
    const member: RecipeMember = {
      header,
      decompressedSize: match.decompressedSize,
      method: { kind: 'zlib', ...settings },
      trailer: facts.tail,
    };
    return {
      container,
      compressedSize: facts.size,
      decompressedSize: match.decompressedSize,
      sha256: facts.sha256,
      members: [member],
      trailing: Buffer.alloc(0),
      tokens: Buffer.alloc(0),
    };
  }
  return undefined;
}

async function tokenRecipe(container: Container, sources: StreamPair): Promise<Recipe> {
  const scanner = new DeflateScanner(container);
  const hash = createHash('sha256');
  const brotli = createBrotliCompress({ params: { [zc.BROTLI_PARAM_QUALITY]: 9, [zc.BROTLI_PARAM_LGWIN]: 22 } });
  const packed: Buffer[] = [];
  brotli.on('data', (c: Buffer) => packed.push(c));
  const done = once(brotli, 'end');
  const input = readable(await sources.compressed());
  const data = new StreamCursor(readable(await sources.decompressed()));
  const coder = new RankCoder(new Window(data));
  const coded = new ByteWriter();
  const pass = async (): Promise<void> => {
    await coder.rewrite(scanner.tokens.take(), coded);
    if (!brotli.write(coded.take())) await once(brotli, 'drain');
  };
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      hash.update(chunk);
      scanner.feed(chunk);
      if (scanner.tokens.size > 1 << 18) await pass();
    }
    scanner.finish();
    await pass();
  } finally {
    input.destroy();
    await data.close();
  }
  brotli.end();
  await done;
  const members: RecipeMember[] = scanner.members.map((m) => ({ ...m, method: { kind: 'tokens' } }));
  const decompressedSize = members.reduce((n, m) => n + m.decompressedSize, 0);
  return {
    container,
    compressedSize: scanner.compressedSize,
    decompressedSize,
    sha256: hash.digest(),
    members,
    trailing: scanner.trailing,
    tokens: Buffer.concat(packed),
  };
}

/** Rebuilds once and compares, so a recipe that would fail at apply time is never handed out. */
async function checkRebuild(recipe: Recipe, sources: StreamPair): Promise<void> {
  const data = readable(await sources.decompressed());
  try {
    for await (const _ of rebuildChunks(recipe, data)) void _;
  } catch (err) {
    if (isDeltaimgError(err)) throw new DeflateFormatError(`the rebuild check failed (${err.message})`);
    throw err;
  } finally {
    data.destroy();
  }
}

/**
 * The compressed bytes again, from the recipe and the decompressed bytes. A damaged recipe is
 * refused here, before any output; a mismatch is an error on the stream before its end, and
 * the output never exceeds the recorded size.
 */
export function rebuild(recipeBytes: Uint8Array, decompressed: AsyncIterable<Buffer | Uint8Array | string>): Readable {
  return Readable.from(rebuildChunks(decodeRecipe(recipeBytes), decompressed), { objectMode: false });
}

/** Sizes a recipe records, for planning and reports (validates it). */
export function recipeSizes(recipeBytes: Uint8Array): { compressedSize: number; decompressedSize: number; sha256: string } {
  const r = decodeRecipe(recipeBytes);
  return { compressedSize: r.compressedSize, decompressedSize: r.decompressedSize, sha256: r.sha256.toString('hex') };
}

async function* rebuildChunks(recipe: Recipe, decompressed: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  let written = 0;
  const emit = (chunk: Buffer): Buffer => {
    written += chunk.length;
    if (written > recipe.compressedSize)
      throw new DeltaimgError(
        'VERIFY_FAILED',
        `rebuilt compressed stream grows past its recorded ${recipe.compressedSize} bytes: the decompressed input is not the one the recipe was made from`,
      );
    hash.update(chunk);
    return chunk;
  };
  const data = new StreamCursor(decompressed);
  const win = new Window(data);
  let start = 0;
  const tokenStream = recipe.tokens.length ? Readable.from([recipe.tokens]).pipe(createBrotliDecompress()) : undefined;
  const tokens = new StreamCursor(tokenStream ?? Readable.from([]));
  try {
    for (const member of recipe.members) {
      yield emit(member.header);
      const body = member.method.kind === 'tokens' ? encodeTokens(tokens, win, start, member.decompressedSize) : zlibMember(member, data);
      for await (const chunk of body) yield emit(chunk);
      start += member.decompressedSize;
      yield emit(member.trailer);
    }
    if (recipe.trailing.length) yield emit(recipe.trailing);
    await data.fill(1);
    const longer = data.available > 0 || win.end > start;
    if (longer)
      throw new DeltaimgError(
        'VERIFY_FAILED',
        `decompressed input is longer than the ${recipe.decompressedSize} bytes the recipe was made from`,
      );
    await tokens.fill(1);
    if (tokens.available > 0) throw new DeflateFormatError('token section has bytes left over');
  } catch (err) {
    if (err instanceof DeflateFormatError)
      throw new DeltaimgError('CORRUPT_DELTA', `deflate recipe does not fit its data: ${err.message}; the delta or its base is damaged`);
    if (isZlibDataError(err))
      throw new DeltaimgError(
        'CORRUPT_DELTA',
        `deflate recipe's token section is damaged (${String((err as Error).message)}); make the delta again`,
      );
    throw err;
  } finally {
    tokenStream?.destroy();
    await data.close();
  }
  const digest = hash.digest();
  if (written !== recipe.compressedSize || !digest.equals(recipe.sha256))
    throw new DeltaimgError(
      'VERIFY_FAILED',
      `rebuilt compressed stream (${written} bytes, sha256 ${digest.toString('hex').slice(0, 16)}...) does not match the recorded one (${recipe.compressedSize} bytes, ${recipe.sha256.toString('hex').slice(0, 16)}...): the decompressed input is not the one the recipe was made from`,
    );
}

function isZlibDataError(err: unknown): boolean {
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  // Brotli decode failures carry codes like ERR__ERROR_FORMAT_CL_SPACE.
  return typeof code === 'string' && (code.startsWith('ERR__ERROR') || code.startsWith('ERR_BROTLI'));
}

/** Deflates the member's bytes with its zlib settings; `toEnd`: all the rest of the data, however long. */
async function* zlibMember(member: RecipeMember, data: StreamCursor, toEnd = false): AsyncGenerator<Buffer> {
  if (member.method.kind !== 'zlib') return;
  const deflate = zlibDeflater(member.method);
  const feed = (async () => {
    for (let left = member.decompressedSize; left > 0;) {
      await data.fill(1);
      const n = Math.min(left, data.available);
      if (n === 0 && toEnd) break;
      if (n === 0) throw new DeltaimgError('VERIFY_FAILED', 'decompressed input ends before the recipe does');
      const chunk = data.buf.subarray(data.pos, data.pos + n);
      data.pos += n;
      left -= n;
      if (!deflate.write(chunk)) await once(deflate, 'drain');
    }
    deflate.end();
  })();
  let failure: unknown;
  feed.catch((err: unknown) => {
    failure = err;
    deflate.destroy();
  });
  try {
    for await (const chunk of deflate as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    throw failure ?? err;
  } finally {
    deflate.destroy();
  }
  if (failure) throw failure;
  await feed;
}

/**
 * The gzip stream a version-1 image delta's `replay` describes: its header verbatim, Node's zlib
 * at `level` (memLevel 8), then the CRC-32 and length of the data. Kept to apply old deltas.
 */
export function replayWithZlibLevel(headerHex: string, level: number, decompressed: AsyncIterable<Buffer | Uint8Array | string>): Readable {
  return Readable.from(replayChunks(Buffer.from(headerHex, 'hex'), level, decompressed));
}

async function* replayChunks(
  header: Buffer,
  level: number,
  decompressed: AsyncIterable<Buffer | Uint8Array | string>,
): AsyncGenerator<Buffer> {
  if (level < 0 || level > 9 || !Number.isInteger(level))
    throw new DeltaimgError('CORRUPT_DELTA', `gzip replay level ${level} is not a zlib level; the delta is damaged`);
  yield header;
  const data = new StreamCursor(decompressed);
  let crc = 0;
  let size = 0;
  const member: RecipeMember = {
    header,
    decompressedSize: Number.MAX_SAFE_INTEGER,
    method: { kind: 'zlib', level, memLevel: 8, strategy: zc.Z_DEFAULT_STRATEGY, windowBits: 15 },
    trailer: Buffer.alloc(0),
  };
  const counted = new StreamCursor(
    (async function* () {
      for (;;) {
        await data.fill(1);
        if (data.available === 0) return;
        const chunk = data.buf.subarray(data.pos);
        data.pos = data.buf.length;
        crc = crc32(chunk, crc);
        size += chunk.length;
        yield chunk;
      }
    })(),
  );
  yield* zlibMember(member, counted, true);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(size % 2 ** 32, 4);
  yield trailer;
}

async function readPrefix(stream: Readable, max: number): Promise<Buffer> {
  const cursor = new StreamCursor(stream);
  try {
    await cursor.fill(max);
    return Buffer.from(cursor.buf.subarray(cursor.pos, cursor.pos + max));
  } finally {
    await cursor.close();
    stream.destroy();
  }
}

/** Size, sha256 and last `tailLength` bytes of a stream, in one pass. */
async function streamFacts(stream: Readable, tailLength: number): Promise<{ size: number; sha256: Buffer; tail: Buffer }> {
  const hash = createHash('sha256');
  let size = 0;
  let tail = Buffer.alloc(0);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
    tail = Buffer.concat([tail, chunk.subarray(Math.max(0, chunk.length - tailLength))]).subarray(-tailLength || tail.length);
  }
  return { size, sha256: hash.digest(), tail: tailLength ? Buffer.from(tail.subarray(tail.length - tailLength)) : Buffer.alloc(0) };
}
