/** From a read Image to an ImageToWrite (copying an image between transports). */
import { hashStream } from './digest-stream.js';
import type { Image, ImageToWrite, Layer, LayerToWrite } from './types.js';

/**
 * Layers keep their stored blob (so OCI outputs can keep compressed blobs and the manifest).
 * A compressed layer's tar size is not recorded anywhere: it is measured by decompressing once.
 */
export async function imageToWrite(image: Image): Promise<ImageToWrite> {
  const layers: LayerToWrite[] = [];
  for (const layer of image.layers) layers.push(await layerToWrite(layer));
  const out: ImageToWrite = { config: image.config, layers, names: image.names, platform: image.platform };
  if (image.manifest) out.manifest = { mediaType: image.manifest.mediaType, bytes: image.manifest.bytes };
  return out;
}

async function layerToWrite(layer: Layer): Promise<LayerToWrite> {
  const size = layer.compression === 'none' ? layer.size : (await hashStream(await layer.openUncompressed())).size;
  return {
    diffId: layer.diffId,
    size,
    open: () => layer.openUncompressed(),
    stored: { digest: layer.digest, size: layer.size, mediaType: layer.mediaType, open: () => layer.openStored() },
  };
}
