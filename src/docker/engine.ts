/**
 * Calls to the Docker engine through the docker CLI (DELTAIMG_DOCKER, else `docker` on PATH),
 * with failures turned into one-line DeltaimgErrors that say what to do.
 */
import { execa, type ExecaError } from 'execa';
import { DeltaimgError } from '../util/errors.js';
import { imageInfoFromInspect, type ImageInfo } from './image.js';

export interface EngineOptions {
  /** The docker CLI to run; default $DELTAIMG_DOCKER, else `docker`. */
  docker?: string;
}

export function dockerCli(opts: EngineOptions = {}): string {
  return opts.docker ?? process.env.DELTAIMG_DOCKER ?? 'docker';
}

export type ImageLookup = { found: true; info: ImageInfo } | { found: false };

/** `docker image inspect REF`, typed; `found: false` when the engine has no such image. */
export async function lookupImage(ref: string, opts: EngineOptions = {}): Promise<ImageLookup> {
  const cli = dockerCli(opts);
  const r = await execa(cli, ['image', 'inspect', '--', ref], { reject: false });
  if (r.failed) {
    if (/no such (image|object)/i.test(String(r.stderr))) return { found: false };
    throw engineFailure(cli, ref, r);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.stdout);
  } catch (err) {
    throw new DeltaimgError('DOCKER', `docker image inspect ${ref} printed something that is not JSON (is ${cli} a Docker CLI?)`, {
      cause: err,
    });
  }
  const first: unknown = Array.isArray(parsed) ? parsed[0] : undefined;
  return first === undefined ? { found: false } : { found: true, info: imageInfoFromInspect(ref, first) };
}

/** Like lookupImage, but a missing image is an error telling the user to pull or load it. */
export async function inspectImage(ref: string, opts: EngineOptions = {}): Promise<ImageInfo> {
  const r = await lookupImage(ref, opts);
  if (!r.found) throw imageMissing(ref);
  return r.info;
}

/** Whether the engine has REF locally. Fails only when the engine cannot be asked. */
export async function imageExists(ref: string, opts: EngineOptions = {}): Promise<boolean> {
  return (await lookupImage(ref, opts)).found;
}

function imageMissing(ref: string): DeltaimgError {
  return new DeltaimgError(
    'DOCKER',
    `image ${ref} is not in the local Docker engine: docker pull ${ref} (or docker load -i FILE.tar) first`,
  );
}

/** Tells apart: no CLI, engine unreachable, anything else (with the CLI's own words). */
function engineFailure(cli: string, ref: string, r: Pick<ExecaError, 'code' | 'stderr' | 'exitCode'>): DeltaimgError {
  const stderr = String(r.stderr ?? '').trim();
  if (r.code === 'ENOENT') {
    return new DeltaimgError('DOCKER', `cannot run ${cli}: not found; install the Docker CLI or set DELTAIMG_DOCKER to its path`);
  }
  if (
    /cannot connect to the docker daemon|is the docker daemon running|error during connect|permission denied.*docker\.sock/i.test(stderr)
  ) {
    return new DeltaimgError('DOCKER', `the Docker engine is not reachable (${firstLine(stderr)}); start dockerd or set DOCKER_HOST`);
  }
  return new DeltaimgError('DOCKER', `${cli} image inspect ${ref} failed (exit ${r.exitCode}): ${firstLine(stderr) || 'no message'}`);
}

function firstLine(s: string): string {
  return (
    s
      .split('\n')
      .find((l) => l.trim())
      ?.trim() ?? ''
  );
}
