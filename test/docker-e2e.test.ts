/**
 * The Docker workflow end to end, on the real engine and a loopback registry, with images made
 * here (docker import of trees built by the test; nothing is pulled from outside):
 *
 *   dockerfile diff A B | docker build  ->  push A and A-TO-B  ->  remove them  ->  pull
 *   ->  dockerfile apply A-TO-B | docker build  ->  B'  ==  B   (every path and the config)
 *
 * and the same with --unlinked through docker save / docker load; a wrong base and a damaged
 * delta make the build fail loudly.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { applyDockerfile } from '../src/docker/dockerfile.js';
import { pickConfig } from '../src/docker/image.js';
import { inspectImage } from '../src/docker/engine.js';
import { LABELS, readDeltaImage } from '../src/docker/labels.js';
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
  type FsEntry,
} from './helpers/docker.js';
import { bytes, CAP_NET_BIND_SERVICE, makeAppRoot, setMtimesInOrder } from './helpers/app-pair.js';

const CLI = join(REPO_ROOT, 'dist/cli/main.js');

/** `deltaimg ARGS` from dist/, against the test engine. */
function deltaimg(args: string[]) {
  return execa('node', [CLI, ...args], { env: DELTAIMG_ENV, reject: false });
}

async function dockerfileFor(args: string[]): Promise<string> {
  const r = await deltaimg(['dockerfile', ...args]);
  expect(r.exitCode, r.stderr).toBe(0);
  return r.stdout;
}

/** B's config: every field a Dockerfile can set, with values that need quoting. */
const B_CONFIG = [
  'ENV PATH=/bin',
  'ENV GREETING="hello from B" SHOW=/etc/app.conf:/app/link:/srv/index.html',
  'ENV TRICKY="a \\"quoted\\" \\$dollar and \\\\ backslash"',
  'WORKDIR /srv',
  'USER 1000:1000',
  'EXPOSE 8080/tcp 53/udp',
  'VOLUME ["/data"]',
  'LABEL org.example.version="2" org.example.note="it\'s \\"B\\""',
  'STOPSIGNAL SIGINT',
  'HEALTHCHECK --interval=30s --retries=2 CMD ["/bin/probe", "health"]',
  'ENTRYPOINT ["/bin/probe", "entry"]',
  'CMD ["b-arg"]',
];

/** The paths the comparison leaves out: "/" itself (the builder makes it) — nothing else. */
const skipRoot = (p: string) => p === '';

