/** `deltaimg vcdiff encode|decode`: the VCDIFF engine on single files, like `xdelta3 -e|-d`. */
import { Command } from 'commander';
import type { InputArg, OutputArg, VcdiffOptions } from '../vcdiff/index.js';
import type { VcdiffPool } from '../vcdiff/pool.js';
import { DEFAULT_LEVEL, DEFAULT_SECONDARY, parseSecondary } from '../vcdiff/options.js';
import { writeFileAtomically } from '../util/atomic-output.js';
import { printJson } from './output.js';
import { DeltaimgError, isDeltaimgError } from '../util/errors.js';
import { formatBytes } from '../util/progress.js';

interface VcdiffFlags {
  source?: string;
  window?: number;
  level?: number;
  secondary?: string;
  json?: boolean;
  quiet?: boolean;
}

/**
 * The engine (wasm loader, file ports, worker pool) loads only when a vcdiff verb runs, and
 * then without the pool: every other verb starts sooner, and so does a one-file decode.
 */
const loadEngine = () => import('../vcdiff/files.js');

/**
 * File to file, the job runs on a worker thread: one window of wasm work can take seconds,
 * and the main thread must stay free to act on Ctrl-C at once. The temp output beside the
 * destination is this thread's, so a signal removes it even while the worker still writes.
 * Streams (`-`) stay on this thread: their bytes cannot cross to a worker cheaply.
 */
