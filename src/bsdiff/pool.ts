/**
 * bsdiff encodes on worker threads. Building a suffix array is seconds of synchronous
 * CPU per megabyte; on the main thread it would stall every other job of a tree diff.
 * Each worker holds one job's source, target and suffix array at a time, so memory is
 * about size x 9 bytes per worker.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { DeltaimgError, type ErrorCode } from '../util/errors.js';
import type { BsdiffResult } from './encode.js';
import type { SegmentPlan } from './segmented.js';
import type { BsdiffJob, BsdiffReply } from './worker.js';

type PathLike = string | Buffer;

interface Pending {
  resolve(r: BsdiffResult): void;
  reject(e: Error): void;
}

function workerUrl(): URL {
  const here = new URL(import.meta.url);
  // From TypeScript sources (vitest), run the built worker: workers cannot load .ts.
  return here.pathname.endsWith('.ts') ? new URL('../../dist/bsdiff/worker.js', here) : new URL('./worker.js', here);
}

const wire = (p: PathLike): Uint8Array => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p);

export class BsdiffPool {
  readonly size: number;
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: (() => void)[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  constructor(opts: { size?: number } = {}) {
    this.size = Math.max(1, opts.size ?? availableParallelism());
  }

  /** Encodes whole, or with `segments` in segments of those sizes (DIMGBSD2). */
  async encode(source: PathLike, target: PathLike, patch: PathLike, segments?: SegmentPlan): Promise<BsdiffResult> {
    const worker = await this.acquire();
    try {
      return await new Promise<BsdiffResult>((resolve, reject) => {
        const id = this.nextId++;
        this.pending.set(id, { resolve, reject });
        worker.postMessage({ id, source: wire(source), target: wire(target), patch: wire(patch), ...(segments ? { segments } : {}) } satisfies BsdiffJob);
      });
    } finally {
      this.release(worker);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((w) => w.terminate()));
    this.all.length = 0;
    this.idle.length = 0;
  }

  private async acquire(): Promise<Worker> {
    const free = this.idle.pop();
    if (free) return free;
    if (this.all.length < this.size) return this.spawn();
    await new Promise<void>((resolve) => this.queue.push(resolve));
    return this.acquire();
  }

  private release(worker: Worker): void {
    this.idle.push(worker);
    this.queue.shift()?.();
  }

  private spawn(): Worker {
    const worker = new Worker(workerUrl());
    worker.on('message', (reply: BsdiffReply) => this.settle(reply));
    worker.on('error', (err) => this.failAll(err));
    this.all.push(worker);
    return worker;
  }

  private settle(reply: BsdiffReply): void {
    const job = this.pending.get(reply.id);
    if (!job) return;
    this.pending.delete(reply.id);
    if (reply.ok) job.resolve({ bytes: reply.bytes, sha256: reply.sha256 });
    else if (reply.error.deltaimg) job.reject(new DeltaimgError(reply.error.code as ErrorCode, reply.error.message));
    else job.reject(new Error(reply.error.message));
  }

  private failAll(err: Error): void {
    for (const job of this.pending.values()) job.reject(err);
    this.pending.clear();
  }
}
