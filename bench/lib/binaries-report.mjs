// The "Compiled binaries" section of RESULTS.md, from bench/results-binaries.json (written by
// bench/binaries.mjs); empty when that file does not exist.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'results-binaries.json');
const int = (n) => (n == null ? '—' : Math.round(n).toLocaleString('en-US'));
const sec = (s) => (s == null ? '—' : `${s.toFixed(1)}`);
const mb = (b) => (b == null ? '—' : `${Math.round(b / 1e6)} MB`);
const row = (cells) => `| ${cells.join(' | ')} |`;
/** Every pair bench/binaries.mjs knows, to say which ones a run did not reach. */
const ALL_PAIRS = ['go-amd64', 'go-arm64', 'rust-x64', 'rust-arm64', 'node-swc', 'big'];

const ratio = (a) => (a.deltaimg.ok && a.zstdExtract.ok ? `${(a.deltaimg.seconds / a.zstdExtract.seconds).toFixed(2)}×` : '—');

/** "wall s (CPU s) / peak RSS" of one measured run, or its error. */
function run(r) {
  if (!r) return '—';
  if (!r.ok) return `failed: ${String(r.error).split('\n')[0].slice(0, 60)}`;
  return `${sec(r.seconds)} s (${sec(r.cpuSeconds)} s) / ${mb(r.peakRssBytes)}`;
}

function restored(d) {
  if (!d.compare) return d.apply && !d.apply.ok ? 'apply failed' : '—';
  return d.compare.mismatches === 0 ? 'identical' : `${d.compare.mismatches} MISMATCHES`;
}

function notMeasured(pairs) {
  const missing = ALL_PAIRS.filter((id) => !pairs.some((p) => p.id === id));
  if (missing.length === 0) return [];
  return [
    '',
    `Not measured yet: ${missing.join(', ')}. Run \`nice -n 10 node bench/binaries.mjs --pairs ${missing.join(',')}\` to add them.`,
  ];
}

export function binariesSection() {
  if (!existsSync(RESULTS)) return '';
  const { machine: m, pairs } = JSON.parse(readFileSync(RESULTS, 'utf8'));
  const sizes = pairs.map((p) => {
    const d = p.deltaimg;
    const ours = d.layerBytes == null ? `failed: ${String(d.diff.error).slice(0, 60)}` : int(d.layerBytes);
    const hd = p.hdiffpatch?.bytes != null ? int(p.hdiffpatch.bytes) : p.zstd.skipped ? '—' : 'not measured';
    return row([p.label, int(p.target.bytes), ours, int(p.zstd.bytes), int(p.xdelta3.bytes), hd, restored(d)]);
  });
  const times = pairs.map((p) =>
    row([
      p.id,
      run(p.deltaimg.diff),
      run(p.deltaimg.apply),
      run(p.zstd.encode),
      run(p.zstd.decode),
      run(p.xdelta3.encode),
      run(p.xdelta3.decode),
      run(p.hdiffpatch?.diff),
      run(p.hdiffpatch?.apply),
    ]),
  );
  const applies = pairs
    .filter((p) => p.applyVsZstd)
    .map((p) => row([p.id, run(p.applyVsZstd.deltaimg), run(p.applyVsZstd.zstdExtract), ratio(p.applyVsZstd)]));
  const ops = pairs
    .filter((p) => p.deltaimg.payloadBytes)
    .map((p) => {
      const b = p.deltaimg.payloadBytes;
      const largest = (p.deltaimg.largest ?? []).map((l) => `${l.path} ${l.op} ${int(l.bytes)}`).join('; ');
      return row([p.id, int(b.bsdiff), int(b.vcdiff), int(b.brotli), int(b.raw), `v${p.deltaimg.minReaderVersion}`, largest]);
    });
  return [
    '## Compiled binaries (issue #10)',
    '',
    `Measured by \`nice -n 10 node bench/binaries.mjs\` on ${m.date} (commit ${m.commit}, ${m.cpu}, ${m.cores} cores, ` +
      `${Math.round(m.ramBytes / 2 ** 30)} GiB; load average ${m.loadAverageAtStart.join(' ')} at start, ${m.loadAverageAtEnd.join(' ')} at end: ` +
      'the machine was shared with other work, so wall times are inflated; CPU seconds are the fairer figure). ' +
      "deltaimg: `deltaimg diff` / `apply` of the two trees under the default memory budget (1 GiB here), the delta dir sized as a gzip'd layer, " +
      "the restore compared with B (bytes, modes, owners). Peers on the trees' tars: `zstd -19 --long=31 --patch-from`, `xdelta3 -e -9 -B <source size, at most 1 GiB>`. " +
      `HDiffPatch${m.hdiffpatch ? ` ${m.hdiffpatch.version}` : ''}: \`hdiffz -m -d -c-zstd A B D\` on the trees, built by the script from the C/C++ sources the npm package react-native-update ships (bench/lib/hdiffpatch.mjs); not packaged in Debian, no binary on npm. ` +
      'Pairs are built from public packages by the script; rows measured at different commits say so in results-binaries.json (measuredAt, commit). Raw numbers: [results-binaries.json](results-binaries.json).',
    '',
    row(['pair', 'B bytes', "deltaimg (gzip'd delta dir)", 'zstd --patch-from', 'xdelta3', 'HDiffPatch', 'restored']),
    row(['---', '---:', '---:', '---:', '---:', '---', '---']),
    ...sizes,
    '',
    'Wall seconds (CPU seconds) / peak RSS, each tool a child process under `/usr/bin/time -v`:',
    '',
    row(['pair', 'deltaimg diff', 'deltaimg apply', 'zstd encode', 'zstd decode', 'xdelta3 encode', 'xdelta3 decode', 'hdiffz', 'hpatchz']),
    row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']),
    ...times,
    '',
    ...(applies.length
      ? [
          'Apply speed (Go pairs): `deltaimg apply` vs what a zstd user runs, `zstd -d --long=31 --patch-from=A.tar | tar -x` into an empty directory; 3 runs each, alternating, each output removed and synced first, medians:',
          '',
          row(['pair', 'deltaimg apply', 'zstd -d + tar -x', 'ratio']),
          row(['---', '---:', '---:', '---:']),
          ...applies,
          '',
        ]
      : []),
    "Where deltaimg's bytes go (payload bytes by op before gzip; the delta's format reader version; largest payloads):",
    '',
    row(['pair', 'bsdiff', 'vcdiff', 'brotli', 'raw', 'reader', 'largest']),
    row(['---', '---:', '---:', '---:', '---:', '---', '---']),
    ...ops,
    '',
    ...pairs
      .filter((p) => p.deltaimg.restoredDiskBytes != null)
      .map(
        (p) =>
          `${p.id}: the restored file takes ${mb(p.deltaimg.restoredDiskBytes)} on disk for ${mb(p.target.bytes)} of content: holes stay holes.`,
      ),
    ...notMeasured(pairs),
    '',
  ].join('\n');
}
