/**
 * `deltaimg image diff`: what image B needs beyond image A, as one `.dimg` file.
 * Layers B shares with A (same diff_id) are referenced. Every other layer is split into its
 * tar skeleton (headers, padding) and its files; the files are diffed against A's root
 * filesystem by the tree engine (same path, moved, versioned names), the skeleton against
 * A's skeletons, so apply can rebuild the exact tar and B's exact image id.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { makeRecipe } from '../deflate/index.js';
import { diffTrees } from '../delta/diff.js';
import {
  formatPlatform,
  openImageSource,
  type RegistryOptions,
  type Image,
  type ImageManifest,
  type ImageRef,
  type ImageSource,
  type Layer,
  type Platform,
} from '../image/index.js';
import { DEFAULT_INLINE_MAX, encodeSkeleton, splitTar } from '../tarsplit/index.js';
import { compileAhead, VcdiffPool } from '../vcdiff/index.js';
import { defaultMemoryBudget, idleWorkerShare } from '../util/memory-budget.js';
import { assertAbsent, withScratchDir } from '../util/atomic-output.js';
import { DeltaimgError } from '../util/errors.js';
import { silentProgress, type Progress } from '../util/progress.js';
import { packDimg, type MemberFile } from './container.js';
import {
  DIMG_FORMAT,
  DIMG_MIN_READER_VERSION,
  DIMG_VERSION,
  hexOf,
  memberNames,
  type DimgHeader,
  type DimgImage,
  type DimgLayer,
  type DimgTargetLayer,
  type StoredLayer,
} from './format.js';
import { pairPlatforms } from './platforms.js';
import { BaseRootfs } from './rootfs.js';

export interface ImageDiffOptions {
  /** Platforms to diff; default: every platform both images have. */
  platforms?: Platform[];
  progress?: Progress;
  /** Where scratch space goes (A's root filesystem is extracted there); default the OS temp dir. */
  tmpDir?: string;
  toolVersion?: string;
  /** docker:// images: credentials and TLS. */
  registry?: RegistryOptions;
  /** The memory budget in bytes (`--memory`), as DiffOptions.memoryBytes; default defaultMemoryBudget(). */
  memoryBytes?: number;
  /**
   * Record token recipes for gzip streams no zlib settings reproduce (Go's, GNU gzip's), so apply gives
   * back B's compressed blobs and manifest digest byte for byte. Default true. They cost about a quarter
   * of the compressed layer; false (`--no-exact-blobs`) keeps only the cheap settings recipes, and apply
   * still gives back B's image id and diff_ids.
   */
  exactBlobs?: boolean;
}

export interface ImageDiffResult {
  header: DimgHeader;
  /** Size of the .dimg file. */
  bytes: number;
  /** Sum of the uncompressed sizes of B's layers that A does not have. */
  newLayerBytes: number;
  sharedLayers: number;
  /** Bytes of the .dimg that are exact-deflate recipes (what `--no-exact-blobs` would leave out, mostly). */
  recipeBytes: number;
}

export async function diffImages(
  baseRef: ImageRef,
  targetRef: ImageRef,
  out: string,
  opts: ImageDiffOptions = {},
): Promise<ImageDiffResult> {
  const progress = opts.progress ?? silentProgress;
  // An existing output is refused before the work, not after it.
  if (out !== '-') await assertAbsent(resolve(out));
  return withScratchDir(opts.tmpDir, 'deltaimg-image-diff-', async (work) => {
    // The engine compiles on a spare core while the images are opened and indexed.
    const engineReady = compileAhead();
    engineReady.catch(() => {});
    const base = await openImageSource(baseRef, { tmpDir: work, ...(opts.registry ? { registry: opts.registry } : {}) });
    const target = await openImageSource(targetRef, { tmpDir: work, ...(opts.registry ? { registry: opts.registry } : {}) }).catch(
      async (err: unknown) => {
        await base.close();
        throw err;
      },
    );
    let pool: VcdiffPool | undefined;
    try {
      await engineReady;
      const memoryBytes = opts.memoryBytes ?? defaultMemoryBudget();
      pool = new VcdiffPool({ recycleBytes: idleWorkerShare(memoryBytes) });
      const planner = new ImageDiffer(base, work, pool, progress, opts.toolVersion ?? 'deltaimg', memoryBytes, opts.exactBlobs ?? true);
      const pairs = pairPlatforms(base.images(), target.images(), opts.platforms);
      for (const pair of pairs) await planner.addImage(pair.base, pair.target);
      // Every platform of a registry index is here: its bytes too, so the index digest comes back.
      if (target.index && pairs.length === target.images().length) await planner.addTargetIndex(target.index);
      return await planner.write(out);
    } finally {
      progress.done();
      await pool?.close();
      await Promise.allSettled([base.close(), target.close()]);
    }
  });
}

