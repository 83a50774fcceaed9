/** What the readers need from an image config: its platform and rootfs.diff_ids, validated. */
import { DeltaimgError } from '../util/errors.js';
import { checkDigest } from './names.js';
import { imageFields } from './schema.js';
import type { Platform } from './types.js';

export interface ConfigFacts {
  platform: Platform;
  diffIds: string[];
}

export function configFacts(bytes: Buffer, where: string): ConfigFacts {
  const f = imageFields(where);
  const c = f.object(f.parse(bytes.toString('utf8')), '');
  const rootfs = c.rootfs === undefined || c.rootfs === null ? undefined : f.object(c.rootfs, 'rootfs');
  if (!rootfs || !Array.isArray(rootfs.diff_ids))
    throw new DeltaimgError('BAD_IMAGE', `${where}: the image config has no rootfs.diff_ids list`);
  const text = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const platform: Platform = { os: text(c.os) ?? 'unknown', architecture: text(c.architecture) ?? 'unknown' };
  const variant = text(c.variant);
  if (variant) platform.variant = variant;
  return { platform, diffIds: rootfs.diff_ids.map((d, i) => checkDigest(where, `config rootfs.diff_ids[${i}]`, d)) };
}

/** The layer count must match the diff_ids count, else layers and diff_ids cannot be paired. */
export function checkLayerCount(where: string, diffIds: string[], layers: number): void {
  if (diffIds.length !== layers) {
    throw new DeltaimgError(
      'BAD_IMAGE',
      `${where}: the manifest lists ${layers} layers but the config has ${diffIds.length} rootfs.diff_ids`,
    );
  }
}
