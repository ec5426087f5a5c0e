import { createHash } from 'node:crypto';
import { QueryCommand, TimestreamQueryClient, type Datum } from '@aws-sdk/client-timestream-query';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { tablesEnv } from './tables';
import { RequestError, safeName, serve } from '../../../api/runtime/http';
import { CATALOG, DatasetDefinition, MeasureDefinition } from '../../../ons/catalog';
import { FeatureFlag } from '../../../operations/contract';
import { flag } from '../../../operations/flags';
import { AGGREGATIONS, INTERVALS, TimeSeriesEnv, TimeSeriesPoint, TimeSeriesResponse } from '../../contract';

/**
 * `GET /timeseries/{dataset}` on Timestream. Timestream has no bind parameters, so the SQL text is
 * built only from catalog identifiers (dataset, measure, dimension names) and values this module
 * validated and re-formatted itself (instants, interval, aggregation, dimension values matching a
 * strict pattern, escaped as literals); anything else is refused with 400 before a query is sent.
 */

type Interval = typeof INTERVALS[number];
type AggregationName = typeof AGGREGATIONS[number];

export interface QueryConfig {
  readonly database: string;
  /** Dataset id → table. */
  readonly tables: Readonly<Record<string, string>>;
  /** Rows per page (Timestream's MaxRows: 1 to 1000). */
  readonly maxPoints: number;
}

export function queryConfigFromEnv(): QueryConfig {
  const database = process.env[TimeSeriesEnv.DATABASE];
  if (!database) throw new Error(`${TimeSeriesEnv.DATABASE} is not set`);
  const max = Number(process.env[TimeSeriesEnv.MAX_POINTS] ?? 1000);
  return { database, tables: tablesEnv(), maxPoints: Number.isInteger(max) && max >= 1 ? Math.min(max, 1000) : 1000 };
}

export function createQueryClient(endpoint?: string): TimestreamQueryClient {
  // With an endpoint the SDK skips endpoint discovery (tests, VPC endpoints).
  return new TimestreamQueryClient(endpoint ? { endpoint } : {});
}

/** A validated request: only catalog identifiers and re-formatted values. */
export interface TimeSeriesQuery {
  readonly dataset: DatasetDefinition;
  readonly table: string;
  readonly measure: MeasureDefinition;
  /** Identity dimensions the series are keyed by (all of the dataset's), in catalog order. */
  readonly dimensions: readonly string[];
  /** Dimension filters: catalog name → validated value. */
  readonly filters: ReadonlyArray<readonly [string, string]>;
  /** UTC ISO-8601 with milliseconds; from inclusive, to exclusive. */
  readonly from: string;
  readonly to: string;
  readonly interval: Interval | null;
  readonly aggregation: AggregationName | null;
  /** Timestream's NextToken, from our token (checked against this very query). */
  readonly pageToken?: string;
}

const RESERVED = ['measure', 'from', 'to', 'interval', 'aggregation', 'nextToken'];
const DATASET_ID = /^[a-z0-9_]{1,64}$/;
/**
 * Dimension values: letters (no modifier letters such as U+02BC, an apostrophe look-alike) and digits of
 * any script, NFC, space and `. _ / ( ) & , + -`, at most 100 characters, no `--`.
 */
const DIMENSION_VALUE = /^[\p{Lu}\p{Ll}\p{Lt}\p{Lo}\p{N}][\p{Lu}\p{Ll}\p{Lt}\p{Lo}\p{N} ._/()&,+-]{0,99}$/u;
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-](\d{2}):(\d{2})))?$/;
const TOKEN = /^[A-Za-z0-9_-]{1,4096}$/;
const MIN_TIME = Date.UTC(1900, 0, 1);
const MAX_TIME = Date.UTC(2100, 0, 1);

const BINS: Record<Interval, string> = {
  '1m': 'bin(time, 1m)',
  '5m': 'bin(time, 5m)',
  '15m': 'bin(time, 15m)',
  '30m': 'bin(time, 30m)',
  '1h': 'bin(time, 1h)',
  '1d': 'bin(time, 1d)',
  '1w': 'bin(time, 7d)',
  '1mo': "date_trunc('month', time)",
  '1y': "date_trunc('year', time)",
};

const bad = (message: string) => new RequestError(400, 'InvalidParameter', message);

