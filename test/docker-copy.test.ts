/**
 * `dockerfile diff|apply --copy` on the classic builder (DOCKER_BUILDKIT=0), end to end: both roots
 * COPY'd --from into a scratch stage, the runtime's delta as a layer on top of A, the matching
 * apply, and B' compared with B path by path. The trees are the Debian-like rich tree (every
 * entry kind: device nodes, FIFOs, setuid, capabilities, user/trusted xattrs, hardlinks, odd
 * names) and its next version; what the classic builder's COPY keeps and loses is measured here
 * and stated in docs/docker.md.
 */
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inspectImage } from '../src/docker/engine.js';
import { readDeltaImage } from '../src/docker/labels.js';
import {
  buildImage,
  DELTAIMG_ENV,
  describeDocker,
  diffFilesystems,
  DOCKER,
  ensureRuntimeImage,
  ImageNames,
  imageFilesystem,
  importTree,
  REPO_ROOT,
  type FsEntry,
} from './helpers/docker.js';
import { cloneTree, makeRichTree, mutateTree, RICH } from './helpers/trees.js';

const CLI = join(REPO_ROOT, 'dist/cli/main.js');
const CLASSIC_ENV = { ...DELTAIMG_ENV, DOCKER_BUILDKIT: '0' };

const B_CONFIG = ['ENV APP_MODE=b', 'ENV PATH=/usr/bin:/bin', 'WORKDIR /home/user', 'CMD ["/usr/bin/tool"]'];

