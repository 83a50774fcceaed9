#!/usr/bin/env node
// Many small files (issue #10): deltaimg's tree delta on trees of 50k-100k files, side by side in one run
// with HDiffPatch's directory diff (hdiffz/hpatchz, built from the sources the npm package
// react-native-update ships: bench/lib/hdiffpatch.mjs), `zstd -19 --long=31 --patch-from` and `xdelta3 -9`
// on the trees' tars, and "one scan of both trees" (`tar -c A B | wc -c`) for the unchanged pairs. Every
// tool runs under /usr/bin/time -v (wall, CPU, peak RSS); every deltaimg and hpatchz restore is compared
// with B. Writes bench/results-many-files.json and re-renders bench/RESULTS.md.
//
// usage: nice -n 10 node bench/many-files.mjs [--pairs gen,gen-same,gen-cp,nm,nm-same] [--memory SIZE] [--repeat N] [--no-peers] [--render]
//   --memory   deltaimg's budget (default: deltaimg's own default, a quarter of RAM, at most 1 GiB)
//   --repeat   the unchanged pairs' diff and scan are timed N times, alternating, medians kept (default 3)
//   --no-peers deltaimg only (for re-measuring after a code change; peers' columns kept from the last run)
//   --render   rewrite RESULTS.md from the results files, measure nothing
//
// Pairs (bench/lib/many-files-data.mjs builds and caches them in bench/data/many-files/):
//   gen       generated 100,000 files in 1,000 dirs; B: 1% edited (one line changed or inserted),
//             1,000 deleted, 1,000 added, every file written anew (all mtimes differ)
//   gen-same  B = A written anew: same bytes, every mtime differs
//   gen-cp    B = cp -a A: nothing differs
//   nm        a Next.js app's node_modules at two dependency sets (npm install --ignore-scripts each)
//   nm-same   the older set installed twice: same files, every mtime differs
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
import { measureHdiffpatch, measureTarPeers } from './lib/peers.mjs';
import { generatedTrees, nodeModulesTrees } from './lib/many-files-data.mjs';
import { keptSections, renderMarkdown } from './lib/report.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const DATA = join(BENCH, 'data', 'many-files');
const WORK = join(BENCH, 'work', 'many-files');
const { cli: CLI, commit: CLI_COMMIT } = cliUnderTest(BENCH);
const RESULTS_JSON = join(BENCH, 'results-many-files.json');
const GiB = 2 ** 30;

const PAIRS = {
  gen: { label: 'generated: 100,000 files; 1% edited, 1,000 deleted, 1,000 added; all mtimes differ', trees: () => gen().ab },
  'gen-same': { label: 'generated, unchanged: A written again (same bytes, all mtimes differ)', trees: () => gen().same, unchanged: true },
  'gen-cp': { label: 'generated, unchanged: cp -a of A (nothing differs)', trees: () => gen().cp, unchanged: true },
  nm: { label: 'node_modules of a Next.js app: two dependency sets (npm install twice)', trees: () => nm().ab },
  'nm-same': {
    label: 'node_modules, unchanged: the older set installed twice (all mtimes differ)',
    trees: () => nm().same,
    unchanged: true,
  },
};

function gen() {
  const t = generatedTrees(DATA);
  return { ab: { a: t.a, b: t.b }, same: { a: t.a, b: t.same }, cp: { a: t.a, b: t.cp } };
}

function nm() {
  const t = nodeModulesTrees(DATA);
  return { ab: { a: t.a, b: t.b }, same: { a: t.a, b: t.same } };
}

function parseOptions(argv) {
  const opts = { pairs: Object.keys(PAIRS), memory: null, repeat: 3, peers: true, render: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--pairs' && argv[i + 1]) opts.pairs = argv[++i].split(',');
    else if (arg === '--memory' && argv[i + 1]) opts.memory = argv[++i];
    else if (arg === '--repeat' && Number(argv[i + 1]) >= 1) opts.repeat = Math.floor(Number(argv[++i]));
    else if (arg === '--no-peers') opts.peers = false;
    else if (arg === '--render') opts.render = true;
    else {
      console.error(
        'usage: node bench/many-files.mjs [--pairs gen,gen-same,gen-cp,nm,nm-same] [--memory SIZE] [--repeat N] [--no-peers] [--render]',
      );
      process.exit(2);
    }
  }
  const unknown = opts.pairs.filter((p) => !PAIRS[p]);
  if (unknown.length) {
    console.error(`many-files: unknown pair ${unknown.join(', ')} (known: ${Object.keys(PAIRS).join(', ')})`);
    process.exit(2);
  }
  return opts;
}

const log = (message) => process.stderr.write(`many-files ${new Date().toISOString().slice(11, 19)}: ${message}\n`);

/** One scan of both trees: every entry's metadata and every byte read once (piped: GNU tar skips reading for /dev/null). */
const scanArgv = (a, b) => ['bash', '-c', 'set -o pipefail; tar -cf - -C "$1" . -C "$2" . | wc -c >/dev/null', 'scan', a, b];

const memoryArgs = (opts) => (opts.memory ? ['--memory', opts.memory] : []);

