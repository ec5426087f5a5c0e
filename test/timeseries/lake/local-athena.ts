import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { DuckDBConnection, DuckDBInstance, DuckDBTimestampTZValue, DuckDBTimestampValue, DuckDBDateValue, DuckDBDecimalValue } from '@duckdb/node-api';
import { Template } from 'aws-cdk-lib/assertions';
import { MACROS, QueryFailure, tokenize, toDuckDb } from './trino-to-duckdb';
import { LocalHttpServer, withBody } from '../../local-http';

/**
 * A local Amazon Athena for the lake engine's tests: speaks the service's awsJson1_1 protocol (POST /,
 * `X-Amz-Target: AmazonAthena.<Operation>`) to the real `@aws-sdk/client-athena`, and runs each query in its own
 * in-memory DuckDB over the Parquet of a local directory laid out as the processed zone
 * (`dataset=<id>/year=YYYY/month=MM/*.parquet`). The catalog is that of a synthesized DataLake template: one view
 * per Glue table (its columns and partition keys, with the Glue types) and the `<dataset>_current` views with the
 * SQL Athena decodes from the Glue view. The Trino → DuckDB differences are rewritten in `trino-to-duckdb.ts`.
 *
 * Stricter than a lenient fake, as the Athena documentation is: QueryString at most 262,144 bytes; parameters
 * only in WHERE; MaxResults 1..1000; a query is QUEUED, then RUNNING, for configurable numbers of
 * GetQueryExecution polls before it ends; the workgroup's BytesScannedCutoffPerQuery fails a query that would
 * scan more; TooManyRequestsException past an active-query limit. Every SQL text received is recorded as sent.
 */

/** StartQueryExecution's QueryString: "The maximum allowed query string length is 262144 bytes, where the strings are encoded in UTF-8" (Athena Service Quotas; not adjustable). */
export const MAX_QUERY_STRING_BYTES = 262_144;
/** ExecutionParameters: "Array Members: Minimum number of 1 item"; each "Length Constraints: Minimum length of 1. Maximum length of 1024" (API reference, StartQueryExecution). */
export const MAX_EXECUTION_PARAMETER_LENGTH = 1024;
/** GetQueryResults MaxResults: at most 1000 rows a page (API reference, GetQueryResults). */
export const MAX_RESULTS = 1000;
/** ClientRequestToken: "Length Constraints: Minimum length of 32. Maximum length of 128" (API reference). */
export const CLIENT_REQUEST_TOKEN_LENGTH = { min: 32, max: 128 } as const;
/** ResultReuseByAgeConfiguration.MaxAgeInMinutes: "Valid Range: Minimum value of 0. Maximum value of 10080"; "The default is 60" (API reference). */
export const RESULT_REUSE_MAX_AGE_MINUTES = { max: 10_080, default: 60 } as const;
/** WorkGroupConfiguration.BytesScannedCutoffPerQuery: minimum 10,000,000 bytes (CloudFormation AWS::Athena::WorkGroup, API reference). */
export const MIN_BYTES_SCANNED_CUTOFF = 10_000_000;
/** What Athena bills: "rounded up to the nearest megabyte, with a 10 MB minimum per query" (Amazon Athena pricing). */
export const BILLING = { minimumBytes: 10 * 1024 * 1024, roundToBytes: 1024 * 1024 } as const;
/**
 * The reason of a query the per-query data usage control stops. The user guide ("Configure per-query and
 * per-workgroup data usage controls") says only that the query "is canceled"; Athena reports it FAILED with this
 * reason, which clients and dbt logs quote.
 */
export const BYTES_SCANNED_LIMIT_REASON = 'Bytes scanned limit was exceeded';

export type QueryState = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

/** One query as the server keeps it. */
export interface LocalQuery {
  readonly id: string;
  /** The SQL text as sent (before parameters and rewrites). */
  readonly sql: string;
  readonly parameters: readonly string[];
  readonly database?: string;
  readonly catalog?: string;
  readonly workGroup: string;
  readonly token?: string;
  readonly reuse?: { enabled: boolean; maxAgeInMinutes: number };
  readonly submittedAt: number;
  /** The DuckDB text run (after binding and rewrites), once known. */
  duckDbSql?: string;
  state: QueryState;
  reason?: string;
  polls: number;
  /** Bytes of the Parquet files the query read (its partitions); what Athena reports as DataScannedInBytes. */
  scannedBytes: number;
  /** The files those bytes are of. */
  scannedFiles: string[];
  engineMillis: number;
  completedAt?: number;
  reusedFrom?: string;
  columns?: Array<{ name: string; type: string }>;
  rows?: Array<Array<string | undefined>>;
  /** Settles when DuckDB is done (or the query failed before it ran). */
  done?: Promise<void>;
  connection?: DuckDBConnection;
}

