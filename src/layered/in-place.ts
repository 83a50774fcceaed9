/**
 * `deltaimg layer-sync`: turns a live root that holds tree A into tree B by touching only what
 * differs, for `dockerfile apply --layered`. There the live root is "/" of a RUN in `FROM A`,
 * so what this writes becomes the one new layer: changed and new entries, and (made by the
 * overlay filesystem for every removal) whiteouts. A and B are read from read-only views
 * (A's image root, and B's root as `deltaimg apply` rebuilt and verified it).
 *
 * Why each rule:
 * - An entry whose type, bytes, hardlink group, xattrs and metadata are all equal is never
 *   touched: any write, even a chmod to the same mode, would copy it up into the layer.
 * - A file with several names is always rewritten as a whole group: the overlay copy-up of one
 *   name breaks the link with the names left in the lower layer.
 * - Paths the builder mounts over during RUN (/proc, /sys, /dev, /etc/hosts, /etc/resolv.conf)
 *   cannot be written here. A missing in A gets a stand-in created by the builder in the layer
 *   (BuildKit 0.8 leaves it there), so it is refused. B's changes under /dev, /proc and /sys (the
 *   device nodes of a refreshed base image) are not carried but reported: Docker mounts its own
 *   /dev, /proc and /sys in every container, so no container sees them. Changes under the
 *   others are refused.
 * - At the end the whole live root is walked again and must equal B, path for path.
 */
import { rm } from 'node:fs/promises';
import type { Entry, FileEntry, RelPath } from '../tree/entry.js';
import { compareEntries, sameMetadata, sameXattrs } from '../tree/compare.js';
import { applyMetadata, newRestoreReport, summarizeReport, type RestoreReport } from '../tree/meta.js';
import { compareRel, displayPath, parentOf, toFsPath } from '../tree/paths.js';
import { scanTree, sha256File } from '../tree/scan.js';
import { copyFileEntry, createNode } from '../tree/write.js';
import { DeltaimgError } from '../util/errors.js';
import { entryAt, isUnder, topMountPoints, walkLiveRoot } from './live-root.js';

export interface InPlaceOptions {
  /** Paths mounted over in the live root; default: read from /proc/self/mountinfo. */
  masked?: RelPath[];
  /**
   * The tree a later COPY lays over the new layer (layer-fixup.ts): directories in it are put
   * right after the RUN, so the builder may disturb them (a stand-in for a file A lacks).
   */
  fixupRoot?: string;
}

/** Mount points whose content no container sees: Docker mounts its own there in every container. */
const RUNTIME_MOUNTS: ReadonlySet<string> = new Set(['dev', 'proc', 'sys']);

/** B's differences from A under a mount point that were left as A has them. */
export interface NotCarried {
  mount: RelPath;
  /** Paths at or below `mount` where B differs from A (added, changed or removed). */
  paths: number;
  example: RelPath;
}

export interface InPlaceResult {
  /** Topmost paths removed (whole subtrees count once). */
  removed: number;
  /** Entries written fresh (new, changed, or of another type). */
  written: number;
  /** Entries whose metadata alone changed. */
  metadataOnly: number;
  /** Bytes of regular files written. */
  bytes: number;
  masked: RelPath[];
  notCarried: NotCarried[];
}

export async function syncRootInPlace(
  baseRoot: string,
  targetRoot: string,
  liveRoot: string,
  opts: InPlaceOptions = {},
): Promise<InPlaceResult> {
  const [base, target] = await Promise.all([scanTree(baseRoot, { hash: true }), scanTree(targetRoot, { hash: true })]);
  const a = new TreeIndex(base.entries);
  const b = new TreeIndex(target.entries);
  const masked = opts.masked ?? topMountPoints(liveRoot);
  const { disturbed, notCarried } = checkMaskedPaths(masked, a, b, liveRoot, opts.fixupRoot);
  const plan = planChanges(a, b, masked);
  // Their stand-ins already changed them: set B's metadata now too, so the final check holds.
  for (const d of disturbed) plan.dirs.add(d);
  const bytes = await carryOut(plan, liveRoot, targetRoot, b);
  await verifyLiveRoot(liveRoot, masked, b);
  return { removed: plan.removals.length, written: plan.writes.length, metadataOnly: plan.metadata.length, bytes, masked, notCarried };
}

