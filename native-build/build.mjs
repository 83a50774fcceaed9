#!/usr/bin/env node
/**
 * Builds deltaimg's two native pieces into prebuilds/<platform>-<arch>[-musl]/, where
 * src/tree/fsext.ts (the addon) and src/docker/runtime-image.ts (the launcher) look for them:
 *
 *   fsext.node          the N-API addon (native-build/fsext: xattrs, mknod, ns times, copyFiles, scanDirs)
 *   deltaimg-launcher   the static launcher of the runtime image (native-build/launcher.c; glibc targets)
 *
 *   node native-build/build.mjs           this machine's target (npm run build:native); skipped when
 *                                          the outputs are newer than their sources (--force rebuilds)
 *   node native-build/build.mjs --all     every target the package ships (npm pack's prepack): linux-x64,
 *                                          linux-arm64 (cross gcc) and linux-x64-musl (musl-gcc); fails,
 *                                          naming the Debian package, when a toolchain is missing
 *
 * No node-gyp: the addon is four C files compiled by the C compiler straight to a shared object.
 * N-API headers are architecture-independent and come from the node-api-headers package (or the
 * running node's include/node when that is absent), so nothing is downloaded. Each output is checked:
 * an ELF of the target's machine, the addon exporting napi_register_module_v1 (and on this machine's
 * target, loading and holding its functions), the launcher static.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { arch as hostArch } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkgRoot = dirname(here);
const require = createRequire(import.meta.url);

const EM_X86_64 = 62;
const EM_AARCH64 = 183;

/**
 * Every target the package ships. `cc` is the compiler per build machine architecture (Debian's
 * names); `apt` the package that provides it; `loader` the glibc loader the launcher runs.
 */
const TARGETS = [
  {
    name: 'linux-x64',
    machine: EM_X86_64,
    cc: { x64: 'gcc', arm64: 'x86_64-linux-gnu-gcc' },
    apt: { x64: 'gcc', arm64: 'gcc-x86-64-linux-gnu' },
    loader: 'ld-linux-x86-64.so.2',
  },
  {
    name: 'linux-arm64',
    machine: EM_AARCH64,
    cc: { x64: 'aarch64-linux-gnu-gcc', arm64: 'gcc' },
    apt: { x64: 'gcc-aarch64-linux-gnu', arm64: 'gcc' },
    loader: 'ld-linux-aarch64.so.1',
  },
  {
    // musl: no launcher (the runtime image bundles a glibc node). The addon links no libc at all
    // (-nostdlib): its libc symbols resolve from the musl node that loads it, so it needs neither
    // Debian's libc.so name nor Alpine's libc.musl-x86_64.so.1.
    name: 'linux-x64-musl',
    machine: EM_X86_64,
    cc: { x64: 'musl-gcc' },
    apt: { x64: 'musl-tools' },
    musl: true,
  },
];

const ADDON_SOURCES = ['fsext/fsext.c', 'fsext/common.c', 'fsext/copyfiles.c', 'fsext/scandirs.c'].map((f) => join(here, f));
/** Headers: not compiled themselves, but a change rebuilds. */
const ADDON_HEADERS = ['fsext/fsext.h'].map((f) => join(here, f));
const LAUNCHER_SOURCE = join(here, 'launcher.c');
const SELF = fileURLToPath(import.meta.url);

/** Temp outputs of this run, removed on any exit (a finished output is renamed out of this set first). */
const temps = new Set();
process.on('exit', () => {
  for (const t of temps) rmSync(t, { force: true });
});

function fail(message) {
  console.error(`native build: ${message}`);
  process.exit(1);
}

/** The target this node runs on, named the way src/tree/fsext.ts names it. */
function hostTarget() {
  const musl = process.report?.getReport().header.glibcVersionRuntime === undefined;
  return `${process.platform}-${process.arch}${musl ? '-musl' : ''}`;
}

function napiIncludeDir() {
  try {
    return dirname(require.resolve('node-api-headers/include/node_api.h'));
  } catch {
    const fromNode = join(dirname(dirname(process.execPath)), 'include/node');
    if (existsSync(join(fromNode, 'node_api.h'))) return fromNode;
    return fail(`no N-API headers: install the devDependency node-api-headers (npm ci) or a node with include/node/node_api.h`);
  }
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error?.code === 'ENOENT') return { missing: true };
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
  return { missing: false };
}

function upToDate(outputs, sources) {
  if (!outputs.every((o) => existsSync(o))) return false;
  const newest = Math.max(...sources.map((s) => statSync(s).mtimeMs));
  return outputs.every((o) => statSync(o).mtimeMs >= newest);
}

