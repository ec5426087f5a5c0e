import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBClient, UpdateItemCommand, UpdateItemCommandInput } from '@aws-sdk/client-dynamodb';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { definitionOf } from './asl';
import { IngestionPipeline, PlatformStage, TimestreamStore } from '../../src';
import { retryLaterSchedule } from '../../src/ingestion/pipeline';
import { LedgerItem } from '../../src/ledger/contract';
import { TimeSeriesEnv } from '../../src/timeseries/contract';
import { ENV, lakeAndLedger } from '../helpers';
import { BUCKETS, handlerEnv, ledgerItem, LocalAws, loadHandler, putObject, restoreEnv, startLocalAws, TABLE } from '../local-aws';
import { runLocally, TaskHandler } from '../local-stepfunctions';
import { ONS_DATA } from '../ons-data';
import { SimulatedClock } from '../runtime/simulated-clock';
import { LocalTimestream } from '../timeseries/timestream/local-timestream';

/**
 * Backfills that finish: the synthesized ingestion state machine (with a Timestream store attached) run by
 * aws-local-stepfunctions, its tasks served by the bundled router, processor, quarantine and Timestream
 * loader against s3rver, dynalite and the local Timestream, which throttles writes for minutes or hours of
 * simulated time. The Wait states are not waited: the fake's clock is moved by the seconds each wait asked
 * for, so "30 minutes of throttling" takes no real time.
 */

const PERIOD = Duration.hours(1);
const stack = new Stack(new App(), 'RetryLater', { env: ENV });
const { dataLake, ledger } = lakeAndLedger(stack, PlatformStage.DEV);
const store = new TimestreamStore(stack, 'TimeSeries', { stage: PlatformStage.DEV, dataLake, ledger });
new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake, timeSeriesStore: store, throttledLoadRetryPeriod: PERIOD });
const definition = definitionOf(stack, 'IngestionStateMachine');
const SCHEDULE = retryLaterSchedule(PERIOD);
const TS_ASSETS = join(__dirname, '..', '..', 'assets', 'timeseries', 'timestream');
const MINUTE = 60_000;

const ts = new LocalTimestream();
let aws: LocalAws;
let env: Record<string, string | undefined>;
beforeAll(async () => {
  aws = await startLocalAws();
  env = handlerEnv(aws, {
    [TimeSeriesEnv.WRITE_ENDPOINT]: await ts.start(),
    [TimeSeriesEnv.DATABASE]: 'ons_test',
    [TimeSeriesEnv.TABLES]: JSON.stringify({ carga_energia: 'carga_energia', ear_diario_subsistema: 'ear' }),
    [TimeSeriesEnv.MAX_IN_FLIGHT]: '2',
    [TimeSeriesEnv.REJECTED_RECORDS_PREFIX]: 'rejected/timeseries/',
    [TimeSeriesEnv.WRITE_BASE_DELAY_MS]: '1',
    // The loader's own budget is measured on the real clock: kept tiny, so each invocation gives up at once.
    [TimeSeriesEnv.THROTTLE_BUDGET_MS]: '20',
    [TimeSeriesEnv.THROTTLE_MAX_DELAY_MS]: '5',
  });
});
afterAll(async () => {
  restoreEnv();
  await ts.close();
  await aws?.close();
});

/** How Lambda reports a function error to Step Functions: Error = errorType, Cause = JSON {errorType, errorMessage, trace}. */
function asLambda(handler: TaskHandler): TaskHandler {
  return async (input) => {
    try {
      return await handler(input);
    } catch (e) {
      const error = e as Error;
      throw Object.assign(new Error(JSON.stringify({ errorType: error.name, errorMessage: error.message, trace: [`${error.name}: ${error.message}`, '    at load (index.js:1:1)'] })), { name: error.name });
    }
  };
}

