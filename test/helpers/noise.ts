import { xorshift32 } from './random.mjs';

/** Deterministic pseudo-random bytes (xorshift32 from `seed`), so failures reproduce. */
export function noise(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  const next = xorshift32(seed);
  for (let i = 0; i < length; i++) out[i] = next() & 0xff;
  return out;
}
