import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { LocalAthena } from './local-athena';
import { DataLake, PlatformStage } from '../../../src';
import { currentViewName } from '../../../src/lake/tables';
import { CATALOG } from '../../../src/ons/catalog';
import { checksum } from '../../../src/runtime/page-token';
import { LakeQueryEnv, TimeSeriesEnv } from '../../../src/timeseries/contract';
import { queryConfigFromEnv } from '../../../src/timeseries/lake/runtime/query';
import { encodeToken } from '../../../src/timeseries/runtime/request';
import { ENV } from '../../helpers';
import { BUCKETS, getBytes } from '../../local-aws';
import { brasilia, Call, describeQueryContract, MAX_POINTS, RANGE, StoredPoint } from '../query-contract';

/**
 * The query contract against the lake engine: the bundled query handler, the real @aws-sdk/client-athena over HTTP,
 * and the local Athena (DuckDB) with the catalog of a synthesized DataLake, over the Parquet the real processor
 * wrote from the contract's ONS files (copied from the local processed bucket as laid out there). Expected answers
 * come from that Parquet read directly here. Then what only the lake has: the SQL and execution parameters as sent,
 * inert injection attempts, pages of one query execution, result reuse, the deadline (504, query cancelled) and
 * the workgroup's bytes-scanned cutoff (400).
 */

const stack = new Stack(new App(), 'Lake', { env: ENV });
new DataLake(stack, 'Lake', { stage: PlatformStage.PROD });
const template = Template.fromStack(stack);

const scratch = mkdtempSync(join(tmpdir(), 'lake-query-'));
const processedDir = join(scratch, 'processed');
const athena = new LocalAthena({ template, processedDir });
let endpoint: string;
let sinceReset = 0;

const SERVED = ['curva_carga', 'carga_energia', 'balanco_energia_subsistema', 'intercambio_nacional', 'historico_geracao_energia'];

