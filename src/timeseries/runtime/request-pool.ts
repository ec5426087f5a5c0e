/**
 * Write requests in flight for one load, at most `max` at once: adding waits for a free slot (so memory
 * stays bounded), and the first failure is kept, stops new requests and is thrown to the caller.
 */
export class RequestPool {
  /** The first request that failed for good. */
  public failure?: Error;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new Error(`maxInFlight must be a positive integer: ${max}`);
  }

  /** Waits for a free slot, then starts `task` (its failure is kept, not thrown here). */
  async start(task: () => Promise<void>): Promise<void> {
    while (this.inFlight.size >= this.max) await Promise.race(this.inFlight);
    this.throwIfFailed();
    const p: Promise<void> = task()
      .catch((e: Error) => {
        this.failure ??= e;
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /** Waits for every request under way; throws the first failure. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    this.throwIfFailed();
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}
