#!/usr/bin/env node
// Compiled-binary pairs (issue #10's targets), side by side in one run: deltaimg's tree delta (gzip'd
// delta dir, diff and apply under the default memory budget), `zstd -19 --long=31 --patch-from` and
// `xdelta3 -9` on the trees' tars, each under /usr/bin/time -v (wall, CPU, peak RSS), every deltaimg
// restore compared with B. HDiffPatch is in neither Debian bookworm nor npm, so it has no row.
// Writes bench/results-binaries.json and re-renders bench/RESULTS.md.
//
// usage: nice -n 10 node bench/binaries.mjs [--pairs go-amd64,go-arm64,rust-x64,rust-arm64,node-swc,big] [--fetch-only] [--no-peers]
//   --fetch-only  build the pairs' trees in bench/data/binaries/ and stop
//   --no-peers    deltaimg only (after a code change): zstd, xdelta3 and HDiffPatch columns kept from the last run
//
// Every pair is built from public packages, fetched once into bench/data/binaries/:
//   go-*     containerd 1.6.20~ds1-1+deb12u2 -> deb12u3 (Debian bookworm-security -> bookworm point
//            release; a Go service rebuilt with a security patch), the whole package tree, amd64 / arm64
//            (apt-get download containerd:ARCH=VERSION; arm64 needs `dpkg --add-architecture arm64`)
//   rust-*   Biome (a Rust program) 2.6.8 -> 2.6.9, @biomejs/cli-linux-{x64,arm64} from npm (npm pack)
//   node-swc a Node app's node_modules: @next/swc-linux-x64-gnu (a ~130 MB native addon) 16.4.5 ->
//            16.4.6 with typescript, esbuild and lodash a patch release apart (npm install)
//   big      a derived 1.1 GiB executable-like sparse file: containerd at 0, ctr at 256 MiB,
//            containerd-shim-runc-v2 at 1 GiB, holes between; B has the newer builds at the same places
//            and containerd again at 512 MiB (moved code). For the memory target: larger than the
//            budget, so diffed in bsdiff segments; deltaimg only (no peers).
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
  ftruncateSync,
} from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildOnce } from './lib/build-once.mjs';
import { hdiffpatchTools } from './lib/hdiffpatch.mjs';
import {
  cliUnderTest,
  compareTrees,
  freshPath,
  gzipLayerBytes,
  machineInfo,
  runAlternating,
  runMeasured,
  slimRun,
  treeStats,
  writeResultsJson,
} from './lib/measure.mjs';
import { measureHdiffpatch, measureTarPeers, tarOf, zstdApplyArgv } from './lib/peers.mjs';
import { keptSections, renderMarkdown } from './lib/report.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const DATA = join(BENCH, 'data', 'binaries');
const WORK = join(BENCH, 'work', 'binaries');
const { cli: CLI, commit: CLI_COMMIT } = cliUnderTest(BENCH);
const RESULTS_JSON = join(BENCH, 'results-binaries.json');
const MiB = 1024 * 1024;
/** Runs of each side of the apply-speed comparison (Go pairs). */
const APPLY_REPEAT = 3;

const CONTAINERD = ['1.6.20~ds1-1+deb12u2', '1.6.20~ds1-1+deb12u3'];
const BIOME = ['2.6.8', '2.6.9'];
const NODE_APP = [
  ['@next/swc-linux-x64-gnu@16.4.5', 'typescript@5.8.2', 'esbuild@0.25.4', 'lodash@4.17.20'],
  ['@next/swc-linux-x64-gnu@16.4.6', 'typescript@5.8.3', 'esbuild@0.25.5', 'lodash@4.17.21'],
];

/** The extracted tree of a Debian package version. */
function debTree(pkg, arch, version) {
  return buildOnce(join(DATA, `${pkg}_${version}_${arch}`), (tmp) => {
    const dl = join(tmp, '.dl');
    mkdirSync(dl);
    execFileSync('apt-get', ['download', '-q', `${pkg}:${arch}=${version}`], { cwd: dl, stdio: ['ignore', 'ignore', 'inherit'] });
    const deb = readdirSync(dl).find((f) => f.endsWith('.deb'));
    execFileSync('dpkg-deb', ['-x', join(dl, deb), tmp]);
    rmSync(dl, { recursive: true });
  });
}

/** The `package/` tree of an npm package version (npm pack, then tar -x). */
function npmTree(spec) {
  return buildOnce(join(DATA, spec.replace(/[/@]/g, '_')), (tmp) => {
    const tgz = execFileSync('npm', ['pack', '-q', spec], { cwd: tmp, encoding: 'utf8' }).trim().split('\n').pop();
    execFileSync('tar', ['-xzf', tgz, '--strip-components=1'], { cwd: tmp });
    rmSync(join(tmp, tgz));
  });
}

