/**
 * The documentation stays true:
 * - every ```sh block of README.md and docs/*.md runs, as written, in document order (blocks of a
 *   file share one working directory), against the real Docker engine and the test registry;
 *   the only substitution is the registry host (registry.example -> the test registry on
 *   127.0.0.1). Blocks fenced ```sh illustrative are shown, not run; there are at most a few.
 * - README's Layout lists every folder of src/, and its dependency arrows are the imports' own.
 */
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCKER, REPO_ROOT, describeDocker, importTree, registryAddress } from './helpers/docker.js';

interface Block {
  file: string;
  line: number;
  info: string;
  text: string;
}

const DOC_FILES = ['README.md', ...(await readdir(join(REPO_ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const MAX_ILLUSTRATIVE = 3;

/** Fenced blocks (``` or ~~~) with their info string and first line number. */
function fencedBlocks(file: string, markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(```+|~~~+)\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !lines[j]!.startsWith(fence)) body.push(lines[j++]!);
    blocks.push({ file, line: i + 1, info: open[2]!.trim(), text: body.join('\n') });
    i = j;
  }
  return blocks;
}

async function docBlocks(): Promise<Block[]> {
  const all: Block[] = [];
  for (const file of DOC_FILES) all.push(...fencedBlocks(file, await readFile(join(REPO_ROOT, file), 'utf8')));
  return all;
}

const isShell = (b: Block) => /^(sh|bash|shell|console)\b/.test(b.info);
const isIllustrative = (b: Block) => /\billustrative\b/.test(b.info);

describe('documentation', () => {
  it('marks command blocks sh (run by this test) or sh illustrative (a few, shown only)', async () => {
    const blocks = await docBlocks();
    const shell = blocks.filter(isShell);
    expect(shell.filter((b) => !isIllustrative(b)).length).toBeGreaterThan(5);
    expect(shell.filter((b) => b.info !== 'sh' && b.info !== 'sh illustrative').map((b) => `${b.file}:${b.line} ${b.info}`)).toEqual([]);
    expect(shell.filter(isIllustrative).length).toBeLessThanOrEqual(MAX_ILLUSTRATIVE);
    // A `deltaimg` command in an unmarked block would escape the test.
    const unmarked = blocks.filter((b) => b.info === '' && /^deltaimg /m.test(b.text)).map((b) => `${b.file}:${b.line}`);
    expect(unmarked).toEqual([]);
  });

  it('holds no merge conflict markers', async () => {
    for (const file of DOC_FILES) {
      const text = await readFile(join(REPO_ROOT, file), 'utf8');
      expect(text.match(/^(<{7}|={7}|>{7})( |$)/m)?.[0], file).toBeUndefined();
    }
  });

  it("README's Layout names every folder of src/ and its dependency arrows are the imports'", async () => {
    const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
    const layout = readme.slice(readme.indexOf('## Layout'), readme.indexOf('\n## ', readme.indexOf('## Layout') + 1));
    const folders = (await readdir(join(REPO_ROOT, 'src'), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    for (const f of folders) expect(layout, `src/${f}/ missing from README's Layout`).toContain(`src/${f}/`);

    const stated = new Map<string, Set<string>>();
    for (const m of layout.matchAll(/^([a-z]+) +-> (.+)$/gm)) stated.set(m[1]!, new Set(m[2]!.split(',').map((s) => s.trim())));
    const actual = await importGraph(folders);
    const describe = (g: Map<string, Set<string>>) =>
      [...g]
        .filter(([, to]) => to.size)
        .map(([from, to]) => `${from} -> ${[...to].sort().join(', ')}`)
        .sort();
    expect(describe(stated)).toEqual(describe(actual));
    expect(findCycle(actual)).toBeUndefined();
  });
});

/** Folder -> folders it imports (static or dynamic `../x/` imports), util left out. */
async function importGraph(folders: string[]): Promise<Map<string, Set<string>>> {
  const graph = new Map<string, Set<string>>();
  for (const folder of folders) {
    const deps = new Set<string>();
    const files = (await readdir(join(REPO_ROOT, 'src', folder), { recursive: true })).filter((f) => f.endsWith('.ts'));
    for (const f of files) {
      const text = await readFile(join(REPO_ROOT, 'src', folder, f), 'utf8');
      for (const m of text.matchAll(/(?:from |import\()\s*'(?:\.\.\/)+([a-z-]+)\//g)) {
        if (m[1] !== folder && m[1] !== 'util') deps.add(m[1]!);
      }
    }
    graph.set(folder, deps);
  }
  return graph;
}

function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const visit = (node: string, path: string[]): string[] | undefined => {
    if (state.get(node) === 'open') return [...path, node];
    if (state.get(node) === 'done') return undefined;
    state.set(node, 'open');
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next, [...path, node]);
      if (cycle) return cycle;
    }
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node, []);
    if (cycle) return cycle;
  }
  return undefined;
}

