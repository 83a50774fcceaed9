/**
 * Where a new file's content sits in the old tree (issue #10 item 6). A dependency bump adds
 * bundles and source maps (`dist/cdn.js`, `*.map`) made of code that the old tree holds spread
 * over many files (`lib/*.js`): no single file is a good delta base, several together are.
 *
 * The index holds content-defined anchors (bsdiff/fingerprints.ts's gear hash: the same bytes
 * give the same anchors wherever they sit) of every source file, each as one number, key and
 * file together, in one sorted Float64Array: 8 bytes an anchor, at most MAX_ANCHORS of them
 * (anchors get sparser in a larger tree). A target's anchors are looked up there, and the files
 * that cover most of them are picked greedily (set cover), closer paths first on ties.
 */
import { AnchorScanner, type AnchorSpacing } from '../bsdiff/index.js';
import type { Entry, FileEntry, RelPath } from '../tree/entry.js';
import { toFsPath } from '../tree/paths.js';
import { EventLoopYielder } from '../util/yield.js';
import { readWholeFileSync, Scratch } from './file-codecs.js';
import { ASSEMBLED_ESCAPED_MAX_BYTES } from './format.js';
import { versionless } from './source-index.js';

/** Files smaller than this hold too few anchors to be found, larger ones are not assembled from. */
const MIN_INDEXED_BYTES = 128;
const MAX_INDEXED_BYTES = 16 * 1024 * 1024;
/** At most this many anchors (8 bytes each): anchors get sparser in a larger tree. */
const MAX_ANCHORS = 4 * 1024 * 1024;
/** Anchors every 64 bytes at the densest: a 1 KiB module of a bundle still gets ~16. */
const MIN_SPACING_BITS = 6;
/** File numbers take the low bits of an index value; keys (32 bits) the high ones, within 2^53. */
const FILE_BITS = 21;
const FILE_SLOTS = 2 ** FILE_BITS;
/** Reading the whole old tree again must stay bounded: at most this many bytes are indexed. */
const MAX_INDEXED_TOTAL_BYTES = 2 * 1024 * 1024 * 1024;
/** An anchor found in more files than this is boilerplate (a licence header): it points nowhere. */
const MAX_FILES_PER_KEY = 24;
/** A file must bring at least this many anchors not yet covered to join an assembled source. */
const MIN_NEW_ANCHORS = 2;

/** Memory held by an index: the values array (and its copy while it is sorted). */
export const CONTENT_INDEX_MEMORY = MAX_ANCHORS * 8 * 2 + 16 * 1024 * 1024;

export interface AssemblyChoice {
  /**
   * The chosen files, in the order they are concatenated, each with the number of the pool it
   * came from; `escape`: taken as JSON text (a source file in a source map's `sourcesContent`).
   */
  parts: { file: FileEntry; pool: number; escape?: true }[];
  /** The share of the target's anchors they hold, 0 to 1. */
  coverage: number;
}

/** An index to choose from, which of its files may be chosen, and the share of the target's anchors one must bring at least. */
export interface IndexPool {
  index: ContentIndex;
  usable(file: FileEntry): boolean;
  minShare?: number;
}

export class ContentIndex {
  private constructor(
    readonly spacing: AnchorSpacing,
    private readonly files: readonly FileEntry[],
    /** key * FILE_SLOTS + file number, sorted, no duplicates. */
    private readonly values: Float64Array,
  ) {}

  /**
   * Reads every eligible file of `root` once (one of each content), yielding to the event loop as
   * it goes. `spacing`: that of another index, to choose from both at once (chooseAcross).
   */
  static async build(root: string, sources: Iterable<Entry>, spacing?: AnchorSpacing): Promise<ContentIndex> {
    const files = eligible(sources);
    spacing ??= spacingFor(files.reduce((n, f) => n + f.size, 0));
    let values: Float64Array = new Float64Array(1 << 16);
    let count = 0;
    const scanner = new AnchorScannerSet(spacing);
    const scratch = new Scratch();
    const yielder = new EventLoopYielder();
    for (let i = 0; i < files.length; i++) {
      const f = files[i]!;
      let bytes: Buffer | null;
      try {
        bytes = readWholeFileSync(toFsPath(root, f.path), MAX_INDEXED_BYTES, scratch);
      } catch {
        continue; // gone or unreadable since the scan: simply not a candidate
      }
      if (bytes === null) continue;
      for (const key of scanner.keys(bytes)) {
        if (count === values.length) values = grow(values);
        values[count++] = key * FILE_SLOTS + i;
      }
      await yielder.maybe();
    }
    return new ContentIndex(spacing, files, sortedUnique(values.subarray(0, count)));
  }

