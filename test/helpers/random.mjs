/**
 * The deterministic generators of the tests and the benchmark, so a failing case or a benchmark tree
 * is the same on every machine. Plain JavaScript: bench/ imports it too.
 */

/**
 * xorshift32: the next unsigned 32-bit value on each call.
 * @param {number} seed
 * @returns {() => number}
 */
export function xorshift32(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/**
 * mulberry32: the next float in [0, 1) on each call.
 * @param {number} seed
 * @returns {() => number}
 */
export function mulberry32(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
