/**
 * Layer tars split into skeleton + content tree and joined back byte for byte: tars written by
 * GNU tar in every format (long and non-UTF-8 names, hardlinks, symlinks, fifos, devices,
 * sparse files, xattrs), by tar-stream and by the Docker engine, and hostile or odd ones
 * (trailing garbage, duplicate and conflicting paths, '../' paths, truncation, a base-256
 * size field). Then the base root filesystem (whiteouts, opaque dirs, hardlinks, a hostile
 * layer) and the skeleton encoding with and without references.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdtempSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { execa } from 'execa';
import tar from 'tar-stream';
import {
  DEFAULT_INLINE_MAX,
  decodeSkeleton,
  encodeSkeleton,
  extractRootfs,
  joinTar,
  normalizeMemberPath,
  parseNumeric,
  splitTar,
  type SplitOptions,
  type SplitResult,
} from '../src/tarsplit/index.js';
import { DeltaimgError } from '../src/util/errors.js';
import { xorByte } from './helpers/bytes.js';
import { buildImage, describeDocker, docker, ImageNames, importTree } from './helpers/docker.js';
import { makeRichTree, pseudoRandomBytes } from './helpers/trees.js';

const asRoot = process.getuid?.() === 0;
let work: string;
let rich: string;
let counter = 0;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'deltaimg-tarsplit-'));
  rich = join(work, 'rich');
  await makeRichTree(rich);
});
afterAll(async () => {
  await fsp.rm(work, { recursive: true, force: true });
});

function fresh(what: string): string {
  return join(work, `${what}-${++counter}`);
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

interface RoundTrip {
  split: SplitResult;
  skeleton: string;
  content: string;
}

/**
 * split -> join -> the same bytes (sha256 and size), checked against an independent hash of the
 * file. Files of every size go to the content tree unless opts say otherwise.
 */
async function roundTrip(tarPath: string, opts: SplitOptions = { inlineMax: 0 }): Promise<RoundTrip> {
  const base = fresh('rt');
  const skeleton = `${base}.skel`;
  const content = `${base}.content`;
  const split = await splitTar(createReadStream(tarPath), skeleton, content, opts);
  const want = await sha256Of(tarPath);
  expect(split.tarSha256).toBe(want);
  expect(split.tarSize).toBe((await fsp.stat(tarPath)).size);
  const joined = `${base}.joined.tar`;
  const result = await joinTar(skeleton, content, createWriteStream(joined));
  expect(result).toEqual({ sha256: want, size: split.tarSize });
  expect(await sha256Of(joined)).toBe(want);
  await fsp.rm(joined);
  return { split, skeleton, content };
}

async function gnuTar(dir: string, args: string[], opts: { allowWarnings?: boolean } = {}): Promise<string> {
  const out = fresh('tar') + '.tar';
  const r = await execa('tar', ['-C', dir, '-cf', out, ...args, '.'], { reject: false, all: true });
  // Exit 2 = some names could not be stored in this format (ustar/v7 and the long names); the rest is written.
  if (r.exitCode !== 0 && !(opts.allowWarnings && r.exitCode === 2)) throw new Error(`tar failed: ${r.all}`);
  return out;
}

/** What tar-stream's pack.entry takes: a header with only the name required. */
type TarEntryHeader = Partial<tar.Header> & Pick<tar.Header, 'name'>;

async function tarStream(entries: Array<{ header: TarEntryHeader; body?: Buffer }>): Promise<string> {
  const out = fresh('ts') + '.tar';
  const pack = tar.pack();
  const written = new Promise<void>((resolve, reject) => pack.pipe(createWriteStream(out)).on('finish', resolve).on('error', reject));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => pack.entry(e.header, e.body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await written;
  return out;
}

/**
 * Every regular file below `dir` as rel path (latin1) -> sha256. With onlyFilesAndDirs (our
 * outputs), anything else found below `dir` fails the test.
 */
async function filesOf(dir: string, opts: { onlyFilesAndDirs?: boolean } = { onlyFilesAndDirs: true }): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const root = Buffer.from(dir, 'utf8');
  const at = (rel: string): Buffer => (rel ? Buffer.concat([root, Buffer.from(`/${rel}`, 'latin1')]) : root);
  const walk = async (rel: string): Promise<void> => {
    for (const e of await fsp.readdir(at(rel), { withFileTypes: true, encoding: 'buffer' })) {
      const child = (rel ? `${rel}/` : '') + e.name.toString('latin1');
      if (e.isDirectory()) await walk(child);
      else if (e.isFile())
        out.set(
          child,
          createHash('sha256')
            .update(await fsp.readFile(at(child)))
            .digest('hex'),
        );
      else if (opts.onlyFilesAndDirs) expect.fail(`only files and dirs expected in ${dir}, found ${child}`);
    }
  };
  await walk('');
  return out;
}

