/**
 * The `.dimg` file: one tar holding everything needed to rebuild image B, byte for byte,
 * from image A (docs/format.md, "Image deltas"). Its first member is the header, which
 * lists every other member with its size and sha256, so a reader refuses a newer format
 * before reading anything else and detects truncation or damage member by member.
 */

export const DIMG_FORMAT = 'deltaimg-image';
/**
 * Version 2 added `stored.recipe` (exact-deflate recipes). A version-1 reader ignores it and
 * stores such layers as tars (same image id, a new manifest digest, and it says so), which is
 * not a misreading, so the writer keeps `minReaderVersion` at 1.
 */
export const DIMG_VERSION = 2;
export const DIMG_MIN_READER_VERSION = 1;
export const DIMG_HEADER = 'dimg.json';
/** The header is small JSON; anything bigger is not a header we wrote. */
export const DIMG_HEADER_MAX_BYTES = 64 * 1024 * 1024;

export interface DimgHeader {
  format: typeof DIMG_FORMAT;
  version: number;
  /** The oldest reader that can apply this file; newer readers compare against it. */
  minReaderVersion: number;
  tool: string;
  created: string;
  /** One per platform, in the target's order. */
  images: DimgImage[];
  /** B's layers not shared with A, rebuilt on apply; keyed by diff_id, shared across platforms. */
  layers: DimgLayer[];
  /**
   * Regular files up to this size keep their bytes in the layer skeletons (docs/format.md, "Layer
   * skeletons"); A's skeletons must be made with the same value on both sides to serve as references.
   */
  inlineMax: number;
  /** Every member after the header, in archive order. */
  members: DimgMember[];
  /**
   * The target's own image index (a multi-platform registry image), kept byte for byte so a
   * restore of every platform to a registry keeps the index digest too. Readers without it ignore it.
   */
  targetIndex?: { mediaType: string; digest: string; member: string };
}

export interface DimgMember {
  name: string;
  size: number;
  sha256: string;
}

export interface DimgImage {
  platform: string;
  base: { configDigest: string; diffIds: string[] };
  target: {
    configDigest: string;
    /** Member holding B's config bytes, exactly as stored. */
    configMember: string;
    manifest?: { mediaType: string; digest: string; member: string };
    names: string[];
    layers: DimgTargetLayer[];
  };
}

export interface DimgTargetLayer {
  diffId: string;
  /** Size of the uncompressed layer tar. */
  size: number;
  /** 'base': the bytes come from A's layer with this diff_id; 'rebuilt': from `layers`. */
  from: 'base' | 'rebuilt';
  /** How B stored the layer (its manifest's descriptor), when B had a manifest. */
  stored?: StoredLayer;
}

export interface StoredLayer {
  digest: string;
  size: number;
  mediaType: string;
  compression: 'none' | 'gzip' | 'zstd';
  /** The member holding the exact-deflate recipe (src/deflate) that rebuilds these bytes from the tar. */
  recipe?: StoredRecipe;
  /** Why diff found no way to rebuild these bytes exactly (apply then stores the tar and says why). */
  inexact?: string;
  /** Version-1 writers' way back (Node's zlib at `level`); still applied from old deltas. */
  replay?: GzipReplay;
}

export interface StoredRecipe {
  member: string;
  /** How the recipe rebuilds the stream, in words (`gzip, 1 member, tokens`). */
  method: string;
}

export interface GzipReplay {
  kind: 'gzip';
  /** zlib deflate level that reproduces the deflate stream. */
  level: number;
  /** The gzip header bytes (RFC 1952) before the deflate stream, hex. */
  headerHex: string;
}

export interface DimgLayer {
  diffId: string;
  size: number;
  /** The base image (config digest) whose root filesystem the layer's files were diffed against. */
  baseConfigDigest: string;
  /** Member holding the encoded skeleton (tar headers and padding). */
  skeletonMember: string;
  skeletonMethod: string;
  /** Member prefix of the tree delta that rebuilds the layer's file contents. */
  deltaPrefix: string;
  files: number;
  contentBytes: number;
  /** Bytes this layer costs in the .dimg (skeleton + tree delta). */
  deltaBytes: number;
}

export const memberNames = {
  config: (digest: string) => `config/${hexOf(digest)}.json`,
  manifest: (digest: string) => `manifest/${hexOf(digest)}.json`,
  skeleton: (diffId: string) => `layers/${hexOf(diffId)}/skeleton`,
  delta: (diffId: string) => `layers/${hexOf(diffId)}/delta`,
  recipe: (blobDigest: string) => `recipes/${hexOf(blobDigest)}`,
};

/** Member names are ours, so a name outside this shape means a damaged or hostile file. */
export const MEMBER_NAME = /^(?:[A-Za-z0-9][A-Za-z0-9._-]*)(?:\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

export function hexOf(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new Error(`not a sha256 digest: ${digest}`);
  return m[1]!;
}
