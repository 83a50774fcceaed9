/**
 * The VCDIFF engine on real binaries: round trips, edge sizes, small source windows, a sparse
 * > 4 GiB pair, interop both ways with native xdelta3, and rejection of damaged deltas and
 * wrong sources without leaving OUT behind.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync } from 'node:fs';
import { copyFile, mkdtemp, open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeltaimgError } from '../src/util/errors.js';
import { decodeFile, decodeInMemory, decodeStream, encodeFile, VcdiffPool } from '../src/vcdiff/index.js';
import { xorByte } from './helpers/bytes.js';
import { esbuildBinaryPair, libcryptoPair, type FilePair } from './helpers/real-data.js';

const run = promisify(execFile);
let dir: string;
let esbuild: FilePair;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaimg-vcdiff-'));
  esbuild = await esbuildBinaryPair();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function p(name: string): string {
  return join(dir, name);
}

/** Encodes, decodes, and checks the result byte for byte (by size and SHA-256). */
async function roundTrip(source: string | null, target: string, name: string, opts?: Parameters<typeof encodeFile>[3]) {
  const enc = await encodeFile(source, target, p(`${name}.vcdiff`), opts);
  const dec = await decodeFile(source, p(`${name}.vcdiff`), p(`${name}.out`), opts);
  const targetSha = await sha256File(target);
  expect(dec.outputSha256).toBe(targetSha);
  expect(await sha256File(p(`${name}.out`))).toBe(targetSha);
  expect(enc.targetBytes).toBe((await stat(target)).size);
  expect(enc.deltaBytes).toBe((await stat(p(`${name}.vcdiff`))).size);
  expect(enc.deltaSha256).toBe(await sha256File(p(`${name}.vcdiff`)));
  return { enc, dec, delta: p(`${name}.vcdiff`), out: p(`${name}.out`) };
}

async function expectRejected(promise: Promise<unknown>, code: 'CORRUPT_DELTA' | 'WRONG_SOURCE', mentions: string) {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeltaimgError);
  expect((err as DeltaimgError).code).toBe(code);
  expect((err as DeltaimgError).message).toContain(mentions);
  expect((err as DeltaimgError).message).not.toContain('\n');
}

describe('round trips on real binaries', () => {
  it('esbuild 0.20.1 -> 0.20.2: small delta, exact bytes back', async () => {
    const { enc } = await roundTrip(esbuild.a, esbuild.b, 'esbuild');
    expect(enc.deltaBytes).toBeLessThan(enc.targetBytes / 5);
  });

  it('libcrypto.so.3 across two Debian builds (when apt offers two)', async (ctx) => {
    const pair = await libcryptoPair();
    if (!pair) return ctx.skip();
    const { enc } = await roundTrip(pair.a, pair.b, 'libcrypto');
    expect(enc.deltaBytes).toBeLessThan(enc.targetBytes / 2);
  });

  it('no source: plain VCDIFF compression', async () => {
    const { enc } = await roundTrip(null, esbuild.b, 'nosource');
    expect(enc.deltaBytes).toBeLessThan(enc.targetBytes);
  });

  it('a source larger than the window (512 KiB window on a 9 MiB source)', async () => {
    const small = await roundTrip(esbuild.a, esbuild.b, 'smallwin', { windowBytes: 512 * 1024 });
    const { stdout } = await run('xdelta3', ['-d', '-f', '-s', esbuild.a, small.delta, p('smallwin.native')]);
    expect(stdout).toBe('');
    expect(await sha256File(p('smallwin.native'))).toBe(await sha256File(esbuild.b));
  });

  it('every level and secondary compressor round-trips', async () => {
    await writeFile(p('a2m'), (await readFile(esbuild.a)).subarray(0, 2 << 20));
    await writeFile(p('b2m'), (await readFile(esbuild.b)).subarray(0, 2 << 20));
    for (const [level, secondary] of [
      [0, 'none'],
      [1, 'fgk'],
      [3, 'djw'],
      [6, 'none'],
    ] as const) {
      await roundTrip(p('a2m'), p('b2m'), `lvl${level}`, { level, secondary });
    }
  });
});

