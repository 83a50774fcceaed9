/**
 * `deltaimg image diff|apply|verify` through the CLI on image forms beyond the classic
 * `docker save`: OCI layouts with zlib-, gzip-CLI- and zstd-compressed layers, two-platform
 * indexes, the Docker >= 25 save form, stdin/stdout, and layers with every tar oddity
 * (duplicate paths, hardlinks, long and non-UTF-8 names, whiteouts). Images are built by hand
 * from layer tars made with GNU tar and tar-stream, so most of this runs without an engine;
 * the engine parts (docker load of restored archives) use describeDocker.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeDocker, docker, DOCKER, imageId, ImageNames, REPO_ROOT } from './helpers/docker.js';
import {
  classicArchive,
  docker25Form,
  multiPlatformLayout,
  sha,
  singleImageLayout,
  twoPlatformLayout,
  writeDir,
  writeTar,
  type LayerBlob,
} from './helpers/image-archives.js';
import { makeRichTree, mutateTree, cloneTree } from './helpers/trees.js';
import { goGzipPath } from './helpers/compressors.js';

const CLI = join(REPO_ROOT, 'dist/cli/main.js');
const MT = {
  tar: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

function deltaimg(args: string[], opts: { inputFile?: string } = {}) {
  return execa('node', [CLI, ...args], {
    env: { DELTAIMG_DOCKER: DOCKER },
    reject: false,
    ...(opts.inputFile ? { inputFile: opts.inputFile } : {}),
  });
}

/** Runs the CLI and expects success; returns stdout. */
async function ok(args: string[]): Promise<string> {
  const r = await deltaimg(args);
  expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

// ------------------------------------------------------------------------------- layer tars

/** A GNU tar of a directory, the way `docker import` gets one. */
async function gnuTar(dir: string, format: 'posix' | 'gnu'): Promise<Buffer> {
  const xattrs = format === 'posix' ? ['--xattrs', '--xattrs-include=*'] : [];
  const r = await execa('tar', [...xattrs, '--numeric-owner', `--format=${format}`, '-C', dir, '-cf', '-', '.'], { encoding: 'buffer' });
  return Buffer.from(r.stdout as Uint8Array);
}

type RawEntry = {
  name: string;
  type?: 'file' | 'directory' | 'link' | 'symlink';
  data?: string | Buffer;
  linkname?: string;
  mode?: number;
};

/** What tar-stream's pack.entry takes: a header with only the name required. */
type TarEntryHeader = Partial<tar.Header> & Pick<tar.Header, 'name'>;

/** A tar written by tar-stream (pax headers for long names), entries exactly as listed, duplicates included. */
async function streamTar(entries: RawEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const data = type === 'file' ? Buffer.from(e.data ?? '') : undefined;
    const header: TarEntryHeader = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      mtime: new Date(1_700_000_000_000),
      uid: 0,
      gid: 0,
      ...(e.linkname ? { linkname: e.linkname } : {}),
    };
    if (data === undefined) pack.entry(header);
    else pack.entry(header, data);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

const longDir = `deep/${'d'.repeat(120)}/${'e'.repeat(120)}`;
const conf = (n: number) => Array.from({ length: 400 }, (_, i) => `option_${i} = ${(i * n) % 977}\n`).join('');

/** A's second layer: whiteouts of A's first layer and an opaque directory, so A's rootfs extraction must honour them. */
function baseOddLayer(): Promise<Buffer> {
  return streamTar([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/.wh.hostname' },
    { name: 'usr/share/doc/', type: 'directory' },
    { name: 'usr/share/doc/.wh..wh..opq' },
    { name: 'usr/share/doc/readme', data: 'A readme\n' },
    { name: 'opt/', type: 'directory' },
    { name: 'opt/app.conf', data: conf(7) },
    { name: `${longDir}/settings.conf`, data: conf(11) },
  ]);
}

/**
 * B's odd layer: duplicate paths, hardlinks (also to a duplicated path), long names, whiteouts and an opaque dir.
 * `forEngine` leaves out the duplicate paths, which the engine refuses to load ("duplicates of file paths not supported").
 */
function targetOddLayer(forEngine = false): Promise<Buffer> {
  const duplicates = (entries: RawEntry[]) => (forEngine ? [] : entries);
  return streamTar([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/.wh.motd' },
    { name: 'opt/', type: 'directory' },
    ...duplicates([{ name: 'opt/app.conf', data: 'first, replaced below\n' }]),
    { name: 'opt/app.conf', data: conf(7).replace('option_3 ', 'option_three ') },
    { name: 'opt/app.conf.hardlink', type: 'link', linkname: 'opt/app.conf' },
    { name: 'opt/.wh.gone' },
    { name: 'usr/share/olddir/', type: 'directory' },
    { name: 'usr/share/olddir/.wh..wh..opq' },
    { name: 'usr/share/olddir/new.txt', data: 'fresh\n' },
    { name: `${longDir}/`, type: 'directory' },
    { name: `${longDir}/settings.conf`, data: conf(11) + 'extra = 1\n' },
    { name: `${longDir}/${'f'.repeat(200)}.link`, type: 'link', linkname: `${longDir}/settings.conf` },
    { name: 'opt/to-settings', type: 'symlink', linkname: `/${longDir}/settings.conf` },
    // A path changing type within one layer.
    ...duplicates([
      { name: 'opt/app.conf', type: 'directory' },
      { name: 'opt/app.conf/inside', data: 'now a dir\n' },
    ]),
  ]);
}

function imageConfig(diffIds: string[], arch = 'amd64'): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: arch,
      os: 'linux',
      config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );
}

interface Fixture {
  /** Uncompressed layer tars, base first. */
  layers: Buffer[];
  config: Buffer;
  configDigest: string;
}

const fixture = (layers: Buffer[]): Fixture => {
  const config = imageConfig(layers.map(sha));
  return { layers, config, configDigest: sha(config) };
};

async function gzipCli(tarBytes: Buffer, level: number): Promise<Buffer> {
  const r = await execa('gzip', ['-n', `-${level}`, '-c'], { input: tarBytes, encoding: 'buffer' });
  return Buffer.from(r.stdout as Uint8Array);
}

async function zstdCli(tarBytes: Buffer): Promise<Buffer> {
  const r = await execa('zstd', ['-q', '-c', '-3'], { input: tarBytes, encoding: 'buffer' });
  return Buffer.from(r.stdout as Uint8Array);
}

// ------------------------------------------------------------------------------- reports

interface VerifyJson {
  ok: boolean;
  report: {
    ok: boolean;
    images: { platform: string; configDigest: string; configOk: boolean; layers: { diffId: string; ok: boolean }[] }[];
  };
  expected: { platform: string; configDigest: string; problem?: string }[];
}

interface ApplyJson {
  verified: boolean;
  images: {
    platform: string;
    configDigest: string;
    originalManifestDigest?: string;
    manifestDigest?: string;
    manifestNote?: string;
    layers: number;
    rebuiltLayers: number;
  }[];
}

