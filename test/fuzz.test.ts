/**
 * Fuzzing the readers of outside data with fixed seeds (the same cases every run): tree deltas
 * damaged blindly and with every checksum recomputed, `.dimg` files damaged blindly and in their
 * header, VCDIFF and bsdiff payloads. Every case must end in the exact output or a one-line
 * DeltaimgError; never another error (a crash: exit 70 on the CLI), a hang (each case has a
 * deadline), a wrong output, a leftover beside the output or a write outside it. Most cases
 * run in-process for speed; a few go through the CLI for the exit codes.
 *
 * On a failure the message names the case (family, seed, mutation) to reproduce it alone.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, cpSync, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { brotliCompressSync, brotliDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDelta, loadRecords } from '../src/delta/apply.js';
import { diffTrees } from '../src/delta/diff.js';
import { DirDigests, TreeDigest } from '../src/delta/digest.js';
import { ENTRIES_FILE, HEADER_FILE, type DeltaRecord } from '../src/delta/format.js';
import { RunsDecoder } from '../src/delta/runs.js';
import type { Entry } from '../src/tree/entry.js';
import { bsdiffDecodeInMemory, bsdiffEncode } from '../src/bsdiff/index.js';
import { parseImageRef } from '../src/image/ref.js';
import { applyImageDelta, diffImages, verifyImage } from '../src/imagedelta/index.js';
import { scanTree } from '../src/tree/scan.js';
import { DeltaimgError } from '../src/util/errors.js';
import { mulberry32 } from './helpers/random.mjs';
import { decodeInMemory, VcdiffPool } from '../src/vcdiff/index.js';
import { smallImagePair, seededBytes } from './helpers/small-images.js';
import { fsext } from '../src/tree/fsext.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const CASE_DEADLINE_MS = 15_000;

const pick = <T>(r: () => number, items: readonly T[]): T => items[Math.floor(r() * items.length)]!;
const int = (r: () => number, n: number) => Math.floor(r() * n);
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Blind damage to bytes: bit flips, a cut, an inserted or removed run, an overwritten run. */
function damageBytes(r: () => number, data: Buffer): { bytes: Buffer; what: string } {
  if (data.length === 0) return { bytes: Buffer.from([int(r, 256)]), what: 'one byte into an empty file' };
  const at = int(r, data.length);
  switch (int(r, 5)) {
    case 0: {
      const out = Buffer.from(data);
      const flips = 1 + int(r, 3);
      for (let i = 0; i < flips; i++) out[int(r, out.length)]! ^= 1 << int(r, 8);
      return { bytes: out, what: `${flips} bit flips` };
    }
    case 1:
      return { bytes: data.subarray(0, at), what: `cut at ${at}` };
    case 2: {
      const run = seededBytes(`ins${at}`, 1 + int(r, 64));
      return { bytes: Buffer.concat([data.subarray(0, at), run, data.subarray(at)]), what: `${run.length} bytes inserted at ${at}` };
    }
    case 3: {
      const n = 1 + int(r, 64);
      return { bytes: Buffer.concat([data.subarray(0, at), data.subarray(at + n)]), what: `${n} bytes removed at ${at}` };
    }
    default: {
      const out = Buffer.from(data);
      const n = Math.min(1 + int(r, 16), out.length - at);
      out.fill(pick(r, [0, 0xff, 0x41]), at, at + n);
      return { bytes: out, what: `${n} bytes overwritten at ${at}` };
    }
  }
}

/** Values a hostile record field might hold. */
const HOSTILE_VALUES: unknown[] = [
  -1,
  0,
  1,
  0o7777,
  0o170777,
  2 ** 32 - 1,
  2 ** 32 + 1000,
  2 ** 53,
  1e30,
  0.5,
  '9',
  '',
  '..',
  '/etc/passwd',
  'a/../b',
  'x'.repeat(5000),
  null,
  true,
  [],
  {},
  { b64: 'Li4=' },
  '-1',
  '100000000000000000000000000000',
  'user.\u20ac',
  [['user.a', '!!']],
  [['trusted.x', 'AA==']],
];

/** Record fields worth changing, by where they sit. */
const RECORD_FIELDS = [
  'path',
  'kind',
  'mode',
  'uid',
  'gid',
  'mtime',
  'xattrs',
  'size',
  'sha256',
  'target',
  'linkTo',
  'major',
  'minor',
  'content',
  // Format v3 (runs): an mtime as a difference, runs of kept and dropped source entries, directory digests.
  'dt',
  'keep',
  'drop',
  'dirs',
];
const CONTENT_FIELDS = ['op', 'from', 'fromSha256', 'blob', 'inline', 'packed', 'brotli', 'segmented'];

