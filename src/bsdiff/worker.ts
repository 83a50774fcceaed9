/** Worker side of BsdiffPool: one bsdiffEncode at a time, off the main thread. */
import { serveJobs } from '../util/worker-serve.js';
import { bsdiffEncode, type BsdiffResult } from './encode.js';
import { bsdiffEncodeSegmented, type SegmentPlan } from './segmented.js';

export interface BsdiffJob {
  source: Uint8Array;
  target: Uint8Array;
  patch: Uint8Array;
  /** Encode in segments of these sizes (DIMGBSD2) instead of whole. */
  segments?: SegmentPlan;
}

/** Structured clone turns Buffers into Uint8Arrays; paths must be Buffers again. */
const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

serveJobs(async (job: BsdiffJob): Promise<BsdiffResult> => {
  const [source, target, patch] = [asBuffer(job.source), asBuffer(job.target), asBuffer(job.patch)];
  const r = job.segments ? await bsdiffEncodeSegmented(source, target, patch, job.segments) : await bsdiffEncode(source, target, patch);
  return { bytes: r.bytes, sha256: r.sha256 };
});
