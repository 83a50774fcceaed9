/** Types of random.mjs (plain JavaScript so that bench/ can import it). */
export function xorshift32(seed: number): () => number;
export function mulberry32(seed: number): () => number;
