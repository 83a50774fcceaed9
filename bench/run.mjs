#!/usr/bin/env node
// deltaimg benchmark on real data (see bench/fetch-data.sh), side by side with native xdelta3,
// zstd --patch-from and the deltaimage algorithm (bench/deltaimage-algo.sh).
// Every tool, ours included (`node dist/cli/main.js ...`), runs as a child process under
// /usr/bin/time -v: same wall-clock and peak-RSS measurement for all. One run of each.
// Writes bench/results.json (raw) and bench/RESULTS.md (tables + targets).
//
// usage: node bench/run.mjs [--only files|trees] [--quick] [--render]
//   --quick   the small pairs only (libc, libcrypto, npm app, 200 small files)
//   --render  rewrite RESULTS.md from the existing results.json, measure nothing
//   --results DIR  read/write results.json and RESULTS.md in DIR instead of bench/
//   --reuse-zstd   take the zstd numbers (file and tree pairs) from the previous results.json (zstd -19
//                  on the 400 MB kernel tars alone takes ~9 min; the peer does not change between runs)
//   --repeat N     time decodes (ours / xdelta3), tree diffs (ours / algorithm script) and applies
//                  (ours / cp -a) N times each, alternating, and report the medians (default 3)
//   --pairs a,b    only these file/tree pair ids (e.g. --pairs debian,big)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareTrees, gzipLayerBytes, machineInfo, runAlternating, runMeasured, sameBytes, treeStats } from './lib/measure.mjs';
import { evaluateTargets, keptSections, renderMarkdown } from './lib/report.mjs';
import { selectSmallPairs } from './lib/small-pairs.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const DATA = join(BENCH, 'data');
const WORK = join(BENCH, 'work');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const ALGO = join(BENCH, 'deltaimage-algo.sh');
let RESULTS_JSON = join(BENCH, 'results.json');
/** The parsed command line (set by main). */
let OPTIONS = { repeat: 1 };
let RESULTS_MD = join(BENCH, 'RESULTS.md');

/** Source window for both VCDIFF encoders (xdelta3 -B; xdelta3's default). */
const WINDOW = 64 * 1024 * 1024;
const SMALL_FILE_COUNT = 200;

const FILE_PAIRS = [
  { id: 'libc', label: 'libc.so.6, libc6 2.36-9+deb12u7 → +deb12u14', quick: true },
  { id: 'libcrypto', label: 'libcrypto.so.3, libssl3 3.0.20 → 3.0.22', quick: true },
  { id: 'next-swc', label: 'next-swc .node, @next/swc-linux-x64-gnu 16.4.5 → 16.4.6', quick: false },
  { id: 'big', label: 'next-swc + libLLVM-15 + libLLVM-16 concatenated; B: 20 edits, 1 KiB inserted, 4 MiB moved 256 MiB', quick: false },
];

const TREE_PAIRS = [
  { id: 'debian', label: 'Debian 12 minbase (debootstrap) → apt-get upgrade from bookworm-updates + security', quick: false },
  { id: 'npm-app', label: 'npm app: typescript 5.8.2, esbuild 0.25.4, prettier 3.5.2, lodash 4.17.20 → next patch releases', quick: true },
  { id: 'kernel', label: 'linux-image-6.1.0-50-amd64 (6.1.176-1) → 6.1.0-56-amd64 (6.1.192-2), dpkg-deb -x', quick: false },
  { id: 'big', label: 'one-file tree: the 330 MB edited pair', quick: false },
];

// --- command lines -----------------------------------------------------------------------------

const TOOLS = {
  ours: {
    encode: (a, b, d) => [
      'node',
      CLI,
      'vcdiff',
      'encode',
      '--level',
      '9',
      '--secondary',
      'djw',
      '--window',
      String(WINDOW),
      '-q',
      '-s',
      a,
      b,
      d,
    ],
    decode: (a, d, o) => ['node', CLI, 'vcdiff', 'decode', '--window', String(WINDOW), '-q', '-s', a, d, o],
  },
  xdelta3: {
    // -D / -R: no external (de)compression of gzip'd inputs, like a library user (and like ours).
    encode: (a, b, d) => ['xdelta3', '-e', '-D', '-9', '-S', 'djw', '-B', String(WINDOW), '-f', '-s', a, b, d],
    decode: (a, d, o) => ['xdelta3', '-d', '-R', '-B', String(WINDOW), '-f', '-s', a, d, o],
  },
  zstd: {
    encode: (a, b, d) => ['zstd', '-q', '-19', '--long=31', '-f', `--patch-from=${a}`, b, '-o', d],
    decode: (a, d, o) => ['zstd', '-q', '-d', '--long=31', '-f', `--patch-from=${a}`, d, '-o', o],
  },
};

