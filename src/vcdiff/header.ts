/**
 * deltaimg's VCDIFF application header: the source's size and hash, so a decoder can tell
 * a wrong source from a damaged delta, and the target's size, so it can catch a delta cut off
 * at a window boundary (which VCDIFF itself cannot see; each window's content is covered by
 * its adler32). Written as plain ASCII without '/', so native `xdelta3 -d` ignores it (it
 * only parses "name/comp/srcname/srccomp").
 *
 *   deltaimg1;ss=<source size>;sh=<source hash>;ts=<target size>
 *
 * Sizes are base 36, the hash the first 16 bytes of SHA-256 in base64url; each field is
 * optional (no source, or a streamed target of unknown size).
 */
import { createHash } from 'node:crypto';
import type { RandomAccessSource } from './io.js';

const MAGIC = 'deltaimg1';
const HASH_BYTES = 16;

export interface Fingerprint {
  size: number;
  /** base64url of the first 16 bytes of SHA-256 */
  hash: string;
}

export interface AppHeader {
  source?: Fingerprint;
  targetSize?: number;
}

export function shortHash(sha256: Buffer): string {
  return sha256.subarray(0, HASH_BYTES).toString('base64url');
}

export function formatAppHeader(header: AppHeader): Buffer {
  const fields = [MAGIC];
  if (header.source) fields.push(`ss=${header.source.size.toString(36)}`, `sh=${header.source.hash}`);
  if (header.targetSize !== undefined) fields.push(`ts=${header.targetSize.toString(36)}`);
  return Buffer.from(fields.join(';'), 'latin1');
}

/** Our header, or null for anything else (foreign deltas, e.g. from native xdelta3). */
export function parseAppHeader(raw: Buffer): AppHeader | null {
  const fields = raw.toString('latin1').split(';');
  if (fields[0] !== MAGIC) return null;
  const map = new Map(fields.slice(1).map((f) => [f.slice(0, 2), f.slice(3)] as const));
  const fingerprint = (sizeKey: string, hashKey: string): Fingerprint | undefined => {
    const size = map.get(sizeKey);
    const hash = map.get(hashKey);
    if (size === undefined || hash === undefined || !/^[0-9a-z]+$/.test(size)) return undefined;
    return { size: parseInt(size, 36), hash };
  };
  const targetSize = map.get('ts');
  return {
    source: fingerprint('ss', 'sh'),
    targetSize: targetSize !== undefined && /^[0-9a-z]+$/.test(targetSize) ? parseInt(targetSize, 36) : undefined,
  };
}

const HASH_CHUNK = 1024 * 1024;

/** Fingerprint of a whole random-access file, read in 1 MiB chunks. */
export async function fingerprintSource(source: RandomAccessSource): Promise<Fingerprint> {
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(Math.min(HASH_CHUNK, Math.max(1, source.size)));
  for (let pos = 0; pos < source.size;) {
    const n = await source.readAt(chunk, pos);
    if (n === 0) break;
    hash.update(chunk.subarray(0, n));
    pos += n;
  }
  return { size: source.size, hash: shortHash(hash.digest()) };
}
