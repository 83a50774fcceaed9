/**
 * src/image on real `docker save` archives from the engine and on layouts built by hand from
 * their layers: reading every transport, round trips that keep the image id (and, when stored
 * blobs are kept, the manifest digest), verify, and the one-line errors for damaged or hostile input.
 */
import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  formatImageRef,
  formatPlatform,
  openImageSource,
  parseImageRef,
  parsePlatform,
  verifyImageSource,
  writeImages,
  type Image,
  type ImageRef,
  type ImageSource,
} from '../src/image/index.js';
import { DeltaimgError } from '../src/util/errors.js';
import { xorByte } from './helpers/bytes.js';
import { buildImage, describeDocker, docker, DOCKER, ImageNames, REPO_ROOT } from './helpers/docker.js';
import { docker25Form, extractClassic, sha, twoPlatformLayout, writeDir, writeTar, type ClassicSave } from './helpers/image-archives.js';

/** `node -e COPY_SCRIPT -- SRC DEST`: copies every image from SRC to DEST with the built dist/image. */
const COPY_SCRIPT = `
import { openImageSource, parseImageRef, writeImages } from ${JSON.stringify(join(REPO_ROOT, 'dist/image/index.js'))};
const [src, dest] = process.argv.slice(-2);
try {
  const source = await openImageSource(parseImageRef(src));
  try {
    await writeImages(parseImageRef(dest), source.images());
  } finally {
    await source.close();
  }
} catch (err) {
  process.stderr.write(err.message + '\\n');
  process.exitCode = 1;
}
`;

async function withSource<T>(ref: ImageRef, use: (src: ImageSource) => Promise<T>): Promise<T> {
  const src = await openImageSource(ref);
  try {
    return await use(src);
  } finally {
    await src.close();
  }
}

async function readAll(ref: ImageRef): Promise<Image[]> {
  return withSource(ref, async (src) => src.images());
}

/** The DeltaimgError a promise fails with; its message must be one line. */
async function failure(p: Promise<unknown>): Promise<DeltaimgError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeltaimgError);
  const e = err as DeltaimgError;
  expect(e.message).not.toContain('\n');
  return e;
}

async function drain(stream: NodeJS.ReadableStream): Promise<void> {
  for await (const _ of stream as AsyncIterable<Buffer>) void _;
}

