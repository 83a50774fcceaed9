/**
 * Writes images as an OCI image layout (oci:, oci-archive:, and with manifest.json added the
 * form Docker >= 25 saves). The original manifest is written byte for byte when every blob
 * it names is written as it was, so the manifest digest stays the original's; otherwise a
 * manifest of the same family is made for the blobs written.
 */
import { sha256Digest, sha256Hex } from './digest-stream.js';
import { planLayerBlob, mediaTypeIn, type PlannedBlob } from './blob-plan.js';
import { MT } from './media-types.js';
import { decodeManifestOrIndex } from './schema.js';
import { blobPath } from './names.js';
import { CONTAINERD_NAME, REF_NAME } from './oci-reader.js';
import type { LayoutSink } from './sinks.js';
import type { Image, WrittenImage } from './types.js';

export interface OciWriteOptions {
  /** Also write manifest.json (the docker-archive form of Docker >= 25). */
  dockerManifest?: boolean;
}

interface IndexEntry {
  mediaType: string;
  digest: string;
  size: number;
  platform: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

export async function writeOciLayout(sink: LayoutSink, images: Image[], opts: OciWriteOptions = {}): Promise<WrittenImage[]> {
  await sink.addBuffer('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  const entries: IndexEntry[] = [];
  const archiveManifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const written: WrittenImage[] = [];
  for (const image of images) {
    const configDigest = sha256Digest(image.config);
    await addBlobBuffer(sink, configDigest, image.config);
    const blobs: PlannedBlob[] = [];
    for (const [i, layer] of image.layers.entries()) {
      const blob = await planLayerBlob(layer, true);
      await addBlobStream(sink, blob, `layer ${i} (${blob.digest})`);
      blobs.push(blob);
    }
    const manifest = manifestFor(image, configDigest, blobs);
    const manifestDigest = sha256Digest(manifest.bytes);
    await addBlobBuffer(sink, manifestDigest, manifest.bytes);
    entries.push(indexEntry(image, manifest.mediaType, manifestDigest, manifest.bytes.length, opts));
    archiveManifest.push({ Config: blobPath(configDigest), RepoTags: image.names, Layers: blobs.map((b) => blobPath(b.digest)) });
    written.push({ configDigest, manifestDigest, layerDigests: blobs.map((b) => b.digest) });
  }
  const index = { schemaVersion: 2, mediaType: MT.ociIndex, manifests: entries };
  await sink.addBuffer('index.json', Buffer.from(JSON.stringify(index)));
  if (opts.dockerManifest) await sink.addBuffer('manifest.json', Buffer.from(JSON.stringify(archiveManifest)));
  return written;
}

async function addBlobBuffer(sink: LayoutSink, digest: string, data: Buffer): Promise<void> {
  if (!sink.has(blobPath(digest))) await sink.addBuffer(blobPath(digest), data);
}

async function addBlobStream(sink: LayoutSink, blob: PlannedBlob, what: string): Promise<void> {
  const name = blobPath(blob.digest);
  if (sink.has(name)) return;
  await sink.addStream(name, await blob.open(), { digest: blob.digest, size: blob.size, label: `writing ${what}` });
}

export function manifestFor(image: Image, configDigest: string, blobs: PlannedBlob[]): { mediaType: string; bytes: Buffer } {
  if (image.manifest && manifestStillValid(image.manifest.bytes, configDigest, blobs))
    return { mediaType: image.manifest.mediaType, bytes: image.manifest.bytes };
  const family = image.manifest?.mediaType === MT.dockerManifest ? 'docker' : 'oci';
  const mediaType = family === 'docker' ? MT.dockerManifest : MT.ociManifest;
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: family === 'docker' ? MT.dockerConfig : MT.ociConfig, digest: configDigest, size: image.config.length },
    layers: blobs.map((b) => ({ mediaType: mediaTypeIn(b, family), digest: b.digest, size: b.size })),
  };
  return { mediaType, bytes: Buffer.from(JSON.stringify(manifest)) };
}

/** The original manifest names exactly this config and these blobs. */
function manifestStillValid(bytes: Buffer, configDigest: string, blobs: PlannedBlob[]): boolean {
  // Read and checked by a reader already: decoding it again cannot fail on real input.
  const m = decodeManifestOrIndex(bytes, undefined, 'the original manifest');
  if (m.kind !== 'manifest') return false;
  return (
    m.config.digest === configDigest &&
    m.layers.length === blobs.length &&
    m.layers.every((l, i) => l.digest === blobs[i]!.digest && l.size === blobs[i]!.size)
  );
}

function indexEntry(image: Image, mediaType: string, digest: string, size: number, opts: OciWriteOptions): IndexEntry {
  const { os, architecture, variant } = image.platform;
  const entry: IndexEntry = { mediaType, digest, size, platform: variant ? { os, architecture, variant } : { os, architecture } };
  const name = image.names[0];
  if (name) {
    // Docker >= 25 puts the full name in the containerd annotation and the tag in the OCI one.
    const tag = /:([^/:]+)$/.exec(name)?.[1];
    entry.annotations = opts.dockerManifest && tag ? { [CONTAINERD_NAME]: name, [REF_NAME]: tag } : { [REF_NAME]: name };
  }
  return entry;
}

export { sha256Hex };
