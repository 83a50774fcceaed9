#!/usr/bin/env node
// The executable transform (src/exefilter/, docs/bsdiff.md) on real recompiled programs: bsdiff
// patch size without and with it, deltaimg's tree delta of the program (which picks the smaller,
// gzip'd delta dir, restored and compared byte for byte), and the peers zstd --patch-from and
// xdelta3 on the same files. Writes bench/results-exe.json and re-renders bench/RESULTS.md.
//
// usage: node bench/exe-transform.mjs [--pairs c-x86-64,c-arm64,containerd-amd64,containerd-arm64,libcrypto-amd64,libcrypto-arm64]
//
// Pairs: the generated C program of the tests compiled twice (a function grown, one moved), and
// containerd 1.6.20~ds1-1+deb12u2 -> deb12u3 from Debian (a Go program rebuilt with a security
// patch; /usr/bin/containerd, 48 MB amd64, 35 MB arm64) and libssl3 3.0.20-1~deb12u2 -> 3.0.22-1~deb12u2
// (libcrypto.so.3, C, PIE, 4.7 MB), fetched with apt-get download. "bsdiff + transform" is what diff
// tries: branch targets made absolute and the source's addresses relabelled through the plain
// patch's alignment (docs/bsdiff.md, "Address relabelling").
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bsdiffEncode } from '../dist/bsdiff/index.js';
import { encodeTransformed, exeTransformFor, withAddressMap } from '../dist/delta/exe-codec.js';
import { compiledPair } from '../test/helpers/elf-programs.mjs';
import { gzipLayerBytes, machineInfo, runMeasured, sameBytes } from './lib/measure.mjs';
import { renderMarkdown } from './lib/report.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const DATA = join(BENCH, 'data');
const CLI = join(BENCH, '..', 'dist', 'cli', 'main.js');
const CONTAINERD = ['1.6.20~ds1-1+deb12u2', '1.6.20~ds1-1+deb12u3'];
const LIBSSL = ['3.0.20-1~deb12u2', '3.0.22-1~deb12u2'];

