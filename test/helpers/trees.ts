/**
 * Builders of realistic root filesystems for tests: `makeRichTree` makes every entry kind
 * and every metadata oddity deltaimg must carry; `mutateTree` turns it into a plausible
 * "next version" (moves, versioned renames, deletions, edits, metadata-only and type
 * changes); `cloneTree` copies a tree with the tree module (scan, createNode, copy,
 * applyMetadata), which is the round trip the tree tests check.
 *
 * Both builders are deterministic: same calls, same bytes, modes, owners and mtimes.
 * Root-only features (chown, devices, trusted.* and security.* xattrs) are made only
 * when running as root (CI does); `privileged: false` leaves them out explicitly.
 */
import { chmodSync, promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import type { RelPath } from '../../src/tree/entry.js';
import { fsext } from '../../src/tree/fsext.js';
import { applyDirectoryMetadata, applyMetadata, newRestoreReport, type RestoreReport } from '../../src/tree/meta.js';
import { compareRel, toFsPath } from '../../src/tree/paths.js';
import { scanTree, type TreeSnapshot } from '../../src/tree/scan.js';
import { copyFileEntry, createNode } from '../../src/tree/write.js';

export interface TreeOptions {
  /** Make root-only things (owners, devices, trusted and security xattrs). Default: running as root. */
  privileged?: boolean;
}

const isRoot = (): boolean => process.getuid?.() === 0;

/** security.capability for cap_net_raw+ep (VFS_CAP_REVISION_2, little endian), as `setcap cap_net_raw+ep` writes it. */
export const CAP_NET_RAW_EP = Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
/** cap_net_admin+ep, for a metadata-only change. */
export const CAP_NET_ADMIN_EP = Buffer.from([1, 0, 0, 2, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/** Byte-held RelPath from a JS string written with \x escapes for raw bytes. */
export const rp = (p: string): RelPath => p as RelPath;

/** Odd names the rich tree holds (byte-held), for tests that look them up. */
export const ODD_NAMES = {
  space: rp('odd/with space'),
  newline: rp('odd/new\nline'),
  latin1: rp('odd/caf\xe9'),
  invalidUtf8: rp('odd/\xff\xfe\x80'),
  dash: rp('odd/-rf'),
  backslashTab: rp('odd/back\\slash\ttab'),
  utf8: rp('odd/\xc3\xa9t\xc3\xa9'),
} as const;

/** A long path (~2.9 KB, 12 components of 240 bytes) ending in a file. */
export const LONG_PATH = rp(Array.from({ length: 12 }, (_, i) => `${String.fromCharCode(97 + i)}`.repeat(240)).join('/') + '/deep-file');

// ---------------------------------------------------------------------------------------
// Content

/** Deterministic bytes from a seed (xorshift32). */
export function pseudoRandomBytes(seed: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

const WORDS = ['init', 'module', 'symbol', 'version', 'GLIBC_2.34', 'driver', 'probe', 'free', 'alloc', '.text', '.rodata', 'debug'];

/** Binary that looks a bit like an executable: random runs mixed with repeated strings, so deltas have something to find. */
export function binaryLike(seed: number, size: number): Buffer {
  const noise = pseudoRandomBytes(seed, size);
  const parts: Buffer[] = [];
  let total = 0;
  for (let i = 0; total < size; i++) {
    const n = 8 + (noise[i % size]! % 56);
    const part =
      i % 3 === 0
        ? Buffer.from(`${WORDS[noise[(i * 7) % size]! % WORDS.length]}\0`)
        : noise.subarray(total % (size - 64), (total % (size - 64)) + n);
    parts.push(part);
    total += part.length;
  }
  return Buffer.concat(parts).subarray(0, size);
}

/** A small in-place edit and a small insertion: what a rebuild with a patch does to a binary. */
export function editedBinary(original: Buffer, seed: number): Buffer {
  const patched = Buffer.from(original);
  pseudoRandomBytes(seed, 64).copy(patched, Math.floor(original.length / 3));
  const at = Math.floor((original.length * 2) / 3);
  return Buffer.concat([patched.subarray(0, at), pseudoRandomBytes(seed + 1, 300), patched.subarray(at)]);
}

function text(lines: number, seed: number): string {
  const rnd = pseudoRandomBytes(seed, lines * 4);
  return Array.from({ length: lines }, (_, i) => `line ${i}: ${WORDS[rnd[i * 4]! % WORDS.length]} ${rnd.readUInt16LE(i * 4 + 1)}\n`).join(
    '',
  );
}

/** A deterministic mtime for a path (ns precision, spread over 2019-2025). */
export function mtimeFor(path: string): bigint {
  const h = createHash('sha256').update(path, 'latin1').digest();
  return 1_550_000_000_000_000_000n + (h.readBigUInt64LE(0) % 200_000_000_000_000_000n);
}

// ---------------------------------------------------------------------------------------
// Low-level writers (byte-held paths below a root)

/** mtimes the rich tree sets on purpose: before 1970 and after 2038 (ns precision kept). */
const FIXED_MTIMES: ReadonlyMap<string, bigint> = new Map([
  ['etc/ancient', -1_234_567_891n],
  ['etc/future', 4_102_444_800_999_999_999n],
]);

class TreeBuilder {
  /** Paths whose mtime was set explicitly; the final pass leaves them as they are. */
  private readonly fixedMtime = new Map<string, bigint>(FIXED_MTIMES);
  constructor(
    readonly root: string,
    readonly privileged: boolean,
  ) {}

  abs(p: string): Buffer {
    return toFsPath(this.root, rp(p));
  }

  async dir(p: string, mode = 0o755): Promise<void> {
    await fsp.mkdir(this.abs(p), { recursive: true });
    await fsp.chmod(this.abs(p), mode);
  }

  async file(p: string, content: string | Buffer, mode = 0o644): Promise<void> {
    await fsp.writeFile(this.abs(p), typeof content === 'string' ? Buffer.from(content, 'latin1') : content);
    await fsp.chmod(this.abs(p), mode);
  }

  async symlink(p: string, target: string): Promise<void> {
    await fsp.symlink(Buffer.from(target, 'latin1'), this.abs(p));
  }

  async hardlink(p: string, existing: string): Promise<void> {
    await fsp.link(this.abs(existing), this.abs(p));
  }

  async owner(p: string, uid: number, gid: number): Promise<void> {
    if (this.privileged) await fsp.lchown(this.abs(p), uid, gid);
  }

  /** Mode after chown: chown clears setuid/setgid. */
  async mode(p: string, mode: number): Promise<void> {
    await fsp.chmod(this.abs(p), mode);
  }

  xattr(p: string, name: string, value: Buffer | string): void {
    if (!this.privileged && !name.startsWith('user.')) return;
    fsext().lsetxattr(this.abs(p), name, typeof value === 'string' ? Buffer.from(value) : value);
  }

  device(p: string, kind: 'char' | 'block', major: number, minor: number, mode = 0o660): void {
    if (!this.privileged) return;
    fsext().mknod(this.abs(p), kind, mode, major, minor);
    chmodSync(this.abs(p), mode); // mknod's mode is filtered by the umask
  }

  fifo(p: string, mode = 0o644): void {
    fsext().mknod(this.abs(p), 'fifo', mode, 0, 0);
    chmodSync(this.abs(p), mode);
  }

  async remove(p: string): Promise<void> {
    await fsp.rm(this.abs(p), { recursive: true, force: true });
  }

  async rename(from: string, to: string): Promise<void> {
    await fsp.rename(this.abs(from), this.abs(to));
  }

  mtime(p: string, ns: bigint): void {
    this.fixedMtime.set(p, ns);
    fsext().lutimesNs(this.abs(p), ns, ns);
  }

  /** Sets the fixed or else a path-derived mtime on every path, deepest first (so directory mtimes stick). */
  async settleMtimes(): Promise<void> {
    const snap = await scanTree(this.root);
    const paths = snap.entries.map((e) => e.path).sort((a, b) => compareRel(b, a));
    for (const p of paths) {
      const ns = this.fixedMtime.get(p) ?? mtimeFor(p);
      fsext().lutimesNs(toFsPath(this.root, p), ns, ns);
    }
  }
}

// ---------------------------------------------------------------------------------------
// The rich tree

/** Paths of the rich tree other tests may want to name. */
export const RICH = {
  tool: 'usr/bin/tool',
  setuid: 'usr/bin/su',
  setgid: 'usr/bin/wall',
  ping: 'usr/bin/ping',
  libfoo: 'usr/lib/x86_64-linux-gnu/libfoo.so.3.0.19',
  libfooLink: 'usr/lib/x86_64-linux-gnu/libfoo.so.3',
  kmod: 'lib/modules/6.1.0-21-amd64/kernel/drivers/net/e1000.ko',
  hardlinkGroup: ['usr/share/doc/a/copyright', 'usr/share/doc/b/copyright', 'usr/share/doc/c/copyright'],
  userFile: 'home/user/notes.txt',
  negativeMtime: 'etc/ancient',
} as const;

/** Builds a small root filesystem with every entry kind and metadata oddity in `dir` (created if missing). */
export async function makeRichTree(dir: string, opts: TreeOptions = {}): Promise<void> {
  const t = new TreeBuilder(dir, opts.privileged ?? isRoot());
  await fsp.mkdir(dir, { recursive: true });
  await fsp.chmod(dir, 0o755);
  await makeSystemDirs(t);
  await makeBinaries(t);
  await makeLibraries(t);
  await makeDocs(t);
  await makeSpecialFiles(t);
  await makeOddNames(t);
  await makeHome(t);
  await t.settleMtimes();
}

async function makeSystemDirs(t: TreeBuilder): Promise<void> {
  for (const d of ['etc', 'usr/bin', 'usr/lib/x86_64-linux-gnu', 'usr/share/doc', 'var/empty', 'var/cache/apt', 'dev', 'run', 'home'])
    await t.dir(d);
  await t.dir('tmp', 0o1777);
  await t.symlink('bin', 'usr/bin');
  await t.symlink('lib64', 'usr/lib64');
  await t.file('etc/hostname', 'deltaimg\n');
  await t.file('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/sh\n');
  await t.file('etc/old.conf', text(20, 7));
  await t.file('etc/motd', 'welcome\n');
  await t.file('etc/empty', '');
  await t.file('etc/shadow', 'root:*:19000:0:99999:7:::\n', 0o640);
  await t.owner('etc/shadow', 0, 42);
  await t.mode('etc/shadow', 0o640);
  await t.file(RICH.negativeMtime, 'from before 1970\n');
  await t.file('etc/future', 'from 2100\n');
  await t.dir('usr/share/olddir');
  await t.file('usr/share/olddir/data', text(5, 3));
  // A read-only directory with content: its mode must be applied after its children.
  await t.dir('usr/share/readonly');
  await t.file('usr/share/readonly/inside', 'ro\n');
  await t.mode('usr/share/readonly', 0o555);
  t.xattr('var/cache/apt', 'user.dir-note', 'xattr on a directory');
  t.xattr('var/cache/apt', 'trusted.deltaimg.test', Buffer.from([0, 1, 2, 3]));
}

async function makeBinaries(t: TreeBuilder): Promise<void> {
  await t.file(RICH.tool, binaryLike(1, 300_000), 0o755);
  await t.file('usr/bin/sh', binaryLike(2, 40_000), 0o755);
  await t.file(RICH.setuid, binaryLike(3, 20_000), 0o755);
  await t.owner(RICH.setuid, 0, 0);
  await t.mode(RICH.setuid, 0o4755);
  await t.file(RICH.setgid, binaryLike(4, 12_000), 0o755);
  await t.owner(RICH.setgid, 0, 5);
  await t.mode(RICH.setgid, 0o2755);
  await t.file(RICH.ping, binaryLike(5, 30_000), 0o755);
  t.xattr(RICH.ping, 'security.capability', CAP_NET_RAW_EP);
  await t.symlink('usr/bin/sh-link', 'sh');
}

async function makeLibraries(t: TreeBuilder): Promise<void> {
  await t.file(RICH.libfoo, binaryLike(10, 400_000));
  await t.symlink(RICH.libfooLink, 'libfoo.so.3.0.19');
  await t.file('usr/lib/x86_64-linux-gnu/libbar.so.1', binaryLike(11, 50_000));
  const mod = 'lib/modules/6.1.0-21-amd64';
  await t.dir(`${mod}/kernel/drivers/net`);
  await t.file(RICH.kmod, binaryLike(12, 200_000));
  await t.file(`${mod}/kernel/drivers/net/dummy.ko`, binaryLike(13, 30_000));
  await t.file(`${mod}/modules.dep`, text(200, 14));
  await t.file(`${mod}/modules.alias`, text(300, 15));
  await t.symlink(`${mod}/build`, '/usr/src/linux-headers-6.1.0-21-amd64');
}

async function makeDocs(t: TreeBuilder): Promise<void> {
  for (const d of ['a', 'b', 'c', 'pkg']) await t.dir(`usr/share/doc/${d}`);
  const [first, second, third] = RICH.hardlinkGroup;
  await t.file(first, text(40, 20));
  await t.hardlink(second, first);
  await t.hardlink(third, first);
  await t.file('usr/share/doc/pkg/README', text(60, 21));
  await t.file('usr/share/doc/pkg/changelog', text(500, 22));
  await t.file('usr/share/doc/pkg/pair-1', 'two names\n');
  await t.hardlink('usr/share/doc/pkg/pair-2', 'usr/share/doc/pkg/pair-1');
  await t.dir('usr/share/locale');
  for (let i = 0; i < 60; i++) await t.file(`usr/share/locale/msg-${String(i).padStart(2, '0')}.mo`, text(3 + (i % 7), 100 + i));
  t.xattr('usr/share/doc/pkg/README', 'user.comment', 'hello');
  t.xattr('usr/share/doc/pkg/README', 'user.binary', pseudoRandomBytes(99, 256));
  t.xattr('usr/share/doc/pkg/README', 'user.empty', Buffer.alloc(0));
}

async function makeSpecialFiles(t: TreeBuilder): Promise<void> {
  t.device('dev/null', 'char', 1, 3, 0o666);
  t.device('dev/sda', 'block', 8, 0);
  // Major/minor beyond 8 bits exercise the full makedev encoding.
  t.device('dev/nvme-big', 'char', 259, 70_000);
  t.fifo('run/initctl', 0o600);
  t.fifo('run/plain-fifo');
}

async function makeOddNames(t: TreeBuilder): Promise<void> {
  await t.dir('odd');
  for (const [i, p] of Object.values(ODD_NAMES).entries()) await t.file(p, `odd ${i}\n`);
  await t.symlink('odd/dangling', '/nonexistent/target');
  await t.symlink('odd/latin1-target', '\xe9t\xe9/\xff');
  await t.symlink('odd/absolute-hostname', '/etc/hostname');
  await t.symlink('odd/dotdot', '../..');
  await t.symlink('odd/to-dir', '../usr/share/doc');
  const dirs = LONG_PATH.slice(0, LONG_PATH.lastIndexOf('/'));
  await t.dir(dirs);
  await t.file(LONG_PATH, 'deep\n');
}

async function makeHome(t: TreeBuilder): Promise<void> {
  await t.dir('home/user', 0o700);
  await t.owner('home/user', 1000, 1000);
  await t.file(RICH.userFile, text(10, 30), 0o600);
  await t.owner(RICH.userFile, 1000, 1000);
  await t.symlink('home/user/link', 'notes.txt');
  await t.owner('home/user/link', 1000, 1000);
  await t.file('home/user/empty', '');
  await t.owner('home/user/empty', 1000, 100);
}

// ---------------------------------------------------------------------------------------
// The next version

/**
 * Applies an upgrade-like set of changes to a rich tree, returning one line per change.
 * Everything touched gets a deterministic mtime again, so two mutated copies are equal.
 */
export async function mutateTree(dir: string, opts: TreeOptions = {}): Promise<string[]> {
  const t = new TreeBuilder(dir, opts.privileged ?? isRoot());
  const done: string[] = [];
  const step = async (what: string, fn: () => Promise<void> | void): Promise<void> => {
    await fn();
    done.push(what);
  };

  // Versioned renames with small content edits (the delta should find the old names as bases).
  const oldMod = 'lib/modules/6.1.0-21-amd64';
  const newMod = 'lib/modules/6.1.0-22-amd64';
  await step(`rename ${oldMod} -> ${newMod} with edits`, async () => {
    await t.rename(oldMod, newMod);
    const ko = `${newMod}/kernel/drivers/net/e1000.ko`;
    await t.file(ko, editedBinary(await fsp.readFile(t.abs(ko)), 40));
    await fsp.appendFile(t.abs(`${newMod}/modules.dep`), 'kernel/drivers/net/new.ko:\n');
    await fsp.unlink(t.abs(`${newMod}/build`));
    await t.symlink(`${newMod}/build`, '/usr/src/linux-headers-6.1.0-22-amd64');
  });
  await step('rename libfoo.so.3.0.19 -> libfoo.so.3.0.22 with edits, retarget libfoo.so.3', async () => {
    const next = 'usr/lib/x86_64-linux-gnu/libfoo.so.3.0.22';
    await t.file(next, editedBinary(await fsp.readFile(t.abs(RICH.libfoo)), 41));
    await t.remove(RICH.libfoo);
    await fsp.unlink(t.abs(RICH.libfooLink));
    await t.symlink(RICH.libfooLink, 'libfoo.so.3.0.22');
  });
  // Moves.
  await step('move usr/share/doc/pkg -> usr/share/doc/pkg2', () => t.rename('usr/share/doc/pkg', 'usr/share/doc/pkg2'));
  await step('move odd/with space -> odd/moved with space', () => t.rename(ODD_NAMES.space, 'odd/moved with space'));
  // Deletions.
  await step('delete etc/old.conf', () => t.remove('etc/old.conf'));
  await step('delete usr/share/locale/msg-1*', async () => {
    for (let i = 10; i < 20; i++) await t.remove(`usr/share/locale/msg-${i}.mo`);
  });
  await step('delete dev/nvme-big', () => t.remove('dev/nvme-big'));
  // Content edits and additions.
  await step('edit usr/bin/tool', async () => t.file(RICH.tool, editedBinary(await fsp.readFile(t.abs(RICH.tool)), 42), 0o755));
  await step('append to etc/passwd', () => fsp.appendFile(t.abs('etc/passwd'), 'newuser:x:1001:1001::/home/newuser:/bin/sh\n'));
  await step('edit odd/caf\\xe9 (non-UTF-8 name)', () => t.file(ODD_NAMES.latin1, 'edited\n'));
  await step('add usr/bin/newtool and an empty dir', async () => {
    await t.file('usr/bin/newtool', binaryLike(50, 25_000), 0o755);
    await t.dir('var/lib/new-empty');
  });
  // Metadata-only changes.
  await step('chmod etc/hostname 0600', () => t.mode('etc/hostname', 0o600));
  await step('mtime only: etc/passwd changed anyway; etc/empty touched', () => t.mtime('etc/empty', 1_700_000_000_000_000_001n));
  await step('xattr change on README', () => t.xattr('usr/share/doc/pkg2/README', 'user.comment', 'hello again'));
  await step('setuid dropped from usr/bin/su', () => t.mode(RICH.setuid, 0o755));
  if (t.privileged) {
    await step('chown home/user/notes.txt 1001:1001', () => t.owner(RICH.userFile, 1001, 1001));
    await step('capability of usr/bin/ping changed', () => t.xattr(RICH.ping, 'security.capability', CAP_NET_ADMIN_EP));
    await step('dev/sda 8:0 -> 8:16', async () => {
      await t.remove('dev/sda');
      t.device('dev/sda', 'block', 8, 16);
    });
  }
  // Type changes.
  await step('file -> dir: etc/motd', async () => {
    await t.remove('etc/motd');
    await t.dir('etc/motd');
    await t.file('etc/motd/10-welcome', 'welcome, again\n');
  });
  await step('dir -> symlink: usr/share/olddir', async () => {
    await t.remove('usr/share/olddir');
    await t.symlink('usr/share/olddir', 'doc');
  });
  await step('symlink -> file: usr/bin/sh-link', async () => {
    await fsp.unlink(t.abs('usr/bin/sh-link'));
    await t.file('usr/bin/sh-link', binaryLike(51, 8_000), 0o755);
  });
  // Hardlink groups.
  await step('break usr/share/doc/c/copyright out of its group, add a name to pair-1', async () => {
    const c = RICH.hardlinkGroup[2];
    const content = await fsp.readFile(t.abs(c));
    await fsp.unlink(t.abs(c));
    await t.file(c, content);
    await t.hardlink('usr/share/doc/pkg2/pair-3', 'usr/share/doc/pkg2/pair-1');
  });
  await t.settleMtimes();
  return done;
}

// ---------------------------------------------------------------------------------------
// Copying with the tree module

/**
 * Recreates `src` at `dst` (which must not exist) the way a restorer does: nodes in path
 * order, files copied, metadata right after each non-directory, directories last.
 */
export async function cloneTree(src: string, dst: string, snapshot?: TreeSnapshot): Promise<RestoreReport> {
  const snap = snapshot ?? (await scanTree(src));
  const report = newRestoreReport();
  for (const entry of snap.entries) {
    const abs = toFsPath(dst, entry.path);
    if (entry.kind === 'file') {
      await copyFileEntry(dst, entry, toFsPath(src, entry.path));
      await applyMetadata(abs, entry, report);
    } else if ((await createNode(dst, entry, report)) && entry.kind !== 'dir') {
      await applyMetadata(abs, entry, report);
    }
  }
  await applyDirectoryMetadata(dst, snap.entries, report);
  return report;
}
