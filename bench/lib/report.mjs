// Turns bench/results.json into the targets verdicts and the RESULTS.md tables.
import { existsSync, readFileSync } from 'node:fs';
import { binariesSection } from './binaries-report.mjs';
import { exeSection } from './exe-report.mjs';
import { issue10Section, manyFilesSection } from './many-files-report.mjs';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

// --- formatting --------------------------------------------------------------------------------

const int = (n) => (n == null ? '—' : Math.round(n).toLocaleString('en-US'));
const fixed = (n, digits = 2) => (n == null || !Number.isFinite(n) ? '—' : n.toFixed(digits));
const mib = (bytes) => (bytes == null ? '—' : `${(bytes / MiB).toFixed(1)} MiB`);
const human = (bytes) => (bytes == null ? '—' : bytes >= MiB ? `${(bytes / MiB).toFixed(2)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`);
const mbps = (bytes, seconds) => (seconds ? bytes / seconds / 1e6 : null);
const ratio = (a, b) => (a != null && b ? a / b : null);
const verdict = (pass) => (pass === true ? '**pass**' : pass === false ? '**FAIL**' : 'n/a');

function table(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

// --- targets -----------------------------------------------------------------------------------

const ok = (run) => Boolean(run?.ok);
const largePairs = (results) => (results.files ?? []).filter((p) => p.id === 'next-swc' || p.id === 'big');

function engineTargets(results) {
  const targets = [];
  for (const pair of results.files ?? []) {
    const ours = pair.tools.ours;
    const native = pair.tools.xdelta3;
    const r = ours.deltaBytes != null && native.deltaBytes ? ours.deltaBytes / native.deltaBytes : null;
    targets.push({
      area: 'engine',
      target: `${pair.id}: delta size ≤ 1.01 × native xdelta3 (same -9 -S djw -B)`,
      measured: r == null ? 'ours failed' : `${int(ours.deltaBytes)} vs ${int(native.deltaBytes)} bytes (${fixed(r, 4)}×)`,
      pass: r == null ? false : r <= 1.01 && ours.verified === true,
    });
  }
  for (const pair of largePairs(results)) {
    for (const phase of ['encode', 'decode']) {
      const ours = pair.tools.ours[phase];
      const native = pair.tools.xdelta3[phase];
      const r = ok(ours) && ok(native) ? native.seconds / ours.seconds : null;
      targets.push({
        area: 'engine',
        target: `${pair.id}: ${phase} throughput ≥ 0.8 × native xdelta3`,
        measured:
          r == null
            ? 'ours failed'
            : `${fixed(mbps(pair.sizeB, ours.seconds), 1)} vs ${fixed(mbps(pair.sizeB, native.seconds), 1)} MB/s (${fixed(r)}×)`,
        pass: r == null ? false : r >= 0.8,
      });
    }
  }
  const small = results.smallFiles;
  if (small) {
    const ours = small.runs.oursSequential;
    const native = small.runs.xdelta3Sequential;
    const r = ok(ours) && ok(native) ? native.seconds / ours.seconds : null;
    targets.push({
      area: 'engine',
      target: `${small.files} small files: one process ≥ 3 × faster than ${small.files} xdelta3 processes (both sequential)`,
      measured: r == null ? 'ours failed' : `${fixed(ours.seconds)} s vs ${fixed(native.seconds)} s (${fixed(r, 1)}×)`,
      pass: r == null ? false : r >= 3,
    });
  }
  const big = (results.files ?? []).find((p) => p.id === 'big');
  if (big) {
    const peaks = ['encode', 'decode'].map((phase) => big.tools.ours[phase]?.peakRssBytes ?? null);
    const worst = peaks.every((p) => p != null) ? Math.max(...peaks) : null;
    targets.push({
      area: 'engine',
      target: `big (${fixed(big.sizeB / 1e6, 0)} MB): peak RSS < 300 MiB at a ${results.options.windowBytes / MiB} MiB window`,
      measured: worst == null ? 'ours failed' : `encode ${mib(peaks[0])}, decode ${mib(peaks[1])}`,
      pass: worst == null ? false : worst < 300 * MiB && ok(big.tools.ours.decode),
    });
  }
  return targets;
}

function treeTargets(results) {
  const targets = [];
  for (const pair of results.trees ?? []) {
    const ours = pair.ours.layerBytes;
    const algo = pair.deltaimageAlgo.layerBytes;
    const zstd = pair.zstd.bytes;
    targets.push({
      area: 'tree',
      target: `${pair.id}: smaller than zstd --patch-from and ≤ 0.75 × deltaimage algorithm`,
      measured:
        ours == null ? 'ours failed' : `ours ${human(ours)}; ${fixed(ratio(ours, algo), 3)}× algo, ${fixed(ratio(ours, zstd), 3)}× zstd`,
      pass: ours == null || algo == null || zstd == null ? (ours == null ? false : null) : ours <= 0.75 * algo && ours < zstd,
    });
    const cp = pair.cpA;
    const apply = pair.ours.apply;
    const r = ok(apply) && ok(cp) ? apply.seconds / cp.seconds : null;
    targets.push({
      area: 'tree',
      target: `${pair.id}: apply ≤ 2 × cp -a of DST`,
      measured: r == null ? 'ours failed' : `${fixed(apply.seconds)} s vs ${fixed(cp.seconds)} s (${fixed(r)}×)`,
      pass: r == null ? false : r <= 2 && pair.ours.check?.mismatches === 0,
    });
    const peaks = [pair.ours.diff?.peakRssBytes, pair.ours.apply?.peakRssBytes];
    const measuredPeaks = ok(pair.ours.diff) && ok(pair.ours.apply);
    targets.push({
      area: 'tree',
      target: `${pair.id}: peak RSS < 1 GiB (diff and apply)`,
      measured: measuredPeaks ? `diff ${mib(peaks[0])}, apply ${mib(peaks[1])}` : 'ours failed',
      pass: measuredPeaks ? Math.max(...peaks) < GiB : false,
    });
  }
  const debian = (results.trees ?? []).find((p) => p.id === 'debian');
  if (debian) {
    const ours = debian.ours.diff;
    const algo = debian.deltaimageAlgo.diff;
    const r = ok(ours) && ok(algo) ? algo.seconds / ours.seconds : null;
    targets.push({
      area: 'tree',
      target: 'debian: diff ≥ 3 × faster than the deltaimage-algorithm script',
      measured: r == null ? 'ours failed' : `${fixed(ours.seconds)} s vs ${fixed(algo.seconds)} s (${fixed(r, 1)}×)`,
      pass: r == null ? false : r >= 3,
    });
  }
  return targets;
}

export function evaluateTargets(results) {
  return [...engineTargets(results), ...treeTargets(results)];
}

// --- markdown ----------------------------------------------------------------------------------

function machineSection(results) {
  const m = results.machine;
  return [
    '## Machine',
    '',
    table(
      ['', ''],
      [
        ['date (UTC)', m.date],
        ['CPU', m.cpu],
        ['cores', String(m.cores)],
        ['RAM', `${(m.ramBytes / GiB).toFixed(1)} GiB`],
        ['kernel', m.kernel],
        ['OS', m.os],
        ['node', m.node],
        ['xdelta3 (native peer)', m.xdelta3],
        ['zstd', m.zstd],
        ['gzip', m.gzip],
        ['deltaimg commit', m.commit],
        ['load average at start / end', `${m.loadAverageAtStart.join(' ')} / ${(m.loadAverageAtEnd ?? []).join(' ')}`],
        ['whole run', `${fixed(results.totalSeconds / 60, 1)} min`],
        ...stageRows(results),
      ],
    ),
  ].join('\n');
}

/** When the two levels were measured in separate runs (--only), when and at which commit each was. */
function stageRows(results) {
  const stages = Object.entries(results.stages ?? {}).map(([level, st]) => [
    `${level === 'files' ? 'file pairs' : 'tree pairs'} measured`,
    `${st.date}, commit ${st.commit}, ${fixed(st.seconds / 60, 1)} min`,
  ]);
  // Runs with --pairs measure some pairs only; each row then says when and at which commit.
  const rows = [...(results.files ?? []).map((r) => ['file pair', r]), ...(results.trees ?? []).map((r) => ['tree pair', r])]
    .filter(([, r]) => r.measuredAt)
    .map(([what, r]) => [`${what} ${r.id} measured`, `${r.measuredAt.date}, commit ${r.measuredAt.commit}`]);
  return [...stages, ...rows];
}

function targetsSection(results) {
  const rows = (results.targets ?? []).map((t) => [t.area, t.target, t.measured, verdict(t.pass)]);
  const passed = (results.targets ?? []).filter((t) => t.pass === true).length;
  return ['## Targets', '', `${passed} of ${rows.length} met.`, '', table(['area', 'target', 'measured', 'result'], rows)].join('\n');
}

function zstdReuseNote(files) {
  const reused = [...new Set(files.map((p) => p.tools.zstd?.reusedFrom).filter(Boolean))];
  return reused.length
    ? ['', `zstd rows: measured in the run of ${reused.join(', ')} (--reuse-zstd; zstd does not change between runs).`]
    : [];
}

function toolRow(pair, name, t) {
  if (!ok(t.encode)) return [pair.id, name, 'failed', '', '', '', '', '', '', '', ''];
  const dec = t.decode ?? {};
  return [
    pair.id,
    name,
    int(t.deltaBytes),
    `${fixed((100 * t.deltaBytes) / pair.sizeB, 3)} %`,
    fixed(t.encode.seconds),
    fixed(mbps(pair.sizeB, t.encode.seconds), 1),
    mib(t.encode.peakRssBytes),
    ok(dec) ? fixed(dec.seconds) : 'failed',
    ok(dec) ? fixed(mbps(pair.sizeB, dec.seconds), 1) : '',
    mib(dec.peakRssBytes),
    t.verified ? 'identical' : '**differs**',
  ];
}

function filesSection(results) {
  if (!results.files) return '';
  const pairs = table(
    ['pair', 'what', 'A bytes', 'B bytes'],
    results.files.map((p) => [p.id, p.label, int(p.sizeA), int(p.sizeB)]),
  );
  const rows = results.files.flatMap((p) => [
    toolRow(p, 'deltaimg (wasm)', p.tools.ours),
    toolRow(p, 'xdelta3 (native)', p.tools.xdelta3),
    toolRow(p, 'zstd --patch-from', p.tools.zstd),
  ]);
  const header = [
    'pair',
    'tool',
    'delta bytes',
    'of B',
    'encode s',
    'encode MB/s',
    'encode peak RSS',
    'decode s',
    'decode MB/s',
    'decode peak RSS',
    'decoded = B',
  ];
  return [
    '## File pairs (VCDIFF engine)',
    '',
    pairs,
    '',
    `MB/s = bytes of B / wall seconds (10^6 bytes). Source window ${results.options.windowBytes / MiB} MiB for both VCDIFF encoders.`,
    '',
    table(header, rows),
    ...zstdReuseNote(results.files),
  ].join('\n');
}

function smallSection(results) {
  const s = results.smallFiles;
  if (!s) return '';
  const row = (label, run, deltaBytes) => [
    label,
    ok(run) ? fixed(run.seconds) : 'failed',
    ok(run) ? fixed(s.files / run.seconds, 0) : '',
    mib(run.peakRssBytes),
    deltaBytes == null ? '' : int(deltaBytes),
  ];
  return [
    `## ${s.files} small files in one process vs ${s.files} xdelta3 processes`,
    '',
    `${s.files} real file pairs (${s.changed} changed; 1 KiB–256 KiB; ${human(s.targetBytes)} of targets) from the ${s.from.join(' and ')} tree pairs; -9 -S djw for both.`,
    '',
    table(
      ['run', 'wall s', 'files/s', 'peak RSS', 'total delta bytes'],
      [
        row('deltaimg: one node process, encodeFile one after the other', s.runs.oursSequential, s.deltaBytes.ours),
        row(`xdelta3: ${s.files} processes one after the other (xargs -P1)`, s.runs.xdelta3Sequential, s.deltaBytes.xdelta3),
        row('deltaimg: one node process, VcdiffPool of 2 workers', s.runs.oursPool2, null),
        row(`xdelta3: ${s.files} processes, two at a time (xargs -P2)`, s.runs.xdelta3Parallel2, null),
      ],
    ),
  ].join('\n');
}

function treesSection(results) {
  if (!results.trees) return '';
  const pairs = table(
    ['pair', 'what', 'A files', 'A bytes', 'B files', 'B bytes'],
    results.trees.map((p) => [p.id, p.label, int(p.treeA.files), int(p.treeA.bytes), int(p.treeB.files), int(p.treeB.bytes)]),
  );
  const sizes = table(
    [
      'pair',
      'ship B as is (tar.gz)',
      'deltaimg (tar.gz of delta)',
      'deltaimage algorithm (tar.gz)',
      'zstd -19 --long=31 --patch-from (tar)',
      'deltaimg / algorithm',
      'deltaimg / zstd',
    ],
    results.trees.map((p) => [
      p.id,
      int(p.shipAsIsBytes),
      p.ours.layerBytes == null ? 'failed' : int(p.ours.layerBytes),
      int(p.deltaimageAlgo.layerBytes),
      int(p.zstd.bytes),
      fixed(ratio(p.ours.layerBytes, p.deltaimageAlgo.layerBytes), 3),
      fixed(ratio(p.ours.layerBytes, p.zstd.bytes), 3),
    ]),
  );
  const times = table(
    [
      'pair',
      'deltaimg diff s',
      'diff peak RSS',
      'algorithm diff s',
      'zstd encode s',
      'deltaimg apply s',
      'apply peak RSS',
      'cp -a s',
      'apply / cp -a',
      'restored = B',
    ],
    results.trees.map((p) => [
      p.id,
      ok(p.ours.diff) ? fixed(p.ours.diff.seconds) : 'failed',
      mib(p.ours.diff?.peakRssBytes),
      ok(p.deltaimageAlgo.diff) ? fixed(p.deltaimageAlgo.diff.seconds) : 'failed',
      ok(p.zstd.encode) ? fixed(p.zstd.encode.seconds) : 'failed',
      ok(p.ours.apply) ? fixed(p.ours.apply.seconds) : 'failed',
      mib(p.ours.apply?.peakRssBytes),
      fixed(p.cpA?.seconds),
      fixed(ratio(p.ours.apply?.seconds, p.cpA?.seconds)),
      checkText(p.ours.check),
    ]),
  );
  const reused = [...new Set(results.trees.map((p) => p.zstd.reusedFrom).filter(Boolean))];
  const reuseNote = reused.length
    ? `zstd columns of the tree pairs: measured in the run of ${reused.join(', ')} (--reuse-zstd; zstd does not change between runs).`
    : '';
  const bigNote = results.trees.some((p) => p.id === 'big')
    ? 'zstd for the one-file "big" tree = the big file pair (the tar would be that one file).'
    : '';
  return [
    '## Tree pairs',
    '',
    pairs,
    '',
    'Sizes in bytes:',
    '',
    sizes,
    '',
    [bigNote, reuseNote].filter(Boolean).join(' '),
    '',
    'Times (wall) and memory:',
    '',
    times,
  ].join('\n');
}

function checkText(check) {
  if (!check) return '—';
  if (check.mismatches > 0) return `**${check.mismatches} mismatches** (${check.firstMismatches.join(', ')})`;
  return check.mtimeDiffs ? `identical (${check.mtimeDiffs} mtimes differ)` : 'identical (incl. mtimes)';
}

const METHOD = `## Method

- Every tool runs as a child process under \`/usr/bin/time -v\`: wall time from a monotonic clock around the
  process, peak RSS = time's "Maximum resident set size" (for scripts: the largest single process).
  deltaimg runs as \`node dist/cli/main.js ...\`, so its times include node start-up and wasm compilation.
- Page cache warm (the inputs were just read), on a machine shared with other work (see the load averages
  above): treat differences of a few percent as noise. Timings compared against a target are repeated
  (\`--repeat N\`, default 3) and alternate between ours and the reference (decode: ours / xdelta3, and
  encode too for the big pair; apply / cp -a; the Debian diff / the algorithm script), each output removed
  before the next run (for the tree timings also followed by \`sync\`, so no run pays for the writeback of
  the one before it); the tables show the median run (all runs in results.json). Everything else: one run.
- File pairs: \`deltaimg vcdiff encode --level 9 --secondary djw --window 67108864 -s A B D\` / \`deltaimg vcdiff decode --window 67108864 -s A D OUT\`;
  \`xdelta3 -e -D -9 -S djw -B 67108864 -s A B D\` / \`xdelta3 -d -R -B 67108864 -s A D OUT\` (-D/-R: no external gzip (de)compression);
  \`zstd -19 --long=31 --patch-from=A B\` / \`zstd -d --long=31 --patch-from=A\`. Every decoded file is compared with B.
- Tree pairs: \`deltaimg diff A B --out D\`, layer size = \`tar -C D -c . | gzip -6 | wc -c\`; \`deltaimg apply A D --out OUT\`,
  OUT compared with B (entries, types, modes, owners, symlink targets, device numbers, bytes; mtimes reported apart).
  deltaimage algorithm = \`bench/deltaimage-algo.sh\` (same path only, \`xdelta3 -e -s\` per changed file, empty placeholder
  per unchanged file, new files as is), layer size measured the same way. zstd on deterministic tars of A and B
  (\`tar --sort=name --numeric-owner\`). "ship B as is" = \`tar -C B -c . | gzip -6 | wc -c\`.
- Data: \`bench/fetch-data.sh\` (real Debian packages and npm releases; the big pair by \`bench/make-big-pair.mjs\`).
`;

export function renderMarkdown(results) {
  return (
    [
      '# deltaimg benchmark results',
      '',
      `Measured by \`npm run bench\` (bench/run.mjs${results.options.quick ? ' --quick' : ''}${results.options.only ? ` --only ${results.options.only}` : ''}${results.options.pairs ? ` --pairs ${results.options.pairs.join(',')}` : ''}${results.options.repeat > 1 ? ` --repeat ${results.options.repeat}` : ''}) on ${results.machine.date}; rows from earlier runs say when they were measured (Machine table). Raw numbers: [results.json](results.json).`,
      '',
      machineSection(results),
      targetsSection(results),
      filesSection(results),
      smallSection(results),
      treesSection(results),
      issue10Section(),
      exeSection(),
      binariesSection(),
      manyFilesSection(),
      METHOD,
    ]
      .filter(Boolean)
      .join('\n\n') + '\n'
  );
}

/** Sections measured outside run.mjs start at this line of RESULTS.md; a re-render keeps them. */
const KEPT_MARKER = '<!-- measured apart from run.mjs: kept as is by re-renders -->';

/** The kept sections of the RESULTS.md at `path` (from KEPT_MARKER on), to append to a re-render. */
export function keptSections(path) {
  if (!existsSync(path)) return '';
  const text = readFileSync(path, 'utf8');
  const at = text.indexOf(KEPT_MARKER);
  return at < 0 ? '' : '\n' + text.slice(at);
}
