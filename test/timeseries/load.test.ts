import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { ProcessInput, RouteResult } from '../../src/ingestion/contract';
import { ProcessResult, StepInput } from '../../src/ledger/contract';
import { LoadInput, LoadResult, TimeSeriesEnv } from '../../src/timeseries/contract';
import {
  BUCKETS, EXECUTION, getBytes, handlerEnv, ledgerItem, listKeys, LocalAws, loadHandler, putObject, restoreEnv, startLocalAws,
} from '../ingestion/local-aws';
import { ONS_DATA } from '../ons-data';
import { LocalTimestream, WriteRequestBody } from './local-timestream';
import { CapturedOutput, captureOutput } from '../operations/output';

/**
 * The bundled loader on real ONS files: each file goes through the bundled router and processor on
 * s3rver and dynalite first, then the loader writes it to a local Timestream (the real SDK client
 * against a local server speaking the WriteRecords protocol). What the server receives and keeps,
 * what the ledger records, and the failure paths (throttling, 5xx, rejected records, refusals).
 */

type Process = (event: ProcessInput) => Promise<ProcessResult>;
type Route = (event: StepInput) => Promise<RouteResult>;
type Load = (event: LoadInput) => Promise<LoadResult>;

const ASSETS = join(__dirname, '..', '..', 'assets', 'timeseries', 'timestream');
const DATABASE = 'ons_test';
const TABLES: Record<string, string> = {
  curva_carga: 'curva_carga', carga_energia: 'carga_energia', balanco_energia_subsistema: 'balanco', ear_diario_subsistema: 'ear',
};
const MAX_IN_FLIGHT = 4;
const REFERENCE = JSON.parse(readFileSync(join(ONS_DATA, 'reference-figures.json'), 'utf8')) as Record<string, {
  rows: number; series: number; measures: Record<string, { count: number; sum: number }>;
}>;

let aws: LocalAws;
let ts: LocalTimestream;
let tsEndpoint: string;
let route: Route;
let processFile: Process;
let handlerTmp: string;
let output: CapturedOutput;

function env(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return handlerEnv(aws, {
    TMPDIR: handlerTmp,
    [TimeSeriesEnv.DATABASE]: DATABASE,
    [TimeSeriesEnv.TABLES]: JSON.stringify(TABLES),
    [TimeSeriesEnv.CATCH_ALL_TABLE]: undefined,
    [TimeSeriesEnv.MAX_IN_FLIGHT]: String(MAX_IN_FLIGHT),
    [TimeSeriesEnv.WRITE_ENDPOINT]: tsEndpoint,
    [TimeSeriesEnv.REJECTED_RECORDS_PREFIX]: 'rejected-records/',
    [TimeSeriesEnv.WRITE_MAX_ATTEMPTS]: '5',
    [TimeSeriesEnv.WRITE_BASE_DELAY_MS]: '5',
    ...overrides,
  });
}

/** A fresh loader container with this environment (it reads it on its first call, made right away by the caller). */
function loader(overrides: Record<string, string | undefined> = {}): Load {
  return loadHandler<LoadInput, LoadResult>('load', env(overrides), ASSETS);
}

beforeAll(async () => {
  output = captureOutput();
  aws = await startLocalAws();
  ts = new LocalTimestream();
  tsEndpoint = await ts.start();
  handlerTmp = join(aws.scratch, 'handler-tmp');
  mkdirSync(handlerTmp);
  route = loadHandler('route', env());
  processFile = loadHandler('process', env());
});

afterAll(async () => {
  output.restore();
  restoreEnv();
  await ts?.close();
  await aws?.close();
});

beforeEach(() => ts.reset());

afterEach(() => {
  expect(readdirSync(handlerTmp)).toEqual([]);
});

const ingested = new Map<string, Promise<LoadInput>>();

/**
 * Uploads a real file and runs the router and the processor on it, as the state machine does; once per
 * file (the same content under another key would be a duplicate, which is not loaded).
 */
