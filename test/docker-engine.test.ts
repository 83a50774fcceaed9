/**
 * src/docker against the real engine: typed inspect, the errors a user sees, and the config
 * instructions built by the real builder and read back byte for byte (quoting, durations).
 */
import { afterAll, expect, it } from 'vitest';
import { configInstructions } from '../src/docker/config-instructions.js';
import { imageExists, inspectImage, lookupImage } from '../src/docker/engine.js';
import type { ImageConfig } from '../src/docker/image.js';
import { DeltaimgError } from '../src/util/errors.js';
import { buildImage, describeDocker, DOCKER, ImageNames } from './helpers/docker.js';

const engine = { docker: DOCKER };

/** Every restorable field, with the characters that need care in a Dockerfile. */
const TRICKY: ImageConfig = {
  Env: ['PATH=/opt/bin:/bin', 'EMPTY=', 'Q=a "b" \'c\' \\d $e ${f} `g` ünï ☃', 'SPACES=  lead and trail  '],
  Entrypoint: ['/bin/entry', '--flag=$NOT_EXPANDED', 'a "q"'],
  Cmd: ['arg with spaces', '\\back'],
  WorkingDir: '/srv/my app',
  User: '1000:1000',
  ExposedPorts: { '53/udp': {}, '8080/tcp': {} },
  Volumes: { '/data': {}, '/var/log/my app': {} },
  Labels: { 'org.example.title': 'it\'s "quoted" $HOME \\ ok', plain: 'x', 'with space key': 'v' },
  StopSignal: 'SIGQUIT',
  Healthcheck: { Test: ['CMD-SHELL', '/bin/probe --health || exit 1'], Interval: 30e9, Timeout: 1.5e9, StartPeriod: 2e9, Retries: 4 },
  Shell: ['/bin/ash', '-eo', 'pipefail', '-c'],
  OnBuild: ['RUN echo "built on top"'],
};

describeDocker('docker engine module', () => {
  const images = new ImageNames();
  afterAll(() => images.removeAll());

  it('config instructions built by the real builder give back the same config', async () => {
    const tag = images.name('config-roundtrip');
    const r = await buildImage(['FROM scratch', ...configInstructions(TRICKY)].join('\n'), tag);
    expect(r.exitCode, r.all).toBe(0);
    const info = await inspectImage(tag, engine);
    expect(info.config).toEqual(TRICKY);
    expect(info.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(info.ref).toBe(tag);
  });

  it('a FROM scratch image gets the builder defaults PATH and WorkingDir "/" when the config has none', async () => {
    // Known, documented difference: a restored image whose original had no PATH / WorkingDir shows these.
    const tag = images.name('config-defaults');
    const r = await buildImage('FROM scratch\nCMD ["/x"]\n', tag);
    expect(r.exitCode, r.all).toBe(0);
    expect((await inspectImage(tag, engine)).config).toEqual({
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      WorkingDir: '/',
      Cmd: ['/x'],
    });
  });

  it('tells a missing image from an unreachable engine', async () => {
    expect(await imageExists('deltaimg-test/absent:1', engine)).toBe(false);
    expect(await lookupImage('deltaimg-test/absent:1', engine)).toEqual({ found: false });
    await expect(inspectImage('deltaimg-test/absent:1', engine)).rejects.toThrow(
      'image deltaimg-test/absent:1 is not in the local Docker engine: docker pull deltaimg-test/absent:1 (or docker load -i FILE.tar) first',
    );

    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
    try {
      const err = await inspectImage('any:1', engine).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeltaimgError);
      expect((err as DeltaimgError).code).toBe('DOCKER');
      expect((err as Error).message).toMatch(
        /^the Docker engine is not reachable \(.*nonexistent\/docker\.sock.*\); start dockerd or set DOCKER_HOST$/,
      );
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
    await expect(inspectImage('any:1', { docker: '/nonexistent/docker' })).rejects.toThrow(
      'cannot run /nonexistent/docker: not found; install the Docker CLI or set DELTAIMG_DOCKER to its path',
    );
  });
});
