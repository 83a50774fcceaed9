/**
 * The runtime image (deltaimg/runtime:<version>): self-contained under /opt/deltaimg, it runs
 * with no shell and no libc from the base — in a FROM scratch stage, on an imported base made
 * of a few static files, and on a base whose own loader and libc are garbage.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  buildImage,
  buildStaticProbe,
  describeDocker,
  docker,
  ImageNames,
  imageFilesystem,
  importTree,
  ensureRuntimeImage,
} from './helpers/docker.js';
import { toolVersion } from '../src/cli/version.js';

describeDocker('runtime image', () => {
  const images = new ImageNames();
  let runtime = '';
  let work = '';

  beforeAll(async () => {
    runtime = await ensureRuntimeImage();
    work = await mkdtemp(join(tmpdir(), 'deltaimg-runtime-test-'));
  });
  afterAll(async () => {
    await images.removeAll();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('holds only /opt/deltaimg and runs --version as its entrypoint', async () => {
    expect(await docker(['run', '--rm', '--network=none', runtime, '--version'])).toBe(toolVersion());
    const fs = await imageFilesystem(runtime);
    const outside = [...fs.keys()].filter((p) => p !== '' && p !== 'opt' && !p.startsWith('opt/deltaimg'));
    expect(outside).toEqual([]);
    for (const must of [
      'opt/deltaimg/deltaimg',
      'opt/deltaimg/bin/node',
      'opt/deltaimg/lib/ld-linux-x86-64.so.2',
      'opt/deltaimg/lib/libc.so.6',
      'opt/deltaimg/dist/cli/main.js',
      'opt/deltaimg/wasm/xdelta3.wasm',
      'opt/deltaimg/prebuilds/linux-x64/fsext.node',
    ]) {
      expect(fs.get(must)?.type, must).toBe('file');
    }
    // Production dependencies only.
    expect(fs.has('opt/deltaimg/node_modules/commander')).toBe(true);
    expect(fs.has('opt/deltaimg/node_modules/vitest')).toBe(false);
    expect(fs.has('opt/deltaimg/node_modules/typescript')).toBe(false);
    const size = Number(await docker(['image', 'inspect', '--format', '{{.Size}}', runtime]));
    console.log(`runtime image ${runtime}: ${(size / 2 ** 20).toFixed(1)} MiB`);
    expect(size).toBeLessThan(160 * 2 ** 20);
  });

  it('runs in a FROM scratch stage with no shell', async () => {
    const tag = images.name('runtime-in-scratch');
    const r = await buildImage(
      [`FROM scratch`, `COPY --from=${runtime} /opt/deltaimg /opt/deltaimg`, `RUN ["/opt/deltaimg/deltaimg", "--version"]`].join('\n'),
      tag,
      ['--no-cache'],
    );
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all).toContain(toolVersion());
  });

  it('ignores the base image libc: a base of static files, and one whose loader and libc are garbage', async () => {
    const tree = join(work, 'base');
    await mkdir(join(tree, 'bin'), { recursive: true });
    await mkdir(join(tree, 'lib64'), { recursive: true });
    await mkdir(join(tree, 'lib/x86_64-linux-gnu'), { recursive: true });
    await mkdir(join(tree, 'etc'), { recursive: true });
    await buildStaticProbe(join(tree, 'bin/probe'));
    await writeFile(join(tree, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/probe\n');
    // A foreign "libc": if anything in the runtime used the base's loader or libraries, it would crash.
    await writeFile(join(tree, 'lib64/ld-linux-x86-64.so.2'), 'not an ELF file\n');
    await writeFile(join(tree, 'lib/x86_64-linux-gnu/libc.so.6'), 'not an ELF file\n');
    const base = images.track(
      await importTree(tree, images.name('static-base'), ['ENV LD_LIBRARY_PATH=/lib/x86_64-linux-gnu']).then(() =>
        images.name('static-base'),
      ),
    );
    expect(await docker(['run', '--rm', '--network=none', base, '/bin/probe', 'hi'])).toContain('argv: hi');

    const tag = images.name('runtime-on-static-base');
    const r = await buildImage(
      [`FROM ${base}`, `COPY --from=${runtime} /opt/deltaimg /opt/deltaimg`, `RUN ["/opt/deltaimg/deltaimg", "--version"]`].join('\n'),
      tag,
      ['--no-cache'],
    );
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all).toContain(toolVersion());
    expect(await docker(['run', '--rm', '--network=none', '--entrypoint', '/opt/deltaimg/deltaimg', tag, '--version'])).toBe(toolVersion());
  });
});