describe('header fields', () => {
  it('parses octal and GNU base-256 size fields', () => {
    expect(parseNumeric(Buffer.from('00000001750\0', 'latin1'))).toBe(1000);
    expect(parseNumeric(Buffer.from('     1750 \0\0', 'latin1'))).toBe(1000);
    expect(parseNumeric(Buffer.alloc(12))).toBe(0);
    expect(parseNumeric(Buffer.from('0000000175x\0', 'latin1'))).toBeUndefined();
    const big = Buffer.alloc(12);
    big[0] = 0x80;
    big.writeBigUInt64BE(9n * 1024n ** 3n + 5n, 4); // 9 GiB + 5: more than 11 octal digits hold
    expect(parseNumeric(big)).toBe(9 * 1024 ** 3 + 5);
    const negative = Buffer.alloc(12, 0xff);
    expect(parseNumeric(negative)).toBeUndefined();
    const huge = Buffer.alloc(12, 0xff);
    huge[0] = 0x80; // 2^88 - 1: not a safe integer
    expect(parseNumeric(huge)).toBeUndefined();
  });

  it('normalizes member paths and refuses unsafe ones', () => {
    expect(normalizeMemberPath('./etc/passwd')).toBe('etc/passwd');
    expect(normalizeMemberPath('/etc/')).toBe('etc');
    expect(normalizeMemberPath('.//./usr/bin')).toBe('usr/bin');
    expect(normalizeMemberPath('caf\xe9/\xff')).toBe('caf\xe9/\xff');
    for (const bad of ['../evil', 'a/../../evil', 'a//b', './', '.', '', 'a/./b', 'nul\0byte'])
      expect(normalizeMemberPath(bad)).toBeUndefined();
  });
});

