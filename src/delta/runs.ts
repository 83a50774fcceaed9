/**
 * The entries coding of format v3 ("runs"): the target tree written as the edit of the source
 * tree's listing, so that what equals the source costs nothing (docs/format.md, "Records, v3").
 *
 * Both sides walk the source entries in path order with one cursor. A line either keeps or drops
 * the next `n` source entries, or gives one target entry: without `path` it is the next source
 * entry changed (every field left out is the source entry's), with `path` a new entry (or, at the
 * cursor's own path, one that replaces the source entry whole). mtimes are coded as the difference
 * from the last mtime a line gave (`dt`), so a rebuild that stamps files with equal or nearby
 * times pays for the difference only. After the entries come the per-directory digests.
 */
import type { Entry, EntryKind, RelPath } from '../tree/entry.js';
import { sameMetadata, sameXattrs } from '../tree/compare.js';
import { displayPath } from '../tree/paths.js';
import { DeltaimgError } from '../util/errors.js';
import { DIR_DIGEST_BYTES } from './digest.js';
import type { DeltaRecord, RecordMeta } from './format.js';
import {
  bad,
  bytesFromJson,
  bytesToJson,
  decimalNs,
  decodeContent,
  decodeMode,
  decodeXattrs,
  device,
  encodeXattrs,
  id,
  inMtimeRange,
  kindFields,
  parseLine,
  MAX_MAJOR,
  MAX_MINOR,
  sha,
  shaPrefix,
  uint,
} from './records.js';

/** Directory digests per `dirs` line: 8 hex digits each, 1 MiB of text at most. */
const DIGESTS_PER_LINE = 128 * 1024;

/** Turns the target's records, fed in path order, into lines against the source entries. */
export class RunsEncoder {
  private cursor = 0;
  private run: { op: 'keep' | 'drop'; count: number } | undefined;
  private reference = 0n;

  constructor(
    private readonly source: readonly Entry[],
    private readonly emit: (line: string) => Promise<void>,
  ) {}

  async add(r: DeltaRecord): Promise<void> {
    await this.dropBefore(r.path);
    const next = this.source[this.cursor];
    const base = next !== undefined && next.path === r.path ? next : undefined;
    if (base) this.cursor++;
    if (base && r.path !== '' && unchanged(base, r)) return this.extend('keep');
    await this.flushRun();
    // The root is always written whole: where the delta sits inside the source root (the
    // Docker workflow's /__delta__), the root's own metadata there is not the base's.
    const line = r.path === '' ? entryLine(r, undefined, this.reference, true) : entryLine(r, base, this.reference, false);
    if (line.dt !== undefined) this.reference = r.meta.mtimeNs;
    await this.emit(JSON.stringify(line.json));
  }

  /** Drops what is left of the source, then writes the directory digests (in path order of the target's directories). */
  async finish(dirDigests: readonly Buffer[]): Promise<void> {
    await this.dropBefore(undefined);
    await this.flushRun();
    for (let i = 0; i < dirDigests.length; i += DIGESTS_PER_LINE) {
      await this.emit(JSON.stringify({ dirs: Buffer.concat(dirDigests.slice(i, i + DIGESTS_PER_LINE)).toString('hex') }));
    }
  }

  /** Source entries before `path` (all that are left when undefined) are not in the target. */
  private async dropBefore(path: RelPath | undefined): Promise<void> {
    while (this.cursor < this.source.length && (path === undefined || this.source[this.cursor]!.path < path)) {
      await this.extend('drop');
      this.cursor++;
    }
  }

  private async extend(op: 'keep' | 'drop'): Promise<void> {
    if (this.run?.op !== op) await this.flushRun();
    if (this.run) this.run.count++;
    else this.run = { op, count: 1 };
  }

  private async flushRun(): Promise<void> {
    if (!this.run) return;
    const { op, count } = this.run;
    this.run = undefined;
    await this.emit(JSON.stringify(op === 'keep' ? { keep: count } : { drop: count }));
  }
}

