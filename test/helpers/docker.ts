/**
 * Helpers for tests on the real Docker engine and registry started by test/setup/services.ts:
 * gating (fail in CI, skip elsewhere when the engine is missing), image making (docker import
 * of trees, builds from a Dockerfile on stdin), the runtime image, and an exact view of an
 * image's filesystem (docker save, layers flattened with whiteouts) to compare images by.
 */
import { execa } from 'execa';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { describe, inject, it } from 'vitest';
import { DOCKER_CLI, type DockerServices } from '../setup/services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    dockerServices: DockerServices;
  }
}

export const DOCKER = DOCKER_CLI;
export const REPO_ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/**
 * The runtime image the tests build from this checkout's dist/ and name for the CLI through
 * $DELTAIMG_RUNTIME_IMAGE: a tag per checkout, so test runs of several checkouts on one engine
 * never build each other's runtime (the default deltaimg/runtime:<version> would be shared).
 */
export const RUNTIME_IMAGE = `deltaimg-test/runtime:${VERSION}-${createHash('sha256').update(REPO_ROOT).digest('hex').slice(0, 8)}`;

export function services(): DockerServices {
  return inject('dockerServices');
}

/**
 * describe() for tests that need the engine (and the registry with needsRegistry).
 * When a service is missing: in CI the suite fails with the reason, elsewhere it is skipped.
 */
export function describeDocker(name: string, body: () => void, opts: { needsRegistry?: boolean } = {}): void {
  const s = services();
  const missing = !s.engine.ok
    ? `Docker engine: ${s.engine.reason}`
    : opts.needsRegistry && !s.registry.ok
      ? `registry: ${s.registry.reason}`
      : undefined;
  if (!missing) {
    describe(name, body);
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it('has the Docker services it needs', () => {
        throw new Error(`cannot run Docker tests in CI: ${missing}`);
      });
    });
  } else {
    describe.skip(`${name} (skipped: ${missing})`, body);
  }
}

export function registryAddress(): string {
  const r = services().registry;
  if (!r.ok || !r.address) throw new Error(`registry not running: ${r.ok ? 'no address' : r.reason}`);
  return r.address;
}

// ---------------------------------------------------------------- running docker

const DOCKER_ENV = { DOCKER_BUILDKIT: '1', BUILDKIT_PROGRESS: 'plain' };

/**
 * The environment `deltaimg dockerfile` runs in when the tests build its output themselves (not
 * through a pipe it can see): the test engine's CLI, and BuildKit, as the builds here use it.
 */
export const DELTAIMG_ENV = { DELTAIMG_DOCKER: DOCKER, DOCKER_BUILDKIT: '1', DELTAIMG_RUNTIME_IMAGE: RUNTIME_IMAGE };

export async function docker(args: string[], opts: { input?: string } = {}): Promise<string> {
  const r = await execa(DOCKER, args, { env: DOCKER_ENV, input: opts.input, stripFinalNewline: true });
  return r.stdout;
}

/**
 * Builds a Dockerfile given as text, without context unless `context` names a directory.
 * Resolves with the result, failed or not (`all` holds the build log).
 */
export interface BuildResult {
  exitCode: number;
  /** stdout and stderr interleaved: the build log. */
  all: string;
}

export async function buildImage(
  dockerfile: string,
  tag: string,
  extraArgs: string[] = [],
  context?: string,
  opts: { builder?: 'buildkit' | 'classic' } = {},
): Promise<BuildResult> {
  // --network=none: the test daemon runs with --bridge=none, and a RUN needs no network anyway.
  const source = context ? ['-f', '-', context] : ['-'];
  const r = await execa(DOCKER, ['build', '--network=none', ...extraArgs, '-t', tag, ...source], {
    env: opts.builder === 'classic' ? { DOCKER_BUILDKIT: '0' } : DOCKER_ENV,
    input: dockerfile,
    reject: false,
    all: true,
  });
  return { exitCode: r.exitCode ?? -1, all: r.all ?? '' };
}

/** `tar | docker import`, keeping owners, modes, ns mtimes, xattrs and hardlinks of the tree. */
export async function importTree(dir: string, ref: string, changes: string[] = []): Promise<string> {
  const changeArgs = changes.flatMap((c) => ['--change', c]);
  const r = await execa('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '--posix', '-C', dir, '-cf', '-', '.']).pipe(DOCKER, [
    'import',
    ...changeArgs,
    '-',
    ref,
  ]);
  return r.stdout.trim();
}

/** Test images, removed by removeImages at the end of a file. */
export class ImageNames {
  private readonly made: string[] = [];
  private readonly prefix = `deltaimg-test/${randomBytes(3).toString('hex')}`;
  name(what: string): string {
    const ref = `${this.prefix}-${what}:1`;
    this.made.push(ref);
    return ref;
  }
  track(ref: string): string {
    this.made.push(ref);
    return ref;
  }
  async removeAll(): Promise<void> {
    if (this.made.length) await execa(DOCKER, ['rmi', '-f', ...this.made], { reject: false });
  }
}

export async function imageId(ref: string): Promise<string> {
  return docker(['image', 'inspect', '--format', '{{.Id}}', ref]);
}