interface DimgHeaderJson {
  images: {
    platform: string;
    target: {
      configDigest: string;
      layers: { diffId: string; from: string; stored?: { recipe?: { member: string; method: string }; inexact?: string } }[];
    };
  }[];
  layers: { diffId: string; baseConfigDigest: string; skeletonMember: string; deltaPrefix: string }[];
  members: { name: string; size: number; sha256: string }[];
  [key: string]: unknown;
}

async function verifyAgainst(ref: string, dimg: string): Promise<VerifyJson> {
  const r = await deltaimg(['image', 'verify', ref, '--against', dimg, '--json']);
  expect(r.exitCode, r.stderr + r.stdout).toBe(0);
  const v = JSON.parse(r.stdout) as VerifyJson;
  expect(v.ok).toBe(true);
  expect(v.expected.every((e) => !e.problem)).toBe(true);
  return v;
}

// ------------------------------------------------------------------------------- the tests

let work: string;
let A: Fixture;
let B: Fixture;

beforeAll(async () => {
  await mkdir(join(REPO_ROOT, '.tmp'), { recursive: true });
  work = await mkdtemp(join(REPO_ROOT, '.tmp', 'image-delta-oci-'));
  const rootA = join(work, 'rootA');
  const rootB = join(work, 'rootB');
  await makeRichTree(rootA);
  await cloneTree(rootA, rootB);
  await mutateTree(rootB);
  // The rich trees hold hardlinks, a ~2.9 KB path, non-UTF-8 and newline names, devices, xattrs.
  const a1 = await gnuTar(rootA, 'posix');
  A = fixture([a1, await baseOddLayer()]);
  // B: A's first layer shared, the mutated tree in GNU format (long names as ././@LongLink), the odd layer.
  B = fixture([a1, await gnuTar(rootB, 'gnu'), await targetOddLayer()]);
  await rm(rootA, { recursive: true, force: true });
  await rm(rootB, { recursive: true, force: true });
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** Writes fixture `f` as a one-image OCI layout at `dir`, its layers compressed by `compress`. */
async function layoutOf(
  f: Fixture,
  dir: string,
  compress: (tar: Buffer, i: number) => Promise<LayerBlob>,
  family: 'oci' | 'docker' = 'oci',
): Promise<string> {
  const blobs: LayerBlob[] = [];
  for (const [i, l] of f.layers.entries()) blobs.push(await compress(l, i));
  const { files, manifestDigest } = singleImageLayout(f.config, blobs, 'latest', family);
  await writeDir(dir, files);
  return manifestDigest;
}

async function indexManifestDigests(dir: string): Promise<string[]> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  return index.manifests.map((m) => m.digest);
}

describe('OCI layouts with zlib-made gzip layers', () => {
  it('restores B with its config digest and its manifest digest (gzip replayed at each level)', async () => {
    const levels = [9, 6, 1];
    const zlibGzip = async (t: Buffer, i: number): Promise<LayerBlob> => ({
      mediaType: MT.gzip,
      data: gzipSync(t, { level: levels[i % levels.length]! }),
    });
    const aDir = join(work, 'zlib-a');
    const bDir = join(work, 'zlib-b');
    await layoutOf(A, aDir, zlibGzip);
    const bManifest = await layoutOf(B, bDir, zlibGzip);

    const dimg = join(work, 'zlib.dimg');
    const diff = JSON.parse(await ok(['image', 'diff', `oci:${aDir}`, `oci:${bDir}`, '-o', dimg, '--json'])) as {
      rebuiltLayers: number;
      sharedLayers: number;
    };
    expect(diff).toMatchObject({ rebuiltLayers: 2, sharedLayers: 1 });
    const header = JSON.parse(await ok(['image', 'inspect', dimg, '--json'])) as DimgHeaderJson;
    // zlib-settings recipes, the shared layer's too (for a receiver holding A as tars).
    expect(header.images[0]!.target.layers.map((l) => l.stored?.recipe?.method)).toEqual([
      'gzip, 1 member, zlib level 9 memLevel 8',
      'gzip, 1 member, zlib level 6 memLevel 8',
      'gzip, 1 member, zlib level 1 memLevel 8',
    ]);

    const out = join(work, 'zlib-out');
    const apply = JSON.parse(await ok(['image', 'apply', `oci:${aDir}`, dimg, '-o', `oci:${out}`, '--json'])) as ApplyJson;
    expect(apply.images).toEqual([
      expect.objectContaining({
        configDigest: B.configDigest,
        originalManifestDigest: bManifest,
        manifestDigest: bManifest,
        rebuiltLayers: 2,
      }),
    ]);
    expect(apply.images[0]!.manifestNote).toBeUndefined();
    expect(await indexManifestDigests(out)).toEqual([bManifest]);
    // Every blob of B came back byte for byte.
    for (const name of await blobNames(bDir)) {
      expect((await readFile(join(out, name))).equals(await readFile(join(bDir, name))), name).toBe(true);
    }
    await verifyAgainst(`oci:${out}`, dimg);

    // The receiver may hold A in another form (a classic docker save): same image id, so the
    // same delta applies, and B's gzip'd blobs are replayed from A's tars.
    const aClassic = join(work, 'zlib-a-classic.tar');
    await writeTar(aClassic, classicArchive(A.config, A.layers, 'deltaimg-test/zlib-a:1'));
    const out2 = join(work, 'zlib-out2');
    const apply2 = JSON.parse(await ok(['image', 'apply', `docker-archive:${aClassic}`, dimg, '-o', `oci:${out2}`, '--json'])) as ApplyJson;
    expect(apply2.images).toEqual([expect.objectContaining({ configDigest: B.configDigest, manifestDigest: bManifest })]);
    expect(await indexManifestDigests(out2)).toEqual([bManifest]);

    // A recipe that does not reproduce the blob (as another zlib build would deflate differently;
    // here: the other layer's recipe) is not an error: the layer is stored as its tar and apply
    // says why the manifest changed.
    const members = join(work, 'zlib-members');
    await mkdir(members);
    await execa('tar', ['-xf', dimg, '-C', members]);
    const header2 = JSON.parse(await readFile(join(members, 'dimg.json'), 'utf8')) as DimgHeaderJson;
    const layers = header2.images[0]!.target.layers;
    const rebuilt = layers[1]!;
    const otherRecipe = layers[2]!.stored!.recipe!;
    const skewed = {
      ...header2,
      images: [
        {
          ...header2.images[0]!,
          target: {
            ...header2.images[0]!.target,
            layers: layers.map((l) => (l === rebuilt ? { ...l, stored: { ...l.stored, recipe: otherRecipe } } : l)),
          },
        },
      ],
    };
    const skewedDimg = await craftDimg(
      members,
      'zlib-skewed.dimg',
      skewed,
      header2.members.map((m) => ({ name: m.name })),
    );
    const out3 = join(work, 'zlib-out3');
    const apply3 = JSON.parse(await ok(['image', 'apply', `oci:${aDir}`, skewedDimg, '-o', `oci:${out3}`, '--json'])) as ApplyJson;
    const restored3 = apply3.images[0]!;
    expect(restored3).toMatchObject({ configDigest: B.configDigest, originalManifestDigest: bManifest });
    expect(restored3.manifestDigest).not.toBe(bManifest);
    expect(restored3.manifestNote).toContain(`layer ${rebuilt.diffId}`);
    expect(restored3.manifestNote).toMatch(/did not reproduce/);
    await verifyAgainst(`oci:${out3}`, skewedDimg);
  }, 120_000);
});

async function blobNames(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'blobs/sha256'))).map((n) => `blobs/sha256/${n}`);
}

