/**
 * bsdiff encodes on the shared worker pool (util/worker-pool.ts). Building a suffix array is
 * seconds of synchronous CPU per megabyte; on the main thread it would stall every other job
 * of a tree diff. Each worker holds one job's source, target and suffix array at a time, so
 * memory is about size x 9 bytes per worker.
 */
import { WorkerPool } from '../util/worker-pool.js';
import type { BsdiffResult } from './encode.js';
import type { SegmentPlan } from './segmented.js';
import type { BsdiffJob } from './worker.js';

type PathLike = string | Buffer;

function workerUrl(): URL {
  const here = new URL(import.meta.url);
  // From TypeScript sources (vitest), run the built worker: workers cannot load .ts.
  return here.pathname.endsWith('.ts') ? new URL('../../dist/bsdiff/worker.js', here) : new URL('./worker.js', here);
}

const wire = (p: PathLike): Uint8Array => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p);

export class BsdiffPool {
  readonly size: number;
  private readonly pool: WorkerPool<BsdiffJob, BsdiffResult>;

  constructor(opts: { size?: number } = {}) {
    this.pool = new WorkerPool<BsdiffJob, BsdiffResult>({
      script: workerUrl,
      name: 'bsdiff worker',
      ...(opts.size !== undefined ? { size: Math.max(1, opts.size) } : {}),
    });
    this.size = this.pool.size;
  }

  /** Encodes whole, or with `segments` in segments of those sizes (DIMGBSD2). */
  encode(source: PathLike, target: PathLike, patch: PathLike, segments?: SegmentPlan): Promise<BsdiffResult> {
    return this.pool.run({ source: wire(source), target: wire(target), patch: wire(patch), ...(segments ? { segments } : {}) });
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
