/**
 * Long loops that call synchronous code (wasm, blocking reads) never let the event loop turn,
 * so a signal or a timer would wait until the whole job ends. `maybe()` gives the loop a turn
 * once `everyMs` has passed since the last one; between turns it costs one clock read.
 */
import { setImmediate } from 'node:timers/promises';

export const YIELD_EVERY_MS = 20;

export class EventLoopYielder {
  private last = performance.now();
  constructor(private readonly everyMs = YIELD_EVERY_MS) {}

  async maybe(): Promise<void> {
    if (performance.now() - this.last < this.everyMs) return;
    await setImmediate();
    this.last = performance.now();
  }
}
