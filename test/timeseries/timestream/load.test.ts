import { join } from 'node:path';
import { TimeSeriesEnv } from '../../../src/timeseries/contract';
import { BUCKETS, getBytes, ledgerItem, listKeys } from '../../local-aws';
import { describeLoadContract, MAX_IN_FLIGHT, REFERENCE, REJECTED_KEY, rejectedStem } from '../load-contract';
import { LocalTimestream, WriteRequestBody } from './local-timestream';

/**
 * The load contract against a local Timestream for LiveAnalytics (the real SDK client against a local
 * server speaking the WriteRecords protocol), and what only Timestream has: the shape of the
 * WriteRecords requests, the version rule, and records the service rejects with its reasons.
 */

const TABLES: Record<string, string> = {
  curva_carga: 'curva_carga', carga_energia: 'carga_energia', balanco_energia_subsistema: 'balanco', ear_diario_subsistema: 'ear',
};

const ts = new LocalTimestream();
const writes = () => ts.of('WriteRecords').map((r) => r.body as WriteRequestBody);

const ctx = describeLoadContract({
  assets: join(__dirname, '..', '..', '..', 'assets', 'timeseries', 'timestream'),
  tables: TABLES,
  batch: 100,
  catchAllTable: (_dataset, catchAll) => catchAll,
  start: async () => ({ [TimeSeriesEnv.WRITE_ENDPOINT]: await ts.start() }),
  stop: () => ts.close(),
  reset: () => ts.reset(),
  requests: () => ts.requests.length,
  writeOutcomes: () => {
    const outcomes = ts.of('WriteRecords').map((r) => r.outcome);
    return { ok: outcomes.filter((o) => o === 'ok').length, failed: outcomes.filter((o): o is string => o !== 'ok') };
  },
  maxConcurrent: () => ts.maxConcurrent,
  stored: async (table, dataset) => {
    const records = [...ts.store.values()].filter((r) => r.table === table && r.measureName === dataset);
    const measures: Record<string, { count: number; sum: number }> = {};
    for (const r of records) {
      for (const [m, v] of Object.entries(r.measures)) {
        measures[m] = { count: (measures[m]?.count ?? 0) + 1, sum: (measures[m]?.sum ?? 0) + v };
      }
    }
    return {
      measures,
      dimensions: [...new Set(records.flatMap((r) => Object.keys(r.dimensions)))].sort(),
      series: new Set(records.map((r) => JSON.stringify(Object.entries(r.dimensions).sort()))).size,
    };
  },
  transientFaults: () => {
    ts.failNext('ThrottlingException', 3);
    ts.failNext('status500', 2);
    ts.failNext('InternalServerException', 1);
    return { faults: ['ThrottlingException', 'ThrottlingException', 'ThrottlingException', 'status500', 'status500', 'InternalServerException'] };
  },
  failNext: (count) => {
    ts.failNext('InternalServerException', count);
    return 'InternalServerException';
  },
  throttleNext: () => {
    ts.failNext('ThrottlingException', 1);
    return 'ThrottlingException';
  },
  refusals: (['ValidationException', 'AccessDeniedException', 'ResourceNotFoundException'] as const).map((fault) => [fault, () => ts.failNext(fault, 1), fault] as const),
  expectWrites: async ({ file, dataset, result, version }) => {
    // What the server received: full requests of 100 but the last, multi-measure, versioned, never an endpoint look-up.
    const bodies = writes();
    expect(ts.requests.map((r) => r.operation).every((o) => o === 'WriteRecords')).toBe(true);
    expect(bodies).toHaveLength(result.requests);
    const partial = result.records % 100;
    expect(bodies.filter((b) => b.Records.length !== 100).map((b) => b.Records.length)).toEqual(partial ? [partial] : []);
    // Records are grouped by series, so the series' dimensions go once per request as common attributes;
    // only the last requests, holding what was left of each series, mix series.
    expect(bodies.filter((b) => !b.CommonAttributes?.Dimensions).length).toBeLessThanOrEqual(REFERENCE[file].series);
    for (const b of bodies) {
      expect(b).toMatchObject({ DatabaseName: 'ons_test', TableName: TABLES[dataset] });
      expect(b.CommonAttributes).toMatchObject({ MeasureName: dataset, MeasureValueType: 'MULTI', TimeUnit: 'MILLISECONDS', Version: version });
    }
    // Each record: its own time and DOUBLE measure values only (a plain loop: 35,040 expect() calls would be slow).
    const misshapen = bodies.flatMap((b) => b.Records).filter((r) => r.MeasureName !== undefined || r.MeasureValue !== undefined
      || r.Version !== undefined || !r.MeasureValues?.length || !r.MeasureValues.every((m) => m.Type === 'DOUBLE') || !/^\d{12,13}$/.test(r.Time ?? ''));
    expect(misshapen).toEqual([]);
    // One stored record per input row with a measure.
    expect(ts.store.size).toBe(result.records);
    const item = await ledgerItem(ctx.aws, BUCKETS.raw, (await ctx.ingest(file)).source.key);
    expect(item!.load).toMatchObject({ version });
  },
  expectCatchAll: (dataset) => {
    expect(new Set(writes().map((b) => b.TableName))).toEqual(new Set(['ons_other_datasets']));
    expect(new Set(writes().map((b) => b.CommonAttributes!.MeasureName))).toEqual(new Set([dataset]));
  },
});

