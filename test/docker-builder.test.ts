/**
 * `dockerfile diff|apply` ask the docker build that will run their output whether it can, before
 * printing: the classic builder, a docker CLI without the buildx component, a daemon without a
 * bridge network. On the real engine and CLIs of this machine, through real shell pipes (the
 * build's own DOCKER_BUILDKIT and --network count), and the image-reference grammar.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyProbe, consumerOf, refuseBuilder } from '../src/docker/builder.js';
import { DeltaimgError } from '../src/util/errors.js';
import { DELTAIMG_ENV, describeDocker, DOCKER, ensureRuntimeImage, imageId, ImageNames, importTree, REPO_ROOT } from './helpers/docker.js';

const CLI = join(REPO_ROOT, 'dist/cli/main.js');

/** Answers of real CLIs to an empty Dockerfile on stdin (docker 20.10.24 and 28.2.2, engine 20.10.24). */
const ANSWERS = {
  buildkit20:
    '#1 [internal] load build definition from Dockerfile\n#1 sha256:08ad\n#1 transferring dockerfile: 31B done\n#1 DONE 0.0s\nfailed to solve with frontend dockerfile.v0: failed to create LLB definition: the Dockerfile cannot be empty',
  classic20: 'Sending build context to Docker daemon  1.536kB\nError response from daemon: the Dockerfile (Dockerfile) cannot be empty',
  noBuildx28:
    'ERROR: BuildKit is enabled but the buildx component is missing or broken.\n       Install the buildx component to build images with BuildKit:\n       https://docs.docker.com/go/buildx/',
  legacy28:
    'DEPRECATED: The legacy builder is deprecated and will be removed in a future release.\n            Install the buildx component to build images with BuildKit:\n            https://docs.docker.com/go/buildx/\n\nSending build context to Docker daemon  1.536kB\nError response from daemon: the Dockerfile (Dockerfile) cannot be empty',
};

