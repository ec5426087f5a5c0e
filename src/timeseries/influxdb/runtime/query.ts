import { connectionFromEnv, createSender, InfluxConnection, NetworkError, params, Send, token } from './http';
import { RequestError } from '../../../runtime/http';
import { invalidToken } from '../../../runtime/page-token';
import { TimeSeriesPoint, TimeSeriesResponse } from '../../contract';
import {
  AggregationName, baseQueryConfigFromEnv, encodeToken, Interval, QueryConfig, QueryEngine, responseBase, safeIdentifier, TimeSeriesQuery,
} from '../../runtime/request';

/**
 * `GET /timeseries/{dataset}` on InfluxDB through the 1.x-compatible `/query` (InfluxQL), with the same
 * answers as the Timestream engine: the query text is built only from the validated request
 * (`runtime/request.ts`): catalog identifiers double-quoted, dimension values single-quoted and
 * escaped, instants re-formatted. Points are ordered by time, then by the identity dimensions (a
 * missing one last), like Timestream's ORDER BY; pages are cut after that order with a cursor (the last
 * point's time and dimensions), since InfluxQL's LIMIT counts per series. InfluxQL has no calendar
 * months or years, so `1mo` and `1y` are folded from daily sums, counts, minima and maxima.
 */

export interface InfluxQueryConfig extends QueryConfig {
  readonly connection: InfluxConnection;
}

export function queryConfigFromEnv(): InfluxQueryConfig {
  // Same page-size ceiling as the Timestream engine, so one setting gives the same pages.
  return { ...baseQueryConfigFromEnv(1000), connection: connectionFromEnv() };
}

const GROUPS: Record<Exclude<Interval, '1mo' | '1y'>, string> = {
  '1m': '1m', '5m': '5m', '15m': '15m', '30m': '30m', '1h': '1h', '1d': '1d', '1w': '7d',
};
const FUNCTIONS: Record<AggregationName, string> = { avg: 'mean', sum: 'sum', min: 'min', max: 'max' };

const identifier = (name: string): string => `"${safeIdentifier(name).replace(/[\\"]/g, (c) => `\\${c}`)}"`;
const literal = (value: string): string => `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`;
const instant = (ms: number): string => literal(new Date(ms).toISOString());

const calendar = (q: TimeSeriesQuery): q is TimeSeriesQuery & { interval: '1mo' | '1y' } => q.interval === '1mo' || q.interval === '1y';

/**
 * The InfluxQL of a validated request over [lower, upper): raw points or fixed-interval groups per
 * series (at most `limit` each), or for `1mo`/`1y` the daily sum, count, min and max per series.
 */
