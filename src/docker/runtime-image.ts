/**
 * `deltaimg runtime build`: the self-contained runtime image (deltaimg/runtime:<version>) that
 * the generated Dockerfiles mount /opt/deltaimg from, built from the package as installed
 * (a checkout, `npm install -g`, or npx's cache), offline: the image is FROM scratch and its
 * context is staged from this machine's node, its shared libraries and the package itself.
 *
 *   /opt/deltaimg/deltaimg            static launcher (prebuilds/<target>/deltaimg-launcher)
 *   /opt/deltaimg/bin/node            this machine's node (symbols stripped when `strip` is there)
 *   /opt/deltaimg/lib/                exactly the libraries node and the addon need (ldd), loader included
 *   /opt/deltaimg/{dist,wasm,package.json}   the program
 *   /opt/deltaimg/node_modules/       the production dependencies, found by Node's own resolution
 *   /opt/deltaimg/prebuilds/<target>/fsext.node   the native addon
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { chmod, copyFile, cp, lstat, mkdir, readdir, readFile, readlink, realpath, stat, writeFile } from 'node:fs/promises';
import { createReadStream, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { withScratchDir } from '../util/atomic-output.js';
import { DeltaimgError } from '../util/errors.js';
import { PACKAGE_ROOT, buildFromSourceHint, nativeTarget, prebuiltFile } from '../util/prebuilds.js';
import { dockerCli, lookupImage, type EngineOptions } from './engine.js';

export interface RuntimeBuildOptions {
  tag: string;
  /** Staging directory parent (default the OS temp dir); the stage is removed afterwards. */
  tmpDir?: string;
  engine?: EngineOptions;
}

export interface RuntimeBuildResult {
  tag: string;
  imageId: string;
  /** The tag already named an image of exactly these files: nothing was built. */
  upToDate: boolean;
  /** sha256 over the staged files (paths, modes, contents), the image's io.deltaimg.runtime-digest label. */
  contentDigest: string;
  bytes: number;
  nodeBytes: number;
  libBytes: number;
  nodeModulesBytes: number;
}

/** The Dockerfile of the runtime image; the context is the stage (opt/deltaimg/...). */
const RUNTIME_DOCKERFILE = `# deltaimg runtime image: everything under /opt/deltaimg, nothing else, so a generated Dockerfile
# can mount or COPY it into a FROM scratch stage or any base (glibc, musl, busybox, distroless)
# and run it without a shell: RUN ["/opt/deltaimg/deltaimg", "apply", ...]
FROM scratch
COPY opt/deltaimg /opt/deltaimg
LABEL org.opencontainers.image.title="deltaimg runtime" \\
      org.opencontainers.image.description="Self-contained deltaimg (node + libraries) under /opt/deltaimg" \\
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/opt/deltaimg/deltaimg"]
CMD ["--help"]
`;

export async function buildRuntimeImage(opts: RuntimeBuildOptions): Promise<RuntimeBuildResult> {
  const launcher = prebuiltFile('deltaimg-launcher');
  const addon = prebuiltFile('fsext.node');
  if (!launcher.exists || !addon.exists) {
    const missing = !addon.exists ? addon.path : launcher.path;
    throw new DeltaimgError('INSTALL', `cannot build the runtime image: ${missing} is missing; ${buildFromSourceHint()}`);
  }
  if (!existsSync(join(PACKAGE_ROOT, 'dist/cli/main.js'))) {
    throw new DeltaimgError(
      'INSTALL',
      `cannot build the runtime image: ${PACKAGE_ROOT}/dist/cli/main.js is missing (in a checkout: npm run build)`,
    );
  }
  return withScratchDir(opts.tmpDir, 'deltaimg-runtime-', async (stage) => {
    const root = join(stage, 'opt/deltaimg');
    const sizes = await stageRuntime(root, launcher.path, addon.path);
    await smokeTest(root);
    const contentDigest = await stageDigest(stage);
    const existing = await lookupImage(opts.tag, opts.engine);
    if (existing.found && existing.info.config.Labels?.[DIGEST_LABEL] === contentDigest) {
      // Rebuilding would only change file mtimes (and so the id) under images that use this one.
      return {
        tag: opts.tag,
        imageId: existing.info.id,
        upToDate: true,
        contentDigest,
        bytes: await imageBytes(opts.tag, opts.engine),
        ...sizes,
      };
    }
    await writeFile(join(stage, 'Dockerfile'), RUNTIME_DOCKERFILE);
    const { imageId, bytes } = await dockerBuild(stage, opts.tag, contentDigest, opts.engine);
    return { tag: opts.tag, imageId, upToDate: false, contentDigest, bytes, ...sizes };
  });
}