class ImageDiffer {
  private readonly images: DimgImage[] = [];
  private readonly rebuilt = new Map<string, DimgLayer>();
  private readonly members: MemberFile[] = [];
  private readonly memberNamesSeen = new Set<string>();
  private readonly baseLayers = new Map<string, Layer>();
  /** Recipes made so far by member name (a blob shared by two platforms is analysed once). */
  private readonly recipes = new Map<string, Pick<StoredLayer, 'recipe' | 'inexact'>>();
  private readonly rootfs: BaseRootfs;
  private newLayerBytes = 0;
  private sharedLayers = 0;
  private recipeBytes = 0;

  constructor(
    base: ImageSource,
    private readonly work: string,
    private readonly pool: VcdiffPool,
    private readonly progress: Progress,
    private readonly tool: string,
    private readonly memoryBytes: number,
    private readonly exactBlobs: boolean,
  ) {
    for (const image of base.images()) for (const layer of image.layers) this.baseLayers.set(layer.diffId, layer);
    this.rootfs = new BaseRootfs(join(work, 'base'), progress, DEFAULT_INLINE_MAX);
  }

  async addImage(base: Image, target: Image): Promise<void> {
    const layers: DimgTargetLayer[] = [];
    for (const [i, layer] of target.layers.entries()) {
      this.progress.update({
        label: `${formatPlatform(target.platform)} layer ${i + 1}/${target.layers.length}`,
        done: i,
        total: target.layers.length,
      });
      layers.push(await this.addLayer(base, layer));
    }
    const configMember = memberNames.config(target.configDigest);
    await this.addBufferMember(configMember, target.config);
    const manifest = target.manifest && {
      mediaType: target.manifest.mediaType,
      digest: target.manifest.digest,
      member: memberNames.manifest(target.manifest.digest),
    };
    if (manifest && target.manifest) await this.addBufferMember(manifest.member, target.manifest.bytes);
    this.images.push({
      platform: formatPlatform(target.platform),
      base: { configDigest: base.configDigest, diffIds: base.layers.map((l) => l.diffId) },
      target: { configDigest: target.configDigest, configMember, ...(manifest ? { manifest } : {}), names: target.names, layers },
    });
  }

  private async addLayer(base: Image, layer: Layer): Promise<DimgTargetLayer> {
    const shared = this.baseLayers.get(layer.diffId);
    // A stores the same blob: its bytes are read instead of B's (in a registry, B's is never downloaded).
    const stored = await this.storedOf(layer, shared?.digest === layer.digest ? shared : layer);
    if (shared) {
      this.sharedLayers++;
      return { diffId: layer.diffId, size: await uncompressedSize(shared), from: 'base', ...(stored ? { stored } : {}) };
    }
    const rebuilt = this.rebuilt.get(layer.diffId) ?? (await this.rebuildLayer(base, layer));
    return { diffId: layer.diffId, size: rebuilt.size, from: 'rebuilt', ...(stored ? { stored } : {}) };
  }

  /**
   * How B stored the layer, and how apply gets those exact bytes back: A's own blob when A has it,
   * else an exact-deflate recipe (src/deflate) for gzip; zstd and streams no recipe fits say why not.
   * The blob is read from `sameBlob` (A's when A stores the same bytes: in a registry, B's is never
   * downloaded).
   */
  private async storedOf(layer: Layer, sameBlob: Layer): Promise<StoredLayer | undefined> {
    if (layer.compression === 'none') return undefined;
    const stored: StoredLayer = { digest: layer.digest, size: layer.size, mediaType: layer.mediaType, compression: layer.compression };
    if (layer.compression !== 'gzip')
      return {
        ...stored,
        inexact: `${layer.compression} blobs are not rebuilt byte for byte (no reproducible ${layer.compression} encoder)`,
      };
    // A layer A stores as the same blob needs no recipe when the receiver holds A's blobs; one that
    // holds A as tars (an engine, a classic docker save) gets it back only from a settings recipe,
    // the cheap kind (a token recipe costs a good share of the blob, too much for an unchanged layer).
    const sharedBlob = sameBlob !== layer;
    const member = memberNames.recipe(layer.digest);
    const known = this.recipes.get(member);
    if (known) return { ...stored, ...known };
    const tokens = this.exactBlobs && !sharedBlob;
    const outcome = await makeRecipe(
      'gzip',
      { compressed: () => sameBlob.openStored(), decompressed: () => sameBlob.openUncompressed() },
      { tokens },
    );
    const found: Pick<StoredLayer, 'recipe' | 'inexact'> =
      outcome.kind === 'recipe'
        ? { recipe: { member, method: outcome.summary } }
        : { inexact: this.inexactReason(sharedBlob, outcome.why) };
    if (outcome.kind === 'recipe') {
      await this.addBufferMember(member, outcome.recipe);
      this.recipeBytes += outcome.recipe.length;
    }
    this.recipes.set(member, found);
    return { ...stored, ...found };
  }

