/**
 * The npm package as a user gets it: `npm pack` in a copy of the checkout (what a fresh clone
 * holds, so prepack must build everything), `npm install -g` of the tarball into a clean prefix,
 * then every verb run through the installed `deltaimg` with a PATH that has no compiler, no make
 * and no python (the prebuilt addon must load; nothing may try to build it).
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCKER, REPO_ROOT, describeDocker, docker, importTree } from './helpers/docker.js';
import { classicArchive, sha, writeTar } from './helpers/image-archives.js';

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const TARBALL = `deltaimg-${VERSION}.tgz`;
/** Build tools a machine without a compiler lacks; the restricted PATH leaves them out. */
const BUILD_TOOLS = /^(cc|c\+\+|g\+\+.*|gcc.*|cpp.*|clang.*|make|gmake|python.*|ld(\..*)?|as|musl-gcc|.*-linux-gnu-.*|node-gyp|tsc|strip)$/;

let work = '';
let pathNoCompiler = '';
let installed = '';
let unpacked = '';
const prepared = prepare();

/** Copy the checkout, pack it, install the tarball; resolves once, shared by every test here. */
async function prepare(): Promise<void> {
  work = await mkdtemp(join(tmpdir(), 'deltaimg-package-test-'));
  const src = join(work, 'src');
  const listed = await execa('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT });
  for (const file of listed.stdout.split('\0').filter((f) => f && existsSync(join(REPO_ROOT, f)))) {
    await mkdir(dirname(join(src, file)), { recursive: true });
    await copyFile(join(REPO_ROOT, file), join(src, file));
  }
  await symlink(join(REPO_ROOT, 'node_modules'), join(src, 'node_modules'));
  await execa('npm', ['pack', '--pack-destination', work, '--no-fund', '--no-audit'], { cwd: src });

  pathNoCompiler = await restrictedPath();
  const prefix = join(work, 'prefix');
  await execa('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-fund', '--no-audit', join(work, TARBALL)], {
    env: { PATH: pathNoCompiler },
  });
  installed = join(prefix, 'bin/deltaimg');
  unpacked = join(prefix, 'lib/node_modules/deltaimg');
}

/** A bin directory with every command of /usr/bin and /bin except build tools, plus this node. */
async function restrictedPath(): Promise<string> {
  const bin = join(work, 'bin');
  await mkdir(bin);
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    for (const name of await readdir(dir).catch(() => [])) {
      if (BUILD_TOOLS.test(name) || existsSync(join(bin, name)) || name === 'node' || name === 'npm' || name === 'npx') continue;
      await symlink(join(dir, name), join(bin, name));
    }
  }
  await symlink(process.execPath, join(bin, 'node'));
  for (const tool of ['npm', 'npx']) {
    const real = (await execa('sh', ['-c', `readlink -f "$(command -v ${tool})"`])).stdout.trim();
    await symlink(real, join(bin, tool));
  }
  return bin;
}