/** Compiles to a temp name, checks, then renames: a running process never sees half a file. */
function compile(cc, args, output, aptName) {
  const temp = `${output}.tmp-${process.pid}`;
  temps.add(temp);
  if (run(cc, [...args, '-o', temp]).missing) {
    fail(`${cc} not found: install it (Debian: apt-get install ${aptName}; scripts/setup.sh does)`);
  }
  return temp;
}

/** ELF header: 64-bit, little-endian, of the expected machine and type (ET_DYN 3, ET_EXEC 2). */
function checkElf(file, target, types) {
  const h = readFileSync(file).subarray(0, 20);
  const ok = h.readUInt32BE(0) === 0x7f454c46 && h[4] === 2 && h[5] === 1 && types.includes(h.readUInt16LE(16)) && (target.machine === undefined || h.readUInt16LE(18) === target.machine);
  if (!ok) fail(`${file} is not a 64-bit ELF for ${target.name}`);
}

/** readelf reads any architecture's ELF; the addon must export its N-API entry point. */
function checkExports(file) {
  const r = spawnSync('readelf', ['--dyn-syms', '--wide', file], { encoding: 'utf8' });
  if (r.status !== 0) fail(`readelf --dyn-syms ${file} failed: ${r.error?.message ?? r.stderr}`);
  const exported = r.stdout.split('\n').some((l) => / GLOBAL +DEFAULT +\d+ napi_register_module_v1$/.test(l.trim()));
  if (!exported) fail(`${file} does not export napi_register_module_v1`);
}

function checkLoads(file) {
  const module = { exports: {} };
  process.dlopen(module, file);
  const addon = module.exports;
  for (const fn of ['llistxattr', 'lgetxattr', 'lsetxattr', 'mknod', 'lutimesNs', 'copyFiles', 'scanDirs']) {
    if (typeof addon[fn] !== 'function') fail(`${file} loads but lacks ${fn}()`);
  }
}

function buildTarget(target, { force }) {
  const cc = target.cc[hostArch()];
  if (!cc) fail(`cannot build ${target.name} on a ${hostArch()} machine (no known compiler)`);
  const outDir = join(pkgRoot, 'prebuilds', target.name);
  const addon = join(outDir, 'fsext.node');
  const launcher = join(outDir, 'deltaimg-launcher');
  const outputs = target.loader ? [addon, launcher] : [addon];
  if (!force && upToDate(outputs, [...ADDON_SOURCES, ...ADDON_HEADERS, LAUNCHER_SOURCE, SELF])) {
    console.log(`native build: ${target.name} up to date`);
    return;
  }
  mkdirSync(outDir, { recursive: true });
  const apt = target.apt[hostArch()];

  const libc = target.musl ? ['-nostdlib', '-lgcc'] : [];
  const addonTemp = compile(
    cc,
    ['-shared', '-fPIC', '-O2', '-std=gnu11', '-Wall', '-Wextra', '-Werror=implicit-function-declaration', '-DNAPI_VERSION=8', '-D_GNU_SOURCE', '-DNODE_GYP_MODULE_NAME=fsext', `-I${napiIncludeDir()}`, ...ADDON_SOURCES, ...libc, '-s'],
    addon,
    apt,
  );
  checkElf(addonTemp, target, [3]);
  checkExports(addonTemp);
  if (target.name === hostTarget()) checkLoads(addonTemp);
  renameSync(addonTemp, addon);
  temps.delete(addonTemp);

  if (target.loader) {
    const launcherTemp = compile(cc, ['-static', '-Os', '-Wall', '-Wextra', `-DLOADER="${target.loader}"`, LAUNCHER_SOURCE, '-s'], launcher, apt);
    checkElf(launcherTemp, target, [2, 3]);
    renameSync(launcherTemp, launcher);
    temps.delete(launcherTemp);
  }
  console.log(`native build: ${target.name}: ${outputs.map((o) => o.slice(pkgRoot.length + 1)).join(', ')}`);
}

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--all' && a !== '--force');
if (unknown.length) fail(`unknown argument ${unknown[0]} (usage: node native-build/build.mjs [--all] [--force])`);
const force = args.includes('--force');
if (args.includes('--all')) {
  for (const target of TARGETS) buildTarget(target, { force });
} else {
  const host = hostTarget();
  const target = TARGETS.find((t) => t.name === host);
  // Any other Linux machine: the build from source, with its own cc and no launcher.
  buildTarget(target ?? { name: host, machine: undefined, cc: { [hostArch()]: 'cc' }, apt: { [hostArch()]: 'gcc' } }, { force });
}