async function onWorker<T>(output: string, run: (pool: VcdiffPool, temp: string) => Promise<T>): Promise<T> {
  const { VcdiffPool } = await import('../vcdiff/pool.js');
  const pool = new VcdiffPool({ size: 1 });
  try {
    return await writeFileAtomically(
      output,
      (temp) => run(pool, temp).catch((err: unknown) => Promise.reject(namingOutput(err, temp, output))),
      { replace: true },
    );
  } finally {
    await pool.close();
  }
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** "67108864", "64M", "64MiB", "512k" -> bytes. */
export function parseByteSize(text: string): number {
  const m = /^(\d+)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new DeltaimgError('USAGE', `--window takes a size like 64M, 512K or 1G (got ${JSON.stringify(text)})`);
  return Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
}

function parseLevel(text: string): number {
  if (!/^[0-9]$/.test(text)) throw new DeltaimgError('USAGE', `--level takes 0..9 (got ${JSON.stringify(text)})`);
  return Number(text);
}

function engineOptions(flags: VcdiffFlags): VcdiffOptions {
  return {
    level: flags.level,
    windowBytes: flags.window,
    secondary: flags.secondary === undefined ? undefined : parseSecondary(flags.secondary),
  };
}

function inputArg(path: string): InputArg {
  return path === '-' ? process.stdin : path;
}

function outputArg(path: string): OutputArg {
  return path === '-' ? process.stdout : path;
}

function checkSource(source: string | undefined): void {
  if (source === '-') throw new DeltaimgError('USAGE', 'SOURCE must be a file (it is read by random access), not -');
}

/** Stats go to stdout with --json, unless stdout carries the data; then to stderr. */
function report(flags: VcdiffFlags, output: string, stats: Record<string, unknown>, line: string): void {
  if (flags.json) {
    printJson(stats, output === '-' ? process.stderr : process.stdout);
  } else if (!flags.quiet) {
    process.stderr.write(`deltaimg: ${line}\n`);
  }
}

function addCommonOptions(cmd: Command): Command {
  return cmd
    .option('-s, --source <SOURCE>', 'the file the delta is made against (omit for plain VCDIFF compression)')
    .option('--window <BYTES>', 'source window, like xdelta3 -B (e.g. 64M; default: the source size, at most 64M)', parseByteSize)
    .option('--json', 'print stats as JSON (on stdout, or stderr when stdout is the data)')
    .option('-q, --quiet', 'no summary line on stderr');
}

function percent(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((100 * part) / whole).toFixed(2)}%`;
}

/** Errors name the file the user asked for, not our temp name beside it. */
function namingOutput(err: unknown, temp: string, output: string): unknown {
  if (!isDeltaimgError(err) || !err.message.includes(temp)) return err;
  return new DeltaimgError(err.code, err.message.replaceAll(temp, output), { cause: err });
}

export function registerVcdiffCommand(program: Command): void {
  const vcdiff = program
    .command('vcdiff')
    .summary('encode/decode one file as a VCDIFF delta (xdelta3-compatible)')
    .description(
      'Single-file VCDIFF (RFC 3284) deltas with the built-in xdelta3 (WebAssembly). Deltas decode with ' +
        'native `xdelta3 -d -s SOURCE DELTA OUT`, and deltas from `xdelta3 -e -s` decode here.',
    )
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  deltaimg vcdiff encode -s app-1.0.bin app-1.1.bin app.vcdiff\n' +
        '  deltaimg vcdiff decode -s app-1.0.bin app.vcdiff app-1.1.bin\n' +
        '  xdelta3 -d -s app-1.0.bin app.vcdiff restored.bin        # native xdelta3 reads the same delta',
    );

  addCommonOptions(
    vcdiff
      .command('encode')
      .summary('make DELTA that turns SOURCE into TARGET')
      .description(
        'Encode TARGET against SOURCE into a VCDIFF DELTA (without -s: TARGET compressed on its own). ' +
          'TARGET and DELTA may be - for stdin/stdout; SOURCE must be a regular file. DELTA is written ' +
          'to a temp file beside it and renamed into place only when complete.',
      )
      .argument('<TARGET>', 'the new file (- for stdin)')
      .argument('<DELTA>', 'where to write the delta (- for stdout)'),
  )
    .option('--level <0-9>', `compression level, like xdelta3 -0..-9 (default ${DEFAULT_LEVEL})`, parseLevel)
    .option('--secondary <none|djw|fgk>', `secondary compressor, like xdelta3 -S (default ${DEFAULT_SECONDARY})`)
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  deltaimg vcdiff encode -s old.bin new.bin new.vcdiff\n' +
        '  deltaimg vcdiff encode -s old.tar --window 256M --json new.tar new.vcdiff   # a larger source window\n' +
        '  cat new.bin | deltaimg vcdiff encode -s old.bin - - > new.vcdiff             # stdin to stdout\n' +
        '  deltaimg vcdiff encode --level 1 --secondary none big.log big.log.vcdiff     # fast, no source',
    )
    .action(async (target: string, delta: string, flags: VcdiffFlags) => {
      checkSource(flags.source);
      const started = Date.now();
      const source = flags.source ?? null;
      const r =
        target === '-' || delta === '-'
          ? await (await loadEngine()).encodeStream(source, inputArg(target), outputArg(delta), engineOptions(flags))
          : await onWorker(delta, (pool, temp) => pool.encodeFile(source, target, temp, engineOptions(flags), 'create'));
      const seconds = (Date.now() - started) / 1000;
      report(
        flags,
        delta,
        { target, delta, source: flags.source ?? null, ...r, seconds },
        `encoded ${formatBytes(r.targetBytes)} into ${formatBytes(r.deltaBytes)} (${percent(r.deltaBytes, r.targetBytes)}) in ${seconds.toFixed(1)}s`,
      );
    });

  addCommonOptions(
    vcdiff
      .command('decode')
      .summary('rebuild OUT from SOURCE and DELTA')
      .description(
        'Decode a VCDIFF DELTA against SOURCE into OUT. Every window must carry an adler32 checksum of ' +
          'the bytes it builds (xdelta3 writes one unless -n), and each is checked; a window without one is ' +
          'refused unless --no-checksum, as damage in it would go unnoticed. A wrong SOURCE is told apart from a ' +
          'damaged delta when the delta came from deltaimg (its header records the source). OUT is written to a ' +
          'temp file and renamed on success; DELTA and OUT may be - for stdin/stdout (with OUT = - a failure ' +
          'still exits non-zero, but bytes already on stdout cannot be taken back).\n\n' +
          'Deltas from native xdelta3 decode when made with -S djw, -S fgk or -S none (or by xdelta3 builds ' +
          "without liblzma); Debian's xdelta3 3.0.11 uses LZMA secondary compression by default, which this " +
          'decoder does not include: such a delta is refused in one line saying so. Windows over 16 MiB ' +
          "(xdelta3 3.0.x's hard window size) are refused, as native xdelta3 does. The tree and image applies " +
          'check every restored file by sha256 in addition.',
      )
      .argument('<DELTA>', 'the delta (- for stdin)')
      .argument('<OUT>', 'where to write the rebuilt file (- for stdout)'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  deltaimg vcdiff decode -s old.bin new.vcdiff new.bin\n' +
        '  deltaimg vcdiff decode -s old.bin - - < new.vcdiff | sha256sum\n' +
        '  deltaimg vcdiff decode -s old.bin delta-from-xdelta3.vcdiff new.bin   # made by xdelta3 -e -S djw -s old.bin ...',
    )
    .option('--no-checksum', 'accept windows without an adler32 checksum (their bytes are then not checked)')
    .action(async (delta: string, out: string, flags: VcdiffFlags & { checksum: boolean }) => {
      checkSource(flags.source);
      const started = Date.now();
      // The output's sha256 is only printed (summary line or --json): with -q alone, skip it.
      const hashOutput = Boolean(flags.json) || !flags.quiet;
      const source = flags.source ?? null;
      const opts = { ...engineOptions(flags), hashOutput, allowUncheckedWindows: !flags.checksum };
      const r =
        delta === '-' || out === '-'
          ? await (await loadEngine()).decodeStream(source, inputArg(delta), outputArg(out), opts)
          : await onWorker(out, (pool, temp) => pool.decodeFile(source, delta, temp, opts, 'create'));
      const seconds = (Date.now() - started) / 1000;
      report(
        flags,
        out,
        { delta, out, source: flags.source ?? null, ...r, seconds },
        `decoded ${formatBytes(r.outputBytes)} in ${seconds.toFixed(1)}s, sha256 ${r.outputSha256}`,
      );
    });
}
