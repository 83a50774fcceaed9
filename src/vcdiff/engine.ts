/**
 * The encode and decode loops: drive one xd3 stream through its ports until the input is
 * exhausted, mapping every decoder failure to CORRUPT_DELTA or WRONG_SOURCE.
 */
import { VcdiffWindowScanner } from './window-scan.js';
import { createHash, type Hash } from 'node:crypto';
import { DeltaimgError } from '../util/errors.js';
import { EventLoopYielder } from '../util/yield.js';
import { fingerprintSource, parseAppHeader, formatAppHeader, type AppHeader } from './header.js';
import type { RandomAccessSource, SequentialInput, SequentialOutput } from './io.js';
import { DECODE_INPUT_CHUNK, resolveOptions, sourceWindowFor, type VcdiffOptions } from './options.js';
import { XD3, Xd3Job } from './wasm.js';

export interface EncodeResult {
  targetBytes: number;
  deltaBytes: number;
  /** hex */
  deltaSha256: string;
}

export interface DecodeResult {
  outputBytes: number;
  /** hex */
  outputSha256: string;
}

/** How much wasm memory a job ended with; the pool recycles workers after big ones. */
export interface JobStats {
  wasmBytes: number;
}

/** A failure reported by xdelta3 itself (before it is given a user-facing meaning). */
class Xd3Failure extends Error {
  constructor(
    readonly code: number,
    readonly detail: string,
  ) {
    super(detail);
  }
}

/** Output side of a job: hashes and counts everything written. */
class CountingSink {
  private readonly hash: Hash | null;
  bytes = 0;
  constructor(
    private readonly out: SequentialOutput,
    hashing = true,
    private readonly maxBytes = Infinity,
  ) {
    this.hash = hashing ? createHash('sha256') : null;
  }

  async write(bytes: Uint8Array): Promise<void> {
    // Checked before writing: a hostile delta (windows of long runs) must not fill the disk.
    if (this.bytes + bytes.length > this.maxBytes) {
      throw new Xd3Failure(XD3.INVALID_INPUT, `output exceeds the ${this.maxBytes} bytes expected`);
    }
    this.hash?.update(bytes);
    this.bytes += bytes.length;
    await this.out.write(bytes);
  }

  /** Hex sha256 of everything written ('' when the sink was told not to hash). */
  hexDigest(): string {
    return this.hash ? this.hash.digest('hex') : '';
  }
}

/**
 * Runs the stream until it wants more input, serving its output and source-block requests.
 * Views into wasm memory are taken right before use: any call into wasm may grow memory.
 */
async function pump(
  job: Xd3Job,
  sink: CountingSink,
  source: RandomAccessSource | null,
  onHeader: () => void,
  yielder: EventLoopYielder,
): Promise<void> {
  for (;;) {
    // File ports are synchronous behind their promises: give signals and timers a turn.
    await yielder.maybe();
    const code = job.run();
    switch (code) {
      case XD3.INPUT:
        return;
      case XD3.OUTPUT:
        await sink.write(job.output());
        job.consumeOutput();
        break;
      case XD3.GETSRCBLK: {
        const { offset, into } = job.blockRequest();
        const nread = source ? await source.readAt(into, offset) : 0;
        job.blockDone(nread);
        break;
      }
      case XD3.GOTHEADER:
        onHeader();
        break;
      default:
        throw new Xd3Failure(code, job.message(code));
    }
  }
}

export interface EncodePorts {
  source: RandomAccessSource | null;
  target: SequentialInput;
  /** Known for files: caps the target window like xdelta3 does, and is fingerprinted. */
  targetSize: number | null;
  header: AppHeader;
  out: SequentialOutput;
  targetName: string;
}

export async function runEncode(ports: EncodePorts, opts: VcdiffOptions | undefined): Promise<EncodeResult & JobStats> {
  const source = ports.source && ports.source.size > 0 ? ports.source : null;
  const resolved = resolveOptions(opts, source?.size ?? 0, ports.targetSize);
  const job = new Xd3Job({ mode: 'encode', level: resolved.level, secondary: resolved.secondary, inputWindow: resolved.targetWindow });
  const sink = new CountingSink(ports.out);
  const yielder = new EventLoopYielder();
  let targetBytes = 0;
  try {
    if (source) job.setSource(source.size, resolved.sourceWindow);
    job.setAppHeader(formatAppHeader(ports.header));
    // One full window per call, the last one short (or empty) and flagged: the same
    // window boundaries as xdelta3 -e, hence the same delta.
    for (;;) {
      const into = job.inputBuffer();
      const nread = await ports.target.readFull(into);
      const last = nread < into.length;
      if (nread === 0 && targetBytes > 0) break;
      targetBytes += nread;
      job.provideInput(nread, last);
      await pump(job, sink, source, () => undefined, yielder);
      if (last) break;
    }
    const closed = job.close();
    if (closed !== 0) throw new Xd3Failure(closed, job.message(closed));
    return { targetBytes, deltaBytes: sink.bytes, deltaSha256: sink.hexDigest(), wasmBytes: job.memoryBytes };
  } catch (err) {
    if (err instanceof Xd3Failure) {
      throw new DeltaimgError('INTERNAL', `xdelta3 failed encoding ${ports.targetName}: ${err.detail}`);
    }
    throw err;
  } finally {
    job.destroy();
  }
}

