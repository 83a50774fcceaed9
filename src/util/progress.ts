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

export function createProgress(opts: { quiet?: boolean; stream?: NodeJS.WriteStream } = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  if (opts.quiet || !stream.isTTY) return silentProgress;
  return new TtyProgress(stream);
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
