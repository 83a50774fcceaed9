/** The docker-daemon transport: `docker save` to read, `docker load` to write (streaming). */
import { execa } from 'execa';
import type { Writable } from 'node:stream';
import { dockerCli, lookupImage } from '../docker/engine.js';
import { DeltaimgError } from '../util/errors.js';
import { spool, type Spool } from './spool.js';

/** `docker save NAME` into a temp file. */
export async function saveFromDaemon(name: string, tmpDir: string | undefined): Promise<Spool> {
  const cli = dockerCli();
  const proc = execa(cli, ['save', name], { buffer: { stdout: false, stderr: true }, stdout: 'pipe', stderr: 'pipe' });
  const failed = (err: unknown) => dockerFailure(cli, `save ${name}`, err);
  const [spooled, saved] = await Promise.allSettled([spool(proc.stdout!, tmpDir, `docker save ${name}`, failed), proc]);
  if (saved.status === 'rejected') {
    if (spooled.status === 'fulfilled') await spooled.value.remove();
    throw failed(saved.reason);
  }
  if (spooled.status === 'rejected') throw spooled.reason;
  return spooled.value;
}

export interface DaemonLoad {
  /** Where to write the archive. */
  input: Writable;
  /** Resolves with docker load's output when it succeeded; a failed load is a DeltaimgError. */
  done: Promise<string>;
  cancel(): void;
}

/** Starts `docker load`; the caller streams a docker-archive into `input`. */
export function loadIntoDaemon(): DaemonLoad {
  const cli = dockerCli();
  const proc = execa(cli, ['load'], { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe' });
  const done = proc.then(
    (r) => String(r.stdout).trim(),
    (err: unknown) => Promise.reject(dockerFailure(cli, 'load', err)),
  );
  return { input: proc.stdin!, done, cancel: () => proc.kill() };
}

function dockerFailure(cli: string, what: string, err: unknown): DeltaimgError {
  if (err instanceof DeltaimgError) return err;
  const e = err as { code?: string; stderr?: unknown; exitCode?: number; message?: string };
  if (e.code === 'ENOENT')
    return new DeltaimgError('DOCKER', `cannot run ${cli}: not found; install the Docker CLI or set DELTAIMG_DOCKER to its path`);
  const line =
    String(e.stderr ?? '')
      .split('\n')
      .find((l) => l.trim())
      ?.trim() ||
    e.message?.split('\n')[0] ||
    'no message';
  return new DeltaimgError('DOCKER', `docker ${what} failed${e.exitCode !== undefined ? ` (exit ${e.exitCode})` : ''}: ${line}`, {
    cause: err,
  });
}

/** What the engine knows of an image: its id (config digest) and registry digests; undefined when absent. */
export async function inspectDaemonImage(ref: string): Promise<{ id: string; repoDigests: string[] } | undefined> {
  const found = await lookupImage(ref);
  return found.found ? { id: found.info.id, repoDigests: found.info.repoDigests ?? [] } : undefined;
}

/** `docker pull REF` (the engine fetches only the layers it lacks), then tagged as `tag` when given. */
export async function pullIntoDaemon(ref: string, tag?: string): Promise<void> {
  const cli = dockerCli();
  try {
    await execa(cli, ['pull', '-q', ref]);
    if (tag) await execa(cli, ['tag', ref, tag]);
  } catch (err) {
    throw dockerFailure(cli, `pull ${ref}`, err);
  }
}
