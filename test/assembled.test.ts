/**
 * New files made of old content (issue #10 item 6, the `assembled` op, format v3): a bundle
 * made of several old modules, in a renamed version directory, encoded against the old files
 * concatenated; restored exactly; a wrong, hostile or odd base refused in one line, nothing written.
 */
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDelta, loadRecords } from '../src/delta/apply.js';
import { diffTrees } from '../src/delta/diff.js';
import { readHeader } from '../src/delta/header.js';
import { HEADER_FILE, type AssembledSource, type DeltaHeader, type DeltaRecord } from '../src/delta/format.js';
import { fsext } from '../src/tree/fsext.js';
import { checkReaderVersion, JsonFields } from '../src/util/json-input.js';
import { VcdiffPool } from '../src/vcdiff/index.js';
import { craftDelta, META, rel, rootRecord } from './helpers/craft-delta.js';
import { expectApplyRefused } from './helpers/expect-refused.js';
import { noise } from './helpers/noise.js';
import { payloadSize } from './helpers/payload-size.js';

let work: string;
let pool: VcdiffPool;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'deltaimg-assembled-'));
  pool = new VcdiffPool();
});
afterAll(async () => {
  await pool?.close();
  await rm(work, { recursive: true, force: true });
});

const WORDS = ['const', 'return', 'function', 'if', 'else', 'this', 'value', 'options', 'node', 'event', 'handler', 'length'];

/** JS-like text that brotli cannot guess: identifiers and numbers from a seeded generator. */
function jsModule(seed: number, lines: number): string {
  const r = noise(lines * 8, seed);
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const id = r.readUInt32LE(i * 8).toString(36);
    const n = r.readUInt16LE(i * 8 + 4);
    out.push(`  ${WORDS[r[i * 8 + 6]! % WORDS.length]} ${id}_${seed} = ${WORDS[r[i * 8 + 7]! % WORDS.length]}(${n}, "${id.slice(0, 3)}");`);
  }
  return `export function module${seed}() {\n${out.join('\n')}\n}\n`;
}

const MODULES = ['core', 'dom', 'util', 'events'];
const OLD_PKG = 'node_modules/.pnpm/widget@1.2.3/node_modules/widget';
const NEW_PKG = 'node_modules/.pnpm/widget@1.2.4/node_modules/widget';