describe('split + join of GNU tar archives', () => {
  for (const format of ['gnu', 'oldgnu', 'posix', 'ustar', 'v7'] as const) {
    it(`--format=${format} of a tree with every entry kind and odd names is rebuilt exactly`, async () => {
      const long = format === 'gnu' || format === 'oldgnu' || format === 'posix';
      const tarPath = await gnuTar(rich, [`--format=${format}`, '--numeric-owner'], { allowWarnings: !long });
      const { split, content } = await roundTrip(tarPath);
      expect(split.files).toBeGreaterThan(5);
      expect(split.inlineFiles).toBe(0);
      // The content tree holds the tree's regular files at their own paths, non-UTF-8 and long names included.
      const source = await filesOf(rich, {});
      const placed = await filesOf(content);
      expect(placed.size).toBe(split.files);
      // Content files and dirs carry no split-time noise for the tree engine to record.
      const { stdout } = await execa('find', [content, '-newermt', '@1']);
      expect(stdout).toBe('');
      for (const [path, sha] of placed) expect(source.get(path), path).toBe(sha);
      if (long) {
        expect([...placed.keys()].some((p) => p.length > 255)).toBe(true);
        expect([...placed.keys()].some((p) => /[\x80-\xff]/.test(p))).toBe(true);
      }
    });
  }

  it(`by default files of at most ${DEFAULT_INLINE_MAX} bytes stay in the skeleton`, async () => {
    const tarPath = await gnuTar(rich, ['--format=posix']);
    const { split, content } = await roundTrip(tarPath, {});
    const all = await roundTrip(tarPath);
    expect(split.files).toBeGreaterThan(0);
    expect(split.files + split.inlineFiles).toBe(all.split.files);
    const { stdout } = await execa('find', [content, '-type', 'f', '-size', `-${DEFAULT_INLINE_MAX + 1}c`]);
    expect(stdout).toBe('');
    expect(split.inlineBytes + split.contentBytes).toBe(all.split.contentBytes);
  });

  it('hardlinks, symlinks, fifos and device nodes stay in the skeleton', async () => {
    const dir = fresh('nodes');
    await fsp.mkdir(join(dir, 'sub'), { recursive: true });
    await fsp.writeFile(join(dir, 'sub/file'), pseudoRandomBytes(1, 5000));
    await fsp.link(join(dir, 'sub/file'), join(dir, 'hard'));
    await fsp.symlink('sub/file', join(dir, 'sym'));
    await execa('mkfifo', [join(dir, 'fifo')]);
    if (asRoot) await execa('mknod', [join(dir, 'null'), 'c', '1', '3']);
    const { split, content } = await roundTrip(await gnuTar(dir, ['--format=posix']));
    expect(split.files).toBe(1);
    expect([...(await filesOf(content)).keys()]).toEqual(['sub/file']);
  });

  it('pax headers with xattrs are rebuilt exactly', async () => {
    const dir = fresh('xattr');
    await fsp.mkdir(dir);
    await fsp.writeFile(join(dir, 'caps'), pseudoRandomBytes(2, 3000));
    await execa('setfattr', ['-n', 'user.note', '-v', 'hello', join(dir, 'caps')]);
    if (asRoot)
      await execa('setfattr', ['-n', 'security.capability', '-v', '0x0100000200200000000000000000000000000000', join(dir, 'caps')]);
    const tarPath = await gnuTar(dir, ['--xattrs', '--xattrs-include=*', '--format=posix']);
    const listing = await execa('tar', ['--xattrs', '--xattrs-include=*', '-tvvf', tarPath]);
    expect(listing.stdout).toContain('caps');
    const { split } = await roundTrip(tarPath);
    expect(split.files).toBe(1);
  });

  for (const format of ['gnu', 'oldgnu', 'posix'] as const) {
    it(`sparse files (tar -S --format=${format}) are rebuilt exactly`, async () => {
      const dir = fresh('sparse');
      await fsp.mkdir(dir);
      const fh = await fsp.open(join(dir, 'holes'), 'w');
      // Many data islands: old GNU headers hold 4 map entries, the rest go to extension blocks.
      for (let i = 0; i < 30; i++) await fh.write(pseudoRandomBytes(i + 10, 700), 0, 700, i * 1024 * 1024);
      await fh.truncate(40 * 1024 * 1024);
      await fh.close();
      await fsp.writeFile(join(dir, 'plain'), pseudoRandomBytes(3, 10_000));
      const { split, content } = await roundTrip(await gnuTar(dir, ['-S', `--format=${format}`]));
      // The sparse member's payload is a map plus data islands, not file content: it stays in the skeleton.
      expect([...(await filesOf(content)).keys()]).toEqual(['plain']);
      expect(split.files).toBe(1);
    });
  }
});

