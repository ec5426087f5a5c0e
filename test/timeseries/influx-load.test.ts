import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OperationsEnv, PlatformMetrics } from '../../src/runtime/contract';
import { InfluxDbEnv, LoadInput, LoadResult, TimeSeriesEnv } from '../../src/timeseries/contract';
import { BUCKETS, getBytes, handlerEnv, ledgerItem, LocalAws, loadHandler, restoreEnv, startLocalAws } from '../ingestion/local-aws';
import { ONS_DATA } from '../ons-data';
import { DATABASE, Ingest, InfluxProxy, ingester, LocalInfluxDb, RETENTION_POLICY, SHARD_DURATION_MS, shardStart as shardOf } from './local-influxdb';
import { LocalSecretsManager } from '../local-secrets-manager';
import { CapturedOutput, captureOutput } from '../operations/output';

/**
 * The bundled InfluxDB loader on real ONS files (routed and processed to Parquet by the bundled
 * handlers on s3rver and dynalite), writing through a recording proxy to a real InfluxDB 1.x server,
 * its token from a local Secrets Manager: what the server keeps (counts and sums per measure, series),
 * the requests (gzip, token, batches, concurrency), idempotent reloads, the server's partial-write
 * rejections, refusals, retries, and that the token never appears in any output.
 */

type Load = (event: LoadInput) => Promise<LoadResult>;

const ASSETS = join(__dirname, '..', '..', 'assets', 'timeseries', 'influxdb');
const TABLES: Record<string, string> = {
  curva_carga: 'curva_carga', carga_energia: 'carga_energia', balanco_energia_subsistema: 'balanco_energia_subsistema', ear_diario_subsistema: 'ear_diario_subsistema',
};
const MAX_IN_FLIGHT = 3;
const BATCH_LINES = 1000;
const TOKEN = 'influx-write-token-Zq8vX1-do-not-log';
const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ons-influx-write-AbCdEf';
const REFERENCE = JSON.parse(readFileSync(join(ONS_DATA, 'reference-figures.json'), 'utf8')) as Record<string, {
  rows: number; series: number; measures: Record<string, { count: number; sum: number }>;
}>;

let aws: LocalAws;
let influx: LocalInfluxDb;
let proxy: InfluxProxy;
let proxyUrl: string;
let secrets: LocalSecretsManager;
let secretsUrl: string;
let ingest: Ingest;
let handlerTmp: string;
let output: CapturedOutput;

