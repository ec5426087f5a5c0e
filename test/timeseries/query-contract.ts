import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { CATALOG } from '../../src/ons/catalog';
import { ApiErrorBody } from '../../src/runtime/contract';
import { LoadInput, LoadResult, TimeSeriesEnv, TimeSeriesResponse } from '../../src/timeseries/contract';
import { timeSeriesRequestEvent } from '../../src/timeseries/runtime/request';
import { expectSchema } from '../api/openapi';
import { handlerEnv, ingester, LocalAws, loadHandler, restoreEnv, startLocalAws } from '../local-aws';
import { ONS_DATA } from '../ons-data';
import { CapturedOutput, captureOutput } from '../runtime/output';

/**
 * The query contract every time-series engine meets, run by each engine's `query.test.ts`: the bundled
 * query handler with real API Gateway proxy events against the engine's local store, holding real ONS
 * files loaded by the engine's bundled loader. Its JSON answers (raw points, aggregations, filters,
 * pages) equal the ones computed in this file from the points the store keeps (filter, buckets of the
 * Brasília calendar and their labels, aggregation, order, pages: written here with Intl and the IANA zone, not
 * taken from the code under test), on 2023 data and on hourly 2013 data under daylight saving; refusals are 400s
 * (404 for datasets) with the one error shape, no query sent and the value never echoed; the store
 * busy is a 503, anything else a 500 with the reason only in the log.
 */

export type Env = Record<string, string | undefined>;

/** A point as the store keeps it. */
export interface StoredPoint {
  readonly time: number;
  readonly dimensions: Record<string, string>;
  readonly measures: Record<string, number>;
}

/** What a request asks of the stored points, in the store's terms. */
export interface RowRequest {
  readonly measure: string;
  readonly from: number;
  readonly to: number;
  /** Identity dimension values asked for. */
  readonly filters: ReadonlyArray<readonly [string, string]>;
  /** The dimensions of each row, in order. */
  readonly dimensions: readonly string[];
  /** The bucket start of an instant; undefined for raw points. */
  readonly bucket?: (time: number) => number;
  readonly aggregation?: 'avg' | 'sum' | 'min' | 'max';
}

export interface Row {
  readonly time: number;
  readonly dims: Array<string | null>;
  readonly value: number;
}

