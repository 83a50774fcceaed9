/**
 * The app pair the Docker tests ship from A to B: B changes a config file, edits a large binary
 * in place, moves a file, deletes one, adds a file with a second hardlink, retargets a symlink and
 * changes a mode; setuid, file capabilities, non-root owners and ns mtimes are in both.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { chmod, chown, copyFile, link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fsext } from '../../src/tree/fsext.js';

/** security.capability for cap_net_bind_service=ep (VFS_CAP_REVISION_2). */
export const CAP_NET_BIND_SERVICE = Buffer.from('0100000200040000000000000000000000000000', 'hex');

export type Version = 'A' | 'B';

/**
 * Which of the paths a RUN mounts over the base the root has: all (like most distribution images),
 * all but the /etc files (like a debootstrap root), or none (like an app image FROM scratch).
 */
export type MountTargets = 'all' | 'no-etc-files' | 'none';

export interface AppRootOptions {
  targets?: MountTargets;
  /**
   * 'in-order': every path a different mtime, by walk order; 'by-path': taken from the path, so a
   * path B leaves alone keeps A's mtime (as in real image updates) and only edits show up.
   */
  mtimes?: 'in-order' | 'by-path';
}

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  for (let off = 0, i = 0; off < n; i++) off += createHash('sha256').update(`${seed}:${i}`).digest().copy(out, off);
  return out;
}

/** The app root in version A or B; `probe` is a static binary (buildStaticProbe) to run. */
export async function makeAppRoot(root: string, v: Version, probe: string, opts: AppRootOptions = {}): Promise<void> {
  const targets = opts.targets ?? 'none';
  for (const d of ['bin', 'etc', 'app/sub', 'srv', 'home/user', 'tmp']) await mkdir(join(root, d), { recursive: true });
  if (targets !== 'none') for (const d of ['dev', 'proc', 'sys']) await mkdir(join(root, d));
  if (targets === 'all') {
    await writeFile(join(root, 'etc/hosts'), '127.0.0.1 localhost\n');
    await writeFile(join(root, 'etc/resolv.conf'), '');
  }
  await makeBinaries(root, probe);
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/:/bin/probe\nuser:x:1000:1000::/home/user:/bin/probe\n');
  await writeFile(join(root, 'etc/app.conf'), v === 'A' ? 'version=1\n' : 'version=2\n');
  if (v === 'B') await writeFile(join(root, 'etc/other.conf'), 'other config\n');
  await makeApp(root, v);
  await makeOwnedFiles(root, v);
  if (opts.mtimes === 'by-path') await setMtimesByPath(root, v);
  else await setMtimesInOrder(root);
}

async function makeBinaries(root: string, probe: string): Promise<void> {
  await copyFile(probe, join(root, 'bin/probe'));
  await copyFile(probe, join(root, 'bin/suid'));
  await chown(join(root, 'bin/suid'), 1000, 1000);
  await chmod(join(root, 'bin/suid'), 0o4755);
  await copyFile(probe, join(root, 'bin/capped'));
  fsext().lsetxattr(Buffer.from(join(root, 'bin/capped')), 'security.capability', CAP_NET_BIND_SERVICE);
}

async function makeApp(root: string, v: Version): Promise<void> {
  const data = bytes(300_000, 'data');
  if (v === 'B') bytes(100, 'patch').copy(data, 150_000);
  await writeFile(join(root, 'app/data.bin'), v === 'A' ? data : Buffer.concat([data, bytes(5_000, 'tail')]));
  if (v === 'A') await writeFile(join(root, 'app/old.txt'), 'going away\n');
  await writeFile(join(root, v === 'A' ? 'app/moveme.dat' : 'app/sub/moved.dat'), bytes(65_536, 'moveme'));
  await writeFile(join(root, 'app/hard1'), 'shared by two names\n');
  await link(join(root, 'app/hard1'), join(root, 'app/hard2'));
  if (v === 'B') {
    await writeFile(join(root, 'app/new.txt'), 'brand new\n');
    await link(join(root, 'app/new.txt'), join(root, 'app/new-too.txt'));
  }
  await symlink(v === 'A' ? '../etc/app.conf' : '../etc/other.conf', join(root, 'app/link'));
}

async function makeOwnedFiles(root: string, v: Version): Promise<void> {
  await writeFile(join(root, 'srv/index.html'), v === 'A' ? '<h1>one</h1>\n' : '<h1>two</h1>\n');
  await chown(join(root, 'srv/index.html'), 33, 33);
  await chown(join(root, 'srv'), 33, 33);
  await chmod(join(root, 'srv'), 0o2775);
  await writeFile(join(root, 'home/user/secret'), 'token\n');
  await chmod(join(root, 'home/user/secret'), v === 'A' ? 0o600 : 0o640);
  await chown(join(root, 'home/user/secret'), 1000, 1000);
  await chown(join(root, 'home/user'), 1000, 1000);
  await chmod(join(root, 'home/user'), 0o700);
  await chmod(join(root, 'tmp'), 0o1777);
}

/** Sub-second mtimes on every path, children before their directories, each a different one. */
export async function setMtimesInOrder(root: string): Promise<void> {
  let i = 0;
  for (const rel of await pathsDepthFirst(root)) {
    const ns = (1_600_000_000n + BigInt(i++ * 3600)) * 1_000_000_000n + 123_456_789n;
    fsext().lutimesNs(Buffer.from(join(root, rel)), ns, ns);
  }
}

/** What B edits: these get a later mtime in B, everything else keeps A's. */
const EDITED_IN_B = new Set(['etc', 'etc/app.conf', 'app', 'app/sub', 'app/data.bin', 'srv/index.html']);

/** Sub-second mtimes taken from each path, so both versions agree on the paths B leaves alone. */
export async function setMtimesByPath(root: string, v: Version = 'A'): Promise<void> {
  for (const rel of await pathsDepthFirst(root)) {
    const seconds = 1_600_000_000n + BigInt(createHash('sha256').update(rel).digest().readUInt32BE(0) % 10_000_000);
    const later = v === 'B' && EDITED_IN_B.has(rel) ? 86_400n : 0n;
    const ns = (seconds + later) * 1_000_000_000n + 123_456_789n;
    fsext().lutimesNs(Buffer.from(join(root, rel)), ns, ns);
  }
}

async function pathsDepthFirst(root: string): Promise<string[]> {
  const { stdout } = await execa('find', [root, '-depth', '-printf', '%P\\n']);
  return stdout.split('\n');
}
