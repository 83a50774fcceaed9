/** Memory budgets for tests that need a budget too small for some job (segments, a smaller window). */
import { availableParallelism } from 'node:os';
import { ESTIMATE_MARGIN, idleWorkerShare, WORKER_THREAD_BYTES } from '../../src/util/memory-budget.js';

/** A --memory that leaves about `jobBytes` to jobs after this process's baseline, diff's worker reserve and the budget's margin. */
export function budgetLeavingJobs(jobBytes: number): number {
  const cores = availableParallelism();
  const withMargin = (bytes: number) => Math.ceil(bytes / (1 - ESTIMATE_MARGIN));
  let budget = withMargin(process.memoryUsage.rss() + jobBytes);
  for (let i = 0; i < 8; i++) {
    budget = withMargin(process.memoryUsage.rss() + jobBytes + cores * (idleWorkerShare(budget) + 2 * WORKER_THREAD_BYTES));
  }
  return budget;
}
