// HDiffPatch (hdiffz / hpatchz) for the benchmark's side-by-side column. It is packaged neither in Debian
// nor as a binary on npm, but the npm package react-native-update ships its C/C++ sources (the
// Android client's android/jni/HDiffPatch, v3.1.1, with hdiffz.cpp, hpatchz.c, the directory diff and the
// Makefile). Built once at bench time into bench/data/tools/ from that tarball (nothing of it is
// committed): the upstream Makefile with -O3 instead of -Os, the zstd plugin on (system libzstd),
// no LZMA/MD5 (their sources are not in the package). Needs g++, make, libzstd-dev, zlib1g-dev,
// libbz2-dev (scripts/setup.sh).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildOnce } from './build-once.mjs';

export const HDIFFPATCH_SOURCE = 'react-native-update@10.40.2';

/** { hdiffz, hpatchz, version, source } built from the npm package's sources (cached). */
export function hdiffpatchTools(dataDir) {
  const root = buildOnce(join(dataDir, 'tools', 'hdiffpatch'), (tmp) => {
    const tgz = execFileSync('npm', ['pack', '-q', HDIFFPATCH_SOURCE], { cwd: tmp, encoding: 'utf8' }).trim().split('\n').pop();
    execFileSync('tar', ['-xzf', tgz, '--strip-components=4', 'package/android/jni/HDiffPatch'], { cwd: tmp });
    const makefile = join(tmp, 'Makefile');
    writeFileSync(makefile, readFileSync(makefile, 'utf8').replace('-Os -DNDEBUG', '-O3 -DNDEBUG'));
    const make = (targets) =>
      execFileSync('make', ['LZMA=0', 'MD5=0', 'DIFF_LINK=-lz -lbz2 -lzstd -lpthread', 'PATCH_LINK=-lz -lbz2 -lzstd', ...targets], {
        cwd: tmp,
        env: { ...process.env, CFLAGS: '-D_CompressPlugin_zstd', CXXFLAGS: '-D_CompressPlugin_zstd' },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
    // The Makefile's hdiffz/hpatchz rules do not depend on the library: build it first.
    make(['-j2', 'libhdiffpatch.a']);
    make(['hdiffz', 'hpatchz']);
    if (!readdirSync(tmp).includes('hdiffz')) throw new Error('HDiffPatch build made no hdiffz');
  });
  const hdiffz = join(root, 'hdiffz');
  const hpatchz = join(root, 'hpatchz');
  if (!existsSync(hdiffz) || !existsSync(hpatchz)) throw new Error(`${root}: hdiffz/hpatchz missing; remove the directory to rebuild`);
  const banner = execFileSync('bash', ['-c', `"${hdiffz}" 2>&1 | grep -m1 'HDiffPatch::hdiffz' || true`], { encoding: 'utf8' }).trim();
  return { hdiffz, hpatchz, version: banner.replace('HDiffPatch::hdiffz ', '') || 'unknown', source: HDIFFPATCH_SOURCE };
}