describe('edge sizes', () => {
  it('empty target, 1-byte target, identical files, empty source', async () => {
    await writeFile(p('empty'), '');
    await writeFile(p('one'), 'x');
    await writeFile(p('one-b'), 'y');
    const empty = await roundTrip(esbuild.a, p('empty'), 'e1');
    expect(empty.dec.outputBytes).toBe(0);
    await roundTrip(null, p('empty'), 'e2');
    await roundTrip(p('one'), p('one-b'), 'e3');
    await roundTrip(null, p('one'), 'e4');
    await roundTrip(p('empty'), p('one'), 'e5');
    await roundTrip(p('empty'), p('empty'), 'e6');
    const same = await roundTrip(esbuild.a, esbuild.a, 'same');
    expect(same.enc.deltaBytes).toBeLessThan(1000);
  });

  it('wasm instances reused across jobs give byte-identical deltas', async () => {
    await writeFile(p('r-a'), (await readFile(esbuild.a)).subarray(0, 256 * 1024));
    await writeFile(p('r-b'), (await readFile(esbuild.b)).subarray(0, 256 * 1024));
    const first = await encodeFile(p('r-a'), p('r-b'), p('r1.vcdiff'));
    await encodeFile(null, p('r-a'), p('r-other.vcdiff'), { level: 3, secondary: 'fgk' });
    await decodeFile(p('r-a'), p('r1.vcdiff'), p('r1.out'));
    const again = await encodeFile(p('r-a'), p('r-b'), p('r2.vcdiff'));
    expect(again.deltaSha256).toBe(first.deltaSha256);
    const { stdout } = await run('node', [
      '--input-type=module',
      '-e',
      `import { encodeFile } from ${JSON.stringify(new URL('../dist/vcdiff/index.js', import.meta.url).href)};
       const r = await encodeFile(${JSON.stringify(p('r-a'))}, ${JSON.stringify(p('r-b'))}, ${JSON.stringify(p('r3.vcdiff'))});
       process.stdout.write(r.deltaSha256);`,
    ]);
    expect(stdout).toBe(first.deltaSha256); // a fresh process agrees
  });

  it('non-UTF-8 path names (Buffers)', async () => {
    const name = Buffer.concat([Buffer.from(dir + '/caf'), Buffer.from([0xe9, 0xff]), Buffer.from('.bin')]);
    await copyFile(esbuild.b, name);
    const delta = Buffer.concat([name, Buffer.from('.vcdiff')]);
    const out = Buffer.concat([name, Buffer.from('.out')]);
    await encodeFile(esbuild.a, name, delta, { level: 1 });
    const dec = await decodeFile(esbuild.a, delta, out);
    expect(dec.outputSha256).toBe(await sha256File(esbuild.b));
    expect(existsSync(out)).toBe(true);
  });
});

describe('interop with native xdelta3', () => {
  it('our delta decodes with xdelta3 -d -s, byte-identical', async () => {
    await encodeFile(esbuild.a, esbuild.b, p('ours.vcdiff'));
    await run('xdelta3', ['-d', '-f', '-s', esbuild.a, p('ours.vcdiff'), p('ours.native-out')]);
    expect(await sha256File(p('ours.native-out'))).toBe(await sha256File(esbuild.b));
  });

  it('a delta from xdelta3 -e -A -S djw -s decodes here, byte-identical', async () => {
    await run('xdelta3', ['-e', '-f', '-9', '-S', 'djw', '-A', '-s', esbuild.a, esbuild.b, p('native.vcdiff')]);
    const dec = await decodeFile(esbuild.a, p('native.vcdiff'), p('native.out'));
    expect(dec.outputSha256).toBe(await sha256File(esbuild.b));
    expect(await sha256File(p('native.out'))).toBe(dec.outputSha256);
  });

  it('multi-table djw deltas from xdelta3 -S djw9 (with and without a source) decode here, byte-identical', async () => {
    // djw9 codes every section with up to 8 Huffman tables picked per sector, the path
    // -S djw (one table) never takes; ours decodes them with its lookup tables (native-build/).
    await run('xdelta3', ['-e', '-f', '-9', '-S', 'djw9', '-A', '-s', esbuild.a, esbuild.b, p('native9.vcdiff')]);
    const dec = await decodeFile(esbuild.a, p('native9.vcdiff'), p('native9.out'));
    expect(dec.outputSha256).toBe(await sha256File(esbuild.b));
    await run('xdelta3', ['-e', '-f', '-9', '-S', 'djw9', '-c', esbuild.b], { encoding: 'buffer', maxBuffer: 64 << 20 }).then((r) =>
      writeFile(p('native9-solo.vcdiff'), r.stdout),
    );
    const solo = await decodeFile(null, p('native9-solo.vcdiff'), p('native9-solo.out'));
    expect(solo.outputSha256).toBe(await sha256File(esbuild.b));
  });

  it('same delta size as native at equal settings (-9 -S djw, same -B), within 1%', async () => {
    await run('xdelta3', ['-e', '-f', '-9', '-S', 'djw', '-A', '-B', String(16 << 20), '-s', esbuild.a, esbuild.b, p('native16.vcdiff')]);
    const ours = await encodeFile(esbuild.a, esbuild.b, p('ours16.vcdiff'), { level: 9, secondary: 'djw', windowBytes: 16 << 20 });
    const native = (await stat(p('native16.vcdiff'))).size;
    expect(Math.abs(ours.deltaBytes - native)).toBeLessThan(native * 0.01);
  });
});

