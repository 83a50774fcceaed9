import { describe, expect, it } from 'vitest';
import { DeltaimgError } from '../../src/util/errors.js';
import { DEFAULT_MAX_BUDGET, defaultMemoryBudget, MemoryBudget, MIN_BUDGET, parseMemorySize } from '../../src/util/memory-budget.js';

const MiB = 1024 * 1024;

/** A budget whose jobs may hold exactly `jobBytes` (no baseline). */
const budgetOf = (jobBytes: number) => new MemoryBudget(jobBytes, 0, 0, 0);

/** A fake job that records its admission and ends when `finish` is called. */
function fakeJob(budget: MemoryBudget, bytes: number, log: { started: number[]; peak: number }) {
  let finish!: () => void;
  const ended = new Promise<void>((resolve) => (finish = resolve));
  const done = budget.run(bytes, async () => {
    log.started.push(bytes);
    log.peak = Math.max(log.peak, budget.inUse());
    await ended;
    return bytes;
  });
  return { finish, done };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('MemoryBudget', () => {
  it('admits jobs while their estimates fit and never holds more than the budget', async () => {
    const budget = budgetOf(1000 * MiB);
    const log = { started: [] as number[], peak: 0 };
    const jobs = [600, 500, 300, 200, 100].map((mb) => fakeJob(budget, mb * MiB, log));
    await tick();
    // 600 runs; 500 does not fit beside it; 300 and 100 fill the room (first fit decreasing).
    expect(log.started.map((b) => b / MiB)).toEqual([600, 300, 100]);
    jobs[0]!.finish();
    await tick();
    // 600 freed: the largest waiting (500) goes first, 200 fits beside 500 + 300 + 100? no: 900 + 200 > 1000.
    expect(log.started.map((b) => b / MiB)).toEqual([600, 300, 100, 500]);
    for (const j of jobs) j.finish();
    await Promise.all(jobs.map((j) => j.done));
    expect(log.started.map((b) => b / MiB).sort((a, b) => a - b)).toEqual([100, 200, 300, 500, 600]);
    expect(log.peak).toBeLessThanOrEqual(1000 * MiB);
    expect(budget.inUse()).toBe(0);
  });

  it('gives a waiting large job the room before an endless stream of small ones', async () => {
    const budget = budgetOf(100 * MiB);
    const log = { started: [] as number[], peak: 0 };
    const first = fakeJob(budget, 60 * MiB, log);
    const big = fakeJob(budget, 90 * MiB, log);
    const smalls: ReturnType<typeof fakeJob>[] = [];
    // Small jobs keep arriving and finishing; each passes the big one only a bounded number of times.
    for (let i = 0; i < 40; i++) {
      smalls.push(fakeJob(budget, 10 * MiB, log));
      await tick();
      smalls[i]!.finish();
      await tick();
      if (i === 5) first.finish();
    }
    expect(log.started).toContain(90 * MiB);
    const bigAt = log.started.indexOf(90 * MiB);
    expect(bigAt).toBeLessThan(20);
    expect(log.peak).toBeLessThanOrEqual(100 * MiB);
    big.finish();
    await Promise.all([first.done, big.done, ...smalls.map((s) => s.done)]);
  });

  it('runs a job estimated above the whole budget alone, after the others', async () => {
    const budget = budgetOf(100 * MiB);
    const log = { started: [] as number[], peak: 0 };
    const small = fakeJob(budget, 30 * MiB, log);
    const huge = fakeJob(budget, 500 * MiB, log);
    await tick();
    expect(log.started).toEqual([30 * MiB]);
    small.finish();
    await tick();
    expect(log.started).toEqual([30 * MiB, 500 * MiB]);
    expect(budget.inUse()).toBe(100 * MiB);
    huge.finish();
    await Promise.all([small.done, huge.done]);
    expect(budget.fits(100 * MiB)).toBe(true);
    expect(budget.fits(100 * MiB + 1)).toBe(false);
  });

  it('releases the room of a job that fails', async () => {
    const budget = budgetOf(100 * MiB);
    await expect(budget.run(80 * MiB, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(budget.inUse()).toBe(0);
    await expect(budget.run(80 * MiB, async () => 'ok')).resolves.toBe('ok');
  });

  it('counts the process baseline and reserved memory out of the budget', () => {
    const budget = new MemoryBudget(1024 * MiB, 200 * MiB, 100 * MiB);
    // A sixteenth is kept back for what the estimates miss.
    expect(budget.jobBytes).toBe(660 * MiB);
  });
});

describe('--memory sizes', () => {
  it('parses bytes and K/M/G suffixes (binary units)', () => {
    expect(parseMemorySize('1G')).toBe(1024 * MiB);
    expect(parseMemorySize('1.5g')).toBe(1536 * MiB);
    expect(parseMemorySize('800M')).toBe(800 * MiB);
    expect(parseMemorySize('512MiB')).toBe(512 * MiB);
    expect(parseMemorySize('262144k')).toBe(256 * MiB);
    expect(parseMemorySize(String(300 * MiB))).toBe(300 * MiB);
  });

  it('refuses nonsense and budgets too small to run in, as usage errors', () => {
    for (const bad of ['', 'lots', '1T', '-1G', '64M']) {
      expect(() => parseMemorySize(bad)).toThrow(DeltaimgError);
      try {
        parseMemorySize(bad);
      } catch (err) {
        expect((err as DeltaimgError).code).toBe('USAGE');
      }
    }
  });

  it('defaults to a share of the machine, at most 1 GiB', () => {
    const d = defaultMemoryBudget();
    expect(d).toBeLessThanOrEqual(DEFAULT_MAX_BUDGET);
    expect(d).toBeGreaterThanOrEqual(MIN_BUDGET);
  });
});