describeDocker(
  'documentation commands',
  () => {
    let work = '';
    let bin = '';
    /** Images the blocks name or make; removed before (leftovers) and after. */
    const madeImages = () => [
      'app:1',
      'app:2',
      'app:1-to-2',
      'app:1-to-2-alone',
      `${registryAddress()}/app:1`,
      `${registryAddress()}/app:2`,
      `${registryAddress()}/app:1-to-2`,
      `${registryAddress()}/deltaimg/runtime:${version}`,
    ];
    let version = '';

    beforeAll(async () => {
      version = (JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
      work = await mkdtemp(join(tmpdir(), 'deltaimg-docs-test-'));
      bin = join(work, 'bin');
      await mkdir(bin);
      // `deltaimg` on PATH is this checkout's, as scripts/setup.sh leaves it.
      await symlink(join(REPO_ROOT, 'dist/cli/main.js'), join(bin, 'deltaimg'));
      // `docker` is the CLI the Docker tests use (one that can build with BuildKit here).
      await symlink(DOCKER, join(bin, 'docker'));
    });
    afterAll(async () => {
      await removeImages(madeImages());
      if (work) await rm(work, { recursive: true, force: true });
    });

    for (const file of DOC_FILES) {
      it(`runs every sh block of ${file} as written`, async () => {
        const blocks = (await docBlocks()).filter((b) => b.file === file && b.info === 'sh');
        const dir = join(work, file.replace(/\W/g, '_'));
        await mkdir(dir);
        await makeFileFixtures(dir);
        // Each document starts from the same app:1 and app:2 (an earlier one may have replaced app:2).
        await removeImages(madeImages());
        await makeAppImages(dir);
        for (const v of ['1', '2']) {
          await execa(DOCKER, ['tag', `app:${v}`, `${registryAddress()}/app:${v}`]);
          await execa(DOCKER, ['push', `${registryAddress()}/app:${v}`]);
        }
        for (const block of blocks) {
          const script = block.text.replaceAll('registry.example', registryAddress());
          const r = await execa('bash', ['-euo', 'pipefail', '-c', script], {
            cwd: dir,
            env: { PATH: `${bin}:${process.env.PATH}`, DOCKER_BUILDKIT: '1', DELTAIMG_DOCKER: DOCKER },
            reject: false,
            all: true,
          });
          expect(r.exitCode, `${file}:${block.line}\n${block.text}\n--- output:\n${r.all}`).toBe(0);
        }
      });
    }

    it('the README workflow restored app:2 and the .dimg round trip is exact', async () => {
      const dir = join(work, 'README_md');
      const verify = await execa(
        'node',
        [
          join(REPO_ROOT, 'dist/cli/main.js'),
          'image',
          'verify',
          `docker-archive:${join(dir, 'b-restored.tar')}`,
          '--against',
          join(dir, 'a-to-b.dimg'),
          '--json',
        ],
        { reject: false },
      );
      expect(verify.exitCode, verify.stderr).toBe(0);
      const cmp = await execa('diff', ['-r', join(dir, 'v2'), join(dir, 'v2-copy')], { reject: false });
      expect(cmp.exitCode, cmp.stdout).toBe(0);
      expect((await readFile(join(dir, 'new-copy.bin'))).equals(await readFile(join(dir, 'new.bin')))).toBe(true);
    });
  },
  { needsRegistry: true },
);

const TEST_LABEL = 'io.deltaimg.test-fixture';

/**
 * Removes the images the docs name, but never one this test did not make (a developer's own app:1):
 * those (and every image built from them) carry TEST_LABEL; anything else stops the test.
 */
async function removeImages(refs: string[]): Promise<void> {
  for (const ref of refs.filter((r) => !r.includes('deltaimg/runtime'))) {
    // A delta image FROM scratch carries it inside its io.deltaimg.target-config label.
    const r = await execa(DOCKER, ['image', 'inspect', '--format', '{{json .Config.Labels}}', ref], { reject: false });
    if (r.exitCode === 0 && !r.stdout.includes(TEST_LABEL)) {
      throw new Error(`the engine has an image ${ref} this test did not make; the docs test uses that name: remove or rename it first`);
    }
  }
  await execa(DOCKER, ['rmi', '-f', ...refs], { reject: false });
}

/** app:1 and app:2 as the docs use them: a small root with /proc, /sys and /dev, and a config. */
async function makeAppImages(work: string): Promise<void> {
  for (const v of ['1', '2'] as const) {
    const root = join(work, `app-${v}`);
    for (const d of ['proc', 'sys', 'dev', 'etc', 'app', 'usr/lib']) await mkdir(join(root, d), { recursive: true });
    await writeFile(join(root, 'etc/app.conf'), `version=${v}\n`);
    for (const f of ['hosts', 'resolv.conf', 'hostname']) await writeFile(join(root, 'etc', f), ''); // what docker build mounts over
    const lib = Buffer.alloc(200_000);
    for (let i = 0; i < lib.length; i++) lib[i] = (i * 31 + (v === '2' && i % 5000 === 0 ? 7 : 0)) & 0xff;
    await writeFile(join(root, 'usr/lib/libapp.so.1'), lib);
    await writeFile(join(root, 'app/run'), `#!/bin/sh\necho app ${v}\n`);
    await chmod(join(root, 'app/run'), 0o755);
    if (v === '1') await writeFile(join(root, 'app/old.txt'), 'only in 1\n');
    // What both versions share is alike to the second, as in two builds of one base.
    const paths = (await readdir(root, { recursive: true }))
      .map((p) => join(root, p))
      .sort()
      .reverse();
    for (const p of [...paths, root]) await utimes(p, 1_700_000_000, 1_700_000_000);
    // PATH first, as a build's images have it: --layered keeps A's variables in A's order.
    await importTree(root, `app:${v}`, [
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      `ENV APP_MODE=${v}`,
      'CMD ["/app/run"]',
      'WORKDIR /app',
      `LABEL ${TEST_LABEL}=docs`,
    ]);
  }
}

/** The files the docs' examples start from: ./v1, ./v2, old.bin, new.bin. */
async function makeFileFixtures(dir: string): Promise<void> {
  for (const v of ['v1', 'v2']) {
    await mkdir(join(dir, v, 'etc'), { recursive: true });
    await mkdir(join(dir, v, 'bin'), { recursive: true });
    await writeFile(join(dir, v, 'etc/app.conf'), `release=${v}\n`);
    const tool = Buffer.alloc(100_000, 1);
    if (v === 'v2') tool.write('v2', 5000);
    await writeFile(join(dir, v, 'bin/tool'), tool);
  }
  await writeFile(join(dir, 'v2/etc/new.conf'), 'new\n');
  const old = Buffer.alloc(300_000);
  for (let i = 0; i < old.length; i++) old[i] = (i * 7) & 0xff;
  await writeFile(join(dir, 'old.bin'), old);
  await writeFile(join(dir, 'new.bin'), Buffer.concat([old.subarray(0, 150_000), Buffer.from('inserted'), old.subarray(150_000)]));
}
