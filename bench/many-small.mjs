#!/usr/bin/env node
// Encodes many small file pairs in ONE process with deltaimg's VCDIFF engine (dist/vcdiff),
// for the benchmark's "200 files in one process vs 200 xdelta3 processes" row.
//
// usage: node bench/many-small.mjs PAIRS_JSON sequential|pool [POOL_SIZE]
//   PAIRS_JSON: [[sourcePath, targetPath, deltaPath], ...]
//   sequential: one encodeFile after the other (compare with xdelta3 processes run one after the other)
//   pool:       all submitted at once to a VcdiffPool of POOL_SIZE workers (default 2)
// Prints {"files": N, "deltaBytes": total} on stdout.
import { readFileSync, statSync } from 'node:fs';

const LEVEL = 9;
const SECONDARY = 'djw';

async function loadEngine() {
  return import(new URL('../dist/vcdiff/index.js', import.meta.url).href);
}

async function encodeSequentially(engine, pairs) {
  for (const [source, target, delta] of pairs) {
    await engine.encodeFile(source, target, delta, { level: LEVEL, secondary: SECONDARY });
  }
}

async function encodeWithPool(engine, pairs, size) {
  const pool = new engine.VcdiffPool({ size });
  try {
    await Promise.all(
      pairs.map(([source, target, delta]) => pool.encodeFile(source, target, delta, { level: LEVEL, secondary: SECONDARY })),
    );
  } finally {
    await pool.close();
  }
}

async function main() {
  const [pairsPath, mode = 'sequential', poolSize = '2'] = process.argv.slice(2);
  if (!pairsPath || !['sequential', 'pool'].includes(mode)) {
    console.error('usage: node bench/many-small.mjs PAIRS_JSON sequential|pool [POOL_SIZE]');
    process.exit(2);
  }
  const pairs = JSON.parse(readFileSync(pairsPath, 'utf8'));
  const engine = await loadEngine();
  if (mode === 'pool') await encodeWithPool(engine, pairs, Number(poolSize));
  else await encodeSequentially(engine, pairs);
  const deltaBytes = pairs.reduce((sum, [, , delta]) => sum + statSync(delta).size, 0);
  process.stdout.write(JSON.stringify({ files: pairs.length, deltaBytes }) + '\n');
}

await main();
