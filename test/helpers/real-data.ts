/**
 * Real binary pairs for delta tests and benchmarks, fetched once into test/.cache/ (gitignored)
 * through the ordinary package clients: `npm pack` for npm packages, `apt-get download` for
 * Debian packages. Everything is cached by version, so later runs are offline and instant.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const CACHE_DIR = fileURLToPath(new URL('../.cache/', import.meta.url));

export interface FilePair {
  /** the older file (delta source) */
  a: string;
  /** the newer file (delta target) */
  b: string;
  /** where they came from, for reports */
  label: string;
}

/** Two close esbuild releases: their Linux x64 binaries (~9 MB Go executables) differ a little. */
export const ESBUILD_VERSIONS = ['0.20.1', '0.20.2'] as const;

async function npmPackFile(pkg: string, version: string, inner: string, outName: string): Promise<string> {
  const out = join(CACHE_DIR, outName);
  if (existsSync(out)) return out;
  const work = join(CACHE_DIR, `.work-${outName}-${process.pid}`);
  await mkdir(work, { recursive: true });
  try {
    const { stdout } = await run('npm', ['pack', '--silent', `${pkg}@${version}`], { cwd: work });
    const tgz = stdout.trim().split('\n').pop()!;
    await run('tar', ['-xzf', tgz, inner], { cwd: work });
    await rename(join(work, inner), out);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return out;
}

/** The esbuild binaries of ESBUILD_VERSIONS (a = older, b = newer). */
export async function esbuildBinaryPair(): Promise<FilePair> {
  const [va, vb] = ESBUILD_VERSIONS;
  const a = await npmPackFile('@esbuild/linux-x64', va, 'package/bin/esbuild', `esbuild-${va}`);
  const b = await npmPackFile('@esbuild/linux-x64', vb, 'package/bin/esbuild', `esbuild-${vb}`);
  return { a, b, label: `@esbuild/linux-x64 ${va} -> ${vb} bin/esbuild` };
}

/** The versions of a Debian package that apt can download, oldest first. */
async function aptVersions(pkg: string): Promise<string[]> {
  const { stdout } = await run('apt-cache', ['madison', pkg]);
  const versions = stdout
    .split('\n')
    .map((line) => line.split('|')[1]?.trim())
    .filter((v): v is string => !!v);
  return [...new Set(versions)].reverse();
}

async function aptFile(pkg: string, version: string, inner: string, outName: string): Promise<string> {
  const out = join(CACHE_DIR, outName);
  if (existsSync(out)) return out;
  const work = join(CACHE_DIR, `.work-${outName}-${process.pid}`);
  await mkdir(work, { recursive: true });
  try {
    await run('apt-get', ['download', '-q', `${pkg}=${version}`], { cwd: work });
    const { stdout } = await run('sh', ['-c', 'ls *.deb'], { cwd: work });
    await run('dpkg-deb', ['-x', stdout.trim(), 'root'], { cwd: work });
    await rename(join(work, 'root', inner), out);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return out;
}

/**
 * libcrypto.so.3 from the two newest libssl3 builds apt offers (bookworm and bookworm-security
 * usually differ). Null when apt has fewer than two versions (e.g. package lists not updated).
 */
export async function libcryptoPair(): Promise<FilePair | null> {
  let versions: string[];
  try {
    versions = await aptVersions('libssl3');
  } catch {
    return null;
  }
  if (versions.length < 2) return null;
  const [va, vb] = versions.slice(-2) as [string, string];
  const inner = 'usr/lib/x86_64-linux-gnu/libcrypto.so.3';
  const safe = (v: string) => v.replace(/[^0-9A-Za-z.+-]/g, '_');
  try {
    const a = await aptFile('libssl3', va, inner, `libcrypto-${safe(va)}`);
    const b = await aptFile('libssl3', vb, inner, `libcrypto-${safe(vb)}`);
    return { a, b, label: `libssl3 ${va} -> ${vb} libcrypto.so.3` };
  } catch {
    return null;
  }
}
