/** Helpers of the executable-transform tests: a reproducible generator and the transform streamed in random chunks. */
import { xorshift32 } from './random.mjs';
import { BranchFilter, type BranchTransform, type Direction } from '../../src/exefilter/index.js';

/** Deterministic pseudo-random generator, so failures reproduce. */
export const rng = xorshift32;

/** Streams `input` through a BranchFilter in chunks of random sizes (1 byte to 300). */
export function streamed(t: BranchTransform, dir: Direction, input: Buffer, seed: number): Buffer {
  const next = rng(seed);
  const filter = new BranchFilter(t, dir);
  const parts: Buffer[] = [];
  for (let at = 0; at < input.length;) {
    const n = 1 + (next() % 300);
    parts.push(Buffer.from(filter.push(input.subarray(at, at + n))));
    at += n;
  }
  parts.push(Buffer.from(filter.end()));
  return Buffer.concat(parts);
}
