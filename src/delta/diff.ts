/**
 * `deltaimg diff`: scans both roots, picks per target file the cheapest way to rebuild
 * it from the source (unchanged, moved, VCDIFF against a related file, or shipped
 * whole), and writes a delta directory atomically.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Entry, FileEntry, RelPath } from '../tree/entry.js';
import { compareRel, displayPath, toFsPath } from '../tree/paths.js';
import { scanTree, type TreeSnapshot } from '../tree/scan.js';
import { sameMetadata } from '../tree/compare.js';
import { bsdiffEncodeMemory, planSegments, segmentedEncodeMemory, type SegmentPlan } from '../bsdiff/index.js';
import { BsdiffPool } from '../bsdiff/pool.js';
import {
  compileAhead,
  DEFAULT_LEVEL,
  DEFAULT_WINDOW,
  MAX_WINDOW,
  MIN_WINDOW,
  sourceWindowFor,
  vcdiffDecodeMemory,
  vcdiffEncodeMemory,
  VcdiffPool,
  type VcdiffOptions,
} from '../vcdiff/index.js';
import { buildDirAtomically } from '../util/atomic-output.js';
import { DeltaimgError, ioError } from '../util/errors.js';
import { Limiter } from '../util/limiter.js';
import { defaultMemoryBudget, idleWorkerShare, MemoryBudget, WORKER_THREAD_BYTES } from '../util/memory-budget.js';
import { silentProgress, type Progress } from '../util/progress.js';
import type { PairTransform } from '../exefilter/index.js';
import { DirDigests, TreeDigest } from './digest.js';
import { encodeTransformed, exeTransformFor, withAddressMap, type ExeFiles } from './exe-codec.js';
import { createEntriesWriter } from './entries-file.js';
import { brotliFile, brotliMemory, openSourceStream } from './file-codecs.js';
import { writeAssembledSource } from './assembled-source.js';
import { CONTENT_INDEX_MEMORY, ContentIndex, type AssemblyChoice, type IndexPool } from './content-index.js';
import {
  BLOBS_DIR,
  ENTRIES_FILE,
  FORMAT_NAME,
  FORMAT_VERSION,
  BASE_READER_VERSION,
  ASSEMBLED_MAX_BYTES,
  ASSEMBLED_MAX_SOURCES,
  HEADER_FILE,
  readerVersionOf,
  RUNS_READER_VERSION,
  type AssembledSource,
  type ContentOp,
  type ContentOpName,
  type DeltaHeader,
  type DeltaRecord,
  type DeltaStats,
  type EntriesCoding,
  type GzipInner,
  type Payload,
  emptyStats,
} from './format.js';
import { INLINE_MAX_BYTES, PayloadWriter } from './payload-store.js';
import { packPayloads, type PackSink } from './pack-writer.js';
import { RunsEncoder } from './runs.js';
import { SourceIndex } from './source-index.js';
import { TopList } from './top-list.js';
import { brotliBest, GZIP_MEMBER_MAX_BYTES, GZIP_MEMBER_MEMORY, gunzipBounded, isGzip, recipeFor } from './gzip-member.js';

export interface DiffOptions {
  progress?: Progress;
  /** Stored verbatim in the header (the Docker workflow keeps image ids and config there). */
  annotations?: unknown;
  vcdiff?: VcdiffOptions;
  /** Reuse a worker pool; by default one is made (one worker per core) and closed. */
  pool?: VcdiffPool;
  toolVersion?: string;
  /**
   * A hashed scan of SRC_ROOT taken earlier (scanTree with hash: true), for callers that diff
   * several targets against one unchanged source: it is scanned and hashed once, not per diff.
   */
  sourceSnapshot?: TreeSnapshot;
  /**
   * The memory budget in bytes (`--memory`; default defaultMemoryBudget(): a quarter of the
   * machine, at most 1 GiB). Every encode is admitted by its estimated peak; a pool passed in
   * should be made with recycleBytes: idleWorkerShare(memoryBytes).
   */
  memoryBytes?: number;
  /**
   * One whole record per target entry (the v1/v2 coding), instead of the v3 coding against the
   * source's listing (unchanged entries cost nothing, metadata is coded as its difference, so
   * apply takes them from SRC_ROOT and needs its metadata to be the base's). For a source whose
   * metadata is not reproduced where the delta is applied (an image's root extracted for
   * `image diff`: extraction times, no owners), or for receivers with a deltaimg older than v3.
   */
  wholeRecords?: boolean;
}

/** A VCDIFF this much smaller than the file is kept without trying whole-file compression. */
const GOOD_DELTA_RATIO = 0.25;
/**
 * bsdiff is tried when VCDIFF leaves at least this much: it costs seconds of CPU per MB and
 * ~11 bytes of memory per byte, worth it for recompiled binaries, not for a changed line.
 */
