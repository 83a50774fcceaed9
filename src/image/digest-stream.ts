/**
 * Streams that check what passes through: a pass-through that fails at its end when the bytes
 * do not hash to the expected digest (or are not the expected size), and a helper that pipes
 * a chain so an error anywhere reaches the consumer of the last stream.
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable, type Writable } from 'node:stream';
import { DeltaimgError } from '../util/errors.js';

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${sha256Hex(data)}`;
}

export interface Expected {
  digest: string;
  /** Checked too when given. */
  size?: number;
  /** Names the bytes in the error, e.g. "layer blobs/sha256/ab.. in x.tar". */
  label: string;
}

export function digestCheck(expected: Expected): Transform {
  const hash = createHash('sha256');
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      const actual = `sha256:${hash.digest('hex')}`;
      if (expected.size !== undefined && size !== expected.size) {
        done(new DeltaimgError('BAD_IMAGE', `${expected.label}: ${size} bytes, expected ${expected.size} (damaged or truncated)`));
      } else if (actual !== expected.digest) {
        done(new DeltaimgError('BAD_IMAGE', `${expected.label}: content hashes to ${actual}, expected ${expected.digest} (damaged)`));
      } else {
        done();
      }
    },
  });
}

/** Pipes first -> ...rest and returns the last; an error in any stream destroys the last with it. */
export function chain(first: Readable, ...rest: (Transform | Writable)[]): Readable {
  let current: Readable = first;
  const last = (rest[rest.length - 1] ?? first) as Readable;
  for (const next of rest) {
    const from = current;
    from.on('error', (err) => last.destroy(err));
    from.pipe(next as Writable);
    current = next as unknown as Readable;
  }
  // A consumer that stops early must not leave the source's file descriptor open.
  last.once('close', () => first.destroy());
  return last;
}
