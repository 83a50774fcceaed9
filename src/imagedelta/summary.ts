/** Human-readable reports of a `.dimg`: what `image diff` saved and what `image inspect` shows. */
import { printable } from '../util/printable.js';
import { formatBytes } from '../util/progress.js';
import type { DimgHeader } from './format.js';

export function imageSavedLine(
  out: string,
  header: DimgHeader,
  bytes: number,
  newLayerBytes: number,
  sharedLayers: number,
  recipeBytes = 0,
): string {
  const rebuilt = header.layers.length;
  const ratio = bytes > 0 && newLayerBytes > 0 ? ` (${(newLayerBytes / bytes).toFixed(1)}x smaller)` : '';
  // Token recipes can be most of a .dimg (Go's gzip, as docker push and BuildKit use): say what they cost.
  const recipes =
    recipeBytes >= Math.max(64 * 1024, bytes / 4)
      ? `; ${formatBytes(recipeBytes)} of it rebuilds B's gzip'd blobs byte for byte (--no-exact-blobs leaves that out: same image id, other blob digests)`
      : '';
  return (
    `${out}: ${formatBytes(bytes)} for ${header.images.length} image(s): ${rebuilt} layer(s) rebuilt from ` +
    `${formatBytes(newLayerBytes)} of new layer data${ratio}, ${sharedLayers} layer(s) shared with the base${recipes}`
  );
}

export function inspectDimg(path: string, header: DimgHeader): string {
  const lines = [
    `${printable(path)}: ${header.format} v${header.version}, made by ${printable(header.tool)} on ${printable(header.created)}`,
  ];
  for (const image of header.images) {
    lines.push(
      '',
      `${printable(image.platform)}: ${image.target.configDigest} (${printable(image.target.names.join(', ')) || 'no name'})`,
      `  from base ${image.base.configDigest} (${image.base.diffIds.length} layers)`,
    );
    for (const layer of image.target.layers) {
      const rebuilt = header.layers.find((l) => l.diffId === layer.diffId);
      const how =
        layer.from === 'base'
          ? 'shared with the base'
          : `rebuilt: ${rebuilt ? `${formatBytes(rebuilt.deltaBytes)} delta, ${rebuilt.files} files` : '?'}`;
      const stored = layer.stored ? `; stored ${layer.stored.compression}${layer.stored.replay ? ', replayable' : ', not replayable'}` : '';
      lines.push(`  ${layer.diffId.slice(0, 19)}  ${formatBytes(layer.size).padStart(10)}  ${how}${stored}`);
    }
  }
  const total = header.members.reduce((n, m) => n + m.size, 0);
  lines.push('', `members: ${header.members.length}, ${formatBytes(total)}`);
  return lines.join('\n');
}
