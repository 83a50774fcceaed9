/**
 * `deltaimg image apply`: rebuilds image B from image A and a `.dimg`. Every rebuilt layer is
 * checked against its diff_id and the config against its digest before anything is written;
 * A's layers are checked as they stream into the result; the writer renames into place only
 * when all of it went through, so a failure leaves nothing behind.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { rebuild, replayWithZlibLevel } from '../deflate/index.js';
import { applyDelta } from '../delta/apply.js';
import {
  MT,
  openImageSource,
  parsePlatform,
  writeImages,
  type Image,
  type ImageRef,
  type ImageManifest,
  type Layer,
  type Platform,
  type RegistryOptions,
  type WrittenImage,
} from '../image/index.js';
import { assertAbsent, withScratchDir } from '../util/atomic-output.js';
import { decodeSkeleton, joinTar } from '../tarsplit/index.js';
import { VcdiffPool } from '../vcdiff/index.js';
import { defaultMemoryBudget, idleWorkerShare } from '../util/memory-budget.js';
import { DeltaimgError } from '../util/errors.js';
import { silentProgress, type Progress } from '../util/progress.js';
import { damaged, unpackDimg } from './container.js';
import { hexOf, type DimgHeader, type DimgImage, type DimgLayer, type DimgTargetLayer } from './format.js';
import { platformKey } from './platforms.js';
import { BaseRootfs } from './rootfs.js';

export interface ImageApplyOptions {
  progress?: Progress;
  tmpDir?: string;
  /** Layout of a docker-archive result; OCI destinations are always OCI. */
  format?: 'classic' | 'oci';
  /** Platforms to restore; default: every image the .dimg holds. */
  platforms?: Platform[];
  /** docker:// images: credentials and TLS. */
  registry?: RegistryOptions;
  /** The memory budget in bytes (`--memory`), as ApplyOptions.memoryBytes; default defaultMemoryBudget(). */
  memoryBytes?: number;
}

export interface RestoredImage {
  platform: string;
  /** B's image id (config digest): always the original's, or apply fails. */
  configDigest: string;
  /** The original manifest digest, when B had one. */
  originalManifestDigest?: string;
  /** The written manifest's digest, when the destination has manifests. */
  manifestDigest?: string;
  /** Why the manifest digest differs from the original, when it does. */
  manifestNote?: string;
  layers: number;
  rebuiltLayers: number;
}

export interface ImageApplyResult {
  header: DimgHeader;
  images: RestoredImage[];
}

export async function applyImageDelta(
  baseRef: ImageRef,
  dimgPath: string,
  dest: ImageRef,
  opts: ImageApplyOptions = {},
): Promise<ImageApplyResult> {
  const progress = opts.progress ?? silentProgress;
  await refuseExistingOutput(dest);
  return withScratchDir(opts.tmpDir, 'deltaimg-image-apply-', async (work) => {
    const members = join(work, 'dimg');
    await mkdir(members);
    progress.update({ label: 'reading delta', done: 0 });
    const header = await unpackDimg(dimgPath, members);
    const images = selectImages(header.images, opts.platforms, dimgPath);
    refuseAmbiguousLoad(dest, images, dimgPath);
    const base = await openImageSource(baseRef, { tmpDir: work, ...(opts.registry ? { registry: opts.registry } : {}) });
    const memoryBytes = opts.memoryBytes ?? defaultMemoryBudget();
    const pool = new VcdiffPool({ recycleBytes: idleWorkerShare(memoryBytes) });
    try {
      const bases = matchBases(images, base.images(), dimgPath);
      const restorer = new LayerRestorer(header, members, join(work, 'layers'), {
        rootfs: new BaseRootfs(join(work, 'base'), progress, header.inlineMax),
        bases: new Map(base.images().map((img) => [img.configDigest, img])),
        pool,
        progress,
        dimgPath,
        memoryBytes,
      });
      const toWrite: Image[] = [];
      const plans: ImagePlan[] = [];
      for (const [i, image] of images.entries()) {
        const plan = await planImage(image, bases[i]!, base.images(), restorer, members, dimgPath);
        plans.push(plan);
        toWrite.push(plan.write);
      }
      progress.update({ label: 'writing image', done: 0 });
      const index =
        header.targetIndex && images.length === header.images.length ? await targetIndex(header.targetIndex, members, dimgPath) : undefined;
      const registry = opts.registry || index ? { ...opts.registry, ...(index ? { index } : {}) } : undefined;
      const written = await writeImages(dest, toWrite, {
        ...(opts.format ? { format: opts.format } : {}),
        tmpDir: work,
        ...(registry ? { registry } : {}),
      });
      return { header, images: plans.map((p, i) => restoredReport(p, written[i])) };
    } finally {
      progress.done();
      await pool.close();
      await base.close();
    }
  });
}

