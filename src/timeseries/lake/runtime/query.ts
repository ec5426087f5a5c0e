import {
  AthenaClient, GetQueryExecutionCommand, GetQueryResultsCommand, QueryExecution, StartQueryExecutionCommand, StopQueryExecutionCommand,
} from '@aws-sdk/client-athena';
import { integerEnv } from '../../../runtime/handler';
import { RequestError } from '../../../runtime/http';
import { checksum, invalidToken } from '../../../runtime/page-token';
import { traced } from '../../../runtime/telemetry';
import { LakeQueryEnv, TimeSeriesEnv, TimeSeriesPoint, TimeSeriesResponse } from '../../contract';
import { aggregatedPoint, bucketAt, bucketOfLocalDate, calendarBucketSql, isCalendar } from '../../runtime/buckets';
import {
  baseQueryConfigFromEnv, encodeToken, Interval, QueryConfig as BaseQueryConfig, QueryEngine, responseBase, safeIdentifier, TimeSeriesQuery,
} from '../../runtime/request';

/**
 * `GET /timeseries/{dataset}` on the lake: Trino SQL run by Amazon Athena in the platform's workgroup over a
 * dataset's `<dataset>_current` Glue view, which `TABLES` names (the construct maps each dataset id to
 * `currentViewName(id)`): the rows read are one per (series, instant), that of the newest source version
 * (CURRENT_ROW_ORDER in src/ons/layout.ts), never an older revision beside it. Identifiers come
 * only from the catalog and the configuration (`TABLES`); every user value is an Athena execution parameter (`?`,
 * which Athena takes only in the WHERE clause: "Use parameterized queries", Athena user guide). The year/month
 * partition columns (Brasília time) are filtered too, so Athena reads only the months asked for.
 *
 * Buckets are those of the other two engines: days, weeks, months and years of the Brasília calendar (runtime/buckets.ts:
 * the local wall clock by a CASE over the range's UTC offsets, handler-computed instants written as literals since
 * Athena takes `?` only in WHERE, then date_trunc), sub-day intervals fixed UTC bins from the Unix epoch.
 *
 * A request's query is started once (Athena result reuse on); its pages are pages of that query's results
 * (GetQueryResults), the page token holding the query execution id and Athena's NextToken. A query not done
 * before the deadline is stopped and answered 504 with its id; one the workgroup's per-query bytes-scanned cutoff
 * stops is a 400 that asks for a narrower period.
 */

/** Athena's data catalog of Glue databases. */
const CATALOG = 'AwsDataCatalog';
/** GetQueryResults MaxResults: at most 1000 rows a page, the header row included on the first page (API reference, GetQueryResults). */
const MAX_RESULTS = 1000;
/** ResultReuseByAgeConfiguration.MaxAgeInMinutes: 0 to 10080, default 60 (API reference, ResultReuseByAgeConfiguration). */
const MAX_REUSE_MINUTES = 10_080;
/**
 * API Gateway's REST integration timeout: 50 ms to 29 s by default (API Gateway quotas; raisable only for Regional
 * and private REST APIs): the query is answered or stopped well before, leaving time for GetQueryResults.
 */
const DEFAULT_DEADLINE_MS = 25_000;
const MAX_POLL_DELAY_MS = 1000;
/**
 * The reason of a query the workgroup's BytesScannedCutoffPerQuery stopped: the user guide ("Configure per-query and
 * per-workgroup data usage controls") says only that it "is canceled"; Athena reports "Bytes scanned limit was
 * exceeded" (FAILED or CANCELLED: both are read here).
 */
const BYTES_SCANNED_LIMIT = /bytes scanned limit|data usage limit/i;
/** Brasília civil time: the zone the processed zone's year/month partitions are cut in (src/ons/layout.ts). */
const PARTITION_ZONE = 'America/Sao_Paulo';

export interface LakeQueryConfig extends BaseQueryConfig {
  /** The Glue database of the tables and views. */
  readonly database: string;
  readonly workGroup: string;
  readonly deadlineMs: number;
  readonly pollDelayMs: number;
  readonly reuseMinutes: number;
}

