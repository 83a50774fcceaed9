/**
 * What a delta asks of a root apply beyond plain files: device nodes, setuid/setgid bits and
 * trusted.* / security.* xattrs (file capabilities among them). Image roots need all of these,
 * so apply restores them by default; `--no-devices` and `--no-privileged-metadata` refuse a
 * delta that holds them (before anything is written, naming the first), and every apply
 * reports what it restored of them.
 */
import type { RestoreReport } from '../tree/meta.js';
import { displayPath } from '../tree/paths.js';
import { DeltaimgError } from '../util/errors.js';
import type { DeltaRecord } from './format.js';

export interface PrivilegePolicy {
  /** Device nodes (chardev, blockdev) may be created. Default true. */
  devices: boolean;
  /** setuid/setgid bits and trusted.* / security.* xattrs may be set. Default true. */
  privilegedMetadata: boolean;
}

export const PERMISSIVE: PrivilegePolicy = { devices: true, privilegedMetadata: true };

export interface PrivilegedCounts {
  devices: number;
  /** Files and directories with the setuid or setgid bit. */
  setuidSetgid: number;
  /** trusted.* and security.* xattrs (security.capability included). */
  privilegedXattrs: number;
}

const SETID = 0o6000;
const PRIVILEGED_XATTR = /^(?:trusted|security)\./;

const isDevice = (r: DeltaRecord) => r.kind === 'chardev' || r.kind === 'blockdev';
const privilegedXattrs = (r: DeltaRecord) => (r.kind === 'hardlink' ? [] : r.meta.xattrs.filter((x) => PRIVILEGED_XATTR.test(x.name)));
const hasSetid = (r: DeltaRecord) => r.kind !== 'symlink' && r.kind !== 'hardlink' && (r.meta.mode & SETID) !== 0;

/** Throws, naming the first entry, when the records hold what the policy refuses. */
export function enforcePolicy(records: readonly DeltaRecord[], policy: PrivilegePolicy, deltaDir: string): void {
  for (const r of records) {
    const where = displayPath(r.path) || '/';
    if (!policy.devices && (r.kind === 'chardev' || r.kind === 'blockdev')) {
      throw refused(deltaDir, `device node ${where} (${r.kind} ${r.major}:${r.minor})`, '--no-devices');
    }
    if (policy.privilegedMetadata) continue;
    if (hasSetid(r))
      throw refused(
        deltaDir,
        `${where} with mode ${(r.meta.mode & 0o7777).toString(8).padStart(4, '0')} (setuid/setgid)`,
        '--no-privileged-metadata',
      );
    const xattr = privilegedXattrs(r)[0];
    if (xattr) throw refused(deltaDir, `xattr ${xattr.name} on ${where}`, '--no-privileged-metadata');
  }
}

function refused(deltaDir: string, what: string, flag: string): DeltaimgError {
  return new DeltaimgError('POLICY', `${deltaDir} holds ${what}, which ${flag} refuses; nothing was written (drop ${flag} to restore it)`);
}

/** What the apply restored that needs privilege: the records' devices, set-id bits and privileged xattrs, less what the report says was not restored. */
export function countPrivileged(records: readonly DeltaRecord[], report: RestoreReport): PrivilegedCounts {
  const skipped = new Set(report.skipped.map((s) => `${s.what}\0${s.path}`));
  const counts: PrivilegedCounts = { devices: 0, setuidSetgid: 0, privilegedXattrs: 0 };
  for (const r of records) {
    if (isDevice(r) && !skipped.has(`device\0${r.path}`)) counts.devices++;
    if (hasSetid(r)) counts.setuidSetgid++;
    counts.privilegedXattrs += privilegedXattrs(r).length;
  }
  const skippedXattrs = report.skipped.filter((s) => s.what === 'xattr' && PRIVILEGED_XATTR.test(s.reason)).length;
  counts.privilegedXattrs = Math.max(0, counts.privilegedXattrs - skippedXattrs);
  return counts;
}

/** One line for the user, or undefined when nothing privileged was restored. */
export function privilegedLine(c: PrivilegedCounts): string | undefined {
  const parts = [
    [c.devices, 'device node', 'device nodes'],
    [c.setuidSetgid, 'setuid/setgid entry', 'setuid/setgid entries'],
    [c.privilegedXattrs, 'trusted.*/security.* xattr', 'trusted.*/security.* xattrs'],
  ]
    .filter(([n]) => (n as number) > 0)
    .map(([n, one, many]) => `${n} ${n === 1 ? one : many}`);
  return parts.length
    ? `restored with privilege: ${parts.join(', ')} (refuse them with --no-devices / --no-privileged-metadata)`
    : undefined;
}
