/**
 * Runs at most `limit` async jobs at once, in the order they were submitted. After the first
 * failure it refuses new jobs, so a failing run stops quickly instead of grinding through
 * every file. Waiting jobs sit in a FIFO with O(1) dequeue: diff submits one job per file,
 * and an Array.shift() per finished job was O(n) each, 3.5 s of a 100k-file diff.
 */
export class Limiter {
  private active = 0;
  private readonly waiting = new Fifo<() => void>();
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

/** A queue in an array with a moving head, compacted when the dead prefix is half of it. */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