let work: string;
let pool: VcdiffPool;
let counter = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'deltaimg-fuzz-'));
  pool = new VcdiffPool();
});
afterAll(async () => {
  await pool?.close();
  await rm(work, { recursive: true, force: true });
});

/** Settles `p` or fails the case as a hang. */
async function withDeadline<T>(p: Promise<T>, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: did not settle within ${CASE_DEADLINE_MS} ms (hang)`)), CASE_DEADLINE_MS);
  });
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** The outcome every case must have: success (checked by the caller) or a one-line DeltaimgError. */
function checkRefusal(err: unknown, name: string): void {
  if (!(err instanceof DeltaimgError)) throw new Error(`${name}: not a clean refusal: ${err instanceof Error ? err.stack : String(err)}`);
  if (err.message.includes('\n')) throw new Error(`${name}: a refusal of more than one line: ${err.message}`);
}

/**
 * A small pair with one entry of each kind and each content op: unchanged, moved, VCDIFF
 * (inline and blob), bsdiff, brotli, raw, assembled, symlink, hardlink, fifo, xattrs, set-id bits, and as
 * root a device node. Small, so that each of hundreds of cases applies in milliseconds.
 */
async function smallTreePair(a: string, b: string): Promise<void> {
  const { writeFile, mkdir, symlink, link, chmod } = await import('node:fs/promises');
  const text = (n: number) => Array.from({ length: n }, (_, i) => `line ${i}: some configuration value ${(i * 7919) % 1000}\n`).join('');
  const binary = seededBytes('exe', 120_000);
  const editedBinary = Buffer.from(binary);
  // Words shifted by one constant at irregular spacing (relocated addresses): bsdiff beats VCDIFF here.
  for (let i = 1000, s = 7; i < editedBinary.length - 8; s = (s * 1103515245 + 12345) & 0x7fffffff, i += 6 + (s % 23)) {
    editedBinary.writeUInt32LE((editedBinary.readUInt32LE(i) + 0x1040) >>> 0, i);
  }
  for (const [root, v] of [
    [a, 'a'],
    [b, 'b'],
  ] as const) {
    await mkdir(join(root, 'etc/conf.d'), { recursive: true });
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await writeFile(join(root, 'etc/same'), 'unchanged\n');
    await writeFile(join(root, 'etc/small.conf'), v === 'a' ? text(20) : text(20).replace('line 3:', 'line three:'));
    await writeFile(join(root, 'etc/big.conf'), v === 'a' ? text(3000) : text(3000).replace(/line 1(\d)00:/g, 'LINE 1$100:'));
    await writeFile(join(root, 'usr/bin/tool'), v === 'a' ? binary : editedBinary);
    await writeFile(join(root, v === 'a' ? 'etc/old-name' : 'etc/conf.d/new-name'), text(50));
    await symlink('../etc/same', join(root, 'usr/bin/link'));
    await link(join(root, 'etc/same'), join(root, 'etc/same.hardlink'));
    fsext().mknod(Buffer.from(join(root, 'usr/fifo')), 'fifo', 0o644, 0, 0);
    fsext().lsetxattr(Buffer.from(join(root, 'etc/same')), 'user.note', Buffer.from(v));
  }
  await writeFile(join(b, 'usr/bin/new-random'), seededBytes('new', 9000));
  // Lines of the old big.conf: assembled from it. Words nowhere in the old tree: brotli.
  await writeFile(join(b, 'usr/share.txt'), text(400));
  await writeFile(
    join(b, 'usr/words.txt'),
    Array.from({ length: 300 }, (_, i) => `word ${(i * 104729) % 9973} of the new notes\n`).join(''),
  );
  await writeFile(join(b, 'usr/tiny'), 'tiny new file\n');
  await chmod(join(b, 'usr/bin/tool'), 0o4755);
  if (process.getuid?.() === 0) {
    fsext().mknod(Buffer.from(join(b, 'usr/null')), 'char', 0o666, 1, 3);
    fsext().lsetxattr(
      Buffer.from(join(b, 'usr/bin/tool')),
      'security.capability',
      Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    );
  }
}

describe('tree deltas', () => {
  let src: string;
  let delta: string;
  let expectedDigest: string;
  /** Full sha256 by 16-digit prefix, to recompute the digest of records that hold only prefixes. */
  const fullSha = new Map<string, string>();
  /** The source's entries (as apply scans them) and its files' sha256 by path: what kept entries take. */
  let srcEntries: Entry[];
  const srcSha = new Map<string, string>();

  beforeAll(async () => {
    src = join(work, 'tree-a');
    const dst = join(work, 'tree-b');
    await smallTreePair(src, dst);
    delta = join(work, 'tree-delta');
    const header = await diffTrees(src, dst, delta, { pool });
    expectedDigest = header.target.treeSha256;
    for (const e of (await scanTree(dst, { hash: true })).entries)
      if (e.kind === 'file' && e.sha256) fullSha.set(e.sha256.slice(0, 16), e.sha256);
    srcEntries = (await scanTree(src, { hash: true })).entries;
    for (const e of srcEntries) if (e.kind === 'file' && e.sha256) srcSha.set(e.path, e.sha256);
    // The cases reach every decoder only if the delta uses every content op.
    const { records } = await loadRecords(src, delta, header);
    const ops = new Set(records.flatMap((rec) => (rec.kind === 'file' ? [rec.content.op] : [])));
    expect([...ops].sort()).toEqual(['assembled', 'brotli', 'bsdiff', 'copy', 'raw', 'same', 'vcdiff']);
  }, 120_000);

  /** Applies `damaged` into a fresh OUT beside nothing else; success must rebuild a tree whose digest is `digest`. */
  async function applyCase(damaged: string, digest: string, name: string): Promise<'applied' | 'refused'> {
    const parent = join(work, `case-${counter++}`);
    mkdirSync(parent);
    const out = join(parent, 'out');
    try {
      await withDeadline(applyDelta(src, damaged, out, { pool }), name);
    } catch (err) {
      checkRefusal(err, name);
      const left = readdirSync(parent);
      if (left.length) throw new Error(`${name}: refused but left ${left.join(', ')}`);
      return 'refused';
    }
    const got = new TreeDigest();
    for (const e of (await scanTree(out, { hash: true })).entries) got.add(e);
    if (got.digest() !== digest) throw new Error(`${name}: exit 0 with a tree that differs from the delta's target`);
    const left = readdirSync(parent).filter((n) => n !== 'out');
    if (left.length) throw new Error(`${name}: left ${left.join(', ')} beside the output`);
    rmSync(parent, { recursive: true, force: true });
    return 'applied';
  }

  function copyOfDelta(): string {
    const copy = join(work, `delta-${counter++}`);
    cpSync(delta, copy, { recursive: true });
    return copy;
  }

  function deltaFiles(dir: string): string[] {
    const files = [HEADER_FILE, ENTRIES_FILE];
    for (const b of readdirSync(join(dir, 'blobs'))) files.push(join('blobs', b));
    return files;
  }

  it('300 blind mutations of a delta directory: refused, or applied exactly', async () => {
    const outcomes = { applied: 0, refused: 0 };
    for (let seed = 1; seed <= 300; seed++) {
      const r = mulberry32(seed);
      const dir = copyOfDelta();
      const files = deltaFiles(dir);
      let what: string;
      if (int(r, 10) === 0 && files.length > 3) {
        // Two blobs swapped: each still named by a sha256, now of the other's bytes.
        const blobs = files.filter((f) => f.startsWith('blobs'));
        const [x, y] = [pick(r, blobs), pick(r, blobs)];
        const [bx, by] = [readFileSync(join(dir, x)), readFileSync(join(dir, y))];
        writeFileSync(join(dir, x), by);
        writeFileSync(join(dir, y), bx);
        what = `swap ${x} and ${y}`;
      } else {
        const file = pick(r, files);
        const damage = damageBytes(r, readFileSync(join(dir, file)));
        writeFileSync(join(dir, file), damage.bytes);
        what = `${file}: ${damage.what}`;
      }
      outcomes[await applyCase(dir, expectedDigest, `blind seed ${seed} (${what})`)]++;
      rmSync(dir, { recursive: true, force: true });
    }
    expect(outcomes.refused).toBeGreaterThan(250);
  }, 300_000);

  /**
   * Rewrites the entries file after `edit` changed its JSON lines, with every checksum recomputed
   * (entries sha256, rawBytes, count, and where the lines still expand against the source, the
   * target tree digest and the directory digests line).
   */
  function recompute(dir: string, edited: string[]): string {
    const header = JSON.parse(readFileSync(join(dir, HEADER_FILE), 'utf8'));
    let lines = edited;
    try {
      const decoder = new RunsDecoder(srcEntries, src);
      const records: DeltaRecord[] = [];
      edited.filter((l) => !l.startsWith('{"dirs"')).forEach((l, i) => decoder.decode(l, i + 1, (rec) => records.push(rec)));
      decoder.finish();
      const digest = new TreeDigest();
      const dirs = new DirDigests();
      for (const rec of records) {
        if (rec.kind === 'file' && rec.sha256 === '') rec.sha256 = srcSha.get(rec.path) ?? '';
        if (rec.kind === 'file' && rec.sha256.length === 16) rec.sha256 = fullSha.get(rec.sha256) ?? rec.sha256;
        digest.add(rec);
        dirs.add(rec);
      }
      header.target.treeSha256 = digest.digest();
      const dirsLine = JSON.stringify({ dirs: Buffer.concat(dirs.digests().map((d) => d.digest)).toString('hex') });
      lines = [...edited.filter((l) => !l.startsWith('{"dirs"')), dirsLine];
    } catch {
      // Lines that do not expand: apply refuses them before the digests matter.
    }
    const text = Buffer.from(lines.map((l) => `${l}\n`).join(''));
    const stored = brotliCompressSync(text);
    writeFileSync(join(dir, ENTRIES_FILE), stored);
    header.entries = { ...header.entries, sha256: sha(stored), rawBytes: text.length, count: lines.length };
    writeFileSync(join(dir, HEADER_FILE), JSON.stringify(header));
    return header.target.treeSha256;
  }

  it('300 record mutations with every checksum recomputed: refused, or applied as the records say', async () => {
    const original = brotliDecompressSync(readFileSync(join(delta, ENTRIES_FILE)))
      .toString('utf8')
      .split('\n')
      .filter(Boolean);
    const outcomes = { applied: 0, refused: 0 };
    for (let seed = 1; seed <= 300; seed++) {
      const r = mulberry32(1000 + seed);
      const dir = copyOfDelta();
      const lines = [...original];
      const n = 1 + int(r, lines.length - 1);
      let what: string;
      switch (int(r, 6)) {
        case 0: {
          const [i, j] = [int(r, lines.length), int(r, lines.length)];
          [lines[i], lines[j]] = [lines[j]!, lines[i]!];
          what = `lines ${i} and ${j} swapped`;
          break;
        }
        case 1:
          lines.splice(n, 1);
          what = `line ${n} removed`;
          break;
        case 2:
          lines.splice(n, 0, lines[int(r, lines.length)]!);
          what = `a duplicate line at ${n}`;
          break;
        default: {
          const rec = JSON.parse(lines[n]!) as Record<string, unknown>;
          const inContent = typeof rec.content === 'object' && rec.content !== null && int(r, 2) === 0;
          const target = inContent ? (rec.content as Record<string, unknown>) : rec;
          const field = pick(r, inContent ? CONTENT_FIELDS : RECORD_FIELDS);
          const value = int(r, 4) === 0 ? undefined : pick(r, HOSTILE_VALUES);
          if (value === undefined) delete target[field];
          else target[field] = value;
          lines[n] = JSON.stringify(rec);
          what = `line ${n}: ${inContent ? 'content.' : ''}${field} = ${JSON.stringify(value)?.slice(0, 40)}`;
        }
      }
      const digest = recompute(dir, lines);
      outcomes[await applyCase(dir, digest, `recomputed seed ${seed} (${what})`)]++;
      rmSync(dir, { recursive: true, force: true });
    }
    expect(outcomes.refused).toBeGreaterThan(100);
  }, 300_000);

  it('a few cases through the CLI: exit 0 or 1 with one line, never 70', async () => {
    for (let seed = 1; seed <= 6; seed++) {
      const r = mulberry32(5000 + seed);
      const dir = copyOfDelta();
      const file = pick(r, deltaFiles(dir));
      const damage = damageBytes(r, readFileSync(join(dir, file)));
      writeFileSync(join(dir, file), damage.bytes);
      const out = join(work, `cli-out-${seed}`);
      const name = `cli seed ${seed} (${file}: ${damage.what})`;
      const res = await run('node', [CLI, 'apply', '-q', src, dir, '--out', out], { timeout: CASE_DEADLINE_MS }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number | null; killed: boolean; stderr: string }) => ({ code: e.killed ? 'killed' : e.code, stderr: e.stderr }),
      );
      expect([0, 1], `${name}: ${res.stderr}`).toContain(res.code);
      if (res.code === 1) {
        expect(res.stderr.trim().split('\n'), name).toHaveLength(1);
        expect(existsSync(out), name).toBe(false);
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});

