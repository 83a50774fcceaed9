/**
 * Format v3 on real trees (issue #10 item 5): what equals the source costs nothing, a rebuilt
 * tree's new mtimes cost their differences, every restore is exact, a wrong base is named by its
 * directory, v1/v2-coded deltas still apply, and an older reader asks for an upgrade.
 */
import { execFile } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { brotliDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDelta } from '../src/delta/apply.js';
import { diffTrees } from '../src/delta/diff.js';
import { ENTRIES_FILE, HEADER_FILE } from '../src/delta/format.js';
import { readHeader } from '../src/delta/header.js';
import { compareTrees } from '../src/tree/compare.js';
import { scanTree } from '../src/tree/scan.js';
import { checkReaderVersion, JsonFields } from '../src/util/json-input.js';
import { VcdiffPool } from '../src/vcdiff/index.js';
import { expectApplyRefused } from './helpers/expect-refused.js';

const run = promisify(execFile);

let work: string;
let pool: VcdiffPool;
/** The base: 12 directories of 40 small text files, a symlink and a hardlink. */
let a: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'deltaimg-runs-'));
  pool = new VcdiffPool();
  a = join(work, 'a');
  for (let d = 0; d < 12; d++) {
    await mkdir(join(a, `pkg${d}`, 'lib'), { recursive: true });
    for (let f = 0; f < 40; f++) {
      await writeFile(join(a, `pkg${d}`, 'lib', `file${f}.js`), `module.exports = ${d * 100 + f}; // ${'x'.repeat(f * 7)}\n`);
    }
    await writeFile(join(a, `pkg${d}`, 'package.json'), JSON.stringify({ name: `pkg${d}`, version: '1.0.0' }));
  }
  await run('ln', ['-s', 'pkg0/lib/file0.js', join(a, 'main.js')]);
  await run('ln', [join(a, 'pkg1/package.json'), join(a, 'pkg1/package.copy.json')]);
}, 60_000);

afterAll(async () => {
  await pool?.close();
  await rm(work, { recursive: true, force: true });
});

/** B: a copy of A (`cp -a` keeps every mtime; `cp -r` stamps all anew, as a rebuilt image does), then edits. */
async function makeTarget(name: string, keepTimes: boolean): Promise<string> {
  const b = join(work, name);
  await run('cp', [keepTimes ? '-a' : '-r', a, b]);
  await writeFile(join(b, 'pkg3/package.json'), JSON.stringify({ name: 'pkg3', version: '1.0.1' }));
  await appendFile(join(b, 'pkg5/lib/file9.js'), '// patched\n');
  await rm(join(b, 'pkg7'), { recursive: true });
  await mkdir(join(b, 'pkg12'));
  await writeFile(join(b, 'pkg12/index.js'), 'module.exports = 12;\n');
  return b;
}

async function lines(delta: string): Promise<string[]> {
  return brotliDecompressSync(await readFile(join(delta, ENTRIES_FILE)))
    .toString('utf8')
    .split('\n')
    .filter(Boolean);
}

async function expectRestored(src: string, delta: string, want: string, name: string): Promise<void> {
  const out = join(work, name);
  await applyDelta(src, delta, out, { pool });
  const [restored, expected] = await Promise.all([scanTree(out, { hash: true }), scanTree(want, { hash: true })]);
  expect(compareTrees(restored, expected)).toEqual([]);
}

