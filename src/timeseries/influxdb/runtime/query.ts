import { connectionFromEnv, createSender, InfluxConnection, NetworkError, params, Send, token } from './http';
import { bucketsCovering, CalendarBucket, offsetPeriods } from '../../../ons/calendar';
import { RequestError } from '../../../runtime/http';
import { invalidToken } from '../../../runtime/page-token';
import { TimeSeriesPoint, TimeSeriesResponse } from '../../contract';
import { aggregatedPoint, bucketAt, isCalendar } from '../../runtime/buckets';
import {
  AggregationName, baseQueryConfigFromEnv, encodeToken, Interval, QueryConfig, QueryEngine, responseBase, safeIdentifier, TimeSeriesQuery,
} from '../../runtime/request';

/**
 * `GET /timeseries/{dataset}` on InfluxDB through the 1.x-compatible `/query` (InfluxQL), with the same
 * answers as the Timestream engine: the query text is built only from the validated request
 * (`runtime/request.ts`): catalog identifiers double-quoted, dimension values single-quoted and
 * escaped, instants re-formatted. Points are ordered by time, then by the identity dimensions (a
 * missing one last), like Timestream's ORDER BY; pages are cut after that order with a cursor (the last
 * point's time and dimensions), since InfluxQL's LIMIT counts per series.
 *
 * InfluxQL has no calendar, and `tz()` is not relied on (InfluxDB 2's InfluxQL, which Timestream for InfluxDB runs,
 * is not documented to support it): `1d`, `1w`, `1mo` and `1y` are folded with ons/calendar.ts from daily sums,
 * counts, minima and maxima of local days. A day is `time(1d, <offset>)` (InfluxDB v2 InfluxQL, GROUP BY clause,
 * advanced `GROUP BY time(time_interval, offset_interval)`: the offset shifts the preset UTC boundaries), one
 * statement per stretch of one UTC offset (offsetPeriods), `;`-separated in one request ("/query 1.x compatibility
 * API": "To execute multiple queries, delimit queries with a semicolon"; one result per statement, in order); the
 * two pieces of the day daylight saving ends fold together.
 */

export interface InfluxQueryConfig extends QueryConfig {
  readonly connection: InfluxConnection;
}

export function queryConfigFromEnv(): InfluxQueryConfig {
  // Same page-size ceiling as the Timestream engine, so one setting gives the same pages.
  return { ...baseQueryConfigFromEnv(1000), connection: connectionFromEnv() };
}

/** Sub-day intervals: fixed UTC bins from the epoch. */
const GROUPS: Partial<Record<Interval, string>> = { '1m': '1m', '5m': '5m', '15m': '15m', '30m': '30m', '1h': '1h' };
const FUNCTIONS: Record<AggregationName, string> = { avg: 'mean', sum: 'sum', min: 'min', max: 'max' };

const identifier = (name: string): string => `"${safeIdentifier(name).replace(/[\\"]/g, (c) => `\\${c}`)}"`;
const literal = (value: string): string => `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`;
const instant = (ms: number): string => literal(new Date(ms).toISOString());

const calendar = (q: TimeSeriesQuery): boolean => isCalendar(q);
const HOUR = 3_600_000;

/**
 * The InfluxQL of a validated request over [lower, upper): raw points or fixed-interval groups per series (at most
 * `limit` each), or for calendar intervals the sum, count, min and max per series and local day: one statement per
 * stretch of one UTC offset, `;`-separated (its results come back in that order).
 */
export function buildInfluxQl(q: TimeSeriesQuery, lower: number, upper: number, limit?: number): string {
  if (calendar(q)) return dayStatements(q, lower, upper).map((d) => d.influxQl).join('; ');
  const measure = identifier(q.measure.name);
  const dims = q.dimensions.map(identifier);
  const select = q.interval ? `${FUNCTIONS[q.aggregation!]}(${measure}) AS "value"` : measure;
  const groupBy = q.interval ? [`time(${GROUPS[q.interval]})`, ...dims] : dims;
  return [
    `SELECT ${select} FROM ${identifier(q.table)} WHERE ${whereOf(q, lower, upper)}`,
    ...(groupBy.length ? [`GROUP BY ${groupBy.join(', ')}`] : []),
    ...(q.interval ? ['fill(none)'] : []),
    ...(limit !== undefined ? [`LIMIT ${limit}`] : []),
  ].join(' ');
}

function whereOf(q: TimeSeriesQuery, lower: number, upper: number): string {
  return [`time >= ${instant(lower)}`, `time < ${instant(upper)}`, ...q.filters.map(([n, v]) => `${identifier(n)} = ${literal(v)}`)].join(' AND ');
}

