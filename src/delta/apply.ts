/**
 * `deltaimg apply`: rebuilds the target tree from a source tree and a delta into a
 * temp dir beside OUT_ROOT, verifies every restored file's sha256, and renames the
 * result into place only when all of it is right.
 */
import { constants as fsc, createReadStream, mkdirSync, realpathSync, symlinkSync } from 'node:fs';
import type { RelPath } from '../tree/entry.js';
import { availableParallelism } from 'node:os';
import { copyFile, lstat, rm } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { applyDirectoryMetadata, applyMetadataSync, type RestoreReport } from '../tree/meta.js';
import { displayPath, relPathFromUtf8, toFsPath } from '../tree/paths.js';
import { scanTree } from '../tree/scan.js';
import { createNode } from '../tree/write.js';
import { bsdiffDecode, BSDIFF_DECODE_MEMORY } from '../bsdiff/index.js';
import { MAX_WINDOW, vcdiffDecodeMemory, VcdiffPool } from '../vcdiff/index.js';
import { buildDirAtomically, makeScratchDir } from '../util/atomic-output.js';
import { vcdiffMaxBytes } from '../util/byte-limit.js';
import { DeltaimgError, ioError, isDeltaimgError } from '../util/errors.js';
import { Limiter } from '../util/limiter.js';
import { defaultMemoryBudget, idleWorkerShare, MemoryBudget, WORKER_THREAD_BYTES } from '../util/memory-budget.js';
import { formatBytes, silentProgress, type Progress } from '../util/progress.js';
import { DirDigests, TreeDigest } from './digest.js';
import { readEntries, readEntryLines } from './entries-file.js';
import { RunsDecoder } from './runs.js';
import {
  copyFilesNative,
  restoreFile,
  writeSmallFileSync,
  type NativeCopyJob,
  type NativeCopyResult,
  type Written,
} from './file-codecs.js';
import { assembledBound, usesTargetParts, type AssembledOp, type DeltaHeader, type DeltaRecord, type FileRecord } from './format.js';
import { writeAssembledSource } from './assembled-source.js';
import { checkExeFits, decodeTransformedFile } from './exe-codec.js';
import { restoreGzipMember } from './gzip-member.js';
import { readHeader } from './header.js';
import { countPrivileged, enforcePolicy, PERMISSIVE, type PrivilegedCounts, type PrivilegePolicy } from './privilege.js';
import { verifyOnDisk } from './verify-disk.js';
import { PayloadReader } from './payload-store.js';
import { hashStream } from '../util/hashing.js';
import { checkTargetParts, RecordChecker } from './record-checks.js';
import { checkCopied, IN_MEMORY_MAX_BYTES, SmallFileRestorer, verifyWritten, withPath } from './restore-small.js';
import { sourceReadError, SourceTree } from './source-tree.js';

export interface ApplyOptions {
  /** What the delta may restore that needs privilege (devices, set-id bits, trusted/security xattrs); default all. */
  policy?: PrivilegePolicy;
  progress?: Progress;
  /** Made with recycleBytes: idleWorkerShare(memoryBytes) when memoryBytes is given. */
  pool?: VcdiffPool;
  /** The memory budget in bytes (`--memory`; default defaultMemoryBudget()): large restores are admitted by their estimated peak. */
  memoryBytes?: number;
}

export interface ApplyResult {
  header: DeltaHeader;
  entries: number;
  files: number;
  bytes: number;
  /** What could not be restored (ownership, devices, some xattrs when not root). */
  report: RestoreReport;
  /** What was restored that needs privilege. */
  privileged: PrivilegedCounts;
}

