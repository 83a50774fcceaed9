/** `deltaimg dockerfile diff|apply`: print the Dockerfiles of the Docker workflow. */
import type { Command } from 'commander';
import { toolVersion } from './version.js';

/**
 * The Docker modules (and execa) load only when a dockerfile verb runs: every other verb,
 * e.g. `apply` inside a build, starts ~0.15 s sooner. The default runtime image name is
 * therefore spelled here as docker/plan.ts's defaultRuntimeImage() spells it.
 */
const loadPlan = () => import('../docker/plan.js');
const defaultRuntimeImage = (version: string) => `deltaimg/runtime:${version}`;

interface CommonFlags {
  runtimeImage?: string;
}

export function registerDockerfileCommand(program: Command): void {
  const runtimeHelp = `image holding /opt/deltaimg (default ${defaultRuntimeImage(toolVersion())}, built by deltaimg runtime build)`;
  const dockerfile = program
    .command('dockerfile')
    .summary('print a Dockerfile that makes or applies a delta image')
    .description(
      'Print a Dockerfile for `docker build`: `diff` makes a delta image A-TO-B (image A plus one small layer with the delta from A to B); `apply` rebuilds B from it. deltaimg itself runs inside the build, copied from the self-contained runtime image, so the machine that applies needs only Docker. These verbs ask the local Docker engine about the images (docker CLI: $DELTAIMG_DOCKER, else docker).',
    )
    .addHelpText(
      'after',
      '\nThe workflow:\n' +
        '  deltaimg dockerfile diff app:1 app:2 | docker build -t app:1-to-2 -   # where both images are\n' +
        '  docker push registry/app:1-to-2                                      # layers of app:1 are shared\n' +
        '  docker pull registry/app:1-to-2                                      # where app:1 is\n' +
        '  deltaimg dockerfile apply app:1-to-2 | docker build -t app:2 -\n' +
        '\nOn a daemon without a bridge network, add --network=none to docker build (RUN needs no network).',
    );

  dockerfile
    .command('diff')
    .summary('Dockerfile for a delta image that rebuilds B from A')
    .description(
      'Print a Dockerfile that computes the delta from image A to image B in a scratch stage and makes the delta image: FROM A plus a layer holding /__delta__, labelled with both image ids and B\'s config. With --unlinked the delta image is FROM scratch (the delta alone): ship it without A\'s layers, e.g. with docker save, and apply it with --unlinked-source A.',
    )
    .argument('<A>', 'the base image (name:tag), which the receiver already has')
    .argument('<B>', 'the target image (name:tag), which the receiver should end up with')
    .option('--unlinked', 'make the delta image FROM scratch instead of FROM A')
    .option('--runtime-image <IMG>', runtimeHelp)
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  deltaimg dockerfile diff app:1 app:2 | docker build -t app:1-to-2 -\n' +
        '  deltaimg dockerfile diff app:1 app:2 --unlinked | docker build -t app:1-to-2-alone -\n' +
        '  docker save app:1-to-2-alone | zstd > app-1-to-2.tar.zst                # a few MB instead of app:2\n',
    )
    .action(async (a: string, b: string, opts: CommonFlags & { unlinked?: boolean }) => {
      const { planDiff } = await loadPlan();
      const text = await planDiff({ base: a, target: b, unlinked: opts.unlinked, runtimeImage: opts.runtimeImage, toolVersion: toolVersion() });
      process.stdout.write(text);
    });

  dockerfile
    .command('apply')
    .summary('Dockerfile that rebuilds B from a delta image A-TO-B')
    .description(
      'Print a Dockerfile that checks A\'s root against the delta, applies it in a scratch stage and makes B: FROM scratch, B\'s files as one layer, and B\'s config (ENV, CMD, ENTRYPOINT, WORKDIR, USER, EXPOSE, VOLUME, LABEL, STOPSIGNAL, HEALTHCHECK, SHELL, ONBUILD). With --layered, B is FROM A plus one layer holding only what changes. The build fails if the source is not A.',
    )
    .argument('<A-TO-B>', 'the delta image made by `deltaimg dockerfile diff`')
    .option('--unlinked-source <A>', 'take the source root from image A (needed for delta images made with --unlinked; with --layered, the image to build FROM)')
    .option('--layered', 'make B as A\'s layers plus one layer of B\'s changed and new files and whiteouts for removals, so A\'s layers stay shared on disk (A must be here by name; see docs/docker.md for what it refuses)')
    .option('--runtime-image <IMG>', runtimeHelp)
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  deltaimg dockerfile apply app:1-to-2 | docker build -t app:2 -\n' +
        '  deltaimg dockerfile apply app:1-to-2 --layered | docker build -t app:2 -      # FROM app:1 + one layer\n' +
        '  zstd -dc app-1-to-2.tar.zst | docker load\n' +
        '  deltaimg dockerfile apply app:1-to-2-alone --unlinked-source app:1 | docker build -t app:2 -\n',
    )
    .action(async (deltaImage: string, opts: CommonFlags & { unlinkedSource?: string; layered?: boolean }) => {
      const { planApply } = await loadPlan();
      const text = await planApply({
        deltaImage,
        unlinkedSource: opts.unlinkedSource,
        layered: opts.layered,
        runtimeImage: opts.runtimeImage,
        toolVersion: toolVersion(),
      });
      process.stdout.write(text);
    });
}
