import { isDeltaimgError } from '../util/errors.js';

/**
 * Prints a failure as one line on stderr and returns the exit code.
 * User-caused failures are DeltaimgErrors; anything else is a bug, shown in full.
 */
export function reportFailure(err: unknown): number {
  if (isDeltaimgError(err)) {
    process.stderr.write(`deltaimg: error: ${err.message.replace(/\s*\n\s*/g, ' ')}\n`);
    return err.code === 'USAGE' ? 2 : 1;
  }
  const e = err as { code?: string; message?: string };
  if (typeof e?.code === 'string' && e.code.startsWith('commander.')) return 2;
  process.stderr.write(`deltaimg: internal error (please report): ${(err as Error)?.stack ?? String(err)}\n`);
  return 70;
}