async function stageRuntime(
  root: string,
  launcher: string,
  addon: string,
): Promise<Pick<RuntimeBuildResult, 'nodeBytes' | 'libBytes' | 'nodeModulesBytes'>> {
  const node = await realpath(process.execPath);
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'lib'));
  await copyStripped(node, join(root, 'bin/node'));
  await copyFile(launcher, join(root, 'deltaimg'));
  await chmod(join(root, 'deltaimg'), 0o755);
  const addonDest = join(root, 'prebuilds', nativeTarget(), 'fsext.node');
  await mkdir(dirname(addonDest), { recursive: true });
  await copyFile(addon, addonDest);

  const libBytes = await copyLibraries([node, addon], join(root, 'lib'));
  await cp(join(PACKAGE_ROOT, 'dist'), join(root, 'dist'), { recursive: true, filter: (src) => !/\.(d\.ts|map)$/.test(src) });
  await cp(join(PACKAGE_ROOT, 'wasm'), join(root, 'wasm'), { recursive: true });
  await copyFile(join(PACKAGE_ROOT, 'package.json'), join(root, 'package.json'));
  const nodeModulesBytes = await copyProductionDependencies(PACKAGE_ROOT, root);
  return { nodeBytes: (await stat(join(root, 'bin/node'))).size, libBytes, nodeModulesBytes };
}

/** node without its debug info and symbol table (the dynamic symbols addons link against stay). */
async function copyStripped(from: string, to: string): Promise<void> {
  const r = await execa('strip', ['--strip-all', '-o', to, from], { reject: false });
  if (r.failed) await copyFile(from, to); // no binutils here: the image is larger, nothing else changes
  await chmod(to, 0o755);
}

/**
 * Every library the binaries load (ldd), copied under its soname with symlinks resolved.
 * ldd lines: "libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)".
 */
async function copyLibraries(binaries: string[], libDir: string): Promise<number> {
  const libs = new Map<string, string>();
  let loader: string | undefined;
  for (const bin of binaries) {
    const r = await execa('ldd', [bin], { reject: false });
    if (r.failed)
      throw new DeltaimgError(
        'INSTALL',
        `cannot build the runtime image: ldd ${bin} failed (${firstLine(String(r.stderr || r.message))}); it needs a glibc system with ldd (Debian: libc-bin)`,
      );
    for (const line of r.stdout.split('\n')) {
      const linked = /^\s*(\S+) => (\/\S+) \(/.exec(line);
      const direct = /^\s*(\/\S+) \(/.exec(line);
      if (linked) libs.set(linked[1]!, linked[2]!);
      else if (direct) {
        const soname = direct[1]!.split('/').pop()!;
        libs.set(soname, direct[1]!);
        if (/^ld-linux/.test(soname)) loader = soname;
      }
    }
  }
  if (!loader)
    throw new DeltaimgError(
      'INSTALL',
      `cannot build the runtime image: ldd did not name a glibc loader for ${binaries[0]} (the runtime image needs a glibc node)`,
    );
  let bytes = 0;
  for (const [soname, path] of libs) {
    await copyFile(await realpath(path), join(libDir, soname));
    bytes += (await stat(join(libDir, soname))).size;
  }
  return bytes;
}

/**
 * The production dependency closure, placed the way npm would: each package at the top of
 * node_modules unless another version of it is there already, then under the package that needs
 * it. Each is found from the package that requires it by Node's rule (nearest node_modules up the
 * tree), so this works whether npm nested or hoisted them (a checkout, -g, npx).
 */
async function copyProductionDependencies(pkgRoot: string, destRoot: string): Promise<number> {
  const topLevel = new Map<string, string>(); // name -> source dir placed at destRoot/node_modules/name
  let bytes = 0;
  const visit = async (fromSource: string, fromDest: string, seen: Set<string>): Promise<void> => {
    const manifest = await readManifest(fromSource);
    const wanted = [
      ...Object.keys(manifest.dependencies).map((name) => ({ name, optional: false })),
      ...Object.keys(manifest.optionalDependencies).map((name) => ({ name, optional: true })),
      ...Object.keys(manifest.peerDependencies).map((name) => ({ name, optional: true })),
    ];
    for (const { name, optional } of wanted) {
      const source = await findPackageDir(name, fromSource);
      if (!source) {
        if (optional) continue;
        throw new DeltaimgError(
          'INSTALL',
          `cannot build the runtime image: dependency ${name} of ${fromSource} is not installed (reinstall deltaimg)`,
        );
      }
      let dest: string;
      const placed = topLevel.get(name);
      if (placed === source) continue;
      if (placed === undefined) {
        topLevel.set(name, source);
        dest = join(destRoot, 'node_modules', name);
      } else {
        dest = join(fromDest, 'node_modules', name);
        if (seen.has(`${source}\0${dest}`)) continue;
      }
      seen.add(`${source}\0${dest}`);
      await cp(source, dest, { recursive: true, filter: (src) => src !== join(source, 'node_modules') });
      bytes += await treeBytes(dest);
      await visit(source, dest, seen);
    }
  };
  await visit(pkgRoot, destRoot, new Set());
  return bytes;
}

interface Manifest {
  dependencies: Record<string, unknown>;
  optionalDependencies: Record<string, unknown>;
  peerDependencies: Record<string, unknown>;
}

async function readManifest(dir: string): Promise<Manifest> {
  const file = join(dir, 'package.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new DeltaimgError(
      'INSTALL',
      `cannot build the runtime image: cannot read ${file} (${err instanceof Error ? err.message : String(err)})`,
      { cause: err },
    );
  }
  const field = (name: string): Record<string, unknown> => {
    const v = isRecord(parsed) ? parsed[name] : undefined;
    return isRecord(v) ? v : {};
  };
  return {
    dependencies: field('dependencies'),
    optionalDependencies: field('optionalDependencies'),
    peerDependencies: field('peerDependencies'),
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Node's lookup: DIR/node_modules/NAME, then each parent's, up to the file system root. */
async function findPackageDir(name: string, fromDir: string): Promise<string | undefined> {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpath(candidate);
    if (dirname(dir) === dir) return undefined;
  }
}

/** Bytes of the files under dir (apparent sizes, as du -sb counts them). */
async function treeBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) bytes += (await lstat(join(entry.parentPath, entry.name))).size;
  }
  return bytes;
}

