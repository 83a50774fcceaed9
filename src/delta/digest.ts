/**
 * A tree digest: sha256 over one canonical line per entry (path, kind, metadata,
 * content sha256, link target, device numbers), in path order. Two trees with the
 * same digest are equal in everything deltaimg restores.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Entry } from '../tree/entry.js';
import type { DeltaRecord } from './format.js';

export class TreeDigest {
  private readonly hash: Hash = createHash('sha256');
  private count = 0;

  add(e: Entry | DeltaRecord): void {
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
    this.hash.update(parts.join('\t') + '\n');
    this.count++;
  }

  get entries(): number {
    return this.count;
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}