describe('damaged deltas and wrong sources are rejected, OUT never appears', () => {
  let good: Buffer;
  beforeAll(async () => {
    await encodeFile(esbuild.a, esbuild.b, p('good.vcdiff'));
    good = await readFile(p('good.vcdiff'));
  });

  it('bytes flipped mid-delta: CORRUPT_DELTA', async () => {
    const bad = Buffer.from(good);
    for (let i = 0; i < 16; i++) xorByte(bad, Math.floor(bad.length / 2) + i * 7, 0x5a);
    await writeFile(p('flipped.vcdiff'), bad);
    await expectRejected(decodeFile(esbuild.a, p('flipped.vcdiff'), p('flipped.out')), 'CORRUPT_DELTA', p('flipped.vcdiff'));
    expect(existsSync(p('flipped.out'))).toBe(false);
  });

  it('single bit flips all through the djw sections: the exact target or CORRUPT_DELTA, nothing else', async () => {
    // The djw decoder reads ahead of the bit it is at: damaged Huffman data must still end in
    // an error (or, where xdelta3 tolerates a flip, the adler32-checked bytes), never a crash.
    const targetSha = await sha256File(esbuild.b);
    let seed = 12345;
    for (let i = 0; i < 12; i++) {
      seed = (seed * 48271) % 2147483647; // Park-Miller: exact in doubles, same flips every run
      const bad = Buffer.from(good);
      const at = 64 + (seed % (bad.length - 64));
      bad[at]! ^= 1 << (seed % 8);
      await writeFile(p('bitflip.vcdiff'), bad);
      const outcome = await decodeFile(esbuild.a, p('bitflip.vcdiff'), p('bitflip.out')).then(
        (r) => r.outputSha256,
        (e: unknown) => (e instanceof DeltaimgError ? e.code : e),
      );
      if (outcome === 'CORRUPT_DELTA') expect(existsSync(p('bitflip.out'))).toBe(false);
      else expect(outcome, `flip at byte ${at}`).toBe(targetSha);
      await rm(p('bitflip.out'), { force: true });
    }
  });

  it('truncated deltas (half, last byte, header only, empty): CORRUPT_DELTA', async () => {
    for (const [name, len] of [
      ['half', Math.floor(good.length / 2)],
      ['lastbyte', good.length - 1],
      ['tiny', 10],
      ['zero', 0],
    ] as const) {
      await writeFile(p(`${name}.vcdiff`), good.subarray(0, len));
      await expectRejected(decodeFile(esbuild.a, p(`${name}.vcdiff`), p(`${name}.out`)), 'CORRUPT_DELTA', p(`${name}.vcdiff`));
      expect(existsSync(p(`${name}.out`))).toBe(false);
    }
  });

  it('a delta cut at a window boundary is caught by the recorded target size', async () => {
    // 16 KiB windows, no source: each window's bytes can be found by re-encoding prefixes.
    const target = p('multi.bin');
    await writeFile(target, (await readFile(esbuild.b)).subarray(0, 64 * 1024));
    await encodeFile(null, target, p('multi.vcdiff'), { targetWindowBytes: 16 * 1024 });
    const full = await readFile(p('multi.vcdiff'));
    const { stdout } = await run('xdelta3', ['printhdrs', p('multi.vcdiff')]);
    const lengths = [...stdout.matchAll(/delta encoding length:\s+(\d+)/g)].map((m) => Number(m[1]));
    expect(lengths.length).toBe(4);
    // Cut after the third window: every remaining window is intact, only the last is missing.
    const lastWindowBytes = lengths[3]! + windowHeaderOverhead(lengths[3]!);
    await writeFile(p('cut.vcdiff'), full.subarray(0, full.length - lastWindowBytes));
    await expectRejected(decodeFile(null, p('cut.vcdiff'), p('cut.out')), 'CORRUPT_DELTA', 'expected 65536');
    expect(existsSync(p('cut.out'))).toBe(false);
  });

  it('a source of another size: WRONG_SOURCE before any output', async () => {
    await expectRejected(decodeFile(esbuild.b, p('good.vcdiff'), p('ws.out')), 'WRONG_SOURCE', p('good.vcdiff'));
    expect(existsSync(p('ws.out'))).toBe(false);
  });

  it('a same-size source with different bytes: WRONG_SOURCE', async () => {
    const wrong = await readFile(esbuild.a);
    for (let i = 0; i < wrong.length; i += 4096) wrong[i] = (wrong[i]! + 1) & 0xff;
    await writeFile(p('wrong-src'), wrong);
    await expectRejected(decodeFile(p('wrong-src'), p('good.vcdiff'), p('ws2.out')), 'WRONG_SOURCE', 'exact file');
    expect(existsSync(p('ws2.out'))).toBe(false);
  });

  it('no source for a delta that needs one: WRONG_SOURCE naming -s', async () => {
    await expectRejected(decodeFile(null, p('good.vcdiff'), p('ws3.out')), 'WRONG_SOURCE', '-s SOURCE');
    expect(existsSync(p('ws3.out'))).toBe(false);
  });

  it('a native delta with a wrong source is rejected too (no wrong bytes)', async () => {
    await run('xdelta3', ['-e', '-f', '-9', '-S', 'djw', '-A', '-s', esbuild.a, esbuild.b, p('native2.vcdiff')]);
    const err = await decodeFile(p('wrong-src'), p('native2.vcdiff'), p('ws4.out')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeltaimgError);
    expect(['CORRUPT_DELTA', 'WRONG_SOURCE']).toContain((err as DeltaimgError).code);
    expect(existsSync(p('ws4.out'))).toBe(false);
  });

  it('an existing OUT is left untouched when decoding fails', async () => {
    await writeFile(p('keep.out'), 'previous content');
    await expectRejected(decodeFile(esbuild.a, p('flipped.vcdiff'), p('keep.out')), 'CORRUPT_DELTA', 'flipped');
    expect(await readFile(p('keep.out'), 'utf8')).toBe('previous content');
  });
});

