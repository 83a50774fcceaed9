/**
 * The one way deltaimg writes an output and keeps scratch space: files and directories are
 * built under a temp name beside their target (same filesystem, so the final rename is
 * atomic) and renamed into place only when complete; scratch directories live until their
 * body ends. Every temp path is registered before it is created, so however a run ends
 * (failure, exit, a signal) nothing of it is left behind, and the registry remembers which
 * outputs were already renamed into place, so an interrupted run can say truthfully what it
 * left: complete outputs, or nothing.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { lstat, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { DeltaimgError, ioError } from './errors.js';

/** A path that may hold non-UTF-8 bytes (vcdiff's API takes Buffers too). */
export type OutputPath = string | Buffer;

/** Temp paths of this process that exist (or are about to): removed at exit unless released. */
const temps = new Set<OutputPath>();
/** Outputs renamed into place by this process (what an interrupted run did finish). */
const completed: OutputPath[] = [];

process.on('exit', () => removeAllTemps());

export function showOutputPath(path: OutputPath): string {
  return typeof path === 'string' ? path : path.toString('latin1');
}

/** `.<name>.deltaimg-<what>-<pid>-<random>` beside `target`: hidden, and clearly ours. */
export function tempPathBeside<P extends OutputPath>(target: P, what?: string): P;
export function tempPathBeside(target: OutputPath, what = 'tmp'): OutputPath {
  const tag = `.deltaimg-${what}-${process.pid}-${randomBytes(4).toString('hex')}`;
  if (typeof target === 'string') {
    const full = resolve(target);
    return join(dirname(full), `.${basename(full)}${tag}`);
  }
  const slash = target.lastIndexOf(0x2f);
  return Buffer.concat([target.subarray(0, slash + 1), Buffer.from('.'), target.subarray(slash + 1), Buffer.from(tag)]);
}

/**
 * A temp path removed at exit unless released. Register before creating the path: a signal
 * handled between the creating syscall and the next line must still find it.
 */
export interface TempPath<P extends OutputPath = OutputPath> {
  readonly path: P;
  /** Removes the path now (files and directories alike) and forgets it. */
  remove(): Promise<void>;
  /** Forgets the path (it was renamed away or is someone else's now). */
  release(): void;
}

export function registerTemp<P extends OutputPath>(path: P): TempPath<P> {
  temps.add(path);
  return {
    path,
    remove: async () => {
      await rm(path, { recursive: true, force: true }).catch(() => undefined);
      temps.delete(path);
    },
    release: () => void temps.delete(path),
  };
}

/**
 * Renames a finished temp into place. Synchronous on purpose: a signal is handled either
 * before (the temp is removed, nothing was written) or after (OUT is complete), never while
 * the rename is in flight on another thread.
 */
export function commitTemp(temp: TempPath, target: OutputPath): void {
  try {
    renameSync(temp.path, target);
  } catch (err) {
    throw ioError('rename into place', showOutputPath(target), err);
  }
  temp.release();
  completed.push(target);
}

/** Fails with a usage error when `path` exists: outputs are never overwritten. */
export async function assertAbsent(path: OutputPath): Promise<void> {
  try {
    await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError('check', showOutputPath(path), err);
  }
  throw new DeltaimgError('USAGE', `${showOutputPath(path)} already exists; remove it or choose another output path`);
}

/**
 * Produces the file `target` under a temp name beside it (`produce` creates the file at the
 * path it is given) and renames it into place when `produce` succeeds; removes it otherwise.
 * An existing `target` is refused unless `replace` (then it is replaced atomically, as mv does).
 */
export async function writeFileAtomically<P extends OutputPath, T>(
  target: P,
  produce: (tempPath: P) => Promise<T>,
  opts: { replace?: boolean } = {},
): Promise<T> {
  const checkAbsent = async () => {
    if (!opts.replace) await assertAbsent(target);
  };
  await checkAbsent();
  const temp = registerTemp(tempPathBeside(target));
  try {
    const result = await produce(temp.path);
    await checkAbsent();
    commitTemp(temp, target);
    return result;
  } catch (err) {
    await temp.remove();
    throw err;
  }
}

