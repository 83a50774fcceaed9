import { describe, expect, it } from 'vitest';
import { Fifo, Limiter } from '../../src/util/limiter.js';

describe('Fifo', () => {
  it('gives items back in order across compactions, and undefined when empty', () => {
    const q = new Fifo<number>();
    const out: number[] = [];
    for (let i = 0; i < 5000; i++) {
      q.push(i);
      if (i % 3 === 2) out.push(q.shift()!, q.shift()!);
    }
    while (q.length > 0) out.push(q.shift()!);
    expect(out).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(q.shift()).toBeUndefined();
    q.push(7);
    expect(q.length).toBe(1);
    expect(q.shift()).toBe(7);
  });
});

describe('Limiter', () => {
  it('runs at most `limit` jobs at once, in submission order, all of them', async () => {
    const limiter = new Limiter(3);
    let active = 0;
    let peak = 0;
    const started: number[] = [];
    const results = await Promise.all(
      Array.from({ length: 3000 }, (_, i) =>
        limiter.run(async () => {
          started.push(i);
          peak = Math.max(peak, ++active);
          await new Promise((resolve) => setImmediate(resolve));
          active--;
          return i * 2;
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(started).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(results[2999]).toBe(5998);
  });

  it('refuses the jobs still waiting after the first failure', async () => {
    const limiter = new Limiter(1);
    let ran = 0;
    const jobs = Array.from({ length: 10 }, (_, i) =>
      limiter.run(async () => {
        ran++;
        if (i === 0) throw new Error('first failed');
        return i;
      }),
    );
    const settled = await Promise.allSettled(jobs);
    expect(ran).toBe(1);
    expect(settled.every((s) => s.status === 'rejected' && (s.reason as Error).message === 'first failed')).toBe(true);
  });
});
