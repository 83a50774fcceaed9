/**
 * Container images as files, no Docker engine needed (docker-daemon aside): read, write, verify.
 *
 * Modules, one job each:
 *   ref.ts                   containers-transports references (docker-archive:PATH[:REF], oci:, oci-archive:, docker-daemon:, -)
 *   types.ts                 the model: Image = config bytes + layers (+ exact manifest bytes when the source has one)
 *   tar-index.ts, names.ts   one pass over an archive's headers -> member offsets; hostile names/links refused
 *   layout-files.ts          files by name from an indexed tar or a layout directory
 *   oci-reader.ts            index.json -> (nested index) -> manifests -> images
 *   docker-archive-reader.ts manifest.json (classic or Docker >= 25 OCI form) -> image
 *   layer.ts, digest-stream.ts  layer streams checked against digest / diff_id; gunzip, zstd CLI
 *   source.ts, spool.ts, daemon.ts  openImageSource per transport (stdin and docker save spooled to a temp file)
 *   sinks.ts, blob-plan.ts, oci-writer.ts, docker-archive-writer.ts, write.ts  writeImages
 *   verify.ts                verifyImageSource
 */
export { parseImageRef, formatImageRef, isPlainImageName, IMAGE_REF_FORMS, type ImageRef } from './ref.js';
export {
  formatPlatform,
  parsePlatform,
  type Compression,
  type Image,
  type ImageManifest,
  type ImageSource,
  type Layer,
  type Platform,
  type WriteOptions,
  type WrittenImage,
} from './types.js';
export { openImageSource, type OpenOptions } from './source.js';
export { inspectDaemonImage, pullIntoDaemon } from './daemon.js';
export { writeImages } from './write.js';
export { verifyImageSource, type LayerCheck, type VerifyReport } from './verify.js';
export { MT } from './media-types.js';
export type { RegistryOptions } from './registry/client.js';
export { bytesReceived, closeConnections } from './registry/client.js';
export { RegistryClient } from './registry/client.js';
export { readRegistryImages, topDescriptor } from './registry/reader.js';
export { artifactFile, listReferrers, pushArtifact, type PushedArtifact } from './registry/referrers.js';
export { formatRegistryRef, type RegistryRef } from './registry/ref.js';
export type { Descriptor } from './schema.js';
export { digestCheck } from './digest-stream.js';
export { hashStream } from '../util/hashing.js';