/** True when the target entry is the source entry as it is: same kind, metadata and content. */
function unchanged(s: Entry, r: DeltaRecord): boolean {
  if (s.kind !== r.kind || !sameMetadata(s.meta, r.meta)) return false;
  switch (r.kind) {
    case 'file':
      return s.kind === 'file' && r.content.op === 'same' && s.size === r.size;
    case 'symlink':
      return s.kind === 'symlink' && s.target === r.target;
    case 'hardlink':
      return s.kind === 'hardlink' && s.linkTo === r.linkTo;
    case 'chardev':
    case 'blockdev':
      return (s.kind === 'chardev' || s.kind === 'blockdev') && s.major === r.major && s.minor === r.minor;
    case 'dir':
    case 'fifo':
      return true;
  }
}

/**
 * One entry's line: the fields that differ from `base` (all of them without one). `whole`
 * writes a record at the base's own path with every field (no defaults from the source).
 */
function entryLine(
  r: DeltaRecord,
  base: Entry | undefined,
  reference: bigint,
  whole: boolean,
): { json: Record<string, unknown>; dt?: bigint } {
  const o: Record<string, unknown> = {};
  if (!base || whole) o.path = bytesToJson(r.path);
  const from = whole ? undefined : base;
  if (from?.kind !== r.kind) o.kind = r.kind;
  if (from?.meta.mode !== r.meta.mode) o.mode = r.meta.mode;
  if (from?.meta.uid !== r.meta.uid) o.uid = r.meta.uid;
  if (from?.meta.gid !== r.meta.gid) o.gid = r.meta.gid;
  let dt: bigint | undefined;
  // Without a base an mtime equal to the last one given costs nothing either.
  if (from ? from.meta.mtimeNs !== r.meta.mtimeNs : r.meta.mtimeNs !== reference) {
    dt = r.meta.mtimeNs - reference;
    o.dt = dt.toString();
  }
  if (from ? !sameXattrs(from.meta, r.meta) : r.meta.xattrs.length > 0) o.xattrs = encodeXattrs(r.meta.xattrs);
  Object.assign(o, kindFields(r, from?.kind === r.kind ? from : undefined));
  return { json: o, dt };
}

/**
 * Expands the lines of a v3 entries file against the source entries (apply's scan of SRC) back
 * into the records of the target tree, validating every field. A line that does not fit the
 * source (a run past its end, a new path the source has, entries left over) means SRC is not the
 * delta's base there: refused naming the path.
 */
export class RunsDecoder {
  private cursor = 0;
  private reference = 0n;
  private readonly digests: Buffer[] = [];
  /** The path of the last record given out. */
  private last: RelPath | undefined;

  constructor(
    private readonly source: readonly Entry[],
    private readonly srcRoot: string,
  ) {}

  /** Expands one line; `out` gets each record, with whether its path came from SRC (kept or changed) or from the line. */
  decode(text: string, line: number, out: (r: DeltaRecord, fromSource: boolean) => void): void {
    const o = parseLine(text, line);
    if (o.dirs !== undefined) return this.dirDigests(o, line);
    if (this.digests.length > 0) throw bad(line, 'comes after the directory digests');
    if (o.keep !== undefined || o.drop !== undefined) {
      return this.run(o, line, (r) => {
        this.last = r.path;
        out(r, true);
      });
    }
    const r = this.entry(o, line);
    this.last = r.path;
    out(r, o.path === undefined);
  }

  /** The directory digests, once every line is read: the source must have been used up. */
  finish(): Buffer[] {
    const left = this.source[this.cursor];
    if (left) throw this.misfit(left.path, 'which the delta does not mention');
    return this.digests;
  }

