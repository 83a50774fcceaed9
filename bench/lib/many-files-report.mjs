// The "Issue #10 targets" and "Many small files" sections of RESULTS.md, from bench/results-many-files.json
// (bench/many-files.mjs) and bench/results-binaries.json (bench/binaries.mjs); empty without them.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = join(dirname(fileURLToPath(import.meta.url)), '..');
const GiB = 2 ** 30;
const int = (n) => (n == null ? '—' : Math.round(n).toLocaleString('en-US'));
const sec = (s) => (s == null ? '—' : `${s.toFixed(s < 10 ? 2 : 1)} s`);
const mb = (b) => (b == null ? '—' : `${Math.round(b / 1e6)} MB`);
const x = (r) => (r == null || !Number.isFinite(r) ? '—' : `${r.toFixed(2)}×`);
const row = (cells) => `| ${cells.join(' | ')} |`;
const verdict = (pass) => (pass === true ? '**pass**' : pass === false ? '**FAIL**' : 'n/a');
const ok = (r) => Boolean(r?.ok);

function readJson(name) {
  const path = join(BENCH, name);
  return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : null;
}

/** "wall s (CPU s) / peak RSS" of one measured run, or its error. */
function run(r) {
  if (!r) return '—';
  if (!r.ok) return `failed: ${String(r.error).split('\n')[0].slice(0, 60)}`;
  return `${sec(r.seconds)} (${sec(r.cpuSeconds)}) / ${mb(r.peakRssBytes)}`;
}

function restored(d) {
  if (!d?.compare) return d?.apply && !d.apply.ok ? 'apply failed' : '—';
  const c = d.compare;
  if (c.mismatches > 0) return `**${c.mismatches} mismatches** (${c.firstMismatches.join(', ')})`;
  return c.mtimeDiffs ? `identical bytes and metadata, ${c.mtimeDiffs} mtimes differ` : 'identical (bytes, metadata, mtimes)';
}

// --- targets -----------------------------------------------------------------------------------

/** Every issue #10 target with a verdict per pair, from both results files. */
export function issue10Targets(binaries, many) {
  const targets = [];
  const add = (area, target, measured, pass) => targets.push({ area, target, measured, pass });
  const budget = GiB;
  const binPairs = (binaries?.pairs ?? []).map((p) => ({ ...p, kind: 'binary', layerBytes: p.deltaimg.layerBytes }));
  const manyPairs = (many?.pairs ?? []).map((p) => ({ ...p, kind: 'many', layerBytes: p.deltaimg.layerBytes }));
  for (const p of [...binPairs, ...manyPairs]) {
    const hd = p.hdiffpatch?.bytes;
    if (hd != null && p.layerBytes != null)
      add(
        'size',
        `${p.id}: smaller than HDiffPatch's directory diff`,
        `${int(p.layerBytes)} vs ${int(hd)} B (${x(p.layerBytes / hd)})`,
        p.layerBytes < hd,
      );
    if (p.kind === 'binary' && p.zstd?.bytes != null && p.layerBytes != null)
      add(
        'size',
        `${p.id}: ≤ 0.5 × zstd -19 --long=31 --patch-from`,
        `${int(p.layerBytes)} vs ${int(p.zstd.bytes)} B (${x(p.layerBytes / p.zstd.bytes)})`,
        p.layerBytes <= 0.5 * p.zstd.bytes,
      );
    const base = p.baseline;
    if (base?.layerBytes != null && p.layerBytes != null)
      add(
        'size',
        `${p.id}: no larger than today (${base.commit})`,
        `${int(p.layerBytes)} vs ${int(base.layerBytes)} B (${x(p.layerBytes / base.layerBytes)})`,
        p.layerBytes <= base.layerBytes,
      );
    if (p.kind === 'many' && !p.unchanged && hd != null && p.layerBytes != null) {
      add('many files', `${p.id}: delta ≤ 1.5 × HDiffPatch`, `${x(p.layerBytes / hd)}`, p.layerBytes <= 1.5 * hd);
      const ours = p.deltaimg.diff;
      const theirs = p.hdiffpatch.diff;
      if (ok(ours) && ok(theirs))
        add(
          'many files',
          `${p.id}: diff ≤ 2 × hdiffz time`,
          `${sec(ours.seconds)} vs ${sec(theirs.seconds)} wall (${x(ours.seconds / theirs.seconds)})`,
          ours.seconds <= 2 * theirs.seconds,
        );
    }
    if (p.kind === 'many' && p.unchanged && ok(p.deltaimg.diff) && ok(p.deltaimg.scan))
      add(
        'many files',
        `${p.id}: unchanged tree diffed in about one scan of both trees (≤ 1.5×)`,
        `${sec(p.deltaimg.diff.seconds)} vs ${sec(p.deltaimg.scan.seconds)} (${x(p.deltaimg.diff.seconds / p.deltaimg.scan.seconds)})`,
        p.deltaimg.diff.seconds <= 1.5 * p.deltaimg.scan.seconds,
      );
    const peaks = [p.deltaimg.diff?.peakRssBytes, p.deltaimg.apply?.peakRssBytes];
    if (ok(p.deltaimg.diff) && ok(p.deltaimg.apply))
      add(
        'memory',
        `${p.id}: diff and apply peak RSS ≤ 1 GiB budget`,
        `diff ${mb(peaks[0])}, apply ${mb(peaks[1])}`,
        Math.max(...peaks) <= budget,
      );
    if (p.applyVsZstd && ok(p.applyVsZstd.deltaimg) && ok(p.applyVsZstd.zstdExtract)) {
      const r = p.applyVsZstd.deltaimg.seconds / p.applyVsZstd.zstdExtract.seconds;
      add(
        'speed',
        `${p.id}: apply ≤ 2 × (zstd -d --patch-from + tar -x of B)`,
        `${sec(p.applyVsZstd.deltaimg.seconds)} vs ${sec(p.applyVsZstd.zstdExtract.seconds)} (${x(r)}; medians of 3)`,
        r <= 2,
      );
    }
  }
  return targets;
}