describe('builder detection (pure parts)', () => {
  it("classifies each CLI's answer to an empty Dockerfile", () => {
    expect(classifyProbe(ANSWERS.buildkit20, '1')).toEqual({ kind: 'buildkit' });
    expect(classifyProbe(ANSWERS.classic20, '0')).toEqual({ kind: 'classic', why: 'DOCKER_BUILDKIT=0' });
    expect(classifyProbe(ANSWERS.classic20, undefined)).toMatchObject({ kind: 'classic', why: expect.stringMatching(/engine's default/) });
    expect(classifyProbe(ANSWERS.noBuildx28, '1')).toEqual({ kind: 'buildx-missing' });
    expect(classifyProbe(ANSWERS.legacy28, undefined)).toMatchObject({
      kind: 'classic',
      why: expect.stringMatching(/no buildx component/),
    });
    expect(classifyProbe('podman says hi', undefined)).toEqual({ kind: 'unknown', firstLine: 'podman says hi' });
  });

  it('refuses what cannot run the Dockerfile, in one line naming what to set or install', () => {
    const here = { cli: 'docker', seen: false };
    const refusal = (kind: Parameters<typeof refuseBuilder>[0], need: 'buildkit' | 'any') => {
      try {
        refuseBuilder(kind, need, here);
        return undefined;
      } catch (err) {
        expect(err).toBeInstanceOf(DeltaimgError);
        return (err as Error).message;
      }
    };
    expect(refusal({ kind: 'classic', why: 'DOCKER_BUILDKIT=0' }, 'buildkit')).toMatch(
      /set DOCKER_BUILDKIT=1 .* or use --copy.*--no-check/,
    );
    expect(refusal({ kind: 'classic', why: 'DOCKER_BUILDKIT=0' }, 'any')).toBeUndefined();
    expect(refusal({ kind: 'buildx-missing' }, 'buildkit')).toMatch(/install it \(apt-get install docker-buildx-plugin.*--no-check/);
    expect(refusal({ kind: 'buildx-missing' }, 'any')).toMatch(/or set DOCKER_BUILDKIT=0 for the classic builder/);
    expect(refusal({ kind: 'buildkit' }, 'buildkit')).toBeUndefined();
    expect(refusal({ kind: 'unknown', firstLine: '' }, 'buildkit')).toBeUndefined();
    for (const m of [refusal({ kind: 'buildx-missing' }, 'buildkit')!, refusal({ kind: 'classic', why: 'x' }, 'buildkit')!])
      expect(m).not.toMatch(/\n/);
  });

  it('reads the build command line that reads the pipe', () => {
    const reader = (argv: string[], exe = '/usr/bin/docker') => consumerOf({ pid: 1, exe, argv, env: { DOCKER_BUILDKIT: '1' } });
    expect(reader(['docker', 'build', '--network=none', '-t', 'x', '-'])).toMatchObject({
      kind: 'docker',
      cli: '/usr/bin/docker',
      verb: ['build'],
      networkNone: true,
      seen: true,
      env: { DOCKER_BUILDKIT: '1' },
    });
    expect(reader(['docker', 'build', '--network', 'none', '-'])).toMatchObject({ networkNone: true });
    expect(reader(['docker', 'build', '--network', 'host', '-'])).toMatchObject({ networkNone: false });
    expect(reader(['docker', 'buildx', 'build', '-'])).toMatchObject({ verb: ['buildx', 'build'], networkNone: false });
    expect(reader(['podman', 'build', '-'], '/usr/bin/podman')).toEqual({ kind: 'other', name: 'podman' });
    expect(reader(['tee', 'Dockerfile'], '/usr/bin/tee')).toEqual({ kind: 'other', name: 'tee' });
  });
});

/** A docker CLI >= 23 without the buildx component, if this machine has one (the docker first on PATH often is). */
async function cliWithoutBuildx(): Promise<string | undefined> {
  for (const cli of ['/usr/local/bin/docker', 'docker', DOCKER]) {
    const version = await execa(cli, ['version', '--format', '{{.Client.Version}}'], { reject: false });
    const major = Number(/^(\d+)\./.exec(String(version.stdout))?.[1] ?? 0);
    if (version.failed || major < 23) continue;
    if ((await execa(cli, ['buildx', 'version'], { reject: false })).failed) return cli;
  }
  return undefined;
}

describeDocker('builder detection on the real engine', () => {
  const images = new ImageNames();
  let work = '';
  const A = images.name('builder-a');
  const B = images.name('builder-b');
  let runtime = '';
  let bridge = false;

  beforeAll(async () => {
    runtime = await ensureRuntimeImage();
    work = await mkdtemp(join(tmpdir(), 'deltaimg-builder-'));
    for (const [v, ref] of [
      ['a', A],
      ['b', B],
    ] as const) {
      await mkdir(join(work, v));
      await writeFile(join(work, v, 'file'), `version ${v}\n`);
      await importTree(join(work, v), ref);
    }
    bridge = (await execa(DOCKER, ['network', 'ls', '--format', '{{.Name}}'])).stdout.split('\n').includes('bridge');
  });
  afterAll(async () => {
    await images.removeAll();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** `deltaimg ARGS | BUILD` in a real shell, deltaimg's own environment without DOCKER_BUILDKIT. */
  async function pipeline(args: string, build: string) {
    const env: NodeJS.ProcessEnv = { ...process.env, DELTAIMG_DOCKER: DOCKER, DELTAIMG_RUNTIME_IMAGE: DELTAIMG_ENV.DELTAIMG_RUNTIME_IMAGE };
    delete env.DOCKER_BUILDKIT;
    return execa('bash', ['-c', `set -o pipefail; node ${CLI} dockerfile ${args} | ${build}`], {
      env,
      extendEnv: false,
      reject: false,
      all: true,
    });
  }

  it('refuses the classic builder (DOCKER_BUILDKIT=0) before printing, in one line; --no-check prints anyway', async () => {
    const env = { ...process.env, ...DELTAIMG_ENV, DOCKER_BUILDKIT: '0' };
    const r = await execa('node', [CLI, 'dockerfile', 'diff', A, B], { env, reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `deltaimg: error: docker build here (${DOCKER}) runs the classic builder (DOCKER_BUILDKIT=0), which cannot run RUN --mount ("the --mount option requires BuildKit"): ` +
        'set DOCKER_BUILDKIT=1 (Docker 20.10) or install the buildx component (docker-buildx-plugin, Docker >= 23), or use --copy, which works on any builder; --no-check prints it anyway (e.g. to build it elsewhere)',
    );
    for (const flag of ['--no-check', '--force']) {
      const forced = await execa('node', [CLI, 'dockerfile', 'diff', A, B, flag], { env, reject: false });
      expect(forced.exitCode, forced.stderr).toBe(0);
      expect(forced.stdout).toMatch(/^FROM scratch AS deltaimg-delta$/m);
    }
  });

  it('judges the docker build reading the pipe by its own environment and command line', async () => {
    const tag = images.name('builder-a-to-b');
    const ok = await pipeline(
      `diff ${A} docker-daemon:${B}`,
      `DOCKER_BUILDKIT=1 BUILDKIT_PROGRESS=plain ${DOCKER} build --network=none -t ${tag} -`,
    );
    expect(ok.exitCode, ok.all).toBe(0);
    expect(ok.all).not.toMatch(/deltaimg: (note|error)/); // --network=none seen: no hint
    expect(await imageId(tag)).toMatch(/^sha256:/);

    const classic = await pipeline(`diff ${A} ${B}`, `DOCKER_BUILDKIT=0 ${DOCKER} build --network=none -t ${images.name('never')} -`);
    expect(classic.exitCode).not.toBe(0);
    expect(classic.all).toContain('deltaimg: error: the docker build reading this output runs the classic builder (DOCKER_BUILDKIT=0)');

    const noNetworkFlag = await pipeline(`diff ${A} ${B}`, `DOCKER_BUILDKIT=1 ${DOCKER} build -q -t ${images.name('maybe')} -`);
    if (bridge) expect(noNetworkFlag.all).not.toMatch(/no bridge network/);
    else {
      // The hint comes first, and the build then fails as it says.
      expect(noNetworkFlag.all).toMatch(
        /^deltaimg: note: this Docker engine has no bridge network: build with docker build --network=none \(the build needs no network\), else it fails with "network bridge not found"$/m,
      );
      expect(noNetworkFlag.all).toMatch(/network bridge not found/);
    }
    expect(runtime).toBeTruthy();
  });

  it('the note without a visible build: the --network=none hint on stderr, the Dockerfile on stdout', async () => {
    const r = await execa('node', [CLI, 'dockerfile', 'diff', A, B], { env: { ...process.env, ...DELTAIMG_ENV }, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^FROM scratch AS deltaimg-delta$/m);
    expect(r.stderr).toBe(
      bridge
        ? ''
        : 'deltaimg: note: this Docker engine has no bridge network: build with docker build --network=none (the build needs no network) unless you already do, else it fails with "network bridge not found"',
    );
  });

  it('a docker CLI >= 23 without buildx, BuildKit on: says to install buildx', async (ctx) => {
    const cli = await cliWithoutBuildx();
    if (!cli) ctx.skip(); // needs such a CLI on this machine; the recorded answers are checked above
    const r = await execa('node', [CLI, 'dockerfile', 'diff', A, B], {
      env: { ...process.env, ...DELTAIMG_ENV, DELTAIMG_DOCKER: cli },
      reject: false,
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /^deltaimg: error: docker build here \(.*\) has BuildKit enabled but no buildx component \("BuildKit is enabled but the buildx component is missing"\): install it \(apt-get install docker-buildx-plugin, or docker-buildx on Debian\/Ubuntu\); --no-check prints it anyway/,
    );
    const piped = await pipeline(`diff ${A} ${B}`, `${cli} build --network=none -t ${images.name('never-2')} -`);
    // Without DOCKER_BUILDKIT such a CLI falls back to the legacy builder: named as such.
    expect(piped.all).toMatch(
      /deltaimg: error: the docker build reading this output runs the classic builder \(no buildx component, so the legacy builder\)/,
    );
  });

  it('one image-reference grammar: docker-daemon:NAME and NAME alike; other transports named with what to do', async () => {
    const env = { ...process.env, ...DELTAIMG_ENV };
    const plain = await execa('node', [CLI, 'dockerfile', 'diff', A, B, '--no-check'], { env });
    const prefixed = await execa(
      'node',
      [CLI, 'dockerfile', 'diff', `docker-daemon:${A}`, `docker-daemon:${B}`, '--no-check', '--runtime-image', `docker-daemon:${runtime}`],
      { env },
    );
    expect(prefixed.stdout).toBe(plain.stdout);
    const archive = await execa('node', [CLI, 'dockerfile', 'diff', 'docker-archive:a.tar', B], { env, reject: false });
    expect(archive.exitCode).toBe(2);
    expect(archive.stderr).toBe(
      'deltaimg: error: base image docker-archive:a.tar: dockerfile verbs take images in the local Docker engine (NAME:TAG or docker-daemon:NAME:TAG); docker load it first, or use deltaimg image diff|apply, which read archives and layouts directly',
    );
    const apply = await execa('node', [CLI, 'dockerfile', 'apply', `docker-daemon:${B}`, '--no-check'], { env, reject: false });
    expect(apply.stderr).toMatch(new RegExp(`image ${B.replace(/[/.]/g, '\\$&')} is not a deltaimg delta image`));
    const registry = await execa('node', [CLI, 'dockerfile', 'apply', 'docker://127.0.0.1:5000/app:1-to-2'], { env, reject: false });
    expect(registry.exitCode).toBe(2);
    expect(registry.stderr).toBe(
      'deltaimg: error: delta image docker://127.0.0.1:5000/app:1-to-2: dockerfile verbs take images in the local Docker engine: docker pull 127.0.0.1:5000/app:1-to-2 first, then pass 127.0.0.1:5000/app:1-to-2',
    );
    const empty = await execa('node', [CLI, 'dockerfile', 'apply', 'docker-daemon:'], { env, reject: false });
    expect(empty.exitCode).toBe(2);
    expect(empty.stderr).toMatch(/no image name after docker-daemon:/);
  });
});
