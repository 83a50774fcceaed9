/**
 * `deltaimg layer-sync`: the runtime step of `dockerfile apply --layered` (hidden: it edits a
 * root in place and is meant for "/" inside a RUN of the generated Dockerfile).
 */
import type { Command } from 'commander';
import { formatBytes } from '../util/progress.js';
import { requireNativeAddon } from './preflight.js';

export function registerLayerCommand(program: Command): void {
  program
    .command('layer-sync', { hidden: true })
    .summary("turn LIVE_ROOT, which holds BASE_ROOT's tree, into TARGET_ROOT's by touching only what differs")
    .description(
      'Used by `dockerfile apply --layered` inside docker build: LIVE_ROOT is "/" of a RUN in FROM A, BASE_ROOT a ' +
        'read-only view of A, TARGET_ROOT the restored B. Removes what B lacks, writes what is new or changed ' +
        '(each file checked by sha256), sets changed metadata, then checks that LIVE_ROOT equals B path for path. ' +
        'Refuses when B differs from A at a path the builder mounts over (/etc/hosts, /etc/resolv.conf); under /dev, /proc ' +
        "and /sys, which Docker mounts anew in every container, B's differences are left as A has them and reported.",
    )
    .argument('<BASE_ROOT>', 'the tree LIVE_ROOT holds now')
    .argument('<TARGET_ROOT>', 'the tree LIVE_ROOT must hold')
    .argument('<LIVE_ROOT>', 'the root edited in place')
    .option('--fixup <DIR>', 'the tree (from layer-fixup) a later COPY lays over the layer: directories it restores may be disturbed')
    .action(async (base: string, target: string, live: string, opts: { fixup?: string }) => {
      await requireNativeAddon();
      const { notCarriedLine, syncRootInPlace } = await import('../layered/in-place.js');
      const r = await syncRootInPlace(base, target, live, { fixupRoot: opts.fixup });
      const notCarried = notCarriedLine(r.notCarried);
      if (notCarried) process.stderr.write(`deltaimg: ${notCarried}\n`);
      process.stderr.write(
        `deltaimg: layer holds ${r.written} new or changed entries (${formatBytes(r.bytes)} of files), ${r.metadataOnly} metadata changes and ` +
          `${r.removed} removals; ${live} verified equal to ${target}\n`,
      );
    });

  program
    .command('layer-fixup', { hidden: true })
    .summary("write the directories the builder disturbs during the --layered RUN, with TARGET_ROOT's metadata")
    .description(
      'Used by `dockerfile apply --layered`: when BASE_ROOT lacks a file docker build mounts into every RUN ' +
        "(/etc/hosts, /etc/resolv.conf), the builder's stand-in changes its parent directory after the RUN; " +
        'a COPY of OUT (those directories, empty, as TARGET_ROOT has them) puts them right.',
    )
    .argument('<BASE_ROOT>', "the base tree (image A's root)")
    .argument('<TARGET_ROOT>', "the target tree (B's restored root)")
    .requiredOption('-o, --out <DIR>', 'where to write the directories (must not exist)')
    .action(async (base: string, target: string, opts: { out: string }) => {
      await requireNativeAddon();
      const { writeFixupTree } = await import('../layered/layer-fixup.js');
      const dirs = await writeFixupTree(base, target, opts.out);
      process.stderr.write(
        `deltaimg: ${dirs.length ? `directories to restore after the RUN: ${dirs.map((d) => `/${d}`).join(' ')}` : 'no directory to restore after the RUN'}\n`,
      );
    });
}
