/** Which base image each target image is diffed against: the one of the same platform. */
import { formatPlatform, type Image, type Platform } from '../image/index.js';
import { DeltaimgError } from '../util/errors.js';

export interface ImagePair {
  base: Image;
  target: Image;
}

/** Requested platforms must exist on both sides; by default, every platform both have. */
export function pairPlatforms(bases: Image[], targets: Image[], wanted?: Platform[]): ImagePair[] {
  const baseBy = byPlatform(bases);
  const targetBy = byPlatform(targets);
  const keys = wanted?.length ? wanted.map(platformKey) : [...targetBy.keys()].filter((k) => baseBy.has(k));
  const pairs: ImagePair[] = [];
  for (const key of keys) {
    const base = baseBy.get(key);
    const target = targetBy.get(key);
    if (!base || !target) {
      throw new DeltaimgError(
        'USAGE',
        `platform ${key} is not in the ${base ? 'target' : 'base'} image (it has ${list(base ? targetBy : baseBy)}); pick others with --platform`,
      );
    }
    pairs.push({ base, target });
  }
  if (pairs.length === 0) {
    throw new DeltaimgError(
      'USAGE',
      `the base image (${list(baseBy)}) and the target image (${list(targetBy)}) have no platform in common; nothing to diff`,
    );
  }
  return pairs;
}

/** linux/arm64 and linux/arm64/v8 are the same platform. */
export function platformKey(p: Platform): string {
  const variant = p.architecture === 'arm64' && p.variant === 'v8' ? undefined : p.variant;
  return formatPlatform({ os: p.os, architecture: p.architecture, ...(variant ? { variant } : {}) });
}

function byPlatform(images: Image[]): Map<string, Image> {
  const map = new Map<string, Image>();
  for (const image of images) if (!map.has(platformKey(image.platform))) map.set(platformKey(image.platform), image);
  return map;
}

function list(m: Map<string, Image>): string {
  return [...m.keys()].join(', ') || 'none';
}
