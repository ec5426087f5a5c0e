import { gzipSync } from 'node:zlib';
import { HttpResponse, InfluxConnection, NetworkError, params, Send } from './http';
import { encodeRecord } from './line-protocol';
import { isNetworkError, REAL_CLOCK, retrying, RetryOptions, ThrottleBudget, TryAgain } from '../../../runtime/retry';
import { DEFAULT_THROTTLE_BUDGET_MS, LoadErrors } from '../../contract';
import type { PointRecord } from '../../runtime/layout';
import { LoadError, type PointWriter, type RejectedRecord, type WriteStats } from '../../runtime/load-object';
import { RequestPool } from '../../runtime/request-pool';

/**
 * The InfluxDB write path: records as line-protocol lines in gzipped batches of `batchLines` through
 * `POST /write?precision=ns`, up to `maxInFlight` requests at once, each retried with exponential
 * backoff and full jitter (or the server's Retry-After) on 429, 5xx and network errors. A 400/422
 * reports the lines the server names (parse errors) with its reason; the other lines count as written only
 * when the server says they were (1.x `dropped=0`), else they are sent again (OSS 2.x refuses a whole batch
 * on a 400); points it dropped without naming them (a field type conflict, beyond retention) are found by
 * sending the batch again in halves, which is harmless: a point written twice with the same values is the same point.
 *
 * 429 ("token is temporarily over quota") and 503 ("server is temporarily unavailable to accept writes"),
 * whose Retry-After "describes when to try the write again" (InfluxDB v2 API, POST /write, and the
 * v1-compatible /write), are throttling: retried on the load's throttle budget, honouring Retry-After
 * (capped), and once it is spent the load fails with `TimeSeriesThrottled` (the state machine loads the
 * file again minutes later). Other 5xx and network errors are retried `maxAttempts` times.
 */

export interface InfluxWriterOptions extends RetryOptions {
  readonly maxInFlight: number;
  /** Lines per request. @default 5000 */
  readonly batchLines?: number;
  /** Longest wait a Retry-After may ask for, in ms. @default 60000 */
  readonly maxRetryAfterMs?: number;
  /** Ms the load may stay throttled (429/503, no write taken) before it fails with `TimeSeriesThrottled`. @default DEFAULT_THROTTLE_BUDGET_MS */
  readonly throttleBudgetMs?: number;
  readonly onRejected?: (rejected: RejectedRecord) => void;
}

/** One line of a batch and what it came from. */
interface Line {
  readonly text: string;
  readonly fields: number;
  /** Index of the record in the load. */
  readonly index: number;
  readonly record: PointRecord;
}

export class InfluxWriter implements PointWriter {
  private readonly pool: RequestPool;
  private readonly throttle: ThrottleBudget;
  private batch: Line[] = [];
  private added = 0;
  private stats = { requests: 0, retries: 0, records: 0, points: 0, rejected: 0 };

  constructor(
    private readonly send: Send,
    private readonly connection: InfluxConnection,
    private readonly measurement: string,
    private readonly token: () => Promise<string>,
    private readonly options: InfluxWriterOptions,
  ) {
    this.pool = new RequestPool(options.maxInFlight);
    this.throttle = new ThrottleBudget(options.throttleBudgetMs ?? DEFAULT_THROTTLE_BUDGET_MS, options.clock ?? REAL_CLOCK);
  }

  async add(record: PointRecord): Promise<void> {
    this.pool.throwIfFailed();
    const index = this.added++;
    const encoded = encodeRecord(this.measurement, record);
    if ('reason' in encoded) {
      this.reject({ text: '', fields: 0, index, record }, encoded.reason);
      return;
    }
    this.batch.push({ text: encoded.line, fields: encoded.fields, index, record });
    if (this.batch.length >= (this.options.batchLines ?? 5000)) await this.flush();
  }

  async finish(): Promise<WriteStats> {
    if (this.batch.length && !this.pool.failure) await this.flush();
    await this.pool.settle();
    return { ...this.stats };
  }

  private async flush(): Promise<void> {
    const lines = this.batch;
    this.batch = [];
    await this.pool.start(() => this.write(lines));
  }

  /** Writes a batch (retrying), then settles what the server said about its lines. */
  private async write(lines: Line[]): Promise<void> {
    const response = await this.post(lines);
    if (response.status >= 200 && response.status < 300) return this.accept(lines);
    const message = errorMessage(response);
    if (response.status === 413 && lines.length > 1) return this.halves(lines);
    if (response.status === 413) return this.reject(lines[0], `the server refused the line as too large: ${message}`);
    this.stats.requests++;
    // 400/422. Lines it could not parse are named in the message. The others count as written only when the server
    // says so: InfluxDB 1.x's partial write ends `dropped=0`, a `(N written)` matches them. InfluxDB OSS 2.x rejects the
    // whole batch and names only its first malformed line ("All request data was rejected and not written",
    // https://docs.influxdata.com/influxdb/v2/write-data/troubleshoot/): the rest is sent again, which is harmless
    // either way (a point written twice with the same values is the same point).
    const unparsed = new Map<Line, string>();
    for (const line of lines) {
      const at = message.indexOf(`unable to parse '${line.text}': `);
      if (at >= 0) unparsed.set(line, reasonAt(message, at + `unable to parse '${line.text}': `.length));
    }
    for (const [line, reason] of unparsed) this.reject(line, `unable to parse: ${reason}`);
    const rest = lines.filter((l) => !unparsed.has(l));
    if (!rest.length) return;
    const dropped = /dropped=(\d+)/.exec(message)?.[1];
    const written = /\((\d+) written\)/.exec(message)?.[1];
    if (dropped === '0' || (written !== undefined && Number(written) === rest.length)) return this.accept(rest, false);
    // Every line it named is out: what is left is strictly smaller, so this ends.
    if (unparsed.size && dropped === undefined) return this.write(rest);
    if (rest.length === 1) return this.reject(rest[0], message.replace(/unable to parse '[^\n]*?': [^\n]*\n?/g, '').trim() || message);
    return this.halves(rest);
  }

