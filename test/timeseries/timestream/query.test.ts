import { join } from 'node:path';
import { TimeSeriesEnv, TimeSeriesResponse } from '../../../src/timeseries/contract';
import { DATABASE, describeQueryContract, MAX_POINTS, RANGE, StoredPoint } from '../query-contract';
import { LocalTimestream } from './local-timestream';
import { duckDbQueries } from './timestream-sql';

/**
 * The query contract against a local Timestream Query server (the real SDK client), which runs the SQL it
 * receives in DuckDB over the records the Timestream loader stored; and what only Timestream has: the exact SQL
 * the handler sends, Timestream's rows (null values) and page tokens, and its errors.
 */

const ts = new LocalTimestream();

/** Query runs the SQL the handler sent in DuckDB over the stored records (timestream-sql.ts). */
const TABLES = {
  curva_carga: 'curva_carga',
  carga_energia: 'carga_energia',
  balanco_energia_subsistema: 'balanco',
  intercambio_nacional: 'intercambio',
  historico_geracao_energia: 'historico_geracao_energia',
};
const duck = duckDbQueries(ts, DATABASE, Object.values(TABLES));

function stored(dataset: string): StoredPoint[] {
  return [...ts.store.values()].filter((r) => r.measureName === dataset);
}

const ctx = describeQueryContract({
  assets: join(__dirname, '..', '..', '..', 'assets', 'timeseries', 'timestream'),
  tables: TABLES,
  start: async () => {
    const url = await ts.start();
    ts.onQuery = duck.answer;
    return { [TimeSeriesEnv.WRITE_ENDPOINT]: url, [TimeSeriesEnv.QUERY_ENDPOINT]: url };
  },
  stop: async () => {
    duck.close();
    await ts.close();
  },
  reset: () => {
    ts.reset({ keepStore: true });
    ts.onQuery = duck.answer;
  },
  requests: () => ts.requests.length,
  stored: async (dataset) => stored(dataset),
  busy: [['ThrottlingException that outlasts the SDK retries', () => ts.failNext('ThrottlingException', 3, 'Query')]],
  unexpected: () => {
    ts.onQuery = () => ({ status: 403, body: { __type: 'com.amazonaws.timestream.v20181101#AccessDeniedException', message: 'User arn:aws:iam::123456789012:role/secret-role is not authorized' } });
    return { errorType: 'AccessDeniedException', errorMessage: expect.stringContaining('secret-role') };
  },
});

const call = (dataset: string, query: Record<string, string>) => ctx.query(dataset, query);
const noRows = () => ({ body: { QueryId: 'q', Rows: [], ColumnInfo: [] } });
const sentSql = () => ts.of('Query').map((r) => r.body.QueryString as string);
const WHERE_RANGE = "time >= from_iso8601_timestamp('2023-01-01T00:00:00.000Z') AND time < from_iso8601_timestamp('2023-02-01T00:00:00.000Z')";
/** Brasília wall clock in February 2013: -02:00 until DST ended at 2013-02-17T02:00Z (local midnight became 23:00), -03:00 after. */
const LOCAL_2013 = "date_add('hour', CASE WHEN time < from_iso8601_timestamp('2013-02-17T02:00:00.000Z') THEN -2 ELSE -3 END, time)";
/** The ONS week (Saturday to Friday) of January 2023 (-03:00 throughout): the ISO week of the day two days on, less two days. */
const ONS_WEEK = "date_add('day', -2, date_trunc('week', date_add('day', 2, date_add('hour', -3, time))))";

