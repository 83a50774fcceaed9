/**
 * Options and their defaults, mirroring the xdelta3 command line:
 * level = -0..-9, windowBytes = -B (source window), targetWindowBytes = -W (input window),
 * secondary = -S.
 */
import { DeltaimgError } from '../util/errors.js';
import type { Secondary } from './wasm.js';

export type { Secondary } from './wasm.js';

export interface VcdiffOptions {
  /**
   * 0..9 as xdelta3 -0..-9 (0 = no compression, 1 fastest, 6 xdelta3's "default" matcher,
   * 7..9 its "slow" matcher). Default 9: the smallest deltas; images are encoded once and
   * shipped many times. Measured on esbuild 0.20.1 -> 0.20.2 (9.2 MiB): levels 1/3/6/9 give
   * 1414/845/760/738 KB for 1.2/1.0/1.5/2.4 s of CPU; libcrypto.so.3 (4.5 MiB) 1185/829/754/738 KB.
   */
  level?: number;
  /**
   * Source window in bytes (xdelta3 -B): how much of the source the encoder indexes and keeps
   * in memory at once. Rounded up to a power of two, 512 KiB .. 512 MiB. Default: the source's
   * own size (rounded up), capped at 64 MiB (xdelta3's default -B).
   */
  windowBytes?: number;
  /** Secondary compressor for the delta's sections. Default 'djw' (as xdelta3 -S djw). */
  secondary?: Secondary;
  /**
   * Target bytes per VCDIFF window (xdelta3 -W). Default 8 MiB (xdelta3's), capped by the
   * target's size; at most 16 MiB so that xdelta3 3.0.x decoders accept the delta.
   */
  targetWindowBytes?: number;
  /**
   * Decode only: false skips the output's sha256 (DecodeResult.outputSha256 is then ''), for
   * callers that will not look at it, e.g. the CLI with -q and no --json. Default true.
   */
  hashOutput?: boolean;
  /**
   * Decode only: the output may have at most this many bytes; one more is refused as a corrupt
   * delta before it is written (a record declares its file's size). Default: no limit.
   */
  maxOutputBytes?: number;
  /**
   * Decode only: accept windows without an adler32 checksum (`vcdiff decode --no-checksum`).
   * Default false: such a window is refused, as damage in it would go unnoticed.
   */
  allowUncheckedWindows?: boolean;
}

export const MIN_WINDOW = 512 * 1024; // xdelta3's XD3_MINSRCWINSZ
export const MAX_WINDOW = 512 * 1024 * 1024; // level 9 indexes every 2 bytes: a 2 GiB hash table at 1 GiB
export const DEFAULT_WINDOW = 64 * 1024 * 1024;
export const DEFAULT_TARGET_WINDOW = 8 * 1024 * 1024;
export const MIN_TARGET_WINDOW = 16 * 1024; // XD3_ALLOCSIZE
export const MAX_TARGET_WINDOW = 16 * 1024 * 1024; // XD3_HARDMAXWINSIZE of xdelta3 3.0.x
export const DEFAULT_LEVEL = 9;
export const DEFAULT_SECONDARY: Secondary = 'djw';
export const DECODE_INPUT_CHUNK = 1024 * 1024;

export interface ResolvedOptions {
  level: number;
  secondary: Secondary;
  sourceWindow: number;
  targetWindow: number;
}

function pow2AtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new DeltaimgError('USAGE', `${name} must be an integer from ${min} to ${max} (got ${value})`);
  }
}

export function sourceWindowFor(sourceSize: number, windowBytes: number | undefined): number {
  if (windowBytes !== undefined) {
    checkInteger('window', windowBytes, 1, MAX_WINDOW);
    return Math.max(MIN_WINDOW, pow2AtLeast(windowBytes));
  }
  return Math.min(DEFAULT_WINDOW, Math.max(MIN_WINDOW, pow2AtLeast(sourceSize)));
}

/** Like xdelta3: the input window is -W, but never more than the target (when known). */
export function targetWindowFor(targetSize: number | null, targetWindowBytes: number | undefined): number {
  const asked = targetWindowBytes ?? DEFAULT_TARGET_WINDOW;
  checkInteger('target window', asked, MIN_TARGET_WINDOW, MAX_TARGET_WINDOW);
  return targetSize === null ? asked : Math.max(MIN_TARGET_WINDOW, Math.min(asked, targetSize));
}

const MiB = 1024 * 1024;

/**
 * Peak memory of one VCDIFF encode beyond the process's baseline, by level and source window:
 * the window itself plus xdelta3's hash tables (level 6-9 index every few bytes, 1-5 far fewer),
 * the target window and the wasm instance. Measured with /usr/bin/time -v on containerd 1.6.20
 * (48 MB): level 9 with a 64 MiB window 230 MB, a 16 MiB window 105 MB, an 8 MiB one 81 MB;
 * level 3 with a 64 MiB window 137 MB.
 */
export function vcdiffEncodeMemory(level: number, sourceWindow: number): number {
  return 56 * MiB + (level >= 6 ? 3 : 1.5) * sourceWindow;
}

/**
 * Peak memory of one VCDIFF decode: the part of the source the window covers, held whole,
 * plus the target window and the instance (containerd with a 64 MiB window: 80 MB).
 */
export function vcdiffDecodeMemory(sourceWindow: number): number {
  return 40 * MiB + sourceWindow;
}

export function parseSecondary(value: string): Secondary {
  if (value === 'none' || value === 'djw' || value === 'fgk') return value;
  throw new DeltaimgError('USAGE', `secondary compressor must be none, djw or fgk (got ${JSON.stringify(value)})`);
}

export function resolveOptions(opts: VcdiffOptions | undefined, sourceSize: number, targetSize: number | null): ResolvedOptions {
  const level = opts?.level ?? DEFAULT_LEVEL;
  checkInteger('level', level, 0, 9);
  return {
    level,
    secondary: parseSecondary(opts?.secondary ?? DEFAULT_SECONDARY),
    sourceWindow: sourceWindowFor(sourceSize, opts?.windowBytes),
    targetWindow: targetWindowFor(targetSize, opts?.targetWindowBytes),
  };
}
