/**
 * The part of an image's `docker image inspect` that deltaimg uses: its id, its layers and the
 * run-time config a Dockerfile can express (and so restore).
 */
import { JsonFields } from '../util/json-input.js';

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
  repoDigests?: string[];
  /** Bytes of its layers, uncompressed, as the engine counts them (docker image inspect's Size). */
  size?: number;
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
 * Each kept field is checked for its type (`f` names the source in errors): the config comes
 * from the engine or from a delta image's label, both outside data.
 */
export function pickConfig(
  raw: unknown,
  f: JsonFields = new JsonFields('the image config', 'DOCKER', 'inspect the image with docker image inspect'),
): ImageConfig {
  if (raw === null || raw === undefined) return {};
  const o = f.object(raw, 'Config');
  const out: ImageConfig = {};
  const strings = (field: 'Env' | 'Cmd' | 'Entrypoint' | 'Shell' | 'OnBuild') => {
    const v = o[field];
    if (v === null || v === undefined) return;
    const list = f.array(v, `Config.${field}`, (x, xf) => f.string(x, xf));
    if (list.length > 0 || field === 'Cmd' || field === 'Entrypoint') out[field] = list;
  };
  const text = (field: 'WorkingDir' | 'User' | 'StopSignal') => {
    const v = o[field];
    if (v === null || v === undefined || v === '') return;
    out[field] = f.string(v, `Config.${field}`);
  };
  const set = (field: 'ExposedPorts' | 'Volumes') => {
    const v = o[field];
    if (v === null || v === undefined) return;
    const map = f.object(v, `Config.${field}`);
    const keys = Object.keys(map);
    if (keys.length > 0) out[field] = Object.fromEntries(keys.map((k) => [k, {}]));
  };
  for (const field of ['Env', 'Cmd', 'Entrypoint', 'Shell', 'OnBuild'] as const) strings(field);
  for (const field of ['WorkingDir', 'User', 'StopSignal'] as const) text(field);
  for (const field of ['ExposedPorts', 'Volumes'] as const) set(field);
  if (o.Labels !== null && o.Labels !== undefined) {
    const labels = f.object(o.Labels, 'Config.Labels');
    const entries = Object.entries(labels).map(([k, v]) => [k, f.string(v, `Config.Labels[${JSON.stringify(k)}]`)] as const);
    if (entries.length > 0) out.Labels = Object.fromEntries(entries);
  }
  if (o.Healthcheck !== null && o.Healthcheck !== undefined) {
    const health = healthcheck(f, o.Healthcheck);
    if (Object.keys(health).length > 0) out.Healthcheck = health;
  }
  return orderedLike(out);
}

/** The fields in CONFIG_FIELDS order, so the same config always serializes the same way. */
function orderedLike(config: ImageConfig): ImageConfig {
  const out: Record<string, unknown> = {};
  for (const field of CONFIG_FIELDS) if (config[field] !== undefined) out[field] = config[field];
  return out;
}

function healthcheck(f: JsonFields, v: unknown): HealthConfig {
  const h = f.object(v, 'Config.Healthcheck');
  const out: HealthConfig = {};
  if (h.Test !== null && h.Test !== undefined) {
    const test = f.array(h.Test, 'Config.Healthcheck.Test', (x, xf) => f.string(x, xf));
    if (test.length > 0) out.Test = test;
  }
  for (const field of ['Interval', 'Timeout', 'StartPeriod', 'Retries'] as const) {
    const n = h[field];
    if (n !== null && n !== undefined && n !== 0) out[field] = f.uint(n, `Config.Healthcheck.${field}`);
  }
  return out;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Builds an ImageInfo from one element of `docker image inspect`'s JSON array, checking every field it keeps. */
export function imageInfoFromInspect(ref: string, raw: unknown): ImageInfo {
  const f = new JsonFields(`docker image inspect ${ref}`, 'DOCKER', 'is the docker CLI a Docker-compatible one?');
  const o = f.object(raw, '');
  const rootFs = o.RootFS === undefined || o.RootFS === null ? {} : f.object(o.RootFS, 'RootFS');
  return {
    ref,
    id: f.string(o.Id, 'Id', DIGEST),
    config: pickConfig(o.Config, f),
    layers:
      rootFs.Layers === undefined || rootFs.Layers === null
        ? []
        : f.array(rootFs.Layers, 'RootFS.Layers', (x, xf) => f.string(x, xf, DIGEST)),
    os: o.Os === undefined ? '' : f.string(o.Os, 'Os'),
    architecture: o.Architecture === undefined ? '' : f.string(o.Architecture, 'Architecture'),
    repoDigests:
      o.RepoDigests === undefined || o.RepoDigests === null ? [] : f.array(o.RepoDigests, 'RepoDigests', (x, xf) => f.string(x, xf)),
    ...(o.Size === undefined ? {} : { size: f.uint(o.Size, 'Size') }),
  };
}
