import { QueryCommand, TimestreamQueryClient, type Datum } from '@aws-sdk/client-timestream-query';
import { callFailure } from './discovery';
import { RequestError } from '../../../runtime/http';
import { invalidToken } from '../../../runtime/page-token';
import { isNetworkError } from '../../../runtime/retry';
import { traced } from '../../../runtime/telemetry';
import { TimeSeriesEnv, TimeSeriesPoint, TimeSeriesResponse } from '../../contract';
import { aggregatedPoint, bucketAt, bucketOfLocalDate, calendarBucketSql, isCalendar } from '../../runtime/buckets';
import { baseQueryConfigFromEnv, encodeToken, Interval, QueryConfig as BaseQueryConfig, QueryEngine, responseBase, safeIdentifier, TimeSeriesQuery } from '../../runtime/request';

/**
 * `GET /timeseries/{dataset}` on Timestream. Timestream has no bind parameters, so the SQL text is
 * built only from the validated request (`runtime/request.ts`): catalog identifiers (dataset, measure,
 * dimension names) and values re-formatted there (instants, interval, aggregation, dimension values
 * matching a strict pattern), escaped as literals. Days, weeks, months and years are the Brasília calendar
 * (runtime/buckets.ts: the local wall clock by a CASE over the range's UTC offsets, then date_trunc), sub-day
 * intervals fixed UTC bins (`bin`).
 */

export interface QueryConfig extends BaseQueryConfig {
  readonly database: string;
}

export function queryConfigFromEnv(): QueryConfig {
  const database = process.env[TimeSeriesEnv.DATABASE];
  if (!database) throw new Error(`${TimeSeriesEnv.DATABASE} is not set`);
  // Rows per page: Timestream's MaxRows takes 1 to 1000.
  return { ...baseQueryConfigFromEnv(1000), database };
}

export function createQueryClient(endpoint?: string): TimestreamQueryClient {
  // With an endpoint the SDK skips endpoint discovery (tests, VPC endpoints).
  return traced(new TimestreamQueryClient(endpoint ? { endpoint } : {}));
}

/** Sub-day intervals: fixed UTC bins from the epoch (calendar intervals are cut in local days, runtime/buckets.ts). */
const BINS: Partial<Record<Interval, string>> = {
  '1m': 'bin(time, 1m)',
  '5m': 'bin(time, 5m)',
  '15m': 'bin(time, 15m)',
  '30m': 'bin(time, 30m)',
  '1h': 'bin(time, 1h)',
};

const identifier = (name: string): string => `"${safeIdentifier(name).replace(/"/g, '""')}"`;
const literal = (value: string): string => `'${value.replace(/'/g, "''")}'`;
/** A handler-computed UTC instant as a Timestream timestamp. */
const instant = (ms: number): string => `from_iso8601_timestamp(${literal(new Date(ms).toISOString())})`;

/** The SQL of a validated request: identifiers quoted, values as literals, nothing else from the request. */
export function buildSql(q: TimeSeriesQuery, database: string): string {
  const dims = q.dimensions.map(identifier);
  const measure = identifier(q.measure.name);
  const where = [
    `measure_name = ${literal(q.dataset.id)}`,
    `time >= from_iso8601_timestamp(${literal(q.from)})`,
    `time < from_iso8601_timestamp(${literal(q.to)})`,
    `${measure} IS NOT NULL`,
    ...q.filters.map(([name, value]) => `${identifier(name)} = ${literal(value)}`),
  ];
  const from = `${identifier(database)}.${identifier(q.table)}`;
  if (!q.interval) {
    return [
      `SELECT time, ${[...dims, `${measure} AS "value"`].join(', ')}`,
      `FROM ${from}`,
      `WHERE ${where.join(' AND ')}`,
      `ORDER BY ${['time', ...dims].join(', ')}`,
    ].join(' ');
  }
  const bucket = isCalendar(q) ? calendarBucketSql(q, 'time', instant) : BINS[q.interval]!;
  return [
    `SELECT ${bucket} AS "bucket", ${[...dims, `${q.aggregation}(${measure}) AS "value"`].join(', ')}`,
    `FROM ${from}`,
    `WHERE ${where.join(' AND ')}`,
    `GROUP BY ${[bucket, ...dims].join(', ')}`,
    `ORDER BY ${['"bucket"', ...dims].join(', ')}`,
  ].join(' ');
}

/** Runs one page of the query and shapes the response. */
export async function runQuery(client: TimestreamQueryClient, q: TimeSeriesQuery, config: QueryConfig): Promise<TimeSeriesResponse> {
  const sql = buildSql(q, config.database);
  const base = responseBase(q);
  let page;
  try {
    page = await client.send(new QueryCommand({ QueryString: sql, MaxRows: config.maxPoints, NextToken: q.pageToken }));
  } catch (error) {
    // A failed endpoint discovery (never retried by the SDK) is classified by the error DescribeEndpoints got.
    const { error: e, discovery } = callFailure(error);
    const status = e.$metadata?.httpStatusCode;
    if (e.name === 'ThrottlingException' || e.name === 'InternalServerException' || (status ?? 0) >= 500 || (discovery && status === undefined && isNetworkError(e))) {
      throw new RequestError(503, 'ServiceUnavailable', 'the time-series store is busy; retry later');
    }
    if (discovery) throw e;
    if (e.name === 'ValidationException' && q.pageToken) throw invalidToken('nextToken has expired or is not valid for this query');
    // A column Timestream has not seen yet (a measure or dimension never loaded) means no data.
    if (e.name === 'ValidationException' && /column .* (does not exist|cannot be resolved)/i.test(e.message)) return { ...base, points: [] };
    throw error;
  }
  const points: TimeSeriesPoint[] = (page.Rows ?? []).map((row) => {
    const data = row.Data ?? [];
    const dimensions: Record<string, string | null> = {};
    q.dimensions.forEach((name, i) => (dimensions[name] = scalar(data[1 + i])));
    const value = scalar(data[1 + q.dimensions.length]);
    const number = value === null ? null : Number(value);
    if (!q.interval) return { time: isoTime(scalar(data[0])), dimensions, value: number };
    // Calendar buckets come back as their first local date; fixed bins as their UTC start.
    const bucket = isCalendar(q) ? bucketOfLocalDate(q, scalar(data[0]) ?? '') : bucketAt(q, Date.parse(isoTime(scalar(data[0]))));
    return aggregatedPoint(bucket, dimensions, number);
  });
  return { ...base, points, ...(page.NextToken ? { nextToken: encodeToken(page.NextToken, sql) } : {}) };
}

function scalar(d: Datum | undefined): string | null {
  return d?.NullValue || d?.ScalarValue === undefined ? null : d.ScalarValue;
}

/** Timestream's `2023-01-01 03:00:00.000000000` (UTC) as `2023-01-01T03:00:00.000Z`. */
function isoTime(value: string | null): string {
  const m = value ? /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d+))?$/.exec(value) : null;
  if (!m) throw new Error(`unexpected time value from Timestream: ${value}`);
  return `${m[1]}T${m[2]}.${(m[3] ?? '').padEnd(3, '0').slice(0, 3)}Z`;
}

/** The Timestream side of the query handler. */
export function timestreamQueryEngine(client: TimestreamQueryClient, config: QueryConfig): QueryEngine {
  return { config, queryKey: (q) => buildSql(q, config.database), run: (q) => runQuery(client, q, config) };
}