/** VCDIFF window header bytes beyond the "delta encoding length" field's value. */
function windowHeaderOverhead(encodingLength: number): number {
  // Win_Indicator (1) + target window: no source, so no copy segment fields;
  // then the varint "length of the delta encoding" itself.
  return 1 + varintLength(encodingLength);
}

function varintLength(n: number): number {
  let len = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

describe('large files', () => {
  it('a sparse 4.1 GiB pair: offsets past 4 GiB, source much larger than the window', async () => {
    const GiB = 1024 ** 3;
    const size = 4 * GiB + 100 * 1024 * 1024;
    const island = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < island.length; i++) island[i] = (i * 2654435761) >>> 24;
    const islandAt = 4 * GiB + 50 * 1024 * 1024;
    const sourcePatches: Patch[] = [
      { at: 123_456_789, bytes: Buffer.from('low island') },
      { at: islandAt, bytes: island },
    ];
    const targetPatches: Patch[] = [
      { at: islandAt, bytes: island },
      { at: islandAt + 5000, bytes: Buffer.from('edited in the middle') },
      { at: size, bytes: Buffer.from('tail') },
    ];
    const source = await createSparse(p('sparse-a'), size, sourcePatches);
    const target = await createSparse(p('sparse-b'), size + 4, targetPatches);

    // Level 1 keeps the encode to seconds; decoding streams into a checker, nothing hits the disk.
    const enc = await encodeFile(source, target, p('sparse.vcdiff'), { level: 1 });
    expect(enc.targetBytes).toBe(size + 4);
    // The island past 4 GiB is found in the source (not re-sent): the delta stays tiny.
    expect(enc.deltaBytes).toBeLessThan(100_000);
    const checker = new LayoutChecker(targetPatches);
    const dec = await decodeStream(source, p('sparse.vcdiff'), checker);
    expect(checker.mismatchAt).toBe(null);
    expect(checker.offset).toBe(size + 4);
    expect(dec.outputBytes).toBe(size + 4);
  });
});

interface Patch {
  at: number;
  bytes: Buffer;
}

/** A file of zeros (sparse) with patches written over it. */
async function createSparse(path: string, size: number, patches: Patch[]): Promise<string> {
  await writeFile(path, '');
  await truncate(path, size);
  const fh = await open(path, 'r+');
  try {
    for (const { at, bytes } of patches) await fh.write(bytes, 0, bytes.length, at);
  } finally {
    await fh.close();
  }
  return path;
}

