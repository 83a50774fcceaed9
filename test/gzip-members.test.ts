/**
 * Tree deltas of `.gz` members (issue #10 item 4): a gzip file whose text changed is diffed
 * decompressed and comes back bit for bit through an exact-deflate recipe, whatever made it
 * (GNU gzip, pigz, Go's compress/gzip, the system zlib, Node); the op is chosen only when
 * smaller, marks the delta v2, and a damaged recipe is refused with nothing left behind.
 */
import { execa } from 'execa';
import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORMAT_VERSION } from '../src/delta/format.js';
import { compareTrees } from '../src/tree/compare.js';
import { scanTree } from '../src/tree/scan.js';
import { gnuGzipFile, goGzipFile, pigzFile, pythonZlibFile } from './helpers/compressors.js';

const CLI = join(import.meta.dirname, '..', 'dist/cli/main.js');
let work: string;

function deltaimg(args: string[]) {
  return execa('node', [CLI, ...args], { reject: false });
}

/** A Debian-style changelog: a new release prepends an entry, so the whole gzip stream changes. */
function changelog(releases: number): string {
  let text = '';
  for (let i = releases; i >= 1; i--) {
    text += `pkg (1.${i}-1) unstable; urgency=medium\n\n  * Fix bug #${100000 + i * 7}: handle ${['paths', 'locales', 'signals', 'timeouts'][i % 4]} in module ${i % 13}.\n`;
    text += `  * Update translations (${i % 5} languages) and refresh patches.\n\n -- Maintainer <m@example.org>  Mon, ${1 + (i % 28)} Jan 20${10 + (i % 15)} 12:00:00 +0000\n\n`;
  }
  return text;
}

const compressors: Record<string, (input: string, output: string) => Promise<void>> = {
  'gnu-9.gz': (i, o) => gnuGzipFile(i, o, ['-9', '-n']),
  'gnu-6.gz': (i, o) => gnuGzipFile(i, o, ['-6']),
  'pigz.gz': (i, o) => pigzFile(i, o, ['-6']),
  'go.gz': (i, o) => goGzipFile(i, o, -1),
  'pyzlib.gz': (i, o) => pythonZlibFile(i, o, 9, 31),
  'node.gz': async (i, o) => writeFile(o, gzipSync(await readFile(i), { level: 9 })),
};

async function makeTree(root: string, releases: number): Promise<void> {
  await mkdir(join(root, 'doc'), { recursive: true });
  const plain = join(work, `changelog-${releases}`);
  await writeFile(plain, changelog(releases));
  for (const [name, compress] of Object.entries(compressors)) await compress(plain, join(root, 'doc', `changelog.${name}`));
  await writeFile(join(root, 'doc', 'README'), 'unchanged\n');
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'deltaimg-gzmembers-'));
  await makeTree(join(work, 'a'), 300);
  await makeTree(join(work, 'b'), 301);
}, 120_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Record_ {
  path: string;
  content?: { op: string; inner?: { op: string; gunzipFrom?: boolean }; recipe?: unknown };
}

async function records(delta: string): Promise<Record_[]> {
  const raw = brotliDecompressSync(await readFile(join(delta, 'entries.jsonl.br'))).toString('utf8');
  return raw
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record_);
}