  private inexactReason(sharedBlob: boolean, why: string): string {
    if (sharedBlob) return `only the base's own blob restores it (${why})`;
    if (!this.exactBlobs) return `its gzip stream needs a token recipe, left out by --no-exact-blobs (${why})`;
    return `its gzip stream cannot be rebuilt exactly (${why})`;
  }

  /** Splits B's layer, diffs its files against A's root filesystem and its skeleton against A's. */
  private async rebuildLayer(base: Image, layer: Layer): Promise<DimgLayer> {
    const dir = join(this.work, 'layers', hexOf(layer.diffId));
    await mkdir(dir, { recursive: true });
    const skeleton = join(dir, 'skeleton.raw');
    const content = join(dir, 'content');
    const split = await splitTar(await layer.openUncompressed(), skeleton, content, { inlineMax: DEFAULT_INLINE_MAX });
    if (split.tarSha256 !== layer.diffId) {
      throw new DeltaimgError(
        'VERIFY_FAILED',
        `layer ${layer.diffId} of the target image hashes to ${split.tarSha256}; the target image is damaged, export it again`,
      );
    }
    const rootfs = await this.rootfs.of(base);
    const deltaDir = join(dir, 'delta');
    const tree = await diffTrees(rootfs.dir, content, deltaDir, {
      pool: this.pool,
      progress: this.progress,
      toolVersion: this.tool,
      sourceSnapshot: await rootfs.snapshot(),
      memoryBytes: this.memoryBytes,
      // The extracted root's metadata is made anew on each side (extraction time, no owners).
      wholeRecords: true,
    });
    await rm(content, { recursive: true, force: true });
    const encodedSkeleton = join(dir, 'skeleton');
    const encoded = await encodeSkeleton(skeleton, rootfs.skeletons, encodedSkeleton, this.pool);
    await rm(skeleton, { force: true });

    const skeletonMember = memberNames.skeleton(layer.diffId);
    const deltaPrefix = memberNames.delta(layer.diffId);
    this.addMember(skeletonMember, encodedSkeleton);
    for (const file of await listFiles(deltaDir)) this.addMember(`${deltaPrefix}/${relative(deltaDir, file)}`, file);
    const entry: DimgLayer = {
      diffId: layer.diffId,
      size: split.tarSize,
      baseConfigDigest: base.configDigest,
      skeletonMember,
      skeletonMethod: encoded.method,
      deltaPrefix,
      files: split.files + split.inlineFiles,
      contentBytes: split.contentBytes + split.inlineBytes,
      deltaBytes: encoded.bytes + tree.stats.deltaBytes,
    };
    this.rebuilt.set(layer.diffId, entry);
    this.newLayerBytes += split.tarSize;
    return entry;
  }

  private addMember(name: string, path: string): void {
    if (this.memberNamesSeen.has(name)) return;
    this.memberNamesSeen.add(name);
    this.members.push({ name, path });
  }

  private async addBufferMember(name: string, bytes: Buffer): Promise<void> {
    if (this.memberNamesSeen.has(name)) return;
    const path = join(this.work, 'members', name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
    this.addMember(name, path);
  }

  private targetIndex: DimgHeader['targetIndex'];

  async addTargetIndex(index: ImageManifest): Promise<void> {
    const member = memberNames.manifest(index.digest);
    await this.addBufferMember(member, index.bytes);
    this.targetIndex = { mediaType: index.mediaType, digest: index.digest, member };
  }

  async write(out: string): Promise<ImageDiffResult> {
    this.progress.update({ label: 'packing', done: 0 });
    const header: Omit<DimgHeader, 'members'> = {
      format: DIMG_FORMAT,
      version: DIMG_VERSION,
      minReaderVersion: DIMG_MIN_READER_VERSION,
      tool: this.tool,
      created: new Date().toISOString(),
      images: this.images,
      inlineMax: DEFAULT_INLINE_MAX,
      layers: [...this.rebuilt.values()],
      ...(this.targetIndex ? { targetIndex: this.targetIndex } : {}),
    };
    const packed = await packDimg(header, this.members, out);
    return {
      header: packed.header,
      bytes: packed.bytes,
      newLayerBytes: this.newLayerBytes,
      sharedLayers: this.sharedLayers,
      recipeBytes: this.recipeBytes,
    };
  }
}

/** The uncompressed size of a layer: its stored size when stored as a plain tar, else counted. */
async function uncompressedSize(layer: Layer): Promise<number> {
  if (layer.compression === 'none') return layer.size;
  let n = 0;
  for await (const c of (await layer.openUncompressed()) as AsyncIterable<Buffer>) n += c.length;
  return n;
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else out.push(p);
  }
  return out.sort();
}
