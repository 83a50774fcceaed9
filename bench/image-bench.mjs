#!/usr/bin/env node
/**
 * The image-archive benchmark (issue #5): what an air-gapped site carries to turn A into B.
 *
 *   npm run bench:image          (= npm run build && node bench/image-bench.mjs)
 *   node bench/image-bench.mjs --markdown-only      # RESULTS-image.md again from results-image.json
 *   BENCH_PAIRS=npm-app node bench/image-bench.mjs  # some pairs only
 *
 * For each pair of images (made here from bench/fetch-data.sh's trees, `docker import` and
 * `docker build` FROM them, nothing pulled) and their `docker save` archives:
 *   - `deltaimg image diff` and `image apply` under GNU time (wall time, peak RSS);
 *   - the .dimg's size vs `docker save B | gzip -6` (what you would carry otherwise) and vs the
 *     Dockerfile route's delta layer (from bench/results-docker.json when `npm run bench:docker` ran);
 *   - exactness: `image verify --against` of the restored archive, and `docker load` of it gives B's id.
 * Writes bench/results-image.json and bench/RESULTS-image.md; removes the images it made.
 */
import { execa } from 'execa';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { runMeasured } from './lib/measure.mjs';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const DOCKER = process.env.DELTAIMG_DOCKER ?? (existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker');
const ENV = { ...process.env, DOCKER_BUILDKIT: '1', BUILDKIT_PROGRESS: 'plain', DELTAIMG_DOCKER: DOCKER };
const CLI = join(ROOT, 'dist/cli/main.js');
const WORK = join(ROOT, 'bench/work/image');
const TREES = join(ROOT, 'bench/data/trees');

/**
 * one-layer: both images are `docker import`s of a tree (nothing shared: every file is delta'd).
 * stacked: a base layer plus an app layer (COPY), where both the base and the app moved on.
 * app-only: the same base layer, only the app layer changed (the shared layer is referenced).
 */
const PAIRS = [
  { name: 'debian', what: 'Debian bookworm minbase -> after a point-release upgrade (one layer each)', make: oneLayer('debian') },
  { name: 'npm-app', what: 'an app folder with npm dependencies at two versions (one layer each)', make: oneLayer('npm-app') },
  {
    name: 'stacked',
    what: 'Debian base + npm app layer (+ the empty layer BuildKit commits for WORKDIR); both base and app upgraded',
    make: stacked(true),
  },
  { name: 'app-only', what: 'the same Debian base layer (+ the empty WORKDIR layer), npm app layer upgraded', make: stacked(false) },
];

function log(msg) {
  process.stderr.write(`image-bench: ${msg}\n`);
}

async function docker(args, opts = {}) {
  return (await execa(DOCKER, args, { env: ENV, ...opts })).stdout.trim();
}

async function importTree(dir, ref) {
  const tarTree = execa('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '--posix', '-C', dir, '-cf', '-', '.'], {
    buffer: false,
  });
  await tarTree.pipe(DOCKER, ['import', '-', ref], { env: ENV });
}

function oneLayer(tree) {
  return async (refs) => {
    await importTree(join(TREES, tree, 'a'), refs.a);
    await importTree(join(TREES, tree, 'b'), refs.b);
    return [refs.a, refs.b];
  };
}

/** Base image + `COPY` of an app tree; `upgradeBase`: B's base is Debian b, else the same Debian a. */
function stacked(upgradeBase) {
  return async (refs) => {
    const baseA = `${refs.a}-base`;
    const baseB = upgradeBase ? `${refs.b}-base` : baseA;
    await importTree(join(TREES, 'debian', 'a'), baseA);
    if (upgradeBase) await importTree(join(TREES, 'debian', 'b'), baseB);
    const ctx = join(TREES, 'npm-app');
    for (const [ref, base, app] of [
      [refs.a, baseA, 'a'],
      [refs.b, baseB, 'b'],
    ]) {
      await execa(DOCKER, ['build', '--network=none', '-t', ref, '-f', '-', ctx], {
        env: ENV,
        input: `FROM ${base}\nCOPY ${app}/ /srv/app/\nWORKDIR /srv/app\nENV NODE_ENV=production\n`,
      });
    }
    return [refs.a, refs.b, baseA, baseB];
  };
}