describe('split + join of other writers and odd archives', () => {
  it('a tar written by tar-stream (pax long names, a file per type)', async () => {
    const tarPath = await tarStream([
      { header: { name: 'dir', type: 'directory', mode: 0o755 } },
      { header: { name: 'dir/file.txt', mode: 0o644, mtime: new Date(1_700_000_000_000) }, body: Buffer.from('hello\n') },
      { header: { name: `dir/${'x'.repeat(150)}/${'y'.repeat(150)}`, mode: 0o600 }, body: pseudoRandomBytes(4, 1024) },
      { header: { name: 'dir/link', type: 'symlink', linkname: 'file.txt' } },
      { header: { name: 'dir/hard', type: 'link', linkname: 'dir/file.txt' } },
      { header: { name: 'empty', mode: 0o644 }, body: Buffer.alloc(0) },
    ]);
    const { split, content } = await roundTrip(tarPath);
    expect(split.files).toBe(2);
    expect((await filesOf(content)).has(`dir/${'x'.repeat(150)}/${'y'.repeat(150)}`)).toBe(true);
  });

  it('extra zero blocks, a 10 KiB record and trailing garbage are kept verbatim', async () => {
    const tarPath = await gnuTar(rich, ['--format=gnu']);
    await fsp.appendFile(tarPath, Buffer.concat([Buffer.alloc(512 * 7), Buffer.from('trailing garbage, not a tar\n')]));
    const { split } = await roundTrip(tarPath);
    expect(split.files).toBeGreaterThan(5);
  });

  it('duplicate paths, a file under a file and a dir over a file keep the later ones in the skeleton', async () => {
    const tarPath = await tarStream([
      { header: { name: 'a' }, body: Buffer.from('first a') },
      { header: { name: 'a' }, body: Buffer.from('second a') },
      { header: { name: 'a/b' }, body: Buffer.from('a file below the file a') },
      { header: { name: 'd/e' }, body: Buffer.from('e') },
      { header: { name: 'd' }, body: Buffer.from('a file where the dir d is') },
      { header: { name: './d/f' }, body: Buffer.from('f') },
      { header: { name: `d/${'n'.repeat(300)}` }, body: Buffer.from('a name Linux cannot hold') },
    ]);
    const { split, content } = await roundTrip(tarPath);
    expect(await filesOf(content)).toEqual(
      new Map([
        ['a', createHash('sha256').update('first a').digest('hex')],
        ['d/e', createHash('sha256').update('e').digest('hex')],
        ['d/f', createHash('sha256').update('f').digest('hex')],
      ]),
    );
    expect(split).toMatchObject({ files: 3, inlineFiles: 4 });
  });

  it("'../' and absolute paths are rebuilt exactly and never written outside the content tree", async () => {
    const tarPath = await tarStream([
      { header: { name: '../evil' }, body: Buffer.from('evil') },
      { header: { name: 'a/../../evil2' }, body: Buffer.from('evil2') },
      { header: { name: '/abs/file' }, body: Buffer.from('absolute, lands below the root') },
      { header: { name: 'ok' }, body: Buffer.from('ok') },
    ]);
    const before = await fsp.readdir(work);
    const { split, content } = await roundTrip(tarPath);
    expect([...(await filesOf(content)).keys()].sort()).toEqual(['abs/file', 'ok']);
    expect(split.inlineFiles).toBe(2);
    const after = await fsp.readdir(work);
    expect(after.filter((n) => !before.includes(n)).every((n) => n.startsWith('rt-'))).toBe(true);
    expect(existsSync(join(work, 'evil')) || existsSync(join(work, 'evil2'))).toBe(false);
  });

  it('a base-256 size field (as GNU tar writes for files of 8 GiB and more) is read', async () => {
    const body = pseudoRandomBytes(5, 3000);
    const tarPath = await tarStream([{ header: { name: 'big-ish', size: body.length }, body }]);
    // Rewrite the size field in base-256 and fix the checksum: GNU tar must still list it.
    const bytes = await fsp.readFile(tarPath);
    bytes.fill(0, 124, 136);
    bytes[124] = 0x80;
    bytes.writeUInt32BE(body.length, 132);
    bytes.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += bytes[i]!;
    bytes.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    await fsp.writeFile(tarPath, bytes);
    const listing = await execa('tar', ['-tvf', tarPath]);
    expect(listing.stdout).toMatch(/ 3000 .*big-ish/);
    const { split, content } = await roundTrip(tarPath);
    expect(split).toMatchObject({ files: 1, contentBytes: 3000 });
    expect(await fsp.readFile(join(content, 'big-ish'))).toEqual(body);
  });

  it('a truncated tar and a stream that is not a tar are kept exactly', async () => {
    const full = await gnuTar(rich, ['--format=posix']);
    const bytes = await fsp.readFile(full);
    const cut = fresh('cut') + '.tar';
    await fsp.writeFile(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6) + 100));
    await roundTrip(cut);
    const notTar = fresh('nottar');
    await fsp.writeFile(notTar, pseudoRandomBytes(6, 10_000));
    expect((await roundTrip(notTar)).split.files).toBe(0);
  });
});

