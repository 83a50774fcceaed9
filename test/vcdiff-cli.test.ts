/**
 * `deltaimg vcdiff encode|decode` through the built CLI (dist/cli/main.js; `npm test` builds it
 * first), including `-` for stdin/stdout, --json stats, one-line errors and exit codes.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xorByte } from './helpers/bytes.js';
import { esbuildBinaryPair, type FilePair } from './helpers/real-data.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/cli/main.js');

let dir: string;
let pair: FilePair;

function p(name: string): string {
  return join(dir, name);
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Runs the CLI; stdout as raw bytes (it may carry a delta), exit code as a number. */
async function cli(args: string[], input?: { file?: string; bytes?: Buffer }) {
  const r = await execa('node', [CLI, ...args], {
    reject: false,
    encoding: 'buffer',
    ...(input?.file ? { inputFile: input.file } : {}),
    ...(input?.bytes ? { input: input.bytes } : {}),
  });
  return { exitCode: r.exitCode, stdout: Buffer.from(r.stdout), stderr: Buffer.from(r.stderr) };
}

beforeAll(async () => {
  if (!existsSync(CLI)) await run('npx', ['tsc', '-p', '.'], { cwd: ROOT });
  dir = await mkdtemp(join(tmpdir(), 'deltaimg-vcdiff-cli-'));
  pair = await esbuildBinaryPair();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('deltaimg vcdiff', () => {
  it('encode then decode files, with --json stats', async () => {
    const enc = await cli(['vcdiff', 'encode', '-s', pair.a, pair.b, p('d.vcdiff'), '--json', '--level', '3']);
    expect(enc.exitCode).toBe(0);
    const stats = JSON.parse(enc.stdout.toString()) as Record<string, unknown>;
    const delta = await readFile(p('d.vcdiff'));
    expect(stats.deltaBytes).toBe(delta.length);
    expect(stats.deltaSha256).toBe(sha256(delta));
    expect(stats.targetBytes).toBe((await readFile(pair.b)).length);

    const dec = await cli(['vcdiff', 'decode', '-s', pair.a, p('d.vcdiff'), p('d.out'), '--json']);
    expect(dec.exitCode).toBe(0);
    const target = await readFile(pair.b);
    expect(sha256(await readFile(p('d.out')))).toBe(sha256(target));
    expect((JSON.parse(dec.stdout.toString()) as { outputSha256: string }).outputSha256).toBe(sha256(target));
    // and native xdelta3 agrees
    await run('xdelta3', ['-d', '-f', '-s', pair.a, p('d.vcdiff'), p('d.native')]);
    expect(sha256(await readFile(p('d.native')))).toBe(sha256(target));
  });

  it('- for stdin and stdout on both verbs (stats go to stderr)', async () => {
    const enc = await cli(['vcdiff', 'encode', '-s', pair.a, '--window', '4M', '--secondary', 'fgk', '--level', '2', '-', '-', '--json'], {
      file: pair.b,
    });
    expect(enc.exitCode).toBe(0);
    const delta = enc.stdout;
    expect((JSON.parse(enc.stderr.toString()) as { deltaBytes: number }).deltaBytes).toBe(delta.length);
    const dec = await cli(['vcdiff', 'decode', '-s', pair.a, '-', '-', '-q'], { bytes: delta });
    expect(dec.exitCode).toBe(0);
    expect(dec.stderr.toString()).toBe('');
    expect(sha256(dec.stdout)).toBe(sha256(await readFile(pair.b)));
  });

  it('without -s: plain compression, stdin to a file', async () => {
    const enc = await cli(['vcdiff', 'encode', '-', p('plain.vcdiff'), '-q'], { file: pair.b });
    expect(enc.exitCode).toBe(0);
    const dec = await cli(['vcdiff', 'decode', p('plain.vcdiff'), '-'], {});
    expect(dec.exitCode).toBe(0);
    expect(sha256(dec.stdout)).toBe(sha256(await readFile(pair.b)));
    expect(dec.stderr.toString()).toMatch(/^deltaimg: decoded .* sha256 [0-9a-f]{64}$/);
  });

  it('a corrupt delta: one-line error naming it, exit 1, OUT not created', async () => {
    await cli(['vcdiff', 'encode', '-s', pair.a, pair.b, p('c.vcdiff'), '--level', '1']);
    const bad = await readFile(p('c.vcdiff'));
    for (let i = 0; i < 8; i++) xorByte(bad, Math.floor(bad.length / 2) + i, 0xff);
    await writeFile(p('c.vcdiff'), bad);
    const dec = await cli(['vcdiff', 'decode', '-s', pair.a, p('c.vcdiff'), p('c.out')]);
    expect(dec.exitCode).toBe(1);
    const err = dec.stderr.toString();
    expect(err.trimEnd().split('\n')).toHaveLength(1);
    expect(err).toContain(p('c.vcdiff'));
    expect(err).toMatch(/^deltaimg: error: .*corrupt/);
    expect(existsSync(p('c.out'))).toBe(false);
  });

  it('the wrong source: WRONG_SOURCE message, exit 1', async () => {
    await cli(['vcdiff', 'encode', '-s', pair.a, pair.b, p('w.vcdiff'), '--level', '1']);
    const dec = await cli(['vcdiff', 'decode', '-s', pair.b, p('w.vcdiff'), p('w.out')]);
    expect(dec.exitCode).toBe(1);
    expect(dec.stderr.toString()).toMatch(/^deltaimg: error: .*different source.*exact file/);
    expect(existsSync(p('w.out'))).toBe(false);
  });

  it('usage errors exit 2 with one line; missing files exit 1 naming the path', async () => {
    const badLevel = await cli(['vcdiff', 'encode', '--level', '12', pair.a, p('x')]);
    expect(badLevel.exitCode).toBe(2);
    expect(badLevel.stderr.toString()).toContain('--level takes 0..9');
    const badWindow = await cli(['vcdiff', 'encode', '--window', 'lots', pair.a, p('x')]);
    expect(badWindow.exitCode).toBe(2);
    const badSecondary = await cli(['vcdiff', 'encode', '--secondary', 'lzma', pair.a, p('x')]);
    expect(badSecondary.exitCode).toBe(2);
    const missing = await cli(['vcdiff', 'decode', '-s', p('nope'), p('x'), p('y')]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr.toString()).toContain(p('nope'));
    expect(existsSync(p('x'))).toBe(false);
  });

  it('--help teaches with examples', async () => {
    for (const verb of [[], ['encode'], ['decode']]) {
      const help = await cli(['vcdiff', ...verb, '--help']);
      expect(help.exitCode).toBe(0);
      expect(help.stdout.toString()).toContain('Examples:');
      expect(help.stdout.toString()).toContain('deltaimg vcdiff');
    }
  });
});
