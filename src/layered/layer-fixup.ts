/**
 * The directories the builder itself disturbs during the `--layered` RUN, and the small tree
 * that puts them right. When A lacks a file the builder bind-mounts into every RUN
 * (/etc/hosts, /etc/resolv.conf), BuildKit 0.8 creates an empty stand-in before the RUN and
 * removes it after, so the parent directory lands in the layer with the build time as mtime,
 * after anything the RUN could do about it. A later `COPY` of that directory alone, made here
 * with B's metadata in a scratch stage, restores it (COPY sets the metadata of an existing
 * directory it copies into). Measured on Docker 20.10.24; see docs/docker.md.
 */
import { mkdir, chmod } from 'node:fs/promises';
import type { DirEntry, RelPath } from '../tree/entry.js';
import { applyDirectoryMetadata, newRestoreReport, summarizeReport } from '../tree/meta.js';
import { compareRel, parentOf } from '../tree/paths.js';
import { createNode } from '../tree/write.js';
import { DeltaimgError } from '../util/errors.js';
import { entryAt } from './live-root.js';

/** Files BuildKit bind-mounts into every RUN (a missing one gets a stand-in, removed afterwards). */
export const FILE_MOUNT_TARGETS = ['etc/hosts', 'etc/resolv.conf'] as RelPath[];

/**
 * Directories of B whose metadata the builder disturbs: parents of file mount targets that A
 * lacks, when A and B both have the parent as a directory. With their ancestors (a COPY sets
 * the metadata of every directory it copies into), in path order, as B has them.
 */
export function disturbedDirs(baseRoot: string, targetRoot: string): DirEntry[] {
  const dirs = new Map<RelPath, DirEntry>();
  for (const file of FILE_MOUNT_TARGETS) {
    if (entryAt(baseRoot, file)) continue;
    const parent = parentOf(file);
    if (entryAt(baseRoot, parent)?.kind !== 'dir') continue;
    for (let p = parent; p !== ''; p = parentOf(p)) {
      const want = entryAt(targetRoot, p);
      if (want?.kind === 'dir') dirs.set(p, want);
    }
  }
  return [...dirs.values()].sort((x, y) => compareRel(x.path, y.path));
}

/** Writes the disturbed directories, empty and with B's metadata, under OUT (created 0755). */
export async function writeFixupTree(baseRoot: string, targetRoot: string, out: string): Promise<RelPath[]> {
  const dirs = disturbedDirs(baseRoot, targetRoot);
  await mkdir(out);
  await chmod(out, 0o755);
  const report = newRestoreReport();
  for (const d of dirs) await createNode(out, d, report);
  await applyDirectoryMetadata(out, dirs, report);
  const skipped = summarizeReport(report);
  if (skipped) throw new DeltaimgError('VERIFY_FAILED', `layer-fixup needs an exact copy: ${skipped.replace(/^warning: /, '')}`);
  return dirs.map((d) => d.path);
}
