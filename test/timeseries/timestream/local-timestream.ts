import { IncomingMessage, ServerResponse } from 'node:http';
import { LocalHttpServer, withBody } from '../../local-http';

/**
 * A local Timestream for the loader and query handler tests and the benchmark: speaks the service's
 * awsJson1_0 protocol (POST /, `X-Amz-Target: Timestream_20181101.<Operation>`) well enough for the
 * real SDK clients, records every request, and keeps what WriteRecords accepts with the service's
 * version rule (same record, same version: idempotent; a higher version replaces; a lower one, or the
 * same version with other values, is rejected with the existing version). It can throttle WriteRecords
 * for a span of (simulated) time, as the service does (`throttleUntil`).
 */

/**
 * What Timestream says when it throttles writes. Memory store: it throttles "as Timestream scales to adapt
 * to the data ingestion needs of your application"; magnetic store: "a throttle message directing you to
 * check the ActiveMagneticStorePartitions CloudWatch metric for this database. This throttle may take up
 * to 6 hours to resolve" (Handling WriteRecords throttles). The exact wording is not documented; the
 * magnetic one names the metric, which is what the loader recognises.
 */
export const THROTTLE_MESSAGES = {
  memory: 'Request rate limit exceeded.',
  magnetic: (database: string) => `Magnetic store writes to database ${database} are throttled: too many magnetic store partitions are receiving ingestion. Check the ActiveMagneticStorePartitions CloudWatch metric for this database.`,
} as const;

export interface WriteRequestBody {
  DatabaseName: string;
  TableName: string;
  CommonAttributes?: {
    Dimensions?: Array<{ Name: string; Value: string; DimensionValueType?: string }>;
    MeasureName?: string;
    MeasureValueType?: string;
    TimeUnit?: string;
    Version?: number;
    Time?: string;
  };
  Records: Array<{
    Dimensions?: Array<{ Name: string; Value: string }>;
    Time?: string;
    MeasureName?: string;
    MeasureValueType?: string;
    MeasureValues?: Array<{ Name: string; Value: string; Type: string }>;
    MeasureValue?: string;
    TimeUnit?: string;
    Version?: number;
  }>;
}

export interface RecordedRequest {
  readonly operation: string;
  readonly body: any;
  /** Bytes of the JSON payload as sent. */
  readonly bytes: number;
  /** Requests being served when this one arrived (itself included). */
  readonly concurrent: number;
  /** What the server answered: `ok`, `rejected`, or the error type it injected. */
  outcome?: string;
}

/** An error the next matching requests get instead of being served. */
export type Fault = 'ThrottlingException' | 'InternalServerException' | 'status500' | 'ValidationException' | 'AccessDeniedException' | 'ResourceNotFoundException';

/** What the Query operation answers: the payload, and an HTTP status for an error. */
export interface QueryAnswer {
  readonly status?: number;
  readonly body: unknown;
}

export interface StoredRecord {
  readonly table: string;
  readonly time: number;
  readonly dimensions: Record<string, string>;
  readonly measureName: string;
  readonly measures: Record<string, number>;
  readonly version: number;
}

type ErrorAnswer = (type: string, message: string, status?: number, extra?: object) => { status: number; payload: unknown; outcome: string };

const ERROR_STATUS: Record<string, number> = {
  ThrottlingException: 400,
  InternalServerException: 500,
  status500: 500,
  ValidationException: 400,
  AccessDeniedException: 403,
  ResourceNotFoundException: 400,
};

export class LocalTimestream {
  public readonly requests: RecordedRequest[] = [];
  /** Accepted records by table, time, measure name and dimensions. */
  public readonly store = new Map<string, StoredRecord>();
  /** Changes whenever the stored records do (a query executor's cache key). */
  public generation = 0;
  /** Fixed latency of every answer, in ms. */
  public latencyMs = 0;
  /** When set, every answer also waits for this promise (a test releases it). */
  public hold?: Promise<unknown>;
  /** The most requests served at once. */
  public maxConcurrent = 0;
  /** Rejects a record with a reason of its own (besides the version rule); return undefined to accept. */
  public rejectIf?: (record: StoredRecord, index: number) => string | undefined;
  /** Keep no records (benchmark): accept every valid one, with no version rule. */
  public keepRecords = true;
  /** Databases DescribeDatabase knows (any other name is ResourceNotFoundException); reset keeps them. */
  public readonly databases = new Set<string>();
  /** The clock throttling spans are measured on (a test's simulated clock); the real one by default. */
  public clock: { now(): number } = { now: () => Date.now() };
  private throttling?: { until: number; kind: keyof typeof THROTTLE_MESSAGES };

  private readonly server = new LocalHttpServer(withBody((req, res, raw) => this.handle(req, res, raw)));
  private active = 0;
  private faults: Array<{ fault: Fault; operation: string }> = [];

