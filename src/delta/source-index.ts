/**
 * Finds, for a target file, the source bytes that make it cheapest: identical content
 * anywhere (sha256), else a similar file to delta against — same path first, then the
 * same path with version numbers ignored (lib/modules/6.1.0-21-amd64/... vs -22-,
 * libfoo.so.3.0.19 vs .22, pkg-1.2.3.dist-info), then the same versionless file name
 * elsewhere. Among several candidates the closest in size wins.
 */
import type { Entry, FileEntry, RelPath } from '../tree/entry.js';

export class SourceIndex {
  private readonly byPath = new Map<RelPath, FileEntry>();
  private readonly bySha = new Map<string, RelPath>();
  private readonly byVersionlessPath = new Map<string, FileEntry[]>();
  private readonly byVersionlessName = new Map<string, FileEntry[]>();
  /** The lists above ordered by size, made on first lookup. */
  private readonly bySize = new Map<FileEntry[], SizeOrder>();

  constructor(entries: Iterable<Entry>) {
    for (const e of entries) {
      if (e.kind !== 'file') continue;
      this.byPath.set(e.path, e);
      if (e.sha256 && !this.bySha.has(e.sha256)) this.bySha.set(e.sha256, e.path);
      if (e.size === 0) continue;
      push(this.byVersionlessPath, versionless(e.path), e);
      push(this.byVersionlessName, versionless(baseName(e.path)), e);
    }
  }

  fileAt(path: RelPath): FileEntry | undefined {
    return this.byPath.get(path);
  }

  /** A source path holding exactly these bytes, preferring `preferred` when it does. */
  identical(sha256: string, preferred: RelPath): RelPath | undefined {
    if (this.byPath.get(preferred)?.sha256 === sha256) return preferred;
    return this.bySha.get(sha256);
  }

  /** The best source file to encode `target` against, or undefined when none looks related. */
  deltaBase(target: FileEntry): FileEntry | undefined {
    const samePath = this.byPath.get(target.path);
    if (samePath && samePath.size > 0) return samePath;
    return (
      this.closestInSize(this.byVersionlessPath.get(versionless(target.path)), target.size) ??
      this.closestInSize(this.byVersionlessName.get(versionless(baseName(target.path))), target.size)
    );
  }

  /**
   * Sizes compared by ratio: a 10 MB file is closer to 12 MB than to 5 MB. Ties go to the
   * candidate first in path order. By binary search: a generated tree's names (`d12/f345.js`)
   * are all one versionless name, and 1,000 new files against 100,000 candidates each took 6 s.
   */
  private closestInSize(candidates: FileEntry[] | undefined, size: number): FileEntry | undefined {
    if (!candidates?.length) return undefined;
    let order = this.bySize.get(candidates);
    if (!order) {
      order = new SizeOrder(candidates);
      this.bySize.set(candidates, order);
    }
    const best = order.closest(size);
    // Beyond 4x apart in size, a delta rarely beats plain compression.
    return best && ratioScore(best.size, size) <= Math.log(4) ? best : undefined;
  }
}

/** How far apart two sizes are, by ratio. */
function ratioScore(a: number, b: number): number {
  return Math.abs(Math.log((a + 1) / (b + 1)));
}

/** Candidates sorted by size, then by their order in the list (path order). */
class SizeOrder {
  private readonly sorted: { e: FileEntry; i: number }[];

  constructor(candidates: FileEntry[]) {
    this.sorted = candidates.map((e, i) => ({ e, i })).sort((x, y) => x.e.size - y.e.size || x.i - y.i);
  }

  /** The first (in path order) of those closest to `size` by ratio: the first at or above it, or the first of the size group below. */
  closest(size: number): FileEntry | undefined {
    const above = this.firstAtLeast(size);
    const upper = this.sorted[above];
    const lower = above > 0 ? this.sorted[this.firstAtLeast(this.sorted[above - 1]!.e.size)] : undefined;
    if (!lower || !upper) return (lower ?? upper)?.e;
    const lo = ratioScore(lower.e.size, size);
    const up = ratioScore(upper.e.size, size);
    return lo < up || (lo === up && lower.i < upper.i) ? lower.e : upper.e;
  }

  private firstAtLeast(size: number): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]!.e.size < size) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Digit runs become '#': `6.1.0-21-amd64` and `6.1.0-22-amd64` compare equal. */
export function versionless(path: string): string {
  return path.replace(/[0-9]+/g, '#');
}

function baseName(path: RelPath): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
