/**
 * The image model shared by every transport (after go-containerregistry): an image is its
 * config bytes plus its layers, base first; each source (docker-archive, OCI layout, ...) is
 * one small reader module producing these, each destination one writer consuming them.
 */
import type { ImageRef } from './ref.js';
import type { PushOptions } from './registry/writer.js';
import { DeltaimgError } from '../util/errors.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** "linux/arm64/v8", "linux/amd64". */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join('/');
}

export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !x || /\s/.test(x))) {
    throw new DeltaimgError('USAGE', `bad platform "${s}": expected os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant ? { os, architecture, variant } : { os, architecture };
}

export type Compression = 'none' | 'gzip' | 'zstd';

export interface Layer {
  /** "sha256:<hex>" of the uncompressed tar, from config rootfs.diff_ids. */
  diffId: string;
  /** Digest of the blob as stored (== diffId when stored uncompressed). */
  digest: string;
  /** Stored blob size in bytes. */
  size: number;
  /** As the manifest says; classic docker-archive: docker's rootfs tar type. */
  mediaType: string;
  compression: Compression;
  /** Blob bytes exactly as stored; the stream fails at its end when they do not hash to `digest`. */
  openStored(): Promise<NodeJS.ReadableStream>;
  /** The layer tar; the stream fails at its end when it does not hash to `diffId`. */
  openUncompressed(): Promise<NodeJS.ReadableStream>;
  /** The tar's size when known without reading it (an uncompressed blob, a .dimg's record). */
  uncompressedSize?: number;
  /**
   * The stored bytes are recomputed (a blob recompressed from its tar) and may not hash to
   * `digest`: writers check them first and store the tar instead when they do not.
   */
  recomputed?: boolean;
  /** Where the blob lives in a registry: a push to another repository there mounts it instead of uploading. */
  blobSource?: { registry: string; repository: string };
}

/** A Layer whose stored bytes can also be read without the digest check (what verify hashes). */
export interface RawLayer extends Layer {
  openStoredUnchecked(): Promise<NodeJS.ReadableStream>;
}

export function isRawLayer(layer: Layer): layer is RawLayer {
  return typeof (layer as Partial<RawLayer>).openStoredUnchecked === 'function';
}

export interface ImageManifest {
  mediaType: string;
  /** Exact bytes as stored: their sha256 is `digest`. */
  bytes: Buffer;
  digest: string;
}

export interface Image {
  /** From config os/architecture/variant. */
  platform: Platform;
  /** The config JSON bytes exactly as stored (its sha256 is the image id). */
  config: Buffer;
  /** "sha256:<hex>" of config. */
  configDigest: string;
  /** Exact manifest bytes when the source has one (OCI layouts, Docker >= 25 archives). */
  manifest?: ImageManifest;
  /** Base first; diffIds equal the config's rootfs.diff_ids in order (checked on open). */
  layers: Layer[];
  /** Repo tags / ref names seen in the source. */
  names: string[];
}

export interface ImageSource {
  readonly ref: ImageRef;
  /** One per platform (a multi-platform OCI index gives several), after selecting by REF if given. */
  images(): Image[];
  /** The top-level index of a multi-platform image, exact bytes, when the source has one (registries). */
  index?: ImageManifest;
  /** Removes temp/spool files. */
  close(): Promise<void>;
}

export interface WrittenImage {
  configDigest: string;
  /** Digest of the manifest blob written (OCI layouts and the OCI form of docker-archive). */
  manifestDigest?: string;
  /** Digests of the layer blobs as written, base first. */
  layerDigests: string[];
}

export interface WriteOptions {
  /** docker:// destinations: credentials, TLS, the original index to keep. */
  registry?: PushOptions;
  /** docker-archive only: 'classic' (default: <id>/layer.tar, what every engine loads) or 'oci' (the Docker >= 25 form). */
  format?: 'classic' | 'oci';
  tmpDir?: string;
}