describe('format v3: runs against the source', () => {
  it('timestamps kept: unchanged entries cost nothing, a few lines for the changes', async () => {
    const b = await makeTarget('b-kept', true);
    const delta = join(work, 'delta-kept');
    const header = await diffTrees(a, b, delta, { pool });
    expect(header).toMatchObject({ version: 3, minReaderVersion: 3, entries: { coding: 'runs' } });
    expect(header.target.entries).toBeGreaterThan(400);
    // Root, keep/drop runs around 2 edited files and 3 changed directories, 2 new entries, the digests.
    const text = await lines(delta);
    expect(text.length).toBeLessThan(25);
    expect(text.filter((l) => l.startsWith('{"keep":')).length).toBeGreaterThan(3);
    expect((await stat(join(delta, ENTRIES_FILE))).size).toBeLessThan(1000);
    await expectRestored(a, delta, b, 'out-kept');
  });

  it('every mtime new (a rebuild): one line per entry holding only its time difference, restored exactly', async () => {
    const b = await makeTarget('b-new-times', false);
    const delta = join(work, 'delta-new-times');
    await diffTrees(a, b, delta, { pool });
    const text = await lines(delta);
    const timeOnly = text.filter((l) => /^\{"dt":"-?\d+"\}$/.test(l));
    expect(timeOnly.length).toBeGreaterThan(400);
    await expectRestored(a, delta, b, 'out-new-times');
  });

  it('the delta inside the source (the Docker layout, SRC/__delta__) is left out of the source', async () => {
    const b = await makeTarget('b-docker', true);
    const src = join(work, 'a-with-delta');
    await run('cp', ['-a', a, src]);
    await diffTrees(a, b, join(src, '__delta__'), { pool });
    await expectRestored(src, join(src, '__delta__'), b, 'out-docker');
  });

  it('a wrong base is named by the directory where it differs', async () => {
    const b = await makeTarget('b-wrong', true);
    const delta = join(work, 'delta-wrong');
    await diffTrees(a, b, delta, { pool });
    const cases: [string, (src: string) => Promise<void>, RegExp][] = [
      ['an unchanged file with other bytes', (s) => writeFile(join(s, 'pkg2/lib/file4.js'), 'other'), /in directory \/pkg2\/lib \(/],
      ['an unchanged file with another mtime', (s) => utimes(join(s, 'pkg9/lib/file1.js'), 1, 1), /in directory \/pkg9\/lib \(/],
      // An entry more or less shifts the runs: refused where they stop lining up with SRC.
      ['an entry the base did not have', (s) => writeFile(join(s, 'pkg4/extra'), 'x'), /does not match the delta's base at \/pkg/],
      ['an entry the base had, missing', (s) => rm(join(s, 'pkg11/package.json')), /does not match the delta's base (at|before) \/pkg/],
      ['an entry at the end the base did not have', (s) => writeFile(join(s, 'zz'), 'x'), /it has \/zz, which the delta does not mention/],
    ];
    let n = 0;
    for (const [what, damage, message] of cases) {
      const src = join(work, `a-wrong-${n}`);
      await run('cp', ['-a', a, src]);
      await damage(src);
      const out = join(work, `out-wrong-${n++}`);
      const msg = await expectApplyRefused(applyDelta(src, delta, out, { pool }), 'WRONG_SOURCE', out, work);
      expect(msg, what).toMatch(message);
    }
  });

  it('--whole-records (the v1/v2 coding) still applies, to a copy without metadata too, and needs only a v1 reader', async () => {
    const b = await makeTarget('b-whole', false);
    const delta = join(work, 'delta-whole');
    const header = await diffTrees(a, b, delta, { pool, wholeRecords: true });
    expect(header).toMatchObject({ version: 3, minReaderVersion: 1, entries: { coding: 'records' } });
    // A base copied without its metadata: only file contents are taken from it.
    const plainCopy = join(work, 'a-plain-copy');
    await run('cp', ['-r', a, plainCopy]);
    await expectRestored(plainCopy, delta, b, 'out-whole');
    // The runs delta of the same pair is a fraction of it.
    const runs = await diffTrees(a, b, join(work, 'delta-whole-vs-runs'), { pool });
    expect(runs.stats.deltaBytes).toBeLessThan(header.stats.deltaBytes / 2);
  });

  it('a reader of version 2 refuses a v3 delta with the upgrade line', async () => {
    const b = await makeTarget('b-old-reader', true);
    const delta = join(work, 'delta-old-reader');
    await diffTrees(a, b, delta, { pool });
    const json: unknown = JSON.parse(await readFile(join(delta, HEADER_FILE), 'utf8'));
    const f = new JsonFields(join(delta, HEADER_FILE), 'CORRUPT_DELTA', 'the delta is damaged');
    // What deltaimg 0.1 (FORMAT_VERSION 2) runs first on a header, before reading anything else.
    expect(() => checkReaderVersion(f, f.object(json, ''), 2, `${delta} uses delta format`)).toThrow(
      /uses delta format v3 \(made by deltaimg.*\); this deltaimg reads up to v2: upgrade deltaimg to apply it/,
    );
    expect((await readHeader(delta)).minReaderVersion).toBe(3);
  });
});