describe('joinTar failures', () => {
  async function splitRich(): Promise<RoundTrip> {
    return roundTrip(await gnuTar(rich, ['--format=posix']));
  }

  it('a missing or resized content file fails naming its path', async () => {
    const { skeleton, content } = await splitRich();
    const victim = [...(await filesOf(content)).keys()].find((p) => /^[ -~]{1,60}$/.test(p))!;
    await fsp.appendFile(join(content, victim), 'x');
    const err1 = await joinTar(skeleton, content, new PassThrough().resume()).catch((e: unknown) => e);
    expect(err1).toBeInstanceOf(DeltaimgError);
    expect((err1 as DeltaimgError).code).toBe('VERIFY_FAILED');
    expect((err1 as Error).message).toContain(victim);
    expect((err1 as Error).message).toMatch(/tar header says/);
    await fsp.rm(join(content, victim));
    const err2 = await joinTar(skeleton, content, new PassThrough().resume()).catch((e: unknown) => e);
    expect((err2 as DeltaimgError).code).toBe('VERIFY_FAILED');
    expect((err2 as Error).message).toMatch(new RegExp(`${victim.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is missing`));
  });

  it('a content tree with a symlinked directory or file is refused, not read through', async () => {
    const tarPath = await tarStream([
      { header: { name: 'etc/secret' }, body: Buffer.from('in the tar') },
      { header: { name: 'top' }, body: Buffer.from('top') },
    ]);
    const { skeleton, content } = await roundTrip(tarPath);
    const outside = fresh('outside');
    await fsp.mkdir(outside);
    await fsp.writeFile(join(outside, 'secret'), 'from outside');
    await fsp.rm(join(content, 'etc'), { recursive: true });
    await fsp.symlink(outside, join(content, 'etc'));
    const err = await joinTar(skeleton, content, new PassThrough().resume()).catch((e: unknown) => e);
    expect((err as DeltaimgError).code).toBe('HOSTILE_PATH');
    await fsp.rm(join(content, 'etc'));
    await fsp.mkdir(join(content, 'etc'));
    await fsp.symlink(join(outside, 'secret'), join(content, 'etc/secret'));
    const err2 = await joinTar(skeleton, content, new PassThrough().resume()).catch((e: unknown) => e);
    expect((err2 as DeltaimgError).code).toBe('HOSTILE_PATH');
    expect((err2 as Error).message).toContain('etc/secret is a symlink');
  });

  it('an output stream that fails makes the join fail, not the process', async () => {
    const { skeleton, content } = await splitRich();
    let writes = 0;
    const failing = new Writable({
      highWaterMark: 1024,
      write(_chunk, _enc, done) {
        done(++writes > 2 ? new Error('ENOSPC: no space left on device') : null);
      },
    });
    const err = await joinTar(skeleton, content, failing).catch((e: unknown) => e);
    expect((err as DeltaimgError).code).toBe('IO');
    expect((err as Error).message).toMatch(/ENOSPC/);
  });

  it('a truncated or foreign skeleton is refused', async () => {
    const { skeleton, content } = await splitRich();
    const bytes = await fsp.readFile(skeleton);
    await fsp.writeFile(skeleton, bytes.subarray(0, bytes.length - 10));
    const err = await joinTar(skeleton, content, new PassThrough().resume()).catch((e: unknown) => e);
    expect((err as DeltaimgError).code).toBe('CORRUPT_DELTA');
    await fsp.writeFile(skeleton, 'not a skeleton at all, just text that is long enough to fill a header......');
    const err2 = await joinTar(skeleton, content, new PassThrough().resume()).catch((e: unknown) => e);
    expect((err2 as Error).message).toMatch(/not a deltaimg layer skeleton/);
  });
});