/** A file output that exists is refused before any work, not after it. */
async function refuseExistingOutput(dest: ImageRef): Promise<void> {
  if (dest.transport === 'oci' || dest.transport === 'oci-archive' || dest.transport === 'docker-archive')
    await assertAbsent(resolve(dest.path));
}

/**
 * What `docker load` reads keeps a name on one image only: a daemon takes one image, and a
 * docker-archive whose images share a name (the platforms of one index do) would leave that
 * name on whichever loads last, maybe another platform than the host's.
 */
function refuseAmbiguousLoad(dest: ImageRef, images: DimgImage[], dimgPath: string): void {
  if (images.length < 2) return;
  const platforms = images.map((i) => i.platform).join(', ');
  if (dest.transport === 'docker-daemon') {
    throw new DeltaimgError(
      'USAGE',
      `docker-daemon:${dest.name} takes one image and ${dimgPath} restores ${images.length} (${platforms}); pick one with --platform`,
    );
  }
  if (dest.transport !== 'docker-archive' && dest.transport !== 'stdio') return;
  const names = images.flatMap((i) => (dest.transport === 'docker-archive' && dest.ref ? [dest.ref] : i.target.names));
  const shared = names.find((n, i) => names.indexOf(n) !== i);
  if (shared !== undefined) {
    throw new DeltaimgError(
      'USAGE',
      `${dimgPath} restores ${images.length} images (${platforms}) that share the name ${shared}; docker load would keep that name on one only: pick one with --platform, or write oci-archive:PATH`,
    );
  }
}

/** The images to restore: those of the requested platforms, or all. */
function selectImages(images: DimgImage[], platforms: Platform[] | undefined, dimgPath: string): DimgImage[] {
  if (!platforms?.length) return images;
  return platforms.map((p) => {
    const found = images.find((img) => platformKey(parsePlatform(img.platform)) === platformKey(p));
    if (!found) {
      throw new DeltaimgError(
        'USAGE',
        `${dimgPath} holds no image for platform ${platformKey(p)} (it has ${images.map((i) => i.platform).join(', ')}); pick one of those with --platform`,
      );
    }
    return found;
  });
}

/** For each target image, the base image it was diffed against; a missing one is a wrong base. */
function matchBases(targets: DimgImage[], images: Image[], dimgPath: string): Image[] {
  return targets.map((wanted) => {
    const found = images.find((img) => img.configDigest === wanted.base.configDigest);
    if (!found) {
      const have = images.map((img) => img.configDigest).join(', ');
      throw new DeltaimgError(
        'WRONG_SOURCE',
        `${dimgPath} was made against base image ${wanted.base.configDigest} (${wanted.platform}); the given base has ${have}: pass the image the delta was made from`,
      );
    }
    const diffIds = found.layers.map((l) => l.diffId);
    if (diffIds.join() !== wanted.base.diffIds.join()) {
      throw new DeltaimgError(
        'WRONG_SOURCE',
        `base image ${found.configDigest} does not have the layers ${dimgPath} records; it is damaged`,
      );
    }
    return found;
  });
}

interface ImagePlan {
  image: DimgImage;
  write: Image;
  manifestKept: boolean;
  manifestNote?: string;
  rebuiltLayers: number;
}

