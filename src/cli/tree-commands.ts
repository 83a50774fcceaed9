/** The runtime verbs: `diff`, `apply`, `inspect` on plain directories, no Docker needed. */
import type { Command } from 'commander';
import { DeltaimgError } from '../util/errors.js';
import { Option } from 'commander';
import { parseMemorySize } from '../util/memory-budget.js';
import { createProgress, formatBytes, PROGRESS_MODES, type ProgressMode } from '../util/progress.js';
import { printJson } from './output.js';
import { requireNativeAddon } from './preflight.js';
import { toolVersion } from './version.js';

interface OutputFlags {
  quiet?: boolean;
  json?: boolean;
  progress?: ProgressMode;
}

/** --progress: the Dockerfiles pass `plain`, so a build log shows lines instead of minutes of silence. */
function progressOption(): Option {
  return new Option(
    '--progress <MODE>',
    'auto: a line redrawn on a terminal, nothing elsewhere; plain: a line every few seconds (for logs, e.g. inside docker build); none',
  )
    .choices(PROGRESS_MODES)
    .default('auto');
}

export function registerTreeCommands(program: Command): void {
  program
    .command('diff')
    .summary('compute a delta that turns SRC_ROOT into DST_ROOT')
    .description(
      'Compare two root filesystems and write a delta directory that rebuilds DST_ROOT from SRC_ROOT.\n' +
        'Per file it keeps the cheapest of: unchanged, moved/duplicated (same bytes elsewhere), a VCDIFF\n' +
        'against the same path or a versioned sibling (libfoo.so.3.0.19 -> .22), or the file compressed.',
    )
    .argument('<SRC_ROOT>', "the tree the receiver already has (e.g. image A's root)")
    .argument('<DST_ROOT>', "the tree to ship (e.g. image B's root)")
    .requiredOption('-o, --out <DELTA_DIR>', 'where to write the delta (must not exist)')
    .option(
      '--memory <SIZE>',
      'memory budget, e.g. 800M or 2G (default: a quarter of the machine, at most 1G); large files are diffed in segments within it',
      parseMemorySize,
    )
    .option(
      '--whole-records',
      'one whole record per entry (format v2 coding): larger, but apply then takes only file contents from SRC_ROOT, not metadata, and deltaimg before v3 reads it',
    )
    .option('--annotations-json <JSON>', 'JSON stored verbatim in the delta header (used by the Docker workflow)')
    .option('--json', 'print a machine-readable summary on stdout')
    .option('-q, --quiet', 'no progress and no summary on stderr')
    .addOption(progressOption())
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  deltaimg diff ./v1 ./v2 --out ./v1-to-v2\n' +
        '  deltaimg diff /__src__ /__dst__ --out /__delta__ --json > report.json\n' +
        '\nThe delta is written to a temp dir beside DELTA_DIR and renamed into place when complete. Entries\n' +
        'that equal SRC_ROOT cost nothing in it: apply takes them, with their metadata, from SRC_ROOT, which\n' +
        'must then be the base as it was (a copy made with `cp -a`, not `cp -r`), or use --whole-records.',
    )
    .action(
      async (
        src: string,
        dst: string,
        opts: OutputFlags & { out: string; annotationsJson?: string; memory?: number; wholeRecords?: boolean },
      ) => {
        await requireNativeAddon();
        // Loaded on use, so other verbs (e.g. `vcdiff`) do not pay for them in time and memory.
        const { diffTrees } = await import('../delta/diff.js');
        const { savedLine, summarize } = await import('../delta/summary.js');
        const progress = createProgress({ quiet: opts.quiet, mode: opts.progress });
        const header = await diffTrees(src, dst, opts.out, {
          progress,
          annotations: parseAnnotations(opts.annotationsJson),
          toolVersion: toolVersion(),
          ...(opts.memory ? { memoryBytes: opts.memory } : {}),
          ...(opts.wholeRecords ? { wholeRecords: true } : {}),
        });
        if (opts.json) printJson({ delta: opts.out, ...summarize(header) });
        if (!opts.quiet) process.stderr.write(`deltaimg: ${savedLine(header)}\n`);
      },
    );

  program
    .command('apply')
    .summary('rebuild DST_ROOT from SRC_ROOT and a delta')
    .description(
      'Rebuild the target tree from SRC_ROOT and DELTA_DIR into OUT_ROOT. Every source file used is\n' +
        'checked against the delta (a wrong base is refused), every restored file is verified by sha256,\n' +
        'and OUT_ROOT appears only when all of it is right. Ownership, device nodes and some xattrs need\n' +
        'root: as another user they are skipped and reported once.\n\n' +
        'By default apply restores everything an image root holds, including device nodes, setuid/setgid\n' +
        'bits and trusted.*/security.* xattrs (file capabilities), and says how many it restored. For a\n' +
        'delta you do not trust that far, --no-devices and --no-privileged-metadata refuse such a delta\n' +
        'before anything is written (exit 1, naming the first such entry).',
    )
    .argument('<SRC_ROOT>', 'the tree the delta was made against')
    .argument('<DELTA_DIR>', 'a delta made by `deltaimg diff`')
    .requiredOption('-o, --out <OUT_ROOT>', 'where to build the restored tree (must not exist)')
    .option(
      '--memory <SIZE>',
      'memory budget, e.g. 800M or 2G (default: a quarter of the machine, at most 1G); large files are restored within it',
      parseMemorySize,
    )
    .option('--no-devices', 'refuse a delta that holds device nodes (character or block)')
    .option('--no-privileged-metadata', 'refuse a delta that sets setuid/setgid bits or trusted.*/security.* xattrs')
    .option('--json', 'print a machine-readable summary on stdout')
    .option('-q, --quiet', 'no progress and no summary on stderr')
    .addOption(progressOption())
    .addHelpText(
      'after',
      '\nExamples:\n  deltaimg apply ./v1 ./v1-to-v2 --out ./v2-restored\n  deltaimg apply --no-devices --no-privileged-metadata ./v1 ./untrusted-delta --out ./v2',
    )
    .action(
      async (
        src: string,
        deltaDir: string,
        opts: OutputFlags & { out: string; memory?: number; devices: boolean; privilegedMetadata: boolean },
      ) => {
        await requireNativeAddon();
        const { applyDelta } = await import('../delta/apply.js');
        const { summarizeReport } = await import('../tree/meta.js');
        const { privilegedLine } = await import('../delta/privilege.js');
        const started = Date.now();
        const result = await applyDelta(src, deltaDir, opts.out, {
          progress: createProgress({ quiet: opts.quiet, mode: opts.progress }),
          ...(opts.memory ? { memoryBytes: opts.memory } : {}),
          policy: { devices: opts.devices, privilegedMetadata: opts.privilegedMetadata },
        });
        const skipped = summarizeSkipped(result.report.skipped);
        if (opts.json) {
          printJson({
            out: opts.out,
            entries: result.entries,
            files: result.files,
            bytes: result.bytes,
            verified: true,
            seconds: (Date.now() - started) / 1000,
            targetTreeSha256: result.header.target.treeSha256,
            skipped,
            privileged: result.privileged,
          });
        }
        if (!opts.quiet) {
          process.stderr.write(
            `deltaimg: restored ${result.entries} entries (${result.files} files, ${formatBytes(result.bytes)}), all verified, into ${opts.out}\n`,
          );
          const note = summarizeReport(result.report);
          if (note) process.stderr.write(`deltaimg: ${note}\n`);
          const privileged = privilegedLine(result.privileged);
          if (privileged) process.stderr.write(`deltaimg: ${privileged}\n`);
        }
      },
    );

  program
    .command('inspect')
    .summary('show what a delta holds and what it saves')
    .description(
      'Show what a delta holds and what it saves: a delta directory (deltaimg diff), a .dimg file (deltaimg image diff), or a ' +
        'delta image (deltaimg dockerfile diff: docker-daemon:NAME:TAG, NAME:TAG, docker://REGISTRY/REPO:TAG, oci:DIR, docker-archive:PATH, ...). For a .dimg ' +
        'and a delta image the saving is also given on compressed bytes, what a registry stores and a pull moves: the delta layer ' +
        "gzip'd against B's layers A lacks gzip'd (read from the local engine when B is there).",
    )
    .argument('<DELTA>', 'a delta directory, a .dimg file, or a delta image')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  deltaimg inspect ./v1-to-v2\n' +
        '  deltaimg inspect a-to-b.dimg\n' +
        '  deltaimg inspect docker-daemon:app:1-to-2        # or app:1-to-2\n',
    )
    .action(async (delta: string, opts: OutputFlags) => {
      const { inspectDelta } = await import('./inspect-command.js');
      await inspectDelta(delta, opts);
    });
}

function parseAnnotations(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new DeltaimgError('USAGE', '--annotations-json is not valid JSON');
  }
}

function summarizeSkipped(skipped: { what: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of skipped) counts[s.what] = (counts[s.what] ?? 0) + 1;
  return counts;
}
