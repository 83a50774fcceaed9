/**
 * Exact deflate (src/deflate): streams made by real compressors (GNU gzip -1..-9, pigz single
 * and multi-member, the system zlib through Python, Node's zlib, Go's compress/gzip) come back
 * byte for byte from their decompressed bytes and a recipe; damaged recipes and wrong data are
 * refused in one line with output bounded by the recorded size.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { appendFile, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zc, createGunzip, createInflate, createInflateRaw, gzipSync, createGzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Container, makeRecipe, rebuild } from '../src/deflate/index.js';
import { decodeRecipe, encodeRecipe } from '../src/deflate/recipe.js';
import { xorByte } from './helpers/bytes.js';
import { gnuGzipFile, goGzipFile, pigzFile, pythonZlibFile } from './helpers/compressors.js';

let dir: string;
let sample: string;
const REPO = join(import.meta.dirname, '..');

/** ~1.3 MB: source text, pseudo-random bytes, a run of zeros and repeated lines, so every block kind appears. */
async function makeSample(path: string): Promise<void> {
  const parts: Buffer[] = [];
  for (const sub of ['src/delta', 'src/image', 'src/tree']) {
    const files = (await readdir(join(REPO, sub), { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
    for (const name of files.sort()) parts.push(await readFile(join(REPO, sub, name)));
  }
  let x = 12345;
  const noise = Buffer.alloc(200_000);
  for (let i = 0; i < noise.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    noise[i] = x >>> 24;
  }
  parts.push(noise, Buffer.alloc(70_000), Buffer.from('the same line again and again\n'.repeat(5000)));
  await writeFile(path, Buffer.concat(parts));
}

const inflaters = { gzip: createGunzip, zlib: createInflate, raw: createInflateRaw } as const;

function pairOf(file: string, container: Container) {
  return { compressed: () => createReadStream(file), decompressed: () => createReadStream(file).pipe(inflaters[container]()) };
}

async function sha256(stream: AsyncIterable<Buffer>): Promise<{ hex: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const c of stream) {
    h.update(c);
    bytes += c.length;
  }
  return { hex: h.digest('hex'), bytes };
}

/** Makes the recipe, rebuilds from the decompressed bytes alone, compares byte for byte. */
async function roundTrip(file: string, container: Container = 'gzip'): Promise<{ summary: string; recipeBytes: number }> {
  const outcome = await makeRecipe(container, pairOf(file, container));
  if (outcome.kind !== 'recipe') throw new Error(`not rebuildable: ${outcome.why}`);
  const rebuilt = await readAll(rebuild(outcome.recipe, pairOf(file, container).decompressed()));
  expect(rebuilt.equals(await readFile(file))).toBe(true);
  return { summary: outcome.summary, recipeBytes: outcome.recipe.length };
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaimg-deflate-'));
  sample = join(dir, 'sample.bin');
  await makeSample(sample);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('exact deflate round trips', () => {
  for (const level of [1, 2, 3, 4, 5, 6, 7, 8, 9]) {
    it(`GNU gzip -${level} (with name and mtime)`, async () => {
      const out = join(dir, `gnu${level}.gz`);
      await gnuGzipFile(sample, out, [`-${level}`]);
      const { summary } = await roundTrip(out);
      expect(summary).toMatch(/^gzip, 1 member/);
    });
  }

  it('GNU gzip -n and --rsyncable', async () => {
    for (const args of [['-n'], ['--rsyncable']]) {
      const out = join(dir, `gnu${args[0]}.gz`);
      await gnuGzipFile(sample, out, args);
      await roundTrip(out);
    }
  });

  it('pigz: single member (blocks joined by sync flushes), -i independent blocks, and -1/-9', async () => {
    for (const args of [['-6'], ['-i', '-b', '64'], ['-1', '-b', '32'], ['-9', '-p', '2']]) {
      const out = join(dir, `pigz${args.join('')}.gz`);
      await pigzFile(sample, out, args);
      expect((await roundTrip(out)).summary).toMatch(/1 member/);
    }
  });

  it('multi-member gzip (pigz and GNU gzip outputs concatenated) and trailing zeros', async () => {
    const a = join(dir, 'mm-a.gz');
    const b = join(dir, 'mm-b.gz');
    await pigzFile(sample, a, ['-6']);
    await gnuGzipFile(sample, b, ['-9']);
    const both = join(dir, 'multi.gz');
    await writeFile(both, Buffer.concat([await readFile(a), await readFile(b), await readFile(a)]));
    expect((await roundTrip(both)).summary).toMatch(/3 members/);
    await appendFile(both, Buffer.alloc(512));
    await roundTrip(both);
  });

  it('the system zlib through Python: gzip, zlib and raw wrappers, levels and strategies', async () => {
    const cases: Array<[Container, number, number, number]> = [
      ['gzip', 31, 6, zc.Z_DEFAULT_STRATEGY],
      ['zlib', 15, 1, zc.Z_DEFAULT_STRATEGY],
      ['zlib', 15, 9, zc.Z_FILTERED],
      ['raw', -15, 4, zc.Z_HUFFMAN_ONLY],
      ['raw', -15, 6, zc.Z_RLE],
      ['zlib', 10, 6, zc.Z_DEFAULT_STRATEGY],
      ['zlib', 15, 0, zc.Z_DEFAULT_STRATEGY],
    ];
    for (const [container, wbits, level, strategy] of cases) {
      const out = join(dir, `py-${container}-${level}-${strategy}-${wbits}`);
      await pythonZlibFile(sample, out, level, wbits, strategy);
      await roundTrip(out, container);
    }
  });

  it("Node's zlib is found again by settings: a recipe of a few dozen bytes", async () => {
    for (const [level, memLevel] of [
      [1, 8],
      [6, 8],
      [9, 9],
    ] as const) {
      const out = join(dir, `node${level}.gz`);
      await pipeline(createReadStream(sample), createGzip({ level, memLevel }), createWriteStream(out));
      const { summary, recipeBytes } = await roundTrip(out);
      expect(summary).toBe(`gzip, 1 member, zlib level ${level} memLevel ${memLevel}`);
      expect(recipeBytes).toBeLessThan(100);
    }
  });

  it("Go's compress/gzip: default, BestSpeed, BestCompression and Huffman only", async () => {
    for (const level of [-1, 1, 9, -2]) {
      const out = join(dir, `go${level}.gz`);
      await goGzipFile(sample, out, level);
      expect((await roundTrip(out)).summary).toMatch(/tokens/);
    }
  });

  it('empty input, from every compressor', async () => {
    const empty = join(dir, 'empty');
    await writeFile(empty, '');
    const outs: string[] = [];
    const add = (name: string) => {
      outs.push(join(dir, name));
      return join(dir, name);
    };
    await gnuGzipFile(empty, add('e-gnu.gz'), ['-9']);
    await pigzFile(empty, add('e-pigz.gz'), []);
    await goGzipFile(empty, add('e-go.gz'), -1);
    await writeFile(add('e-node.gz'), gzipSync(Buffer.alloc(0)));
    for (const out of outs) await roundTrip(out);
  });
});

describe('exact deflate refuses what does not fit', () => {
  let recipe: Buffer;
  let gz: string;
  beforeAll(async () => {
    gz = join(dir, 'hostile.gz');
    await gnuGzipFile(sample, gz, ['-6']);
    const outcome = await makeRecipe('gzip', pairOf(gz, 'gzip'));
    if (outcome.kind !== 'recipe') throw new Error(outcome.why);
    recipe = outcome.recipe;
  });

  it('a wrong decompressed input: one-line VERIFY_FAILED, output never past the recorded size', async () => {
    const data = await readAll(pairOf(gz, 'gzip').decompressed());
    // The first byte is always a literal; a byte inside a match would not change the stream at all.
    xorByte(data, 0, 1);
    const { compressedSize } = decodeRecipe(recipe);
    let produced = 0;
    const err = await (async () => {
      for await (const c of rebuild(recipe, Readable.from([data]))) produced += (c as Buffer).length;
    })().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'VERIFY_FAILED' });
    expect(String((err as Error).message)).not.toContain('\n');
    expect(produced).toBeLessThanOrEqual(compressedSize);
    const longer = Buffer.concat([await readAll(pairOf(gz, 'gzip').decompressed()), Buffer.from('x')]);
    await expect(sha256(rebuild(recipe, Readable.from([longer])))).rejects.toMatchObject({ code: 'VERIFY_FAILED' });
  });

  it('damaged recipes: refused before any output, or on the stream in one line', async () => {
    const data = await readAll(pairOf(gz, 'gzip').decompressed());
    const bad: Buffer[] = [
      Buffer.from('nope'),
      recipe.subarray(0, 20),
      recipe.subarray(0, recipe.length - 1),
      Buffer.concat([recipe, Buffer.from([0])]),
    ];
    const versionBump = Buffer.from(recipe);
    versionBump[4] = 9;
    bad.push(versionBump);
    const parsed = decodeRecipe(recipe);
    bad.push(encodeRecipe({ ...parsed, decompressedSize: parsed.decompressedSize + 1 }));
    bad.push(encodeRecipe({ ...parsed, compressedSize: 3 }));
    bad.push(encodeRecipe({ ...parsed, members: [{ ...parsed.members[0]!, trailer: Buffer.alloc(3) }] }));
    for (const bytes of bad)
      expect(() => rebuild(bytes, Readable.from([data]))).toThrow(expect.objectContaining({ name: 'DeltaimgError' }));
    // Token bytes flipped: the brotli or token decoder, or the final digest check, refuses it.
    for (const offset of [5, 100, 1000, parsed.tokens.length - 3]) {
      const tokens = Buffer.from(parsed.tokens);
      tokens[offset]! ^= 0x55;
      const damaged = encodeRecipe({ ...parsed, tokens });
      let produced = 0;
      const err = await (async () => {
        for await (const c of rebuild(damaged, Readable.from([data]))) produced += (c as Buffer).length;
      })().catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'DeltaimgError' });
      expect(String((err as Error).message)).not.toContain('\n');
      expect(produced).toBeLessThanOrEqual(parsed.compressedSize);
    }
  });

  it('streams that are not what they claim are reported, not recorded', async () => {
    const notGzip = join(dir, 'not.gz');
    await writeFile(notGzip, 'plain text, not gzip');
    const outcome = await makeRecipe('gzip', {
      compressed: () => createReadStream(notGzip),
      decompressed: () => createReadStream(notGzip),
    });
    expect(outcome).toMatchObject({ kind: 'not-rebuildable' });
    const truncated = join(dir, 'truncated.gz');
    await writeFile(truncated, (await readFile(gz)).subarray(0, 5000));
    const cut = await makeRecipe('gzip', { compressed: () => createReadStream(truncated), decompressed: () => createReadStream(sample) });
    expect(cut).toMatchObject({ kind: 'not-rebuildable' });
  });
});

