/**
 * `dockerfile diff|apply` end to end, short of building: inspect the images involved, check
 * what can be checked before a build would fail late (images present, A-TO-B really a delta
 * image, the given source really its base), then generate the Dockerfile.
 */
import { DeltaimgError } from '../util/errors.js';
import { formatBytes } from '../util/progress.js';
import { checkBuilder } from './builder.js';
import { diffDockerfile, applyDockerfile, type LayeredInput, type StageShape } from './dockerfile.js';
import { inspectImage, lookupImage, type EngineOptions } from './engine.js';
import type { ImageConfig, ImageInfo } from './image.js';
import { checkLayeredConfig, needsRootForRun } from './layered-config.js';
import { readDeltaImage, type DeltaImageMeta } from './labels.js';
import { imageRefToken } from './syntax.js';

export interface PlanCommon {
  /** Default deltaimg/runtime:<toolVersion>. */
  runtimeImage?: string;
  toolVersion: string;
  engine?: EngineOptions;
  /** false (--no-check): print without asking whether the docker build here can run it. */
  checkBuilder?: boolean;
  /** 'copy' (--copy): COPY the roots into the scratch stage instead of RUN --mount; any builder. */
  shape?: StageShape;
}

/** A Dockerfile to print, and notes for stderr (hints that do not stop it). */
export interface Plan {
  dockerfile: string;
  notes: string[];
}

export function defaultRuntimeImage(toolVersion: string): string {
  return `deltaimg/runtime:${toolVersion}`;
}

export async function planDiff(opts: PlanCommon & { base: string; target: string; unlinked?: boolean }): Promise<Plan> {
  imageRefToken(opts.base, 'base image');
  imageRefToken(opts.target, 'target image');
  const runtimeImage = opts.runtimeImage ?? defaultRuntimeImage(opts.toolVersion);
  const builder = builderNotes(opts);
  const [base, target] = await Promise.all([inspectImage(opts.base, opts.engine), inspectImage(opts.target, opts.engine)]);
  await requireRuntime(runtimeImage, opts.engine);
  const linked = !opts.unlinked;
  if (linked && base.config.OnBuild?.length) {
    throw new DeltaimgError(
      'DOCKER',
      `base image ${opts.base} has ONBUILD triggers, which would run when the delta image is built FROM it; use --unlinked`,
    );
  }
  const notes = await builder;
  return { dockerfile: diffDockerfile({ base, target, runtimeImage, linked, toolVersion: opts.toolVersion, shape: opts.shape }), notes };
}

export async function planApply(opts: PlanCommon & { deltaImage: string; unlinkedSource?: string; layered?: boolean }): Promise<Plan> {
  imageRefToken(opts.deltaImage, 'delta image');
  if (opts.layered && opts.shape === 'copy') {
    throw new DeltaimgError(
      'USAGE',
      "--layered edits A's root in a RUN that sees the restored root through RUN --mount (BuildKit); it cannot be combined with --copy",
    );
  }
  if (opts.unlinkedSource !== undefined) imageRefToken(opts.unlinkedSource, 'source image');
  const runtimeImage = opts.runtimeImage ?? defaultRuntimeImage(opts.toolVersion);
  const builder = builderNotes(opts);
  const meta = readDeltaImage(await inspectImage(opts.deltaImage, opts.engine));
  if (!meta.linked && opts.unlinkedSource === undefined) {
    throw new DeltaimgError(
      'USAGE',
      `delta image ${opts.deltaImage} was built with --unlinked: pass --unlinked-source with its base, ${meta.base.ref} (${meta.base.id})`,
    );
  }
  let source: ImageInfo | undefined;
  if (opts.unlinkedSource !== undefined) {
    source = await inspectImage(opts.unlinkedSource, opts.engine);
    if (source.id !== meta.base.id) {
      throw new DeltaimgError(
        'WRONG_SOURCE',
        `${opts.unlinkedSource} is ${source.id}, but delta image ${opts.deltaImage} was made from ${meta.base.ref} = ${meta.base.id}; pass that image`,
      );
    }
  }
  const layered = opts.layered ? await planLayered(meta, source, opts.engine) : undefined;
  await requireRuntime(runtimeImage, opts.engine);
  const notes = [...(await builder), ...storageNote(meta, !!opts.layered), ...(opts.layered ? [] : envOrderNote(meta.target.config))];
  return {
    dockerfile: applyDockerfile({
      deltaImage: opts.deltaImage,
      meta,
      runtimeImage,
      unlinkedSource: opts.unlinkedSource,
      toolVersion: opts.toolVersion,
      layered,
      shape: opts.shape,
    }),
    notes,
  };
}

