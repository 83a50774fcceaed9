/** What the readers need from an image config: its platform and rootfs.diff_ids, validated. */
import { DeltaimgError } from '../util/errors.js';
import { checkDigest } from './names.js';
import type { Platform } from './types.js';

export interface ConfigFacts {
  platform: Platform;
  diffIds: string[];
}

export function configFacts(bytes: Buffer, where: string): ConfigFacts {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new DeltaimgError('BAD_IMAGE', `${where}: the image config is not valid JSON`);
  }
  const c = (json ?? {}) as { os?: unknown; architecture?: unknown; variant?: unknown; rootfs?: { diff_ids?: unknown } };
  const diffIds = c.rootfs?.diff_ids;
  if (!Array.isArray(diffIds)) throw new DeltaimgError('BAD_IMAGE', `${where}: the image config has no rootfs.diff_ids list`);
  const platform: Platform = { os: typeof c.os === 'string' ? c.os : 'unknown', architecture: typeof c.architecture === 'string' ? c.architecture : 'unknown' };
  if (typeof c.variant === 'string' && c.variant) platform.variant = c.variant;
  return { platform, diffIds: diffIds.map((d, i) => checkDigest(where, `config rootfs.diff_ids[${i}]`, d)) };
}

/** The layer count must match the diff_ids count, else layers and diff_ids cannot be paired. */
export function checkLayerCount(where: string, diffIds: string[], layers: number): void {
  if (diffIds.length !== layers) {
    throw new DeltaimgError('BAD_IMAGE', `${where}: the manifest lists ${layers} layers but the config has ${diffIds.length} rootfs.diff_ids`);
  }
}
