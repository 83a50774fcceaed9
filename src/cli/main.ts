#!/usr/bin/env node
import { stopCleanlyOnSignals } from './interrupt.js';

// First, before the command modules load: a signal during start-up is acted on too.
stopCleanlyOnSignals();
const { buildProgram } = await import('./program.js');
const { reportClosedStdout, reportFailure } = await import('./failure.js');

// A reader that goes away (`deltaimg dockerfile diff a b | true`, `| head`) closes stdout: one
// line, the exit status a SIGPIPE would give, and no stack trace. stderr errors have nowhere to go.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(reportClosedStdout());
});
process.stderr.on('error', () => {});

// If the event loop ever drains while a command is still pending (a bug: a promise that
// nothing will settle), say so and fail, rather than exiting 0 with no output.
let finished = false;
process.once('beforeExit', () => {
  if (finished) return;
  process.stderr.write('deltaimg: internal error (please report): the command stopped before finishing\n');
  process.exitCode = 70;
});

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.exitCode = reportFailure(err);
  })
  .finally(async () => {
    finished = true;
    // Registry keep-alive sockets would hold the process open.
    (await import('../image/registry/client.js')).closeConnections();
  });