describe('extractRootfs', () => {
  type Spec = Array<{ header: TarEntryHeader; body?: string }>;
  const layerOf = (spec: Spec) => async () => {
    const path = await tarStream(spec.map((e) => ({ header: e.header, body: e.body === undefined ? undefined : Buffer.from(e.body) })));
    return createReadStream(path);
  };
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');

  it('applies three layers with whiteouts, opaque dirs and hardlinks', async () => {
    const l1: Spec = [
      { header: { name: 'etc', type: 'directory' } },
      { header: { name: 'etc/passwd' }, body: 'root:x:0:0' },
      { header: { name: 'etc/hosts' }, body: '127.0.0.1 localhost' },
      { header: { name: 'opt/app/one' }, body: 'one' },
      { header: { name: 'opt/app/two' }, body: 'two' },
      { header: { name: 'usr/bin/tool' }, body: 'tool v1' },
      { header: { name: 'usr/bin/alias', type: 'link', linkname: 'usr/bin/tool' } },
      { header: { name: 'lib', type: 'symlink', linkname: 'usr/lib' } },
    ];
    const l2: Spec = [
      { header: { name: 'etc/.wh.hosts' } },
      { header: { name: 'opt/app', type: 'directory' } },
      { header: { name: 'opt/app/.wh..wh..opq' } },
      { header: { name: 'opt/app/three' }, body: 'three' },
      { header: { name: 'usr/bin/tool' }, body: 'tool v2' }, // replaces one name of the hardlink pair
    ];
    const l3: Spec = [
      { header: { name: 'etc/passwd', type: 'symlink', linkname: '/dev/null' } }, // a file replaced by a symlink: gone
      { header: { name: 'srv/data' }, body: 'data' },
      { header: { name: 'srv/copy', type: 'link', linkname: './srv/data' } },
      { header: { name: 'opt/.wh.missing' } },
    ];
    const dir = fresh('rootfs');
    const skeletons = [1, 2, 3].map((i) => `${dir}-skel-${i}`);
    const counts = await extractRootfs([layerOf(l1), layerOf(l2), layerOf(l3)], dir, { skeletons });
    const files = await filesOf(dir);
    expect(files).toEqual(
      new Map([
        ['opt/app/three', sha('three')],
        ['usr/bin/tool', sha('tool v2')],
        ['usr/bin/alias', sha('tool v1')],
        ['srv/data', sha('data')],
        ['srv/copy', sha('data')],
      ]),
    );
    expect(counts).toEqual({ files: 5, bytes: 5 + 7 + 7 + 4 + 4 });
    expect((await fsp.stat(join(dir, 'srv/copy'))).ino).toBe((await fsp.stat(join(dir, 'srv/data'))).ino);
    expect(existsSync(join(dir, 'etc'))).toBe(true);
    expect(existsSync(join(dir, 'lib'))).toBe(false);
    // The skeletons written on the way are the ones splitTar writes for the same layers.
    for (const [i, spec] of [l1, l2, l3].entries()) {
      const own = fresh('own-skel');
      await splitTar(await layerOf(spec)(), own, fresh('own-content'));
      expect(await fsp.readFile(skeletons[i]!)).toEqual(await fsp.readFile(own));
    }
  });

  it('a regular-file member whose name ends in / is an old-style directory', async () => {
    const lower: Spec = [{ header: { name: 'olddir/y' }, body: 'y' }];
    const spec: Spec = [
      { header: { name: 'olddir/', type: 'file' } }, // must not replace the directory (and y) with a file
      { header: { name: 'olddir/x' }, body: 'x' },
    ];
    const dir = fresh('rootfs-v7');
    await extractRootfs([layerOf(lower), layerOf(spec)], dir);
    expect(await filesOf(dir)).toEqual(
      new Map([
        ['olddir/y', sha('y')],
        ['olddir/x', sha('x')],
      ]),
    );
    const { split } = await roundTrip(
      await tarStream(spec.map((e) => ({ header: e.header, body: e.body === undefined ? undefined : Buffer.from(e.body) }))),
    );
    expect(split.files).toBe(1);
  });

  it('a hostile layer cannot write outside the directory', async () => {
    const outer = fresh('hostile');
    await fsp.mkdir(outer);
    const dir = join(outer, 'rootfs');
    const hostile: Spec = [
      { header: { name: '../x' }, body: 'escaped' },
      { header: { name: 'a/../../y' }, body: 'escaped' },
      { header: { name: 'up', type: 'symlink', linkname: '..' } },
      { header: { name: 'up/z' }, body: 'through the symlink' },
      { header: { name: 'abs', type: 'symlink', linkname: outer } },
      { header: { name: 'abs/w' }, body: 'through an absolute symlink' },
      { header: { name: 'h', type: 'link', linkname: '../../etc/passwd' } },
      { header: { name: '.wh...' } }, // would whiteout '..'
      { header: { name: 'sub/.wh...' } },
      { header: { name: 'sub/.wh..' } },
      { header: { name: `long/${'n'.repeat(300)}` }, body: 'a name Linux cannot hold' },
      { header: { name: 'fine' }, body: 'fine' },
    ];
    await extractRootfs([layerOf(hostile)], dir);
    expect((await fsp.readdir(outer)).sort()).toEqual(['rootfs']);
    expect(await filesOf(dir)).toEqual(
      new Map([
        ['up/z', sha('through the symlink')],
        ['abs/w', sha('through an absolute symlink')],
        ['fine', sha('fine')],
      ]),
    );
    expect((await fsp.lstat(join(dir, 'up'))).isDirectory()).toBe(true);
  });

  it('a real GNU tar of a tree round-trips its regular files', async () => {
    const dir = fresh('rootfs-rich');
    const tarPath = await gnuTar(rich, ['--format=posix']);
    await extractRootfs([async () => createReadStream(tarPath)], dir);
    const got = await filesOf(dir);
    const want = await filesOf(rich, {});
    expect(got).toEqual(want);
  });
});