/** A snapshot's entries by path, with each file's hardlink group. */
class TreeIndex {
  private readonly byPath = new Map<RelPath, Entry>();
  private readonly groups = new Map<RelPath, RelPath[]>();

  constructor(readonly entries: readonly Entry[]) {
    for (const e of entries) {
      this.byPath.set(e.path, e);
      if (e.kind === 'file') this.groups.set(e.path, [e.path]);
      if (e.kind === 'hardlink') this.groups.get(e.linkTo)?.push(e.path);
    }
  }

  get(path: RelPath): Entry | undefined {
    return this.byPath.get(path);
  }

  /** The file entry behind a path (itself, or the first name of its hardlink group). */
  file(e: Entry): FileEntry | undefined {
    const head = e.kind === 'hardlink' ? this.byPath.get(e.linkTo) : e;
    return head?.kind === 'file' ? head : undefined;
  }

  /** All names of the file at `e`, in path order. */
  groupOf(e: Entry): RelPath[] {
    return this.groups.get(e.kind === 'hardlink' ? e.linkTo : e.path) ?? [e.path];
  }
}

interface Plan {
  /** Topmost paths of A to remove, in path order. */
  removals: RelPath[];
  /** B entries to create, in path order (after the removals). */
  writes: Entry[];
  /** B entries (not directories) whose metadata alone is set again. */
  metadata: Entry[];
  /** B directories whose metadata is set at the end: changed, new, or with changed children. */
  dirs: Set<RelPath>;
}

function planChanges(a: TreeIndex, b: TreeIndex, masked: readonly RelPath[]): Plan {
  const plan: Plan = { removals: [], writes: [], metadata: [], dirs: new Set() };
  const inScope = (p: RelPath): boolean => p !== '' && !masked.some((m) => isUnder(p, m));
  const removed: RelPath[] = [];
  for (const old of a.entries) {
    if (inScope(old.path) && !b.get(old.path)) removed.push(old.path);
  }
  for (const want of b.entries) {
    if (!inScope(want.path)) continue;
    const old = a.get(want.path);
    const change = old ? changeFor(old, want, a, b) : 'write';
    if (change === 'replace') removed.push(want.path);
    if (change === 'replace' || change === 'write') plan.writes.push(want);
    if (want.kind === 'dir' && change !== 'same') plan.dirs.add(want.path);
    else if (change === 'metadata') plan.metadata.push(want);
  }
  removed.sort(compareRel);
  const removedSet = new Set(removed);
  plan.removals = removed.filter((p) => !hasAncestorIn(p, removedSet));
  // Adding or removing a child changes a directory's mtime: set B's again.
  for (const p of [...removed, ...plan.writes.map((w) => w.path)]) {
    const parent = parentOf(p);
    if (parent !== '' && b.get(parent)?.kind === 'dir') plan.dirs.add(parent);
  }
  checkHardlinkHeads(plan.writes);
  return plan;
}

/** True when a proper ancestor of `path` is in `set` (its removal takes `path` along). */
function hasAncestorIn(path: RelPath, set: ReadonlySet<RelPath>): boolean {
  for (let p = parentOf(path); p !== ''; p = parentOf(p)) if (set.has(p)) return true;
  return false;
}

type Change = 'same' | 'metadata' | 'replace' | 'write';

/** What it takes to turn A's entry at a path into B's. */
function changeFor(old: Entry, want: Entry, a: TreeIndex, b: TreeIndex): Change {
  if (typeClass(old) !== typeClass(want)) return 'replace';
  if (!sameXattrs(old.meta, want.meta)) {
    if (want.kind === 'dir') {
      throw new DeltaimgError(
        'DOCKER',
        `--layered cannot restore ${displayPath(want.path)} exactly: its directory xattrs change, which needs removing some (not supported); apply without --layered`,
      );
    }
    return 'replace';
  }
  switch (want.kind) {
    case 'dir':
    case 'fifo':
      return sameMetadata(old.meta, want.meta) ? 'same' : 'metadata';
    case 'symlink':
      if (old.kind !== 'symlink' || old.target !== want.target) return 'replace';
      return sameMetadata(old.meta, want.meta) ? 'same' : 'metadata';
    case 'chardev':
    case 'blockdev':
      if (old.kind !== want.kind || old.major !== want.major || old.minor !== want.minor) return 'replace';
      return sameMetadata(old.meta, want.meta) ? 'same' : 'metadata';
    case 'file':
    case 'hardlink':
      return fileChange(old, want, a, b);
  }
}