/** The staged runtime must start on its own loader and libraries before it becomes an image. */
async function smokeTest(root: string): Promise<void> {
  const r = await execa(join(root, 'deltaimg'), ['--version'], { reject: false, env: {}, extendEnv: false });
  if (r.failed) {
    throw new DeltaimgError(
      'INSTALL',
      `the staged runtime does not start: ${root}/deltaimg --version failed (${firstLine(String(r.stderr || r.message))})`,
    );
  }
}

const DIGEST_LABEL = 'io.deltaimg.runtime-digest';

/** sha256 over every staged path (sorted), its type, mode, and content or link target. */
async function stageDigest(stage: string): Promise<string> {
  const hash = createHash('sha256');
  const entries = await readdir(join(stage, 'opt'), { recursive: true, withFileTypes: true });
  const paths = entries.map((e) => join(e.parentPath, e.name)).sort();
  for (const path of paths) {
    const st = await lstat(path);
    hash.update(`${path.slice(stage.length)}\0${st.mode.toString(8)}\0`);
    if (st.isSymbolicLink()) hash.update(await readlink(path));
    else if (st.isFile()) for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    hash.update('\0');
  }
  return hash.digest('hex');
}

async function imageBytes(tag: string, engine: EngineOptions | undefined): Promise<number> {
  const size = await execa(dockerCli(engine), ['image', 'inspect', '--format', '{{.Size}}', tag], { reject: false });
  return Number(size.stdout) || 0;
}

async function dockerBuild(
  stage: string,
  tag: string,
  contentDigest: string,
  engine: EngineOptions | undefined,
): Promise<{ imageId: string; bytes: number }> {
  const cli = dockerCli(engine);
  const previous = await lookupImage(tag, engine);
  const args = [
    'build',
    '--quiet',
    '--network=none',
    '--label',
    `${DIGEST_LABEL}=${contentDigest}`,
    '-t',
    tag,
    '-f',
    join(stage, 'Dockerfile'),
    stage,
  ];
  const r = await execa(cli, args, { reject: false });
  if (r.failed) {
    const why =
      r.code === 'ENOENT'
        ? `${cli} not found (install the Docker CLI or set DELTAIMG_DOCKER)`
        : firstLine(String(r.stderr)) || `exit ${r.exitCode}`;
    throw new DeltaimgError('DOCKER', `docker build of the runtime image ${tag} failed: ${why}`);
  }
  const now = await lookupImage(tag, engine);
  if (!now.found) throw new DeltaimgError('DOCKER', `docker build reported success but ${tag} is not in the engine`);
  // The image this tag named before is now untagged: remove it unless something still uses it.
  if (previous.found && previous.info.id !== now.info.id) await execa(cli, ['rmi', previous.info.id], { reject: false });
  return { imageId: now.info.id, bytes: await imageBytes(tag, engine) };
}

function firstLine(s: string): string {
  return (
    s
      .split('\n')
      .find((l) => l.trim())
      ?.trim() ?? ''
  );
}
