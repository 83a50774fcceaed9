/**
 * Public entry points on paths and streams. Files are written to a temp file beside the
 * destination and renamed only on success, so a failed job never leaves a half-written file.
 */
import type { Readable, Writable } from 'node:stream';
import { registerTemp, streamingTo, writeFileAtomically } from '../util/atomic-output.js';
import { DeltaimgError, ioError } from '../util/errors.js';
import { runDecode, runEncode, type DecodeResult, type EncodeResult, type JobStats } from './engine.js';
import type { AppHeader } from './header.js';
import { fingerprintSource } from './header.js';
import {
  BufferInput,
  BufferSource,
  FdOutput,
  FileReader,
  FileWriter,
  showPath,
  StreamInput,
  StreamOutput,
  type PathLike,
  type SequentialInput,
  type SequentialOutput,
} from './io.js';
import type { VcdiffOptions } from './options.js';

export type { PathLike } from './io.js';
export type InputArg = PathLike | Readable;
export type OutputArg = PathLike | Writable;

function isPath(x: unknown): x is PathLike {
  return typeof x === 'string' || Buffer.isBuffer(x);
}

function isStream(x: unknown): boolean {
  return typeof x === 'object' && x !== null && typeof (x as { pipe?: unknown }).pipe === 'function';
}

/** Callers from plain JavaScript get a usage error, not a TypeError deep inside. */
function checkArgs(source: unknown, input: unknown, output: unknown): void {
  if (source !== null && !isPath(source)) throw new DeltaimgError('USAGE', 'vcdiff: source must be a path (string or Buffer) or null');
  if (!isPath(input) && !isStream(input)) throw new DeltaimgError('USAGE', 'vcdiff: input must be a path (string or Buffer) or a Readable');
  if (!isPath(output) && !isStream(output))
    throw new DeltaimgError('USAGE', 'vcdiff: output must be a path (string or Buffer) or a Writable');
}

/** Runs `produce` into a temp file beside `path`; renames it into place only if it succeeds. */
async function writeAtomically<T>(path: PathLike, produce: (out: SequentialOutput) => Promise<T>): Promise<T> {
  return writeFileAtomically(
    path,
    async (temp) => {
      const writer = await FileWriter.create(temp).catch((err: unknown) => {
        // Name the file the user asked for, not our temp name.
        const cause = ((err as { cause?: unknown }).cause ?? err) as NodeJS.ErrnoException;
        const plain = Object.assign(new Error(String(cause.message).replace(/, \w+ '.*'$/, '')), { code: cause.code });
        throw ioError('create', showPath(path), plain);
      });
      try {
        const result = await produce(writer);
        await writer.close();
        return result;
      } finally {
        await writer.close().catch(() => undefined);
      }
    },
    { replace: true },
  );
}

/**
 * How an output path is written: 'atomic' = a temp file beside it, renamed into place on
 * success; 'create' = the path itself, which must not exist yet (O_EXCL), removed on failure:
 * for callers whose path is already a temp name of their own (a rename per file costs).
 */
export type OutputMode = 'atomic' | 'create';

/** Writes `path`, which must not exist, directly; removes it if `produce` fails. */
async function writeNewFile<T>(path: PathLike, produce: (out: SequentialOutput) => Promise<T>): Promise<T> {
  const temp = registerTemp(path);
  let writer: FileWriter;
  try {
    writer = await FileWriter.create(path);
  } catch (err) {
    temp.release(); // not ours: it existed already, or could not be created
    throw err;
  }
  try {
    const result = await produce(writer);
    await writer.close();
    temp.release();
    return result;
  } catch (err) {
    await writer.close().catch(() => undefined);
    await temp.remove();
    throw err;
  }
}

/** Sends output to a path (atomically, or created in place) or to a stream (as produced). */
async function withOutput<T>(out: OutputArg, name: string, mode: OutputMode, produce: (out: SequentialOutput) => Promise<T>): Promise<T> {
  if (!isPath(out)) {
    const done = streamingTo(name);
    const result = await produce(new StreamOutput(out, name));
    done();
    return result;
  }
  return mode === 'create' ? writeNewFile(out, produce) : writeAtomically(out, produce);
}

interface OpenedInput {
  input: SequentialInput;
  /** Set for files: the size and a reader for fingerprinting. */
  file: FileReader | null;
  name: string;
}

async function openInput(arg: InputArg, role: string, streamName: string): Promise<OpenedInput> {
  if (isPath(arg)) {
    const file = await FileReader.open(arg, role);
    return { input: file, file, name: showPath(arg) };
  }
  return { input: new StreamInput(arg, streamName), file: null, name: streamName };
}

async function openSource(path: PathLike | null): Promise<FileReader | null> {
  return path === null ? null : FileReader.open(path, 'source');
}