describe('exact deflate on a huge stream', () => {
  it('110 MB through GNU gzip -1: recipe and rebuild stream with bounded memory', async () => {
    const big = join(dir, 'big.gz');
    // Text-like data made on the fly: numbered lines with a pseudo-random word, never held whole.
    async function* lines(): AsyncGenerator<Buffer> {
      let x = 7;
      for (let block = 0; block < 1100; block++) {
        let s = '';
        for (let i = 0; i < 2000; i++) {
          x = (x * 1103515245 + 12345) >>> 0;
          s += `${block * 2000 + i} entry ${(x >>> 8).toString(36)} value=${x % 1000}\n`;
        }
        yield Buffer.from(s.padEnd(100_000, '.'));
      }
    }
    const gzip = execa('gzip', ['-1', '-c'], { stdout: { file: big }, input: Readable.from(lines()) });
    await gzip;
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    try {
      const before = process.memoryUsage().rss;
      const outcome = await makeRecipe('gzip', pairOf(big, 'gzip'));
      if (outcome.kind !== 'recipe') throw new Error(outcome.why);
      const rebuilt = await sha256(rebuild(outcome.recipe, pairOf(big, 'gzip').decompressed()));
      const original = await sha256(createReadStream(big));
      expect(rebuilt).toEqual(original);
      // The recipe is held in memory; everything else streams.
      expect(peak - before).toBeLessThan(200 * 1024 * 1024 + outcome.recipe.length * 3);
    } finally {
      clearInterval(timer);
    }
  }, 600_000);
});