const BSDIFF_WORTH_TRYING_BYTES = 4096;
const BSDIFF_RELATED_RATIO = 0.5;
/** A segmented bsdiff takes at most this share of the budget: the rest keeps the other cores busy. */
const SEGMENTED_BUDGET_SHARE = 0.75;
/** Below this a VCDIFF has too little redundancy left for brotli to win anything. */
const BROTLI_WORTH_TRYING_BYTES = 64;
/** Compression that saves less than this is not worth a decoder pass: the bytes ship raw. */
const WORTHWHILE_COMPRESSION = 0.95;
/** The brotli quality candidates are compared at (see Polish). */
const QUICK_BROTLI_QUALITY = 5;
/** A gzip op must save at least this much over the file's best other encoding (its record costs more). */
const GZIP_MEMBER_MIN_GAIN = 64;
/** An assembled source is tried when the best other encoding leaves at least this many bytes... */
const ASSEMBLE_WORTH_TRYING_BYTES = 192;
/** ...and is no delta this small already (a share of the file). */
const ASSEMBLE_DELTA_RATIO = 1 / 16;
/** The chosen files must hold at least this share of the file's anchors (content-index.ts). */
const ASSEMBLE_MIN_COVERAGE = 0.05;
/** A target file is a part only when it holds at least this share of a file's anchors not covered yet. */
const TARGET_PART_MIN_SHARE = 1 / 8;
/**
 * What the sources add to the (brotli'd) record: per source its sha256 (~34 bytes), size and
 * path (about half of it: the rest repeats paths the entries file holds anyway).
 */
function sourcesCost(sources: readonly AssembledSource[]): number {
  return sources.reduce((n, s) => n + 40 + Math.ceil(s.path.length / 2), 0);
}

export async function diffTrees(srcRoot: string, dstRoot: string, outDir: string, opts: DiffOptions = {}): Promise<DeltaHeader> {
  const progress = opts.progress ?? silentProgress;
  // The engine compiles on a spare core while this thread scans.
  const engineReady = opts.pool ? Promise.resolve() : compileAhead().then(() => undefined);
  engineReady.catch(() => {});
  let scanned = 0;
  const onProgress = () => progress.update({ label: 'scanning', done: ++scanned });
  const [src, dst] = await Promise.all([
    opts.sourceSnapshot ?? scanTree(srcRoot, { hash: true, onProgress }),
    scanTree(dstRoot, { hash: true, onProgress }),
  ]);
  await engineReady;
  const memoryBytes = opts.memoryBytes ?? defaultMemoryBudget();
  const pool = opts.pool ?? new VcdiffPool({ recycleBytes: idleWorkerShare(memoryBytes) });
  const bsdiffPool = new BsdiffPool();
  // Measured now, after the scans: what the process holds besides the jobs is its baseline.
  const budget = new MemoryBudget(
    memoryBytes,
    pool.size * (pool.recycleBytes + WORKER_THREAD_BYTES) + bsdiffPool.size * WORKER_THREAD_BYTES,
  );
  try {
    return await buildDirAtomically(outDir, async (work) => {
      await mkdir(join(work, BLOBS_DIR));
      const encoder = new FileEncoder(src, dst, new PayloadWriter(work), pool, opts.vcdiff ?? {}, bsdiffPool, budget);
      const header = await writeDelta(work, src, dst, encoder, progress, opts);
      await writeFile(join(work, HEADER_FILE), JSON.stringify(header, null, 2) + '\n', { flag: 'wx' });
      return header;
    });
  } finally {
    progress.done();
    if (!opts.pool) await pool.close();
    await bsdiffPool.close();
  }
}

