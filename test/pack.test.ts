/**
 * The pack (format v3): new files that share their vocabulary are compressed together, cost less
 * than compressed one by one, and come back exact; a damaged, resized or overrun pack is refused
 * in one line with nothing written.
 */
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, constants as zc } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDelta } from '../src/delta/apply.js';
import { diffTrees } from '../src/delta/diff.js';
import { BLOBS_DIR, HEADER_FILE, PACK_MAX_BYTES, type DeltaHeader } from '../src/delta/format.js';
import { compareTrees } from '../src/tree/compare.js';
import { scanTree } from '../src/tree/scan.js';
import { VcdiffPool } from '../src/vcdiff/index.js';
import { META, craftDelta, rel, rootRecord } from './helpers/craft-delta.js';
import { expectApplyRefused } from './helpers/expect-refused.js';
import { mulberry32 } from './helpers/random.mjs';

const WORDS = ['const', 'return', 'export', 'function', 'request', 'response', 'handler', 'options', 'config', 'value'];
WORDS.push('timeout', 'headers', 'promise', 'resolve', 'reject', 'buffer', 'stream', 'encode', 'decode', 'params');

/** Source-like text: lines of words from one vocabulary, as the files of one package share theirs. */
function moduleText(seed: number, lines: number): string {
  const next = mulberry32(seed);
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const words = Array.from({ length: 3 + Math.floor(next() * 8) }, () => WORDS[Math.floor(next() * WORDS.length)]!);
    out.push(`${'  '.repeat(Math.floor(next() * 3))}${words.join(' ')};`);
  }
  return out.join('\n') + '\n';
}

let work: string;
let pool: VcdiffPool;
let a: string;
let b: string;
let delta: string;
let header: DeltaHeader;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'deltaimg-pack-'));
  pool = new VcdiffPool();
  a = join(work, 'a');
  b = join(work, 'b');
  for (let f = 0; f < 20; f++) {
    await mkdir(join(a, 'lib'), { recursive: true });
    await writeFile(join(a, 'lib', `old${f}.js`), moduleText(f, 40));
  }
  await cp(a, b, { recursive: true, preserveTimestamps: true });
  // A new package of 80 modules (1-5 KB each), and one old module edited.
  await mkdir(join(b, 'node_modules', 'newpkg'), { recursive: true });
  for (let f = 0; f < 80; f++) await writeFile(join(b, 'node_modules', 'newpkg', `m${f}.js`), moduleText(1000 + f, 20 + (f % 60)));
  await writeFile(join(b, 'lib', 'old3.js'), moduleText(3, 40).replace('return', 'yield'));
  delta = join(work, 'delta');
  header = await diffTrees(a, b, delta, { pool });
}, 120_000);

afterAll(async () => {
  await pool?.close();
  await rm(work, { recursive: true, force: true });
});

describe('the pack', () => {
  it('holds the new files together, costs less than compressing them one by one, and restores exactly', async () => {
    expect(header.pack).toBeDefined();
    expect(header.minReaderVersion).toBe(3);
    const pack = header.pack!;
    const packBytes = (await readFile(join(delta, BLOBS_DIR, pack.blob))).length;
    let alone = 0;
    for (let f = 0; f < 80; f++) {
      const text = await readFile(join(b, 'node_modules', 'newpkg', `m${f}.js`));
      alone += brotliCompressSync(text, { params: { [zc.BROTLI_PARAM_QUALITY]: 11 } }).length;
    }
    expect(packBytes).toBeLessThan(alone * 0.8);
    const out = join(work, 'out');
    await applyDelta(a, delta, out, { pool });
    const [restored, expected] = await Promise.all([scanTree(out, { hash: true }), scanTree(b, { hash: true })]);
    expect(compareTrees(restored, expected)).toEqual([]);
  });

  it('refuses a damaged pack', async () => {
    const damaged = join(work, 'delta-damaged');
    await cp(delta, damaged, { recursive: true });
    const blob = join(damaged, BLOBS_DIR, header.pack!.blob);
    const bytes = await readFile(blob);
    bytes[bytes.length >> 1]! ^= 0x40;
    await writeFile(blob, bytes);
    const out = join(work, 'out-damaged');
    const message = await expectApplyRefused(applyDelta(a, damaged, out, { pool }), 'CORRUPT_DELTA', out, work);
    expect(message).toMatch(/the pack .*damaged/);
  });

  it('refuses a pack whose size is not the one its header gives', async () => {
    const resized = join(work, 'delta-resized');
    await cp(delta, resized, { recursive: true });
    const h = JSON.parse(await readFile(join(resized, HEADER_FILE), 'utf8')) as DeltaHeader;
    h.pack!.bytes -= 1;
    await writeFile(join(resized, HEADER_FILE), JSON.stringify(h));
    const out = join(work, 'out-resized');
    const message = await expectApplyRefused(applyDelta(a, resized, out, { pool }), 'CORRUPT_DELTA', out, work);
    expect(message).toMatch(/pack/);
    h.pack!.bytes = PACK_MAX_BYTES + 1;
    await writeFile(join(resized, HEADER_FILE), JSON.stringify(h));
    const huge = await expectApplyRefused(applyDelta(a, resized, out, { pool }), 'CORRUPT_DELTA', out, work);
    expect(huge).toMatch(/pack\.bytes/);
  });

  it('refuses a record whose packed payload lies outside the pack', async () => {
    const crafted = join(work, 'delta-overrun');
    const packRaw = Buffer.from('twenty bytes of pack');
    const packBlob = brotliCompressSync(packRaw);
    const sha = createHash('sha256').update(packBlob).digest('hex');
    await craftDelta(
      crafted,
      [
        rootRecord(),
        {
          path: rel('f'),
          kind: 'file',
          meta: META,
          size: 100,
          sha256: '0'.repeat(64),
          content: { op: 'raw', payload: { packed: { at: 10, size: 100 } } },
        },
      ],
      (h) => {
        h.pack = { blob: sha, bytes: packRaw.length };
      },
    );
    await writeFile(join(crafted, BLOBS_DIR, sha), packBlob);
    const out = join(work, 'out-overrun');
    const message = await expectApplyRefused(applyDelta(a, crafted, out, { pool }), 'CORRUPT_DELTA', out, work);
    expect(message).toMatch(/outside the pack/);
  });

  it('is left out with --whole-records (for readers before v3)', async () => {
    const whole = join(work, 'delta-whole');
    const h = await diffTrees(a, b, whole, { pool, wholeRecords: true });
    expect(h.pack).toBeUndefined();
    expect(h.minReaderVersion).toBeLessThan(3);
  });
});