/** Daily sum/count/min/max of local days, per stretch of one offset: windows start at local midnight (UTC minus the offset). */
function dayStatements(q: TimeSeriesQuery, lower: number, upper: number): Array<{ start: number; influxQl: string }> {
  const measure = identifier(q.measure.name);
  const select = ['sum', 'count', 'min', 'max'].map((f) => `${f}(${measure}) AS "${f}"`).join(', ');
  return offsetPeriods(lower, upper).map((p) => ({
    start: p.start,
    influxQl: `SELECT ${select} FROM ${identifier(q.table)} WHERE ${whereOf(q, p.start, p.end)} `
      + `GROUP BY ${[`time(1d, ${Math.round(-p.offset / HOUR)}h)`, ...q.dimensions.map(identifier)].join(', ')} fill(none)`,
  }));
}

/** What a page token is bound to: the first page's query. */
export function queryKey(q: TimeSeriesQuery, config: QueryConfig): string {
  const from = Date.parse(q.from);
  const to = Date.parse(q.to);
  return calendar(q) ? buildInfluxQl(q, from, to) : buildInfluxQl(q, from, to, config.maxPoints + 2);
}

interface Series {
  readonly tags?: Record<string, string>;
  readonly columns: string[];
  readonly values: unknown[][];
}

interface Row {
  readonly time: number;
  /** Aggregates: the bucket (its labels). */
  readonly bucket?: CalendarBucket;
  readonly dims: ReadonlyArray<string | null>;
  readonly value: number | null;
}

/** Our cursor: the last point of the page given. */
interface Cursor {
  readonly t: number;
  readonly k: ReadonlyArray<string | null>;
}

/** Runs one page of the query and shapes the response. */
export async function runQuery(send: Send, q: TimeSeriesQuery, config: InfluxQueryConfig): Promise<TimeSeriesResponse> {
  const cursor = q.pageToken === undefined ? undefined : parseCursor(q.pageToken, q.dimensions.length);
  const from = Date.parse(q.from);
  const to = Date.parse(q.to);
  const lower = Math.max(from, cursor?.t ?? from);
  const after = (r: Row) => !cursor || compareRows(r, { time: cursor.t, dims: cursor.k, value: null }) > 0;
  let rows: Row[] = [];
  if (calendar(q)) {
    // Windows of whole buckets: each series has one point per bucket, so maxPoints + 2 buckets fill a page.
    for (let start = lower; start < to;) {
      const end = windowEnd(q, start, to, config.maxPoints + 2);
      const statements = dayStatements(q, start, end);
      const results = await execute(send, config.connection, statements.map((d) => d.influxQl).join('; '));
      rows.push(...fold(results, statements.map((d) => d.start), q));
      if (rows.filter(after).length > config.maxPoints) break;
      start = end;
    }
  } else {
    const [series] = await execute(send, config.connection, buildInfluxQl(q, lower, to, config.maxPoints + 2));
    rows = series.flatMap((s) => s.values.map((v) => ({ time: Number(v[0]), dims: dimsOf(s, q), value: numberOrNull(v[1]) })));
  }
  const page = rows.filter(after).sort(compareRows);
  const points: TimeSeriesPoint[] = page.slice(0, config.maxPoints).map((r) => {
    const dimensions = Object.fromEntries(q.dimensions.map((d, i) => [d, r.dims[i]]));
    if (!q.interval) return { time: new Date(r.time).toISOString(), dimensions, value: r.value };
    return aggregatedPoint(r.bucket ?? bucketAt(q, r.time), dimensions, r.value);
  });
  const last = page.length > config.maxPoints ? page[config.maxPoints - 1] : undefined;
  const next = last ? { nextToken: encodeToken(JSON.stringify({ t: last.time, k: last.dims } satisfies Cursor), queryKey(q, config)) } : {};
  return { ...responseBase(q), points, ...next };
}

/**
 * Statements in one request at most: the InfluxQL goes in the URL (GET /query), whose size servers cap (Node's HTTP
 * parser at 16 KiB of request line and headers); 8 statements of a few hundred characters stay well under.
 */
const MAX_STATEMENTS = 8;

/**
 * The end of a window of at most `n` whole buckets from `start` (the next bucket's start, or `to`), with at most
 * MAX_STATEMENTS stretches of one offset (a window holds at least one bucket).
 */
function windowEnd(q: TimeSeriesQuery, start: number, to: number, n: number): number {
  let count = 0;
  for (const b of bucketsCovering(q.interval!, start, to, q.week)) {
    if (count > 0 && offsetPeriods(start, Math.min(b.end, to)).length > MAX_STATEMENTS) return b.start;
    if (++count === n) return Math.min(b.end, to);
  }
  return to;
}

