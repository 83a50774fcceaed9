#!/usr/bin/env node
/**
 * The Docker benchmark: what a registry and its clients save when B ships as A-TO-B.
 *
 *   npm run bench:docker        (= npm run build && node bench/docker-bench.mjs)
 *   node bench/docker-bench.mjs --markdown-only   # RESULTS-docker.md again from results-docker.json
 *   BENCH_PAIRS=npm-app node bench/docker-bench.mjs  # some pairs only
 *
 * For each image pair (trees from bench/fetch-data.sh, made images with `docker import`):
 *   1. `deltaimg dockerfile diff A B | docker build`  -> A-TO-B (timed)
 *   2. a private docker-registry on a free loopback port (started and stopped here): push A, then
 *      A-TO-B, then B; `du -sb` of its storage after each push; layer and config sizes read from
 *      the registry's manifests (what a client holding A downloads for B vs for A-TO-B)
 *   3. the receiver's side: drop A-TO-B locally, `docker pull` it (only the delta layer travels),
 *      `deltaimg dockerfile apply | docker build` -> B' (timed); B' vs B: image size and every
 *      path of the filesystems (docker save, layers flattened)
 *   4. the --unlinked route: the delta image FROM scratch, `docker save | gzip` vs B's, and its
 *      apply with --unlinked-source A (timed, compared to B too)
 *   5. `dockerfile apply --layered` on the sender: B' as A's layers plus the layers it adds (timed,
 *      their size, compared to B), or the one-line reason it refuses the pair
 * Writes bench/results-docker.json and bench/RESULTS-docker.md. Images and the registry made here
 * are removed at the end; deltaimg/runtime stays.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { startRegistry as startLoopbackRegistry } from '../scripts/registry.mjs';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const DOCKER = process.env.DELTAIMG_DOCKER ?? (existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker');
const DOCKER_ENV = { DOCKER_BUILDKIT: '1', BUILDKIT_PROGRESS: 'plain', DELTAIMG_DOCKER: DOCKER };
/** The engine already running: the sender, which makes the images and the deltas and pushes them. */
const SENDER = { name: 'sender', env: { ...DOCKER_ENV, DOCKER_HOST: 'unix:///var/run/docker.sock' } };
const CLI = join(ROOT, 'dist/cli/main.js');
const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
const RUNTIME_IMAGE = `deltaimg/runtime:${VERSION}`;
const WORK = join(ROOT, 'bench/work/docker');
const TREES = join(ROOT, 'bench/data/trees');

const PAIRS = [
  { name: 'debian', what: 'Debian bookworm minbase (debootstrap) -> after a point-release upgrade' },
  { name: 'npm-app', what: 'an app folder with npm dependencies at two versions' },
];

const MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';

// ---------------------------------------------------------------- small helpers

function log(msg) {
  process.stderr.write(`docker-bench: ${msg}\n`);
}

async function docker(engine, args, opts = {}) {
  const r = await execa(DOCKER, args, { env: engine.env, ...opts });
  return r.stdout.trim();
}

