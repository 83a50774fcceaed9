/**
 * `dockerfile apply --layered` builds FROM A, so the restored image starts with A's config and
 * the Dockerfile can only add to it or override it: no instruction removes an environment
 * variable, a label, an exposed port or a volume, or empties WorkingDir, User, StopSignal,
 * Shell, Healthcheck, Entrypoint or Cmd. This checks, before anything is built, that B's config
 * written over A's (configInstructions) gives exactly B's config, and names what does not.
 */
import { DeltaimgError } from '../util/errors.js';
import type { ImageConfig } from './image.js';

export function checkLayeredConfig(a: ImageConfig, b: ImageConfig, baseRef: string): void {
  const refuse = (what: string): never => {
    throw new DeltaimgError(
      'DOCKER',
      `--layered builds FROM ${baseRef}, whose ${what}; a Dockerfile cannot remove that: apply without --layered`,
    );
  };
  if (a.OnBuild?.length) refuse('ONBUILD triggers would run in the build');
  const env = envOver(a.Env ?? [], b.Env ?? []);
  const extra = env.find((pair) => !(b.Env ?? []).includes(pair));
  if (extra !== undefined) refuse(`environment has ${extra.split('=')[0]}, which the target lacks`);
  if (env.join('\n') !== (b.Env ?? []).join('\n')) refuse('environment lists the variables in another order than the target');
  for (const field of ['WorkingDir', 'User', 'StopSignal'] as const) {
    if (a[field] && !b[field]) refuse(`${field} is ${JSON.stringify(a[field])} and the target has none`);
  }
  for (const field of ['Shell', 'Healthcheck', 'Entrypoint'] as const) {
    if (a[field] && !b[field]) refuse(`${field} is set and the target has none`);
  }
  // ENTRYPOINT resets an inherited CMD; without one, A's CMD stays unless B sets its own.
  if (a.Cmd && !b.Cmd && !b.Entrypoint) refuse('Cmd is set and the target has none');
  for (const field of ['ExposedPorts', 'Volumes', 'Labels'] as const) {
    const missing = Object.keys(a[field] ?? {}).find((k) => !(k in (b[field] ?? {})));
    if (missing !== undefined) refuse(`${field} has ${JSON.stringify(missing)}, which the target lacks`);
  }
}

/** What BuildKit adds to a stage whose base has no PATH (measured on 20.10: FROM a PATH-less image). */
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * A's environment after ENV of each of B's pairs: a known name keeps its place, a new one is
 * appended; when A has no PATH, the builder appends its default one to A's list first.
 */
function envOver(a: readonly string[], b: readonly string[]): string[] {
  const out = a.some((p) => p.startsWith('PATH=')) ? [...a] : [...a, DEFAULT_PATH];
  const nameOf = (pair: string): string => pair.split('=')[0]!;
  for (const pair of b) {
    const at = out.findIndex((p) => nameOf(p) === nameOf(pair));
    if (at >= 0) out[at] = pair;
    else out.push(pair);
  }
  return out;
}

/** A RUN in FROM A runs as A's user; deltaimg must run as root to set owners and make nodes. */
export function needsRootForRun(a: ImageConfig): boolean {
  return !!a.User && !/^(0|root)(:(0|root))?$/.test(a.User);
}
