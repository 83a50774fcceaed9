/**
 * An image config written back as Dockerfile instructions, for the final stage of the apply
 * Dockerfile (FROM scratch): ENV, WORKDIR, USER, EXPOSE, VOLUME, LABEL, STOPSIGNAL, HEALTHCHECK,
 * ONBUILD, SHELL, ENTRYPOINT and CMD. Fields a Dockerfile cannot set (Hostname, Tty, ...) are not
 * recorded in the first place (see image.ts).
 */
import { DeltaimgError } from '../util/errors.js';
import type { HealthConfig, ImageConfig } from './image.js';
import { execForm, quoted, refuseNewlines } from './syntax.js';

export function configInstructions(config: ImageConfig): string[] {
  return [
    ...(config.Shell ? [`SHELL ${execForm(config.Shell)}`] : []),
    ...(config.Env ?? []).map(envInstruction),
    ...(config.WorkingDir ? [`WORKDIR ${quoted(config.WorkingDir, 'WorkingDir')}`] : []),
    ...(config.User ? [`USER ${quoted(config.User, 'User')}`] : []),
    ...exposeInstruction(config.ExposedPorts),
    ...volumeInstructions(config.Volumes),
    ...labelInstruction(config.Labels),
    ...(config.StopSignal ? [`STOPSIGNAL ${stopSignal(config.StopSignal)}`] : []),
    ...healthcheckInstruction(config.Healthcheck),
    ...(config.OnBuild ?? []).map(onBuildInstruction),
    // ENTRYPOINT before CMD: a later ENTRYPOINT would reset the CMD.
    ...(config.Entrypoint ? [`ENTRYPOINT ${execForm(config.Entrypoint)}`] : []),
    ...(config.Cmd ? [`CMD ${execForm(config.Cmd)}`] : []),
  ];
}

function envInstruction(pair: string): string {
  const eq = pair.indexOf('=');
  const key = eq < 0 ? pair : pair.slice(0, eq);
  const value = eq < 0 ? '' : pair.slice(eq + 1);
  if (!/^[^\s"'$\\=]+$/.test(key)) {
    throw new DeltaimgError('DOCKER', `environment variable name ${JSON.stringify(key)} cannot be written in a Dockerfile ENV`);
  }
  return `ENV ${key}=${quoted(value, `ENV ${key}`)}`;
}

function exposeInstruction(ports: Record<string, object> | null | undefined): string[] {
  const keys = Object.keys(ports ?? {}).sort();
  if (!keys.length) return [];
  for (const p of keys) {
    if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/.test(p))
      throw new DeltaimgError('DOCKER', `exposed port ${JSON.stringify(p)} is not PORT[/PROTO]`);
  }
  return [`EXPOSE ${keys.join(' ')}`];
}

function volumeInstructions(volumes: Record<string, object> | null | undefined): string[] {
  const paths = Object.keys(volumes ?? {}).sort();
  if (!paths.length) return [];
  for (const p of paths) {
    refuseNewlines(p, 'volume path');
    // VOLUME expands $VARS even in JSON form; a literal $ cannot be escaped there.
    if (p.includes('$'))
      throw new DeltaimgError('DOCKER', `volume path ${JSON.stringify(p)} holds a $, which a Dockerfile VOLUME would expand`);
  }
  return [`VOLUME ${execForm(paths)}`];
}

function labelInstruction(labels: Record<string, string> | null | undefined): string[] {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (!entries.length) return [];
  return [labelLine(entries)];
}

/** One LABEL with a key=value pair per continued line. */
export function labelLine(entries: [string, string][]): string {
  const pairs = entries.map(([k, v]) => `${quoted(k, 'label name')}=${quoted(v, `label ${k}`)}`);
  return `LABEL ${pairs.join(' \\\n      ')}`;
}

function stopSignal(signal: string): string {
  if (!/^[A-Za-z0-9+]+$/.test(signal))
    throw new DeltaimgError('DOCKER', `stop signal ${JSON.stringify(signal)} is not a signal name or number`);
  return signal;
}

function healthcheckInstruction(hc: HealthConfig | null | undefined): string[] {
  const test = hc?.Test;
  if (!hc || !test || test.length === 0) return [];
  const [kind, ...rest] = test;
  if (kind === 'NONE') return ['HEALTHCHECK NONE'];
  const flags = [
    durationFlag('interval', hc.Interval),
    durationFlag('timeout', hc.Timeout),
    durationFlag('start-period', hc.StartPeriod),
    hc.Retries ? `--retries=${hc.Retries}` : '',
  ].filter(Boolean);
  const head = ['HEALTHCHECK', ...flags, 'CMD'].join(' ');
  if (kind === 'CMD') return [`${head} ${execForm(rest)}`];
  if (kind === 'CMD-SHELL' && rest.length === 1) {
    refuseNewlines(rest[0]!, 'healthcheck command');
    return [`${head} ${rest[0]}`];
  }
  throw new DeltaimgError('DOCKER', `healthcheck test ${JSON.stringify(test)} is not NONE, CMD or CMD-SHELL`);
}

/** Engine durations are nanoseconds; the Dockerfile takes Go durations. */
function durationFlag(name: string, ns: number | undefined): string {
  if (!ns) return '';
  if (ns % 1e9 === 0) return `--${name}=${ns / 1e9}s`;
  if (ns % 1e6 === 0) return `--${name}=${ns / 1e6}ms`;
  return `--${name}=${ns}ns`;
}

function onBuildInstruction(trigger: string): string {
  refuseNewlines(trigger, 'ONBUILD trigger');
  return `ONBUILD ${trigger}`;
}
