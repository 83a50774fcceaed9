/**
 * `dockerfile apply --layered` on the real engine: the restored image is A's layers (same diff
 * ids) plus one layer holding only B's changed and new entries and whiteouts for removals, and
 * its flattened filesystem, config and behaviour equal B's. Also: deletions and type changes
 * alone, a base the builder would leave mount stand-ins in, a wrong base, the classic builder.
 *
 * The app pair is the one of docker-e2e.test.ts (added, changed, moved, deleted files, hardlinks,
 * a symlink, setuid, security.capability, non-root owners, ns mtimes), on a base that has what
 * every distribution base has and a RUN mounts over: /proc, /sys, /dev, /etc/hosts, /etc/resolv.conf.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notCarriedLine, syncRootInPlace } from '../src/layered/in-place.js';
import { applyDockerfile } from '../src/docker/dockerfile.js';
import type { RelPath } from '../src/tree/entry.js';
import { compareEntries, compareTrees } from '../src/tree/compare.js';
import { scanTree } from '../src/tree/scan.js';
import { inspectImage } from '../src/docker/engine.js';
import { readDeltaImage } from '../src/docker/labels.js';
import { fsext } from '../src/tree/fsext.js';
import {
  buildImage,
  buildStaticProbe,
  describeDocker,
  diffFilesystems,
  docker,
  DOCKER,
  DELTAIMG_ENV,
  ensureRuntimeImage,
  ImageNames,
  imageFilesystem,
  importTree,
  registryAddress,
  REPO_ROOT,
} from './helpers/docker.js';
import { CAP_NET_BIND_SERVICE, makeAppRoot, setMtimesByPath } from './helpers/app-pair.js';
import { cloneTree, makeRichTree, mutateTree, RICH } from './helpers/trees.js';

const CLI = join(REPO_ROOT, 'dist/cli/main.js');
/** The diff id of an empty layer (BuildKit 0.8 commits WORKDIR, and a COPY of nothing, as one). */
const EMPTY_LAYER = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

function deltaimg(args: string[]) {
  return execa('node', [CLI, ...args], { env: DELTAIMG_ENV, reject: false });
}

async function dockerfileFor(args: string[]): Promise<string> {
  const r = await deltaimg(['dockerfile', ...args]);
  expect(r.exitCode, r.stderr).toBe(0);
  return r.stdout;
}

const A_CONFIG = ['ENV PATH=/bin', 'CMD ["/bin/probe", "a"]'];
const B_CONFIG = [
  'ENV PATH=/bin',
  'ENV GREETING="hello from B" SHOW=/etc/app.conf:/app/link:/srv/index.html',
  'WORKDIR /srv',
  'USER 1000:1000',
  'EXPOSE 8080/tcp',
  'LABEL org.example.version="2"',
  'ENTRYPOINT ["/bin/probe", "entry"]',
  'CMD ["b-arg"]',
];

const skipRoot = (p: string) => p === '';

/** Entry names of the image's layer number `index` (0 = bottom), from docker save (whiteouts as stored). */
async function layerNames(ref: string, index: number): Promise<string[]> {
  const save = execa(DOCKER, ['save', ref], { buffer: false, stdout: 'pipe' });
  const names = new Map<string, string[]>();
  let layers: string[] = [];
  const outer = tar.extract();
  const reading = (async () => {
    for await (const member of outer) {
      const name = member.header.name;
      if (name === 'manifest.json') {
        const chunks: Buffer[] = [];
        for await (const c of member as unknown as Readable) chunks.push(c as Buffer);
        layers = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Layers: string[] }[])[0]!.Layers;
      } else if (name.endsWith('layer.tar')) {
        const inner = tar.extract();
        const list: string[] = [];
        (member as unknown as Readable).pipe(inner);
        for await (const e of inner) {
          list.push(posix.normalize(e.header.name).replace(/^\.\//, '').replace(/\/$/, ''));
          e.resume();
        }
        names.set(
          name,
          list.filter((n) => n !== '' && n !== '.'),
        );
      } else member.resume();
    }
  })();
  save.stdout.pipe(outer);
  await Promise.all([reading, save]);
  return (names.get(layers[index]!) ?? []).sort();
}