  /** Answers the query operation (default: no rows); may be async (the DuckDB executor in timestream-sql.ts). */
  public onQuery: (body: any) => QueryAnswer | Promise<QueryAnswer> = () => ({ body: { QueryId: 'q', Rows: [], ColumnInfo: [] } });

  start(): Promise<string> {
    return this.server.start();
  }

  close(): Promise<void> {
    return this.server.close();
  }

  /** The next `count` requests of `operation` get `fault`. */
  failNext(fault: Fault, count = 1, operation = 'WriteRecords'): void {
    for (let i = 0; i < count; i++) this.faults.push({ fault, operation });
  }

  /** Every WriteRecords gets ThrottlingException (HTTP 400) while `clock.now()` is before `until`. */
  throttleUntil(until: number, kind: keyof typeof THROTTLE_MESSAGES = 'memory'): void {
    this.throttling = { until, kind };
  }

  /** Forgets requests, faults and settings; `keepStore` keeps the accepted records (the data a query test reads). */
  reset(options: { keepStore?: boolean } = {}): void {
    this.requests.length = 0;
    if (!options.keepStore) {
      this.store.clear();
      this.generation++;
    }
    this.faults = [];
    this.throttling = undefined;
    this.maxConcurrent = 0;
    this.rejectIf = undefined;
    this.latencyMs = 0;
    this.hold = undefined;
  }

  /** Raises the version of every stored record (as if a revised file had been loaded since). */
  bumpVersions(by: number): void {
    for (const [key, r] of this.store) this.store.set(key, { ...r, version: r.version + by });
    this.generation++;
  }

  /** Every record of the WriteRecords requests received, common attributes merged in. */
  sentRecords(): Array<{ time: number; dimensions: Record<string, string>; measures: Record<string, number> }> {
    return this.of('WriteRecords').flatMap(({ body }) => (body as WriteRequestBody).Records.map((r) => ({
      time: Number(r.Time),
      dimensions: Object.fromEntries([...(body.CommonAttributes?.Dimensions ?? []), ...(r.Dimensions ?? [])].map((d) => [d.Name, d.Value])),
      measures: Object.fromEntries((r.MeasureValues ?? []).map((m) => [m.Name, Number(m.Value)])),
    })));
  }

  /** Requests of one operation (`WriteRecords`, `Query`, `DescribeEndpoints`...). */
  of(operation: string): RecordedRequest[] {
    return this.requests.filter((r) => r.operation === operation);
  }

