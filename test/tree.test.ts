/**
 * Scanning, restoring and comparing real trees: the rich tree (every entry kind, odd
 * names, exact metadata) is scanned, cloned with createNode + copies + applyMetadata,
 * and checked both by compareTrees and by independent tools (find, sha256sum, getfattr).
 * Then single mutations must each be reported, and an unprivileged run must degrade to
 * a report instead of failing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp, mkdtempSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Entry, RelPath } from '../src/tree/entry.js';
import { compareTrees } from '../src/tree/compare.js';
import { fsext } from '../src/tree/fsext.js';
import { toFsPath } from '../src/tree/paths.js';
import { scanTree, sha256File, type TreeSnapshot } from '../src/tree/scan.js';
import { hashFileEntries } from '../src/tree/hash-files.js';
import { CAP_NET_RAW_EP, LONG_PATH, ODD_NAMES, RICH, cloneTree, makeRichTree, mtimeFor, mutateTree, rp } from './helpers/trees.js';

const asRoot = process.getuid?.() === 0;

let work: string;
let rich: string;
let richSnap: TreeSnapshot;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'deltaimg-tree-'));
  rich = join(work, 'rich');
  await makeRichTree(rich);
  richSnap = await scanTree(rich, { hash: true });
});
afterAll(async () => {
  await fsp.rm(work, { recursive: true, force: true });
});

function entry(snap: TreeSnapshot, path: string): Entry {
  const found = snap.entries.find((e) => e.path === path);
  if (!found) throw new Error(`no entry ${JSON.stringify(path)} in ${snap.root}`);
  return found;
}

/** An independent manifest of a tree from GNU find, sha256sum and getfattr (no deltaimg code). */
async function toolManifest(root: string): Promise<string> {
  const script = [
    `find . -printf '%P\\t%y\\t%#m\\t%U:%G\\t%T@\\t%n\\t%l\\n' | LC_ALL=C sort`,
    `find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum`,
    `find . \\( -type b -o -type c \\) -print0 | LC_ALL=C sort -z | xargs -0 -r stat -c '%n %F %t:%T'`,
    `getfattr -R -P -h -d -m - -e hex . 2>/dev/null`,
  ].join('; ');
  const { stdout } = await execa('bash', ['-c', script], { cwd: root, encoding: 'buffer', stripFinalNewline: false });
  return Buffer.from(stdout).toString('latin1');
}

