/**
 * A's root filesystem on disk, extracted once per base image: the source the tree engine
 * diffs B's layer files against, on both sides. Layer streams fail at their end when they do
 * not hash to their diff_id (src/image), so a damaged base fails here, by name.
 */
import { join } from 'node:path';
import type { Image } from '../image/index.js';
import { scanTree, type TreeSnapshot } from '../tree/scan.js';
import { extractRootfs } from '../tarsplit/index.js';
import type { Progress } from '../util/progress.js';
import { hexOf } from './format.js';

export interface ExtractedRootfs {
  dir: string;
  /** A hashed scan of `dir`, taken on first use and shared by every layer diffed against it. */
  snapshot(): Promise<TreeSnapshot>;
  /** Raw skeletons of the base's layers, in order: references for encoding B's skeletons. */
  skeletons: string[];
}

export class BaseRootfs {
  private readonly cache = new Map<string, Promise<ExtractedRootfs>>();

  constructor(
    private readonly root: string,
    private readonly progress: Progress,
    private readonly inlineMax: number,
  ) {}

  of(image: Image): Promise<ExtractedRootfs> {
    let extracted = this.cache.get(image.configDigest);
    if (!extracted) {
      extracted = this.extract(image);
      this.cache.set(image.configDigest, extracted);
    }
    return extracted;
  }

  private async extract(image: Image): Promise<ExtractedRootfs> {
    const dir = join(this.root, hexOf(image.configDigest));
    const skeletons = image.layers.map((_, i) => join(dir, `skeleton-${i}`));
    const openers = image.layers.map((layer, i) => async () => {
      this.progress.update({ label: 'extracting base layers', done: i, total: image.layers.length });
      return layer.openUncompressed();
    });
    const root = join(dir, 'rootfs');
    await extractRootfs(openers, root, { skeletons, inlineMax: this.inlineMax });
    let scanned: Promise<TreeSnapshot> | undefined;
    return { dir: root, skeletons, snapshot: () => (scanned ??= scanTree(root, { hash: true })) };
  }
}