/** The rows of a dataset's Parquet, read with DuckDB (not through the handler, its SQL or the local Athena). */
async function parquetPoints(dataset: string, dir = processedDir): Promise<StoredPoint[]> {
  const root = join(dir, `dataset=${dataset}`);
  if (!existsSync(root)) return [];
  const def = CATALOG.find((d) => d.id === dataset)!;
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const q = (n: string) => `"${n}"`;
    const reader = await connection.runAndReadAll(`SELECT CAST(epoch_ms("time") AS DOUBLE) AS t, ${[...def.dimensions, ...def.measures.map((m) => m.name)].map(q).join(', ')}
      FROM read_parquet('${join(root, '*', '*', '*.parquet')}', hive_partitioning = true, union_by_name = true)`);
    return reader.getRowObjectsJS().map((row: any) => ({
      time: row.t,
      dimensions: Object.fromEntries(def.dimensions.filter((d) => row[d] !== null).map((d) => [d, String(row[d])])),
      measures: Object.fromEntries(def.measures.filter((m) => row[m.name] !== null).map((m) => [m.name, Number(row[m.name])])),
    }));
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

const ctx = describeQueryContract({
  assets: join(__dirname, '..', '..', '..', 'assets', 'timeseries', 'lake'),
  tables: Object.fromEntries(SERVED.map((id) => [id, currentViewName(id)])),
  start: async () => {
    endpoint = await athena.start();
    return {
      [TimeSeriesEnv.DATABASE]: athena.database,
      [LakeQueryEnv.WORK_GROUP]: athena.workGroup,
      [LakeQueryEnv.ATHENA_ENDPOINT]: endpoint,
      [LakeQueryEnv.POLL_DELAY_MS]: '1',
    };
  },
  stop: () => athena.close(),
  reset: () => {
    athena.clearFaults();
    sinceReset = athena.requests.length;
  },
  requests: () => athena.requests.length - sinceReset,
  stored: (dataset) => parquetPoints(dataset),
  busy: [['TooManyRequestsException (active queries quota) that outlasts the SDK retries', () => athena.throttleNextStarts(3)]],
  unexpected: () => {
    athena.failNext('StartQueryExecution', 'AccessDeniedException', 'User: arn:aws:sts::123456789012:assumed-role/secret-role is not authorized to perform: athena:StartQueryExecution');
    return { errorType: 'AccessDeniedException', errorMessage: expect.stringContaining('secret-role') };
  },
  // No loader: the processor's Parquet is the store. Copied as the processed bucket holds it (below its data prefix).
  load: async (aws, input) => {
    for (const key of input.processed.parquetKeys ?? []) {
      const file = join(processedDir, key.replace(/^processed\//, ''));
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, await getBytes(aws, BUCKETS.processed, key));
    }
    expect(input.processed.parquetKeys?.length).toBeGreaterThan(0);
  },
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The year-month partitions of Parquet files read. */
const partitions = (files: readonly string[]) => [...new Set(files.map((f) => /year=(\d+)\/month=(\d+)/.exec(f)!.slice(1).join('-')))].sort();
const call = (dataset: string, query: Record<string, string>) => ctx.query(dataset, query);
const starts = () => athena.requests.slice(sinceReset).filter((r) => r.operation === 'StartQueryExecution').map((r) => r.body);
const WHERE = '"year" BETWEEN ? AND ? AND ("year" > ? OR "month" >= ?) AND ("year" < ? OR "month" <= ?) AND "time" >= from_iso8601_timestamp(?) AND "time" < from_iso8601_timestamp(?)';
/** January 2023 in UTC: from Brasília's 2022-12-31 21:00, so December 2022's partition too. */
const RANGE_PARAMETERS = ['2022', '2023', '2022', '12', '2023', '1', "'2023-01-01T00:00:00.000Z'", "'2023-02-01T00:00:00.000Z'"];
/** Brasília wall clock in February 2013: -02:00 until DST ended at 2013-02-17T02:00Z, -03:00 after. */
const LOCAL_2013 = 'date_add(\'hour\', CASE WHEN "time" < from_iso8601_timestamp(\'2013-02-17T02:00:00.000Z\') THEN -2 ELSE -3 END, "time")';
/** The ONS week (Saturday to Friday) in January 2023 (-03:00 throughout). */
const ONS_WEEK = 'date_add(\'day\', -2, date_trunc(\'week\', date_add(\'day\', 2, date_add(\'hour\', -3, "time"))))';

describe('the SQL and execution parameters as sent', () => {
  test.each<[string, string, Record<string, string>, string, string[]]>([
    ['raw points, no filter', 'curva_carga', { ...RANGE },
      'SELECT "time", "id_subsistema", "val_cargaenergiahomwmed" AS "value" FROM "DB"."curva_carga_current" '
      + `WHERE ${WHERE} AND "val_cargaenergiahomwmed" IS NOT NULL ORDER BY "time", "id_subsistema" NULLS LAST`,
      RANGE_PARAMETERS],
    ['hourly average of one subsystem', 'curva_carga', { ...RANGE, interval: '1h', id_subsistema: 'SE' },
      'SELECT date_add(\'second\', CAST(floor(CAST(date_diff(\'second\', TIMESTAMP \'1970-01-01 00:00:00\', "time") AS double) / 3600) AS bigint) * 3600, '
      + 'TIMESTAMP \'1970-01-01 00:00:00\') AS "bucket", "id_subsistema", avg("val_cargaenergiahomwmed") AS "value" FROM "DB"."curva_carga_current" '
      + `WHERE ${WHERE} AND "val_cargaenergiahomwmed" IS NOT NULL AND "id_subsistema" = ? `
      + 'GROUP BY date_add(\'second\', CAST(floor(CAST(date_diff(\'second\', TIMESTAMP \'1970-01-01 00:00:00\', "time") AS double) / 3600) AS bigint) * 3600, '
      + 'TIMESTAMP \'1970-01-01 00:00:00\'), "id_subsistema" ORDER BY "bucket", "id_subsistema" NULLS LAST',
      [...RANGE_PARAMETERS, "'SE'"]],
    ['monthly sum of one measure of a multi-measure dataset, two years', 'balanco_energia_subsistema',
      { from: '2022-06-01T00:00:00-03:00', to: '2023-02-01T00:00:00-03:00', measure: 'val_gereolica', interval: '1mo', aggregation: 'sum' },
      'SELECT date_trunc(\'month\', date_add(\'hour\', -3, "time")) AS "bucket", "id_subsistema", sum("val_gereolica") AS "value" FROM "DB"."balanco_energia_subsistema_current" '
      + `WHERE ${WHERE} AND "val_gereolica" IS NOT NULL GROUP BY date_trunc('month', date_add('hour', -3, "time")), "id_subsistema" ORDER BY "bucket", "id_subsistema" NULLS LAST`,
      ['2022', '2023', '2022', '6', '2023', '1', "'2022-06-01T03:00:00.000Z'", "'2023-02-01T03:00:00.000Z'"]],
    ['accents, spaces and parentheses in a value: a parameter, quoted', 'curva_carga',
      { ...RANGE, interval: '1y', aggregation: 'max', id_subsistema: 'São Paulo (SE/CO) 2' },
      'SELECT date_trunc(\'year\', date_add(\'hour\', -3, "time")) AS "bucket", "id_subsistema", max("val_cargaenergiahomwmed") AS "value" FROM "DB"."curva_carga_current" '
      + `WHERE ${WHERE} AND "val_cargaenergiahomwmed" IS NOT NULL AND "id_subsistema" = ? `
      + 'GROUP BY date_trunc(\'year\', date_add(\'hour\', -3, "time")), "id_subsistema" ORDER BY "bucket", "id_subsistema" NULLS LAST',
      [...RANGE_PARAMETERS, "'São Paulo (SE/CO) 2'"]],
    ['days across the 2013 DST end: the offset by a CASE over the instant it changed (a literal: not user text, and ? only in WHERE)', 'carga_energia',
      { from: '2013-02-01', to: '2013-03-01', interval: '1d', aggregation: 'sum' },
      `SELECT date_trunc('day', ${LOCAL_2013}) AS "bucket", "id_subsistema", sum("val_cargaenergiamwmed") AS "value" FROM "DB"."carga_energia_current" `
      + `WHERE ${WHERE} AND "val_cargaenergiamwmed" IS NOT NULL GROUP BY date_trunc('day', ${LOCAL_2013}), "id_subsistema" ORDER BY "bucket", "id_subsistema" NULLS LAST`,
      ['2013', '2013', '2013', '1', '2013', '2', "'2013-02-01T00:00:00.000Z'", "'2013-03-01T00:00:00.000Z'"]],
    ['ONS weeks: the ISO week (date_trunc, Monday) of the day two days on, less two days', 'curva_carga', { ...RANGE, interval: '1w', aggregation: 'min' },
      `SELECT ${ONS_WEEK} AS "bucket", "id_subsistema", min("val_cargaenergiahomwmed") AS "value" FROM "DB"."curva_carga_current" `
      + `WHERE ${WHERE} AND "val_cargaenergiahomwmed" IS NOT NULL GROUP BY ${ONS_WEEK}, "id_subsistema" ORDER BY "bucket", "id_subsistema" NULLS LAST`,
      RANGE_PARAMETERS],
  ])('%s', async (_name, dataset, query, sql, parameters) => {
    const { status } = await call(dataset, query);
    expect(status).toBe(200);
    const text = sql.replace(/"DB"/g, `"${athena.database}"`);
    expect(starts()).toEqual([{
      // Ends with the digest of the text and the parameters, which binds a page cursor to them.
      QueryString: `${text} /* ons-query ${checksum(JSON.stringify([text, parameters]), 'hex', 32)} */`,
      ExecutionParameters: parameters,
      QueryExecutionContext: { Catalog: 'AwsDataCatalog', Database: athena.database },
      WorkGroup: athena.workGroup,
      ResultReuseConfiguration: { ResultReuseByAgeConfiguration: { Enabled: true, MaxAgeInMinutes: 60 } },
      ClientRequestToken: expect.stringMatching(/^.{32,128}$/),
    }]);
    // No user value in the text: its only literals are the fixed ones (units, the epoch) and instants where the
    // zone's offset changed (the CASE of the local clock), checked here with the IANA zone.
    const literals = new Set([...String(starts()[0].QueryString).matchAll(/'[^']*'/g)].map((m) => m[0]));
    const offsetChange = (l: string) => /^'\d{4}-\d{2}-\d{2}T\d{2}:00:00\.000Z'$/.test(l)
      && brasilia(Date.parse(l.slice(1, -1))).offset !== brasilia(Date.parse(l.slice(1, -1)) - 3_600_000).offset;
    const fixed = ["'second'", "'1970-01-01 00:00:00'", "'hour'", "'day'", "'week'", "'month'", "'year'"];
    expect([...literals].filter((l) => !fixed.includes(l) && !offsetChange(l))).toEqual([]);
    expect(athena.queries.at(-1)!.state).toBe('SUCCEEDED');
  });
});

describe('injection attempts that pass validation are inert: parameter values, the same SQL text', () => {
  test.each([
    'SE) OR (id_subsistema IS NOT NULL',
    'SE) OR (1 - 1',
    'N/A & SELECT 1 FROM curva_carga',
    'SE) UNION ALL SELECT (1',
  ])('%s', async (value) => {
    const plain = await call('curva_carga', { ...RANGE, id_subsistema: 'SE' });
    expect(plain.body.points.length).toBeGreaterThan(0);
    const attempt = await call('curva_carga', { ...RANGE, id_subsistema: value });
    expect(attempt.status).toBe(200);
    expect(attempt.body.points).toEqual([]);
    const [sent, tried] = starts();
    // The same text but for the digest of the parameters.
    const untagged = (text: string) => text.replace(/ \/\* ons-query [0-9a-f]{32} \*\/$/, '');
    expect(untagged(tried.QueryString)).toBe(untagged(sent.QueryString));
    expect(untagged(tried.QueryString)).not.toBe(tried.QueryString);
    expect(tried.ExecutionParameters).toEqual([...RANGE_PARAMETERS, `'${value}'`]);
  });
});

describe('pages, result reuse and page tokens', () => {
  test('the pages of a request are pages of one query execution; the same request again reuses its results', async () => {
    const query = { from: '2023-06-01', to: '2023-06-08' };
    const first = await call('curva_carga', query);
    const second = await call('curva_carga', { ...query, nextToken: first.body.nextToken });
    expect(second.status).toBe(200);
    expect(second.body.points[0]).not.toEqual(first.body.points[0]);
    expect(starts()).toHaveLength(1);
    const again = await call('curva_carga', query);
    expect({ ...again.body, nextToken: undefined }).toEqual({ ...first.body, nextToken: undefined });
    expect(starts()).toHaveLength(2);
    expect(athena.queries.at(-1)!.reusedFrom).toBe(athena.queries.at(-2)!.id);
  });

  test('a token whose cursor names another query execution (digest recomputed) is refused before any result is read', async () => {
    const other = await call('carga_energia', { from: '2013-01-01', to: '2013-01-08' });
    expect(other.body.nextToken).toBeUndefined();
    const otherId = athena.queries.at(-1)!.id;
    await call('curva_carga', RANGE);
    const mine = athena.queries.at(-1)!;
    const forged = encodeToken(JSON.stringify({ id: otherId, next: 'x' }), JSON.stringify([mine.sql, mine.parameters]));
    const before = athena.requests.length;
    const { status, body } = await call('curva_carga', { ...RANGE, nextToken: forged });
    expect({ status, code: body.error.code }).toEqual({ status: 400, code: 'InvalidNextToken' });
    expect(athena.requests.slice(before).map((r) => r.operation)).toEqual(['GetQueryExecution']);
    expect(athena.requests.slice(before).filter((r) => r.operation === 'GetQueryResults').map((r) => r.body.QueryExecutionId)).not.toContain(otherId);
  });
});

describe('bounded time and bounded bytes', () => {
  test('a query not done before the deadline: 504 with its query id, and the query is cancelled', async () => {
    const slow = new LocalAthena({ template, processedDir, runningPolls: 1_000_000 });
    let handler: Call;
    try {
      handler = await ctx.queryHandler({ [LakeQueryEnv.ATHENA_ENDPOINT]: await slow.start(), [LakeQueryEnv.DEADLINE_MS]: '50', [LakeQueryEnv.POLL_DELAY_MS]: '5' });
      const { status, body, requestId } = await handler('curva_carga', { ...RANGE, interval: '1d' });
      const [query] = slow.queries;
      expect({ status, body }).toEqual({ status: 504, body: { error: { code: 'QueryTimeout', message: expect.stringContaining(`query id ${query.id}`) }, requestId } });
      expect(query.state).toBe('CANCELLED');
      expect(slow.requests.filter((r) => r.operation === 'StopQueryExecution').map((r) => r.body)).toEqual([{ QueryExecutionId: query.id }]);
      expect(slow.requests.filter((r) => r.operation === 'GetQueryResults')).toEqual([]);
    } finally {
      await slow.close();
    }
  });

  test('polls that keep failing (throttled past the SDK retries): 503, and the query is stopped', async () => {
    for (let i = 0; i < 3; i++) athena.failNext('GetQueryExecution', 'ThrottlingException', 'Rate exceeded');
    const { status, body } = await call('curva_carga', { ...RANGE, interval: '1w' });
    expect({ status, code: body.error.code }).toEqual({ status: 503, code: 'ServiceUnavailable' });
    const query = athena.queries.at(-1)!;
    expect(query.state).toBe('CANCELLED');
    expect(athena.requests.slice(sinceReset).map((r) => r.operation)).toEqual(['StartQueryExecution', ...Array(3).fill('GetQueryExecution'), 'StopQueryExecution']);
  });

  test("over the workgroup's bytes-scanned cutoff: 400 that asks for a narrower period; one year runs", async () => {
    // 25 years of curva_carga: the 2023 partitions the processor wrote, also under 1999..2022.
    const history = join(scratch, 'history');
    const source = join(processedDir, 'dataset=curva_carga', 'year=2023');
    for (let year = 1999; year <= 2023; year++) {
      for (const month of readdirSync(source)) {
        const dir = join(history, 'dataset=curva_carga', `year=${year}`, month);
        mkdirSync(dir, { recursive: true });
        for (const f of readdirSync(join(source, month))) copyFileSync(join(source, month, f), join(dir, f));
      }
    }
    const capped = new LocalAthena({ template, processedDir: history });
    capped.setBytesScannedCutoff(10_000_000);
    try {
      const handler = await ctx.queryHandler({ [LakeQueryEnv.ATHENA_ENDPOINT]: await capped.start(), [LakeQueryEnv.DEADLINE_MS]: undefined });
      const all = await handler('curva_carga', { from: '1999-01-01T00:00:00-02:00', to: '2024-01-01T00:00:00-03:00', interval: '1y' });
      expect({ status: all.status, body: all.body }).toEqual({
        status: 400,
        body: { error: { code: 'QueryTooLarge', message: expect.stringMatching(/narrow the period/) }, requestId: all.requestId },
      });
      expect(capped.queries[0]).toMatchObject({ state: 'FAILED' });
      expect(capped.queries[0].scannedBytes).toBeGreaterThan(10_000_000);
      const year = await handler('curva_carga', { from: '2023-01-01T00:00:00-03:00', to: '2024-01-01T00:00:00-03:00', interval: '1mo' });
      expect(year.status).toBe(200);
      expect(year.body.points.length).toBeGreaterThanOrEqual(12);
      expect(partitions(capped.queries[1].scannedFiles)).toEqual(readdirSync(source).map((m) => `2023-${m.slice('month='.length)}`).sort());
      // Across a year boundary: the months asked for (Brasília time), no others.
      const winter = await handler('curva_carga', { from: '2015-11-01T00:00:00-02:00', to: '2016-03-01T00:00:00-03:00', interval: '1d' });
      expect(winter.status).toBe(200);
      expect(partitions(capped.queries[2].scannedFiles)).toEqual(['2015-11', '2015-12', '2016-01', '2016-02']);
    } finally {
      await capped.close();
    }
  });
});

test('pages hold MAX_POINTS points', async () => {
  const { body } = await call('curva_carga', RANGE);
  expect(body.points).toHaveLength(MAX_POINTS);
});

describe('configuration', () => {
  const names = [...Object.values(LakeQueryEnv), TimeSeriesEnv.DATABASE, TimeSeriesEnv.MAX_POINTS];
  let saved: Record<string, string | undefined>;
  beforeEach(() => {
    saved = Object.fromEntries(names.map((n) => [n, process.env[n]]));
  });
  afterEach(() => {
    for (const name of names) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  });

  test.each<[string, Record<string, string | undefined>, string]>([
    ['no workgroup', { [LakeQueryEnv.WORK_GROUP]: undefined }, `${LakeQueryEnv.WORK_GROUP} is not set`],
    ['a deadline past API Gateway\'s limit', { [LakeQueryEnv.DEADLINE_MS]: '29000' }, `${LakeQueryEnv.DEADLINE_MS} must be an integer from 1 to 25000`],
    ['a reuse age past Athena\'s 10080 minutes', { [LakeQueryEnv.RESULT_REUSE_MINUTES]: '10081' }, `${LakeQueryEnv.RESULT_REUSE_MINUTES} must be an integer from 0 to 10080`],
    ['a poll delay that is not a number', { [LakeQueryEnv.POLL_DELAY_MS]: 'soon' }, `${LakeQueryEnv.POLL_DELAY_MS} must be an integer from 1 to 1000`],
  ])('%s: an error naming the variable', (_name, env, message) => {
    process.env[TimeSeriesEnv.DATABASE] = 'db';
    process.env[LakeQueryEnv.WORK_GROUP] = 'wg';
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    expect(() => queryConfigFromEnv()).toThrow(message);
  });

  test('result reuse off with 0 minutes; pages capped at 999 points (the header row shares the first 1000)', () => {
    process.env[TimeSeriesEnv.DATABASE] = 'db';
    process.env[LakeQueryEnv.WORK_GROUP] = 'wg';
    process.env[LakeQueryEnv.RESULT_REUSE_MINUTES] = '0';
    process.env[TimeSeriesEnv.MAX_POINTS] = '5000';
    delete process.env[LakeQueryEnv.DEADLINE_MS];
    expect(queryConfigFromEnv()).toMatchObject({ database: 'db', workGroup: 'wg', reuseMinutes: 0, maxPoints: 999, deadlineMs: 25_000 });
  });
});
