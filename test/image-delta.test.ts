/**
 * `deltaimg image diff|apply|verify` on real `docker save` archives made by the engine:
 * the restored archive loads as B's exact image id and runs as B; damaged, truncated,
 * newer-format and wrong-base inputs are refused in one line and leave nothing behind.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayWithZlibLevel } from '../src/deflate/index.js';
import {
  buildImage,
  buildStaticProbe,
  describeDocker,
  diffFilesystems,
  docker,
  DOCKER,
  imageFilesystem,
  imageId,
  ImageNames,
  importTree,
  REPO_ROOT,
} from './helpers/docker.js';
import { cloneTree, makeRichTree, mutateTree } from './helpers/trees.js';

const CLI = join(REPO_ROOT, 'dist/cli/main.js');

function deltaimg(args: string[]) {
  return execa('node', [CLI, ...args], { env: { DELTAIMG_DOCKER: DOCKER }, reject: false });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

describe("version-1 deltas' gzip replay (Node's zlib at a recorded level) still applies", () => {
  // Text with structure but few long repeats, so zlib's levels produce different streams.
  const tarBytes = Buffer.concat([
    Buffer.from(
      Array.from(
        { length: 6000 },
        (_, i) =>
          `${i}:${(i * 2654435761) % 1000003} ${createHash('md5')
            .update(String(i % 97))
            .digest('hex')
            .slice(0, i % 13)}\n`,
      ).join(''),
    ),
    Buffer.alloc(4096),
  ]);

  it('reproduces a zlib-made blob from its header and level byte for byte', async () => {
    for (const level of [1, 6, 9]) {
      const gz = gzipSync(tarBytes, { level });
      const chunks: Buffer[] = [];
      for await (const c of replayWithZlibLevel(gz.subarray(0, 10).toString('hex'), level, Readable.from([tarBytes])))
        chunks.push(c as Buffer);
      expect(sha256(Buffer.concat(chunks))).toBe(sha256(gz));
    }
  });
});

describeDocker('image archives: diff, apply, verify', () => {
  const images = new ImageNames();
  let work: string;
  let A: string;
  let B: string;
  let C: string;
  let aTar: string;
  let bTar: string;
  let cTar: string;
  let bId: string;
  let cId: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'deltaimg-image-test-'));
    const probe = join(work, 'probe');
    await buildStaticProbe(probe);
    const rootA = join(work, 'rootA');
    await makeRichTree(rootA);
    await copyFile(probe, join(rootA, 'usr/bin/probe'));
    const rootB = join(work, 'rootB');
    await cloneTree(rootA, rootB);
    await mutateTree(rootB);
    A = images.name('image-a');
    B = images.name('image-b');
    C = images.name('image-c');
    await importTree(rootA, A);
    await importTree(rootB, B, ['ENV GREETING=hello_from_B', 'CMD ["/usr/bin/probe", "b-arg"]']);
    // C shares A's layer and adds two of its own.
    const ctx = join(work, 'ctx');
    await mkdir(join(ctx, 'extra'), { recursive: true });
    await writeFile(join(ctx, 'extra/data.bin'), createHash('sha256').update('c').digest().toString('hex').repeat(4000));
    await copyFile(join(rootA, 'etc/old.conf'), join(ctx, 'extra/old.conf'));
    const built = await buildImage(
      `FROM ${A}\nCOPY extra /opt/extra\nCOPY extra/old.conf /etc/old.conf\nENV GREETING="hello from C"\n`,
      C,
      [],
      ctx,
    );
    expect(built.exitCode, built.all).toBe(0);
    [bId, cId] = await Promise.all([imageId(B), imageId(C)]);
    aTar = join(work, 'a.tar');
    bTar = join(work, 'b.tar');
    cTar = join(work, 'c.tar');
    await Promise.all([docker(['save', '-o', aTar, A]), docker(['save', '-o', bTar, B]), docker(['save', '-o', cTar, C])]);
  }, 240_000);

  afterAll(async () => {
    await images.removeAll();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('restores B (no shared layers) with its exact image id, loads and runs as B', async () => {
    const dimg = join(work, 'a-to-b.dimg');
    const diff = await deltaimg(['image', 'diff', `docker-archive:${aTar}`, `docker-archive:${bTar}`, '-o', dimg, '--json']);
    expect(diff.exitCode, diff.stderr).toBe(0);
    const report = JSON.parse(diff.stdout) as { bytes: number; newLayerBytes: number; rebuiltLayers: number; sharedLayers: number };
    expect(report).toMatchObject({ rebuiltLayers: 1, sharedLayers: 0 });
    expect(report.bytes).toBe((await stat(dimg)).size);
    // A real delta, not the layer shipped again: far smaller than B's layer.
    expect(report.bytes * 5).toBeLessThan(report.newLayerBytes);

    const out = join(work, 'b-restored.tar');
    const apply = await deltaimg(['image', 'apply', `docker-archive:${aTar}`, dimg, '-o', `docker-archive:${out}`, '--json']);
    expect(apply.exitCode, apply.stderr).toBe(0);
    expect(JSON.parse(apply.stdout)).toMatchObject({ verified: true, images: [{ configDigest: bId }] });

    const verify = await deltaimg(['image', 'verify', `docker-archive:${out}`, '--against', dimg]);
    expect(verify.exitCode, verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`exactly the expected image ${bId}`);

    const bFs = await imageFilesystem(B);
    await docker(['rmi', B]);
    await docker(['load', '-i', out]);
    expect(await imageId(B)).toBe(bId);
    expect(diffFilesystems(bFs, await imageFilesystem(B))).toEqual([]);
    const run = await docker(['run', '--rm', '--network=none', B]);
    expect(run).toContain('greeting=hello_from_B argv: b-arg');
  }, 240_000);

  it('references the layer C shares with A and rebuilds the rest, through the engine (docker-daemon)', async () => {
    const dimg = join(work, 'a-to-c.dimg');
    const diff = await deltaimg(['image', 'diff', `docker-daemon:${A}`, `docker-daemon:${C}`, '-o', dimg, '--json']);
    expect(diff.exitCode, diff.stderr).toBe(0);
    expect(JSON.parse(diff.stdout)).toMatchObject({ rebuiltLayers: 2, sharedLayers: 1 });

    await docker(['rmi', C]);
    const apply = await deltaimg(['image', 'apply', `docker-archive:${aTar}`, dimg, '-o', `docker-daemon:${C}`]);
    expect(apply.exitCode, apply.stderr).toBe(0);
    expect(await imageId(C)).toBe(cId);
    expect(await docker(['run', '--rm', '--network=none', C, '/usr/bin/probe'])).toContain('greeting=hello from C');

    const inspect = await deltaimg(['image', 'inspect', dimg]);
    expect(inspect.exitCode, inspect.stderr).toBe(0);
    expect(inspect.stdout).toContain('shared with the base');
  }, 240_000);

  describe('refusals', () => {
    let dimg: string;
    beforeAll(async () => {
      dimg = join(work, 'refusals.dimg');
      const r = await deltaimg(['image', 'diff', `docker-archive:${aTar}`, `docker-archive:${cTar}`, '-o', dimg, '-q']);
      expect(r.exitCode, r.stderr).toBe(0);
    }, 120_000);

    async function expectRefused(base: string, file: string, pattern: RegExp): Promise<void> {
      const out = join(work, `refused-${Math.random().toString(36).slice(2)}.tar`);
      const r = await deltaimg(['image', 'apply', `docker-archive:${base}`, file, '-o', `docker-archive:${out}`]);
      expect(r.exitCode, r.stderr).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
      expect(await exists(out)).toBe(false);
    }

    it('refuses the wrong base', async () => {
      await expectRefused(bTar, dimg, /made against base image sha256:[0-9a-f]{64}.*pass the image the delta was made from/);
    });

    it('refuses a truncated .dimg', async () => {
      const cut = join(work, 'cut.dimg');
      await copyFile(dimg, cut);
      await truncate(cut, Math.floor((await stat(cut)).size / 2));
      await expectRefused(aTar, cut, /cut\.dimg is damaged/);
    });

    it('refuses a .dimg with a flipped byte', async () => {
      const bytes = await readFile(dimg);
      // Past the header member, inside the members' data (the end is tar padding, which holds no data).
      const at = Math.floor(bytes.length * 0.6);
      bytes[at] = bytes[at]! ^ 0x55;
      const bad = join(work, 'flipped.dimg');
      await writeFile(bad, bytes);
      await expectRefused(aTar, bad, /flipped\.dimg is damaged/);
    });

    it('refuses a newer format with an upgrade message', async () => {
      const header = {
        format: 'deltaimg-image',
        version: 3,
        minReaderVersion: 3,
        tool: 'deltaimg 9.0.0',
        images: [],
        layers: [],
        members: [],
      };
      const pack = tar.pack();
      pack.entry({ name: 'dimg.json' }, JSON.stringify(header));
      pack.finalize();
      const chunks: Buffer[] = [];
      for await (const c of pack) chunks.push(c as Buffer);
      const newer = join(work, 'newer.dimg');
      await writeFile(newer, Buffer.concat(chunks));
      await expectRefused(aTar, newer, /format v3 .*upgrade deltaimg/);
    });

    it('verify reports an archive that is not the expected image', async () => {
      const r = await deltaimg(['image', 'verify', `docker-archive:${bTar}`, '--against', dimg]);
      expect(r.exitCode).not.toBe(0);
      expect(r.stdout).toMatch(/not the expected/);
    });
  });
});
