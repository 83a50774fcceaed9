/**
 * Builds image archives and layouts by hand (not with src/image's writers), from the members
 * of a real `docker save`: the Docker >= 25 OCI-layout save form, an OCI layout with gzip'd and
 * zstd'd layers under a two-platform index, and hostile tars.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import tar from 'tar-stream';

export const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const hex = (digest: string) => digest.slice('sha256:'.length);

export interface ClassicSave {
  dir: string;
  manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[];
  config: Buffer;
  /** The layer tars, base first (duplicates resolved by tar's own symlink following). */
  layers: Buffer[];
}

/** Extracts a classic `docker save` tar (small test images only). */
export async function extractClassic(archive: string, dir: string): Promise<ClassicSave> {
  await mkdir(dir, { recursive: true });
  await execa('tar', ['-xf', archive, '-C', dir]);
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ClassicSave['manifest'];
  const entry = manifest[0]!;
  const layers: Buffer[] = [];
  for (const l of entry.Layers) layers.push(await readFile(join(dir, l)));
  return { dir, manifest, config: await readFile(join(dir, entry.Config)), layers };
}

/** Files of a layout, written as a tar (blobs as given), optionally with extra raw entries. */
export async function writeTar(out: string, files: Map<string, Buffer>): Promise<void> {
  const pack = tar.pack();
  for (const [name, data] of files) pack.entry({ name, mtime: new Date(0) }, data);
  pack.finalize();
  await pipeline(Readable.from(pack as AsyncIterable<Buffer>), createWriteStream(out));
}

export async function writeDir(dir: string, files: Map<string, Buffer>): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  for (const [name, data] of files) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), data);
  }
}

const blob = (files: Map<string, Buffer>, data: Buffer) => {
  const d = sha(data);
  files.set(`blobs/sha256/${hex(d)}`, data);
  return { digest: d, size: data.length };
};

/** The OCI-layout save form of Docker >= 25, made from a classic save. */
export function docker25Form(save: ClassicSave, name: string): { files: Map<string, Buffer>; manifestDigest: string } {
  const files = new Map<string, Buffer>();
  files.set('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  const config = blob(files, save.config);
  const layers = save.layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...blob(files, l) }));
  const manifestBytes = Buffer.from(
    JSON.stringify(
      {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers,
      },
      null,
      2,
    ),
  );
  const manifest = blob(files, manifestBytes);
  const tag = name.split(':').pop()!;
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ...manifest,
        annotations: { 'io.containerd.image.name': `docker.io/library/${name}`, 'org.opencontainers.image.ref.name': tag },
      },
    ],
  };
  files.set('index.json', Buffer.from(JSON.stringify(index)));
  files.set(
    'manifest.json',
    Buffer.from(
      JSON.stringify([
        { Config: `blobs/sha256/${hex(config.digest)}`, RepoTags: [name], Layers: layers.map((l) => `blobs/sha256/${hex(l.digest)}`) },
      ]),
    ),
  );
  return { files, manifestDigest: manifest.digest };
}

export interface TwoPlatformLayout {
  files: Map<string, Buffer>;
  /** Per platform: config digest and manifest digest. */
  amd64: { config: string; manifest: string };
  arm64: { config: string; manifest: string };
  indexDigest: string;
}

/**
 * An OCI layout whose index.json names (ref "multi") a nested index of: linux/amd64 with gzip'd
 * layers (the save's own config), linux/arm64/v8 with zstd'd layers (its config edited), and
 * an attestation manifest (unknown/unknown) to be skipped.
 */