  private run(o: Record<string, unknown>, line: number, out: (r: DeltaRecord) => void): void {
    if (Object.keys(o).length !== 1) throw bad(line, 'has a run with other fields');
    const keep = o.keep !== undefined;
    const count = uint(keep ? o.keep : o.drop, keep ? 'keep' : 'drop', line);
    if (count === 0) throw bad(line, `has an empty ${keep ? 'keep' : 'drop'} run`);
    if (count > this.source.length - this.cursor) {
      throw new DeltaimgError(
        'WRONG_SOURCE',
        `${this.srcRoot} has fewer entries than the delta's base (line ${line} ${keep ? 'keeps' : 'drops'} ${count} past ` +
          `${displayPath(this.source[this.source.length - 1]?.path ?? '') || '/'}); apply the delta to the tree it was made from`,
      );
    }
    if (keep) for (const e of this.source.slice(this.cursor, this.cursor + count)) out(keptRecord(e));
    this.cursor += count;
  }

  private entry(o: Record<string, unknown>, line: number): DeltaRecord {
    const next = this.source[this.cursor];
    let base: Entry | undefined;
    let path: RelPath;
    if (o.path === undefined) {
      if (!next) throw this.misfit(undefined, `which line ${line} changes`);
      base = next;
      path = next.path;
      this.cursor++;
    } else {
      path = bytesFromJson(o.path, 'path', line) as RelPath;
      if (next && next.path < path) throw this.misfit(next.path, 'which the delta does not mention');
      // Behind what a run already took from SRC: SRC lacks an entry the base had before it.
      if (this.last !== undefined && path <= this.last) {
        throw new DeltaimgError(
          'WRONG_SOURCE',
          `${this.srcRoot} does not match the delta's base before ${displayPath(path) || '/'} (an entry the base had is missing there, ` +
            `or one was added); apply the delta to the tree it was made from`,
        );
      }
      // At the cursor's own path a line with a path replaces the source entry whole.
      if (next && next.path === path) this.cursor++;
    }
    const kind = o.kind === undefined ? base?.kind : entryKind(o.kind, line);
    if (kind === undefined) throw bad(line, 'has no kind');
    const foreign = fieldOfAnotherKind(kind, o);
    if (foreign !== undefined) {
      // Without `kind` the line meant the base's kind: in SRC the entry is of another one.
      if (o.kind === undefined && base) {
        throw new DeltaimgError(
          'WRONG_SOURCE',
          `${this.srcRoot} does not match the delta's base: ${displayPath(base.path) || '/'} is a ${base.kind} there, not what the delta ` +
            `was made against; apply the delta to the tree it was made from`,
        );
      }
      throw bad(line, `has a ${foreign} for a ${kind}`);
    }
    const meta = this.meta(o, base, line);
    const same = base?.kind === kind ? base : undefined;
    const need = (field: string): never => {
      throw bad(line, `has no ${field}`);
    };
    switch (kind) {
      case 'file': {
        if (o.content === undefined) {
          if (same?.kind !== 'file') return need('content');
          return { path, meta, kind, size: same.size, sha256: '', content: { op: 'same' } };
        }
        const content = decodeContent(o.content, line);
        if (content.op === 'same' && same?.kind !== 'file') throw bad(line, 'keeps the content of a file its base does not have');
        const copied = content.op === 'copy' || content.op === 'same';
        const sha256 = copied ? shaPrefix(o.sha256, line) : sha(o.sha256, 'sha256', line);
        return { path, meta, kind, size: uint(o.size, 'size', line), sha256, content };
      }
      case 'symlink':
        if (o.target !== undefined) return { path, meta, kind, target: bytesFromJson(o.target, 'target', line) };
        return same?.kind === 'symlink' ? { path, meta, kind, target: same.target } : need('target');
      case 'hardlink':
        if (o.linkTo !== undefined) return { path, meta, kind, linkTo: bytesFromJson(o.linkTo, 'linkTo', line) as RelPath };
        return same?.kind === 'hardlink' ? { path, meta, kind, linkTo: same.linkTo } : need('linkTo');
      case 'chardev':
      case 'blockdev':
        if (o.major !== undefined || o.minor !== undefined) {
          return { path, meta, kind, major: device(o.major, 'major', MAX_MAJOR, line), minor: device(o.minor, 'minor', MAX_MINOR, line) };
        }
        return same?.kind === kind ? { path, meta, kind, major: same.major, minor: same.minor } : need('major');
      case 'dir':
      case 'fifo':
        return { path, meta, kind };
    }
  }

