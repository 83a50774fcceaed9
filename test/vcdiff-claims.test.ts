/**
 * What `vcdiff decode` accepts, against Debian's native xdelta3 3.0.11: LZMA secondary
 * compression (its default) refused with what to do, djw/none decoded exactly; windows without
 * adler32 refused unless --no-checksum; windows over xdelta3's 16 MiB hard size refused.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededBytes } from './helpers/small-images.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
let dir: string;
const p = (name: string) => join(dir, name);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaimg-vcdiff-claims-'));
  const a = seededBytes('source', 300_000);
  const b = Buffer.concat([a.subarray(0, 100_000), Buffer.from('an insertion'), a.subarray(100_500), Buffer.from('tail')]);
  await writeFile(p('a'), a);
  await writeFile(p('b'), b);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function xdelta3(args: string[]): void {
  execFileSync('xdelta3', ['-f', ...args]);
}

async function decode(delta: string, out: string, extra: string[] = []) {
  return execa('node', [CLI, 'vcdiff', 'decode', '-q', ...extra, '-s', p('a'), delta, out], { reject: false });
}

describe('native xdelta3 deltas', () => {
  it('its default (LZMA secondary) is refused in one line saying how to re-encode; -S djw and -S none decode exactly', async () => {
    xdelta3(['-e', '-s', p('a'), p('b'), p('default.vcdiff')]);
    const refused = await decode(p('default.vcdiff'), p('out-default'));
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/uses xdelta3's LZMA secondary compression .* make it with xdelta3 -e -S djw/);
    expect(existsSync(p('out-default'))).toBe(false);
    for (const secondary of ['djw', 'none']) {
      xdelta3(['-e', '-S', secondary, '-s', p('a'), p('b'), p(`${secondary}.vcdiff`)]);
      const ok = await decode(p(`${secondary}.vcdiff`), p(`out-${secondary}`));
      expect(ok.exitCode, ok.stderr).toBe(0);
      expect(sha(await readFile(p(`out-${secondary}`)))).toBe(sha(await readFile(p('b'))));
    }
  });

  it('windows without adler32 (xdelta3 -n) are refused unless --no-checksum; then damage goes unnoticed, as the help says', async () => {
    xdelta3(['-e', '-n', '-S', 'none', '-s', p('a'), p('b'), p('nochk.vcdiff')]);
    const refused = await decode(p('nochk.vcdiff'), p('out-nochk'));
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/window 1 has no adler32 checksum.*--no-checksum/);
    expect(existsSync(p('out-nochk'))).toBe(false);
    const ok = await decode(p('nochk.vcdiff'), p('out-nochk'), ['--no-checksum']);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(sha(await readFile(p('out-nochk')))).toBe(sha(await readFile(p('b'))));
    // One byte of the inserted text (an ADD in the data section) changed: with checksums off, decoded as is.
    const damaged = await readFile(p('nochk.vcdiff'));
    const at = damaged.indexOf('an insertion');
    damaged[at] = 'A'.charCodeAt(0);
    await writeFile(p('nochk-damaged.vcdiff'), damaged);
    expect((await decode(p('nochk-damaged.vcdiff'), p('out-damaged'))).exitCode).toBe(1);
    expect((await decode(p('nochk-damaged.vcdiff'), p('out-damaged'), ['--no-checksum'])).exitCode).toBe(0);
    expect(sha(await readFile(p('out-damaged')))).not.toBe(sha(await readFile(p('b'))));
  });

  it('a window over 16 MiB (xdelta3 3.0.x hard window size) is refused', async () => {
    xdelta3(['-e', '-S', 'none', '-s', p('a'), p('b'), p('window.vcdiff')]);
    const d = await readFile(p('window.vcdiff'));
    // The first window's target length, a varint right after the delta encoding length.
    const bLength = (await readFile(p('b'))).length;
    const varint = (n: number) => {
      const digits = [n & 0x7f];
      for (n = Math.floor(n / 128); n > 0; n = Math.floor(n / 128)) digits.unshift((n & 0x7f) | 0x80);
      return Buffer.from(digits);
    };
    const at = d.indexOf(varint(bLength));
    expect(at).toBeGreaterThan(0);
    const big = varint(16 * 1024 * 1024 + 1);
    expect(big.length).toBe(varint(bLength).length + 1);
    // One byte longer, so the window's encoding length is off: the framing check refuses before the decoder looks.
    const patched = Buffer.concat([d.subarray(0, at), big, d.subarray(at + varint(bLength).length)]);
    await writeFile(p('window-big.vcdiff'), patched);
    const refused = await decode(p('window-big.vcdiff'), p('out-window'));
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/window 1 builds 16777217 bytes, more than xdelta3's hard window size/);
    expect(() => execFileSync('xdelta3', ['-d', '-f', '-s', p('a'), p('window-big.vcdiff'), p('native-out')], { stdio: 'pipe' })).toThrow();
  });
});
