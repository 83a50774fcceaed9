/**
 * Which bytes a writer stores for a layer: its original stored blob (e.g. gzip'd) when that is
 * given and really hashes to its digest, so the original manifest stays valid; else the
 * uncompressed tar, whose digest is the diff_id.
 */
import { isDeltaimgError } from '../util/errors.js';
import { hashStream } from './digest-stream.js';
import { compressionOf, layerMediaType } from './media-types.js';
import type { Compression, LayerToWrite } from './types.js';

export interface PlannedBlob {
  kind: 'stored' | 'tar';
  digest: string;
  size: number;
  compression: Compression;
  open(): Promise<NodeJS.ReadableStream>;
}

export async function planLayerBlob(layer: LayerToWrite, preferStored: boolean): Promise<PlannedBlob> {
  const stored = layer.stored;
  const compression = stored ? compressionOf(stored.mediaType) : undefined;
  if (preferStored && stored && compression && stored.digest !== layer.diffId) {
    const actual = await hashStream(await stored.open()).catch(notReproduced);
    if (actual && actual.digest === stored.digest && actual.size === stored.size) {
      return { kind: 'stored', digest: stored.digest, size: stored.size, compression, open: stored.open };
    }
  }
  return { kind: 'tar', digest: layer.diffId, size: layer.size, compression: 'none', open: layer.open };
}

/**
 * A blob rebuilt from its tar (image deltas' exact-deflate recipes) that fails its own check is
 * not reproduced: the verified tar is written instead, and the caller reports the changed digest.
 */
function notReproduced(err: unknown): undefined {
  if (isDeltaimgError(err) && (err.code === 'VERIFY_FAILED' || err.code === 'CORRUPT_DELTA')) return undefined;
  throw err;
}

/** The blob's layer media type in a manifest of that family (when a manifest is made anew). */
export function mediaTypeIn(blob: PlannedBlob, family: 'oci' | 'docker'): string {
  return layerMediaType(family, blob.compression);
}