async function gzipBytes(file) {
  const r = await execa('bash', ['-c', 'set -o pipefail; gzip -6 -c "$1" | wc -c', 'bash', file]);
  return Number(r.stdout.trim());
}

function dockerRouteBytes(pair) {
  const file = join(ROOT, 'bench/results-docker.json');
  if (!existsSync(file)) return undefined;
  const report = JSON.parse(readFileSync(file, 'utf8'));
  return report.pairs?.find((p) => p.pair === pair)?.receiver?.pullAToB?.servedBytes;
}

async function benchPair(pair) {
  const dir = join(WORK, pair.name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const refs = { a: `bench-image/${pair.name}:a`, b: `bench-image/${pair.name}:b` };
  let made = [];
  try {
    log(`${pair.name}: making images`);
    made = await pair.make(refs);
    const archive = { a: join(dir, 'a.tar'), b: join(dir, 'b.tar') };
    await docker(['save', '-o', archive.a, refs.a]);
    await docker(['save', '-o', archive.b, refs.b]);
    const bId = await docker(['image', 'inspect', '--format', '{{.Id}}', refs.b]);
    const layers = {
      a: JSON.parse(await docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', refs.a])),
      b: JSON.parse(await docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', refs.b])),
    };

    log(`${pair.name}: image diff`);
    const dimg = join(dir, 'a-to-b.dimg');
    const diff = await runMeasured([
      'node',
      CLI,
      'image',
      'diff',
      `docker-archive:${archive.a}`,
      `docker-archive:${archive.b}`,
      '-o',
      dimg,
      '--json',
      '--tmp-dir',
      dir,
    ]);
    if (!diff.ok) throw new Error(`image diff failed: ${diff.error}`);
    log(`${pair.name}: image apply`);
    const restored = join(dir, 'b-restored.tar');
    const apply = await runMeasured([
      'node',
      CLI,
      'image',
      'apply',
      `docker-archive:${archive.a}`,
      dimg,
      '-o',
      `docker-archive:${restored}`,
      '-q',
      '--tmp-dir',
      dir,
    ]);
    if (!apply.ok) throw new Error(`image apply failed: ${apply.error}`);
    const verify = await execa('node', [CLI, 'image', 'verify', `docker-archive:${restored}`, '--against', dimg], { reject: false });
    await docker(['rmi', refs.b]);
    const loaded = await docker(['load', '-i', restored]);
    const restoredId = await docker(['image', 'inspect', '--format', '{{.Id}}', refs.b]);
    const report = JSON.parse(diff.stdout);
    return {
      pair: pair.name,
      what: pair.what,
      layers: { a: layers.a.length, b: layers.b.length, shared: layers.b.filter((l) => layers.a.includes(l)).length },
      bytes: {
        saveB: statSync(archive.b).size,
        saveBGzip: await gzipBytes(archive.b),
        newLayers: report.newLayerBytes,
        dimg: statSync(dimg).size,
        dockerRoute: dockerRouteBytes(pair.name),
      },
      diff: { seconds: diff.seconds, peakRssBytes: diff.peakRssBytes },
      apply: { seconds: apply.seconds, peakRssBytes: apply.peakRssBytes },
      exact: { verify: verify.exitCode === 0, loadedId: restoredId, originalId: bId, sameId: restoredId === bId, loaded },
    };
  } finally {
    await execa(DOCKER, ['rmi', '-f', refs.a, refs.b, ...made], { env: ENV, reject: false });
    await rm(dir, { recursive: true, force: true });
  }
}

const MB = (n) => `${(n / 1e6).toFixed(2)} MB`;
const KB = (n) => (n === undefined ? 'n/a' : n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : MB(n));
const S = (s) => `${s.toFixed(1)} s`;
const MiB = (n) => `${(n / 2 ** 20).toFixed(0)} MiB`;

function markdown(r) {
  const m = r.machine;
  const rows = r.pairs
    .map((p) => {
      const b = p.bytes;
      return `| ${p.pair} | ${p.layers.b} (${p.layers.shared} shared) | ${MB(b.saveBGzip)} | ${KB(b.dockerRoute)} | **${KB(b.dimg)}** | ${(b.saveBGzip / b.dimg).toFixed(0)}x | ${S(p.diff.seconds)} / ${MiB(p.diff.peakRssBytes)} | ${S(p.apply.seconds)} / ${MiB(p.apply.peakRssBytes)} | ${p.exact.sameId && p.exact.verify ? 'same id' : '**differs**'} |`;
    })
    .join('\n');
  return `# Image-archive benchmark: carrying B as a .dimg

Made by \`npm run bench:image\` (bench/image-bench.mjs) on ${r.date}.
Machine: ${m.cpu}, ${m.cores} cores, ${(m.ramBytes / 2 ** 30).toFixed(1)} GiB RAM, Linux ${m.kernel}, Docker ${m.docker}, node ${m.node}.
Cores were shared with other work (load average ${m.load.toFixed(1)} at the start): times are indicative.

What a site that has image A must carry to get image B, bit for bit (\`docker load\` of the restored
archive gives B's image id), vs carrying \`docker save B | gzip -6\`, and vs the Dockerfile route's
delta layer (what \`docker pull\` of A-TO-B downloads; bench/RESULTS-docker.md; one-layer pairs only).

| pair | B's layers | docker save B, gzip'd | Dockerfile route | .dimg | saving | diff time / peak RSS | apply time / peak RSS | restored |
|---|---|---|---|---|---|---|---|---|
${rows}

Pairs:
${r.pairs.map((p) => `- **${p.pair}**: ${p.what}.`).join('\n')}

The .dimg rebuilds each of B's layers that A lacks as its exact tar: file contents as per-file
deltas against A's root filesystem, tar headers (and files of at most 16 KiB) in a skeleton encoded
against A's. It holds more than the Dockerfile route's delta (every tar header byte, so B's exact id),
yet comes out about the same size. Layers B shares with A cost nothing but their diff_id.
`;
}

async function main() {
  const jsonFile = join(ROOT, 'bench/results-image.json');
  const mdFile = join(ROOT, 'bench/RESULTS-image.md');
  if (process.argv.includes('--markdown-only')) {
    await writeFile(mdFile, markdown(JSON.parse(readFileSync(jsonFile, 'utf8'))));
    return;
  }
  const wanted = process.env.BENCH_PAIRS?.split(',');
  const pairs = PAIRS.filter((p) => !wanted || wanted.includes(p.name));
  for (const t of ['debian', 'npm-app']) {
    if (!existsSync(join(TREES, t, 'b'))) throw new Error(`${join(TREES, t)} is missing: run bash bench/fetch-data.sh first`);
  }
  const report = {
    date: new Date().toISOString(),
    machine: {
      cpu: readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? 'unknown',
      cores: os.cpus().length,
      ramBytes: os.totalmem(),
      kernel: os.release(),
      docker: await docker(['version', '--format', '{{.Server.Version}}']),
      node: process.version,
      load: os.loadavg()[0],
    },
    pairs: [],
  };
  for (const pair of pairs) {
    report.pairs.push(await benchPair(pair));
    log(`${pair.name}: ${JSON.stringify(report.pairs.at(-1).bytes)}`);
  }
  await writeFile(jsonFile, JSON.stringify(report, null, 2) + '\n');
  await writeFile(mdFile, markdown(report));
  log(`wrote ${mdFile}`);
}

await main();