describe('a shared layer A and B store compressed differently', () => {
  it("is replayed from A's tar at B's level, keeping the manifest digest (B in Docker schema 2 media types)", async () => {
    const aDir = join(work, 'levels-a');
    const bDir = join(work, 'levels-b');
    await layoutOf(A, aDir, async (t) => ({ mediaType: MT.gzip, data: gzipSync(t, { level: 9 }) }));
    // As `crane pull --format=oci` leaves a registry image: Docker schema 2 manifest, config and layer types.
    const dockerGzip = async (t: Buffer): Promise<LayerBlob> => ({
      mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
      data: gzipSync(t, { level: 1 }),
    });
    const bManifest = await layoutOf(B, bDir, dockerGzip, 'docker');
    const dimg = join(work, 'levels.dimg');
    const diff = JSON.parse(await ok(['image', 'diff', `oci:${aDir}`, `oci:${bDir}`, '-o', dimg, '--json'])) as { sharedLayers: number };
    expect(diff.sharedLayers).toBe(1);
    const out = join(work, 'levels-out');
    const apply = JSON.parse(await ok(['image', 'apply', `oci:${aDir}`, dimg, '-o', `oci:${out}`, '--json'])) as ApplyJson;
    expect(apply.images).toEqual([expect.objectContaining({ configDigest: B.configDigest, manifestDigest: bManifest })]);
    expect(apply.images[0]!.manifestNote).toBeUndefined();
    for (const name of await blobNames(bDir))
      expect((await readFile(join(out, name))).equals(await readFile(join(bDir, name))), name).toBe(true);
  }, 120_000);
});

