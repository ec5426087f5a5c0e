import { join } from 'node:path';
import { OperationsEnv, PlatformMetrics } from '../../../src/runtime/contract';
import { InfluxDbEnv, TimeSeriesEnv } from '../../../src/timeseries/contract';
import { BUCKETS, getBytes, ledgerItem } from '../../local-aws';
import { LocalSecretsManager } from '../../local-secrets-manager';
import { DATABASE, describeLoadContract, REFERENCE, REJECTED_KEY } from '../load-contract';
import { LocalInfluxStack, RETENTION_POLICY, SHARD_DURATION_MS, shardStart as shardOf } from './local-influxdb';

/**
 * The load contract against a real InfluxDB 1.x server behind a recording proxy, the token from a local
 * Secrets Manager; and what only InfluxDB has: the write requests (1.x endpoint, gzip, token, batches
 * of lines), the server's partial-write rejections, the token secret, and that the token never
 * appears in any output.
 */

const TABLES: Record<string, string> = {
  curva_carga: 'curva_carga', carga_energia: 'carga_energia', balanco_energia_subsistema: 'balanco_energia_subsistema', ear_diario_subsistema: 'ear_diario_subsistema',
};
const BATCH_LINES = 1000;
const TOKEN = 'influx-write-token-Zq8vX1-do-not-log';
const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ons-influx-write-AbCdEf';

const local = new LocalInfluxStack(SECRET_ARN, TOKEN);
const { influx, proxy, secrets } = local;
const writes = () => proxy.of('/write');

const ctx = describeLoadContract({
  assets: join(__dirname, '..', '..', '..', 'assets', 'timeseries', 'influxdb'),
  tables: TABLES,
  batch: BATCH_LINES,
  // A measurement named after the dataset: InfluxDB needs no table declared first.
  catchAllTable: (dataset) => dataset,
  start: async () => ({ ...await local.start(), [InfluxDbEnv.BATCH_LINES]: String(BATCH_LINES), [InfluxDbEnv.REQUEST_TIMEOUT_MS]: '2000' }),
  stop: () => local.stop(),
  reset: async () => {
    proxy.reset();
    await influx.resetDatabase();
  },
  requests: () => proxy.requests.length,
  writeOutcomes: () => {
    const outcomes = writes().map((r) => r.outcome);
    return { ok: outcomes.filter((o) => o === 204).length, failed: outcomes.filter((o): o is number | 'stall' => o !== 204) };
  },
  maxConcurrent: () => proxy.maxConcurrent,
  stored: async (measurement) => {
    const [s] = await influx.query(`SELECT count(*), sum(*) FROM "${measurement}"`);
    const row = Object.fromEntries(s.columns.map((c, i) => [c, s.values[0][i] as number]));
    const fields = Object.keys(row).filter((c) => c.startsWith('count_')).map((c) => c.slice('count_'.length));
    const tagKeys = await influx.query(`SHOW TAG KEYS FROM "${measurement}"`);
    const series = await influx.query(`SHOW SERIES FROM "${measurement}"`);
    return {
      measures: Object.fromEntries(fields.map((f) => [f, { count: row[`count_${f}`], sum: row[`sum_${f}`] }])),
      dimensions: tagKeys[0].values.map(([k]) => String(k)),
      series: series[0].values.length,
    };
  },
  transientFaults: () => {
    proxy.failNext({ status: 503, headers: { 'retry-after': '0' } });
    proxy.failNext({ status: 500 });
    proxy.failNext({ status: 429 });
    proxy.failNext('stall');
    return { faults: [503, 500, 429, 'stall'], env: { [InfluxDbEnv.REQUEST_TIMEOUT_MS]: '1000' } };
  },
  failNext: (count) => {
    proxy.failNext({ status: 502 }, count);
    return 'HTTP 502';
  },
  throttleNext: () => {
    proxy.failNext({ status: 429, headers: { 'retry-after': '5' }, body: JSON.stringify({ code: 'too many requests', message: 'token is temporarily over quota' }) });
    return 'HTTP 429: token is temporarily over quota';
  },
  refusals: [401, 403, 404].map((status) => [status, () => proxy.failNext({ status, body: JSON.stringify({ error: 'authorization failed' }) }), `HTTP ${status}`] as const),
  expectWrites: ({ dataset, result }) => {
    // The requests: the 1.x write endpoint with the bucket's database and retention policy, ns precision, the
    // token, gzip, batches of BATCH_LINES lines (the last one shorter).
    const sent = writes();
    for (const r of sent) {
      expect(r.method).toBe('POST');
      expect(Object.fromEntries(r.params)).toEqual({ db: DATABASE, rp: RETENTION_POLICY, precision: 'ns' });
      expect(r.headers).toMatchObject({ 'authorization': `Token ${TOKEN}`, 'content-encoding': 'gzip' });
      expect(r.text.startsWith(`${dataset},id_subsistema=`)).toBe(true);
    }
    expect(sent.map((r) => r.text.split('\n').length).sort((a, b) => b - a).slice(0, -1).every((n) => n === BATCH_LINES)).toBe(true);
    expect(sent.reduce((n, r) => n + r.text.split('\n').length, 0)).toBe(result.records);
  },
  expectCatchAll: async (dataset) => {
    const measurements = await influx.query('SHOW MEASUREMENTS');
    expect(measurements[0].values).toEqual([[dataset]]);
  },
});

