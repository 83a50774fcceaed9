#!/usr/bin/env node
import { buildProgram } from './program.js';
import { reportFailure } from './failure.js';

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.exitCode = reportFailure(err);
  });
