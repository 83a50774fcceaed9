// The many-small-files pairs of issue #10 (bench/many-files.mjs), built once into bench/data/many-files/:
//   gen        a generated 100,000-file tree (seeded, deterministic bytes) and its edit: 1% of the files
//              edited (a line changed or inserted, the rest of the file as it was), 1,000 deleted, 1,000 added;
//              B written as a fresh tree, so every mtime differs from A's
//   gen-same   B = A's bytes written again (every mtime differs, nothing else)
//   gen-cp     B = `cp -a A` (mtimes kept: nothing differs at all)
//   nm         a real app's node_modules at two dependency sets (npm install --ignore-scripts from the npm
//              registry, each set into its own directory, so every mtime differs as in a rebuilt image)
//   nm-same    the older set installed twice (same files, new mtimes)
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '../../test/helpers/random.mjs';
import { buildOnce } from './build-once.mjs';

// --- the generated tree ------------------------------------------------------------------------

export const GEN = { files: 100_000, dirs: 1_000, edited: 1_000, deleted: 1_000, added: 1_000, seed: 0x5eed };

const WORDS = (() => {
  const next = mulberry32(1);
  const letters = 'abcdefghijklmnopqrstuvwxyz_';
  return Array.from({ length: 4096 }, () => {
    let w = '';
    for (let n = 2 + Math.floor(next() * 9); n > 0; n--) w += letters[Math.floor(next() * letters.length)];
    return w;
  });
})();

/** Source-like text: lines of 3-12 words, indented, `bytes` long at least. */
function lines(next, bytes) {
  const out = [];
  let size = 0;
  while (size < bytes) {
    const words = [];
    for (let n = 3 + Math.floor(next() * 10); n > 0; n--) words.push(WORDS[Math.floor(next() * WORDS.length)]);
    const line = ' '.repeat(2 * Math.floor(next() * 4)) + words.join(' ') + ';';
    out.push(line);
    size += line.length + 1;
  }
  return out;
}

const genPath = (i) => join(`d${String(i % GEN.dirs).padStart(3, '0')}`, `f${String(i).padStart(6, '0')}.js`);

/** File i of A: its own seeded text, 200 B .. 4 KiB (most small). */
function genFile(i) {
  const next = mulberry32(GEN.seed ^ Math.imul(i + 1, 0x9e3779b1));
  return lines(next, 200 + Math.floor(next() ** 2 * 3900));
}

/** A real edit: one line changed, or one inserted, in place; the rest of the file is A's. */
function editFile(linesOfA, next) {
  const out = [...linesOfA];
  const at = Math.floor(next() * out.length);
  const line = lines(next, 40)[0];
  if (next() < 0.5) out[at] = line;
  else out.splice(at, 0, line);
  return out;
}

/** Which files of A are edited, deleted, and how many are added: disjoint, from the seed. */
function genPlan() {
  const next = mulberry32(GEN.seed + 1);
  const chosen = new Set();
  const pick = (count) => {
    const out = [];
    while (out.length < count) {
      const i = Math.floor(next() * GEN.files);
      if (chosen.has(i)) continue;
      chosen.add(i);
      out.push(i);
    }
    return out;
  };
  return { edited: new Set(pick(GEN.edited)), deleted: new Set(pick(GEN.deleted)), next };
}

function writeTree(root, files) {
  for (let d = 0; d < GEN.dirs; d++) mkdirSync(join(root, `d${String(d).padStart(3, '0')}`), { recursive: true });
  for (const [rel, text] of files) writeFileSync(join(root, rel), text.join('\n') + '\n');
}

function* genA() {
  for (let i = 0; i < GEN.files; i++) yield [genPath(i), genFile(i)];
}

function* genB() {
  const plan = genPlan();
  for (let i = 0; i < GEN.files; i++) {
    if (plan.deleted.has(i)) continue;
    const text = genFile(i);
    yield [genPath(i), plan.edited.has(i) ? editFile(text, plan.next) : text];
  }
  for (let k = 0; k < GEN.added; k++) {
    const i = GEN.files + k;
    yield [genPath(i), genFile(i)];
  }
}

