/**
 * Runs at most `limit` async jobs at once. After the first failure it refuses new
 * jobs, so a failing run stops quickly instead of grinding through every file.
 */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private failure: unknown;
  private failed = false;

  constructor(private readonly limit: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      if (this.failed) throw this.failure;
      return await job();
    } catch (err) {
      if (!this.failed) {
        this.failed = true;
        this.failure = err;
      }
      throw err;
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