afterAll(() => {
  // Nothing the handlers wrote (logs, metrics, warnings) holds the token.
  const output = ctx.output;
  const everything = [...output.log.mock.calls.flat(), ...output.error.mock.calls.flat(), ...output.other, JSON.stringify(output.emf)].join('\n');
  expect(everything).not.toContain(TOKEN);
  expect(everything.length).toBeGreaterThan(0);
});

describe('CARGA_ENERGIA_2013.csv', () => {
  const measure = 'val_cargaenergiamwmed';
  const points = REFERENCE['CARGA_ENERGIA_2013.csv'].measures[measure].count;
  // Ingested once (the ingester remembers it), by whichever test comes first.
  const carga = () => ctx.ingest('CARGA_ENERGIA_2013.csv');

  test('points the server drops (a field type conflict in one shard) are found, reported with its reason and counted', async () => {
    // An integer value of the field in the shard of 2013-01-10 (7-day shards): every float of that shard is refused.
    const conflictAt = Date.UTC(2013, 0, 10, 3);
    expect((await influx.write(`carga_energia,id_subsistema=XX ${measure}=1i ${conflictAt}000000`)).status).toBe(204);
    const shardStart = shardOf(conflictAt);
    const inShard = (t: number) => t >= shardStart && t < shardStart + SHARD_DURATION_MS;

    // With a metrics namespace, as the platform sets it, the loader emits its metrics.
    const input = await carga();
    const result = await ctx.loader({ [OperationsEnv.METRICS_NAMESPACE]: 'OnsDataPlatform/test', [OperationsEnv.SERVICE_NAME]: 'timeseries' })(input);
    const lines = (await getBytes(ctx.aws, BUCKETS.failed, REJECTED_KEY)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(7 * 4); // 7 days of 4 subsystems
    expect(result).toMatchObject({ status: 'loaded', rejected: lines.length, records: points - lines.length, points: points - lines.length, rejectedKey: REJECTED_KEY });
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
    expect(kept.values[0][1]).toBe(points - lines.length);
    const [shardCount] = await influx.query(`SELECT count("${measure}") FROM "carga_energia" WHERE time >= ${shardStart}ms AND time < ${shardStart + SHARD_DURATION_MS}ms`);
    expect(shardCount.values[0][1]).toBe(1); // the integer point alone
    const item = await ledgerItem(ctx.aws, BUCKETS.raw, input.source.key);
    expect(item).toMatchObject({ status: 'loaded', load: { rejected: lines.length, failedBucket: BUCKETS.failed, rejectedKey: REJECTED_KEY } });
    // The metrics of the load: points the store took, records it refused.
    const metrics = ctx.output.emf.filter((d) => PlatformMetrics.POINTS_WRITTEN.name in d).at(-1)!;
    expect(metrics).toMatchObject({ [PlatformMetrics.POINTS_WRITTEN.name]: result.points, [PlatformMetrics.POINTS_REJECTED.name]: lines.length });
  });

  test('InfluxDB unreachable: TimeSeriesUnavailable after the attempts', async () => {
    const dead = new LocalSecretsManager();
    const url = await dead.start();
    await dead.close();
    await expect(ctx.loader({ [InfluxDbEnv.URL]: url, [TimeSeriesEnv.MAX_IN_FLIGHT]: '1' })(await carga())).rejects.toMatchObject({ name: 'TimeSeriesUnavailable', message: expect.stringContaining('ECONNREFUSED') });
  });

  test('a token secret that cannot be read: TimeSeriesUnavailable, nothing sent', async () => {
    const missing = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:not-there-123456';
    await expect(ctx.loader({ [InfluxDbEnv.TOKEN_SECRET_ARN]: missing })(await carga())).rejects.toMatchObject({ name: 'TimeSeriesUnavailable', message: expect.stringContaining('Secrets Manager') });
    expect(writes()).toHaveLength(0);
  });

  test('the token is read once per container from Secrets Manager (cached)', async () => {
    const input = await carga();
    const before = secrets.requests.length;
    const load = ctx.loader();
    await load(input);
    await load(input);
    expect(secrets.requests.slice(before)).toEqual([{ target: 'secretsmanager.GetSecretValue', secretId: SECRET_ARN }]);
  });
});
