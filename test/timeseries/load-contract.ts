import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { Ledger } from '../../src/ledger/runtime/ledger';
import { sourceName } from '../../src/ons/convert';
import { outputStem, sourceId, sourceIdentity } from '../../src/ons/layout';
import { LoadInput, LoadResult, TimeSeriesEnv } from '../../src/timeseries/contract';
import {
  BUCKETS, handlerEnv, Ingest, ingester, ledgerItem, LocalAws, loadHandler, restoreEnv, startLocalAws, TABLE,
} from '../local-aws';
import { ONS_DATA } from '../ons-data';
import { CapturedOutput, captureOutput } from '../runtime/output';

/**
 * The loader contract every time-series engine meets, run by each engine's `load.test.ts` against its
 * local server: real ONS files routed and processed by the bundled handlers on s3rver and dynalite,
 * then loaded by the engine's bundled loader. What the store keeps (counts and sums per measure,
 * series), what the ledger records, idempotent reloads, retries, refusals, datasets without a table,
 * and the inputs the loader refuses. Each engine file adds what only its protocol has.
 */

export type Load = (event: LoadInput) => Promise<LoadResult>;
export type Env = Record<string, string | undefined>;

/** Count and sum of the values of each measure. */
export type Figures = Record<string, { count: number; sum: number }>;

/** A time-series engine behind its local server, as the load contract drives it. */
export interface LoadEngine {
  /** The engine's bundled handlers (`assets/timeseries/<engine>`). */
  readonly assets: string;
  /** The engine's table (measurement) of each catalog dataset. */
  readonly tables: Record<string, string>;
  /** Records (lines) per write request. */
  readonly batch: number;
  /** Answers the engine refuses to take (not retried): the fault, how to plan it on the next write, a text of the error. */
  readonly refusals: ReadonlyArray<readonly [fault: string | number, plan: () => void, message: string]>;
  /** Where a dataset without a table goes when the catch-all table is set. */
  catchAllTable(dataset: string, catchAll: string): string;
  /** Starts the engine's local server(s); returns the engine's own environment entries. */
  start(): Promise<Env>;
  stop(): Promise<void>;
  /** Before each test: nothing stored, nothing recorded, no fault planned. */
  reset(): Promise<void> | void;
  /** Requests the store received since the reset (writes, and any other). */
  requests(): number;
  /** Outcomes of the write requests: how many succeeded, and the faults answered. */
  writeOutcomes(): { ok: number; failed: Array<string | number> };
  /** The most write requests in flight at once. */
  maxConcurrent(): number;
  /** What the store keeps of a dataset in a table: figures per measure, its series and their identity dimensions. */
  stored(table: string, dataset: string): Promise<{ measures: Figures; dimensions: string[]; series: number }>;
  /** Plans transient faults on the next writes (all retried); returns them, and the environment the retries need. */
  transientFaults(): { faults: Array<string | number>; env?: Env };
  /** Plans `count` transient faults (not throttling) on the next writes; returns a text of the error the step fails with. */
  failNext(count: number): string;
  /** Plans a throttled answer on the next write; returns a text of the error the step fails with. */
  throttleNext(): string;
  /** Engine-specific checks of the requests of a real file's load. */
  expectWrites(load: { file: string; dataset: string; input: LoadInput; result: LoadResult; version: number }): Promise<void> | void;
  /** Engine-specific checks of a load into the catch-all table. */
  expectCatchAll(dataset: string): Promise<void> | void;
}

/** What an engine file uses in its own tests (set before they run). */
export interface LoadContext {
  aws: LocalAws;
  output: CapturedOutput;
  ingest: Ingest;
  /** A fresh loader container with this environment (it reads it on its first call, made right away by the caller). */
  loader(overrides?: Env): Load;
  /** The S3 last-modified time of a raw object: the version of its points. */
  lastModified(key: string): Promise<number>;
}

export const DATABASE = 'ons_test';
export const MAX_IN_FLIGHT = 3;
export const REFERENCE = JSON.parse(readFileSync(join(ONS_DATA, 'reference-figures.json'), 'utf8')) as Record<string, {
  rows: number; series: number; measures: Record<string, { count: number; sum: number }>;
}>;
export const expectedPoints = (file: string) => Object.values(REFERENCE[file].measures).reduce((n, m) => n + m.count, 0);
/** The loader's report of CARGA_ENERGIA_2013.csv, ingested as `incoming/<file>`: named after the source, like the processor's outputs. */
export const REJECTED_KEY = `rejected-records/carga_energia/${rejectedStem('CARGA_ENERGIA_2013.csv')}.rejected-records.jsonl`;

