/** Media types of manifests, indexes, configs and layers (OCI and Docker schema 2). */
import type { Compression } from './types.js';

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
} as const;

export function isIndexType(mediaType: string | undefined): boolean {
  return mediaType === MT.ociIndex || mediaType === MT.dockerList;
}

export function isManifestType(mediaType: string | undefined): boolean {
  return mediaType === MT.ociManifest || mediaType === MT.dockerManifest;
}

/** Compression named by a layer media type; undefined for types that are not layers we know. */
export function compressionOf(mediaType: string): Compression | undefined {
  if (/\.tar\+gzip$|\.tar\.gzip$/.test(mediaType) || mediaType === 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip')
    return 'gzip';
  if (/\.tar\+zstd$|\.tar\.zstd$/.test(mediaType)) return 'zstd';
  if (/(\.tar|rootfs\.diff\.tar)$/.test(mediaType)) return 'none';
  return undefined;
}

/** Compression from a blob's first bytes (classic archives do not say). */
export function sniffCompression(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.readUInt32LE(0) === 0xfd2fb528 && head.length >= 4) return 'zstd';
  return 'none';
}

/** The layer media type of a manifest family for a compression. */
export function layerMediaType(family: 'oci' | 'docker', compression: Compression): string {
  const base = family === 'oci' ? MT.ociLayer : MT.dockerLayer;
  if (compression === 'none') return base;
  return family === 'oci' ? `${base}+${compression}` : `${base}.${compression}`;
}