function fileChange(old: Entry, want: Entry, a: TreeIndex, b: TreeIndex): Change {
  const [fa, fb] = [a.file(old), b.file(want)];
  const [ga, gb] = [a.groupOf(old), b.groupOf(want)];
  if (!fa || !fb || fa.size !== fb.size || fa.sha256 !== fb.sha256 || ga.join('\0') !== gb.join('\0')) return 'replace';
  if (sameMetadata(fa.meta, fb.meta)) return 'same';
  return gb.length > 1 ? 'replace' : 'metadata';
}

/** Files and their extra names are one class: a path may turn from one into the other. */
function typeClass(e: Entry): string {
  return e.kind === 'hardlink' ? 'file' : e.kind;
}

/** A name is linked to a freshly written file, never to one left in the lower layer. */
function checkHardlinkHeads(writes: readonly Entry[]): void {
  const written = new Set(writes.map((w) => w.path));
  for (const w of writes) {
    if (w.kind === 'hardlink' && !written.has(w.linkTo)) {
      throw new DeltaimgError(
        'INTERNAL',
        `layer-sync: ${displayPath(w.path)} would link to ${displayPath(w.linkTo)}, which is not rewritten`,
      );
    }
  }
}

/**
 * The masked paths: each must exist in A (else the builder's stand-in lands in the layer), and
 * A and B must agree on everything at and below it (nothing can be written there). The one
 * exception is a file stand-in (removed by the builder after the RUN) whose parent directory the
 * fix-up tree puts right; those parents are returned.
 */
function checkMaskedPaths(
  masked: readonly RelPath[],
  a: TreeIndex,
  b: TreeIndex,
  liveRoot: string,
  fixupRoot: string | undefined,
): { disturbed: RelPath[]; notCarried: NotCarried[] } {
  const disturbed: RelPath[] = [];
  const notCarried: NotCarried[] = [];
  for (const m of masked) {
    const fixedParent = a.get(m) ? undefined : repairedParent(m, a, b, liveRoot, fixupRoot);
    if (!a.get(m) && fixedParent === undefined) {
      throw new DeltaimgError(
        'DOCKER',
        `--layered needs ${displayPath(m)} in the base image: docker build mounts over it during RUN and leaves an empty stand-in in the new layer; apply without --layered`,
      );
    }
    if (fixedParent !== undefined) disturbed.push(fixedParent);
    const differing = [
      ...b.entries.filter((e) => {
        if (!isUnder(e.path, m)) return false;
        const old = a.get(e.path);
        return !old || compareEntries(old, e).length > 0;
      }),
      ...a.entries.filter((e) => isUnder(e.path, m) && !b.get(e.path)),
    ];
    const differs = differing[0];
    if (differs && RUNTIME_MOUNTS.has(m)) {
      notCarried.push({ mount: m, paths: differing.length, example: differs.path });
    } else if (differs) {
      throw new DeltaimgError(
        'DOCKER',
        `--layered cannot restore ${displayPath(differs.path)}: docker build mounts its own ${displayPath(m)} during RUN, so B's change there cannot be written; apply without --layered`,
      );
    }
  }
  return { disturbed, notCarried };
}

/** One line for the build log: what B' keeps as A has it, and why that does not matter. */
export function notCarriedLine(notCarried: readonly NotCarried[]): string | undefined {
  if (!notCarried.length) return undefined;
  const parts = notCarried.map(
    (n) => `${n.paths} ${n.paths === 1 ? 'entry' : 'entries'} under ${displayPath(n.mount)} (e.g. ${displayPath(n.example)})`,
  );
  const mounts = notCarried.map((n) => displayPath(n.mount)).join(', ');
  return `not carried, kept as the base has them: ${parts.join(', ')}; no container sees them: Docker mounts its own ${mounts}`;
}