async function timed(fn) {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { value, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/** `deltaimg dockerfile ARGS | docker build -t TAG -` on ENGINE, timed end to end; the log is kept on failure. */
async function deltaimgBuild(engine, dockerfileArgs, tag) {
  return timed(async () => {
    const { stdout: dockerfile } = await execa('node', [CLI, 'dockerfile', ...dockerfileArgs], { env: engine.env });
    // --no-cache: a rerun of the bench must measure the work, not BuildKit's cache.
    const r = await execa(DOCKER, ['build', '--network=none', '--no-cache', '-t', tag, '-'], {
      env: engine.env,
      input: dockerfile,
      all: true,
      reject: false,
    });
    if (r.exitCode !== 0) throw new Error(`docker build -t ${tag} failed:\n${r.all.split('\n').slice(-30).join('\n')}`);
  });
}

async function importTree(engine, dir, ref) {
  // Owners by number, xattrs and PAX headers: the image holds the tree as fetch-data.sh made it.
  // buffer: false, or execa would stop keeping the tar stream at its maxBuffer (100 MB).
  const tarTree = execa('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '--posix', '-C', dir, '-cf', '-', '.'], {
    buffer: false,
  });
  await tarTree.pipe(DOCKER, ['import', '--change', `ENV PATH=${DEBIAN_PATH}`, '-', ref], { env: engine.env });
}

/**
 * The PATH official Debian images set. Without one, BuildKit gives a FROM A stage a default PATH
 * that B's config cannot remove, and `apply --layered` refuses the pair.
 */
const DEBIAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

async function imageSize(engine, ref) {
  return Number(await docker(engine, ['image', 'inspect', '--format', '{{.Size}}', ref]));
}

async function duBytes(dir) {
  const { stdout } = await execa('du', ['-sb', dir]);
  return Number(stdout.split('\t')[0]);
}

/** Bytes of `docker save REF | gzip` (default level), streamed and counted, nothing written. */
async function savedGzipBytes(engine, ref) {
  const save = execa(DOCKER, ['save', ref], { env: engine.env, buffer: false });
  const gzip = createGzip();
  let bytes = 0;
  gzip.on('data', (chunk) => (bytes += chunk.length));
  const finished = new Promise((resolve, reject) => gzip.on('end', resolve).on('error', reject));
  save.stdout.pipe(gzip);
  await Promise.all([save, finished]);
  return bytes;
}

// ---------------------------------------------------------------- the registry and the receiver

async function waitFor(what, probe, proc, logFile) {
  for (let i = 0; i < 120; i++) {
    if (await probe()) return;
    if (proc.exitCode !== null) break;
    await sleep(250);
  }
  proc.kill();
  throw new Error(`${what} did not start; see ${logFile}`);
}

/**
 * A docker-registry of our own on loopback (storage in bench/work/docker/registry). It logs every
 * response at level info with the bytes written: servedBytesSince() sums them for a pull.
 */
async function startRegistry() {
  const dir = join(WORK, 'registry');
  await rm(dir, { recursive: true, force: true });
  const registry = await startLoopbackRegistry(dir, { logLevel: 'info', logFormat: 'text', accessLog: false });
  return {
    address: registry.address,
    storage: registry.dataDir,
    logOffset: () => statSync(registry.logPath).size,
    servedBytesSince: (offset) => servedBytes(registry.logPath, offset),
    stop: async () => {
      await registry.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Sum of http.response.written over the registry's "response completed" lines after OFFSET. */
function servedBytes(logFile, offset) {
  const text = readFileSync(logFile).subarray(offset).toString('utf8');
  let bytes = 0;
  let requests = 0;
  for (const line of text.split('\n')) {
    if (!line.includes('response completed')) continue;
    const written = line.match(/http\.response\.written=(\d+)/);
    requests++;
    if (written) bytes += Number(written[1]);
  }
  return { bytes, requests };
}

async function stopProcess(proc, dir) {
  proc.kill('SIGTERM');
  await proc;
  await rm(dir, { recursive: true, force: true });
}

/**
 * A second dockerd, empty, as the receiver: it gets the runtime image and A, then pulls A-TO-B
 * (or B) from the registry over HTTP like a real client, so the bytes that travel are real.
 * Its own data root, exec root and socket; no bridge, no iptables changes.
 */
async function startReceiver(sender) {
  const dir = join(WORK, 'receiver');
  const execRoot = `/tmp/deltaimg-bench-receiver-${process.pid}`;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'docker.sock');
  const logFile = join(dir, 'dockerd.log');
  const out = openSync(logFile, 'a');
  const proc = execa(
    'dockerd',
    [
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      execRoot,
      '--pidfile',
      join(dir, 'dockerd.pid'),
      '-H',
      `unix://${socket}`,
      '--bridge=none',
      '--iptables=false',
      '--ip-forward=false',
      '--ip-masq=false',
    ],
    { reject: false, stdin: 'ignore', stdout: out, stderr: out },
  );
  const engine = { name: 'receiver', env: { ...DOCKER_ENV, DOCKER_HOST: `unix://${socket}` } };
  const up = () => execa(DOCKER, ['info'], { env: engine.env, reject: false }).then((r) => r.exitCode === 0);
  const stop = async () => {
    await stopProcess(proc, dir);
    await rm(execRoot, { recursive: true, force: true });
  };
  await waitFor('the receiver dockerd', up, proc, logFile);
  try {
    log(`receiver dockerd up (${socket}); loading ${RUNTIME_IMAGE} into it`);
    await execa(DOCKER, ['save', RUNTIME_IMAGE], { env: sender.env, buffer: false }).pipe(DOCKER, ['load'], { env: engine.env });
  } catch (err) {
    await stop();
    throw err;
  }
  return { ...engine, stop };
}

async function registryJson(address, path, accept) {
  const r = await fetch(`http://${address}/v2/${path}`, { headers: accept ? { Accept: accept } : {} });
  if (!r.ok) throw new Error(`GET /v2/${path}: HTTP ${r.status}`);
  const body = await r.text();
  return { json: JSON.parse(body), bytes: Buffer.byteLength(body) };
}

/** The image manifest as the registry serves it: layer digests and sizes (compressed), config size. */
async function remoteManifest(address, repo, tag) {
  const { json, bytes } = await registryJson(address, `${repo}/manifests/${tag}`, MANIFEST_V2);
  if (json.mediaType !== MANIFEST_V2) throw new Error(`${repo}:${tag}: unexpected manifest type ${json.mediaType}`);
  // The blob endpoint is the ground truth for sizes; the manifest's numbers must agree with it.
  for (const blob of [json.config, ...json.layers]) {
    const head = await fetch(`http://${address}/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' });
    const length = Number(head.headers.get('content-length'));
    if (!head.ok || length !== blob.size)
      throw new Error(`${repo}@${blob.digest}: registry serves ${length} bytes, manifest says ${blob.size}`);
  }
  return { manifestBytes: bytes, config: json.config, layers: json.layers };
}

/** What a client holding `have` downloads for `want`: the layers it lacks, the config, the manifest. */
function pullBytes(want, have) {
  const present = new Set(have.layers.map((l) => l.digest));
  const missing = want.layers.filter((l) => !present.has(l.digest));
  const layerBytes = missing.reduce((sum, l) => sum + l.size, 0);
  return {
    layers: missing.length,
    layerBytes,
    configBytes: want.config.size,
    manifestBytes: want.manifestBytes,
    totalBytes: layerBytes + want.config.size + want.manifestBytes,
  };
}

// ---------------------------------------------------------------- image filesystems

/**
 * The filesystem an image's layers hold (docker save, layers applied in order with whiteouts):
 * path -> { type, mode, uid, gid, mtime (s), size, sha256, linkname, xattrs, hardlinks }.
 */
async function imageFilesystem(engine, ref) {
  const save = execa(DOCKER, ['save', ref], { env: engine.env, buffer: false });
  const layers = new Map();
  let manifest;
  const outer = tar.extract();
  const reading = (async () => {
    for await (const member of outer) {
      const name = member.header.name;
      if (name.endsWith('/layer.tar') || name.startsWith('blobs/')) layers.set(name, await readLayer(member));
      else if (name === 'manifest.json') manifest = JSON.parse((await collect(member)).toString('utf8'));
      else member.resume();
    }
  })();
  save.stdout.pipe(outer);
  await Promise.all([reading, save]);
  if (!manifest?.[0]) throw new Error(`docker save ${ref}: no manifest.json`);
  return flatten(manifest[0].Layers.map((l) => layers.get(l) ?? []));
}

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

function normalize(name) {
  return name.replace(/^\.?\/+/, '').replace(/\/+$/, '');
}

/** One layer tar as records, file contents hashed as they stream by (non-tar blobs give none). */
async function readLayer(stream) {
  const records = [];
  const inner = tar.extract();
  const reading = (async () => {
    for await (const e of inner) {
      const h = e.header;
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of e) {
        hash.update(chunk);
        size += chunk.length;
      }
      const xattrs = Object.fromEntries(
        Object.entries(h.pax ?? {})
          .filter(([k]) => k.startsWith('SCHILY.xattr.'))
          .map(([k, v]) => [k.slice('SCHILY.xattr.'.length), Buffer.from(v, 'latin1').toString('hex')]),
      );
      const entry = {
        type: h.type === 'contiguous-file' ? 'file' : h.type,
        mode: (h.mode ?? 0) & 0o7777,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
        size,
        xattrs,
      };
      if (entry.type === 'file') entry.sha256 = hash.digest('hex');
      if (h.type === 'symlink') entry.linkname = h.linkname;
      records.push({ path: normalize(h.name), entry, linkTo: h.type === 'link' ? normalize(h.linkname) : undefined });
    }
  })();
  stream.pipe(inner);
  try {
    await reading;
  } catch {
    stream.resume();
    return [];
  }
  return records;
}

function flatten(layers) {
  const fs = new Map();
  const links = new Map(); // path -> the path it is a hardlink of
  for (const records of layers) {
    for (const { path, entry, linkTo } of records) {
      const base = path.split('/').pop();
      const parent = path.slice(0, Math.max(0, path.length - base.length - 1));
      if (base === '.wh..wh..opq') {
        for (const p of [...fs.keys()]) if (p.startsWith(parent ? `${parent}/` : '') && p !== parent) fs.delete(p);
      } else if (base.startsWith('.wh.')) {
        const gone = (parent ? `${parent}/` : '') + base.slice(4);
        for (const p of [...fs.keys()]) if (p === gone || p.startsWith(`${gone}/`)) fs.delete(p);
      } else if (linkTo !== undefined) {
        const target = fs.get(linkTo);
        fs.set(path, { ...(target ?? entry), type: 'file' });
        links.set(path, linkTo);
      } else {
        fs.set(path, entry);
      }
    }
  }
  for (const group of hardlinkGroups(links)) for (const p of group) if (fs.has(p)) fs.get(p).hardlinks = group.join('\n');
  return fs;
}

function hardlinkGroups(links) {
  const root = (p) => (links.has(p) ? root(links.get(p)) : p);
  const groups = new Map();
  for (const p of links.keys()) {
    const r = root(p);
    if (!groups.has(r)) groups.set(r, [r]);
    groups.get(r).push(p);
  }
  return [...groups.values()].map((g) => g.sort());
}

const FIELDS = ['type', 'mode', 'uid', 'gid', 'mtime', 'size', 'sha256', 'linkname', 'hardlinks'];

/**
 * B vs B', path by path. Differences Docker makes for every image it builds (docs/docker.md) are
 * counted apart from the rest: device nodes that become empty files, FIFOs that vanish, the root
 * directory's own metadata, xattrs other than security.*.
 */
function compareFilesystems(b, restored) {
  const expected = { deviceNodesBecameFiles: 0, fifosDropped: 0, rootDirectory: 0, nonSecurityXattrsDropped: 0 };
  const unexpected = [];
  for (const [path, want] of b) {
    const got = restored.get(path);
    if (path === '') {
      if (!got || FIELDS.some((f) => want[f] !== got[f])) expected.rootDirectory++;
      continue;
    }
    if (!got) {
      if (want.type === 'fifo') expected.fifosDropped++;
      else unexpected.push(`${path}: missing`);
      continue;
    }
    if ((want.type === 'character-device' || want.type === 'block-device') && got.type === 'file' && got.size === 0) {
      expected.deviceNodesBecameFiles++;
      continue;
    }
    const fields = FIELDS.filter((f) => want[f] !== got[f]);
    if (fields.length) unexpected.push(`${path}: ${fields.map((f) => `${f} ${want[f]} -> ${got[f]}`).join(', ')}`);
    const xattrDiff = compareXattrs(want.xattrs, got.xattrs);
    if (xattrDiff === 'dropped-non-security') expected.nonSecurityXattrsDropped++;
    else if (xattrDiff) unexpected.push(`${path}: xattrs ${xattrDiff}`);
  }
  for (const path of restored.keys()) if (!b.has(path)) unexpected.push(`${path}: extra`);
  return {
    paths: b.size,
    identical: unexpected.length === 0,
    expected,
    unexpected: unexpected.length,
    firstUnexpected: unexpected.slice(0, 20),
  };
}

function compareXattrs(want, got) {
  const keys = new Set([...Object.keys(want), ...Object.keys(got)]);
  const differing = [...keys].filter((k) => want[k] !== got[k]);
  if (!differing.length) return undefined;
  const onlyDroppedNonSecurity = differing.every((k) => !k.startsWith('security.') && got[k] === undefined);
  return onlyDroppedNonSecurity ? 'dropped-non-security' : differing.join(',');
}

// ---------------------------------------------------------------- one pair

async function benchPair(pair, registry, receiver) {
  const dirA = join(TREES, pair.name, 'a');
  const dirB = join(TREES, pair.name, 'b');
  for (const d of [dirA, dirB]) if (!existsSync(d)) throw new Error(`${d} is missing: run bash bench/fetch-data.sh first`);
  const repo = `bench/${pair.name}`;
  const img = {
    a: `${repo}:a`,
    b: `${repo}:b`,
    aToB: `${repo}:a-to-b`,
    alone: `${repo}:a-to-b-alone`,
    restoredAlone: `${repo}:b-restored-unlinked`,
    restoredLayered: `${repo}:b-restored-layered`,
  };
  const remote = { a: `${registry.address}/${repo}:a`, aToB: `${registry.address}/${repo}:a-to-b`, b: `${registry.address}/${repo}:b` };
  const restored = `${repo}:b-restored`;
  const result = { pair: pair.name, what: pair.what };
  try {
    log(`${pair.name}: docker import of ${dirA} and ${dirB}`);
    await importTree(SENDER, dirA, img.a);
    await importTree(SENDER, dirB, img.b);
    result.imageBytes = { a: await imageSize(SENDER, img.a), b: await imageSize(SENDER, img.b) };

    log(`${pair.name}: dockerfile diff | docker build`);
    result.diffBuildSeconds = (await deltaimgBuild(SENDER, ['diff', img.a, img.b], img.aToB)).seconds;
    result.imageBytes.aToB = await imageSize(SENDER, img.aToB);
    result.registry = await pushAll(registry, repo, img);

    result.receiver = await receiverSide(registry, receiver, remote, restored);
    result.imageBytes.restored = result.receiver.restoredBytes;
    result.unlinked = await unlinkedRoute(img);
    result.layered = await layeredRoute(img);
    return result;
  } finally {
    await execa(DOCKER, ['rmi', '-f', ...Object.values(img), ...Object.values(remote)], { env: SENDER.env, reject: false });
    await execa(DOCKER, ['rmi', '-f', ...Object.values(remote), restored], { env: receiver.env, reject: false });
  }
}

/** Push A, then A-TO-B, then B; storage growth of each push and the sizes the registry serves. */
async function pushAll(registry, repo, img) {
  const pushes = [
    ['a', img.a],
    ['a-to-b', img.aToB],
    ['b', img.b],
  ];
  const duAfter = { before: await duBytes(registry.storage) };
  const pushSeconds = {};
  for (const [tag, local] of pushes) {
    log(`${repo}: docker push ${tag}`);
    await docker(SENDER, ['tag', local, `${registry.address}/${repo}:${tag}`]);
    pushSeconds[tag] = (await timed(() => docker(SENDER, ['push', `${registry.address}/${repo}:${tag}`]))).seconds;
    duAfter[tag] = await duBytes(registry.storage);
  }
  const manifests = {
    a: await remoteManifest(registry.address, repo, 'a'),
    aToB: await remoteManifest(registry.address, repo, 'a-to-b'),
    b: await remoteManifest(registry.address, repo, 'b'),
  };
  return {
    storageBytes: duAfter,
    storageGrowth: { a: duAfter.a - duAfter.before, aToB: duAfter['a-to-b'] - duAfter.a, b: duAfter.b - duAfter['a-to-b'] },
    pushSeconds,
    layers: Object.fromEntries(Object.entries(manifests).map(([k, m]) => [k, m.layers.map((l) => l.size)])),
    pullHavingA: { b: pullBytes(manifests.b, manifests.a), aToB: pullBytes(manifests.aToB, manifests.a) },
  };
}

/**
 * The receiver's side, on the second engine: pull A; pull A-TO-B and apply it (B'); then, for
 * comparison, a plain pull of B. Bytes per pull are what the registry says it served.
 */
async function receiverSide(registry, receiver, remote, restored) {
  const pull = async (ref) => {
    const offset = registry.logOffset();
    const { value: out, seconds } = await timed(() => docker(receiver, ['pull', ref]));
    const served = registry.servedBytesSince(offset);
    return {
      seconds,
      servedBytes: served.bytes,
      requests: served.requests,
      layersAlreadyPresent: (out.match(/Already exists/g) ?? []).length,
      layersDownloaded: (out.match(/Pull complete/g) ?? []).length,
    };
  };
  log(`receiver: pull A, pull A-TO-B, dockerfile apply | docker build`);
  const pullA = await pull(remote.a);
  const pullAToB = await pull(remote.aToB);
  const applyBuildSeconds = (await deltaimgBuild(receiver, ['apply', remote.aToB], restored)).seconds;
  const pullB = await pull(remote.b);
  log(`receiver: comparing B' with B`);
  const restoredVsB = compareFilesystems(await imageFilesystem(receiver, remote.b), await imageFilesystem(receiver, restored));
  return {
    pullA,
    pullAToB,
    pullB,
    applyBuildSeconds,
    restoredBytes: await imageSize(receiver, restored),
    bBytes: await imageSize(receiver, remote.b),
    restoredVsB,
  };
}

/** The --unlinked route on the sender: docker save | gzip of the delta image alone, applied with --unlinked-source. */
async function unlinkedRoute(img) {
  log(`${img.b}: --unlinked diff, docker save | gzip, apply --unlinked-source`);
  const diffBuildSeconds = (await deltaimgBuild(SENDER, ['diff', img.a, img.b, '--unlinked'], img.alone)).seconds;
  const saveGzipBytes = { aToBAlone: await savedGzipBytes(SENDER, img.alone), b: await savedGzipBytes(SENDER, img.b) };
  const applyBuildSeconds = (await deltaimgBuild(SENDER, ['apply', img.alone, '--unlinked-source', img.a], img.restoredAlone)).seconds;
  const restoredVsB = compareFilesystems(await imageFilesystem(SENDER, img.b), await imageFilesystem(SENDER, img.restoredAlone));
  return { diffBuildSeconds, saveGzipBytes, applyBuildSeconds, imageBytesAlone: await imageSize(SENDER, img.alone), restoredVsB };
}

/** `apply --layered` on the sender: A's layers kept, what the added layers weigh, B' vs B; or why it refuses. */
async function layeredRoute(img) {
  log(`${img.b}: dockerfile apply --layered`);
  let applyBuildSeconds;
  try {
    applyBuildSeconds = (await deltaimgBuild(SENDER, ['apply', img.aToB, '--layered'], img.restoredLayered)).seconds;
  } catch (err) {
    const reason = String(err.message).match(/deltaimg: error: (.*)/)?.[1] ?? String(err.message).split('\n')[0];
    return { refused: reason };
  }
  const layersOf = async (ref) => JSON.parse(await docker(SENDER, ['image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref]));
  const [layersA, layersRestored] = [await layersOf(img.a), await layersOf(img.restoredLayered)];
  const restoredVsB = compareFilesystems(await imageFilesystem(SENDER, img.b), await imageFilesystem(SENDER, img.restoredLayered));
  return {
    applyBuildSeconds,
    sharesALayers: layersA.every((l, i) => layersRestored[i] === l),
    addedLayers: layersRestored.length - layersA.length,
    addedBytes: (await imageSize(SENDER, img.restoredLayered)) - (await imageSize(SENDER, img.a)),
    restoredVsB,
  };
}

// ---------------------------------------------------------------- machine and report

async function machine() {
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const [server, client] = (await docker(SENDER, ['version', '--format', '{{.Server.Version}} {{.Client.Version}}'])).split(' ');
  const storageDriver = await docker(SENDER, ['info', '--format', '{{.Driver}}']);
  const registryVersion = (await execa('docker-registry', ['--version'])).stdout.trim().split(' ').slice(1).join(' ');
  return {
    cpu,
    cores: os.cpus().length,
    ramBytes: os.totalmem(),
    kernel: os.release(),
    docker: { server, client, storageDriver, buildkit: true },
    registry: `docker-registry ${registryVersion}`,
    node: process.version,
    loadAverageAtStart: os.loadavg()[0],
  };
}

const MB = (n) => `${(n / 1e6).toFixed(2)} MB`;
const KB = (n) => (n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : MB(n));
const S = (s) => `${s.toFixed(1)} s`;
const X = (a, b) => `${(a / b).toFixed(0)}x`;

function fidelity(c) {
  const e = c.expected;
  const notes = [
    e.deviceNodesBecameFiles && `${e.deviceNodesBecameFiles} device nodes became empty files`,
    e.fifosDropped && `${e.fifosDropped} FIFOs dropped`,
    e.nonSecurityXattrsDropped && `${e.nonSecurityXattrsDropped} non-security xattrs dropped`,
    e.rootDirectory && `the root directory's metadata is the builder's`,
  ].filter(Boolean);
  const verdict = c.identical ? `${c.paths} paths equal` : `**${c.unexpected} paths differ** (of ${c.paths})`;
  return notes.length ? `${verdict}; Docker: ${notes.join(', ')}` : verdict;
}

function markdown(report) {
  const m = report.machine;
  const rows = (f) => report.pairs.map(f).join('\n');
  return `# Docker benchmark: shipping B as A-TO-B through a real registry

Made by \`npm run bench:docker\` (bench/docker-bench.mjs) on ${report.date}.
Machine: ${m.cpu}, ${m.cores} cores, ${(m.ramBytes / 2 ** 30).toFixed(1)} GiB RAM, Linux ${m.kernel};
Docker ${m.docker.server} (client ${m.docker.client}, BuildKit, ${m.docker.storageDriver}), ${m.registry}, node ${m.node}.
The machine's cores were shared with other work while this ran (load average ${m.loadAverageAtStart.toFixed(1)} at the start): times are indicative.

${report.pairs
  .map((p) => {
    const r = p.receiver;
    return `**${p.pair}**: a client that has A downloads ${KB(r.pullAToB.servedBytes)} for A-TO-B instead of ${MB(r.pullB.servedBytes)} for B (${X(r.pullB.servedBytes, r.pullAToB.servedBytes)} less); the registry grows by ${KB(p.registry.storageGrowth.aToB)} instead of ${MB(p.registry.storageGrowth.b)}; B' ${r.restoredVsB.identical ? 'equals' : 'differs from'} B file for file${r.restoredVsB.expected.deviceNodesBecameFiles ? ` (but for ${r.restoredVsB.expected.deviceNodesBecameFiles} device nodes, which Docker's builder turns into empty files)` : ''}.`;
  })
  .join('\n')}

Pairs (trees from bench/fetch-data.sh, each imported as a one-layer image with \`tar | docker import\`):
${report.pairs.map((p) => `- **${p.pair}**: ${p.what}`).join('\n')}

Every registry number is read from the registry itself: layer and config sizes from the manifests it
serves (checked against the blob endpoint's Content-Length), storage with \`du -sb\` of its storage
directory after each push (order: A, then A-TO-B on top of A, then B). Layers are gzip'd by \`docker push\`.

## What a client that has A downloads

From the manifests: the layers a client holding A lacks (all of B's; A-TO-B's delta layer, its other
layers being A's), plus config and manifest. Served: what the registry logged as written
(\`http.response.written\`, all requests of the pull) while a second, separate dockerd that had
pulled A did \`docker pull\` of A-TO-B, and later of B.

| pair | B: layers (manifest) | B: served | A-TO-B: delta layer (manifest) | A-TO-B: served | saving |
| --- | ---: | ---: | ---: | ---: | ---: |
${rows((p) => {
  const b = p.registry.pullHavingA.b;
  const d = p.registry.pullHavingA.aToB;
  const r = p.receiver;
  return `| ${p.pair} | ${MB(b.layerBytes)} | ${MB(r.pullB.servedBytes)} | ${KB(d.layerBytes)} | ${KB(r.pullAToB.servedBytes)} | ${X(r.pullB.servedBytes, r.pullAToB.servedBytes)} less |`;
})}

The receiver's pulls (\`docker pull\` output and registry log):

| pair | pull | layers already present | layers downloaded | HTTP requests | bytes served | time |
| --- | --- | ---: | ---: | ---: | ---: | ---: |
${report.pairs
  .flatMap((p) =>
    [
      ['A (first install)', p.receiver.pullA],
      ['A-TO-B (has A)', p.receiver.pullAToB],
      ["B (has A, A-TO-B, B')", p.receiver.pullB],
    ].map(
      ([what, x]) =>
        `| ${p.pair} | ${what} | ${x.layersAlreadyPresent} | ${x.layersDownloaded} | ${x.requests} | ${KB(x.servedBytes)} | ${S(x.seconds)} |`,
    ),
  )
  .join('\n')}

## Registry storage growth

| pair | push A | push A-TO-B on top of A | push B on top of A | saving |
| --- | ---: | ---: | ---: | ---: |
${rows((p) => {
  const g = p.registry.storageGrowth;
  return `| ${p.pair} | ${MB(g.a)} | ${KB(g.aToB)} | ${MB(g.b)} | ${X(g.b, g.aToB)} less |`;
})}

## Build times (wall clock, \`--no-cache\`, \`deltaimg dockerfile ... | docker build --network=none\`)

| pair | diff build (A-TO-B, sender) | apply build (B' from the pulled A-TO-B, receiver) | unlinked diff build | unlinked apply build |
| --- | ---: | ---: | ---: | ---: |
${rows((p) => `| ${p.pair} | ${S(p.diffBuildSeconds)} | ${S(p.receiver.applyBuildSeconds)} | ${S(p.unlinked.diffBuildSeconds)} | ${S(p.unlinked.applyBuildSeconds)} |`)}

## The restored image B' against B

Sizes are \`docker image inspect --format '{{.Size}}'\`. Files: both images' layers (\`docker save\`)
flattened and compared path by path: type, bytes (sha256), mode, owner, mtime (s), symlink target,
hardlink group, xattrs. What Docker's builder does to every image is counted apart (docs/docker.md).

| pair | A | B | A-TO-B (A + delta layer) | B' | B' - B | B' files vs pulled B (receiver) | B' (unlinked route) files vs B |
| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |
${rows((p) => `| ${p.pair} | ${MB(p.imageBytes.a)} | ${MB(p.imageBytes.b)} | ${MB(p.imageBytes.aToB)} | ${MB(p.imageBytes.restored)} | ${p.imageBytes.restored - p.imageBytes.b} B | ${fidelity(p.receiver.restoredVsB)} | ${fidelity(p.unlinked.restoredVsB)} |`)}

## Without a registry: \`--unlinked\` + \`docker save | gzip\`

| pair | \`docker save B \\| gzip\` | \`docker save A-TO-B-alone \\| gzip\` | saving |
| --- | ---: | ---: | ---: |
${rows((p) => {
  const s = p.unlinked.saveGzipBytes;
  return `| ${p.pair} | ${MB(s.b)} | ${KB(s.aToBAlone)} | ${X(s.b, s.aToBAlone)} less |`;
})}

## \`dockerfile apply --layered\`: B' as A's layers plus the changes

| pair | apply build | A's layers kept (by diff id) | layers added | bytes added on disk | B' files vs B |
| --- | ---: | --- | ---: | ---: | --- |
${rows((p) => {
  const l = p.layered;
  if (!l) return `| ${p.pair} | not measured | | | | |`;
  if (l.refused) return `| ${p.pair} | refused: ${l.refused} | | | | |`;
  return `| ${p.pair} | ${S(l.applyBuildSeconds)} | ${l.sharesALayers ? 'yes' : '**no**'} | ${l.addedLayers} | ${KB(l.addedBytes)} | ${fidelity(l.restoredVsB)} |`;
})}

Raw numbers: bench/results-docker.json (bytes and seconds).
`;
}

// ---------------------------------------------------------------- main

/** BENCH_PAIRS=npm-app,debian picks pairs (default: all). */
function selectedPairs() {
  const wanted = process.env.BENCH_PAIRS?.split(',').filter(Boolean);
  if (!wanted) return PAIRS;
  const unknown = wanted.filter((w) => !PAIRS.some((p) => p.name === w));
  if (unknown.length) throw new Error(`BENCH_PAIRS: unknown pair ${unknown.join(', ')} (known: ${PAIRS.map((p) => p.name).join(', ')})`);
  return PAIRS.filter((p) => wanted.includes(p.name));
}

async function ensureRuntimeImage() {
  const r = await execa(DOCKER, ['image', 'inspect', RUNTIME_IMAGE], { env: SENDER.env, reject: false });
  if (r.exitCode === 0) return;
  log(`${RUNTIME_IMAGE} missing: building it (deltaimg runtime build)`);
  await execa(process.execPath, ['dist/cli/main.js', 'runtime', 'build', '--tag', RUNTIME_IMAGE], {
    cwd: ROOT,
    env: { DELTAIMG_DOCKER: DOCKER },
    stdio: 'inherit',
  });
}

async function main() {
  if (process.argv.includes('--markdown-only')) {
    // Rewrites the report from the last run's numbers (after a change to the report's layout).
    const report = JSON.parse(readFileSync(join(ROOT, 'bench/results-docker.json'), 'utf8'));
    await writeFile(join(ROOT, 'bench/RESULTS-docker.md'), markdown(report));
    return;
  }
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`);
  await ensureRuntimeImage();
  await mkdir(WORK, { recursive: true });
  const report = { date: new Date().toISOString(), machine: await machine(), pairs: [] };
  const registry = await startRegistry();
  log(`registry on ${registry.address}`);
  try {
    const receiver = await startReceiver(SENDER);
    try {
      for (const pair of selectedPairs()) report.pairs.push(await benchPair(pair, registry, receiver));
    } finally {
      await receiver.stop();
    }
  } finally {
    await registry.stop();
  }
  await writeFile(join(ROOT, 'bench/results-docker.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(ROOT, 'bench/RESULTS-docker.md'), markdown(report));
  log('wrote bench/results-docker.json and bench/RESULTS-docker.md');
}

main().catch((err) => {
  process.stderr.write(`docker-bench: error: ${err.stack ?? err}\n`);
  process.exit(1);
});
