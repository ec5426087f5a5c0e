/**
 * The handler side's one retry policy: exponential backoff with full jitter, around any attempt that may
 * succeed later. What is worth another attempt is the caller's to say (an engine knows its own errors):
 * it throws `TryAgain`; anything else it throws ends the loop as it is.
 */

export interface RetryOptions {
  /** Attempts per request, the first included. @default 8 */
  readonly maxAttempts?: number;
  /** Backoff base and cap in ms: attempt n waits a random time in [0, min(cap, base·2^n)). @default 100, 10000 */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
}

/** The wait before the next attempt after failed attempt `attempt` (1-based): full jitter. */
export function backoffMs(attempt: number, options: RetryOptions): number {
  const cap = Math.min(options.maxDelayMs ?? 10_000, (options.baseDelayMs ?? 100) * 2 ** (attempt - 1));
  return Math.random() * cap;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A connection that failed or dropped before any response (worth another attempt). */
export function isNetworkError(e: Error & { code?: string; cause?: unknown }): boolean {
  const code = e.code ?? (e.cause as { code?: string } | undefined)?.code ?? '';
  return ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'UND_ERR_SOCKET'].includes(code)
    || e.name === 'AbortError' || e.name === 'TimeoutError';
}

/** Thrown by an attempt that may succeed later: `problem` says why; `afterMs` is a wait the server asked for. */
export class TryAgain extends Error {
  constructor(problem: string, readonly afterMs?: number) {
    super(problem);
    this.name = 'TryAgain';
  }
}

export interface RetryPolicy extends RetryOptions {
  /** The error thrown once the attempts are spent, from their number and the last problem. */
  readonly exhausted: (attempts: number, problem: string) => Error;
  /** Called before each wait (a retry counter). */
  readonly onRetry?: () => void;
}

/** Runs `attempt` until it returns, waiting between attempts that throw `TryAgain` (its `afterMs`, or the backoff). */
export async function retrying<T>(policy: RetryPolicy, attempt: () => Promise<T>): Promise<T> {
  const maxAttempts = policy.maxAttempts ?? 8;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof TryAgain)) throw error;
      if (n >= maxAttempts) throw policy.exhausted(n, error.message);
      policy.onRetry?.();
      await sleep(error.afterMs ?? backoffMs(n, policy));
    }
  }
}