describe('the SQL of valid requests', () => {
  beforeEach(() => {
    ts.onQuery = noRows;
  });

  test.each<[string, string, Record<string, string>, string]>([
    ['raw points of the only measure (measure defaults), no filter', 'curva_carga', { ...RANGE },
      'SELECT time, "id_subsistema", "val_cargaenergiahomwmed" AS "value" FROM "ons_test"."curva_carga" '
      + `WHERE measure_name = 'curva_carga' AND ${WHERE_RANGE} AND "val_cargaenergiahomwmed" IS NOT NULL ORDER BY time, "id_subsistema"`],
    ['hourly average (the default aggregation) of one subsystem', 'curva_carga', { ...RANGE, interval: '1h', id_subsistema: 'SE' },
      'SELECT bin(time, 1h) AS "bucket", "id_subsistema", avg("val_cargaenergiahomwmed") AS "value" FROM "ons_test"."curva_carga" '
      + `WHERE measure_name = 'curva_carga' AND ${WHERE_RANGE} AND "val_cargaenergiahomwmed" IS NOT NULL AND "id_subsistema" = 'SE' `
      + 'GROUP BY bin(time, 1h), "id_subsistema" ORDER BY "bucket", "id_subsistema"'],
    ['monthly sum of one measure of a multi-measure dataset', 'balanco_energia_subsistema', { ...RANGE, measure: 'val_gereolica', interval: '1mo', aggregation: 'sum' },
      'SELECT date_trunc(\'month\', date_add(\'hour\', -3, time)) AS "bucket", "id_subsistema", sum("val_gereolica") AS "value" FROM "ons_test"."balanco" '
      + `WHERE measure_name = 'balanco_energia_subsistema' AND ${WHERE_RANGE} AND "val_gereolica" IS NOT NULL `
      + 'GROUP BY date_trunc(\'month\', date_add(\'hour\', -3, time)), "id_subsistema" ORDER BY "bucket", "id_subsistema"'],
    ['yearly maximum', 'carga_energia', { ...RANGE, interval: '1y', aggregation: 'max' },
      'SELECT date_trunc(\'year\', date_add(\'hour\', -3, time)) AS "bucket", "id_subsistema", max("val_cargaenergiamwmed") AS "value" FROM "ons_test"."carga_energia" '
      + `WHERE measure_name = 'carga_energia' AND ${WHERE_RANGE} AND "val_cargaenergiamwmed" IS NOT NULL `
      + 'GROUP BY date_trunc(\'year\', date_add(\'hour\', -3, time)), "id_subsistema" ORDER BY "bucket", "id_subsistema"'],
    ['days across the 2013 DST end: the offset by a CASE over the instant it changed', 'carga_energia', { from: '2013-02-01', to: '2013-03-01', interval: '1d', aggregation: 'sum' },
      `SELECT date_trunc('day', ${LOCAL_2013}) AS "bucket", "id_subsistema", sum("val_cargaenergiamwmed") AS "value" FROM "ons_test"."carga_energia" `
      + "WHERE measure_name = 'carga_energia' AND time >= from_iso8601_timestamp('2013-02-01T00:00:00.000Z') AND time < from_iso8601_timestamp('2013-03-01T00:00:00.000Z') "
      + `AND "val_cargaenergiamwmed" IS NOT NULL GROUP BY date_trunc('day', ${LOCAL_2013}), "id_subsistema" ORDER BY "bucket", "id_subsistema"`],
    ['ISO weeks: date_trunc(\'week\') is Monday', 'carga_energia', { ...RANGE, interval: '1w', week: 'iso' },
      'SELECT date_trunc(\'week\', date_add(\'hour\', -3, time)) AS "bucket", "id_subsistema", avg("val_cargaenergiamwmed") AS "value" FROM "ons_test"."carga_energia" '
      + `WHERE measure_name = 'carga_energia' AND ${WHERE_RANGE} AND "val_cargaenergiamwmed" IS NOT NULL `
      + 'GROUP BY date_trunc(\'week\', date_add(\'hour\', -3, time)), "id_subsistema" ORDER BY "bucket", "id_subsistema"'],
    ['weekly minimum of a pair of subsystems (two dimensions, both filtered)', 'intercambio_nacional',
      { ...RANGE, measure: 'val_intercambiomwmed', interval: '1w', aggregation: 'min', id_subsistema_origem: 'SE', id_subsistema_destino: 'NE' },
      `SELECT ${ONS_WEEK} AS "bucket", "id_subsistema_origem", "id_subsistema_destino", min("val_intercambiomwmed") AS "value" FROM "ons_test"."intercambio" `
      + `WHERE measure_name = 'intercambio_nacional' AND ${WHERE_RANGE} AND "val_intercambiomwmed" IS NOT NULL `
      + 'AND "id_subsistema_origem" = \'SE\' AND "id_subsistema_destino" = \'NE\' '
      + `GROUP BY ${ONS_WEEK}, "id_subsistema_origem", "id_subsistema_destino" ORDER BY "bucket", "id_subsistema_origem", "id_subsistema_destino"`],
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

describe('Timestream\'s rows, tokens and errors', () => {
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
      // Hourly buckets: the UTC start, and the Brasília hour it is.
      points: [
        { time: '2023-01-01T00:00:00.000Z', local: '2022-12-31T21:00-03:00', period: '2022-12-31T21:00-03:00', dimensions: { id_subsistema: 'N' }, value: 6211.5 },
        { time: '2023-01-01T00:00:00.000Z', local: '2022-12-31T21:00-03:00', period: '2022-12-31T21:00-03:00', dimensions: { id_subsistema: 'SE' }, value: null },
        { time: '2023-01-01T01:00:00.000Z', local: '2022-12-31T22:00-03:00', period: '2022-12-31T22:00-03:00', dimensions: { id_subsistema: 'N' }, value: -0.5 },
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

  test('a page token Timestream no longer accepts: 400 InvalidNextToken', async () => {
    ts.onQuery = () => ({ body: { QueryId: 'q', Rows: [], ColumnInfo: [], NextToken: 'expired' } });
    const { body } = await call('curva_carga', RANGE);
    ts.onQuery = () => ({ status: 400, body: { __type: 'com.amazonaws.timestream.v20181101#ValidationException', message: 'Invalid pagination token' } });
    const again = await call('curva_carga', { ...RANGE, nextToken: body.nextToken });
    expect(again).toMatchObject({ status: 400, body: { error: { code: 'InvalidNextToken' }, requestId: again.requestId } });
  });
});
