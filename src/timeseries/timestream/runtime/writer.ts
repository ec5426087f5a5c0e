import { TimestreamWriteClient, WriteRecordsCommand, type WriteRecordsRequest } from '@aws-sdk/client-timestream-write';
import { callFailure, CallFailure, describeFailure } from './discovery';
import { BatchTarget, buildRequest, MAX_RECORDS_PER_REQUEST, PointRecord, pointsOf } from './records';
import { isNetworkError, REAL_CLOCK, retrying, RetryOptions, ThrottleBudget, TryAgain } from '../../../runtime/retry';
import { traced } from '../../../runtime/telemetry';
import { DEFAULT_THROTTLE_BUDGET_MS, LoadErrors } from '../../contract';
import { LoadError, type RejectedRecord, type WriteStats } from '../../runtime/load-object';
import { RequestPool } from '../../runtime/request-pool';

export { LoadError };
export type { RejectedRecord, WriteStats };

/**
 * The write path: records grouped into requests of 100, up to `maxInFlight` requests at once, each
 * retried with exponential backoff and full jitter on throttling and server errors, records the
 * service rejects collected with their reasons. Shared by the loader and the benchmark.
 *
 * Throttling is retried on a time budget (`throttleBudgetMs`) rather than a count, and fails the load
 * with `TimeSeriesThrottled` once spent, so the state machine loads the file again minutes later.
 */

/**
 * In-Lambda budget for magnetic-store throttling: "Your magnetic store write requests to Timestream may be
 * throttled if the maximum limit of magnetic store partitions receiving ingestion [is reached]. You will see
 * a throttle message directing you to check the ActiveMagneticStorePartitions CloudWatch metric [...]. This
 * throttle may take up to 6 hours to resolve" (Timestream developer guide, Handling WriteRecords throttles).
 * A Lambda cannot wait hours: one minute of backoff (a short burst clears), then `TimeSeriesThrottled`.
 */
export const MAGNETIC_THROTTLE_BUDGET_MS = 60_000;

/** The throttle message of magnetic-store partition throttling names this metric (see `MAGNETIC_THROTTLE_BUDGET_MS`). */
const MAGNETIC_THROTTLE = /ActiveMagneticStorePartitions|magnetic store/i;

export interface WriterOptions extends RetryOptions {
  readonly maxInFlight: number;
  /**
   * Ms the load may stay throttled (no request taken) before it fails with `TimeSeriesThrottled`:
   * memory-store throttling clears as the service scales while we keep sending.
   * @default DEFAULT_THROTTLE_BUDGET_MS
   */
  readonly throttleBudgetMs?: number;
  /** Longest single wait after a throttled request. @default 20000 */
  readonly maxThrottleDelayMs?: number;
  /** Records that may wait for their series to fill a request. @default 2000 */
  readonly groupWindow?: number;
  /** Called once per rejected record (e.g. to stream the report), in the order the responses arrive. */
  readonly onRejected?: (rejected: RejectedRecord) => void;
}

/** One entry of RejectedRecordsException.RejectedRecords. */
interface ServiceRejection {
  readonly RecordIndex?: number;
  readonly Reason?: string;
  readonly ExistingVersion?: number;
}

/** Names of errors worth another attempt (besides throttling, any 5xx, or a network error without a response). */
const RETRYABLE = new Set(['InternalServerException', 'ServiceUnavailableException', 'RequestTimeout', 'TimeoutError']);

export function createWriteClient(endpoint: string | undefined, maxInFlight: number): TimestreamWriteClient {
  // Enough sockets for every request in flight (the SDK's default is 50).
  const agent = { keepAlive: true, maxSockets: Math.max(50, maxInFlight) };
  return traced(new TimestreamWriteClient({
    // With an endpoint the SDK skips endpoint discovery (no DescribeEndpoints).
    ...(endpoint ? { endpoint } : {}),
    // Retries are ours (backoff with full jitter), so the SDK makes one attempt.
    maxAttempts: 1,
    requestHandler: { httpAgent: agent, httpsAgent: agent },
  }));
}

/**
 * Writes records in requests of 100, grouped by series: records of one series share their dimensions,
 * which then go once per request as common attributes (smaller requests, fewer metered bytes). At most
 * `groupWindow` records wait for their series to fill a request; past that, the largest groups go out
 * together (so data with thousands of series degrades to plain batches, never to small requests).
 */
export class RecordWriter {
  private readonly pool: RequestPool;
  private readonly throttle: ThrottleBudget;
  /** Records waiting, by series (dimension values). */
  private readonly groups = new Map<string, PointRecord[]>();
  private waiting = 0;
  private stats = { requests: 0, retries: 0, records: 0, points: 0, rejected: 0 };

  constructor(private readonly client: TimestreamWriteClient, private readonly target: BatchTarget, private readonly options: WriterOptions) {
    this.pool = new RequestPool(options.maxInFlight);
    this.throttle = new ThrottleBudget(options.throttleBudgetMs ?? DEFAULT_THROTTLE_BUDGET_MS, options.clock ?? REAL_CLOCK);
  }

