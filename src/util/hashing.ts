/** A pass-through that hashes (sha256) and counts the bytes flowing through it, for one-pass checks. */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';

export interface HashingTap {
  readonly stream: Transform;
  bytes(): number;
  /** The sha256 of everything that went through, hex; call once, after the stream ended. */
  sha256Hex(): string;
}

export function hashingTap(): HashingTap {
  const hash = createHash('sha256');
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  return { stream, bytes: () => bytes, sha256Hex: () => hash.digest('hex') };
}
