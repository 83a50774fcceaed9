/**
 * bsdiff through the executable transform inside tree deltas: round trips on real x86-64
 * and ARM64 programs with a moved function (the transform chosen with the source's addresses
 * relabelled, the delta smaller than with plain bsdiff and with the branch transform alone, the
 * tree restored exactly), the streaming decode path, the format version it asks for (and an
 * older reader's refusal), and crafted deltas with hostile transform parameters or address
 * maps (refused in one line, nothing written).
 */
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bsdiffDecode, bsdiffEncode, bsdiffEncodeSegmented, planSegments } from '../src/bsdiff/index.js';
import { applyDelta, loadRecords } from '../src/delta/apply.js';
import { diffTrees } from '../src/delta/diff.js';
import { decodeTransformedFile, encodeTransformed, exeTransformFor, withAddressMap } from '../src/delta/exe-codec.js';
import { ENTRIES_FILE, FORMAT_VERSION, type DeltaRecord, type FileRecord } from '../src/delta/format.js';
import { readHeader } from '../src/delta/header.js';
import { encodePairTransform } from '../src/exefilter/index.js';
import { compareTrees } from '../src/tree/compare.js';
import { scanTree } from '../src/tree/scan.js';
import { DeltaimgError } from '../src/util/errors.js';
import { checkReaderVersion, JsonFields } from '../src/util/json-input.js';
import { VcdiffPool } from '../src/vcdiff/index.js';
import { budgetLeavingJobs } from './helpers/budget.js';
import { compiledPair } from './helpers/elf-programs.mjs';
import { payloadSize } from './helpers/payload-size.js';
import { expectApplyRefused } from './helpers/expect-refused.js';
import { esbuildBinaryPair } from './helpers/real-data.js';

type ProgramPair = { a: string; b: string };

const MiB = 1024 * 1024;

let work: string;
let pool: VcdiffPool;
const programs: Partial<Record<'x86-64' | 'arm64', ProgramPair>> = {};

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'deltaimg-delta-exe-'));
  pool = new VcdiffPool();
  await mkdir(join(work, 'bin'));
  programs['x86-64'] = await compiledPair(join(work, 'bin'), 'x86-64');
  programs.arm64 = await compiledPair(join(work, 'bin'), 'arm64');
});

afterAll(async () => {
  await pool?.close();
  await rm(work, { recursive: true, force: true });
});

/** Trees A and B holding one program each at usr/bin/prog, plus an unchanged text file. */
async function treesFor(arch: 'x86-64' | 'arm64'): Promise<{ a: string; b: string }> {
  const a = join(work, `${arch}-a`);
  const b = join(work, `${arch}-b`);
  for (const [dir, prog] of [
    [a, programs[arch]!.a],
    [b, programs[arch]!.b],
  ] as const) {
    await mkdir(join(dir, 'usr/bin'), { recursive: true });
    await cp(prog, join(dir, 'usr/bin/prog'));
    await writeFile(join(dir, 'usr/README'), 'the same in both\n');
  }
  return { a, b };
}

/** The target's records as apply reads them (a v3 delta's unchanged entries come from the source). */
async function records(src: string, delta: string): Promise<DeltaRecord[]> {
  return (await loadRecords(src, delta, await readHeader(delta))).records;
}

function progRecord(rs: DeltaRecord[]): FileRecord {
  const r = rs.find((x) => x.path === 'usr/bin/prog');
  if (r?.kind !== 'file') throw new Error('no usr/bin/prog record');
  return r;
}

async function expectRefused(promise: Promise<unknown>, code: DeltaimgError['code'], out: string, why: RegExp): Promise<void> {
  expect(await expectApplyRefused(promise, code, out, work)).toMatch(why);
}