// --- options -----------------------------------------------------------------------------------

function parseOptions(argv) {
  const opts = { only: null, quick: false, render: false, results: null, reuseZstd: false, repeat: 3, pairs: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') opts.quick = true;
    else if (arg === '--render') opts.render = true;
    else if (arg === '--only' && ['files', 'trees'].includes(argv[i + 1])) opts.only = argv[++i];
    else if (arg === '--results' && argv[i + 1]) opts.results = argv[++i];
    else if (arg === '--reuse-zstd') opts.reuseZstd = true;
    else if (arg === '--repeat' && Number(argv[i + 1]) >= 1) opts.repeat = Math.floor(Number(argv[++i]));
    else if (arg === '--pairs' && argv[i + 1]) opts.pairs = argv[++i].split(',');
    else {
      console.error(
        'usage: node bench/run.mjs [--only files|trees] [--quick] [--render] [--results DIR] [--reuse-zstd] [--repeat N] [--pairs a,b]',
      );
      process.exit(2);
    }
  }
  return opts;
}

function log(message) {
  process.stderr.write(`bench ${new Date().toISOString().slice(11, 19)}: ${message}\n`);
}

function freshDir(path) {
  rmSync(path, { recursive: true, force: true });
  mkdirSync(path, { recursive: true });
  return path;
}

// --- file pairs --------------------------------------------------------------------------------

/** Encode + decode of one tool on one pair; the decoded file must equal B. */
async function measureFileTool(tool, a, b, dir) {
  const delta = join(dir, `${tool}.delta`);
  const decoded = join(dir, `${tool}.out`);
  const encode = await runMeasured(TOOLS[tool].encode(a, b, delta));
  if (!encode.ok) return { encode };
  const deltaBytes = statSync(delta).size;
  const decode = await runMeasured(TOOLS[tool].decode(a, delta, decoded));
  const verified = decode.ok && sameBytes(decoded, b);
  rmSync(decoded, { force: true });
  return { deltaBytes, encode, decode, verified };
}

/**
 * Decode times of ours and xdelta3 (and for the big pair encode times too, where the encode
 * target applies) measured REPEAT times, alternating, each output removed before the next run:
 * a single run each is at the mercy of the machine's other load and of page-cache state (the
 * decode that runs right after a large file was deleted writes its output much faster).
 */
async function repeatVcdiffTimings(row, pair, a, b, dir) {
  if (OPTIONS.repeat <= 1 || !row.tools.ours.encode.ok || !row.tools.xdelta3.encode.ok) return;
  log(`file pair ${pair.id}: decodes x${OPTIONS.repeat}, alternating`);
  const out = join(dir, 'repeat.out');
  const removeOut = () => rmSync(out, { force: true });
  const decodes = await runAlternating(
    ['ours', 'xdelta3'].map((tool) => ({ key: tool, argv: TOOLS[tool].decode(a, join(dir, `${tool}.delta`), out), before: removeOut })),
    OPTIONS.repeat,
  );
  removeOut();
  for (const tool of ['ours', 'xdelta3']) row.tools[tool].decode = { ...decodes[tool], stdout: undefined };
  if (pair.id !== 'big') return;
  log(`file pair ${pair.id}: encodes x${OPTIONS.repeat}, alternating`);
  const encodes = await runAlternating(
    ['ours', 'xdelta3'].map((tool) => ({ key: tool, argv: TOOLS[tool].encode(a, b, out), before: removeOut })),
    OPTIONS.repeat,
  );
  removeOut();
  for (const tool of ['ours', 'xdelta3']) row.tools[tool].encode = { ...encodes[tool], stdout: undefined };
}

