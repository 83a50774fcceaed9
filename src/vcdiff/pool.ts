/**
 * A pool of worker threads running encode/decode jobs, one job per worker at a time.
 * The wasm module is compiled once here and shared with every worker. Each job gets its
 * own wasm instance; a worker whose job grew wasm memory past RECYCLE_BYTES is replaced,
 * so a pool never holds on to a big heap after a big file.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DeltaimgError, type ErrorCode } from '../util/errors.js';
import type { DecodeResult, EncodeResult } from './engine.js';
import type { OutputMode } from './files.js';
import type { PathLike } from './io.js';
import type { VcdiffOptions } from './options.js';
import { xdelta3Module } from './wasm.js';
import type { JobReply, JobRequest } from './worker.js';

export interface VcdiffPoolOptions {
  /** Number of worker threads; default one per core. */
  size?: number;
  /**
   * A worker whose last job used more wasm memory than this is replaced (default RECYCLE_BYTES),
   * so an idle pool holds at most size x this: callers under a memory budget set it lower.
   */
  recycleBytes?: number;
}

/** Workers whose last job used more wasm memory than this are replaced. */
export const RECYCLE_BYTES = 256 * 1024 * 1024;

interface QueuedJob {
  request: Omit<JobRequest, 'id'>;
  resolve: (reply: JobReply) => void;
  reject: (err: Error) => void;
}

/** Compiled JS runs from dist/; under vitest the sources are .ts, so use the built worker. */
function workerUrl(): URL {
  const here = new URL(import.meta.url);
  if (!here.pathname.endsWith('.ts')) return new URL('./worker.js', here);
  const built = new URL('../../dist/vcdiff/worker.js', here);
  if (!existsSync(built)) {
    throw new DeltaimgError('INTERNAL', `VcdiffPool needs the built worker ${fileURLToPath(built)}; run npm run build first`);
  }
  return built;
}

class PoolWorker {
  readonly worker: Worker;
  current: (QueuedJob & { id: number }) | null = null;

  constructor(onReply: (w: PoolWorker, reply: JobReply) => void, onDeath: (w: PoolWorker, err: Error) => void) {
    this.worker = new Worker(workerUrl(), { workerData: { module: xdelta3Module() } });
    this.worker.unref();
    this.worker.on('message', (reply: JobReply) => onReply(this, reply));
    this.worker.on('error', (err) => onDeath(this, err));
    this.worker.on('exit', (code) => onDeath(this, new Error(`vcdiff worker exited with code ${code}`)));
  }

  start(job: QueuedJob & { id: number }): void {
    this.current = job;
    this.worker.ref(); // a busy worker keeps the process alive; an idle one does not
    this.worker.postMessage({ id: job.id, ...job.request } satisfies JobRequest);
  }

  finish(): QueuedJob | null {
    const job = this.current;
    this.current = null;
    this.worker.unref();
    return job;
  }
}

function toError(reply: Extract<JobReply, { ok: false }>): Error {
  if (reply.error.deltaimg) return new DeltaimgError(reply.error.code as ErrorCode, reply.error.message);
  const err = new Error(reply.error.message);
  if (reply.error.stack) err.stack = reply.error.stack;
  return err;
}

export class VcdiffPool {
  readonly size: number;
  readonly recycleBytes: number;
  private readonly workers = new Set<PoolWorker>();
  private readonly queue: QueuedJob[] = [];
  private nextId = 1;
  private closing = false;
  private idleWaiters: Array<() => void> = [];
  private readonly dead = new WeakSet<PoolWorker>();

  constructor(opts?: VcdiffPoolOptions) {
    const size = opts?.size ?? availableParallelism();
    if (!Number.isInteger(size) || size < 1) throw new DeltaimgError('USAGE', `pool size must be a positive integer (got ${size})`);
    this.size = size;
    this.recycleBytes = opts?.recycleBytes ?? RECYCLE_BYTES;
  }

  /** `mode` 'create': DELTA must not exist and is written in place (see OutputMode). */
  encodeFile(sourcePath: PathLike | null, targetPath: PathLike, deltaPath: PathLike, opts?: VcdiffOptions, mode: OutputMode = 'atomic'): Promise<EncodeResult> {
    return this.submit({ op: 'encode', source: sourcePath, input: targetPath, output: deltaPath, opts, mode }) as Promise<EncodeResult>;
  }

  /** `mode` 'create': OUT must not exist and is written in place (see OutputMode). */
  decodeFile(sourcePath: PathLike | null, deltaPath: PathLike, outPath: PathLike, opts?: VcdiffOptions, mode: OutputMode = 'atomic'): Promise<DecodeResult> {
    return this.submit({ op: 'decode', source: sourcePath, input: deltaPath, output: outPath, opts, mode }) as Promise<DecodeResult>;
  }

  /** Lets queued and running jobs finish, then stops every worker. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.busy()) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    const stopping = [...this.workers].map((w) => {
      this.dead.add(w);
      return w.worker.terminate();
    });
    this.workers.clear();
    await Promise.all(stopping);
  }

  private async submit(request: Omit<JobRequest, 'id'>): Promise<EncodeResult | DecodeResult> {
    if (this.closing) throw new DeltaimgError('INTERNAL', 'VcdiffPool is closed');
    const reply = await new Promise<JobReply>((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.dispatch();
    });
    if (!reply.ok) throw toError(reply);
    return reply.result as unknown as EncodeResult | DecodeResult;
  }

  private busy(): boolean {
    return this.queue.length > 0 || [...this.workers].some((w) => w.current);
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const worker = this.idleWorker();
      if (!worker) return;
      const job = this.queue.shift()!;
      worker.start({ ...job, id: this.nextId++ });
    }
    if (!this.busy()) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private idleWorker(): PoolWorker | null {
    for (const w of this.workers) if (!w.current) return w;
    if (this.workers.size >= this.size) return null;
    const w = new PoolWorker(
      (worker, reply) => this.onReply(worker, reply),
      (worker, err) => this.onDeath(worker, err),
    );
    this.workers.add(w);
    return w;
  }

  private onReply(worker: PoolWorker, reply: JobReply): void {
    const job = worker.finish();
    if (reply.ok && reply.wasmBytes > this.recycleBytes) this.retire(worker);
    job?.resolve(reply);
    this.dispatch();
  }

  private onDeath(worker: PoolWorker, err: Error): void {
    if (this.dead.has(worker)) return;
    this.dead.add(worker);
    this.workers.delete(worker);
    worker.finish()?.reject(new DeltaimgError('INTERNAL', `vcdiff worker failed: ${err.message}`));
    this.dispatch();
  }

  private retire(worker: PoolWorker): void {
    this.dead.add(worker);
    this.workers.delete(worker);
    void worker.worker.terminate();
  }
}
