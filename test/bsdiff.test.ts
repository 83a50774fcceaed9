/**
 * bsdiff on real recompiled binaries (round trips, size against VCDIFF+brotli), edge sizes,
 * non-UTF-8 paths, and rejection of damaged, truncated, hostile and mismatched patches
 * without leaving OUT behind.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, constants as zlibConstants } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BSDIFF_MAX_SOURCE_BYTES, bsdiffDecode, bsdiffDecodeInMemory, bsdiffEncode, buildSuffixArray } from '../src/bsdiff/index.js';
import { decodeHeader, encodeHeader, VarintWriter, type PatchHeader } from '../src/bsdiff/format.js';
import { encodeSparseDiff } from '../src/bsdiff/sparse.js';
import { computeDelta } from '../src/bsdiff/match.js';
import { DeltaimgError, type ErrorCode } from '../src/util/errors.js';
import { encodeFile } from '../src/vcdiff/index.js';
import { esbuildBinaryPair, libcryptoPair, type FilePair } from './helpers/real-data.js';
import { noise } from './helpers/noise.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaimg-bsdiff-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function p(name: string): string {
  return join(dir, name);
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Encodes, decodes into a fresh OUT, checks every byte and the reported sizes and hashes. */
async function roundTrip(source: string, target: string, name: string) {
  const patch = p(`${name}.bsd`);
  const out = p(`${name}.out`);
  const enc = await bsdiffEncode(source, target, patch);
  const patchBytes = await readFile(patch);
  expect(enc.bytes).toBe(patchBytes.length);
  expect(enc.sha256).toBe(sha256(patchBytes));
  const dec = await bsdiffDecode(source, patch, out);
  const want = await readFile(target);
  const got = await readFile(out);
  expect(got.equals(want)).toBe(true);
  expect(dec.outputBytes).toBe(want.length);
  expect(dec.outputSha256).toBe(sha256(want));
  const chunks: Buffer[] = [];
  const decoded = bsdiffDecodeInMemory(await readFile(source), patchBytes, (chunk) => chunks.push(Buffer.from(chunk)));
  expect(Buffer.concat(chunks).equals(want)).toBe(true);
  expect(decoded.bytes).toBe(want.length);
  expect(decoded.sha256).toBe(createHash('sha256').update(want).digest('hex'));
  return { patch, out, bytes: enc.bytes };
}

async function writeBytes(name: string, bytes: Uint8Array): Promise<string> {
  await writeFile(p(name), bytes);
  return p(name);
}

async function rejection(promise: Promise<unknown>): Promise<DeltaimgError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeltaimgError);
  return err as DeltaimgError;
}

async function expectDecodeRejected(source: string, patch: string, code: ErrorCode, mentions: RegExp) {
  const out = p(`rejected-${Math.random().toString(36).slice(2)}.out`);
  const err = await rejection(bsdiffDecode(source, patch, out));
  expect(err.code).toBe(code);
  expect(err.message).toMatch(mentions);
  expect(err.message).not.toContain('\n');
  expect(existsSync(out)).toBe(false);
  // The in-memory decoder (small files in a tree apply) refuses the same patch the same way.
  const inMemory = await rejection(
    (async () => bsdiffDecodeInMemory(await readFile(source), await readFile(patch), () => {}, { patch, source }))(),
  );
  expect(inMemory.code).toBe(code);
  expect(inMemory.message).toMatch(mentions);
  expect(inMemory.message).not.toContain('\n');
  return err;
}

describe('suffix array', () => {
  function naive(text: Uint8Array): number[] {
    const order = [...Array(text.length).keys()];
    return order.sort((a, b) => Buffer.compare(text.subarray(a), text.subarray(b)));
  }

  it('sorts the suffixes of small texts over tiny and full alphabets exactly like a naive sort', () => {
    for (let trial = 0; trial < 400; trial++) {
      const alphabet = [1, 2, 3, 4, 256][trial % 5]!;
      const text = noise(trial % 97, trial + 1).map((b) => b % alphabet);
      expect([...buildSuffixArray(text)]).toEqual(naive(text));
    }
    const periodic = Buffer.from('abaabaabaabaabaaba'.repeat(20));
    expect([...buildSuffixArray(periodic)]).toEqual(naive(periodic));
    expect([...buildSuffixArray(new Uint8Array(0))]).toEqual([]);
  });
});

