/**
 * Entry-by-entry comparison of two snapshots, for tests and `deltaimg verify`, and the one
 * metadata equality (sameMetadata) diff and layer-sync use.
 * Content is compared by sha256 when both sides were scanned with { hash: true }
 * (and by size always); hardlink groups by their first name (linkTo).
 */
import type { Entry, Metadata } from './entry.js';
import type { TreeSnapshot } from './scan.js';
import { compareRel, displayPath } from './paths.js';

/** Human-readable differences, one line each, in path order; [] when the trees are equal. */
export function compareTrees(a: TreeSnapshot, b: TreeSnapshot): string[] {
  const diffs: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.entries.length || j < b.entries.length) {
    const ea = a.entries[i];
    const eb = b.entries[j];
    const order = ea === undefined ? 1 : eb === undefined ? -1 : compareRel(ea.path, eb.path);
    if (order < 0) {
      diffs.push(`${displayPath(ea!.path)}: only in ${a.root} (${ea!.kind})`);
      i++;
    } else if (order > 0) {
      diffs.push(`${displayPath(eb!.path)}: only in ${b.root} (${eb!.kind})`);
      j++;
    } else {
      diffs.push(...compareEntries(ea!, eb!).map((d) => `${displayPath(ea!.path)}: ${d}`));
      i++;
      j++;
    }
  }
  return diffs;
}

/** Differences between two entries at the same path, without the path prefix. */
export function compareEntries(a: Entry, b: Entry): string[] {
  if (a.kind !== b.kind) return [`type ${a.kind} vs ${b.kind}`];
  return [...compareBody(a, b), ...compareMetadata(a.meta, b.meta)];
}

function compareBody(a: Entry, b: Entry): string[] {
  const out: string[] = [];
  if (a.kind === 'file' && b.kind === 'file') {
    if (a.size !== b.size) out.push(`size ${a.size} vs ${b.size}`);
    else if (a.sha256 !== b.sha256) out.push(`content sha256 ${short(a.sha256)} vs ${short(b.sha256)}`);
  } else if (a.kind === 'symlink' && b.kind === 'symlink') {
    if (a.target !== b.target) out.push(`symlink target ${quote(a.target)} vs ${quote(b.target)}`);
  } else if (a.kind === 'hardlink' && b.kind === 'hardlink') {
    if (a.linkTo !== b.linkTo) out.push(`hardlink to ${displayPath(a.linkTo)} vs ${displayPath(b.linkTo)}`);
  } else if ((a.kind === 'chardev' || a.kind === 'blockdev') && (b.kind === 'chardev' || b.kind === 'blockdev')) {
    if (a.major !== b.major || a.minor !== b.minor) out.push(`device ${a.major}:${a.minor} vs ${b.major}:${b.minor}`);
  }
  return out;
}

/**
 * The one metadata equality (mode, owner, ns mtime, xattrs by name): what diff counts as
 * unchanged and layer-sync leaves alone. Cheap when equal in the usual order.
 */
export function sameMetadata(a: Metadata, b: Metadata): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.mtimeNs === b.mtimeNs && sameXattrs(a, b);
}

/** The same xattr names with the same values, in any order. */
export function sameXattrs(a: Metadata, b: Metadata): boolean {
  if (a.xattrs.length !== b.xattrs.length) return false;
  const inOrder = a.xattrs.every((x, i) => x.name === b.xattrs[i]!.name && x.value.equals(b.xattrs[i]!.value));
  return inOrder || compareXattrs(a, b).length === 0;
}

function compareMetadata(a: Metadata, b: Metadata): string[] {
  const out: string[] = [];
  if (a.mode !== b.mode) out.push(`mode ${octal(a.mode)} vs ${octal(b.mode)}`);
  if (a.uid !== b.uid || a.gid !== b.gid) out.push(`owner ${a.uid}:${a.gid} vs ${b.uid}:${b.gid}`);
  if (a.mtimeNs !== b.mtimeNs) out.push(`mtime ${formatNs(a.mtimeNs)} vs ${formatNs(b.mtimeNs)}`);
  out.push(...compareXattrs(a, b));
  return out;
}

function compareXattrs(a: Metadata, b: Metadata): string[] {
  const out: string[] = [];
  const bByName = new Map(b.xattrs.map((x) => [x.name, x.value]));
  for (const { name, value } of a.xattrs) {
    const other = bByName.get(name);
    if (other === undefined) out.push(`xattr ${name} only in the first tree`);
    else if (!value.equals(other)) out.push(`xattr ${name} value differs`);
    bByName.delete(name);
  }
  for (const name of bByName.keys()) out.push(`xattr ${name} only in the second tree`);
  return out;
}

function short(sha: string | undefined): string {
  return sha === undefined ? '(not hashed)' : `${sha.slice(0, 12)}...`;
}

function quote(target: string): string {
  return JSON.stringify(displayPath(target).slice(1));
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

/** "seconds.nanoseconds" since the epoch: exact, and readable enough in a diff line. */
function formatNs(ns: bigint): string {
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  return `${sign}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, '0')}`;
}
