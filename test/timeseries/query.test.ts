import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { LocalTimestream } from './local-timestream';
import { ApiErrorBody } from '../../src/runtime/contract';
import { TimeSeriesEnv, TimeSeriesResponse } from '../../src/timeseries/contract';
import { expectSchema } from '../api/openapi';
import { loadHandler, restoreEnv } from '../ingestion/local-aws';
import { CapturedOutput, captureOutput } from '../operations/output';

/**
 * The bundled query handler with real API Gateway proxy events, against a local Timestream Query
 * server (the real SDK client): the exact SQL it sends for valid requests, the response shape and
 * paging, and refusals (400, with the one error shape and no query sent) of injection attempts in
 * every parameter.
 */

type Handler = (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;

const ASSETS = join(__dirname, '..', '..', 'assets', 'timeseries', 'timestream');
const MAX_POINTS = 500;
const TABLES = { curva_carga: 'curva_carga', balanco_energia_subsistema: 'balanco', intercambio_nacional: 'intercambio', carga_energia: 'carga_energia' };

let ts: LocalTimestream;
let handler: Handler;
let scratch: string;
let output: CapturedOutput;
let consoleLog: jest.SpyInstance;
let consoleError: jest.SpyInstance;
let requestCount = 0;

function env(endpoint: string, overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'x',
    AWS_SECRET_ACCESS_KEY: 'x',
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_ENDPOINT_URL: undefined,
    AWS_MAX_ATTEMPTS: undefined,
    AWS_CONFIG_FILE: join(scratch, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(scratch, 'no-aws-credentials'),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    [TimeSeriesEnv.DATABASE]: 'ons_test',
    [TimeSeriesEnv.TABLES]: JSON.stringify(TABLES),
    [TimeSeriesEnv.QUERY_ENDPOINT]: endpoint,
    [TimeSeriesEnv.MAX_POINTS]: String(MAX_POINTS),
    ...overrides,
  };
}

beforeAll(async () => {
  output = captureOutput();
  consoleLog = output.log;
  consoleError = output.error;
  scratch = mkdtempSync(join(tmpdir(), 'ons-query-test-'));
  ts = new LocalTimestream();
  handler = loadHandler<APIGatewayProxyEvent, APIGatewayProxyResult>('query', env(await ts.start()), ASSETS);
});

afterAll(async () => {
  output.restore();
  restoreEnv();
  await ts?.close();
  rmSync(scratch, { recursive: true, force: true });
});

beforeEach(() => {
  ts.reset();
  ts.onQuery = () => ({ body: { QueryId: 'q', Rows: [], ColumnInfo: [] } });
  consoleLog.mockClear();
  consoleError.mockClear();
});

/** An API Gateway (REST, proxy integration) event for GET /timeseries/{dataset}. */
function event(dataset: string | undefined, query: Record<string, string> | null, multi?: Record<string, string[]>): APIGatewayProxyEvent {
  const requestId = `req-${++requestCount}`;
  return {
    resource: '/timeseries/{dataset}',
    path: `/timeseries/${dataset}`,
    httpMethod: 'GET',
    headers: {},
    multiValueHeaders: {},
    pathParameters: dataset === undefined ? null : { dataset },
    queryStringParameters: query,
    multiValueQueryStringParameters: multi ?? (query ? Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]])) : null),
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: { requestId, stage: 'dev', httpMethod: 'GET', resourcePath: '/timeseries/{dataset}' } as APIGatewayProxyEvent['requestContext'],
  };
}

async function call(dataset: string | undefined, query: Record<string, string> | null, multi?: Record<string, string[]>) {
  const e = event(dataset, query, multi);
  const response = await handler(e);
  const body = JSON.parse(response.body);
  // Every answer, success or error, is what the shipped OpenAPI document promises.
  expectSchema(response.statusCode === 200 ? 'TimeSeriesResponse' : 'Error', body);
  return { status: response.statusCode, body, requestId: e.requestContext.requestId, headers: response.headers };
}

