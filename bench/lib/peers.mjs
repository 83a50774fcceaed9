// The native tools deltaimg is compared with, run the same way by every benchmark script: zstd
// --patch-from and xdelta3 on the two trees' tars (the pair as image layers), and HDiffPatch's directory
// diff on the trees themselves. Each under /usr/bin/time -v (wall, CPU, peak RSS); inputs and outputs
// under `work`, removed afterwards.
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { freshPath, runMeasured, slimRun } from './measure.mjs';

/** Deterministic tar of a directory (what zstd and xdelta3 get). */
export function tarOf(dir, out) {
  execFileSync('tar', ['--sort=name', '--numeric-owner', '-C', dir, '-cf', out, '.']);
  return out;
}

/** What a zstd user runs to apply: decode B's tar from A's, then extract it into `out`. */
export const zstdApplyArgv = (aTar, zst, out) => [
  'bash',
  '-c',
  'set -o pipefail; mkdir -p "$3" && zstd -q -d -c --long=31 --patch-from="$1" "$2" | tar -x -C "$3"',
  'zstd-apply',
  aTar,
  zst,
  out,
];

/**
 * zstd -19 --long=31 --patch-from and xdelta3 -9 on tar(A) -> tar(B): sizes, encode, decode, and zstd's
 * decode + extraction of B's tar. With `keep`, a.tar and the .zst stay in `work` (for repeated applies).
 */
export async function measureTarPeers(a, b, work, log, { keep = false } = {}) {
  const aTar = tarOf(a, join(work, 'a.tar'));
  const bTar = tarOf(b, join(work, 'b.tar'));
  const result = { aTarBytes: statSync(aTar).size, bTarBytes: statSync(bTar).size };
  log('zstd -19 --long=31 --patch-from');
  const zst = join(work, 'b.tar.zst');
  const zstd = await runMeasured(['zstd', '-q', '-f', '-19', '--long=31', `--patch-from=${aTar}`, bTar, '-o', zst]);
  result.zstd = { encode: slimRun(zstd), bytes: zstd.ok ? statSync(zst).size : null };
  if (zstd.ok) {
    const tar = join(work, 'b.zstd.tar');
    result.zstd.decode = slimRun(await runMeasured(['zstd', '-q', '-f', '-d', '--long=31', `--patch-from=${aTar}`, zst, '-o', tar]));
    rmSync(tar, { force: true });
    const out = join(work, 'zstd-out');
    freshPath(out);
    result.zstd.decodeExtract = slimRun(await runMeasured(zstdApplyArgv(aTar, zst, out)));
    rmSync(out, { recursive: true, force: true });
  }
  log('xdelta3 -9');
  const vcd = join(work, 'b.vcdiff');
  const window = String(Math.min(2 ** 30, Math.max(2 ** 20, 2 ** Math.ceil(Math.log2(result.aTarBytes)))));
  const xdelta = await runMeasured(['xdelta3', '-e', '-f', '-9', '-B', window, '-s', aTar, bTar, vcd]);
  result.xdelta3 = { encode: slimRun(xdelta), bytes: xdelta.ok ? statSync(vcd).size : null, window: Number(window) };
  if (xdelta.ok) {
    const tar = join(work, 'b.xdelta.tar');
    result.xdelta3.decode = slimRun(await runMeasured(['xdelta3', '-d', '-f', '-B', window, '-s', aTar, vcd, tar]));
    rmSync(tar, { force: true });
  }
  for (const path of keep ? [bTar, vcd] : [aTar, bTar, zst, vcd]) rmSync(path, { force: true });
  return { ...result, ...(keep ? { files: { aTar, zst } } : {}) };
}

/**
 * HDiffPatch's directory diff: `hdiffz -m -d -c-zstd A B D` (-m: the best-size mode; -d: no patch check
 * after the diff), `hpatchz A D OUT`. It restores bytes and the entry set only (no modes, owners or
 * mtimes), so the restore is compared on those (`diff -rq`).
 */
export async function measureHdiffpatch(tools, a, b, work, log) {
  const delta = join(work, 'hdiffz.diff');
  log('hdiffz (directory diff)');
  const diff = await runMeasured([tools.hdiffz, '-m', '-d', '-c-zstd', a, b, delta]);
  const result = { command: 'hdiffz -m -d -c-zstd A B D; hpatchz A D OUT', diff: slimRun(diff) };
  if (!diff.ok) return result;
  result.bytes = statSync(delta).size;
  log('hpatchz');
  const restored = join(work, 'hpatchz-out');
  freshPath(restored);
  result.apply = slimRun(await runMeasured([tools.hpatchz, a, delta, restored]));
  if (result.apply.ok) result.sameBytes = spawnSync('diff', ['-rq', '--no-dereference', b, restored]).status === 0;
  rmSync(restored, { recursive: true, force: true });
  rmSync(delta, { force: true });
  return result;
}
