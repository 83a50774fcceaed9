/**
 * A tree digest: sha256 over one canonical line per entry (path, kind, metadata,
 * content sha256, link target, device numbers), in path order. Two trees with the
 * same digest are equal in everything deltaimg restores.
 *
 * Directory digests (format v3): per directory, a short digest of the lines of the directory
 * itself and its direct children, so a tree that differs from a delta's target is named by the
 * directory where it differs, at a few bytes per directory instead of a hash per file.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Entry, RelPath } from '../tree/entry.js';
import { parentOf } from '../tree/paths.js';
import type { DeltaRecord } from './format.js';

export class TreeDigest {
  private readonly hash: Hash = createHash('sha256');
  private count = 0;

  add(e: Entry | DeltaRecord): void {
    this.hash.update(digestLine(e));
    this.count++;
  }

  get entries(): number {
    return this.count;
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** The canonical line of one entry (docs/format.md, "Tree digest"). */
export function digestLine(e: Entry | DeltaRecord): string {
  const parts: string[] = [
    Buffer.from(e.path, 'latin1').toString('base64'),
    e.kind,
    e.meta.mode.toString(8),
    String(e.meta.uid),
    String(e.meta.gid),
    e.meta.mtimeNs.toString(),
    e.meta.xattrs.map((x) => `${x.name}=${x.value.toString('base64')}`).join(','),
  ];
  switch (e.kind) {
    case 'file':
      parts.push(String(e.size), e.sha256 ?? '');
      break;
    case 'symlink':
      parts.push(Buffer.from(e.target, 'latin1').toString('base64'));
      break;
    case 'hardlink':
      parts.push(Buffer.from(e.linkTo, 'latin1').toString('base64'));
      break;
    case 'chardev':
    case 'blockdev':
      parts.push(`${e.major}:${e.minor}`);
      break;
    default:
      break;
  }
  return parts.join('\t') + '\n';
}

/** Bytes of sha256 kept per directory: enough to name the directory, the tree digest stays the full-strength check. */
export const DIR_DIGEST_BYTES = 4;

/**
 * Per-directory digests over entries fed in path order: each directory's digest covers its own
 * line and the lines of its children that are not directories (those have their own), so every
 * entry counts in exactly one digest, and a difference is named by the directory that holds it.
 * `digests()` gives them in path order of the directories.
 */
export class DirDigests {
  private readonly hashes = new Map<RelPath, Hash>();

  add(e: Entry | DeltaRecord): void {
    const line = digestLine(e);
    if (e.kind === 'dir') {
      const own = createHash('sha256');
      own.update(line);
      this.hashes.set(e.path, own);
    } else {
      this.hashes.get(parentOf(e.path))?.update(line);
    }
  }

  /** Directory paths in the order they were added (path order), with their digests. */
  digests(): { path: RelPath; digest: Buffer }[] {
    return [...this.hashes].map(([path, hash]) => ({ path, digest: hash.digest().subarray(0, DIR_DIGEST_BYTES) }));
  }
}