export interface LocalAthenaProps {
  /** The synthesized template of a stack with a DataLake: its Glue database, tables, views and workgroup. */
  readonly template: Template;
  /** The directory holding the processed zone (`dataset=<id>/year=YYYY/month=MM/*.parquet`). */
  readonly processedDir: string;
  /** GetQueryExecution answers QUEUED this many times first. @default 1 */
  readonly queuedPolls?: number;
  /** Then RUNNING this many times (and for as long as DuckDB runs). @default 1 */
  readonly runningPolls?: number;
  /** Queries QUEUED or RUNNING at once past which StartQueryExecution is throttled ("Active DML queries" quota). @default no limit */
  readonly activeQueryLimit?: number;
}

/** The (lower-cased) table names of the template's Glue database: external tables and views. */
interface GlueTable {
  readonly name: string;
  readonly columns: Array<{ name: string; type: string }>;
  readonly partitionKeys: Array<{ name: string; type: string }>;
  readonly viewSql?: string;
}

const GLUE_TO_DUCKDB: Record<string, string> = { string: 'VARCHAR', double: 'DOUBLE', int: 'INTEGER', bigint: 'BIGINT', timestamp: 'TIMESTAMP', date: 'DATE', boolean: 'BOOLEAN' };

/** Athena's names of the result column types (ColumnInfo.Type), from DuckDB's. */
function athenaType(duckDbType: string): string {
  const t = duckDbType.toUpperCase();
  if (t === 'VARCHAR') return 'varchar';
  if (t === 'DOUBLE') return 'double';
  if (t === 'FLOAT') return 'real';
  if (t === 'INTEGER') return 'integer';
  if (t === 'BIGINT' || t === 'HUGEINT' || t === 'UBIGINT' || t === 'UINTEGER') return 'bigint';
  if (t === 'SMALLINT') return 'smallint';
  if (t === 'TINYINT') return 'tinyint';
  if (t === 'BOOLEAN') return 'boolean';
  if (t === 'DATE') return 'date';
  if (t === 'TIMESTAMP WITH TIME ZONE') return 'timestamp with time zone';
  if (t.startsWith('TIMESTAMP')) return 'timestamp';
  if (t.startsWith('DECIMAL')) return 'decimal';
  if (t.startsWith('INTERVAL')) return 'interval day to second';
  return t.toLowerCase();
}

/** A double as Athena prints it (Java's Double.toString: scientific below 1e-3 and from 1e7). */
export function javaDouble(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e7) {
    const s = String(x);
    return s.includes('.') ? s : `${s}.0`;
  }
  const [mantissa, exponent] = x.toExponential().split('e');
  return `${mantissa.includes('.') ? mantissa : `${mantissa}.0`}E${Number(exponent)}`;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Wall-clock fields of `ms` (epoch) in `zone`. */