describe('scanTree on the rich tree', () => {
  it('lists the root first and every path in byte order', () => {
    const paths = richSnap.entries.map((e) => e.path);
    expect(paths[0]).toBe('');
    expect(entry(richSnap, '').kind).toBe('dir');
    const sorted = [...paths].sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
    expect(paths).toEqual(sorted);
    expect(new Set(paths).size).toBe(paths.length);
    expect(richSnap.warnings).toEqual([]);
  });

  it('holds every entry kind with its exact payload', () => {
    const kinds = new Set(richSnap.entries.map((e) => e.kind));
    expect([...kinds].sort()).toEqual(
      asRoot ? ['blockdev', 'chardev', 'dir', 'fifo', 'file', 'hardlink', 'symlink'] : ['dir', 'fifo', 'file', 'hardlink', 'symlink'],
    );
    expect(entry(richSnap, 'bin')).toMatchObject({ kind: 'symlink', target: 'usr/bin' });
    expect(entry(richSnap, 'odd/latin1-target')).toMatchObject({ kind: 'symlink', target: '\xe9t\xe9/\xff' });
    expect(entry(richSnap, 'odd/dangling')).toMatchObject({ kind: 'symlink', target: '/nonexistent/target' });
    expect(entry(richSnap, 'etc/empty')).toMatchObject({ kind: 'file', size: 0, sha256: createHash('sha256').digest('hex') });
    expect(entry(richSnap, 'run/initctl')).toMatchObject({ kind: 'fifo', meta: { mode: 0o600 } });
    if (asRoot) {
      expect(entry(richSnap, 'dev/null')).toMatchObject({ kind: 'chardev', major: 1, minor: 3, meta: { mode: 0o666 } });
      expect(entry(richSnap, 'dev/sda')).toMatchObject({ kind: 'blockdev', major: 8, minor: 0 });
      expect(entry(richSnap, 'dev/nvme-big')).toMatchObject({ kind: 'chardev', major: 259, minor: 70_000 });
    }
  });

  it('never follows symlinks', () => {
    // odd/to-dir points at usr/share/doc, bin at usr/bin: nothing is listed below them.
    expect(richSnap.entries.some((e) => e.path.startsWith('odd/to-dir/') || e.path.startsWith('bin/'))).toBe(false);
    expect(entry(richSnap, 'odd/absolute-hostname').kind).toBe('symlink');
  });

  it('groups hardlinks: the first name in path order is the file, the others link to it', () => {
    const [first, second, third] = RICH.hardlinkGroup;
    expect(entry(richSnap, first)).toMatchObject({ kind: 'file' });
    expect(entry(richSnap, second)).toMatchObject({ kind: 'hardlink', linkTo: first });
    expect(entry(richSnap, third)).toMatchObject({ kind: 'hardlink', linkTo: first });
    expect(entry(richSnap, 'usr/share/doc/pkg/pair-2')).toMatchObject({ kind: 'hardlink', linkTo: 'usr/share/doc/pkg/pair-1' });
  });

  it('keeps special mode bits, owners, nanosecond mtimes and xattrs', () => {
    expect(entry(richSnap, RICH.setuid).meta.mode).toBe(0o4755);
    expect(entry(richSnap, RICH.setgid).meta.mode).toBe(0o2755);
    expect(entry(richSnap, 'tmp').meta.mode).toBe(0o1777);
    expect(entry(richSnap, 'usr/share/readonly').meta.mode).toBe(0o555);
    expect(entry(richSnap, 'etc/ancient').meta.mtimeNs).toBe(-1_234_567_891n);
    expect(entry(richSnap, 'etc/future').meta.mtimeNs).toBe(4_102_444_800_999_999_999n);
    expect(entry(richSnap, 'usr/share/doc').meta.mtimeNs).toBe(mtimeFor('usr/share/doc'));
    expect(entry(richSnap, 'odd/dangling').meta.mtimeNs).toBe(mtimeFor('odd/dangling'));
    const readme = entry(richSnap, 'usr/share/doc/pkg/README').meta.xattrs;
    expect(readme.map((x) => x.name)).toEqual(['user.binary', 'user.comment', 'user.empty']);
    expect(readme[1]!.value.toString()).toBe('hello');
    expect(readme[2]!.value.length).toBe(0);
    if (asRoot) {
      expect(entry(richSnap, 'etc/shadow').meta).toMatchObject({ uid: 0, gid: 42, mode: 0o640 });
      expect(entry(richSnap, RICH.userFile).meta).toMatchObject({ uid: 1000, gid: 1000 });
      expect(entry(richSnap, 'home/user/link').meta).toMatchObject({ uid: 1000, gid: 1000 });
      expect(entry(richSnap, RICH.ping).meta.xattrs).toEqual([{ name: 'security.capability', value: CAP_NET_RAW_EP }]);
      expect(entry(richSnap, 'var/cache/apt').meta.xattrs.map((x) => x.name)).toEqual(['trusted.deltaimg.test', 'user.dir-note']);
    }
  });

  it('keeps odd names as exact bytes, and very long paths', async () => {
    for (const name of Object.values(ODD_NAMES)) expect(entry(richSnap, name).kind).toBe('file');
    expect(LONG_PATH.length).toBeGreaterThan(2900);
    expect(entry(richSnap, LONG_PATH)).toMatchObject({ kind: 'file', size: 5 });
    const onDisk = await fsp.readdir(Buffer.from(`${rich}/odd`), { encoding: 'buffer' });
    expect(onDisk.map((b) => b.toString('latin1'))).toContain('\xff\xfe\x80');
  });

  it('hashes content with sha256, streaming', async () => {
    const tool = entry(richSnap, RICH.tool);
    const content = await fsp.readFile(join(rich, RICH.tool));
    expect(tool).toMatchObject({ kind: 'file', size: 300_000, sha256: createHash('sha256').update(content).digest('hex') });
    await expect(sha256File(toFsPath(rich, RICH.tool as RelPath))).resolves.toBe((tool as { sha256: string }).sha256);
    // Hardlinks carry no hash of their own: the file they name does.
    expect(entry(richSnap, RICH.hardlinkGroup[1])).not.toHaveProperty('sha256');
  });

  it('reports progress and skips sockets with a warning', async () => {
    const dir = join(work, 'with-socket');
    await fsp.mkdir(dir);
    await fsp.writeFile(join(dir, 'file'), 'abc');
    await execa('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', join(dir, 'sock')]);
    const seen: { entries: number; bytes: number }[] = [];
    const snap = await scanTree(dir, { hash: true, onProgress: (p) => seen.push(p) });
    expect(snap.entries.map((e) => e.path)).toEqual(['', 'file']);
    expect(snap.warnings).toEqual(['skipped socket /sock']);
    expect(seen.at(-1)).toEqual({ entries: 2, bytes: 3 });
  });

  it('leaves out skipped paths with everything below them, and nothing else', async () => {
    const snap = await scanTree(rich, { skip: new Set([rp('etc'), rp('odd/with space')]) });
    const paths = snap.entries.map((e) => e.path);
    expect(paths.filter((p) => p === 'etc' || p.startsWith('etc/') || p === 'odd/with space')).toEqual([]);
    const expected = richSnap.entries.map((e) => e.path).filter((p) => p !== 'etc' && !p.startsWith('etc/') && p !== 'odd/with space');
    expect(paths).toEqual(expected);
  });

  it.skipIf(asRoot)('refuses a directory it cannot read, naming it', async () => {
    const dir = join(work, 'locked');
    await fsp.mkdir(join(dir, 'inner'), { recursive: true });
    await fsp.chmod(join(dir, 'inner'), 0);
    try {
      await expect(scanTree(dir)).rejects.toMatchObject({
        code: 'IO',
        message: expect.stringMatching(/^cannot read directory \/inner: EACCES/),
      });
    } finally {
      await fsp.chmod(join(dir, 'inner'), 0o755);
    }
  });

  it('refuses a root that is not a directory, naming it', async () => {
    await expect(scanTree(join(rich, 'etc/hostname'))).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringContaining('etc/hostname'),
    });
    await expect(scanTree(join(work, 'missing'))).rejects.toMatchObject({ code: 'IO', message: expect.stringMatching(/missing: ENOENT/) });
  });

  it('follows a symlink given as the root itself, and nothing below it', async () => {
    const link = join(work, 'rich-link');
    await fsp.symlink(rich, link);
    const snap = await scanTree(link, { hash: true });
    expect(snap.root).toBe(link);
    expect(compareTrees(richSnap, snap)).toEqual([]);
  });

  it('is deterministic: two rich trees compare equal', async () => {
    const again = join(work, 'rich-again');
    await makeRichTree(again);
    expect(compareTrees(richSnap, await scanTree(again, { hash: true }))).toEqual([]);
  });
});