  private meta(o: Record<string, unknown>, base: Entry | undefined, line: number): RecordMeta {
    const need = (field: string): never => {
      throw bad(line, `has no ${field}`);
    };
    let mtimeNs: bigint;
    if (o.dt !== undefined) {
      mtimeNs = inMtimeRange(this.reference + decimalNs(o.dt, 'dt', line), line);
      this.reference = mtimeNs;
    } else {
      mtimeNs = base ? base.meta.mtimeNs : this.reference;
    }
    return {
      mode: o.mode !== undefined ? decodeMode(o.mode, line) : (base?.meta.mode ?? need('mode')),
      uid: o.uid !== undefined ? id(o.uid, 'uid', line) : (base?.meta.uid ?? need('uid')),
      gid: o.gid !== undefined ? id(o.gid, 'gid', line) : (base?.meta.gid ?? need('gid')),
      mtimeNs,
      xattrs: o.xattrs !== undefined ? decodeXattrs(o.xattrs, line) : (base?.meta.xattrs ?? []),
    };
  }

  private dirDigests(o: Record<string, unknown>, line: number): void {
    const hex = o.dirs;
    if (Object.keys(o).length !== 1 || typeof hex !== 'string' || hex.length % (DIR_DIGEST_BYTES * 2) !== 0 || !/^[0-9a-f]*$/.test(hex)) {
      throw bad(line, 'has invalid directory digests');
    }
    for (let i = 0; i < hex.length; i += DIR_DIGEST_BYTES * 2)
      this.digests.push(Buffer.from(hex.slice(i, i + DIR_DIGEST_BYTES * 2), 'hex'));
  }

  private misfit(path: RelPath | undefined, what: string): DeltaimgError {
    const where = path === undefined ? 'ends before an entry' : `has ${displayPath(path) || '/'}, ${what}`;
    return new DeltaimgError(
      'WRONG_SOURCE',
      `${this.srcRoot} does not match the delta's base: it ${where}; apply the delta to the tree it was made from`,
    );
  }
}

/** A source entry the target keeps as it is; a file's sha256 is filled in when it is copied. */
function keptRecord(e: Entry): DeltaRecord {
  if (e.kind === 'file') return { path: e.path, meta: e.meta, kind: 'file', size: e.size, sha256: '', content: { op: 'same' } };
  return e;
}

/** Fields only some kinds have: a line giving one to another kind is refused, never ignored. */
const KIND_FIELDS: readonly [string, readonly EntryKind[]][] = [
  ['size', ['file']],
  ['sha256', ['file']],
  ['content', ['file']],
  ['target', ['symlink']],
  ['linkTo', ['hardlink']],
  ['major', ['chardev', 'blockdev']],
  ['minor', ['chardev', 'blockdev']],
];

function fieldOfAnotherKind(kind: EntryKind, o: Record<string, unknown>): string | undefined {
  return KIND_FIELDS.find(([field, kinds]) => o[field] !== undefined && !kinds.includes(kind))?.[0];
}

const ENTRY_KINDS: readonly EntryKind[] = ['file', 'dir', 'symlink', 'hardlink', 'chardev', 'blockdev', 'fifo'];

function entryKind(v: unknown, line: number): EntryKind {
  const kind = ENTRY_KINDS.find((k) => k === v);
  if (kind === undefined) throw bad(line, `has unknown kind ${JSON.stringify(v)}`);
  return kind;
}
