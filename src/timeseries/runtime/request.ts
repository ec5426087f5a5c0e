import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { datasetsEnv, tablesEnv } from './tables';
import { DEFAULT_WEEK_RULE, WEEK_RULES, WeekRule } from '../../ons/calendar';
import { CATALOG, DATASET_ID } from '../../ons/catalog';
import { FeatureFlag, OPERATION_DIMENSION, PlatformMetrics } from '../../runtime/contract';
import { flag } from '../../runtime/flags';
import { RequestError, safeName, serve, startRequest } from '../../runtime/http';
import { checksum, pageTokenCodec } from '../../runtime/page-token';
import { flushMetrics, recordMetric } from '../../runtime/telemetry';
import { AGGREGATIONS, INTERVALS, ServedDataset, TIME_SERIES_OPERATION, TimeSeriesEnv, TimeSeriesResponse } from '../contract';

/**
 * `GET /timeseries/{dataset}` for any engine: the request validated into catalog identifiers and
 * values re-formatted here (the only input an engine's query text is built from), page tokens bound
 * to the query they belong to, and the response's shape. Anything else is refused with 400 before a
 * query is sent.
 */

export type Interval = typeof INTERVALS[number];
export type AggregationName = typeof AGGREGATIONS[number];

export interface QueryConfig {
  /** Dataset id → table (Timestream) or measurement (InfluxDB). */
  readonly tables: Readonly<Record<string, string>>;
  /** Served datasets outside the catalog (with a table in `tables`). @default none */
  readonly datasets?: readonly ServedDataset[];
  /** Points per page. */
  readonly maxPoints: number;
}

/** `TABLES`, `DATASETS` and `MAX_POINTS` (1 to `cap`, default `cap`) from the environment. */
export function baseQueryConfigFromEnv(cap: number): QueryConfig {
  const max = Number(process.env[TimeSeriesEnv.MAX_POINTS] ?? cap);
  return { tables: tablesEnv(), datasets: datasetsEnv(), maxPoints: Number.isInteger(max) && max >= 1 ? Math.min(max, cap) : cap };
}

/** A validated request: only catalog identifiers and re-formatted values. */
export interface TimeSeriesQuery {
  readonly dataset: ServedDataset;
  readonly table: string;
  readonly measure: ServedDataset['measures'][number];
  /** Identity dimensions the series are keyed by (all of the dataset's), in catalog order. */
  readonly dimensions: readonly string[];
  /** Dimension filters: catalog name → validated value. */
  readonly filters: ReadonlyArray<readonly [string, string]>;
  /** UTC ISO-8601 with milliseconds; from inclusive, to exclusive. */
  readonly from: string;
  readonly to: string;
  readonly interval: Interval | null;
  readonly aggregation: AggregationName | null;
  /**
   * With `interval` `1w` only: where weeks start (`week`, default DEFAULT_WEEK_RULE, the ONS operative
   * week); absent for any other interval. Buckets come from ons/calendar.ts.
   */
  readonly week?: WeekRule;
  /** The engine's page cursor, from our token (checked against this very query). */
  readonly pageToken?: string;
}

const RESERVED = ['measure', 'from', 'to', 'interval', 'aggregation', 'week', 'nextToken'];
/**
 * Dimension values: letters (no modifier letters such as U+02BC, an apostrophe look-alike) and digits of
 * any script, NFC, space and `. _ / ( ) & , + -`, at most 100 characters, no `--`.
 */
const DIMENSION_VALUE = /^[\p{Lu}\p{Ll}\p{Lt}\p{Lo}\p{N}][\p{Lu}\p{Ll}\p{Lt}\p{Lo}\p{N} ._/()&,+-]{0,99}$/u;
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-](\d{2}):(\d{2})))?$/;
const MIN_TIME = Date.UTC(1900, 0, 1);
const MAX_TIME = Date.UTC(2100, 0, 1);

const bad = (message: string) => new RequestError(400, 'InvalidParameter', message);

/**
 * Validates the path and query parameters; throws RequestError (400, 404) naming the parameter at fault.
 * `queryKey` gives the engine's query text of a request, which a page token must have been issued for.
 */
export function parseRequest(
  datasetParam: string | undefined,
  query: Readonly<Record<string, string | undefined>> | null,
  multi: Readonly<Record<string, readonly string[] | undefined>> | null,
  config: QueryConfig,
  queryKey: (q: TimeSeriesQuery) => string,
): TimeSeriesQuery {
  if (datasetParam === undefined || !DATASET_ID.test(datasetParam)) throw bad('dataset must be a dataset id (lower-case letters, digits and _)');
  // The catalog's datasets, then those the construct serves besides (the lake's additionalDatasets).
  const dataset: ServedDataset | undefined = CATALOG.find((d) => d.id === datasetParam) ?? config.datasets?.find((d) => d.id === datasetParam);
  const table = dataset ? config.tables[dataset.id] : undefined;
  if (!dataset || !table) {
    // Loaded (a Timestream/InfluxDB additionalDatasets id) but of unknown measures: say so rather than a bare 404.
    const why = !dataset && config.tables[datasetParam]
      ? ': it is loaded, but outside the catalog, and this store knows none of its measures (the lake engine serves the lake\'s additionalDatasets)' : '';
    throw new RequestError(404, 'DatasetNotFound', `no time series for dataset '${datasetParam}'${why}`);
  }

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
  const weekParam = params.week === undefined ? undefined : oneOf('week', params.week, WEEK_RULES);
  if (weekParam && interval !== '1w') throw bad('week applies only to interval=1w');
  const week = interval === '1w' ? weekParam ?? DEFAULT_WEEK_RULE : undefined;

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
    ...(week ? { week } : {}),
  };
  if (params.nextToken === undefined) return q;
  return { ...q, pageToken: pageTokens.decode(params.nextToken, queryKey(q)) };
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

