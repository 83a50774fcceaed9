/**
 * Ctrl-C and SIGTERM: stop at once, remove every temp file and directory of the run, say
 * truthfully what is left (outputs already renamed into place are complete; otherwise
 * nothing), then die by the same signal so the parent sees how the run ended (a shell
 * reports 130 for SIGINT, 143 for SIGTERM). Dying by the signal rather than process.exit()
 * also means a libuv thread still blocked in a system call cannot hold the process.
 */
import { constants } from 'node:os';
import { completedOutputs, removeAllTemps, unfinishedStreams } from '../util/atomic-output.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type HandledSignal = (typeof SIGNALS)[number];

export function stopCleanlyOnSignals(): void {
  for (const signal of SIGNALS) process.once(signal, () => stop(signal));
}

function stop(signal: HandledSignal): void {
  removeAllTemps();
  process.stderr.write(`\n${interruptedLine(signal, completedOutputs(), unfinishedStreams())}\n`);
  for (const s of SIGNALS) process.removeAllListeners(s);
  process.kill(process.pid, signal);
  // Still alive (the signal is blocked by whoever started us): exit the ordinary way.
  process.exit(128 + constants.signals[signal]);
}

/** The one line an interrupted run ends with. */
export function interruptedLine(signal: string, completed: string[], streams: string[]): string {
  const what = completed.length
    ? `${completed.join(', ')} ${completed.length === 1 ? 'was' : 'were'} already complete and ${completed.length === 1 ? 'is' : 'are'} kept`
    : 'nothing was written (temporary files removed)';
  const partial = streams.length ? `; what was sent to ${streams.join(', ')} is incomplete` : '';
  return `deltaimg: interrupted (${signal}); ${what}${partial}`;
}
