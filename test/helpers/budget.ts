/** Memory budgets for tests that need a budget too small for some job (segments, a smaller window). */
import { availableParallelism } from 'node:os';
import { idleWorkerShare, WORKER_THREAD_BYTES } from '../../src/util/memory-budget.js';

/** A --memory that leaves about `jobBytes` to jobs after this process's baseline and diff's worker reserve. */
export function budgetLeavingJobs(jobBytes: number): number {
  const cores = availableParallelism();
  let budget = process.memoryUsage.rss() + jobBytes;
  for (let i = 0; i < 8; i++) budget = process.memoryUsage.rss() + jobBytes + cores * (idleWorkerShare(budget) + 2 * WORKER_THREAD_BYTES);
  return budget;
}