describeDocker('--copy on the classic builder', () => {
  const images = new ImageNames();
  /** Intermediate images the classic builder keeps (one per step), removed newest first at the end. */
  const intermediates: string[] = [];
  let work = '';
  const A = images.name('copy-a');
  const B = images.name('copy-b');
  let bFs: Map<string, FsEntry>;

  async function classicBuild(dockerfile: string, tag: string) {
    const started = Date.now();
    const r = await buildImage(dockerfile, tag, [], undefined, { builder: 'classic' });
    intermediates.push(...[...r.all.matchAll(/^ ---> ([0-9a-f]{12})$/gm)].map((m) => m[1]!));
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all).toMatch(/^Step 1\/\d+ : FROM scratch AS deltaimg-/m); // the classic builder's log, not BuildKit's
    return { log: r.all, seconds: (Date.now() - started) / 1000 };
  }

  async function dockerfile(args: string[]): Promise<string> {
    const r = await execa('node', [CLI, 'dockerfile', ...args], { env: CLASSIC_ENV, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    return r.stdout;
  }

  beforeAll(async () => {
    await ensureRuntimeImage();
    work = await mkdtemp(join(tmpdir(), 'deltaimg-copy-'));
    await makeRichTree(join(work, 'a'));
    await cloneTree(join(work, 'a'), join(work, 'b'));
    await mutateTree(join(work, 'b'));
    await importTree(join(work, 'a'), A, ['ENV PATH=/usr/bin:/bin']);
    // B's environment lists APP_MODE before PATH: the builder puts PATH first in B' (documented).
    await importTree(join(work, 'b'), B, B_CONFIG);
    bFs = await imageFilesystem(B);
  });
  afterAll(async () => {
    await images.removeAll();
    for (const id of intermediates.reverse()) await execa(DOCKER, ['rmi', id], { reject: false });
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("without --copy the classic builder is refused before printing; with it, diff and apply restore B's files", async () => {
    const refused = await execa('node', [CLI, 'dockerfile', 'diff', A, B], { env: CLASSIC_ENV, reject: false });
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/runs the classic builder \(DOCKER_BUILDKIT=0\).*or use --copy/);

    const aToB = images.name('copy-a-to-b');
    const diffDf = await dockerfile(['diff', A, B, '--copy']);
    expect(diffDf).not.toMatch(/--mount/);
    expect(diffDf).toMatch(new RegExp(`^COPY --from=${A.replace(/[/.]/g, '\\$&')} / /__src__/$`, 'm'));
    const diffBuild = await classicBuild(diffDf, aToB);
    // Progress from inside the build: plain lines in the build log, then the summary.
    expect(diffBuild.log).toMatch(/^(\S+)?deltaimg: scanning +\d+/m);
    expect(diffBuild.log).toMatch(/deltaimg: diff +\d+\/\d+ /);
    expect(diffBuild.log).toMatch(/deltaimg: delta .* for a target of /);

    const [a, delta] = await Promise.all([inspectImage(A, { docker: DOCKER }), inspectImage(aToB, { docker: DOCKER })]);
    expect(delta.layers.slice(0, -1)).toEqual(a.layers); // A's layers plus the delta
    expect(readDeltaImage(delta)).toMatchObject({ linked: true, base: { id: a.id } });

    const restored = images.name('copy-b-restored');
    const applyBuild = await classicBuild(await dockerfile(['apply', aToB, '--copy']), restored);
    expect(applyBuild.log).toMatch(/deltaimg: apply +\d+\/\d+ /);
    expect(applyBuild.log).toMatch(/deltaimg: restored \d+ entries .* all verified/);

    const got = await imageFilesystem(restored);
    const differences = diffFilesystems(bFs, got, (p) => p === '');
    // What the classic builder's COPY loses, measured: xattrs other than security.* (user.*, trusted.*).
    const lost = differences.filter((d) => !/"xattrs"/.test(d));
    expect(lost).toEqual([]);
    const withUserXattrs = [...bFs].filter(([, e]) => Object.keys(e.xattrs).some((k) => !k.startsWith('security.'))).map(([p]) => p);
    expect(withUserXattrs.length).toBeGreaterThan(0);
    for (const p of withUserXattrs) expect(Object.keys(got.get(p)!.xattrs).filter((k) => !k.startsWith('security.'))).toEqual([]);
    // ... and keeps: device nodes and FIFOs, owners, setuid, capabilities, hardlinks, mtimes (seconds).
    const kinds = new Set([...got.values()].map((e) => e.type));
    for (const k of ['char', 'block', 'fifo', 'symlink', 'dir', 'file'] as const) expect(kinds).toContain(k);
    expect(got.get(RICH.ping)?.xattrs['security.capability']).toBe(bFs.get(RICH.ping)!.xattrs['security.capability']);
    expect(got.get(RICH.setuid)).toMatchObject({ mode: bFs.get(RICH.setuid)!.mode });
    expect(got.get(RICH.hardlinkGroup[0])?.hardlinks).toEqual(bFs.get(RICH.hardlinkGroup[0])!.hardlinks);

    const [want, have] = await Promise.all([inspectImage(B, { docker: DOCKER }), inspectImage(restored, { docker: DOCKER })]);
    // The one config difference: PATH first (the builder gives a FROM scratch stage its PATH before any ENV).
    expect(have.config.Env).toEqual(['PATH=/usr/bin:/bin', 'APP_MODE=b']);
    expect(want.config.Env).toEqual(['APP_MODE=b', 'PATH=/usr/bin:/bin']);
    expect({ ...have.config, Env: want.config.Env }).toEqual(want.config);

    const sizes = await Promise.all(
      [A, B].map((r) => execa(DOCKER, ['image', 'inspect', '--format', '{{.Size}}', r]).then((x) => Number(x.stdout))),
    );
    console.log(
      `--copy on the classic builder: A ${sizes[0]} B, B ${sizes[1]} B; diff build ${diffBuild.seconds.toFixed(1)} s, apply build ${applyBuild.seconds.toFixed(1)} s; ` +
        `${intermediates.length} intermediate images kept by the builder; ${differences.length} paths differ only in non-security xattrs`,
    );
  });

  it('--copy cannot be --layered', async () => {
    const r = await execa('node', [CLI, 'dockerfile', 'apply', 'x:1', '--copy', '--layered'], { env: CLASSIC_ENV, reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^deltaimg: error: --layered .* cannot be combined with --copy$/);
  });
});