/** The rows a request selects: filtered, bucketed and aggregated, ordered by time then each dimension (nulls last). */
export function expectedRows(points: readonly StoredPoint[], request: RowRequest): Row[] {
  const selected = points
    .filter((r) => r.time >= request.from && r.time < request.to && r.measures[request.measure] !== undefined)
    .filter((r) => request.filters.every(([d, v]) => r.dimensions[d] === v))
    .sort((a, b) => a.time - b.time);
  const keyOf = (r: StoredPoint) => request.dimensions.map((d) => r.dimensions[d] ?? null);
  let rows: Row[];
  if (!request.bucket) {
    rows = selected.map((r) => ({ time: r.time, dims: keyOf(r), value: r.measures[request.measure] }));
  } else {
    const groups = new Map<string, { time: number; dims: Array<string | null>; values: number[] }>();
    for (const r of selected) {
      const time = request.bucket(r.time);
      const key = JSON.stringify([time, keyOf(r)]);
      const g = groups.get(key) ?? { time, dims: keyOf(r), values: [] };
      g.values.push(r.measures[request.measure]);
      groups.set(key, g);
    }
    const total = (v: number[]) => v.reduce((a, b) => a + b, 0);
    const reduce = {
      avg: (v: number[]) => total(v) / v.length, sum: total, min: (v: number[]) => Math.min(...v), max: (v: number[]) => Math.max(...v),
    };
    rows = [...groups.values()].map((g) => ({ time: g.time, dims: g.dims, value: reduce[request.aggregation ?? 'avg'](g.values) }));
  }
  const order = (x: string | null, y: string | null) => (x === y ? 0 : x === null ? 1 : y === null ? -1 : x < y ? -1 : 1);
  return rows.sort((a, b) => a.time - b.time || a.dims.reduce((c, x, i) => c || order(x, b.dims[i]), 0));
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Sub-day bins: fixed, from the epoch (UTC). */
export const FIXED_BINS: Record<string, number> = { '1m': 60_000, '5m': 300_000, '15m': 900_000, '30m': 1_800_000, '1h': HOUR };

/**
 * The Brasília calendar, written here independently of src/ons/calendar.ts: the IANA zone through Intl, a bucket's
 * first instant found by walking UTC hours, week names by their definitions.
 */
const ZONE = 'America/Sao_Paulo';
const zoneFormat = new Intl.DateTimeFormat('en-US', {
  timeZone: ZONE, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', timeZoneName: 'longOffset',
});
const wallCache = new Map<number, { date: string; hm: string; offset: string }>();
/** The local date (`YYYY-MM-DD`), wall time (`HH:MM`) and offset (`-03:00`) of an instant in America/Sao_Paulo. */
export function brasilia(t: number): { date: string; hm: string; offset: string } {
  let w = wallCache.get(t);
  if (!w) {
    const p = Object.fromEntries(zoneFormat.formatToParts(new Date(t)).map((x) => [x.type, x.value]));
    w = { date: `${p.year}-${p.month}-${p.day}`, hm: `${p.hour}:${p.minute}`, offset: p.timeZoneName === 'GMT' ? '+00:00' : p.timeZoneName.slice(3) };
    wallCache.set(t, w);
  }
  return w;
}
const dateMs = (date: string) => Date.UTC(+date.slice(0, 4), +date.slice(5, 7) - 1, +date.slice(8, 10));
const dateText = (ms: number) => new Date(ms).toISOString().slice(0, 10);
/** The first instant whose local date is `date`: local midnight, or the end of the gap where the clocks skipped it. */
function firstInstantOf(date: string): number {
  // Offsets here are within -01:00 to -05:00 since 1914: start before any of them and walk whole hours.
  for (let t = dateMs(date); ; t += HOUR) if (brasilia(t).date === date) return t;
}
/** The first local date of the calendar bucket of `interval` holding local date `date`. */
function firstDateOf(interval: string, date: string, week: string): string {
  const d = dateMs(date);
  const day = new Date(d).getUTCDay(); // 0 = Sunday
  switch (interval) {
    case '1d': return date;
    case '1mo': return `${date.slice(0, 7)}-01`;
    case '1y': return `${date.slice(0, 4)}-01-01`;
    default: return dateText(d - (week === 'iso' ? (day + 6) % 7 : (day + 1) % 7) * DAY); // Monday, or Saturday
  }
}
/** The calendar name of the bucket of `interval` starting on local date `first`. */
function periodName(interval: string, first: string, week: string): string {
  if (interval === '1d') return first;
  if (interval === '1mo') return first.slice(0, 7);
  if (interval === '1y') return first.slice(0, 4);
  if (week === 'iso') {
    // ISO 8601: week 1 holds the year's first Thursday; a week is its Thursday's.
    const thursday = new Date(dateMs(first) + 3 * DAY);
    return `${thursday.getUTCFullYear()}-W${String(Math.floor((thursday.getTime() - Date.UTC(thursday.getUTCFullYear(), 0, 1)) / (7 * DAY)) + 1).padStart(2, '0')}`;
  }
  // The ONS operative week is named by the month of its Friday, and numbered within it.
  const friday = dateText(dateMs(first) + 6 * DAY);
  return `${friday.slice(0, 7)}-S${Math.ceil(+friday.slice(8, 10) / 7)}`;
}

/** The bucket start of an instant: fixed UTC bins below a day, the Brasília calendar from a day up (`week` for 1w). */
export function bucketOf(interval: string, week = 'ons'): (time: number) => number {
  const size = FIXED_BINS[interval];
  if (size !== undefined) return (t) => t - (((t % size) + size) % size);
  return (t) => firstInstantOf(firstDateOf(interval, brasilia(t).date, week));
}

/** The labels of the bucket starting at `start`: `local` and `period`. */
export function labelsOf(interval: string, start: number, week = 'ons'): { local: string; period: string } {
  const w = brasilia(start);
  if (FIXED_BINS[interval] !== undefined) {
    const local = `${w.date}T${w.hm}${w.offset}`;
    return { local, period: local };
  }
  return { local: w.date, period: periodName(interval, w.date, week) };
}

/** The pages a request gets, without their tokens (each engine's own cursor). */
export type ComparablePage = Omit<TimeSeriesResponse, 'nextToken'> & { more: boolean };

function expectedPages(points: readonly StoredPoint[], dataset: string, query: Record<string, string>, maxPoints: number): ComparablePage[] {
  const definition = CATALOG.find((d) => d.id === dataset)!;
  const measure = definition.measures.find((m) => m.name === (query.measure ?? definition.measures[0].name))!;
  const interval = (query.interval ?? null) as TimeSeriesResponse['interval'];
  const aggregation = (interval ? query.aggregation ?? 'avg' : null) as TimeSeriesResponse['aggregation'];
  const [from, to] = [Date.parse(query.from), Date.parse(query.to)];
  const rows = expectedRows(points, {
    measure: measure.name,
    from,
    to,
    filters: definition.dimensions.filter((d) => query[d] !== undefined).map((d) => [d, query[d]] as const),
    dimensions: definition.dimensions,
    bucket: interval ? bucketOf(interval, query.week) : undefined,
    aggregation: aggregation ?? undefined,
  });
  const header = {
    dataset, measure: measure.name, unit: measure.unit, interval, aggregation, from: new Date(from).toISOString(), to: new Date(to).toISOString(),
  };
  const pages: ComparablePage[] = [];
  for (let i = 0; i === 0 || i < rows.length; i += maxPoints) {
    pages.push({
      ...header,
      points: rows.slice(i, i + maxPoints).map((r) => ({
        time: new Date(r.time).toISOString(),
        ...(interval ? labelsOf(interval, r.time, query.week) : {}),
        dimensions: Object.fromEntries(definition.dimensions.map((d, j) => [d, r.dims[j]])),
        value: r.value,
      })),
      more: i + maxPoints < rows.length,
    });
  }
  return pages;
}

/**
 * Values rounded to 12 significant digits when `rounded` (neither engine promises an order of summation); with
 * a `reference`, a value within 12 significant digits of the reference's point at the same place is taken as
 * that (rounding alone would tell 8613.711416665 - 1e-12 from 8613.711416665 + 1e-12 apart).
 */
function comparable(
  pages: ReadonlyArray<TimeSeriesResponse | ComparablePage>, rounded: boolean, reference?: readonly ComparablePage[],
): ComparablePage[] {
  return pages.map((page, i) => {
    const { nextToken, more, ...rest } = page as TimeSeriesResponse & { more?: boolean };
    const round = (value: number | null, j: number): number | null => {
      if (!rounded || value === null) return value;
      const near = reference?.[i]?.points[j]?.value;
      const agreed = typeof near === 'number' && Math.abs(value - near) <= 5e-12 * Math.abs(near) ? near : value;
      return Number(agreed.toPrecision(12));
    };
    return { ...rest, more: more ?? nextToken !== undefined, points: rest.points.map((p, j) => ({ ...p, value: round(p.value, j) })) };
  });
}

/** A time-series engine behind its local server, as the query contract drives it. */
export interface QueryEngine {
  /** The engine's bundled handlers (`assets/timeseries/<engine>`). */
  readonly assets: string;
  /** The engine's table (measurement) of each dataset it serves. */
  readonly tables: Record<string, string>;
  /** Faults that mean the store is busy: each planned on the next query, answered 503. */
  readonly busy: ReadonlyArray<readonly [name: string, plan: () => void]>;
  /** Starts the engine's local server(s); returns the engine's own environment entries. */
  start(): Promise<Env>;
  stop(): Promise<void>;
  /** Before each test: nothing recorded, no fault planned; what is stored stays. */
  reset(): void;
  /** Requests the store received since the reset. */
  requests(): number;
  /** The points the store keeps of a dataset. */
  stored(dataset: string): Promise<StoredPoint[]>;
  /** Plans a failure the handler does not expect on the next query; returns the fields of its error log line. */
  unexpected(): Record<string, unknown>;
  /**
   * Makes a processed file queryable, for an engine without a loader (the lake reads the processor's Parquet
   * itself); the default runs the engine's bundled loader (`load` handler) and expects every record loaded.
   */
  load?(aws: LocalAws, input: LoadInput): Promise<void>;
}

export interface Answer {
  status: number;
  body: any;
  requestId: string;
  headers?: APIGatewayProxyResult['headers'];
}
export type Call = (dataset: string | undefined, query: Record<string, string> | null, multi?: Record<string, string[]>) => Promise<Answer>;

/** What an engine file uses in its own tests (set before they run). */
export interface QueryContext {
  aws: LocalAws;
  output: CapturedOutput;
  /** The engine's query handler, pages of MAX_POINTS. */
  query: Call;
  /** A query handler container with this environment, created and called once right away (it reads the environment then). */
  queryHandler(overrides?: Env, assets?: string): Promise<Call>;
}

export const DATABASE = 'ons_test';
export const MAX_POINTS = 500;
/** Hourly and daily series by subsystem, and a dashboard export without identity dimensions. */
const FILES = ['CURVA_CARGA_2023.csv', 'CARGA_ENERGIA_2013.csv', 'Temporal Geração de Energia.csv'];

/**
 * Hourly data under Brazilian daylight saving (which ended in 2019), for the calendar cases: no real hourly ONS file
 * of those years is at hand, so CURVA_CARGA_2023.csv's rows are dated ten years earlier, as bench/inputs.ts shifts
 * it; the local hour the clocks skipped in 2013 (20 October, 00:00) does not exist and is left out, as in ONS files
 * of those years. The hour repeated when DST ended (16 February, 23:00) is in the file once.
 */
export function curvaCarga2013(): Buffer {
  const lines = readFileSync(join(ONS_DATA, 'CURVA_CARGA_2023.csv'), 'utf8').split('\n').filter((l) => l.length > 0);
  const column = lines[0].split(';').indexOf('din_instante');
  const exists = (wall: string) => {
    const at = Date.UTC(+wall.slice(0, 4), +wall.slice(5, 7) - 1, +wall.slice(8, 10), +wall.slice(11, 13), +wall.slice(14, 16));
    return [2, 3].some((h) => { const w = brasilia(at + h * HOUR); return `${w.date} ${w.hm}` === wall.slice(0, 16); });
  };
  const body = lines.slice(1).map((l) => l.split(';')).map((cells) => {
    cells[column] = `2013${cells[column].slice(4)}`;
    return cells;
  }).filter((cells) => exists(cells[column]));
  return Buffer.from(`${[lines[0], ...body.map((c) => c.join(';'))].join('\n')}\n`);
}
export const RANGE = { from: '2023-01-01T00:00:00Z', to: '2023-02-01T00:00:00Z' };

let requestCount = 0;

/** The API's GET /timeseries/{dataset} event, also without a dataset, without parameters or with repeated ones. */
export function event(dataset: string | undefined, query: Record<string, string> | null, multi?: Record<string, string[]>): APIGatewayProxyEvent {
  const e = timeSeriesRequestEvent(dataset ?? '', query ?? {}, `req-${++requestCount}`);
  return {
    ...e,
    pathParameters: dataset === undefined ? null : e.pathParameters,
    queryStringParameters: query,
    multiValueQueryStringParameters: multi ?? (query ? e.multiValueQueryStringParameters : null),
  };
}

export function describeQueryContract(engine: QueryEngine): QueryContext {
  let scratch: string;
  let engineEnv: Env;
  let smallPages: Call;
  const ctx = {} as QueryContext;

  const env = (overrides: Env = {}): Env => handlerEnv(ctx.aws, {
    TMPDIR: scratch,
    [TimeSeriesEnv.DATABASE]: DATABASE,
    [TimeSeriesEnv.TABLES]: JSON.stringify(engine.tables),
    [TimeSeriesEnv.MAX_POINTS]: String(MAX_POINTS),
    [TimeSeriesEnv.WRITE_BASE_DELAY_MS]: '5',
    ...engineEnv,
    ...overrides,
  });

  ctx.queryHandler = async (overrides = {}, assets = engine.assets) => {
    const handler = loadHandler<APIGatewayProxyEvent, APIGatewayProxyResult>('query', env(overrides), assets);
    const call: Call = async (dataset, query, multi) => {
      const e = event(dataset, query, multi);
      const response = await handler(e);
      const body = JSON.parse(response.body);
      // Every answer, success or error, is what the shipped OpenAPI document promises.
      expectSchema(response.statusCode === 200 ? 'TimeSeriesResponse' : 'Error', body);
      return { status: response.statusCode, body, requestId: e.requestContext.requestId, headers: response.headers };
    };
    expect((await call('not_a_dataset', {})).status).toBe(404);
    return call;
  };

  beforeAll(async () => {
    ctx.output = captureOutput();
    scratch = mkdtempSync(join(tmpdir(), 'ons-query-test-'));
    ctx.aws = await startLocalAws();
    engineEnv = await engine.start();
    const ingest = ingester(ctx.aws, env());
    const loader = engine.load ? undefined : loadHandler<LoadInput, LoadResult>('load', env(), engine.assets);
    const load = engine.load?.bind(engine, ctx.aws) ?? (async (input: LoadInput) => {
      expect(await loader!(input)).toMatchObject({ status: 'loaded', rejected: 0 });
    });
    for (const file of FILES) await load(await ingest(file));
    await load(await ingest('CURVA_CARGA_2013.csv', curvaCarga2013()));
    ctx.query = await ctx.queryHandler();
    smallPages = await ctx.queryHandler({ [TimeSeriesEnv.MAX_POINTS]: '7' });
  }, 300_000);

  afterAll(async () => {
    ctx.output?.restore();
    restoreEnv();
    await engine.stop();
    await ctx.aws?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  beforeEach(() => {
    engine.reset();
    ctx.output.log.mockClear();
    ctx.output.error.mockClear();
  });

  /** Every page of a request, following nextToken. */
  async function allPages(call: Call, dataset: string, query: Record<string, string>): Promise<TimeSeriesResponse[]> {
    const pages: TimeSeriesResponse[] = [];
    let token: string | undefined;
    do {
      const { status, body } = await call(dataset, token ? { ...query, nextToken: token } : query);
      expect(status).toBe(200);
      pages.push(body);
      token = body.nextToken;
    } while (token);
    return pages;
  }

  describe('answers on real data: the points the store keeps, filtered, bucketed, aggregated, ordered and paged', () => {
    const year = { from: '2023-01-01T00:00:00Z', to: '2024-02-01T00:00:00Z' };
    const cases: Array<[string, string, Record<string, string>]> = [
      ['raw points, a whole year (71 pages)', 'curva_carga', year],
      ['raw points of one subsystem, January, offset instants', 'curva_carga', { from: '2023-01-01T00:00-03:00', to: '2023-02-01T00:00-03:00', id_subsistema: 'SE' }],
      ['30-minute sums', 'curva_carga', { from: '2023-03-01', to: '2023-03-03', interval: '30m', aggregation: 'sum' }],
      ['hourly average, from not on the hour', 'curva_carga', { from: '2023-05-01T00:07:00Z', to: '2023-05-03T00:00:00Z', interval: '1h' }],
      ...(['avg', 'sum', 'min', 'max'] as const).flatMap((aggregation): Array<[string, string, Record<string, string>]> => [
        [`daily ${aggregation}`, 'curva_carga', { ...year, interval: '1d', aggregation }],
        [`weekly ${aggregation}`, 'curva_carga', { ...year, interval: '1w', aggregation }],
        [`monthly ${aggregation}`, 'curva_carga', { ...year, interval: '1mo', aggregation }],
        [`yearly ${aggregation}`, 'curva_carga', { ...year, interval: '1y', aggregation }],
      ]),
      ['monthly sum of daily data from mid-March, one subsystem', 'carga_energia', { from: '2013-03-15T10:00:00-03:00', to: '2014-01-01', interval: '1mo', aggregation: 'sum', id_subsistema: 'S' }],
      ['yearly max of daily data', 'carga_energia', { from: '2000-01-01', to: '2030-01-01', interval: '1y', aggregation: 'max' }],
      ['no identity dimensions: raw points', 'historico_geracao_energia', { from: '2000-01-01', to: '2030-01-01' }],
      ['no identity dimensions: monthly average', 'historico_geracao_energia', { from: '2000-01-01', to: '2030-01-01', interval: '1mo' }],
      ['no identity dimensions: weekly maximum', 'historico_geracao_energia', { from: '2000-01-01', to: '2030-01-01', interval: '1w', aggregation: 'max' }],
      // The Brasília calendar under daylight saving (2013: DST ended on 17 February at 00:00, began on 20 October at 00:00).
      ['a month across the February DST end: hourly sums', 'curva_carga', { from: '2013-01-01T00:00-02:00', to: '2013-04-01T00:00-03:00', interval: '1mo', aggregation: 'sum' }],
      ['a month across the February DST end: daily data', 'carga_energia', { from: '2013-01-01', to: '2013-04-01', interval: '1mo' }],
      ['days around the DST start (20 October, 23 h)', 'curva_carga', { from: '2013-10-18', to: '2013-10-23', interval: '1d', aggregation: 'sum' }],
      ['days around the DST end (Saturday 16 February, 25 h)', 'curva_carga', { from: '2013-02-14', to: '2013-02-19', interval: '1d', aggregation: 'max' }],
      ['hours across the DST end: the repeated local hour', 'curva_carga', { from: '2013-02-16T20:00-02:00', to: '2013-02-17T03:00-03:00', interval: '1h', aggregation: 'sum' }],
      ['ISO weeks across the DST end', 'curva_carga', { from: '2013-02-01', to: '2013-03-05', interval: '1w', week: 'iso', aggregation: 'sum' }],
      ['ONS weeks across the DST end', 'curva_carga', { from: '2013-02-01', to: '2013-03-05', interval: '1w', week: 'ons', aggregation: 'sum' }],
      ['ONS weeks (the default rule) across the DST start', 'curva_carga', { from: '2013-10-01', to: '2013-11-01', interval: '1w', aggregation: 'avg' }],
      ['ISO weeks of a year of daily data', 'carga_energia', { from: '2012-12-31', to: '2014-01-01', interval: '1w', week: 'iso', aggregation: 'min' }],
      ['a year of hourly data under DST', 'curva_carga', { from: '2013-01-01T00:00-02:00', to: '2014-01-01T00:00-02:00', interval: '1y', aggregation: 'avg' }],
      ['a subsystem with no data', 'curva_carga', { ...year, id_subsistema: 'XX', interval: '1d' }],
      ['a measure never loaded', 'intercambio_nacional', { ...year, measure: 'val_intercambiomwmed' }],
    ];

    test.each(cases)('%s', async (name, dataset, query) => {
      const [got, expected] = [await allPages(ctx.query, dataset, query), expectedPages(await engine.stored(dataset), dataset, query, MAX_POINTS)];
      // Not trivially so: every case but the two without data has points.
      expect(expected.flatMap((p) => p.points).length > 0).toBe(!/no data|never loaded/.test(name));
      // Raw values are the stored doubles: exactly equal. Aggregates are compared to 12 significant digits.
      const rounded = query.interval !== undefined;
      expect(comparable(got, rounded, expected)).toEqual(comparable(expected, rounded));
      if (!rounded) expect(got.flatMap((p) => p.points)).toEqual(expected.flatMap((p) => p.points));
    });

    test.each<[string, string, Record<string, string>]>([
      ['raw, pages of 7', 'curva_carga', { from: '2023-06-01', to: '2023-06-03' }],
      ['hourly, pages of 7', 'curva_carga', { from: '2023-06-01', to: '2023-06-03', interval: '1h', aggregation: 'max' }],
      ['monthly, pages of 7 (several windows of days)', 'curva_carga', { from: '2023-01-01', to: '2024-02-01', interval: '1mo', aggregation: 'avg' }],
      ['no identity dimensions, monthly sums, pages of 7', 'historico_geracao_energia', { from: '2000-01-01', to: '2030-01-01', interval: '1mo', aggregation: 'sum' }],
      ['yearly, pages of 7', 'curva_carga', { from: '2000-01-01', to: '2030-01-01', interval: '1y', aggregation: 'sum' }],
    ])('%s', async (_name, dataset, query) => {
      const [got, expected] = [await allPages(smallPages, dataset, query), expectedPages(await engine.stored(dataset), dataset, query, 7)];
      expect(got.length).toBeGreaterThan(1);
      expect(comparable(got, query.interval !== undefined, expected)).toEqual(comparable(expected, query.interval !== undefined));
    });
  });

  describe('the Brasília calendar on days daylight saving changed: figures from the raw points', () => {
    const SE = { id_subsistema: 'SE' };
    /** The raw points of SE in [start, end): their number and sum. */
    async function raw(start: string, end: string): Promise<{ count: number; sum: number }> {
      const points = (await allPages(ctx.query, 'curva_carga', { from: start, to: end, ...SE })).flatMap((p) => p.points);
      return { count: points.length, sum: points.reduce((a, p) => a + p.value!, 0) };
    }
    const hours = (a: string, b: string) => (Date.parse(b) - Date.parse(a)) / HOUR;
    const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-9 * Math.abs(b));

    test.each<[string, Record<string, string>, string, Array<{ time: string; local: string; period: string }>, number, number]>([
      ['the DST start: 20 October 2013 has 23 hours and starts at 01:00 (03:00Z)', { from: '2013-10-19T00:00-03:00', to: '2013-10-22T00:00-02:00', interval: '1d', aggregation: 'sum' }, '2013-10-20',
        [{ time: '2013-10-19T03:00:00.000Z', local: '2013-10-19', period: '2013-10-19' }, { time: '2013-10-20T03:00:00.000Z', local: '2013-10-20', period: '2013-10-20' },
          { time: '2013-10-21T02:00:00.000Z', local: '2013-10-21', period: '2013-10-21' }], 23, 23],
      ['the DST end: Saturday 16 February 2013 has 25 hours (the repeated 23:00 is in the file once)', { from: '2013-02-15T00:00-02:00', to: '2013-02-18T00:00-03:00', interval: '1d', aggregation: 'sum' }, '2013-02-16',
        [{ time: '2013-02-15T02:00:00.000Z', local: '2013-02-15', period: '2013-02-15' }, { time: '2013-02-16T02:00:00.000Z', local: '2013-02-16', period: '2013-02-16' },
          { time: '2013-02-17T03:00:00.000Z', local: '2013-02-17', period: '2013-02-17' }], 25, 24],
      ['February 2013: 28 days and 1 hour', { from: '2013-01-01T00:00-02:00', to: '2013-04-01T00:00-03:00', interval: '1mo', aggregation: 'sum' }, '2013-02',
        [{ time: '2013-01-01T02:00:00.000Z', local: '2013-01-01', period: '2013-01' }, { time: '2013-02-01T02:00:00.000Z', local: '2013-02-01', period: '2013-02' },
          { time: '2013-03-01T03:00:00.000Z', local: '2013-03-01', period: '2013-03' }], 28 * 24 + 1, 28 * 24],
      ['the ONS week of the DST end: Saturday 16 to Friday 22 February, 169 hours', { from: '2013-02-09T00:00-02:00', to: '2013-03-02T00:00-03:00', interval: '1w', week: 'ons', aggregation: 'sum' }, '2013-02-S4',
        [{ time: '2013-02-09T02:00:00.000Z', local: '2013-02-09', period: '2013-02-S3' }, { time: '2013-02-16T02:00:00.000Z', local: '2013-02-16', period: '2013-02-S4' },
          { time: '2013-02-23T03:00:00.000Z', local: '2013-02-23', period: '2013-03-S1' }], 169, 168],
      ['the ISO week of the DST end: Monday 11 to Sunday 17 February, 169 hours', { from: '2013-02-04T00:00-02:00', to: '2013-02-25T00:00-03:00', interval: '1w', week: 'iso', aggregation: 'sum' }, '2013-W07',
        [{ time: '2013-02-04T02:00:00.000Z', local: '2013-02-04', period: '2013-W06' }, { time: '2013-02-11T02:00:00.000Z', local: '2013-02-11', period: '2013-W07' },
          { time: '2013-02-18T03:00:00.000Z', local: '2013-02-18', period: '2013-W08' }], 169, 168],
    ])('%s', async (_name, query, period, buckets, length, count) => {
      const { status, body } = await ctx.query('curva_carga', { ...query, ...SE });
      expect(status).toBe(200);
      expect(body.points.map(({ time, local, period: p }: any) => ({ time, local, period: p }))).toEqual(buckets);
      const i = buckets.findIndex((b) => b.period === period);
      expect(hours(buckets[i].time, buckets[i + 1].time)).toBe(length);
      const { count: n, sum } = await raw(buckets[i].time, buckets[i + 1].time);
      expect(n).toBe(count);
      close(body.points[i].value, sum);
    });
  });

  describe('responses', () => {
    test('a page token is bound to its query: other parameters are refused before any query', async () => {
      const first = await ctx.query('curva_carga', RANGE);
      expect(first.headers).toMatchObject({ 'content-type': 'application/json' });
      expect(first.body.nextToken).toEqual(expect.stringMatching(/^[A-Za-z0-9_-]+$/));
      const sent = engine.requests();
      const other = await ctx.query('curva_carga', { ...RANGE, interval: '1d', nextToken: first.body.nextToken });
      expect(other).toMatchObject({ status: 400, body: { error: { code: 'InvalidNextToken' } } });
      const filtered = await ctx.query('curva_carga', { ...RANGE, id_subsistema: 'N', nextToken: first.body.nextToken });
      expect(filtered).toMatchObject({ status: 400, body: { error: { code: 'InvalidNextToken' } } });
      expect(engine.requests()).toBe(sent);
    });

    test.each(engine.busy.map(([name, plan]) => [name, plan] as const))('the store busy (%s): 503', async (_name, plan) => {
      plan();
      const { status, body, requestId } = await ctx.query('curva_carga', RANGE);
      expect({ status, body }).toEqual({ status: 503, body: { error: { code: 'ServiceUnavailable', message: 'the time-series store is busy; retry later' }, requestId } });
    });

    test('an unexpected error: 500 with a generic message, the reason only in the log', async () => {
      const logged = engine.unexpected();
      const { status, body, requestId } = await ctx.query('curva_carga', RANGE);
      expect({ status, body }).toEqual({ status: 500, body: { error: { code: 'InternalError', message: 'the request could not be completed' }, requestId } });
      const lines = ctx.output.error.mock.calls.map((c) => JSON.parse(String(c[0])));
      expect(lines).toEqual([expect.objectContaining({ level: 'ERROR', requestId, ...logged })]);
    });

    test('every request is logged as one JSON line with the request id', async () => {
      const { requestId } = await ctx.query('curva_carga', RANGE);
      expect(ctx.output.log.mock.calls.map((c) => JSON.parse(String(c[0])))).toEqual([expect.objectContaining({ level: 'INFO', requestId, dataset: 'curva_carga', points: MAX_POINTS })]);
    });
  });

  describe('refusals: 400 (404 for datasets) with the error shape, nothing sent to the store, the value never echoed', () => {
    const token = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const attempts: Array<[string, string | undefined, Record<string, string>, string, number?]> = [
      // dataset (path parameter)
      ['dataset: quote and statement', "curva_carga'; DROP TABLE x; --", RANGE, 'InvalidParameter'],
      ['dataset: quote and InfluxQL statement', "curva_carga'; DROP MEASUREMENT x; --", RANGE, 'InvalidParameter'],
      ['dataset: comment', 'curva_carga/*x*/', RANGE, 'InvalidParameter'],
      ['dataset: regex', '/.*/', RANGE, 'InvalidParameter'],
      ['dataset: upper case', 'CURVA_CARGA', RANGE, 'InvalidParameter'],
      ['dataset: full-width letters', 'ｃｕｒｖａ_ｃａｒｇａ', RANGE, 'InvalidParameter'],
      ['dataset: path traversal', '../curva_carga', RANGE, 'InvalidParameter'],
      ['dataset: overlong', 'a'.repeat(65), RANGE, 'InvalidParameter'],
      ['dataset: missing', undefined, RANGE, 'InvalidParameter'],
      ['dataset: unknown', 'not_a_dataset', RANGE, 'DatasetNotFound', 404],
      ['dataset: in the catalog, no table', 'cmo_semanal', RANGE, 'DatasetNotFound', 404],
      // measure
      ['measure: identifier break-out', 'curva_carga', { ...RANGE, measure: 'val_cargaenergiahomwmed" FROM x --' }, 'InvalidParameter'],
      ['measure: identifier break-out to a regex', 'curva_carga', { ...RANGE, measure: 'val_cargaenergiahomwmed" FROM /.*/ --' }, 'InvalidParameter'],
      ['measure: of another dataset', 'curva_carga', { ...RANGE, measure: 'val_carga' }, 'InvalidParameter'],
      ['measure: star', 'curva_carga', { ...RANGE, measure: '*' }, 'InvalidParameter'],
      ['measure: upper case', 'curva_carga', { ...RANGE, measure: 'VAL_CARGAENERGIAHOMWMED' }, 'InvalidParameter'],
      ['measure: missing where several exist', 'balanco_energia_subsistema', RANGE, 'InvalidParameter'],
      ['measure: empty', 'curva_carga', { ...RANGE, measure: '' }, 'InvalidParameter'],
      // dimension values
      ['dimension: quote', 'curva_carga', { ...RANGE, id_subsistema: "SE' OR '1'='1" }, 'InvalidParameter'],
      ['dimension: quote and a time condition', 'curva_carga', { ...RANGE, id_subsistema: "SE' OR time > 0 OR 'a'='a" }, 'InvalidParameter'],
      ['dimension: semicolon', 'curva_carga', { ...RANGE, id_subsistema: 'SE; DROP TABLE x' }, 'InvalidParameter'],
      ['dimension: statement separator', 'curva_carga', { ...RANGE, id_subsistema: 'SE; DROP DATABASE ons_test' }, 'InvalidParameter'],
      ['dimension: regex', 'curva_carga', { ...RANGE, id_subsistema: '/.*/' }, 'InvalidParameter'],
      ['dimension: line comment', 'curva_carga', { ...RANGE, id_subsistema: 'SE--' }, 'InvalidParameter'],
      ['dimension: block comment', 'curva_carga', { ...RANGE, id_subsistema: 'SE/*x*/' }, 'InvalidParameter'],
      ['dimension: backslash', 'curva_carga', { ...RANGE, id_subsistema: 'SE\\' }, 'InvalidParameter'],
      ['dimension: NUL', 'curva_carga', { ...RANGE, id_subsistema: 'SE\u0000' }, 'InvalidParameter'],
      ['dimension: newline', 'curva_carga', { ...RANGE, id_subsistema: 'SE\nOR' }, 'InvalidParameter'],
      ['dimension: line separator', 'curva_carga', { ...RANGE, id_subsistema: 'SE\u2028' }, 'InvalidParameter'],
      ['dimension: zero-width space', 'curva_carga', { ...RANGE, id_subsistema: 'S\u200BE' }, 'InvalidParameter'],
      ['dimension: full-width apostrophe', 'curva_carga', { ...RANGE, id_subsistema: 'SE\uFF07' }, 'InvalidParameter'],
      ['dimension: modifier apostrophe', 'curva_carga', { ...RANGE, id_subsistema: 'SE\u02BC' }, 'InvalidParameter'],
      ['dimension: combining mark (not NFC)', 'curva_carga', { ...RANGE, id_subsistema: 'Sa\u0303o' }, 'InvalidParameter'],
      ['dimension: right-to-left override', 'curva_carga', { ...RANGE, id_subsistema: 'SE\u202E' }, 'InvalidParameter'],
      ['dimension: empty', 'curva_carga', { ...RANGE, id_subsistema: '' }, 'InvalidParameter'],
      ['dimension: overlong', 'curva_carga', { ...RANGE, id_subsistema: 'S'.repeat(101) }, 'InvalidParameter'],
      ['dimension: a label, not an identity dimension', 'curva_carga', { ...RANGE, nom_subsistema: 'SUDESTE' }, 'UnknownParameter'],
      ['parameter name: injection', 'curva_carga', { ...RANGE, "id_subsistema' OR 1=1 --": 'SE' }, 'UnknownParameter'],
      ['parameter name: regex injection', 'curva_carga', { ...RANGE, 'id_subsistema" =~ /.*/ --': 'SE' }, 'UnknownParameter'],
      ['parameter name: prototype', 'curva_carga', { ...RANGE, ['__proto__']: 'x' }, 'UnknownParameter'],
      ['parameter name: unknown', 'curva_carga', { ...RANGE, limit: '10' }, 'UnknownParameter'],
      // instants
      ['from: missing', 'curva_carga', { to: RANGE.to }, 'InvalidParameter'],
      ['to: missing', 'curva_carga', { from: RANGE.from }, 'InvalidParameter'],
      ['from: quote', 'curva_carga', { ...RANGE, from: "2023-01-01T00:00:00Z'); DROP TABLE x; --" }, 'InvalidParameter'],
      ['from: a function', 'curva_carga', { ...RANGE, from: 'now()' }, 'InvalidParameter'],
      ['from: now() - 1h', 'curva_carga', { ...RANGE, from: 'now() - 1h' }, 'InvalidParameter'],
      ['from: epoch ms', 'curva_carga', { ...RANGE, from: '1672531200000' }, 'InvalidParameter'],
      ['from: no zone', 'curva_carga', { ...RANGE, from: '2023-01-15T10:00:00' }, 'InvalidParameter'],
      ['from: month 13', 'curva_carga', { ...RANGE, from: '2023-13-01' }, 'InvalidParameter'],
      ['from: 30 February', 'curva_carga', { ...RANGE, from: '2023-02-30' }, 'InvalidParameter'],
      ['from: hour 25', 'curva_carga', { ...RANGE, from: '2023-01-01T25:00Z' }, 'InvalidParameter'],
      ['from: offset +99:00', 'curva_carga', { ...RANGE, from: '2023-01-01T00:00:00+99:00' }, 'InvalidParameter'],
      ['from: nanoseconds', 'curva_carga', { ...RANGE, from: '2023-01-01T00:00:00.000000001Z' }, 'InvalidParameter'],
      ['from: negative year', 'curva_carga', { ...RANGE, from: '-2023-01-01' }, 'InvalidParameter'],
      ['to: year 9999', 'curva_carga', { ...RANGE, to: '9999-01-01' }, 'InvalidParameter'],
      ['to: full-width digits', 'curva_carga', { ...RANGE, to: '２０２３-02-01' }, 'InvalidParameter'],
      ['to: huge', 'curva_carga', { ...RANGE, to: `2023-02-01${'0'.repeat(100_000)}` }, 'InvalidParameter'],
      ['from after to', 'curva_carga', { from: RANGE.to, to: RANGE.from }, 'InvalidParameter'],
      ['from equal to to', 'curva_carga', { from: RANGE.from, to: '2023-01-01T00:00:00.000Z' }, 'InvalidParameter'],
      // interval and aggregation
      ['interval: quote', 'curva_carga', { ...RANGE, interval: "1h'" }, 'InvalidParameter'],
      ['interval: break-out', 'curva_carga', { ...RANGE, interval: '1h), "x' }, 'InvalidParameter'],
      ['interval: not offered', 'curva_carga', { ...RANGE, interval: '2h' }, 'InvalidParameter'],
      ['interval: upper case', 'curva_carga', { ...RANGE, interval: '1H' }, 'InvalidParameter'],
      ['aggregation: quote', 'curva_carga', { ...RANGE, interval: '1h', aggregation: "avg'" }, 'InvalidParameter'],
      ['aggregation: a function call', 'curva_carga', { ...RANGE, interval: '1h', aggregation: 'avg(1)' }, 'InvalidParameter'],
      ['aggregation: not offered', 'curva_carga', { ...RANGE, interval: '1h', aggregation: 'count' }, 'InvalidParameter'],
      ['aggregation: another function', 'curva_carga', { ...RANGE, interval: '1h', aggregation: 'percentile' }, 'InvalidParameter'],
      ['aggregation: without interval', 'curva_carga', { ...RANGE, aggregation: 'sum' }, 'InvalidParameter'],
      ['week: quote', 'curva_carga', { ...RANGE, interval: '1w', week: "iso' OR '1'='1" }, 'InvalidParameter'],
      ['week: not offered', 'curva_carga', { ...RANGE, interval: '1w', week: 'sunday' }, 'InvalidParameter'],
      ['week: upper case', 'curva_carga', { ...RANGE, interval: '1w', week: 'ONS' }, 'InvalidParameter'],
      ['week: with another interval', 'curva_carga', { ...RANGE, interval: '1d', week: 'iso' }, 'InvalidParameter'],
      // page tokens
      ['nextToken: not base64url', 'curva_carga', { ...RANGE, nextToken: "abc'; --" }, 'InvalidNextToken'],
      ['nextToken: not JSON', 'curva_carga', { ...RANGE, nextToken: Buffer.from('hello').toString('base64url') }, 'InvalidNextToken'],
      ['nextToken: forged digest', 'curva_carga', { ...RANGE, nextToken: token({ v: 1, q: '0123456789abcdef', t: 'x' }) }, 'InvalidNextToken'],
      ['nextToken: forged cursor', 'curva_carga', { ...RANGE, nextToken: token({ v: 1, q: '0123456789abcdef', t: '{"t":0,"k":[null]}' }) }, 'InvalidNextToken'],
      ['nextToken: extra field', 'curva_carga', { ...RANGE, nextToken: token({ v: 1, q: '0123456789abcdef', t: 'x', sql: 'DROP' }) }, 'InvalidNextToken'],
      ['nextToken: overlong', 'curva_carga', { ...RANGE, nextToken: 'A'.repeat(5000) }, 'InvalidNextToken'],
    ];

    test.each(attempts)('%s', async (_name, dataset, query, code, status = 400) => {
      const { status: got, body, requestId } = await ctx.query(dataset, query);
      expect(got).toBe(status);
      expect(body).toEqual({ error: { code, message: expect.any(String) }, requestId } satisfies ApiErrorBody);
      expect(engine.requests()).toBe(0);
      // No user text in the message: only names of parameters and catalog identifiers (which may match an identifier-like value).
      const attempted = [dataset, ...Object.keys(query).filter((k) => !/^[A-Za-z0-9_]*$/.test(k)),
        ...Object.values(query).filter((v) => !(Object.values(RANGE) as string[]).includes(v))];
      for (const value of attempted) {
        if (value && !/^[a-z0-9_]*$/.test(value)) expect(body.error.message).not.toContain(value);
      }
    });

    test('a parameter given twice', async () => {
      const { status, body } = await ctx.query('curva_carga', { ...RANGE, id_subsistema: 'SE' }, { ...Object.fromEntries(Object.entries(RANGE).map(([k, v]) => [k, [v]])), id_subsistema: ['SE', "N' OR '1'='1"] });
      expect(status).toBe(400);
      expect(body.error.code).toBe('InvalidParameter');
      expect(engine.requests()).toBe(0);
    });
  });

  return ctx;
}