  /**
   * chooseAcross(), and for a source map first the files its `sourcesContent` holds, taken as
   * JSON text (escaped as the map holds them), then the files holding the map's own bytes
   * (another map of the same code) within what is left of the limits.
   */
  static chooseAssembly(pools: readonly IndexPool[], target: Buffer, path: RelPath, maxFiles: number, maxBytes: number): AssemblyChoice {
    const text = sourcesContentOf(path, target);
    if (!text) return ContentIndex.chooseAcross(pools, target, path, maxFiles, maxBytes);
    const small = pools.map((p) => ({ ...p, usable: (f: FileEntry) => f.size <= ASSEMBLED_ESCAPED_MAX_BYTES && p.usable(f) }));
    const escaped = ContentIndex.chooseAcross(small, text, path, maxFiles, Math.floor(maxBytes / 6));
    const escapedBound = escaped.parts.reduce((n, p) => n + 6 * p.file.size, 0);
    const raw = ContentIndex.chooseAcross(pools, target, path, maxFiles - escaped.parts.length, maxBytes - escapedBound);
    return {
      parts: [...escaped.parts.map((p) => ({ ...p, escape: true as const })), ...raw.parts],
      coverage: Math.max(escaped.coverage, raw.coverage),
    };
  }

  /** choose() over this index alone, every file usable. */
  choose(target: Uint8Array, near: RelPath, maxFiles: number, maxBytes: number): AssemblyChoice {
    return ContentIndex.chooseAcross([{ index: this, usable: () => true }], target, near, maxFiles, maxBytes);
  }

  /**
   * The source files that together hold most of `target`'s anchors: at most `maxFiles`, of at
   * most `maxBytes` in all, each bringing MIN_NEW_ANCHORS not yet covered. `near` (the target's
   * path) breaks ties: a file in the same (versionless) directory before one elsewhere.
   */
  static chooseAcross(pools: readonly IndexPool[], target: Uint8Array, near: RelPath, maxFiles: number, maxBytes: number): AssemblyChoice {
    const keys = [...new AnchorScannerSet(pools[0]!.index.spacing).keys(target)];
    // Candidates numbered pool * FILE_SLOTS + file, each with the target's anchors it holds.
    const byFile = new Map<number, number[]>();
    const fileOf = (n: number) => pools[Math.floor(n / FILE_SLOTS)]!.index.files[n % FILE_SLOTS]!;
    keys.forEach((key, k) => {
      const hits = pools.map((p) => p.index.range(key));
      if (hits.reduce((n, [from, to]) => n + to - from, 0) > MAX_FILES_PER_KEY) return;
      hits.forEach(([from, to], pool) => {
        for (let j = from; j < to; j++) {
          const file = pool * FILE_SLOTS + (pools[pool]!.index.values[j]! % FILE_SLOTS);
          if (!pools[pool]!.usable(fileOf(file))) continue;
          const list = byFile.get(file);
          if (list) list.push(k);
          else byFile.set(file, [k]);
        }
      });
    });
    const covered = new Uint8Array(keys.length);
    const chosen: number[] = [];
    let coveredCount = 0;
    let bytes = 0;
    const nearDir = versionless(near.slice(0, near.lastIndexOf('/') + 1));
    while (chosen.length < maxFiles && byFile.size > 0) {
      let best = -1;
      let bestScore = 0;
      for (const [file, list] of byFile) {
        if (bytes + fileOf(file).size > maxBytes) {
          byFile.delete(file);
          continue;
        }
        let gain = 0;
        for (const k of list) gain += 1 - covered[k]!;
        if (gain < Math.max(MIN_NEW_ANCHORS, (pools[Math.floor(file / FILE_SLOTS)]!.minShare ?? 0) * keys.length)) {
          byFile.delete(file);
          continue;
        }
        const score = gain + proximity(nearDir, fileOf(file).path);
        if (score > bestScore) {
          best = file;
          bestScore = score;
        }
      }
      if (best < 0) break;
      for (const k of byFile.get(best)!) {
        coveredCount += 1 - covered[k]!;
        covered[k] = 1;
      }
      byFile.delete(best);
      chosen.push(best);
      bytes += fileOf(best).size;
    }
    return {
      parts: chosen.map((n) => ({ file: fileOf(n), pool: Math.floor(n / FILE_SLOTS) })),
      coverage: keys.length === 0 ? 0 : coveredCount / keys.length,
    };
  }