describe.each(['x86-64', 'arm64'] as const)('tree delta of a recompiled %s program', (arch) => {
  let a: string;
  let b: string;
  let delta: string;

  beforeAll(async () => {
    ({ a, b } = await treesFor(arch));
    delta = join(work, `${arch}-delta`);
    await diffTrees(a, b, delta, { pool });
  });

  it('ships it as bsdiff through the transform, smaller than plain bsdiff, restored exactly', async () => {
    const rs = await records(a, delta);
    const c = progRecord(rs).content;
    expect(c.op).toBe('bsdiff');
    if (c.op !== 'bsdiff') return;
    expect(c.exe?.source.arch).toBe(arch);
    // The moved function and everything after the grown one shifted: the source is relabelled.
    expect(c.exe?.source.addressMap?.points.length).toBeGreaterThan(0);
    // gcc writes an .eh_frame_hdr: its tables are relabelled too.
    expect(c.exe?.source.addressMap?.unwind).toBeDefined();
    expect(c.exe?.target.addressMap).toBeUndefined();
    const { a: source, b: target } = programs[arch]!;
    const plain = await bsdiffEncode(source, target, join(work, `${arch}-plain.bsd`));
    const kept = await payloadSize(delta, c.payload);
    expect(kept).toBeLessThan(plain.bytes);
    // Smaller than with the branch transform alone (the version 2 encoding).
    const files = { source: { path: source, size: (await stat(source)).size }, target: { path: target, size: (await stat(target)).size } };
    let n = 0;
    const branchesOnly = await encodeTransformed(
      files,
      exeTransformFor(files)!,
      () => join(work, `${arch}-t-${n++}`),
      (s, t) => bsdiffEncode(s, t, join(work, `${arch}-branches.bsd`)),
    );
    expect(kept).toBeLessThan(branchesOnly.bytes);
    const header = await readHeader(delta);
    expect(header.version).toBe(FORMAT_VERSION);
    expect(header.minReaderVersion).toBe(3);
    const out = join(work, `${arch}-out`);
    await applyDelta(a, delta, out, { pool });
    const [want, got] = await Promise.all([scanTree(b, { hash: true }), scanTree(out, { hash: true })]);
    expect(compareTrees(want, got)).toEqual([]);
  });

  it('decodes through files the way large executables are restored', async () => {
    const { a: source, b: target } = programs[arch]!;
    const files = { source: { path: source, size: (await stat(source)).size }, target: { path: target, size: (await stat(target)).size } };
    const plain = join(work, `${arch}-plain-for-map.bsd`);
    await bsdiffEncode(source, target, plain);
    const exe = await withAddressMap(exeTransformFor(files)!, files, plain);
    expect(exe.source.addressMap).toBeDefined();
    let n = 0;
    const scratch = () => join(work, `${arch}-scratch-${n++}`);
    const patch = join(work, `${arch}-exe.bsd`);
    await encodeTransformed(files, exe, scratch, (s, t) => bsdiffEncode(s, t, patch));
    const out = Buffer.from(join(work, `${arch}-streamed`));
    const written = await decodeTransformedFile(exe, source, out, files.target.size, scratch, (s, o) =>
      bsdiffDecode(s, patch, o, { targetSize: files.target.size }),
    );
    const want = await readFile(target);
    expect((await readFile(out)).equals(want)).toBe(true);
    expect(written.bytes).toBe(want.length);
    // The scratch copies are gone.
    expect((await readdir(work)).filter((f) => f.includes('-scratch-'))).toEqual([]);
  });

  it('refuses hostile transform parameters in a crafted delta, writing nothing', async () => {
    await expectHostileTransformsRefused(a, delta, 'usr/bin/prog', (await stat(programs[arch]!.a)).size, arch);
  });
});

