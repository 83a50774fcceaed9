/**
 * Will the `docker build` that reads our Dockerfile be able to run it? Checked before printing,
 * because the failures come late and deep in a build log otherwise:
 *
 * - the classic builder (DOCKER_BUILDKIT=0, or Docker 20.10's default) stops at RUN --mount with
 *   "the --mount option requires BuildKit";
 * - a docker CLI >= 23 with BuildKit on but no buildx component refuses every build ("BuildKit is
 *   enabled but the buildx component is missing or broken"), and without DOCKER_BUILDKIT it falls
 *   back to the classic builder;
 * - a daemon without a bridge network fails every RUN ("network bridge not found") unless the
 *   build is given --network=none.
 *
 * Which builder runs depends on the CLI's version, its plugins, DOCKER_BUILDKIT and the daemon's
 * default, so the CLI is asked directly: an empty Dockerfile on stdin fails at once, and each
 * builder says so in its own words (see classifyProbe). The `docker build` that will read our
 * stdout is found through /proc when it can be (pipe-reader.ts): its own environment and command
 * line count, so `| DOCKER_BUILDKIT=1 docker build --network=none -` is judged as what it is.
 */
import { execa } from 'execa';
import { basename } from 'node:path';
import { DeltaimgError } from '../util/errors.js';
import { dockerCli, type EngineOptions } from './engine.js';
import { findPipeReader, type PipeReader } from './pipe-reader.js';

/** The builder a docker CLI runs for `docker build`, as its answer to an empty Dockerfile tells. */
export type BuilderKind =
  | { kind: 'buildkit' }
  /** why: what selected it (DOCKER_BUILDKIT=0, no buildx component, the engine's default). */
  | { kind: 'classic'; why: string }
  | { kind: 'buildx-missing' }
  /** Output none of the known builders prints: not judged. */
  | { kind: 'unknown'; firstLine: string };

/** Who will build the Dockerfile we print. */
export type BuildConsumer =
  | {
      kind: 'docker';
      cli: string;
      /** ['build'] or ['buildx', 'build']. */
      verb: string[];
      env: NodeJS.ProcessEnv;
      /** Whether the build runs with --network=none; undefined when its command line is not visible. */
      networkNone: boolean | undefined;
      /** Seen reading our stdout (else: assumed to run here, in our environment). */
      seen: boolean;
    }
  /** podman, buildah, a file writer...: not a docker CLI, not judged. */
  | { kind: 'other'; name: string };

/** What the Dockerfile needs: RUN --mount (BuildKit), or any builder (--copy). */
export type BuilderNeed = 'buildkit' | 'any';

const NO_CHECK = '--no-check prints it anyway (e.g. to build it elsewhere)';

/**
 * Refuses, in one line that says what to install or set, a builder that cannot run the
 * Dockerfile; returns notes to print (the --network=none hint).
 */
export async function checkBuilder(need: BuilderNeed, engine: EngineOptions = {}): Promise<string[]> {
  const consumer = await findConsumer(engine);
  if (consumer.kind === 'other') return [];
  const builder = classifyProbe(await probe(consumer), consumer.env.DOCKER_BUILDKIT);
  refuseBuilder(builder, need, consumer);
  return (await hasBridgeNetwork(consumer)) || consumer.networkNone ? [] : [networkHint(consumer)];
}

/** Throws when `builder` cannot run a Dockerfile that needs `need`. */
export function refuseBuilder(builder: BuilderKind, need: BuilderNeed, consumer: { cli: string; seen: boolean }): void {
  const where = consumer.seen ? 'the docker build reading this output' : `docker build here (${consumer.cli})`;
  if (builder.kind === 'buildx-missing') {
    throw new DeltaimgError(
      'DOCKER',
      `${where} has BuildKit enabled but no buildx component ("BuildKit is enabled but the buildx component is missing"): install it (apt-get install docker-buildx-plugin, or docker-buildx on Debian/Ubuntu)` +
        `${need === 'any' ? ', or set DOCKER_BUILDKIT=0 for the classic builder' : ''}; ${NO_CHECK}`,
    );
  }
  if (builder.kind === 'classic' && need === 'buildkit') {
    throw new DeltaimgError(
      'DOCKER',
      `${where} runs the classic builder (${builder.why}), which cannot run RUN --mount ("the --mount option requires BuildKit"): ` +
        `set DOCKER_BUILDKIT=1 (Docker 20.10) or install the buildx component (docker-buildx-plugin, Docker >= 23), or use --copy, which works on any builder; ${NO_CHECK}`,
    );
  }
}