describe('.dimg files', () => {
  let aTar: string;
  let dimg: string;
  let members: { name: string; offset: number; size: number }[];

  beforeAll(async () => {
    const dir = join(work, 'images');
    mkdirSync(dir);
    const pair = await smallImagePair(dir);
    aTar = pair.aTar;
    dimg = join(dir, 'good.dimg');
    await diffImages(parseImageRef(`docker-archive:${aTar}`), parseImageRef(`docker-archive:${pair.bTar}`), dimg);
    // Member data offsets, to aim some damage inside the header and the tree deltas.
    const bytes = readFileSync(dimg);
    members = [];
    for (let at = 0; at + 512 <= bytes.length;) {
      const name = bytes
        .subarray(at, at + 100)
        .toString('latin1')
        .replace(/\0.*$/s, '');
      const size = parseInt(
        bytes
          .subarray(at + 124, at + 136)
          .toString('latin1')
          .replace(/\0.*$/s, '')
          .trim() || '0',
        8,
      );
      if (!name) break;
      members.push({ name, offset: at + 512, size });
      at += 512 + Math.ceil(size / 512) * 512;
    }
  }, 120_000);

  async function applyDimgCase(file: string, name: string): Promise<'applied' | 'refused'> {
    const parent = join(work, `dimg-case-${counter++}`);
    mkdirSync(parent);
    const out = join(parent, 'out');
    try {
      await withDeadline(applyImageDelta(parseImageRef(`docker-archive:${aTar}`), file, parseImageRef(`oci:${out}`)), name);
    } catch (err) {
      checkRefusal(err, name);
      const left = readdirSync(parent);
      if (left.length) throw new Error(`${name}: refused but left ${left.join(', ')}`);
      return 'refused';
    }
    const verified = await verifyImage(parseImageRef(`oci:${out}`), { against: dimg });
    if (!verified.ok) throw new Error(`${name}: exit 0 with an image that is not B`);
    rmSync(parent, { recursive: true, force: true });
    return 'applied';
  }

  it('150 blind mutations (anywhere, and aimed inside members): refused, or B exactly', async () => {
    const good = readFileSync(dimg);
    const outcomes = { applied: 0, refused: 0 };
    for (let seed = 1; seed <= 150; seed++) {
      const r = mulberry32(2000 + seed);
      let bytes: Buffer;
      let what: string;
      if (int(r, 2) === 0) {
        const m = pick(r, members);
        const at = m.offset + int(r, Math.max(1, m.size));
        bytes = Buffer.from(good);
        bytes[at]! ^= 1 << int(r, 8);
        what = `a bit flipped in ${m.name} at ${at}`;
      } else {
        const d = damageBytes(r, good);
        bytes = d.bytes;
        what = d.what;
      }
      const file = join(work, `fuzz-${seed}.dimg`);
      writeFileSync(file, bytes);
      outcomes[await applyDimgCase(file, `dimg blind seed ${seed} (${what})`)]++;
      rmSync(file);
    }
    expect(outcomes.refused).toBeGreaterThan(100);
  }, 300_000);

  it('100 header field mutations: refused, or B exactly', async () => {
    const good = readFileSync(dimg);
    const header = JSON.parse(good.subarray(members[0]!.offset, members[0]!.offset + members[0]!.size).toString('utf8'));
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, at: (string | number)[]) => {
      paths.push(at);
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...at, i]));
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...at, k]);
    };
    walk(header, []);
    const rest = good.subarray(members[1]!.offset - 512);
    for (let seed = 1; seed <= 100; seed++) {
      const r = mulberry32(3000 + seed);
      const h = JSON.parse(JSON.stringify(header));
      const path = pick(
        r,
        paths.filter((p) => p.length > 0),
      );
      let parent = h;
      for (const k of path.slice(0, -1)) parent = parent[k];
      const value = int(r, 4) === 0 ? undefined : pick(r, HOSTILE_VALUES);
      if (value === undefined) delete parent[path.at(-1)!];
      else parent[path.at(-1)!] = value;
      const text = Buffer.from(JSON.stringify(h));
      // A new header member of the right size, then the other members as they were.
      const block = Buffer.alloc(512);
      good.copy(block, 0, members[0]!.offset - 512, members[0]!.offset);
      block.write(text.length.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
      block.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of block) sum += b;
      block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
      const padded = Buffer.alloc(Math.ceil(text.length / 512) * 512);
      text.copy(padded);
      const file = join(work, `header-${seed}.dimg`);
      writeFileSync(file, Buffer.concat([block, padded, rest]));
      await applyDimgCase(file, `dimg header seed ${seed} (${path.join('.')} = ${JSON.stringify(value)?.slice(0, 40)})`);
      rmSync(file);
    }
  }, 300_000);
});

