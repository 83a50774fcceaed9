/**
 * The one pool of worker threads: one job per worker at a time, workers started on demand
 * up to `size`. A worker that dies (crashes, exits, is killed) fails only the job it was
 * running and leaves the pool at once, so no later job is handed to it; a job that exceeds
 * its time limit or is aborted terminates its worker the same way. `retireAfter` replaces a
 * worker after a job that left it holding too much (e.g. a grown wasm heap).
 *
 * The worker script answers with `serveJobs` (util/worker-serve.ts).
 */
import { availableParallelism } from 'node:os';
import { Worker, type TransferListItem } from 'node:worker_threads';
import { DeltaimgError, type ErrorCode } from './errors.js';

/** What a worker sends back for the job with this id. */
export type JobReply<Result> =
  | { id: number; ok: true; result: Result }
  | { id: number; ok: false; error: { deltaimg: boolean; code: string; message: string; stack?: string } };

export interface JobMessage<Request> {
  id: number;
  request: Request;
}

export interface WorkerPoolOptions<Result> {
  /** The worker script (it calls serveJobs); a function is called when the first worker starts. */
  script: URL | (() => URL);
  /** How errors name the workers ("vcdiff worker"). */
  name: string;
  /** Number of worker threads; default one per core. */
  size?: number;
  /** workerData for each new worker (e.g. a compiled wasm module). */
  workerData?: () => unknown;
  /** true: terminate the worker after this job and start a fresh one for the next. */
  retireAfter?: (result: Result) => boolean;
  /** Default time limit of a job in ms (none by default): its worker is terminated and the job fails. */
  jobTimeoutMs?: number;
}

export interface RunOptions {
  /** Aborting fails the job and, if it is running, terminates its worker. */
  signal?: AbortSignal;
  /** Overrides the pool's jobTimeoutMs for this job. */
  timeoutMs?: number;
  transfer?: readonly TransferListItem[];
}

interface Job<Request, Result> {
  request: Request;
  options: RunOptions;
  resolve: (result: Result) => void;
  reject: (err: Error) => void;
  /** Set once the job is settled (a late reply or death is then ignored). */
  settled: boolean;
}

class PoolWorker<Request, Result> {
  readonly thread: Worker;
  job: Job<Request, Result> | null = null;
  jobId = 0;
  dead = false;
  private timer: NodeJS.Timeout | null = null;
  private onAbort: (() => void) | null = null;

  constructor(script: URL, workerData: unknown) {
    this.thread = new Worker(script, workerData === undefined ? {} : { workerData });
    this.thread.unref();
  }

  start(id: number, job: Job<Request, Result>, limitMs: number | undefined, stop: (why: string) => void): void {
    this.job = job;
    this.jobId = id;
    this.thread.ref(); // a busy worker keeps the process alive; an idle one does not
    if (limitMs !== undefined) this.timer = setTimeout(() => stop(`took longer than ${limitMs} ms`), limitMs);
    const signal = job.options.signal;
    if (signal) {
      this.onAbort = () => stop('was aborted');
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
    this.thread.postMessage({ id, request: job.request } satisfies JobMessage<Request>, job.options.transfer);
  }

  /** Detaches the current job (timer, abort listener) and returns it. */
  finish(): Job<Request, Result> | null {
    const job = this.job;
    this.job = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.onAbort) job?.options.signal?.removeEventListener('abort', this.onAbort);
    this.onAbort = null;
    if (!this.dead) this.thread.unref();
    return job;
  }
}

function replyError<R>(reply: Extract<JobReply<R>, { ok: false }>): Error {
  if (reply.error.deltaimg) return new DeltaimgError(reply.error.code as ErrorCode, reply.error.message);
  const err = new Error(reply.error.message);
  if (reply.error.stack) err.stack = reply.error.stack;
  return err;
}