describe('hashing many files (on the walk, batches of directories on threadpool threads)', () => {
  let many: string;
  beforeAll(async () => {
    many = join(work, 'many');
    await fsp.mkdir(join(many, 'odd'), { recursive: true });
    // Enough files for several batches, odd sizes, an empty, a sparse and a large file, odd names.
    for (let i = 0; i < 2500; i++) await fsp.writeFile(join(many, `f${i}`), `file ${i}\n`.repeat(i % 37));
    await fsp.writeFile(join(many, 'empty'), '');
    await fsp.writeFile(join(many, 'large'), createHash('sha512').update('seed').digest().toString('hex').repeat(50_000));
    await execa('truncate', ['-s', '40M', join(many, 'sparse')]);
    await execa('bash', ['-c', 'printf tail >> sparse', ''], { cwd: many });
    for (const name of Object.values(ODD_NAMES)) await fsp.writeFile(Buffer.from(`${many}/${name}`, 'latin1'), name);
  });

  it('gives every file the sha256 sha256sum gives, odd names and holes included', async () => {
    const snap = await scanTree(many, { hash: true });
    const { stdout } = await execa('bash', ['-c', 'find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum'], {
      cwd: many,
      encoding: 'buffer',
    });
    // sha256sum escapes names with a newline or backslash ("\\sha  name"): compare by hash multiset per name instead.
    const tool = new Map<string, string>();
    for (const line of Buffer.from(stdout).toString('latin1').split('\n').filter(Boolean)) {
      const m = /^\\?([0-9a-f]{64}) {2}\.\/(.*)$/s.exec(line)!;
      tool.set(line.startsWith('\\') ? m[2]!.replace(/\\n/g, '\n').replace(/\\\\/g, '\\') : m[2]!, m[1]!);
    }
    const files = snap.entries.filter((e) => e.kind === 'file');
    expect(files).toHaveLength(2500 + 3 + Object.keys(ODD_NAMES).length);
    for (const f of files) expect([f.path, f.kind === 'file' && f.sha256]).toEqual([f.path, tool.get(f.path)]);
    expect(entry(snap, 'sparse')).toMatchObject({ size: 40 * 1024 * 1024 + 4 });
  });

  /**
   * A scan without hashes, then `change` done to the tree, then the hashing the walk leaves to
   * hashFileEntries (for a node whose native code has no sha256): the checks the walk makes too.
   */
  async function hashAfter(change: (root: string) => Promise<void>): Promise<void> {
    const dir = await fsp.mkdtemp(join(work, 'changed-'));
    await fsp.writeFile(join(dir, 'a'), 'aaa');
    await fsp.writeFile(join(dir, 'b'), 'bbb');
    const snap = await scanTree(dir);
    await change(dir);
    await hashFileEntries(Buffer.from(dir), snap.entries, () => {});
    expect(snap.entries.filter((e) => e.kind === 'file' && e.sha256?.length === 64)).toHaveLength(2);
  }

  it('refuses, with one line naming the file, a file that vanished, grew, or became a FIFO, a symlink or a directory', async () => {
    await hashAfter(async () => {});
    const fails = (message: RegExp) => expect.objectContaining({ code: 'IO', message: expect.stringMatching(message) });
    await expect(hashAfter((d) => fsp.rm(join(d, 'b')))).rejects.toEqual(fails(/^cannot read \/b: ENOENT/));
    await expect(hashAfter((d) => fsp.appendFile(join(d, 'a'), 'more'))).rejects.toEqual(fails(/^cannot read \/a: .*changed while/));
    // A FIFO must be refused at once, not wait for a writer.
    const fifo = async (d: string) => {
      await fsp.rm(join(d, 'b'));
      fsext().mknod(Buffer.from(join(d, 'b')), 'fifo', 0o644, 0, 0);
    };
    await expect(hashAfter(fifo)).rejects.toEqual(fails(/^cannot read \/b: EINVAL: no longer a regular file/));
    const symlink = async (d: string) => {
      await fsp.rm(join(d, 'a'));
      await fsp.symlink('b', join(d, 'a'));
    };
    await expect(hashAfter(symlink)).rejects.toEqual(fails(/^cannot read \/a: EINVAL: no longer a regular file/));
    const directory = async (d: string) => {
      await fsp.rm(join(d, 'a'));
      await fsp.mkdir(join(d, 'a'));
    };
    await expect(hashAfter(directory)).rejects.toEqual(fails(/^cannot read \/a: EINVAL: no longer a regular file/));
  });

  it.skipIf(asRoot)('refuses an unreadable file with one line naming it, on the walk and after it', async () => {
    await expect(hashAfter((d) => fsp.chmod(join(d, 'a'), 0))).rejects.toMatchObject({
      code: 'IO',
      message: expect.stringMatching(/^cannot read \/a: EACCES/),
    });
    const dir = await fsp.mkdtemp(join(work, 'unreadable-'));
    await fsp.writeFile(join(dir, 'secret'), 'x', { mode: 0 });
    await expect(scanTree(dir, { hash: true })).rejects.toMatchObject({
      code: 'IO',
      message: expect.stringMatching(/^cannot read \/secret: EACCES/),
    });
    // Without hashing, the file is only lstat'ed: no error.
    expect((await scanTree(dir)).entries.map((e) => e.path)).toEqual(['', 'secret']);
  });
});

