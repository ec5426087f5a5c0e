import { join } from 'node:path';
import { LocalInfluxStack, RETENTION_POLICY } from './local-influxdb';
import { CATALOG } from '../../../src/ons/catalog';
import { InfluxDbEnv, TimeSeriesEnv } from '../../../src/timeseries/contract';
import { LocalSecretsManager } from '../../local-secrets-manager';
import { DATABASE, describeQueryContract, RANGE, StoredPoint } from '../query-contract';
import { LocalTimestream } from '../timestream/local-timestream';

/**
 * The query contract against a real InfluxDB 1.x server behind a recording proxy, the read token from
 * a local Secrets Manager; and what only InfluxDB has: the InfluxQL it sends, its page cursors (the
 * other engine's token refused), an unreachable server, and that the token never appears in any output.
 */

const READ_TOKEN = 'influx-read-token-Qw3rTy-do-not-log';
const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ons-influx-read-XyZ123';

const local = new LocalInfluxStack(SECRET_ARN, READ_TOKEN);
const { influx, proxy } = local;
const ts = new LocalTimestream();

const ctx = describeQueryContract({
  assets: join(__dirname, '..', '..', '..', 'assets', 'timeseries', 'influxdb'),
  tables: {
    curva_carga: 'curva_carga',
    carga_energia: 'carga_energia',
    balanco_energia_subsistema: 'balanco_energia_subsistema',
    intercambio_nacional: 'intercambio_nacional',
    historico_geracao_energia: 'historico_geracao_energia',
  },
  start: () => local.start(),
  stop: async () => {
    await local.stop();
    await ts.close();
  },
  reset: () => proxy.reset(),
  requests: () => proxy.requests.length,
  stored: async (dataset) => {
    const [series] = await influx.query(`SELECT * FROM "${dataset}"`);
    if (!series) return [];
    const dimensions = new Set(CATALOG.find((d) => d.id === dataset)!.dimensions);
    return series.values.map((row): StoredPoint => {
      const point = { time: row[0] as number, dimensions: {} as Record<string, string>, measures: {} as Record<string, number> };
      series.columns.forEach((column, i) => {
        if (i === 0 || row[i] === null) return;
        if (dimensions.has(column)) point.dimensions[column] = row[i] as string;
        else point.measures[column] = row[i] as number;
      });
      return point;
    });
  },
  busy: [500, 503, 429].map((status) => [`InfluxDB answering ${status}`, () => proxy.failNext({ status }, 1, '/query')] as const),
  unexpected: () => {
    // A refused token (401): the reason only in the log.
    proxy.failNext({ status: 401, body: JSON.stringify({ error: 'authorization failed' }) }, 1, '/query');
    return { errorMessage: expect.stringContaining('authorization failed') };
  },
});

afterAll(() => {
  const output = ctx.output;
  const everything = [...output.log.mock.calls.flat(), ...output.error.mock.calls.flat(), ...output.other].join('\n');
  expect(everything).not.toContain(READ_TOKEN);
});

describe('the InfluxDB query handler', () => {
  test('the InfluxQL it sends: built from the validated request, with the read token', async () => {
    const { status, body } = await ctx.query('curva_carga', { from: '2023-01-01T00:00-03:00', to: '2023-01-01T06:00Z', id_subsistema: 'São Paulo (SE/CO) 2' });
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
    const daily = await ctx.query('curva_carga', { ...RANGE, interval: '1mo', aggregation: 'min' });
    expect(daily.status).toBe(200);
    expect(proxy.of('/query')[1].params.get('q')).toBe('SELECT sum("val_cargaenergiahomwmed") AS "sum", count("val_cargaenergiahomwmed") AS "count", '
      + 'min("val_cargaenergiahomwmed") AS "min", max("val_cargaenergiahomwmed") AS "max" FROM "curva_carga" '
      + 'WHERE time >= \'2023-01-01T00:00:00.000Z\' AND time < \'2023-02-01T00:00:00.000Z\' GROUP BY time(1d, 3h), "id_subsistema" fill(none)');
    // Across the 2013 DST end: one statement per offset, local days starting at 02:00Z, then at 03:00Z.
    const dst = await ctx.query('curva_carga', { from: '2013-02-01', to: '2013-03-01', interval: '1d', aggregation: 'sum', id_subsistema: 'SE' });
    expect(dst.status).toBe(200);
    const select = 'SELECT sum("val_cargaenergiahomwmed") AS "sum", count("val_cargaenergiahomwmed") AS "count", '
      + 'min("val_cargaenergiahomwmed") AS "min", max("val_cargaenergiahomwmed") AS "max" FROM "curva_carga" ';
    expect(proxy.of('/query')[2].params.get('q')).toBe(
      `${select}WHERE time >= '2013-02-01T00:00:00.000Z' AND time < '2013-02-17T02:00:00.000Z' AND "id_subsistema" = 'SE' GROUP BY time(1d, 2h), "id_subsistema" fill(none); `
      + `${select}WHERE time >= '2013-02-17T02:00:00.000Z' AND time < '2013-03-01T00:00:00.000Z' AND "id_subsistema" = 'SE' GROUP BY time(1d, 3h), "id_subsistema" fill(none)`);
    // The two pieces of the 25-hour Saturday are one day.
    expect(dst.body.points.filter((p: { local: string }) => p.local === '2013-02-16')).toEqual([
      { time: '2013-02-16T02:00:00.000Z', local: '2013-02-16', period: '2013-02-16', dimensions: { id_subsistema: 'SE' }, value: expect.any(Number) },
    ]);
  });

  test('the other engine\'s page token is refused', async () => {
    const timestreamQuery = await ctx.queryHandler({ [TimeSeriesEnv.QUERY_ENDPOINT]: await ts.start() }, join(__dirname, '..', '..', '..', 'assets', 'timeseries', 'timestream'));
    ts.onQuery = () => ({ body: { QueryId: 'q', Rows: [], ColumnInfo: [], NextToken: 'timestream-page-2' } });
    const first = await timestreamQuery('curva_carga', RANGE);
    expect(first.body.nextToken).toEqual(expect.any(String));
    const crossed = await ctx.query('curva_carga', { ...RANGE, nextToken: first.body.nextToken });
    expect(crossed).toMatchObject({ status: 400, body: { error: { code: 'InvalidNextToken' } } });
    expect(proxy.requests).toHaveLength(0);
  });

  test('InfluxDB unreachable: 503', async () => {
    const dead = new LocalSecretsManager();
    const url = await dead.start();
    await dead.close();
    const unreachable = await ctx.queryHandler({ [InfluxDbEnv.URL]: url });
    const { status, body } = await unreachable('curva_carga', RANGE);
    expect({ status, code: body.error.code }).toEqual({ status: 503, code: 'ServiceUnavailable' });
  });
});
