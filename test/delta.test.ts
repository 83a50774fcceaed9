import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFile,
  cp,
  link,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  symlink,
  truncate,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { brotliCompressSync, constants as zc } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDelta, loadRecords } from '../src/delta/apply.js';
import { diffTrees } from '../src/delta/diff.js';
import { BLOBS_DIR, ENTRIES_FILE, type DeltaRecord, type FileRecord } from '../src/delta/format.js';
import { readHeader } from '../src/delta/header.js';
import { compareTrees } from '../src/tree/compare.js';
import { scanTree } from '../src/tree/scan.js';
import { VcdiffPool } from '../src/vcdiff/index.js';
import { DeltaimgError } from '../src/util/errors.js';
import { xorByte } from './helpers/bytes.js';
import { craftDelta, META, rel, rootRecord } from './helpers/craft-delta.js';
import { expectApplyRefused } from './helpers/expect-refused.js';
import { esbuildBinaryPair } from './helpers/real-data.js';
import { cloneTree, makeRichTree, mutateTree } from './helpers/trees.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const TS_LIB = join(import.meta.dirname, '..', 'node_modules', 'typescript', 'lib');

let work: string;
let pool: VcdiffPool;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'deltaimg-delta-'));
  pool = new VcdiffPool();
});
afterAll(async () => {
  await pool?.close();
  await rm(work, { recursive: true, force: true });
});

/** A source tree of real files (TypeScript's lib folder) plus links and odd entries. */
async function makeSource(dir: string): Promise<void> {
  await mkdir(join(dir, 'app/lib'), { recursive: true });
  for (const f of ['typescript.js', 'lib.dom.d.ts', 'lib.es5.d.ts', 'tsc.js']) await cp(join(TS_LIB, f), join(dir, 'app/lib', f));
  await cp(join(TS_LIB, 'lib.es2015.core.d.ts'), join(dir, 'app/lib/libfoo.so.3.0.19'));
  await mkdir(join(dir, 'etc'), { recursive: true });
  await writeFile(join(dir, 'etc/config'), 'port=80\nname=app\n');
  await writeFile(join(dir, 'etc/removed'), 'gone soon\n');
  await writeFile(join(dir, 'empty'), '');
  await symlink('app/lib/tsc.js', join(dir, 'tsc-link'));
  await link(join(dir, 'etc/config'), join(dir, 'etc/config.hardlink'));
  await mkdir(join(dir, 'var/empty-dir'), { recursive: true });
}

