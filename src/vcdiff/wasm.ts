/**
 * Loads wasm/xdelta3.wasm (xdelta3 3.1.1 + native-build/xd3glue.c, a standalone wasm
 * with a single import) and wraps one xd3 stream per job.
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { DeltaimgError } from '../util/errors.js';

/** Return codes of xg_run (xdelta3's XD3_* codes). */
export const XD3 = {
  INPUT: -17703,
  OUTPUT: -17704,
  GETSRCBLK: -17705,
  GOTHEADER: -17706,
  INTERNAL: -17710,
  INVALID: -17711,
  INVALID_INPUT: -17712,
  UNIMPLEMENTED: -17714,
} as const;

/*
 * The project compiles against lib ES2022 without DOM, where TypeScript has no WebAssembly
 * declarations; these are the few parts used here (kept local so they cannot clash).
 */
export interface WasmModule {
  readonly __wasmModule?: never;
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => { exports: unknown };
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface GlueExports {
  memory: WasmMemory;
  _initialize(): void;
  xg_create(encoding: number, level: number, secondary: number, winsize: number): number;
  xg_config_error(job: number): number;
  xg_set_source(job: number, sourceSize: number, srcwin: number): number;
  xg_set_appheader(job: number, ptr: number, len: number): number;
  xg_appheader_ptr(job: number): number;
  xg_appheader_len(job: number): number;
  xg_input_ptr(job: number): number;
  xg_input_cap(job: number): number;
  xg_provide_input(job: number, len: number, last: number): void;
  xg_run(job: number): number;
  xg_output_ptr(job: number): number;
  xg_output_len(job: number): number;
  xg_consume_output(job: number): void;
  xg_block_offset(job: number): number;
  xg_block_ptr(job: number): number;
  xg_block_len(job: number): number;
  xg_block_done(job: number, nread: number): void;
  xg_message(job: number): number;
  xg_strerror(code: number): number;
  xg_close(job: number): number;
  xg_destroy(job: number): void;
  xg_malloc(size: number): number;
  xg_free(ptr: number): void;
}

const WASM_URL = new URL('../../wasm/xdelta3.wasm', import.meta.url);
let compiled: WasmModule | undefined;

/**
 * 'optimized': Liftoff is turned off before compiling: V8 never tiers up a wasm function
 * that is already running, and an encoder spends a whole window inside one call, so baseline
 * code would index large sources several times slower. The price: each function is compiled
 * by TurboFan on its first call (V8 compiles wasm lazily), ~0.1-0.8 s of a process's first job.
 * 'baseline-first': left as V8 has it (Liftoff, then hot functions tiered up between calls),
 * for a process whose first job is a decode: decoders return to JavaScript every window or
 * block, so their code tiers up, and a small decode does not wait for TurboFan.
 */
export type CompileTier = 'optimized' | 'baseline-first';

/**
 * Compiles the module once per process (or adopts one compiled elsewhere and posted to
 * this worker); the first caller's tier decides (see CompileTier). 'baseline-first' does not
 * switch Liftoff back on if something in the process already turned it off.
 */
export function xdelta3Module(tier: CompileTier = 'optimized'): WasmModule {
  if (!compiled) {
    if (tier === 'optimized') setFlagsFromString('--no-liftoff');
    compiled = new WA.Module(moduleBytes());
  }
  return compiled;
}

let compilingAhead: Promise<WasmModule> | undefined;

/**
 * Compiles the module 'optimized' ahead of its first job: every function at once, by TurboFan
 * on V8's background threads (~0.3 s of CPU), for a caller with other work to do meanwhile
 * (diff scans both trees first). Otherwise each function is compiled on its first call, in
 * the middle of a job, and pool workers starting together compile the same code each
 * (measured on the Debian pair: up to 0.8 s per worker). Await it before xdelta3Module().
 */
export function compileAhead(): Promise<WasmModule> {
  if (compiled) return Promise.resolve(compiled);
  compilingAhead ??= (async () => {
    setFlagsFromString('--no-liftoff');
    setFlagsFromString('--no-wasm-lazy-compilation');
    const module = await WA.compile(moduleBytes());
    compiled ??= module;
    return compiled;
  })();
  return compilingAhead;
}

function moduleBytes(): Buffer {
  try {
    return readFileSync(WASM_URL);
  } catch (err) {
    throw new DeltaimgError(
      'INTERNAL',
      `cannot read ${WASM_URL.pathname}: ${(err as Error).message}; reinstall deltaimg or run npm run build:wasm`,
    );
  }
}

export function adoptModule(module: WasmModule): void {
  compiled ??= module;
}

export type Secondary = 'none' | 'djw' | 'fgk';
const SECONDARY_CODE: Record<Secondary, number> = { none: 0, djw: 1, fgk: 2 };

export interface JobConfig {
  mode: 'encode' | 'decode';
  level: number;
  secondary: Secondary;
  /** Encoder: target bytes per VCDIFF window. Decoder: delta input buffer size. */
  inputWindow: number;
}

/**
 * Instances are reused by the next job on the same thread while their memory is small:
 * creating one, then zero-filling fresh pages for its tables, cost more than the work itself
 * on small files. A job that grew memory past this gives its instance up to the GC, so an idle
 * thread never holds more than this.
 */
export const REUSE_MAX_BYTES = 128 * 1024 * 1024;
let idleInstance: GlueExports | null = null;

function acquireInstance(tier: CompileTier): GlueExports {
  const reused = idleInstance;
  idleInstance = null;
  if (reused) return reused;
  const instance = new WA.Instance(xdelta3Module(tier), {
    env: { emscripten_notify_memory_growth: () => undefined },
  });
  const glue = instance.exports as unknown as GlueExports;
  glue._initialize();
  return glue;
}

function releaseInstance(glue: GlueExports): void {
  if (idleInstance === null && glue.memory.buffer.byteLength <= REUSE_MAX_BYTES) idleInstance = glue;
}

/** One xd3 stream, in a wasm instance of its own while it runs. */
export class Xd3Job {
  private readonly glue: GlueExports;
  private readonly job: number;