interface Run {
  readonly states: string[];
  readonly output?: any;
  readonly error?: string;
  readonly notifications: any[];
  /** The ledger item as each RecordRetryLater left it, and the seconds its wait asked for. */
  readonly waits: Array<{ seconds: number; item: LedgerItem }>;
  /** The ledger status when each LoadTimeSeries attempt started. */
  readonly statusAtLoad: string[];
}

async function execute(key: string, clock: SimulatedClock): Promise<Run> {
  const handlers: Record<string, TaskHandler> = {};
  for (const name of ['route', 'process', 'quarantine']) handlers[name] = loadHandler(name, env);
  const load = asLambda(loadHandler('load', env, TS_ASSETS));
  const notifications: any[] = [];
  const waits: Run['waits'] = [];
  const statusAtLoad: string[] = [];
  const dynamo = new DynamoDBClient({ endpoint: aws.dynamoEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  const notify = async (params: unknown) => {
    notifications.push(params);
    return { MessageId: `m-${notifications.length}` };
  };
  try {
    const run = await runLocally(definition, { source: { bucket: BUCKETS.raw, key } }, {
      context: {
        Execution: { Id: 'arn:aws:states:sa-east-1:123456789012:execution:OnsIngestion:retry-later', StartTime: new Date(clock.now()).toISOString() },
        // The local runner has no per-state context: the time a state was entered is given once, from the simulated clock.
        State: { EnteredTime: new Date(clock.now()).toISOString() },
      },
      tasks: {
        Route: handlers.route,
        ProcessFile: handlers.process,
        QuarantineFailure: handlers.quarantine,
        NotifyFailure: notify,
        LoadTimeSeries: async (input: any) => {
          statusAtLoad.push((await ledgerItem(aws, BUCKETS.raw, key))!.status);
          return load(input);
        },
        // The UpdateItem the state machine built, against dynalite; then the wait it asks for passes on the fake's clock.
        RecordRetryLater: async (params: UpdateItemCommandInput) => {
          await dynamo.send(new UpdateItemCommand({ ...params, TableName: TABLE }));
          const seconds = Number((params.ExpressionAttributeValues![':retry'] as any).M.waitSeconds.N);
          waits.push({ seconds, item: (await ledgerItem(aws, BUCKETS.raw, key))! });
          clock.advance(seconds * 1000);
          return {};
        },
      },
      waits: { RetryLaterWait: 0 },
    });
    return { states: run.states, output: run.output, error: run.error, notifications, waits, statusAtLoad };
  } finally {
    dynamo.destroy();
  }
}

const bytes = readFileSync(join(ONS_DATA, 'CARGA_ENERGIA_2013.csv'));
const POINTS = 1456;

test('the schedule: 5, 10, 20, 40 minutes for a one-hour period; 12 hours by default, capped at 60-minute waits', () => {
  expect(SCHEDULE).toEqual([300, 600, 1200, 2400]);
  const byDefault = retryLaterSchedule(IngestionPipeline.DEFAULT_THROTTLED_LOAD_RETRY_PERIOD);
  expect(byDefault.slice(0, 5)).toEqual([300, 600, 1200, 2400, 3600]);
  expect(Math.max(...byDefault)).toBe(3600);
  expect(byDefault.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(12 * 3600);
});

describe('magnetic-store throttling for 30 minutes of simulated time', () => {
  let run: Run;
  let item: LedgerItem | undefined;
  const key = 'ons/throttled/CARGA_ENERGIA_2013.csv';
  beforeAll(async () => {
    ts.reset();
    const clock = new SimulatedClock();
    ts.clock = clock;
    ts.throttleUntil(clock.now() + 30 * MINUTE, 'magnetic');
    await putObject(aws, BUCKETS.raw, key, bytes);
    run = await execute(key, clock);
    item = await ledgerItem(aws, BUCKETS.raw, key);
  });

  test('the file waits (retryLater) and loads once the store takes writes: Done, nothing quarantined or notified', () => {
    expect(run.error).toBeUndefined();
    expect(run.states.at(-1)).toBe('Done');
    expect(run.notifications).toEqual([]);
    expect(run.states.filter((s) => s === 'LoadTimeSeries')).toHaveLength(run.waits.length + 1);
    expect(run.states).not.toContain('QuarantineFailure');
    expect(ts.store.size).toBe(POINTS);
  });

  test('waits grow (5, 10, 20 minutes plus up to a minute of jitter) until 30 minutes have passed', () => {
    expect(run.waits.map((w) => w.seconds)).toHaveLength(3);
    run.waits.forEach((w, i) => {
      expect(w.seconds).toBeGreaterThanOrEqual(SCHEDULE[i]);
      expect(w.seconds).toBeLessThanOrEqual(SCHEDULE[i] + 60);
    });
  });

  test('its ledger says retryLater while it waits (attempt, wait, since when, the throttling reason), then loaded', () => {
    run.waits.forEach((w, i) => {
      expect(w.item.status).toBe('retryLater');
      expect(w.item.retryLater).toMatchObject({ attempt: i + 1, maxAttempts: SCHEDULE.length, waitSeconds: w.seconds, at: expect.any(String) });
      expect(w.item.retryLater!.reason).toMatch(/^WriteRecords to carga_energia throttled for \d+ s without a write taken: load again later; ThrottlingException: .*ActiveMagneticStorePartitions/);
    });
    expect(run.statusAtLoad).toEqual(['processed', 'retryLater', 'retryLater', 'retryLater']);
    expect(item).toMatchObject({ status: 'loaded', load: { status: 'loaded', records: POINTS } });
    expect(item!.history.map((h) => h.status)).toEqual(['received', 'processing', 'processed', 'retryLater', 'retryLater', 'retryLater', 'loaded']);
    expect(item!.error).toBeUndefined();
  });
});

describe('throttling that outlasts throttledLoadRetryPeriod (one hour here; ten hours of throttling)', () => {
  let run: Run;
  // Another file: the same bytes again would be recorded as a duplicate of the first and never loaded.
  const key = 'ons/throttled-for-hours/EAR_DIARIO_SUBSISTEMA_2022.csv';
  beforeAll(async () => {
    ts.reset();
    const clock = new SimulatedClock();
    ts.clock = clock;
    ts.throttleUntil(clock.now() + 600 * MINUTE, 'memory');
    await putObject(aws, BUCKETS.raw, key, readFileSync(join(ONS_DATA, 'EAR_DIARIO_SUBSISTEMA_2022.csv')));
    run = await execute(key, clock);
  });

  test('after every wait of the period, the file is quarantined and notified with a reason that says throttling', async () => {
    expect(run.waits).toHaveLength(SCHEDULE.length);
    expect(run.states.filter((s) => s === 'LoadTimeSeries')).toHaveLength(SCHEDULE.length + 1);
    expect(run.states.slice(-5)).toEqual(['ThrottledTooLong', 'LoadTimeSeriesFailed', 'QuarantineFailure', 'NotifyFailure', 'IngestionFailed']);
    expect(run.error).toMatch(/quarantined in the failed bucket/);
    const item = await ledgerItem(aws, BUCKETS.raw, key);
    expect(item).toMatchObject({ status: 'quarantined', error: { step: 'LoadTimeSeries', errorType: 'TimeSeriesThrottled' } });
    expect(item!.error!.reason).toMatch(/^the time-series store kept throttling the load: 5 attempts over 75 minutes of waits \(throttledLoadRetryPeriod\); load the file again with the backfill once the store takes writes\. Last: WriteRecords to ear throttled for \d+ s without a write taken: load again later; ThrottlingException: Request rate limit exceeded\.$/);
    expect(item!.error!.reason).not.toMatch(/\bat load\b|trace/);
    expect(item!.history.filter((h) => h.status === 'retryLater')).toHaveLength(SCHEDULE.length);
    expect(JSON.stringify(run.notifications)).toContain('TimeSeriesThrottled');
    expect(ts.store.size).toBe(0);
  });
});
