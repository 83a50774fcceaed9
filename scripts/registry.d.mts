/** Types of registry.mjs (plain JavaScript so that bench/ and scripts/services.sh can use it). */
import type { ChildProcess } from 'node:child_process';

export interface RegistryConfigOptions {
  root: string;
  port: number;
  logLevel?: 'warn' | 'info';
  logFormat?: 'text' | 'json';
  accessLog?: boolean;
  tls?: { cert: string; key: string };
  htpasswd?: string;
}

export interface RunningRegistry {
  /** host:port, e.g. 127.0.0.1:41234 */
  address: string;
  /** its blob store (for du) */
  dataDir: string;
  /** what it logged */
  logPath: string;
  child: ChildProcess;
  /** SIGTERM, then SIGKILL after 10 s; safe to call twice */
  stop: () => Promise<void>;
}

export type StartRegistryOptions = Omit<RegistryConfigOptions, 'root' | 'port'> & { waitMs?: number; detached?: boolean };

export function registryConfig(o: RegistryConfigOptions): string;
export function freePort(): Promise<number>;
export function startRegistry(dir: string, opts?: StartRegistryOptions): Promise<RunningRegistry>;
export function logTail(path: string): string;