  constructor(config: JobConfig) {
    this.glue = acquireInstance(config.mode === 'decode' ? 'baseline-first' : 'optimized');
    const encoding = config.mode === 'encode' ? 1 : 0;
    this.job = this.glue.xg_create(encoding, config.level, SECONDARY_CODE[config.secondary], config.inputWindow);
    if (this.job === 0) throw new DeltaimgError('INTERNAL', 'xdelta3: out of memory creating the stream');
    const err = this.glue.xg_config_error(this.job);
    if (err !== 0) {
      const why = this.message(err);
      this.destroy();
      throw new DeltaimgError('INTERNAL', `xdelta3: cannot configure stream: ${why}`);
    }
  }

  /** Bytes of wasm memory in use now (grows, never shrinks). */
  get memoryBytes(): number {
    return this.glue.memory.buffer.byteLength;
  }

  /** A fresh view each time: any call into wasm may grow (and so replace) the buffer. */
  private bytes(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.glue.memory.buffer, ptr, len);
  }

  setSource(sourceSize: number, sourceWindow: number): void {
    const ret = this.glue.xg_set_source(this.job, sourceSize, sourceWindow);
    if (ret !== 0) throw new DeltaimgError('INTERNAL', `xdelta3: cannot set source (window ${sourceWindow} bytes): ${this.message(ret)}`);
  }

  setAppHeader(header: Uint8Array): void {
    const ptr = this.glue.xg_malloc(header.length || 1);
    this.bytes(ptr, header.length).set(header);
    const ret = this.glue.xg_set_appheader(this.job, ptr, header.length);
    this.glue.xg_free(ptr);
    if (ret !== 0) throw new DeltaimgError('INTERNAL', 'xdelta3: out of memory setting the application header');
  }

  /** Decoder, after GOTHEADER: a copy of the application header (empty if none). */
  appHeader(): Buffer {
    const len = this.glue.xg_appheader_len(this.job);
    const ptr = this.glue.xg_appheader_ptr(this.job);
    return ptr === 0 || len === 0 ? Buffer.alloc(0) : Buffer.from(this.bytes(ptr, len));
  }

  /** Where the next input goes; valid until the next call into wasm. */
  inputBuffer(): Uint8Array {
    return this.bytes(this.glue.xg_input_ptr(this.job), this.glue.xg_input_cap(this.job));
  }

  provideInput(len: number, last: boolean): void {
    this.glue.xg_provide_input(this.job, len, last ? 1 : 0);
  }

  run(): number {
    return this.glue.xg_run(this.job);
  }

  /** Pending output; valid until consumeOutput() or the next call into wasm. */
  output(): Uint8Array {
    return this.bytes(this.glue.xg_output_ptr(this.job), this.glue.xg_output_len(this.job));
  }

  consumeOutput(): void {
    this.glue.xg_consume_output(this.job);
  }

  /** The pending source block request: file offset and the slot to read it into. */
  blockRequest(): { offset: number; into: Uint8Array } {
    const offset = this.glue.xg_block_offset(this.job);
    return { offset, into: this.bytes(this.glue.xg_block_ptr(this.job), this.glue.xg_block_len(this.job)) };
  }

  blockDone(nread: number): void {
    this.glue.xg_block_done(this.job, nread);
  }

  /** 0 when the stream ended cleanly (a decoder not in the middle of a window). */
  close(): number {
    return this.glue.xg_close(this.job);
  }

  /** xdelta3's own words for an error code, plus the stream's detail message. */
  message(code: number): string {
    const what = this.cString(this.glue.xg_strerror(code));
    const detail = this.cString(this.glue.xg_message(this.job));
    return detail && detail !== what ? `${what}: ${detail}` : what;
  }

  /** Frees the stream; after a wasm trap the instance is unusable and is simply dropped. */
  destroy(): void {
    try {
      if (this.job !== 0) this.glue.xg_destroy(this.job);
      releaseInstance(this.glue);
    } catch {
      // the whole instance (and its memory) goes to the GC
    }
  }

  private cString(ptr: number): string {
    if (ptr === 0) return '';
    const mem = new Uint8Array(this.glue.memory.buffer);
    let end = ptr;
    while (end < mem.length && mem[end] !== 0) end++;
    return Buffer.from(mem.subarray(ptr, end)).toString('latin1');
  }
}
