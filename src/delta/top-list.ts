/** Keeps the `capacity` largest items seen, by a numeric key, largest first. */
export class TopList<T> {
  private readonly list: T[] = [];

  constructor(
    private readonly capacity: number,
    private readonly key: (item: T) => number,
  ) {}

  offer(item: T): void {
    const k = this.key(item);
    if (this.list.length === this.capacity && k <= this.key(this.list[this.list.length - 1]!)) return;
    const at = this.list.findIndex((x) => this.key(x) < k);
    this.list.splice(at < 0 ? this.list.length : at, 0, item);
    if (this.list.length > this.capacity) this.list.pop();
  }

  items(): T[] {
    return [...this.list];
  }
}