describe('layers compressed by GNU gzip, pigz and Go, and zstd', () => {
  /** pigz of the tar cut in two, the members concatenated (what `cat a.gz b.gz` or parallel gzips make). */
  async function pigzMultiMember(t: Buffer): Promise<Buffer> {
    const half = t.length >> 1;
    const parts: Buffer[] = [];
    for (const part of [t.subarray(0, half), t.subarray(half)]) {
      const r = await execa('pigz', ['-6', '-c'], { input: part, encoding: 'buffer' });
      parts.push(Buffer.from(r.stdout as Uint8Array));
    }
    return Buffer.concat(parts);
  }

  async function goGzip(t: Buffer, level: number): Promise<Buffer> {
    const r = await execa(await goGzipPath(), [String(level)], { input: t, encoding: 'buffer' });
    return Buffer.from(r.stdout as Uint8Array);
  }

  it("restores B's manifest digest, every blob byte for byte, whatever gzip made them", async () => {
    // A: Node's zlib everywhere. B: its shared layer by Go (so it is rebuilt from A's tar),
    // the changed layers by GNU gzip -9 and by pigz in two members.
    const aDir = join(work, 'foreign-a');
    const bDir = join(work, 'foreign-b');
    await layoutOf(A, aDir, async (t) => ({ mediaType: MT.gzip, data: gzipSync(t) }));
    const compressB = async (t: Buffer, i: number): Promise<LayerBlob> => ({
      mediaType: MT.gzip,
      data: i === 0 ? await goGzip(t, -1) : i === 1 ? await gzipCli(t, 9) : await pigzMultiMember(t),
    });
    const bManifest = await layoutOf(B, bDir, compressB);
    const dimg = join(work, 'foreign.dimg');
    await ok(['image', 'diff', `oci:${aDir}`, `oci:${bDir}`, '-o', dimg, '-q']);
    const header = JSON.parse(await ok(['image', 'inspect', dimg, '--json'])) as DimgHeaderJson;
    expect(header.images[0]!.target.layers.map((l) => l.stored?.recipe?.method)).toEqual([
      'gzip, 1 member, tokens',
      'gzip, 1 member, tokens',
      'gzip, 2 members, tokens',
    ]);
    expect(header).toMatchObject({ version: 2, minReaderVersion: 1 });

    const out = join(work, 'foreign-out');
    const apply = JSON.parse(await ok(['image', 'apply', `oci:${aDir}`, dimg, '-o', `oci:${out}`, '--json'])) as ApplyJson;
    expect(apply.images).toEqual([
      expect.objectContaining({ configDigest: B.configDigest, originalManifestDigest: bManifest, manifestDigest: bManifest }),
    ]);
    expect(apply.images[0]!.manifestNote).toBeUndefined();
    expect(await indexManifestDigests(out)).toEqual([bManifest]);
    for (const name of await blobNames(bDir))
      expect((await readFile(join(out, name))).equals(await readFile(join(bDir, name))), name).toBe(true);
    await verifyAgainst(`oci:${out}`, dimg);

    // From A as a classic docker save (uncompressed tars): every blob rebuilt from a tar.
    const aClassic = join(work, 'foreign-a-classic.tar');
    await writeTar(aClassic, classicArchive(A.config, A.layers, 'deltaimg-test/foreign-a:1'));
    const out2 = join(work, 'foreign-out2');
    const apply2 = JSON.parse(await ok(['image', 'apply', `docker-archive:${aClassic}`, dimg, '-o', `oci:${out2}`, '--json'])) as ApplyJson;
    expect(apply2.images).toEqual([expect.objectContaining({ configDigest: B.configDigest, manifestDigest: bManifest })]);
  }, 180_000);

  it("--no-exact-blobs leaves the token recipes out: a smaller .dimg, B's image id and diff_ids, other blob digests, said", async () => {
    const aDir = join(work, 'light-a');
    const bDir = join(work, 'light-b');
    await layoutOf(A, aDir, async (t) => ({ mediaType: MT.gzip, data: gzipSync(t) }));
    const bManifest = await layoutOf(B, bDir, async (t) => ({ mediaType: MT.gzip, data: await goGzip(t, -1) }));
    const exact = join(work, 'light-exact.dimg');
    const light = join(work, 'light.dimg');
    const exactJson = JSON.parse(await ok(['image', 'diff', `oci:${aDir}`, `oci:${bDir}`, '-o', exact, '--json', '-q'])) as {
      bytes: number;
      recipeBytes: number;
    };
    const lightJson = JSON.parse(
      await ok(['image', 'diff', `oci:${aDir}`, `oci:${bDir}`, '-o', light, '--no-exact-blobs', '--json', '-q']),
    ) as { bytes: number; recipeBytes: number };
    expect(exactJson.recipeBytes).toBeGreaterThan(0);
    expect(lightJson.recipeBytes).toBe(0);
    expect(lightJson.bytes).toBeLessThan(exactJson.bytes - exactJson.recipeBytes / 2);
    const header = JSON.parse(await ok(['image', 'inspect', light, '--json'])) as DimgHeaderJson;
    for (const layer of header.images[0]!.target.layers.filter((l) => l.from === 'rebuilt')) {
      expect(layer.stored?.inexact).toMatch(/left out by --no-exact-blobs/);
    }

    const out = join(work, 'light-out');
    const apply = await deltaimg(['image', 'apply', `oci:${aDir}`, light, '-o', `oci:${out}`]);
    expect(apply.exitCode, apply.stderr).toBe(0);
    expect(apply.stderr).toContain(`restored linux/amd64 image ${B.configDigest}`);
    expect(apply.stderr).toContain(`note: manifest digest differs from ${bManifest}`);
    const [written] = await indexManifestDigests(out);
    expect(written).not.toBe(bManifest);
    const v = await verifyAgainst(`oci:${out}`, light);
    expect(v.report.images[0]!.layers.map((l) => l.diffId)).toEqual(B.layers.map(sha));
  }, 180_000);

  it('keeps the config digest and diff_ids of zstd layers, and says which were stored uncompressed and why', async () => {
    const mixed = async (t: Buffer, i: number): Promise<LayerBlob> =>
      i === 2 ? { mediaType: MT.zstd, data: await zstdCli(t) } : { mediaType: MT.gzip, data: await gzipCli(t, 6) };
    const aDir = join(work, 'zstd-a');
    const bDir = join(work, 'zstd-b');
    await layoutOf(A, aDir, mixed);
    const bManifest = await layoutOf(B, bDir, mixed);
    const dimg = join(work, 'zstd.dimg');
    await ok(['image', 'diff', `oci:${aDir}`, `oci:${bDir}`, '-o', dimg, '-q']);
    const header = JSON.parse(await ok(['image', 'inspect', dimg, '--json'])) as DimgHeaderJson;
    const stored = header.images[0]!.target.layers.map((l) => l.stored);
    expect(stored.map((s) => s?.recipe?.method)).toEqual([undefined, 'gzip, 1 member, tokens', undefined]);
    expect(stored[0]!.inexact).toMatch(/^only the base's own blob restores it/);
    expect(stored[2]!.inexact).toMatch(/zstd/);

    const out = join(work, 'zstd-out');
    const apply = await deltaimg(['image', 'apply', `oci:${aDir}`, dimg, '-o', `oci:${out}`]);
    expect(apply.exitCode, apply.stderr).toBe(0);
    expect(apply.stderr).toContain(`restored linux/amd64 image ${B.configDigest} (3 layers, 2 rebuilt, all verified)`);
    const zstdLayer = header.images[0]!.target.layers[2]!.diffId;
    expect(apply.stderr).toContain(
      `note: manifest digest differs from ${bManifest}: stored uncompressed instead of recompressed (same diff_ids, same image id): layer ${zstdLayer} (zstd blobs`,
    );
    const [written] = await indexManifestDigests(out);
    expect(written).not.toBe(bManifest);
    // The shared layer keeps A's (= B's) stored blob; GNU gzip's comes back exactly; zstd's is a plain tar.
    expect(await exists(join(out, 'blobs/sha256', sha(await gzipCli(B.layers[0]!, 6)).slice(7)))).toBe(true);
    expect(await exists(join(out, 'blobs/sha256', sha(await gzipCli(B.layers[1]!, 6)).slice(7)))).toBe(true);
    expect(await exists(join(out, 'blobs/sha256', sha(B.layers[2]!).slice(7)))).toBe(true);

    const v = await verifyAgainst(`oci:${out}`, dimg);
    expect(v.report.images[0]!.layers.map((l) => l.diffId)).toEqual(B.layers.map(sha));
  }, 120_000);
});

describe('two-platform indexes', () => {
  let aDir: string;
  let bDir: string;
  let aLayout: Awaited<ReturnType<typeof twoPlatformLayout>>;
  let bLayout: Awaited<ReturnType<typeof twoPlatformLayout>>;
  beforeAll(async () => {
    // amd64 with zlib-gzip'd layers, arm64/v8 (its own config) with zstd'd ones, plus an attestation manifest.
    aLayout = await twoPlatformLayout({ dir: '', manifest: [], config: A.config, layers: A.layers });
    bLayout = await twoPlatformLayout({ dir: '', manifest: [], config: B.config, layers: B.layers });
    aDir = join(work, 'multi-a');
    bDir = join(work, 'multi-b');
    await writeDir(aDir, aLayout.files);
    await writeDir(bDir, bLayout.files);
    dimg = join(work, 'multi.dimg');
    diff = JSON.parse(await ok(['image', 'diff', `oci:${aDir}`, `oci:${bDir}`, '-o', dimg, '--json'])) as typeof diff;
  }, 120_000);
  let dimg: string;
  let diff: { rebuiltLayers: number; images: { platform: string; target: string }[] };

  it('diffs both platforms by default; the restored oci-archive has both images with their config digests', async () => {
    expect(diff.images).toEqual([
      { platform: 'linux/amd64', base: aLayout.amd64.config, target: bLayout.amd64.config },
      { platform: 'linux/arm64/v8', base: aLayout.arm64.config, target: bLayout.arm64.config },
    ]);
    // The platforms share their layer tars: each rebuilt layer is shipped once.
    expect(diff.rebuiltLayers).toBe(2);

    const out = join(work, 'multi-out.tar');
    const apply = JSON.parse(await ok(['image', 'apply', `oci:${aDir}`, dimg, '-o', `oci-archive:${out}`, '--json'])) as ApplyJson;
    expect(apply.images.map((i) => [i.platform, i.configDigest])).toEqual([
      ['linux/amd64', bLayout.amd64.config],
      ['linux/arm64/v8', bLayout.arm64.config],
    ]);
    // zlib's default level is replayed; zstd is not, and says so.
    expect(apply.images[0]).toMatchObject({ manifestDigest: bLayout.amd64.manifest });
    expect(apply.images[0]!.manifestNote).toBeUndefined();
    expect(apply.images[1]!.manifestNote).toMatch(/zstd blobs are not rebuilt/);

    const v = await verifyAgainst(`oci-archive:${out}`, dimg);
    expect(v.report.images.map((i) => i.configDigest).sort()).toEqual([bLayout.amd64.config, bLayout.arm64.config].sort());
    expect(v.expected).toHaveLength(2);

    // Both platforms share a name: in a docker-archive, docker load would keep it on one only.
    const classic = join(work, 'multi-out-classic.tar');
    const refused = await deltaimg(['image', 'apply', `oci:${aDir}`, dimg, '-o', `docker-archive:${classic}`]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(
      /restores 2 images \(linux\/amd64, linux\/arm64\/v8\) that share the name .*pick one with --platform, or write oci-archive:PATH/,
    );
    expect(await exists(classic)).toBe(false);
  }, 120_000);

  it('apply --platform restores only the platforms named; docker-daemon needs one', async () => {
    const out = join(work, 'apply-arm-out');
    const apply = JSON.parse(
      await ok(['image', 'apply', '--platform', 'linux/arm64', `oci:${aDir}`, dimg, '-o', `oci:${out}`, '--json']),
    ) as ApplyJson;
    expect(apply.images.map((i) => [i.platform, i.configDigest])).toEqual([['linux/arm64/v8', bLayout.arm64.config]]);
    const v = JSON.parse(await ok(['image', 'verify', `oci:${out}`, '--json'])) as VerifyJson;
    expect(v.report.images.map((i) => i.configDigest)).toEqual([bLayout.arm64.config]);
    for (const [args, pattern] of [
      // Comma-separated: linux/amd64 is there, linux/s390x is not.
      [
        ['--platform', 'linux/amd64,linux/s390x', '-o', `oci:${join(work, 'never-s390x')}`],
        /holds no image for platform linux\/s390x \(it has linux\/amd64, linux\/arm64\/v8\)/,
      ],
      [
        ['-o', 'docker-daemon:deltaimg-test/never:1'],
        /docker-daemon:deltaimg-test\/never:1 takes one image and .* restores 2 .*--platform/,
      ],
    ] as const) {
      const r = await deltaimg(['image', 'apply', `oci:${aDir}`, dimg, ...args]);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    }
    expect(await exists(join(work, 'never-s390x'))).toBe(false);
  }, 120_000);

  it('an existing output is refused before any work', async () => {
    const taken = join(work, 'taken');
    await mkdir(taken);
    await writeFile(join(taken, 'keep'), 'mine');
    for (const args of [
      ['diff', `oci:${aDir}`, `oci:${bDir}`, '-o', join(taken, 'keep')],
      ['apply', `oci:${aDir}`, dimg, '-o', `oci:${taken}`],
      ['apply', `oci:${aDir}`, dimg, '-o', `docker-archive:${join(taken, 'keep')}`],
    ]) {
      // A --tmp-dir that cannot exist: the work would fail making its scratch space, so this
      // refusal shows the output was checked first.
      const r = await deltaimg(['image', ...args, '--tmp-dir', join(work, 'no-such-dir')]);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/already exists; remove it or choose another output path/);
    }
    expect(await readdir(taken)).toEqual(['keep']);
    expect(await readFile(join(taken, 'keep'), 'utf8')).toBe('mine');
  }, 60_000);

  it('--platform linux/arm64 diffs that platform only', async () => {
    const dimg = join(work, 'arm.dimg');
    // Given before BASE and TARGET: the option takes one value (repeatable), it does not swallow them.
    await ok(['image', 'diff', '--platform', 'linux/arm64', `oci:${aDir}`, `oci:${bDir}`, '-o', dimg, '-q']);
    const header = JSON.parse(await ok(['image', 'inspect', dimg, '--json'])) as DimgHeaderJson;
    expect(header.images.map((i) => [i.platform, i.target.configDigest])).toEqual([['linux/arm64/v8', bLayout.arm64.config]]);
    const out = join(work, 'arm-out');
    await ok(['image', 'apply', `oci:${aDir}`, dimg, '-o', `oci:${out}`, '-q']);
    const v = await verifyAgainst(`oci:${out}`, dimg);
    expect(v.report.images.map((i) => i.configDigest)).toEqual([bLayout.arm64.config]);
  }, 120_000);

  it('a platform the target lacks is a one-line usage error, and nothing is written', async () => {
    const amdOnly = join(work, 'amd-only');
    await writeDir(
      amdOnly,
      singleImageLayout(
        B.config,
        B.layers.map((data) => ({ mediaType: MT.tar, data })),
      ).files,
    );
    const dimg = join(work, 'lacking.dimg');
    for (const platform of ['linux/arm64', 'linux/s390x']) {
      const r = await deltaimg(['image', 'diff', `oci:${aDir}`, `oci:${amdOnly}`, '-o', dimg, '--platform', platform]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`platform ${platform} is not in the (target|base) image.*--platform`));
      expect(await exists(dimg)).toBe(false);
    }
  }, 60_000);
});