export async function imageConfig(ref: string): Promise<Record<string, unknown>> {
  return JSON.parse(await docker(['image', 'inspect', '--format', '{{json .Config}}', ref])) as Record<string, unknown>;
}

// ---------------------------------------------------------------- the runtime image

/**
 * Builds RUNTIME_IMAGE from the current dist/ once per test run (the test files
 * that need it wait on a lock directory; a marker tells later files it is done).
 */
export async function ensureRuntimeImage(): Promise<string> {
  const stateDir = join(REPO_ROOT, '.tmp');
  await mkdir(stateDir, { recursive: true });
  const marker = join(stateDir, `runtime-image.built-${services().runId}`);
  const lock = join(stateDir, 'runtime-image.lock');
  await acquireLock(lock);
  try {
    if (existsSync(marker)) return RUNTIME_IMAGE;
    const previous = await execa(DOCKER, ['image', 'inspect', '--format', '{{.Id}}', RUNTIME_IMAGE], { reject: false });
    await execa(process.execPath, ['dist/cli/main.js', 'runtime', 'build', '--tag', RUNTIME_IMAGE, '--quiet'], {
      cwd: REPO_ROOT,
      env: { DELTAIMG_DOCKER: DOCKER },
      all: true,
    });
    // The build of the last run, now untagged: ~100 MB per run otherwise (kept if still in use).
    const built = await docker(['image', 'inspect', '--format', '{{.Id}}', RUNTIME_IMAGE]);
    if (!previous.failed && previous.stdout.trim() !== built) await execa(DOCKER, ['rmi', previous.stdout.trim()], { reject: false });
    for (const old of await readdir(stateDir)) {
      if (old.startsWith('runtime-image.built-')) await rm(join(stateDir, old), { force: true });
    }
    await writeFile(marker, RUNTIME_IMAGE);
    return RUNTIME_IMAGE;
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

async function acquireLock(lock: string): Promise<void> {
  for (;;) {
    try {
      await mkdir(lock);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A lock left by a killed run is stale after the longest build could take.
      const age = Date.now() - (await stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > 10 * 60_000) await rm(lock, { recursive: true, force: true });
      else await sleep(500);
    }
  }
}

// ---------------------------------------------------------------- image filesystems

export type FsType = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block';

/** One path of an image's flattened filesystem, as its layers record it. */
export interface FsEntry {
  type: FsType;
  /** Permission bits incl. setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Whole seconds: layers the engine commits keep no more. */
  mtime: number;
  size: number;
  sha256?: string;
  linkname?: string;
  /** SCHILY.xattr.* PAX records, values hex. */
  xattrs: Record<string, string>;
  /** All names of this file's inode when it has several (sorted), else undefined. */
  hardlinks?: string[];
}

interface LayerRecord {
  path: string;
  entry: FsEntry;
  /** Hardlink target path, for type 'link' records. */
  linkTo?: string;
}

/** The image's filesystem as a map path -> entry ('' is the root), from `docker save`. */
export async function imageFilesystem(ref: string): Promise<Map<string, FsEntry>> {
  const save = execa(DOCKER, ['save', ref], { buffer: false, stdout: 'pipe' });
  const layers = new Map<string, LayerRecord[]>();
  let manifest: { Layers: string[] }[] | undefined;
  const outer = tar.extract();
  const done = (async () => {
    for await (const member of outer) {
      const name = member.header.name;
      if (name.endsWith('layer.tar') || name.startsWith('blobs/')) layers.set(name, await readLayer(member as unknown as Readable));
      else if (name === 'manifest.json')
        manifest = JSON.parse((await collect(member as unknown as Readable)).toString('utf8')) as { Layers: string[] }[];
      else member.resume();
    }
  })();
  save.stdout.pipe(outer);
  await Promise.all([done, save]);
  if (!manifest?.[0]) throw new Error(`docker save ${ref}: no manifest.json`);
  return flatten(manifest[0].Layers.map((l) => layers.get(l) ?? []));
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Reads one layer tar, hashing file contents as they stream by. Non-tar blobs give []. */
async function readLayer(stream: Readable): Promise<LayerRecord[]> {
  const records: LayerRecord[] = [];
  const inner = tar.extract();
  const reading = (async () => {
    for await (const e of inner) {
      const h = e.header;
      const path = normalize(h.name);
      const xattrs: Record<string, string> = {};
      for (const [k, v] of Object.entries((h.pax ?? {}) as Record<string, string>)) {
        if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice('SCHILY.xattr.'.length)] = Buffer.from(v, 'latin1').toString('hex');
      }
      const base = {
        mode: (h.mode ?? 0) & 0o7777,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
        xattrs,
      };
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of e) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
      switch (h.type) {
        case 'file':
        case 'contiguous-file':
          records.push({ path, entry: { ...base, type: 'file', size, sha256: hash.digest('hex') } });
          break;
        case 'link':
          records.push({ path, entry: { ...base, type: 'file', size: 0 }, linkTo: normalize(h.linkname ?? '') });
          break;
        case 'directory':
          records.push({ path, entry: { ...base, type: 'dir', size: 0 } });
          break;
        case 'symlink':
          records.push({ path, entry: { ...base, type: 'symlink', size: 0, linkname: h.linkname ?? '' } });
          break;
        case 'fifo':
          records.push({ path, entry: { ...base, type: 'fifo', size: 0 } });
          break;
        case 'character-device':
        case 'block-device':
          records.push({
            path,
            entry: { ...base, type: h.type === 'block-device' ? 'block' : 'char', size: 0, linkname: `${h.devmajor}:${h.devminor}` },
          });
          break;
        default:
          break;
      }
    }
  })();
  stream.pipe(inner);
  try {
    await reading;
  } catch {
    // An OCI blob that is not a layer (config, manifest) is not a tar: no entries.
    stream.resume();
    return [];
  }
  return records;
}

function normalize(name: string): string {
  return posix.normalize(`/${name}`).replace(/^\/+/, '').replace(/\/+$/, '').replace(/^\.$/, '');
}

/** Applies layers bottom-up: whiteouts delete from the layers below, then entries land. */
function flatten(layers: LayerRecord[][]): Map<string, FsEntry> {
  const fs = new Map<string, FsEntry>();
  const inode = new Map<string, string>(); // path -> first name of its hardlink group
  for (const records of layers) {
    for (const { path } of records) {
      const base = posix.basename(path);
      const dir = posix.dirname(path) === '.' ? '' : posix.dirname(path);
      if (base === '.wh..wh..opq') removeUnder(fs, dir, false);
      else if (base.startsWith('.wh.')) removeUnder(fs, dir ? `${dir}/${base.slice(4)}` : base.slice(4), true);
    }
    for (const r of records) {
      if (posix.basename(r.path).startsWith('.wh.')) continue;
      if (r.linkTo !== undefined) {
        const target = fs.get(r.linkTo);
        if (!target) throw new Error(`layer hardlink ${r.path} -> ${r.linkTo}: target missing`);
        fs.set(r.path, { ...target });
        inode.set(r.path, inode.get(r.linkTo) ?? r.linkTo);
      } else {
        fs.set(r.path, r.entry);
        inode.delete(r.path);
      }
    }
  }
  const groups = new Map<string, string[]>();
  for (const [path, first] of inode) {
    if (!fs.has(path) || !fs.has(first)) continue;
    const g = groups.get(first) ?? [first];
    g.push(path);
    groups.set(first, g);
  }
  for (const names of groups.values()) {
    names.sort();
    for (const n of names) fs.get(n)!.hardlinks = names;
  }
  return fs;
}

function removeUnder(fs: Map<string, FsEntry>, path: string, andItself: boolean): void {
  const prefix = path ? `${path}/` : '';
  for (const key of [...fs.keys()]) {
    if ((andItself && key === path) || (key.startsWith(prefix) && key !== path)) fs.delete(key);
  }
}

/** Human-readable differences between two filesystems (empty when equal), ignoring `skip` paths. */
export function diffFilesystems(
  expected: Map<string, FsEntry>,
  actual: Map<string, FsEntry>,
  skip: (path: string) => boolean = () => false,
): string[] {
  const out: string[] = [];
  for (const [path, e] of expected) {
    if (skip(path)) continue;
    const a = actual.get(path);
    if (!a) out.push(`missing: /${path}`);
    else if (JSON.stringify(sortKeys(e)) !== JSON.stringify(sortKeys(a)))
      out.push(`differs: /${path}: expected ${JSON.stringify(sortKeys(e))}, got ${JSON.stringify(sortKeys(a))}`);
  }
  for (const path of actual.keys()) if (!skip(path) && !expected.has(path)) out.push(`extra: /${path}`);
  return out;
}

function sortKeys(e: FsEntry): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(e)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => a.localeCompare(b)),
  );
}