/**
 * The runtime step alone, on plain directories: `live` starts as a copy of A and must end equal
 * to B (every entry kind, owners, xattrs, hardlink groups), touching nothing B keeps as is.
 */
describe('layer-sync on directories', () => {
  let work = '';
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'deltaimg-layer-sync-'));
    await makeRichTree(join(work, 'a'));
    await cloneTree(join(work, 'a'), join(work, 'b'));
    await mutateTree(join(work, 'b'));
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** A fresh copy of A to edit. */
  async function liveCopy(name: string): Promise<string> {
    const live = join(work, name);
    await cloneTree(join(work, 'a'), live);
    return live;
  }

  it('turns a copy of A into B, leaving what B keeps untouched', async () => {
    const live = await liveCopy('live');
    // Files B keeps exactly as A has them must not be rewritten: same inode afterwards.
    const [scanA, scanB] = await Promise.all([scanTree(join(work, 'a'), { hash: true }), scanTree(join(work, 'b'), { hash: true })]);
    const inB = new Map(scanB.entries.map((e) => [e.path, e]));
    // (A file whose hardlink group changes is rewritten with its whole group, by design.)
    const names = (entries: typeof scanA.entries, p: string) =>
      entries
        .filter((e) => e.kind === 'hardlink' && e.linkTo === p)
        .map((e) => e.path)
        .join();
    const kept = scanA.entries
      .filter(
        (e) =>
          e.kind === 'file' &&
          inB.has(e.path) &&
          compareEntries(e, inB.get(e.path)!).length === 0 &&
          names(scanA.entries, e.path) === names(scanB.entries, e.path),
      )
      .map((e) => e.path);
    expect(kept.length).toBeGreaterThan(10);
    const inodes = (paths: string[]) => paths.map((p) => statSync(Buffer.from(join(live, p), 'latin1')).ino);
    const before = inodes(kept);
    const r = await syncRootInPlace(join(work, 'a'), join(work, 'b'), live, { masked: [] });
    expect(r.written).toBeGreaterThan(0);
    expect(r.removed).toBeGreaterThan(0);
    const [got, want] = await Promise.all([scanTree(live, { hash: true }), scanTree(join(work, 'b'), { hash: true })]);
    // The root directory itself is the builder's in an image: not synced.
    expect(compareTrees(got, want).filter((d) => !d.startsWith('/: '))).toEqual([]);
    expect(inodes(kept)).toEqual(before);
    expect(statSync(join(live, RICH.tool)).ino).not.toBe(statSync(join(work, 'a', RICH.tool)).ino); // edited in B: rewritten
  });

  it('refuses a change under a path the builder mounts over, and a mount point A lacks', async () => {
    const live = await liveCopy('live-masked');
    const changed = (await scanTree(join(work, 'b'))).entries.find((e) => e.kind === 'file' && e.path.startsWith('etc/'));
    expect(changed).toBeDefined();
    await expect(syncRootInPlace(join(work, 'a'), join(work, 'b'), live, { masked: ['etc' as RelPath] })).rejects.toThrow(
      /--layered cannot restore \/etc.*: docker build mounts its own \/etc during RUN/,
    );
    await expect(syncRootInPlace(join(work, 'a'), join(work, 'b'), live, { masked: ['proc' as RelPath] })).rejects.toThrow(
      /--layered needs \/proc in the base image/,
    );
  });

  it("B's changes under /dev (a refreshed base's device nodes) are left as A has them and reported, not refused", async () => {
    const live = await liveCopy('live-dev');
    const r = await syncRootInPlace(join(work, 'a'), join(work, 'b'), live, { masked: ['dev' as RelPath] });
    // mutateTree removes dev/nvme-big and changes dev/sda from 8:0 to 8:16 (the dev directory's mtime too).
    expect(r.notCarried).toHaveLength(1);
    expect(r.notCarried[0]).toMatchObject({ mount: 'dev' });
    expect(r.notCarried[0]!.paths).toBeGreaterThanOrEqual(2);
    expect(statSync(join(live, 'dev/nvme-big')).isCharacterDevice()).toBe(true); // A's, untouched
    expect(notCarriedLine(r.notCarried)).toMatch(
      /^not carried, kept as the base has them: \d+ entries under \/dev \(e\.g\. \/dev\/\S+\); no container sees them: Docker mounts its own \/dev$/,
    );
    expect(r.written).toBeGreaterThan(0); // everything else was carried (and verified equal to B)
  });
});

