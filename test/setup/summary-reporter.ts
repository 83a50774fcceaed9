/**
 * Ends every test run with one plain line, `tests: N passed, N failed[, N skipped]`, that
 * any CI log reader understands, whatever it knows of vitest's own output. It prints from
 * onFinished, which runs after the default reporter's summary, so it is the last line.
 */
import type { Reporter } from 'vitest/reporters';

type Task = { type: string; mode?: string; result?: { state?: string }; tasks?: Task[] };

export default class SummaryReporter implements Reporter {
  onFinished(files: Task[] = [], errors: unknown[] = []): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    const visit = (t: Task): void => {
      if (t.type === 'test') {
        const state = t.result?.state;
        if (state === 'pass') counts.passed++;
        else if (state === 'fail') counts.failed++;
        else counts.skipped++;
      }
      t.tasks?.forEach(visit);
    };
    files.forEach(visit);
    // A file that failed to load, or an unhandled error, fails the run without a failed test.
    const fileFailures = files.filter((f) => f.result?.state === 'fail' && !f.tasks?.length).length;
    const failed = counts.failed + fileFailures + errors.length;
    process.stdout.write(`\ntests: ${counts.passed} passed, ${failed} failed${counts.skipped ? `, ${counts.skipped} skipped` : ''}\n`);
  }
}
