/**
 * The memory budget of one diff or apply (`--memory SIZE`): every job that needs more than a
 * few MiB (a suffix array, a VCDIFF window, a brotli encoder) is admitted by its estimated peak,
 * so the process stays under the budget whatever the file sizes, and as many jobs run at once as
 * fit. Jobs are admitted largest first (first fit decreasing): a big job waiting for room gets
 * it before smaller ones that arrived later, and smaller ones fill the room it cannot use.
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { DeltaimgError } from './errors.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** The default budget never exceeds this, however large the machine. */
export const DEFAULT_MAX_BUDGET = GiB;
/** Below this, node itself and the worker threads leave no room for work. */
export const MIN_BUDGET = 128 * MiB;

/**
 * The default budget: a quarter of the machine's memory (or of the cgroup's limit when a
 * container runs us under one), at most 1 GiB. Diffs and applies run beside the workloads
 * they update; a quarter leaves the rest of the machine alone.
 */
export function defaultMemoryBudget(): number {
  const machine = Math.min(totalmem(), cgroupLimit() ?? Infinity);
  return Math.max(MIN_BUDGET, Math.min(DEFAULT_MAX_BUDGET, Math.floor(machine / 4)));
}

/** The cgroup v2 (or v1) memory limit we run under, if any. */
function cgroupLimit(): number | undefined {
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const text = readFileSync(file, 'latin1').trim();
      const n = Number(text);
      // "max" (v2) or a huge number (v1's "no limit") mean none.
      if (Number.isSafeInteger(n) && n > 0 && n < 2 ** 50) return n;
    } catch {
      // not under that cgroup version
    }
  }
  return undefined;
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: MiB, mb: MiB, mib: MiB, g: GiB, gb: GiB, gib: GiB };

/** Parses `--memory`: bytes, or a number with K/M/G (KiB, MiB, GiB; "1.5G" works too). */
export function parseMemorySize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new DeltaimgError('USAGE', `--memory must be a size such as 800M, 1G or 1073741824 (got ${JSON.stringify(text)})`);
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (bytes < MIN_BUDGET) {
    throw new DeltaimgError(
      'USAGE',
      `--memory ${text} is below the ${MIN_BUDGET / MiB} MiB that node and its workers need; give at least 128M`,
    );
  }
  return bytes;
}

interface Waiting {
  bytes: number;
  admit(): void;
}

/**
 * The share of the budget no job may take: what the estimates do not see (the records diff builds
 * as it goes, the JS heap's slack before a collection). Without it, diff of the Node app with the
 * 130 MB @next/swc addon peaked at 1,078 MB under a 1 GiB budget (1,074 MB).
 */
export const ESTIMATE_MARGIN = 1 / 16;

/** A job that does not fit is passed over by smaller ones at most this many times, then they wait for it. */
const MAX_PASSOVERS = 8;

export class MemoryBudget {
  /** What jobs may hold at once: the budget less what the process held when the budget was set up. */
  readonly jobBytes: number;
  private used = 0;
  private readonly waiting: Waiting[] = [];
  private passovers = 0;

  /**
   * `reservedBytes`: memory the caller holds outside any job (worker threads, buffers kept
   * between jobs), on top of the process's current resident size; `marginShare` of the budget
   * is kept back for what the estimates miss.
   */
  constructor(
    readonly totalBytes: number,
    reservedBytes = 0,
    residentBytes = process.memoryUsage.rss(),
    marginShare = ESTIMATE_MARGIN,
  ) {
    // At least a sliver, so that a budget eaten by the baseline still runs jobs one at a time.
    this.jobBytes = Math.max(16 * MiB, Math.floor(totalBytes * (1 - marginShare)) - residentBytes - reservedBytes);
  }

  /** True when a job of this estimate can run within the budget (alone, at worst). */
  fits(bytes: number): boolean {
    return bytes <= this.jobBytes;
  }

  /**
   * Runs `job` once `bytes` of the budget are free. A job estimated above the whole budget
   * (callers avoid making one) waits until it can run alone.
   */
  async run<T>(bytes: number, job: () => Promise<T>): Promise<T> {
    const held = Math.min(Math.max(0, Math.ceil(bytes)), this.jobBytes);
    if (!this.admitNow(held)) await new Promise<void>((admit) => this.enqueue({ bytes: held, admit }));
    try {
      return await job();
    } finally {
      this.used -= held;
      this.admitWaiting();
    }
  }

  /** Bytes currently held by running jobs (for tests and progress). */
  inUse(): number {
    return this.used;
  }

  private admitNow(bytes: number): boolean {
    const head = this.waiting[0];
    const passesHead = head !== undefined && bytes < head.bytes;
    if ((passesHead && this.passovers >= MAX_PASSOVERS) || this.used + bytes > this.jobBytes) return false;
    if (passesHead) this.passovers++;
    this.used += bytes;
    return true;
  }

  /** Keeps the queue largest first (equal sizes in arrival order). */
  private enqueue(w: Waiting): void {
    let i = this.waiting.length;
    while (i > 0 && this.waiting[i - 1]!.bytes < w.bytes) i--;
    if (i === 0) this.passovers = 0;
    this.waiting.splice(i, 0, w);
  }

  /**
   * First fit decreasing: the largest waiting job if it fits, then each smaller one that fits;
   * smaller ones pass a head that does not fit only MAX_PASSOVERS times, then wait behind it.
   */
  private admitWaiting(): void {
    let i = 0;
    while (i < this.waiting.length) {
      const passesHead = i > 0;
      if (passesHead && this.passovers >= MAX_PASSOVERS) return;
      const w = this.waiting[i]!;
      if (this.used + w.bytes > this.jobBytes) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.passovers = passesHead ? this.passovers + 1 : 0;
      this.used += w.bytes;
      w.admit();
    }
  }
}

/** A worker thread's own heap and isolate, idle. */
export const WORKER_THREAD_BYTES = 16 * MiB;

/**
 * How much memory an idle worker may keep between jobs (a VCDIFF worker's wasm instance):
 * a sixteenth of the budget, 32-256 MiB, so a pool's idle workers never crowd the jobs out.
 */
export function idleWorkerShare(budgetBytes: number): number {
  return Math.min(256 * MiB, Math.max(32 * MiB, Math.floor(budgetBytes / 16)));
}