/** A catalog identifier, checked again before it goes into query text (should the catalog ever change). */
export function safeIdentifier(name: string): string {
  if (!/^[A-Za-z0-9_.-]{1,256}$/.test(name)) throw new Error(`not a safe identifier: ${name}`);
  return name;
}

/** Our page token: the engine's cursor (`t`) bound to a digest of the query text it belongs to (`q`). */
const pageTokens = pageTokenCodec<string, string>({
  maxLength: 4096,
  cursorField: 't',
  digestField: 'q',
  digest: (_cursor, key) => checksum(key, 'hex', 16),
  isCursor: (t): t is string => typeof t === 'string' && t.length >= 1 && t.length <= 2048,
});

/** The page token of an engine's cursor for the query whose text is `key`. */
export function encodeToken(cursor: string, key: string): string {
  return pageTokens.encode(cursor, key);
}

/** Everything of a response but its points and token. */
export function responseBase(q: TimeSeriesQuery): Omit<TimeSeriesResponse, 'points' | 'nextToken'> {
  return {
    dataset: q.dataset.id,
    measure: q.measure.name,
    unit: q.measure.unit,
    interval: q.interval,
    aggregation: q.aggregation,
    from: q.from,
    to: q.to,
  };
}

/** The API Gateway proxy event of a `GET /timeseries/{dataset}` request with single-valued parameters, as the API sends it. */
export function timeSeriesRequestEvent(dataset: string, params: Record<string, string>, requestId: string): APIGatewayProxyEvent {
  return {
    resource: '/timeseries/{dataset}',
    path: `/timeseries/${dataset}`,
    httpMethod: 'GET',
    headers: {},
    multiValueHeaders: {},
    pathParameters: { dataset },
    queryStringParameters: params,
    multiValueQueryStringParameters: Object.fromEntries(Object.entries(params).map(([k, v]) => [k, [v]])),
    stageVariables: null,
    requestContext: { requestId } as APIGatewayProxyEvent['requestContext'],
    body: null,
    isBase64Encoded: false,
  };
}

/** What an engine's query handler plugs in. */
export interface QueryEngine {
  readonly config: QueryConfig;
  /** The engine's query text of a request (what a page token is bound to). */
  queryKey(q: TimeSeriesQuery): string;
  /** One page of the answer. */
  run(q: TimeSeriesQuery): Promise<TimeSeriesResponse>;
}

/** The whole API Gateway proxy exchange: feature flag, validation, query, one JSON error shape, a log line per request. */
export async function handleRequest(event: APIGatewayProxyEvent, requestId: string, engine: () => QueryEngine): Promise<APIGatewayProxyResult> {
  return serve(event, requestId, 'query', async () => {
    if (!(await flag(FeatureFlag.TIME_SERIES_API)).enabled) {
      throw new RequestError(503, 'FeatureDisabled', 'time-series queries are turned off for now (feature flag timeSeriesApi); retry later');
    }
    const e = engine();
    const { pathParameters, queryStringParameters, multiValueQueryStringParameters } = event;
    const q = parseRequest(pathParameters?.dataset, queryStringParameters, multiValueQueryStringParameters, e.config, (x) => e.queryKey(x));
    const body = await e.run(q);
    return { body, log: { dataset: body.dataset, measure: body.measure, interval: body.interval, points: body.points.length, paged: !!q.pageToken } };
  });
}

/**
 * An engine's `GET /timeseries/{dataset}` Lambda handler (API Gateway proxy integration): the engine
 * created once per container, on first use (the environment is read then); QueryLatency recorded
 * with the route's operationId (`getTimeSeries`) and flushed after every request.
 */
export function createQueryHandler(engineOf: () => QueryEngine) {
  const operation = TIME_SERIES_OPERATION;
  let engine: QueryEngine | undefined;
  return async (event: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> => {
    const requestId = event.requestContext?.requestId ?? context?.awsRequestId ?? 'unknown';
    startRequest(requestId, context);
    const started = Date.now();
    try {
      return await handleRequest(event, requestId, () => (engine ??= engineOf()));
    } finally {
      recordMetric(PlatformMetrics.QUERY_LATENCY, Date.now() - started, { [OPERATION_DIMENSION]: operation });
      flushMetrics();
    }
  };
}