/** One executable of a Debian package version, extracted once into bench/data/exe/. */
function debFile(pkg, arch, version, inner) {
  const out = join(DATA, 'exe', `${pkg}_${version}_${arch}`, inner);
  if (existsSync(out)) return out;
  const work = join(DATA, 'exe', `.work-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  execFileSync('apt-get', ['download', '-q', `${pkg}:${arch}=${version}`], { cwd: work, stdio: ['ignore', 'ignore', 'inherit'] });
  const deb = execFileSync('sh', ['-c', 'ls *.deb'], { cwd: work, encoding: 'utf8' }).trim();
  execFileSync('dpkg-deb', ['-x', deb, 'root'], { cwd: work });
  mkdirSync(dirname(out), { recursive: true });
  renameSync(join(work, 'root', inner), out);
  rmSync(work, { recursive: true, force: true });
  return out;
}

const PAIRS = {
  'c-x86-64': { label: 'C program, function grown + one moved (gcc -O2, x86-64)', files: (dir) => compiledPair(dir, 'x86-64') },
  'c-arm64': { label: 'C program, function grown + one moved (aarch64-linux-gnu-gcc -O2)', files: (dir) => compiledPair(dir, 'arm64') },
  'containerd-amd64': {
    label: `containerd ${CONTAINERD[0]} -> deb12u3, amd64 (Go)`,
    files: async () => ({
      a: debFile('containerd', 'amd64', CONTAINERD[0], 'usr/bin/containerd'),
      b: debFile('containerd', 'amd64', CONTAINERD[1], 'usr/bin/containerd'),
    }),
  },
  'containerd-arm64': {
    label: `containerd ${CONTAINERD[0]} -> deb12u3, arm64 (Go)`,
    files: async () => ({
      a: debFile('containerd', 'arm64', CONTAINERD[0], 'usr/bin/containerd'),
      b: debFile('containerd', 'arm64', CONTAINERD[1], 'usr/bin/containerd'),
    }),
  },
  'libcrypto-amd64': {
    label: `libcrypto.so.3 (libssl3 ${LIBSSL[0]} -> ${LIBSSL[1]}), amd64 (C)`,
    files: async () => ({
      a: debFile('libssl3', 'amd64', LIBSSL[0], 'usr/lib/x86_64-linux-gnu/libcrypto.so.3'),
      b: debFile('libssl3', 'amd64', LIBSSL[1], 'usr/lib/x86_64-linux-gnu/libcrypto.so.3'),
    }),
  },
  'libcrypto-arm64': {
    label: `libcrypto.so.3 (libssl3 ${LIBSSL[0]} -> ${LIBSSL[1]}), arm64 (C)`,
    files: async () => ({
      a: debFile('libssl3', 'arm64', LIBSSL[0], 'usr/lib/aarch64-linux-gnu/libcrypto.so.3'),
      b: debFile('libssl3', 'arm64', LIBSSL[1], 'usr/lib/aarch64-linux-gnu/libcrypto.so.3'),
    }),
  },
};

async function timed(fn) {
  const started = process.hrtime.bigint();
  const value = await fn();
  return { value, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

async function measurePair(id, work) {
  const pair = PAIRS[id];
  const { a, b } = await pair.files(work);
  const files = { source: { path: a, size: statSync(a).size }, target: { path: b, size: statSync(b).size } };
  const branches = exeTransformFor(files);
  const plain = await timed(() => bsdiffEncode(a, b, join(work, `${id}.plain.bsd`)));
  const exe = branches && (await withAddressMap(branches, files, join(work, `${id}.plain.bsd`)));
  let n = 0;
  const transformed = exe
    ? await timed(() =>
        encodeTransformed(
          files,
          exe,
          () => join(work, `${id}.t${n++}`),
          (s, t) => bsdiffEncode(s, t, join(work, `${id}.exe.bsd`)),
        ),
      )
    : undefined;
  const zstdOut = join(work, `${id}.zst`);
  const zstd = await runMeasured(['zstd', '-q', '-f', '-19', '--long=31', `--patch-from=${a}`, b, '-o', zstdOut]);
  const xdOut = join(work, `${id}.vcdiff`);
  const xdelta3 = await runMeasured(['xdelta3', '-e', '-9', '-f', '-s', a, b, xdOut]);
  // deltaimg itself, on one-file trees: the delta dir as a gzip'd layer, then a restore compared byte for byte.
  const [ta, tb, delta, out] = ['a', 'b', 'delta', 'out'].map((x) => join(work, `${id}-${x}`));
  for (const [dir, file] of [
    [ta, a],
    [tb, b],
  ]) {
    mkdirSync(join(dir, 'usr/bin'), { recursive: true });
    execFileSync('cp', ['--reflink=auto', file, join(dir, 'usr/bin/prog')]);
  }
  const diff = await runMeasured(['node', CLI, 'diff', ta, tb, '--out', delta, '--quiet']);
  const apply = diff.ok ? await runMeasured(['node', CLI, 'apply', ta, delta, '--out', out, '--quiet']) : undefined;
  const header = diff.ok ? JSON.parse(readFileSync(join(delta, 'deltaimg.json'), 'utf8')) : undefined;
  return {
    id,
    label: pair.label,
    sourceBytes: files.source.size,
    targetBytes: files.target.size,
    arch: exe?.source.arch ?? null,
    addressMapPoints: exe?.source.addressMap?.points.length ?? null,
    unwindTables: exe?.source.addressMap?.unwind !== undefined,
    bsdiff: { bytes: plain.value.bytes, seconds: plain.seconds },
    bsdiffTransformed: transformed ? { bytes: transformed.value.bytes, seconds: transformed.seconds } : null,
    zstd: zstd.ok ? { bytes: statSync(zstdOut).size, seconds: zstd.seconds, peakRssBytes: zstd.peakRssBytes } : { error: zstd.error },
    xdelta3: xdelta3.ok
      ? { bytes: statSync(xdOut).size, seconds: xdelta3.seconds, peakRssBytes: xdelta3.peakRssBytes }
      : { error: xdelta3.error },
    deltaimg: diff.ok
      ? {
          layerBytes: gzipLayerBytes(delta),
          op: header.largest[0]?.op ?? null,
          minReaderVersion: header.minReaderVersion,
          diff: { seconds: diff.seconds, peakRssBytes: diff.peakRssBytes },
          apply: apply?.ok ? { seconds: apply.seconds, peakRssBytes: apply.peakRssBytes } : { error: apply?.error },
          restoredExactly: apply?.ok ? sameBytes(b, join(out, 'usr/bin/prog')) : false,
        }
      : { error: diff.error },
  };
}

async function main() {
  const args = process.argv.slice(2);
  const only = args[0] === '--pairs' ? args[1].split(',') : Object.keys(PAIRS);
  const resultsFile = join(BENCH, 'results-exe.json');
  const previous = existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : { pairs: [] };
  const machine = machineInfo();
  const pairs = previous.pairs.filter((p) => !only.includes(p.id));
  for (const id of only) {
    if (!PAIRS[id]) throw new Error(`unknown pair ${id}; known: ${Object.keys(PAIRS).join(', ')}`);
    const work = join(tmpdir(), `bench-exe-${id}-${process.pid}`);
    mkdirSync(work, { recursive: true });
    try {
      console.error(`exe-transform: ${id}`);
      pairs.push({ ...(await measurePair(id, work)), measured: new Date().toISOString(), commit: machine.commit });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  pairs.sort((x, y) => Object.keys(PAIRS).indexOf(x.id) - Object.keys(PAIRS).indexOf(y.id));
  writeFileSync(
    resultsFile,
    JSON.stringify(
      { machine: { ...machine, loadAverageAtEnd: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number) }, pairs },
      null,
      2,
    ) + '\n',
  );
  const results = join(BENCH, 'results.json');
  if (existsSync(results)) writeFileSync(join(BENCH, 'RESULTS.md'), renderMarkdown(JSON.parse(readFileSync(results, 'utf8'))));
}

await main();