export interface DecodePorts {
  source: RandomAccessSource | null;
  delta: SequentialInput;
  out: SequentialOutput;
  deltaName: string;
  sourceName: string | null;
}

/** Turns a decode failure into CORRUPT_DELTA or WRONG_SOURCE, checking the source if it can. */
class DecodeDiagnosis {
  header: AppHeader | null = null;
  constructor(private readonly ports: DecodePorts) {}

  wrongSource(why: string): DeltaimgError {
    return new DeltaimgError(
      'WRONG_SOURCE',
      `${this.ports.deltaName} was made from a different source than ${this.ports.sourceName} (${why}); decode it with the exact file it was encoded from`,
    );
  }

  needsSource(): DeltaimgError {
    return new DeltaimgError('WRONG_SOURCE', `${this.ports.deltaName} was encoded against a source file; pass that file with -s SOURCE`);
  }

  corrupt(detail: string): DeltaimgError {
    const orSource = this.ports.source && !this.header?.source ? ', or the source is not the file it was made from' : '';
    return new DeltaimgError(
      'CORRUPT_DELTA',
      `${this.ports.deltaName} is corrupt or truncated (${detail}${orSource}); re-create or re-download the delta`,
    );
  }

  /** Called at the VCDIFF header: a source of the wrong size is rejected before any output. */
  checkSourceSize(): void {
    const expected = this.header?.source;
    if (!expected) return;
    if (!this.ports.source) throw this.needsSource();
    if (this.ports.source.size !== expected.size) {
      throw this.wrongSource(`size ${this.ports.source.size}, expected ${expected.size}`);
    }
  }

  async explain(detail: string): Promise<DeltaimgError> {
    if (!this.ports.source && /source input required/.test(detail)) return this.needsSource();
    const expected = this.header?.source;
    if (expected && this.ports.source) {
      const actual = await fingerprintSource(this.ports.source);
      if (actual.hash !== expected.hash) return this.wrongSource('its SHA-256 differs');
    }
    if (!expected && this.ports.source && /source file too short/.test(detail)) return this.wrongSource(detail);
    return this.corrupt(detail);
  }
}

export async function runDecode(ports: DecodePorts, opts: VcdiffOptions | undefined): Promise<DecodeResult & JobStats> {
  const diagnosis = new DecodeDiagnosis(ports);
  const job = new Xd3Job({ mode: 'decode', level: 0, secondary: 'none', inputWindow: DECODE_INPUT_CHUNK });
  const sink = new CountingSink(ports.out, opts?.hashOutput ?? true, opts?.maxOutputBytes);
  const yielder = new EventLoopYielder();
  const framing = new VcdiffWindowScanner(ports.deltaName, { allowUnchecked: opts?.allowUncheckedWindows ?? false });
  let gotHeader = false;
  const onHeader = () => {
    gotHeader = true;
    diagnosis.header = parseAppHeader(job.appHeader());
    diagnosis.checkSourceSize();
    const source = ports.source;
    if (source) job.setSource(source.size, sourceWindowFor(source.size, opts?.windowBytes));
  };
  try {
    for (;;) {
      const into = job.inputBuffer();
      const nread = await ports.delta.readFull(into);
      if (nread === 0) break;
      framing.feed(into.subarray(0, nread));
      job.provideInput(nread, false);
      await pump(job, sink, ports.source, onHeader, yielder);
    }
    if (!gotHeader) throw new Xd3Failure(XD3.INVALID_INPUT, 'no VCDIFF header');
    const closed = job.close();
    if (closed !== 0) throw new Xd3Failure(closed, job.message(closed));
    const digest = sink.hexDigest();
    verifyTargetSize(diagnosis, sink.bytes);
    return { outputBytes: sink.bytes, outputSha256: digest, wasmBytes: job.memoryBytes };
  } catch (err) {
    if (err instanceof Xd3Failure) throw await diagnosis.explain(err.detail);
    // xdelta3 validates its input, but should hostile bytes ever trap the decoder, that is
    // still a bad delta, not a crash of ours.
    if (isWasmTrap(err)) throw await diagnosis.explain(`decoder trapped: ${(err as Error).message}`);
    throw err;
  } finally {
    job.destroy();
  }
}

function isWasmTrap(err: unknown): boolean {
  return err instanceof Error && err.constructor.name === 'RuntimeError';
}

/** Our header records the target size: catches a delta cut exactly at a window boundary. */
function verifyTargetSize(diagnosis: DecodeDiagnosis, bytes: number): void {
  const expected = diagnosis.header?.targetSize;
  if (expected !== undefined && bytes !== expected) {
    throw new Xd3Failure(XD3.INVALID_INPUT, `output is ${bytes} bytes, expected ${expected}`);
  }
}