describe('a recompiled executable too large for a whole-file bsdiff in the budget', () => {
  let a: string;
  let b: string;
  let delta: string;
  // ~9.6 MB each: a whole-file bsdiff would need ~120 MB; the budget leaves its jobs ~60 MiB.
  let memoryBytes: number;

  beforeAll(async () => {
    const esbuild = await esbuildBinaryPair();
    a = join(work, 'seg-a');
    b = join(work, 'seg-b');
    for (const [dir, file] of [
      [a, esbuild.a],
      [b, esbuild.b],
    ] as const) {
      await mkdir(join(dir, 'usr/bin'), { recursive: true });
      await cp(file, join(dir, 'usr/bin/prog'));
    }
    memoryBytes = budgetLeavingJobs(60 * MiB);
    delta = join(work, 'seg-delta');
    await diffTrees(a, b, delta, { memoryBytes });
  });

  it('is diffed in segments through the transform, smaller than plain segments, and restored exactly', async () => {
    const c = progRecord(await records(a, delta)).content;
    expect(c).toMatchObject({ op: 'bsdiff', segmented: true });
    if (c.op !== 'bsdiff') return;
    expect(c.exe?.source.arch).toBe('x86-64');
    const kept = await payloadSize(delta, c.payload);
    const sizes = { source: (await stat(join(a, 'usr/bin/prog'))).size, target: (await stat(join(b, 'usr/bin/prog'))).size };
    const plan = planSegments(60 * MiB * 0.75, sizes.source, sizes.target)!;
    const plain = await bsdiffEncodeSegmented(join(a, 'usr/bin/prog'), join(b, 'usr/bin/prog'), join(work, 'seg-plain.bsd'), plan);
    expect(kept).toBeLessThan(plain.bytes);
    // The map comes from the plain segmented patch's alignment, read through each segment's source ranges.
    expect(c.exe?.source.addressMap?.points.length).toBeGreaterThan(0);
    expect((await readHeader(delta)).minReaderVersion).toBe(3);
    const out = join(work, 'seg-out');
    await applyDelta(a, delta, out, { memoryBytes });
    const [want, got] = await Promise.all([scanTree(b, { hash: true }), scanTree(out, { hash: true })]);
    expect(compareTrees(want, got)).toEqual([]);
  });

  it('refuses hostile transform parameters on the segmented record, writing nothing', async () => {
    await expectHostileTransformsRefused(a, delta, 'usr/bin/prog', (await stat(join(a, 'usr/bin/prog'))).size, 'x86-64');
  });
});

/**
 * Crafted copies of `delta` whose record for `path` carries hostile transform parameters
 * (outside the files, malformed, well-formed but not the ones the patch was made with):
 * each apply is refused in one line, nothing written.
 */
async function expectHostileTransformsRefused(a: string, delta: string, path: string, sourceSize: number, arch: 'x86-64' | 'arm64') {
  const record = (await records(a, delta)).find((x) => x.path === path);
  if (record?.kind !== 'file' || record.content.op !== 'bsdiff' || !record.content.exe) throw new Error('expected a transformed bsdiff');
  const exe = record.content.exe;
  const encoded = encodePairTransform(exe);
  const cases: [string, unknown, DeltaimgError['code'], RegExp][] = [
    [
      'outside',
      { ...encoded, source: { ...(encoded.source as object), regions: [[0, sourceSize + 1, 0]] } },
      'CORRUPT_DELTA',
      /does not fit the files/,
    ],
    ['malformed', { ...encoded, target: { arch, rangeBits: 99, regions: 'all' } }, 'CORRUPT_DELTA', /invalid executable transform: target/],
    // Well-formed but not what the patch was made with: the decoded bytes fail their check.
    [
      'wrong-vaddr',
      {
        source: { ...(encoded.source as object), regions: [[exe.source.regions[0]!.offset, exe.source.regions[0]!.size, 4096]] },
        target: encoded.target,
      },
      'CORRUPT_DELTA',
      /bsdiff|damaged|does not match/,
    ],
    [
      'map-on-target',
      { ...encoded, target: { ...(encoded.target as object), addressMap: { range: [0, 10], shifts: [0, 4] } } },
      'CORRUPT_DELTA',
      /invalid executable transform: target has an addressMap/,
    ],
    [
      'map-malformed',
      { ...encoded, source: { ...(encoded.source as object), addressMap: { range: [0, 10], shifts: [5, 1, 0, 2] } } },
      'CORRUPT_DELTA',
      /invalid executable transform: source.addressMap.shifts\[2\]/,
    ],
    [
      'map-huge',
      { ...encoded, source: { ...(encoded.source as object), addressMap: { range: [0, 2 ** 40], shifts: new Array(2 * 65537).fill(1) } } },
      'CORRUPT_DELTA',
      /invalid executable transform: source.addressMap.shifts must hold 1 to 65536/,
    ],
    // A well-formed map other than the one the patch was made with: other bytes, refused by the patch's check.
    [
      'map-wrong',
      { ...encoded, source: { ...(encoded.source as object), addressMap: { range: [0, 2 ** 32], shifts: [0, 64] } } },
      'CORRUPT_DELTA',
      /bsdiff|damaged|does not match/,
    ],
  ];
  for (const [name, hostile, code, why] of cases) {
    const crafted = `${delta}-crafted-${name}`;
    await cp(delta, crafted, { recursive: true });
    const text = await readEntriesText(crafted);
    const patched = text
      .split('\n')
      .map((line) => {
        // The record of `path`, the trees' one bsdiff: a changed file at its source path, written without its path (v3).
        if (!line.includes('"op":"bsdiff"')) return line;
        const o = JSON.parse(line);
        o.content.exe = hostile;
        return JSON.stringify(o);
      })
      .join('\n');
    expect(patched).not.toBe(text);
    await craftRaw(crafted, patched);
    const out = `${delta}-out-${name}`;
    await expectRefused(applyDelta(a, crafted, out, { pool }), code, out, why);
  }
}