test('with latency, MAX_IN_FLIGHT requests are in flight at once', async () => {
  const input = await ctx.ingest('CARGA_ENERGIA_2013.csv');
  ts.latencyMs = 50;
  const result = await ctx.loader()(input);
  expect(result).toMatchObject({ status: 'loaded', records: 1456, points: 1456, rejected: 0, requests: 15 });
  expect(ts.maxConcurrent).toBe(MAX_IN_FLIGHT);
});

describe('rejected records', () => {
  test('are reported with their reasons in the failed bucket and counted; the rest is written', async () => {
    const input = await ctx.ingest('CARGA_ENERGIA_2013.csv');
    const sudeste = (r: { dimensions: Record<string, string> }) => r.dimensions.id_subsistema === 'SE';
    ts.rejectIf = (r) => (sudeste(r) && new Date(r.time).getUTCMonth() === 0 ? 'The record timestamp is outside the time range of the data ingestion window.' : undefined);
    const result = await ctx.loader()(input);
    const expected = ts.sentRecords().filter((r) => sudeste(r) && new Date(r.time).getUTCMonth() === 0).length;
    expect(expected).toBeGreaterThan(25);
    expect(result).toMatchObject({ status: 'loaded', rejected: expected, records: 1456 - expected, points: 1456 - expected, rejectedKey: REJECTED_KEY });

    const lines = (await getBytes(ctx.aws, BUCKETS.failed, REJECTED_KEY)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(expected);
    for (const line of lines) {
      expect(line).toMatchObject({
        source: `s3://${BUCKETS.raw}/${input.source.key}`,
        table: 'carga_energia',
        reason: 'The record timestamp is outside the time range of the data ingestion window.',
        recordIndex: expect.any(Number),
        record: { dimensions: { id_subsistema: 'SE' }, measures: { val_cargaenergiamwmed: expect.any(Number) }, version: await ctx.lastModified(input.source.key) },
      });
      expect(line.record.time).toMatch(/^2013-01-/);
    }
    const item = await ledgerItem(ctx.aws, BUCKETS.raw, input.source.key);
    expect(item).toMatchObject({ status: 'loaded', load: { rejected: expected, records: 1456 - expected, failedBucket: BUCKETS.failed, rejectedKey: REJECTED_KEY } });
  });

  test('an older version is rejected with the existing version (a revised file already won)', async () => {
    const input = await ctx.ingest('CARGA_ENERGIA_2013.csv');
    const load = ctx.loader();
    await load(input);
    // The same points written again with a lower version: every record rejected, so nothing written.
    ts.bumpVersions(1);
    await expect(load(input)).rejects.toMatchObject({ name: 'NothingWritten' });
    const lines = (await getBytes(ctx.aws, BUCKETS.failed, REJECTED_KEY)).toString('utf8').trim().split('\n');
    expect(lines).toHaveLength(1456);
    expect(JSON.parse(lines[0])).toMatchObject({ existingVersion: (await ctx.lastModified(input.source.key)) + 1 });
    const item = await ledgerItem(ctx.aws, BUCKETS.raw, input.source.key);
    expect(item).toMatchObject({ status: 'loaded', error: { step: 'LoadTimeSeries', errorType: 'NothingWritten' } });
  });

  test('all records rejected: the step fails with NothingWritten, the report is there, the item stays processed', async () => {
    // The dashboard export: a catalog dataset without identity dimensions, so its records have none.
    const input = await ctx.ingest('Temporal Geração de Energia.csv');
    ts.rejectIf = () => 'Measure value is out of range.';
    const load = ctx.loader({ [TimeSeriesEnv.TABLES]: JSON.stringify({ ...TABLES, historico_geracao_energia: 'historico' }) });
    await expect(load(input)).rejects.toMatchObject({ name: 'NothingWritten', message: expect.stringMatching(/^historico rejected all \d+ records/) });
    expect(ts.sentRecords().every((r) => Object.keys(r.dimensions).length === 0)).toBe(true);
    const keys = await listKeys(ctx.aws, BUCKETS.failed, 'rejected-records/historico_geracao_energia/');
    expect(keys).toEqual([`rejected-records/historico_geracao_energia/${rejectedStem('Temporal Geração de Energia.csv')}.rejected-records.jsonl`]);
    const lines = (await getBytes(ctx.aws, BUCKETS.failed, keys[0])).toString('utf8').trim().split('\n');
    expect(lines).toHaveLength(ts.sentRecords().length);
    const item = await ledgerItem(ctx.aws, BUCKETS.raw, input.source.key);
    expect(item).toMatchObject({ status: 'processed', error: { step: 'LoadTimeSeries', errorType: 'NothingWritten' } });
    expect(item!.load).toBeUndefined();
  });
});