async function planImage(
  image: DimgImage,
  base: Image,
  allBases: Image[],
  restorer: LayerRestorer,
  members: string,
  dimgPath: string,
): Promise<ImagePlan> {
  const config = await readMember(members, image.target.configMember);
  const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  if (configDigest !== image.target.configDigest) throw damaged(dimgPath, `the target config hashes to ${configDigest}`);
  const layers: Layer[] = [];
  const unreproducible: string[] = [];
  let rebuiltLayers = 0;
  for (const layer of image.target.layers) {
    if (layer.from !== 'base') rebuiltLayers++;
    const written =
      layer.from === 'base'
        ? baseLayerToWrite(layer, findBaseLayer(layer.diffId, base, allBases, dimgPath), members)
        : await restorer.layerToWrite(layer);
    if (layer.stored && written.digest !== layer.stored.digest)
      unreproducible.push(`${layer.diffId} (${layer.stored.inexact ?? 'no way to rebuild its compressed blob was recorded'})`);
    layers.push(written);
  }
  const manifestKept = image.target.manifest !== undefined && unreproducible.length === 0;
  const manifest = manifestKept ? await readMember(members, image.target.manifest!.member) : undefined;
  return {
    image,
    manifestKept,
    ...(image.target.manifest && !manifestKept
      ? {
          manifestNote: `stored uncompressed instead of recompressed (same diff_ids, same image id): layer ${unreproducible.join(', layer ')}`,
        }
      : {}),
    rebuiltLayers,
    write: {
      config,
      configDigest,
      layers,
      names: image.target.names,
      platform: parsePlatform(image.platform),
      ...(manifest && image.target.manifest
        ? { manifest: { mediaType: image.target.manifest.mediaType, bytes: manifest, digest: image.target.manifest.digest } }
        : {}),
    },
  };
}

function findBaseLayer(diffId: string, base: Image, all: Image[], dimgPath: string): Layer {
  const layer = base.layers.find((l) => l.diffId === diffId) ?? all.flatMap((i) => i.layers).find((l) => l.diffId === diffId);
  if (!layer) throw new DeltaimgError('WRONG_SOURCE', `${dimgPath} needs base layer ${diffId}, which the given base image lacks`);
  return layer;
}

/** A's layer as B stores it; its streams fail at their end when the bytes do not hash to their digest. */
function baseLayerToWrite(target: DimgTargetLayer, layer: Layer, members: string): Layer {
  const openTar = () => layer.openUncompressed();
  const stored = target.stored;
  // Both stored it alike: A's blob is B's.
  if (stored && layer.digest === stored.digest) return { ...layer, uncompressedSize: target.size };
  return restoredLayer(target, openTar, members);
}

/**
 * B's layer from its tar: B's compressed blob rebuilt from the tar by its exact-deflate recipe, or
 * (deltas of version-1 writers) by Node's zlib at the recorded level; else the tar itself. The
 * writer hashes every recomputed blob before choosing it (image/blob-plan.ts), and the recipe
 * rebuild checks its own size and sha256, so a blob that does not come back exactly is never written.
 */
function restoredLayer(target: DimgTargetLayer, openTar: () => Promise<NodeJS.ReadableStream>, members: string): Layer {
  const tar = { diffId: target.diffId, uncompressedSize: target.size, openUncompressed: openTar };
  const stored = target.stored;
  const recipe = stored?.recipe;
  const replay = stored?.replay;
  if (!stored || (!recipe && !replay))
    return { ...tar, digest: target.diffId, size: target.size, mediaType: MT.ociLayer, compression: 'none', openStored: openTar };
  return {
    ...tar,
    digest: stored.digest,
    size: stored.size,
    mediaType: stored.mediaType,
    compression: stored.compression,
    recomputed: true,
    openStored: async () =>
      recipe
        ? rebuild(await readMember(members, recipe.member), await openTar())
        : replayWithZlibLevel(replay!.headerHex, replay!.level, await openTar()),
  };
}

interface RestoreContext {
  rootfs: BaseRootfs;
  bases: Map<string, Image>;
  pool: VcdiffPool;
  progress: Progress;
  dimgPath: string;
  memoryBytes: number;
}

/** Rebuilds B's layers that A lacks into plain tar files, each verified against its diff_id. */
class LayerRestorer {
  private readonly done = new Map<string, Promise<string>>();

  constructor(
    private readonly header: DimgHeader,
    private readonly members: string,
    private readonly dir: string,
    private readonly ctx: RestoreContext,
  ) {}

  async layerToWrite(target: DimgTargetLayer): Promise<Layer> {
    const tar = await this.restore(target.diffId);
    return restoredLayer(target, async () => createReadStream(tar), this.members);
  }

