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
      closestInSize(this.byVersionlessPath.get(versionless(target.path)), target.size) ??
      closestInSize(this.byVersionlessName.get(versionless(baseName(target.path))), target.size)
    );
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

/** Sizes compared by ratio: a 10 MB file is closer to 12 MB than to 5 MB. */
function closestInSize(candidates: FileEntry[] | undefined, size: number): FileEntry | undefined {
  if (!candidates?.length) return undefined;
  let best: FileEntry | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const score = Math.abs(Math.log((c.size + 1) / (size + 1)));
    if (score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  // Beyond 4x apart in size, a delta rarely beats plain compression.
  return bestScore <= Math.log(4) ? best : undefined;
}