/** Checks streamed output against "zeros plus patches" with memcmp-speed comparisons. */
class LayoutChecker extends Writable {
  offset = 0;
  mismatchAt: number | null = null;
  constructor(private readonly patches: Patch[]) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    const expected = Buffer.alloc(chunk.length);
    for (const { at, bytes } of this.patches) {
      const from = Math.max(at, this.offset);
      const to = Math.min(at + bytes.length, this.offset + chunk.length);
      if (from < to) bytes.copy(expected, from - this.offset, from - at, to - at);
    }
    if (this.mismatchAt === null && !chunk.equals(expected)) this.mismatchAt = this.offset;
    this.offset += chunk.length;
    cb();
  }
}

describe('VcdiffPool', () => {
  it('runs jobs on worker threads, in parallel, with errors carrying their codes', async () => {
    const pool = new VcdiffPool({ size: 2 });
    try {
      expect(pool.size).toBe(2);
      const encodes = await Promise.all([
        pool.encodeFile(esbuild.a, esbuild.b, p('pool1.vcdiff'), { level: 1 }),
        pool.encodeFile(esbuild.b, esbuild.a, p('pool2.vcdiff'), { level: 1 }),
        pool.encodeFile(null, esbuild.b, Buffer.from(p('pool3.vcdiff')), { level: 1 }),
      ]);
      expect(encodes.map((r) => r.targetBytes)).toEqual([
        (await stat(esbuild.b)).size,
        (await stat(esbuild.a)).size,
        (await stat(esbuild.b)).size,
      ]);
      const [d1, d2, d3] = await Promise.all([
        pool.decodeFile(esbuild.a, p('pool1.vcdiff'), p('pool1.out')),
        pool.decodeFile(esbuild.b, p('pool2.vcdiff'), p('pool2.out')),
        pool.decodeFile(null, p('pool3.vcdiff'), p('pool3.out')),
      ]);
      expect(d1.outputSha256).toBe(await sha256File(esbuild.b));
      expect(d2.outputSha256).toBe(await sha256File(esbuild.a));
      expect(d3.outputSha256).toBe(await sha256File(esbuild.b));
      await expectRejected(pool.decodeFile(esbuild.b, p('pool1.vcdiff'), p('pool4.out')), 'WRONG_SOURCE', 'pool1.vcdiff');
      expect(existsSync(p('pool4.out'))).toBe(false);
    } finally {
      await pool.close();
    }
  });
});

describe('decodeInMemory and in-place outputs', () => {
  it('decodes from memory into an open file, the same bytes and errors as decodeFile', async () => {
    await encodeFile(esbuild.a, esbuild.b, p('mem.vcdiff'));
    const [source, delta] = await Promise.all([readFile(esbuild.a), readFile(p('mem.vcdiff'))]);
    const decode = async (src: Buffer, d: Buffer, out: string) => {
      const fd = openSync(out, 'wx');
      try {
        return await decodeInMemory({ source: src, delta: d, outFd: fd, deltaName: 'mem.vcdiff', sourceName: 'esbuild-a', outName: out });
      } finally {
        closeSync(fd);
      }
    };
    const r = await decode(source, delta, p('mem.out'));
    expect(r.outputSha256).toBe(await sha256File(esbuild.b));
    expect(await sha256File(p('mem.out'))).toBe(r.outputSha256);
    const flipped = Buffer.from(delta);
    for (let i = 0; i < 16; i++) xorByte(flipped, Math.floor(flipped.length / 2) + i * 7, 0x5a);
    await expectRejected(decode(source, flipped, p('mem-bad.out')), 'CORRUPT_DELTA', 'mem.vcdiff');
    const wrong = Buffer.from(source);
    for (let i = 0; i < wrong.length; i += 4096) wrong[i] = (wrong[i]! + 1) & 0xff;
    await expectRejected(decode(wrong, delta, p('mem-wrong.out')), 'WRONG_SOURCE', 'mem.vcdiff');
  });

  it("pool jobs in mode 'create' write the path itself, refuse an existing one, and remove it on failure", async () => {
    const pool = new VcdiffPool({ size: 1 });
    try {
      await pool.encodeFile(esbuild.a, esbuild.b, p('create.vcdiff'), { level: 1 }, 'create');
      const out = await pool.decodeFile(esbuild.a, p('create.vcdiff'), p('create.out'), undefined, 'create');
      expect(out.outputSha256).toBe(await sha256File(esbuild.b));
      await expect(pool.decodeFile(esbuild.a, p('create.vcdiff'), p('create.out'), undefined, 'create')).rejects.toThrow(/create/);
      await expectRejected(
        pool.decodeFile(esbuild.b, p('create.vcdiff'), p('create-wrong.out'), undefined, 'create'),
        'WRONG_SOURCE',
        'create.vcdiff',
      );
      expect(existsSync(p('create-wrong.out'))).toBe(false);
    } finally {
      await pool.close();
    }
  });
});