async function measureFilePairs(pairs, previousFiles) {
  const results = [];
  for (const pair of pairs) {
    const a = join(DATA, 'files', `${pair.id}.a`);
    const b = join(DATA, 'files', `${pair.id}.b`);
    const dir = freshDir(join(WORK, 'files', pair.id));
    const row = { id: pair.id, label: pair.label, sizeA: statSync(a).size, sizeB: statSync(b).size, tools: {} };
    for (const tool of ['ours', 'xdelta3', 'zstd']) {
      const earlier = tool === 'zstd' ? previousFiles?.find((r) => r.id === pair.id)?.tools.zstd : undefined;
      if (earlier?.encode?.ok) {
        row.tools.zstd = { ...earlier, reusedFrom: earlier.reusedFrom ?? previousFiles.measuredAt };
        continue;
      }
      log(`file pair ${pair.id}: ${tool}`);
      row.tools[tool] = await measureFileTool(tool, a, b, dir);
      if (!row.tools[tool].encode.ok) log(`  ${tool} failed: ${row.tools[tool].encode.error.split('\n').pop()}`);
    }
    await repeatVcdiffTimings(row, pair, a, b, dir);
    rmSync(dir, { recursive: true, force: true });
    results.push(row);
  }
  return results;
}

/** 200 small real pairs: ours in one process vs one xdelta3 process per file (same settings). */
async function measureSmallFiles() {
  const dir = freshDir(join(WORK, 'small'));
  // Changed small files of the npm app pair, then of the Debian pair (absent with --quick).
  const sources = ['npm-app', 'debian']
    .map((id) => ({ id, a: join(DATA, 'trees', id, 'a'), b: join(DATA, 'trees', id, 'b') }))
    .filter((t) => existsSync(t.b));
  const pairs = selectSmallPairs(sources, SMALL_FILE_COUNT);
  const withDelta = (tag) => pairs.map((p, i) => [p.a, p.b, join(dir, `${tag}-${i}.vcdiff`)]);
  // One xdelta3 process per pair, from a generated shell script; the source window of each is
  // what our engine picks by default (the source size as a power of two, 512 KiB .. 64 MiB):
  // xdelta3's own default (-B 64 MiB) would allocate ~130 MiB per process and be far slower.
  const xdelta3Line = ([a, b, d], sizeA) =>
    ['xdelta3', '-e', '-D', '-9', '-S', 'djw', '-f', '-B', String(defaultWindow(sizeA)), '-s', a, b, d].map(shellQuote).join(' ');
  const xdelta3Script = (tag, jobs) => {
    const path = join(dir, `${tag}.sh`);
    writeFileSync(path, jobs.map((job) => xdelta3Line(job, statSync(job[0]).size)).join('\n') + '\n');
    return path;
  };
  const xdelta3Jobs = (tag, parallel) => {
    const jobs = withDelta(tag);
    const scripts = Array.from({ length: parallel }, (_, k) =>
      xdelta3Script(
        `${tag}${k}`,
        jobs.filter((_, i) => i % parallel === k),
      ),
    );
    const argv = parallel === 1 ? ['bash', scripts[0]] : ['bash', '-c', scripts.map((s) => `bash ${shellQuote(s)} &`).join(' ') + ' wait'];
    return { jobs, argv };
  };
  const oursJobs = (tag) => {
    const jobs = withDelta(tag);
    writeFileSync(join(dir, `${tag}.json`), JSON.stringify(jobs));
    return { jobs, json: join(dir, `${tag}.json`) };
  };
  const xSeq = xdelta3Jobs('x', 1);
  const xPar = xdelta3Jobs('xp', 2);
  const oSeq = oursJobs('o');
  const oPool = oursJobs('op');

  log(`small files: ${pairs.length} pairs, ${pairs.filter((p) => p.differs).length} of them changed`);
  const runs = {
    xdelta3Sequential: await runMeasured(xSeq.argv),
    oursSequential: await runMeasured(['node', join(BENCH, 'many-small.mjs'), oSeq.json, 'sequential']),
    xdelta3Parallel2: await runMeasured(xPar.argv),
    oursPool2: await runMeasured(['node', join(BENCH, 'many-small.mjs'), oPool.json, 'pool', '2']),
  };
  const deltaBytes = (jobs) => jobs.reduce((s, [, , d]) => s + (existsSync(d) ? statSync(d).size : 0), 0);
  const result = {
    from: sources.map((t) => t.id),
    files: pairs.length,
    changed: pairs.filter((p) => p.differs).length,
    targetBytes: pairs.reduce((s, p) => s + p.sizeB, 0),
    deltaBytes: { xdelta3: deltaBytes(xSeq.jobs), ours: deltaBytes(oSeq.jobs) },
    runs,
  };
  rmSync(dir, { recursive: true, force: true });
  return result;
}