/** A Node app's root: package.json and node_modules from `npm install` of `specs` (scripts not run). */
function nodeApp(name, specs) {
  return buildOnce(join(DATA, name), (tmp) => {
    writeFileSync(join(tmp, 'package.json'), JSON.stringify({ name: 'bench-app', version: '1.0.0', private: true }) + '\n');
    execFileSync('npm', ['install', '-q', '--no-audit', '--no-fund', '--ignore-scripts', ...specs], {
      cwd: tmp,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    rmSync(join(tmp, 'package-lock.json'), { force: true });
  });
}

/** A sparse file of `size` bytes with `parts` ([offset, path]) written at their offsets, holes elsewhere. */
function sparseFile(out, size, parts) {
  const fd = openSync(out, 'w');
  try {
    for (const [offset, path] of parts) {
      const bytes = readFileSync(path);
      writeSync(fd, bytes, 0, bytes.length, offset);
    }
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

function bigPair() {
  const [a, b] = CONTAINERD.map((v) => debTree('containerd', 'amd64', v));
  const size = 1024 * MiB + 128 * MiB;
  const parts = (root) => [
    [0, join(root, 'usr/bin/containerd')],
    [256 * MiB, join(root, 'usr/bin/ctr')],
    [1024 * MiB, join(root, 'usr/bin/containerd-shim-runc-v2')],
  ];
  return {
    a: buildOnce(join(DATA, 'big-a'), (tmp) => sparseFile(join(tmp, 'big.bin'), size, parts(a))),
    // B: the newer builds at the same places, and containerd once more at 512 MiB (code moved far).
    b: buildOnce(join(DATA, 'big-b'), (tmp) =>
      sparseFile(join(tmp, 'big.bin'), size, [...parts(b), [512 * MiB, join(b, 'usr/bin/containerd')]]),
    ),
  };
}

const PAIRS = {
  'go-amd64': {
    label: `Go: containerd ${CONTAINERD[0]} -> deb12u3, amd64 (package tree)`,
    applySpeed: true,
    trees: () => pairOf(CONTAINERD.map((v) => debTree('containerd', 'amd64', v))),
  },
  'go-arm64': {
    label: `Go: containerd ${CONTAINERD[0]} -> deb12u3, arm64 (package tree)`,
    applySpeed: true,
    trees: () => pairOf(CONTAINERD.map((v) => debTree('containerd', 'arm64', v))),
  },
  'rust-x64': {
    label: `Rust: Biome ${BIOME[0]} -> ${BIOME[1]}, x64 (@biomejs/cli-linux-x64)`,
    trees: () => pairOf(BIOME.map((v) => npmTree(`@biomejs/cli-linux-x64@${v}`))),
  },
  'rust-arm64': {
    label: `Rust: Biome ${BIOME[0]} -> ${BIOME[1]}, arm64 (@biomejs/cli-linux-arm64)`,
    trees: () => pairOf(BIOME.map((v) => npmTree(`@biomejs/cli-linux-arm64@${v}`))),
  },
  'node-swc': {
    label: 'Node app: @next/swc-linux-x64-gnu 16.4.5 -> 16.4.6 + typescript, esbuild, lodash',
    trees: () => pairOf([nodeApp('node-app-a', NODE_APP[0]), nodeApp('node-app-b', NODE_APP[1])]),
  },
  // Peers skipped: the pair is for the memory target, and zstd -19 --long=31 on a 1.2 GB tar takes GBs and many minutes.
  big: {
    label: '1.1 GiB executable-like sparse file (derived: containerd, ctr, shim; containerd also moved 512 MiB away)',
    trees: bigPair,
    peers: false,
  },
};

const pairOf = ([a, b]) => ({ a, b });

async function measurePair(id, tools) {
  const pair = PAIRS[id];
  console.error(`binaries: ${id}: fetching`);
  const { a, b } = pair.trees();
  const work = join(WORK, id);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const result = { id, label: pair.label, target: treeStats(b), targetGzipBytes: gzipLayerBytes(b) };

  console.error(`binaries: ${id}: deltaimg diff`);
  const delta = join(work, 'delta');
  const diff = await runMeasured(['node', CLI, 'diff', '-q', '--json', a, b, '--out', delta]);
  result.deltaimg = { diff: slimRun(diff) };
  if (diff.ok) {
    const summary = JSON.parse(diff.stdout);
    result.deltaimg.layerBytes = gzipLayerBytes(delta);
    result.deltaimg.payloadBytes = summary.stats.payloadBytes;
    result.deltaimg.minReaderVersion = JSON.parse(readFileSync(join(delta, 'deltaimg.json'), 'utf8')).minReaderVersion;
    result.deltaimg.largest = summary.largest.slice(0, 3);
    console.error(`binaries: ${id}: deltaimg apply`);
    const restored = join(work, 'restored');
    const apply = await runMeasured(['node', CLI, 'apply', '-q', a, delta, '--out', restored]);
    result.deltaimg.apply = slimRun(apply);
    if (apply.ok) {
      result.deltaimg.compare = await compareTrees(b, restored);
      const big = join(restored, 'big.bin');
      if (existsSync(big)) result.deltaimg.restoredDiskBytes = statSync(big).blocks * 512;
    }
    rmSync(restored, { recursive: true, force: true });
  }

  if (pair.peers === false) {
    rmSync(work, { recursive: true, force: true });
    return { ...result, zstd: { skipped: true }, xdelta3: { skipped: true } };
  }
  const log = (m) => console.error(`binaries: ${id}: ${m}`);
  if (tools) {
    Object.assign(result, await measureTarPeers(a, b, work, log, { keep: true }), { peersMeasuredAt: new Date().toISOString() });
    result.hdiffpatch = await measureHdiffpatch(tools, a, b, work, log);
  } else if (pair.applySpeed) {
    // --no-peers: the peers' columns are kept from the last run, but the apply comparison needs zstd's patch.
    log('zstd patch for the apply comparison (not timed)');
    const zst = join(work, 'b.tar.zst');
    const aTar = tarOf(a, join(work, 'a.tar'));
    execFileSync('zstd', ['-q', '-f', '-19', '--long=31', `--patch-from=${aTar}`, tarOf(b, join(work, 'b.tar')), '-o', zst]);
    result.files = { aTar, zst };
  }
  if (pair.applySpeed && diff.ok && result.files) result.applyVsZstd = await applyVsZstd(id, a, delta, result.files, work);
  delete result.files;
  rmSync(work, { recursive: true, force: true });
  return result;
}

/**
 * The apply-speed target: deltaimg apply vs what a zstd user runs (decode B's tar from A's, extract it),
 * APPLY_REPEAT runs each, alternating, every output removed (and synced) first; medians kept.
 */
async function applyVsZstd(id, a, delta, files, work) {
  console.error(`binaries: ${id}: apply / zstd -d + tar -x, x${APPLY_REPEAT} alternating`);
  const ours = join(work, 'apply-out');
  const theirs = join(work, 'zstd-out');
  const runs = await runAlternating(
    [
      { key: 'deltaimg', argv: ['node', CLI, 'apply', '-q', a, delta, '--out', ours], before: () => freshPath(ours) },
      { key: 'zstd', argv: zstdApplyArgv(files.aTar, files.zst, theirs), before: () => freshPath(theirs) },
    ],
    APPLY_REPEAT,
  );
  return { deltaimg: slimRun(runs.deltaimg), zstdExtract: slimRun(runs.zstd) };
}

/** What --no-peers keeps from the previous run of a pair (the native tools do not change between runs). */
const PEER_KEYS = ['zstd', 'xdelta3', 'hdiffpatch', 'aTarBytes', 'bTarBytes', 'peersMeasuredAt'];

async function main() {
  const only = process.argv.includes('--pairs') ? process.argv[process.argv.indexOf('--pairs') + 1].split(',') : Object.keys(PAIRS);
  if (process.argv.includes('--fetch-only')) {
    for (const id of only) console.error(`binaries: ${id}: ${JSON.stringify(PAIRS[id].trees())}`);
    return;
  }
  const machine = { ...machineInfo(), commit: CLI_COMMIT };
  const peers = !process.argv.includes('--no-peers');
  const tools = peers ? hdiffpatchTools(join(BENCH, 'data')) : null;
  for (const id of only) {
    const measured = await measurePair(id, tools);
    // Merged into the file after every pair (re-read each time: runs of other pairs may write it too).
    const file = existsSync(RESULTS_JSON) ? JSON.parse(readFileSync(RESULTS_JSON, 'utf8')) : { pairs: [] };
    const previous = file.pairs;
    const previousCommit = file.machine?.commit;
    const before = previous.find((p) => p.id === id);
    // "Today's" size, the "no larger than today" reference: the first measurement kept across re-runs.
    const baseline =
      before?.baseline ??
      (before?.deltaimg.layerBytes ? { layerBytes: before.deltaimg.layerBytes, commit: before.commit ?? previousCommit } : undefined);
    const kept = peers || !before ? {} : Object.fromEntries(PEER_KEYS.filter((k) => before[k] !== undefined).map((k) => [k, before[k]]));
    const row = { ...measured, ...kept, commit: machine.commit, measuredAt: new Date().toISOString(), ...(baseline ? { baseline } : {}) };
    const all = [...previous.filter((p) => p.id !== id), row];
    all.sort((x, y) => Object.keys(PAIRS).indexOf(x.id) - Object.keys(PAIRS).indexOf(y.id));
    writeResultsJson(RESULTS_JSON, {
      machine: {
        ...machine,
        loadAverageAtEnd: loadavg().map((x) => Number(x.toFixed(2))),
        hdiffpatch: tools ? { version: tools.version, source: tools.source } : file.machine?.hdiffpatch,
      },
      pairs: all,
    });
  }
  const resultsJson = join(BENCH, 'results.json');
  const resultsMd = join(BENCH, 'RESULTS.md');
  if (existsSync(resultsJson))
    writeFileSync(resultsMd, renderMarkdown(JSON.parse(readFileSync(resultsJson, 'utf8'))) + keptSections(resultsMd));
}

await main();