function ingest(file: string): Promise<LoadInput> {
  let input = ingested.get(file);
  if (!input) {
    const key = `incoming/${file}`;
    input = (async () => {
      await putObject(aws, BUCKETS.raw, key, readFileSync(join(ONS_DATA, file)));
      const routed = await route({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION });
      const processed = await processFile({ source: routed.source, executionArn: EXECUTION });
      expect(processed.status).toBe('processed');
      return { source: routed.source, executionArn: EXECUTION, processed };
    })();
    ingested.set(file, input);
  }
  return input;
}

async function lastModified(key: string): Promise<number> {
  const head = await aws.s3.send(new HeadObjectCommand({ Bucket: BUCKETS.raw, Key: key }));
  return head.LastModified!.getTime();
}

const writes = () => ts.of('WriteRecords').map((r) => r.body as WriteRequestBody);
const expectedPoints = (file: string) => Object.values(REFERENCE[file].measures).reduce((n, m) => n + m.count, 0);

describe('real ONS files: points written equal the non-null measure values of the input', () => {
  const cases: Array<[string, string, number]> = [
    // file, dataset, rows that have no measure at all (from the reference figures: rows minus the one measure's count)
    ['CURVA_CARGA_2023.csv', 'curva_carga', 0],
    ['CARGA_ENERGIA_2013.csv', 'carga_energia', REFERENCE['CARGA_ENERGIA_2013.csv'].rows - REFERENCE['CARGA_ENERGIA_2013.csv'].measures.val_cargaenergiamwmed.count],
    ['BALANCO_ENERGIA_SUBSISTEMA_2023.csv', 'balanco_energia_subsistema', 0],
    ['EAR_DIARIO_SUBSISTEMA_2022.csv', 'ear_diario_subsistema', 0],
  ];

  test.each(cases)('%s', async (file, dataset, skipped) => {
    const input = await ingest(file);
    const version = await lastModified(input.source.key);
    const load = loader();
    const result = await load(input);
    const rows = REFERENCE[file].rows;

    expect(result).toEqual({
      status: 'loaded',
      table: TABLES[dataset],
      records: rows - skipped,
      points: expectedPoints(file),
      rejected: 0,
      skipped,
      requests: Math.ceil((rows - skipped) / 100),
    });

    // What the server received: full requests of 100 but the last, multi-measure, versioned, never an endpoint look-up.
    const bodies = writes();
    expect(ts.requests.map((r) => r.operation).every((o) => o === 'WriteRecords')).toBe(true);
    expect(bodies).toHaveLength(result.requests);
    const partial = (rows - skipped) % 100;
    expect(bodies.filter((b) => b.Records.length !== 100).map((b) => b.Records.length)).toEqual(partial ? [partial] : []);
    // Records are grouped by series, so the series' dimensions go once per request as common attributes;
    // only the last requests, holding what was left of each series, mix series.
    expect(bodies.filter((b) => !b.CommonAttributes?.Dimensions).length).toBeLessThanOrEqual(REFERENCE[file].series);
    for (const b of bodies) {
      expect(b).toMatchObject({ DatabaseName: DATABASE, TableName: TABLES[dataset] });
      expect(b.CommonAttributes).toMatchObject({ MeasureName: dataset, MeasureValueType: 'MULTI', TimeUnit: 'MILLISECONDS', Version: version });
    }
    // Each record: its own time and DOUBLE measure values only (a plain loop: 35,040 expect() calls would be slow).
    const misshapen = bodies.flatMap((b) => b.Records).filter((r) => r.MeasureName !== undefined || r.MeasureValue !== undefined
      || r.Version !== undefined || !r.MeasureValues?.length || !r.MeasureValues.every((m) => m.Type === 'DOUBLE') || !/^\d{12,13}$/.test(r.Time ?? ''));
    expect(misshapen).toEqual([]);
    // Every dimension of a record is an identity dimension (id_subsistema), given once (per record or in common).
    const stored = [...ts.store.values()];
    expect(stored).toHaveLength(rows - skipped);
    expect(new Set(stored.flatMap((r) => Object.keys(r.dimensions)))).toEqual(new Set(['id_subsistema']));
    // Each measure: as many values, and the same sum, as the reference figures.
    for (const [measure, figures] of Object.entries(REFERENCE[file].measures)) {
      const values = stored.map((r) => r.measures[measure]).filter((v) => v !== undefined);
      expect(values).toHaveLength(figures.count);
      expect(values.reduce((a, b) => a + b, 0)).toBeCloseTo(figures.sum, 3);
    }
    // Several requests in flight, never more than the setting.
    expect(ts.maxConcurrent).toBeLessThanOrEqual(MAX_IN_FLIGHT);

    const item = await ledgerItem(aws, BUCKETS.raw, input.source.key);
    expect(item).toMatchObject({
      status: 'loaded',
      dataset,
      load: { status: 'loaded', table: TABLES[dataset], records: result.records, points: result.points, rejected: 0, skipped, requests: result.requests, version },
    });
    expect(item!.history.map((h) => h.status)).toEqual(['received', 'processing', 'processed', 'loaded']);
    expect(item!.error).toBeUndefined();
  });
});