describe('round trips on real binaries', () => {
  let esbuild: FilePair;
  beforeAll(async () => {
    esbuild = await esbuildBinaryPair();
  });

  it('esbuild 0.20.1 -> 0.20.2 (9 MB Go executables)', async () => {
    const { bytes } = await roundTrip(esbuild.a, esbuild.b, 'esbuild');
    // Two releases of a Go binary share most code; the patch is a small fraction of the target.
    expect(bytes).toBeLessThan((await stat(esbuild.b)).size / 5);
  });

  it('reconstructs a target from the older release used as source the other way round', async () => {
    await roundTrip(esbuild.b, esbuild.a, 'esbuild-reverse');
  });

  // Real recompiled code fetched by the test itself (apt-get download, cached in test/.cache), not
  // bench/data: in CI it must run, so an unavailable pair fails there instead of skipping.
  it('beats VCDIFF (xdelta3 -9, no secondary) + brotli 11 on libcrypto.so.3 of two Debian builds', async (ctx) => {
    const pair = await libcryptoPair();
    if (!pair) {
      if (process.env.CI) throw new Error('apt offers fewer than two libssl3 versions: run apt-get update (scripts/setup.sh)');
      return ctx.skip();
    }
    const { bytes } = await roundTrip(pair.a, pair.b, 'libcrypto');
    await encodeFile(pair.a, pair.b, p('vcdiff.tmp'), { level: 9, secondary: 'none' });
    const vcdiffBrotli = brotliCompressSync(await readFile(p('vcdiff.tmp')), {
      params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 11, [zlibConstants.BROTLI_PARAM_LGWIN]: 24 },
    }).length;
    await rm(p('vcdiff.tmp'));
    expect(bytes).toBeLessThan(vcdiffBrotli);
  });
});

describe('edge sizes and shapes', () => {
  const cases: Array<[string, Uint8Array, Uint8Array]> = [
    ['both empty', new Uint8Array(0), new Uint8Array(0)],
    ['empty source', new Uint8Array(0), noise(5000, 7)],
    ['empty target', noise(5000, 8), new Uint8Array(0)],
    ['1-byte files', Buffer.from([0x41]), Buffer.from([0x42])],
    ['1-byte source, longer target', Buffer.from([0]), noise(300, 9)],
    ['identical', noise(200_000, 10), noise(200_000, 10)],
    ['unrelated target', noise(100_000, 11), noise(120_000, 12)],
    ['all zeros grown', new Uint8Array(300_000), new Uint8Array(400_000)],
  ];
  for (const [name, source, target] of cases) {
    it(name, async () => {
      const slug = name.replace(/\W/g, '_');
      await roundTrip(await writeBytes(`${slug}.a`, source), await writeBytes(`${slug}.b`, target), slug);
    });
  }

  it('keeps identical files to a near-empty patch', async () => {
    const a = await writeBytes('same.a', noise(1_000_000, 13));
    const { bytes } = await roundTrip(a, a, 'same');
    expect(bytes).toBeLessThan(300);
  });

  it('captures shifted addresses in "recompiled" code as near-zero differences', async () => {
    // Source: 256 KiB of noise; target: every 64th 32-bit word moved by +0x40, 100 bytes inserted.
    const source = noise(256 * 1024, 14);
    const shifted = Buffer.from(source);
    for (let i = 0; i + 4 <= shifted.length; i += 64) shifted.writeUInt32LE((shifted.readUInt32LE(i) + 0x40) >>> 0, i);
    const target = Buffer.concat([shifted.subarray(0, 1000), noise(100, 15), shifted.subarray(1000)]);
    const { bytes } = await roundTrip(await writeBytes('code.a', source), await writeBytes('code.b', target), 'code');
    // 4096 changed words: bsdiff stores them as a regular, highly compressible difference pattern.
    expect(bytes).toBeLessThan(3000);
  });

  it('accepts Buffer paths with non-UTF-8 bytes', async () => {
    const base = Buffer.from(dir + '/');
    const a = Buffer.concat([base, Buffer.from([0x6e, 0xe9, 0xff, 0x2e, 0x61])]);
    const b = Buffer.concat([base, Buffer.from([0x6e, 0xe9, 0xff, 0x2e, 0x62])]);
    const patch = Buffer.concat([base, Buffer.from([0x6e, 0xe9, 0xff, 0x2e, 0x70])]);
    const out = Buffer.concat([base, Buffer.from([0x6e, 0xe9, 0xff, 0x2e, 0x6f])]);
    const target = noise(10_000, 17);
    await writeFile(a, noise(10_000, 16));
    await writeFile(b, target);
    await bsdiffEncode(a, b, patch);
    const dec = await bsdiffDecode(a, patch, out);
    expect(dec.outputSha256).toBe(sha256(target));
    expect((await readFile(out)).equals(target)).toBe(true);
  });

  it('takes an explicit brotli quality, and refuses one outside 0..11', async () => {
    const a = await writeBytes('q.a', noise(50_000, 19));
    const target = Buffer.concat([noise(50_000, 19).subarray(0, 30_000), noise(1000, 20)]);
    const b = await writeBytes('q.b', target);
    await bsdiffEncode(a, b, p('q1.bsd'), { quality: 1 });
    expect((await bsdiffDecode(a, p('q1.bsd'), p('q1.out'))).outputSha256).toBe(sha256(target));
    const err = await rejection(bsdiffEncode(a, b, p('q12.bsd'), { quality: 12 }));
    expect(err.code).toBe('USAGE');
  });

  it('refuses inputs above BSDIFF_MAX_SOURCE_BYTES with USAGE, before reading them', async () => {
    const big = p('big.sparse');
    await writeFile(big, '');
    await truncate(big, BSDIFF_MAX_SOURCE_BYTES + 1);
    const small = await writeBytes('small', noise(10, 18));
    for (const [source, target] of [
      [big, small],
      [small, big],
    ] as const) {
      const err = await rejection(bsdiffEncode(source, target, p('big.bsd')));
      expect(err.code).toBe('USAGE');
      expect(err.message).toContain(big);
    }
  });
});