/** Validates the path and query parameters; throws RequestError (400, 404) naming the parameter at fault. */
export function parseRequest(
  datasetParam: string | undefined,
  query: Readonly<Record<string, string | undefined>> | null,
  multi: Readonly<Record<string, readonly string[] | undefined>> | null,
  config: QueryConfig,
): TimeSeriesQuery {
  if (datasetParam === undefined || !DATASET_ID.test(datasetParam)) throw bad('dataset must be a dataset id (lower-case letters, digits and _)');
  const dataset = CATALOG.find((d) => d.id === datasetParam);
  const table = dataset ? config.tables[dataset.id] : undefined;
  if (!dataset || !table) throw new RequestError(404, 'DatasetNotFound', `no time series for dataset '${datasetParam}'`);

  const params = query ?? {};
  for (const [name, values] of Object.entries(multi ?? {})) {
    if ((values?.length ?? 0) > 1) throw bad(`${safeName(name)} is given more than once`);
  }
  const dimensionNames = [...dataset.dimensions];
  for (const name of Object.keys(params)) {
    if (!RESERVED.includes(name) && !dimensionNames.includes(name)) {
      throw new RequestError(400, 'UnknownParameter', `unknown parameter ${safeName(name)}; accepted: ${[...RESERVED, ...dimensionNames].join(', ')}`);
    }
  }

  const measureName = params.measure ?? (dataset.measures.length === 1 ? dataset.measures[0].name : undefined);
  if (measureName === undefined) throw bad(`measure is required: one of ${dataset.measures.map((m) => m.name).join(', ')}`);
  const measure = dataset.measures.find((m) => m.name === measureName);
  if (!measure) throw bad(`measure must be one of ${dataset.measures.map((m) => m.name).join(', ')}`);

  const filters: Array<[string, string]> = [];
  for (const name of dimensionNames) {
    const value = params[name];
    if (value === undefined) continue;
    if (value !== value.normalize('NFC') || !DIMENSION_VALUE.test(value) || value.includes('--')) {
      throw bad(`${name} must be 1 to 100 letters, digits, spaces or . _ / ( ) & , + -`);
    }
    filters.push([name, value]);
  }

  const from = parseInstant('from', params.from);
  const to = parseInstant('to', params.to);
  if (from >= to) throw bad('from must be before to');

  const interval = params.interval === undefined ? null : oneOf('interval', params.interval, INTERVALS);
  let aggregation = params.aggregation === undefined ? null : oneOf('aggregation', params.aggregation, AGGREGATIONS);
  if (aggregation && !interval) throw bad('aggregation needs an interval');
  if (interval && !aggregation) aggregation = 'avg';

  const q: TimeSeriesQuery = {
    dataset,
    table,
    measure,
    dimensions: dimensionNames,
    filters,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    interval,
    aggregation,
  };
  if (params.nextToken === undefined) return q;
  return { ...q, pageToken: decodeToken(params.nextToken, buildSql(q, config.database)) };
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw bad(`${name} must be one of ${allowed.join(', ')}`);
  return value as T;
}

/** An ISO-8601 instant (`YYYY-MM-DD`, UTC midnight, or a date-time with `Z` or an offset) as epoch ms. */
function parseInstant(name: string, value: string | undefined): number {
  if (value === undefined) throw bad(`${name} is required (ISO-8601, e.g. 2023-01-01T00:00:00Z)`);
  const m = value.length <= 40 ? INSTANT.exec(value) : null;
  if (!m) throw bad(`${name} must be an ISO-8601 date or date-time with Z or an offset, e.g. 2023-01-01T00:00:00Z`);
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone, oh = '00', om = '00'] = m;
  const fields = [+y, +mo - 1, +d, +h, +mi, +s, Number(frac.padEnd(3, '0'))] as const;
  const local = Date.UTC(...fields);
  const check = new Date(local);
  // Date.UTC rolls 2023-02-30 over to March: refuse what does not round-trip.
  if (check.getUTCFullYear() !== fields[0] || check.getUTCMonth() !== fields[1] || check.getUTCDate() !== fields[2]
    || +h > 23 || +mi > 59 || +s > 59 || +oh > 23 || +om > 59) {
    throw bad(`${name} is not a valid date-time`);
  }
  const offset = zone && zone !== 'Z' ? (zone[0] === '-' ? -1 : 1) * (+oh * 60 + +om) * 60_000 : 0;
  const instant = local - offset;
  if (instant < MIN_TIME || instant >= MAX_TIME) throw bad(`${name} must be between 1900 and 2100`);
  return instant;
}