describe('round trip: scan, createNode + copies + applyMetadata, compare', () => {
  let clone: string;
  beforeAll(async () => {
    clone = join(work, 'clone');
    const report = await cloneTree(rich, clone, richSnap);
    expect(report.skipped).toEqual([]);
  });

  it('compareTrees finds no difference', async () => {
    expect(compareTrees(richSnap, await scanTree(clone, { hash: true }))).toEqual([]);
  });

  it('find, sha256sum, stat and getfattr agree byte for byte', async () => {
    const [original, copied] = await Promise.all([toolManifest(rich), toolManifest(clone)]);
    expect(copied).toBe(original);
    // The manifest really covers what matters.
    expect(original).toContain('usr/bin/su\tf\t04755\t0:0\t');
    expect(original).toContain('tmp\td\t01777\t');
    expect(original).toContain(`etc/future\tf\t0644\t${asRoot ? '0:0' : ''}`);
    expect(original).toContain('4102444800.9999999990');
    expect(original).toMatch(/usr\/share\/doc\/a\/copyright\tf\t0644\t\S+\t\S+\t3\t/);
    if (asRoot) {
      expect(original).toContain(`security.capability=0x${CAP_NET_RAW_EP.toString('hex')}`);
      expect(original).toContain('./dev/nvme-big character special file 103:11170');
    }
  });
});

