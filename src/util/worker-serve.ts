/**
 * Worker side of WorkerPool: runs each job message through `handle` and replies with its
 * result, or with its error flattened (DeltaimgErrors keep their code and one-line message).
 */
import { parentPort } from 'node:worker_threads';
import { isDeltaimgError } from './errors.js';
import type { JobMessage, JobReply } from './worker-pool.js';

export function serveJobs<Request, Result>(handle: (request: Request) => Promise<Result>): void {
  const port = parentPort;
  if (!port) return;
  port.on('message', (msg: JobMessage<Request>) => {
    void handle(msg.request).then(
      (result) => port.postMessage({ id: msg.id, ok: true, result } satisfies JobReply<Result>),
      (err: unknown) => port.postMessage({ id: msg.id, ok: false, error: flatten(err) } satisfies JobReply<Result>),
    );
  });
}

function flatten(err: unknown): Extract<JobReply<unknown>, { ok: false }>['error'] {
  const e = err as (Error & { code?: unknown }) | undefined;
  return {
    deltaimg: isDeltaimgError(err),
    code: String(e?.code ?? 'INTERNAL'),
    message: String(e?.message ?? err),
    ...(e?.stack ? { stack: e.stack } : {}),
  };
}
