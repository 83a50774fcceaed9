/**
 * Which bytes a writer stores for a layer: its original stored blob (e.g. gzip'd) when that is
 * given and really hashes to its digest, so the original manifest stays valid; else the
 * uncompressed tar, whose digest is the diff_id.
 */
import { hashStream } from './digest-stream.js';
import { layerMediaType } from './media-types.js';
import type { LayerToWrite } from './types.js';

export interface PlannedBlob {
  kind: 'stored' | 'tar';
  digest: string;
  size: number;
  /** For 'tar' blobs this depends on the manifest family; see mediaTypeIn. */
  storedMediaType?: string;
  open(): Promise<NodeJS.ReadableStream>;
}

export async function planLayerBlob(layer: LayerToWrite, preferStored: boolean): Promise<PlannedBlob> {
  const stored = layer.stored;
  if (preferStored && stored && stored.digest !== layer.diffId) {
    const actual = await hashStream(await stored.open());
    if (actual.digest === stored.digest && actual.size === stored.size) {
      return { kind: 'stored', digest: stored.digest, size: stored.size, storedMediaType: stored.mediaType, open: stored.open };
    }
  }
  const tar: PlannedBlob = { kind: 'tar', digest: layer.diffId, size: layer.size, open: layer.open };
  // A blob stored uncompressed is the tar itself: keep the media type its manifest gave it.
  if (stored && stored.digest === layer.diffId) tar.storedMediaType = stored.mediaType;
  return tar;
}

export function mediaTypeIn(blob: PlannedBlob, family: 'oci' | 'docker'): string {
  return blob.storedMediaType ?? layerMediaType(family, 'none');
}