describe('damaged and hostile patches', () => {
  let source: string;
  let target: Buffer;
  let patch: Buffer;
  let header: PatchHeader;

  beforeAll(async () => {
    const src = noise(300_000, 20);
    source = await writeBytes('dmg.a', src);
    target = Buffer.concat([src.subarray(0, 100_000), noise(5000, 21), src.subarray(120_000)]);
    for (let i = 0; i < target.length; i += 997) target[i] = (target[i]! + 1) & 0xff;
    await writeBytes('dmg.b', target);
    await bsdiffEncode(source, p('dmg.b'), p('dmg.bsd'));
    patch = await readFile(p('dmg.bsd'));
    header = decodeHeader(patch, patch.length, 'dmg.bsd');
  });

  /** The patch with its header rewritten from `fields` (the sections kept as they are). */
  function reheadered(fields: PatchHeader): Buffer {
    return Buffer.concat([encodeHeader(fields), patch.subarray(header.headerBytes)]);
  }

  async function variant(name: string, bytes: Uint8Array): Promise<string> {
    return writeBytes(`${name}.bsd`, bytes);
  }

  it('rejects a patch cut anywhere (header, control, diff, extra)', async () => {
    for (const length of [
      0,
      10,
      header.headerBytes - 1,
      header.headerBytes,
      header.headerBytes + 5,
      Math.floor(patch.length / 2),
      patch.length - 1,
    ]) {
      await expectDecodeRejected(source, await variant(`cut${length}`, patch.subarray(0, length)), 'CORRUPT_DELTA', /dmg|cut/);
    }
  });

  it('rejects flipped bytes in every section', async () => {
    for (const at of [header.headerBytes + 2, Math.floor(patch.length / 3), Math.floor(patch.length / 2), patch.length - 3]) {
      const bad = Buffer.from(patch);
      bad[at] = bad[at]! ^ 0x5a;
      const err = await expectDecodeRejected(source, await variant(`flip${at}`, bad), 'CORRUPT_DELTA', new RegExp(`flip${at}\\.bsd`));
      expect(err.message).toMatch(/damaged/);
    }
  });

  it('rejects a bad magic, an unknown version, and header lengths that do not add up', async () => {
    const magic = Buffer.from(patch);
    magic.write('NOTBSDIF', 0, 'latin1');
    await expectDecodeRejected(source, await variant('magic', magic), 'CORRUPT_DELTA', /magic/);
    const version = Buffer.from(patch);
    version.write('DIMGBSD9', 0, 'latin1');
    await expectDecodeRejected(source, await variant('version', version), 'UNSUPPORTED_VERSION', /DIMGBSD9/);
    const lengths = reheadered({ ...header, targetSize: header.targetSize + 1 });
    await expectDecodeRejected(source, await variant('lengths', lengths), 'CORRUPT_DELTA', /add up/);
    const stored = reheadered({
      ...header,
      sections: { ...header.sections, diff: { ...header.sections.diff, storedLength: header.sections.diff.storedLength + 1 } },
    });
    await expectDecodeRejected(source, await variant('stored', stored), 'CORRUPT_DELTA', /add up/);
    const huge = reheadered({ ...header, sections: { ...header.sections, control: { ...header.sections.control, rawLength: 2 ** 60 } } });
    await expectDecodeRejected(source, await variant('huge', huge), 'CORRUPT_DELTA', /out of range/);
  });

  it('rejects a source of the wrong size (WRONG_SOURCE) and of the wrong content', async () => {
    const shorter = await writeBytes('dmg.short', noise(299_999, 20));
    await expectDecodeRejected(shorter, p('dmg.bsd'), 'WRONG_SOURCE', /300000-byte source/);
    const sameSize = await writeBytes('dmg.other', noise(300_000, 22));
    await expectDecodeRejected(sameSize, p('dmg.bsd'), 'CORRUPT_DELTA', /sha256/);
  });

  it('never overwrites an existing OUT', async () => {
    const out = await writeBytes('exists.out', Buffer.from('keep me'));
    const err = await rejection(bsdiffDecode(source, p('dmg.bsd'), out));
    expect(err.code).toBe('IO');
    expect(err.message).toContain('exists.out');
    expect((await readFile(out)).toString()).toBe('keep me');
  });

  /** A well-formed patch with chosen control steps, diff and extra bytes (a hostile encoder). */
  async function crafted(
    name: string,
    sourceSize: number,
    steps: Array<[number, number, number]>,
    diff: Buffer,
    extra: Buffer,
    sparseOverride?: Uint8Array,
  ) {
    const control = new VarintWriter();
    for (const [d, e, seek] of steps) {
      control.writeUnsigned(d);
      control.writeUnsigned(e);
      control.writeSigned(seek);
    }
    const sparseDiff = sparseOverride ?? encodeSparseDiff(diff);
    const sections = [control.result(), sparseDiff, extra].map((raw) => brotliCompressSync(raw));
    const header = encodeHeader({
      sourceSize,
      targetSize: diff.length + extra.length,
      sections: {
        control: { rawLength: control.result().length, storedLength: sections[0]!.length },
        diff: { rawLength: sparseDiff.length, storedLength: sections[1]!.length },
        extra: { rawLength: extra.length, storedLength: sections[2]!.length },
      },
      diffBytes: diff.length,
      targetSha256: Buffer.alloc(32),
    });
    const path = p(`${name}.bsd`);
    const fh = await open(path, 'w');
    await fh.writeFile(Buffer.concat([header, ...sections]));
    await fh.close();
    return path;
  }

  it('rejects out-of-range seeks, reads past the source, steps past the target, and empty steps', async () => {
    const src = await writeBytes('tiny.a', noise(100, 30));
    const ten = Buffer.alloc(10);
    await expectDecodeRejected(
      src,
      await crafted(
        'seek-neg',
        100,
        [
          [5, 0, -6],
          [5, 0, 0],
        ],
        ten,
        Buffer.alloc(0),
      ),
      'CORRUPT_DELTA',
      /seeks outside/,
    );
    await expectDecodeRejected(
      src,
      await crafted(
        'seek-far',
        100,
        [
          [5, 0, 96],
          [5, 0, 0],
        ],
        ten,
        Buffer.alloc(0),
      ),
      'CORRUPT_DELTA',
      /seeks outside/,
    );
    await expectDecodeRejected(
      src,
      await crafted(
        'read-past',
        100,
        [
          [0, 0, 95],
          [10, 0, 0],
        ],
        ten,
        Buffer.alloc(0),
      ),
      'CORRUPT_DELTA',
      /past the end of the source/,
    );
    await expectDecodeRejected(
      src,
      await crafted('past-target', 100, [[11, 0, 0]], ten, Buffer.alloc(0)),
      'CORRUPT_DELTA',
      /past the target/,
    );
    await expectDecodeRejected(
      src,
      await crafted(
        'empty-step',
        100,
        [
          [5, 0, 0],
          [0, 0, 0],
          [5, 0, 0],
        ],
        ten,
        Buffer.alloc(0),
      ),
      'CORRUPT_DELTA',
      /empty/,
    );
    await expectDecodeRejected(
      src,
      await crafted(
        'short-diff',
        100,
        [
          [5, 0, 0],
          [5, 0, 0],
        ],
        Buffer.alloc(8),
        Buffer.from('ab'),
      ),
      'CORRUPT_DELTA',
      /more diff bytes/,
    );
  });

  it('rejects a diff section that breaks its run-length form', async () => {
    const src = await writeBytes('tiny3.a', noise(100, 32));
    const ten = Buffer.alloc(10);
    const steps: Array<[number, number, number]> = [[10, 0, 0]];
    await expectDecodeRejected(
      src,
      await crafted('zero-literal', 100, steps, ten, Buffer.alloc(0), Uint8Array.from([3, 0, 6])),
      'CORRUPT_DELTA',
      /zero where/,
    );
    await expectDecodeRejected(
      src,
      await crafted('long-run', 100, steps, ten, Buffer.alloc(0), Uint8Array.from([50])),
      'CORRUPT_DELTA',
      /expands past/,
    );
    await expectDecodeRejected(
      src,
      await crafted('trailing', 100, steps, ten, Buffer.alloc(0), Uint8Array.from([10, 7])),
      'CORRUPT_DELTA',
      /unused|longer/,
    );
  });

  it('rejects well-formed steps whose output does not match the recorded sha256', async () => {
    const src = await writeBytes('tiny2.a', noise(100, 31));
    await expectDecodeRejected(
      src,
      await crafted('bad-sha', 100, [[10, 0, 0]], Buffer.alloc(10), Buffer.alloc(0)),
      'CORRUPT_DELTA',
      /sha256/,
    );
  });
});

