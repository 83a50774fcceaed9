/**
 * Progress on stderr for long work. It draws only when stderr is a TTY and the
 * user did not ask for --quiet, so logs and pipes stay clean.
 */
export interface ProgressSnapshot {
  readonly label: string;
  readonly done: number;
  readonly total?: number;
  readonly bytesDone?: number;
  readonly bytesTotal?: number;
}

export interface Progress {
  update(snapshot: ProgressSnapshot): void;
  /** Clears the progress line; safe to call more than once. */
  done(): void;
}

export const silentProgress: Progress = { update() {}, done() {} };

/**
 * auto: a redrawn line on a terminal, nothing elsewhere; plain: a line now and then, for logs
 * that are not terminals (`docker build` runs deltaimg with --progress plain); none: nothing.
 */
export type ProgressMode = 'auto' | 'plain' | 'none';

export const PROGRESS_MODES: readonly ProgressMode[] = ['auto', 'plain', 'none'];

export function createProgress(opts: { quiet?: boolean; mode?: ProgressMode; stream?: NodeJS.WriteStream } = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const mode = opts.mode ?? 'auto';
  if (opts.quiet || mode === 'none') return silentProgress;
  if (mode === 'plain') return new PlainProgress(stream);
  if (!stream.isTTY) return silentProgress;
  return new TtyProgress(stream);
}

/** Between two plain lines of the same step: a build log gets a line every few seconds, not a flood. */
const PLAIN_EVERY_MS = 3000;

/** Whole lines ("deltaimg: diff 120/622  3.1 MiB/40.2 MiB  ETA 9s"): the first of each step, then every few seconds, and its end. */
class PlainProgress implements Progress {
  private lastLine = 0;
  private label = '';
  private last: ProgressSnapshot | undefined;
  private printedLast = false;
  private readonly started = Date.now();
  constructor(private readonly stream: NodeJS.WritableStream) {}

  update(s: ProgressSnapshot): void {
    const now = Date.now();
    const newStep = s.label !== this.label;
    if (newStep) this.finishStep();
    this.label = s.label;
    this.last = s;
    this.printedLast = false;
    if (!newStep && now - this.lastLine < PLAIN_EVERY_MS && s.done !== s.total) return;
    this.print(s, now);
  }

  done(): void {
    this.finishStep();
  }

  /** The last state of a step, when the lines so far stopped short of it. */
  private finishStep(): void {
    if (this.last && !this.printedLast) this.print(this.last, Date.now());
    this.last = undefined;
  }

  private print(s: ProgressSnapshot, now: number): void {
    this.lastLine = now;
    this.printedLast = true;
    this.stream.write(`deltaimg: ${formatLine(s, (now - this.started) / 1000)}\n`);
  }
}

const REDRAW_MS = 100;

class TtyProgress implements Progress {
  private lastDraw = 0;
  private readonly started = Date.now();
  private drawn = false;
  constructor(private readonly stream: NodeJS.WriteStream) {}

  update(s: ProgressSnapshot): void {
    const now = Date.now();
    if (now - this.lastDraw < REDRAW_MS && s.done !== s.total) return;
    this.lastDraw = now;
    const line = formatLine(s, (now - this.started) / 1000);
    const width = this.stream.columns ?? 80;
    this.stream.write(`\r${line.slice(0, width - 1).padEnd(Math.min(width - 1, line.length + 2))}`);
    this.drawn = true;
  }

  done(): void {
    if (!this.drawn) return;
    this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}

function formatLine(s: ProgressSnapshot, elapsedSec: number): string {
  const parts = [s.label, s.total !== undefined ? `${s.done}/${s.total}` : `${s.done}`];
  if (s.bytesDone !== undefined) {
    parts.push(s.bytesTotal ? `${formatBytes(s.bytesDone)}/${formatBytes(s.bytesTotal)}` : formatBytes(s.bytesDone));
  }
  const fraction = progressFraction(s);
  if (fraction > 0.02 && fraction < 1 && elapsedSec > 1) {
    parts.push(`ETA ${formatDuration(elapsedSec / fraction - elapsedSec)}`);
  }
  return parts.join('  ');
}

function progressFraction(s: ProgressSnapshot): number {
  if (s.bytesTotal && s.bytesDone !== undefined) return s.bytesDone / s.bytesTotal;
  if (s.total) return s.done / s.total;
  return 0;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

export function formatDuration(sec: number): string {
  if (sec < 60) return `${Math.round(sec)}s`;
  const m = Math.floor(sec / 60);
  return m < 60 ? `${m}m${String(Math.round(sec % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
