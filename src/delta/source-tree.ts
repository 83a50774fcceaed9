/**
 * Read access to the source root for apply. A delta names source files by path; the
 * path is checked component by component so that no directory on the way is a symlink
 * (a crafted delta must not read /etc/shadow through `source/evil -> /etc`), and the
 * file itself is opened with O_NOFOLLOW. Every byte read is then checked by sha256.
 */
import { createHash } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { RelPath } from '../tree/entry.js';
import { displayPath, parentOf, toFsPath } from '../tree/paths.js';
import { DeltaimgError, ioError } from '../util/errors.js';
import { hashSmallFileSync, openSourceStream, readWholeFileSync, Scratch, SYNC_COPY_MAX_BYTES } from './file-codecs.js';
import { hashStream } from '../util/hashing.js';

export class SourceTree {
  private readonly checkedDirs = new Map<RelPath, Promise<void>>();
  private readonly verified = new Map<RelPath, Promise<string>>();
  /** Directories already known to be real directories (the sync twin of checkedDirs). */
  private readonly realDirs = new Set<RelPath>();
  private readonly scratch = new Scratch();

  constructor(readonly root: string) {}

  /** The file's absolute path, after checking that no parent directory is a symlink. */
  async path(rel: RelPath): Promise<Buffer> {
    await this.checkDir(parentOf(rel));
    return toFsPath(this.root, rel);
  }

  /** path(), synchronously: for the per-file fast paths of apply. */
  pathSync(rel: RelPath): Buffer {
    this.checkDirSync(parentOf(rel));
    return toFsPath(this.root, rel);
  }

  /**
   * The whole file in memory, if it has at most `maxBytes`, after checking its sha256:
   * one read serves both the check and the decoder. Null when the file is larger. The bytes
   * live in a reused buffer: valid until the next call.
   */
  readVerifiedSync(rel: RelPath, expectedSha256: string, maxBytes: number): Buffer | null {
    const abs = this.pathSync(rel);
    let bytes: Buffer | null;
    try {
      bytes = readWholeFileSync(abs, maxBytes, this.scratch);
    } catch (err) {
      throw sourceReadError(rel, err);
    }
    if (bytes === null) return null;
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== expectedSha256) throw wrongSource(rel, expectedSha256, actual);
    return bytes;
  }

  async open(rel: RelPath): Promise<Readable> {
    const abs = await this.path(rel);
    return openSourceStream(abs).catch((err: unknown) => {
      throw sourceReadError(rel, err);
    });
  }

  /** Checks the file's sha256 once (a file used as a base by several targets is read once for this). */
  async verify(rel: RelPath, expectedSha256: string, size: number): Promise<void> {
    let hashing = this.verified.get(rel);
    if (!hashing) {
      hashing =
        size <= SYNC_COPY_MAX_BYTES ? this.hashSmall(rel) : this.open(rel).then(async (stream) => (await hashStream(stream)).sha256);
      this.verified.set(rel, hashing);
    }
    const actual = await hashing;
    if (actual !== expectedSha256) throw wrongSource(rel, expectedSha256, actual);
  }

  private async hashSmall(rel: RelPath): Promise<string> {
    const abs = await this.path(rel);
    try {
      return hashSmallFileSync(abs).sha256;
    } catch (err) {
      throw sourceReadError(rel, err);
    }
  }

  /**
   * Every directory from the root down to `rel` must be a real directory (lstat, not a symlink).
   * Iterative: a path of 20,000 components must not exhaust the stack.
   */
  private checkDirSync(rel: RelPath): void {
    for (const dir of this.uncheckedAncestors(rel, (d) => this.realDirs.has(d))) {
      let st;
      try {
        st = lstatSync(toFsPath(this.root, dir));
      } catch (err) {
        throw sourceReadError(dir, err);
      }
      if (!st.isDirectory()) throw notADirectory(dir, st.isSymbolicLink());
      this.realDirs.add(dir);
    }
  }

  /** checkDirSync, asynchronously, each directory checked once however many files ask. */
  private checkDir(rel: RelPath): Promise<void> {
    let check = this.checkedDirs.get(rel);
    if (!check) {
      const unchecked = this.uncheckedAncestors(rel, (d) => this.checkedDirs.has(d));
      const above = unchecked.length > 0 ? parentOf(unchecked[0]!) : rel;
      let previous = above === '' || above === rel ? Promise.resolve() : this.checkedDirs.get(above)!;
      for (const dir of unchecked) {
        previous = previous.then(() => this.checkOneDir(dir));
        this.checkedDirs.set(dir, previous);
      }
      check = previous;
    }
    return check;
  }

  /** The ancestors of `rel` (itself included, the root excluded) below the deepest one `known` accepts, outermost first. */
  private uncheckedAncestors(rel: RelPath, known: (dir: RelPath) => boolean): RelPath[] {
    const dirs: RelPath[] = [];
    for (let dir = rel; dir !== '' && !known(dir); dir = parentOf(dir)) dirs.push(dir);
    return dirs.reverse();
  }

  private async checkOneDir(dir: RelPath): Promise<void> {
    let st;
    try {
      st = await lstat(toFsPath(this.root, dir));
    } catch (err) {
      throw sourceReadError(dir, err);
    }
    if (!st.isDirectory()) throw notADirectory(dir, st.isSymbolicLink());
  }
}

function notADirectory(rel: RelPath, isSymlink: boolean): DeltaimgError {
  return new DeltaimgError(
    'HOSTILE_PATH',
    `refusing to read the source through ${displayPath(rel)}: it is ${isSymlink ? 'a symlink' : 'not a directory'}`,
  );
}

export function wrongSource(rel: RelPath, expected: string, actual: string): DeltaimgError {
  return new DeltaimgError(
    'WRONG_SOURCE',
    `source file ${displayPath(rel)} does not match the delta's base (sha256 ${actual.slice(0, 12)}..., ` +
      `expected ${expected.slice(0, 12)}...); apply the delta to the tree or image it was made from`,
  );
}

export function sourceReadError(rel: RelPath, err: unknown): DeltaimgError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'EINVAL') {
    return new DeltaimgError(
      'WRONG_SOURCE',
      `source file ${displayPath(rel)} is missing or not a regular file; apply the delta to the tree or image it was made from`,
    );
  }
  return ioError('read source file', displayPath(rel), err);
}
