#!/usr/bin/env node
/**
 * One way to run Debian's docker-registry (distribution 2.8) on loopback, shared by the tests
 * (test/setup/services.ts, test/helpers/registries.ts), the benchmarks (bench/*-bench.mjs) and
 * scripts/services.sh, so the registry they all talk to is configured in one place.
 *
 *   import { startRegistry } from '../scripts/registry.mjs';
 *   const reg = await startRegistry(dir, { tls: { cert, key }, htpasswd });   // reg.address, reg.stop()
 *
 *   node scripts/registry.mjs config ROOTDIR PORT    # the YAML, for a registry started by hand
 *
 * The registry only ever listens on 127.0.0.1 (the tests and benchmarks never use the network).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const BINARY = existsSync('/usr/bin/docker-registry') ? '/usr/bin/docker-registry' : 'docker-registry';

/**
 * The registry's config.yml.
 * @param {{ root: string, port: number, logLevel?: 'warn' | 'info', logFormat?: 'text' | 'json',
 *           accessLog?: boolean, tls?: { cert: string, key: string }, htpasswd?: string }} o
 *   logLevel info with logFormat json logs each response with its bytes (the benchmarks count them);
 *   htpasswd turns on basic auth with that bcrypt file.
 * @returns {string}
 */
export function registryConfig(o) {
  const lines = ['version: 0.1', 'log:', `  level: ${o.logLevel ?? 'warn'}`];
  if (o.logFormat) lines.push(`  formatter: ${o.logFormat}`);
  if (o.accessLog === false) lines.push('  accesslog:', '    disabled: true');
  lines.push('storage:', '  filesystem:', `    rootdirectory: ${o.root}`, '  delete:', '    enabled: true');
  lines.push('http:', `  addr: 127.0.0.1:${o.port}`);
  if (o.tls) lines.push('  tls:', `    certificate: ${o.tls.cert}`, `    key: ${o.tls.key}`);
  if (o.htpasswd) lines.push('auth:', '  htpasswd:', '    realm: deltaimg', `    path: ${o.htpasswd}`);
  return lines.join('\n') + '\n';
}

/** @returns {Promise<number>} a port free on 127.0.0.1 right now */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * @typedef {object} RunningRegistry
 * @property {string} address   host:port, e.g. 127.0.0.1:41234
 * @property {string} dataDir   its blob store (for du)
 * @property {string} logPath   what it logged
 * @property {import('node:child_process').ChildProcess} child
 * @property {() => Promise<void>} stop  SIGTERM, then SIGKILL after 10 s; safe to call twice
 */

/**
 * Writes DIR/config.yml and starts docker-registry with it; resolves once it accepts connections
 * (a TCP connect, so TLS registries count too), rejects with the log's tail if it exits or does
 * not answer within `waitMs`.
 * @param {string} dir
 * @param {Omit<Parameters<typeof registryConfig>[0], 'root' | 'port'> & { waitMs?: number, detached?: boolean }} [opts]
 *   detached: its own process group, so a Ctrl-C at the terminal reaches only the caller, which stops it.
 * @returns {Promise<RunningRegistry>}
 */
export async function startRegistry(dir, opts = {}) {
  const { waitMs = 20_000, detached = false, ...config } = opts;
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const dataDir = join(dir, 'data');
  const configPath = join(dir, 'config.yml');
  await writeFile(configPath, registryConfig({ ...config, root: dataDir, port }));
  const logPath = join(dir, 'registry.log');
  const log = openSync(logPath, 'a');
  const child = spawn(BINARY, ['serve', configPath], { stdio: ['ignore', log, log], detached });
  closeSync(log);
  let spawnError;
  child.on('error', (e) => (spawnError = e));
  const address = `127.0.0.1:${port}`;
  const registry = { address, dataDir, logPath, child, stop: () => stopChild(child) };
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`cannot start docker-registry: ${spawnError.message} (apt-get install docker-registry)`);
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}): ${logTail(logPath)}`);
    if (await accepts(port)) return registry;
    await sleep(100);
  }
  await registry.stop();
  throw new Error(`docker-registry did not answer on ${address} within ${waitMs / 1000} s: ${logTail(logPath)}`);
}

/** @param {number} port */
function accepts(port) {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1');
  });
}

/** @param {import('node:child_process').ChildProcess} child */
async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const inTime = await Promise.race([exited.then(() => true), sleep(10_000, false, { ref: false })]);
  if (!inTime) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** @param {string} path the last lines of a log, on one line */
export function logTail(path) {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '(no log)';
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [verb, root, port] = process.argv.slice(2);
  if (verb !== 'config' || !root || !/^\d+$/.test(port ?? '')) {
    process.stderr.write('usage: node scripts/registry.mjs config ROOTDIR PORT\n');
    process.exit(2);
  }
  process.stdout.write(registryConfig({ root, port: Number(port) }));
}
