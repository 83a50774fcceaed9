/**
 * Segmented bsdiff (DIMGBSD2): round trips where segments must find moved code far away in the
 * source, a sparse file larger than the memory it is encoded in (restored sparse), damaged and
 * mismatched patches refused with nothing left behind, and a tree diff under a memory budget too
 * small for a whole-file bsdiff that still uses bsdiff segments.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bsdiffDecode, bsdiffEncode, bsdiffEncodeSegmented, bsdiffMatches, planSegments } from '../src/bsdiff/index.js';
import { applyDelta, loadRecords } from '../src/delta/apply.js';
import { diffTrees } from '../src/delta/diff.js';
import { readHeader } from '../src/delta/header.js';
import { compareTrees } from '../src/tree/compare.js';
import { scanTree } from '../src/tree/scan.js';
import { DeltaimgError } from '../src/util/errors.js';
import { budgetLeavingJobs } from './helpers/budget.js';
import { esbuildBinaryPair } from './helpers/real-data.js';
import { noise } from './helpers/noise.js';

const MiB = 1024 * 1024;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaimg-bsdseg-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
const p = (name: string) => join(dir, name);
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** "Recompiled": every 64th 32-bit word moved by +0x40, as shifted addresses are. */
function recompiled(code: Buffer): Buffer {
  const out = Buffer.from(code);
  for (let i = 0; i + 4 <= out.length; i += 64) out.writeUInt32LE((out.readUInt32LE(i) + 0x40) >>> 0, i);
  return out;
}

async function rejection(promise: Promise<unknown>): Promise<DeltaimgError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeltaimgError);
  return err as DeltaimgError;
}

describe('segmented bsdiff patches', () => {
  it('finds a block moved from the far end of the source and restores every byte', async () => {
    // 4 MiB of "code"; the target starts with the source's last 256 KiB, then the rest, all recompiled.
    const source = noise(4 * MiB, 21);
    const target = recompiled(Buffer.concat([source.subarray(source.length - 256 * 1024), source.subarray(0, source.length - 256 * 1024)]));
    await writeFile(p('moved.a'), source);
    await writeFile(p('moved.b'), target);
    const r = await bsdiffEncodeSegmented(p('moved.a'), p('moved.b'), p('moved.bsd'), { segmentBytes: 512 * 1024, regionBytes: 1 * MiB });
    const patch = await readFile(p('moved.bsd'));
    expect(patch.subarray(0, 8).toString('latin1')).toBe('DIMGBSD2');
    expect(r.sha256).toBe(sha256(patch));
    // The moved block is incompressible noise: had its segment not found it, the patch would hold it whole.
    expect(patch.length).toBeLessThan(100 * 1024);
    const out = await bsdiffDecode(p('moved.a'), p('moved.bsd'), p('moved.out'));
    expect(out.outputSha256).toBe(sha256(target));
    expect((await readFile(p('moved.out'))).equals(target)).toBe(true);
  });

  it('reads its alignment back, whole and segmented, as blocks of the two files', async () => {
    // moved.a/moved.b from the test above: the target's first 256 KiB are the source's last.
    const moved = 4 * MiB - 256 * 1024;
    await bsdiffEncode(p('moved.a'), p('moved.b'), p('moved-whole.bsd'));
    for (const patch of ['moved.bsd', 'moved-whole.bsd']) {
      const blocks = await bsdiffMatches(p(patch));
      let covered = 0;
      for (const b of blocks) {
        expect(b.source - b.target, patch).toBe(b.target < 256 * 1024 ? moved : -256 * 1024);
        covered += b.length;
      }
      expect(covered, patch).toBeGreaterThan(4 * MiB * 0.99);
    }
  });

  it('encodes a sparse file larger than its memory plan in segments and restores it exactly, holes kept', async () => {
    // 48 MiB files, mostly holes, with code at 6 MiB and 36 MiB; the target's code recompiled, a block added at 20 MiB.
    const code = noise(3 * MiB, 22);
    const size = 48 * MiB;
    for (const [name, body, extra] of [
      ['sparse.a', code, null],
      ['sparse.b', recompiled(code), noise(MiB, 23)],
    ] as const) {
      const fh = await open(p(name), 'w');
      await fh.write(body, 0, body.length, 6 * MiB);
      await fh.write(body, 0, body.length, 36 * MiB);
      if (extra) await fh.write(extra, 0, extra.length, 20 * MiB);
      await fh.truncate(size);
      await fh.close();
    }
    const plan = planSegments(64 * MiB, size, size);
    expect(plan).not.toBeNull();
    expect(plan!.regionBytes).toBeLessThan(size / 4);
    await bsdiffEncodeSegmented(p('sparse.a'), p('sparse.b'), p('sparse.bsd'), plan!);
    const patchBytes = (await stat(p('sparse.bsd'))).size;
    // The added megabyte of noise, plus a small difference for the recompiled code.
    expect(patchBytes).toBeLessThan(MiB + 200 * 1024);
    const out = await bsdiffDecode(p('sparse.a'), p('sparse.bsd'), p('sparse.out'));
    expect(out.outputSha256).toBe(sha256(await readFile(p('sparse.b'))));
    const st = await stat(p('sparse.out'));
    expect(st.size).toBe(size);
    // Holes stay holes: 7 MiB of data written, not 48.
    expect(st.blocks * 512).toBeLessThan(16 * MiB);
  });

  it('refuses a damaged segment table, a damaged segment and a wrong source, leaving no output', async () => {
    const source = noise(2 * MiB, 24);
    await writeFile(p('dmg.a'), source);
    await writeFile(p('dmg.b'), recompiled(source));
    await bsdiffEncodeSegmented(p('dmg.a'), p('dmg.b'), p('dmg.bsd'), { segmentBytes: 256 * 1024, regionBytes: 512 * 1024 });
    const good = await readFile(p('dmg.bsd'));
    const cases: [string, Buffer, string, RegExp][] = [
      ['truncated', good.subarray(0, good.length - 5), 'CORRUPT_DELTA', /segment table/],
      [
        'table length',
        Buffer.concat([good.subarray(0, good.length - 8), Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])]),
        'CORRUPT_DELTA',
        /segment table length/,
      ],
      ['table byte', flip(good, good.length - 8 - 32 - 3), 'CORRUPT_DELTA', /damaged/],
      ['segment byte', flip(good, 200), 'CORRUPT_DELTA', /damaged/],
    ];
    for (const [name, bytes, code, mentions] of cases) {
      await writeFile(p(`dmg-${name}.bsd`), bytes);
      const out = p(`dmg-${name}.out`);
      const err = await rejection(bsdiffDecode(p('dmg.a'), p(`dmg-${name}.bsd`), out));
      expect(err.code, name).toBe(code);
      expect(err.message, name).toMatch(mentions);
      expect(err.message).not.toContain('\n');
      expect(existsSync(out), name).toBe(false);
    }
    await writeFile(p('dmg-other.a'), noise(2 * MiB + 1, 25));
    const wrong = await rejection(bsdiffDecode(p('dmg-other.a'), p('dmg.bsd'), p('dmg-wrong.out')));
    expect(wrong.code).toBe('WRONG_SOURCE');
    await writeFile(p('dmg-same-size.a'), noise(2 * MiB, 26));
    const sameSize = await rejection(bsdiffDecode(p('dmg-same-size.a'), p('dmg.bsd'), p('dmg-same.out')));
    expect(sameSize.code).toBe('CORRUPT_DELTA');
    expect(existsSync(p('dmg-same.out'))).toBe(false);
  });
});

