#!/usr/bin/env node
/**
 * Builds the fsext addon with node-gyp, unless the built .node is newer than its sources
 * (so `npm run build` stays quick and never deletes an addon a running test has loaded).
 *
 * Headers: node-gyp would download them from nodejs.org; we point it at the running
 * node's own install prefix instead (Debian's /usr/include/node, or nvm's prefix) when
 * node_api.h is there, so the build works offline.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const output = join(here, 'build/Release/fsext.node');
const sources = ['fsext.c', 'copyfiles.c', 'binding.gyp', 'build.mjs'].map((f) => join(here, f));

const mtime = (path) => statSync(path).mtimeMs;
if (!process.argv.includes('--force') && existsSync(output) && sources.every((s) => mtime(s) <= mtime(output))) {
  console.log('fsext: up to date');
  process.exit(0);
}

const args = ['rebuild', '--directory', here];
const prefix = dirname(dirname(process.execPath));
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/node_api.h'))) args.push(`--nodedir=${prefix}`);

const nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
const result = spawnSync(process.execPath, [nodeGyp, ...args], { stdio: 'inherit' });
if (result.status !== 0) {
  console.error('fsext: native build failed (needs python3, make and a C compiler; see the output above)');
  process.exit(result.status ?? 1);
}