  private async halves(lines: Line[]): Promise<void> {
    const middle = Math.ceil(lines.length / 2);
    await this.write(lines.slice(0, middle));
    await this.write(lines.slice(middle));
  }

  /** One request, retried on 429, 5xx and network errors; any other answer is returned (2xx, 400, 413, 422) or refused. */
  private async post(lines: Line[]): Promise<HttpResponse> {
    const body = gzipSync(Buffer.from(lines.map((l) => l.text).join('\n'), 'utf8'));
    const path = `/write?${params(this.connection, { precision: 'ns' })}`;
    const target = `${this.connection.database}/${this.measurement}`;
    const maxRetryAfterMs = this.options.maxRetryAfterMs ?? 60_000;
    return retrying({
      ...this.options,
      throttle: this.throttle,
      // A Retry-After is honoured up to its cap; without one, the backoff stays under the same cap.
      maxThrottleDelayMs: maxRetryAfterMs,
      onRetry: () => this.stats.retries++,
      exhausted: (attempts, problem) => new LoadError(LoadErrors.UNAVAILABLE, `write to ${target} still failing after ${attempts} attempts: ${problem}`),
      throttledOut: (ms, problem) => new LoadError(LoadErrors.THROTTLED,
        `write to ${target} throttled for ${Math.round(ms / 1000)} s without a write taken: load again later; ${problem}`),
    }, async () => {
      this.pool.throwIfFailed(); // another request failed for good: stop spending attempts
      const headers = { 'Authorization': `Token ${await this.apiToken()}`, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Encoding': 'gzip' };
      let response: HttpResponse;
      try {
        response = await this.send('POST', path, headers, body);
      } catch (error) {
        const e = error as Error & { code?: string };
        if (!(e instanceof NetworkError) && !isNetworkError(e)) throw e;
        throw new TryAgain(`${e.code ?? e.name}: ${e.message}`);
      }
      const { status } = response;
      if (status < 300 || status === 400 || status === 413 || status === 422) return response;
      if (status !== 429 && status < 500) {
        throw new LoadError(LoadErrors.WRITE_REFUSED, `write to ${target} refused: HTTP ${status}: ${errorMessage(response)}`);
      }
      const retryAfter = retryAfterMs(response.headers['retry-after'], (this.options.clock ?? REAL_CLOCK).now());
      const throttled = status === 429 || status === 503 ? {} : undefined;
      throw new TryAgain(`HTTP ${status}: ${errorMessage(response)}`, retryAfter === undefined ? undefined : Math.min(retryAfter, maxRetryAfterMs), throttled);
    });
  }

  /** The token, or TimeSeriesUnavailable (a later attempt of the step may read it: the bootstrap may not have stored it yet). */
  private async apiToken(): Promise<string> {
    try {
      return await this.token();
    } catch (error) {
      throw new LoadError(LoadErrors.UNAVAILABLE, `the API token could not be read from Secrets Manager: ${(error as Error).name}: ${(error as Error).message}`);
    }
  }

  private accept(lines: Line[], count = true): void {
    if (count) this.stats.requests++;
    this.stats.records += lines.length;
    for (const line of lines) this.stats.points += line.fields;
  }

  private reject(line: Line, reason: string): void {
    this.stats.rejected++;
    const r = line.record;
    this.options.onRejected?.({
      reason,
      recordIndex: line.index,
      record: { time: new Date(r.time).toISOString(), dimensions: Object.fromEntries(r.dimensions), measures: Object.fromEntries(r.measures) },
      ...(line.text ? { line: line.text } : {}),
    });
  }
}

/** The error text of a response: InfluxDB 1.x `{"error": ...}`, 2.x `{"message": ...}`, or the body. */
function errorMessage(response: HttpResponse): string {
  try {
    const parsed = JSON.parse(response.body) as { error?: unknown; message?: unknown };
    const text = parsed.error ?? parsed.message;
    if (typeof text === 'string') return text;
  } catch {
    // not JSON: the body as it is
  }
  return response.body.slice(0, 1000);
}

/** The reason after `unable to parse '<line>': `, up to the end of that error. */
function reasonAt(message: string, start: number): string {
  const end = message.slice(start).search(/\n| dropped=\d+$/);
  return (end < 0 ? message.slice(start) : message.slice(start, start + end)).trim();
}

/** Retry-After in ms: seconds, or an HTTP date (from `now`). */
function retryAfterMs(value: string | string[] | undefined, now: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