export async function twoPlatformLayout(save: ClassicSave): Promise<TwoPlatformLayout> {
  const files = new Map<string, Buffer>();
  files.set('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  const armConfig = Buffer.from(JSON.stringify({ ...JSON.parse(save.config.toString('utf8')), architecture: 'arm64', variant: 'v8' }));
  const gz = save.layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob(files, gzipSync(l)) }));
  const zst: { mediaType: string; digest: string; size: number }[] = [];
  for (const l of save.layers) {
    const z = (await execa('zstd', ['-c', '-q'], { input: l, encoding: 'buffer' })).stdout as Uint8Array;
    zst.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', ...blob(files, Buffer.from(z)) });
  }
  const manifestOf = (config: Buffer, layers: typeof gz) =>
    blob(
      files,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...blob(files, config) },
          layers,
        }),
      ),
    );
  const amd = manifestOf(save.config, gz);
  const arm = manifestOf(armConfig, zst);
  const attestation = manifestOf(
    Buffer.from(JSON.stringify({ architecture: 'unknown', os: 'unknown', rootfs: { type: 'layers', diff_ids: [] } })),
    [],
  );
  const mt = 'application/vnd.oci.image.manifest.v1+json';
  const nested = blob(
    files,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { mediaType: mt, ...amd, platform: { os: 'linux', architecture: 'amd64' } },
          { mediaType: mt, ...arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
          {
            mediaType: mt,
            ...attestation,
            platform: { os: 'unknown', architecture: 'unknown' },
            annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
          },
        ],
      }),
    ),
  );
  files.set(
    'index.json',
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.index.v1+json',
            ...nested,
            annotations: { 'org.opencontainers.image.ref.name': 'multi' },
          },
        ],
      }),
    ),
  );
  return {
    files,
    amd64: { config: sha(save.config), manifest: amd.digest },
    arm64: { config: sha(armConfig), manifest: arm.digest },
    indexDigest: nested.digest,
  };
}

export interface LayerBlob {
  mediaType: string;
  /** The blob as stored: a plain tar, or its compressed form. */
  data: Buffer;
}

/**
 * A one-image OCI layout (index.json naming the manifest with `ref`), blobs stored exactly as given;
 * family 'docker' gives the manifest and config Docker schema 2 media types (as `crane pull --format=oci` keeps them).
 */
export function singleImageLayout(
  config: Buffer,
  layers: LayerBlob[],
  ref = 'latest',
  family: 'oci' | 'docker' = 'oci',
): { files: Map<string, Buffer>; manifestDigest: string } {
  const files = new Map<string, Buffer>();
  files.set('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  const types =
    family === 'oci'
      ? { manifest: 'application/vnd.oci.image.manifest.v1+json', config: 'application/vnd.oci.image.config.v1+json' }
      : { manifest: 'application/vnd.docker.distribution.manifest.v2+json', config: 'application/vnd.docker.container.image.v1+json' };
  const descriptors = layers.map((l) => ({ mediaType: l.mediaType, ...blob(files, l.data) }));
  const manifest = blob(
    files,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: types.manifest,
        config: { mediaType: types.config, ...blob(files, config) },
        layers: descriptors,
      }),
    ),
  );
  const index = {
    schemaVersion: 2,
    manifests: [{ mediaType: types.manifest, ...manifest, annotations: { 'org.opencontainers.image.ref.name': ref } }],
  };
  files.set('index.json', Buffer.from(JSON.stringify(index)));
  return { files, manifestDigest: manifest.digest };
}

/** A classic `docker save` archive's members (manifest.json, <id>.json, <n>/layer.tar), made by hand. */
export function classicArchive(config: Buffer, layers: Buffer[], name: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const configName = `${hex(sha(config))}.json`;
  files.set(configName, config);
  const layerNames = layers.map((l, i) => {
    const n = `${String(i).padStart(2, '0')}${hex(sha(l)).slice(0, 62)}/layer.tar`;
    files.set(n, l);
    return n;
  });
  files.set('manifest.json', Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [name], Layers: layerNames }])));
  return files;
}

export interface PlatformImage {
  platform: { os: string; architecture: string; variant?: string };
  config: Buffer;
  layers: LayerBlob[];
}

/** An OCI layout whose index.json lists one manifest per platform directly (no nested index). */
export function multiPlatformLayout(images: PlatformImage[]): { files: Map<string, Buffer>; manifestDigests: string[] } {
  const files = new Map<string, Buffer>();
  files.set('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  const mt = 'application/vnd.oci.image.manifest.v1+json';
  const entries = images.map((img) => {
    const manifest = blob(
      files,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: mt,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...blob(files, img.config) },
          layers: img.layers.map((l) => ({ mediaType: l.mediaType, ...blob(files, l.data) })),
        }),
      ),
    );
    return { mediaType: mt, ...manifest, platform: img.platform };
  });
  files.set(
    'index.json',
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: entries })),
  );
  return { files, manifestDigests: entries.map((e) => e.digest) };
}