const identifier = (name: string): string => {
  // Catalog names are plain already; the check keeps it so should the catalog ever change.
  if (!/^[A-Za-z0-9_.-]{1,256}$/.test(name)) throw new Error(`not a safe identifier: ${name}`);
  return `"${name.replace(/"/g, '""')}"`;
};
const literal = (value: string): string => `'${value.replace(/'/g, "''")}'`;

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
  const bucket = BINS[q.interval];
  return [
    `SELECT ${bucket} AS "bucket", ${[...dims, `${q.aggregation}(${measure}) AS "value"`].join(', ')}`,
    `FROM ${from}`,
    `WHERE ${where.join(' AND ')}`,
    `GROUP BY ${[bucket, ...dims].join(', ')}`,
    `ORDER BY ${['"bucket"', ...dims].join(', ')}`,
  ].join(' ');
}

/** Our page token: Timestream's NextToken bound to a digest of the query it belongs to, base64url JSON. */
export function encodeToken(nextToken: string, sql: string): string {
  return Buffer.from(JSON.stringify({ v: 1, q: digest(sql), t: nextToken })).toString('base64url');
}

function decodeToken(token: string, sql: string): string {
  const invalid = () => new RequestError(400, 'InvalidNextToken', 'nextToken is not a token this API issued for these parameters');
  if (!TOKEN.test(token)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const p = parsed as { v?: unknown; q?: unknown; t?: unknown };
  if (!p || typeof p !== 'object' || Object.keys(p).sort().join() !== 'q,t,v' || p.v !== 1 || p.q !== digest(sql)
    || typeof p.t !== 'string' || p.t.length < 1 || p.t.length > 2048) {
    throw invalid();
  }
  return p.t;
}

function digest(sql: string): string {
  return createHash('sha256').update(sql).digest('hex').slice(0, 16);
}

/** Runs one page of the query and shapes the response. */
export async function runQuery(client: TimestreamQueryClient, q: TimeSeriesQuery, config: QueryConfig): Promise<TimeSeriesResponse> {
  const sql = buildSql(q, config.database);
  const base = {
    dataset: q.dataset.id,
    measure: q.measure.name,
    unit: q.measure.unit,
    interval: q.interval,
    aggregation: q.aggregation,
    from: q.from,
    to: q.to,
  };
  let page;
  try {
    page = await client.send(new QueryCommand({ QueryString: sql, MaxRows: config.maxPoints, NextToken: q.pageToken }));
  } catch (error) {
    const e = error as Error & { $metadata?: { httpStatusCode?: number } };
    if (e.name === 'ValidationException' && q.pageToken) throw new RequestError(400, 'InvalidNextToken', 'nextToken has expired or is not valid for this query');
    // A column Timestream has not seen yet (a measure or dimension never loaded) means no data.
    if (e.name === 'ValidationException' && /column .* (does not exist|cannot be resolved)/i.test(e.message)) return { ...base, points: [] };
    if (e.name === 'ThrottlingException' || e.name === 'InternalServerException' || (e.$metadata?.httpStatusCode ?? 0) >= 500) {
      throw new RequestError(503, 'ServiceUnavailable', 'the time-series store is busy; retry later');
    }
    throw error;
  }
  const points: TimeSeriesPoint[] = (page.Rows ?? []).map((row) => {
    const data = row.Data ?? [];
    const dimensions: Record<string, string | null> = {};
    q.dimensions.forEach((name, i) => (dimensions[name] = scalar(data[1 + i])));
    const value = scalar(data[1 + q.dimensions.length]);
    return { time: isoTime(scalar(data[0])), dimensions, value: value === null ? null : Number(value) };
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

export interface QueryDeps {
  readonly client: TimestreamQueryClient;
  readonly config: QueryConfig;
}

/** The whole API Gateway proxy exchange: validation, query, one JSON error shape, a log line per request. */
export async function handleRequest(event: APIGatewayProxyEvent, requestId: string, deps: () => QueryDeps): Promise<APIGatewayProxyResult> {
  return serve(event, requestId, 'query', async () => {
    if (!(await flag(FeatureFlag.TIME_SERIES_API)).enabled) throw new RequestError(503, 'FeatureDisabled', 'time-series queries are turned off for now (feature flag timeSeriesApi); retry later');
    const { client, config } = deps();
    const q = parseRequest(event.pathParameters?.dataset, event.queryStringParameters, event.multiValueQueryStringParameters, config);
    const body = await runQuery(client, q, config);
    return { body, log: { dataset: body.dataset, measure: body.measure, interval: body.interval, points: body.points.length, paged: !!q.pageToken } };
  });
}
