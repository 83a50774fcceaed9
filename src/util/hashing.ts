/** Hashing streams: to their end (hashStream), or as a pass-through that hashes and counts (hashingTap). */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';

export interface HashingTap {
  readonly stream: Transform;
  bytes(): number;
  /** The sha256 of everything that went through, hex; call once, after the stream ended. */
  sha256Hex(): string;
}

/** A stream hashed to its end: hex sha256, the same as an OCI digest, and the byte count. */
export interface StreamHash {
  sha256: string;
  /** `sha256:<hex>`. */
  digest: string;
  bytes: number;
}

export async function hashStream(stream: NodeJS.ReadableStream): Promise<StreamHash> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  const sha256 = hash.digest('hex');
  return { sha256, digest: `sha256:${sha256}`, bytes };
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