it('a version 2 reader refuses a delta whose executables are relabelled, asking for an upgrade', async () => {
  const { a, b } = await treesFor('x86-64');
  const delta = join(work, 'x86-64-delta-for-v2');
  await diffTrees(a, b, delta, { pool });
  const header = JSON.parse(await readFile(join(delta, 'deltaimg.json'), 'utf8'));
  expect(header.minReaderVersion).toBe(3);
  // What a version 2 reader's header check says (this reader's gate, with its bound lowered).
  const fields = new JsonFields('deltaimg.json', 'CORRUPT_DELTA', 'make the delta again');
  expect(() => checkReaderVersion(fields, header, 2, `${delta} uses delta format`)).toThrow(
    /uses delta format v3 \(made by deltaimg[^)]*\); this deltaimg reads up to v2: upgrade deltaimg to apply it/,
  );
});

it('a delta with whole records and without transformed executables stays readable by version 1 readers', async () => {
  const a = join(work, 'text-a');
  const b = join(work, 'text-b');
  await mkdir(a);
  await mkdir(b);
  await writeFile(join(a, 'f'), 'one\n'.repeat(1000));
  await writeFile(join(b, 'f'), 'one\n'.repeat(999) + 'two\n');
  await diffTrees(a, b, join(work, 'text-delta'), { pool, wholeRecords: true });
  const header = await readHeader(join(work, 'text-delta'));
  expect(header.version).toBe(FORMAT_VERSION);
  expect(header.minReaderVersion).toBe(1);
});

async function readEntriesText(delta: string): Promise<string> {
  return brotliDecompressSync(await readFile(join(delta, ENTRIES_FILE))).toString('utf8');
}

/** Replaces the entries file with `text` and fixes the header's entries hash (the tree digest is unchanged). */
async function craftRaw(delta: string, text: string): Promise<void> {
  const compressed = brotliCompressSync(Buffer.from(text));
  await writeFile(join(delta, ENTRIES_FILE), compressed);
  const header = JSON.parse(await readFile(join(delta, 'deltaimg.json'), 'utf8'));
  header.entries.sha256 = createHash('sha256').update(compressed).digest('hex');
  header.entries.rawBytes = Buffer.byteLength(text);
  header.minReaderVersion = 3;
  await writeFile(join(delta, 'deltaimg.json'), JSON.stringify(header));
}
