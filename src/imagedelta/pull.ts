/**
 * `deltaimg pull docker://R/app:2`: on a machine that holds an older version, list app:2's
 * published deltas, pick one whose base is here (by registry digest first, else by image id),
 * download only that .dimg, apply it (every layer and the config verified) and write app:2.
 * When no delta fits, say so and pull normally: the engine's `docker pull` for docker-daemon:
 * (it fetches only the layers it lacks), else a copy from the registry.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  bytesReceived,
  digestCheck,
  formatImageRef,
  formatPlatform,
  formatRegistryRef,
  inspectDaemonImage,
  openImageSource,
  parsePlatform,
  pullIntoDaemon,
  readRegistryImages,
  RegistryClient,
  writeImages,
  type Image,
  type ImageRef,
  type RegistryOptions,
  type RegistryRef,
} from '../image/index.js';
import { DeltaimgError } from '../util/errors.js';
import { silentProgress, type Progress } from '../util/progress.js';
import { applyImageDelta, type RestoredImage } from './apply.js';
import { deltaBlob, listDeltas, type ListedDelta } from './publish.js';
import { withScratchDir } from '../util/atomic-output.js';

export interface PullOptions {
  dest: ImageRef;
  /** Images this machine holds to use as bases; default: the Docker engine's images. */
  have?: ImageRef[];
  registry?: RegistryOptions;
  tmpDir?: string;
  progress?: Progress;
  memoryBytes?: number;
}

/** A base found here for a published delta. */
interface LocalBase {
  delta: ListedDelta;
  ref: ImageRef;
  matchedBy: 'registry digest' | 'image id';
  /** The platform of the delta this base serves. */
  platform: string;
}

export interface PullReport {
  target: string;
  /** B's registry digest (index or manifest). */
  digest: string;
  mode: 'delta' | 'plain';
  /** The deltas published for B, by base. */
  published: { artifact: string; blobs: 'exact' | 'tars'; base?: string }[];
  delta?: { artifact: string; base: string; matchedBy: LocalBase['matchedBy']; bytes: number; blobs: 'exact' | 'tars' };
  /** Why no delta was used, when none was. */
  reason?: string;
  /** Registry bytes this pull read (undefined when the engine pulled). */
  bytesDownloaded?: number;
  /** What a plain pull of B's layers the base lacks would fetch: blobs + config + manifests. */
  plainPullBytes: number;
  images: RestoredImage[];
}

export async function pullImage(target: RegistryRef, opts: PullOptions): Promise<PullReport> {
  const registry = opts.registry ?? {};
  const progress = opts.progress ?? silentProgress;
  const startBytes = bytesReceived();
  const where = formatRegistryRef(target);
  progress.update({ label: 'listing deltas', done: 0 });
  const b = await readRegistryImages(target, registry);
  const client = await RegistryClient.open(target.registry, target.repository, registry);
  const deltas = await listDeltas(client, b.digest);
  const published = deltas.map((d) => ({ artifact: d.artifact.digest, blobs: d.blobs, ...(d.baseRef ? { base: d.baseRef } : {}) }));
  // An engine keeps layers uncompressed: the lighter variant (no exact-deflate recipes) serves it; other
  // destinations store compressed blobs, whose exact bytes (and manifest digest) need the full one.
  const preferred = opts.dest.transport === 'docker-daemon' ? 'tars' : 'exact';
  const ordered = [...deltas.filter((d) => d.blobs === preferred), ...deltas.filter((d) => d.blobs !== preferred)];
  const base = await findLocalBase(target, ordered, opts.have);
  const pinned: RegistryRef = { ...target, digest: b.digest };
  if (!base) {
    const reason =
      deltas.length === 0
        ? `no delta is published for ${where}`
        : `none of the ${deltas.length} published deltas has its base here (${deltas.map((d) => d.baseRef ?? d.baseImageIds[0]).join(', ')})`;
    return plainPull(pinned, b.images, b.digest, opts, reason, published, startBytes);
  }
  return withScratchDir(opts.tmpDir, 'deltaimg-image-pull-', async (work) => {
    const blob = await deltaBlob(client, base.delta);
    progress.update({ label: 'downloading delta', done: 0, total: blob.size });
    const dimgPath = join(work, 'delta.dimg');
    await pipeline(
      client.openBlob(blob.digest, blob.size),
      digestCheck({ digest: blob.digest, size: blob.size, label: `${where} delta ${blob.digest}` }),
      createWriteStream(dimgPath),
    );
    const applied = await applyImageDelta(base.ref, dimgPath, opts.dest, {
      progress,
      platforms: [parsePlatform(base.platform)],
      tmpDir: work,
      registry,
      ...(opts.memoryBytes ? { memoryBytes: opts.memoryBytes } : {}),
    });
    const wanted = b.images.find((i) => formatPlatform(i.platform) === base.platform);
    for (const img of applied.images) {
      if (wanted && img.configDigest !== wanted.configDigest) {
        throw new DeltaimgError(
          'VERIFY_FAILED',
          `${where}: the delta restored image ${img.configDigest}, but the registry's ${base.platform} image is ${wanted.configDigest}`,
        );
      }
    }
    const baseDiffIds = new Set(applied.header.images.flatMap((i) => i.base.diffIds));
    return {
      target: where,
      digest: b.digest,
      mode: 'delta' as const,
      published,
      delta: {
        artifact: base.delta.artifact.digest,
        base: formatImageRef(base.ref),
        matchedBy: base.matchedBy,
        bytes: blob.size,
        blobs: base.delta.blobs,
      },
      bytesDownloaded: bytesReceived() - startBytes,
      plainPullBytes: plainBytes(wanted ? [wanted] : b.images, baseDiffIds, b),
      images: applied.images,
    };
  });
}

