/**
 * Pushes images to a registry: every layer blob (skipped when the repository has it, mounted
 * when it comes from another repository of the same registry, else uploaded and checked
 * against its digest before the upload is committed), then the config, then each manifest by
 * digest, and the tag last (on the manifest, or on an index for several platforms). An
 * interrupted push leaves blobs the registry garbage-collects, never a tag on a half-pushed image.
 */
import { Readable } from 'node:stream';
import { DeltaimgError } from '../../util/errors.js';
import { planLayerBlob, type PlannedBlob } from '../blob-plan.js';
import { sha256Digest } from '../digest-stream.js';
import { MT } from '../media-types.js';
import { manifestFor } from '../oci-writer.js';
import { decodeManifestOrIndex } from '../schema.js';
import type { Image, ImageManifest, WrittenImage } from '../types.js';
import { RegistryClient, type BlobPush, type RegistryOptions } from './client.js';
import { formatRegistryRef, type RegistryRef } from './ref.js';

export interface PushOptions extends RegistryOptions {
  /** The original index of a multi-platform image: pushed byte for byte when it names exactly the manifests pushed. */
  index?: ImageManifest;
  /** Called per blob (for progress and reports). */
  onBlob?: (digest: string, size: number, how: BlobPush) => void;
}

export interface PushResult {
  images: WrittenImage[];
  /** The digest the tag points at: the index's for several images, else the manifest's. */
  digest: string;
}

export async function pushImages(ref: RegistryRef, images: Image[], opts: PushOptions = {}): Promise<PushResult> {
  const where = formatRegistryRef(ref);
  const mountFrom = [
    ...new Set(images.flatMap((i) => i.layers).flatMap((l) => (l.blobSource?.registry === ref.registry ? [l.blobSource.repository] : []))),
  ];
  const client = await RegistryClient.open(ref.registry, ref.repository, { ...opts, push: true, mountFrom });
  const pushed: { written: WrittenImage; mediaType: string; bytes: Buffer; image: Image }[] = [];
  for (const image of images) {
    const blobs: PlannedBlob[] = [];
    for (const layer of image.layers) {
      const blob = await planLayerBlob(layer, true);
      const from = layer.blobSource?.registry === ref.registry && blob.kind === 'stored' ? layer.blobSource.repository : undefined;
      const how = await client.pushBlob(blob.digest, blob.size, () => blob.open(), from);
      opts.onBlob?.(blob.digest, blob.size, how);
      blobs.push(blob);
    }
    const configDigest = sha256Digest(image.config);
    const how = await client.pushBlob(configDigest, image.config.length, async () => Readable.from([image.config]));
    opts.onBlob?.(configDigest, image.config.length, how);
    const manifest = manifestFor(image, configDigest, blobs);
    pushed.push({
      written: { configDigest, manifestDigest: sha256Digest(manifest.bytes), layerDigests: blobs.map((b) => b.digest) },
      ...manifest,
      image,
    });
  }
  const tag = ref.tag ?? (ref.digest ? undefined : 'latest');
  if (pushed.length === 1) {
    const only = pushed[0]!;
    checkPinned(where, ref, only.written.manifestDigest!);
    await client.putManifest(tag ?? only.written.manifestDigest!, only.mediaType, only.bytes);
    return { images: [only.written], digest: only.written.manifestDigest! };
  }
  for (const p of pushed) await client.putManifest(p.written.manifestDigest!, p.mediaType, p.bytes);
  const index = indexFor(pushed, opts.index);
  const indexDigest = sha256Digest(index.bytes);
  checkPinned(where, ref, indexDigest);
  await client.putManifest(tag ?? indexDigest, index.mediaType, index.bytes);
  return { images: pushed.map((p) => p.written), digest: indexDigest };
}

/** A reference pinned by digest can only receive exactly that manifest. */
function checkPinned(where: string, ref: RegistryRef, digest: string): void {
  if (ref.digest && ref.digest !== digest) {
    throw new DeltaimgError('USAGE', `${where}: the image to push has manifest digest ${digest}, not ${ref.digest}; push to a tag instead`);
  }
}

/** The original index when it lists exactly the pushed manifests (attestations aside), else a new one of the same family. */
function indexFor(
  pushed: { written: WrittenImage; mediaType: string; bytes: Buffer; image: Image }[],
  original: ImageManifest | undefined,
): { mediaType: string; bytes: Buffer } {
  if (original) {
    const doc = decodeManifestOrIndex(original.bytes, original.mediaType, 'the original index');
    const listed = doc.kind === 'index' ? doc.manifests.map((d) => d.digest) : [];
    if (pushed.every((p) => listed.includes(p.written.manifestDigest!)) && listed.length === pushed.length)
      return { mediaType: original.mediaType, bytes: original.bytes };
  }
  const docker = pushed.every((p) => p.mediaType === MT.dockerManifest);
  const mediaType = docker ? MT.dockerList : MT.ociIndex;
  const manifests = pushed.map((p) => {
    const { os, architecture, variant } = p.image.platform;
    return {
      mediaType: p.mediaType,
      digest: p.written.manifestDigest!,
      size: p.bytes.length,
      platform: variant ? { os, architecture, variant } : { os, architecture },
    };
  });
  return { mediaType, bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests })) };
}
