/**
 * The part of an image's `docker image inspect` that deltaimg uses: its id, its layers and the
 * run-time config a Dockerfile can express (and so restore).
 */

/** Healthcheck as the engine stores it: durations in nanoseconds. */
export interface HealthConfig {
  /** ["NONE"], ["CMD", arg...], or ["CMD-SHELL", command]. */
  Test?: string[] | null;
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
}

/** The config fields deltaimg records for the target image and restores on apply. */
export interface ImageConfig {
  Env?: string[] | null;
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, object> | null;
  Volumes?: Record<string, object> | null;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  Healthcheck?: HealthConfig | null;
  Shell?: string[] | null;
  OnBuild?: string[] | null;
}

export interface ImageInfo {
  /** The reference it was inspected by (name:tag). */
  ref: string;
  /** sha256:<hex> of the image config. */
  id: string;
  config: ImageConfig;
  /** Diff ids of the layers, bottom first. */
  layers: string[];
  os: string;
  architecture: string;
  /** NAME@sha256:... of the registries it was pulled from or pushed to. */
  repoDigests: string[];
}

const CONFIG_FIELDS = [
  'Env',
  'Cmd',
  'Entrypoint',
  'WorkingDir',
  'User',
  'ExposedPorts',
  'Volumes',
  'Labels',
  'StopSignal',
  'Healthcheck',
  'Shell',
  'OnBuild',
] as const satisfies readonly (keyof ImageConfig)[];

/**
 * Keeps the known config fields that carry a value (drops null, "" and empty lists/maps),
 * so two images configured alike give the same object whatever their builder left empty.
 */
export function pickConfig(raw: Record<string, unknown> | null | undefined): ImageConfig {
  const out: Record<string, unknown> = {};
  for (const field of CONFIG_FIELDS) {
    const v = raw?.[field];
    if (v === null || v === undefined || v === '') continue;
    if (Array.isArray(v) && v.length === 0 && field !== 'Cmd' && field !== 'Entrypoint') continue;
    if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    out[field] = v;
  }
  return out as ImageConfig;
}

/** Builds an ImageInfo from one element of `docker image inspect`'s JSON array. */
export function imageInfoFromInspect(ref: string, raw: Record<string, unknown>): ImageInfo {
  const rootFs = raw.RootFS as { Layers?: string[] } | undefined;
  return {
    ref,
    id: String(raw.Id),
    config: pickConfig(raw.Config as Record<string, unknown> | null),
    layers: rootFs?.Layers ?? [],
    os: String(raw.Os ?? ''),
    architecture: String(raw.Architecture ?? ''),
    repoDigests: Array.isArray(raw.RepoDigests) ? raw.RepoDigests.filter((d): d is string => typeof d === 'string') : [],
  };
}