describe('skeleton encoding', () => {
  let aSkel: string;
  let bSkel: string;

  beforeAll(async () => {
    // B: the rich tree with a few files edited and mtimes moved, as an upgrade does.
    const a = (await roundTrip(await gnuTar(rich, ['--format=posix', '--numeric-owner']), {})).skeleton;
    const bTree = fresh('rich-b');
    await execa('cp', ['-a', rich, bTree]);
    const { stdout } = await execa('find', [bTree, '-type', 'f', '-size', '+1k', '-print0']);
    for (const [i, f] of stdout.split('\0').filter(Boolean).slice(0, 5).entries()) {
      await fsp.appendFile(f, `edit ${i}`);
      await fsp.utimes(f, 1_800_000_000 + i, 1_800_000_000 + i);
    }
    bSkel = (await roundTrip(await gnuTar(bTree, ['--format=posix', '--numeric-owner']), {})).skeleton;
    aSkel = a;
  });

  async function decodes(encoded: string, refs: string[]): Promise<void> {
    const out = fresh('decoded');
    await decodeSkeleton(encoded, refs, out);
    expect(await fsp.readFile(out)).toEqual(await fsp.readFile(bSkel));
  }

  it('alone (brotli) and against the base skeletons (vcdiff), both decode exactly', async () => {
    const alone = fresh('enc-alone');
    const r1 = await encodeSkeleton(bSkel, [], alone);
    expect(r1.method).toBe('brotli');
    await decodes(alone, []);
    const against = fresh('enc-ref');
    // An unrelated reference first: the references are used concatenated, in order.
    const other = fresh('other-ref');
    await fsp.writeFile(other, pseudoRandomBytes(7, 50_000));
    const r2 = await encodeSkeleton(bSkel, [other, aSkel], against);
    expect(r2.method).toMatch(/^vcdiff/);
    expect(r2.bytes).toBeLessThan(r1.bytes);
    await decodes(against, [other, aSkel]);
    const raw = (await fsp.stat(bSkel)).size;
    console.log(`[tarsplit] rich-tree skeleton: raw ${raw} B, alone ${r1.bytes} B (${r1.method}), against A ${r2.bytes} B (${r2.method})`);
  });

  it('wrong references and a damaged blob are refused', async () => {
    const against = fresh('enc-ref2');
    await encodeSkeleton(bSkel, [aSkel], against);
    const err = await decodeSkeleton(against, [bSkel], fresh('x')).catch((e: unknown) => e);
    expect((err as DeltaimgError).code).toBe('WRONG_SOURCE');
    const err2 = await decodeSkeleton(against, [], fresh('x')).catch((e: unknown) => e);
    expect((err2 as DeltaimgError).code).toBe('WRONG_SOURCE');

    const alone = fresh('enc-alone2');
    await encodeSkeleton(bSkel, [], alone);
    const bytes = await fsp.readFile(alone);
    xorByte(bytes, bytes.length >> 1, 0x55);
    await fsp.writeFile(alone, bytes);
    const out = fresh('x');
    const err3 = await decodeSkeleton(alone, [], out).catch((e: unknown) => e);
    expect((err3 as DeltaimgError).code).toBe('CORRUPT_DELTA');
    expect(existsSync(out)).toBe(false);
  });
});

