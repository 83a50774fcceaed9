/** `deltaimg runtime build`: the runtime image the generated Dockerfiles run deltaimg from. */
import type { Command } from 'commander';
import { formatBytes } from '../util/progress.js';
import { printJson } from './output.js';
import { toolVersion } from './version.js';

export function registerRuntimeCommand(program: Command): void {
  const runtime = program
    .command('runtime')
    .summary('the runtime image that `dockerfile diff|apply` builds run deltaimg from')
    .description(
      "The runtime image (deltaimg/runtime:<version>) holds deltaimg, this machine's node and the libraries it loads under /opt/deltaimg, and nothing else: the generated Dockerfiles mount it into their build stages, so any base image works, even FROM scratch.",
    );

  runtime
    .command('build')
    .summary('build the runtime image from this installed deltaimg, offline')
    .description(
      "Stage /opt/deltaimg from this package (dist, wasm, the prebuilt addon and launcher, the production dependencies), this machine's node and the libraries ldd names for it, check that it starts, then `docker build` it FROM scratch with --network=none: nothing is pulled or downloaded. When the tag already names an image of exactly these files (its io.deltaimg.runtime-digest label), nothing is rebuilt. Needs a glibc Linux (x64 or arm64) and the Docker CLI ($DELTAIMG_DOCKER, else docker).",
    )
    .option('-t, --tag <IMG>', 'image name to build', `deltaimg/runtime:${toolVersion()}`)
    .option('--tmp-dir <DIR>', 'where to stage the build context (default the OS temp dir; removed afterwards)')
    .option('--json', 'print a machine-readable summary on stdout')
    .option('-q, --quiet', 'no summary on stderr')
    .addHelpText(
      'after',
      '\nExamples:\n  deltaimg runtime build\n  deltaimg runtime build --tag registry.example/deltaimg/runtime:' +
        toolVersion() +
        '   # to push to your own registry\n',
    )
    .action(async (opts: { tag: string; tmpDir?: string; json?: boolean; quiet?: boolean }) => {
      const { buildRuntimeImage } = await import('../docker/runtime-image.js');
      const result = await buildRuntimeImage({ tag: opts.tag, ...(opts.tmpDir ? { tmpDir: opts.tmpDir } : {}) });
      if (opts.json) printJson(result);
      if (!opts.quiet) {
        const verb = result.upToDate ? 'up to date:' : 'built';
        process.stderr.write(
          `deltaimg: ${verb} ${result.tag} (${formatBytes(result.bytes)}: node ${formatBytes(result.nodeBytes)}, libraries ${formatBytes(result.libBytes)}, node_modules ${formatBytes(result.nodeModulesBytes)})\n`,
        );
      }
    });
}
