/** Image deltas between image archives: `.dimg` files that restore image B bit for bit. */
export { diffImages, type ImageDiffOptions, type ImageDiffResult } from './diff.js';
export { applyImageDelta, type ImageApplyOptions, type ImageApplyResult, type RestoredImage } from './apply.js';
export { verifyImage, type ImageVerifyResult, type ExpectedImage } from './verify.js';
export { readDimgHeader } from './container.js';
export { imageSavedLine, inspectDimg } from './summary.js';
export { DIMG_FORMAT, DIMG_VERSION, type DimgHeader } from './format.js';