/**
 * Sum/count/min/max per series and local-day piece (one result per statement, each starting at `starts[i]`) folded
 * into the calendar's buckets. A piece is labelled by an instant inside it: its window start, or the statement's start
 * where the window began before (InfluxDB reports the window's start, which may lie before the WHERE bound).
 */
function fold(results: Series[][], starts: readonly number[], q: TimeSeriesQuery): Row[] {
  const groups = new Map<string, { bucket: CalendarBucket; dims: Array<string | null>; sum: number; count: number; min: number; max: number }>();
  results.forEach((days, statement) => {
    for (const s of days) {
      const dims = dimsOf(s, q);
      const at = (name: string) => s.columns.indexOf(name);
      const [iSum, iCount, iMin, iMax] = [at('sum'), at('count'), at('min'), at('max')];
      for (const v of s.values) {
        const bucket = bucketAt(q, Math.max(Number(v[0]), starts[statement]));
        const key = JSON.stringify([bucket.start, dims]);
        const g = groups.get(key) ?? { bucket, dims, sum: 0, count: 0, min: Infinity, max: -Infinity };
        g.sum += Number(v[iSum]);
        g.count += Number(v[iCount]);
        g.min = Math.min(g.min, Number(v[iMin]));
        g.max = Math.max(g.max, Number(v[iMax]));
        groups.set(key, g);
      }
    }
  });
  const value = (g: { sum: number; count: number; min: number; max: number }) => {
    switch (q.aggregation) {
      case 'sum': return g.sum;
      case 'min': return g.min;
      case 'max': return g.max;
      default: return g.sum / g.count;
    }
  };
  return [...groups.values()].filter((g) => g.count > 0).map((g) => ({ time: g.bucket.start, bucket: g.bucket, dims: g.dims, value: value(g) }));
}

/** A series' identity: its tag values in catalog order, a missing (empty) tag as null. */
function dimsOf(s: Series, q: TimeSeriesQuery): Array<string | null> {
  return q.dimensions.map((d) => s.tags?.[d] || null);
}

function numberOrNull(v: unknown): number | null {
  return typeof v === 'number' ? v : v === null || v === undefined ? null : Number(v);
}

/** Timestream's ORDER BY time, dims...: strings by code point (UTF-8 bytes), nulls last. */
function compareRows(a: Row, b: Row): number {
  if (a.time !== b.time) return a.time - b.time;
  for (let i = 0; i < a.dims.length; i++) {
    const x = a.dims[i];
    const y = b.dims[i];
    if (x === y) continue;
    if (x === null) return 1;
    if (y === null) return -1;
    return Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8'));
  }
  return 0;
}

function parseCursor(text: string, dims: number): Cursor {
  let c: Cursor;
  try {
    c = JSON.parse(text) as Cursor;
  } catch {
    throw invalidToken();
  }
  if (!c || !Number.isSafeInteger(c.t) || !Array.isArray(c.k) || c.k.length !== dims || !c.k.every((k) => k === null || typeof k === 'string')) throw invalidToken();
  return c;
}

/** One request of InfluxQL statements (`;`-separated), each statement's series; unreachable, throttled or failing (5xx) InfluxDB is 503, any other refusal an error (500). */
async function execute(send: Send, connection: InfluxConnection, influxQl: string): Promise<Series[][]> {
  const busy = () => new RequestError(503, 'ServiceUnavailable', 'the time-series store is busy; retry later');
  let response;
  try {
    response = await send('GET', `/query?${params(connection, { epoch: 'ms', q: influxQl })}`, { Authorization: `Token ${await token(connection)}`, Accept: 'application/json' });
  } catch (error) {
    if (error instanceof NetworkError) throw busy();
    throw error;
  }
  if (response.status === 429 || response.status >= 500) throw busy();
  let body: { results?: Array<{ error?: string; series?: Series[] }>; error?: string; message?: string } | undefined;
  try {
    body = JSON.parse(response.body);
  } catch {
    body = undefined;
  }
  if (response.status !== 200 || !body?.results) {
    const error = new Error(`InfluxDB query: HTTP ${response.status}: ${body?.error ?? body?.message ?? response.body.slice(0, 500)}`);
    error.name = 'InfluxQueryError';
    throw error;
  }
  // One result per statement, in order ("statement_id"); any statement's error fails the request.
  return body.results.map((result) => {
    if (result.error) {
      const error = new Error(`InfluxDB query: ${result.error}`);
      error.name = 'InfluxQueryError';
      throw error;
    }
    return result.series ?? [];
  });
}

/** The InfluxDB side of the query handler. */
export function influxQueryEngine(config: InfluxQueryConfig): QueryEngine {
  const send = createSender(config.connection, 10);
  return { config, queryKey: (q) => queryKey(q, config), run: (q) => runQuery(send, q, config) };
}