export async function applyDelta(srcRoot: string, deltaDir: string, outRoot: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const header = await readHeader(deltaDir);
  const memoryBytes = opts.memoryBytes ?? defaultMemoryBudget();
  admitRecords(header, memoryBytes, deltaDir);
  const { records, dirDigests } = await loadRecords(srcRoot, deltaDir, header);
  enforcePolicy(records, opts.policy ?? PERMISSIVE, deltaDir);
  const progress = opts.progress ?? silentProgress;
  const pool = opts.pool ?? new VcdiffPool({ recycleBytes: idleWorkerShare(memoryBytes) });
  // The pack (v3) is held decompressed for the whole restore.
  const budget = new MemoryBudget(
    memoryBytes,
    pool.size * (pool.recycleBytes + WORKER_THREAD_BYTES) + IN_MEMORY_RESTORE_BYTES + (header.pack?.bytes ?? 0),
  );
  // Inline payloads are spooled to a scratch dir beside OUT_ROOT (same filesystem as the output).
  const scratch = await makeScratchDir(dirname(resolve(outRoot)), `.${basename(outRoot)}.deltaimg-scratch-`).catch((err: unknown) => {
    throw ioError('create a scratch directory beside', outRoot, err instanceof DeltaimgError ? err.cause : err);
  });
  try {
    return await buildDirAtomically(outRoot, async (work) => {
      const payloads = new PayloadReader(deltaDir, scratch.path);
      if (header.pack) await payloads.loadPack(header.pack);
      const restorer = new Restorer(work, new SourceTree(srcRoot), payloads, pool, progress, budget);
      await restorer.restore(records);
      verifyTargetDigest(records, header, srcRoot, dirDigests);
      verifyOnDisk(work, records, restorer.report);
      const privileged = countPrivileged(records, restorer.report);
      return { header, entries: records.length, files: restorer.files, bytes: restorer.bytes, report: restorer.report, privileged };
    });
  } finally {
    progress.done();
    await scratch.remove();
    if (!opts.pool) await pool.close();
  }
}

/**
 * Apply holds every record in memory (directories first, hardlinks and directory metadata
 * last need them all): about 400 bytes per record plus twice its JSON text, measured at
 * 0.99 GB RSS for 1.7 M records of 150 bytes. A header announcing more than the budget is
 * refused before reading (readEntries refuses more records or bytes than announced), so a
 * 2 MB delta cannot make apply take gigabytes.
 */
function admitRecords(header: DeltaHeader, memoryBytes: number, deltaDir: string): void {
  // A v3 entries file has fewer lines than the target has entries: its unchanged ones come from SRC.
  const needs = Math.max(header.entries.count, header.target.entries) * RECORD_OVERHEAD_BYTES + header.entries.rawBytes * 2;
  if (needs > memoryBytes) {
    throw new DeltaimgError(
      'POLICY',
      `${deltaDir} holds ${header.entries.count} entries (${formatBytes(header.entries.rawBytes)} of records), which need about ` +
        `${formatBytes(needs)} of memory to apply, more than the ${formatBytes(memoryBytes)} budget; give apply --memory ${Math.ceil((needs * 1.25) / 2 ** 30)}G`,
    );
  }
}

const RECORD_OVERHEAD_BYTES = 400;

/**
 * All records, structurally checked. A v3 (`runs`) entries file is expanded against a scan of
 * SRC (without the delta itself when it lies inside SRC, as in the Docker workflow); it also
 * gives the per-directory digests checked at the end.
 */
export async function loadRecords(
  srcRoot: string,
  deltaDir: string,
  header: DeltaHeader,
): Promise<{ records: DeltaRecord[]; dirDigests?: Buffer[] }> {
  const checker = new RecordChecker();
  const records: DeltaRecord[] = [];
  const add = (r: DeltaRecord) => {
    checker.check(r);
    records.push(r);
  };
  const file = join(deltaDir, header.entries.file);
  if (header.entries.coding === 'records') {
    for await (const r of readEntries(file, header.entries)) add(r);
    checkTargetParts(records);
    return { records };
  }
  const source = await scanTree(srcRoot, { skip: deltaInside(srcRoot, deltaDir) });
  const decoder = new RunsDecoder(source.entries, srcRoot);
  // A path taken from SRC that breaks the tree's structure (its parent dropped, out of order)
  // means the runs no longer line up with SRC: an entry added or missing before it.
  const addFromRuns = (r: DeltaRecord, fromSource: boolean) => {
    try {
      add(r);
    } catch (err) {
      if (!fromSource || !isDeltaimgError(err) || err.code !== 'HOSTILE_PATH') throw err;
      throw new DeltaimgError(
        'WRONG_SOURCE',
        `${srcRoot} does not match the delta's base at ${displayPath(r.path) || '/'} (an entry the base did not have was added ` +
          `before it, or one it had is missing); apply the delta to the tree it was made from`,
      );
    }
  };
  for await (const { text, line } of readEntryLines(file, header.entries)) decoder.decode(text, line, addFromRuns);
  const dirDigests = decoder.finish();
  checkTargetParts(records);
  return { records, dirDigests };
}