describe('engine payloads', () => {
  it('1000 mutated VCDIFF deltas: the exact target or a one-line refusal', async () => {
    const dir = join(work, 'vcdiff');
    mkdirSync(dir);
    const source = seededBytes('vsrc', 60_000);
    const target = Buffer.concat([
      source.subarray(0, 20_000),
      Buffer.from('inserted text'),
      source.subarray(20_100),
      seededBytes('vnew', 3000),
    ]);
    writeFileSync(join(dir, 'source'), source);
    writeFileSync(join(dir, 'target'), target);
    await pool.encodeFile(join(dir, 'source'), join(dir, 'target'), join(dir, 'delta'), { secondary: 'djw' });
    await pool.encodeFile(join(dir, 'source'), join(dir, 'target'), join(dir, 'delta-plain'), { secondary: 'none' });
    const deltas = [readFileSync(join(dir, 'delta')), readFileSync(join(dir, 'delta-plain'))];
    const outcomes = { exact: 0, refused: 0 };
    for (let seed = 1; seed <= 1000; seed++) {
      const r = mulberry32(4000 + seed);
      const { bytes, what } = damageBytes(r, deltas[seed % 2]!);
      const name = `vcdiff seed ${seed} (${seed % 2 ? 'none' : 'djw'}: ${what})`;
      const outPath = join(dir, `out-${seed}`);
      const { openSync, closeSync } = await import('node:fs');
      const fd = openSync(outPath, 'w');
      try {
        const result = await withDeadline(
          decodeInMemory(
            { source, delta: bytes, outFd: fd, deltaName: 'delta', sourceName: 'source', outName: 'out' },
            { maxOutputBytes: target.length },
          ),
          name,
        );
        if (result.outputSha256 !== sha(target)) throw new Error(`${name}: decoded without error to different bytes`);
        outcomes.exact++;
      } catch (err) {
        if ((err as Error).message.startsWith(name)) throw err;
        checkRefusal(err, name);
        outcomes.refused++;
      } finally {
        closeSync(fd);
        rmSync(outPath);
      }
    }
    expect(outcomes.refused).toBeGreaterThan(900);
  }, 300_000);

  it('1000 mutated bsdiff patches: the exact target or a one-line refusal', async () => {
    const dir = join(work, 'bsdiff');
    mkdirSync(dir);
    const source = seededBytes('bsrc', 50_000);
    const target = Buffer.from(source);
    for (let i = 0; i < target.length; i += 97) target[i] = (target[i]! + 1) & 0xff;
    writeFileSync(join(dir, 'source'), source);
    writeFileSync(join(dir, 'target'), target);
    await bsdiffEncode(join(dir, 'source'), join(dir, 'target'), join(dir, 'patch'));
    const patch = readFileSync(join(dir, 'patch'));
    const outcomes = { exact: 0, refused: 0 };
    for (let seed = 1; seed <= 1000; seed++) {
      const r = mulberry32(6000 + seed);
      const { bytes, what } = damageBytes(r, patch);
      const name = `bsdiff seed ${seed} (${what})`;
      const hash = createHash('sha256');
      let written = 0;
      try {
        const result = bsdiffDecodeInMemory(
          source,
          bytes,
          (chunk) => {
            written += chunk.length;
            if (written > target.length) throw new Error(`${name}: wrote past the declared size`);
            hash.update(chunk);
          },
          { targetSize: target.length },
        );
        if (result.sha256 !== sha(target) || hash.digest('hex') !== sha(target))
          throw new Error(`${name}: decoded without error to different bytes`);
        outcomes.exact++;
      } catch (err) {
        if ((err as Error).message.startsWith(name)) throw err;
        checkRefusal(err, name);
        outcomes.refused++;
      }
    }
    expect(outcomes.refused).toBeGreaterThan(900);
  }, 300_000);
});
