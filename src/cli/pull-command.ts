/** `deltaimg pull docker://R/app:2`: B through a published delta from a base this machine holds, else a plain pull. */
import type { Command } from 'commander';
import { DeltaimgError } from '../util/errors.js';
import { parseMemorySize } from '../util/memory-budget.js';
import { createProgress } from '../util/progress.js';
import { registryOptions, withRegistryOptions, type RegistryFlags } from './registry-flags.js';
import { printJson } from './output.js';
import { requireNativeAddon } from './preflight.js';

interface PullFlags extends RegistryFlags {
  out?: string;
  have?: string[];
  tmpDir?: string;
  memory?: number;
  json?: boolean;
  quiet?: boolean;
}

export function registerPullCommand(program: Command): void {
  withRegistryOptions(program.command('pull'))
    .summary('pull an image through a published delta from an older version held here')
    .description(
      'Lists the deltas published beside IMAGE (deltaimg image diff ... --push), picks one whose base this machine\n' +
        'holds (by registry digest, else by image id; the Docker engine by default, or the --have images), downloads\n' +
        'it, applies it (every layer and the config verified) and writes IMAGE. When no delta fits it says so and\n' +
        'pulls normally. The report compares the bytes downloaded with what a plain pull would fetch.',
    )
    .argument('<IMAGE>', 'docker://REGISTRY/REPO[:TAG|@DIGEST]')
    .option('-o, --out <IMAGE>', 'where to write it (default docker-daemon:REGISTRY/REPO:TAG)')
    .option(
      '--have <IMAGES>',
      'images held here to use as bases (docker-daemon:, oci:, docker-archive:), comma-separated or repeated',
      collect,
    )
    .option('--tmp-dir <DIR>', 'scratch space (default the OS temp dir)')
    .option('--memory <SIZE>', 'memory budget for apply, e.g. 800M or 2G', parseMemorySize)
    .option('--json', 'print a machine-readable report on stdout')
    .option('-q, --quiet', 'no progress and no summary on stderr')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  deltaimg image diff docker://registry.example/app:1 docker://registry.example/app:2 --push   # once, by the publisher\n' +
        '  deltaimg pull docker://registry.example/app:2                                              # where app:1 is in the engine\n' +
        '  deltaimg pull docker://registry.example/app:2 --have oci:./app-1 -o oci:./app-2',
    )
    .action(async (image: string, opts: PullFlags) => {
      const { parseImageRef, formatImageRef } = await import('../image/index.js');
      const { pullImage } = await import('../imagedelta/index.js');
      const target = parseImageRef(image);
      if (target.transport !== 'docker')
        throw new DeltaimgError('USAGE', `pull takes a registry image docker://REGISTRY/REPO[:TAG], not ${image}`);
      await requireNativeAddon();
      const name = `${target.registry}/${target.repository}${target.tag ? `:${target.tag}` : target.digest ? '' : ':latest'}`;
      const dest = parseImageRef(opts.out ?? `docker-daemon:${name}`);
      if (dest.transport === 'docker-daemon' && target.digest && !target.tag && !opts.out) {
        throw new DeltaimgError('USAGE', `${image} has no tag to name the image in the engine: add -o docker-daemon:NAME:TAG`);
      }
      const report = await pullImage(target, {
        dest,
        ...(opts.have ? { have: opts.have.map((h) => parseImageRef(h)) } : {}),
        registry: registryOptions(opts),
        progress: createProgress({ quiet: opts.quiet }),
        ...(opts.tmpDir ? { tmpDir: opts.tmpDir } : {}),
        ...(opts.memory ? { memoryBytes: opts.memory } : {}),
      });
      if (opts.json) printJson(report);
      if (opts.quiet) return;
      const out = formatImageRef(dest);
      if (report.mode === 'delta' && report.delta) {
        const saved =
          report.bytesDownloaded !== undefined && report.bytesDownloaded > 0
            ? ` (${(report.plainPullBytes / report.bytesDownloaded).toFixed(1)}x less)`
            : '';
        process.stderr.write(
          `deltaimg: pulled ${report.target} through delta ${report.delta.artifact.slice(0, 19)} from ${report.delta.base} (matched by ${report.delta.matchedBy})\n`,
        );
        process.stderr.write(
          `deltaimg: downloaded ${report.bytesDownloaded} bytes; a plain pull would fetch ${report.plainPullBytes}${saved}\n`,
        );
      } else {
        process.stderr.write(`deltaimg: ${report.reason}; pulled normally\n`);
        if (report.bytesDownloaded !== undefined) process.stderr.write(`deltaimg: downloaded ${report.bytesDownloaded} bytes\n`);
      }
      for (const img of report.images) process.stderr.write(`deltaimg: ${img.platform} image ${img.configDigest} written to ${out}\n`);
    });
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').filter((p) => p !== '')];
}
