/**
 * Writes the classic `docker save` form: <config hex>.json, <diff_id hex>/layer.tar (always
 * the uncompressed tar, named by its diff_id so shared layers are stored once) and
 * manifest.json. This is what every Docker engine's `docker load` reads.
 */
import { tarSize } from './blob-plan.js';
import { sha256Hex } from './digest-stream.js';
import type { LayoutSink } from './sinks.js';
import type { Image, WrittenImage } from './types.js';

export async function writeClassicArchive(sink: LayoutSink, images: Image[]): Promise<WrittenImage[]> {
  const manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const written: WrittenImage[] = [];
  for (const image of images) {
    const configHex = sha256Hex(image.config);
    const configName = `${configHex}.json`;
    if (!sink.has(configName)) await sink.addBuffer(configName, image.config);
    const layerNames: string[] = [];
    for (const [i, layer] of image.layers.entries()) {
      const name = `${layer.diffId.replace(/^sha256:/, '')}/layer.tar`;
      if (!sink.has(name))
        await sink.addStream(name, await layer.openUncompressed(), {
          digest: layer.diffId,
          size: await tarSize(layer),
          label: `writing layer ${i} (${layer.diffId})`,
        });
      layerNames.push(name);
    }
    const tags = repoTags(image.names);
    manifest.push({ Config: configName, RepoTags: tags.length ? tags : null, Layers: layerNames });
    written.push({ configDigest: `sha256:${configHex}`, layerDigests: image.layers.map((l) => l.diffId) });
  }
  await sink.addBuffer('manifest.json', Buffer.from(JSON.stringify(manifest)));
  return written;
}

/** docker load takes only name:tag references: an untagged name means :latest, digests are dropped. */
function repoTags(names: string[]): string[] {
  const tags = names.filter((n) => !n.includes('@')).map((n) => (/:[^/]+$/.test(n) ? n : `${n}:latest`));
  return [...new Set(tags)];
}