describe('compareTrees reports each single change', () => {
  type Mutation = [string, (root: string) => Promise<void> | void, string[]];
  const abs = (root: string, p: string) => toFsPath(root, rp(p));
  const keepMtime = async (root: string, p: string, fn: () => Promise<void>) => {
    const ns = mtimeFor(p);
    await fn();
    fsext().lutimesNs(abs(root, p), ns, ns);
  };
  const mutations: Mutation[] = [
    ['mode', (r) => fsp.chmod(abs(r, 'etc/hostname'), 0o600), ['/etc/hostname: mode 0644 vs 0600']],
    ['setuid bit', (r) => fsp.chmod(abs(r, RICH.setuid), 0o755), ['/usr/bin/su: mode 04755 vs 0755']],
    [
      'mtime by one ns',
      (r) => fsext().lutimesNs(abs(r, 'etc/passwd'), 0n, mtimeFor('etc/passwd') + 1n),
      [expect.stringMatching(/^\/etc\/passwd: mtime \d+\.\d{9} vs \d+\.\d{9}$/)],
    ],
    [
      'xattr value',
      (r) => fsext().lsetxattr(abs(r, 'usr/share/doc/pkg/README'), 'user.comment', Buffer.from('hellO')),
      ['/usr/share/doc/pkg/README: xattr user.comment value differs'],
    ],
    [
      'xattr added',
      (r) => fsext().lsetxattr(abs(r, 'etc/hostname'), 'user.new', Buffer.from('1')),
      ['/etc/hostname: xattr user.new only in the second tree'],
    ],
    [
      'content, same size',
      (r) =>
        keepMtime(r, RICH.tool, async () => {
          const h = await fsp.open(abs(r, RICH.tool), 'r+');
          await h.write(Buffer.from([0x42]), 0, 1, 150_000);
          await h.close();
        }),
      [expect.stringMatching(/^\/usr\/bin\/tool: content sha256 [0-9a-f]{12}\.\.\. vs [0-9a-f]{12}\.\.\.$/)],
    ],
    ['size', (r) => keepMtime(r, 'etc/hostname', () => fsp.appendFile(abs(r, 'etc/hostname'), 'x')), ['/etc/hostname: size 9 vs 10']],
    [
      'symlink target',
      (r) =>
        keepMtime(r, 'odd', async () => {
          await fsp.unlink(abs(r, 'odd/dangling'));
          await fsp.symlink('/nonexistent/other', abs(r, 'odd/dangling'));
          fsext().lutimesNs(abs(r, 'odd/dangling'), 0n, mtimeFor('odd/dangling'));
        }),
      ['/odd/dangling: symlink target "/nonexistent/target" vs "/nonexistent/other"'],
    ],
  ];
  if (asRoot) {
    mutations.push(
      ['owner', (r) => fsp.lchown(abs(r, 'etc/hostname'), 0, 7), ['/etc/hostname: owner 0:0 vs 0:7']],
      ['owner of a symlink', (r) => fsp.lchown(abs(r, 'home/user/link'), 1000, 1001), ['/home/user/link: owner 1000:1000 vs 1000:1001']],
      [
        'capability removed',
        (r) => execa('setfattr', ['-h', '-x', 'security.capability', join(r, RICH.ping)]).then(() => {}),
        ['/usr/bin/ping: xattr security.capability only in the first tree'],
      ],
    );
  }

  it.each(mutations)('%s', async (_name, mutate, expected) => {
    const copy = join(work, `mut-${Math.random().toString(36).slice(2)}`);
    await cloneTree(rich, copy, richSnap);
    await mutate(copy);
    expect(compareTrees(richSnap, await scanTree(copy, { hash: true }))).toEqual(expected);
    await fsp.rm(copy, { recursive: true, force: true });
  });

  it('type changes, hardlink changes, additions and removals (with their directory mtimes)', async () => {
    const copy = join(work, 'mut-structure');
    await cloneTree(rich, copy, richSnap);
    const [, second] = RICH.hardlinkGroup;
    const content = await fsp.readFile(join(copy, second));
    await fsp.unlink(join(copy, second));
    await fsp.writeFile(join(copy, second), content);
    await fsp.rm(join(copy, 'etc/motd'));
    await fsp.mkdir(join(copy, 'etc/motd'));
    await fsp.writeFile(join(copy, 'etc/extra'), '');
    const diffs = compareTrees(richSnap, await scanTree(copy, { hash: true }));
    expect(diffs).toEqual(
      expect.arrayContaining([
        `/${second}: type hardlink vs file`,
        '/etc/motd: type file vs dir',
        `/etc/extra: only in ${copy} (file)`,
        expect.stringMatching(/^\/etc: mtime /),
        expect.stringMatching(/^\/usr\/share\/doc\/b: mtime /),
      ]),
    );
    expect(diffs.filter((d) => !/: mtime /.test(d))).toHaveLength(3);
    if (asRoot) {
      await fsp.rm(join(copy, 'dev/sda'));
      fsext().mknod(Buffer.from(join(copy, 'dev/sda')), 'block', 0o660, 8, 1);
      expect(compareTrees(richSnap, await scanTree(copy))).toContain('/dev/sda: device 8:0 vs 8:1');
    }
  });
});

