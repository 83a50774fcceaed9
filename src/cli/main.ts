#!/usr/bin/env node
import { buildProgram } from './program.js';
import { reportFailure } from './failure.js';

// Exit through process.exit on a signal so 'exit' handlers remove temp outputs.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\ndeltaimg: interrupted (${signal}); nothing was written\n`);
    process.exit(130);
  });
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.exitCode = reportFailure(err);
  });
