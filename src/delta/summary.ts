/** Human-readable and JSON summaries of a delta, for `diff`, `apply` and `inspect`. */
import { printable } from '../util/printable.js';
import { formatBytes } from '../util/progress.js';
import type { DeltaHeader } from './format.js';

export interface DeltaSummary {
  format: string;
  tool: string;
  created: string;
  entries: number;
  stats: DeltaHeader['stats'];
  /** Fraction of the target's file bytes saved by shipping this delta instead (0..1, may be negative). */
  saving: number;
  largest: DeltaHeader['largest'];
  sourceTreeSha256: string;
  targetTreeSha256: string;
  annotations?: unknown;
}

export function summarize(h: DeltaHeader): DeltaSummary {
  const s = h.stats;
  return {
    format: `${h.format} v${h.version}`,
    tool: h.tool,
    created: h.created,
    entries: h.target.entries,
    stats: s,
    saving: s.targetFileBytes > 0 ? 1 - s.deltaBytes / s.targetFileBytes : 0,
    largest: h.largest,
    sourceTreeSha256: h.source.treeSha256,
    targetTreeSha256: h.target.treeSha256,
    ...(h.annotations === undefined ? {} : { annotations: h.annotations }),
  };
}

/** One line for the end of `diff`: what was saved. */
export function savedLine(h: DeltaHeader): string {
  const s = h.stats;
  const pct = s.targetFileBytes > 0 ? ((1 - s.deltaBytes / s.targetFileBytes) * 100).toFixed(1) : '0.0';
  return (
    `delta ${formatBytes(s.deltaBytes)} for a target of ${formatBytes(s.targetFileBytes)} in ${h.target.entries} entries ` +
    `(${pct}% saved): ${s.unchanged} unchanged, ${s.moved} moved, ${s.delta} delta'd, ${s.new} new, ` +
    `${s.deleted} deleted, ${s.metadataOnly} metadata-only`
  );
}

export function inspectReport(deltaDir: string, h: DeltaHeader): string {
  const s = h.stats;
  const rows: [string, number, string][] = [
    ['unchanged', s.unchanged, ''],
    ['moved / duplicated', s.moved, ''],
    [
      'delta (VCDIFF/bsdiff/gzip member)',
      s.delta,
      formatBytes(s.payloadBytes.vcdiff + s.payloadBytes.bsdiff + s.payloadBytes.gzip + s.payloadBytes.assembled),
    ],
    ['new (brotli / raw)', s.new, formatBytes(s.payloadBytes.brotli + s.payloadBytes.raw)],
    ['metadata-only', s.metadataOnly, ''],
    ['deleted', s.deleted, ''],
    ['dirs, links, devices', s.other, ''],
  ];
  const lines = [
    `${printable(deltaDir)}: ${h.format} v${h.version}, made by ${printable(h.tool)} on ${printable(h.created)}`,
    `target: ${h.target.entries} entries, ${formatBytes(s.targetFileBytes)} of file data (tree sha256 ${h.target.treeSha256})`,
    `source: ${h.source.entries} entries (tree sha256 ${h.source.treeSha256})`,
    '',
    ...rows.map(([name, n, bytes]) => `  ${name.padEnd(22)} ${String(n).padStart(8)}  ${bytes}`.trimEnd()),
    '',
    `delta size ${formatBytes(s.deltaBytes)} vs ${formatBytes(s.targetFileBytes)} shipped as is: ${
      s.targetFileBytes > 0 ? ((1 - s.deltaBytes / s.targetFileBytes) * 100).toFixed(1) : '0.0'
    }% saved`,
  ];
  if (h.largest.length) {
    lines.push('', 'largest contributors:');
    for (const l of h.largest) lines.push(`  ${formatBytes(l.bytes).padStart(10)}  ${l.op.padEnd(6)}  ${printable(l.path)}`);
  }
  return lines.join('\n');
}