async function writeDelta(
  work: string,
  src: TreeSnapshot,
  dst: TreeSnapshot,
  encoder: FileEncoder,
  progress: Progress,
  opts: DiffOptions,
): Promise<DeltaHeader> {
  const stats = emptyStats();
  const largest = new TopList<DeltaHeader['largest'][number]>(10, (x) => x.bytes);
  const files = dst.entries.filter((e): e is FileEntry => e.kind === 'file');
  const totalBytes = files.reduce((n, f) => n + f.size, 0);
  let doneFiles = 0;
  let doneBytes = 0;
  const limiter = new Limiter(Math.max(2, availableParallelism() * 2));
  const encodeOne = (e: FileEntry) =>
    limiter.run(async (): Promise<Encoded> => {
      const { content, payloadBytes } = await encoder.encode(e);
      doneFiles++;
      doneBytes += e.size;
      progress.update({ label: 'diff', done: doneFiles, total: files.length, bytesDone: doneBytes, bytesTotal: totalBytes });
      return { record: { ...e, sha256: e.sha256!, content }, payloadBytes };
    });
  // Files whose bytes the source holds (most of a tree) need no job: their records are made
  // in the loop below. Largest changed files start first: their encodes (bsdiff on a big
  // binary takes seconds) then overlap with the many small ones instead of running alone at
  // the end. Records are still written in path order.
  const jobs = new Map<FileEntry, Promise<Encoded>>();
  const changed = files.filter((f) => encoder.fromSource(f) === undefined);
  for (const f of changed.sort((a, b) => b.size - a.size)) jobs.set(f, encodeOne(f));
  // Every job settles before we return or throw, so none writes into a removed temp dir.
  for (const job of jobs.values()) job.catch(() => {});
  const encodedAt = (e: Entry): Encoded | Promise<Encoded> => {
    if (e.kind !== 'file') return { record: e, payloadBytes: 0 };
    const content = encoder.fromSource(e);
    if (content === undefined) return jobs.get(e)!;
    doneFiles++;
    doneBytes += e.size;
    progress.update({ label: 'diff', done: doneFiles, total: files.length, bytesDone: doneBytes, bytesTotal: totalBytes });
    return { record: { ...e, sha256: e.sha256!, content }, payloadBytes: 0 };
  };
  const encoded: Encoded[] = [];
  try {
    for (const e of dst.entries) encoded.push(await encodedAt(e));
  } finally {
    await Promise.allSettled(jobs.values());
  }
  await encoder.assembleFromTarget(encoded);
  const coding: EntriesCoding = opts.wholeRecords ? 'records' : 'runs';
  // Whole records are for readers before v3, which know no pack.
  const pack = coding === 'runs' ? await packPayloads(encoded, encoder.packSink()) : undefined;
  const writer = createEntriesWriter(join(work, ENTRIES_FILE));
  const digest = new TreeDigest();
  const runs = coding === 'runs' ? new RunsEncoder(src.entries, (line) => writer.writeLine(line)) : undefined;
  const dirs = new DirDigests();
  let minReaderVersion = runs ? RUNS_READER_VERSION : BASE_READER_VERSION;
  for (const { record, payloadBytes } of encoded) {
    if (runs) await runs.add(record);
    else await writer.write(record);
    digest.add(record);
    if (runs) dirs.add(record);
    minReaderVersion = Math.max(minReaderVersion, readerVersionOf(record));
    countRecord(record, encoder.sourceIndex, stats);
    const op = opOf(record);
    if (op === 'vcdiff' || op === 'bsdiff' || op === 'brotli' || op === 'raw' || op === 'gzip' || op === 'assembled') {
      stats.payloadBytes[op] += payloadBytes;
      largest.offer({ path: displayPath(record.path), op, bytes: payloadBytes });
    }
  }
  if (runs) await runs.finish(dirs.digests().map((d) => d.digest));
  const entries = await writer.finish();
  stats.targetFileBytes = totalBytes;
  stats.deleted = countDeleted(src, dst);
  stats.deltaBytes = encoder.blobBytes() + (await stat(join(work, ENTRIES_FILE))).size;
  return {
    format: FORMAT_NAME,
    version: FORMAT_VERSION,
    minReaderVersion,
    tool: `deltaimg ${opts.toolVersion ?? ''}`.trim(),
    created: new Date().toISOString(),
    entries: { file: ENTRIES_FILE, ...entries, coding },
    source: { treeSha256: treeDigest(src.entries), entries: src.entries.length },
    target: { treeSha256: digest.digest(), entries: digest.entries },
    stats,
    largest: largest.items(),
    ...(pack ? { pack } : {}),
    ...(opts.annotations === undefined ? {} : { annotations: opts.annotations }),
  };
}

/** Chooses and produces the content op of one target file. */
class FileEncoder {
  readonly sourceIndex: SourceIndex;
  private readonly payloadBytes = new Map<string, number>();
  /** How many records use each blob, so that a record encoded again can drop a blob nothing else uses. */
  private readonly blobUses = new Map<string, number>();
  private readonly dstFiles = new Map<RelPath, FileEntry>();
  /** Built on first use: only a tree with a new file that nothing else encodes well needs it. */
  private contentIndex?: Promise<ContentIndex>;

  constructor(
    private readonly src: TreeSnapshot,
    private readonly dst: TreeSnapshot,
    private readonly payloads: PayloadWriter,
    private readonly pool: VcdiffPool,
    private readonly vcdiffOptions: VcdiffOptions,
    private readonly bsdiffPool: BsdiffPool,
    private readonly budget: MemoryBudget,
  ) {
    this.sourceIndex = new SourceIndex(src.entries);
    for (const e of dst.entries) if (e.kind === 'file') this.dstFiles.set(e.path, e);
  }

  /** The op for a file whose bytes the source holds ('same' path or a 'copy'); undefined when it must be encoded. */
  fromSource(target: FileEntry): ContentOp | undefined {
    const identical = this.sourceIndex.identical(target.sha256!, target.path);
    if (identical === undefined) return undefined;
    return identical === target.path ? { op: 'same' } : { op: 'copy', from: identical };
  }

  async encode(target: FileEntry): Promise<{ content: ContentOp; payloadBytes: number }> {
    const fromSource = this.fromSource(target);
    if (fromSource) return { content: fromSource, payloadBytes: 0 };
    const targetPath = toFsPath(this.dst.root, target.path);
    if (target.size <= INLINE_MAX_BYTES / 4) {
      const inline = await readTarget(targetPath, target);
      return { content: { op: 'raw', payload: { inline } }, payloadBytes: inline.length };
    }
    const base = this.sourceIndex.deltaBase(target);
    const best = await this.tryAssembled(target, targetPath, await this.bestOf(base, target, targetPath));
    const member = await this.tryGzipMember(target, targetPath, base, best.bytes);
    if (member) {
      await this.discard(best);
      return member;
    }
    return this.keep(best);
  }

  /** The smaller of a delta against `base` and the file compressed whole. */
  private async bestOf(base: FileEntry | undefined, target: FileEntry, targetPath: Buffer): Promise<Candidate> {
    const delta = base ? await this.tryDeltas(base, target, targetPath) : undefined;
    if (delta && delta.bytes <= target.size * GOOD_DELTA_RATIO) return delta;
    const whole = await this.tryWhole(target, targetPath);
    if (delta && delta.bytes < whole.bytes) {
      await this.discard(whole);
      return delta;
    }
    if (delta) await this.discard(delta);
    return whole;
  }