describeDocker('split + join of a layer the engine wrote (docker save)', () => {
  const images = new ImageNames();
  afterAll(() => images.removeAll());

  it('the layer.tar of an imported tree rebuilds to its diff_id', async () => {
    const ref = images.name('tarsplit');
    await importTree(rich, ref);
    const archive = fresh('saved') + '.tar';
    await docker(['save', '-o', archive, ref]);
    const members = await unpackArchive(archive, fresh('saved-dir'));
    const manifest = JSON.parse((await fsp.readFile(join(members, 'manifest.json'))).toString()) as Array<{
      Config: string;
      Layers: string[];
    }>;
    const config = JSON.parse((await fsp.readFile(join(members, manifest[0]!.Config))).toString()) as { rootfs: { diff_ids: string[] } };
    const layer = join(members, manifest[0]!.Layers[0]!);
    const { split, content } = await roundTrip(layer);
    expect(split.tarSha256).toBe(config.rootfs.diff_ids[0]);
    expect(split.files).toBeGreaterThan(5);
    const placed = await filesOf(content);
    const source = await filesOf(rich, {});
    for (const [path, sha] of placed) expect(source.get(path), path).toBe(sha);
  });

  it('the layers of an image built by BuildKit (COPY of a tree) rebuild to their diff_ids', async () => {
    const context = fresh('context');
    await fsp.mkdir(join(context, 'app/lib'), { recursive: true });
    await fsp.writeFile(join(context, 'app/lib/data.bin'), pseudoRandomBytes(8, 100_000));
    await fsp.writeFile(join(context, 'app/readme'), 'hello\n');
    await fsp.writeFile(Buffer.from(`${context}/app/caf\xe9`, 'latin1'), 'latin1 name\n');
    await fsp.writeFile(join(context, `app/${'n'.repeat(120)}`), 'long name\n');
    await fsp.symlink('lib/data.bin', join(context, 'app/link'));
    const ref = images.name('tarsplit-built');
    const built = await buildImage('FROM scratch\nCOPY app /app/\nCOPY app/readme /etc/motd\n', ref, [], context);
    expect(built.exitCode, built.all).toBe(0);
    const archive = fresh('built') + '.tar';
    await docker(['save', '-o', archive, ref]);
    const members = await unpackArchive(archive, fresh('built-dir'));
    const manifest = JSON.parse((await fsp.readFile(join(members, 'manifest.json'))).toString()) as Array<{
      Config: string;
      Layers: string[];
    }>;
    const config = JSON.parse((await fsp.readFile(join(members, manifest[0]!.Config))).toString()) as { rootfs: { diff_ids: string[] } };
    expect(manifest[0]!.Layers.length).toBe(2);
    const contents: string[][] = [];
    for (const [i, layer] of manifest[0]!.Layers.entries()) {
      const { split, content } = await roundTrip(join(members, layer));
      expect(split.tarSha256).toBe(config.rootfs.diff_ids[i]);
      contents.push([...(await filesOf(content)).keys()].sort());
    }
    expect(contents).toEqual([['app/caf\xe9', 'app/lib/data.bin', `app/${'n'.repeat(120)}`, 'app/readme'], ['etc/motd']]);
  });
});

async function unpackArchive(archive: string, dir: string): Promise<string> {
  await fsp.mkdir(dir, { recursive: true });
  await execa('tar', ['-C', dir, '-xf', archive]);
  return dir;
}