describeDocker(
  'dockerfile apply --layered',
  () => {
    const images = new ImageNames();
    let work = '';
    let runtime = '';
    let probe = '';
    const A = images.name('layered-a');
    const B = images.name('layered-b');
    const aToB = images.name('layered-a-to-b');

    beforeAll(async () => {
      runtime = await ensureRuntimeImage();
      work = await mkdtemp(join(tmpdir(), 'deltaimg-layered-'));
      probe = join(work, 'probe');
      await buildStaticProbe(probe);
      await makeAppRoot(join(work, 'a'), 'A', probe, { targets: 'all', mtimes: 'by-path' });
      await makeAppRoot(join(work, 'b'), 'B', probe, { targets: 'all', mtimes: 'by-path' });
      await importTree(join(work, 'a'), A, A_CONFIG);
      const bRoot = images.name('layered-b-root');
      await importTree(join(work, 'b'), bRoot);
      expect((await buildImage([`FROM ${bRoot}`, ...B_CONFIG].join('\n'), B)).exitCode).toBe(0);
      const built = await buildImage(await dockerfileFor(['diff', A, B]), aToB);
      expect(built.exitCode, built.all).toBe(0);
    });
    afterAll(async () => {
      await images.removeAll();
      if (work) await rm(work, { recursive: true, force: true });
    });

    /**
     * Restores `target` from `delta` with --layered and checks files, config, behaviour and layers:
     * A's layers by diff id, the layer of changes, the fix-up layer (empty unless A lacks
     * /etc/hosts or /etc/resolv.conf) and WORKDIR's empty layer. Returns the entry names of the
     * layer of changes and of the fix-up layer, and B'.
     */
    async function layeredRoundTrip(
      base: string,
      target: string,
      delta: string,
    ): Promise<{ restored: string; changes: string[]; fixup: string[] }> {
      const restored = images.name(`layered-restored-${Math.random().toString(16).slice(2, 8)}`);
      const built = await buildImage(await dockerfileFor(['apply', delta, '--layered']), restored);
      expect(built.exitCode, built.all).toBe(0);

      const [want, got] = await Promise.all([imageFilesystem(target), imageFilesystem(restored)]);
      expect(diffFilesystems(want, got, skipRoot)).toEqual([]);
      const inspect = (ref: string) => inspectImage(ref, { docker: DOCKER });
      const [a, b, r] = await Promise.all([inspect(base), inspect(target), inspect(restored)]);
      expect(r.config).toEqual(b.config);
      expect(r.layers.slice(0, a.layers.length)).toEqual(a.layers);
      expect(r.layers.length).toBe(a.layers.length + (b.config.WorkingDir ? 3 : 2));
      expect(r.layers[a.layers.length]).not.toBe(EMPTY_LAYER);
      const [wantRun, gotRun] = await Promise.all([target, restored].map((ref) => docker(['run', '--rm', '--network=none', ref])));
      expect(gotRun).toBe(wantRun);
      return { restored, changes: await layerNames(restored, a.layers.length), fixup: await layerNames(restored, a.layers.length + 1) };
    }

    it("restores B as A's layers plus one layer of changes and whiteouts, through a registry", async () => {
      // The receiver has A and pulls A-TO-B (A's layer is already there), then applies --layered.
      const repo = `${registryAddress()}/deltaimg-layered-${randomBytes(3).toString('hex')}`;
      const [remoteA, remoteDelta, remoteRestored] = [
        images.track(`${repo}/app:1`),
        images.track(`${repo}/app:1-to-2`),
        images.track(`${repo}/app:2`),
      ];
      await docker(['tag', A, remoteA]);
      await docker(['tag', aToB, remoteDelta]);
      await docker(['push', remoteA]);
      await docker(['push', remoteDelta]);
      await docker(['rmi', remoteDelta]);
      await docker(['pull', remoteDelta]);

      const { restored, changes: names, fixup } = await layeredRoundTrip(A, B, remoteDelta);
      expect(fixup).toEqual([]);
      // Pushed next to A, B' uploads its own layers only: A's are the same blobs, by digest.
      await docker(['tag', restored, remoteRestored]);
      const pushed = await docker(['push', remoteRestored]);
      expect(pushed.match(/Layer already exists/g)?.length).toBe((await inspectImage(A, { docker: DOCKER })).layers.length);
      // Only what changed: new and changed files, their directories, whiteouts for what B lacks.
      expect(names).toEqual(
        expect.arrayContaining([
          'app/.wh.moveme.dat',
          'app/.wh.old.txt',
          'app/data.bin',
          'app/link',
          'app/new-too.txt',
          'app/new.txt',
          'app/sub/moved.dat',
          'etc/app.conf',
          'etc/other.conf',
          'home/user/secret',
          'srv/index.html',
        ]),
      );
      for (const unchanged of [
        'bin/probe',
        'bin/suid',
        'bin/capped',
        'app/hard1',
        'app/hard2',
        'etc/passwd',
        'etc/hosts',
        'dev',
        'proc',
        'sys',
      ]) {
        expect(names).not.toContain(unchanged);
      }
      const fs = await imageFilesystem(B);
      expect(fs.get('bin/capped')?.xattrs['security.capability']).toBe(CAP_NET_BIND_SERVICE.toString('hex'));
    });

    it('deletions and type changes alone: a directory becomes a file, a file a directory, a tree goes away', async () => {
      const root = join(work, 'c');
      await makeAppRoot(root, 'A', probe, { targets: 'all', mtimes: 'by-path' });
      await rm(join(root, 'app/sub'), { recursive: true });
      await writeFile(join(root, 'app/sub'), 'a file where a directory was\n');
      await rm(join(root, 'etc/app.conf'));
      await mkdir(join(root, 'etc/app.conf'));
      await writeFile(join(root, 'etc/app.conf/inner'), 'a directory where a file was\n');
      await rm(join(root, 'home'), { recursive: true });
      await rm(join(root, 'app/old.txt'));
      // Nodes outside /dev: the RUN makes them itself, so they stay nodes (a COPY would not keep them).
      await mkdir(join(root, 'lib/udev'), { recursive: true });
      fsext().mknod(Buffer.from(join(root, 'lib/udev/null')), 'char', 0o666, 1, 3);
      await chmod(join(root, 'lib/udev/null'), 0o666);
      fsext().mknod(Buffer.from(join(root, 'app/fifo')), 'fifo', 0o640, 0, 0);
      await setMtimesByPath(root);
      const C = images.name('layered-c');
      await importTree(root, C, A_CONFIG);
      const aToC = images.name('layered-a-to-c');
      const built = await buildImage(await dockerfileFor(['diff', A, C]), aToC);
      expect(built.exitCode, built.all).toBe(0);
      const { restored, changes: names } = await layeredRoundTrip(A, C, aToC);
      expect(names).toEqual(
        expect.arrayContaining([
          '.wh.home',
          'app/.wh.old.txt',
          'app/fifo',
          'app/sub',
          'etc/app.conf',
          'etc/app.conf/inner',
          'lib/udev/null',
        ]),
      );
      const fs = await imageFilesystem(restored);
      expect(fs.get('lib/udev/null')).toMatchObject({ type: 'char', linkname: '1:3', mode: 0o666 });
      expect(fs.get('app/fifo')).toMatchObject({ type: 'fifo', mode: 0o640 });
      expect(names).not.toContain('bin/probe');
    });

    it('a base without /etc/hosts and /etc/resolv.conf (like a debootstrap root): the fix-up layer restores /etc', async () => {
      const [rootA, rootB] = [join(work, 'deb-a'), join(work, 'deb-b')];
      await makeAppRoot(rootA, 'A', probe, { targets: 'no-etc-files', mtimes: 'by-path' });
      await makeAppRoot(rootB, 'B', probe, { targets: 'no-etc-files', mtimes: 'by-path' });
      const [debA, debB, delta] = [images.name('layered-deb-a'), images.name('layered-deb-b'), images.name('layered-deb-delta')];
      await importTree(rootA, debA, A_CONFIG);
      await importTree(rootB, debB, A_CONFIG);
      expect((await buildImage(await dockerfileFor(['diff', debA, debB]), delta)).exitCode).toBe(0);
      const { changes, fixup } = await layeredRoundTrip(debA, debB, delta);
      expect(changes).toContain('etc/app.conf');
      expect(fixup).toEqual(['etc']);
    });

    it('a base without the paths a RUN mounts over fails the build with one line', async () => {
      const bare = join(work, 'bare-a');
      const bareB = join(work, 'bare-b');
      await makeAppRoot(bare, 'A', probe, { targets: 'none', mtimes: 'by-path' });
      await makeAppRoot(bareB, 'B', probe, { targets: 'none', mtimes: 'by-path' });
      const [bA, bB, delta] = [images.name('layered-bare-a'), images.name('layered-bare-b'), images.name('layered-bare-delta')];
      await importTree(bare, bA, A_CONFIG);
      await importTree(bareB, bB, A_CONFIG);
      expect((await buildImage(await dockerfileFor(['diff', bA, bB]), delta)).exitCode).toBe(0);
      const r = await buildImage(await dockerfileFor(['apply', delta, '--layered']), images.name('layered-bare-restored'));
      expect(r.exitCode).not.toBe(0);
      expect(r.all).toMatch(/deltaimg: error: --layered needs \/dev in the base image: docker build mounts over it during RUN/);
    });

    it('a base refresh whose /dev entries differ: built, with one line on what was not carried; the summaries say what --layered keeps', async () => {
      const [rootA, rootB] = [join(work, 'dev-a'), join(work, 'dev-b')];
      await makeAppRoot(rootA, 'A', probe, { targets: 'all', mtimes: 'by-path' });
      await makeAppRoot(rootB, 'B', probe, { targets: 'all', mtimes: 'by-path' });
      // As two debootstrap runs differ: a node's mode, a node only the newer has.
      fsext().mknod(Buffer.from(join(rootA, 'dev/null')), 'char', 0o666, 1, 3);
      fsext().mknod(Buffer.from(join(rootB, 'dev/null')), 'char', 0o644, 1, 3);
      fsext().mknod(Buffer.from(join(rootB, 'dev/zero')), 'char', 0o666, 1, 5);
      // mknod's mode goes through the umask.
      await chmod(join(rootA, 'dev/null'), 0o666);
      await chmod(join(rootB, 'dev/null'), 0o644);
      await chmod(join(rootB, 'dev/zero'), 0o666);
      await setMtimesByPath(rootA, 'A');
      await setMtimesByPath(rootB, 'B');
      const [devA, devBRoot, devB, delta] = [
        images.name('layered-dev-a'),
        images.name('layered-dev-b-root'),
        images.name('layered-dev-b'),
        images.name('layered-dev-delta'),
      ];
      await importTree(rootA, devA, A_CONFIG);
      await importTree(rootB, devBRoot);
      expect((await buildImage([`FROM ${devBRoot}`, ...B_CONFIG].join('\n'), devB)).exitCode).toBe(0);
      expect((await buildImage(await dockerfileFor(['diff', devA, devB]), delta)).exitCode).toBe(0);

      const flat = await deltaimg(['dockerfile', 'apply', delta]);
      expect(flat.stderr).toMatch(
        /^deltaimg: note: B' is one flattened layer of [\d.]+ [KM]iB \(all of B\), stored beside .*layered-dev-a:1's [\d.]+ [KM]iB on disk and in a registry; --layered would keep those [\d.]+ [KM]iB of .*layered-dev-a:1's layers shared and add only the changed files$/m,
      );
      const layeredPlan = await deltaimg(['dockerfile', 'apply', delta, '--layered']);
      expect(layeredPlan.exitCode, layeredPlan.stderr).toBe(0);
      expect(layeredPlan.stderr).toMatch(
        /^deltaimg: note: B' is .*layered-dev-a:1's layers \([\d.]+ [KM]iB, shared, stored once\) plus one layer of what B changes$/m,
      );

      const restored = images.name('layered-dev-restored');
      const built = await buildImage(layeredPlan.stdout, restored);
      expect(built.exitCode, built.all).toBe(0);
      expect(built.all).toMatch(
        /deltaimg: not carried, kept as the base has them: \d+ entries under \/dev \(e\.g\. \/dev\/\S+\); no container sees them: Docker mounts its own \/dev/,
      );
      const [want, got, base] = await Promise.all([imageFilesystem(devB), imageFilesystem(restored), imageFilesystem(devA)]);
      const underDev = (p: string) => p === 'dev' || p.startsWith('dev/');
      expect(diffFilesystems(want, got, (p) => skipRoot(p) || underDev(p))).toEqual([]);
      expect(got.get('dev/null')).toEqual(base.get('dev/null'));
      expect(got.has('dev/zero')).toBe(false);
      const [wantRun, gotRun] = await Promise.all([devB, restored].map((ref) => docker(['run', '--rm', '--network=none', ref])));
      expect(gotRun).toBe(wantRun);
    });

    it('a wrong base is refused up front, and fails the build when forced', async () => {
      const refused = await deltaimg(['dockerfile', 'apply', aToB, '--layered', '--unlinked-source', B]);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toMatch(/but delta image .* was made from .*layered-a:1 = sha256:/);

      const meta = readDeltaImage(await inspectImage(aToB, { docker: DOCKER }));
      const forced = applyDockerfile({
        deltaImage: aToB,
        meta,
        runtimeImage: runtime,
        unlinkedSource: B,
        toolVersion: 'test',
        layered: { baseImage: B, runAsRoot: true },
      });
      const r = await buildImage(forced, images.name('layered-wrong-base'));
      expect(r.exitCode).not.toBe(0);
      expect(r.all).toMatch(/deltaimg: error: /);
    });

    it('the classic builder stops at RUN --mount, for --layered as for the other modes', async () => {
      const df = await dockerfileFor(['apply', aToB, '--layered']);
      const r = await execa(DOCKER, ['build', '--network=none', '-t', images.name('layered-classic'), '-'], {
        env: { DOCKER_BUILDKIT: '0' },
        input: df,
        reject: false,
        all: true,
      });
      expect(r.exitCode).not.toBe(0);
      expect(r.all).toMatch(/the --mount option requires BuildKit/);
      // Which deltaimg says before printing, when the build would run in its environment.
      const refused = await execa('node', [CLI, 'dockerfile', 'apply', aToB, '--layered'], {
        env: { ...DELTAIMG_ENV, DOCKER_BUILDKIT: '0' },
        reject: false,
      });
      expect(refused.exitCode).toBe(1);
      expect(refused.stdout).toBe('');
      expect(refused.stderr).toMatch(/^deltaimg: error: docker build here \(.*\) runs the classic builder \(DOCKER_BUILDKIT=0\)/);
    });
  },
  { needsRegistry: true },
);