export function queryConfigFromEnv(): LakeQueryConfig {
  const database = process.env[TimeSeriesEnv.DATABASE];
  if (!database) throw new Error(`${TimeSeriesEnv.DATABASE} is not set`);
  const workGroup = process.env[LakeQueryEnv.WORK_GROUP];
  if (!workGroup) throw new Error(`${LakeQueryEnv.WORK_GROUP} is not set`);
  return {
    // The first page's MaxResults holds the header row too: at most 999 points a page.
    ...baseQueryConfigFromEnv(MAX_RESULTS - 1),
    database,
    workGroup,
    deadlineMs: integerEnv(LakeQueryEnv.DEADLINE_MS, DEFAULT_DEADLINE_MS, 1, DEFAULT_DEADLINE_MS),
    pollDelayMs: integerEnv(LakeQueryEnv.POLL_DELAY_MS, 100, 1, MAX_POLL_DELAY_MS),
    reuseMinutes: integerEnv(LakeQueryEnv.RESULT_REUSE_MINUTES, 60, 0, MAX_REUSE_MINUTES),
  };
}

export function createAthenaClient(endpoint?: string): AthenaClient {
  return traced(new AthenaClient(endpoint ? { endpoint } : {}));
}

/** Sub-day bins in seconds, from the Unix epoch (UTC); calendar intervals are cut in local days (runtime/buckets.ts). */
const BIN_SECONDS: Partial<Record<Interval, number>> = {
  '1m': 60, '5m': 300, '15m': 900, '30m': 1800, '1h': 3600,
};
const EPOCH = "TIMESTAMP '1970-01-01 00:00:00'";
/** A handler-computed UTC instant (an offset change of the zone, not user text) as a Trino timestamp. */
const instant = (ms: number): string => `from_iso8601_timestamp('${new Date(ms).toISOString()}')`;

/** The bucket of `"time"` (a UTC `timestamp`) as Trino SQL: no user value in it (the interval is one of INTERVALS). */
function bucketSql(q: TimeSeriesQuery): string {
  if (isCalendar(q)) return calendarBucketSql(q, '"time"', instant);
  const size = BIN_SECONDS[q.interval!]!;
  // floor() of a double: the same bin on Trino (bigint / bigint truncates) and any engine, before 1970 too.
  return `date_add('second', CAST(floor(CAST(date_diff('second', ${EPOCH}, "time") AS double) / ${size}) AS bigint) * ${size}, ${EPOCH})`;
}

const identifier = (name: string): string => `"${safeIdentifier(name).replace(/"/g, '""')}"`;
/** An execution parameter as a string literal: "To treat SQL execution parameters as strings, they must be enclosed in single quotes" (Athena user guide). */
const stringParameter = (value: string): string => `'${value.replace(/'/g, "''")}'`;

/** Year and month (Brasília civil time, historical DST included) of an instant: its partition. */
function localYearMonth(ms: number): { year: number; month: number } {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', { timeZone: PARTITION_ZONE, year: 'numeric', month: '2-digit' })
    .formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return { year: Number(parts.year), month: Number(parts.month) };
}

/** A request as Athena runs it: SQL text with `?` placeholders, and their values in order. */
export interface LakeSql {
  readonly sql: string;
  readonly parameters: string[];
  /** The comment ending `sql`: a digest of the text and the parameters. */
  readonly tag: string;
}

/** The SQL of a validated request: identifiers from the catalog and configuration; every user value a `?` parameter. */
export function buildSql(q: TimeSeriesQuery, database: string): LakeSql {
  const dims = q.dimensions.map(identifier);
  const measure = identifier(q.measure.name);
  const [from, to] = [Date.parse(q.from), Date.parse(q.to)];
  const [first, last] = [localYearMonth(from), localYearMonth(to - 1)];
  // The partition columns first, each compared alone (what partition pruning evaluates): the years, then the months of the first and last.
  const where: Array<[string, string[]]> = [
    ['"year" BETWEEN ? AND ?', [String(first.year), String(last.year)]],
    ['("year" > ? OR "month" >= ?)', [String(first.year), String(first.month)]],
    ['("year" < ? OR "month" <= ?)', [String(last.year), String(last.month)]],
    ['"time" >= from_iso8601_timestamp(?)', [stringParameter(q.from)]],
    ['"time" < from_iso8601_timestamp(?)', [stringParameter(q.to)]],
    [`${measure} IS NOT NULL`, []],
    ...q.filters.map(([name, value]): [string, string[]] => [`${identifier(name)} = ?`, [stringParameter(value)]]),
  ];
  const source = `${identifier(database)}.${identifier(q.table)}`;
  const parameters = where.flatMap(([, p]) => p);
  const condition = `WHERE ${where.map(([c]) => c).join(' AND ')}`;
  // Nulls last, as the other engines order a missing dimension.
  const orderDims = dims.map((d) => `${d} NULLS LAST`);
  let sql: string;
  if (!q.interval) {
    sql = [`SELECT "time", ${[...dims, `${measure} AS "value"`].join(', ')}`, `FROM ${source}`, condition,
      `ORDER BY ${['"time"', ...orderDims].join(', ')}`].join(' ');
  } else {
    const bucket = bucketSql(q);
    sql = [`SELECT ${bucket} AS "bucket", ${[...dims, `${q.aggregation}(${measure}) AS "value"`].join(', ')}`, `FROM ${source}`, condition,
      `GROUP BY ${[bucket, ...dims].join(', ')}`, `ORDER BY ${['"bucket"', ...orderDims].join(', ')}`].join(' ');
  }
  // GetQueryExecution returns the text but not the parameters: a digest of both in the text binds a page cursor to them.
  const tag = `/* ons-query ${checksum(JSON.stringify([sql, parameters]), 'hex', 32)} */`;
  return { sql: `${sql} ${tag}`, parameters, tag };
}

