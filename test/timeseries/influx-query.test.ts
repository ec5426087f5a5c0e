import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { DATABASE, InfluxProxy, ingester, LocalInfluxDb, RETENTION_POLICY } from './local-influxdb';
import { LocalSecretsManager } from '../local-secrets-manager';
import { LocalTimestream, StoredRecord } from './local-timestream';
import { InfluxDbEnv, LoadInput, LoadResult, TimeSeriesEnv, TimeSeriesResponse } from '../../src/timeseries/contract';
import { expectSchema } from '../api/openapi';
import { handlerEnv, LocalAws, loadHandler, restoreEnv, startLocalAws } from '../ingestion/local-aws';
import { CapturedOutput, captureOutput } from '../operations/output';

/**
 * The bundled InfluxDB query handler against a real InfluxDB holding real ONS files (loaded by the
 * bundled InfluxDB loader), and the key check: the Timestream and InfluxDB handlers give the same
 * JSON for the same requests on the same data. The same files go through the bundled Timestream
 * loader into the local Timestream, whose Query answers are computed in this file from the records it
 * stored (filter, bins, aggregation, order, pages: written here, not taken from the code under test).
 */

type Load = (event: LoadInput) => Promise<LoadResult>;

const ROOT = join(__dirname, '..', '..', 'assets', 'timeseries');
const TABLES = {
  curva_carga: 'curva_carga', carga_energia: 'carga_energia', intercambio_nacional: 'intercambio_nacional', historico_geracao_energia: 'historico_geracao_energia',
};
// Hourly and daily series by subsystem, and a dashboard export without identity dimensions.
const FILES = ['CURVA_CARGA_2023.csv', 'CARGA_ENERGIA_2013.csv', 'Temporal Geração de Energia.csv'];
const READ_TOKEN = 'influx-read-token-Qw3rTy-do-not-log';
const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ons-influx-read-XyZ123';
const MAX_POINTS = 500;

let aws: LocalAws;
let influx: LocalInfluxDb;
let proxy: InfluxProxy;
let secrets: LocalSecretsManager;
let ts: LocalTimestream;
let urls: { proxy: string; secrets: string; timestream: string };
let scratch: string;
let output: CapturedOutput;
let requestCount = 0;

function env(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return handlerEnv(aws, {
    TMPDIR: scratch,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: urls.secrets,
    [TimeSeriesEnv.DATABASE]: DATABASE,
    [TimeSeriesEnv.TABLES]: JSON.stringify(TABLES),
    [TimeSeriesEnv.MAX_POINTS]: String(MAX_POINTS),
    [TimeSeriesEnv.WRITE_ENDPOINT]: urls.timestream,
    [TimeSeriesEnv.QUERY_ENDPOINT]: urls.timestream,
    [TimeSeriesEnv.WRITE_BASE_DELAY_MS]: '5',
    [InfluxDbEnv.URL]: urls.proxy,
    [InfluxDbEnv.RETENTION_POLICY]: RETENTION_POLICY,
    [InfluxDbEnv.TOKEN_SECRET_ARN]: SECRET_ARN,
    ...overrides,
  });
}

/** An API Gateway (REST, proxy integration) event for GET /timeseries/{dataset}. */
function event(dataset: string, query: Record<string, string>): APIGatewayProxyEvent {
  const requestId = `req-${++requestCount}`;
  return {
    resource: '/timeseries/{dataset}',
    path: `/timeseries/${dataset}`,
    httpMethod: 'GET',
    headers: {},
    multiValueHeaders: {},
    pathParameters: { dataset },
    queryStringParameters: query,
    multiValueQueryStringParameters: Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]])),
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: { requestId, stage: 'dev', httpMethod: 'GET', resourcePath: '/timeseries/{dataset}' } as APIGatewayProxyEvent['requestContext'],
  };
}

interface Answer {
  status: number;
  body: any;
  requestId: string;
}

