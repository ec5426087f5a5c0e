import { DEFAULT_THROTTLE_BUDGET_MS } from '../../../src/timeseries/contract';
import { createWriteClient, MAGNETIC_THROTTLE_BUDGET_MS } from '../../../src/timeseries/timestream/runtime/writer';
import { SimulatedClock } from '../../runtime/simulated-clock';
import { REFERENCE } from '../load-contract';
import { cargaEnergia2013 } from '../ons-records';
import { LocalTimestream } from './local-timestream';
import { writeAll } from './write-all';

/**
 * The Timestream writer's throttle budget, on a simulated clock: the real SDK client over HTTP against the
 * local Timestream, which throttles WriteRecords for minutes of simulated time (memory store: the service
 * scales while we keep sending; magnetic store: partition throttling that may take hours). Nothing waits
 * for real: the writer's waits move the clock the server reads.
 */

const ts = new LocalTimestream();
let endpoint: string;
const records = cargaEnergia2013();
const POINTS = REFERENCE['CARGA_ENERGIA_2013.csv'].measures.val_cargaenergiamwmed.count;
const MINUTE = 60_000;

const saved = { ...process.env };
beforeAll(async () => {
  // The client signs its requests (the local server checks for a SigV4 header): any credentials will do.
  Object.assign(process.env, { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
  endpoint = await ts.start();
});
afterAll(async () => {
  process.env = saved;
  await ts.close();
});

let clock: SimulatedClock;
beforeEach(() => {
  ts.reset();
  clock = new SimulatedClock();
  ts.clock = clock;
});

function load() {
  return writeAll(createWriteClient(endpoint, 3), records, { maxInFlight: 3, baseDelayMs: 100, clock });
}

test('the records are the real file: one per row with a value', () => {
  expect(records).toHaveLength(POINTS);
});

test('memory-store throttling for 3 minutes: the writer keeps sending (backoff of at most 20 s) and the load completes', async () => {
  const start = clock.now();
  ts.throttleUntil(start + 3 * MINUTE, 'memory');
  const { stats, error } = await load();
  expect(error).toBeUndefined();
  expect(stats).toMatchObject({ records: POINTS, rejected: 0, requests: Math.ceil(POINTS / 100) });
  expect(ts.store.size).toBe(POINTS);
  expect(clock.now() - start).toBeGreaterThanOrEqual(3 * MINUTE);
  expect(Math.max(...clock.waits)).toBeLessThanOrEqual(20_000);
  expect(ts.of('WriteRecords').filter((r) => r.outcome === 'ThrottlingException').length).toBe(stats!.retries);
});

test('memory-store throttling that outlasts the budget fails the load with TimeSeriesThrottled once the budget is spent', async () => {
  const start = clock.now();
  ts.throttleUntil(start + 60 * MINUTE, 'memory');
  const { error } = await load();
  expect(error).toMatchObject({ name: 'TimeSeriesThrottled', message: expect.stringMatching(/^WriteRecords to carga_energia throttled for 300 s without a write taken: load again later; ThrottlingException/) });
  // Given up when the budget was spent: not before, and not later than one more (capped) wait.
  expect(clock.now() - start).toBeGreaterThanOrEqual(DEFAULT_THROTTLE_BUDGET_MS);
  expect(clock.now() - start).toBeLessThanOrEqual(DEFAULT_THROTTLE_BUDGET_MS + 20_000);
  expect(ts.store.size).toBe(0);
});

test('magnetic-store partition throttling (hours, per the docs) is given up after a minute in the Lambda', async () => {
  const start = clock.now();
  ts.throttleUntil(start + 6 * 60 * MINUTE, 'magnetic');
  const { error } = await load();
  expect(error).toMatchObject({ name: 'TimeSeriesThrottled', message: expect.stringContaining('ActiveMagneticStorePartitions') });
  expect(clock.now() - start).toBeGreaterThanOrEqual(MAGNETIC_THROTTLE_BUDGET_MS);
  expect(clock.now() - start).toBeLessThan(DEFAULT_THROTTLE_BUDGET_MS);
});

test('a short magnetic-store throttle (40 s) is waited out and the load completes', async () => {
  ts.throttleUntil(clock.now() + 40_000, 'magnetic');
  const { stats, error } = await load();
  expect(error).toBeUndefined();
  expect(stats).toMatchObject({ records: POINTS, rejected: 0 });
  expect(ts.store.size).toBe(POINTS);
});

test('a write taken restarts the budget: throttling with gaps longer than the budget in total still completes', async () => {
  // Throttled for 4 minutes, takes writes, then 4 more minutes: 8 minutes throttled in all, never 5 without progress.
  const start = clock.now();
  ts.throttleUntil(start + 4 * MINUTE, 'memory');
  let rethrottled = false;
  ts.rejectIf = () => {
    if (!rethrottled && ts.store.size >= 300) {
      rethrottled = true;
      ts.throttleUntil(clock.now() + 4 * MINUTE, 'memory');
    }
    return undefined;
  };
  const { stats, error } = await load();
  expect(error).toBeUndefined();
  expect(rethrottled).toBe(true);
  expect(stats).toMatchObject({ records: POINTS });
  expect(clock.now() - start).toBeGreaterThanOrEqual(8 * MINUTE);
});
