/** Container images as files, no Docker engine needed (docker-daemon aside): read, write, verify. */
export { parseImageRef, formatImageRef, IMAGE_REF_FORMS, type ImageRef } from './ref.js';
export {
  formatPlatform,
  parsePlatform,
  type Compression,
  type Image,
  type ImageManifest,
  type ImageSource,
  type ImageToWrite,
  type Layer,
  type LayerToWrite,
  type Platform,
  type WriteOptions,
  type WrittenImage,
} from './types.js';
export { openImageSource, type OpenOptions } from './source.js';
export { writeImages } from './write.js';
export { verifyImageSource, type LayerCheck, type VerifyReport } from './verify.js';
export { imageToWrite } from './convert.js';