/** Blobs of B's layers the base lacks, plus configs and manifests (and the index): what docker pull would fetch. */
function plainBytes(images: Image[], baseDiffIds: Set<string>, b: { index?: { bytes: Buffer } }): number {
  let n = b.index?.bytes.length ?? 0;
  for (const img of images) {
    n += img.config.length + (img.manifest?.bytes.length ?? 0);
    for (const l of img.layers) if (!baseDiffIds.has(l.diffId)) n += l.size;
  }
  return n;
}

async function plainPull(
  pinned: RegistryRef,
  images: Image[],
  digest: string,
  opts: PullOptions,
  reason: string,
  published: PullReport['published'],
  startBytes: number,
): Promise<PullReport> {
  const where = formatRegistryRef(pinned);
  const report = { target: where, digest, mode: 'plain' as const, published, reason, plainPullBytes: plainBytes(images, new Set(), {}) };
  if (opts.dest.transport === 'docker-daemon') {
    // The engine skips the layers it has; our docker load would need every layer tar.
    await pullIntoDaemon(`${pinned.registry}/${pinned.repository}@${digest}`, opts.dest.name);
    const id = await inspectDaemonImage(opts.dest.name);
    return { ...report, images: images.filter((i) => i.configDigest === id?.id).map((i) => restoredPlain(i)) };
  }
  const written = await writeImages(opts.dest, images, {
    ...(opts.tmpDir ? { tmpDir: opts.tmpDir } : {}),
    ...(opts.registry ? { registry: opts.registry } : {}),
  });
  return {
    ...report,
    bytesDownloaded: bytesReceived() - startBytes,
    images: images.map((i, n) => ({
      ...restoredPlain(i),
      ...(written[n]?.manifestDigest ? { manifestDigest: written[n]!.manifestDigest! } : {}),
    })),
  };
}

function restoredPlain(image: Image): RestoredImage {
  return {
    platform: formatPlatform(image.platform),
    configDigest: image.configDigest,
    ...(image.manifest ? { originalManifestDigest: image.manifest.digest } : {}),
    layers: image.layers.length,
    rebuiltLayers: 0,
  };
}

/**
 * A delta whose base is here: first by the base's registry digest (the engine records it as a
 * RepoDigest when it pulled the base), then by image id. `have` limits the search to those images.
 */
async function findLocalBase(target: RegistryRef, deltas: ListedDelta[], have: ImageRef[] | undefined): Promise<LocalBase | undefined> {
  if (deltas.length === 0) return undefined;
  const candidates = have ? await describeGiven(have) : undefined;
  for (const delta of deltas) {
    if (!delta.baseDigest) continue;
    const found = candidates
      ? candidates.find((c) => c.digests.includes(delta.baseDigest!))
      : await engineImage(
          `${target.registry}/${delta.baseRef ? repositoryOf(delta.baseRef, target) : target.repository}@${delta.baseDigest}`,
        );
    if (found) {
      const platform = platformFor(delta, found.ids);
      if (platform) return { delta, ref: found.ref, matchedBy: 'registry digest', platform };
    }
  }
  for (const delta of deltas) {
    for (const id of delta.baseImageIds) {
      const found = candidates ? candidates.find((c) => c.ids.includes(id)) : await engineImage(id);
      const platform = found && platformFor(delta, found.ids);
      if (found && platform) return { delta, ref: found.ref, matchedBy: 'image id', platform };
    }
  }
  return undefined;
}

/** The delta's platform whose base image id is one of `ids`. */
function platformFor(delta: ListedDelta, ids: string[]): string | undefined {
  const i = delta.baseImageIds.findIndex((id) => ids.includes(id));
  return i >= 0 ? delta.platforms[i] : undefined;
}

/** The repository of a docker:// base reference (deltas may come from another repository of the registry). */
function repositoryOf(baseRef: string, target: RegistryRef): string {
  const m = /^docker:\/\/[^/]+\/(.+?)(?::[\w][\w.-]*)?(?:@sha256:[0-9a-f]{64})?$/.exec(baseRef);
  return m?.[1] ?? target.repository;
}

interface Candidate {
  ref: ImageRef;
  ids: string[];
  digests: string[];
}

async function engineImage(ref: string): Promise<Candidate | undefined> {
  const found = await inspectDaemonImage(ref);
  if (!found) return undefined;
  return {
    ref: { transport: 'docker-daemon', name: found.id },
    ids: [found.id],
    digests: found.repoDigests.map((d) => d.replace(/^.*@/, '')),
  };
}

/** --have images: the engine's by inspect (no docker save just to look), archives and layouts by reading them. */
async function describeGiven(have: ImageRef[]): Promise<Candidate[]> {
  const out: Candidate[] = [];
  for (const ref of have) {
    if (ref.transport === 'docker-daemon') {
      const found = await engineImage(ref.name);
      if (!found) throw new DeltaimgError('USAGE', `--have ${formatImageRef(ref)}: the Docker engine has no such image`);
      out.push({ ...found, ref });
      continue;
    }
    const source = await openImageSource(ref);
    try {
      const images = source.images();
      out.push({
        ref,
        ids: images.map((i) => i.configDigest),
        digests: [...(source.index ? [source.index.digest] : []), ...images.flatMap((i) => (i.manifest ? [i.manifest.digest] : []))],
      });
    } finally {
      await source.close();
    }
  }
  return out;
}
