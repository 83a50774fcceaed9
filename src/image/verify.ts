/**
 * verifyImageSource: every layer's stored blob hashed against its digest and its tar against
 * its diff_id (one read per layer), the config against its digest, the manifest against its
 * digest and against the config and layers it names. Reports, never throws on a mismatch.
 */
import type { Readable } from 'node:stream';
import { hashingTap, hashStream } from '../util/hashing.js';
import { sha256Digest } from './digest-stream.js';
import { decompress } from './layer.js';
import { formatPlatform, isRawLayer, type Image, type ImageSource, type Layer } from './types.js';

export interface LayerCheck {
  diffId: string;
  ok: boolean;
  /** What was found instead, when not ok: a digest, or why the layer could not be read. */
  actual?: string;
}

export interface VerifyReport {
  images: { platform: string; configDigest: string; configOk: boolean; manifestOk?: boolean; layers: LayerCheck[] }[];
  ok: boolean;
}

export async function verifyImageSource(src: ImageSource): Promise<VerifyReport> {
  const images: VerifyReport['images'] = [];
  for (const image of src.images()) {
    const layers: LayerCheck[] = [];
    for (const layer of image.layers) layers.push(await verifyLayer(layer));
    const entry: VerifyReport['images'][number] = {
      platform: formatPlatform(image.platform),
      configDigest: image.configDigest,
      configOk: sha256Digest(image.config) === image.configDigest,
      layers,
    };
    if (image.manifest) entry.manifestOk = manifestOk(image);
    images.push(entry);
  }
  const ok = images.every((i) => i.configOk && i.manifestOk !== false && i.layers.every((l) => l.ok));
  return { images, ok };
}

function manifestOk(image: Image): boolean {
  const m = image.manifest!;
  if (sha256Digest(m.bytes) !== m.digest) return false;
  try {
    const json = JSON.parse(m.bytes.toString('utf8')) as { config?: { digest?: string }; layers?: { digest?: string }[] };
    const layers = json.layers ?? [];
    return (
      json.config?.digest === image.configDigest &&
      layers.length === image.layers.length &&
      layers.every((l, i) => l.digest === image.layers[i]!.digest)
    );
  } catch {
    return false;
  }
}

async function verifyLayer(layer: Layer): Promise<LayerCheck> {
  try {
    const raw = isRawLayer(layer) ? await layer.openStoredUnchecked() : await layer.openStored();
    const tee = hashingTap();
    raw.on('error', (err) => tee.stream.destroy(err));
    const tar = await hashStream(decompress((raw as Readable).pipe(tee.stream), layer.compression, `layer ${layer.digest}`));
    const storedDigest = `sha256:${tee.sha256Hex()}`;
    if (storedDigest !== layer.digest || tee.bytes() !== layer.size)
      return { diffId: layer.diffId, ok: false, actual: `stored blob ${storedDigest} (${tee.bytes()} bytes)` };
    if (tar.digest !== layer.diffId) return { diffId: layer.diffId, ok: false, actual: tar.digest };
    return { diffId: layer.diffId, ok: true };
  } catch (err) {
    return { diffId: layer.diffId, ok: false, actual: `unreadable: ${(err as Error).message}` };
  }
}