/** The delta directory's path below SRC, when it lies there: left out of the source. */
function deltaInside(srcRoot: string, deltaDir: string): Set<RelPath> | undefined {
  let rel: string;
  try {
    rel = relative(realpathSync(srcRoot), realpathSync(deltaDir));
  } catch {
    return undefined;
  }
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return undefined;
  return new Set([relPathFromUtf8(rel.split(sep).join('/'))]);
}

/**
 * The last check before OUT_ROOT appears: the restored tree (with the full sha256 of every
 * file, including those copied from the source) must have the digest the delta was made for.
 * With directory digests (v3) the first directory that differs is named: where SRC is not the
 * delta's base (a file's bytes or an entry's metadata taken from SRC differ).
 */
function verifyTargetDigest(records: readonly DeltaRecord[], header: DeltaHeader, srcRoot: string, dirDigests?: Buffer[]): void {
  const digest = new TreeDigest();
  const dirs = new DirDigests();
  for (const r of records) {
    digest.add(r);
    if (dirDigests) dirs.add(r);
  }
  if (dirDigests) {
    const restored = dirs.digests();
    if (restored.length !== dirDigests.length) {
      throw new DeltaimgError(
        'CORRUPT_DELTA',
        `the delta holds ${dirDigests.length} directory digests for ${restored.length} directories; the delta is damaged, make it again`,
      );
    }
    const differs = restored.filter((d, i) => !d.digest.equals(dirDigests[i]!));
    if (differs.length > 0) {
      const others = differs.length > 1 ? ` and ${differs.length - 1} other director${differs.length > 2 ? 'ies' : 'y'}` : '';
      throw new DeltaimgError(
        'WRONG_SOURCE',
        `the tree rebuilt from ${srcRoot} differs from the delta's target in directory ${displayPath(differs[0]!.path) || '/'}${others} ` +
          `(entries' bytes or metadata taken from the source are not the base's); apply the delta to the tree or image it was made from`,
      );
    }
  }
  if (digest.digest() !== header.target.treeSha256) {
    throw new DeltaimgError(
      'WRONG_SOURCE',
      `the tree rebuilt from ${srcRoot} does not match the delta's target (tree sha256 differs); apply the delta to the tree or image it was made from`,
    );
  }
}

class Restorer {
  readonly report: RestoreReport = { skipped: [] };
  files = 0;
  bytes = 0;
  private readonly limiter: Limiter;
  private totalFiles = 0;
  private totalBytes = 0;
  private lastYield = Date.now();
  private readonly small: SmallFileRestorer;
  /** The target files written so far, read as parts of assembled sources. */
  private readonly restored: SourceTree;

  constructor(
    private readonly out: string,
    private readonly source: SourceTree,
    private readonly payloads: PayloadReader,
    private readonly pool: VcdiffPool,
    private readonly progress: Progress,
    private readonly budget: MemoryBudget,
  ) {
    this.limiter = new Limiter(Math.max(2, availableParallelism() * 2));
    this.restored = new SourceTree(out);
    this.small = new SmallFileRestorer(out, source, payloads, this.report, this.restored);
  }

  /**
   * Directories first (in path order, so parents exist), then the files: unchanged ones
   * copied by the native addon's thread, small ones right here, synchronously and from
   * memory (SmallFileRestorer), large ones as parallel jobs (kernel copies, worker decodes); then the other nodes, hardlinks once their files exist, and directory
   * metadata last, deepest first, so writing children does not disturb a directory's mtime.
   *
   * Writing through plain paths is safe: the records were checked (RecordChecker) to name a
   * directory of the target as every entry's parent, and this fresh tree's directories are all
   * made here by mkdir before anything else, so no path can lead through a symlink.
   */
  async restore(records: DeltaRecord[]): Promise<void> {
    const files = records.filter((r): r is FileRecord => r.kind === 'file');
    this.totalFiles = files.length;
    this.totalBytes = files.reduce((n, f) => n + f.size, 0);
    for (const r of records) if (r.kind === 'dir' && r.path !== '') this.makeDirectory(r);
    const jobs: Promise<void>[] = [];
    const copies = this.startNativeCopies(files);
    // Files assembled from other target files wait until every other file is written and verified.
    const later = files.filter(usesTargetParts);
    try {
      for (const f of files) {
        if (copies.handles.has(f) || usesTargetParts(f)) continue;
        await this.restoreOne(f, jobs);
      }
      for (const r of records) {
        if (r.kind === 'file' || r.kind === 'dir' || r.kind === 'hardlink') continue;
        await this.makeOtherNode(r);
      }
      await Promise.all(jobs);
      await copies.done;
      for (const f of later) await this.restoreOne(f, jobs);
      await Promise.all(jobs);
    } finally {
      await Promise.allSettled([...jobs, copies.done]);
    }
    for (const r of records) if (r.kind === 'hardlink') await createNode(this.out, r, this.report);
    await applyDirectoryMetadata(this.out, records, this.report);
  }