  /**
   * A gzip file diffed decompressed (against the base decompressed too when it is gzip) plus the
   * exact-deflate recipe of its bytes: kept, as a gzip op, only when smaller than `beat`.
   */
  private async tryGzipMember(
    target: FileEntry,
    targetPath: Buffer,
    base: FileEntry | undefined,
    beat: number,
  ): Promise<{ content: ContentOp; payloadBytes: number } | undefined> {
    if (target.size > GZIP_MEMBER_MAX_BYTES || beat < GZIP_MEMBER_MIN_GAIN || !this.budget.fits(GZIP_MEMBER_MEMORY)) return undefined;
    return this.budget.run(GZIP_MEMBER_MEMORY, async () => {
      const gz = await readTarget(targetPath, target);
      if (!isGzip(gz)) return undefined;
      const inner = gunzipBounded(gz);
      if (!inner) return undefined;
      const recipe = await recipeFor(gz, inner);
      if (!recipe || recipe.length + GZIP_MEMBER_MIN_GAIN >= beat) return undefined;
      const whole = brotliBest(inner);
      const against = base && base.size <= GZIP_MEMBER_MAX_BYTES ? await this.innerDelta(base, inner) : undefined;
      const innerPart = against && against.bytes.length < whole.length ? against : { op: 'brotli' as const, bytes: whole };
      if (recipe.length + innerPart.bytes.length + GZIP_MEMBER_MIN_GAIN >= beat) return undefined;
      const recipePayload = await this.keepBuffer(recipe);
      const innerPayload = await this.keepBuffer(innerPart.bytes);
      const innerOp: GzipInner =
        innerPart.op === 'vcdiff'
          ? {
              op: 'vcdiff',
              from: innerPart.from.path,
              fromSha256: innerPart.from.sha256!,
              gunzipFrom: innerPart.gunzipFrom,
              payload: innerPayload,
            }
          : { op: 'brotli', payload: innerPayload };
      return {
        content: { op: 'gzip', innerSize: inner.length, inner: innerOp, recipe: recipePayload },
        payloadBytes: recipe.length + innerPart.bytes.length,
      };
    });
  }

  /** A brotli'd VCDIFF of `inner` against the base's bytes, decompressed first when they are gzip. */
  private async innerDelta(
    base: FileEntry,
    inner: Buffer,
  ): Promise<{ op: 'vcdiff'; from: FileEntry; gunzipFrom: boolean; bytes: Buffer } | undefined> {
    const raw = await readFile(toFsPath(this.src.root, base.path)).catch(() => undefined);
    if (!raw || raw.length !== base.size) return undefined;
    const unzipped = isGzip(raw) ? gunzipBounded(raw) : undefined;
    const source = unzipped ?? raw;
    const sourceTemp = this.payloads.tempPath();
    const targetTemp = this.payloads.tempPath();
    const deltaTemp = this.payloads.tempPath();
    try {
      await writeFile(sourceTemp, source);
      await writeFile(targetTemp, inner);
      await this.pool.encodeFile(sourceTemp, targetTemp, deltaTemp, { secondary: 'none', ...this.vcdiffOptions }, 'create');
      return { op: 'vcdiff', from: base, gunzipFrom: unzipped !== undefined, bytes: brotliBest(await readFile(deltaTemp)) };
    } finally {
      for (const t of [sourceTemp, targetTemp, deltaTemp]) await this.payloads.discard(t);
    }
  }

  private async keepBuffer(bytes: Buffer): Promise<Payload> {
    const temp = this.payloads.tempPath();
    await writeFile(temp, bytes);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const payload = await this.payloads.keep(temp, sha256, bytes.length);
    if ('blob' in payload) this.countBlob(payload.blob, bytes.length);
    return payload;
  }

  /**
   * A VCDIFF against the old files that hold most of this file's content, concatenated (the
   * assembled op, v3): a new bundle or source map is made of code spread over the old tree, and
   * no single file of it is a good base. Tried where `best` leaves enough to win back; kept only
   * when smaller, what its record costs included.
   */
  private async tryAssembled(target: FileEntry, targetPath: Buffer, best: Candidate): Promise<Candidate> {
    if (best.bytes < ASSEMBLE_WORTH_TRYING_BYTES || target.size > ASSEMBLED_MAX_BYTES) return best;
    // Where bsdiff won, the file is a binary recompiled from its base: a VCDIFF against more files does not beat that.
    if (best.kind === 'bsdiff' || (best.kind === 'vcdiff' && best.bytes <= target.size * ASSEMBLE_DELTA_RATIO)) return best;
    const choice = await this.chooseParts(target, targetPath, [{ index: await this.sourceContent(), usable: () => true }]);
    if (choice.coverage < ASSEMBLE_MIN_COVERAGE) return best;
    const only = choice.parts.length === 1 ? choice.parts[0]! : undefined;
    if (only && !only.escape && 'from' in best && best.from === only.file) return best;
    const sources = choice.parts.map(partSource);
    const assembled = await this.encodeAssembled(sources, targetPath);
    if (!assembled || assembled.bytes + sourcesCost(sources) >= best.bytes) {
      if (assembled) await this.discard(assembled);
      return best;
    }
    await this.discard(best);
    return assembled;
  }