describe('mutateTree and its round trip', () => {
  it('makes an upgrade-like tree that clones exactly', async () => {
    const next = join(work, 'next');
    await cloneTree(rich, next, richSnap);
    const changes = await mutateTree(next);
    expect(changes.length).toBeGreaterThan(15);
    const nextSnap = await scanTree(next, { hash: true });
    const diffs = compareTrees(richSnap, nextSnap);
    expect(diffs).toEqual(
      expect.arrayContaining([
        `/lib/modules/6.1.0-21-amd64/kernel/drivers/net/e1000.ko: only in ${rich} (file)`,
        `/lib/modules/6.1.0-22-amd64/kernel/drivers/net/e1000.ko: only in ${next} (file)`,
        `/usr/lib/x86_64-linux-gnu/libfoo.so.3.0.22: only in ${next} (file)`,
        '/usr/lib/x86_64-linux-gnu/libfoo.so.3: symlink target "libfoo.so.3.0.19" vs "libfoo.so.3.0.22"',
        '/etc/motd: type file vs dir',
        '/usr/share/olddir: type dir vs symlink',
        '/usr/bin/sh-link: type symlink vs file',
        '/usr/share/doc/c/copyright: type hardlink vs file',
        '/etc/hostname: mode 0644 vs 0600',
        '/usr/bin/su: mode 04755 vs 0755',
      ]),
    );
    if (asRoot) expect(diffs).toContain('/dev/sda: device 8:0 vs 8:16');

    const again = join(work, 'next-clone');
    await cloneTree(next, again, nextSnap);
    expect(compareTrees(nextSnap, await scanTree(again, { hash: true }))).toEqual([]);
    // Deterministic: mutating another fresh rich tree gives the same result.
    const other = join(work, 'next-other');
    await makeRichTree(other);
    await mutateTree(other);
    expect(compareTrees(nextSnap, await scanTree(other, { hash: true }))).toEqual([]);
  });
});