/** A handler container with this environment, created and called once right away (it reads the environment then). */
async function queryHandler(engine: 'influxdb' | 'timestream', overrides: Record<string, string | undefined> = {}) {
  const handler = loadHandler<APIGatewayProxyEvent, APIGatewayProxyResult>('query', env(overrides), join(ROOT, engine));
  const call = async (dataset: string, query: Record<string, string>): Promise<Answer> => {
    const e = event(dataset, query);
    const response = await handler(e);
    const body = JSON.parse(response.body);
    // Every answer, success or error, is what the shipped OpenAPI document promises.
    expectSchema(response.statusCode === 200 ? 'TimeSeriesResponse' : 'Error', body);
    return { status: response.statusCode, body, requestId: e.requestContext.requestId };
  };
  expect((await call('not_a_dataset', {})).status).toBe(404);
  return call;
}

let influxQuery: Awaited<ReturnType<typeof queryHandler>>;
let timestreamQuery: Awaited<ReturnType<typeof queryHandler>>;
let influxSmallPages: Awaited<ReturnType<typeof queryHandler>>;
let timestreamSmallPages: Awaited<ReturnType<typeof queryHandler>>;

beforeAll(async () => {
  output = captureOutput();
  scratch = mkdtempSync(join(tmpdir(), 'ons-influx-query-'));
  aws = await startLocalAws();
  influx = new LocalInfluxDb();
  await influx.start();
  proxy = new InfluxProxy(() => influx.url);
  secrets = new LocalSecretsManager();
  secrets.secrets.set(SECRET_ARN, READ_TOKEN);
  ts = new LocalTimestream();
  urls = { proxy: await proxy.start(), secrets: await secrets.start(), timestream: await ts.start() };
  ts.onQuery = answerFromStore;
  const ingest = ingester(aws, env());
  const loadInflux = loadHandler<LoadInput, LoadResult>('load', env(), join(ROOT, 'influxdb')) as Load;
  for (const file of FILES) {
    const input = await ingest(file);
    expect(await loadInflux(input)).toMatchObject({ status: 'loaded', rejected: 0 });
  }
  const loadTimestream = loadHandler<LoadInput, LoadResult>('load', env(), join(ROOT, 'timestream')) as Load;
  for (const file of FILES) {
    expect(await loadTimestream(await ingest(file))).toMatchObject({ status: 'loaded', rejected: 0 });
  }
  influxQuery = await queryHandler('influxdb');
  timestreamQuery = await queryHandler('timestream');
  influxSmallPages = await queryHandler('influxdb', { [TimeSeriesEnv.MAX_POINTS]: '7' });
  timestreamSmallPages = await queryHandler('timestream', { [TimeSeriesEnv.MAX_POINTS]: '7' });
}, 300_000);

afterAll(async () => {
  output.restore();
  restoreEnv();
  await proxy?.close();
  await secrets?.close();
  await ts?.close();
  await influx?.stop();
  await aws?.close();
  rmSync(scratch, { recursive: true, force: true });
  const everything = [...output.log.mock.calls.flat(), ...output.error.mock.calls.flat(), ...output.other].join('\n');
  expect(everything).not.toContain(READ_TOKEN);
});

beforeEach(() => {
  proxy.reset();
});

// ---- Timestream's answers, computed from the records the Timestream loader wrote ----

const HOUR = 3_600_000;
const FIXED: Record<string, number> = { '1m': 60_000, '5m': 300_000, '15m': 900_000, '30m': 1_800_000, '1h': HOUR, '1d': 24 * HOUR, '7d': 7 * 24 * HOUR };

