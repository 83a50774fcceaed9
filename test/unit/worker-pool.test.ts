/**
 * The one worker pool, tested directly with a worker that does what each job asks: answers,
 * fails, crashes, exits, hangs. A dead worker fails only its own job, and the next job never
 * goes to it; a hung job is stopped by its time limit or an abort.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DeltaimgError } from '../../src/util/errors.js';
import { WorkerPool } from '../../src/util/worker-pool.js';

type Request =
  | { kind: 'echo'; value: number }
  | { kind: 'sleep'; value: number; ms: number }
  | { kind: 'fail'; message: string }
  | { kind: 'crash' }
  | { kind: 'exit' }
  | { kind: 'hang' };
interface Result {
  value: number;
  threadId: number;
}

const script = new URL('./fixtures/pool-worker.mjs', import.meta.url);
const pools: WorkerPool<Request, Result>[] = [];

function makePool(opts: { size?: number; jobTimeoutMs?: number; retireAfter?: (r: Result) => boolean } = {}): WorkerPool<Request, Result> {
  const pool = new WorkerPool<Request, Result>({ script, name: 'test worker', size: opts.size ?? 1, ...opts });
  pools.push(pool);
  return pool;
}

async function failure(promise: Promise<unknown>): Promise<DeltaimgError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeltaimgError);
  return err as DeltaimgError;
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

describe('WorkerPool', () => {
  it('runs every job, at most `size` at a time, and keeps idle workers for the next jobs', async () => {
    const pool = makePool({ size: 2 });
    const results = await Promise.all([1, 2, 3, 4, 5].map((value) => pool.run({ kind: 'sleep', value, ms: 20 })));
    expect(results.map((r) => r.value)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(results.map((r) => r.threadId)).size).toBe(2);
    expect(pool.threads).toBe(2);
  });

  it('passes a job error on with its code, and the worker stays in service', async () => {
    const pool = makePool();
    const first = await pool.run({ kind: 'echo', value: 1 });
    const err = await failure(pool.run({ kind: 'fail', message: 'bad bytes' }));
    expect(err.code).toBe('CORRUPT_DELTA');
    expect(err.message).toBe('bad bytes');
    expect((await pool.run({ kind: 'echo', value: 2 })).threadId).toBe(first.threadId);
  });

  it('a worker that crashes fails its job only; the queued jobs run on a new worker', async () => {
    const pool = makePool();
    const before = await pool.run({ kind: 'echo', value: 0 });
    const crashing = pool.run({ kind: 'crash' });
    const queued = [pool.run({ kind: 'echo', value: 1 }), pool.run({ kind: 'echo', value: 2 })];
    const err = await failure(crashing);
    expect(err.code).toBe('INTERNAL');
    expect(err.message).toMatch(/^test worker failed: worker blew up/);
    const after = await Promise.all(queued);
    expect(after.map((r) => r.value)).toEqual([1, 2]);
    for (const r of after) expect(r.threadId).not.toBe(before.threadId);
  });

  it('a worker that exits is replaced, and the next job never goes to it', async () => {
    const pool = makePool();
    const before = await pool.run({ kind: 'echo', value: 0 });
    const err = await failure(pool.run({ kind: 'exit' }));
    expect(err.message).toBe('test worker exited with code 3');
    const next = await pool.run({ kind: 'echo', value: 1 });
    expect(next.threadId).not.toBe(before.threadId);
    expect(pool.threads).toBe(1);
  });

  it('a hung job is killed at its time limit; the pool goes on with a fresh worker', async () => {
    const pool = makePool({ jobTimeoutMs: 300 });
    const hung = pool.run({ kind: 'hang' });
    const next = pool.run({ kind: 'echo', value: 7 });
    const err = await failure(hung);
    expect(err.message).toBe('test worker job took longer than 300 ms');
    expect((await next).value).toBe(7);
  });

  it('an aborted job is killed (running) or dropped (queued)', async () => {
    const pool = makePool();
    const running = new AbortController();
    const queuedAbort = new AbortController();
    const hung = pool.run({ kind: 'hang' }, { signal: running.signal });
    const queued = pool.run({ kind: 'echo', value: 1 }, { signal: queuedAbort.signal });
    const last = pool.run({ kind: 'echo', value: 2 });
    queuedAbort.abort();
    await expect(queued).rejects.toThrow('test worker job aborted');
    running.abort();
    await expect(hung).rejects.toThrow('test worker job aborted');
    expect((await last).value).toBe(2);
    await expect(pool.run({ kind: 'echo', value: 3 }, { signal: AbortSignal.abort() })).rejects.toThrow('aborted');
  });

  it('retires a worker when retireAfter says so', async () => {
    const pool = makePool({ retireAfter: (r) => r.value > 100 });
    const a = await pool.run({ kind: 'echo', value: 1 });
    const b = await pool.run({ kind: 'echo', value: 101 });
    const c = await pool.run({ kind: 'echo', value: 2 });
    expect(b.threadId).toBe(a.threadId);
    expect(c.threadId).not.toBe(b.threadId);
  });

  it('close waits for running and queued jobs, then refuses new ones', async () => {
    const pool = makePool();
    const jobs = [pool.run({ kind: 'sleep', value: 1, ms: 50 }), pool.run({ kind: 'echo', value: 2 })];
    await pool.close();
    expect((await Promise.all(jobs)).map((r) => r.value)).toEqual([1, 2]);
    expect(pool.threads).toBe(0);
    await expect(pool.run({ kind: 'echo', value: 3 })).rejects.toThrow('closed');
  });
});