  /** A VCDIFF of the target against `sources` concatenated; undefined when one of them changed since the scan. */
  private async encodeAssembled(sources: AssembledSource[], targetPath: Buffer): Promise<Candidate | undefined> {
    const sourceTemp = this.payloads.tempPath();
    const open = (part: AssembledSource) => openSourceStream(toFsPath(part.target ? this.dst.root : this.src.root, part.path));
    try {
      const bytes = await writeAssembledSource(sources, open, sourceTemp);
      return { kind: 'assembled', sources, ...(await this.vcdiffAgainst(sourceTemp, bytes, targetPath)) };
    } catch (err) {
      if (err instanceof DeltaimgError && err.code === 'WRONG_SOURCE') return undefined;
      throw err;
    } finally {
      await this.payloads.discard(sourceTemp);
    }
  }

  /**
   * The second pass, once every file is encoded. The files still expensive are often near copies
   * of each other, all new (one bundle as cjs, esm and umd, their maps): each may also take parts
   * from the other expensive target files, which apply restores first. A file either takes target
   * parts or serves as one, never both (no cycles): decided in path order, then encoded in
   * parallel; a file's new encoding replaces its record only when smaller.
   */
  async assembleFromTarget(encoded: Encoded[]): Promise<void> {
    const expensive = encoded.flatMap((e, at) => (this.isExpensive(e) ? [{ at, entry: this.dstFiles.get(e.record.path)! }] : []));
    if (expensive.length < 2) return;
    const sourceIndex = await this.sourceContent();
    const servable = expensive.map((x) => x.entry).filter((f) => (f.meta.mode & 0o400) !== 0);
    const targetIndex = await this.budget.run(CONTENT_INDEX_MEMORY, () => ContentIndex.build(this.dst.root, servable, sourceIndex.spacing));
    const serving = new Set<FileEntry>();
    const taking = new Set<FileEntry>();
    const plans: { at: number; entry: FileEntry; sources: AssembledSource[] }[] = [];
    for (const { at, entry } of expensive) {
      if (serving.has(entry)) continue;
      const pools = [
        { index: sourceIndex, usable: () => true },
        // A target file that serves can take no part itself: it must be worth that.
        { index: targetIndex, usable: (f: FileEntry) => f !== entry && !taking.has(f), minShare: TARGET_PART_MIN_SHARE },
      ];
      const choice = await this.chooseParts(entry, toFsPath(this.dst.root, entry.path), pools);
      if (choice.coverage < ASSEMBLE_MIN_COVERAGE || !choice.parts.some((p) => p.pool === 1)) continue;
      taking.add(entry);
      for (const p of choice.parts) if (p.pool === 1) serving.add(p.file);
      const sources = choice.parts.map(partSource);
      plans.push({ at, entry, sources });
    }
    const limiter = new Limiter(Math.max(2, availableParallelism()));
    await Promise.all(plans.map((plan) => limiter.run(() => this.reassemble(encoded, plan.at, plan.entry, plan.sources))));
  }

  /** Encodes one planned file against its new sources; its record is replaced when that is smaller. */
  private async reassemble(encoded: Encoded[], at: number, entry: FileEntry, sources: AssembledSource[]): Promise<void> {
    const before = encoded[at]!;
    const candidate = await this.encodeAssembled(sources, toFsPath(this.dst.root, entry.path));
    if (!candidate || candidate.bytes + sourcesCost(sources) >= before.payloadBytes) {
      if (candidate) await this.discard(candidate);
      return;
    }
    const kept = await this.keep(candidate);
    if (before.record.kind === 'file' && 'payload' in before.record.content) await this.release(before.record.content.payload);
    encoded[at] = { record: { ...entry, sha256: entry.sha256!, content: kept.content }, payloadBytes: kept.payloadBytes };
  }

  /** Worth assembling from other target files: a file whose encoding still costs much. */
  private isExpensive({ record, payloadBytes }: Encoded): boolean {
    if (record.kind !== 'file' || payloadBytes < ASSEMBLE_WORTH_TRYING_BYTES || record.size > ASSEMBLED_MAX_BYTES) return false;
    switch (record.content.op) {
      case 'brotli':
      case 'raw':
      case 'assembled':
        return true;
      case 'vcdiff':
        return payloadBytes > record.size * ASSEMBLE_DELTA_RATIO;
      default:
        return false;
    }
  }

  /** What the pack writer reads and writes through (pack-writer.ts). */
  packSink(): PackSink {
    return {
      targetBytes: (r) => readTarget(toFsPath(this.dst.root, r.path), this.dstFiles.get(r.path)!),
      payloadBytes: async (p) => {
        if ('inline' in p) return p.inline;
        if ('packed' in p) throw new Error('a payload is packed twice');
        return readFile(join(this.payloads.blobDir, p.blob));
      },
      keepPack: async (compressed) => {
        const temp = this.payloads.tempPath();
        await writeFile(temp, compressed);
        const { blob } = await this.payloads.keepBlob(temp, createHash('sha256').update(compressed).digest('hex'));
        this.countBlob(blob, compressed.length);
        return blob;
      },
      release: (p) => this.release(p),
      withMemory: (bytes, job) => this.budget.run(bytes, job),
    };
  }