describeDocker(
  'Docker workflow end to end',
  () => {
    const images = new ImageNames();
    let work = '';
    let runtime = '';
    const A = images.name('app-a');
    const B = images.name('app-b');
    let bFs: Map<string, FsEntry>;

    beforeAll(async () => {
      runtime = await ensureRuntimeImage();
      work = await mkdtemp(join(tmpdir(), 'deltaimg-e2e-'));
      const probe = join(work, 'probe');
      await buildStaticProbe(probe);
      await makeAppRoot(join(work, 'a'), 'A', probe);
      await makeAppRoot(join(work, 'b'), 'B', probe);
      await importTree(join(work, 'a'), A, ['ENV PATH=/bin', 'CMD ["/bin/probe", "a"]']);
      const bRoot = images.name('app-b-root');
      await importTree(join(work, 'b'), bRoot);
      const built = await buildImage([`FROM ${bRoot}`, ...B_CONFIG].join('\n'), B);
      expect(built.exitCode, built.all).toBe(0);
      bFs = await imageFilesystem(B);
    });
    afterAll(async () => {
      await images.removeAll();
      if (work) await rm(work, { recursive: true, force: true });
    });

    /** B' against B: every path (type, bytes, mode, owner, mtime, xattrs, link target, hardlinks), the config, a run. */
    async function expectSameAsB(restored: string): Promise<void> {
      const fs = await imageFilesystem(restored);
      expect(diffFilesystems(bFs, fs, skipRoot)).toEqual([]);
      // The comparison is not vacuous: the odd entries are there with their metadata.
      expect(fs.get('bin/suid')).toMatchObject({ mode: 0o4755, uid: 1000, gid: 1000 });
      expect(fs.get('bin/capped')?.xattrs['security.capability']).toBe(CAP_NET_BIND_SERVICE.toString('hex'));
      expect(fs.get('app/new.txt')?.hardlinks).toEqual(['app/new-too.txt', 'app/new.txt']);
      expect(fs.get('app/link')).toMatchObject({ type: 'symlink', linkname: '../etc/other.conf' });
      expect(fs.get('srv')).toMatchObject({ mode: 0o2775, uid: 33, gid: 33, mtime: bFs.get('srv')!.mtime });
      expect(fs.has('app/old.txt')).toBe(false);
      expect(fs.has('__delta__')).toBe(false);

      const [want, got] = await Promise.all([inspectImage(B, { docker: DOCKER }), inspectImage(restored, { docker: DOCKER })]);
      expect(got.config).toEqual(want.config);
      expect(pickConfig(got.config as Record<string, unknown>).Labels).toEqual({
        'org.example.version': '2',
        'org.example.note': 'it\'s "B"',
      });

      const run = (ref: string) => docker(['run', '--rm', '--network=none', ref]);
      const [wantOut, gotOut] = await Promise.all([run(B), run(restored)]);
      expect(gotOut).toBe(wantOut);
      expect(gotOut).toContain('probe uid=1000 gid=1000 cwd=/srv greeting=hello from B argv: entry b-arg');
      expect(gotOut).toContain('/app/link: other config');
    }

    it('diff -> push -> pull -> apply restores B exactly', async () => {
      const aToB = images.name('app-a-to-b');
      const df = await dockerfileFor(['diff', A, B]);
      const built = await buildImage(df, aToB);
      expect(built.exitCode, built.all).toBe(0);
      // The runtime's progress lines, in BuildKit's plain log.
      expect(built.all).toMatch(/^#\d+ [\d.]+ deltaimg: diff +\d+\/\d+ /m);

      const [a, delta, b] = await Promise.all([
        inspectImage(A, { docker: DOCKER }),
        inspectImage(aToB, { docker: DOCKER }),
        inspectImage(B, { docker: DOCKER }),
      ]);
      expect(delta.layers.slice(0, -1)).toEqual(a.layers); // FROM A plus one layer
      expect(delta.layers).toHaveLength(a.layers.length + 1);
      const meta = readDeltaImage(delta);
      expect(meta).toMatchObject({ linked: true, base: { id: a.id }, target: { id: b.id } });
      const sizes = await Promise.all([A, aToB, B].map((r) => docker(['image', 'inspect', '--format', '{{.Size}}', r]).then(Number)));
      console.log(`e2e sizes: A ${sizes[0]} B, B ${sizes[2]} B, delta layer ${sizes[1]! - sizes[0]!} B`);
      expect(sizes[1]! - sizes[0]!).toBeLessThan(sizes[2]! / 4);

      // Through the registry: the receiver has A, pulls A-TO-B (A's layer is already there), applies.
      const repo = `${registryAddress()}/deltaimg-e2e-${randomBytes(3).toString('hex')}`;
      const [remoteA, remoteDelta] = [images.track(`${repo}/app:1`), images.track(`${repo}/app:1-to-2`)];
      await docker(['tag', A, remoteA]);
      await docker(['tag', aToB, remoteDelta]);
      await docker(['push', remoteA]);
      await docker(['push', remoteDelta]);
      await docker(['rmi', remoteA, remoteDelta, aToB]);
      await docker(['pull', remoteA]);
      const pulled = await docker(['pull', remoteDelta]);
      expect(pulled).toMatch(/Already exists/);

      const restored = images.name('app-b-restored');
      const applyDf = await dockerfileFor(['apply', remoteDelta]);
      const applied = await buildImage(applyDf, restored);
      expect(applied.exitCode, applied.all).toBe(0);
      await expectSameAsB(restored);
    });

    it('--unlinked through docker save / docker load, applied with --unlinked-source', async () => {
      const alone = images.name('app-a-to-b-alone');
      const built = await buildImage(await dockerfileFor(['diff', A, B, '--unlinked']), alone);
      expect(built.exitCode, built.all).toBe(0);
      const info = await inspectImage(alone, { docker: DOCKER });
      expect(info.layers).toHaveLength(1); // the delta alone
      expect(readDeltaImage(info).linked).toBe(false);

      const archive = join(work, 'alone.tar');
      await docker(['save', '-o', archive, alone]);
      await docker(['rmi', alone]);
      await docker(['load', '-i', archive]);

      const noSource = await deltaimg(['dockerfile', 'apply', alone]);
      expect(noSource.exitCode).toBe(2);
      expect(noSource.stderr).toMatch(/built with --unlinked: pass --unlinked-source with its base/);

      const restored = images.name('app-b-restored-alone');
      const applied = await buildImage(await dockerfileFor(['apply', alone, '--unlinked-source', A]), restored);
      expect(applied.exitCode, applied.all).toBe(0);
      await expectSameAsB(restored);
    });

    it('a wrong base is refused up front, and fails the build when forced', async () => {
      const alone = images.name('app-a-to-b-alone');
      const refused = await deltaimg(['dockerfile', 'apply', alone, '--unlinked-source', B]);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toMatch(/but delta image .* was made from .*app-a:1 = sha256:/);

      // The same Dockerfile the check prevents, built anyway: deltaimg's source check stops it in the build.
      const meta = readDeltaImage(await inspectImage(alone, { docker: DOCKER }));
      const forced = applyDockerfile({ deltaImage: alone, meta, runtimeImage: runtime, unlinkedSource: B, toolVersion: 'test' });
      const r = await buildImage(forced, images.name('wrong-base'));
      expect(r.exitCode).not.toBe(0);
      expect(r.all).toMatch(/deltaimg: error: /);
    });

    it('a damaged delta fails the build loudly', async () => {
      const aToB = images.name('app-a-to-b-2');
      expect((await buildImage(await dockerfileFor(['diff', A, B]), aToB)).exitCode).toBe(0);
      const fs = await imageFilesystem(aToB);
      const blobs = [...fs.entries()]
        .filter(([p, e]) => p.startsWith('__delta__/blobs/') && e.type === 'file')
        .sort(([, x], [, y]) => y.size - x.size);
      expect(blobs.length).toBeGreaterThan(0);
      const [victim, entry] = blobs[0]!;
      const context = join(work, 'damage');
      await mkdir(context, { recursive: true });
      await writeFile(join(context, 'garbage'), bytes(entry.size, 'garbage'));
      const damaged = images.name('app-a-to-b-damaged');
      const dmg = await buildImage(`FROM ${aToB}\nCOPY garbage /${victim}\n`, damaged, [], context);
      expect(dmg.exitCode, dmg.all).toBe(0);
      expect((await inspectImage(damaged, { docker: DOCKER })).config.Labels?.[LABELS.version]).toBe('1');

      const r = await buildImage(await dockerfileFor(['apply', damaged]), images.name('from-damaged'));
      expect(r.exitCode).not.toBe(0);
      expect(r.all).toMatch(/deltaimg: error: /);
    });

    it('device nodes and FIFOs: everything else matches; the final COPY turns nodes into empty files and drops FIFOs (documented Docker limit)', async () => {
      const root = join(work, 'with-nodes');
      await mkdir(join(root, 'dev'), { recursive: true });
      await mkdir(join(root, 'bin'), { recursive: true });
      await copyFile(join(work, 'probe'), join(root, 'bin/probe'));
      fsext().mknod(Buffer.from(join(root, 'dev/null')), 'char', 0o666, 1, 3);
      fsext().mknod(Buffer.from(join(root, 'dev/fifo')), 'fifo', 0o644, 0, 0);
      await setMtimesInOrder(root);
      const withNodes = images.name('app-with-nodes');
      await importTree(root, withNodes, ['ENV PATH=/bin', 'WORKDIR /', 'CMD ["/bin/probe"]']);
      const delta = images.name('app-a-to-nodes');
      expect((await buildImage(await dockerfileFor(['diff', A, withNodes]), delta)).exitCode).toBe(0);
      const restored = images.name('app-nodes-restored');
      const applied = await buildImage(await dockerfileFor(['apply', delta]), restored);
      expect(applied.exitCode, applied.all).toBe(0);

      const [want, got] = await Promise.all([imageFilesystem(withNodes), imageFilesystem(restored)]);
      const odd = (p: string) => p === 'dev/null' || p === 'dev/fifo';
      expect(diffFilesystems(want, got, (p) => skipRoot(p) || odd(p))).toEqual([]);
      expect(want.get('dev/null')).toMatchObject({ type: 'char', linkname: '1:3' });
      expect(want.get('dev/fifo')?.type).toBe('fifo');
      // BuildKit's COPY (the only way into a FROM scratch image) turns the node into an empty file
      // and drops the FIFO. Containers never see it: Docker mounts its own /dev.
      expect(got.get('dev/null')).toMatchObject({ type: 'file', size: 0, mode: want.get('dev/null')!.mode, uid: 0 });
      expect(got.has('dev/fifo')).toBe(false);
    });

    it('inspect reads a delta image (docker-daemon:NAME or NAME) and a .dimg; compressed sizes match what the registry stores', async () => {
      const aToB = images.name('app-a-to-b-inspect');
      expect((await buildImage(await dockerfileFor(['diff', A, B]), aToB)).exitCode).toBe(0);
      const [byDaemon, byName] = await Promise.all([
        deltaimg(['inspect', `docker-daemon:${aToB}`, '--json']),
        deltaimg(['inspect', aToB, '--json']),
      ]);
      expect(byDaemon.exitCode, byDaemon.stderr).toBe(0);
      expect(byName.stdout).toBe(byDaemon.stdout.replace(`"image": "docker-daemon:${aToB}"`, `"image": "${aToB}"`));
      const report = JSON.parse(byDaemon.stdout) as { transfer: Record<string, number>; deltaImage: { linked: boolean }; entries: number };
      expect(report.deltaImage.linked).toBe(true);
      expect(report.entries).toBe(bFs.size);
      const t = report.transfer;
      expect(t.savingCompressed).toBeLessThan(t.savingUncompressed!); // the uncompressed saving overstates it

      // What the registry really stores: push both, read the layer sizes from the manifests.
      const repo = `deltaimg-inspect-${randomBytes(3).toString('hex')}`;
      const layerSizes = async (local: string, name: string): Promise<number[]> => {
        const remote = images.track(`${registryAddress()}/${repo}/${name}:1`);
        await docker(['tag', local, remote]);
        await docker(['push', remote]);
        const res = await fetch(`http://${registryAddress()}/v2/${repo}/${name}/manifests/1`, {
          headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
        });
        return ((await res.json()) as { layers: { size: number }[] }).layers.map((l) => l.size);
      };
      const [deltaLayers, bLayers] = await Promise.all([layerSizes(aToB, 'delta'), layerSizes(B, 'b')]);
      // docker push gzips with Go's encoder, inspect with zlib's at the same level: within 5%.
      expect(Math.abs(t.deltaBytes! / deltaLayers.at(-1)! - 1)).toBeLessThan(0.05);
      const bOwn = bLayers.reduce((n, x) => n + x, 0); // A and B share no layer here
      expect(Math.abs(t.targetCompressed! / bOwn - 1)).toBeLessThan(0.05);
      console.log(
        `inspect: delta layer ${t.deltaBytes} B gzip'd (registry ${deltaLayers.at(-1)} B); B ${t.targetCompressed} B gzip'd (registry ${bOwn} B); saved ${(t.savingCompressed! * 100).toFixed(1)}% compressed, ${(t.savingUncompressed! * 100).toFixed(1)}% uncompressed`,
      );

      // From the registry itself: its layers are stored gzip'd, so the sizes are the registry's own.
      const remote = await deltaimg(['inspect', `docker://${registryAddress()}/${repo}/delta:1`, '--json']);
      expect(remote.exitCode, remote.stderr).toBe(0);
      expect((JSON.parse(remote.stdout) as { transfer: { deltaBytes: number } }).transfer.deltaBytes).toBe(deltaLayers.at(-1));

      const text = await deltaimg(['inspect', aToB]);
      expect(text.stdout).toMatch(/^transfer \(what a registry stores and a pull moves\):$/m);
      expect(text.stdout).toMatch(/^  B's layers A lacks, gzip'd +[\d.]+ [KM]iB +saved [\d.]+%$/m);

      // A .dimg of the same pair: the file against B's layers; docker save stores them uncompressed,
      // so B is gzip'd from the local engine (found by its image id), as for the delta image.
      const dimg = join(work, 'a-to-b.dimg');
      const made = await deltaimg(['image', 'diff', `docker-daemon:${A}`, `docker-daemon:${B}`, '-o', dimg]);
      expect(made.exitCode, made.stderr).toBe(0);
      const d = await deltaimg(['inspect', dimg]);
      expect(d.exitCode, d.stderr).toBe(0);
      expect(d.stdout).toMatch(/^  the delta +[\d.]+ [KM]iB$/m);
      expect(d.stdout).toMatch(/^  B's layers A lacks, gzip'd +[\d.]+ [KM]iB +saved [\d.]+%$/m);
      const dJson = JSON.parse((await deltaimg(['inspect', dimg, '--json'])).stdout) as {
        transfer: { targetCompressed: number; deltaBytes: number };
      };
      expect(dJson.transfer.targetCompressed).toBe(t.targetCompressed);
      // Without an engine to find B in, it says why the compressed saving is unknown.
      const noEngine = await execa('node', [CLI, 'inspect', dimg], { env: { DELTAIMG_DOCKER: '/nonexistent/docker' }, reject: false });
      expect(noEngine.exitCode, noEngine.stderr).toBe(0);
      expect(noEngine.stdout).toMatch(
        /^  compressed saving unknown: B's archive stored those layers uncompressed \(docker save does\) and B is not in the local Docker engine to gzip them$/m,
      );

      const nothing = await deltaimg(['inspect', join(work, 'no-such-thing')]);
      expect(nothing.exitCode).toBe(2);
      expect(nothing.stderr).toMatch(/is not a file, a directory or an image reference/);
    });

    it('names a missing image and a non-delta image clearly', async () => {
      const missing = await deltaimg(['dockerfile', 'diff', A, 'deltaimg-test/not-there:1']);
      expect(missing.exitCode).toBe(1);
      expect(missing.stderr).toBe(
        'deltaimg: error: image deltaimg-test/not-there:1 is not in the local Docker engine: docker pull deltaimg-test/not-there:1 (or docker load -i FILE.tar) first',
      );
      const notDelta = await deltaimg(['dockerfile', 'apply', B]);
      expect(notDelta.exitCode).toBe(1);
      expect(notDelta.stderr).toMatch(/is not a deltaimg delta image \(no io\.deltaimg\.version label\)/);
      const noRuntime = await deltaimg(['dockerfile', 'diff', A, B, '--runtime-image', 'deltaimg-test/no-runtime:1']);
      expect(noRuntime.exitCode).toBe(1);
      expect(noRuntime.stderr).toMatch(
        /runtime image deltaimg-test\/no-runtime:1 is not in the local Docker engine: build it with deltaimg runtime build/,
      );
    });
  },
  { needsRegistry: true },
);