describe('CARGA_ENERGIA_2013.csv (1,456 records, 15 requests)', () => {
  let input: LoadInput;
  let first: LoadResult;

  beforeAll(async () => {
    ts.reset();
    input = await ingest('CARGA_ENERGIA_2013.csv');
    first = await loader()(input);
  });

  test('with latency, MAX_IN_FLIGHT requests are in flight at once', async () => {
    ts.latencyMs = 50;
    const result = await loader()(input);
    expect(result).toMatchObject({ status: 'loaded', records: 1456, points: 1456, rejected: 0 });
    expect(ts.maxConcurrent).toBe(MAX_IN_FLIGHT);
  });

  test('a replay writes the same records with the same version: idempotent, nothing rejected', async () => {
    await loader()(input);
    const again = await loader()(input);
    expect(again).toEqual(first);
    const item = await ledgerItem(aws, BUCKETS.raw, input.source.key);
    expect(item!.status).toBe('loaded');
  });

  test('throttling and 500s are retried with backoff and the load completes', async () => {
    ts.failNext('ThrottlingException', 3);
    ts.failNext('status500', 2);
    ts.failNext('InternalServerException', 1);
    const result = await loader()(input);
    expect(result).toMatchObject({ status: 'loaded', records: 1456, points: 1456, rejected: 0, requests: 15 });
    const outcomes = ts.of('WriteRecords').map((r) => r.outcome);
    expect(outcomes.filter((o) => o !== 'ok')).toEqual(expect.arrayContaining(['ThrottlingException', 'status500', 'InternalServerException']));
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(15);
    expect(outcomes.filter((o) => o !== 'ok')).toHaveLength(6);
    expect(ts.store.size).toBe(1456);
  });

  test('throttling that outlasts the attempts fails the step as TimeSeriesUnavailable (safe to retry)', async () => {
    ts.failNext('ThrottlingException', 5);
    await expect(loader({ [TimeSeriesEnv.MAX_IN_FLIGHT]: '1' })(input)).rejects.toMatchObject({ name: 'TimeSeriesUnavailable' });
    const item = await ledgerItem(aws, BUCKETS.raw, input.source.key);
    expect(item!.error).toMatchObject({ step: 'LoadTimeSeries', errorType: 'TimeSeriesUnavailable' });
  });

  test.each(['ValidationException', 'AccessDeniedException', 'ResourceNotFoundException'] as const)('%s is not retried: TimeSeriesWriteRefused', async (fault) => {
    ts.failNext(fault, 1);
    await expect(loader({ [TimeSeriesEnv.MAX_IN_FLIGHT]: '1' })(input)).rejects.toMatchObject({ name: 'TimeSeriesWriteRefused', message: expect.stringContaining(fault) });
    // One failed request, nothing sent after it.
    expect(ts.of('WriteRecords').filter((r) => r.outcome !== 'ok')).toHaveLength(1);
    expect(ts.of('WriteRecords').at(-1)!.outcome).toBe(fault);
  });
});

