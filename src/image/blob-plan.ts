/**
 * Which bytes a writer stores for a layer: its stored blob (e.g. gzip'd) so the original
 * manifest stays valid, unless the blob is recomputed and does not hash to its digest (then,
 * or when asked for tars, the uncompressed tar, whose digest is the diff_id).
 */
import { hashStream } from '../util/hashing.js';
import { layerMediaType } from './media-types.js';
import type { Compression, Layer } from './types.js';

export interface PlannedBlob {
  kind: 'stored' | 'tar';
  digest: string;
  size: number;
  compression: Compression;
  open(): Promise<NodeJS.ReadableStream>;
}

export async function planLayerBlob(layer: Layer, preferStored: boolean): Promise<PlannedBlob> {
  if (preferStored && layer.compression !== 'none' && layer.digest !== layer.diffId && (await storedHolds(layer))) {
    return { kind: 'stored', digest: layer.digest, size: layer.size, compression: layer.compression, open: () => layer.openStored() };
  }
  return { kind: 'tar', digest: layer.diffId, size: await tarSize(layer), compression: 'none', open: () => layer.openUncompressed() };
}

/** A recomputed blob is hashed before it is chosen; a read one is checked as it streams. */
async function storedHolds(layer: Layer): Promise<boolean> {
  if (!layer.recomputed) return true;
  const actual = await hashStream(await layer.openStored()).catch(() => undefined);
  return actual?.digest === layer.digest && actual.bytes === layer.size;
}

/** The layer tar's size: known, the blob's own when stored uncompressed, else counted once. */
export async function tarSize(layer: Layer): Promise<number> {
  if (layer.uncompressedSize !== undefined) return layer.uncompressedSize;
  if (layer.compression === 'none' && layer.digest === layer.diffId) return layer.size;
  return (await hashStream(await layer.openUncompressed())).bytes;
}

/** The blob's layer media type in a manifest of that family (when a manifest is made anew). */
export function mediaTypeIn(blob: PlannedBlob, family: 'oci' | 'docker'): string {
  return layerMediaType(family, blob.compression);
}