/**
 * For a mount point A lacks: its parent, when the stand-in is a file (the builder removes it
 * afterwards), B lacks the path too, and the fix-up tree holds the parent as B has it.
 */
function repairedParent(m: RelPath, a: TreeIndex, b: TreeIndex, liveRoot: string, fixupRoot: string | undefined): RelPath | undefined {
  const parent = parentOf(m);
  if (fixupRoot === undefined || parent === '' || b.get(m) || a.get(parent)?.kind !== 'dir') return undefined;
  if (entryAt(liveRoot, m)?.kind === 'dir') return undefined;
  const [want, fix] = [b.get(parent), entryAt(fixupRoot, parent)];
  return want && fix && compareEntries(fix, want).length === 0 ? parent : undefined;
}

/** Removals, then new entries in path order (hardlinks last), then metadata, directories deepest first. */
async function carryOut(plan: Plan, liveRoot: string, targetRoot: string, b: TreeIndex): Promise<number> {
  const report = newRestoreReport();
  for (const p of plan.removals) await rm(toFsPath(liveRoot, p), { recursive: true });
  let bytes = 0;
  for (const e of plan.writes) {
    if (e.kind === 'hardlink') continue;
    if (e.kind === 'file') bytes += await copyVerified(e, liveRoot, targetRoot);
    else await createNode(liveRoot, e, report);
    if (e.kind !== 'dir') await applyMetadata(toFsPath(liveRoot, e.path), e, report);
  }
  for (const e of plan.writes) if (e.kind === 'hardlink') await createNode(liveRoot, e, report);
  for (const e of plan.metadata) await applyMetadata(toFsPath(liveRoot, e.path), e, report);
  for (const p of [...plan.dirs].sort((x, y) => compareRel(y, x))) await applyMetadata(toFsPath(liveRoot, p), b.get(p)!, report);
  failOnSkipped(report);
  return bytes;
}

/** Copies B's file into the live root and checks the written bytes against B's sha256. */
async function copyVerified(e: FileEntry, liveRoot: string, targetRoot: string): Promise<number> {
  await copyFileEntry(liveRoot, e, toFsPath(targetRoot, e.path));
  const written = await sha256File(toFsPath(liveRoot, e.path));
  if (written !== e.sha256) {
    throw new DeltaimgError(
      'VERIFY_FAILED',
      `${displayPath(e.path)} written to the new layer does not match the restored target (sha256 ${written.slice(0, 12)}...)`,
    );
  }
  return e.size;
}

function failOnSkipped(report: RestoreReport): void {
  const line = summarizeReport(report);
  if (line) throw new DeltaimgError('VERIFY_FAILED', `--layered needs an exact copy: ${line.replace(/^warning: /, '')}`);
}

/** The last check: the live root, walked again outside the masked paths, equals B. */
async function verifyLiveRoot(liveRoot: string, masked: readonly RelPath[], b: TreeIndex): Promise<void> {
  const inScope = (p: RelPath): boolean => p !== '' && !masked.some((m) => isUnder(p, m));
  const live = (await walkLiveRoot(liveRoot, new Set(masked))).filter((e) => inScope(e.path));
  const want = b.entries.filter((e) => inScope(e.path)).map((e) => (e.kind === 'file' ? { ...e, sha256: undefined } : e));
  const diffs: string[] = [];
  let i = 0;
  let j = 0;
  while ((i < live.length || j < want.length) && diffs.length === 0) {
    const [got, exp] = [live[i], want[j]];
    const order = !got ? 1 : !exp ? -1 : compareRel(got.path, exp.path);
    if (order < 0) diffs.push(`${displayPath(got!.path)} should not be there`);
    else if (order > 0) diffs.push(`${displayPath(exp!.path)} is missing`);
    else diffs.push(...compareEntries(got!, exp!).map((d) => `${displayPath(got!.path)}: ${d}`));
    if (order <= 0) i++;
    if (order >= 0) j++;
  }
  if (diffs.length) {
    throw new DeltaimgError(
      'VERIFY_FAILED',
      `the new layer would not give the target tree: ${diffs[0]} (expected as in the restored target)`,
    );
  }
}