  /** The positions in `values` of the anchors with this key. */
  private range(key: number): [number, number] {
    const low = key * FILE_SLOTS;
    const from = lowerBound(this.values, low);
    return [from, lowerBound(this.values, low + FILE_SLOTS, from)];
  }
}

/** Source maps larger than this are not parsed for their sources. */
const MAX_PARSED_MAP_BYTES = 32 * 1024 * 1024;

/**
 * The texts of a source map's `sourcesContent`, joined by newlines, as the files they came from
 * hold them (unescaped); undefined for anything else.
 */
export function sourcesContentOf(path: RelPath, bytes: Buffer): Buffer | undefined {
  if (!path.endsWith('.map') || bytes.length > MAX_PARSED_MAP_BYTES) return undefined;
  let map: unknown;
  try {
    map = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof map !== 'object' || map === null || !('sourcesContent' in map) || !Array.isArray(map.sourcesContent)) return undefined;
  const texts = map.sourcesContent.filter((t): t is string => typeof t === 'string');
  return texts.length > 0 ? Buffer.from(texts.join('\n'), 'utf8') : undefined;
}

/** The distinct anchor keys of one byte string. */
class AnchorScannerSet {
  constructor(private readonly spacing: AnchorSpacing) {}

  keys(bytes: Uint8Array): Set<number> {
    const keys = new Set<number>();
    new AnchorScanner(this.spacing).scan(bytes, 0, (_position, key) => keys.add(key));
    return keys;
  }
}

/** Files worth indexing, one per content, within the total bound (smallest first when over it). */
function eligible(sources: Iterable<Entry>): FileEntry[] {
  const seen = new Set<string>();
  const files: FileEntry[] = [];
  for (const f of sources) {
    if (f.kind !== 'file' || f.size < MIN_INDEXED_BYTES || f.size > MAX_INDEXED_BYTES || !f.sha256 || seen.has(f.sha256)) continue;
    seen.add(f.sha256);
    files.push(f);
  }
  let total = files.reduce((n, f) => n + f.size, 0);
  if (total <= MAX_INDEXED_TOTAL_BYTES && files.length < FILE_SLOTS) return files;
  const kept = [...files].sort((a, b) => a.size - b.size);
  while (kept.length > 0 && (total > MAX_INDEXED_TOTAL_BYTES || kept.length >= FILE_SLOTS)) total -= kept.pop()!.size;
  return kept;
}

function spacingFor(totalBytes: number): AnchorSpacing {
  let bits = MIN_SPACING_BITS;
  while (bits < 16 && totalBytes / 2 ** bits > MAX_ANCHORS) bits++;
  return { bits, minGap: 2 ** bits / 4 };
}

/** Less than one anchor: how much of `dir` (versionless, with its trailing slash) `path` shares. */
function proximity(dir: string, path: RelPath): number {
  const other = versionless(path);
  let i = 0;
  while (i < dir.length && i < other.length && dir.charCodeAt(i) === other.charCodeAt(i)) i++;
  return dir.length === 0 ? 0 : (0.5 * i) / dir.length;
}

function grow(values: Float64Array): Float64Array {
  const bigger = new Float64Array(values.length * 2);
  bigger.set(values);
  return bigger;
}

function sortedUnique(values: Float64Array): Float64Array {
  const sorted = Float64Array.from(values).sort();
  let n = 0;
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[n - 1]) sorted[n++] = sorted[i]!;
  return sorted.slice(0, n);
}

function lowerBound(values: Float64Array, x: number, from = 0): number {
  let lo = from;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