const sentSql = () => ts.of('Query').map((r) => r.body.QueryString as string);
const RANGE = { from: '2023-01-01T00:00:00Z', to: '2023-02-01T00:00:00Z' };
const WHERE_RANGE = "time >= from_iso8601_timestamp('2023-01-01T00:00:00.000Z') AND time < from_iso8601_timestamp('2023-02-01T00:00:00.000Z')";

describe('the SQL of valid requests', () => {
  test.each<[string, string, Record<string, string>, string]>([
    ['raw points of the only measure (measure defaults), no filter', 'curva_carga', { ...RANGE },
      'SELECT time, "id_subsistema", "val_cargaenergiahomwmed" AS "value" FROM "ons_test"."curva_carga" '
      + `WHERE measure_name = 'curva_carga' AND ${WHERE_RANGE} AND "val_cargaenergiahomwmed" IS NOT NULL ORDER BY time, "id_subsistema"`],
    ['hourly average (the default aggregation) of one subsystem', 'curva_carga', { ...RANGE, interval: '1h', id_subsistema: 'SE' },
      'SELECT bin(time, 1h) AS "bucket", "id_subsistema", avg("val_cargaenergiahomwmed") AS "value" FROM "ons_test"."curva_carga" '
      + `WHERE measure_name = 'curva_carga' AND ${WHERE_RANGE} AND "val_cargaenergiahomwmed" IS NOT NULL AND "id_subsistema" = 'SE' `
      + 'GROUP BY bin(time, 1h), "id_subsistema" ORDER BY "bucket", "id_subsistema"'],
    ['monthly sum of one measure of a multi-measure dataset', 'balanco_energia_subsistema', { ...RANGE, measure: 'val_gereolica', interval: '1mo', aggregation: 'sum' },
      'SELECT date_trunc(\'month\', time) AS "bucket", "id_subsistema", sum("val_gereolica") AS "value" FROM "ons_test"."balanco" '
      + `WHERE measure_name = 'balanco_energia_subsistema' AND ${WHERE_RANGE} AND "val_gereolica" IS NOT NULL `
      + 'GROUP BY date_trunc(\'month\', time), "id_subsistema" ORDER BY "bucket", "id_subsistema"'],
    ['yearly maximum', 'carga_energia', { ...RANGE, interval: '1y', aggregation: 'max' },
      'SELECT date_trunc(\'year\', time) AS "bucket", "id_subsistema", max("val_cargaenergiamwmed") AS "value" FROM "ons_test"."carga_energia" '
      + `WHERE measure_name = 'carga_energia' AND ${WHERE_RANGE} AND "val_cargaenergiamwmed" IS NOT NULL `
      + 'GROUP BY date_trunc(\'year\', time), "id_subsistema" ORDER BY "bucket", "id_subsistema"'],
    ['weekly minimum of a pair of subsystems (two dimensions, both filtered)', 'intercambio_nacional',
      { ...RANGE, measure: 'val_intercambiomwmed', interval: '1w', aggregation: 'min', id_subsistema_origem: 'SE', id_subsistema_destino: 'NE' },
      'SELECT bin(time, 7d) AS "bucket", "id_subsistema_origem", "id_subsistema_destino", min("val_intercambiomwmed") AS "value" FROM "ons_test"."intercambio" '
      + `WHERE measure_name = 'intercambio_nacional' AND ${WHERE_RANGE} AND "val_intercambiomwmed" IS NOT NULL `
      + 'AND "id_subsistema_origem" = \'SE\' AND "id_subsistema_destino" = \'NE\' '
      + 'GROUP BY bin(time, 7d), "id_subsistema_origem", "id_subsistema_destino" ORDER BY "bucket", "id_subsistema_origem", "id_subsistema_destino"'],
    ['instants with an offset and a date re-formatted in UTC; accents and spaces in a value', 'curva_carga',
      { from: '2023-01-01T00:00-03:00', to: '2023-01-02', interval: '15m', id_subsistema: 'São Paulo (SE/CO) 2' },
      'SELECT bin(time, 15m) AS "bucket", "id_subsistema", avg("val_cargaenergiahomwmed") AS "value" FROM "ons_test"."curva_carga" '
      + "WHERE measure_name = 'curva_carga' AND time >= from_iso8601_timestamp('2023-01-01T03:00:00.000Z') AND time < from_iso8601_timestamp('2023-01-02T00:00:00.000Z') "
      + 'AND "val_cargaenergiahomwmed" IS NOT NULL AND "id_subsistema" = \'São Paulo (SE/CO) 2\' '
      + 'GROUP BY bin(time, 15m), "id_subsistema" ORDER BY "bucket", "id_subsistema"'],
  ])('%s', async (_name, dataset, query, sql) => {
    const { status } = await call(dataset, query);
    expect(status).toBe(200);
    expect(sentSql()).toEqual([sql]);
    expect(ts.of('Query')[0].body.MaxRows).toBe(MAX_POINTS);
    // The endpoint override skips endpoint discovery.
    expect(ts.of('DescribeEndpoints')).toHaveLength(0);
  });
});

