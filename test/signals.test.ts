/**
 * Ctrl-C and SIGTERM through the built CLI, on real work: every verb is interrupted early, in
 * the middle and near its end. Each time it must exit promptly, by the signal, with one line
 * that tells the truth, and leave either its complete output (and say so) or nothing at all:
 * no temp file or directory beside the output or in the scratch directory.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, lstatSync, existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classicArchive, sha, writeTar } from './helpers/image-archives.js';
import { binaryLike, editedBinary, pseudoRandomBytes } from './helpers/trees.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
/**
 * A hang guard, not a speed target: the process must be gone this long after the signal
 * (it removes its temp trees first, which on a busy shared disk can take seconds).
 */
const EXIT_WITHIN_MS = 20_000;

let work: string;
/** Scratch space the CLI is pointed at (TMPDIR): must be empty after every run. */
let scratch: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'deltaimg-signals-'));
  scratch = join(work, 'scratch');
  await mkdir(scratch);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** path -> content digest (or link target, or 'dir') of every entry under `root`. */
function treeDigest(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, path));
      if (st.isDirectory()) {
        out.set(path, `dir ${st.mode}`);
        walk(path);
      } else if (st.isSymbolicLink()) out.set(path, `-> ${readlinkSync(join(root, path))}`);
      else
        out.set(
          path,
          `${st.mode} ${createHash('sha256')
            .update(readFileSync(join(root, path)))
            .digest('hex')}`,
        );
    }
  };
  walk('');
  return out;
}