describe('gzip members in tree deltas', () => {
  it('diffs changed .gz files decompressed and restores them bit for bit', async () => {
    const delta = join(work, 'delta');
    const d = await deltaimg(['diff', join(work, 'a'), join(work, 'b'), '--out', delta]);
    expect(d.exitCode, d.stderr).toBe(0);
    const header = JSON.parse(await readFile(join(delta, 'deltaimg.json'), 'utf8')) as {
      version: number;
      minReaderVersion: number;
      stats: { payloadBytes: { gzip: number } };
    };
    expect(header).toMatchObject({ version: FORMAT_VERSION, minReaderVersion: 2 });
    const recs = await records(delta);
    for (const name of Object.keys(compressors)) {
      const rec = recs.find(
        (r) => Buffer.from(r.path, 'base64').toString() === `doc/changelog.${name}` || r.path === `doc/changelog.${name}`,
      );
      expect(rec?.content, name).toMatchObject({ op: 'gzip', inner: { op: 'vcdiff', gunzipFrom: true } });
    }
    // Smaller than shipping the new .gz files (a VCDIFF of a changed gzip stream is about that).
    const newGz = await Promise.all(Object.keys(compressors).map(async (n) => (await stat(join(work, 'b', 'doc', `changelog.${n}`))).size));
    expect(header.stats.payloadBytes.gzip).toBeLessThan(newGz.reduce((a, b) => a + b, 0));

    const out = join(work, 'out');
    const a = await deltaimg(['apply', join(work, 'a'), delta, '--out', out]);
    expect(a.exitCode, a.stderr).toBe(0);
    for (const name of Object.keys(compressors)) {
      const want = await readFile(join(work, 'b', 'doc', `changelog.${name}`));
      expect((await readFile(join(out, 'doc', `changelog.${name}`))).equals(want), name).toBe(true);
    }
    expect(compareTrees(await scanTree(join(work, 'b')), await scanTree(out))).toEqual([]);
  }, 180_000);

  it('a delta without gzip ops stays readable by version-1 readers', async () => {
    const delta = join(work, 'delta-plain');
    const d = await deltaimg(['diff', join(work, 'a'), join(work, 'a'), '--out', delta]);
    expect(d.exitCode, d.stderr).toBe(0);
    const header = JSON.parse(await readFile(join(delta, 'deltaimg.json'), 'utf8')) as { minReaderVersion: number };
    expect(header.minReaderVersion).toBe(1);
  });

  it('a damaged recipe is refused in one line and nothing is written', async () => {
    const delta = join(work, 'delta');
    const recs = await records(delta);
    const rec = recs.find((r) => r.content?.op === 'gzip' && typeof (r.content.recipe as { inline?: string }).inline === 'string');
    const damagedDir = join(work, 'delta-damaged');
    await execa('cp', ['-a', delta, damagedDir]);
    if (rec) {
      const recipe = rec.content!.recipe as { inline: string };
      const bytes = Buffer.from(recipe.inline, 'base64');
      bytes[bytes.length - 5]! ^= 0xff;
      recipe.inline = bytes.toString('base64');
    } else {
      // The recipe is a blob: flip a byte of the largest blob file named by a gzip op.
      const gz = recs.find((r) => r.content?.op === 'gzip')!;
      const blob = (gz.content!.recipe as { blob: string }).blob;
      const path = join(damagedDir, 'blobs', blob);
      const bytes = await readFile(path);
      bytes[bytes.length - 5]! ^= 0xff;
      await writeFile(path, bytes);
    }
    if (rec) {
      const lines = recs.map((r) => JSON.stringify(r)).join('\n') + '\n';
      await writeFile(join(damagedDir, 'entries.jsonl.br'), brotliCompressSync(Buffer.from(lines)));
      // The header pins the entries file's digest: refresh it as a crafted delta would.
      const header = JSON.parse(await readFile(join(damagedDir, 'deltaimg.json'), 'utf8')) as {
        entries: { sha256: string; rawBytes: number };
      };
      const { createHash } = await import('node:crypto');
      header.entries.sha256 = createHash('sha256')
        .update(await readFile(join(damagedDir, 'entries.jsonl.br')))
        .digest('hex');
      header.entries.rawBytes = Buffer.byteLength(lines);
      await writeFile(join(damagedDir, 'deltaimg.json'), JSON.stringify(header));
    }
    const out = join(work, 'out-damaged');
    const a = await deltaimg(['apply', join(work, 'a'), damagedDir, '--out', out]);
    expect(a.exitCode).not.toBe(0);
    expect(a.stderr.trim().split('\n')).toHaveLength(1);
    expect(a.stderr).toMatch(/damaged|does not match|corrupt/i);
    expect(await readdir(work)).not.toContain('out-damaged');
  }, 120_000);
});