/** The target: an edited big file, a versioned rename, a move, a deletion, new files, metadata changes. */
async function makeTarget(src: string, dir: string): Promise<void> {
  await cp(src, dir, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  const big = join(dir, 'app/lib/typescript.js');
  const text = await readFile(big, 'utf8');
  await writeFile(big, text.replace(/function /g, (m, off: number) => (off % 97 === 0 ? 'function  ' : m)) + '\n// v2\n');
  await rename(join(dir, 'app/lib/libfoo.so.3.0.19'), join(dir, 'app/lib/libfoo.so.3.0.22'));
  await appendFile(join(dir, 'app/lib/libfoo.so.3.0.22'), '\n// patched\n');
  await rename(join(dir, 'app/lib/lib.dom.d.ts'), join(dir, 'app/lib.dom.moved.d.ts'));
  await unlink(join(dir, 'etc/removed'));
  await writeFile(join(dir, 'etc/new-file'), 'a brand new file with some text in it, '.repeat(200));
  await cp(join(TS_LIB, 'lib.webworker.d.ts'), join(dir, 'app/lib/lib.webworker.d.ts'));
  // Text of the same shape made of none of the old tree's content: shipped whole.
  await writeFile(join(dir, 'app/lib/notes.rot13'), rot13(await readFile(join(TS_LIB, 'lib.webworker.d.ts'), 'utf8')));
  await writeFile(join(dir, 'etc/config'), 'port=8080\nname=app\n');
  await run('chmod', ['4755', join(dir, 'app/lib/tsc.js')]);
  await run('touch', ['-h', '-d', '@1600000000.123456789', join(dir, 'tsc-link')]);
}

function rot13(text: string): string {
  return text.replace(/[a-zA-Z]/g, (c) => {
    const base = c <= 'Z' ? 65 : 97;
    return String.fromCharCode(((c.charCodeAt(0) - base + 13) % 26) + base);
  });
}

/** The target's records as apply reads them (a v3 delta's unchanged entries come from the source). */
async function records(srcDir: string, deltaDir: string): Promise<DeltaRecord[]> {
  return (await loadRecords(srcDir, deltaDir, await readHeader(deltaDir))).records;
}

function expectRefused(promise: Promise<unknown>, code: DeltaimgError['code'], out: string): Promise<string> {
  return expectApplyRefused(promise, code, out, work);
}

describe('diff and apply on real trees', () => {
  let src: string;
  let dst: string;
  let delta: string;

  beforeAll(async () => {
    src = join(work, 'src');
    dst = join(work, 'dst');
    delta = join(work, 'delta');
    await makeSource(src);
    await makeTarget(src, dst);
    await diffTrees(src, dst, delta, { pool });
  });

  it('restores the target exactly', async () => {
    const out = join(work, 'out-exact');
    const result = await applyDelta(src, delta, out, { pool });
    expect(result.entries).toBeGreaterThan(10);
    const [restored, expected] = await Promise.all([scanTree(out, { hash: true }), scanTree(dst, { hash: true })]);
    expect(compareTrees(restored, expected)).toEqual([]);
  });

  it('picks the cheapest form per file', async () => {
    const byPath = new Map((await records(src, delta)).map((r) => [r.path, r]));
    const op = (p: string) => {
      const r = byPath.get(rel(p));
      return r?.kind === 'file' ? r.content : undefined;
    };
    expect(op('app/lib/lib.es5.d.ts')).toEqual({ op: 'same' });
    expect(op('app/lib.dom.moved.d.ts')).toEqual({ op: 'copy', from: 'app/lib/lib.dom.d.ts' });
    expect(op('app/lib/typescript.js')?.op).toBe('vcdiff');
    expect(op('app/lib/libfoo.so.3.0.22')).toMatchObject({ op: 'vcdiff', from: 'app/lib/libfoo.so.3.0.19' });
    expect(op('etc/new-file')?.op).toBe('brotli');
    // A new file whose content the old lib.dom.d.ts holds much of: assembled from it (and others).
    const webworker = op('app/lib/lib.webworker.d.ts');
    expect(webworker?.op === 'assembled' && webworker.sources.map((s) => s.path)).toContain('app/lib/lib.dom.d.ts');
    expect(op('app/lib/notes.rot13')).toMatchObject({ op: 'brotli', payload: { blob: expect.any(String) } });
    // Candidates are compared by a quick brotli; the one kept is compressed at full strength.
    const notes = op('app/lib/notes.rot13');
    const blob = notes && 'payload' in notes && 'blob' in notes.payload ? notes.payload.blob : '';
    const shipped = await readFile(join(delta, BLOBS_DIR, blob));
    const quick = brotliCompressSync(await readFile(join(dst, 'app/lib/notes.rot13')), { params: { [zc.BROTLI_PARAM_QUALITY]: 5 } });
    expect(shipped.length).toBeLessThan(quick.length * 0.95);
    const h = await readHeader(delta);
    expect(h.stats.deleted).toBe(3); // etc/removed, the renamed libfoo and the moved lib.dom.d.ts
    expect(h.stats.metadataOnly).toBeGreaterThanOrEqual(1); // tsc.js chmod
    expect(h.stats.deltaBytes).toBeLessThan(h.stats.targetFileBytes / 20);
  });

  it('refuses a wrong base: an unchanged source file was altered, named by its directory', async () => {
    const bad = join(work, 'src-wrong');
    await run('cp', ['-a', src, bad]);
    await appendFile(join(bad, 'app/lib/lib.es5.d.ts'), 'x');
    const msg = await expectRefused(applyDelta(bad, delta, join(work, 'out-wrong'), { pool }), 'WRONG_SOURCE', join(work, 'out-wrong'));
    expect(msg).toContain("differs from the delta's target in directory /app/lib ");
  });

  it('refuses a wrong base: a delta source was altered', async () => {
    const bad = join(work, 'src-wrong2');
    await cp(src, bad, { recursive: true, verbatimSymlinks: true });
    await appendFile(join(bad, 'app/lib/typescript.js'), 'x');
    await expectRefused(applyDelta(bad, delta, join(work, 'out-wrong2'), { pool }), 'WRONG_SOURCE', join(work, 'out-wrong2'));
  });

  it('refuses a corrupt or missing blob', async () => {
    const bad = join(work, 'delta-corrupt');
    await cp(delta, bad, { recursive: true });
    const blobs = await readdir(join(bad, BLOBS_DIR));
    expect(blobs.length).toBeGreaterThan(0);
    const blob = join(bad, BLOBS_DIR, blobs[0]!);
    const bytes = await readFile(blob);
    xorByte(bytes, bytes.length >> 1, 0xff);
    await writeFile(blob, bytes);
    await expectRefused(applyDelta(src, bad, join(work, 'out-corrupt'), { pool }), 'CORRUPT_DELTA', join(work, 'out-corrupt'));
    await unlink(blob);
    const msg = await expectRefused(applyDelta(src, bad, join(work, 'out-missing'), { pool }), 'CORRUPT_DELTA', join(work, 'out-missing'));
    expect(msg).toMatch(/missing/);
  });

  it('refuses a truncated entries file and a missing header', async () => {
    const bad = join(work, 'delta-truncated');
    await cp(delta, bad, { recursive: true });
    const entries = join(bad, ENTRIES_FILE);
    const size = (await readFile(entries)).length;
    await truncate(entries, size - 7);
    await expectRefused(applyDelta(src, bad, join(work, 'out-trunc'), { pool }), 'CORRUPT_DELTA', join(work, 'out-trunc'));
    // A header that misstates the decompressed size of an intact entries file.
    const lying = join(work, 'delta-lying-size');
    await cp(delta, lying, { recursive: true });
    const headerPath = join(lying, 'deltaimg.json');
    const header = JSON.parse(await readFile(headerPath, 'utf8'));
    header.entries.rawBytes -= 1;
    await writeFile(headerPath, JSON.stringify(header));
    const msg = await expectRefused(applyDelta(src, lying, join(work, 'out-lying'), { pool }), 'CORRUPT_DELTA', join(work, 'out-lying'));
    expect(msg).toMatch(/decompress/);
    await unlink(join(bad, 'deltaimg.json'));
    await expectRefused(applyDelta(src, bad, join(work, 'out-nohdr'), { pool }), 'CORRUPT_DELTA', join(work, 'out-nohdr'));
  });

  it('refuses a delta from a newer format version', async () => {
    const bad = join(work, 'delta-v4');
    await cp(delta, bad, { recursive: true });
    const hdr = JSON.parse(await readFile(join(bad, 'deltaimg.json'), 'utf8'));
    await writeFile(join(bad, 'deltaimg.json'), JSON.stringify({ ...hdr, version: 4, minReaderVersion: 4, tool: 'deltaimg 9.0.0' }));
    const msg = await expectRefused(applyDelta(src, bad, join(work, 'out-v4'), { pool }), 'UNSUPPORTED_VERSION', join(work, 'out-v4'));
    expect(msg).toMatch(/v4.*reads up to v3.*upgrade deltaimg/);
  });

  it('the CLI reports failures as one line with a non-zero exit, and --json on success', async () => {
    const out = join(work, 'out-cli');
    const ok = await run('node', [CLI, 'apply', src, delta, '--out', out, '--json']);
    expect(JSON.parse(ok.stdout)).toMatchObject({ verified: true, files: expect.any(Number) });
    const fail = await run('node', [CLI, 'apply', join(work, 'src-wrong'), delta, '--out', join(work, 'out-cli2')]).catch((e) => e);
    expect(fail.code).toBe(1);
    expect(fail.stderr.trim().split('\n')).toHaveLength(1);
    expect(fail.stderr).toMatch(/^deltaimg: error: the tree rebuilt from .* differs from the delta's target in directory \/app\/lib /);
    const inspect = await run('node', [CLI, 'inspect', delta, '--json']);
    expect(JSON.parse(inspect.stdout).stats.delta).toBeGreaterThanOrEqual(2);
  });
});

describe('recompiled binaries', () => {
  it('ships two esbuild releases as a bsdiff patch far smaller than VCDIFF, restored exactly', async () => {
    const pair = await esbuildBinaryPair();
    const a = join(work, 'bin-a');
    const b = join(work, 'bin-b');
    await mkdir(join(a, 'usr/bin'), { recursive: true });
    await mkdir(join(b, 'usr/bin'), { recursive: true });
    await cp(pair.a, join(a, 'usr/bin/esbuild'));
    await cp(pair.b, join(b, 'usr/bin/esbuild'));
    const delta = join(work, 'bin-delta');
    const header = await diffTrees(a, b, delta, { pool });
    const rec = (await records(a, delta)).find((r) => r.path === 'usr/bin/esbuild');
    expect(rec?.kind === 'file' && rec.content.op).toBe('bsdiff');
    const vcdiff = await pool.encodeFile(pair.a, pair.b, join(work, 'bin.vcdiff'), { secondary: 'djw' });
    expect(header.stats.payloadBytes.bsdiff).toBeLessThan(vcdiff.deltaBytes);
    const out = join(work, 'bin-out');
    await applyDelta(a, delta, out, { pool });
    const [restored, expected] = await Promise.all([scanTree(out, { hash: true }), scanTree(b, { hash: true })]);
    expect(compareTrees(restored, expected)).toEqual([]);
  });
});

describe('diff and apply on trees with every entry kind and metadata', () => {
  it('round-trips a rich tree through an upgrade-like mutation', async () => {
    const a = join(work, 'rich-a');
    const b = join(work, 'rich-b');
    await makeRichTree(a);
    await cloneTree(a, b);
    const changes = await mutateTree(b);
    expect(changes.length).toBeGreaterThan(5);
    const delta = join(work, 'rich-delta');
    const header = await diffTrees(a, b, delta, { pool });
    expect(header.stats.delta + header.stats.moved).toBeGreaterThan(0);
    const out = join(work, 'rich-out');
    await applyDelta(a, delta, out, { pool });
    const [restored, expected] = await Promise.all([scanTree(out, { hash: true }), scanTree(b, { hash: true })]);
    expect(compareTrees(restored, expected)).toEqual([]);
  });

  it('round-trips between empty trees and from an empty tree', async () => {
    const empty = join(work, 'empty-a');
    await mkdir(empty);
    const rich = join(work, 'rich-c');
    await makeRichTree(rich);
    for (const [from, to, name] of [
      [empty, empty, 'e2e'],
      [empty, rich, 'e2r'],
      [rich, empty, 'r2e'],
    ] as const) {
      const delta = join(work, `delta-${name}`);
      const out = join(work, `out-${name}`);
      await diffTrees(from, to, delta, { pool });
      await applyDelta(from, delta, out, { pool });
      const [restored, expected] = await Promise.all([scanTree(out, { hash: true }), scanTree(to, { hash: true })]);
      expect(compareTrees(restored, expected)).toEqual([]);
    }
  });
});

describe('crafted deltas are refused before anything is written', () => {
  const file = (path: string, content: string): FileRecord => ({
    path: rel(path),
    kind: 'file',
    meta: META,
    size: content.length,
    sha256: createHash('sha256').update(content).digest('hex'),
    content: { op: 'raw', payload: { inline: Buffer.from(content) } },
  });
  const dir = (path: string): DeltaRecord => ({ path: rel(path), kind: 'dir', meta: META });

  const cases: [string, DeltaRecord[]][] = [
    ['a parent-directory path', [rootRecord(), file('../escape', 'x')]],
    ['an absolute path', [rootRecord(), file('/etc/passwd', 'x')]],
    ['a dot-dot component', [rootRecord(), dir('a'), file('a/../../b', 'x')]],
    [
      'a write through a symlink it created',
      [rootRecord(), { path: rel('link'), kind: 'symlink', meta: { ...META, mode: 0o777 }, target: '/etc' }, file('link/passwd', 'x')],
    ],
    ['a child of a file', [rootRecord(), file('f', 'x'), file('f/g', 'y')]],
    ['a repeated path', [rootRecord(), file('f', 'x'), file('f', 'y')]],
    ['a hardlink to an unlisted file', [rootRecord(), { path: rel('h'), kind: 'hardlink', meta: META, linkTo: rel('etc/shadow') }]],
  ];
  for (const [name, recs] of cases) {
    it(`refuses ${name}`, async () => {
      const d = join(work, `crafted-${name.replace(/\W+/g, '-')}`);
      await craftDelta(d, recs);
      const out = join(work, `out-${name.replace(/\W+/g, '-')}`);
      await expectRefused(applyDelta(work, d, out, { pool }), 'HOSTILE_PATH', out);
    });
  }

  it('refuses to read a source file through a symlink in the source tree', async () => {
    const src = join(work, 'src-evil');
    await mkdir(src);
    await symlink('/etc', join(src, 'evil'));
    const hostname = await readFile('/etc/hostname', 'utf8');
    const d = join(work, 'crafted-source-symlink');
    await craftDelta(d, [rootRecord(), { ...file('stolen', hostname), content: { op: 'copy', from: rel('evil/hostname') } }]);
    const out = join(work, 'out-source-symlink');
    await expectRefused(applyDelta(src, d, out, { pool }), 'HOSTILE_PATH', out);
  });
});