/**
 * What B' costs the receiver's disk and registry: flattened, B whole beside A; --layered, A's
 * layers shared plus the changes. From the sizes the delta image recorded (older ones lack them).
 */
export function storageNote(meta: DeltaImageMeta, layered: boolean): string[] {
  const [a, b] = [meta.base.size, meta.target.size];
  if (a === undefined || b === undefined) return [];
  if (layered) return [`B' is ${meta.base.ref}'s layers (${formatBytes(a)}, shared, stored once) plus one layer of what B changes`];
  return [
    `B' is one flattened layer of ${formatBytes(b)} (all of B), stored beside ${meta.base.ref}'s ${formatBytes(a)} on disk and in a registry; ` +
      `--layered would keep those ${formatBytes(a)} of ${meta.base.ref}'s layers shared and add only the changed files`,
  ];
}

/**
 * The one way a flattened B' can list B's environment differently: every builder gives a FROM
 * scratch stage PATH before any ENV runs (and ENV replaces it in place), so PATH comes first
 * (measured on BuildKit 0.8 and the classic builder). The other variables keep B's order.
 */
export function envOrderNote(config: ImageConfig): string[] {
  const env = config.Env ?? [];
  const at = env.findIndex((pair) => pair.startsWith('PATH='));
  if (at <= 0) return [];
  return [
    `B' lists PATH first and the rest of B's environment in B's order (B has PATH at position ${at + 1}): builders give a FROM scratch image PATH before any ENV`,
  ];
}

/**
 * Started first, awaited last: the builder check is the slowest question (it starts a build, 0.3-1.2 s
 * on a loaded 2-core VM), asked while the images are inspected; a missing image is still the error
 * the user sees first.
 */
function builderNotes(opts: PlanCommon): Promise<string[]> {
  const notes = opts.checkBuilder === false ? Promise.resolve([]) : checkBuilder(opts.shape === 'copy' ? 'any' : 'buildkit', opts.engine);
  notes.catch(() => {}); // awaited later; not an unhandled rejection meanwhile
  return notes;
}

/**
 * --layered builds FROM the base image itself, by name: the one given with --unlinked-source,
 * else the name the delta image recorded, which must still name the same image here.
 */
async function planLayered(meta: DeltaImageMeta, source: ImageInfo | undefined, engine: EngineOptions | undefined): Promise<LayeredInput> {
  let base = source;
  if (!base) {
    const found = await lookupImage(meta.base.ref, engine);
    if (!found.found || found.info.id !== meta.base.id) {
      const what = found.found ? `is ${found.info.id} here, not the delta's base ${meta.base.id}` : 'is not in the local Docker engine';
      throw new DeltaimgError(
        'USAGE',
        `--layered builds FROM the base image; ${meta.base.ref} ${what}: pass the base image with --unlinked-source A`,
      );
    }
    base = found.info;
  }
  checkLayeredConfig(base.config, meta.target.config, base.ref);
  return { baseImage: base.ref, runAsRoot: needsRootForRun(base.config) };
}

async function requireRuntime(ref: string, engine: EngineOptions | undefined): Promise<void> {
  imageRefToken(ref, 'runtime image');
  if (!(await lookupImage(ref, engine)).found) {
    throw new DeltaimgError(
      'DOCKER',
      `runtime image ${ref} is not in the local Docker engine: build it with deltaimg runtime build, docker load it, or name another with --runtime-image`,
    );
  }
}
