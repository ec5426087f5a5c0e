import { backoffMs, isNetworkError, retrying, TryAgain } from '../../src/runtime/retry';

const exhausted = (attempts: number, problem: string) => new Error(`gave up after ${attempts}: ${problem}`);

describe('retrying', () => {
  test('returns the first answer; TryAgain is attempted again after a wait, counted by onRetry', async () => {
    let calls = 0;
    let retries = 0;
    const answer = await retrying({ baseDelayMs: 1, exhausted, onRetry: () => retries++ }, async () => {
      calls++;
      if (calls < 3) throw new TryAgain('busy');
      return 'ok';
    });
    expect({ answer, calls, retries }).toEqual({ answer: 'ok', calls: 3, retries: 2 });
  });

  test('after maxAttempts, the policy\'s error with the number of attempts and the last problem', async () => {
    let calls = 0;
    await expect(retrying({ maxAttempts: 3, baseDelayMs: 1, exhausted }, async () => {
      calls++;
      throw new TryAgain(`busy ${calls}`);
    })).rejects.toThrow('gave up after 3: busy 3');
    expect(calls).toBe(3);
  });

  test('any other error ends the loop as it is', async () => {
    let calls = 0;
    const refused = new Error('refused');
    await expect(retrying({ exhausted }, async () => {
      calls++;
      throw refused;
    })).rejects.toBe(refused);
    expect(calls).toBe(1);
  });

  test('a wait the server asked for replaces the backoff', async () => {
    const waits: number[] = [];
    let calls = 0;
    await retrying({ baseDelayMs: 60_000, exhausted, clock: { now: () => 0, sleep: async (ms) => { waits.push(ms); } } }, async () => {
      if (++calls === 1) throw new TryAgain('429', 5);
    });
    expect(waits).toEqual([5]);
  });
});

describe('backoff', () => {
  test('full jitter under min(cap, base·2^(n-1))', () => {
    for (let i = 0; i < 100; i++) {
      expect(backoffMs(1, { baseDelayMs: 100 })).toBeLessThan(100);
      expect(backoffMs(4, { baseDelayMs: 100 })).toBeLessThan(800);
      expect(backoffMs(20, { baseDelayMs: 100, maxDelayMs: 1_000 })).toBeLessThan(1_000);
    }
  });

  test('network errors: by code, by the cause\'s code, aborts and timeouts', () => {
    expect(isNetworkError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isNetworkError(Object.assign(new Error('x'), { cause: { code: 'UND_ERR_SOCKET' } }))).toBe(true);
    expect(isNetworkError(Object.assign(new Error('x'), { name: 'TimeoutError' }))).toBe(true);
    expect(isNetworkError(new Error('x'))).toBe(false);
  });
});