/** Old tree: the package's modules; new tree: them under the next version's directory plus a bundle of them all. */
async function makePair(dir: string): Promise<{ a: string; b: string; bundle: string }> {
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const mods = MODULES.map((m, i) => ({ name: m, text: jsModule(100 + i, 120) }));
  await mkdir(join(a, OLD_PKG, 'lib'), { recursive: true });
  await mkdir(join(b, NEW_PKG, 'lib'), { recursive: true });
  await mkdir(join(b, NEW_PKG, 'dist'), { recursive: true });
  for (const m of mods) {
    await writeFile(join(a, OLD_PKG, 'lib', `${m.name}.js`), m.text);
    await writeFile(join(b, NEW_PKG, 'lib', `${m.name}.js`), m.text);
  }
  const bundle = [
    '(function (global, factory) { factory(global.widget = {}); })(this, function (exports) {',
    ...mods.map((m) => `/* ${m.name} */\n${m.text.replace(/^export /gm, '')}`),
    jsModule(999, 40),
    '});',
  ].join('\n');
  await writeFile(join(b, NEW_PKG, 'dist', 'widget.js'), bundle);
  // The same bundle in two more module formats: near copies of a file that is new too.
  await writeFile(
    join(b, NEW_PKG, 'dist', 'widget.cjs.js'),
    bundle.replace('(function (global, factory)', '"use strict"; (function (g, f)'),
  );
  await writeFile(
    join(b, NEW_PKG, 'dist', 'widget.esm.js'),
    bundle.replace(/^\(function.*$/m, 'const exports = {};') + '\nexport default exports;\n',
  );
  // Its source map, holding the old modules' text in sourcesContent (JSON-escaped: no line of it matches as is).
  const sourceMap = {
    version: 3,
    file: 'widget.js',
    sources: mods.map((m) => `../lib/${m.name}.js`),
    sourcesContent: mods.map((m) => m.text),
    names: [],
    mappings: noise(3000, 5).toString('base64').replace(/[+/=]/g, ';'),
  };
  await writeFile(join(b, NEW_PKG, 'dist', 'widget.js.map'), JSON.stringify(sourceMap));
  return { a, b, bundle };
}

/** The target's records as apply reads them (a v3 delta's unchanged entries come from the source). */
async function recordsOf(src: string, delta: string): Promise<DeltaRecord[]> {
  return (await loadRecords(src, delta, await readHeader(delta))).records;
}

function assembledSources(records: DeltaRecord[], path: string): AssembledSource[] {
  const r = records.find((x) => x.path === path);
  if (r?.kind !== 'file' || r.content.op !== 'assembled')
    throw new Error(`${path} is not assembled: ${JSON.stringify(r && 'content' in r ? r.content.op : r)}`);
  return r.content.sources;
}

/** What the payloads of these records cost, inline, as blobs, or in the pack (uncompressed there: an upper bound). */
async function payloadBytes(delta: string, records: DeltaRecord[], paths: string[]): Promise<number> {
  let n = 0;
  for (const r of records) {
    if (r.kind !== 'file' || !paths.includes(r.path) || !('payload' in r.content)) continue;
    n += await payloadSize(delta, r.content.payload);
  }
  return n;
}

function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('assembled sources', () => {
  let pair: { a: string; b: string; bundle: string };
  let delta: string;
  let sources: AssembledSource[];

  beforeAll(async () => {
    pair = await makePair(join(work, 'pair'));
    delta = join(work, 'delta');
    await diffTrees(pair.a, pair.b, delta, { pool });
    sources = assembledSources(await recordsOf(pair.a, delta), `${NEW_PKG}/dist/widget.js`);
  });

  it('encodes a new bundle against the old modules it is made of, from a renamed version directory', async () => {
    expect(sources.map((s) => s.path).sort()).toEqual(MODULES.map((m) => `${OLD_PKG}/lib/${m}.js`).sort());
    const header = JSON.parse(await readFile(join(delta, HEADER_FILE), 'utf8')) as DeltaHeader;
    expect(header.minReaderVersion).toBe(3);
    // What is really new: the wrapper and one small module, not the bundle again.
    expect(await payloadBytes(delta, await recordsOf(pair.a, delta), [`${NEW_PKG}/dist/widget.js`])).toBeLessThan(pair.bundle.length / 8);
    const out = join(work, 'out');
    await applyDelta(pair.a, delta, out, { pool });
    expect(await readFile(join(out, NEW_PKG, 'dist', 'widget.js'), 'utf8')).toBe(pair.bundle);
  });

  it('encodes the other formats of the bundle against it, a file of the target restored first', async () => {
    const records = await recordsOf(pair.a, delta);
    const flavours = ['widget.cjs.js', 'widget.esm.js', 'widget.js'].map((n) => `${NEW_PKG}/dist/${n}`);
    const fromTarget = flavours.filter((path) => assembledSources(records, path).some((s) => s.target));
    // Two of the three take the third (which is assembled from the old modules) as a part.
    expect(fromTarget).toHaveLength(2);
    const served = flavours.find((path) => !fromTarget.includes(path))!;
    for (const path of fromTarget) expect(assembledSources(records, path).find((s) => s.target)?.path).toBe(served);
    expect(await payloadBytes(delta, records, flavours)).toBeLessThan(pair.bundle.length / 6);
    const out = join(work, 'out-flavours');
    await applyDelta(pair.a, delta, out, { pool });
    for (const path of flavours) expect(sha256(await readFile(join(out, path)))).toBe(sha256(await readFile(join(pair.b, path))));
  });

  it('takes the old modules as JSON text for a source map that holds them in sourcesContent', async () => {
    const parts = assembledSources(await recordsOf(pair.a, delta), `${NEW_PKG}/dist/widget.js.map`);
    const escaped = parts.filter((s) => s.escape === 'json').map((s) => s.path);
    expect(escaped.length).toBeGreaterThanOrEqual(3);
    for (const path of escaped) expect(MODULES.map((m) => `${OLD_PKG}/lib/${m}.js`)).toContain(path);
    const out = join(work, 'out-map');
    await applyDelta(pair.a, delta, out, { pool });
    const path = join(NEW_PKG, 'dist', 'widget.js.map');
    expect(sha256(await readFile(join(out, path)))).toBe(sha256(await readFile(join(pair.b, path))));
  });

  it('a reader of format v2 refuses the delta, asking for an upgrade', async () => {
    const text = await readFile(join(delta, HEADER_FILE), 'utf8');
    const f = new JsonFields(join(delta, HEADER_FILE), 'CORRUPT_DELTA', 'the delta is damaged, copy it again');
    expect(() => checkReaderVersion(f, f.object(f.parse(text), 'header'), 2, `${delta} uses delta format`)).toThrow(
      /uses delta format v3 .*reads up to v2: upgrade deltaimg/,
    );
  });

  it('refuses a base whose assembled source file changed, naming it, and writes nothing', async () => {
    const base = join(work, 'base-changed');
    await cp(pair.a, base, { recursive: true });
    const victim = join(base, sources[1]!.path);
    const text = await readFile(victim, 'utf8');
    await writeFile(victim, text.replace('return', 'RETURN'));
    const out = join(work, 'out-changed');
    const msg = await expectApplyRefused(applyDelta(base, delta, out, { pool }), 'WRONG_SOURCE', out, work);
    expect(msg).toContain(`/${sources[1]!.path} does not match`);
  });

  it.each(['directory', 'symlink', 'fifo', 'missing'] as const)(
    'refuses an assembled source that is a %s, without waiting on it',
    async (kind) => {
      const base = join(work, `base-${kind}`);
      await cp(pair.a, base, { recursive: true });
      const victim = join(base, sources[0]!.path);
      await rm(victim);
      if (kind === 'directory') await mkdir(victim);
      if (kind === 'symlink') await symlink(join(pair.a, sources[0]!.path), victim);
      if (kind === 'fifo') fsext().mknod(Buffer.from(victim), 'fifo', 0o644, 0, 0);
      const out = join(work, `out-${kind}`);
      const msg = await expectApplyRefused(applyDelta(base, delta, out, { pool }), 'WRONG_SOURCE', out, work);
      // A missing entry shifts the v3 runs over the source: refused where they stop lining up with it.
      if (kind === 'missing') expect(msg).toMatch(/does not match the delta's base|fewer entries than the delta's base/);
      else expect(msg).toContain(`/${sources[0]!.path}`);
    },
  );

  it('streams an assembled source too large for memory (sources over 32 MiB), checking every part', async () => {
    const dir = join(work, 'large');
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    await mkdir(join(a, 'parts'), { recursive: true });
    await mkdir(join(b, 'dist'), { recursive: true });
    const parts = [0, 1, 2].map((i) => noise(11.5 * 1024 * 1024, 7 + i));
    for (const [i, p] of parts.entries()) await writeFile(join(a, 'parts', `part${i}.bin`), p);
    const target = Buffer.concat([
      parts[2]!.subarray(5_000_000, 5_300_000),
      noise(2000, 1),
      parts[0]!.subarray(0, 300_000),
      parts[1]!.subarray(9e6, 9.3e6),
    ]);
    await writeFile(join(b, 'dist', 'joined.bin'), target);
    // New bytes (b.bin, shipped whole) and a file made of them and of slices of every part (a.bin):
    // a.bin's source is b.bin, restored first though later in path order, and the three parts.
    const fresh = noise(200_000, 42);
    const made = Buffer.concat([parts[0]!.subarray(2e6, 2.1e6), fresh, parts[1]!.subarray(3e6, 3.1e6), parts[2]!.subarray(4e6, 4.1e6)]);
    await writeFile(join(b, 'dist', 'a.bin'), made);
    await writeFile(join(b, 'dist', 'b.bin'), fresh);
    const largeDelta = join(dir, 'delta');
    await diffTrees(a, b, largeDelta, { pool });
    const records = await recordsOf(a, largeDelta);
    expect(assembledSources(records, 'dist/joined.bin')).toHaveLength(3);
    expect(
      assembledSources(records, 'dist/a.bin')
        .map((s) => `${s.target ? 'target' : 'source'} ${s.path}`)
        .sort(),
    ).toEqual(['source parts/part0.bin', 'source parts/part1.bin', 'source parts/part2.bin', 'target dist/b.bin']);
    const out = join(dir, 'out');
    await applyDelta(a, largeDelta, out, { pool });
    expect(sha256(await readFile(join(out, 'dist', 'joined.bin')))).toBe(sha256(target));
    expect(sha256(await readFile(join(out, 'dist', 'a.bin')))).toBe(sha256(made));
    await writeFile(join(a, 'parts', 'part1.bin'), Buffer.concat([parts[1]!, Buffer.from('x')]));
    const refused = join(dir, 'out-refused');
    const msg = await expectApplyRefused(applyDelta(a, largeDelta, refused, { pool }), 'WRONG_SOURCE', refused, dir);
    expect(msg).toContain('/parts/part1.bin does not match');
  });
});

describe('hostile assembled records', () => {
  const SRC_FILES = Array.from({ length: 40 }, (_, i) => ({ path: `s/f${i}.js`, text: jsModule(i, 5) }));
  let src: string;

  beforeAll(async () => {
    src = join(work, 'hostile-src');
    await mkdir(join(src, 's'), { recursive: true });
    for (const f of SRC_FILES) await writeFile(join(src, f.path), f.text);
  });

  const part = (i: number): AssembledSource => ({
    path: rel(SRC_FILES[i]!.path),
    size: Buffer.byteLength(SRC_FILES[i]!.text),
    sha256: sha256(SRC_FILES[i]!.text),
  });

  async function refuse(name: string, sources: AssembledSource[], code: 'CORRUPT_DELTA' | 'HOSTILE_PATH'): Promise<string> {
    const delta = join(work, `hostile-${name}`);
    const file: DeltaRecord = {
      path: rel('out.js'),
      kind: 'file',
      meta: META,
      size: 10,
      sha256: sha256('0123456789'),
      content: { op: 'assembled', sources, brotli: false, payload: { inline: Buffer.from('not a vcdiff') } },
    };
    await craftDelta(delta, [rootRecord(), file]);
    const out = join(work, `hostile-out-${name}`);
    return expectApplyRefused(applyDelta(src, delta, out, { pool }), code, out, work);
  }

  it('refuses more than 32 sources', async () => {
    expect(
      await refuse(
        'many',
        SRC_FILES.slice(0, 33).map((_, i) => part(i)),
        'CORRUPT_DELTA',
      ),
    ).toMatch(/more than 32 sources/);
  });

  it('refuses declared sizes over the bound, and an empty source', async () => {
    const huge = [
      { ...part(0), size: 40 * 1024 * 1024 },
      { ...part(1), size: 40 * 1024 * 1024 },
    ];
    expect(await refuse('huge', huge, 'CORRUPT_DELTA')).toMatch(/over 67108864 bytes in all/);
    expect(await refuse('empty', [{ ...part(0), size: 0 }], 'CORRUPT_DELTA')).toMatch(/empty assembled source/);
  });

  it('refuses target parts that are no file restored first: missing, another size, assembled from the target itself', async () => {
    const hello = { path: rel('a.js'), size: 5, sha256: sha256('hello'), target: true as const };
    const raw: DeltaRecord = {
      path: rel('a.js'),
      kind: 'file',
      meta: META,
      size: 5,
      sha256: sha256('hello'),
      content: { op: 'raw', payload: { inline: Buffer.from('hello') } },
    };
    const assembled = (path: string, sources: AssembledSource[]): DeltaRecord => ({
      path: rel(path),
      kind: 'file',
      meta: META,
      size: 10,
      sha256: sha256('0123456789'),
      content: { op: 'assembled', sources, brotli: false, payload: { inline: Buffer.from('not a vcdiff') } },
    });
    const cases: [string, DeltaRecord[]][] = [
      ['missing', [rootRecord(), assembled('b.js', [hello])]],
      ['other-size', [rootRecord(), raw, assembled('b.js', [{ ...hello, size: 6 }])]],
      ['other-sha', [rootRecord(), raw, assembled('b.js', [{ ...hello, sha256: sha256('HELLO') }])]],
      ['itself', [rootRecord(), assembled('b.js', [{ ...hello, path: rel('b.js'), size: 10, sha256: sha256('0123456789') }])]],
      [
        'chain',
        [
          rootRecord(),
          raw,
          assembled('b.js', [hello]),
          assembled('c.js', [{ ...hello, path: rel('b.js'), size: 10, sha256: sha256('0123456789') }]),
        ],
      ],
    ];
    for (const [name, records] of cases) {
      const delta = join(work, `hostile-target-${name}`);
      await craftDelta(delta, records);
      const out = join(work, `hostile-target-out-${name}`);
      const msg = await expectApplyRefused(applyDelta(src, delta, out, { pool }), 'CORRUPT_DELTA', out, work);
      expect(msg, name).toMatch(/is not a file this delta restores first/);
    }
  });

  it('refuses an unknown escape, and a part taken as JSON text over 1 MiB', async () => {
    const odd = JSON.parse(JSON.stringify({ ...part(0), escape: 'xml' }));
    expect(await refuse('escape', [odd], 'CORRUPT_DELTA')).toMatch(/unknown escape/);
    const big: AssembledSource = { ...part(0), size: 2 * 1024 * 1024, escape: 'json' };
    expect(await refuse('escaped-big', [big], 'CORRUPT_DELTA')).toMatch(/JSON text over 1048576 bytes/);
  });

  it('refuses a source named twice, none at all, and a source path leaving the tree', async () => {
    expect(await refuse('twice', [part(0), part(1), part(0)], 'CORRUPT_DELTA')).toMatch(/names one assembled source twice/);
    expect(await refuse('none', [], 'CORRUPT_DELTA')).toMatch(/without sources/);
    expect(await refuse('dotdot', [part(0), { ...part(1), path: rel('s/../../etc/passwd') }], 'HOSTILE_PATH')).toMatch(/'\.\.' component/);
    expect(await refuse('absolute', [{ ...part(1), path: rel('/etc/passwd') }], 'HOSTILE_PATH')).toMatch(/absolute/);
  });
});