  /** Restores `f` right here when it fits in memory, else starts a parallel job for it (added to `jobs`). */
  private async restoreOne(f: FileRecord, jobs: Promise<void>[]): Promise<void> {
    if (await this.small.restore(f)) {
      this.count(f);
    } else {
      const job = this.limiter.run(() => this.restoreFile(f));
      job.catch(() => {});
      jobs.push(job);
    }
    await this.yieldNowAndThen();
  }

  /**
   * Hands the copies of unchanged and moved files (up to IN_MEMORY_MAX_BYTES, without xattrs)
   * to the native addon's background thread, which hashes them as it copies and restores their
   * metadata, while this thread restores the rest; `done` checks every result. Empty when the
   * addon cannot: those files are then copied here.
   */
  private startNativeCopies(files: readonly FileRecord[]): { handles: Set<FileRecord>; done: Promise<void> } {
    const picked = files.filter((f) => isSourceCopy(f) && f.size <= IN_MEMORY_MAX_BYTES && f.meta.xattrs.length === 0);
    const jobs: NativeCopyJob[] = picked.map((f) => ({
      source: this.source.pathSync(copiedFrom(f)),
      output: toFsPath(this.out, f.path),
      uid: f.meta.uid,
      gid: f.meta.gid,
      mode: f.meta.mode,
      mtimeNs: f.meta.mtimeNs,
    }));
    const running = jobs.length > 0 ? copyFilesNative(jobs) : null;
    if (!running) return { handles: new Set(), done: Promise.resolve() };
    const done = running.then((results) => results.forEach((result, i) => this.finishNativeCopy(picked[i]!, result)));
    done.catch(() => {});
    return { handles: new Set(picked), done };
  }

  /** Turns one native copy's outcome into the same checks, errors and report as copySmallFileSync + finish. */
  private finishNativeCopy(r: FileRecord, result: NativeCopyResult): void {
    const from = copiedFrom(r);
    const fail = (code: string) => Object.assign(new Error(`${result.step} failed`), { code });
    switch (result.step) {
      case 'done':
        break;
      case 'open-source':
      case 'not-a-file':
      case 'read':
        throw sourceReadError(from, fail(result.code));
      case 'chmod':
        throw ioError('set the mode of', displayPath(r.path), fail(result.code));
      case 'utimes':
        throw ioError('set the mtime of', displayPath(r.path), fail(result.code));
      default:
        throw withPath(r, fail(result.code));
    }
    verifyWritten(r, checkCopied(r, from, { bytes: result.bytes, sha256: result.sha256 }));
    if (result.chownCode) this.ownerNotRestored(r, result.chownCode);
    this.count(r);
  }

  /** As tree/meta.ts's applyOwner: a refused chown is reported, anything else is an error. */
  private ownerNotRestored(r: FileRecord, code: string): void {
    if (!OWNER_NOT_PERMITTED.has(code)) throw ioError('set the owner of', displayPath(r.path), Object.assign(new Error(code), { code }));
    const who = process.getuid?.() === 0 ? code : `${code} (not running as root)`;
    this.report.skipped.push({ what: 'owner', path: r.path, reason: `uid ${r.meta.uid} gid ${r.meta.gid}: ${who}` });
  }

  private makeDirectory(r: DeltaRecord): void {
    try {
      mkdirSync(toFsPath(this.out, r.path), 0o700);
    } catch (err) {
      throw ioError('create dir', displayPath(r.path), err);
    }
  }

  private async makeOtherNode(r: Exclude<DeltaRecord, FileRecord>): Promise<void> {
    const abs = toFsPath(this.out, r.path);
    if (r.kind === 'symlink') {
      try {
        symlinkSync(Buffer.from(r.target, 'latin1'), abs);
      } catch (err) {
        throw ioError('create symlink', displayPath(r.path), err);
      }
    } else {
      await createNode(this.out, r, this.report);
    }
    applyMetadataSync(abs, r, this.report);
  }