/** The generated pairs: { a, b, same, cp } (b, same, cp all written after a: their mtimes are later). */
export function generatedTrees(dataDir) {
  const a = buildOnce(join(dataDir, 'gen-a'), (tmp) => writeTree(tmp, genA()));
  const b = buildOnce(join(dataDir, 'gen-b'), (tmp) => writeTree(tmp, genB()));
  const same = buildOnce(join(dataDir, 'gen-same'), (tmp) => writeTree(tmp, genA()));
  const cp = buildOnce(join(dataDir, 'gen-cp'), (tmp) => {
    rmSync(tmp, { recursive: true });
    execFileSync('cp', ['-a', a, tmp]);
  });
  return { a, b, same, cp };
}

// --- the real node_modules ---------------------------------------------------------------------

/**
 * A Next.js app's dependencies at two sets: B bumps some of them by a patch or minor release (next,
 * react, typescript, webpack, babel, MUI, sass, tailwind, prettier, core-js, ts-jest). Top-level
 * versions are pinned; npm resolves the transitive ones at install time, so a later run may get newer
 * transitive releases (the results record the file counts).
 */
const APP_A = {
  next: '14.2.3',
  react: '18.2.0',
  'react-dom': '18.2.0',
  typescript: '5.4.5',
  eslint: '8.57.0',
  'eslint-config-next': '14.2.3',
  jest: '29.7.0',
  'jest-environment-jsdom': '29.7.0',
  'ts-jest': '29.1.2',
  '@testing-library/react': '15.0.7',
  '@testing-library/jest-dom': '6.4.5',
  webpack: '5.91.0',
  'webpack-cli': '5.1.4',
  '@babel/core': '7.24.5',
  '@babel/preset-env': '7.24.5',
  '@babel/preset-react': '7.24.1',
  '@babel/preset-typescript': '7.24.1',
  '@mui/material': '5.15.15',
  '@mui/icons-material': '5.15.15',
  '@emotion/react': '11.11.4',
  '@emotion/styled': '11.11.5',
  'date-fns': '2.30.0',
  lodash: '4.17.21',
  rxjs: '7.8.1',
  sass: '1.77.0',
  tailwindcss: '3.4.3',
  postcss: '8.4.38',
  autoprefixer: '10.4.19',
  prettier: '3.2.5',
  'core-js': '3.37.0',
  axios: '1.6.8',
  zod: '3.23.6',
  '@types/react': '18.3.1',
  '@types/node': '20.12.7',
};
const APP_B = {
  ...APP_A,
  next: '14.2.4',
  react: '18.3.1',
  'react-dom': '18.3.1',
  typescript: '5.5.2',
  'eslint-config-next': '14.2.4',
  webpack: '5.92.0',
  '@babel/core': '7.24.7',
  '@babel/preset-env': '7.24.7',
  '@mui/material': '5.15.20',
  '@mui/icons-material': '5.15.20',
  sass: '1.77.6',
  tailwindcss: '3.4.4',
  prettier: '3.3.2',
  'core-js': '3.37.1',
  'ts-jest': '29.1.5',
};
export const NODE_APP = { a: APP_A, b: APP_B };

function installApp(tmp, dependencies) {
  writeFileSync(
    join(tmp, 'package.json'),
    JSON.stringify({ name: 'bench-next-app', version: '1.0.0', private: true, dependencies }, null, 2) + '\n',
  );
  execFileSync('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: tmp,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** The node_modules pairs: { a, b, same } app roots (package.json, package-lock.json, node_modules/). */
export function nodeModulesTrees(dataDir) {
  const a = buildOnce(join(dataDir, 'nm-a'), (tmp) => installApp(tmp, APP_A));
  const same = buildOnce(join(dataDir, 'nm-a-again'), (tmp) => installApp(tmp, APP_A));
  const b = buildOnce(join(dataDir, 'nm-b'), (tmp) => installApp(tmp, APP_B));
  return { a, b, same };
}
