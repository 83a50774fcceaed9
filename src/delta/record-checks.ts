/**
 * Structural checks on a delta's records before anything is written: safe relative
 * paths, strict path order (no duplicates), every entry's parent a directory of the
 * target, hardlinks pointing at files already listed. Together they make it impossible
 * for a crafted delta to write outside OUT_ROOT or through a symlink it created.
 */
import type { RelPath } from '../tree/entry.js';
import { assertSafeRelPath, displayPath, parentOf } from '../tree/paths.js';
import { DeltaimgError } from '../util/errors.js';
import { usesTargetParts, type DeltaRecord, type FileRecord } from './format.js';

export class RecordChecker {
  private previous: RelPath | undefined;
  private readonly dirs = new Set<RelPath>();
  private readonly files = new Set<RelPath>();

  check(r: DeltaRecord): void {
    if (this.previous === undefined) {
      if (r.path !== '' || r.kind !== 'dir') hostile(r.path, 'the first record must be the root directory');
    } else {
      assertSafeRelPath(r.path, 'delta entry');
      if (r.path <= this.previous) hostile(r.path, 'records are out of order or repeated');
      if (!this.dirs.has(parentOf(r.path))) hostile(r.path, 'its parent is not a directory of the target');
    }
    this.previous = r.path;
    switch (r.kind) {
      case 'dir':
        this.dirs.add(r.path);
        break;
      case 'file':
        this.files.add(r.path);
        if (r.content.op === 'copy' || r.content.op === 'vcdiff' || r.content.op === 'bsdiff')
          assertSafeRelPath(r.content.from, 'delta source path');
        if (r.content.op === 'gzip' && r.content.inner.op === 'vcdiff') assertSafeRelPath(r.content.inner.from, 'delta source path');
        if (r.content.op === 'assembled') for (const s of r.content.sources) assertSafeRelPath(s.path, 'delta source path');
        break;
      case 'hardlink':
        if (!this.files.has(r.linkTo)) hostile(r.path, `hardlink target ${displayPath(r.linkTo)} is not a file listed before it`);
        break;
      default:
        break;
    }
  }
}

/**
 * Once every record is read: an assembled part taken from the target must name a file record of
 * this delta, of the part's size and (a prefix of) its sha256, that is not assembled from the
 * target itself, so apply can restore every such file before the files made from it.
 */
export function checkTargetParts(records: readonly DeltaRecord[]): void {
  const files = new Map<RelPath, FileRecord>();
  for (const r of records) if (r.kind === 'file') files.set(r.path, r);
  for (const r of files.values()) {
    if (r.content.op !== 'assembled') continue;
    for (const part of r.content.sources) {
      if (!part.target) continue;
      const from = files.get(part.path);
      if (!from || usesTargetParts(from) || from.size !== part.size || !part.sha256.startsWith(from.sha256)) {
        throw new DeltaimgError(
          'CORRUPT_DELTA',
          `refusing delta entry ${displayPath(r.path)}: its assembled source ${displayPath(part.path)} is not a file this delta restores first; the delta is damaged or crafted`,
        );
      }
    }
  }
}

function hostile(path: RelPath, why: string): never {
  throw new DeltaimgError('HOSTILE_PATH', `refusing delta entry ${displayPath(path)}: ${why}; the delta is damaged or crafted`);
}