/**
 * Reads the CLI's answer to an empty Dockerfile. Recorded answers: docker 20.10 with BuildKit
 * "#1 [internal] load build definition ... failed to solve"; classic "Sending build context to
 * Docker daemon ... cannot be empty" (docker >= 23 first prints "DEPRECATED: The legacy builder");
 * docker >= 23 with DOCKER_BUILDKIT=1 and no buildx "ERROR: BuildKit is enabled but the buildx
 * component is missing or broken"; with buildx "ERROR: failed to solve: ...".
 */
export function classifyProbe(output: string, buildkitEnv: string | undefined): BuilderKind {
  if (/buildx component is missing/i.test(output)) return { kind: 'buildx-missing' };
  if (/Sending build context to Docker daemon|Error response from daemon: the Dockerfile .* cannot be empty/.test(output)) {
    const why =
      buildkitEnv !== undefined && isGoFalse(buildkitEnv)
        ? `DOCKER_BUILDKIT=${buildkitEnv}`
        : /legacy builder is deprecated/i.test(output)
          ? 'no buildx component, so the legacy builder'
          : "the engine's default; Docker 20.10 uses BuildKit only with DOCKER_BUILDKIT=1";
    return { kind: 'classic', why };
  }
  if (/^#\d+ |failed to solve|\[internal\] load build definition/m.test(output)) return { kind: 'buildkit' };
  return {
    kind: 'unknown',
    firstLine:
      output
        .split('\n')
        .find((l) => l.trim())
        ?.trim() ?? '',
  };
}

/** strconv.ParseBool's false spellings, which the docker CLI uses for DOCKER_BUILDKIT. */
function isGoFalse(v: string): boolean {
  return ['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v);
}

async function probe(consumer: Extract<BuildConsumer, { kind: 'docker' }>): Promise<string> {
  const r = await execa(consumer.cli, [...consumer.verb, '-'], {
    input: '',
    env: { ...consumer.env, BUILDKIT_PROGRESS: 'plain' },
    extendEnv: false,
    reject: false,
    all: true,
    timeout: 60_000,
  });
  if (r.code === 'ENOENT') {
    throw new DeltaimgError('DOCKER', `cannot run ${consumer.cli}: not found; install the Docker CLI or set DELTAIMG_DOCKER to its path`);
  }
  return String(r.all ?? '');
}

async function hasBridgeNetwork(consumer: Extract<BuildConsumer, { kind: 'docker' }>): Promise<boolean> {
  const r = await execa(consumer.cli, ['network', 'ls', '--format', '{{.Name}}'], { env: consumer.env, extendEnv: false, reject: false });
  // Cannot tell (an old CLI, a remote engine refusing): no hint rather than a wrong one.
  if (r.failed) return true;
  return String(r.stdout).split('\n').includes('bridge');
}

function networkHint(consumer: { seen: boolean }): string {
  return (
    `this Docker engine has no bridge network: build with docker build --network=none (the build needs no network)` +
    `${consumer.seen ? '' : ' unless you already do'}, else it fails with "network bridge not found"`
  );
}

async function findConsumer(engine: EngineOptions): Promise<BuildConsumer> {
  const reader = await findPipeReader();
  if (!reader) return { kind: 'docker', cli: dockerCli(engine), verb: ['build'], env: process.env, networkNone: undefined, seen: false };
  return consumerOf(reader);
}

/** A pipe reader as a build consumer: a docker CLI (by name) with its own environment, or something else. */
export function consumerOf(reader: PipeReader): BuildConsumer {
  const argv0 = basename(reader.argv[0] ?? '');
  const exe = reader.exe ? basename(reader.exe) : argv0;
  if (!/^docker(\.exe)?$/.test(exe) && !/^docker(\.exe)?$/.test(argv0)) return { kind: 'other', name: argv0 || exe };
  const args = reader.argv.slice(1);
  const network = args.findIndex((a) => a === '--network' || a === '--net' || a.startsWith('--network=') || a.startsWith('--net='));
  const networkValue = network < 0 ? undefined : args[network]!.includes('=') ? args[network]!.split('=')[1] : args[network + 1];
  return {
    kind: 'docker',
    cli: reader.exe ?? reader.argv[0]!,
    verb: args.includes('buildx') ? ['buildx', 'build'] : ['build'],
    env: reader.env,
    networkNone: networkValue === 'none',
    seen: true,
  };
}
