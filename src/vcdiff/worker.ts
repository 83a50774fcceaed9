/**
 * Worker side of VcdiffPool: runs one encode/decode at a time with the module compiled
 * (once, with Liftoff off) by the parent thread.
 */
import { isMainThread, workerData } from 'node:worker_threads';
import { serveJobs } from '../util/worker-serve.js';
import type { DecodeResult, EncodeResult } from './engine.js';
import { decodeAny, encodeAny, type OutputMode } from './files.js';
import type { VcdiffOptions } from './options.js';
import { adoptModule, type WasmModule } from './wasm.js';

export type WirePath = string | Uint8Array | null;

export interface JobRequest {
  op: 'encode' | 'decode';
  source: WirePath;
  input: WirePath;
  output: WirePath;
  opts: VcdiffOptions | undefined;
  mode: OutputMode;
}

/** The result, and how much wasm memory the job ended with (the pool recycles big ones). */
export type JobResult = ({ op: 'encode'; result: EncodeResult } | { op: 'decode'; result: DecodeResult }) & { wasmBytes: number };

/** Structured clone turns Buffers into plain Uint8Arrays; paths must be Buffers again. */
function fromWire(p: WirePath): string | Buffer | null {
  if (p === null || typeof p === 'string') return p;
  return Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

async function runJob(req: JobRequest): Promise<JobResult> {
  const args = [fromWire(req.source), fromWire(req.input)!, fromWire(req.output)!, req.opts, req.mode] as const;
  if (req.op === 'encode') {
    const { wasmBytes, ...result } = await encodeAny(...args);
    return { op: 'encode', result, wasmBytes };
  }
  const { wasmBytes, ...result } = await decodeAny(...args);
  return { op: 'decode', result, wasmBytes };
}

if (!isMainThread) {
  adoptModule((workerData as { module: WasmModule }).module);
  serveJobs(runJob);
}
