/**
 * Worker side of VcdiffPool: runs one encode/decode at a time with the module compiled
 * (once, with Liftoff off) by the parent thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isDeltaimgError } from '../util/errors.js';
import { decodeAny, encodeAny, type OutputMode } from './files.js';
import type { VcdiffOptions } from './options.js';
import { adoptModule, type WasmModule } from './wasm.js';

export type WirePath = string | Uint8Array | null;

export interface JobRequest {
  id: number;
  op: 'encode' | 'decode';
  source: WirePath;
  input: WirePath;
  output: WirePath;
  opts: VcdiffOptions | undefined;
  mode: OutputMode;
}

export type JobReply =
  | { id: number; ok: true; result: Record<string, number | string>; wasmBytes: number }
  | { id: number; ok: false; error: { deltaimg: boolean; code: string; message: string; stack?: string } };

/** Structured clone turns Buffers into plain Uint8Arrays; paths must be Buffers again. */
function fromWire(p: WirePath): string | Buffer | null {
  if (p === null || typeof p === 'string') return p;
  return Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

async function runJob(req: JobRequest): Promise<JobReply> {
  try {
    const args = [fromWire(req.source), fromWire(req.input)!, fromWire(req.output)!, req.opts, req.mode] as const;
    const { wasmBytes, ...result } = req.op === 'encode' ? await encodeAny(...args) : await decodeAny(...args);
    return { id: req.id, ok: true, result, wasmBytes };
  } catch (err) {
    const e = err as Error & { code?: string };
    return {
      id: req.id,
      ok: false,
      error: { deltaimg: isDeltaimgError(err), code: String(e?.code ?? 'INTERNAL'), message: String(e?.message ?? err), stack: e?.stack },
    };
  }
}

const port = parentPort;
if (port) {
  adoptModule((workerData as { module: WasmModule }).module);
  port.on('message', (req: JobRequest) => {
    void runJob(req).then((reply) => port.postMessage(reply));
  });
}
