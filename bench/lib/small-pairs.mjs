// Picks the "200 small files" set: regular files present at the same path in both trees of a
// pair, 1 KiB .. 256 KiB on both sides; changed pairs first (they are what a delta tool is for),
// then unchanged ones, each group in path order, so the selection is deterministic.
import { readdirSync, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const MIN_BYTES = 1024;
const MAX_BYTES = 256 * 1024;

function regularFiles(root, rel = '', out = new Map()) {
  for (const name of readdirSync(join(root, rel)).sort()) {
    const child = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(root, child));
    if (st.isDirectory()) regularFiles(root, child, out);
    else if (st.isFile()) out.set(child, st.size);
  }
  return out;
}

const smallEnough = (size) => size >= MIN_BYTES && size <= MAX_BYTES;

/**
 * From several tree pairs (in the order given), the changed pairs first, then the unchanged ones.
 * @param {{a: string, b: string}[]} treePairs
 * @returns {{a: string, b: string, sizeB: number, differs: boolean}[]}
 */
export function selectSmallPairs(treePairs, count) {
  const changed = [];
  const unchanged = [];
  for (const { a, b } of treePairs) {
    collectPairs(a, b, changed, unchanged, count);
    if (changed.length >= count) break;
  }
  const picked = [...changed, ...unchanged].slice(0, count);
  if (picked.length < count)
    throw new Error(`only ${picked.length} small file pairs in ${treePairs.map((t) => t.b).join(', ')}, need ${count}`);
  return picked;
}

function collectPairs(rootA, rootB, changed, unchanged, count) {
  const filesA = regularFiles(rootA);
  for (const [rel, sizeB] of regularFiles(rootB)) {
    const sizeA = filesA.get(rel);
    if (sizeA === undefined || !smallEnough(sizeA) || !smallEnough(sizeB)) continue;
    const pair = { a: join(rootA, rel), b: join(rootB, rel), sizeB };
    // Files are at most 256 KiB here: comparing them in memory is cheap and bounded.
    const differs = sizeA !== sizeB || !readFileSync(pair.a).equals(readFileSync(pair.b));
    (differs ? changed : unchanged).push({ ...pair, differs });
    if (changed.length >= count) return;
  }
}