// ---------------------------------------------------------------- static test programs

/**
 * A statically linked probe for images without a shell or libc: prints what a container
 * sees (argv, uid/gid, cwd, $GREETING, and the first line of each file named by $SHOW).
 */
const PROBE_C = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "?");
  const char *greeting = getenv("GREETING");
  printf("probe uid=%d gid=%d cwd=%s greeting=%s argv:", (int)getuid(), (int)getgid(), cwd, greeting ? greeting : "-");
  for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
  printf("\n");
  const char *show = getenv("SHOW");
  if (show) {
    char *list = strdup(show);
    for (char *path = strtok(list, ":"); path; path = strtok(NULL, ":")) {
      FILE *f = fopen(path, "r");
      char line[512] = "";
      if (!f) { printf("%s: missing\n", path); continue; }
      if (!fgets(line, sizeof line, f)) line[0] = 0;
      line[strcspn(line, "\n")] = 0;
      printf("%s: %s\n", path, line);
      fclose(f);
    }
  }
  return 0;
}
`;

/** Compiles the probe with gcc -static into `out` (a path). */
export async function buildStaticProbe(out: string): Promise<void> {
  const src = `${out}.c`;
  await writeFile(src, PROBE_C);
  await execa('gcc', ['-static', '-O2', '-o', out, src]);
  await execa('strip', [out]);
  await rm(src);
}