describe('image references', () => {
  it('parses the containers-transports forms', () => {
    expect(parseImageRef('docker-archive:/a/b.tar')).toEqual({ transport: 'docker-archive', path: '/a/b.tar' });
    expect(parseImageRef('docker-archive:b.tar:localhost:5000/x:1')).toEqual({
      transport: 'docker-archive',
      path: 'b.tar',
      ref: 'localhost:5000/x:1',
    });
    expect(parseImageRef('oci:dir:latest')).toEqual({ transport: 'oci', path: 'dir', ref: 'latest' });
    expect(parseImageRef('oci-archive:x.tar')).toEqual({ transport: 'oci-archive', path: 'x.tar' });
    expect(parseImageRef('docker-daemon:busybox:1.36')).toEqual({ transport: 'docker-daemon', name: 'busybox:1.36' });
    expect(parseImageRef('-')).toEqual({ transport: 'stdio' });
    expect(parseImageRef('docker://127.0.0.1:5000/team/app:2')).toEqual({
      transport: 'docker',
      registry: '127.0.0.1:5000',
      repository: 'team/app',
      tag: '2',
    });
    const digest = `sha256:${'ab'.repeat(32)}`;
    expect(parseImageRef(`docker://ghcr.io/o/app@${digest}`)).toEqual({
      transport: 'docker',
      registry: 'ghcr.io',
      repository: 'o/app',
      digest,
    });
    expect(parseImageRef('docker://localhost/app')).toEqual({ transport: 'docker', registry: 'localhost', repository: 'app' });
    expect(parseImageRef('docker://busybox:1.36')).toEqual({
      transport: 'docker',
      registry: 'docker.io',
      repository: 'library/busybox',
      tag: '1.36',
    });
    expect(formatImageRef(parseImageRef(`docker://r.example:443/a/b:1@${digest}`))).toBe(`docker://r.example:443/a/b:1@${digest}`);
  });

  it('refuses bad references naming the text and the valid forms', () => {
    for (const bad of [
      'b.tar',
      'docker:x',
      'oci:',
      'docker-daemon:',
      'oci:dir:',
      'docker://r.example/App:1',
      'docker://r.example/app@sha256:12',
      'docker://r.example/app:-x',
      'docker://',
    ]) {
      let err: unknown;
      try {
        parseImageRef(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DeltaimgError);
      expect((err as Error).message).toContain(`"${bad}"`);
      expect((err as Error).message).toContain('docker-archive:PATH[:REF]');
    }
  });

  it('formats and parses platforms', () => {
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(formatPlatform({ os: 'linux', architecture: 'amd64' })).toBe('linux/amd64');
    expect(() => parsePlatform('linux')).toThrow(DeltaimgError);
  });
});

describe('hostile archives', () => {
  let work: string;
  beforeAll(async () => {
    await mkdir(join(REPO_ROOT, '.tmp'), { recursive: true });
    work = await mkdtemp(join(REPO_ROOT, '.tmp', 'image-hostile-'));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  const manifest = Buffer.from('[{"Config":"c.json","RepoTags":null,"Layers":[]}]');

  it('refuses an entry climbing out with ..', async () => {
    const path = join(work, 'dotdot.tar');
    await writeTar(
      path,
      new Map([
        ['manifest.json', manifest],
        ['../evil', Buffer.from('x')],
      ]),
    );
    const e = await failure(openImageSource({ transport: 'docker-archive', path }));
    expect(e.code).toBe('HOSTILE_PATH');
    expect(e.message).toContain(path);
    expect(e.message).toContain('../evil');
  });

  it('refuses absolute names, duplicated names and symlinks leading outside', async () => {
    const abs = join(work, 'abs.tar');
    await writeTar(abs, new Map([['/etc/passwd', Buffer.from('x')]]));
    expect((await failure(openImageSource({ transport: 'docker-archive', path: abs }))).code).toBe('HOSTILE_PATH');

    const dup = join(work, 'dup.tar');
    const tar = (await import('tar-stream')).default;
    const pack = tar.pack();
    pack.entry({ name: 'manifest.json' }, manifest);
    pack.entry({ name: 'manifest.json' }, manifest);
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
    await writeFile(dup, Buffer.concat(chunks));
    expect((await failure(openImageSource({ transport: 'docker-archive', path: dup }))).message).toContain('manifest.json appears twice');

    const link = join(work, 'link.tar');
    const p2 = tar.pack();
    p2.entry({ name: 'manifest.json' }, Buffer.from('[{"Config":"c.json","RepoTags":null,"Layers":[]}]'));
    p2.entry({ name: 'c.json', type: 'symlink', linkname: '../../etc/passwd' });
    p2.finalize();
    const c2: Buffer[] = [];
    for await (const c of p2 as AsyncIterable<Buffer>) c2.push(c);
    await writeFile(link, Buffer.concat(c2));
    const e = await failure(openImageSource({ transport: 'docker-archive', path: link }));
    expect(e.code).toBe('HOSTILE_PATH');
    expect(e.message).toContain('c.json');
  });

  it('says clearly when a file is not an archive', async () => {
    const path = join(work, 'text.tar');
    await writeFile(path, 'hello, this is not a tar archive at all'.repeat(20));
    expect((await failure(openImageSource({ transport: 'docker-archive', path }))).message).toContain('not a tar');
    expect((await failure(openImageSource({ transport: 'docker-archive', path: join(work, 'absent.tar') }))).code).toBe('IO');
  });
});

describeDocker('image transports on real docker save archives', () => {
  const names = new ImageNames();
  let work: string;
  let tag: string;
  let classicTar: string;
  let id: string;
  let rootfs: string[];
  let save: ClassicSave;

  beforeAll(async () => {
    await mkdir(join(REPO_ROOT, '.tmp'), { recursive: true });
    work = await mkdtemp(join(REPO_ROOT, '.tmp', 'image-transports-'));
    const ctx = join(work, 'ctx');
    await mkdir(join(ctx, 'dir'), { recursive: true });
    await writeFile(join(ctx, 'a.txt'), 'hello\n');
    await writeFile(join(ctx, 'dir', 'data.bin'), Buffer.alloc(200_000, 'deltaimg '));
    await writeFile(join(ctx, 'b.txt'), 'b\n');
    tag = names.name('transports');
    // The same COPY twice gives the same layer twice: docker save stores it once plus a symlink.
    const df = 'FROM scratch\nCOPY a.txt /a.txt\nCOPY dir/ /dir/\nCOPY b.txt /b.txt\nCOPY b.txt /b.txt\nCMD ["/x"]\n';
    const r = await buildImage(df, tag, [], ctx);
    expect(r.exitCode, r.all).toBe(0);
    id = await docker(['image', 'inspect', '--format', '{{.Id}}', tag]);
    rootfs = JSON.parse(await docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', tag])) as string[];
    classicTar = join(work, 'classic.tar');
    await docker(['save', '-o', classicTar, tag]);
    save = await extractClassic(classicTar, join(work, 'classic'));
  });
  afterAll(async () => {
    await names.removeAll();
    await rm(work, { recursive: true, force: true });
  });

  it('reads a classic docker save: diff_ids are the engine RootFS layers, the config digest is the image id', async () => {
    await withSource({ transport: 'docker-archive', path: classicTar }, async (src) => {
      const [image, ...more] = src.images();
      expect(more).toHaveLength(0);
      expect(image!.configDigest).toBe(id);
      expect(sha(image!.config)).toBe(id);
      expect(image!.layers.map((l) => l.diffId)).toEqual(rootfs);
      expect(image!.layers.map((l) => l.compression)).toEqual(['none', 'none', 'none', 'none']);
      expect(image!.names).toEqual([tag]);
      expect(formatPlatform(image!.platform)).toBe('linux/amd64');
      expect(image!.manifest).toBeUndefined();
      const report = await verifyImageSource(src);
      expect(report.ok).toBe(true);
      expect(report.images[0]!.layers.every((l) => l.ok)).toBe(true);
    });
    // REF selects by tag; an unknown one lists the tags.
    expect(await readAll({ transport: 'docker-archive', path: classicTar, ref: tag })).toHaveLength(1);
    expect((await failure(openImageSource({ transport: 'docker-archive', path: classicTar, ref: 'nope:1' }))).message).toContain(tag);
  });

  it('classic archive written back loads into the engine with the same image id', async () => {
    const copyTag = names.name('classic-copy');
    const out = join(work, 'rewritten.tar');
    await withSource({ transport: 'docker-archive', path: classicTar }, async (src) => {
      const written = await writeImages({ transport: 'docker-archive', path: out, ref: copyTag }, [src.images()[0]!]);
      expect(written[0]!.configDigest).toBe(id);
    });
    await execa(DOCKER, ['load', '-i', out]);
    expect(await docker(['image', 'inspect', '--format', '{{.Id}}', copyTag])).toBe(id);
    // Nothing is left beside the output; writing over it is refused.
    expect(
      (
        await failure(
          writeImages({ transport: 'docker-archive', path: out }, [(await readAll({ transport: 'docker-archive', path: out }))[0]!]),
        )
      ).code,
    ).toBe('USAGE');
  });

  it('docker-archive -> oci dir -> oci-archive -> docker-archive keeps the id and the manifest digest', async () => {
    const ociDir = join(work, 'layout');
    const ociTar = join(work, 'layout.tar');
    const back = join(work, 'back.tar');
    const [first] = await withSource({ transport: 'docker-archive', path: classicTar }, async (src) =>
      writeImages({ transport: 'oci', path: ociDir, ref: 'v1' }, [src.images()[0]!]),
    );
    const fromDir = await withSource({ transport: 'oci', path: ociDir, ref: 'v1' }, async (src) => {
      const [image] = src.images();
      expect(image!.configDigest).toBe(id);
      expect(image!.manifest!.digest).toBe(first!.manifestDigest);
      expect((await verifyImageSource(src)).ok).toBe(true);
      return writeImages({ transport: 'oci-archive', path: ociTar }, [image!]);
    });
    expect(fromDir[0]!.manifestDigest).toBe(first!.manifestDigest);
    await withSource({ transport: 'oci-archive', path: ociTar }, async (src) => {
      const [image] = src.images();
      expect(image!.manifest!.digest).toBe(first!.manifestDigest);
      expect(image!.names).toEqual(['v1']);
      await writeImages({ transport: 'docker-archive', path: back }, [image!]);
    });
    const [again] = await readAll({ transport: 'docker-archive', path: back });
    expect(again!.configDigest).toBe(id);
    expect(again!.layers.map((l) => l.diffId)).toEqual(rootfs);
  });

  it('reads the OCI-layout form Docker >= 25 saves, keeping its manifest bytes; writes it too, and 20.10 loads it', async () => {
    const { files, manifestDigest } = docker25Form(save, 'example/app:2');
    const path = join(work, 'docker25.tar');
    await writeTar(path, files);
    const [image] = await readAll({ transport: 'docker-archive', path });
    expect(image!.configDigest).toBe(id);
    expect(image!.manifest?.digest).toBe(manifestDigest);
    expect(image!.layers.map((l) => l.diffId)).toEqual(rootfs);
    expect(image!.layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    expect(image!.names).toEqual(['example/app:2']);
    // The same file read as oci-archive: names from the index annotations.
    const [asOci] = await readAll({ transport: 'oci-archive', path });
    expect(asOci!.names).toEqual(['docker.io/library/example/app:2']);
    expect(await readAll({ transport: 'oci-archive', path, ref: '2' })).toHaveLength(1);

    const ociForm = join(work, 'oci-form.tar');
    const loadTag = names.name('oci-form');
    const [w] = await writeImages({ transport: 'docker-archive', path: ociForm, ref: loadTag }, [image!], { format: 'oci' });
    expect(w!.manifestDigest).toBe(manifestDigest);
    await execa(DOCKER, ['load', '-i', ociForm]);
    expect(await docker(['image', 'inspect', '--format', '{{.Id}}', loadTag])).toBe(id);
  });

  it('a two-platform OCI index with gzip and zstd layers: both images read, attestation skipped, stored blobs rewritten byte-exact', async () => {
    const layout = await twoPlatformLayout(save);
    const dir = join(work, 'multi');
    await writeDir(dir, layout.files);
    const images = await readAll({ transport: 'oci', path: dir, ref: 'multi' });
    expect(images.map((i) => formatPlatform(i.platform))).toEqual(['linux/amd64', 'linux/arm64/v8']);
    expect(images.map((i) => i.configDigest)).toEqual([layout.amd64.config, layout.arm64.config]);
    expect(images.map((i) => i.manifest!.digest)).toEqual([layout.amd64.manifest, layout.arm64.manifest]);
    expect(images[0]!.layers.map((l) => l.compression)).toEqual(['gzip', 'gzip', 'gzip', 'gzip']);
    expect(images[1]!.layers.map((l) => l.compression)).toEqual(['zstd', 'zstd', 'zstd', 'zstd']);
    for (const image of images) expect(image.layers.map((l) => l.diffId)).toEqual(rootfs);
    // The tars come back out of both compressions, checked against the diff_ids.
    for (const image of images) for (const l of image.layers) await drain(await l.openUncompressed());
    await withSource({ transport: 'oci', path: dir }, async (src) => expect((await verifyImageSource(src)).ok).toBe(true));

    const copy = join(work, 'multi-copy.tar');
    const written = await writeImages({ transport: 'oci-archive', path: copy }, images);
    expect(written.map((w) => w.manifestDigest)).toEqual([layout.amd64.manifest, layout.arm64.manifest]);
    const reread = await readAll({ transport: 'oci-archive', path: copy });
    expect(reread.map((i) => i.layers[0]!.digest)).toEqual(images.map((i) => i.layers[0]!.digest));

    // To a classic docker-archive the layers go uncompressed; the amd64 image loads with its id.
    const classicOut = join(work, 'multi-amd64.tar');
    const loadTag = names.name('from-gzip');
    await writeImages({ transport: 'docker-archive', path: classicOut, ref: loadTag }, [images[0]!]);
    await execa(DOCKER, ['load', '-i', classicOut]);
    expect(await docker(['image', 'inspect', '--format', '{{.Id}}', loadTag])).toBe(id);
  });

  it('a stored blob that does not hash to its digest is not kept: the tar is written with a new manifest', async () => {
    const [image] = await readAll({ transport: 'docker-archive', path: classicTar });
    const layers = [...image!.layers];
    const tar = layers[1]!;
    // A recomputed (recompressed) blob whose bytes are not what its digest says.
    layers[1] = {
      ...tar,
      digest: `sha256:${'0'.repeat(64)}`,
      size: 10,
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      compression: 'gzip',
      recomputed: true,
      openStored: () => tar.openUncompressed(),
    };
    const out = join(work, 'fallback');
    const [w] = await writeImages({ transport: 'oci', path: out }, [{ ...image!, layers }]);
    expect(w!.layerDigests).toEqual(rootfs);
    const [back] = await readAll({ transport: 'oci', path: out });
    expect(back!.layers.map((l) => l.mediaType)).toEqual(Array(4).fill('application/vnd.oci.image.layer.v1.tar'));
  });

  it('a layer whose bytes are not its diff_id fails the write and leaves nothing behind; a failed docker load is an error', async () => {
    const [image] = await readAll({ transport: 'docker-archive', path: classicTar });
    const wrongTar = image!.layers[0]!;
    const toWrite = { ...image!, layers: [...image!.layers] };
    toWrite.layers[1] = {
      ...toWrite.layers[1]!,
      openUncompressed: () => wrongTar.openUncompressed(),
      openStored: () => wrongTar.openStored(),
      uncompressedSize: wrongTar.size,
    };
    const outDir = join(work, 'no-partial');
    await mkdir(outDir);
    for (const dest of [
      { transport: 'docker-archive', path: join(outDir, 'x.tar') },
      { transport: 'oci-archive', path: join(outDir, 'x-oci.tar') },
      { transport: 'oci', path: join(outDir, 'layout') },
    ] as ImageRef[]) {
      const e = await failure(writeImages(dest, [toWrite]));
      expect(e.code).toBe('BAD_IMAGE');
      expect(e.message).toContain(toWrite.layers[1]!.diffId);
    }
    expect(await readdir(outDir)).toEqual([]);
    expect((await failure(writeImages({ transport: 'docker-archive', path: join(work, 'no-such-dir', 'x.tar') }, [image!]))).code).toBe(
      'IO',
    );
    const loadFailure = await failure(writeImages({ transport: 'docker-daemon', name: 'UPPER/case:1' }, [image!]));
    expect(loadFailure.code).toBe('DOCKER');
    expect(loadFailure.message).toContain('docker load failed');
  });

  it('damaged inputs: truncated archive, wrong blob bytes, missing blob, diff_id count mismatch', async () => {
    const cut = join(work, 'cut.tar');
    await copyFile(classicTar, cut);
    await truncate(cut, 50_000);
    const e1 = await failure(openImageSource({ transport: 'docker-archive', path: cut }));
    expect(e1.code).toBe('BAD_IMAGE');
    expect(e1.message).toMatch(/truncated/);

    const layout = await twoPlatformLayout(save);
    const dir = join(work, 'damaged');
    await writeDir(dir, layout.files);
    const [amd] = await readAll({ transport: 'oci', path: dir });
    const victim = join(dir, 'blobs', 'sha256', amd!.layers[1]!.digest.slice(7));
    const bytes = await readFile(victim);
    xorByte(bytes, bytes.length - 9, 0xff); // inside the gzip trailer's CRC
    await writeFile(victim, bytes);
    await withSource({ transport: 'oci', path: dir }, async (src) => {
      const report = await verifyImageSource(src);
      expect(report.ok).toBe(false);
      expect(report.images[0]!.layers.map((l) => l.ok)).toEqual([true, false, true, true]);
      expect(report.images[0]!.layers[1]!.actual).toMatch(/stored blob sha256:|unreadable/);
      const e = await failure(src.images()[0]!.layers[1]!.openStored().then(drain));
      expect(e.message).toContain(amd!.layers[1]!.digest.slice(7));
    });

    const configFile = join(dir, 'blobs', 'sha256', amd!.configDigest.slice(7));
    const config = await readFile(configFile);
    await writeFile(configFile, Buffer.from(config.toString('utf8').replace('"amd64"', '"AMD64"')));
    const e2 = await failure(openImageSource({ transport: 'oci', path: dir }));
    expect(e2.message).toContain(`config blobs/sha256/${amd!.configDigest.slice(7)} hashes to`);
    await writeFile(configFile, config);

    await unlink(victim);
    const e3 = await failure(openImageSource({ transport: 'oci', path: dir }));
    expect(e3.message).toContain(`blobs/sha256/${amd!.layers[1]!.digest.slice(7)} is missing`);

    const badCount = join(work, 'count.tar');
    const files = new Map<string, Buffer>([...docker25Form(save, 'x:1').files]);
    const m = JSON.parse(files.get('manifest.json')!.toString()) as { Layers: string[] }[];
    m[0]!.Layers.pop();
    files.set('manifest.json', Buffer.from(JSON.stringify(m)));
    await writeTar(badCount, files);
    expect((await failure(openImageSource({ transport: 'docker-archive', path: badCount }))).message).toContain(
      'lists 3 layers but the config has 4',
    );
  });

  it('a docker save of two images: REF picks one; both written to one archive share their common layer', async () => {
    const tag2 = names.name('second');
    const r = await buildImage('FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /other.txt\n', tag2, [], join(work, 'ctx'));
    expect(r.exitCode, r.all).toBe(0);
    const id2 = await docker(['image', 'inspect', '--format', '{{.Id}}', tag2]);
    const both = join(work, 'both.tar');
    await docker(['save', '-o', both, tag, tag2]);
    const e = await failure(openImageSource({ transport: 'docker-archive', path: both }));
    expect(e.message).toContain(tag);
    expect(e.message).toContain(tag2);
    const [second] = await readAll({ transport: 'docker-archive', path: both, ref: tag2 });
    expect(second!.configDigest).toBe(id2);
    const [first] = await readAll({ transport: 'docker-archive', path: both, ref: tag });
    expect(first!.configDigest).toBe(id);
    expect(first!.layers[0]!.diffId).toBe(second!.layers[0]!.diffId);

    const out = join(work, 'both-rewritten.tar');
    const t1 = names.name('both-1');
    const t2 = names.name('both-2');
    await writeImages({ transport: 'docker-archive', path: out }, [
      { ...first!, names: [t1] },
      { ...second!, names: [t2] },
    ]);
    const members = (await execa('tar', ['-tf', out])).stdout.split('\n');
    expect(members.filter((m) => m.endsWith('layer.tar'))).toHaveLength(
      new Set([...first!.layers, ...second!.layers].map((l) => l.diffId)).size,
    );
    await execa(DOCKER, ['load', '-i', out]);
    expect(await docker(['image', 'inspect', '--format', '{{.Id}}', t1])).toBe(id);
    expect(await docker(['image', 'inspect', '--format', '{{.Id}}', t2])).toBe(id2);
  });

  it('stdio: reads an archive from stdin (docker or OCI, detected) and writes a docker-archive to stdout', async () => {
    // Through dist/ (built by `npm test`) in a child process, as the CLI will run it.
    const copy = (args: string[], opts: { inputFile?: string; stdout?: { file: string } }) =>
      execa('node', ['--input-type=module', '-e', COPY_SCRIPT, '--', ...args], { cwd: REPO_ROOT, ...opts, reject: false });
    const fromStdin = join(work, 'from-stdin');
    const r1 = await copy(['-', `oci:${fromStdin}`], { inputFile: classicTar });
    expect(r1.exitCode, r1.stderr).toBe(0);
    const ociTar = join(work, 'stdin-layout.tar');
    await execa('tar', ['-cf', ociTar, '-C', fromStdin, '.']);
    const toStdout = join(work, 'to-stdout.tar');
    const r2 = await copy(['-', '-'], { inputFile: ociTar, stdout: { file: toStdout } });
    expect(r2.exitCode, r2.stderr).toBe(0);
    const [image] = await readAll({ transport: 'docker-archive', path: toStdout });
    expect(image!.configDigest).toBe(id);
    expect(image!.layers.map((l) => l.diffId)).toEqual(rootfs);
    // A damaged stdin is a one-line error naming "-".
    const r3 = await copy(['-', `oci:${join(work, 'never')}`], { inputFile: join(work, 'cut.tar') });
    expect(r3.exitCode).toBe(1);
    expect(r3.stderr.trim()).toMatch(/^archive - /);
  });

  it('docker-daemon: reads through docker save and writes through docker load', async () => {
    const copyTag = names.name('daemon-copy');
    const untagged = names.track(`${copyTag.replace(/:1$/, '')}-untagged:latest`);
    await withSource({ transport: 'docker-daemon', name: tag }, async (src) => {
      const [image] = src.images();
      expect(image!.configDigest).toBe(id);
      expect(image!.layers.map((l) => l.diffId)).toEqual(rootfs);
      await writeImages({ transport: 'docker-daemon', name: copyTag }, [image!]);
      // A name without a tag is loaded as :latest.
      await writeImages({ transport: 'docker-daemon', name: untagged.replace(/:latest$/, '') }, [image!]);
    });
    expect(await docker(['image', 'inspect', '--format', '{{.Id}}', copyTag])).toBe(id);
    expect(await docker(['image', 'inspect', '--format', '{{.Id}}', untagged])).toBe(id);
    const e = await failure(openImageSource({ transport: 'docker-daemon', name: 'deltaimg-test/absent:1' }));
    expect(e.code).toBe('DOCKER');
  });
});