function wallClock(ms: number, zone: string): string {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}.${pad(((ms % 1000) + 1000) % 1000, 3)}`;
}

/** One value as GetQueryResults prints it (VarCharValue); undefined for NULL. */
function athenaValue(value: unknown, type: string, zone: string): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (value instanceof DuckDBTimestampTZValue) return `${wallClock(Number(value.micros / 1000n), zone)} ${zone}`;
  if (value instanceof DuckDBTimestampValue) return wallClock(Number(value.micros / 1000n), 'UTC');
  if (value instanceof DuckDBDateValue) return new Date(value.days * 86_400_000).toISOString().slice(0, 10);
  if (value instanceof DuckDBDecimalValue) return value.toString();
  if (type === 'double' || type === 'real') return javaDouble(Number(value));
  return String(value);
}

/** The awsJson1_1 error the SDK turns into the named exception class. */
class AthenaError extends Error {
  constructor(readonly type: string, message: string, readonly extra: Record<string, unknown> = {}, readonly status = 400) {
    super(message);
  }
}

/** What Athena would bill for `query`: its scanned bytes rounded up to the megabyte, 10 MB at least (pricing); nothing when reused. */
export function billedBytes(query: Pick<LocalQuery, 'scannedBytes' | 'reusedFrom'>): number {
  if (query.reusedFrom) return 0;
  return Math.max(BILLING.minimumBytes, Math.ceil(query.scannedBytes / BILLING.roundToBytes) * BILLING.roundToBytes);
}

export class LocalAthena {
  /** Every query received, in order (its `sql` as sent). */
  public readonly queries: LocalQuery[] = [];
  /** Every request: operation and body. */
  public readonly requests: Array<{ operation: string; body: any }> = [];
  /** The clock result reuse ages are measured on (a test's simulated clock); the real one by default. */
  public clock: { now(): number } = { now: () => Date.now() };
  public readonly database: string;
  public readonly workGroup: string;
  /** The workgroup's BytesScannedCutoffPerQuery from the template, or the override. */
  public bytesScannedCutoffPerQuery?: number;
  /** The workgroup's State, as GetWorkGroup reports it (UpdateWorkGroup's `State`: ENABLED or DISABLED). */
  public workGroupState: 'ENABLED' | 'DISABLED' = 'ENABLED';

  private readonly tables = new Map<string, GlueTable>();
  private readonly server = new LocalHttpServer(withBody((req, res, raw) => this.handle(req, res, raw)));
  private readonly byToken = new Map<string, LocalQuery>();
  private throttleNext = 0;
  private readonly faults: Array<{ operation: string; error: AthenaError }> = [];

  constructor(private readonly props: LocalAthenaProps) {
    const glue = props.template.findResources('AWS::Glue::Table');
    const databases = Object.values(props.template.findResources('AWS::Glue::Database')).map((d: any) => d.Properties.DatabaseInput.Name);
    if (databases.length !== 1 || typeof databases[0] !== 'string') throw new Error(`LocalAthena: expected one Glue database with a literal name, got ${JSON.stringify(databases)}`);
    this.database = databases[0];
    for (const t of Object.values(glue) as any[]) {
      const input = t.Properties.TableInput;
      const viewSql = input.TableType === 'VIRTUAL_VIEW' ? this.decodeView(input.ViewOriginalText) : undefined;
      this.tables.set(input.Name.toLowerCase(), {
        name: input.Name,
        columns: (input.StorageDescriptor?.Columns ?? []).map((c: any) => ({ name: c.Name, type: c.Type })),
        partitionKeys: (input.PartitionKeys ?? []).map((c: any) => ({ name: c.Name, type: c.Type })),
        viewSql,
      });
    }
    const workGroups = Object.values(props.template.findResources('AWS::Athena::WorkGroup')) as any[];
    if (workGroups.length !== 1) throw new Error(`LocalAthena: expected one Athena workgroup in the template, got ${workGroups.length}`);
    this.workGroup = workGroups[0].Properties.Name;
    this.setBytesScannedCutoff(workGroups[0].Properties.WorkGroupConfiguration?.BytesScannedCutoffPerQuery);
  }

  start(): Promise<string> {
    return this.server.start();
  }

  async close(): Promise<void> {
    await Promise.all(this.queries.map((q) => q.done?.catch(() => undefined)));
    await this.server.close();
  }

  /** Sets the workgroup's per-query cutoff as UpdateWorkGroup would: at least 10,000,000 bytes, or none. */
  setBytesScannedCutoff(bytes: number | undefined): void {
    if (bytes !== undefined && (!Number.isInteger(bytes) || bytes < MIN_BYTES_SCANNED_CUTOFF)) {
      throw new Error(`BytesScannedCutoffPerQuery: at least ${MIN_BYTES_SCANNED_CUTOFF} bytes, got ${bytes}`);
    }
    this.bytesScannedCutoffPerQuery = bytes;
  }

  /** The next call of `operation` answers this error instead (an error the client does not expect, e.g. AccessDeniedException). */
  failNext(operation: string, type: string, message: string, status = 400): void {
    this.faults.push({ operation, error: new AthenaError(type, message, {}, status) });
  }

  /** Forgets planned faults and throttling (what is recorded stays). */
  clearFaults(): void {
    this.faults.length = 0;
    this.throttleNext = 0;
  }

  /** The next `count` StartQueryExecution calls are throttled (TooManyRequestsException). */
  throttleNextStarts(count = 1): void {
    this.throttleNext += count;
  }

  private decodeView(text: any): string {
    const [separator, parts] = text['Fn::Join'] ?? ['', [text]];
    const joined = parts.map((p: any) => (typeof p === 'string' ? p : Buffer.from(p['Fn::Base64'], 'utf8').toString('base64'))).join(separator);
    const m = /^\/\* Presto View: ([A-Za-z0-9+/=]+) \*\/$/.exec(joined);
    if (!m) throw new Error(`LocalAthena: not a Presto view text: ${joined.slice(0, 80)}`);
    return JSON.parse(Buffer.from(m[1], 'base64').toString('utf8')).originalSql;
  }

  private handle(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith('AmazonAthena.') ? target.slice('AmazonAthena.'.length) : `unknown:${target}`;
    let body: any;
    try {
      body = JSON.parse(raw.toString('utf8') || '{}');
    } catch {
      body = undefined;
    }
    this.requests.push({ operation, body });
    const send = (status: number, payload: unknown) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
      res.end(JSON.stringify(payload));
    };
    try {
      if (req.method !== 'POST' || req.headers['content-type'] !== 'application/x-amz-json-1.1' || !String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256') || body === undefined) {
        throw new AthenaError('InvalidRequestException', 'not a signed awsJson1_1 request');
      }
      send(200, this.answer(operation, body));
    } catch (e) {
      if (e instanceof AthenaError) send(e.status, { __type: e.type, Message: e.message, ...e.extra });
      else send(500, { __type: 'InternalServerException', Message: (e as Error).message });
    }
  }

  private answer(operation: string, body: any): unknown {
    const fault = this.faults.findIndex((f) => f.operation === operation);
    if (fault >= 0) throw this.faults.splice(fault, 1)[0].error;
    switch (operation) {
      case 'StartQueryExecution': return { QueryExecutionId: this.startQuery(body).id };
      case 'GetQueryExecution': return { QueryExecution: this.describe(this.query(body.QueryExecutionId), true) };
      case 'GetQueryResults': return this.results(body);
      case 'StopQueryExecution': return this.stop(this.query(body.QueryExecutionId));
      case 'GetWorkGroup': return this.getWorkGroup(body);
      case 'GetDatabase': return this.getDatabase(body);
      default: throw new AthenaError('InvalidRequestException', `local Athena does not serve ${operation}`);
    }
  }

  /** GetWorkGroup: the workgroup of the template; another name is "WorkGroup ... is not found" (InvalidRequestException). */
  private getWorkGroup(body: any): unknown {
    if (typeof body.WorkGroup !== 'string' || !/^[a-zA-Z0-9._-]{1,128}$/.test(body.WorkGroup)) throw this.invalid('WorkGroup: 1-128 of [a-zA-Z0-9._-]');
    if (body.WorkGroup !== this.workGroup) throw this.invalid(`WorkGroup ${body.WorkGroup} is not found.`);
    return {
      WorkGroup: {
        Name: this.workGroup,
        State: this.workGroupState,
        Configuration: {
          EnforceWorkGroupConfiguration: true,
          PublishCloudWatchMetricsEnabled: true,
          ...(this.bytesScannedCutoffPerQuery !== undefined ? { BytesScannedCutoffPerQuery: this.bytesScannedCutoffPerQuery } : {}),
          EngineVersion: { SelectedEngineVersion: 'Athena engine version 3', EffectiveEngineVersion: 'Athena engine version 3' },
        },
        CreationTime: 0,
      },
    };
  }

  /**
   * GetDatabase of the AwsDataCatalog (the Glue database of the template): Athena reads it from the Glue Data Catalog.
   * A missing database is MetadataException (API reference, GetDatabase errors), another catalog InvalidRequestException.
   */
  private getDatabase(body: any): unknown {
    if (typeof body.CatalogName !== 'string' || typeof body.DatabaseName !== 'string') throw this.invalid('CatalogName and DatabaseName are required');
    if (body.CatalogName !== 'AwsDataCatalog') throw this.invalid(`Catalog ${body.CatalogName} is not found.`);
    if (body.DatabaseName !== this.database) throw new AthenaError('MetadataException', `Database ${body.DatabaseName} not found.`);
    return { Database: { Name: this.database, Parameters: {} } };
  }

  private invalid(message: string, code = 'INVALID_INPUT'): AthenaError {
    return new AthenaError('InvalidRequestException', message, { AthenaErrorCode: code });
  }

  private query(id: unknown): LocalQuery {
    const q = this.queries.find((x) => x.id === id);
    if (!q) throw this.invalid(`QueryExecution ${String(id)} was not found`);
    return q;
  }

  private startQuery(body: any): LocalQuery {
    const sql = body.QueryString;
    if (typeof sql !== 'string' || sql.length === 0) throw this.invalid("1 validation error detected: Value at 'queryString' failed to satisfy constraint: Member must have length greater than or equal to 1");
    if (Buffer.byteLength(sql, 'utf8') > MAX_QUERY_STRING_BYTES) {
      throw this.invalid(`1 validation error detected: Value at 'queryString' failed to satisfy constraint: Member must have length less than or equal to ${MAX_QUERY_STRING_BYTES}`);
    }
    const parameters: unknown = body.ExecutionParameters ?? [];
    if (!Array.isArray(parameters) || (body.ExecutionParameters && parameters.length === 0)
      || parameters.some((p) => typeof p !== 'string' || p.length < 1 || p.length > MAX_EXECUTION_PARAMETER_LENGTH)) {
      throw this.invalid(`ExecutionParameters: at least 1 item, each 1 to ${MAX_EXECUTION_PARAMETER_LENGTH} characters`);
    }
    const token: string | undefined = body.ClientRequestToken;
    if (token !== undefined && (token.length < CLIENT_REQUEST_TOKEN_LENGTH.min || token.length > CLIENT_REQUEST_TOKEN_LENGTH.max)) {
      throw this.invalid(`ClientRequestToken: ${CLIENT_REQUEST_TOKEN_LENGTH.min} to ${CLIENT_REQUEST_TOKEN_LENGTH.max} characters`);
    }
    const workGroup = body.WorkGroup ?? 'primary';
    if (workGroup !== this.workGroup) throw this.invalid(`WorkGroup ${workGroup} is not found.`);
    const ageConfig = body.ResultReuseConfiguration?.ResultReuseByAgeConfiguration;
    const reuse = ageConfig
      ? { enabled: ageConfig.Enabled === true, maxAgeInMinutes: ageConfig.MaxAgeInMinutes ?? RESULT_REUSE_MAX_AGE_MINUTES.default } : undefined;
    const age = reuse?.maxAgeInMinutes;
    if (age !== undefined && (!Number.isInteger(age) || age < 0 || age > RESULT_REUSE_MAX_AGE_MINUTES.max)) {
      throw this.invalid(`ResultReuseByAgeConfiguration.MaxAgeInMinutes: 0 to ${RESULT_REUSE_MAX_AGE_MINUTES.max}`);
    }
    const request = {
      sql,
      parameters: parameters as string[],
      workGroup,
      token,
      reuse,
      database: body.QueryExecutionContext?.Database,
      catalog: body.QueryExecutionContext?.Catalog,
    };
    if (token !== undefined && this.byToken.has(token)) {
      // "If another StartQueryExecution request is received, the same response is returned ... If a parameter has changed, for example, the QueryString, an error is returned."
      const earlier = this.byToken.get(token)!;
      const same = earlier.sql === sql && JSON.stringify(earlier.parameters) === JSON.stringify(request.parameters)
        && earlier.database === request.database && earlier.catalog === request.catalog;
      if (!same) throw this.invalid('Idempotent parameters do not match');
      return earlier;
    }
    if (this.throttleNext > 0 || (this.props.activeQueryLimit !== undefined
      && this.queries.filter((q) => q.state === 'QUEUED' || q.state === 'RUNNING').length >= this.props.activeQueryLimit)) {
      this.throttleNext = Math.max(0, this.throttleNext - 1);
      throw new AthenaError('TooManyRequestsException', 'You have exceeded the limit for the number of queries you can run concurrently. Please reduce the number of concurrent queries submitted by this account. Contact customer support to request a concurrent query limit increase.', { Reason: 'CONCURRENT_QUERY_LIMIT_EXCEEDED' });
    }
    const query: LocalQuery = { id: randomUUID(), ...request, submittedAt: this.clock.now(), state: 'QUEUED', polls: 0, scannedBytes: 0, scannedFiles: [], engineMillis: 0 };
    this.queries.push(query);
    if (token !== undefined) this.byToken.set(token, query);
    const previous = reuse?.enabled ? this.reusable(query) : undefined;
    if (previous) {
      Object.assign(query, { reusedFrom: previous.id, columns: previous.columns, rows: previous.rows, duckDbSql: previous.duckDbSql });
      query.done = Promise.resolve();
    } else {
      query.done = this.run(query);
    }
    return query;
  }

  /** A SUCCEEDED query with the same text, parameters, catalog, database and workgroup, no older than the reuse age. */
  private reusable(query: LocalQuery): LocalQuery | undefined {
    const oldest = this.clock.now() - query.reuse!.maxAgeInMinutes * 60_000;
    return [...this.queries].reverse().find((q) => q !== query && q.state === 'SUCCEEDED' && !q.reusedFrom && q.sql === query.sql
      && JSON.stringify(q.parameters) === JSON.stringify(query.parameters) && q.database === query.database
      && (q.catalog ?? 'AwsDataCatalog').toLowerCase() === (query.catalog ?? 'AwsDataCatalog').toLowerCase()
      && q.workGroup === query.workGroup && (q.completedAt ?? 0) >= oldest);
  }

  private fail(query: LocalQuery, reason: string): void {
    // The outcome shows on the polls after RUNNING (advance); a cancelled query keeps its state.
    if (query.state !== 'CANCELLED') query.reason = reason;
  }

  /** Runs the query in its own DuckDB: the catalog views it references, then its rewritten SQL, recording the files it read. */
  private async run(query: LocalQuery): Promise<void> {
    await Promise.resolve();
    const catalog = (query.catalog ?? 'AwsDataCatalog').toLowerCase();
    if (catalog !== 'awsdatacatalog') return this.fail(query, `CATALOG_NOT_FOUND: line 1:1: Catalog '${query.catalog}' does not exist`);
    if (query.database !== undefined && query.database !== this.database) return this.fail(query, `SCHEMA_NOT_FOUND: line 1:1: Schema '${query.database}' does not exist`);
    let duck: { sql: string; timeZone: string };
    try {
      const statements = query.sql.trim().replace(/;\s*$/, '');
      if (tokenize(statements).some((t) => t.kind === 'punct' && t.text === ';')) throw new QueryFailure('Only one sql statement is allowed. Got: ' + query.sql);
      const first = tokenize(statements).find((t) => t.kind === 'word');
      if (!first || !['select', 'with'].includes(first.text.toLowerCase())) throw new QueryFailure('local Athena runs SELECT (DML) queries only');
      duck = toDuckDb(statements, query.parameters);
    } catch (e) {
      return this.fail(query, e instanceof QueryFailure ? e.message : String(e));
    }
    query.duckDbSql = duck.sql;
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    query.connection = connection;
    const started = performance.now();
    try {
      await connection.run(`SET TimeZone = '${duck.timeZone.replace(/'/g, "''")}'`);
      await connection.run(`CREATE SCHEMA "${this.database}"`);
      await connection.run(`SET search_path = '${this.database},main'`);
      for (const macro of MACROS) await connection.run(macro);
      for (const sql of this.catalogViews(duck.sql)) await connection.run(sql);
      const prepared = await connection.prepare(duck.sql);
      // Files DuckDB reads while executing (not binding) are the partitions the query selects.
      await connection.run("CALL enable_logging('FileSystem')");
      await connection.run('CALL truncate_duckdb_logs()');
      const reader = await prepared.runAndReadAll();
      const logs = (await connection.runAndReadAll("SELECT message FROM duckdb_logs WHERE type = 'FileSystem'")).getRowObjectsJS();
      const files = new Set<string>();
      for (const { message } of logs) {
        const m = JSON.parse(String(message));
        if (m.op === 'READ' && String(m.path).endsWith('.parquet')) files.add(m.path);
      }
      query.scannedFiles = [...files].sort();
      query.scannedBytes = query.scannedFiles.reduce((s, f) => s + statSync(f).size, 0);
      query.engineMillis = Math.round(performance.now() - started);
      if (this.bytesScannedCutoffPerQuery !== undefined && query.scannedBytes > this.bytesScannedCutoffPerQuery) {
        return this.fail(query, BYTES_SCANNED_LIMIT_REASON);
      }
      const types = reader.columnTypes().map((t) => athenaType(t.toString()));
      query.columns = reader.columnNames().map((name, i) => ({ name, type: types[i] }));
      query.rows = reader.getRows().map((row) => row.map((v, i) => athenaValue(v, types[i], duck.timeZone)));
    } catch (e) {
      this.fail(query, (e as Error).message);
    } finally {
      query.connection = undefined;
      connection.closeSync();
      instance.closeSync();
    }
  }

  /**
   * DuckDB views for the Glue tables and views the SQL names (and the tables those views read): a table reads the
   * Parquet under `dataset=<name>` with its Hive partitions, columns cast to the Glue types (a column no file has is
   * NULL, as Athena reads it); a table with no files is empty.
   */
  private catalogViews(sql: string): string[] {
    const named = new Set(tokenize(sql).filter((t) => t.kind === 'word' || t.kind === 'quoted').map((t) => t.text.replace(/^"|"$/g, '').toLowerCase()));
    const wanted = [...this.tables.values()].filter((t) => named.has(t.name.toLowerCase()));
    for (const view of wanted.filter((t) => t.viewSql)) {
      for (const t of tokenize(view.viewSql!)) {
        const base = this.tables.get(t.text.replace(/^"|"$/g, '').toLowerCase());
        if (base && !wanted.includes(base)) wanted.unshift(base);
      }
    }
    const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
    const tables = wanted.filter((t) => !t.viewSql).map((t) => {
      const dir = join(this.props.processedDir, `dataset=${t.name}`);
      const files = existsSync(dir) && readdirSync(dir, { recursive: true }).some((f) => String(f).endsWith('.parquet'));
      const all = [...t.columns, ...t.partitionKeys];
      if (!files) {
        return `CREATE VIEW ${q(this.database)}.${q(t.name)} AS SELECT ${all.map((c) => `CAST(NULL AS ${GLUE_TO_DUCKDB[c.type] ?? 'VARCHAR'}) AS ${q(c.name)}`).join(', ')} WHERE false`;
      }
      const source = `read_parquet('${join(dir, '*', '*', '*.parquet').replace(/'/g, "''")}', hive_partitioning = true, union_by_name = true)`;
      return { t, all, source };
    });
    const out: string[] = [];
    for (const x of tables) {
      if (typeof x === 'string') {
        out.push(x);
        continue;
      }
      out.push(`CREATE VIEW ${q(this.database)}.${q(x.t.name)} AS SELECT ${x.all.map((c) => {
        const type = GLUE_TO_DUCKDB[c.type] ?? 'VARCHAR';
        // Parquet timestamps are UTC-adjusted instants; Athena reads them as timestamp (UTC wall clock).
        const value = c.type === 'timestamp' ? `CAST(timezone('UTC', CAST(${q(c.name)} AS TIMESTAMPTZ)) AS TIMESTAMP)` : `CAST(${q(c.name)} AS ${type})`;
        return `${value} AS ${q(c.name)}`;
      }).join(', ')} FROM ${x.source}`);
    }
    for (const v of wanted.filter((t) => t.viewSql)) out.push(`CREATE VIEW ${q(this.database)}.${q(v.name)} AS ${v.viewSql}`);
    return out;
  }

  /** The query as GetQueryExecution describes it; `poll` counts a poll (the states advance on polls). */
  private describe(query: LocalQuery, poll: boolean): unknown {
    if (poll) this.advance(query);
    const ended = query.state === 'SUCCEEDED' || query.state === 'FAILED' || query.state === 'CANCELLED';
    return {
      QueryExecutionId: query.id,
      Query: query.sql,
      StatementType: 'DML',
      QueryExecutionContext: { Database: query.database, Catalog: query.catalog },
      WorkGroup: query.workGroup,
      // Not returned: "The list of parameters is not returned in the response" (API reference, QueryExecution.ExecutionParameters).
      ResultConfiguration: { OutputLocation: `s3://local-athena-results/${query.id}.csv` },
      ResultReuseConfiguration: query.reuse
        ? { ResultReuseByAgeConfiguration: { Enabled: query.reuse.enabled, MaxAgeInMinutes: query.reuse.maxAgeInMinutes } } : undefined,
      Status: {
        State: query.state,
        StateChangeReason: query.reason,
        SubmissionDateTime: query.submittedAt / 1000,
        CompletionDateTime: ended ? (query.completedAt ?? query.submittedAt) / 1000 : undefined,
        AthenaError: query.state === 'FAILED' ? { ErrorCategory: 2, Retryable: false, ErrorMessage: query.reason } : undefined,
      },
      Statistics: {
        EngineExecutionTimeInMillis: ended ? query.engineMillis : 0,
        DataScannedInBytes: ended && !query.reusedFrom ? query.scannedBytes : 0,
        TotalExecutionTimeInMillis: ended ? query.engineMillis : 0,
        QueryQueueTimeInMillis: 0,
        ResultReuseInformation: { ReusedPreviousResult: query.reusedFrom !== undefined },
      },
    };
  }

  /**
   * QUEUED for `queuedPolls` polls, RUNNING for `runningPolls` more (and while DuckDB runs), then the outcome: a
   * query is never SUCCEEDED on its first GetQueryExecution, as on Athena.
   */
  private advance(query: LocalQuery): void {
    if (query.state === 'CANCELLED') return;
    query.polls++;
    const queued = this.props.queuedPolls ?? 1;
    const running = this.props.runningPolls ?? 1;
    const finished = query.connection === undefined && (query.rows !== undefined || query.reason !== undefined);
    if (query.polls <= queued) {query.state = 'QUEUED';} else if (query.polls <= queued + running || !finished) {query.state = 'RUNNING';} else {
      query.state = query.reason !== undefined ? 'FAILED' : 'SUCCEEDED';
      query.completedAt ??= this.clock.now();
    }
  }

  private results(body: any): unknown {
    const query = this.query(body.QueryExecutionId);
    const max = body.MaxResults ?? MAX_RESULTS;
    if (!Number.isInteger(max) || max < 1 || max > MAX_RESULTS) {
      throw this.invalid(`1 validation error detected: Value '${max}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to ${MAX_RESULTS}`);
    }
    if (query.state !== 'SUCCEEDED') {
      throw this.invalid(query.state === 'QUEUED' || query.state === 'RUNNING'
        ? `Query has not yet finished. Current state: ${query.state}` : `Query did not finish successfully. Final query state: ${query.state}`);
    }
    // The header row (column names) comes first, on the first page only; it counts in MaxResults.
    const all: Array<Array<string | undefined>> = [query.columns!.map((c) => c.name), ...query.rows!];
    const from = body.NextToken === undefined ? 0 : this.decodeToken(query, body.NextToken);
    const page = all.slice(from, from + max);
    const next = from + max < all.length ? Buffer.from(JSON.stringify({ q: query.id, from: from + max })).toString('base64') : undefined;
    return {
      ResultSet: {
        Rows: page.map((row) => ({ Data: row.map((v) => (v === undefined ? {} : { VarCharValue: v })) })),
        ResultSetMetadata: {
          ColumnInfo: query.columns!.map((c) => ({
            CatalogName: 'hive',
            SchemaName: '',
            TableName: '',
            Name: c.name,
            Label: c.name,
            Type: c.type,
            Precision: 0,
            Scale: 0,
            Nullable: 'UNKNOWN',
            CaseSensitive: c.type === 'varchar',
          })),
        },
      },
      NextToken: next,
      UpdateCount: 0,
    };
  }

  private decodeToken(query: LocalQuery, token: unknown): number {
    try {
      const t = JSON.parse(Buffer.from(String(token), 'base64').toString('utf8'));
      if (t.q === query.id && Number.isInteger(t.from)) return t.from;
    } catch {
      // falls through to the error
    }
    throw this.invalid('The NextToken is not valid for this query');
  }

  private stop(query: LocalQuery): unknown {
    if (query.state === 'QUEUED' || query.state === 'RUNNING') {
      query.state = 'CANCELLED';
      query.reason = 'Query cancelled by user';
      query.completedAt = this.clock.now();
      query.connection?.interrupt();
    }
    return {};
  }
}