  /** Drops one use of a payload; a blob no record uses any more is removed. */
  private async release(payload: Payload): Promise<void> {
    if (!('blob' in payload)) return;
    const uses = (this.blobUses.get(payload.blob) ?? 1) - 1;
    if (uses > 0) {
      this.blobUses.set(payload.blob, uses);
      return;
    }
    this.blobUses.delete(payload.blob);
    this.payloadBytes.delete(payload.blob);
    await this.payloads.discard(join(this.payloads.blobDir, payload.blob));
  }

  /** The files of these pools that hold most of the target's content (ContentIndex.chooseAssembly), within the limits. */
  private chooseParts(target: FileEntry, targetPath: Buffer, pools: readonly IndexPool[]): Promise<AssemblyChoice> {
    return this.budget.run(3 * target.size, async () =>
      ContentIndex.chooseAssembly(
        pools,
        await readTarget(targetPath, target),
        target.path,
        ASSEMBLED_MAX_SOURCES,
        sourceBudget(target.size),
      ),
    );
  }

  /** The index of the source tree's content, built once, on first use. */
  private sourceContent(): Promise<ContentIndex> {
    this.contentIndex ??= this.budget.run(CONTENT_INDEX_MEMORY, () => ContentIndex.build(this.src.root, this.src.entries));
    return this.contentIndex;
  }

  /** VCDIFF, and where it leaves enough bytes to win back, a bsdiff patch too: the smaller stays. */
  private async tryDeltas(base: FileEntry, target: FileEntry, targetPath: Buffer): Promise<Candidate> {
    const vcdiff = await this.tryVcdiff(base, target, targetPath);
    // Where VCDIFF found little to copy, the files are unrelated and bsdiff would only burn CPU.
    const related = vcdiff.bytes <= target.size * BSDIFF_RELATED_RATIO;
    const plan = this.bsdiffPlan(base.size, target.size);
    if (!plan || !related) return vcdiff;
    const sourcePath = toFsPath(this.src.root, base.path);
    const files = { source: { path: sourcePath, size: base.size }, target: { path: targetPath, size: target.size } };
    // Executables are worth bsdiff at any size: a small recompiled program's patch is a
    // fraction of its VCDIFF (a 77 kB test program: 460 B against 2.2 kB). Files encoded in
    // segments too: the transform streams through temp files, and the segments are matched
    // on the transformed bytes.
    const exe = exeTransformFor(files);
    if (vcdiff.bytes < BSDIFF_WORTH_TRYING_BYTES && !exe) return vcdiff;
    const temp = this.payloads.tempPath();
    const r = await this.budget.run(plan.memory, () => this.bsdiffPool.encode(sourcePath, targetPath, temp, plan.segments));
    const plain: BsdiffCandidate = {
      kind: 'bsdiff',
      from: base,
      temp,
      bytes: r.bytes,
      sha256: r.sha256,
      segmented: plan.segments !== undefined,
    };
    const bsdiff = exe ? await this.tryExeBsdiff(plain, files, exe, plan) : plain;
    const [keep, drop] = bsdiff.bytes < vcdiff.bytes ? [bsdiff, vcdiff] : [vcdiff, bsdiff];
    await this.discard(drop);
    return keep;
  }

  /**
   * bsdiff whole when its estimate fits the budget, else in segments sized to a share of it
   * (so smaller jobs still run beside it); null when even the smallest segments do not fit.
   */
  private bsdiffPlan(sourceSize: number, targetSize: number): BsdiffPlan | null {
    const whole = bsdiffEncodeMemory(sourceSize, targetSize);
    if (this.budget.fits(whole)) return { memory: whole };
    const segments = planSegments(this.budget.jobBytes * SEGMENTED_BUDGET_SHARE, sourceSize, targetSize);
    return segments ? { memory: segmentedEncodeMemory(segments, sourceSize), segments } : null;
  }

  /**
   * For ELF executables of one architecture, bsdiff again on both files with their branch
   * targets made absolute and the source's addresses relabelled to the target's through the
   * plain patch's alignment (src/exefilter/); kept only when smaller than the plain patch.
   */
  private async tryExeBsdiff(plain: BsdiffCandidate, files: ExeFiles, branches: PairTransform, plan: BsdiffPlan): Promise<BsdiffCandidate> {
    const exe = await withAddressMap(branches, files, plain.temp);
    const temp = this.payloads.tempPath();
    const encode = (s: string, t: string) => this.budget.run(plan.memory, () => this.bsdiffPool.encode(s, t, temp, plan.segments));
    const r = await encodeTransformed(files, exe, () => this.payloads.tempPath(), encode);
    const [keep, drop] = r.bytes < plain.bytes ? [{ ...plain, temp, bytes: r.bytes, sha256: r.sha256, exe }, plain.temp] : [plain, temp];
    await this.payloads.discard(drop);
    return keep;
  }

  /**
   * VCDIFF without secondary compression, then brotli over it when that is smaller:
   * on real binaries this beats xdelta3's djw/fgk/lzma secondaries by 5-25%. The brotli
   * here is the quick estimate (see Polish); the candidate that is kept gets the full one.
   */
  private async tryVcdiff(base: FileEntry, _target: FileEntry, targetPath: Buffer): Promise<Candidate> {
    return { kind: 'vcdiff', from: base, ...(await this.vcdiffAgainst(toFsPath(this.src.root, base.path), base.size, targetPath)) };
  }

