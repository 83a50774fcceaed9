/**
 * Layer tars split into a skeleton (every byte that is not a regular file's content, plus the
 * program that puts them back together) and a content tree (each regular file's bytes at its
 * normalized path), and joined back byte for byte: the image delta ships B's layers as
 * skeleton deltas plus per-file deltas against A's root filesystem. Format: docs/format.md,
 * "Layer skeletons".
 */
export { splitTar, DEFAULT_INLINE_MAX, type SplitResult, type SplitOptions } from './split.js';
export { joinTar, type JoinOptions } from './join.js';
export { encodeSkeleton, decodeSkeleton, type SkeletonMethod } from './encode.js';
export { extractRootfs } from './rootfs.js';
export { parseNumeric, normalizeMemberPath } from '../tar/header.js';