function fileDigest(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Trees with a thousand small files and two big ones: seconds of work for every verb. */
async function makeTrees(a: string, b: string): Promise<void> {
  for (const [root, edited] of [
    [a, false],
    [b, true],
  ] as const) {
    for (let d = 0; d < 25; d++) {
      mkdirSync(join(root, `d${d}`), { recursive: true });
      for (let f = 0; f < 50; f++) {
        const seed = d * 1000 + f + 1;
        const bytes = binaryLike(seed, 2048 + ((seed * 37) % 6000));
        const changed = edited && f % 7 === 0 ? editedBinary(bytes, seed) : bytes;
        await writeFile(join(root, `d${d}`, `f${f}.bin`), changed);
      }
    }
    for (let big = 0; big < 2; big++) {
      const bytes = binaryLike(900 + big, 4 * 1024 * 1024);
      await writeFile(join(root, `big${big}.so`), edited ? editedBinary(bytes, big) : bytes);
    }
  }
}

interface Verb {
  name: string;
  args: () => string[];
  /** The output the verb writes (must not exist before the run). */
  out: () => string;
  /** Throws unless `out` is complete and right. */
  check: (out: string) => Promise<void> | void;
}

interface Outcome {
  finished: boolean;
  exitMs: number;
}

async function interrupt(verb: Verb, signal: 'SIGTERM' | 'SIGINT', afterMs: number): Promise<Outcome> {
  const out = verb.out();
  expect(existsSync(out), 'a previous run left its output').toBe(false);
  const child = execa('node', [CLI, ...verb.args()], {
    reject: false,
    env: { TMPDIR: scratch },
    stdin: 'ignore',
    forceKillAfterDelay: false,
  });
  await new Promise((r) => setTimeout(r, afterMs));
  const sentAt = Date.now();
  child.kill(signal);
  const guard = setTimeout(() => child.kill('SIGKILL'), EXIT_WITHIN_MS * 3);
  const r = await child;
  clearTimeout(guard);
  const exitMs = Date.now() - sentAt;
  const context = `${verb.name} ${signal} after ${afterMs} ms: exit ${r.exitCode} signal ${r.signal} stderr ${r.stderr}`;
  expect(exitMs, context).toBeLessThan(EXIT_WITHIN_MS);
  expect(readdirSync(scratch), context).toEqual([]);
  const beside = readdirSync(join(out, '..')).filter((n) => n.includes('deltaimg'));
  expect(beside, context).toEqual([]);
  if (r.exitCode === 0) {
    // It finished before the signal arrived: then OUT must be whole.
    await verb.check(out);
    await rm(out, { recursive: true, force: true });
    return { finished: true, exitMs };
  }
  expect(r.signal, context).toBe(signal);
  const last = r.stderr.trim().split('\n').at(-1) ?? '';
  expect(r.stderr, context).not.toMatch(/internal error|ENOTEMPTY|\n\s+at /);
  if (r.stderr === '') {
    // Killed while node started (before deltaimg's handlers were installed: nothing done
    // yet) or while it tore down after the command had finished (OUT complete).
    if (existsSync(out)) await verb.check(out);
  } else if (/nothing was written/.test(last)) {
    expect(last).toBe(`deltaimg: interrupted (${signal}); nothing was written (temporary files removed)`);
    expect(existsSync(out), context).toBe(false);
  } else {
    expect(last).toBe(`deltaimg: interrupted (${signal}); ${out} was already complete and is kept`);
    await verb.check(out);
  }
  await rm(out, { recursive: true, force: true });
  return { finished: false, exitMs };
}

/** How long the verb takes uninterrupted (its output checked, then removed). */
async function timeUninterrupted(verb: Verb): Promise<number> {
  const started = Date.now();
  const r = await execa('node', [CLI, ...verb.args()], { reject: false, env: { TMPDIR: scratch } });
  expect(r.exitCode, r.stderr).toBe(0);
  const ms = Date.now() - started;
  await verb.check(verb.out());
  await rm(verb.out(), { recursive: true, force: true });
  return ms;
}

/** Early, in the middle and near the end, alternating SIGTERM and SIGINT. */
async function interruptThroughout(verb: Verb): Promise<void> {
  const total = await timeUninterrupted(verb);
  const outcomes: Outcome[] = [];
  for (const [i, fraction] of [0.15, 0.5, 0.85].entries()) {
    outcomes.push(await interrupt(verb, i % 2 ? 'SIGINT' : 'SIGTERM', Math.round(total * fraction)));
  }
  // Most runs must really have been interrupted, or this proved nothing.
  expect(outcomes.filter((o) => !o.finished).length).toBeGreaterThanOrEqual(2);
}

describe('signals stop every verb cleanly', () => {
  let a: string;
  let b: string;
  let delta: string;

  beforeAll(async () => {
    a = join(work, 'a');
    b = join(work, 'b');
    delta = join(work, 'a-to-b');
    await makeTrees(a, b);
    const r = await execa('node', [CLI, 'diff', a, b, '--out', delta], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
  });

  it('diff', async () => {
    const expected = treeDigest(b);
    await interruptThroughout({
      name: 'diff',
      args: () => ['diff', a, b, '--out', join(work, 'out-diff'), '--quiet'],
      out: () => join(work, 'out-diff'),
      // A complete delta restores B.
      check: async (out) => {
        const restored = join(work, 'restored');
        const r = await execa('node', [CLI, 'apply', a, out, '--out', restored, '--quiet'], { reject: false });
        expect(r.exitCode, r.stderr).toBe(0);
        expect(treeDigest(restored)).toEqual(expected);
        await rm(restored, { recursive: true, force: true });
      },
    });
  });

  it('apply', async () => {
    const expected = treeDigest(b);
    await interruptThroughout({
      name: 'apply',
      args: () => ['apply', a, delta, '--out', join(work, 'out-apply'), '--quiet'],
      out: () => join(work, 'out-apply'),
      check: (out) => expect(treeDigest(out)).toEqual(expected),
    });
  });

  it('image diff and image apply', async () => {
    const archive = async (root: string, name: string): Promise<string> => {
      const layerTar = join(work, `${name}-layer.tar`);
      await execa('tar', ['-C', root, '--sort=name', '--owner=0', '--group=0', '--mtime=@1700000000', '-cf', layerTar, '.']);
      const layer = readFileSync(layerTar);
      const config = Buffer.from(
        JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha(layer)] } }),
      );
      const path = join(work, `${name}.tar`);
      await writeTar(path, classicArchive(config, [layer], `deltaimg-test/signals-${name}:1`));
      return path;
    };
    const aTar = await archive(a, 'image-a');
    const bTar = await archive(b, 'image-b');
    const dimg = join(work, 'a-to-b.dimg');
    const r = await execa('node', [CLI, 'image', 'diff', `docker-archive:${aTar}`, `docker-archive:${bTar}`, '-o', dimg, '--quiet'], {
      reject: false,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    // What an uninterrupted apply makes (the same bytes every time).
    const applied = async (delta: string): Promise<string> => {
      const restored = join(work, 'restored-b.tar');
      const r = await execa(
        'node',
        [CLI, 'image', 'apply', `docker-archive:${aTar}`, delta, '-o', `docker-archive:${restored}`, '--quiet'],
        { reject: false },
      );
      expect(r.exitCode, r.stderr).toBe(0);
      const digest = fileDigest(restored);
      await rm(restored);
      return digest;
    };
    const expectedB = await applied(dimg);
    await interruptThroughout({
      name: 'image diff',
      args: () => ['image', 'diff', `docker-archive:${aTar}`, `docker-archive:${bTar}`, '-o', join(work, 'out.dimg'), '--quiet'],
      out: () => join(work, 'out.dimg'),
      // A complete .dimg restores B.
      check: async (out) => expect(await applied(out)).toBe(expectedB),
    });
    await interruptThroughout({
      name: 'image apply',
      args: () => ['image', 'apply', `docker-archive:${aTar}`, dimg, '-o', `docker-archive:${join(work, 'out-b.tar')}`, '--quiet'],
      out: () => join(work, 'out-b.tar'),
      check: (out) => expect(fileDigest(out)).toBe(expectedB),
    });
  });

  it('vcdiff encode and decode (files)', async () => {
    const source = join(work, 'v-src.bin');
    const target = join(work, 'v-dst.bin');
    // Incompressible data: each 8 MiB window is seconds of work inside one wasm call.
    const noise = pseudoRandomBytes(7, 16 * 1024 * 1024);
    await writeFile(source, noise);
    await writeFile(target, Buffer.concat([pseudoRandomBytes(8, 4 * 1024 * 1024), noise.subarray(1000)]));
    const vdelta = join(work, 'v.vcdiff');
    const enc = await execa('node', [CLI, 'vcdiff', 'encode', '-s', source, target, vdelta, '-q'], { reject: false });
    expect(enc.exitCode, enc.stderr).toBe(0);
    const expectedDelta = fileDigest(vdelta);
    await interruptThroughout({
      name: 'vcdiff encode',
      args: () => ['vcdiff', 'encode', '-s', source, target, join(work, 'out.vcdiff'), '-q'],
      out: () => join(work, 'out.vcdiff'),
      check: (out) => expect(fileDigest(out)).toBe(expectedDelta),
    });
    const expectedTarget = fileDigest(target);
    await interruptThroughout({
      name: 'vcdiff decode',
      args: () => ['vcdiff', 'decode', '-s', source, vdelta, join(work, 'out.bin'), '-q'],
      out: () => join(work, 'out.bin'),
      check: (out) => expect(fileDigest(out)).toBe(expectedTarget),
    });
  });
});
