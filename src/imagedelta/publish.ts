/**
 * `.dimg` deltas published beside the image they restore: an OCI 1.1 artifact whose subject
 * is B's manifest (or index) and whose annotations name the base (its registry digest when
 * it has one, its image ids), so `deltaimg pull` can list B's deltas and pick one whose base
 * the machine holds. Several bases for one B sit side by side.
 */
import { DeltaimgError } from '../util/errors.js';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  artifactFile,
  formatImageRef,
  formatRegistryRef,
  hashStream,
  listReferrers,
  pushArtifact,
  RegistryClient,
  topDescriptor,
  type ImageRef,
  type Descriptor,
  type PushedArtifact,
  type RegistryOptions,
  type RegistryRef,
} from '../image/index.js';
import { diffImages, type ImageDiffOptions, type ImageDiffResult } from './diff.js';
import { packDimg, readDimgHeader, unpackDimg } from './container.js';
import type { DimgHeader } from './format.js';
import { withScratchDir } from '../util/atomic-output.js';

export const DELTA_ARTIFACT_TYPE = 'application/vnd.deltaimg.delta.v1';
export const DIMG_MEDIA_TYPE = 'application/vnd.deltaimg.delta.v1+dimg';

export const ANNOTATIONS = {
  /** The base's registry digest (its index or manifest), when the base came from a registry. */
  baseDigest: 'io.deltaimg.base.digest',
  /** The base as it was named, for messages. */
  baseRef: 'io.deltaimg.base.ref',
  /** The base's image ids (config digests), comma-separated, one per platform. */
  baseImageIds: 'io.deltaimg.base.image-ids',
  /** The target's image ids, comma-separated. */
  targetImageIds: 'io.deltaimg.target.image-ids',
  platforms: 'io.deltaimg.platforms',
  /** `exact`: B's compressed blobs come back byte for byte (exact-deflate recipes inside); `tars`: the lighter variant without them. */
  blobs: 'io.deltaimg.blobs',
  created: 'org.opencontainers.image.created',
} as const;

/** Whether a published .dimg restores B's compressed blobs byte for byte, or B's tars (same image id). */
export type BlobFidelity = 'exact' | 'tars';

export interface PublishedDelta {
  artifactDigest: string;
  listedBy: PushedArtifact['listedBy'];
  bytes: number;
}

export interface DeltaBase {
  /** Text of the base reference, for messages. */
  ref: string;
  /** The base's registry digest when it is a registry image. */
  digest?: string;
}

/** Pushes `dimgPath` as a delta artifact of `target`'s manifest `subject`. */
export async function publishDelta(
  target: RegistryRef,
  subject: Descriptor,
  dimgPath: string,
  header: DimgHeader,
  base: DeltaBase,
  opts: RegistryOptions,
  blobs: BlobFidelity = 'exact',
): Promise<PublishedDelta> {
  const client = await RegistryClient.open(target.registry, target.repository, { ...opts, push: true });
  const file = await hashStream(createReadStream(dimgPath));
  const annotations: Record<string, string> = {
    [ANNOTATIONS.baseRef]: base.ref,
    [ANNOTATIONS.baseImageIds]: header.images.map((i) => i.base.configDigest).join(','),
    [ANNOTATIONS.targetImageIds]: header.images.map((i) => i.target.configDigest).join(','),
    [ANNOTATIONS.platforms]: header.images.map((i) => i.platform).join(','),
    [ANNOTATIONS.created]: header.created,
    [ANNOTATIONS.blobs]: blobs,
    ...(base.digest ? { [ANNOTATIONS.baseDigest]: base.digest } : {}),
  };
  const pushed = await pushArtifact(client, {
    artifactType: DELTA_ARTIFACT_TYPE,
    subject,
    annotations,
    file: {
      path: dimgPath,
      digest: file.digest,
      mediaType: DIMG_MEDIA_TYPE,
      title: `${shortName(base.ref)}-to-${shortName(formatRegistryRef(target))}.dimg`,
    },
    // A delta from the same base images to the same target is superseded, not listed twice.
    replaces: (d) =>
      (['baseImageIds', 'platforms', 'blobs'] as const).every(
        (k) => (d.annotations?.[ANNOTATIONS[k]] ?? 'exact') === annotations[ANNOTATIONS[k]],
      ),
  });
  return { artifactDigest: pushed.descriptor.digest, listedBy: pushed.listedBy, bytes: file.bytes };
}