describe('platforms with their own layers', () => {
  it("each platform's new layers are diffed against, and rebuilt from, that platform's base", async () => {
    const armOnlyA = await streamTar([
      { name: 'opt/', type: 'directory' },
      { name: 'opt/arch.conf', data: conf(3).replace(/option/g, 'aarch64') },
    ]);
    const armOnlyB = await streamTar([
      { name: 'opt/', type: 'directory' },
      {
        name: 'opt/arch.conf',
        data: conf(3)
          .replace(/option/g, 'aarch64')
          .replace('= 9', '= 10'),
      },
    ]);
    const arm = { os: 'linux', architecture: 'arm64', variant: 'v8' };
    const amd = { os: 'linux', architecture: 'amd64' };
    const gz = (t: Buffer): LayerBlob => ({ mediaType: MT.gzip, data: gzipSync(t, { level: 9 }) });
    const aArm = [A.layers[0]!, armOnlyA];
    const bArm = [A.layers[0]!, B.layers[2]!, armOnlyB];
    const layoutA = multiPlatformLayout([
      { platform: amd, config: A.config, layers: A.layers.map(gz) },
      { platform: arm, config: imageConfig(aArm.map(sha), 'arm64'), layers: aArm.map(gz) },
    ]);
    const bArmConfig = imageConfig(bArm.map(sha), 'arm64');
    const layoutB = multiPlatformLayout([
      { platform: amd, config: B.config, layers: B.layers.map(gz) },
      { platform: arm, config: bArmConfig, layers: bArm.map(gz) },
    ]);
    const aDir = join(work, 'own-a');
    const bDir = join(work, 'own-b');
    await writeDir(aDir, layoutA.files);
    await writeDir(bDir, layoutB.files);
    const dimg = join(work, 'own.dimg');
    await ok(['image', 'diff', `oci:${aDir}`, `oci:${bDir}`, '-o', dimg, '-q']);
    const header = JSON.parse(await ok(['image', 'inspect', dimg, '--json'])) as DimgHeaderJson;
    const armA = sha(imageConfig(aArm.map(sha), 'arm64'));
    expect(header.layers.find((l) => l.diffId === sha(armOnlyB))?.baseConfigDigest).toBe(armA);
    expect(header.layers.find((l) => l.diffId === sha(B.layers[2]!))?.baseConfigDigest).toBe(A.configDigest);

    const out = join(work, 'own-out');
    const apply = JSON.parse(await ok(['image', 'apply', `oci:${aDir}`, dimg, '-o', `oci:${out}`, '--json'])) as ApplyJson;
    expect(apply.images.map((i) => [i.configDigest, i.manifestDigest])).toEqual([
      [B.configDigest, layoutB.manifestDigests[0]],
      [sha(bArmConfig), layoutB.manifestDigests[1]],
    ]);
    await verifyAgainst(`oci:${out}`, dimg);
  }, 120_000);
});