  private restore(diffId: string): Promise<string> {
    let tar = this.done.get(diffId);
    if (!tar) {
      tar = this.rebuild(this.layerEntry(diffId));
      this.done.set(diffId, tar);
    }
    return tar;
  }

  private layerEntry(diffId: string): DimgLayer {
    const entry = this.header.layers.find((l) => l.diffId === diffId);
    if (!entry) throw damaged(this.ctx.dimgPath, `its header names layer ${diffId} but does not hold it`);
    return entry;
  }

  private async rebuild(layer: DimgLayer): Promise<string> {
    const base = this.ctx.bases.get(layer.baseConfigDigest);
    if (!base)
      throw new DeltaimgError(
        'WRONG_SOURCE',
        `${this.ctx.dimgPath} rebuilds layer ${layer.diffId} from base image ${layer.baseConfigDigest}, which is not given`,
      );
    const rootfs = await this.ctx.rootfs.of(base);
    const dir = join(this.dir, hexOf(layer.diffId));
    await mkdir(dir, { recursive: true });
    const skeleton = join(dir, 'skeleton.raw');
    await decodeSkeleton(join(this.members, ...layer.skeletonMember.split('/')), rootfs.skeletons, skeleton);
    const content = join(dir, 'content');
    this.ctx.progress.update({ label: `rebuilding layer ${layer.diffId.slice(7, 19)}`, done: 0 });
    await applyDelta(rootfs.dir, join(this.members, ...layer.deltaPrefix.split('/')), content, {
      pool: this.ctx.pool,
      progress: this.ctx.progress,
      memoryBytes: this.ctx.memoryBytes,
    });
    const tar = join(dir, 'layer.tar');
    const joined = await joinTar(skeleton, content, createWriteStream(tar, { flags: 'wx' }));
    await rm(content, { recursive: true, force: true });
    const sha = joined.sha256.startsWith('sha256:') ? joined.sha256 : `sha256:${joined.sha256}`;
    if (sha !== layer.diffId || joined.size !== layer.size) {
      throw new DeltaimgError(
        'VERIFY_FAILED',
        `layer ${layer.diffId} rebuilt from ${this.ctx.dimgPath} hashes to ${sha}; the delta or the base is damaged`,
      );
    }
    return tar;
  }
}

function restoredReport(plan: ImagePlan, written: WrittenImage | undefined): RestoredImage {
  const original = plan.image.target.manifest?.digest;
  const actual = written?.manifestDigest;
  const note = original && actual && actual !== original ? (plan.manifestNote ?? replayMissNote(plan, written!)) : undefined;
  return {
    platform: plan.image.platform,
    configDigest: plan.image.target.configDigest,
    ...(original ? { originalManifestDigest: original } : {}),
    ...(actual ? { manifestDigest: actual } : {}),
    ...(note ? { manifestNote: note } : {}),
    layers: plan.image.target.layers.length,
    rebuiltLayers: plan.rebuiltLayers,
  };
}

/**
 * Why a manifest changed although every compressed layer had a way back: the writer checks each
 * rebuilt blob against its digest and stores the tar when it differs (a recipe that recompresses
 * with zlib settings needs the zlib build diff ran on), or the destination writes manifests of its own.
 */
function replayMissNote(plan: ImagePlan, written: WrittenImage): string {
  const missed = plan.image.target.layers.filter((l, i) => l.stored && written.layerDigests[i] !== l.stored.digest);
  return missed.length
    ? `rebuilding did not reproduce the compressed blob of layer ${missed.map((l) => `${l.diffId} (${l.stored!.digest})`).join(', layer ')} (this Node's zlib deflates differently from the one the .dimg was made with); stored uncompressed (same diff_ids, same image id)`
    : 'the destination writes its own manifest (same config and diff_ids, so the same image id)';
}

/** B's own index, checked against its digest (a registry writer pushes it when it lists exactly the manifests written). */
async function targetIndex(t: NonNullable<DimgHeader['targetIndex']>, members: string, dimgPath: string): Promise<ImageManifest> {
  const bytes = await readMember(members, t.member);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (digest !== t.digest) throw damaged(dimgPath, `the target index hashes to ${digest}`);
  return { mediaType: t.mediaType, bytes, digest };
}

async function readMember(members: string, name: string): Promise<Buffer> {
  return readFile(join(members, ...name.split('/')));
}
