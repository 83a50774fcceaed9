/** SourceIndex.deltaBase: the candidate closest in size by ratio (first in path order on ties), found by binary search. */
import { describe, expect, it } from 'vitest';
import { SourceIndex } from '../../src/delta/source-index.js';
import type { FileEntry, RelPath } from '../../src/tree/entry.js';
import { mulberry32 } from '../helpers/random.mjs';

const META = { mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [] };

function file(path: string, size: number): FileEntry {
  return { kind: 'file', path: path as RelPath, size, meta: META, sha256: `${path}-${size}` };
}

/** The scan the index replaces: every candidate scored, the first best kept, none beyond 4x. */
function bruteForce(candidates: FileEntry[], size: number): FileEntry | undefined {
  let best: FileEntry | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const score = Math.abs(Math.log((c.size + 1) / (size + 1)));
    if (score < bestScore) [best, bestScore] = [c, score];
  }
  return bestScore <= Math.log(4) ? best : undefined;
}

describe('SourceIndex.deltaBase', () => {
  it('picks what scoring every candidate picks, on many sizes and ties', () => {
    const next = mulberry32(7);
    // One versionless name for all (d#/f#.js), sizes with many repeats.
    const sources = Array.from({ length: 3000 }, (_, i) => file(`d${i % 50}/f${i}.js`, Math.floor(next() * 40) * 97));
    const sorted = [...sources].sort((a, b) => (a.path < b.path ? -1 : 1));
    const index = new SourceIndex(sorted);
    for (let t = 0; t < 2000; t++) {
      const size = Math.floor(next() * 5000);
      const target = file(`new/f${t}.js`, size);
      const want = bruteForce(
        sorted.filter((e) => e.size > 0),
        size,
      );
      expect(index.deltaBase(target)?.path).toBe(want?.path);
    }
  });
});
