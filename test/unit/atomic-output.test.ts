/**
 * The one atomic-output helper: outputs appear whole or not at all, temps live beside their
 * target, and whatever is registered is gone after removeAllTemps (what exit and signals run).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { interruptedLine } from '../../src/cli/interrupt.js';
import {
  buildDirAtomically,
  completedOutputs,
  makeScratchDir,
  registerTemp,
  removeAllTemps,
  streamingTo,
  tempPathBeside,
  unfinishedStreams,
  withScratchDir,
  withTempFiles,
  writeFileAtomically,
} from '../../src/util/atomic-output.js';
import { DeltaimgError } from '../../src/util/errors.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaimg-atomic-output-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ours = () => readdirSync(dir).filter((n) => n.includes('deltaimg-'));

describe('writeFileAtomically', () => {
  it('renames a complete file into place, with no temp left beside it, and lists it as completed', async () => {
    const target = join(dir, 'out.bin');
    let tempSeen = '';
    const result = await writeFileAtomically(target, async (temp) => {
      tempSeen = temp;
      await writeFile(temp, 'whole', { flag: 'wx' });
      expect(existsSync(target)).toBe(false);
      return 42;
    });
    expect(result).toBe(42);
    expect(tempSeen.startsWith(join(dir, '.out.bin.deltaimg-tmp-'))).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('whole');
    expect(ours()).toEqual([]);
    expect(completedOutputs()).toContain(target);
  });

  it('leaves nothing when produce fails, and passes its error on', async () => {
    const target = join(dir, 'failed.bin');
    const err = await writeFileAtomically(target, async (temp) => {
      await writeFile(temp, 'half');
      throw new DeltaimgError('CORRUPT_DELTA', 'damaged');
    }).catch((e: unknown) => e);
    expect((err as DeltaimgError).message).toBe('damaged');
    expect(existsSync(target)).toBe(false);
    expect(ours()).toEqual([]);
  });

  it('refuses an existing output unless asked to replace it', async () => {
    const target = join(dir, 'existing.bin');
    await writeFile(target, 'old');
    await expect(writeFileAtomically(target, async (temp) => writeFile(temp, 'new'))).rejects.toThrow(/already exists/);
    expect(readFileSync(target, 'utf8')).toBe('old');
    await writeFileAtomically(target, async (temp) => writeFile(temp, 'new'), { replace: true });
    expect(readFileSync(target, 'utf8')).toBe('new');
    expect(ours()).toEqual([]);
  });

  it('takes Buffer paths with non-UTF-8 names', async () => {
    const target = Buffer.concat([Buffer.from(`${dir}/caf`), Buffer.from([0xe9, 0xff])]);
    const temp = tempPathBeside(target);
    expect(Buffer.isBuffer(temp)).toBe(true);
    expect(temp.subarray(0, dir.length + 6).toString('latin1')).toBe(`${dir}/.caf\xe9`);
    await writeFileAtomically(target, async (t) => writeFile(t, 'bytes'));
    expect(readFileSync(target, 'utf8')).toBe('bytes');
    await rm(target);
  });
});

describe('buildDirAtomically', () => {
  it('renames the built directory into place; a failed build leaves nothing', async () => {
    const target = join(dir, 'tree');
    await buildDirAtomically(target, async (temp) => {
      await mkdir(join(temp, 'sub'));
      await writeFile(join(temp, 'sub/file'), 'x');
    });
    expect(readFileSync(join(target, 'sub/file'), 'utf8')).toBe('x');
    const failed = join(dir, 'failed-tree');
    await expect(
      buildDirAtomically(failed, async (temp) => {
        await writeFile(join(temp, 'partial'), 'x');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(existsSync(failed)).toBe(false);
    expect(ours()).toEqual([]);
    await expect(buildDirAtomically(target, async () => undefined)).rejects.toThrow(/already exists/);
  });
});

describe('scratch space and the exit-time registry', () => {
  it('withScratchDir and withTempFiles remove what their body made, however it ends', async () => {
    let seen = '';
    await expect(
      withScratchDir(dir, 'deltaimg-scratch-test-', async (scratch) => {
        seen = scratch;
        await writeFile(join(scratch, 'f'), 'x');
        throw new Error('body failed');
      }),
    ).rejects.toThrow('body failed');
    expect(existsSync(seen)).toBe(false);
    const target = join(dir, 'blob');
    await withTempFiles(target, ['a', 'b'], async (temps) => {
      await writeFile(temps.a, 'x');
      expect(temps.a).not.toBe(temps.b);
    });
    expect(ours()).toEqual([]);
  });

  it('removeAllTemps removes every registered temp (files, full directories) and forgets them', async () => {
    const scratch = await makeScratchDir(dir, 'deltaimg-kept-');
    await mkdir(join(scratch.path, 'a/b/c'), { recursive: true });
    await writeFile(join(scratch.path, 'a/b/c/file'), 'x');
    const file = registerTemp(tempPathBeside(join(dir, 'x.bin')));
    await writeFile(file.path, 'x');
    const released = registerTemp(join(dir, 'not-ours-anymore'));
    await writeFile(released.path, 'x');
    released.release();
    removeAllTemps();
    expect(existsSync(scratch.path)).toBe(false);
    expect(existsSync(file.path)).toBe(false);
    expect(existsSync(released.path)).toBe(true);
    await rm(released.path);
  });

  it('tracks streams still being written', () => {
    const done = streamingTo('standard output');
    expect(unfinishedStreams()).toEqual(['standard output']);
    done();
    expect(unfinishedStreams()).toEqual([]);
  });
});

describe('the line an interrupted run ends with', () => {
  it('says nothing was written, or which outputs are complete, and what stream is incomplete', () => {
    expect(interruptedLine('SIGINT', [], [])).toBe('deltaimg: interrupted (SIGINT); nothing was written (temporary files removed)');
    expect(interruptedLine('SIGTERM', ['/out'], [])).toBe('deltaimg: interrupted (SIGTERM); /out was already complete and is kept');
    expect(interruptedLine('SIGTERM', [], ['standard output'])).toBe(
      'deltaimg: interrupted (SIGTERM); nothing was written (temporary files removed); what was sent to standard output is incomplete',
    );
  });
});
