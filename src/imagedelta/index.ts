/** Image deltas between image archives: `.dimg` files that restore image B bit for bit. */
export { diffImages, type ImageDiffOptions, type ImageDiffResult } from './diff.js';
export { applyImageDelta, type ImageApplyOptions, type ImageApplyResult, type RestoredImage } from './apply.js';
export { verifyImage, type ImageVerifyResult, type ExpectedImage } from './verify.js';
export { readDimgHeader } from './container.js';
export { imageSavedLine, inspectDimg } from './summary.js';
export { DIMG_FORMAT, DIMG_VERSION, type DimgHeader } from './format.js';
export { diffAndPublish, listDeltas, deltaBlob, DELTA_ARTIFACT_TYPE, type DiffPushResult, type ListedDelta } from './publish.js';
export { pullImage, type PullOptions, type PullReport } from './pull.js';
