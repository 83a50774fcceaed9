/**
 * The on-disk delta format, version 3 (documented in docs/format.md).
 *
 *   DELTA_DIR/deltaimg.json      header, written last: its presence means the delta is complete
 *   DELTA_DIR/entries.jsonl.br   brotli'd JSON lines in path order: the target as edits of the source
 *                                listing (v3 `runs`, src/delta/runs.ts), or one record per entry (v1/v2)
 *   DELTA_DIR/blobs/<sha256>     content blobs (VCDIFF, brotli or raw), named by their own sha256
 */
import type { PairTransform } from '../exefilter/index.js';
import type { Metadata, RelPath } from '../tree/entry.js';

export const FORMAT_NAME = 'deltaimg-delta';
/**
 * The newest version this code reads and writes. Bump when a reader of the previous version
 * could misread a new delta; a delta asks for the newer reader only when it uses what is new
 * (readerVersionOf), so most deltas stay readable by older deltaimgs.
 */
export const FORMAT_VERSION = 3;
/** Every reader reads deltas made only of version 1 records. */
export const BASE_READER_VERSION = 1;
export const HEADER_FILE = 'deltaimg.json';
export const ENTRIES_FILE = 'entries.jsonl.br';
export const BLOBS_DIR = 'blobs';

/**
 * How entries.jsonl.br codes the target: `records`, one full record per entry (versions 1 and 2);
 * `runs` (version 3), the edit of the source's listing, unchanged entries costing nothing.
 */
export type EntriesCoding = 'records' | 'runs';
/** The reader version a `runs` entries file needs: older readers would take its lines for records. */
export const RUNS_READER_VERSION = 3;

export interface DeltaStats {
  /** Target files whose content sits unchanged at the same source path. */
  unchanged: number;
  /** Target files whose content exists at another source path (moves, renames, duplicates). */
  moved: number;
  /** Target files shipped as a VCDIFF against a source file. */
  delta: number;
  /** Target files shipped whole (brotli, raw or inline). */
  new: number;
  /** Source paths absent from the target. */
  deleted: number;
  /** Entries whose content is unchanged but whose metadata changed. */
  metadataOnly: number;
  /** Non-file entries: dirs, symlinks, hardlinks, devices, fifos. */
  other: number;
  /** Sum of target regular file sizes: what shipping the target as is costs, before compression. */
  targetFileBytes: number;
  /** Sum of blob sizes plus the entries file: what this delta costs. */
  deltaBytes: number;
  /** Payload bytes by how they were encoded (inline payloads included). */
  payloadBytes: { vcdiff: number; bsdiff: number; brotli: number; raw: number; gzip: number; assembled: number };
}

/** Stats with every count at zero, for writers to fill in. */
export function emptyStats(): DeltaStats {
  return {
    unchanged: 0,
    moved: 0,
    delta: 0,
    new: 0,
    deleted: 0,
    metadataOnly: 0,
    other: 0,
    targetFileBytes: 0,
    deltaBytes: 0,
    payloadBytes: { vcdiff: 0, bsdiff: 0, brotli: 0, raw: 0, gzip: 0, assembled: 0 },
  };
}

export interface DeltaHeader {
  format: typeof FORMAT_NAME;
  version: number;
  /** Oldest reader version that can apply this delta. */
  minReaderVersion: number;
  tool: string;
  created: string;
  /** `count` is the number of lines; `coding` is `records` when absent (deltas before version 3). */
  entries: { file: string; sha256: string; count: number; rawBytes: number; coding: EntriesCoding };
  source: { treeSha256: string; entries: number };
  target: { treeSha256: string; entries: number };
  stats: DeltaStats;
  /** The largest blobs, to tell the user where the bytes go. */
  largest: { path: string; op: ContentOpName; bytes: number }[];
  /**
   * The pack (v3): the small payloads of many records compressed as one brotli stream, so that
   * what the new files share (a vocabulary, a licence, a package's idioms) is paid for once. `blob`
   * names it under blobs/; `bytes` is its decompressed size, at most PACK_MAX_BYTES.
   */
  pack?: { blob: string; bytes: number };
  /** Free-form data from the caller (the Docker workflow stores image ids and config here). */
  annotations?: unknown;
}

/** The largest pack a writer makes or a reader accepts, decompressed: apply holds it in memory. */
export const PACK_MAX_BYTES = 32 * 1024 * 1024;

/**
 * Where an encoded payload lives: a file under blobs/, inline in the record when it is so small
 * that a tar member (512-byte header plus padding) would cost more, or (v3) `size` bytes at `at`
 * in the delta's decompressed pack.
 */
export type Payload = { blob: string } | { inline: Buffer } | { packed: PackedPayload };

export type PackedPayload = { at: number; size: number };

