/** Plain progress (`--progress plain`, as the generated Dockerfiles run deltaimg): whole lines, a few of them. */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress } from '../src/util/progress.js';

function capture() {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString()));
  return { stream: stream as unknown as NodeJS.WriteStream, lines: () => chunks.join('').split('\n').filter(Boolean) };
}

describe('plain progress', () => {
  it('prints the first line of each step, its last state, and nothing in between within a few seconds', () => {
    const out = capture();
    const p = createProgress({ mode: 'plain', stream: out.stream });
    for (let i = 1; i <= 500; i++) p.update({ label: 'scanning', done: i });
    for (let i = 1; i <= 100; i++) p.update({ label: 'diff', done: i, total: 100, bytesDone: i * 1024, bytesTotal: 100 * 1024 });
    p.done();
    const lines = out.lines();
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^deltaimg: scanning +1$/);
    expect(lines[1]).toMatch(/^deltaimg: scanning +500$/);
    expect(lines[2]).toMatch(/^deltaimg: diff +1\/100 +1\.0 KiB\/100(\.0)? KiB$/);
    expect(lines[3]).toMatch(/^deltaimg: diff +100\/100 +100(\.0)? KiB\/100(\.0)? KiB$/);
    for (const l of out.lines()) expect(l).not.toMatch(/\r|\x1b/);
  });

  it('auto draws nothing when stderr is not a terminal; none and --quiet draw nothing', () => {
    for (const opts of [{ mode: 'auto' as const }, { mode: 'none' as const }, { mode: 'plain' as const, quiet: true }]) {
      const out = capture();
      const p = createProgress({ ...opts, stream: out.stream });
      p.update({ label: 'diff', done: 1, total: 2 });
      p.done();
      expect(out.lines()).toEqual([]);
    }
  });
});
