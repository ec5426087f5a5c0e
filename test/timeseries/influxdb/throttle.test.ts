import { DEFAULT_THROTTLE_BUDGET_MS } from '../../../src/timeseries/contract';
import { createSender, InfluxConnection } from '../../../src/timeseries/influxdb/runtime/http';
import { InfluxWriter } from '../../../src/timeseries/influxdb/runtime/writer';
import { SimulatedClock } from '../../runtime/simulated-clock';
import { REFERENCE } from '../load-contract';
import { cargaEnergia2013 } from '../ons-records';
import { DATABASE, InfluxProxy, LocalInfluxDb, RETENTION_POLICY } from './local-influxdb';

/**
 * The InfluxDB writer's throttle budget, on a simulated clock: the writer's own HTTP sender against a real
 * InfluxDB 1.x behind a proxy that answers 429 or 503 (with or without Retry-After) for minutes of
 * simulated time, as InfluxDB documents it. Nothing waits for real: the writer's waits move the clock the
 * proxy reads.
 */

const influx = new LocalInfluxDb();
const proxy = new InfluxProxy(() => influx.url);
let connection: InfluxConnection;
const records = cargaEnergia2013();
const POINTS = REFERENCE['CARGA_ENERGIA_2013.csv'].measures.val_cargaenergiamwmed.count;
const MINUTE = 60_000;

beforeAll(async () => {
  await influx.start();
  connection = { url: await proxy.start(), database: DATABASE, retentionPolicy: RETENTION_POLICY, tokenSecretArn: 'unused', timeoutMs: 5_000 };
});
afterAll(async () => {
  await proxy.close();
  await influx.stop();
});

let clock: SimulatedClock;
beforeEach(async () => {
  proxy.reset();
  await influx.resetDatabase();
  clock = new SimulatedClock();
  proxy.clock = clock;
});

async function load(options: { maxAttempts?: number } = {}): Promise<{ stats?: Awaited<ReturnType<InfluxWriter['finish']>>; error?: Error }> {
  const writer = new InfluxWriter(createSender(connection, 2), connection, 'carga_energia', async () => 'token', {
    maxInFlight: 2, batchLines: 500, baseDelayMs: 100, clock, ...options,
  });
  try {
    for (const record of records) await writer.add(record);
    return { stats: await writer.finish() };
  } catch (error) {
    return { error: error as Error };
  }
}

async function stored(): Promise<number> {
  const [series] = await influx.query('SELECT count(val_cargaenergiamwmed) FROM carga_energia');
  return (series?.values[0][1] as number | undefined) ?? 0;
}

test('429 with Retry-After: 30 for 2 minutes: every wait is the 30 s the server asked for, and the load completes', async () => {
  const start = clock.now();
  proxy.throttleUntil(start + 2 * MINUTE, 429, 30);
  const { stats, error } = await load();
  expect(error).toBeUndefined();
  expect(stats).toMatchObject({ records: POINTS, rejected: 0, requests: Math.ceil(POINTS / 500) });
  expect(await stored()).toBe(POINTS);
  expect(new Set(clock.waits)).toEqual(new Set([30_000]));
  expect(clock.now() - start).toBeGreaterThanOrEqual(2 * MINUTE);
});

test('a Retry-After above the cap (60 s) is waited 60 s at a time', async () => {
  proxy.throttleUntil(clock.now() + 3 * MINUTE, 503, 600);
  const { error } = await load();
  expect(error).toBeUndefined();
  expect(new Set(clock.waits)).toEqual(new Set([60_000]));
  expect(await stored()).toBe(POINTS);
});

test('503 without Retry-After that outlasts the budget fails the load with TimeSeriesThrottled once the budget is spent', async () => {
  const start = clock.now();
  proxy.throttleUntil(start + 60 * MINUTE, 503);
  const { error } = await load();
  expect(error).toMatchObject({
    name: 'TimeSeriesThrottled',
    message: expect.stringMatching(/^write to ons_test\/carga_energia throttled for 300 s without a write taken: load again later; HTTP 503: server is temporarily unavailable/),
  });
  expect(clock.now() - start).toBeGreaterThanOrEqual(DEFAULT_THROTTLE_BUDGET_MS);
  expect(clock.now() - start).toBeLessThanOrEqual(DEFAULT_THROTTLE_BUDGET_MS + 60_000);
  expect(await stored()).toBe(0);
});

test('throttling does not spend the attempts of other errors: 3 attempts allowed, 8 throttled answers in a row, the load completes', async () => {
  proxy.throttleUntil(clock.now() + 4 * MINUTE, 429, 30);
  const { error, stats } = await load({ maxAttempts: 3 });
  expect(error).toBeUndefined();
  expect(proxy.of('/write').slice(0, 8).map((r) => r.outcome)).toEqual(Array(8).fill(429));
  expect(stats).toMatchObject({ records: POINTS });
  expect(stats!.retries).toBeGreaterThanOrEqual(8);
});
