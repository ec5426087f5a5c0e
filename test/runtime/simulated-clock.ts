import type { Clock } from '../../src/runtime/retry';

/**
 * Simulated time for retry tests: `sleep` returns at once and moves the clock to the end of the wait
 * (waits that overlap, as concurrent requests' do, end at the latest of them, not at their sum); the
 * local fakes read `now()` to decide whether they still throttle. Nothing here waits for real.
 */
export class SimulatedClock implements Clock {
  /** Every wait asked for, in ms, in order. */
  public readonly waits: number[] = [];

  constructor(public time = Date.UTC(2026, 0, 5, 12)) {}

  now(): number {
    return this.time;
  }

  async sleep(ms: number): Promise<void> {
    this.waits.push(ms);
    const end = this.time + ms;
    // Let other requests in flight run first, as they would during the wait.
    await new Promise((resolve) => setImmediate(resolve));
    this.time = Math.max(this.time, end);
  }

  advance(ms: number): void {
    this.time += ms;
  }
}
