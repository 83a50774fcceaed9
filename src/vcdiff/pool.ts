/**
 * VCDIFF encode/decode jobs on the shared worker pool (util/worker-pool.ts), one job per
 * worker at a time. The wasm module is compiled once here and shared with every worker. Each
 * job gets its own wasm instance; a worker whose job grew wasm memory past `recycleBytes` is
 * replaced, so a pool never holds on to a big heap after a big file.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DeltaimgError } from '../util/errors.js';
import { WorkerPool } from '../util/worker-pool.js';
import type { DecodeResult, EncodeResult } from './engine.js';
import type { OutputMode } from './files.js';
import type { PathLike } from './io.js';
import type { VcdiffOptions } from './options.js';
import { xdelta3Module } from './wasm.js';
import type { JobRequest, JobResult } from './worker.js';

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

export class VcdiffPool {
  readonly size: number;
  readonly recycleBytes: number;
  private readonly pool: WorkerPool<JobRequest, JobResult>;

  constructor(opts?: VcdiffPoolOptions) {
    const recycleBytes = opts?.recycleBytes ?? RECYCLE_BYTES;
    this.pool = new WorkerPool<JobRequest, JobResult>({
      script: workerUrl,
      name: 'vcdiff worker',
      ...(opts?.size !== undefined ? { size: opts.size } : {}),
      workerData: () => ({ module: xdelta3Module() }),
      retireAfter: (r) => r.wasmBytes > recycleBytes,
    });
    this.size = this.pool.size;
    this.recycleBytes = recycleBytes;
  }

  /** `mode` 'create': DELTA must not exist and is written in place (see OutputMode). */
  async encodeFile(
    sourcePath: PathLike | null,
    targetPath: PathLike,
    deltaPath: PathLike,
    opts?: VcdiffOptions,
    mode: OutputMode = 'atomic',
  ): Promise<EncodeResult> {
    const r = await this.pool.run({ op: 'encode', source: sourcePath, input: targetPath, output: deltaPath, opts, mode });
    if (r.op !== 'encode') throw new DeltaimgError('INTERNAL', 'vcdiff worker answered an encode with a decode');
    return r.result;
  }

  /** `mode` 'create': OUT must not exist and is written in place (see OutputMode). */
  async decodeFile(
    sourcePath: PathLike | null,
    deltaPath: PathLike,
    outPath: PathLike,
    opts?: VcdiffOptions,
    mode: OutputMode = 'atomic',
  ): Promise<DecodeResult> {
    const r = await this.pool.run({ op: 'decode', source: sourcePath, input: deltaPath, output: outPath, opts, mode });
    if (r.op !== 'decode') throw new DeltaimgError('INTERNAL', 'vcdiff worker answered a decode with an encode');
    return r.result;
  }

  /** Lets queued and running jobs finish, then stops every worker. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
