// Measuring helpers of the benchmark: every tool (ours included) runs as a child process under
// GNU time, so wall time and peak RSS are taken the same way for all of them.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  readFileSync,
  rmSync,
  mkdtempSync,
  readdirSync,
  lstatSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { cpus, totalmem, release, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const GNU_TIME = '/usr/bin/time';
const STDERR_TAIL_BYTES = 2000;

/**
 * Runs argv under `/usr/bin/time -v`; wall time comes from a monotonic clock around the child,
 * peak RSS from time's "Maximum resident set size" (the largest of the process and its waited-for
 * children). Never throws for a failing command: the result says ok: false with the stderr tail,
 * so one broken tool does not stop the whole benchmark.
 * @returns {Promise<{ok: boolean, seconds: number, cpuSeconds: number|null, peakRssBytes: number|null, stdout: string, error?: string}>}
 */
export async function runMeasured(argv, { cwd } = {}) {
  const timeDir = mkdtempSync(join(tmpdir(), 'bench-time-'));
  const timeFile = join(timeDir, 'time.txt');
  const started = process.hrtime.bigint();
  const { code, stdout, stderr } = await spawnCollect(GNU_TIME, ['-v', '-o', timeFile, ...argv], cwd);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  let peakRssBytes = null;
  let cpuSeconds = null;
  try {
    const report = readFileSync(timeFile, 'utf8');
    const match = /Maximum resident set size \(kbytes\): (\d+)/.exec(report);
    if (match) peakRssBytes = Number(match[1]) * 1024;
    const user = /User time \(seconds\): ([\d.]+)/.exec(report);
    const system = /System time \(seconds\): ([\d.]+)/.exec(report);
    if (user && system) cpuSeconds = Number(user[1]) + Number(system[1]);
  } catch {
    // time could not write its report: the command did not start at all (reported below)
  }
  rmSync(timeDir, { recursive: true, force: true });
  if (code !== 0) {
    const tail = stderr.slice(-STDERR_TAIL_BYTES).trim();
    return { ok: false, seconds, cpuSeconds, peakRssBytes, stdout, error: `exit ${code}: ${tail}` };
  }
  return { ok: true, seconds, cpuSeconds, peakRssBytes, stdout };
}

/**
 * Runs each step `times` times, alternating (A, B, A, B, ...) so both see the same machine
 * load and the same page-cache state; `before` runs unmeasured ahead of every step (e.g. to
 * remove its previous output). Each result is the step's median run by wall time, with all
 * the wall times in `runs` and the largest peak RSS of any run.
 * @param {{ key: string, argv: string[], before?: () => void }[]} steps
 */
export async function runAlternating(steps, times) {
  const all = Object.fromEntries(steps.map((s) => [s.key, []]));
  for (let i = 0; i < times; i++) {
    for (const step of steps) {
      step.before?.();
      all[step.key].push(await runMeasured(step.argv));
    }
  }
  return Object.fromEntries(steps.map((s) => [s.key, medianRun(all[s.key])]));
}

function medianRun(results) {
  const failed = results.find((r) => !r.ok);
  if (failed) return failed;
  const sorted = [...results].sort((a, b) => a.seconds - b.seconds);
  const median = sorted[(sorted.length - 1) >> 1];
  const peaks = results.map((r) => r.peakRssBytes).filter((x) => x != null);
  return { ...median, peakRssBytes: peaks.length ? Math.max(...peaks) : null, runs: results.map((r) => Number(r.seconds.toFixed(3))) };
}

function spawnCollect(command, args, cwd) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => {
      err.push(c);
      if (err.length > 64) err.splice(0, err.length - 64); // keep the tail only: bounded memory
    });
    child.on('error', (e) => resolve({ code: -1, stdout: '', stderr: String(e) }));
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}

/** Size in bytes of `tar -C dir -c . | gzip -6`: how big the directory is as a gzip'd image layer. */
export function gzipLayerBytes(dir) {
  const result = spawnSync('bash', ['-c', 'set -o pipefail; tar -C "$1" -c . | gzip -6 | wc -c', 'bash', dir], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`tar | gzip of ${dir} failed: ${result.stderr}`);
  return Number(result.stdout.trim());
}

/** Size in bytes of every regular file under dir (du-like, apparent sizes, hard links once). */
export function treeStats(dir) {
  const seen = new Set();
  let files = 0;
  let bytes = 0;
  walk(dir, '', (rel, st) => {
    if (!st.isFile()) return;
    files++;
    const key = `${st.dev}:${st.ino}`;
    if (!seen.has(key)) bytes += st.size;
    seen.add(key);
  });
  return { files, bytes };
}

function walk(root, rel, visit) {
  for (const name of readdirSync(join(root, rel)).sort()) {
    const child = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(root, child));
    visit(child, st);
    if (st.isDirectory()) walk(root, child, visit);
  }
}

async function sha256Of(path) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk);
  return hash.digest('hex');
}

/** Files up to this size are compared in memory (trees of 100k small files: a stream per file is slow). */
const IN_MEMORY_COMPARE_BYTES = 16 * 1024 * 1024;