function env(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return handlerEnv(aws, {
    TMPDIR: handlerTmp,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsUrl,
    [TimeSeriesEnv.DATABASE]: DATABASE,
    [TimeSeriesEnv.TABLES]: JSON.stringify(TABLES),
    [TimeSeriesEnv.CATCH_ALL_TABLE]: undefined,
    [TimeSeriesEnv.MAX_IN_FLIGHT]: String(MAX_IN_FLIGHT),
    [TimeSeriesEnv.REJECTED_RECORDS_PREFIX]: 'rejected-records/',
    [TimeSeriesEnv.WRITE_MAX_ATTEMPTS]: '5',
    [TimeSeriesEnv.WRITE_BASE_DELAY_MS]: '5',
    [InfluxDbEnv.URL]: proxyUrl,
    [InfluxDbEnv.RETENTION_POLICY]: RETENTION_POLICY,
    [InfluxDbEnv.TOKEN_SECRET_ARN]: SECRET_ARN,
    [InfluxDbEnv.BATCH_LINES]: String(BATCH_LINES),
    [InfluxDbEnv.REQUEST_TIMEOUT_MS]: '2000',
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
  influx = new LocalInfluxDb();
  await influx.start();
  proxy = new InfluxProxy(() => influx.url);
  proxyUrl = await proxy.start();
  secrets = new LocalSecretsManager();
  secrets.secrets.set(SECRET_ARN, TOKEN);
  secretsUrl = await secrets.start();
  handlerTmp = join(aws.scratch, 'handler-tmp');
  mkdirSync(handlerTmp);
  ingest = ingester(aws, env());
});

afterAll(async () => {
  output.restore();
  restoreEnv();
  await proxy?.close();
  await secrets?.close();
  await influx?.stop();
  await aws?.close();
  // Nothing the handlers wrote (logs, metrics, warnings) holds the token.
  const everything = [...output.log.mock.calls.flat(), ...output.error.mock.calls.flat(), ...output.other, JSON.stringify(output.emf)].join('\n');
  expect(everything).not.toContain(TOKEN);
  expect(everything.length).toBeGreaterThan(0);
});

beforeEach(async () => {
  proxy.reset();
  await influx.resetDatabase();
});

afterEach(() => {
  expect(readdirSync(handlerTmp)).toEqual([]);
});

const writes = () => proxy.of('/write');
const expectedPoints = (file: string) => Object.values(REFERENCE[file].measures).reduce((n, m) => n + m.count, 0);

/** Count and sum of every field of a measurement, read back from the server. */
async function stored(measurement: string): Promise<Record<string, { count: number; sum: number }>> {
  const [s] = await influx.query(`SELECT count(*), sum(*) FROM "${measurement}"`);
  const row = Object.fromEntries(s.columns.map((c, i) => [c, s.values[0][i] as number]));
  const fields = Object.keys(row).filter((c) => c.startsWith('count_')).map((c) => c.slice('count_'.length));
  return Object.fromEntries(fields.map((f) => [f, { count: row[`count_${f}`], sum: row[`sum_${f}`] }]));
}

describe('real ONS files: what the server keeps equals the input', () => {
  const cases: Array<[string, string, number]> = [
    // file, dataset, rows without any measure (reference figures: rows minus the one measure's count)
    ['CURVA_CARGA_2023.csv', 'curva_carga', 0],
    ['CARGA_ENERGIA_2013.csv', 'carga_energia', REFERENCE['CARGA_ENERGIA_2013.csv'].rows - REFERENCE['CARGA_ENERGIA_2013.csv'].measures.val_cargaenergiamwmed.count],
    ['BALANCO_ENERGIA_SUBSISTEMA_2023.csv', 'balanco_energia_subsistema', 0],
    ['EAR_DIARIO_SUBSISTEMA_2022.csv', 'ear_diario_subsistema', 0],
  ];

  test.each(cases)('%s', async (file, dataset, skipped) => {
    const input = await ingest(file);
    const result = await loader()(input);
    const records = REFERENCE[file].rows - skipped;
    expect(result).toEqual({
      status: 'loaded', table: dataset, records, points: expectedPoints(file), rejected: 0, skipped, requests: Math.ceil(records / BATCH_LINES),
    });

    // Each measure: as many values, and the same sum, as the reference figures; one series per subsystem.
    const fields = await stored(dataset);
    expect(Object.keys(fields).sort()).toEqual(Object.keys(REFERENCE[file].measures).sort());
    for (const [measure, figures] of Object.entries(REFERENCE[file].measures)) {
      expect(fields[measure].count).toBe(figures.count);
      expect(fields[measure].sum).toBeCloseTo(figures.sum, 3);
    }
    const tagKeys = await influx.query(`SHOW TAG KEYS FROM "${dataset}"`);
    expect(tagKeys[0].values).toEqual([['id_subsistema']]);
    const series = await influx.query(`SHOW SERIES FROM "${dataset}"`);
    expect(series[0].values).toHaveLength(REFERENCE[file].series);

    // The requests: the 1.x write endpoint with the bucket's database and retention policy, ns precision, the
    // token, gzip, batches of BATCH_LINES lines (the last one shorter), never more than MAX_IN_FLIGHT at once.
    const sent = writes();
    expect(sent).toHaveLength(result.requests);
    for (const r of sent) {
      expect(r.method).toBe('POST');
      expect(Object.fromEntries(r.params)).toEqual({ db: DATABASE, rp: RETENTION_POLICY, precision: 'ns' });
      expect(r.headers).toMatchObject({ 'authorization': `Token ${TOKEN}`, 'content-encoding': 'gzip' });
      expect(r.text.startsWith(`${dataset},id_subsistema=`)).toBe(true);
    }
    expect(sent.map((r) => r.text.split('\n').length).sort((a, b) => b - a).slice(0, -1).every((n) => n === BATCH_LINES)).toBe(true);
    expect(sent.reduce((n, r) => n + r.text.split('\n').length, 0)).toBe(records);
    expect(proxy.maxConcurrent).toBeLessThanOrEqual(MAX_IN_FLIGHT);

    const item = await ledgerItem(aws, BUCKETS.raw, input.source.key);
    expect(item).toMatchObject({ status: 'loaded', dataset, load: { status: 'loaded', table: dataset, records, points: result.points, rejected: 0, skipped } });
  });
});

describe('CARGA_ENERGIA_2013.csv', () => {
  let input: LoadInput;
  beforeAll(async () => {
    input = await ingest('CARGA_ENERGIA_2013.csv');
  });
  const measure = 'val_cargaenergiamwmed';
  const points = () => REFERENCE['CARGA_ENERGIA_2013.csv'].measures[measure].count;

  test('a reload is idempotent: the same points, the same counts and sums', async () => {
    const first = await loader()(input);
    const before = await stored('carga_energia');
    const again = await loader()(input);
    expect(again).toEqual(first);
    expect(await stored('carga_energia')).toEqual(before);
    expect(before[measure].count).toBe(points());
  });

  test('points the server drops (a field type conflict in one shard) are found, reported with its reason and counted', async () => {
    // An integer value of the field in the shard of 2013-01-10 (7-day shards): every float of that shard is refused.
    const conflictAt = Date.UTC(2013, 0, 10, 3);
    expect((await influx.write(`carga_energia,id_subsistema=XX ${measure}=1i ${conflictAt}000000`)).status).toBe(204);
    const shardStart = shardOf(conflictAt);
    const inShard = (t: number) => t >= shardStart && t < shardStart + SHARD_DURATION_MS;

    // With a metrics namespace, as the platform sets it, the loader emits its metrics.
    const result = await loader({ [OperationsEnv.METRICS_NAMESPACE]: 'OnsDataPlatform/test', [OperationsEnv.SERVICE_NAME]: 'timeseries' })(input);
    const rejectedKey = 'rejected-records/carga_energia/CARGA_ENERGIA_2013.rejected-records.jsonl';
    const lines = (await getBytes(aws, BUCKETS.failed, rejectedKey)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(7 * 4); // 7 days of 4 subsystems
    expect(result).toMatchObject({ status: 'loaded', rejected: lines.length, records: points() - lines.length, points: points() - lines.length, rejectedKey });
    for (const line of lines) {
      expect(line).toMatchObject({
        source: `s3://${BUCKETS.raw}/${input.source.key}`,
        table: 'carga_energia',
        reason: expect.stringContaining('field type conflict'),
        record: { dimensions: { id_subsistema: expect.any(String) }, measures: { [measure]: expect.any(Number) } },
        line: expect.stringMatching(/^carga_energia,id_subsistema=\w+ val_cargaenergiamwmed=\S+ \d+$/),
      });
      expect(inShard(Date.parse(line.record.time))).toBe(true);
    }
    // Exactly the input's points of that shard were refused; all the others are stored.
    const [kept] = await influx.query(`SELECT count("${measure}") FROM "carga_energia" WHERE "id_subsistema" != 'XX'`);
    expect(kept.values[0][1]).toBe(points() - lines.length);
    const [shardCount] = await influx.query(`SELECT count("${measure}") FROM "carga_energia" WHERE time >= ${shardStart}ms AND time < ${shardStart + SHARD_DURATION_MS}ms`);
    expect(shardCount.values[0][1]).toBe(1); // the integer point alone
    const item = await ledgerItem(aws, BUCKETS.raw, input.source.key);
    expect(item).toMatchObject({ status: 'loaded', load: { rejected: lines.length, failedBucket: BUCKETS.failed, rejectedKey } });
    // The metrics of the load: points the store took, records it refused.
    const metrics = output.emf.filter((d) => PlatformMetrics.POINTS_WRITTEN.name in d).at(-1)!;
    expect(metrics).toMatchObject({ [PlatformMetrics.POINTS_WRITTEN.name]: result.points, [PlatformMetrics.POINTS_REJECTED.name]: lines.length });
  });

  test('429, 5xx (with and without Retry-After) and a request that gets no answer are retried; the load completes', async () => {
    proxy.failNext({ status: 503, headers: { 'retry-after': '0' } });
    proxy.failNext({ status: 500 });
    proxy.failNext({ status: 429 });
    proxy.failNext('stall');
    const result = await loader({ [InfluxDbEnv.REQUEST_TIMEOUT_MS]: '1000' })(input);
    expect(result).toMatchObject({ status: 'loaded', records: points(), points: points(), rejected: 0, requests: 2 });
    expect(writes().map((r) => r.outcome).filter((o) => o !== 204).sort()).toEqual([429, 500, 503, 'stall'].sort());
    expect((await stored('carga_energia'))[measure].count).toBe(points());
  });

  test('errors that outlast the attempts fail the step as TimeSeriesUnavailable (safe to retry)', async () => {
    proxy.failNext({ status: 502 }, 5);
    await expect(loader({ [TimeSeriesEnv.MAX_IN_FLIGHT]: '1' })(input)).rejects.toMatchObject({ name: 'TimeSeriesUnavailable', message: expect.stringContaining('HTTP 502') });
    expect(writes()).toHaveLength(5);
    const item = await ledgerItem(aws, BUCKETS.raw, input.source.key);
    expect(item!.error).toMatchObject({ step: 'LoadTimeSeries', errorType: 'TimeSeriesUnavailable' });
  });

  test('InfluxDB unreachable: TimeSeriesUnavailable after the attempts', async () => {
    const dead = new LocalSecretsManager();
    const url = await dead.start();
    await dead.close();
    await expect(loader({ [InfluxDbEnv.URL]: url, [TimeSeriesEnv.MAX_IN_FLIGHT]: '1' })(input)).rejects.toMatchObject({ name: 'TimeSeriesUnavailable', message: expect.stringContaining('ECONNREFUSED') });
  });

  test.each([401, 403, 404])('HTTP %d is not retried: TimeSeriesWriteRefused', async (status) => {
    proxy.failNext({ status, body: JSON.stringify({ error: 'authorization failed' }) });
    await expect(loader({ [TimeSeriesEnv.MAX_IN_FLIGHT]: '1' })(input)).rejects.toMatchObject({ name: 'TimeSeriesWriteRefused', message: expect.stringContaining(`HTTP ${status}`) });
    expect(writes()).toHaveLength(1);
  });

  test('a token secret that cannot be read: TimeSeriesUnavailable, nothing sent', async () => {
    const missing = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:not-there-123456';
    await expect(loader({ [InfluxDbEnv.TOKEN_SECRET_ARN]: missing })(input)).rejects.toMatchObject({ name: 'TimeSeriesUnavailable', message: expect.stringContaining('Secrets Manager') });
    expect(writes()).toHaveLength(0);
  });

  test('the token is read once per container from Secrets Manager (cached)', async () => {
    const before = secrets.requests.length;
    const load = loader();
    await load(input);
    await load(input);
    expect(secrets.requests.slice(before)).toEqual([{ target: 'secretsmanager.GetSecretValue', secretId: SECRET_ARN }]);
  });
});

describe('datasets without a measurement', () => {
  test('not loaded: nothing written, the ledger says why', async () => {
    const input = await ingest('CMO_SEMANAL_2013.csv');
    const result = await loader()(input);
    expect(result).toMatchObject({ status: 'notLoaded', records: 0, reason: expect.stringContaining('cmo_semanal has no time-series table') });
    expect(proxy.requests).toHaveLength(0);
  });

  test('with a catch-all set, they go to a measurement named after the dataset', async () => {
    const input = await ingest('CMO_SEMANAL_2013.csv');
    const result = await loader({ [TimeSeriesEnv.CATCH_ALL_TABLE]: 'ons_other_datasets' })(input);
    expect(result).toMatchObject({ status: 'loaded', table: 'cmo_semanal', records: 208, points: 4 * 208, rejected: 0 });
    const measurements = await influx.query('SHOW MEASUREMENTS');
    expect(measurements[0].values).toEqual([['cmo_semanal']]);
  });
});

describe('inputs the loader refuses', () => {
  test('a duplicate: InvalidLoadInput, nothing written', async () => {
    const input = await ingest('CARGA_ENERGIA_2013.csv');
    const duplicate = { ...input, processed: { status: 'duplicate', contentHash: 'x', duplicateOf: 's3://b/k?versionId=null' } } as unknown as LoadInput;
    await expect(loader()(duplicate)).rejects.toMatchObject({ name: 'InvalidLoadInput' });
    expect(proxy.requests).toHaveLength(0);
  });
});