  private handle(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
    this.active++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.active);
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith('Timestream_20181101.') ? target.slice('Timestream_20181101.'.length) : `unknown:${target}`;
    let body: any;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      body = undefined;
    }
    const recorded: RecordedRequest = { operation, body, bytes: raw.length, concurrent: this.active };
    this.requests.push(recorded);
    const answer = async () => {
      try {
        const { status, payload, outcome } = await this.answer(operation, req, body);
        recorded.outcome = outcome;
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': `req-${this.requests.length}` });
        res.end(JSON.stringify(payload));
      } catch (e) {
        res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify({ __type: 'com.amazonaws.timestream.v20181101#InternalServerException', message: `local Timestream: ${(e as Error).message}` }));
      } finally {
        this.active--;
      }
    };
    const respond = () => (this.latencyMs > 0 ? setTimeout(() => void answer(), this.latencyMs) : void answer());
    if (this.hold) void this.hold.then(respond);
    else respond();
  }

  private async answer(operation: string, req: IncomingMessage, body: any): Promise<{ status: number; payload: unknown; outcome: string }> {
    const error = (type: string, message: string, status = ERROR_STATUS[type] ?? 400, extra: object = {}) => ({
      status, payload: { __type: `com.amazonaws.timestream.v20181101#${type}`, message, ...extra }, outcome: type,
    });
    if (req.method !== 'POST' || req.headers['content-type'] !== 'application/x-amz-json-1.0' || !String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256')) {
      return error('ValidationException', 'not an awsJson1_0 signed request');
    }
    const i = this.faults.findIndex((f) => f.operation === operation);
    if (i >= 0) {
      const [{ fault }] = this.faults.splice(i, 1);
      if (fault === 'status500') return { status: 500, payload: { message: 'Internal Server Error' }, outcome: fault };
      return error(fault, `injected ${fault}`);
    }
    if (operation === 'DescribeEndpoints') {
      return { status: 200, payload: { Endpoints: [{ Address: req.headers.host, CachePeriodInMinutes: 1440 }] }, outcome: 'ok' };
    }
    if (operation === 'Query') {
      const q = await this.onQuery(body);
      return { status: q.status ?? 200, payload: q.body, outcome: 'ok' };
    }
    if (operation === 'DescribeDatabase') return this.describeDatabase(req, body, error);
    if (operation !== 'WriteRecords') return error('UnknownOperationException', operation, 400);
    if (this.throttling && this.clock.now() < this.throttling.until) {
      const { kind } = this.throttling;
      return error('ThrottlingException', kind === 'memory' ? THROTTLE_MESSAGES.memory : THROTTLE_MESSAGES.magnetic(String(body?.DatabaseName)));
    }
    return this.writeRecords(body as WriteRequestBody, error);
  }

  /** DescribeDatabase as the service answers it: the Database object, or ResourceNotFoundException (404). */
  private describeDatabase(req: IncomingMessage, body: any, error: ErrorAnswer) {
    const name = body?.DatabaseName;
    if (typeof name !== 'string' || name.length < 3) return error('ValidationException', 'DatabaseName must have at least 3 characters');
    if (!this.databases.has(name)) return error('ResourceNotFoundException', `The database ${name} does not exist.`, 404);
    const region = /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(String(req.headers.authorization))?.[1] ?? 'us-east-1';
    const created = Date.UTC(2024, 0, 1) / 1000;
    return {
      status: 200,
      payload: {
        Database: {
          Arn: `arn:aws:timestream:${region}:123456789012:database/${name}`,
          DatabaseName: name,
          TableCount: 1,
          KmsKeyId: `arn:aws:kms:${region}:123456789012:key/00000000-0000-0000-0000-000000000000`,
          CreationTime: created,
          LastUpdatedTime: created,
        },
      },
      outcome: 'ok',
    };
  }

  private writeRecords(body: WriteRequestBody, error: ErrorAnswer) {
    if (!body?.DatabaseName || !body.TableName) return error('ValidationException', 'DatabaseName and TableName are required');
    const records = body.Records ?? [];
    if (records.length < 1 || records.length > 100) return error('ValidationException', `Records must have 1 to 100 items, got ${records.length}`);
    const common = body.CommonAttributes ?? {};
    const rejected: Array<{ RecordIndex: number; Reason: string; ExistingVersion?: number }> = [];
    const accepted: StoredRecord[] = [];
    for (const [index, r] of records.entries()) {
      const names = [...(common.Dimensions ?? []), ...(r.Dimensions ?? [])].map((d) => d.Name);
      if (new Set(names).size !== names.length) return error('ValidationException', 'Dimensions may not overlap');
      const dimensions: Record<string, string> = {};
      for (const d of [...(common.Dimensions ?? []), ...(r.Dimensions ?? [])]) dimensions[d.Name] = d.Value;
      const measures: Record<string, number> = {};
      const type = r.MeasureValueType ?? common.MeasureValueType;
      if (type === 'MULTI') {
        if (!r.MeasureValues?.length) return error('ValidationException', `record ${index}: MULTI without MeasureValues`);
        for (const m of r.MeasureValues) {
          if (m.Type !== 'DOUBLE' || !Number.isFinite(Number(m.Value))) return error('ValidationException', `record ${index}: bad measure value ${m.Name}`);
          measures[m.Name] = Number(m.Value);
        }
      } else {
        measures[r.MeasureName ?? common.MeasureName ?? ''] = Number(r.MeasureValue);
      }
      if ((r.TimeUnit ?? common.TimeUnit ?? 'MILLISECONDS') !== 'MILLISECONDS') return error('ValidationException', 'only MILLISECONDS here');
      const record: StoredRecord = {
        table: body.TableName,
        time: Number(r.Time ?? common.Time),
        dimensions,
        measureName: r.MeasureName ?? common.MeasureName ?? '',
        measures,
        version: r.Version ?? common.Version ?? 1,
      };
      const own = this.rejectIf?.(record, index);
      if (own) {
        rejected.push({ RecordIndex: index, Reason: own });
        continue;
      }
      if (!this.keepRecords) {
        accepted.push(record);
        continue;
      }
      const key = recordKey(record);
      const existing = this.store.get(key);
      const sameVersionOtherValues = existing?.version === record.version && JSON.stringify(existing.measures) !== JSON.stringify(record.measures);
      if (existing && (existing.version > record.version || sameVersionOtherValues)) {
        rejected.push({ RecordIndex: index, Reason: 'A record with a higher (or the same) version and different measure values already exists.', ExistingVersion: existing.version });
        continue;
      }
      accepted.push(record);
    }
    for (const record of accepted) {
      if (this.keepRecords) this.store.set(recordKey(record), record);
    }
    if (accepted.length && this.keepRecords) this.generation++;
    if (rejected.length) {
      return error('RejectedRecordsException', 'One or more records have been rejected. See RejectedRecords for details.', 419, { RejectedRecords: rejected });
    }
    return { status: 200, payload: { RecordsIngested: { Total: accepted.length, MemoryStore: accepted.length, MagneticStore: 0 } }, outcome: 'ok' };
  }
}

function recordKey(r: StoredRecord): string {
  const dims = Object.entries(r.dimensions).sort(([a], [b]) => a.localeCompare(b));
  return JSON.stringify([r.table, r.measureName, r.time, dims]);
}