/** What a page token is bound to: the SQL text and its parameters. */
export const queryKeyOf = (s: Pick<LakeSql, 'sql' | 'parameters'>): string => JSON.stringify([s.sql, s.parameters]);

/** Our cursor: the query execution whose results are paged, and Athena's NextToken in them. */
interface Cursor {
  readonly id: string;
  readonly next: string;
}

function parseCursor(text: string): Cursor {
  try {
    const c = JSON.parse(text);
    if (typeof c?.id === 'string' && /^[a-zA-Z0-9-]{1,128}$/.test(c.id) && typeof c.next === 'string' && c.next.length >= 1 && Object.keys(c).length === 2) return c;
  } catch {
    // falls through
  }
  throw invalidToken();
}

const busy = () => new RequestError(503, 'ServiceUnavailable', 'the time-series store is busy; retry later');

/** Athena errors that mean "busy, retry later" (after the SDK's own retries). */
function isBusy(error: unknown): boolean {
  const e = error as Error & { $metadata?: { httpStatusCode?: number } };
  return e.name === 'TooManyRequestsException' || e.name === 'ThrottlingException' || e.name === 'InternalServerException'
    || (e.$metadata?.httpStatusCode ?? 0) >= 500;
}

async function send<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isBusy(error)) throw busy();
    throw error;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts the query and waits for it: polls with a doubling delay until it ends or the deadline passes (then stops it: 504). */
async function execute(client: AthenaClient, s: LakeSql, config: LakeQueryConfig): Promise<string> {
  const deadline = Date.now() + config.deadlineMs;
  const { QueryExecutionId: id } = await send(() => client.send(new StartQueryExecutionCommand({
    QueryString: s.sql,
    ExecutionParameters: s.parameters,
    QueryExecutionContext: { Catalog: CATALOG, Database: config.database },
    WorkGroup: config.workGroup,
    ResultReuseConfiguration: { ResultReuseByAgeConfiguration: { Enabled: config.reuseMinutes > 0, MaxAgeInMinutes: config.reuseMinutes } },
  })));
  if (!id) throw new Error('StartQueryExecution returned no QueryExecutionId');
  // Stopped whenever this request gives up on it (deadline, polls failing), so that it scans and bills no more.
  const stop = () => client.send(new StopQueryExecutionCommand({ QueryExecutionId: id })).then(() => undefined, () => undefined);
  let delay = config.pollDelayMs;
  for (;;) {
    const wait = Math.min(delay, deadline - Date.now());
    if (wait > 0) await sleep(wait);
    let execution: QueryExecution | undefined;
    try {
      execution = (await send(() => client.send(new GetQueryExecutionCommand({ QueryExecutionId: id })))).QueryExecution;
    } catch (error) {
      await stop();
      throw error;
    }
    const state = execution?.Status?.State;
    if (state === 'SUCCEEDED') return id;
    if (state === 'FAILED' || state === 'CANCELLED') throw failure(id, execution);
    if (Date.now() >= deadline) {
      await stop();
      throw new RequestError(504, 'QueryTimeout', `the query did not finish in time and was cancelled (query id ${id}); retry with a narrower period or a coarser interval`);
    }
    delay = Math.min(delay * 2, MAX_POLL_DELAY_MS);
  }
}

