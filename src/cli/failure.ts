import { isDeltaimgError } from '../util/errors.js';
import { commanderExitCode } from './program.js';

/**
 * Prints a failure as one line on stderr and returns the exit code.
 * User-caused failures are DeltaimgErrors (usage errors exit 2); commander's own usage errors
 * were printed by commander and exit 2 too (--help and --version 0); anything else is a bug,
 * shown in full.
 */
export function reportFailure(err: unknown): number {
  if (isDeltaimgError(err)) {
    process.stderr.write(`deltaimg: error: ${err.message.replace(/\s*\n\s*/g, ' ')}\n`);
    return err.code === 'USAGE' ? 2 : 1;
  }
  if (err instanceof Error && 'code' in err && err.code === 'EPIPE') return reportClosedStdout();
  const commander = commanderExitCode(err);
  if (commander !== undefined) return commander;
  process.stderr.write(`deltaimg: internal error (please report): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 70;
}

/** 128 + SIGPIPE, what a reader closing the pipe gives any program that does not catch it. */
const CLOSED_STDOUT_EXIT = 141;
let closedStdoutReported = false;

/** stdout's reader went away: say so once, in one line, and return the exit code. */
export function reportClosedStdout(): number {
  if (!closedStdoutReported) {
    closedStdoutReported = true;
    process.stderr.write('deltaimg: stdout was closed before all output was written (the reader exited); stopped\n');
  }
  return CLOSED_STDOUT_EXIT;
}
