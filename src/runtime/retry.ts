/**
 * The handler side's one retry policy: exponential backoff with full jitter, around any attempt that may
 * succeed later. What is worth another attempt is the caller's to say (an engine knows its own errors):
 * it throws `TryAgain`; anything else it throws ends the loop as it is. Throttling is retried on a time
 * budget instead of a count (a store that says "slow down" may need minutes), shared by every request of
 * one job through a `ThrottleBudget`.
 */

/** Where the policy reads the time and waits: the real clock, or a simulated one in tests. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The wall clock and real timers. */
export const REAL_CLOCK: Clock = { now: () => Date.now(), sleep };

export interface RetryOptions {
  /** Attempts per request on errors other than throttling, the first included. @default 8 */
  readonly maxAttempts?: number;
  /** Backoff base and cap in ms: attempt n waits a random time in [0, min(cap, base·2^n)). @default 100, 10000 */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Clock of the waits and of the throttle budget. @default REAL_CLOCK */
  readonly clock?: Clock;
}

/** The wait before the next attempt after failed attempt `attempt` (1-based): full jitter. */
export function backoffMs(attempt: number, options: RetryOptions): number {
  const cap = Math.min(options.maxDelayMs ?? 10_000, (options.baseDelayMs ?? 100) * 2 ** (attempt - 1));
  return Math.random() * cap;
}

/** A connection that failed or dropped before any response (worth another attempt). */
export function isNetworkError(e: Error & { code?: string; cause?: unknown }): boolean {
  const code = e.code ?? (e.cause as { code?: string } | undefined)?.code ?? '';
  return ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'UND_ERR_SOCKET'].includes(code)
    || e.name === 'AbortError' || e.name === 'TimeoutError';
}

/**
 * Thrown by an attempt that may succeed later: `problem` says why; `afterMs` is a wait the server asked for;
 * `throttled` says the store asked to slow down (counted against the throttle budget, not `maxAttempts`),
 * with the budget that kind of throttling gets (`budgetMs`, at most the policy's).
 */
export class TryAgain extends Error {
  constructor(problem: string, readonly afterMs?: number, readonly throttled?: { readonly budgetMs?: number }) {
    super(problem);
    this.name = 'TryAgain';
  }
}

/**
 * How long one job (a load: many requests, several in flight) may stay throttled without progress: the
 * clock starts at the first throttled answer and stops at any success, so a store that throttles some
 * requests while taking others keeps the job going, and one that takes nothing for `budgetMs` ends it.
 */
export class ThrottleBudget {
  private since?: number;

  constructor(readonly budgetMs: number, private readonly clock: Clock = REAL_CLOCK) {
    if (!Number.isFinite(budgetMs) || budgetMs < 0) throw new Error(`throttle budget must be a non-negative number of ms: ${budgetMs}`);
  }

  /** A request was throttled: the time left (ms) before the budget (or the smaller `kindBudgetMs`) is spent. */
  throttled(kindBudgetMs?: number): number {
    const now = this.clock.now();
    this.since ??= now;
    return Math.min(this.budgetMs, kindBudgetMs ?? Infinity) - (now - this.since);
  }

  /** A request went through: the store is taking writes again. */
  succeeded(): void {
    this.since = undefined;
  }

  /** Ms since the store last took a write while throttling (0 when not throttled). */
  throttledForMs(): number {
    return this.since === undefined ? 0 : this.clock.now() - this.since;
  }
}

export interface RetryPolicy extends RetryOptions {
  /** The error thrown once the attempts are spent, from their number and the last problem. */
  readonly exhausted: (attempts: number, problem: string) => Error;
  /** Throttling's budget; without one, a throttled attempt counts against `maxAttempts` like any other. */
  readonly throttle?: ThrottleBudget;
  /** The error thrown once the throttle budget is spent, from the ms spent throttled and the last problem. */
  readonly throttledOut?: (throttledMs: number, problem: string) => Error;
  /** Longest single wait after a throttled answer (its Retry-After, or the backoff). @default 20000 */
  readonly maxThrottleDelayMs?: number;
  /** Called before each wait (a retry counter). */
  readonly onRetry?: () => void;
}

/** Runs `attempt` until it returns, waiting between attempts that throw `TryAgain` (its `afterMs`, or the backoff). */
export async function retrying<T>(policy: RetryPolicy, attempt: () => Promise<T>): Promise<T> {
  const maxAttempts = policy.maxAttempts ?? 8;
  const clock = policy.clock ?? REAL_CLOCK;
  let failures = 0;
  let throttles = 0;
  for (;;) {
    try {
      const result = await attempt();
      policy.throttle?.succeeded();
      return result;
    } catch (error) {
      if (!(error instanceof TryAgain)) throw error;
      let wait: number;
      if (error.throttled && policy.throttle) {
        const left = policy.throttle.throttled(error.throttled.budgetMs);
        if (left <= 0) {
          const out = policy.throttledOut ?? ((ms: number, problem: string) => policy.exhausted(failures + throttles + 1, `${problem} (throttled for ${ms} ms)`));
          throw out(policy.throttle.throttledForMs(), error.message);
        }
        throttles++;
        const cap = policy.maxThrottleDelayMs ?? 20_000;
        wait = Math.min(left, error.afterMs ?? backoffMs(throttles, { ...policy, maxDelayMs: cap }), cap);
      } else {
        failures++;
        if (failures >= maxAttempts) throw policy.exhausted(failures + throttles, error.message);
        wait = error.afterMs ?? backoffMs(failures, policy);
      }
      policy.onRetry?.();
      await clock.sleep(wait);
    }
  }
}