async function measureDeltaimg(pair, a, b, work, opts) {
  const delta = join(work, 'delta');
  const result = {};
  if (pair.unchanged && opts.repeat > 1) {
    log('deltaimg diff / one scan of both trees, alternating');
    const runs = await runAlternating(
      [
        { key: 'scan', argv: scanArgv(a, b) },
        {
          key: 'diff',
          argv: ['node', CLI, 'diff', '-q', '--json', ...memoryArgs(opts), a, b, '--out', delta],
          before: () => freshPath(delta),
        },
      ],
      opts.repeat,
    );
    result.scan = slimRun(runs.scan);
    result.diff = slimRun(runs.diff);
    result.summary = runs.diff.ok ? JSON.parse(runs.diff.stdout) : null;
  } else {
    log('one scan of both trees');
    result.scan = slimRun(await runMeasured(scanArgv(a, b)));
    log('deltaimg diff');
    freshPath(delta);
    const diff = await runMeasured(['node', CLI, 'diff', '-q', '--json', ...memoryArgs(opts), a, b, '--out', delta]);
    result.diff = slimRun(diff);
    result.summary = diff.ok ? JSON.parse(diff.stdout) : null;
  }
  if (!result.diff.ok) return result;
  result.layerBytes = gzipLayerBytes(delta);
  result.deltaFiles = Number(execFileSync('bash', ['-c', 'find "$1" -type f | wc -l', 'count', delta], { encoding: 'utf8' }).trim());
  result.minReaderVersion = JSON.parse(readFileSync(join(delta, 'deltaimg.json'), 'utf8')).minReaderVersion;
  log('deltaimg apply');
  const restored = join(work, 'restored');
  freshPath(restored);
  result.apply = slimRun(await runMeasured(['node', CLI, 'apply', '-q', ...memoryArgs(opts), a, delta, '--out', restored]));
  if (result.apply.ok) {
    log('comparing the restore with B');
    result.compare = await compareTrees(b, restored);
  }
  rmSync(restored, { recursive: true, force: true });
  rmSync(delta, { recursive: true, force: true });
  return result;
}

async function measurePair(id, opts, tools, commit) {
  const pair = PAIRS[id];
  log(`${id}: preparing the trees`);
  const { a, b } = pair.trees();
  const work = join(WORK, id);
  freshPath(work);
  mkdirSync(work, { recursive: true });
  const result = { id, label: pair.label, unchanged: Boolean(pair.unchanged), treeA: treeStats(a), treeB: treeStats(b) };
  result.shipAsIsBytes = gzipLayerBytes(b);
  log(`${id}: deltaimg`);
  result.deltaimg = { ...(await measureDeltaimg(pair, a, b, work, opts)), commit };
  if (opts.peers) {
    result.hdiffpatch = await measureHdiffpatch(tools, a, b, work, log);
    // zstd -19 and xdelta3 only where something changed: on an unchanged pair the tars differ in mtimes
    // alone, and zstd -19 over two 230-470 MB tars costs many CPU minutes on the shared machine.
    if (!pair.unchanged) Object.assign(result, await measureTarPeers(a, b, work, log));
  }
  rmSync(work, { recursive: true, force: true });
  return result;
}

/** Peers' columns and the first measured deltaimg size ("today's" baseline) carried over from the previous run. */
function withCarriedOver(measured, previous, opts) {
  const carried = { ...measured };
  if (!opts.peers && previous) {
    for (const key of ['hdiffpatch', 'zstd', 'xdelta3', 'aTarBytes', 'bTarBytes', 'peersMeasuredAt'])
      if (previous[key]) carried[key] = previous[key];
  } else carried.peersMeasuredAt = new Date().toISOString();
  carried.baseline = previous?.baseline ?? { layerBytes: measured.deltaimg.layerBytes, commit: measured.deltaimg.commit };
  return carried;
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.render) return renderResults();
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: run npm run build first`);
  const machine = { ...machineInfo(), commit: CLI_COMMIT };
  const tools = opts.peers ? hdiffpatchTools(join(BENCH, 'data')) : null;
  const budgetBytes = opts.memory ? null : Math.min(GiB, Math.floor(totalmem() / 4));
  for (const id of opts.pairs) {
    const measured = await measurePair(id, opts, tools, machine.commit);
    const file = existsSync(RESULTS_JSON) ? JSON.parse(readFileSync(RESULTS_JSON, 'utf8')) : { pairs: [] };
    const previous = file.pairs.find((p) => p.id === id);
    const row = { ...withCarriedOver(measured, previous, opts), measuredAt: new Date().toISOString() };
    const pairs = [...file.pairs.filter((p) => p.id !== id), row].sort(
      (x, y) => Object.keys(PAIRS).indexOf(x.id) - Object.keys(PAIRS).indexOf(y.id),
    );
    const out = {
      machine: { ...machine, loadAverageAtEnd: loadavg().map((x) => Number(x.toFixed(2))) },
      memory: opts.memory ?? `default (${budgetBytes} bytes)`,
      hdiffpatch: tools ? { version: tools.version, source: tools.source } : (file.hdiffpatch ?? null),
      pairs,
    };
    writeResultsJson(RESULTS_JSON, out);
    log(`${id}: written to ${RESULTS_JSON}`);
  }
  renderResults();
}

/** Re-renders RESULTS.md (run.mjs's tables from results.json, with every section of the other scripts). */
function renderResults() {
  const resultsJson = join(BENCH, 'results.json');
  const resultsMd = join(BENCH, 'RESULTS.md');
  if (existsSync(resultsJson))
    writeFileSync(resultsMd, renderMarkdown(JSON.parse(readFileSync(resultsJson, 'utf8'))) + keptSections(resultsMd));
}

await main();
