/**
 * The CLI's habits, through the built CLI (dist/cli/main.js): usage errors exit 2 and name what
 * is wrong, `version`, `completion` for bash/zsh/fish (run in the real shells), a closed stdout,
 * help wrapped at words, and plain NAME:TAG image references.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORMAT_VERSION } from '../src/delta/format.js';
import { DIMG_VERSION } from '../src/imagedelta/format.js';
import { DOCKER, REPO_ROOT, describeDocker, importTree } from './helpers/docker.js';

const CLI = join(REPO_ROOT, 'dist/cli/main.js');
let work = '';

function deltaimg(args: string[], opts: { cwd?: string } = {}) {
  return execa('node', [CLI, ...args], { reject: false, cwd: opts.cwd ?? work, env: { DELTAIMG_DOCKER: DOCKER } });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'deltaimg-cli-test-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('usage errors', () => {
  it.each([
    [['diff', 'rootA'], /^deltaimg: error: missing required argument 'DST_ROOT'$/m],
    [['diff', 'a', 'b'], /^deltaimg: error: required option '-o, --out <DELTA_DIR>' not specified$/m],
    [['image', 'apply', 'docker-archive:a.tar'], /^deltaimg: error: missing required argument 'DIMG'$/m],
    [['diff', 'a', 'b', '-o', 'd', '--bogus'], /^deltaimg: error: unknown option '--bogus'$/m],
    [['frobnicate'], /^deltaimg: error: unknown command 'frobnicate'$/m],
    [['diff', 'a', 'b', 'c', '-o', 'd'], /too many arguments/],
    [['vcdiff', 'encode', '--level', '12', 'a', 'b'], /^deltaimg: error: --level takes 0\.\.9 \(got "12"\)$/m],
    [['completion', 'tcsh'], /^deltaimg: error: completion: unknown shell "tcsh"; use one of bash, zsh, fish$/m],
    [[], /^Usage: deltaimg /m],
  ])('deltaimg %j exits 2 and says what is wrong', async (args, message) => {
    const r = await deltaimg(args);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('--help and --version exit 0 on stdout', async () => {
    for (const args of [['--help'], ['diff', '--help'], ['image', 'inspect', '--help'], ['--version']]) {
      const r = await deltaimg(args);
      expect(r.exitCode, args.join(' ')).toBe(0);
      expect(r.stdout.length).toBeGreaterThan(0);
    }
  });
});

describe('version', () => {
  it('prints the tool version and the format versions, as text and JSON', async () => {
    const text = await deltaimg(['version']);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^deltaimg \d+\.\d+\.\d+ \(node v\d+/);
    expect(text.stdout).toMatch(new RegExp(`deltaimg-delta +${FORMAT_VERSION} / ${FORMAT_VERSION}`));
    const json = await deltaimg(['version', '--json']);
    const report = JSON.parse(json.stdout) as {
      version: string;
      nativeAddon: { present: boolean };
      formats: { name: string; writes: number; readsUpTo: number }[];
    };
    expect(report.version).toBe((await deltaimg(['--version'])).stdout);
    expect(report.nativeAddon.present).toBe(true);
    expect(report.formats).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'deltaimg-delta', writes: FORMAT_VERSION, readsUpTo: FORMAT_VERSION }),
        expect.objectContaining({ name: 'deltaimg-image', writes: DIMG_VERSION, readsUpTo: DIMG_VERSION }),
      ]),
    );
  });
});

describe('completion', () => {
  /** What bash completes for the words typed so far (the last one being completed). */
  async function bashComplete(words: string[]): Promise<string[]> {
    const script = `source <(node "$CLI" completion bash)
deltaimg() { :; }
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_deltaimg; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = await execa('bash', ['-c', script], { env: { CLI }, cwd: work });
    return r.stdout.split('\n').filter(Boolean);
  }

  it('bash completes verbs, subcommands and options from the command tree', async () => {
    expect(await bashComplete(['deltaimg', ''])).toEqual(
      expect.arrayContaining(['diff', 'apply', 'inspect', 'image', 'dockerfile', 'vcdiff', 'version', 'completion', 'runtime']),
    );
    expect(await bashComplete(['deltaimg', ''])).not.toContain('layer-sync'); // hidden
    expect((await bashComplete(['deltaimg', 'image', ''])).sort()).toEqual(['apply', 'diff', 'inspect', 'verify']);
    expect(await bashComplete(['deltaimg', 'image', 'diff', '--pla'])).toEqual(['--platform']);
    expect(await bashComplete(['deltaimg', 'diff', '--j'])).toEqual(['--json']);
    await writeFile(join(work, 'v1.tar'), '');
    expect(await bashComplete(['deltaimg', 'diff', 'v1'])).toEqual(['v1.tar']); // arguments: file names
  });

  it('zsh loads it through bashcompinit', async () => {
    const r = await execa('zsh', ['-c', 'source <(node "$CLI" completion zsh) && whence -w _deltaimg'], { env: { CLI }, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('_deltaimg: function');
  });

  it('fish completes verbs, subcommands and options', async () => {
    const complete = async (line: string) => {
      const r = await execa('fish', ['--no-config', '-c', `node "$CLI" completion fish | source; complete -C '${line}'`], {
        env: { CLI },
        cwd: work,
      });
      return r.stdout.split('\n').map((l) => l.split('\t')[0]);
    };
    expect(await complete('deltaimg ')).toEqual(expect.arrayContaining(['diff', 'image', 'version', 'completion']));
    expect((await complete('deltaimg image ')).sort()).toEqual(['apply', 'diff', 'inspect', 'verify']);
    expect(await complete('deltaimg image diff --pl')).toEqual(['--platform']);
  });
});

describe('output', () => {
  it('a reader that closes stdout gets one line on stderr and exit 141, no stack trace', async () => {
    const big = join(work, 'big.bin');
    await writeFile(big, randomBytes(4 << 20)); // incompressible: far more than a pipe buffer
    const r = await execa('bash', ['-c', 'node "$CLI" vcdiff encode "$BIG" - | true; echo "${PIPESTATUS[0]}"'], {
      env: { CLI, BIG: big },
      reject: false,
    });
    expect(r.stderr.trim().split('\n')).toEqual(['deltaimg: stdout was closed before all output was written (the reader exited); stopped']);
    expect(r.stdout.trim()).toBe('141');
  });

  it('help is wrapped at words to 80 columns', async () => {
    for (const args of [['--help'], ['diff', '--help'], ['dockerfile', 'diff', '--help'], ['image', 'diff', '--help']]) {
      const help = (await deltaimg(args)).stdout;
      // Everything above the examples (usage, description, arguments, options, commands).
      const body = help.split(/\n(?:Examples?:|The Docker workflow:|Image references)/)[0]!;
      for (const line of body.split('\n')) expect(line.length, `${args.join(' ')}: ${line}`).toBeLessThanOrEqual(80);
    }
    // A description written over several source lines reads as one paragraph.
    const diffHelp = (await deltaimg(['diff', '--help'])).stdout.replace(/\s+/g, ' ');
    expect(diffHelp).toContain('a VCDIFF against the same path or a versioned sibling');
  });
});

describe('image references', () => {
  it('a plain NAME:TAG that is also a file here is refused, naming both spellings', async () => {
    await writeFile(join(work, 'app:1'), 'not an image');
    const r = await deltaimg(['image', 'verify', 'app:1']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /"app:1" is both a file here and an image name: write docker-archive:app:1 for the file or docker-daemon:app:1/,
    );
  });

  it('a bare word is not taken as an image name', async () => {
    const r = await deltaimg(['image', 'verify', 'b.tar']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/bad image reference "b.tar": no transport prefix/);
  });
});

describeDocker('image references with the engine', () => {
  const name = `deltaimg-test/${randomBytes(3).toString('hex')}-plain:1`;
  afterAll(async () => {
    await execa(DOCKER, ['rmi', '-f', name], { reject: false });
  });

  it('image verify NAME:TAG reads the engine image, with a note on stderr', async () => {
    const tree = join(work, 'plain-tree');
    await execa('mkdir', ['-p', join(tree, 'etc')]);
    await writeFile(join(tree, 'etc/hello'), 'hello\n');
    await importTree(tree, name);
    const r = await deltaimg(['image', 'verify', name, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(`deltaimg: note: taking ${name} as docker-daemon:${name}`);
    expect(JSON.parse(r.stdout)).toMatchObject({ image: name, ok: true });
  });
});