/** How a target file's bytes are obtained. */
export type ContentOp =
  | { op: 'same' } // source file at the same path, identical bytes
  | { op: 'copy'; from: RelPath } // identical bytes at another source path
  // `brotli`: the VCDIFF (made without secondary compression) is itself brotli-compressed,
  // which beats xdelta3's own secondary compressors on real binaries.
  | { op: 'vcdiff'; from: RelPath; fromSha256: string; brotli: boolean; payload: Payload }
  // A bsdiff-style patch (docs/bsdiff.md): approximate matches plus bytewise differences,
  // much smaller than VCDIFF on recompiled binaries.
  // `exe` (version 2): the patch is between the two files as transformed by src/exefilter
  // (relative branch targets made absolute); apply undoes it on the decoded bytes. With
  // `exe.source.addressMap` (version 3) the source's addresses are also relabelled (one way).
  // `segmented` (version 2): a DIMGBSD2 patch (the file was too large for the memory budget
  // to encode whole), which version 1 readers cannot decode.
  | { op: 'bsdiff'; from: RelPath; fromSha256: string; payload: Payload; exe?: PairTransform; segmented?: true }
  | { op: 'brotli'; payload: Payload }
  | { op: 'raw'; payload: Payload }
  // (version 2) A gzip file rebuilt from its decompressed bytes (`inner`, `innerSize` long) and an
  // exact-deflate recipe (src/deflate) that gives back the very same compressed bytes.
  | { op: 'gzip'; innerSize: number; inner: GzipInner; recipe: Payload }
  // (version 3) A VCDIFF against an assembled source: the concatenation, in order, of several
  // source files (a new bundle or source map made of the old tree's files, src/delta/assemble.ts).
  | { op: 'assembled'; sources: AssembledSource[]; brotli: boolean; payload: Payload };

export type AssembledOp = Extract<ContentOp, { op: 'assembled' }>;

/** An assembled source has at most this many parts... */
export const ASSEMBLED_MAX_SOURCES = 32;
/** ...of at most this many bytes in all (assembledBound): one VCDIFF source window (DEFAULT_WINDOW) covers them. */
export const ASSEMBLED_MAX_BYTES = 64 * 1024 * 1024;

/** A part taken as JSON text (`escape: 'json'`) has at most this many bytes (a source file in a source map). */
export const ASSEMBLED_ESCAPED_MAX_BYTES = 1024 * 1024;

/**
 * One part of an assembled source: a source file, its exact size and sha256; with `target`, a
 * file of the target instead, which this delta restores first (its own op takes no target part);
 * with `escape: 'json'`, the file's text as the body of a JSON string, as a source map's
 * `sourcesContent` holds it.
 */
export interface AssembledSource {
  path: RelPath;
  size: number;
  sha256: string;
  target?: true;
  escape?: 'json';
}

/**
 * The most bytes the parts can assemble to: a part taken as JSON text grows at most 6 times
 * (a control byte becomes `\u00XX`, an invalid one U+FFFD).
 */
export function assembledBound(sources: readonly AssembledSource[]): number {
  return sources.reduce((n, s) => n + (s.escape ? 6 * s.size : s.size), 0);
}

/** True when the record's content is assembled from target files too: it is restored after them. */
export function usesTargetParts(r: FileRecord): boolean {
  return r.content.op === 'assembled' && r.content.sources.some((s) => s.target);
}

/**
 * The decompressed bytes of a gzip member: a brotli'd VCDIFF against a source file (decompressed
 * first when `gunzipFrom`), or brotli of the bytes themselves.
 */
export type GzipInner =
  { op: 'vcdiff'; from: RelPath; fromSha256: string; gunzipFrom: boolean; payload: Payload } | { op: 'brotli'; payload: Payload };

export type ContentOpName = ContentOp['op'];

/** The same metadata the tree model carries. */
export type RecordMeta = Metadata;

interface RecordBase {
  path: RelPath;
  meta: RecordMeta;
}

export type DeltaRecord =
  | (RecordBase & { kind: 'file'; size: number; sha256: string; content: ContentOp })
  | (RecordBase & { kind: 'dir' })
  | (RecordBase & { kind: 'symlink'; target: string })
  | (RecordBase & { kind: 'hardlink'; linkTo: RelPath })
  | (RecordBase & { kind: 'chardev' | 'blockdev'; major: number; minor: number })
  | (RecordBase & { kind: 'fifo' });

export type FileRecord = Extract<DeltaRecord, { kind: 'file' }>;

/**
 * The oldest reader that restores `r` correctly: 3 for the assembled op (older readers refuse it),
 * a payload in the pack (they would take it for a blob and find none) and for a bsdiff whose executable transform relabels the source's addresses (a version 2
 * reader would ignore the map); 2 for what version 1 readers would misread (a bsdiff with an
 * executable transform: they would ignore the field), cannot decode (a segmented bsdiff patch)
 * or refuse (the gzip op), else 1. Writers put the largest over their
 * records in the header's `minReaderVersion`.
 */
export function readerVersionOf(r: DeltaRecord): number {
  if (r.kind !== 'file') return BASE_READER_VERSION;
  const c = r.content;
  if (c.op === 'assembled' || (c.op === 'bsdiff' && c.exe?.source.addressMap) || ('payload' in c && 'packed' in c.payload)) return 3;
  return (c.op === 'bsdiff' && (c.exe || c.segmented)) || c.op === 'gzip' ? 2 : BASE_READER_VERSION;
}
