/**
 * The labels that make an image a deltaimg delta image (A-TO-B): what it was made from, what it
 * rebuilds, and the target's config. `dockerfile apply` reads them back; nothing else is needed.
 */
import { DeltaimgError } from '../util/errors.js';
import { pickConfig, type ImageConfig, type ImageInfo } from './image.js';
import { JsonFields } from '../util/json-input.js';

/** Bump when a reader of the previous version could misread these labels or the image layout. */
export const DELTA_IMAGE_VERSION = 1;

export const LABELS = {
  version: 'io.deltaimg.version',
  tool: 'io.deltaimg.tool-version',
  linked: 'io.deltaimg.linked',
  baseRef: 'io.deltaimg.base-ref',
  baseId: 'io.deltaimg.base-id',
  targetRef: 'io.deltaimg.target-ref',
  targetId: 'io.deltaimg.target-id',
  targetConfig: 'io.deltaimg.target-config',
  /** Optional (delta images made before them lack them): image sizes, for apply's summary. */
  baseSize: 'io.deltaimg.base-size',
  targetSize: 'io.deltaimg.target-size',
} as const;

/** Where the delta directory sits in a delta image. */
export const DELTA_PATH = '/__delta__';

export interface DeltaImageMeta {
  version: number;
  tool: string;
  /** true: the image is FROM the base (its layers shared); false: FROM scratch, the delta alone. */
  linked: boolean;
  /** size: bytes of the image's layers (uncompressed), when recorded. */
  base: { ref: string; id: string; size?: number };
  target: { ref: string; id: string; config: ImageConfig; size?: number };
}

export function labelsFor(meta: DeltaImageMeta): Record<string, string> {
  return {
    [LABELS.version]: String(meta.version),
    [LABELS.tool]: meta.tool,
    [LABELS.linked]: String(meta.linked),
    [LABELS.baseRef]: meta.base.ref,
    [LABELS.baseId]: meta.base.id,
    [LABELS.targetRef]: meta.target.ref,
    [LABELS.targetId]: meta.target.id,
    [LABELS.targetConfig]: JSON.stringify(meta.target.config),
    ...(meta.base.size === undefined ? {} : { [LABELS.baseSize]: String(meta.base.size) }),
    ...(meta.target.size === undefined ? {} : { [LABELS.targetSize]: String(meta.target.size) }),
  };
}

/** Reads a delta image's labels; fails when the image is not one, or one of a newer version. */
export function readDeltaImage(info: ImageInfo): DeltaImageMeta {
  const labels = info.config.Labels ?? {};
  const version = labels[LABELS.version];
  if (version === undefined) {
    throw new DeltaimgError(
      'DOCKER',
      `image ${info.ref} is not a deltaimg delta image (no ${LABELS.version} label); make one with deltaimg dockerfile diff A B | docker build -t A-to-B -`,
    );
  }
  if (!/^\d+$/.test(version) || Number(version) > DELTA_IMAGE_VERSION) {
    throw new DeltaimgError(
      'UNSUPPORTED_VERSION',
      `image ${info.ref} is a deltaimg delta image of version ${version}; this deltaimg reads up to ${DELTA_IMAGE_VERSION}: upgrade deltaimg`,
    );
  }
  const need = (key: string): string => {
    const v = labels[key];
    if (v === undefined || v === '')
      throw new DeltaimgError('DOCKER', `delta image ${info.ref} lacks its ${key} label; rebuild it with deltaimg dockerfile diff`);
    return v;
  };
  let config: ImageConfig;
  try {
    const label = `delta image ${info.ref}: label ${LABELS.targetConfig}`;
    config = pickConfig(
      JSON.parse(need(LABELS.targetConfig)) as unknown,
      new JsonFields(label, 'DOCKER', 'rebuild it with deltaimg dockerfile diff'),
    );
  } catch (err) {
    if (err instanceof DeltaimgError) throw err;
    throw new DeltaimgError(
      'DOCKER',
      `delta image ${info.ref}: label ${LABELS.targetConfig} is not valid JSON; rebuild it with deltaimg dockerfile diff`,
      { cause: err },
    );
  }
  const size = (key: string): { size?: number } => {
    const v = labels[key];
    return v !== undefined && /^\d{1,15}$/.test(v) ? { size: Number(v) } : {};
  };
  return {
    version: Number(version),
    tool: labels[LABELS.tool] ?? '',
    linked: need(LABELS.linked) === 'true',
    base: { ref: need(LABELS.baseRef), id: need(LABELS.baseId), ...size(LABELS.baseSize) },
    target: { ref: need(LABELS.targetRef), id: need(LABELS.targetId), config, ...size(LABELS.targetSize) },
  };
}