/** The members of a hand-made docker archive in the Docker >= 25 form, written as a tar. */
async function docker25Archive(f: Fixture, name: string, out: string): Promise<string> {
  const { files, manifestDigest } = docker25Form({ dir: '', manifest: [], config: f.config, layers: f.layers }, name);
  await writeTar(out, files);
  return manifestDigest;
}

describe('docker-archive in the Docker >= 25 form, restored with --format oci', () => {
  it('keeps the manifest digest and the config digest', async () => {
    const aTar = join(work, 'a25.tar');
    const bTar = join(work, 'b25.tar');
    await docker25Archive(A, 'deltaimg-test/oci-a:1', aTar);
    const bManifest = await docker25Archive(B, 'deltaimg-test/oci-b:1', bTar);
    const dimg = join(work, 'd25.dimg');
    await ok(['image', 'diff', `docker-archive:${aTar}`, `docker-archive:${bTar}`, '-o', dimg, '-q']);
    const out = join(work, 'b25-out.tar');
    const apply = JSON.parse(
      await ok(['image', 'apply', `docker-archive:${aTar}`, dimg, '-o', `docker-archive:${out}`, '--format', 'oci', '--json']),
    ) as ApplyJson;
    expect(apply.images).toEqual([expect.objectContaining({ configDigest: B.configDigest, manifestDigest: bManifest })]);
    const members = (await execa('tar', ['-tf', out])).stdout.split('\n');
    expect(members).toEqual(expect.arrayContaining(['oci-layout', 'index.json', 'manifest.json', `blobs/sha256/${bManifest.slice(7)}`]));
    // Uncompressed layers: each blob is the layer tar itself, so its bytes are B's, exactly.
    const odd = B.layers[2]!;
    const restored = await execa('tar', ['-xOf', out, `blobs/sha256/${sha(odd).slice(7)}`], { encoding: 'buffer' });
    expect(Buffer.from(restored.stdout as Uint8Array).equals(odd)).toBe(true);
    await verifyAgainst(`docker-archive:${out}`, dimg);
  }, 120_000);
});

describe('edge layers', () => {
  it('an empty layer, the same new layer twice, a whiteout-only layer, a tar without end blocks and one with trailing bytes are restored in place', async () => {
    const empty = Buffer.alloc(1024);
    const whiteouts = await streamTar([{ name: 'etc/', type: 'directory' }, { name: 'etc/.wh.passwd' }, { name: '.wh.home' }]);
    const odd = B.layers[2]!;
    // Tars as odd tools leave them: no end-of-archive blocks; bytes after the end blocks.
    const noEnd = odd.subarray(0, odd.length - 1024);
    const trailing = Buffer.concat([whiteouts, Buffer.from('trailing bytes after the end of the archive\n')]);
    const target = fixture([A.layers[0]!, empty, odd, whiteouts, odd, empty, noEnd, trailing]);
    const aDir = join(work, 'edge-a');
    const bDir = join(work, 'edge-b');
    const zlib6 = async (t: Buffer): Promise<LayerBlob> => ({ mediaType: MT.gzip, data: gzipSync(t) });
    await layoutOf(A, aDir, zlib6);
    const bManifest = await layoutOf(target, bDir, zlib6);
    const dimg = join(work, 'edge.dimg');
    const diff = JSON.parse(await ok(['image', 'diff', `oci:${aDir}`, `oci:${bDir}`, '-o', dimg, '--json'])) as {
      rebuiltLayers: number;
      sharedLayers: number;
    };
    expect(diff).toMatchObject({ rebuiltLayers: 5, sharedLayers: 1 });
    const out = join(work, 'edge-out');
    const apply = JSON.parse(await ok(['image', 'apply', `oci:${aDir}`, dimg, '-o', `oci:${out}`, '--json'])) as ApplyJson;
    expect(apply.images).toEqual([expect.objectContaining({ configDigest: target.configDigest, manifestDigest: bManifest, layers: 8 })]);
    const v = await verifyAgainst(`oci:${out}`, dimg);
    expect(v.report.images[0]!.layers.map((l) => l.diffId)).toEqual(target.layers.map(sha));
  }, 120_000);
});

/** Runs `deltaimg ARGS < input > output` through a shell: one stdin, one stdout, both files. */
function deltaimgPiped(args: string[], input: string | undefined, output: string) {
  const script = `exec node "$@"${input ? ' < "$DELTAIMG_IN"' : ''} > "$DELTAIMG_OUT"`;
  return execa('sh', ['-c', script, 'sh', CLI, ...args], {
    env: { DELTAIMG_DOCKER: DOCKER, DELTAIMG_IN: input ?? '', DELTAIMG_OUT: output },
    reject: false,
  });
}

/** Classic `docker save`-shaped archives of A and B (or `target`), made by hand. */
async function classicPair(aName: string, bName: string, target: Fixture = B): Promise<{ aTar: string; bTar: string }> {
  const aTar = join(work, `${aName.replace(/\W/g, '_')}.tar`);
  const bTar = join(work, `${bName.replace(/\W/g, '_')}.tar`);
  await writeTar(aTar, classicArchive(A.config, A.layers, aName));
  await writeTar(bTar, classicArchive(target.config, target.layers, bName));
  return { aTar, bTar };
}

