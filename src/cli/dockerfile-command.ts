/** `deltaimg dockerfile diff|apply`: print the Dockerfiles of the Docker workflow. */
import type { Command } from 'commander';
import { formatImageRef, parseImageRef } from '../image/ref.js';
import { DeltaimgError } from '../util/errors.js';
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
  copy?: boolean;
  /** commander's spelling of --no-check. */
  check?: boolean;
  /** --force: the same as --no-check. */
  force?: boolean;
}

const COPY_HELP =
  "COPY both image roots into the scratch stage instead of RUN --mount, so the Dockerfile runs on any builder (the classic builder, Kaniko, Podman/Buildah). Costs: the copy (a 101 MB pair on the classic builder: diff 24-26 s, apply 16-25 s, vs 8-21 s and 8-12 s with RUN --mount on BuildKit) and disk (the classic builder keeps each step as an intermediate image: 610 MB for that pair's diff and apply, until docker image prune); the classic COPY drops user.* and trusted.* xattrs and keeps device nodes and FIFOs, BuildKit's COPY turns device nodes into empty files and drops FIFOs (docs/docker.md)";

const NO_CHECK_HELP =
  'print without first asking the local docker build whether it can run the Dockerfile (BuildKit, the buildx component, a bridge network); for a Dockerfile built elsewhere';

/**
 * The one image-reference grammar, as the dockerfile verbs read it: these verbs work on images in
 * the local engine, so `docker-daemon:NAME[:TAG]` and a plain `NAME[:TAG]` name the same image;
 * another transport (an archive, a layout) is named with what to do instead.
 */