function failure(id: string, execution: QueryExecution | undefined): Error {
  const reason = execution?.Status?.StateChangeReason ?? execution?.Status?.AthenaError?.ErrorMessage ?? '';
  if (BYTES_SCANNED_LIMIT.test(reason)) {
    return new RequestError(400, 'QueryTooLarge', `the request would read more data than one query may scan (query id ${id}); narrow the period (from, to) or filter by a dimension`);
  }
  if (execution?.Status?.AthenaError?.Retryable) return busy();
  const error = new Error(`Athena query ${id} ${execution?.Status?.State}: ${reason}`);
  error.name = 'AthenaQueryFailed';
  return error;
}

/** The next page's cursor must belong to this very query (same text and digest of its parameters, same workgroup), and have succeeded. */
async function checkCursor(client: AthenaClient, cursor: Cursor, s: LakeSql, config: LakeQueryConfig): Promise<void> {
  let execution: QueryExecution | undefined;
  try {
    execution = (await client.send(new GetQueryExecutionCommand({ QueryExecutionId: cursor.id }))).QueryExecution;
  } catch (error) {
    if (isBusy(error)) throw busy();
    if ((error as Error).name === 'InvalidRequestException') throw invalidToken('nextToken has expired or is not valid for this query');
    throw error;
  }
  // The parameters are not returned ("The list of parameters is not returned in the response", API reference,
  // QueryExecution): the text's digest comment stands for them.
  // (Compared by the tag, whether Athena reports the text as sent or with the parameters in it.)
  const same = !!execution?.Query?.includes(s.tag) && execution?.WorkGroup === config.workGroup && execution?.Status?.State === 'SUCCEEDED';
  if (!same) throw invalidToken('nextToken has expired or is not valid for this query');
}

/** A `timestamp` as Athena prints it (`2023-01-01 03:00:00.000`, UTC) as `2023-01-01T03:00:00.000Z`. */
function isoTime(value: string | undefined): string {
  const m = value ? /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d+))?$/.exec(value) : null;
  if (!m) throw new Error(`unexpected time value from Athena: ${value}`);
  return `${m[1]}T${m[2]}.${(m[3] ?? '').padEnd(3, '0').slice(0, 3)}Z`;
}

/** Runs (or continues) one page of the query and shapes the response. */
export async function runQuery(client: AthenaClient, q: TimeSeriesQuery, config: LakeQueryConfig): Promise<TimeSeriesResponse> {
  const s = buildSql(q, config.database);
  const cursor = q.pageToken ? parseCursor(q.pageToken) : undefined;
  let id: string;
  if (cursor) {
    await checkCursor(client, cursor, s, config);
    id = cursor.id;
  } else {
    id = await execute(client, s, config);
  }
  let page;
  try {
    page = await client.send(new GetQueryResultsCommand({
      QueryExecutionId: id,
      NextToken: cursor?.next,
      // The first page starts with the header row (the column names).
      MaxResults: cursor ? config.maxPoints : config.maxPoints + 1,
    }));
  } catch (error) {
    if (isBusy(error)) throw busy();
    if (cursor && (error as Error).name === 'InvalidRequestException') throw invalidToken('nextToken has expired or is not valid for this query');
    throw error;
  }
  const rows = (page.ResultSet?.Rows ?? []).slice(cursor ? 0 : 1);
  const points: TimeSeriesPoint[] = rows.map((row) => {
    const data = row.Data ?? [];
    const dimensions: Record<string, string | null> = {};
    q.dimensions.forEach((name, i) => (dimensions[name] = data[1 + i]?.VarCharValue ?? null));
    const text = data[1 + q.dimensions.length]?.VarCharValue;
    const value = text === undefined ? null : Number(text);
    if (!q.interval) return { time: isoTime(data[0]?.VarCharValue), dimensions, value };
    // Calendar buckets come back as their first local date; fixed bins as their UTC start.
    const bucket = isCalendar(q) ? bucketOfLocalDate(q, data[0]?.VarCharValue ?? '') : bucketAt(q, Date.parse(isoTime(data[0]?.VarCharValue)));
    return aggregatedPoint(bucket, dimensions, value);
  });
  const next = page.NextToken ? encodeToken(JSON.stringify({ id, next: page.NextToken } satisfies Cursor), queryKeyOf(s)) : undefined;
  return { ...responseBase(q), points, ...(next ? { nextToken: next } : {}) };
}

/** The lake side of the query handler. */
export function lakeQueryEngine(client: AthenaClient, config: LakeQueryConfig): QueryEngine {
  return { config, queryKey: (q) => queryKeyOf(buildSql(q, config.database)), run: (q) => runQuery(client, q, config) };
}