/** The output stem of a file the tests ingest as `incoming/<file>` in the raw bucket. */
export function rejectedStem(file: string): string {
  const key = `incoming/${file}`;
  return outputStem(sourceName(file), sourceId(sourceIdentity(key, BUCKETS.raw)));
}

export function describeLoadContract(engine: LoadEngine): LoadContext {
  let handlerTmp: string;
  let engineEnv: Env;
  const ctx = {} as LoadContext;

  const env = (overrides: Env = {}): Env => handlerEnv(ctx.aws, {
    TMPDIR: handlerTmp,
    [TimeSeriesEnv.DATABASE]: DATABASE,
    [TimeSeriesEnv.TABLES]: JSON.stringify(engine.tables),
    [TimeSeriesEnv.CATCH_ALL_TABLE]: undefined,
    [TimeSeriesEnv.MAX_IN_FLIGHT]: String(MAX_IN_FLIGHT),
    [TimeSeriesEnv.REJECTED_RECORDS_PREFIX]: 'rejected-records/',
    [TimeSeriesEnv.WRITE_MAX_ATTEMPTS]: '5',
    [TimeSeriesEnv.WRITE_BASE_DELAY_MS]: '5',
    ...engineEnv,
    ...overrides,
  });
  ctx.loader = (overrides = {}) => loadHandler<LoadInput, LoadResult>('load', env(overrides), engine.assets);
  ctx.lastModified = async (key) => {
    const head = await ctx.aws.s3.send(new HeadObjectCommand({ Bucket: BUCKETS.raw, Key: key }));
    return head.LastModified!.getTime();
  };

  beforeAll(async () => {
    ctx.output = captureOutput();
    ctx.aws = await startLocalAws();
    engineEnv = await engine.start();
    handlerTmp = join(ctx.aws.scratch, 'handler-tmp');
    mkdirSync(handlerTmp);
    ctx.ingest = ingester(ctx.aws, env());
  });

  afterAll(async () => {
    ctx.output?.restore();
    restoreEnv();
    await engine.stop();
    await ctx.aws?.close();
  });

  beforeEach(() => engine.reset());

  afterEach(() => {
    expect(readdirSync(handlerTmp)).toEqual([]);
  });

  describe('real ONS files: what the store keeps equals the input', () => {
    const cases: Array<[string, string, number]> = [
      // file, dataset, rows that have no measure at all (from the reference figures: rows minus the one measure's count)
      ['CURVA_CARGA_2023.csv', 'curva_carga', 0],
      ['CARGA_ENERGIA_2013.csv', 'carga_energia', REFERENCE['CARGA_ENERGIA_2013.csv'].rows - REFERENCE['CARGA_ENERGIA_2013.csv'].measures.val_cargaenergiamwmed.count],
      ['BALANCO_ENERGIA_SUBSISTEMA_2023.csv', 'balanco_energia_subsistema', 0],
      ['EAR_DIARIO_SUBSISTEMA_2022.csv', 'ear_diario_subsistema', 0],
    ];

    test.each(cases)('%s', async (file, dataset, skipped) => {
      const input = await ctx.ingest(file);
      const version = await ctx.lastModified(input.source.key);
      const result = await ctx.loader()(input);
      const records = REFERENCE[file].rows - skipped;
      const table = engine.tables[dataset];
      expect(result).toEqual({
        status: 'loaded', table, records, points: expectedPoints(file), rejected: 0, skipped, requests: Math.ceil(records / engine.batch),
      });

      // Each measure: as many values, and the same sum, as the reference figures; one series per subsystem,
      // identified by the identity dimension alone.
      const stored = await engine.stored(table, dataset);
      expect(Object.keys(stored.measures).sort()).toEqual(Object.keys(REFERENCE[file].measures).sort());
      for (const [measure, figures] of Object.entries(REFERENCE[file].measures)) {
        expect(stored.measures[measure].count).toBe(figures.count);
        expect(stored.measures[measure].sum).toBeCloseTo(figures.sum, 3);
      }
      expect(stored.dimensions).toEqual(['id_subsistema']);
      expect(stored.series).toBe(REFERENCE[file].series);

      // One request per batch, all of them answered, never more than MAX_IN_FLIGHT in flight.
      expect(engine.writeOutcomes()).toEqual({ ok: result.requests, failed: [] });
      expect(engine.requests()).toBe(result.requests);
      expect(engine.maxConcurrent()).toBeLessThanOrEqual(MAX_IN_FLIGHT);
      await engine.expectWrites({ file, dataset, input, result, version });

      const item = await ledgerItem(ctx.aws, BUCKETS.raw, input.source.key);
      expect(item).toMatchObject({
        status: 'loaded',
        dataset,
        load: { status: 'loaded', table, records, points: result.points, rejected: 0, skipped, requests: result.requests },
      });
      expect(item!.history.map((h) => h.status)).toEqual(['received', 'processing', 'processed', 'loaded']);
      expect(item!.error).toBeUndefined();
    });
  });

  describe('CARGA_ENERGIA_2013.csv', () => {
    let input: LoadInput;
    beforeAll(async () => {
      input = await ctx.ingest('CARGA_ENERGIA_2013.csv');
    });
    const measure = 'val_cargaenergiamwmed';
    const points = () => REFERENCE['CARGA_ENERGIA_2013.csv'].measures[measure].count;
    const requests = () => Math.ceil(points() / engine.batch);

    test('a reload writes the same points with the same version: idempotent, nothing rejected, the same counts and sums', async () => {
      const first = await ctx.loader()(input);
      const before = await engine.stored('carga_energia', 'carga_energia');
      const again = await ctx.loader()(input);
      expect(again).toEqual(first);
      expect(await engine.stored('carga_energia', 'carga_energia')).toEqual(before);
      expect(before.measures[measure].count).toBe(points());
      const item = await ledgerItem(ctx.aws, BUCKETS.raw, input.source.key);
      expect(item!.status).toBe('loaded');
    });

    test('transient errors (throttling, 5xx, no answer) are retried with backoff and the load completes', async () => {
      const { faults, env: retryEnv } = engine.transientFaults();
      const result = await ctx.loader(retryEnv)(input);
      expect(result).toMatchObject({ status: 'loaded', records: points(), points: points(), rejected: 0, requests: requests() });
      const outcomes = engine.writeOutcomes();
      expect(outcomes.failed.map(String).sort()).toEqual(faults.map(String).sort());
      expect(outcomes.ok).toBe(requests());
      expect((await engine.stored('carga_energia', 'carga_energia')).measures[measure].count).toBe(points());
    });

    test('errors that outlast the attempts fail the step as TimeSeriesUnavailable (safe to retry)', async () => {
      const message = engine.failNext(5);
      await expect(ctx.loader({ [TimeSeriesEnv.MAX_IN_FLIGHT]: '1' })(input)).rejects.toMatchObject({ name: 'TimeSeriesUnavailable', message: expect.stringContaining(message) });
      expect(engine.requests()).toBe(5);
      const item = await ledgerItem(ctx.aws, BUCKETS.raw, input.source.key);
      expect(item!.error).toMatchObject({ step: 'LoadTimeSeries', errorType: 'TimeSeriesUnavailable' });
    });

    test('throttling that outlasts the throttle budget fails the step as TimeSeriesThrottled (load again later), not as unavailable', async () => {
      const message = engine.throttleNext();
      // A budget of 0: the first throttled answer spends it, so nothing here waits.
      const load = ctx.loader({ [TimeSeriesEnv.MAX_IN_FLIGHT]: '1', [TimeSeriesEnv.THROTTLE_BUDGET_MS]: '0' });
      await expect(load(input)).rejects.toMatchObject({ name: 'TimeSeriesThrottled', message: expect.stringContaining(message) });
      expect(engine.requests()).toBe(1);
      const item = await ledgerItem(ctx.aws, BUCKETS.raw, input.source.key);
      expect(item!.error).toMatchObject({ step: 'LoadTimeSeries', errorType: 'TimeSeriesThrottled' });
    });

    test.each(engine.refusals.map(([fault, plan, message]) => [String(fault), plan, message] as const))('%s is not retried: TimeSeriesWriteRefused', async (fault, plan, message) => {
      plan();
      await expect(ctx.loader({ [TimeSeriesEnv.MAX_IN_FLIGHT]: '1' })(input)).rejects.toMatchObject({ name: 'TimeSeriesWriteRefused', message: expect.stringContaining(message) });
      // One failed request, nothing sent after it.
      expect(engine.writeOutcomes().failed.map(String)).toEqual([fault]);
      expect(engine.requests()).toBe(1);
    });
  });

  describe('datasets without a table', () => {
    test('not loaded: nothing written, the ledger says why, the step succeeds', async () => {
      const input = await ctx.ingest('CMO_SEMANAL_2013.csv');
      const result = await ctx.loader()(input);
      expect(result).toEqual({
        status: 'notLoaded',
        records: 0,
        points: 0,
        rejected: 0,
        skipped: 0,
        requests: 0,
        reason: 'dataset cmo_semanal has no time-series table (not in the catalog, and no catch-all table is configured)',
      });
      expect(engine.requests()).toBe(0);
      const item = await ledgerItem(ctx.aws, BUCKETS.raw, input.source.key);
      expect(item).toMatchObject({ status: 'processed', load: { status: 'notLoaded', reason: result.reason } });
    });

    test('a version a newer one replaced before its load: not loaded, nothing written, the ledger names the newer version', async () => {
      const input = await ctx.ingest('CURVA_CARGA_2021.xlsx'); // processed, not loaded by any other test
      // What the newer version's publication records on this one (publish.ts): its outputs now hold the newer rows.
      await new Ledger(ctx.aws.ddb, TABLE).recordSuperseded({ pk: `s3://${BUCKETS.raw}/${input.source.key}`, sk: 'null' }, 'v-newer');
      const result = await ctx.loader()(input);
      expect(result).toMatchObject({ status: 'notLoaded', records: 0, points: 0, requests: 0, reason: expect.stringContaining('version v-newer of') });
      expect(engine.requests()).toBe(0);
      const item = await ledgerItem(ctx.aws, BUCKETS.raw, input.source.key);
      expect(item).toMatchObject({ status: 'processed', supersededBy: 'v-newer', load: { status: 'notLoaded', reason: result.reason } });
    });

    test('with a catch-all table, they go there', async () => {
      const input = await ctx.ingest('CMO_SEMANAL_2013.csv');
      const table = engine.catchAllTable('cmo_semanal', 'ons_other_datasets');
      const result = await ctx.loader({ [TimeSeriesEnv.CATCH_ALL_TABLE]: 'ons_other_datasets' })(input);
      expect(result).toMatchObject({ status: 'loaded', table, records: 208, points: 4 * 208, rejected: 0 });
      await engine.expectCatchAll('cmo_semanal');
      const item = await ledgerItem(ctx.aws, BUCKETS.raw, input.source.key);
      expect(item).toMatchObject({ status: 'loaded', load: { status: 'loaded', table } });
    });
  });

  describe('inputs the loader refuses (InvalidLoadInput, nothing written)', () => {
    let input: LoadInput;
    beforeAll(async () => {
      input = await ctx.ingest('CARGA_ENERGIA_2013.csv');
    });

    test.each<[string, (i: LoadInput) => unknown, RegExp]>([
      ['a duplicate', (i) => ({ ...i, processed: { status: 'duplicate', contentHash: 'x', duplicateOf: 's3://b/k?versionId=null' } }), /status is 'duplicate'/],
      ['no Parquet parts', (i) => ({ ...i, processed: { ...i.processed, parquetKeys: [] } }), /parquetKeys is empty/],
      ['no processed result', (i) => ({ source: i.source, executionArn: i.executionArn }), /processed is missing/],
      ['a part of another dataset', (i) => ({ ...i, processed: { ...i.processed, parquetKeys: ['processed/dataset=curva_carga/year=2023/month=01/x.parquet'] } }), /not a Parquet part of carga_energia/],
      ['a part listed twice', (i) => ({ ...i, processed: { ...i.processed, parquetKeys: [i.processed.parquetKeys![0], i.processed.parquetKeys![0]] } }), /twice/],
      ['no source', (i) => ({ ...i, source: undefined }), /source must have a bucket and a key/],
    ])('%s', async (_name, change, message) => {
      await expect(ctx.loader()(change(input) as LoadInput)).rejects.toMatchObject({ name: 'InvalidLoadInput', message: expect.stringMatching(message) });
      expect(engine.requests()).toBe(0);
    });
  });

  return ctx;
}