export function issue10Section() {
  const binaries = readJson('results-binaries.json');
  const many = readJson('results-many-files.json');
  if (!binaries && !many) return '';
  const targets = issue10Targets(binaries, many);
  const passed = targets.filter((t) => t.pass === true).length;
  const cores = (many ?? binaries).machine.cores;
  const coreUse = [...(binaries?.pairs ?? []), ...(many?.pairs ?? [])]
    .filter((p) => ok(p.deltaimg.diff) && p.deltaimg.diff.cpuSeconds != null)
    .map((p) => `${p.id} ${(p.deltaimg.diff.cpuSeconds / p.deltaimg.diff.seconds).toFixed(2)}`);
  return [
    '## Issue #10 targets',
    '',
    `From [results-binaries.json](results-binaries.json) (bench/binaries.mjs) and [results-many-files.json](results-many-files.json) (bench/many-files.mjs); each pair's commit and date in its section below. ${passed} of ${targets.length} met.`,
    '',
    row(['area', 'target', 'measured', 'result']),
    row(['---', '---', '---', '---']),
    ...targets.map((t) => row([t.area, t.target, t.measured, verdict(t.pass)])),
    '',
    `Diff CPU seconds / wall seconds ("uses every core"; ${cores} cores, shared with other work, so below ${cores} also when the code is parallel): ${coreUse.join(', ')}.`,
  ].join('\n');
}

// --- the many-files section --------------------------------------------------------------------

export function manyFilesSection() {
  const many = readJson('results-many-files.json');
  if (!many) return '';
  const m = many.machine;
  const sizes = many.pairs.map((p) =>
    row([
      p.id,
      `${int(p.treeA.files)} / ${int(p.treeB.files)}`,
      int(p.treeB.bytes),
      int(p.shipAsIsBytes),
      int(p.deltaimg.layerBytes),
      int(p.hdiffpatch?.bytes),
      int(p.zstd?.bytes),
      int(p.xdelta3?.bytes),
      restored(p.deltaimg),
      p.hdiffpatch?.sameBytes == null ? '—' : p.hdiffpatch.sameBytes ? 'same bytes (no metadata)' : '**differs**',
    ]),
  );
  const times = many.pairs.map((p) =>
    row([
      p.id,
      run(p.deltaimg.scan),
      run(p.deltaimg.diff),
      run(p.deltaimg.apply),
      run(p.hdiffpatch?.diff),
      run(p.hdiffpatch?.apply),
      run(p.zstd?.encode),
      run(p.zstd?.decodeExtract),
      run(p.xdelta3?.encode),
    ]),
  );
  const when = many.pairs.map((p) => `${p.id} ${p.measuredAt.slice(0, 16)}Z at ${p.deltaimg.commit}`).join(', ');
  return [
    '## Many small files (issue #10)',
    '',
    `Measured by \`nice -n 10 node bench/many-files.mjs\` (${m.cpu}, ${m.cores} cores, ${Math.round(m.ramBytes / GiB)} GiB; load average ${m.loadAverageAtStart.join(' ')} at the last run's start, ${m.loadAverageAtEnd.join(' ')} at its end: the machine was shared, so wall times are inflated; CPU seconds are the fairer figure). Each pair's run: ${when}. deltaimg under --memory ${many.memory}. ` +
      `HDiffPatch ${many.hdiffpatch?.version ?? '—'}, built by the script from the C/C++ sources in the npm package ${many.hdiffpatch?.source ?? '—'} (bench/lib/hdiffpatch.mjs): \`hdiffz -m -d -c-zstd A B D\`, \`hpatchz A D OUT\`; it restores bytes and entries only (no modes, owners, mtimes). ` +
      "Peers on deterministic tars of A and B: `zstd -19 --long=31 --patch-from`, `xdelta3 -e -9 -B <A's tar size as a power of two, at most 1 GiB>` (changed pairs only: the unchanged pairs' tars differ in mtimes alone). Raw numbers: [results-many-files.json](results-many-files.json).",
    '',
    ...many.pairs.map((p) => `- **${p.id}**: ${p.label}`),
    '',
    "Sizes in bytes (deltaimg: the delta dir as a gzip'd layer, `tar -c | gzip -6 | wc -c`; HDiffPatch: its diff file, zstd-compressed by itself):",
    '',
    row([
      'pair',
      'files A / B',
      'B bytes',
      'ship B (tar.gz)',
      'deltaimg',
      'HDiffPatch',
      'zstd --patch-from',
      'xdelta3',
      'deltaimg restore = B',
      'hpatchz restore',
    ]),
    row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---', '---']),
    ...sizes,
    '',
    'Wall seconds (CPU seconds) / peak RSS, each a child process under `/usr/bin/time -v`; "one scan" = `tar -c A B | wc -c` (every entry and byte of both trees read once). For unchanged pairs run with `--repeat N` (N > 1), scan and diff are medians of N alternating runs (all runs in the JSON):',
    '',
    row([
      'pair',
      'one scan of A and B',
      'deltaimg diff',
      'deltaimg apply',
      'hdiffz',
      'hpatchz',
      'zstd -19 encode',
      'zstd -d + tar -x',
      'xdelta3 encode',
    ]),
    row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']),
    ...times,
    '',
  ].join('\n');
}