describe('rejected records', () => {
  test('are reported with their reasons in the failed bucket and counted; the rest is written', async () => {
    const input = await ingest('CARGA_ENERGIA_2013.csv');
    const sudeste = (r: { dimensions: Record<string, string> }) => r.dimensions.id_subsistema === 'SE';
    ts.rejectIf = (r) => (sudeste(r) && new Date(r.time).getUTCMonth() === 0 ? 'The record timestamp is outside the time range of the data ingestion window.' : undefined);
    const result = await loader()(input);
    const rejectedKey = 'rejected-records/carga_energia/CARGA_ENERGIA_2013.rejected-records.jsonl';
    const expected = ts.sentRecords().filter((r) => sudeste(r) && new Date(r.time).getUTCMonth() === 0).length;
    expect(expected).toBeGreaterThan(25);
    expect(result).toMatchObject({ status: 'loaded', rejected: expected, records: 1456 - expected, points: 1456 - expected, rejectedKey });

    const lines = (await getBytes(aws, BUCKETS.failed, rejectedKey)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(expected);
    for (const line of lines) {
      expect(line).toMatchObject({
        source: `s3://${BUCKETS.raw}/${input.source.key}`,
        table: 'carga_energia',
        reason: 'The record timestamp is outside the time range of the data ingestion window.',
        recordIndex: expect.any(Number),
        record: { dimensions: { id_subsistema: 'SE' }, measures: { val_cargaenergiamwmed: expect.any(Number) }, version: await lastModified(input.source.key) },
      });
      expect(line.record.time).toMatch(/^2013-01-/);
    }
    const item = await ledgerItem(aws, BUCKETS.raw, input.source.key);
    expect(item).toMatchObject({ status: 'loaded', load: { rejected: expected, records: 1456 - expected, failedBucket: BUCKETS.failed, rejectedKey } });
  });

  test('an older version is rejected with the existing version (a revised file already won)', async () => {
    const input = await ingest('CARGA_ENERGIA_2013.csv');
    const load = loader();
    await load(input);
    // The same points written again with a lower version: every record rejected, so nothing written.
    ts.bumpVersions(1);
    await expect(load(input)).rejects.toMatchObject({ name: 'NothingWritten' });
    const lines = (await getBytes(aws, BUCKETS.failed, 'rejected-records/carga_energia/CARGA_ENERGIA_2013.rejected-records.jsonl')).toString('utf8').trim().split('\n');
    expect(lines).toHaveLength(1456);
    expect(JSON.parse(lines[0])).toMatchObject({ existingVersion: (await lastModified(input.source.key)) + 1 });
    const item = await ledgerItem(aws, BUCKETS.raw, input.source.key);
    expect(item).toMatchObject({ status: 'loaded', error: { step: 'LoadTimeSeries', errorType: 'NothingWritten' } });
  });

  test('all records rejected: the step fails with NothingWritten, the report is there, the item stays processed', async () => {
    // The dashboard export: a catalog dataset without identity dimensions, so its records have none.
    const input = await ingest('Temporal Geração de Energia.csv');
    ts.rejectIf = () => 'Measure value is out of range.';
    const load = loader({ [TimeSeriesEnv.TABLES]: JSON.stringify({ ...TABLES, historico_geracao_energia: 'historico' }) });
    await expect(load(input)).rejects.toMatchObject({ name: 'NothingWritten', message: expect.stringMatching(/^historico rejected all \d+ records/) });
    expect(ts.sentRecords().every((r) => Object.keys(r.dimensions).length === 0)).toBe(true);
    const keys = await listKeys(aws, BUCKETS.failed, 'rejected-records/historico_geracao_energia/');
    expect(keys).toEqual(['rejected-records/historico_geracao_energia/Temporal_Geracao_de_Energia.rejected-records.jsonl']);
    const lines = (await getBytes(aws, BUCKETS.failed, keys[0])).toString('utf8').trim().split('\n');
    expect(lines).toHaveLength(ts.sentRecords().length);
    const item = await ledgerItem(aws, BUCKETS.raw, input.source.key);
    expect(item).toMatchObject({ status: 'processed', error: { step: 'LoadTimeSeries', errorType: 'NothingWritten' } });
    expect(item!.load).toBeUndefined();
  });
});

describe('datasets without a table', () => {
  test('not loaded: nothing written, the ledger says why, the step succeeds', async () => {
    const input = await ingest('CMO_SEMANAL_2013.csv');
    const result = await loader()(input);
    expect(result).toEqual({
      status: 'notLoaded',
      records: 0,
      points: 0,
      rejected: 0,
      skipped: 0,
      requests: 0,
      reason: 'dataset cmo_semanal has no time-series table (not in the catalog, and no catch-all table is configured)',
    });
    expect(ts.requests).toHaveLength(0);
    const item = await ledgerItem(aws, BUCKETS.raw, input.source.key);
    expect(item).toMatchObject({ status: 'processed', load: { status: 'notLoaded', reason: result.reason } });
  });

  test('with a catch-all table, they go there', async () => {
    const input = await ingest('CMO_SEMANAL_2013.csv');
    const result = await loader({ [TimeSeriesEnv.CATCH_ALL_TABLE]: 'ons_other_datasets' })(input);
    expect(result).toMatchObject({ status: 'loaded', table: 'ons_other_datasets', records: 208, points: 4 * 208 });
    expect(new Set(writes().map((b) => b.TableName))).toEqual(new Set(['ons_other_datasets']));
    expect(new Set(writes().map((b) => b.CommonAttributes!.MeasureName))).toEqual(new Set(['cmo_semanal']));
    const item = await ledgerItem(aws, BUCKETS.raw, input.source.key);
    expect(item).toMatchObject({ status: 'loaded', load: { status: 'loaded', table: 'ons_other_datasets' } });
  });
});

describe('inputs the loader refuses (InvalidLoadInput, nothing written)', () => {
  let input: LoadInput;
  beforeAll(async () => {
    input = await ingest('CARGA_ENERGIA_2013.csv');
  });

  test.each<[string, (i: LoadInput) => unknown, RegExp]>([
    ['a duplicate', (i) => ({ ...i, processed: { status: 'duplicate', contentHash: 'x', duplicateOf: 's3://b/k?versionId=null' } }), /status is 'duplicate'/],
    ['no Parquet parts', (i) => ({ ...i, processed: { ...i.processed, parquetKeys: [] } }), /parquetKeys is empty/],
    ['no processed result', (i) => ({ source: i.source, executionArn: i.executionArn }), /processed is missing/],
    ['a part of another dataset', (i) => ({ ...i, processed: { ...i.processed, parquetKeys: ['processed/dataset=curva_carga/year=2023/month=01/x.parquet'] } }), /not a Parquet part of carga_energia/],
    ['a part listed twice', (i) => ({ ...i, processed: { ...i.processed, parquetKeys: [i.processed.parquetKeys![0], i.processed.parquetKeys![0]] } }), /twice/],
    ['no source', (i) => ({ ...i, source: undefined }), /source must have a bucket and a key/],
  ])('%s', async (_name, change, message) => {
    await expect(loader()(change(input) as LoadInput)).rejects.toMatchObject({ name: 'InvalidLoadInput', message: expect.stringMatching(message) });
    expect(ts.requests).toHaveLength(0);
  });
});