function shortName(ref: string): string {
  return ref.replace(/^.*\//, '').replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** A published delta, as listed: what it was made from. */
export interface ListedDelta {
  artifact: Descriptor;
  baseDigest?: string;
  baseRef?: string;
  baseImageIds: string[];
  platforms: string[];
  blobs: BlobFidelity;
}

export async function listDeltas(client: RegistryClient, subjectDigest: string): Promise<ListedDelta[]> {
  const found = await listReferrers(client, subjectDigest, DELTA_ARTIFACT_TYPE);
  return found.map((artifact) => {
    const a = artifact.annotations ?? {};
    const ids = (a[ANNOTATIONS.baseImageIds] ?? '').split(',').filter((d) => /^sha256:[0-9a-f]{64}$/.test(d));
    const baseDigest = a[ANNOTATIONS.baseDigest];
    return {
      artifact,
      ...(baseDigest && /^sha256:[0-9a-f]{64}$/.test(baseDigest) ? { baseDigest } : {}),
      ...(a[ANNOTATIONS.baseRef] ? { baseRef: a[ANNOTATIONS.baseRef] } : {}),
      baseImageIds: ids,
      platforms: (a[ANNOTATIONS.platforms] ?? '').split(',').filter(Boolean),
      blobs: a[ANNOTATIONS.blobs] === 'tars' ? ('tars' as const) : ('exact' as const),
    };
  });
}

/** Recipes above this share of a .dimg make a lighter variant worth publishing beside it. */
const LIGHT_VARIANT_SHARE = 0.25;

/**
 * The .dimg without its exact-deflate recipes, for receivers that keep layers uncompressed (an
 * engine): same image id and diff_ids, B's compressed blobs not byte for byte. False (nothing
 * written) when the recipes are a small part of the file.
 */
export async function lightenDimg(full: string, out: string, scratch: string, fullBytes: number): Promise<boolean> {
  const header = await readDimgHeader(full);
  const recipes = new Set(header.images.flatMap((i) => i.target.layers.flatMap((l) => (l.stored?.recipe ? [l.stored.recipe.member] : []))));
  const recipeBytes = header.members.filter((m) => recipes.has(m.name)).reduce((n, m) => n + m.size, 0);
  if (recipeBytes <= fullBytes * LIGHT_VARIANT_SHARE) return false;
  const unpacked = await unpackDimg(full, scratch);
  const why = 'left out of this lighter delta (for engines, which keep layers uncompressed); its exact-blob variant restores it';
  const images = unpacked.images.map((img) => ({
    ...img,
    target: {
      ...img.target,
      layers: img.target.layers.map((l) => {
        if (!l.stored?.recipe) return l;
        const { recipe: _dropped, ...stored } = l.stored;
        return { ...l, stored: { ...stored, inexact: why } };
      }),
    },
  }));
  const { members, ...rest } = unpacked;
  const files = members.filter((m) => !recipes.has(m.name)).map((m) => ({ name: m.name, path: join(scratch, ...m.name.split('/')) }));
  await packDimg({ ...rest, images }, files, out);
  await rm(scratch, { recursive: true, force: true });
  return true;
}

/** The .dimg blob of a listed delta: its descriptor (digest and size) from the artifact manifest. */
export async function deltaBlob(client: RegistryClient, delta: ListedDelta): Promise<Descriptor> {
  const file = await artifactFile(client, delta.artifact);
  if (file.mediaType !== DIMG_MEDIA_TYPE)
    throw new DeltaimgError(
      'REGISTRY',
      `${client.where}@${delta.artifact.digest}: the delta artifact holds ${file.mediaType}, not a .dimg`,
    );
  return file;
}

export interface DiffPushResult {
  base: string;
  target: string;
  subject: string;
  dimg: ImageDiffResult;
  published: PublishedDelta;
  /** The variant without exact-deflate recipes, published too when they are a large part of the .dimg. */
  light?: PublishedDelta;
}

/**
 * `image diff --push`: one .dimg per base against the target, each pushed as a delta artifact of
 * the target's manifest. The target is pinned by the digest it had when we started, so a tag
 * that moves meanwhile cannot pair a delta with the wrong image. `out` keeps the .dimg (one base only).
 */
export async function diffAndPublish(
  bases: ImageRef[],
  target: Extract<ImageRef, { transport: 'docker' }>,
  out: string | undefined,
  opts: ImageDiffOptions,
): Promise<DiffPushResult[]> {
  const registry = opts.registry ?? {};
  const subject = await topDescriptor(target, registry);
  const pinned = { ...target, digest: subject.digest };
  return withScratchDir(opts.tmpDir, 'deltaimg-image-push-', async (work) => {
    const results: DiffPushResult[] = [];
    for (const [i, base] of bases.entries()) {
      const dimgPath = out ?? join(work, `delta-${i}.dimg`);
      const dimg = await diffImages(base, pinned, dimgPath, opts);
      const baseDigest = base.transport === 'docker' ? (await topDescriptor(base, registry)).digest : undefined;
      const baseInfo = { ref: formatImageRef(base), ...(baseDigest ? { digest: baseDigest } : {}) };
      // Without token recipes (--no-exact-blobs) the one .dimg is the light kind: label it so pull knows.
      const fidelity: BlobFidelity = opts.exactBlobs === false ? 'tars' : 'exact';
      const published = await publishDelta(target, subject, dimgPath, dimg.header, baseInfo, registry, fidelity);
      const lightPath = join(work, `delta-${i}-light.dimg`);
      const light =
        fidelity === 'exact' && (await lightenDimg(dimgPath, lightPath, join(work, `unpacked-${i}`), dimg.bytes))
          ? await publishDelta(target, subject, lightPath, await readDimgHeader(lightPath), baseInfo, registry, 'tars')
          : undefined;
      results.push({
        base: formatImageRef(base),
        target: formatImageRef(target),
        subject: subject.digest,
        dimg,
        published,
        ...(light ? { light } : {}),
      });
      await rm(lightPath, { force: true });
      if (!out) await rm(dimgPath, { force: true });
    }
    return results;
  });
}
