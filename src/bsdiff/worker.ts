/** Worker side of BsdiffPool: one bsdiffEncode at a time, off the main thread. */
import { parentPort } from 'node:worker_threads';
import { isDeltaimgError } from '../util/errors.js';
import { bsdiffEncode } from './encode.js';
import { bsdiffEncodeSegmented, type SegmentPlan } from './segmented.js';

export interface BsdiffJob {
  id: number;
  source: Uint8Array;
  target: Uint8Array;
  patch: Uint8Array;
  /** Encode in segments of these sizes (DIMGBSD2) instead of whole. */
  segments?: SegmentPlan;
}

export type BsdiffReply =
  | { id: number; ok: true; bytes: number; sha256: string }
  | { id: number; ok: false; error: { deltaimg: boolean; code: string; message: string } };

/** Structured clone turns Buffers into Uint8Arrays; paths must be Buffers again. */
const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

parentPort?.on('message', (job: BsdiffJob) => {
  const [source, target, patch] = [asBuffer(job.source), asBuffer(job.target), asBuffer(job.patch)];
  const encoding = job.segments ? bsdiffEncodeSegmented(source, target, patch, job.segments) : bsdiffEncode(source, target, patch);
  encoding.then(
    (r) => parentPort!.postMessage({ id: job.id, ok: true, bytes: r.bytes, sha256: r.sha256 } satisfies BsdiffReply),
    (err: unknown) => {
      const e = err as Error & { code?: string };
      const error = { deltaimg: isDeltaimgError(err), code: e.code ?? 'INTERNAL', message: e.message ?? String(err) };
      parentPort!.postMessage({ id: job.id, ok: false, error } satisfies BsdiffReply);
    },
  );
});