  /** Event-loop turns now and then, so the parallel jobs' completions get through. */
  private async yieldNowAndThen(): Promise<void> {
    if (Date.now() - this.lastYield < YIELD_EVERY_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.lastYield = Date.now();
  }

  /** A file restored in a parallel job: the large ones. */
  private async restoreFile(r: FileRecord): Promise<void> {
    const abs = toFsPath(this.out, r.path);
    const memory = await this.restoreMemory(r);
    const written = await this.budget
      .run(memory, () => this.writeContent(r, abs))
      .catch((err: unknown) => {
        throw withPath(r, err);
      });
    this.finish(r, abs, written);
  }

  /** Estimated peak of restoring `r` in a parallel job (see writeContent). */
  private async restoreMemory(r: FileRecord): Promise<number> {
    const c = r.content;
    switch (c.op) {
      case 'vcdiff': {
        // The decoder holds as much of the source as the window covers: at most 512 MiB.
        const sourceSize = await this.source
          .path(c.from)
          .then((p) => lstat(p))
          .then(
            (st) => st.size,
            () => MAX_WINDOW,
          );
        return vcdiffDecodeMemory(Math.min(MAX_WINDOW, sourceSize)) + STREAM_JOB_BYTES;
      }
      case 'bsdiff':
        return BSDIFF_DECODE_MEMORY;
      case 'assembled':
        return vcdiffDecodeMemory(assembledBound(c.sources)) + STREAM_JOB_BYTES;
      default:
        return STREAM_JOB_BYTES;
    }
  }

  /** Checks what was written, restores the metadata, counts it. */
  private finish(r: FileRecord, abs: Buffer, written: Written): void {
    verifyWritten(r, written);
    applyMetadataSync(abs, r, this.report);
    this.count(r);
  }

  private count(r: FileRecord): void {
    this.files++;
    this.bytes += r.size;
    this.progress.update({ label: 'apply', done: this.files, total: this.totalFiles, bytesDone: this.bytes, bytesTotal: this.totalBytes });
  }

  /**
   * Starts checking a large source's sha256 while its decode runs (one pass each, in parallel):
   * `alongside(decoding)` settles both and reports a wrong source first, whatever the decode
   * said. What a decode wrote from a wrong source is never used: it sits in the temp tree,
   * which is removed when apply fails.
   */
  private verifyMeanwhile(from: RelPath, sha256: string, size: number): { alongside<T>(decoding: Promise<T>): Promise<T> } {
    const verifying = this.source.verify(from, sha256, size);
    verifying.catch(() => {});
    return {
      async alongside<T>(decoding: Promise<T>): Promise<T> {
        const [verified, decoded] = await Promise.allSettled([verifying, decoding]);
        if (verified.status === 'rejected') throw verified.reason;
        if (decoded.status === 'rejected') throw decoded.reason;
        return decoded.value;
      },
    };
  }

  /**
   * The kernel's copy (a reflink where the filesystem can), then a hash of what was
   * written: the check covers the restored bytes themselves, not just what was read.
   */
  private async copyLarge(from: RelPath, abs: Buffer): Promise<Written> {
    const source = await this.source.path(from);
    const isFile = await lstat(source).then(
      (st) => st.isFile(),
      (err: unknown) => {
        throw sourceReadError(from, err);
      },
    );
    if (!isFile) throw sourceReadError(from, Object.assign(new Error('not a regular file'), { code: 'EINVAL' }));
    await copyFile(source, abs, fsc.COPYFILE_EXCL | fsc.COPYFILE_FICLONE).catch((err: unknown) => {
      throw ioError('copy', displayPath(from), err);
    });
    const { size } = await lstat(abs);
    return { bytes: size, sha256: (await hashStream(createReadStream(abs))).sha256 };
  }

  /** The assembled source streamed into a scratch file (each part checked on the way), then decoded against it. */
  private async restoreAssembled(r: FileRecord, c: AssembledOp, abs: Buffer): Promise<Written> {
    const delta = await this.payloads.materialize(c.payload, displayPath(r.path), {
      brotli: c.brotli ? { maxBytes: vcdiffMaxBytes(r.size) } : undefined,
    });
    const source = this.payloads.scratchPath('assembled');
    try {
      await writeAssembledSource(c.sources, (part) => (part.target ? this.restored : this.source).open(part.path), source);
      const out = await this.pool.decodeFile(source, delta.path, abs, { maxOutputBytes: r.size }, 'create');
      return { bytes: out.outputBytes, sha256: out.outputSha256 };
    } finally {
      await delta.release();
      await rm(source, { force: true });
    }
  }

  private async writeContent(r: FileRecord, abs: Buffer): Promise<Written> {
    const c = r.content;
    switch (c.op) {
      case 'same':
      case 'copy': {
        const from = c.op === 'same' ? r.path : c.from;
        return checkCopied(r, from, await this.copyLarge(from, abs));
      }
      case 'vcdiff': {
        const verifying = this.verifyMeanwhile(c.from, c.fromSha256, r.size);
        const brotli = c.brotli ? { maxBytes: vcdiffMaxBytes(r.size) } : undefined;
        const delta = await this.payloads.materialize(c.payload, displayPath(r.path), { brotli });
        try {
          const sourcePath = await this.source.path(c.from);
          const out = await verifying.alongside(this.pool.decodeFile(sourcePath, delta.path, abs, { maxOutputBytes: r.size }, 'create'));
          return { bytes: out.outputBytes, sha256: out.outputSha256 };
        } finally {
          await delta.release();
        }
      }
      case 'bsdiff': {
        const verifying = this.verifyMeanwhile(c.from, c.fromSha256, r.size);
        const patch = await this.payloads.materialize(c.payload, displayPath(r.path));
        try {
          const sourcePath = await this.source.path(c.from);
          if (c.exe) {
            const exe = c.exe;
            const sourceSize = await lstat(sourcePath).then(
              (st) => st.size,
              (err: unknown) => {
                throw sourceReadError(c.from, err);
              },
            );
            checkExeFits(exe, sourceSize, r.size, displayPath(r.path));
            const scratch = () => this.payloads.scratchPath('exe');
            return await verifying.alongside(
              decodeTransformedFile(exe, sourcePath, abs, r.size, scratch, (s, o) =>
                bsdiffDecode(s, patch.path, o, { targetSize: r.size }),
              ),
            );
          }
          const out = await verifying.alongside(bsdiffDecode(sourcePath, patch.path, abs, { targetSize: r.size }));
          return { bytes: out.outputBytes, sha256: out.outputSha256 };
        } finally {
          await patch.release();
        }
      }
      case 'assembled':
        return this.restoreAssembled(r, c, abs);
      case 'gzip':
        return restoreGzipMember(r, c, abs, {
          readPayload: (payload, opts) => this.payloads.readSmallSync(payload, displayPath(r.path), opts),
          readSource: (from, sha256, maxBytes) => this.source.readVerifiedSync(from, sha256, maxBytes),
          scratchPath: () => this.payloads.scratchPath('gzip'),
        });
      case 'raw':
      case 'brotli': {
        const held = c.op === 'raw' ? this.payloads.inMemory(c.payload, displayPath(r.path)) : undefined;
        if (held) return writeSmallFileSync(held, abs);
        const payload = await this.payloads.materialize(c.payload, displayPath(r.path));
        try {
          return await restoreFile(createReadStream(payload.path), abs, { brotli: c.op === 'brotli', maxBytes: r.size });
        } finally {
          await payload.release();
        }
      }
    }
  }
}

/** tree/meta.ts's NOT_PERMITTED: chown errors that mean "not allowed here", reported instead of failing. */
const OWNER_NOT_PERMITTED = new Set(['EPERM', 'EACCES', 'ENOTSUP', 'EOPNOTSUPP', 'EINVAL']);

function isSourceCopy(r: FileRecord): boolean {
  return r.content.op === 'same' || r.content.op === 'copy';
}

function copiedFrom(r: FileRecord): RelPath {
  return r.content.op === 'copy' ? r.content.from : r.path;
}

/** A streamed copy, brotli decode or payload materialization: a decoder window and stream buffers. */
const STREAM_JOB_BYTES = 24 * 1024 * 1024;
/**
 * What this thread's in-memory restores (SmallFileRestorer) may hold outside the budget's jobs:
 * a source and a payload of up to IN_MEMORY_MAX_BYTES each, and the output chunk, plus the
 * wasm instance kept for the next in-memory VCDIFF decode.
 */
const IN_MEMORY_RESTORE_BYTES = 3 * IN_MEMORY_MAX_BYTES + 64 * 1024 * 1024;

/** Event-loop turns are given back this often during runs of synchronous copies. */
const YIELD_EVERY_MS = 20;