/**
 * The encoder's output is pinned: speed work on the suffix array and the matcher must not
 * change a single patch byte (patches are content-addressed and compared across versions).
 * The hashes were taken from the encoder before its speed rewrite; the raw delta (control
 * steps, diff, extra) is pinned apart from the patch so a brotli change in Node shows as such.
 */
describe('pinned output', () => {
  /** A binary-like pair: code-like noise, zero padding, a repeated table, shifted words, moves. */
  function binaryLikePair(): { source: Buffer; target: Buffer } {
    const table = noise(3000, 41);
    const source = Buffer.concat([
      noise(150_000, 42),
      Buffer.alloc(40_000),
      table,
      table,
      table,
      noise(60_000, 43),
      Buffer.from('abcabcab'.repeat(5000)),
    ]);
    const shifted = Buffer.from(source);
    for (let i = 0; i + 4 <= 150_000; i += 48) shifted.writeUInt32LE((shifted.readUInt32LE(i) + 0x1040) >>> 0, i);
    const target = Buffer.concat([
      shifted.subarray(0, 20_000),
      noise(700, 44),
      shifted.subarray(20_000, 100_000),
      shifted.subarray(200_000, 240_000), // a block moved forwards
      shifted.subarray(100_000, 200_000),
      Buffer.alloc(9000),
      shifted.subarray(250_000),
    ]);
    return { source, target };
  }

  it('produces the same raw delta and patch bytes as before for a binary-like pair', async () => {
    const { source, target } = binaryLikePair();
    const delta = computeDelta(source, target);
    const raw = createHash('sha256').update(JSON.stringify(delta.steps)).update(delta.diff).update(delta.extra).digest('hex');
    expect(raw).toBe('82a5d073387f4783d778565663b40c038dcc943f39bad1c6ffd094f07a2d21c2');
    const a = await writeBytes('pin.a', source);
    const b = await writeBytes('pin.b', target);
    const { sha256: patchSha } = await bsdiffEncode(a, b, p('pin.bsd'));
    expect(patchSha).toBe('62de5eabda90c5beb13b132f5c2bd5bf3dcd1d6c57c9f5fb83562baa40f7082f');
    expect((await bsdiffDecode(a, p('pin.bsd'), p('pin.out'))).outputSha256).toBe(sha256(target));
  });

  it('produces the same suffix array as before for a binary-like text', () => {
    const { source } = binaryLikePair();
    const sa = buildSuffixArray(source);
    expect(createHash('sha256').update(sa).digest('hex')).toBe('fc4c97684b8d2686ad3298ae5a184dfe710914175edc6b9c319fecb85cf7f9ce');
  });

  it('produces the same patch bytes as before for the esbuild pair', async () => {
    const esbuild = await esbuildBinaryPair();
    const { sha256: patchSha } = await bsdiffEncode(esbuild.a, esbuild.b, p('pin-esbuild.bsd'));
    expect(patchSha).toBe('ba0c8137ce3b63d04c7d98a5b910496a1ab2ec729e98258fe3006771f53664d7');
  });
});
