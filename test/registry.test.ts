/**
 * The docker:// transport on Debian's docker-registry (distribution 2.8): images the engine
 * pushed (its own gzip) read, diffed and restored through the registry, `docker pull` of what
 * our writer pushed, blob skip and cross-repository mount, multi-platform indexes; a TLS
 * registry with htpasswd auth (CA via --cert-dir, --creds, config.json auths, a credential
 * helper on PATH); a bearer-token proxy that expires tokens early, drops a blob download
 * half-way and corrupts blob bytes; a 404 manifest. Errors are one line with exit code 1.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openImageSource, parseImageRef, writeImages, type Image } from '../src/image/index.js';
import { closeConnections, RegistryClient } from '../src/image/registry/client.js';
import { readRegistryImages, topDescriptor } from '../src/image/registry/reader.js';
import { pushImages } from '../src/image/registry/writer.js';
import { isRawLayer } from '../src/image/types.js';
import { listDeltas } from '../src/imagedelta/publish.js';
import type { BlobPush } from '../src/image/registry/client.js';
import { DeltaimgError } from '../src/util/errors.js';
import { xorByte } from './helpers/bytes.js';
import { buildImage, describeDocker, docker, DOCKER, imageId, registryAddress, REPO_ROOT } from './helpers/docker.js';
import { extractClassic, sha, twoPlatformLayout, writeDir } from './helpers/image-archives.js';
import { htpasswdFile, makeCa, startRegistry, startTokenProxy, type TestRegistry, type TokenProxy } from './helpers/registries.js';

const CLI = join(REPO_ROOT, 'dist/cli/main.js');

async function cli(args: string[], env: Record<string, string> = {}) {
  const r = await execa('node', [CLI, ...args], { reject: false, env: { DOCKER_CONFIG: emptyDockerConfig, ...env } });
  return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

function oneLineError(r: { code?: number; stderr: string }): string {
  expect(r.code).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^deltaimg: error: /);
  return lines[0]!;
}

async function failure(p: Promise<unknown>): Promise<DeltaimgError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DeltaimgError) return err;
    throw err;
  }
  throw new Error('expected a DeltaimgError');
}

let emptyDockerConfig = '';

describeDocker(
  'docker:// transport on a real registry',
  () => {
    let work: string;
    let R: string;
    const repo = `deltaimg-test-${randomBytes(3).toString('hex')}`;
    const pushedByEngine: string[] = [];
    let idA: string;
    let idB: string;

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'deltaimg-registry-test-'));
      emptyDockerConfig = join(work, 'no-docker-config');
      await mkdir(emptyDockerConfig);
      R = registryAddress();
      // Two images FROM scratch: a shared first layer, a second layer that changes a little.
      const ctx = join(work, 'ctx');
      // Text of random words: it compresses like code or prose (many short matches), so an engine-gzipped
      // layer needs a token recipe; b and c change a few files.
      const vocabulary = Array.from({ length: 800 }, () =>
        randomBytes(4 + (randomBytes(1)[0]! % 5))
          .toString('hex')
          .slice(0, 3 + (randomBytes(1)[0]! % 7)),
      );
      const texts = Array.from({ length: 40 }, () =>
        Array.from({ length: 3000 }, () => vocabulary[randomBytes(2).readUInt16LE(0) % vocabulary.length]).join(' '),
      );
      for (const v of ['a', 'b', 'c']) {
        await mkdir(join(ctx, v, 'doc'), { recursive: true });
        for (const [i, text] of texts.entries())
          await writeFile(join(ctx, v, 'doc', `f${i}.txt`), `${text}\n${v !== 'a' && i % 10 === 0 ? `changed in ${v}\n` : ''}`);
      }
      await copyFile('/usr/bin/ls', join(ctx, 'ls'));
      for (const [v, tag] of [
        ['a', '1'],
        ['b', '2'],
        ['c', '0'],
      ] as const) {
        const ref = `${R}/${repo}/app:${tag}`;
        const built = await buildImage(`FROM scratch\nCOPY ls /bin/ls\nCOPY ${v}/ /data/\n`, ref, [], ctx);
        expect(built.exitCode, built.all).toBe(0);
        await docker(['push', ref]);
        pushedByEngine.push(ref);
      }
      idA = await imageId(`${R}/${repo}/app:1`);
      idB = await imageId(`${R}/${repo}/app:2`);
    }, 180_000);

    afterAll(async () => {
      closeConnections();
      await execa(DOCKER, ['rmi', '-f', ...pushedByEngine], { reject: false });
      // Pulls by digest leave untagged images of our repositories: removed by id (the content is this run's own).
      const ours = (await docker(['images', '--format', '{{.Repository}} {{.ID}}'])).split('\n').filter((l) => l.includes(repo));
      const ids = [...new Set(ours.map((l) => l.split(' ')[1]!))];
      if (ids.length) await execa(DOCKER, ['rmi', '-f', ...ids], { reject: false });
      await rm(work, { recursive: true, force: true });
    });

    it('reads an engine-pushed image (its config is the image id); a 404 manifest is one line, exit 1', async () => {
      const read = await readRegistryImages({ registry: R, repository: `${repo}/app`, tag: '2' });
      expect(read.images).toHaveLength(1);
      expect(read.images[0]!.configDigest).toBe(idB);
      expect(read.images[0]!.layers.map((l) => l.compression)).toEqual(['gzip', 'gzip']);
      const ok = await cli(['image', 'verify', `docker://${R}/${repo}/app:2`]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toContain('all match their diff_ids');
      const missing = oneLineError(await cli(['image', 'verify', `docker://${R}/${repo}/app:nope`]));
      expect(missing).toContain(`docker://${R}/${repo}/app:nope: no such manifest`);
    });

    it("diff and apply through the registry; apply -o docker:// gives an image docker pulls by digest, with B's image id", async () => {
      const dimg = join(work, 'a-to-b.dimg');
      const diff = await cli(['image', 'diff', `docker://${R}/${repo}/app:1`, `docker://${R}/${repo}/app:2`, '-o', dimg, '-q']);
      expect(diff.code, diff.stderr).toBe(0);
      const applied = await cli([
        'image',
        'apply',
        `docker://${R}/${repo}/app:1`,
        dimg,
        '-o',
        `docker://${R}/${repo}/app:2-restored`,
        '--json',
        '-q',
      ]);
      expect(applied.code, applied.stderr).toBe(0);
      const report = JSON.parse(applied.stdout) as { images: { configDigest: string; manifestDigest: string }[] };
      expect(report.images[0]!.configDigest).toBe(idB);
      // The engine's gzip layers come back byte for byte (exact-deflate recipes): B's manifest digest.
      const original = await topDescriptor({ registry: R, repository: `${repo}/app`, tag: '2' });
      expect(report.images[0]!.manifestDigest).toBe(original.digest);
      const pinned = `${R}/${repo}/app@${report.images[0]!.manifestDigest}`;
      await docker(['pull', pinned]);
      expect(await imageId(pinned)).toBe(idB);
      // And to a local archive from the registry base: the same image id.
      const out = join(work, 'restored.tar');
      const toFile = await cli(['image', 'apply', `docker://${R}/${repo}/app:1`, dimg, '-o', `docker-archive:${out}`, '-q']);
      expect(toFile.code, toFile.stderr).toBe(0);
      const verify = await cli(['image', 'verify', `docker-archive:${out}`, '--against', dimg]);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
      expect(idA).not.toBe(idB);
    });

    it('our writer pushes an image docker pulls; pushed again every blob exists; to another repository they are mounted', async () => {
      const saved = join(work, 'b.tar');
      await docker(['save', '-o', saved, `${R}/${repo}/app:2`]);
      const source = await openImageSource(parseImageRef(`docker-archive:${saved}`));
      const events: BlobPush[] = [];
      const onBlob = (_d: string, _s: number, how: BlobPush) => events.push(how);
      try {
        const first = await pushImages({ registry: R, repository: `${repo}/pushed`, tag: '1' }, source.images(), { onBlob });
        expect(events).toEqual(['uploaded', 'uploaded', 'uploaded']);
        await docker(['pull', `${R}/${repo}/pushed@${first.digest}`]);
        expect(await imageId(`${R}/${repo}/pushed@${first.digest}`)).toBe(idB);
        events.length = 0;
        const again = await pushImages({ registry: R, repository: `${repo}/pushed`, tag: '1' }, source.images(), { onBlob });
        expect(again.digest).toBe(first.digest);
        expect(events).toEqual(['exists', 'exists', 'exists']);
      } finally {
        await source.close();
      }
      // From the registry to another repository of it: layers mount (never downloaded), the manifest stays byte for byte.
      events.length = 0;
      const fromRegistry = await readRegistryImages({ registry: R, repository: `${repo}/app`, tag: '2' });
      const copied = await pushImages({ registry: R, repository: `${repo}/copy`, tag: '2' }, fromRegistry.images, { onBlob });
      expect(events.slice(0, 2)).toEqual(['mounted', 'mounted']);
      expect(copied.digest).toBe(fromRegistry.digest);
    });

    it('two platforms are pushed as an index (manifests first, the tag last) and read back per platform', async () => {
      const saved = join(work, 'a.tar');
      await docker(['save', '-o', saved, `${R}/${repo}/app:1`]);
      const layout = await twoPlatformLayout(await extractClassic(saved, join(work, 'a-extracted')));
      const dir = join(work, 'multi-layout');
      await writeDir(dir, layout.files);
      const src = await openImageSource(parseImageRef(`oci:${dir}`));
      try {
        const written = await writeImages(parseImageRef(`docker://${R}/${repo}/multi:1`), src.images());
        expect(written.map((w) => w.manifestDigest)).toEqual([layout.amd64.manifest, layout.arm64.manifest]);
      } finally {
        await src.close();
      }
      const back = await readRegistryImages({ registry: R, repository: `${repo}/multi`, tag: '1' });
      expect(back.index?.mediaType).toBe('application/vnd.oci.image.index.v1+json');
      expect(back.images.map((i) => i.manifest!.digest)).toEqual([layout.amd64.manifest, layout.arm64.manifest]);
      expect(back.images.map((i) => i.layers[0]!.compression)).toEqual(['gzip', 'zstd']);
      // The engine pulls its own platform from the index.
      await docker(['pull', `${R}/${repo}/multi:1`]);
      expect(await imageId(`${R}/${repo}/multi:1`)).toBe(layout.amd64.config);
      await docker(['rmi', `${R}/${repo}/multi:1`]);
    });

    it('multi-platform: an index of engine-gzipped layers restored to the registry keeps every manifest digest and the index digest', async () => {
      const one = async (tag: string) => (await readRegistryImages({ registry: R, repository: `${repo}/app`, tag })).images[0]!;
      const asArm64 = (img: Image): Image => {
        const config = Buffer.from(
          JSON.stringify({ ...(JSON.parse(img.config.toString('utf8')) as object), architecture: 'arm64', variant: 'v8' }),
        );
        const { manifest: _dropped, ...rest } = img;
        return { ...rest, config, configDigest: sha(config), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } };
      };
      await pushImages({ registry: R, repository: `${repo}/multi-pair`, tag: 'a' }, [await one('1'), asArm64(await one('0'))]);
      const b = await pushImages({ registry: R, repository: `${repo}/multi-pair`, tag: 'b' }, [await one('2'), asArm64(await one('2'))]);
      const dimg = join(work, 'multi.dimg');
      const diff = await cli([
        'image',
        'diff',
        `docker://${R}/${repo}/multi-pair:a`,
        `docker://${R}/${repo}/multi-pair:b`,
        '-o',
        dimg,
        '-q',
      ]);
      expect(diff.code, diff.stderr).toBe(0);
      // The .dimg carries B's index bytes, so the restore can push that very index.
      const header = JSON.parse((await cli(['image', 'inspect', dimg, '--json'])).stdout) as { targetIndex?: { digest: string } };
      expect(header.targetIndex?.digest).toBe(b.digest);
      const applied = await cli([
        'image',
        'apply',
        `docker://${R}/${repo}/multi-pair:a`,
        dimg,
        '-o',
        `docker://${R}/${repo}/multi-pair:b-restored`,
        '--json',
        '-q',
      ]);
      expect(applied.code, applied.stderr).toBe(0);
      const report = JSON.parse(applied.stdout) as { images: { manifestDigest: string; originalManifestDigest: string }[] };
      expect(report.images.map((i) => i.manifestDigest)).toEqual(b.images.map((i) => i.manifestDigest));
      expect((await topDescriptor({ registry: R, repository: `${repo}/multi-pair`, tag: 'b-restored' })).digest).toBe(b.digest);
    });

    it('a layer whose bytes do not match its digest is refused and nothing is tagged', async () => {
      const [image] = (await readRegistryImages({ registry: R, repository: `${repo}/app`, tag: '2' })).images;
      const layers = [...image!.layers];
      const good = layers[1];
      if (good === undefined || !isRawLayer(good)) throw new Error('a registry layer reads its stored bytes unchecked (RawLayer)');
      // Stored bytes that are not what the digest says: B's blob with a byte flipped.
      const flipped = async () => {
        const chunks: Buffer[] = [];
        for await (const c of (await good.openStoredUnchecked()) as AsyncIterable<Buffer>) chunks.push(c);
        const bytes = Buffer.concat(chunks);
        xorByte(bytes, bytes.length - 1, 0xff);
        return Readable.from([bytes]);
      };
      const { storedLayer } = await import('../src/image/layer.js');
      layers[1] = storedLayer({ ...good, label: 'tampered layer', openRaw: flipped });
      const bad: Image = { ...image!, layers };
      const err = await failure(pushImages({ registry: R, repository: `${repo}/tampered`, tag: '1' }, [bad]));
      expect(err.message).toContain('hashes to');
      const client = await RegistryClient.open(R, `${repo}/tampered`);
      expect(await client.getManifest('1', ['application/vnd.docker.distribution.manifest.v2+json'])).toBeUndefined();
      expect(await client.hasBlob(good.digest)).toBe(false);
    });

    it('diff --push publishes deltas from several bases beside B (referrers tag schema on distribution 2.8)', async () => {
      const pushed = await cli([
        'image',
        'diff',
        '--from',
        `docker://${R}/${repo}/app:1,docker://${R}/${repo}/app:0`,
        `docker://${R}/${repo}/app:2`,
        '--push',
        '--json',
        '-q',
      ]);
      expect(pushed.code, pushed.stderr).toBe(0);
      const results = JSON.parse(pushed.stdout) as {
        base: string;
        subject: string;
        artifact: string;
        listedBy: string;
        light?: { artifact: string; bytes: number };
        bytes: number;
      }[];
      expect(results.map((r) => r.base)).toEqual([`docker://${R}/${repo}/app:1`, `docker://${R}/${repo}/app:0`]);
      expect(results.map((r) => r.listedBy)).toEqual(['tag-schema', 'tag-schema']);
      // The engine's gzip needs token recipes, most of the file: a lighter variant (same image id) sits beside each.
      for (const r of results) expect(r.light!.bytes).toBeLessThan(r.bytes / 2);
      const client = await RegistryClient.open(R, `${repo}/app`);
      const subject = results[0]!.subject;
      const listed = await listDeltas(client, subject);
      expect(listed.filter((d) => d.blobs === 'exact').map((d) => d.artifact.digest)).toEqual(results.map((r) => r.artifact));
      expect(listed.filter((d) => d.blobs === 'tars').map((d) => d.artifact.digest)).toEqual(results.map((r) => r.light!.artifact));
      expect(listed[0]!.baseImageIds).toEqual([idA]);
      // The artifact manifest: OCI 1.1, subject B, one .dimg layer.
      const manifest = await client.getManifest(results[0]!.artifact, ['application/vnd.oci.image.manifest.v1+json']);
      const doc = JSON.parse(manifest!.bytes.toString()) as {
        artifactType: string;
        subject: { digest: string };
        layers: { mediaType: string }[];
        annotations: Record<string, string>;
      };
      expect(doc.artifactType).toBe('application/vnd.deltaimg.delta.v1');
      expect(doc.subject.digest).toBe(subject);
      expect(doc.layers.map((l) => l.mediaType)).toEqual(['application/vnd.deltaimg.delta.v1+dimg']);
      expect(doc.annotations['io.deltaimg.base.digest']).toMatch(/^sha256:/);
      // Published again from the same base: the new delta replaces the old one in the list.
      const again = await cli(['image', 'diff', `docker://${R}/${repo}/app:1`, `docker://${R}/${repo}/app:2`, '--push', '-q']);
      expect(again.code, again.stderr).toBe(0);
      const relisted = await listDeltas(client, subject);
      expect(relisted).toHaveLength(4);
      expect(relisted.filter((d) => d.baseImageIds[0] === idA && d.blobs === 'exact')).toHaveLength(1);
      expect(relisted.map((d) => d.artifact.digest)).not.toContain(results[0]!.artifact);
    });

    it('pull finds the delta whose base the engine has (by registry digest), downloads only it, and writes B', async () => {
      const dest = `${repo}-pulled:2`;
      pushedByEngine.push(dest);
      const r = await cli(['pull', `docker://${R}/${repo}/app:2`, '-o', `docker-daemon:${dest}`, '--json', '-q']);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as {
        mode: string;
        delta: { matchedBy: string; bytes: number; blobs: string };
        bytesDownloaded: number;
        plainPullBytes: number;
      };
      expect(report.mode).toBe('delta');
      expect(report.delta.matchedBy).toBe('registry digest');
      // Into an engine (layers kept uncompressed) the lighter variant is enough.
      expect(report.delta.blobs).toBe('tars');
      expect(report.bytesDownloaded).toBeLessThan(report.plainPullBytes / 5);
      expect(report.bytesDownloaded).toBeGreaterThanOrEqual(report.delta.bytes);
      expect(await imageId(dest)).toBe(idB);
    });

    it('pull with --have an OCI layout matches by image id; with no delta for the image it says so and pulls plainly', async () => {
      const layout = join(work, 'have-a');
      const src = await openImageSource(parseImageRef(`docker://${R}/${repo}/app:1`));
      await writeImages(parseImageRef(`oci:${layout}`), src.images());
      const out = join(work, 'pulled-b');
      const r = await cli(['pull', `docker://${R}/${repo}/app:2`, '--have', `oci:${layout}`, '-o', `oci:${out}`, '--json', '-q']);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as {
        mode: string;
        delta: { matchedBy: string; blobs: string };
        images: { manifestDigest: string; originalManifestDigest: string }[];
      };
      expect(report.mode).toBe('delta');
      // An OCI layout keeps compressed blobs: the exact variant, B's manifest digest.
      expect(report.delta.blobs).toBe('exact');
      expect(report.images[0]!.manifestDigest).toBe(report.images[0]!.originalManifestDigest);
      expect(['image id', 'registry digest']).toContain(report.delta.matchedBy);
      const [restored] = (await openImageSource(parseImageRef(`oci:${out}`))).images();
      expect(restored!.configDigest).toBe(idB);

      const plain = await cli(['pull', `docker://${R}/${repo}/pushed:1`, '-o', `oci:${join(work, 'pulled-plain')}`, '--json']);
      expect(plain.code, plain.stderr).toBe(0);
      const p = JSON.parse(plain.stdout) as { mode: string; reason: string; bytesDownloaded: number; plainPullBytes: number };
      expect(p.mode).toBe('plain');
      expect(p.reason).toContain('no delta is published');
      expect(plain.stderr).toContain('pulled normally');
      expect(p.bytesDownloaded).toBeGreaterThanOrEqual(p.plainPullBytes);
      // Into the engine, the plain pull is the engine's own (it fetches only the layers it lacks).
      const engineDest = `${repo}-plain:1`;
      pushedByEngine.push(engineDest);
      const viaEngine = await cli(['pull', `docker://${R}/${repo}/pushed:1`, '-o', `docker-daemon:${engineDest}`, '-q']);
      expect(viaEngine.code, viaEngine.stderr).toBe(0);
      expect(await imageId(engineDest)).toBe(idB);
    });

    describeTlsAndTokens(() => ({ work, R, repo }));
  },
  { needsRegistry: true },
);

/** The TLS + htpasswd registry and the bearer-token proxy, sharing the images pushed above. */
function describeTlsAndTokens(ctx: () => { work: string; R: string; repo: string }): void {
  let tls: TestRegistry;
  let proxy: TokenProxy;
  let certDir: string;
  let dockerConfig: string;
  let helperDir: string;

  beforeAll(async () => {
    const { work } = ctx();
    const ca = await makeCa(join(work, 'ca'));
    certDir = join(work, 'certs');
    await mkdir(certDir);
    await copyFile(ca.caCert, join(certDir, 'ca.crt'));
    const htpasswd = join(work, 'htpasswd');
    await htpasswdFile(htpasswd, 'alice', 's3cret');
    tls = await startRegistry(join(work, 'tls-registry'), { tls: { cert: ca.cert, key: ca.key }, htpasswd });
    proxy = await startTokenProxy(ctx().R, 'bob', 'hunter2');
    // A credential helper standing in for a cloud one (docker-credential-ecr-login and the like).
    helperDir = join(work, 'bin');
    await mkdir(helperDir);
    const helper = join(helperDir, 'docker-credential-deltaimgtest');
    await writeFile(
      helper,
      `#!/bin/sh\n[ "$1" = get ] || exit 1\nread server\nif [ "$server" = "${tls.address}" ]; then echo '{"ServerURL":"'$server'","Username":"alice","Secret":"s3cret"}'; else echo "credentials not found in native keychain"; exit 1; fi\n`,
    );
    await chmod(helper, 0o755);
    dockerConfig = join(work, 'docker-config');
    await mkdir(dockerConfig);
  }, 60_000);

  afterAll(async () => {
    await tls?.stop();
    await proxy?.stop();
  });

  it('TLS + htpasswd: the CA from --cert-dir, credentials from --creds, config.json auths or a credential helper; wrong ones fail in one line', async () => {
    const { R, repo } = ctx();
    const target = `docker://${tls.address}/${repo}/app:2`;
    // Copy B there with our writer (TLS, basic auth).
    const source = await readRegistryImages({ registry: R, repository: `${repo}/app`, tag: '2' });
    await pushImages({ registry: tls.address, repository: `${repo}/app`, tag: '2' }, source.images, { certDir, creds: 'alice:s3cret' });

    const noCa = oneLineError(await cli(['image', 'verify', target, '--creds', 'alice:s3cret']));
    expect(noCa).toMatch(/certificate/i);
    expect(noCa).toContain('--cert-dir');
    const wrong = oneLineError(await cli(['image', 'verify', target, '--cert-dir', certDir, '--creds', 'alice:wrong']));
    expect(wrong).toContain('authentication failed for user alice (from --creds)');
    const anonymous = oneLineError(await cli(['image', 'verify', target, '--cert-dir', certDir]));
    expect(anonymous).toContain('anonymous');

    const withCreds = await cli(['image', 'verify', target, '--cert-dir', certDir, '--creds', 'alice:s3cret']);
    expect(withCreds.code, withCreds.stderr).toBe(0);
    await writeFile(
      join(dockerConfig, 'config.json'),
      JSON.stringify({ auths: { [tls.address]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }),
    );
    const fromAuths = await cli(['image', 'verify', target, '--cert-dir', certDir], { DOCKER_CONFIG: dockerConfig });
    expect(fromAuths.code, fromAuths.stderr).toBe(0);
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ credHelpers: { [tls.address]: 'deltaimgtest' } }));
    const fromHelper = await cli(['image', 'verify', target, '--cert-dir', certDir], {
      DOCKER_CONFIG: dockerConfig,
      PATH: `${helperDir}:${process.env.PATH}`,
    });
    expect(fromHelper.code, fromHelper.stderr).toBe(0);
    const helperMissing = oneLineError(await cli(['image', 'verify', target, '--cert-dir', certDir], { DOCKER_CONFIG: dockerConfig }));
    expect(helperMissing).toContain('docker-credential-deltaimgtest');
  });

  it('bearer tokens: fetched from the realm, fetched again when the registry expires one early; wrong credentials fail in one line', async () => {
    const { repo } = ctx();
    proxy.faults = { tokenUses: 2 };
    const before = proxy.tokensIssued;
    const ok = await cli(['image', 'verify', `docker://${proxy.address}/${repo}/app:2`, '--creds', 'bob:hunter2']);
    expect(ok.code, ok.stderr).toBe(0);
    // Manifest, config, 2 layers, each token good for 2 requests: several tokens, every 401 answered.
    expect(proxy.tokensIssued - before).toBeGreaterThan(1);
    const wrong = oneLineError(await cli(['image', 'verify', `docker://${proxy.address}/${repo}/app:2`, '--creds', 'bob:nope']));
    expect(wrong).toContain('authentication failed for user bob');
    proxy.faults = {};
  });

  it('a blob download cut half-way resumes with a Range request; a blob with wrong bytes is refused', async () => {
    const { repo } = ctx();
    const read = await readRegistryImages({ registry: proxy.address, repository: `${repo}/app`, tag: '2' }, { creds: 'bob:hunter2' });
    const layer = read.images[0]!.layers[1]!;
    proxy.faults = { dropMidBlob: new Set([layer.digest]) };
    proxy.log.length = 0;
    let n = 0;
    for await (const c of (await layer.openStored()) as AsyncIterable<Buffer>) n += c.length;
    expect(n).toBe(layer.size);
    const gets = proxy.log.filter((l) => l.method === 'GET' && l.path.endsWith(layer.digest) && l.status !== 401);
    expect(gets).toHaveLength(2);
    expect(gets[1]!.range).toMatch(/^bytes=\d+-$/);

    proxy.faults = { corruptBlob: new Set([layer.digest]) };
    const r = await cli(['image', 'verify', `docker://${proxy.address}/${repo}/app:2`, '--creds', 'bob:hunter2']);
    oneLineError(r);
    expect(r.stdout).toContain(`layer ${layer.diffId} hashes to`);
    const err = await failure(
      layer.openStored().then(async (s) => {
        for await (const _ of s as AsyncIterable<Buffer>);
      }),
    );
    expect(err.message).toContain(`content hashes to`);
    proxy.faults = {};
  });
}