describe('responses', () => {
  const rows = [
    { Data: [{ ScalarValue: '2023-01-01 00:00:00.000000000' }, { ScalarValue: 'N' }, { ScalarValue: '6211.5' }] },
    { Data: [{ ScalarValue: '2023-01-01 00:00:00.000000000' }, { ScalarValue: 'SE' }, { NullValue: true }] },
    { Data: [{ ScalarValue: '2023-01-01 01:00:00.000000000' }, { ScalarValue: 'N' }, { ScalarValue: '-0.5' }] },
  ];

  test('a page: points with time, dimensions and value, the unit from the catalog, a nextToken', async () => {
    ts.onQuery = () => ({ body: { QueryId: 'q1', Rows: rows, ColumnInfo: [], NextToken: 'timestream-page-2' } });
    const { status, body, headers } = await call('curva_carga', { ...RANGE, interval: '1h', aggregation: 'avg' });
    expect(status).toBe(200);
    expect(headers).toMatchObject({ 'content-type': 'application/json' });
    const r = body as TimeSeriesResponse;
    expect(r).toEqual({
      dataset: 'curva_carga',
      measure: 'val_cargaenergiahomwmed',
      unit: 'MWmed',
      interval: '1h',
      aggregation: 'avg',
      from: '2023-01-01T00:00:00.000Z',
      to: '2023-02-01T00:00:00.000Z',
      points: [
        { time: '2023-01-01T00:00:00.000Z', dimensions: { id_subsistema: 'N' }, value: 6211.5 },
        { time: '2023-01-01T00:00:00.000Z', dimensions: { id_subsistema: 'SE' }, value: null },
        { time: '2023-01-01T01:00:00.000Z', dimensions: { id_subsistema: 'N' }, value: -0.5 },
      ],
      nextToken: expect.stringMatching(/^[A-Za-z0-9_-]+$/),
    });

    // The next page: the same SQL, Timestream's own token.
    ts.onQuery = () => ({ body: { QueryId: 'q1', Rows: rows.slice(0, 1), ColumnInfo: [] } });
    const next = await call('curva_carga', { ...RANGE, interval: '1h', aggregation: 'avg', nextToken: r.nextToken! });
    expect(next.status).toBe(200);
    expect(next.body.nextToken).toBeUndefined();
    const [first, second] = ts.of('Query').map((q) => q.body);
    expect(second.QueryString).toBe(first.QueryString);
    expect(second.NextToken).toBe('timestream-page-2');
    expect(first.NextToken).toBeUndefined();

    // The same token with other parameters is refused before any query.
    const other = await call('curva_carga', { ...RANGE, interval: '1d', aggregation: 'avg', nextToken: r.nextToken! });
    expect(other).toMatchObject({ status: 400, body: { error: { code: 'InvalidNextToken' } } });
    expect(ts.of('Query')).toHaveLength(2);
  });

  test('raw points carry the instant itself', async () => {
    ts.onQuery = () => ({ body: { QueryId: 'q', Rows: rows.slice(0, 1), ColumnInfo: [] } });
    const { body } = await call('curva_carga', { ...RANGE, id_subsistema: 'N' });
    expect(body).toMatchObject({ interval: null, aggregation: null, points: [{ time: '2023-01-01T00:00:00.000Z', dimensions: { id_subsistema: 'N' }, value: 6211.5 }] });
  });

  test('a measure never loaded (Timestream does not know the column yet): no points', async () => {
    ts.onQuery = () => ({ status: 400, body: { __type: 'com.amazonaws.timestream.v20181101#ValidationException', message: "line 1:60: Column 'val_intercambioprogmwmed' does not exist" } });
    const { status, body } = await call('intercambio_nacional', { ...RANGE, measure: 'val_intercambioprogmwmed' });
    expect(status).toBe(200);
    expect(body.points).toEqual([]);
  });

  test('throttling that outlasts the SDK retries: 503', async () => {
    ts.failNext('ThrottlingException', 3, 'Query');
    const { status, body, requestId } = await call('curva_carga', RANGE);
    expect({ status, body }).toEqual({ status: 503, body: { error: { code: 'ServiceUnavailable', message: 'the time-series store is busy; retry later' }, requestId } });
  });

  test('an unexpected error: 500 with a generic message, the exception text only in the log', async () => {
    ts.onQuery = () => ({ status: 403, body: { __type: 'com.amazonaws.timestream.v20181101#AccessDeniedException', message: 'User arn:aws:iam::123456789012:role/secret-role is not authorized' } });
    const { status, body, requestId } = await call('curva_carga', RANGE);
    expect({ status, body }).toEqual({ status: 500, body: { error: { code: 'InternalError', message: 'the request could not be completed' }, requestId } });
    const logged = consoleError.mock.calls.map((c) => JSON.parse(String(c[0])));
    expect(logged).toEqual([expect.objectContaining({ level: 'ERROR', requestId, errorType: 'AccessDeniedException', errorMessage: expect.stringContaining('secret-role') })]);
  });

  test('a page token Timestream no longer accepts: 400 InvalidNextToken', async () => {
    ts.onQuery = () => ({ body: { QueryId: 'q', Rows: [], ColumnInfo: [], NextToken: 'expired' } });
    const { body } = await call('curva_carga', RANGE);
    ts.onQuery = () => ({ status: 400, body: { __type: 'com.amazonaws.timestream.v20181101#ValidationException', message: 'Invalid pagination token' } });
    const again = await call('curva_carga', { ...RANGE, nextToken: body.nextToken });
    expect(again).toMatchObject({ status: 400, body: { error: { code: 'InvalidNextToken' }, requestId: again.requestId } });
  });

  test('every request is logged as one JSON line with the request id', async () => {
    const { requestId } = await call('curva_carga', RANGE);
    expect(consoleLog.mock.calls.map((c) => JSON.parse(String(c[0])))).toEqual([expect.objectContaining({ level: 'INFO', requestId, dataset: 'curva_carga', points: 0 })]);
  });
});

