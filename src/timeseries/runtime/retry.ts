import { LoadErrors } from '../contract';

/** What every engine's write path shares: the step's error type and the retry policy (exponential backoff, full jitter). */

/** A write error the loader turns into the step's failure, with the name Step Functions sees. */
export class LoadError extends Error {
  constructor(name: typeof LoadErrors[keyof typeof LoadErrors], message: string) {
    super(message);
    this.name = name;
  }
}

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
