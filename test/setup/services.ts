/**
 * vitest globalSetup: makes the Docker engine and a private registry available to the
 * Docker tests, and stops what it started (the registry always, dockerd only when it was
 * not already running). What is available reaches the tests through provide/inject as
 * `dockerServices` (see test/helpers/docker.ts); a service that cannot start is reported
 * there with the reason, and the Docker tests fail in CI (CI=true) or skip elsewhere.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRegistry as startLoopbackRegistry } from '../../scripts/registry.mjs';
import type { TestProject } from 'vitest/node';

export const DOCKER_CLI = process.env.DELTAIMG_TEST_DOCKER ?? '/usr/bin/docker';

export type ServiceState = { ok: true; detail: string } | { ok: false; reason: string };

export interface DockerServices {
  engine: ServiceState;
  /** host:port of the registry, e.g. 127.0.0.1:41234, when it runs. */
  registry: ServiceState & { address?: string };
  /** Unique per test run: lets test files share work done once per run. */
  runId: string;
}

const DOCKERD_FLAGS = ['--bridge=none', '--iptables=false', '--ip-forward=false', '--ip-masq=false'];
const ENGINE_WAIT_MS = 60_000;
const REGISTRY_WAIT_MS = 20_000;

/** Processes this setup started, stopped by teardown in reverse order. */
const started: { name: string; child: ChildProcess }[] = [];
let registryDir: string | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const engine = await ensureEngine();
  const registry = await startRegistry();
  const services: DockerServices = { engine, registry, runId: `${process.pid}-${Date.now()}` };
  project.provide('dockerServices', services);
  return teardown;
}

async function teardown(): Promise<void> {
  for (const { name, child } of started.reverse()) await stop(name, child);
  if (registryDir) await rm(registryDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- engine

async function engineAnswers(): Promise<boolean> {
  const child = spawn(DOCKER_CLI, ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore' });
  return new Promise((resolve) => {
    child.on('error', () => resolve(false));
    child.on('exit', (code) => resolve(code === 0));
  });
}

async function ensureEngine(): Promise<ServiceState> {
  if (await engineAnswers()) return { ok: true, detail: 'already running' };
  const logPath = join(tmpdir(), `deltaimg-test-dockerd-${process.pid}.log`);
  const log = openSync(logPath, 'a');
  const dockerd = existsSync('/usr/sbin/dockerd') ? '/usr/sbin/dockerd' : 'dockerd';
  const child = spawn(dockerd, DOCKERD_FLAGS, { stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  const failedToSpawn = new Promise<string>((resolve) => child.on('error', (e) => resolve(e.message)));
  started.push({ name: 'dockerd', child });
  const deadline = Date.now() + ENGINE_WAIT_MS;
  while (Date.now() < deadline) {
    const spawnError = await Promise.race([failedToSpawn, sleep(500).then(() => undefined)]);
    if (spawnError) return { ok: false, reason: `cannot start dockerd: ${spawnError}` };
    if (await engineAnswers()) {
      // Ours exited but an engine answers: another test run started one meanwhile; not ours to stop.
      if (child.exitCode !== null) return { ok: true, detail: 'started concurrently by another run' };
      return { ok: true, detail: `started dockerd (pid ${child.pid}, log ${logPath})` };
    }
    if (child.exitCode !== null) return { ok: false, reason: `dockerd exited (${child.exitCode}); log: ${tail(logPath)}` };
  }
  return { ok: false, reason: `dockerd did not answer within ${ENGINE_WAIT_MS / 1000}s; log: ${tail(logPath)}` };
}

// ---------------------------------------------------------------- registry

async function startRegistry(): Promise<DockerServices['registry']> {
  registryDir = await mkdtemp(join(tmpdir(), 'deltaimg-test-registry-'));
  try {
    // Loopback only; dockerd treats 127.0.0.0/8 registries as insecure (plain HTTP) by default.
    const registry = await startLoopbackRegistry(registryDir, { waitMs: REGISTRY_WAIT_MS, detached: true });
    started.push({ name: 'docker-registry', child: registry.child });
    return { ok: true, detail: `docker-registry pid ${registry.child.pid}`, address: registry.address };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

// ---------------------------------------------------------------- helpers

/** SIGTERM, then SIGKILL if the process is still there after 20 s. */
async function stop(name: string, child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const inTime = await Promise.race([exited.then(() => true), sleep(20_000, undefined, { ref: false }).then(() => false)]);
  if (!inTime) {
    process.stderr.write(`test services: ${name} (pid ${child.pid}) ignored SIGTERM, killing it\n`);
    child.kill('SIGKILL');
    await exited;
  }
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '(no log)';
  }
}