describe('refusals: 400 with the error shape, nothing sent to Timestream, the value never echoed', () => {
  const token = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const attempts: Array<[string, string | undefined, Record<string, string>, string, number?]> = [
    // dataset (path parameter)
    ['dataset: quote and statement', "curva_carga'; DROP TABLE x; --", RANGE, 'InvalidParameter'],
    ['dataset: comment', 'curva_carga/*x*/', RANGE, 'InvalidParameter'],
    ['dataset: upper case', 'CURVA_CARGA', RANGE, 'InvalidParameter'],
    ['dataset: full-width letters', 'ｃｕｒｖａ_ｃａｒｇａ', RANGE, 'InvalidParameter'],
    ['dataset: path traversal', '../curva_carga', RANGE, 'InvalidParameter'],
    ['dataset: overlong', 'a'.repeat(65), RANGE, 'InvalidParameter'],
    ['dataset: missing', undefined, RANGE, 'InvalidParameter'],
    ['dataset: unknown', 'not_a_dataset', RANGE, 'DatasetNotFound', 404],
    ['dataset: in the catalog, no table', 'cmo_semanal', RANGE, 'DatasetNotFound', 404],
    // measure
    ['measure: identifier break-out', 'curva_carga', { ...RANGE, measure: 'val_cargaenergiahomwmed" FROM x --' }, 'InvalidParameter'],
    ['measure: of another dataset', 'curva_carga', { ...RANGE, measure: 'val_carga' }, 'InvalidParameter'],
    ['measure: star', 'curva_carga', { ...RANGE, measure: '*' }, 'InvalidParameter'],
    ['measure: upper case', 'curva_carga', { ...RANGE, measure: 'VAL_CARGAENERGIAHOMWMED' }, 'InvalidParameter'],
    ['measure: missing where several exist', 'balanco_energia_subsistema', RANGE, 'InvalidParameter'],
    ['measure: empty', 'curva_carga', { ...RANGE, measure: '' }, 'InvalidParameter'],
    // dimension values
    ['dimension: quote', 'curva_carga', { ...RANGE, id_subsistema: "SE' OR '1'='1" }, 'InvalidParameter'],
    ['dimension: semicolon', 'curva_carga', { ...RANGE, id_subsistema: 'SE; DROP TABLE x' }, 'InvalidParameter'],
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
    ['parameter name: prototype', 'curva_carga', { ...RANGE, ['__proto__']: 'x' }, 'UnknownParameter'],
    ['parameter name: unknown', 'curva_carga', { ...RANGE, limit: '10' }, 'UnknownParameter'],
    // instants
    ['from: missing', 'curva_carga', { to: RANGE.to }, 'InvalidParameter'],
    ['to: missing', 'curva_carga', { from: RANGE.from }, 'InvalidParameter'],
    ['from: quote', 'curva_carga', { ...RANGE, from: "2023-01-01T00:00:00Z'); DROP TABLE x; --" }, 'InvalidParameter'],
    ['from: a function', 'curva_carga', { ...RANGE, from: 'now()' }, 'InvalidParameter'],
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
    ['aggregation: without interval', 'curva_carga', { ...RANGE, aggregation: 'sum' }, 'InvalidParameter'],
    // page tokens
    ['nextToken: not base64url', 'curva_carga', { ...RANGE, nextToken: "abc'; --" }, 'InvalidNextToken'],
    ['nextToken: not JSON', 'curva_carga', { ...RANGE, nextToken: Buffer.from('hello').toString('base64url') }, 'InvalidNextToken'],
    ['nextToken: forged digest', 'curva_carga', { ...RANGE, nextToken: token({ v: 1, q: '0123456789abcdef', t: 'x' }) }, 'InvalidNextToken'],
    ['nextToken: extra field', 'curva_carga', { ...RANGE, nextToken: token({ v: 1, q: '0123456789abcdef', t: 'x', sql: 'DROP' }) }, 'InvalidNextToken'],
    ['nextToken: overlong', 'curva_carga', { ...RANGE, nextToken: 'A'.repeat(5000) }, 'InvalidNextToken'],
  ];

  test.each(attempts)('%s', async (_name, dataset, query, code, status = 400) => {
    const { status: got, body, requestId } = await call(dataset, query);
    expect(got).toBe(status);
    expect(body).toEqual({ error: { code, message: expect.any(String) }, requestId } satisfies ApiErrorBody);
    expect(ts.requests).toHaveLength(0);
    // No user text in the message: only names of parameters and catalog identifiers (which may match an identifier-like value).
    const attempted = [dataset, ...Object.keys(query).filter((k) => !/^[A-Za-z0-9_]*$/.test(k)),
      ...Object.values(query).filter((v) => !(Object.values(RANGE) as string[]).includes(v))];
    for (const value of attempted) {
      if (value && !/^[a-z0-9_]*$/.test(value)) expect(body.error.message).not.toContain(value);
    }
  });

  test('a parameter given twice', async () => {
    const { status, body } = await call('curva_carga', { ...RANGE, id_subsistema: 'SE' }, { ...Object.fromEntries(Object.entries(RANGE).map(([k, v]) => [k, [v]])), id_subsistema: ['SE', "N' OR '1'='1"] });
    expect(status).toBe(400);
    expect(body.error.code).toBe('InvalidParameter');
    expect(ts.requests).toHaveLength(0);
  });
});