async function sameContent(a, b, size) {
  if (size <= IN_MEMORY_COMPARE_BYTES) return readFileSync(a).equals(readFileSync(b));
  return (await sha256Of(a)) === (await sha256Of(b));
}

/** True when two files have the same bytes (`cmp -s`). */
export function sameBytes(a, b) {
  return spawnSync('cmp', ['-s', a, b]).status === 0;
}

function describe(st) {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

/**
 * Compares a restored tree with the expected one: entry set, type, mode, owner, symlink target,
 * device number and file bytes must match ("mismatches"); modification times of regular files
 * are compared to the second and reported apart ("mtimeDiffs"), since they are metadata only.
 */
export async function compareTrees(expectedRoot, actualRoot) {
  const expected = new Map();
  walk(expectedRoot, '', (rel, st) => expected.set(rel, st));
  const mismatches = [];
  let mtimeDiffs = 0;
  const actualSeen = new Set();
  const entries = [];
  walk(actualRoot, '', (rel, st) => entries.push([rel, st]));
  for (const [rel, st] of entries) {
    actualSeen.add(rel);
    const want = expected.get(rel);
    if (!want) {
      mismatches.push(`extra ${rel}`);
      continue;
    }
    const problem = await entryProblem(expectedRoot, actualRoot, rel, want, st);
    if (problem) mismatches.push(`${problem} ${rel}`);
    if (want.isFile() && Math.floor(want.mtimeMs / 1000) !== Math.floor(st.mtimeMs / 1000)) mtimeDiffs++;
  }
  for (const rel of expected.keys()) if (!actualSeen.has(rel)) mismatches.push(`missing ${rel}`);
  return { entries: expected.size, mismatches: mismatches.length, firstMismatches: mismatches.slice(0, 5), mtimeDiffs };
}

async function entryProblem(expectedRoot, actualRoot, rel, want, got) {
  if (describe(want) !== describe(got)) return 'type';
  if ((want.mode & 0o7777) !== (got.mode & 0o7777) && !want.isSymbolicLink()) return 'mode';
  if (want.uid !== got.uid || want.gid !== got.gid) return 'owner';
  if (want.isSymbolicLink() && readlinkSync(join(expectedRoot, rel)) !== readlinkSync(join(actualRoot, rel))) return 'target';
  if ((want.isCharacterDevice() || want.isBlockDevice()) && want.rdev !== got.rdev) return 'rdev';
  if (want.isFile()) {
    if (want.size !== got.size) return 'size';
    if (!(await sameContent(join(expectedRoot, rel), join(actualRoot, rel), want.size))) return 'bytes';
  }
  return null;
}

function firstLine(argv) {
  const result = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  return `${result.stdout}${result.stderr}`.split('\n').find((l) => l.trim()) ?? 'unknown';
}

/** The machine and tool versions the numbers were measured on. */
export function machineInfo() {
  const cpuInfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.+)/.exec(cpuInfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  return {
    date: new Date().toISOString(),
    cpu: model,
    cores: cpus().length,
    ramBytes: totalmem(),
    kernel: release(),
    os: firstLine(['bash', '-c', '. /etc/os-release && echo "$PRETTY_NAME"']),
    node: process.version,
    xdelta3: firstLine(['xdelta3', '-V']),
    zstd: firstLine(['zstd', '--version']),
    gzip: firstLine(['gzip', '--version']),
    commit: git || 'unknown',
    loadAverageAtStart: loadavg().map((x) => Number(x.toFixed(2))),
  };
}

/** A measured run without its stdout, for the results files. */
export function slimRun(r) {
  return {
    ok: r.ok,
    seconds: r.seconds,
    cpuSeconds: r.cpuSeconds,
    peakRssBytes: r.peakRssBytes,
    ...(r.runs ? { runs: r.runs } : {}),
    ...(r.ok ? {} : { error: r.error }),
  };
}

/** Removes `path` and flushes dirty data, so a timed run does not pay for the previous one's writeback. */
export function freshPath(path) {
  rmSync(path, { recursive: true, force: true });
  spawnSync('sync');
}

/** Writes a results file as JSON, in the repository's prettier style when prettier is installed (npm test checks it). */
export function writeResultsJson(path, value) {
  writeFileSync(path, JSON.stringify(value, null, 2) + '\n');
  const prettier = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules', '.bin', 'prettier');
  if (existsSync(prettier)) spawnSync(prettier, ['--write', '--log-level', 'warn', path], { stdio: 'inherit' });
}

/**
 * The deltaimg CLI a benchmark script measures: this checkout's dist/, or the checkout named by
 * DELTAIMG_BENCH_ROOT (a separate worktree built at another commit, so measuring it never races a
 * rebuild of this one). `commit` is that checkout's HEAD: build it there before measuring.
 */
export function cliUnderTest(benchDir) {
  const root = process.env.DELTAIMG_BENCH_ROOT ?? join(benchDir, '..');
  const commit = spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() || 'unknown';
  return { cli: join(root, 'dist', 'cli', 'main.js'), commit };
}