export function daemonImageName(text: string, role: string): string {
  if (!/^[a-z][a-z-]*:/.test(text) && text !== '-') return text;
  let parsed: ReturnType<typeof parseImageRef>;
  try {
    parsed = parseImageRef(text);
  } catch (err) {
    // NAME:TAG and HOST:PORT/NAME read as an unknown transport: a plain name. docker-daemon: with a bad name: its error.
    if (text.startsWith('docker-daemon:')) throw err;
    return text;
  }
  if (parsed.transport === 'docker-daemon') return parsed.name;
  const where = formatImageRef(parsed);
  if (parsed.transport === 'docker') {
    const name = where.replace(/^docker:\/\//, '');
    throw new DeltaimgError(
      'USAGE',
      `${role} ${where}: dockerfile verbs take images in the local Docker engine: docker pull ${name} first, then pass ${name}`,
    );
  }
  throw new DeltaimgError(
    'USAGE',
    `${role} ${where}: dockerfile verbs take images in the local Docker engine (NAME:TAG or docker-daemon:NAME:TAG); docker load it first, or use deltaimg image diff|apply, which read ${parsed.transport === 'stdio' ? 'stdin' : 'archives and layouts'} directly`,
  );
}

/** --runtime-image, else $DELTAIMG_RUNTIME_IMAGE, else (undefined) the default for this version. */
function runtimeImageOf(opts: CommonFlags): string | undefined {
  const given = opts.runtimeImage ?? (process.env.DELTAIMG_RUNTIME_IMAGE || undefined);
  return given === undefined ? undefined : daemonImageName(given, 'runtime image');
}

function printPlan(plan: { dockerfile: string; notes: string[] }): void {
  for (const note of plan.notes) process.stderr.write(`deltaimg: note: ${note}\n`);
  process.stdout.write(plan.dockerfile);
}

export function registerDockerfileCommand(program: Command): void {
  const runtimeHelp = `image holding /opt/deltaimg (default $DELTAIMG_RUNTIME_IMAGE, else ${defaultRuntimeImage(toolVersion())}, built by deltaimg runtime build)`;
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
        '\nImages are named NAME:TAG or docker-daemon:NAME:TAG (the same image in the local engine).\n' +
        'Before printing, the verbs ask the docker build that will read the Dockerfile (found through the pipe, else the one here)\n' +
        'whether it can run it: BuildKit (DOCKER_BUILDKIT=1 on Docker 20.10; the buildx component on Docker >= 23), and\n' +
        'a bridge network (else they print the --network=none hint). --no-check prints anyway.',
    );

  dockerfile
    .command('diff')
    .summary('Dockerfile for a delta image that rebuilds B from A')
    .description(
      "Print a Dockerfile that computes the delta from image A to image B in a scratch stage and makes the delta image: FROM A plus a layer holding /__delta__, labelled with both image ids and B's config. With --unlinked the delta image is FROM scratch (the delta alone): ship it without A's layers, e.g. with docker save, and apply it with --unlinked-source A.",
    )
    .argument('<A>', 'the base image (NAME:TAG or docker-daemon:NAME:TAG), which the receiver already has')
    .argument('<B>', 'the target image (NAME:TAG or docker-daemon:NAME:TAG), which the receiver should end up with')
    .option('--unlinked', 'make the delta image FROM scratch instead of FROM A')
    .option('--copy', COPY_HELP)
    .option('--runtime-image <IMG>', runtimeHelp)
    .option('--no-check', NO_CHECK_HELP)
    .option('--force', 'the same as --no-check')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  deltaimg dockerfile diff app:1 app:2 | docker build -t app:1-to-2 -\n' +
        '  deltaimg dockerfile diff app:1 app:2 --unlinked | docker build -t app:1-to-2-alone -\n' +
        '  docker save app:1-to-2-alone | zstd > app-1-to-2.tar.zst                # a few MB instead of app:2\n',
    )
    .action(async (a: string, b: string, opts: CommonFlags & { unlinked?: boolean }) => {
      const { planDiff } = await loadPlan();
      printPlan(
        await planDiff({
          base: daemonImageName(a, 'base image'),
          target: daemonImageName(b, 'target image'),
          unlinked: opts.unlinked,
          shape: opts.copy ? 'copy' : 'mount',
          runtimeImage: runtimeImageOf(opts),
          checkBuilder: opts.check !== false && !opts.force,
          toolVersion: toolVersion(),
        }),
      );
    });

  dockerfile
    .command('apply')
    .summary('Dockerfile that rebuilds B from a delta image A-TO-B')
    .description(
      "Print a Dockerfile that checks A's root against the delta, applies it in a scratch stage and makes B: FROM scratch, B's files as one layer, and B's config (ENV, CMD, ENTRYPOINT, WORKDIR, USER, EXPOSE, VOLUME, LABEL, STOPSIGNAL, HEALTHCHECK, SHELL, ONBUILD). With --layered, B is FROM A plus one layer holding only what changes. The build fails if the source is not A.",
    )
    .argument('<A-TO-B>', 'the delta image made by `deltaimg dockerfile diff` (NAME:TAG or docker-daemon:NAME:TAG)')
    .option(
      '--unlinked-source <A>',
      'take the source root from image A (needed for delta images made with --unlinked; with --layered, the image to build FROM)',
    )
    .option(
      '--layered',
      "make B as A's layers plus one layer of B's changed and new files and whiteouts for removals, so A's layers stay shared on disk (A must be here by name; see docs/docker.md for what it refuses)",
    )
    .option('--copy', COPY_HELP)
    .option('--runtime-image <IMG>', runtimeHelp)
    .option('--no-check', NO_CHECK_HELP)
    .option('--force', 'the same as --no-check')
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
      printPlan(
        await planApply({
          deltaImage: daemonImageName(deltaImage, 'delta image'),
          unlinkedSource: opts.unlinkedSource === undefined ? undefined : daemonImageName(opts.unlinkedSource, 'source image'),
          layered: opts.layered,
          shape: opts.copy ? 'copy' : 'mount',
          runtimeImage: runtimeImageOf(opts),
          checkBuilder: opts.check !== false && !opts.force,
          toolVersion: toolVersion(),
        }),
      );
    });
}