  /** tryVcdiff against any source file (the assembled op's concatenation too). */
  private async vcdiffAgainst(sourcePath: Buffer | string, sourceSize: number, targetPath: Buffer): Promise<VcdiffResult> {
    const temp = this.payloads.tempPath();
    const { options, memory } = this.vcdiffPlan(sourceSize);
    const r = await this.budget.run(memory, () => this.pool.encodeFile(sourcePath, targetPath, temp, options, 'create'));
    const plain: VcdiffResult = { temp, bytes: r.deltaBytes, sha256: r.deltaSha256, brotli: false };
    if (r.deltaBytes < BROTLI_WORTH_TRYING_BYTES) return plain;
    const packedTemp = this.payloads.tempPath();
    const packed = await this.budget.run(brotliMemory(r.deltaBytes), () =>
      brotliFile(temp, r.deltaBytes, packedTemp, QUICK_BROTLI_QUALITY),
    );
    if (packed.bytes >= r.deltaBytes) {
      await this.payloads.discard(packedTemp);
      return plain;
    }
    const polish: Polish = { from: 'temp', path: temp, size: r.deltaBytes };
    return { ...plain, temp: packedTemp, bytes: packed.bytes, sha256: packed.sha256, brotli: true, polish };
  }

  /**
   * The encode's options and estimated peak. A source larger than the default window gets a
   * window covering all of it (up to 512 MiB), so a block moved hundreds of MiB away is still
   * found, at level 3, whose hash table is a fraction of level 9's. The window is then halved
   * until both this encode and apply's decode (which holds the window) fit the budget.
   */
  private vcdiffPlan(sourceSize: number): { options: VcdiffOptions; memory: number } {
    const asked: VcdiffOptions =
      sourceSize > DEFAULT_WINDOW
        ? { secondary: 'none', level: 3, windowBytes: Math.min(MAX_WINDOW, sourceSize), ...this.vcdiffOptions }
        : { secondary: 'none', ...this.vcdiffOptions };
    const level = asked.level ?? DEFAULT_LEVEL;
    let window = sourceWindowFor(sourceSize, asked.windowBytes);
    const fits = (w: number) => this.budget.fits(vcdiffEncodeMemory(level, w)) && this.budget.fits(vcdiffDecodeMemory(w));
    while (window > MIN_WINDOW && !fits(window)) window /= 2;
    return { options: { ...asked, windowBytes: window }, memory: vcdiffEncodeMemory(level, window) };
  }

  /** The file compressed whole (quick estimate, see Polish), or raw when compression saves too little. */
  private async tryWhole(target: FileEntry, targetPath: Buffer): Promise<Candidate> {
    const temp = this.payloads.tempPath();
    const packed = await this.budget
      .run(brotliMemory(target.size), () => brotliFile(targetPath, target.size, temp, QUICK_BROTLI_QUALITY))
      .catch((err: unknown) => {
        throw ioError('compress', displayPath(target.path), err);
      });
    if (packed.bytes < target.size * WORTHWHILE_COMPRESSION) {
      return {
        kind: 'brotli',
        temp,
        bytes: packed.bytes,
        sha256: packed.sha256,
        polish: { from: 'target', path: targetPath, size: target.size },
      };
    }
    await this.payloads.discard(temp);
    const rawTemp = this.payloads.tempPath();
    await copyFile(targetPath, rawTemp);
    return { kind: 'raw', temp: rawTemp, bytes: target.size, sha256: target.sha256! };
  }

  private async keep(chosen: Candidate): Promise<{ content: ContentOp; payloadBytes: number }> {
    const c = await this.polish(chosen);
    const payload = await this.payloads.keep(c.temp, c.sha256, c.bytes);
    if ('blob' in payload) this.countBlob(payload.blob, c.bytes);
    const content: ContentOp =
      c.kind === 'vcdiff'
        ? { op: 'vcdiff', from: c.from.path, fromSha256: c.from.sha256!, brotli: c.brotli, payload }
        : c.kind === 'assembled'
          ? { op: 'assembled', sources: c.sources, brotli: c.brotli, payload }
          : c.kind === 'bsdiff'
            ? {
                op: 'bsdiff',
                from: c.from.path,
                fromSha256: c.from.sha256!,
                payload,
                ...(c.exe ? { exe: c.exe } : {}),
                ...(c.segmented ? { segmented: true as const } : {}),
              }
            : { op: c.kind, payload };
    return { content, payloadBytes: c.bytes };
  }

  /**
   * The kept candidate's brotli at full strength, when that is smaller than the quick one.
   * Measured on the Debian pair: 631 VCDIFF deltas and 62 new files went through brotli 11,
   * 4.3 s of CPU, to keep 9 of them (the rest lost to bsdiff or shipped raw); compressing
   * only the winner that hard costs ~0.1 s and leaves the delta the same size (+0.007%).
   */
  private async polish(c: Candidate): Promise<Candidate> {
    if (!('polish' in c) || !c.polish) return c;
    const input = c.polish;
    const temp = this.payloads.tempPath();
    const full = await this.budget
      .run(brotliMemory(input.size), () => brotliFile(input.path, input.size, temp))
      .catch((err: unknown) => {
        throw ioError('compress', input.path.toString(), err);
      });
    if (input.from === 'temp') await this.payloads.discard(input.path);
    if (full.bytes >= c.bytes) {
      await this.payloads.discard(temp);
      return { ...c, polish: undefined };
    }
    await this.payloads.discard(c.temp);
    return { ...c, temp, bytes: full.bytes, sha256: full.sha256, polish: undefined };
  }

