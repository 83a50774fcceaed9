#!/usr/bin/env node
/**
 * The registry benchmark (issue #11): what a client holding image A downloads to get B.
 *
 *   npm run build && node bench/registry-bench.mjs       (needs bash bench/fetch-data.sh --quick)
 *   node bench/registry-bench.mjs --markdown-only        # RESULTS-registry.md again from results-registry.json
 *
 * A private docker-registry (distribution 2.8, Debian's) on 127.0.0.1 with info logs, so the
 * bytes it serves are counted from its own access log. For each pair, A and B are pushed with
 * `docker push` (layers compressed by the engine), then:
 *   - publisher: `deltaimg image diff docker://R/x:a docker://R/x:b --push`, registry storage
 *     (du of its blob store) added by B's new layers and by the delta artifact;
 *   - client with A in its engine (pulled from R): `deltaimg pull docker://R/x:b` vs `docker pull R/x:b`
 *     after removing B: bytes served by the registry, wall time, B's image id;
 *   - exactness: `deltaimg image apply docker://R/x:a DIMG -o docker://R/x:b-restored` gives B's
 *     manifest digest or not.
 * Writes bench/results-registry.json and bench/RESULTS-registry.md; removes what it made.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRegistry } from '../scripts/registry.mjs';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const DOCKER = process.env.DELTAIMG_DOCKER ?? (existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker');
const ENV = { ...process.env, DOCKER_BUILDKIT: '1', BUILDKIT_PROGRESS: 'plain', DELTAIMG_DOCKER: DOCKER };
const CLI = join(ROOT, 'dist/cli/main.js');
const WORK = join(ROOT, 'bench/work/registry');
const TREES = join(ROOT, 'bench/data/trees');

const PAIRS = [
  {
    name: 'npm-app',
    what: 'an app folder with npm dependencies at two patch versions (typescript, esbuild, prettier, lodash), one `docker import` layer each',
    make: oneLayer('npm-app'),
  },
  {
    name: 'base+app',
    what: "a base layer (this machine's /usr/lib/python3, the same in A and B) + the npm app layer at two versions (two-layer images, `docker load`ed)",
    make: stacked,
  },
];

const log = (msg) => process.stderr.write(`registry-bench: ${msg}\n`);
const docker = async (args, opts = {}) => (await execa(DOCKER, args, { env: ENV, ...opts })).stdout.trim();

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
    return [];
  };
}

/**
 * Base layer + app layer, loaded from a classic docker-archive made here (not `docker build`: its
 * build cache would keep B's layers in the engine after \`docker rmi\`, and docker pull would skip them).
 */
async function stacked(refs) {
  const sha = (file) => `sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`;
  const dir = join(WORK, 'stacked-build');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const base = join(dir, 'base.tar');
  await execa('tar', ['--numeric-owner', '--sort=name', '--mtime=@0', '-C', '/usr/lib', '-cf', base, 'python3']);
  for (const [ref, app] of [
    [refs.a, 'a'],
    [refs.b, 'b'],
  ]) {
    const appTar = join(dir, `app-${app}.tar`);
    await execa('tar', [
      '--numeric-owner',
      '--sort=name',
      '--transform',
      's,^\\./,srv/app/,',
      '-C',
      join(TREES, 'npm-app', app),
      '-cf',
      appTar,
      '.',
    ]);
    const layers = [base, appTar];
    const diffIds = layers.map(sha);
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { WorkingDir: '/srv/app' },
        rootfs: { type: 'layers', diff_ids: diffIds },
      }),
    );
    const archive = join(dir, `image-${app}`);
    await mkdir(archive, { recursive: true });
    const names = [];
    for (const [i, l] of layers.entries()) {
      await mkdir(join(archive, diffIds[i].slice(7)), { recursive: true });
      await execa('cp', [l, join(archive, diffIds[i].slice(7), 'layer.tar')]);
      names.push(`${diffIds[i].slice(7)}/layer.tar`);
    }
    const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
    await writeFile(join(archive, configName), config);
    await writeFile(join(archive, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: [ref], Layers: names }]));
    await execa('bash', ['-c', `tar -C "$1" -cf - . | ${DOCKER} load`, 'bash', archive], { env: ENV });
  }
  await rm(dir, { recursive: true, force: true });
  return [];
}

// ---------------------------------------------------------------- the registry

/** Bytes of blob and manifest bodies the registry wrote in GET answers since `mark` (a log length). */
function servedSince(logPath, mark) {
  const text = readFileSync(logPath, 'utf8').slice(mark);
  let bytes = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    if (e['http.request.method'] === 'GET' && typeof e['http.response.written'] === 'number') bytes += e['http.response.written'];
  }
  return bytes;
}

const logMark = (logPath) => readFileSync(logPath, 'utf8').length;
const storeBytes = async (dir) => Number((await execa('du', ['-sb', join(dir, 'docker/registry/v2/blobs')])).stdout.split(/\s/)[0]);