/** The installed deltaimg with the restricted PATH (plus `env`); text output, never rejecting. */
function deltaimg(args: string[], env: Record<string, string> = {}) {
  return execa(installed, args, {
    reject: false,
    env: { PATH: `${dirname(installed)}:${pathNoCompiler}`, DELTAIMG_DOCKER: DOCKER, ...env },
  });
}

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('npm package', () => {
  beforeAll(() => prepared);

  it('holds prebuilt addons and launchers for linux x64, arm64 and x64 musl, and no local build', async () => {
    const members = (await execa('tar', ['-tzf', join(work, TARBALL)])).stdout.split('\n');
    for (const must of [
      'package/dist/cli/main.js',
      'package/wasm/xdelta3.wasm',
      'package/prebuilds/linux-x64/fsext.node',
      'package/prebuilds/linux-x64/deltaimg-launcher',
      'package/prebuilds/linux-arm64/fsext.node',
      'package/prebuilds/linux-arm64/deltaimg-launcher',
      'package/prebuilds/linux-x64-musl/fsext.node',
    ]) {
      expect(members, must).toContain(must);
    }
    expect(members.filter((m) => m.startsWith('package/test/') || m.includes('/node_modules/'))).toEqual([]);
    // Each addon is an ELF of its machine exporting the N-API entry point.
    for (const [target, machine] of [
      ['linux-x64', 62],
      ['linux-arm64', 183],
      ['linux-x64-musl', 62],
    ] as const) {
      const file = join(unpacked, 'prebuilds', target, 'fsext.node');
      const elf = await readFile(file);
      expect(elf.readUInt32BE(0), target).toBe(0x7f454c46);
      expect(elf.readUInt16LE(18), target).toBe(machine);
      const syms = (await execa('readelf', ['--dyn-syms', '--wide', file])).stdout;
      expect(syms, target).toMatch(/ GLOBAL +DEFAULT +\d+ napi_register_module_v1$/m);
    }
    // musl: no libc named at all (Alpine's libc.musl-x86_64.so.1 is not Debian's libc.so).
    expect((await execa('readelf', ['-d', join(unpacked, 'prebuilds/linux-x64-musl/fsext.node')])).stdout).not.toMatch(/NEEDED/);
  });

  it('installs and runs with no compiler, make or python on PATH', async () => {
    const found = await execa('sh', ['-c', 'for t in cc gcc g++ make python3 python node-gyp; do command -v $t; done; true'], {
      env: { PATH: `${dirname(installed)}:${pathNoCompiler}` },
    });
    expect(found.stdout).toBe('');
    const v = await deltaimg(['--version']);
    expect(v.stdout, v.stderr).toBe(VERSION);
    const report = await deltaimg(['version', '--json']);
    expect(JSON.parse(report.stdout)).toMatchObject({
      version: VERSION,
      nativeAddon: { present: true, path: join(unpacked, `prebuilds/linux-${process.arch}/fsext.node`) },
    });
    const completion = await deltaimg(['completion', 'bash']);
    expect(completion.exitCode, completion.stderr).toBe(0);
    expect((await execa('bash', ['-n'], { input: completion.stdout, reject: false })).exitCode).toBe(0);
    expect(completion.stdout).toContain('complete -o filenames -F _deltaimg deltaimg');
  });

  it('diff, inspect and apply two trees, restored exactly', async () => {
    const a = join(work, 'tree-a');
    const b = join(work, 'tree-b');
    await writeTree(a, { 'etc/app.conf': 'mode=a\n', 'bin/tool': Buffer.alloc(64 * 1024, 7), 'share/old.txt': 'old\n' });
    const big = Buffer.alloc(64 * 1024, 7);
    big.write('patched', 4096);
    await writeTree(b, { 'etc/app.conf': 'mode=b\n', 'bin/tool': big, 'share/new.txt': 'new\n' });
    await chmod(join(b, 'bin/tool'), 0o755);
    await symlink('app.conf', join(b, 'etc/link'));

    const d = await deltaimg(['diff', a, b, '--out', join(work, 'a-to-b'), '--json']);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(JSON.parse(d.stdout)).toMatchObject({ delta: join(work, 'a-to-b') });
    const i = await deltaimg(['inspect', join(work, 'a-to-b'), '--json']);
    expect(i.exitCode, i.stderr).toBe(0);
    const ap = await deltaimg(['apply', a, join(work, 'a-to-b'), '--out', join(work, 'tree-b2'), '--json']);
    expect(ap.exitCode, ap.stderr).toBe(0);
    expect(JSON.parse(ap.stdout)).toMatchObject({ verified: true });
    const cmp = await execa('diff', ['-r', '--no-dereference', b, join(work, 'tree-b2')], { reject: false });
    expect(cmp.exitCode, cmp.stdout).toBe(0);
    expect((await execa('stat', ['-c', '%a', join(work, 'tree-b2/bin/tool')])).stdout).toBe('755');
  });

  it('vcdiff encode and decode', async () => {
    const old = join(work, 'old.bin');
    const neu = join(work, 'new.bin');
    const base = randomBytes(200_000);
    await writeFile(old, base);
    await writeFile(neu, Buffer.concat([base.subarray(0, 100_000), Buffer.from('inserted'), base.subarray(100_000)]));
    const e = await deltaimg(['vcdiff', 'encode', '-s', old, neu, join(work, 'x.vcdiff')]);
    expect(e.exitCode, e.stderr).toBe(0);
    const dec = await deltaimg(['vcdiff', 'decode', '-s', old, join(work, 'x.vcdiff'), join(work, 'new2.bin')]);
    expect(dec.exitCode, dec.stderr).toBe(0);
    expect((await readFile(join(work, 'new2.bin'))).equals(await readFile(neu))).toBe(true);
  });

  it('image diff, apply, verify and inspect on docker-archive tars', async () => {
    const layerA = await layerTar({ 'etc/os-release': 'ID=test\nVERSION=1\n', 'usr/lib/libx.so.1': Buffer.alloc(50_000, 3) });
    const libB = Buffer.alloc(50_000, 3);
    libB.write('v2', 1000);
    const layerB = await layerTar({ 'etc/os-release': 'ID=test\nVERSION=2\n', 'usr/lib/libx.so.1': libB });
    const configA = imageConfig([sha(layerA)]);
    const configB = imageConfig([sha(layerB)]);
    const aTar = join(work, 'a.tar');
    const bTar = join(work, 'b.tar');
    await writeTar(aTar, classicArchive(configA, [layerA], 'deltaimg-test/pkg-a:1'));
    await writeTar(bTar, classicArchive(configB, [layerB], 'deltaimg-test/pkg-b:1'));

    const dimg = join(work, 'a-to-b.dimg');
    const d = await deltaimg(['image', 'diff', `docker-archive:${aTar}`, `docker-archive:${bTar}`, '-o', dimg]);
    expect(d.exitCode, d.stderr).toBe(0);
    const restored = join(work, 'b-restored.tar');
    const ap = await deltaimg(['image', 'apply', `docker-archive:${aTar}`, dimg, '-o', `docker-archive:${restored}`, '--json']);
    expect(ap.exitCode, ap.stderr).toBe(0);
    expect(JSON.parse(ap.stdout)).toMatchObject({ verified: true, images: [expect.objectContaining({ configDigest: sha(configB) })] });
    const v = await deltaimg(['image', 'verify', `docker-archive:${restored}`, '--against', dimg]);
    expect(v.exitCode, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toContain(`exactly the expected image ${sha(configB)}`);
    const i = await deltaimg(['image', 'inspect', dimg, '--json']);
    expect(i.exitCode, i.stderr).toBe(0);
    expect(JSON.stringify(JSON.parse(i.stdout))).toContain(sha(configB));
  });

  it('npx runs the packed tarball', async () => {
    const r = await execa('npx', ['--yes', `--package=${join(work, TARBALL)}`, '--', 'deltaimg', '--version'], {
      env: { PATH: pathNoCompiler, npm_config_cache: join(work, 'npx-cache'), npm_config_prefer_offline: 'true' },
      reject: false,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(VERSION);
  });
});

describeDocker('npm package with Docker', () => {
  const tag = `deltaimg-test/${randomBytes(3).toString('hex')}-pkg`;
  const runtime = `${tag}-runtime:1`;
  beforeAll(() => prepared);
  afterAll(async () => {
    await execa(DOCKER, ['rmi', '-f', runtime, `${tag}-a:1`, `${tag}-b:1`], { reject: false });
  });

  it('runtime build makes the runtime image from the installed package, and dockerfile diff uses it', async () => {
    const r = await deltaimg(['runtime', 'build', '--tag', runtime, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ tag: runtime });
    expect(await docker(['run', '--rm', '--network=none', runtime, '--version'])).toBe(VERSION);

    for (const [v, text] of [
      ['a', 'one\n'],
      ['b', 'two\n'],
    ] as const) {
      const dir = join(work, `img-${v}`);
      await writeTree(dir, { 'etc/v': text });
      await importTree(dir, `${tag}-${v}:1`);
    }
    // Docker 20.10 runs BuildKit only when asked: the builder check would refuse otherwise.
    const d = await deltaimg(['dockerfile', 'diff', `${tag}-a:1`, `${tag}-b:1`, '--runtime-image', runtime], {
      DOCKER_BUILDKIT: '1',
    });
    expect(d.exitCode, d.stderr).toBe(0);
    expect(d.stdout).toContain(`from=${runtime},source=/opt/deltaimg`);
    expect(d.stdout).toMatch(new RegExp(`^FROM ${tag}-a:1$`, 'm'));
  });
});

async function writeTree(root: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [rel, data] of Object.entries(files)) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), data);
  }
}

async function layerTar(files: Record<string, string | Buffer>): Promise<Buffer> {
  const pack = tar.pack();
  const dirs = new Set<string>();
  for (const rel of Object.keys(files)) {
    for (let d = dirname(rel); d !== '.'; d = dirname(d)) dirs.add(d);
  }
  for (const d of [...dirs].sort()) pack.entry({ name: `${d}/`, type: 'directory', mode: 0o755, mtime: new Date(1_700_000_000_000) });
  for (const [rel, data] of Object.entries(files)) pack.entry({ name: rel, mode: 0o644, mtime: new Date(1_700_000_000_000) }, data);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function imageConfig(diffIds: string[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/usr/bin:/bin'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );
}