describe('restoring without privileges', () => {
  it.runIf(asRoot)('records owners, xattrs and devices it cannot restore instead of failing', async () => {
    const dir = join(work, 'unprivileged');
    await fsp.chmod(work, 0o711); // mkdtemp made it owner-only; nobody must reach its directory
    await fsp.mkdir(dir);
    await fsp.chown(dir, 65534, 65534);
    const script = join(dir, 'restore.ts');
    const src = (p: string) => JSON.stringify(new URL(`../src/tree/${p}`, import.meta.url).pathname);
    await fsp.writeFile(
      script,
      `
      import { createNode, copyFileEntry } from ${src('write.ts')};
      import { applyMetadata, applyDirectoryMetadata, newRestoreReport, summarizeReport } from ${src('meta.ts')};
      import { scanTree } from ${src('scan.ts')};
      import { toFsPath } from ${src('paths.ts')};
      import { writeFileSync } from 'node:fs';
      const out = ${JSON.stringify(join(dir, 'out'))};
      const meta = (over) => ({ mode: 0o644, uid: 0, gid: 0, mtimeNs: 1_600_000_000_123_456_789n, xattrs: [], ...over });
      const report = newRestoreReport();
      const root = { kind: 'dir', path: '', meta: meta({ mode: 0o755 }) };
      const dirEntry = { kind: 'dir', path: 'd', meta: meta({ mode: 0o555, xattrs: [{ name: 'trusted.x', value: Buffer.from('1') }, { name: 'user.ok', value: Buffer.from('2') }] }) };
      const file = { kind: 'file', path: 'd/f', size: 1, meta: meta({ mode: 0o4755, uid: 65534, gid: 65534 }) };
      const dev = { kind: 'chardev', path: 'd/null', major: 1, minor: 3, meta: meta({}) };
      await createNode(out, root);
      await createNode(out, dirEntry);
      writeFileSync(${JSON.stringify(join(dir, 'src-file'))}, 'x');
      await copyFileEntry(out, file, ${JSON.stringify(join(dir, 'src-file'))});
      await applyMetadata(toFsPath(out, file.path), file, report);
      const made = await createNode(out, dev, report);
      await applyMetadata(toFsPath(out, dev.path), dev, report);
      await applyDirectoryMetadata(out, [root, dirEntry, file, dev], report);
      const snap = await scanTree(out);
      console.log(JSON.stringify({ made, skipped: report.skipped, summary: summarizeReport(report),
        entries: snap.entries.map((e) => ({ path: e.path, kind: e.kind, mode: e.meta.mode, uid: e.meta.uid, mtime: String(e.meta.mtimeNs), xattrs: e.meta.xattrs.map((x) => x.name) })) }));
    `,
    );
    const viteNode = new URL('../node_modules/vite-node/vite-node.mjs', import.meta.url).pathname;
    const { stdout } = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, viteNode, script], {
      cwd: dir,
      env: { HOME: dir },
    });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      made: boolean;
      skipped: { what: string; path: string; reason: string }[];
      summary: string;
      entries: { path: string; kind: string; mode: number; uid: number; mtime: string; xattrs: string[] }[];
    };
    expect(result.made).toBe(false);
    expect(result.skipped.map((s) => `${s.what} ${s.path}`).sort()).toEqual(['device d/null', 'owner ', 'owner d', 'xattr d']);
    expect(result.skipped.find((s) => s.what === 'owner')!.reason).toMatch(/EPERM \(not running as root\)/);
    expect(result.summary).toMatch(/^warning: could not restore 2 ownerships, 1 extended attributes, 1 device nodes \(e\.g\. /);
    expect(result.entries).toEqual([
      { path: '', kind: 'dir', mode: 0o755, uid: 65534, mtime: '1600000000123456789', xattrs: [] },
      { path: 'd', kind: 'dir', mode: 0o555, uid: 65534, mtime: '1600000000123456789', xattrs: ['user.ok'] },
      { path: 'd/f', kind: 'file', mode: 0o4755, uid: 65534, mtime: '1600000000123456789', xattrs: [] },
    ]);
  });
});