async function timed(argv) {
  const t0 = process.hrtime.bigint();
  const r = await execa(argv[0], argv.slice(1), { env: ENV, reject: false });
  return { ...r, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

// ---------------------------------------------------------------- one pair

async function benchPair(pair, reg) {
  const repo = `${reg.address}/bench-registry/${pair.name.replace(/[^a-z0-9-]/g, '-')}`;
  const refs = { a: `${repo}:a`, b: `${repo}:b` };
  const dir = join(WORK, pair.name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  let made = [];
  try {
    log(`${pair.name}: making and pushing images`);
    made = await pair.make(refs);
    const idB = await docker(['image', 'inspect', '--format', '{{.Id}}', refs.b]);
    await docker(['push', refs.a]);
    const beforeB = await storeBytes(reg.dataDir);
    await docker(['push', refs.b]);
    const afterB = await storeBytes(reg.dataDir);

    log(`${pair.name}: publishing the delta`);
    const dimg = join(dir, 'a-to-b.dimg');
    const publish = await timed([
      'node',
      CLI,
      'image',
      'diff',
      `docker://${refs.a}`,
      `docker://${refs.b}`,
      '--push',
      '-o',
      dimg,
      '--json',
      '-q',
      '--tmp-dir',
      dir,
    ]);
    if (publish.exitCode !== 0) throw new Error(`image diff --push: ${publish.stderr}`);
    const published = JSON.parse(publish.stdout)[0];
    const header = JSON.parse((await execa('node', [CLI, 'image', 'inspect', dimg, '--json'], { env: ENV })).stdout);
    const recipeBytes = header.members.filter((m) => m.name.startsWith('recipes/')).reduce((n, m) => n + m.size, 0);
    const afterDelta = await storeBytes(reg.dataDir);

    log(`${pair.name}: restoring into the registry (manifest digest check)`);
    const applied = await execa(
      'node',
      [CLI, 'image', 'apply', `docker://${refs.a}`, dimg, '-o', `docker://${repo}:b-restored`, '--json', '-q', '--tmp-dir', dir],
      { env: ENV },
    );
    const restored = JSON.parse(applied.stdout).images[0];

    // The client: A in the engine as pulled from the registry, B not.
    await execa(DOCKER, ['rmi', '-f', refs.a, refs.b, ...made], { env: ENV, reject: false });
    await docker(['pull', refs.a]);
    log(`${pair.name}: deltaimg pull`);
    let mark = logMark(reg.logPath);
    const pulled = await timed(['node', CLI, 'pull', `docker://${refs.b}`, '--json', '-q', '--tmp-dir', dir]);
    if (pulled.exitCode !== 0) throw new Error(`deltaimg pull: ${pulled.stderr}`);
    await sleep(300);
    const deltaServed = servedSince(reg.logPath, mark);
    const pullReport = JSON.parse(pulled.stdout);
    const deltaId = await docker(['image', 'inspect', '--format', '{{.Id}}', refs.b]);
    await docker(['rmi', refs.b]);
    log(`${pair.name}: docker pull`);
    mark = logMark(reg.logPath);
    const plain = await timed([DOCKER, 'pull', refs.b]);
    if (plain.exitCode !== 0) throw new Error(`docker pull: ${plain.stderr}`);
    await sleep(300);
    const plainServed = servedSince(reg.logPath, mark);
    const plainId = await docker(['image', 'inspect', '--format', '{{.Id}}', refs.b]);
    return {
      pair: pair.name,
      what: pair.what,
      publish: {
        seconds: publish.seconds,
        dimgBytes: published.bytes,
        recipeBytes,
        lightBytes: published.light?.bytes,
        listedBy: published.listedBy,
      },
      storage: { bNewLayers: afterB - beforeB, deltaArtifact: afterDelta - afterB },
      pull: {
        delta: {
          servedBytes: deltaServed,
          reportedBytes: pullReport.bytesDownloaded,
          seconds: pulled.seconds,
          matchedBy: pullReport.delta?.matchedBy,
          variant: pullReport.delta?.blobs,
          sameId: deltaId === idB,
        },
        docker: { servedBytes: plainServed, seconds: plain.seconds, sameId: plainId === idB },
      },
      manifest: {
        original: restored.originalManifestDigest,
        restored: restored.manifestDigest,
        equal: restored.originalManifestDigest === restored.manifestDigest,
        note: restored.manifestNote,
      },
    };
  } finally {
    await execa(DOCKER, ['rmi', '-f', refs.a, refs.b, ...made], { env: ENV, reject: false });
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- report

const KB = (n) => (n == null ? 'n/a' : n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(2)} MB`);
const S = (s) => `${s.toFixed(1)} s`;

function markdown(r) {
  const m = r.machine;
  const rows = r.pairs
    .map((p) => {
      const d = p.pull.delta;
      const k = p.pull.docker;
      return `| ${p.pair} | **${KB(d.servedBytes)}** | ${KB(k.servedBytes)} | ${(k.servedBytes / d.servedBytes).toFixed(1)}x | ${KB(p.publish.dimgBytes)} (${KB(p.publish.recipeBytes)}) / ${KB(p.publish.lightBytes)} | ${KB(p.storage.deltaArtifact)} | ${KB(p.storage.bNewLayers)} | ${S(d.seconds)} | ${S(k.seconds)} | ${d.sameId && k.sameId ? 'same id' : '**differs**'} | ${p.manifest.equal ? 'equal' : `**differs** (${p.manifest.note ?? ''})`} |`;
    })
    .join('\n');
  return `# Registry benchmark: \`deltaimg pull\` vs \`docker pull\`

Made by \`node bench/registry-bench.mjs\` (after \`npm run build\` and \`bash bench/fetch-data.sh --quick\`) on ${r.date}.
Machine: ${m.cpu}, ${m.cores} cores, ${(m.ramBytes / 2 ** 30).toFixed(1)} GiB RAM, Linux ${m.kernel}, Docker ${m.docker}, node ${m.node},
registry: Debian's docker-registry (distribution 2.8) on 127.0.0.1. The machine was shared with other
work (load average ${m.load.toFixed(1)} at the start): times are indicative, bytes are exact.

A client holds image A in its Docker engine (pulled from the registry); the publisher pushed A and B
with \`docker push\` (layers gzip'd by the engine) and published the delta with
\`deltaimg image diff docker://R/x:a docker://R/x:b --push\`. Bytes are what the registry served
(sum of \`http.response.written\` of GET answers in its own log: manifests, referrers index, configs,
blobs, the .dimg), for \`deltaimg pull docker://R/x:b\` and for \`docker pull R/x:b\`.
Registry storage is the growth of its blob store (\`du -sb\`) from pushing B's new layers and from
publishing the delta artifact (the .dimg, its manifest, the referrers tag index).
The manifest digest column restores B with \`deltaimg image apply docker://R/x:a A-TO-B.dimg -o docker://R/x:b-restored\`.

| pair | deltaimg pull | docker pull | less | .dimg exact (of it recipes) / light | storage: delta artifacts | storage: B's new layers | deltaimg pull time | docker pull time | image in the engine | restored manifest digest |
|---|---|---|---|---|---|---|---|---|---|---|
${rows}

Pairs:
${r.pairs.map((p) => `- **${p.pair}**: ${p.what}; delta published in ${S(p.publish.seconds)}, listed by the ${p.publish.listedBy === 'tag-schema' ? 'referrers tag schema' : 'referrers API'}, \`pull\` matched A by ${p.pull.delta.matchedBy}.`).join('\n')}

The exact .dimg carries, for each of B's gzip'd layers, an exact-deflate recipe (src/deflate) so that
B's compressed blobs, and so its manifest digest, come back byte for byte; for layers the engine's Go
gzip made, that recipe (the stream's tokens) is most of the file. So \`--push\` also publishes a light
variant without recipes (same image id and diff_ids), which \`deltaimg pull\` downloads for an engine
(it keeps layers uncompressed); destinations that keep compressed blobs (OCI layouts, registries) get
the exact one. Registry storage counts both.

\`deltaimg pull\` time includes listing the deltas, downloading the .dimg, rebuilding B's layers from A
(A's layers come out of the engine through \`docker save\`), verifying every layer and the config, and
\`docker load\`; \`docker pull\` only downloads and unpacks B's new layers.
`;
}

async function main() {
  const jsonFile = join(ROOT, 'bench/results-registry.json');
  const mdFile = join(ROOT, 'bench/RESULTS-registry.md');
  if (process.argv.includes('--markdown-only')) {
    await writeFile(mdFile, markdown(JSON.parse(readFileSync(jsonFile, 'utf8'))));
    return;
  }
  if (!existsSync(join(TREES, 'npm-app', 'b')))
    throw new Error(`${join(TREES, 'npm-app')} is missing: run bash bench/fetch-data.sh --quick first`);
  await mkdir(WORK, { recursive: true });
  await rm(join(WORK, 'registry'), { recursive: true, force: true });
  // Info-level JSON logs carry each response's size: servedSince() counts them.
  const reg = await startRegistry(join(WORK, 'registry'), { logLevel: 'info', logFormat: 'json' });
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
  try {
    const wanted = process.env.BENCH_PAIRS?.split(',');
    // Pairs not rerun keep their last results.
    const earlier = wanted && existsSync(jsonFile) ? JSON.parse(readFileSync(jsonFile, 'utf8')).pairs : [];
    for (const pair of PAIRS) {
      if (!wanted || wanted.includes(pair.name)) report.pairs.push(await benchPair(pair, reg));
      else report.pairs.push(...earlier.filter((p) => p.pair === pair.name));
    }
  } finally {
    await reg.stop();
    await rm(join(WORK, 'registry'), { recursive: true, force: true });
  }
  await writeFile(jsonFile, JSON.stringify(report, null, 2) + '\n');
  await writeFile(mdFile, markdown(report));
  log(`wrote ${mdFile}`);
}

main().catch((err) => {
  process.stderr.write(`registry-bench: ${err.stack ?? err}\n`);
  process.exitCode = 1;
});