/** Timestream's rows for a SQL text the Timestream handler sent, from the stored records; pages by MaxRows. */
function answerFromStore(body: { QueryString: string; MaxRows: number; NextToken?: string }): { body: unknown } {
  const sql = body.QueryString;
  const dataset = /measure_name = '([a-z0-9_]+)'/.exec(sql)![1];
  const [from, to] = [...sql.matchAll(/from_iso8601_timestamp\('([^']+)'\)/g)].map((m) => Date.parse(m[1]));
  const measure = /"([a-z0-9_]+)" IS NOT NULL/.exec(sql)![1];
  const filters = [...sql.matchAll(/AND "([a-z0-9_]+)" = '([^']*)'/g)].map((m) => [m[1], m[2]] as const);
  const dims = (/ORDER BY (?:time|"bucket"), (.*)$/.exec(sql)?.[1].split(', ') ?? []).map((d) => d.replace(/"/g, ''));
  const bin = /bin\(time, (\w+)\)/.exec(sql)?.[1];
  const trunc = /date_trunc\('(month|year)', time\)/.exec(sql)?.[1];
  const aggregation = /(avg|sum|min|max)\("/.exec(sql)?.[1];
  const records = [...ts.store.values()]
    .filter((r: StoredRecord) => r.measureName === dataset && r.time >= from && r.time < to && r.measures[measure] !== undefined)
    .filter((r) => filters.every(([d, v]) => r.dimensions[d] === v))
    .sort((a, b) => a.time - b.time);
  const keyOf = (r: StoredRecord) => dims.map((d) => r.dimensions[d] ?? null);
  let rows: Array<{ time: number; dims: Array<string | null>; value: number }>;
  if (!bin && !trunc) {
    rows = records.map((r) => ({ time: r.time, dims: keyOf(r), value: r.measures[measure] }));
  } else {
    const bucketOf = (t: number) => {
      if (bin) return t - (t % FIXED[bin]);
      const d = new Date(t);
      return trunc === 'month' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) : Date.UTC(d.getUTCFullYear(), 0, 1);
    };
    const groups = new Map<string, { time: number; dims: Array<string | null>; values: number[] }>();
    for (const r of records) {
      const key = JSON.stringify([bucketOf(r.time), keyOf(r)]);
      const g = groups.get(key) ?? { time: bucketOf(r.time), dims: keyOf(r), values: [] };
      g.values.push(r.measures[measure]);
      groups.set(key, g);
    }
    const total = (v: number[]) => v.reduce((a, b) => a + b, 0);
    const reduce = {
      avg: (v: number[]) => total(v) / v.length, sum: total, min: (v: number[]) => Math.min(...v), max: (v: number[]) => Math.max(...v),
    };
    rows = [...groups.values()].map((g) => ({ time: g.time, dims: g.dims, value: reduce[aggregation as keyof typeof reduce](g.values) }));
  }
  // ORDER BY time (or bucket), then each dimension ascending, nulls last.
  const order = (x: string | null, y: string | null) => (x === y ? 0 : x === null ? 1 : y === null ? -1 : x < y ? -1 : 1);
  rows.sort((a, b) => a.time - b.time || a.dims.reduce((c, x, i) => c || order(x, b.dims[i]), 0));
  const offset = body.NextToken ? Number(body.NextToken.slice('off:'.length)) : 0;
  const page = rows.slice(offset, offset + body.MaxRows);
  const stamp = (t: number) => new Date(t).toISOString().replace('T', ' ').replace('Z', '000000');
  return {
    body: {
      QueryId: 'q',
      ColumnInfo: [],
      Rows: page.map((r) => ({
        Data: [
          { ScalarValue: stamp(r.time) },
          ...r.dims.map((d) => (d === null ? { NullValue: true } : { ScalarValue: d })),
          { ScalarValue: String(r.value) },
        ],
      })),
      ...(offset + body.MaxRows < rows.length ? { NextToken: `off:${offset + body.MaxRows}` } : {}),
    },
  };
}

/** Every page of a request, following nextToken. */
async function allPages(call: typeof influxQuery, dataset: string, query: Record<string, string>): Promise<TimeSeriesResponse[]> {
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

/** The pages without their tokens (each engine's own cursor), values rounded to 12 significant digits when `rounded`. */
function comparable(pages: TimeSeriesResponse[], rounded: boolean) {
  return pages.map(({ nextToken, ...page }) => ({
    ...page,
    more: nextToken !== undefined,
    points: page.points.map((p) => ({ ...p, value: rounded && p.value !== null ? Number(p.value.toPrecision(12)) : p.value })),
  }));
}

describe('the same JSON from both engines on the same data', () => {
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
    ['a subsystem with no data', 'curva_carga', { ...year, id_subsistema: 'XX', interval: '1d' }],
    ['a measure never loaded', 'intercambio_nacional', { ...year, measure: 'val_intercambiomwmed' }],
  ];

  test.each(cases)('%s', async (name, dataset, query) => {
    const [a, b] = [await allPages(timestreamQuery, dataset, query), await allPages(influxQuery, dataset, query)];
    // Equal and not trivially so: every case but the two without data has points.
    expect(a.flatMap((p) => p.points).length > 0).toBe(!/no data|never loaded/.test(name));
    // Raw values are the stored doubles on both sides: exactly equal. Aggregates may differ in the last bits
    // (neither engine promises an order of summation), so they are compared to 12 significant digits.
    const rounded = query.interval !== undefined;
    expect(comparable(b, rounded)).toEqual(comparable(a, rounded));
    if (!rounded) expect(b.flatMap((p) => p.points)).toEqual(a.flatMap((p) => p.points));
  });

  test.each<[string, string, Record<string, string>]>([
    ['raw, pages of 7', 'curva_carga', { from: '2023-06-01', to: '2023-06-03' }],
    ['hourly, pages of 7', 'curva_carga', { from: '2023-06-01', to: '2023-06-03', interval: '1h', aggregation: 'max' }],
    ['monthly, pages of 7 (several windows of days)', 'curva_carga', { from: '2023-01-01', to: '2024-02-01', interval: '1mo', aggregation: 'avg' }],
    ['no identity dimensions, monthly sums, pages of 7', 'historico_geracao_energia', { from: '2000-01-01', to: '2030-01-01', interval: '1mo', aggregation: 'sum' }],
    ['yearly, pages of 7', 'curva_carga', { from: '2000-01-01', to: '2030-01-01', interval: '1y', aggregation: 'sum' }],
  ])('%s', async (_name, dataset, query) => {
    const [a, b] = [await allPages(timestreamSmallPages, dataset, query), await allPages(influxSmallPages, dataset, query)];
    expect(a.length).toBeGreaterThan(1);
    expect(comparable(b, query.interval !== undefined)).toEqual(comparable(a, query.interval !== undefined));
  });
});

describe('the InfluxDB query handler', () => {
  const RANGE = { from: '2023-01-01T00:00:00Z', to: '2023-02-01T00:00:00Z' };

  test('the InfluxQL it sends: built from the validated request, with the read token', async () => {
    const { status, body } = await influxQuery('curva_carga', { from: '2023-01-01T00:00-03:00', to: '2023-01-01T06:00Z', id_subsistema: 'São Paulo (SE/CO) 2' });
    expect(status).toBe(200);
    expect(body.points).toEqual([]);
    const [sent] = proxy.of('/query');
    expect(sent.headers.authorization).toBe(`Token ${READ_TOKEN}`);
    expect(Object.fromEntries(sent.params)).toEqual({
      db: DATABASE,
      rp: RETENTION_POLICY,
      epoch: 'ms',
      q: 'SELECT "val_cargaenergiahomwmed" FROM "curva_carga" WHERE time >= \'2023-01-01T03:00:00.000Z\' AND time < \'2023-01-01T06:00:00.000Z\' '
        + 'AND "id_subsistema" = \'São Paulo (SE/CO) 2\' GROUP BY "id_subsistema" LIMIT 502',
    });
    const daily = await influxQuery('curva_carga', { ...RANGE, interval: '1mo', aggregation: 'min' });
    expect(daily.status).toBe(200);
    expect(proxy.of('/query')[1].params.get('q')).toBe('SELECT sum("val_cargaenergiahomwmed") AS "sum", count("val_cargaenergiahomwmed") AS "count", '
      + 'min("val_cargaenergiahomwmed") AS "min", max("val_cargaenergiahomwmed") AS "max" FROM "curva_carga" '
      + 'WHERE time >= \'2023-01-01T00:00:00.000Z\' AND time < \'2023-02-01T00:00:00.000Z\' GROUP BY time(1d), "id_subsistema" fill(none)');
  });

  test('a page token is bound to its query: other parameters, or the other engine\'s token, are refused', async () => {
    const first = await influxQuery('curva_carga', RANGE);
    expect(first.body.nextToken).toEqual(expect.any(String));
    const other = await influxQuery('curva_carga', { ...RANGE, id_subsistema: 'N', nextToken: first.body.nextToken });
    expect(other).toMatchObject({ status: 400, body: { error: { code: 'InvalidNextToken' } } });
    const ts1 = await timestreamQuery('curva_carga', RANGE);
    const crossed = await influxQuery('curva_carga', { ...RANGE, nextToken: ts1.body.nextToken });
    expect(crossed).toMatchObject({ status: 400, body: { error: { code: 'InvalidNextToken' } } });
    expect(proxy.of('/query')).toHaveLength(1);
  });

  const token = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  test.each<[string, string, Record<string, string>, string, number?]>([
    ['dataset: quote and statement', "curva_carga'; DROP MEASUREMENT x; --", RANGE, 'InvalidParameter'],
    ['dataset: regex', '/.*/', RANGE, 'InvalidParameter'],
    ['dataset: unknown', 'not_a_dataset', RANGE, 'DatasetNotFound', 404],
    ['dataset: in the catalog, no measurement', 'cmo_semanal', RANGE, 'DatasetNotFound', 404],
    ['measure: identifier break-out', 'curva_carga', { ...RANGE, measure: 'val_cargaenergiahomwmed" FROM /.*/ --' }, 'InvalidParameter'],
    ['dimension: quote', 'curva_carga', { ...RANGE, id_subsistema: "SE' OR time > 0 OR 'a'='a" }, 'InvalidParameter'],
    ['dimension: backslash', 'curva_carga', { ...RANGE, id_subsistema: 'SE\\' }, 'InvalidParameter'],
    ['dimension: regex', 'curva_carga', { ...RANGE, id_subsistema: '/.*/' }, 'InvalidParameter'],
    ['dimension: statement separator', 'curva_carga', { ...RANGE, id_subsistema: 'SE; DROP DATABASE ons_test' }, 'InvalidParameter'],
    ['parameter name: injection', 'curva_carga', { ...RANGE, 'id_subsistema" =~ /.*/ --': 'SE' }, 'UnknownParameter'],
    ['from: now()', 'curva_carga', { ...RANGE, from: 'now() - 1h' }, 'InvalidParameter'],
    ['to: before from', 'curva_carga', { from: RANGE.to, to: RANGE.from }, 'InvalidParameter'],
    ['interval: InfluxQL duration', 'curva_carga', { ...RANGE, interval: '1h), "x' }, 'InvalidParameter'],
    ['aggregation: another function', 'curva_carga', { ...RANGE, interval: '1h', aggregation: 'percentile' }, 'InvalidParameter'],
    ['nextToken: forged cursor', 'curva_carga', { ...RANGE, nextToken: token({ v: 1, q: '0123456789abcdef', t: '{"t":0,"k":[null]}' }) }, 'InvalidNextToken'],
  ])('refused: %s', async (_name, dataset, query, code, status = 400) => {
    const answer = await influxQuery(dataset, query);
    const { requestId } = answer;
    expect(answer).toEqual({ status, body: { error: { code, message: expect.any(String) }, requestId }, requestId });
    expect(proxy.requests).toHaveLength(0);
  });

  test.each<[string, number]>([['500', 500], ['503', 503], ['429', 429]])('InfluxDB answering %s: 503', async (_name, status) => {
    proxy.failNext({ status }, 1, '/query');
    const { status: got, body, requestId } = await influxQuery('curva_carga', RANGE);
    expect({ got, body }).toEqual({ got: 503, body: { error: { code: 'ServiceUnavailable', message: 'the time-series store is busy; retry later' }, requestId } });
  });

  test('InfluxDB unreachable: 503', async () => {
    const dead = new LocalSecretsManager();
    const url = await dead.start();
    await dead.close();
    const unreachable = await queryHandler('influxdb', { [InfluxDbEnv.URL]: url });
    const { status, body } = await unreachable('curva_carga', RANGE);
    expect({ status, code: body.error.code }).toEqual({ status: 503, code: 'ServiceUnavailable' });
  });

  test('a refused token (401): 500 with a generic message, the reason only in the log, never the token', async () => {
    proxy.failNext({ status: 401, body: JSON.stringify({ error: 'authorization failed' }) }, 1, '/query');
    const { status, body } = await influxQuery('curva_carga', RANGE);
    expect({ status, body: body.error }).toEqual({ status: 500, body: { code: 'InternalError', message: 'the request could not be completed' } });
    const logged = output.error.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('authorization failed'));
    expect(logged).toHaveLength(1);
    expect(logged[0]).not.toContain(READ_TOKEN);
  });
});