  /** Removes a candidate that lost, with the uncompressed input its polish would have used. */
  private async discard(c: Candidate): Promise<void> {
    await this.payloads.discard(c.temp);
    if ('polish' in c && c.polish?.from === 'temp') await this.payloads.discard(c.polish.path);
  }

  private countBlob(blob: string, bytes: number): void {
    this.payloadBytes.set(blob, bytes);
    this.blobUses.set(blob, (this.blobUses.get(blob) ?? 0) + 1);
  }

  /** Bytes of distinct blobs written (a blob shared by several files counts once). */
  blobBytes(): number {
    let n = 0;
    for (const bytes of this.payloadBytes.values()) n += bytes;
    return n;
  }
}

/**
 * At most this much source for a file of `size` bytes: xdelta3 indexes all of it, so a small
 * file is not encoded against 64 MiB (8 MiB for any file; an old bundle a new module came from fits).
 */
function sourceBudget(size: number): number {
  return Math.min(ASSEMBLED_MAX_BYTES, 64 * size + 8 * 1024 * 1024);
}

/** A chosen part as a record names it: pool 0 is the source tree's index, pool 1 the target's. */
function partSource({ file, pool, escape }: AssemblyChoice['parts'][number]): AssembledSource {
  return {
    path: file.path,
    size: file.size,
    sha256: file.sha256!,
    ...(pool === 1 ? { target: true as const } : {}),
    ...(escape ? { escape: 'json' as const } : {}),
  };
}

/** A bsdiff encode's estimated peak, and its segment sizes when the file is encoded in segments. */
type BsdiffPlan = { memory: number; segments?: SegmentPlan };

type BsdiffCandidate = {
  kind: 'bsdiff';
  from: FileEntry;
  temp: string;
  bytes: number;
  sha256: string;
  exe?: PairTransform;
  segmented: boolean;
};

/** A VCDIFF payload, brotli'd when that is smaller. */
type VcdiffResult = { temp: string; bytes: number; sha256: string; brotli: boolean; polish?: Polish };

type Candidate =
  | ({ kind: 'vcdiff'; from: FileEntry } & VcdiffResult)
  | ({ kind: 'assembled'; sources: AssembledSource[] } & VcdiffResult)
  | BsdiffCandidate
  | { kind: 'brotli'; temp: string; bytes: number; sha256: string; polish?: Polish }
  | { kind: 'raw'; temp: string; bytes: number; sha256: string };

/**
 * Candidates are compared by a quick brotli (quality QUICK_BROTLI_QUALITY, ~50x cheaper than
 * 11 and within a few percent of it); the one kept is then compressed again at full strength
 * from the uncompressed bytes: a temp file of the plain VCDIFF (ours, removed once used or
 * dropped), or the target file itself.
 */
type Polish = { from: 'temp'; path: string; size: number } | { from: 'target'; path: Buffer; size: number };

async function readTarget(path: Buffer, target: FileEntry): Promise<Buffer> {
  const data = await readFile(path).catch((err: unknown) => {
    throw ioError('read', displayPath(target.path), err);
  });
  if (data.length !== target.size) throw ioError('read', displayPath(target.path), new Error('file changed while deltaimg was reading it'));
  return data;
}

interface Encoded {
  record: DeltaRecord;
  payloadBytes: number;
}

function opOf(r: DeltaRecord): ContentOpName {
  return r.kind === 'file' ? r.content.op : 'same';
}

function countRecord(r: DeltaRecord, index: SourceIndex, stats: DeltaStats): void {
  if (r.kind !== 'file') {
    stats.other++;
    return;
  }
  switch (r.content.op) {
    case 'same':
      if (sameMeta(r, index.fileAt(r.path))) stats.unchanged++;
      else stats.metadataOnly++;
      return;
    case 'copy':
      stats.moved++;
      return;
    case 'vcdiff':
    case 'bsdiff':
    case 'gzip':
    case 'assembled':
      stats.delta++;
      return;
    case 'brotli':
    case 'raw':
      stats.new++;
      return;
  }
}

function sameMeta(a: Entry, b: Entry | undefined): boolean {
  return b !== undefined && sameMetadata(a.meta, b.meta);
}

/** Source paths the target lacks: one merge pass over both path-sorted lists (a Set of 100k paths cost 0.5 s). */
function countDeleted(src: TreeSnapshot, dst: TreeSnapshot): number {
  let deleted = 0;
  let j = 0;
  for (const e of src.entries) {
    while (j < dst.entries.length && compareRel(dst.entries[j]!.path, e.path) < 0) j++;
    if (j >= dst.entries.length || dst.entries[j]!.path !== e.path) deleted++;
  }
  return deleted;
}

function treeDigest(entries: readonly Entry[]): string {
  const d = new TreeDigest();
  for (const e of entries) d.add(e);
  return d.digest();
}