function flip(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0x55;
  return copy;
}

describe('tree diff under a small memory budget', () => {
  it('diffs an executable too large for a whole-file bsdiff in the budget with bsdiff segments, and apply restores it', async () => {
    const esbuild = await esbuildBinaryPair();
    const [a, b] = [await readFile(esbuild.a), await readFile(esbuild.b)];
    const src = p('tree-a');
    const dst = p('tree-b');
    await mkdir(join(src, 'bin'), { recursive: true });
    await mkdir(join(dst, 'bin'), { recursive: true });
    // ~9.6 MB: a whole-file bsdiff would need ~120 MB; the budget leaves its jobs ~60 MiB.
    await writeFile(join(src, 'bin/tool'), a);
    await writeFile(join(dst, 'bin/tool'), b);
    const memoryBytes = budgetLeavingJobs(60 * MiB);
    const header = await diffTrees(src, dst, p('tree-delta'), { memoryBytes });
    // An executable: its segments go through the transform with an address map (v3).
    expect(header.minReaderVersion).toBe(3);
    const { records } = await loadRecords(src, p('tree-delta'), header);
    const tool = records.find((r) => r.kind === 'file' && Buffer.from(r.path).toString() === 'bin/tool');
    expect(tool?.kind === 'file' && tool.content).toMatchObject({ op: 'bsdiff', segmented: true });
    // Segments cost some matching across their edges, but stay far below VCDIFF on recompiled code.
    expect(header.stats.payloadBytes.bsdiff).toBeLessThan(b.length / 5);
    await applyDelta(src, p('tree-delta'), p('tree-out'), { memoryBytes });
    expect(await readHeader(p('tree-delta'))).toMatchObject({ minReaderVersion: 3 });
    const diffs = compareTrees(await scanTree(dst, { hash: true }), await scanTree(p('tree-out'), { hash: true }));
    expect(diffs).toEqual([]);
  });
});
