// The "Executable transform" section of RESULTS.md, from bench/results-exe.json (written by
// bench/exe-transform.mjs); empty when that file does not exist.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'results-exe.json');
const int = (n) => (n == null ? '—' : Math.round(n).toLocaleString('en-US'));
const pct = (a, b) => (a == null || !b ? '—' : `${(((a - b) / b) * 100).toFixed(1)}%`);
const sec = (s) => (s == null ? '—' : `${s.toFixed(1)} s`);
const mb = (b) => (b == null ? '—' : `${Math.round(b / 1e6)} MB`);

export function exeSection() {
  if (!existsSync(RESULTS)) return '';
  const { machine: m, pairs } = JSON.parse(readFileSync(RESULTS, 'utf8'));
  const row = (cells) => `| ${cells.join(' | ')} |`;
  const sizes = pairs.map((p) =>
    row([
      p.label,
      int(p.targetBytes),
      int(p.bsdiff.bytes),
      p.bsdiffTransformed ? `${int(p.bsdiffTransformed.bytes)} (${pct(p.bsdiffTransformed.bytes, p.bsdiff.bytes)})` : '—',
      p.deltaimg.layerBytes == null
        ? `error: ${p.deltaimg.error}`
        : `${int(p.deltaimg.layerBytes)} (${p.deltaimg.op}, v${p.deltaimg.minReaderVersion}${p.deltaimg.restoredExactly ? ', restored exactly' : ', NOT RESTORED'})`,
      int(p.zstd.bytes),
      int(p.xdelta3.bytes),
    ]),
  );
  const times = pairs.map((p) =>
    row([
      p.id,
      sec(p.bsdiff.seconds),
      sec(p.bsdiffTransformed?.seconds),
      `${sec(p.deltaimg.diff?.seconds)} / ${mb(p.deltaimg.diff?.peakRssBytes)}`,
      `${sec(p.deltaimg.apply?.seconds)} / ${mb(p.deltaimg.apply?.peakRssBytes)}`,
      `${sec(p.zstd.seconds)} / ${mb(p.zstd.peakRssBytes)}`,
    ]),
  );
  return [
    '## Executable transform',
    '',
    `Measured by \`node bench/exe-transform.mjs\` on ${m.date} (commit ${m.commit}, ${m.cpu}, ${m.cores} cores, load average ${m.loadAverageAtStart.join(' ')} at start, ${m.loadAverageAtEnd.join(' ')} at end: the machine was shared; ` +
      `each pair's run: ${pairs.map((p) => `${p.id} ${p.measured.slice(0, 16)} at ${p.commit}`).join(', ')}). ` +
      'bsdiff of the two files without and with the ELF transform (docs/bsdiff.md, "Executable transform": branch targets made absolute, and since delta format v3 the source\'s addresses relabelled, "Address relabelling"); deltaimg: the delta dir of one-file trees, as a gzip\'d layer (diff keeps the smaller of VCDIFF, bsdiff, bsdiff with the transform); `zstd -19 --long=31 --patch-from`; `xdelta3 -e -9`. Raw numbers: [results-exe.json](results-exe.json).',
    '',
    row(['pair', 'target', 'bsdiff', 'bsdiff + transform', "deltaimg (gzip'd delta dir)", 'zstd --patch-from', 'xdelta3']),
    row(['---', '---:', '---:', '---:', '---:', '---:', '---:']),
    ...sizes,
    '',
    'Times (wall) and peak RSS:',
    '',
    row(['pair', 'bsdiff encode (in-process)', 'bsdiff + transform', 'deltaimg diff', 'deltaimg apply', 'zstd -19 --long=31']),
    row(['---', '---:', '---:', '---:', '---:', '---:']),
    ...times,
    '',
  ].join('\n');
}
