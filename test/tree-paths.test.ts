/**
 * RelPath helpers, hostile-path rejection, the fsext addon against the real kernel, and
 * createNode's refusal to write through anything but real directories.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp, lstatSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Metadata } from '../src/tree/entry.js';
import { fsext, majorOf, minorOf } from '../src/tree/fsext.js';
import { assertSafeRelPath, baseName, displayPath, joinRel, parentOf, relPath, relPathFromUtf8, toFsPath } from '../src/tree/paths.js';
import { assertParentIsDirectory, createNode } from '../src/tree/write.js';
import { newRestoreReport } from '../src/tree/meta.js';
import { DeltaimgError } from '../src/util/errors.js';
import { rp } from './helpers/trees.js';

const META: Metadata = { mode: 0o644, uid: 0, gid: 0, mtimeNs: 1_700_000_000_000_000_000n, xattrs: [] };

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'deltaimg-tree-paths-'));
});
afterAll(async () => {
  await fsp.rm(work, { recursive: true, force: true });
});

describe('RelPath helpers', () => {
  it('joins roots and byte-held paths into exact bytes', () => {
    expect(toFsPath('/out', rp('a/caf\xe9'))).toEqual(Buffer.from([...Buffer.from('/out/a/caf'), 0xe9]));
    expect(toFsPath('/out/', rp('x')).toString()).toBe('/out/x');
    expect(toFsPath('/out', rp('')).toString()).toBe('/out');
    expect(toFsPath(Buffer.from('/r\xff', 'latin1'), rp('b'))).toEqual(Buffer.from('/r\xff/b', 'latin1'));
  });

  it('converts bytes and user text to RelPaths', () => {
    expect(relPath(Buffer.from([0x61, 0xff, 0x2f, 0x62]))).toBe('a\xff/b');
    expect(relPath('etc/passwd')).toBe('etc/passwd');
    expect(() => relPath('\u20ac')).toThrow(DeltaimgError);
    expect(relPathFromUtf8('/usr/café')).toBe('usr/caf\xc3\xa9');
  });

  it('splits paths', () => {
    expect(parentOf(rp('a/b/c'))).toBe('a/b');
    expect(parentOf(rp('top'))).toBe('');
    expect(parentOf(rp(''))).toBe('');
    expect(baseName(rp('a/b/c'))).toBe('c');
    expect(joinRel(rp(''), Buffer.from('x'))).toBe('x');
    expect(joinRel(rp('d'), 'x')).toBe('d/x');
  });

  it('displays UTF-8 names, escapes invalid bytes and control characters', () => {
    expect(displayPath(rp('usr/caf\xc3\xa9'))).toBe('/usr/café');
    expect(displayPath(rp('odd/\xff\xfe'))).toBe('/odd/\\xff\\xfe');
    expect(displayPath(rp('new\nline\ttab'))).toBe('/new\\nline\\ttab');
    expect(displayPath(rp(''))).toBe('/');
  });
});

describe('assertSafeRelPath', () => {
  const hostile: [string, RegExp][] = [
    ['/etc/passwd', /absolute/],
    ['..', /'\.\.'/],
    ['../x', /'\.\.'/],
    ['a/../../x', /'\.\.'/],
    ['a/..', /'\.\.'/],
    ['.', /'\.'/],
    ['a/./b', /'\.'/],
    ['a//b', /empty component/],
    ['a/', /empty component/],
    ['a\0b', /NUL/],
    ['a/\u20ac', /byte string/],
  ];
  it.each(hostile)('rejects %j', (path, reason) => {
    let caught: unknown;
    try {
      assertSafeRelPath(path, 'delta entry');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DeltaimgError);
    const err = caught as DeltaimgError;
    expect(err.code).toBe('HOSTILE_PATH');
    expect(err.message).toMatch(/^delta entry has a hostile path/);
    expect(err.message).toMatch(reason);
    expect(err.message).not.toContain('\n');
  });

  it.each(['', 'a', 'a/b/c', '...', '..a', 'a..', '.hidden', 'caf\xe9/\xff', 'with space/new\nline'])('accepts %j', (path) => {
    expect(assertSafeRelPath(path, 'delta entry')).toBe(path);
  });
});

describe('fsext addon', () => {
  it('sets, lists and reads xattrs without following symlinks, on non-UTF-8 paths', async () => {
    const file = Buffer.concat([Buffer.from(`${work}/x`), Buffer.from([0xff, 0xfe])]);
    await fsp.writeFile(file, 'x');
    const ext = fsext();
    const value = Buffer.from([0, 1, 2, 255, 0]);
    ext.lsetxattr(file, 'user.b', value);
    ext.lsetxattr(file, 'user.a', Buffer.alloc(0));
    expect(ext.llistxattr(file).sort()).toEqual(['user.a', 'user.b']);
    expect(ext.lgetxattr(file, 'user.b')).toEqual(value);
    expect(ext.lgetxattr(file, 'user.a')).toEqual(Buffer.alloc(0));

    const link = Buffer.from(`${work}/link-to-x`);
    await fsp.symlink(file, link);
    expect(ext.llistxattr(link)).toEqual([]);
    // user.* xattrs are not allowed on symlinks: proves the call did not follow to the file.
    expect(() => ext.lsetxattr(link, 'user.c', value)).toThrow(expect.objectContaining({ code: 'EPERM' }));
  });

  it('throws Node-style errors with code, syscall and path', () => {
    const missing = Buffer.from(`${work}/missing`);
    let caught: NodeJS.ErrnoException | undefined;
    try {
      fsext().lgetxattr(missing, 'user.x');
    } catch (err) {
      caught = err as NodeJS.ErrnoException;
    }
    expect(caught?.code).toBe('ENOENT');
    expect(caught?.errno).toBe(-2);
    expect(caught?.syscall).toBe('lgetxattr');
    expect(caught?.path).toEqual(missing);
    expect(caught?.message).toMatch(/^ENOENT: .*lgetxattr/);
    expect(() => fsext().lgetxattr(Buffer.from(`${work}/x\xff\xfe`, 'latin1'), 'user.none')).toThrow(
      expect.objectContaining({ code: 'ENODATA' }),
    );
  });

  it('makes fifos and devices with full major/minor numbers', () => {
    const fifo = Buffer.from(`${work}/fifo`);
    fsext().mknod(fifo, 'fifo', 0o640, 0, 0);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    if (process.getuid?.() !== 0) return;
    const dev = Buffer.from(`${work}/dev`);
    fsext().mknod(dev, 'block', 0o600, 259, 70_000);
    const st = lstatSync(dev, { bigint: true });
    expect(st.isBlockDevice()).toBe(true);
    expect([majorOf(st.rdev), minorOf(st.rdev)]).toEqual([259, 70_000]);
    expect(Number(st.mode & 0o7777n)).toBe(0o600);
    expect(() => fsext().mknod(dev, 'char', 0o600, 1, 3)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
  });

  it('sets exact nanosecond times, before 1970 too, on the symlink itself', async () => {
    const target = Buffer.from(`${work}/timed`);
    const link = Buffer.from(`${work}/timed-link`);
    await fsp.writeFile(target, 't');
    await fsp.symlink('timed', link);
    const before = lstatSync(target, { bigint: true }).mtimeNs;
    fsext().lutimesNs(link, 1_234_567_890_123_456_789n, -1_000_000_001n);
    expect(lstatSync(link, { bigint: true }).mtimeNs).toBe(-1_000_000_001n);
    expect(lstatSync(link, { bigint: true }).atimeNs).toBe(1_234_567_890_123_456_789n);
    expect(lstatSync(target, { bigint: true }).mtimeNs).toBe(before);
  });

  it('rejects bad arguments with TypeErrors', () => {
    const ext = fsext() as unknown as Record<string, (...args: unknown[]) => unknown>;
    expect(() => ext.lgetxattr!('/not/a/buffer', 'user.x')).toThrow(TypeError);
    expect(() => ext.lgetxattr!(Buffer.from('a\0b'), 'user.x')).toThrow(/NUL/);
    expect(() => ext.mknod!(Buffer.from(`${work}/sock`), 'socket', 0o600, 0, 0)).toThrow(/char, block or fifo/);
    expect(() => ext.lutimesNs!(Buffer.from(`${work}/timed`), 1, 2)).toThrow(/BigInt/);
  });
});

describe('createNode safety', () => {
  it('refuses hostile paths and hardlink targets', async () => {
    const out = join(work, 'out-hostile');
    await fsp.mkdir(out);
    await expect(createNode(out, { kind: 'fifo', path: rp('../escape'), meta: META })).rejects.toMatchObject({ code: 'HOSTILE_PATH' });
    await expect(createNode(out, { kind: 'hardlink', path: rp('h'), meta: META, linkTo: rp('/etc/passwd') })).rejects.toMatchObject({
      code: 'HOSTILE_PATH',
    });
    await expect(createNode(out, { kind: 'symlink', path: rp(''), meta: META, target: 'x' })).rejects.toMatchObject({
      code: 'HOSTILE_PATH',
    });
    await expect(fsp.readdir(out)).resolves.toEqual([]);
  });

  it('refuses to write through a symlink planted by an earlier entry', async () => {
    const out = join(work, 'out-planted');
    const victim = join(work, 'victim');
    await fsp.mkdir(out);
    await fsp.mkdir(victim);
    await createNode(out, { kind: 'symlink', path: rp('evil'), meta: META, target: victim });
    for (const entry of [
      { kind: 'dir', path: rp('evil/d'), meta: META },
      { kind: 'fifo', path: rp('evil/f'), meta: META },
      { kind: 'symlink', path: rp('evil/s'), meta: META, target: 'x' },
    ] as const) {
      await expect(createNode(out, entry)).rejects.toMatchObject({ code: 'HOSTILE_PATH', message: expect.stringContaining('/evil') });
    }
    await expect(assertParentIsDirectory(out, rp('evil/file'))).rejects.toMatchObject({ code: 'HOSTILE_PATH' });
    await expect(fsp.readdir(victim)).resolves.toEqual([]);
  });

  it('names the path when the parent is missing', async () => {
    const out = join(work, 'out-missing');
    await fsp.mkdir(out);
    await expect(createNode(out, { kind: 'dir', path: rp('no/such'), meta: META })).rejects.toMatchObject({
      code: 'IO',
      message: expect.stringContaining('/no/such'),
    });
  });

  it('records device nodes it may not create when given a report', async () => {
    if (process.getuid?.() === 0) {
      // As root the node is made; the unprivileged branch is covered by the non-root run in tree.test.ts.
      const out = join(work, 'out-dev');
      await fsp.mkdir(out);
      const report = newRestoreReport();
      await expect(createNode(out, { kind: 'chardev', path: rp('null'), meta: META, major: 1, minor: 3 }, report)).resolves.toBe(true);
      expect(report.skipped).toEqual([]);
      expect(lstatSync(toFsPath(out, rp('null'))).isCharacterDevice()).toBe(true);
    }
  });
});