describe('stdin and stdout', () => {
  it('diff -o - writes the .dimg to stdout; apply reads it from stdin and writes the archive to stdout', async () => {
    const { aTar, bTar } = await classicPair('deltaimg-test/stdio-a:1', 'deltaimg-test/stdio-b:1');
    const dimg = join(work, 'stdio.dimg');
    const diff = await deltaimgPiped(
      ['image', 'diff', `docker-archive:${aTar}`, `docker-archive:${bTar}`, '-o', '-', '-q'],
      undefined,
      dimg,
    );
    expect(diff.exitCode, diff.stderr).toBe(0);
    expect(diff.stderr).toBe('');
    const header = JSON.parse(await ok(['image', 'inspect', dimg, '--json'])) as DimgHeaderJson;
    expect(header.images[0]!.target.configDigest).toBe(B.configDigest);

    const out = join(work, 'stdio-out.tar');
    const apply = await deltaimgPiped(['image', 'apply', `docker-archive:${aTar}`, '-', '-o', '-'], dimg, out);
    expect(apply.exitCode, apply.stderr).toBe(0);
    expect(apply.stderr).toContain(`restored linux/amd64 image ${B.configDigest}`);
    const v = await verifyAgainst(`docker-archive:${out}`, dimg);
    expect(v.report.images[0]!.layers.map((l) => l.diffId)).toEqual(B.layers.map(sha));
  }, 120_000);

  it('a reader that closes stdout early gets a one-line error, not a stack', async () => {
    const { aTar, bTar } = await classicPair('deltaimg-test/epipe-a:1', 'deltaimg-test/epipe-b:1');
    // `true` exits at once, long before the diff writes its first byte: every write meets EPIPE.
    const r = await execa(
      'bash',
      [
        '-c',
        'node "$@" | true; exit "${PIPESTATUS[0]}"',
        'bash',
        CLI,
        'image',
        'diff',
        `docker-archive:${aTar}`,
        `docker-archive:${bTar}`,
        '-o',
        '-',
        '-q',
      ],
      { reject: false },
    );
    // 141 = 128 + SIGPIPE, what a shell reports for a writer stopped by a closed pipe.
    expect(r.exitCode).toBe(141);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  }, 60_000);

  it('two inputs from stdin are a one-line usage error', async () => {
    for (const [args, names] of [
      [['diff', '-', '-', '-o', join(work, 'never.dimg')], 'BASE and TARGET'],
      [['apply', '-', '-', '-o', `oci:${join(work, 'never')}`], 'BASE and DIMG'],
      [['verify', '-', '--against', '-'], 'IMAGE and --against'],
    ] as const) {
      const r = await deltaimg(['image', ...args]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(`${names} are both '-' (stdin)`);
    }
    expect(await exists(join(work, 'never.dimg'))).toBe(false);
    expect(await exists(join(work, 'never'))).toBe(false);
  });

  it('--json with -o - is a usage error (both want stdout)', async () => {
    const r = await deltaimg([
      'image',
      'diff',
      'docker-archive:/nonexistent-a.tar',
      'docker-archive:/nonexistent-b.tar',
      '-o',
      '-',
      '--json',
    ]);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('hostile and damaged inputs', () => {
  let aTar: string;
  let dimg: string;
  let members: string;
  let header: DimgHeaderJson;

  beforeAll(async () => {
    ({ aTar } = await classicPair('deltaimg-test/hostile-a:1', 'deltaimg-test/hostile-b:1'));
    const bTar = aTar.replace('hostile_a', 'hostile_b');
    dimg = join(work, 'hostile-base.dimg');
    await ok(['image', 'diff', `docker-archive:${aTar}`, `docker-archive:${bTar}`, '-o', dimg, '-q']);
    members = join(work, 'hostile-members');
    await mkdir(members);
    await execa('tar', ['-xf', dimg, '-C', members]);
    header = JSON.parse(await readFile(join(members, 'dimg.json'), 'utf8')) as DimgHeaderJson;
  }, 120_000);

  const craft = (name: string, head: DimgHeaderJson, entries: { name: string; data?: Buffer }[]) => craftDimg(members, name, head, entries);

  const allMembers = () => header.members.map((m) => ({ name: m.name }));

  async function expectRefused(base: string, file: string, pattern: RegExp, transport: 'oci' | 'docker-archive' = 'oci'): Promise<void> {
    const out = join(work, `refused-${Math.random().toString(36).slice(2)}`);
    const r = await deltaimg(['image', 'apply', `docker-archive:${base}`, file, '-o', `${transport}:${out}`]);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
    expect(await exists(out)).toBe(false);
  }

  it('the crafted copy of a good .dimg applies (the crafting itself is sound)', async () => {
    const copy = await craft('crafted-good.dimg', header, allMembers());
    const out = join(work, 'crafted-good-out');
    await ok(['image', 'apply', `docker-archive:${aTar}`, copy, '-o', `oci:${out}`, '-q']);
    await verifyAgainst(`oci:${out}`, copy);
  }, 120_000);

  it('refuses a member named ../x that the header does not list', async () => {
    const file = await craft('dotdot-member.dimg', header, [...allMembers(), { name: '../x', data: Buffer.from('escape') }]);
    await expectRefused(aTar, file, /dotdot-member\.dimg is damaged: unexpected member "\.\.\/x"/);
    expect(await exists(join(work, 'x'))).toBe(false);
  });

  it('refuses a header listing a member outside', async () => {
    const evil = { name: '../x', size: 6, sha256: sha(Buffer.from('escape')).slice(7) };
    const file = await craft('dotdot-listed.dimg', { ...header, members: [...header.members, evil] }, [
      ...allMembers(),
      { name: '../x', data: Buffer.from('escape') },
    ]);
    await expectRefused(aTar, file, /dotdot-listed\.dimg is damaged: its header lists an invalid member "\.\.\/x"/);
  });

  it('refuses a header whose layer or config points outside the members', async () => {
    const layer = header.layers[0]!;
    const outsideSkeleton = { ...header, layers: [{ ...layer, skeletonMember: '../../../etc/passwd' }, ...header.layers.slice(1)] };
    await expectRefused(
      aTar,
      await craft('outside-skeleton.dimg', outsideSkeleton, allMembers()),
      /outside-skeleton\.dimg is damaged: its header refers to member "\.\.\/\.\.\/\.\.\/etc\/passwd", which it does not list/,
    );
    const outsideDelta = { ...header, layers: [{ ...layer, deltaPrefix: '../../..' }, ...header.layers.slice(1)] };
    await expectRefused(
      aTar,
      await craft('outside-delta.dimg', outsideDelta, allMembers()),
      /outside-delta\.dimg is damaged: its header gives layer sha256:[0-9a-f]{64} an invalid delta prefix "\.\.\/\.\.\/\.\."/,
    );
    const image = header.images[0]!;
    const outsideConfig = { ...header, images: [{ ...image, target: { ...image.target, configMember: '/etc/passwd' } }] };
    await expectRefused(
      aTar,
      await craft('outside-config.dimg', outsideConfig, allMembers()),
      /outside-config\.dimg is damaged: its header refers to member "\/etc\/passwd"/,
    );
  });

  it('refuses a header listing a member the file does not hold', async () => {
    const file = await craft('missing-member.dimg', header, allMembers().slice(0, -1));
    await expectRefused(aTar, file, /missing-member\.dimg is damaged: .*truncated/);
  });

  it('refuses a base whose layer is damaged (rebuilt-from and shared layers alike)', async () => {
    for (const [i, layer] of A.layers.entries()) {
      const flipped = Buffer.from(layer);
      // Inside the first file's data block: the tar still parses, the bytes no longer hash to the diff_id.
      const at = firstDataOffset(flipped);
      flipped[at] = flipped[at]! ^ 0x20;
      const base = join(work, `damaged-base-${i}.tar`);
      await writeTar(
        base,
        classicArchive(
          A.config,
          A.layers.map((l, j) => (j === i ? flipped : l)),
          'deltaimg-test/damaged:1',
        ),
      );
      await expectRefused(base, dimg, new RegExp(`damaged-base-${i}\\.tar: .*hashes to sha256:[0-9a-f]{64}, expected ${sha(layer)}`));
    }
  }, 120_000);

  it('refuses a damaged base layer that is only copied into the result (nothing rebuilt), leaving no output', async () => {
    // B2 = A's first layer under a new config: apply extracts nothing and streams A's layer into the output.
    const b2 = fixture([A.layers[0]!]);
    const b2Tar = join(work, 'shared-only-b.tar');
    await writeTar(b2Tar, classicArchive(b2.config, b2.layers, 'deltaimg-test/shared-only:1'));
    const sharedOnly = join(work, 'shared-only.dimg');
    await ok(['image', 'diff', `docker-archive:${aTar}`, `docker-archive:${b2Tar}`, '-o', sharedOnly, '-q']);
    const header2 = JSON.parse(await ok(['image', 'inspect', sharedOnly, '--json'])) as DimgHeaderJson;
    expect(header2.layers).toEqual([]);
    expect(header2.members.map((m) => m.name)).toEqual([`config/${b2.configDigest.slice(7)}.json`]);
    const good = join(work, 'shared-only-out.tar');
    await ok(['image', 'apply', `docker-archive:${aTar}`, sharedOnly, '-o', `docker-archive:${good}`, '-q']);
    await verifyAgainst(`docker-archive:${good}`, sharedOnly);

    const flipped = Buffer.from(A.layers[0]!);
    const at = firstDataOffset(flipped);
    flipped[at] = flipped[at]! ^ 0x20;
    const base = join(work, 'damaged-shared.tar');
    await writeTar(base, classicArchive(A.config, [flipped, A.layers[1]!], 'deltaimg-test/damaged:1'));
    for (const transport of ['oci', 'docker-archive'] as const) {
      await expectRefused(base, sharedOnly, new RegExp(`hashes to sha256:[0-9a-f]{64}, expected ${sha(A.layers[0]!)}`), transport);
    }
  }, 120_000);
});

/** A .dimg holding `head` as its header, then the members named (their bytes from `members` unless given). */
async function craftDimg(members: string, name: string, head: DimgHeaderJson, entries: { name: string; data?: Buffer }[]): Promise<string> {
  const pack = tar.pack();
  pack.entry({ name: 'dimg.json' }, Buffer.from(JSON.stringify(head)));
  for (const e of entries) pack.entry({ name: e.name }, e.data ?? (await readFile(join(members, e.name))));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  const path = join(work, name);
  await writeFile(path, Buffer.concat(chunks));
  return path;
}

/** Offset of the first byte of file data in a tar: after the first header whose size is non-zero. */
function firstDataOffset(tarBytes: Buffer): number {
  for (let pos = 0; pos + 512 <= tarBytes.length;) {
    const size = parseInt(
      tarBytes
        .subarray(pos + 124, pos + 136)
        .toString('latin1')
        .replace(/\0.*$/, '')
        .trim() || '0',
      8,
    );
    const type = String.fromCharCode(tarBytes[pos + 156]!);
    if (size > 0 && (type === '0' || type === '\0')) return pos + 512;
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error('no file data in tar');
}

describeDocker('restored archives in the engine', () => {
  const images = new ImageNames();
  let E: Fixture;
  beforeAll(async () => {
    E = fixture([B.layers[0]!, B.layers[1]!, await targetOddLayer(true)]);
  });
  afterAll(() => images.removeAll());

  it("a classic archive restored through stdin and stdout loads with B's id (the engine unpacks every layer)", async () => {
    const bName = images.name('oci-stdio-b');
    const { aTar, bTar } = await classicPair(images.name('oci-stdio-a'), bName, E);
    const dimg = join(work, 'engine-stdio.dimg');
    expect(
      (await deltaimgPiped(['image', 'diff', `docker-archive:${aTar}`, `docker-archive:${bTar}`, '-o', '-', '-q'], undefined, dimg))
        .exitCode,
    ).toBe(0);
    const out = join(work, 'engine-stdio-out.tar');
    const apply = await deltaimgPiped(['image', 'apply', `docker-archive:${aTar}`, '-', '-o', '-', '-q'], dimg, out);
    expect(apply.exitCode, apply.stderr).toBe(0);
    await docker(['load', '-i', out]);
    expect(await imageId(bName)).toBe(E.configDigest);
    // The engine unpacked every layer (odd one included) into a filesystem: a container can be made and exported from it.
    const container = await docker(['create', bName]);
    try {
      const exported = await execa(DOCKER, ['export', container], { encoding: 'buffer' }).pipe('tar', ['-tf', '-']);
      const paths = exported.stdout.split('\n');
      expect(paths).toEqual(expect.arrayContaining(['opt/app.conf.hardlink', 'usr/share/olddir/new.txt', `${longDir}/settings.conf`]));
      expect(paths).not.toContain('etc/motd'); // whited out by the odd layer
    } finally {
      await docker(['rm', container]);
    }
  }, 120_000);

  it('one platform of a two-platform .dimg restored into the engine (apply --platform ... -o docker-daemon:)', async () => {
    const aDir = join(work, 'engine-multi-a');
    const bDir = join(work, 'engine-multi-b');
    await writeDir(aDir, (await twoPlatformLayout({ dir: '', manifest: [], config: A.config, layers: A.layers })).files);
    const bLayout = await twoPlatformLayout({ dir: '', manifest: [], config: E.config, layers: E.layers });
    await writeDir(bDir, bLayout.files);
    const dimg = join(work, 'engine-multi.dimg');
    await ok(['image', 'diff', `oci:${aDir}`, `oci:${bDir}`, '-o', dimg, '-q']);
    const name = images.name('oci-multi-arm');
    await ok(['image', 'apply', `oci:${aDir}`, dimg, '--platform', 'linux/arm64', '-o', `docker-daemon:${name}`, '-q']);
    expect(await imageId(name)).toBe(bLayout.arm64.config);
    expect(await docker(['image', 'inspect', '--format', '{{.Architecture}}', name])).toBe('arm64');
  }, 120_000);

  it("a Docker >= 25 form archive restored with --format oci loads with B's id", async () => {
    const aTar = join(work, 'engine-a25.tar');
    const bTar = join(work, 'engine-b25.tar');
    const bName = images.name('oci-d25-b');
    await docker25Archive(A, images.name('oci-d25-a'), aTar);
    await docker25Archive(E, bName, bTar);
    const dimg = join(work, 'engine-d25.dimg');
    await ok(['image', 'diff', `docker-archive:${aTar}`, `docker-archive:${bTar}`, '-o', dimg, '-q']);
    const out = join(work, 'engine-d25-out.tar');
    await ok(['image', 'apply', `docker-archive:${aTar}`, dimg, '-o', `docker-archive:${out}`, '--format', 'oci', '-q']);
    await docker(['load', '-i', out]);
    expect(await imageId(bName)).toBe(E.configDigest);
  }, 120_000);
});