// --- tree pairs --------------------------------------------------------------------------------

/** Our engine's default source window (src/vcdiff/options.ts): the source size rounded up to a power of two, 512 KiB .. 64 MiB. */
function defaultWindow(sourceBytes) {
  let window = 512 * 1024;
  while (window < sourceBytes && window < WINDOW) window *= 2;
  return window;
}

function shellQuote(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * apply vs cp -a (every pair) and, for the Debian pair (the diff-time target), diff vs the
 * algorithm script: REPEAT runs each, alternating, medians kept (see repeatVcdiffTimings).
 */
async function repeatTreeTimings(row, pair, a, b, dir) {
  if (OPTIONS.repeat <= 1 || !row.ours.diff.ok) return;
  // Each timed run starts with the previous run's output removed and all dirty data flushed
  // (sync): otherwise a run pays, at random, for the writeback of the one before it (measured:
  // the same cp -a of the Debian tree took 0.4 s to 1.5 s).
  const fresh = (path) => () => {
    rmSync(path, { recursive: true, force: true });
    spawnSync('sync');
  };
  const delta = join(dir, 'ours-delta');
  log(`tree pair ${pair.id}: apply / cp -a x${OPTIONS.repeat}, alternating`);
  const applies = await runAlternating(
    [
      { key: 'cp', argv: ['cp', '-a', b, join(dir, 'cp-out')], before: fresh(join(dir, 'cp-out')) },
      {
        key: 'apply',
        argv: ['node', CLI, 'apply', a, delta, '--out', join(dir, 'rep-out'), '--json', '-q'],
        before: fresh(join(dir, 'rep-out')),
      },
    ],
    OPTIONS.repeat,
  );
  row.cpA = { ...applies.cp, stdout: undefined };
  if (row.ours.apply.ok) row.ours.apply = { ...applies.apply, stdout: undefined };
  if (pair.id !== 'debian' || !row.deltaimageAlgo.diff.ok) return;
  log(`tree pair ${pair.id}: diff / algorithm x${OPTIONS.repeat}, alternating`);
  const diffs = await runAlternating(
    [
      { key: 'ours', argv: ['node', CLI, 'diff', a, b, '--out', join(dir, 'rep-delta'), '-q'], before: fresh(join(dir, 'rep-delta')) },
      { key: 'algo', argv: ['bash', ALGO, 'diff', a, b, join(dir, 'rep-algo')], before: fresh(join(dir, 'rep-algo')) },
    ],
    OPTIONS.repeat,
  );
  row.ours.diff = { ...row.ours.diff, ...diffs.ours, stdout: undefined };
  row.deltaimageAlgo.diff = { ...diffs.algo, stdout: undefined };
}

async function measureOursTree(a, b, dir) {
  const delta = join(dir, 'ours-delta');
  const out = join(dir, 'ours-out');
  const diff = await runMeasured(['node', CLI, 'diff', a, b, '--out', delta, '--json', '-q']);
  if (!diff.ok) return { diff };
  const layerBytes = gzipLayerBytes(delta);
  const apply = await runMeasured(['node', CLI, 'apply', a, delta, '--out', out, '--json', '-q']);
  const check = apply.ok ? await compareTrees(b, out) : null;
  return {
    layerBytes,
    diff: { ...diff, stdout: undefined, report: parseJson(diff.stdout) },
    apply: { ...apply, stdout: undefined },
    check,
  };
}

async function measureAlgoTree(a, b, dir) {
  const delta = join(dir, 'algo-delta');
  const diff = await runMeasured(['bash', ALGO, 'diff', a, b, delta]);
  return diff.ok ? { layerBytes: gzipLayerBytes(delta), diff } : { diff };
}

async function measureZstdTree(pair, fileResults, previous) {
  if (pair.id === 'big') {
    const filePair = fileResults?.find((r) => r.id === 'big')?.tools.zstd;
    if (filePair?.encode.ok)
      return { bytes: filePair.deltaBytes, encode: filePair.encode, note: 'the big file pair (one file: the tar is the file)' };
  }
  const before = previous?.find((r) => r.id === pair.id)?.zstd;
  if (before?.encode?.ok) return { ...before, reusedFrom: before.reusedFrom ?? previous.measuredAt };
  if (pair.id === 'big') {
    const a = join(DATA, 'files', 'big.a');
    return zstdPatch(a, join(DATA, 'files', 'big.b'));
  }
  const tree = join(DATA, 'trees', pair.id);
  return zstdPatch(join(tree, 'a.tar'), join(tree, 'b.tar'));
}

async function zstdPatch(aTar, bTar) {
  const out = join(WORK, 'trees', 'zstd.patch.zst');
  const encode = await runMeasured(TOOLS.zstd.encode(aTar, bTar, out));
  const bytes = encode.ok ? statSync(out).size : null;
  rmSync(out, { force: true });
  return { bytes, encode };
}

async function measureTreePairs(pairs, fileResults, previousZstd, onRow) {
  const results = [];
  for (const pair of pairs) {
    const a = join(DATA, 'trees', pair.id, 'a');
    const b = join(DATA, 'trees', pair.id, 'b');
    const dir = freshDir(join(WORK, 'trees', pair.id));
    log(`tree pair ${pair.id}: sizes`);
    const row = { id: pair.id, label: pair.label, treeA: treeStats(a), treeB: treeStats(b), shipAsIsBytes: gzipLayerBytes(b) };
    log(`tree pair ${pair.id}: ours`);
    row.ours = await measureOursTree(a, b, dir);
    if (!row.ours.diff.ok) log(`  ours failed: ${row.ours.diff.error.split('\n').pop()}`);
    log(`tree pair ${pair.id}: deltaimage algorithm (xdelta3 script)`);
    row.deltaimageAlgo = await measureAlgoTree(a, b, dir);
    log(`tree pair ${pair.id}: zstd --patch-from`);
    row.zstd = await measureZstdTree(pair, fileResults, previousZstd);
    log(`tree pair ${pair.id}: cp -a`);
    row.cpA = await runMeasured(['cp', '-a', b, join(dir, 'cp-out')]);
    await repeatTreeTimings(row, pair, a, b, dir);
    rmSync(dir, { recursive: true, force: true });
    results.push(row);
    onRow(results);
  }
  return results;
}

// --- main --------------------------------------------------------------------------------------

function fetchData(quick) {
  log('fetching / checking data (bench/fetch-data.sh)');
  const fetched = spawnSync('bash', [join(BENCH, 'fetch-data.sh'), ...(quick ? ['--quick'] : [])], { stdio: 'inherit' });
  if (fetched.status !== 0) throw new Error('bench/fetch-data.sh failed');
}

function writeReports(results) {
  results.targets = evaluateTargets(results);
  writeFileSync(RESULTS_JSON, JSON.stringify(results, null, 2) + '\n');
  writeFileSync(RESULTS_MD, renderMarkdown(results) + keptSections(RESULTS_MD));
  log(`wrote ${RESULTS_MD} and ${RESULTS_JSON}`);
}

/**
 * With --only, the other level's numbers are kept from the previous results.json (with the date
 * and commit they were measured at), so the two levels can be measured in separate runs.
 */
function carryOver(results, opts) {
  if (!opts.only || !existsSync(RESULTS_JSON)) return;
  const previous = JSON.parse(readFileSync(RESULTS_JSON, 'utf8'));
  const stamp = previous.stages ?? {};
  const keep = opts.only === 'files' ? ['trees'] : ['files', 'smallFiles'];
  for (const key of keep) {
    if (!previous[key]) continue;
    results[key] = previous[key];
    const level = key === 'trees' ? 'trees' : 'files';
    results.stages[level] = stamp[level] ?? {
      date: previous.machine.date,
      commit: previous.machine.commit,
      seconds: previous.totalSeconds,
    };
  }
}

/**
 * With --pairs, the rows just measured (stamped with date and commit) plus the previous run's
 * rows of the other pairs, each keeping the stamp of the run that measured it.
 */
function withEarlierRows(rows, previous, level, order, commit) {
  const now = new Date().toISOString();
  for (const r of rows) r.measuredAt ??= { date: now, commit };
  if (!previous?.[level]) return rows;
  const stage = previous.stages?.[level] ?? { date: previous.machine.date, commit: previous.machine.commit };
  const byId = new Map(
    previous[level].map((r) => [r.id, { ...r, measuredAt: r.measuredAt ?? { date: stage.date, commit: stage.commit } }]),
  );
  for (const r of rows) byId.set(r.id, r);
  return order.map((p) => byId.get(p.id)).filter(Boolean);
}

/** The file rows of the previous results.json, tagged with when they were measured (for --reuse-zstd). */
function previousFiles() {
  if (!existsSync(RESULTS_JSON)) return null;
  const previous = JSON.parse(readFileSync(RESULTS_JSON, 'utf8'));
  const measuredAt = previous.stages?.files?.date ?? previous.machine.date;
  return previous.files ? Object.assign(previous.files, { measuredAt }) : null;
}

/** The tree rows of the previous results.json, tagged with when they were measured (for --reuse-zstd). */
function previousTrees() {
  if (!existsSync(RESULTS_JSON)) return null;
  const previous = JSON.parse(readFileSync(RESULTS_JSON, 'utf8'));
  const measuredAt = previous.stages?.trees?.date ?? previous.machine.date;
  return previous.trees ? Object.assign(previous.trees, { measuredAt }) : null;
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  OPTIONS = opts;
  if (opts.results) {
    mkdirSync(opts.results, { recursive: true });
    RESULTS_JSON = join(opts.results, 'results.json');
    RESULTS_MD = join(opts.results, 'RESULTS.md');
  }
  if (opts.render) return writeReports(JSON.parse(readFileSync(RESULTS_JSON, 'utf8')));
  if (!existsSync(CLI)) log(`warning: ${CLI} missing (run npm run build); deltaimg rows will fail`);
  fetchData(opts.quick);
  const previousTreeRows = opts.reuseZstd ? previousTrees() : null; // read before any checkpoint overwrites it
  const previousFileRows = opts.reuseZstd ? previousFiles() : null;
  const started = Date.now();
  const machine = machineInfo();
  const results = { machine, options: { ...opts, windowBytes: WINDOW }, stages: {}, files: null, smallFiles: null, trees: null };
  carryOver(results, opts);
  const pick = (pairs) => pairs.filter((p) => (p.quick || !opts.quick) && (!opts.pairs || opts.pairs.includes(p.id)));
  const stamp = (level, since) => {
    results.stages[level] = { date: new Date(since).toISOString(), commit: machine.commit, seconds: (Date.now() - since) / 1000 };
  };
  // results.json is rewritten after each stage: an interrupted run still leaves its numbers.
  const checkpoint = () => writeFileSync(RESULTS_JSON, JSON.stringify(results, null, 2) + '\n');
  const previous = opts.pairs && existsSync(RESULTS_JSON) ? JSON.parse(readFileSync(RESULTS_JSON, 'utf8')) : null;
  if (opts.only !== 'trees') {
    const since = Date.now();
    results.files = withEarlierRows(
      await measureFilePairs(pick(FILE_PAIRS), previousFileRows),
      previous,
      'files',
      FILE_PAIRS,
      machine.commit,
    );
    checkpoint();
    if (!opts.pairs) results.smallFiles = await measureSmallFiles();
    else results.smallFiles = previous?.smallFiles ?? null;
    stamp('files', since);
    checkpoint();
  }
  if (opts.only !== 'files') {
    const since = Date.now();
    results.trees = await measureTreePairs(pick(TREE_PAIRS), results.files, previousTreeRows, (rows) => {
      results.trees = withEarlierRows(rows, previous, 'trees', TREE_PAIRS, machine.commit);
      stamp('trees', since);
      checkpoint();
    });
    results.trees = withEarlierRows(results.trees, previous, 'trees', TREE_PAIRS, machine.commit);
  }
  results.machine.loadAverageAtEnd = loadavg().map((x) => Number(x.toFixed(2)));
  results.totalSeconds = (Date.now() - started) / 1000;
  writeReports(results);
}

await main();