  /** Adds a record; waits while `maxInFlight` requests are in flight (so memory stays bounded). */
  async add(record: PointRecord): Promise<void> {
    this.pool.throwIfFailed();
    const key = seriesKey(record);
    let group = this.groups.get(key);
    if (!group) this.groups.set(key, (group = []));
    group.push(record);
    this.waiting++;
    if (group.length >= MAX_RECORDS_PER_REQUEST) {
      this.groups.delete(key);
      this.waiting -= group.length;
      await this.send(group);
    } else if (this.waiting >= (this.options.groupWindow ?? 2_000)) {
      await this.send(this.takeLargest());
    }
  }

  /** Sends what is left (groups side by side, in series order) and waits for every request; throws the first failure. */
  async finish(): Promise<WriteStats> {
    const rest = [...this.groups.keys()].sort().flatMap((k) => this.groups.get(k)!);
    this.groups.clear();
    this.waiting = 0;
    for (let i = 0; i < rest.length; i += MAX_RECORDS_PER_REQUEST) await this.send(rest.slice(i, i + MAX_RECORDS_PER_REQUEST));
    await this.pool.settle();
    return { ...this.stats };
  }

  /** A full request from the largest groups (their records leave the window). */
  private takeLargest(): PointRecord[] {
    const keys = [...this.groups.keys()].sort((a, b) => this.groups.get(b)!.length - this.groups.get(a)!.length || (a < b ? -1 : 1));
    const batch: PointRecord[] = [];
    for (const key of keys) {
      const group = this.groups.get(key)!;
      const take = group.splice(0, MAX_RECORDS_PER_REQUEST - batch.length);
      batch.push(...take);
      if (!group.length) this.groups.delete(key);
      if (batch.length === MAX_RECORDS_PER_REQUEST) break;
    }
    this.waiting -= batch.length;
    return batch;
  }

  private async send(records: PointRecord[]): Promise<void> {
    const request = buildRequest(this.target, records);
    await this.pool.start(() => this.write(request));
  }

  private async write(request: WriteRecordsRequest): Promise<void> {
    await retrying({
      ...this.options,
      throttle: this.throttle,
      onRetry: () => this.stats.retries++,
      exhausted: (attempts, problem) => new LoadError(LoadErrors.UNAVAILABLE, `WriteRecords to ${this.target.table} still failing after ${attempts} attempts: ${problem}`),
      throttledOut: (ms, problem) => new LoadError(LoadErrors.THROTTLED,
        `WriteRecords to ${this.target.table} throttled for ${Math.round(ms / 1000)} s without a write taken: load again later; ${problem}`),
    }, async () => {
      if (this.pool.failure) return; // another request failed for good: stop spending attempts
      try {
        await this.client.send(new WriteRecordsCommand(request));
        this.count(request, []);
      } catch (error) {
        // A failed endpoint discovery is classified by the error DescribeEndpoints got (throttling, 5xx, network: again).
        const failure = callFailure(error);
        const e = failure.error as CallFailure['error'] & { RejectedRecords?: ServiceRejection[] };
        const problem = describeFailure(failure);
        if (e.name === 'RejectedRecordsException' && !failure.discovery) {
          this.count(request, e.RejectedRecords ?? []);
          return;
        }
        if (e.name === 'ThrottlingException') {
          throw new TryAgain(problem, undefined, { budgetMs: MAGNETIC_THROTTLE.test(e.message) ? MAGNETIC_THROTTLE_BUDGET_MS : undefined });
        }
        const status = e.$metadata?.httpStatusCode;
        const retryable = RETRYABLE.has(e.name) || (status !== undefined && status >= 500) || (status === undefined && isNetworkError(e));
        if (!retryable) {
          throw new LoadError(LoadErrors.WRITE_REFUSED, `WriteRecords to ${this.target.table} refused: ${problem}`);
        }
        throw new TryAgain(problem);
      }
    });
  }

  private count(request: WriteRecordsRequest, rejected: ServiceRejection[]): void {
    const records = request.Records ?? [];
    const bad = new Set<number>();
    for (const r of rejected) {
      const index = r.RecordIndex ?? -1;
      if (index < 0 || index >= records.length || bad.has(index)) continue;
      bad.add(index);
      this.options.onRejected?.({
        reason: r.Reason ?? 'no reason given',
        recordIndex: index,
        existingVersion: r.ExistingVersion,
        record: describeRecord(request, index),
      });
    }
    this.stats.requests++;
    this.stats.rejected += bad.size;
    this.stats.records += records.length - bad.size;
    this.stats.points += pointsOf(request, [...records.keys()].filter((i) => !bad.has(i)));
  }
}

function seriesKey(record: PointRecord): string {
  return JSON.stringify(record.dimensions);
}

function describeRecord(request: WriteRecordsRequest, index: number): RejectedRecord['record'] {
  const r = request.Records![index];
  const c = request.CommonAttributes ?? {};
  const dimensions: Record<string, string> = {};
  for (const d of [...(c.Dimensions ?? []), ...(r.Dimensions ?? [])]) dimensions[d.Name!] = d.Value!;
  const measures: Record<string, number> = {};
  for (const m of r.MeasureValues ?? []) measures[m.Name!] = Number(m.Value);
  return { time: new Date(Number(r.Time ?? c.Time)).toISOString(), dimensions, measures, version: r.Version ?? c.Version };
}