/** Encodes TARGET against SOURCE (or alone, when null) into a VCDIFF delta. */
export async function encodeAny(
  sourcePath: PathLike | null,
  target: InputArg,
  delta: OutputArg,
  opts?: VcdiffOptions,
  mode: OutputMode = 'atomic',
): Promise<EncodeResult & JobStats> {
  checkArgs(sourcePath, target, delta);
  const source = await openSource(sourcePath);
  let opened: OpenedInput | null = null;
  try {
    opened = await openInput(target, 'target', 'standard input');
    const header: AppHeader = {};
    if (source && source.size > 0) header.source = await fingerprintSource(source);
    if (opened.file) header.targetSize = opened.file.size;
    const ports = {
      source,
      target: opened.input,
      targetSize: opened.file?.size ?? null,
      header,
      targetName: opened.name,
    };
    return await withOutput(delta, 'standard output', mode, (out) => runEncode({ ...ports, out }, opts));
  } finally {
    await opened?.file?.close();
    await source?.close();
  }
}

/** Decodes DELTA against SOURCE (or alone, when null) into the target. */
export async function decodeAny(
  sourcePath: PathLike | null,
  delta: InputArg,
  out: OutputArg,
  opts?: VcdiffOptions,
  mode: OutputMode = 'atomic',
): Promise<DecodeResult & JobStats> {
  checkArgs(sourcePath, delta, out);
  const source = await openSource(sourcePath);
  let opened: OpenedInput | null = null;
  try {
    opened = await openInput(delta, 'delta', 'standard input');
    const ports = {
      source,
      delta: opened.input,
      deltaName: opened.name,
      sourceName: sourcePath === null ? null : showPath(sourcePath),
    };
    return await withOutput(out, 'standard output', mode, (sink) => runDecode({ ...ports, out: sink }, opts));
  } finally {
    await opened?.file?.close();
    await source?.close();
  }
}

function publicEncode(r: EncodeResult): EncodeResult {
  return { targetBytes: r.targetBytes, deltaBytes: r.deltaBytes, deltaSha256: r.deltaSha256 };
}

function publicDecode(r: DecodeResult): DecodeResult {
  return { outputBytes: r.outputBytes, outputSha256: r.outputSha256 };
}

/** sourcePath null = no source (plain VCDIFF compression). DELTA is written atomically. */
export async function encodeFile(
  sourcePath: PathLike | null,
  targetPath: PathLike,
  deltaPath: PathLike,
  opts?: VcdiffOptions,
): Promise<EncodeResult> {
  return publicEncode(await encodeAny(sourcePath, targetPath, deltaPath, opts));
}

/** OUT is written atomically: on any failure it is left untouched (or absent). */
export async function decodeFile(
  sourcePath: PathLike | null,
  deltaPath: PathLike,
  outPath: PathLike,
  opts?: VcdiffOptions,
): Promise<DecodeResult> {
  return publicDecode(await decodeAny(sourcePath, deltaPath, outPath, opts));
}

/**
 * Stream variants (the CLI's `-`). Either side may also be a path. A streamed target has no
 * recorded size, so a delta cut at a window boundary is only caught when the target was a file;
 * a streamed output has already been partly written when a decode fails.
 */
export async function encodeStream(
  sourcePath: PathLike | null,
  target: InputArg,
  out: OutputArg,
  opts?: VcdiffOptions,
): Promise<EncodeResult> {
  return publicEncode(await encodeAny(sourcePath, target, out, opts));
}

export async function decodeStream(
  sourcePath: PathLike | null,
  delta: InputArg,
  out: OutputArg,
  opts?: VcdiffOptions,
): Promise<DecodeResult> {
  return publicDecode(await decodeAny(sourcePath, delta, out, opts));
}

export interface InMemoryDecode {
  /** The whole source (null: none); the caller has read it once and checked it. */
  source: Uint8Array | null;
  /** The whole VCDIFF delta. */
  delta: Uint8Array;
  /** An open file descriptor the target is written to, from its current position; the caller closes it. */
  outFd: number;
  /** How errors name the delta, the source and the output. */
  deltaName: string;
  sourceName: string | null;
  outName: string;
}

/**
 * Decodes on the calling thread with everything but the output in memory: for the thousands
 * of small files of a tree, a worker round trip, temp files and a rename per file cost far
 * more than the decode. Errors are the same CORRUPT_DELTA / WRONG_SOURCE ones as decodeFile's.
 */
export async function decodeInMemory(job: InMemoryDecode, opts?: VcdiffOptions): Promise<DecodeResult> {
  const ports = {
    source: job.source === null ? null : new BufferSource(job.source),
    delta: new BufferInput(job.delta),
    out: new FdOutput(job.outFd, job.outName),
    deltaName: job.deltaName,
    sourceName: job.sourceName,
  };
  return publicDecode(await runDecode(ports, opts));
}