export class WorkerPool<Request, Result> {
  readonly size: number;
  private readonly workers = new Set<PoolWorker<Request, Result>>();
  private readonly queue: Job<Request, Result>[] = [];
  private nextId = 1;
  private closing = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: WorkerPoolOptions<Result>) {
    const size = opts.size ?? availableParallelism();
    if (!Number.isInteger(size) || size < 1) throw new DeltaimgError('USAGE', `pool size must be a positive integer (got ${size})`);
    this.size = size;
  }

  run(request: Request, options: RunOptions = {}): Promise<Result> {
    if (this.closing) return Promise.reject(new DeltaimgError('INTERNAL', `the ${this.opts.name} pool is closed`));
    if (options.signal?.aborted) return Promise.reject(this.aborted());
    return new Promise<Result>((resolve, reject) => {
      const job: Job<Request, Result> = { request, options, resolve, reject, settled: false };
      options.signal?.addEventListener('abort', () => this.dropQueued(job), { once: true });
      this.queue.push(job);
      this.dispatch();
    });
  }

  /** Lets queued and running jobs finish, then stops every worker. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.busy()) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await Promise.all([...this.workers].map((w) => this.stop(w)));
  }

  /** Worker threads alive now (for tests and diagnostics). */
  get threads(): number {
    return this.workers.size;
  }

  private busy(): boolean {
    return this.queue.length > 0 || [...this.workers].some((w) => w.job);
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const worker = this.idleWorker();
      if (!worker) return;
      const job = this.queue.shift()!;
      const limit = job.options.timeoutMs ?? this.opts.jobTimeoutMs;
      worker.start(this.nextId++, job, limit, (why) => this.kill(worker, why));
    }
    if (!this.busy()) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private idleWorker(): PoolWorker<Request, Result> | null {
    for (const w of this.workers) if (!w.job) return w;
    if (this.workers.size >= this.size) return null;
    const script = typeof this.opts.script === 'function' ? this.opts.script() : this.opts.script;
    const w = new PoolWorker<Request, Result>(script, this.opts.workerData?.());
    w.thread.on('message', (reply: JobReply<Result>) => this.onReply(w, reply));
    w.thread.on('error', (err) => this.onDeath(w, `failed: ${err.message}`));
    w.thread.on('exit', (code) => this.onDeath(w, `exited with code ${code}`));
    this.workers.add(w);
    return w;
  }

  private onReply(worker: PoolWorker<Request, Result>, reply: JobReply<Result>): void {
    if (worker.dead || reply.id !== worker.jobId) return;
    const job = worker.finish();
    if (reply.ok && this.opts.retireAfter?.(reply.result)) void this.stop(worker);
    if (job && !job.settled) {
      job.settled = true;
      if (reply.ok) job.resolve(reply.result);
      else job.reject(replyError(reply));
    }
    this.dispatch();
  }

  /** The worker is gone: out of the pool first, so nothing more is sent to it; its job fails. */
  private onDeath(worker: PoolWorker<Request, Result>, why: string): void {
    if (worker.dead) return;
    worker.dead = true;
    this.workers.delete(worker);
    this.failJob(worker, `${this.opts.name} ${why}`);
    this.dispatch();
  }

  /** A job over its time limit, or aborted: terminate its worker, fail the job. */
  private kill(worker: PoolWorker<Request, Result>, why: string): void {
    if (worker.dead) return;
    const aborted = worker.job?.options.signal?.aborted === true;
    this.failJob(worker, `${this.opts.name} job ${why}`, aborted);
    void this.stop(worker);
    this.dispatch();
  }

  private failJob(worker: PoolWorker<Request, Result>, message: string, aborted = false): void {
    const job = worker.finish();
    if (!job || job.settled) return;
    job.settled = true;
    job.reject(aborted ? this.aborted() : new DeltaimgError('INTERNAL', message));
  }

  private stop(worker: PoolWorker<Request, Result>): Promise<number> {
    worker.dead = true;
    this.workers.delete(worker);
    return worker.thread.terminate();
  }

  private dropQueued(job: Job<Request, Result>): void {
    const at = this.queue.indexOf(job);
    if (at < 0) return; // running: its worker's abort listener handles it
    this.queue.splice(at, 1);
    job.settled = true;
    job.reject(this.aborted());
    if (!this.busy()) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private aborted(): Error {
    return new DeltaimgError('INTERNAL', `${this.opts.name} job aborted`);
  }
}