/** Builds the directory `target` under a temp name beside it and renames it into place when `build` succeeds. */
export async function buildDirAtomically<T>(target: string, build: (tempDir: string) => Promise<T>): Promise<T> {
  const full = resolve(target);
  await assertAbsent(full);
  const temp = registerTemp(tempPathBeside(full));
  const dir = temp.path;
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    temp.release();
    throw ioError('create', dir, err);
  }
  try {
    const result = await build(dir);
    await assertAbsent(full);
    commitTemp(temp, full);
    return result;
  } catch (err) {
    await temp.remove();
    throw err;
  }
}

/**
 * A scratch directory for `body` under `parent` (default the OS temp dir), removed when the
 * body ends, however it ends. `prefix` names it (`deltaimg-image-apply-` ...).
 */
export async function withScratchDir<T>(parent: string | undefined, prefix: string, body: (dir: string) => Promise<T>): Promise<T> {
  const scratch = await makeScratchDir(parent, prefix);
  try {
    return await body(scratch.path);
  } finally {
    await scratch.remove();
  }
}

/** A scratch directory whose lifetime the caller manages (remove() it); still removed at exit. */
export async function makeScratchDir(parent: string | undefined, prefix: string): Promise<TempPath<string>> {
  const base = parent ?? tmpdir();
  // mkdtemp picks the name, so it can only be registered after it exists: synchronously, or a
  // signal handled while an async mkdtemp is in flight on another thread would miss it.
  try {
    return registerTemp(mkdtempSync(join(base, prefix)));
  } catch (err) {
    throw ioError('create a scratch directory in', base, err);
  }
}

/**
 * Named temp files beside `target` for `body` (intermediate results), removed when it ends,
 * however it ends. `body` creates the files it uses; unused names cost nothing.
 */
export async function withTempFiles<K extends string, T>(
  target: string,
  names: readonly K[],
  body: (paths: Record<K, string>) => Promise<T>,
): Promise<T> {
  const temps = names.map((name) => [name, registerTemp(tempPathBeside(target, name))] as const);
  try {
    return await body(Object.fromEntries(temps.map(([name, t]) => [name, t.path])) as Record<K, string>);
  } finally {
    await Promise.all(temps.map(([, t]) => t.remove()));
  }
}

/**
 * Synchronously removes every temp of this process. Idempotent; runs at exit and from signal
 * handlers, while other threads (vcdiff workers, the native copy thread) may still be writing
 * into a temp directory by full paths: the directory is first renamed aside, so their next
 * open fails instead of refilling it, and then removed (retried if a file created in the
 * meantime makes rmdir fail with ENOTEMPTY).
 */
export function removeAllTemps(): void {
  for (const path of [...temps]) {
    removeWithRetry(path);
    temps.delete(path);
  }
}

const REMOVE_ATTEMPTS = 50;
const REMOVE_RETRY_MS = 20;

function removeWithRetry(temp: OutputPath): void {
  const aside = typeof temp === 'string' ? `${temp}-removing` : Buffer.concat([temp, Buffer.from('-removing')]);
  let path = temp;
  try {
    renameSync(temp, aside);
    path = aside;
  } catch {
    // Gone already (ENOENT), or cannot be moved: remove it where it is.
  }
  for (let attempt = 1; ; attempt++) {
    try {
      rmSync(path, { recursive: true, force: true });
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EBUSY') || attempt >= REMOVE_ATTEMPTS) {
        process.stderr.write(`deltaimg: could not remove ${showOutputPath(path)}: ${code ?? String(err)}; remove it by hand\n`);
        return;
      }
      sleepSync(REMOVE_RETRY_MS);
    }
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Outputs this process renamed into place that are still there (for an interrupted run's last line). */
export function completedOutputs(): string[] {
  return completed.filter((p) => existsOnDisk(p)).map(showOutputPath);
}

function existsOnDisk(path: OutputPath): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Outputs being streamed (stdout): bytes already sent cannot be taken back. */
const streaming = new Set<string>();

/** Marks `name` as being streamed to until the returned function is called. */
export function streamingTo(name: string): () => void {
  const token = `${name}\0${randomBytes(4).toString('hex')}`;
  streaming.add(token);
  return () => void streaming.delete(token);
}

/** Names of streams an interrupted run was still writing (their bytes so far are incomplete). */
export function unfinishedStreams(): string[] {
  return [...new Set([...streaming].map((t) => t.slice(0, t.indexOf('\0'))))];
}