export function buildInfluxQl(q: TimeSeriesQuery, lower: number, upper: number, limit?: number): string {
  const measure = identifier(q.measure.name);
  const where = [`time >= ${instant(lower)}`, `time < ${instant(upper)}`, ...q.filters.map(([n, v]) => `${identifier(n)} = ${literal(v)}`)];
  const dims = q.dimensions.map(identifier);
  let select: string;
  let groupBy: string[];
  if (!q.interval) {
    select = measure;
    groupBy = dims;
  } else if (calendar(q)) {
    select = ['sum', 'count', 'min', 'max'].map((f) => `${f}(${measure}) AS "${f}"`).join(', ');
    groupBy = ['time(1d)', ...dims];
  } else {
    select = `${FUNCTIONS[q.aggregation!]}(${measure}) AS "value"`;
    groupBy = [`time(${GROUPS[q.interval as keyof typeof GROUPS]})`, ...dims];
  }
  return [
    `SELECT ${select} FROM ${identifier(q.table)} WHERE ${where.join(' AND ')}`,
    ...(groupBy.length ? [`GROUP BY ${groupBy.join(', ')}`] : []),
    ...(q.interval ? ['fill(none)'] : []),
    ...(limit !== undefined ? [`LIMIT ${limit}`] : []),
  ].join(' ');
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
    // Windows of whole periods: each series has one point per period, so maxPoints + 2 periods fill a page.
    for (let start = lower; start < to;) {
      const end = Math.min(to, addPeriods(periodStart(start, q.interval), config.maxPoints + 2, q.interval));
      const days = await execute(send, config.connection, buildInfluxQl(q, start, end));
      rows.push(...fold(days, q));
      if (rows.filter(after).length > config.maxPoints) break;
      start = end;
    }
  } else {
    const series = await execute(send, config.connection, buildInfluxQl(q, lower, to, config.maxPoints + 2));
    rows = series.flatMap((s) => s.values.map((v) => ({ time: Number(v[0]), dims: dimsOf(s, q), value: numberOrNull(v[1]) })));
  }
  const page = rows.filter(after).sort(compareRows);
  const points: TimeSeriesPoint[] = page.slice(0, config.maxPoints).map((r) => ({
    time: new Date(r.time).toISOString(),
    dimensions: Object.fromEntries(q.dimensions.map((d, i) => [d, r.dims[i]])),
    value: r.value,
  }));
  const last = page.length > config.maxPoints ? page[config.maxPoints - 1] : undefined;
  const next = last ? { nextToken: encodeToken(JSON.stringify({ t: last.time, k: last.dims } satisfies Cursor), queryKey(q, config)) } : {};
  return { ...responseBase(q), points, ...next };
}

/** Daily sum/count/min/max per series folded into UTC months or years. */
function fold(days: Series[], q: TimeSeriesQuery & { interval: '1mo' | '1y' }): Row[] {
  const groups = new Map<string, { time: number; dims: Array<string | null>; sum: number; count: number; min: number; max: number }>();
  for (const s of days) {
    const dims = dimsOf(s, q);
    const at = (name: string) => s.columns.indexOf(name);
    const [iSum, iCount, iMin, iMax] = [at('sum'), at('count'), at('min'), at('max')];
    for (const v of s.values) {
      const time = periodStart(Number(v[0]), q.interval);
      const key = JSON.stringify([time, dims]);
      const g = groups.get(key) ?? { time, dims, sum: 0, count: 0, min: Infinity, max: -Infinity };
      g.sum += Number(v[iSum]);
      g.count += Number(v[iCount]);
      g.min = Math.min(g.min, Number(v[iMin]));
      g.max = Math.max(g.max, Number(v[iMax]));
      groups.set(key, g);
    }
  }
  const value = (g: { sum: number; count: number; min: number; max: number }) => {
    switch (q.aggregation) {
      case 'sum': return g.sum;
      case 'min': return g.min;
      case 'max': return g.max;
      default: return g.sum / g.count;
    }
  };
  return [...groups.values()].filter((g) => g.count > 0).map((g) => ({ time: g.time, dims: g.dims, value: value(g) }));
}

function periodStart(ms: number, interval: '1mo' | '1y'): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), interval === '1mo' ? d.getUTCMonth() : 0, 1);
}

function addPeriods(ms: number, n: number, interval: '1mo' | '1y'): number {
  const d = new Date(ms);
  return interval === '1mo' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1) : Date.UTC(d.getUTCFullYear() + n, 0, 1);
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

/** One InfluxQL statement; unreachable, throttled or failing (5xx) InfluxDB is 503, any other refusal an error (500). */
async function execute(send: Send, connection: InfluxConnection, influxQl: string): Promise<Series[]> {
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
  const result = body.results[0] ?? {};
  if (result.error) {
    const error = new Error(`InfluxDB query: ${result.error}`);
    error.name = 'InfluxQueryError';
    throw error;
  }
  return result.series ?? [];
}

/** The InfluxDB side of the query handler. */
export function influxQueryEngine(config: InfluxQueryConfig): QueryEngine {
  const send = createSender(config.connection, 10);
  return { config, queryKey: (q) => queryKey(q, config), run: (q) => runQuery(send, q, config) };
}
