import { mkdtempSync, rmSync } from 'node:fs';
import { AddressInfo, createServer, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateTableCommand, DynamoDBClient, UpdateTableCommand, waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { CountingProxy, LocalBedrockAgent } from './local-health';
import { LocalTimestreamInfluxDb } from './local-timestream-influxdb';
import { DataLake, PlatformStage } from '../../src';
import { HEALTH_COMPONENTS, HealthEnv, READINESS_PATH } from '../../src/health/contract';
import { ApiEnv } from '../../src/runtime/contract';
import { TimeSeriesEnv } from '../../src/timeseries/contract';
import { expectSchema } from '../api/openapi';
import { ENV } from '../helpers';
import { isolatedAwsEnv, loadHandler as loadLocalHandler, LocalServer, restoreEnv, startDynalite, startS3rver } from '../local-aws';
import { closedPort } from '../local-http';
import { flagValues, LocalAppConfig } from '../runtime/local-appconfig';
import { CapturedOutput, captureOutput } from '../runtime/output';
import { LocalAthena } from '../timeseries/lake/local-athena';
import { LocalTimestream } from '../timeseries/timestream/local-timestream';

/**
 * Runs the pre-bundled handler asset (what the function ships, its SDK clients included) against local services:
 * s3rver (lake), dynalite (ledger), the local Timestream (time series) and a local Bedrock Agent (knowledge base).
 * The handler has no endpoint setting besides Timestream's: the bundled SDK is pointed at the servers through the
 * standard environment variables only.
 */

type Handler = (event?: Partial<APIGatewayProxyEvent>, context?: Partial<Context>) => Promise<APIGatewayProxyResult>;

const ASSETS = join(__dirname, '..', '..', 'assets', 'health');

/** Buckets that exist on the server. */
const BUCKETS = { raw: 'ons-health-raw', processed: 'ons-health-processed', failed: 'ons-health-failed' } as const;
type Layer = keyof typeof BUCKETS;
const LAYERS = Object.keys(BUCKETS) as Layer[];
const MISSING_BUCKET = 'ons-health-missing';
const DATABASE = 'ons_health_database';
const MISSING_DATABASE = 'ons_health_missing_database';
const KNOWLEDGE_BASE = 'KBHEALTH01';
const MISSING_KNOWLEDGE_BASE = 'KBMISSING9';
const TABLE = 'ons-health-ledger';
const MISSING_TABLE = 'ons-health-ledger-missing';
/** A table of the slow dynalite (created, then updated, in a test). */
const SLOW_TABLE = 'ons-health-ledger-slow';
/** Knowledge bases in a state other than ACTIVE. */
const KB_STATES = ['CREATING', 'UPDATING', 'FAILED', 'DELETING'] as const;
const kbInState = (state: string) => `KB${state}`.slice(0, 10);
/** Every resource name or id a test hands the handler; none may appear in a response body. */
const ALL_NAMES = [
  ...Object.values(BUCKETS), MISSING_BUCKET, DATABASE, MISSING_DATABASE, KNOWLEDGE_BASE, MISSING_KNOWLEDGE_BASE,
  TABLE, MISSING_TABLE, SLOW_TABLE, ...KB_STATES.map(kbInState), 'arn:',
];

/** The deep readiness check's route (API Gateway proxy event). */
const READY: Partial<APIGatewayProxyEvent> = { resource: READINESS_PATH, path: READINESS_PATH, httpMethod: 'GET' };
const HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };
const LAKE_UP = { status: 'up', detail: { raw: 'up', processed: 'up', failed: 'up' } };
const ALL_UP = { lake: LAKE_UP, timeSeries: { status: 'up' }, knowledgeBase: { status: 'up' }, ledger: { status: 'up' }, flags: { status: 'notConfigured' } };
const NOT_AN_OBJECT = 'ONS_LAKE_BUCKETS must be a JSON object of layer to bucket name';
const TIME_SERIES_MALFORMED = 'ONS_HEALTH_TIME_SERIES must be a JSON object with engine and database';
const TIME_SERIES_NO_ENGINE = 'ONS_HEALTH_TIME_SERIES must be a JSON object with an engine';
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
/** One attempt: the SDK otherwise retries 5xx and connection errors with backoff, racing the check's own timeout. */
const NO_RETRIES = { AWS_MAX_ATTEMPTS: '1' };

let s3server: LocalServer;
let dynamo: LocalServer;
let slowDynamo: LocalServer;
let slowDynamoClient: DynamoDBClient;
const timestream = new LocalTimestream();
const bedrock = new LocalBedrockAgent();
let directory: string;
const endpoints = { s3: '', dynamodb: '', timestream: '', bedrock: '', appconfig: '' };
const appconfig = new LocalAppConfig();
let output: CapturedOutput;
let consoleError: jest.SpyInstance;


/**
 * Sets the environment (every component configured and up, flags unset, unless `env` says otherwise), then loads a
 * fresh copy of the bundled handler: the SDK resolves (and memoizes) endpoint, region, credentials and retries from
 * the environment when a client is created.
 */
function loadHandler(env: Record<string, string | undefined> = {}): Handler {
  const base: Record<string, string | undefined> = {
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_BEDROCK_AGENT: endpoints.bedrock,
    AWS_ENDPOINT_URL_APPCONFIGDATA: endpoints.appconfig,
    ...isolatedAwsEnv(directory),
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    [ApiEnv.CORS_ORIGINS]: undefined,
    [HealthEnv.LAKE_BUCKETS]: JSON.stringify(BUCKETS),
    [HealthEnv.TIME_SERIES]: JSON.stringify({ engine: 'timestream-liveanalytics', database: DATABASE }),
    [TimeSeriesEnv.HEALTH_TIMESTREAM_ENDPOINT]: endpoints.timestream,
    [HealthEnv.KNOWLEDGE_BASE_ID]: KNOWLEDGE_BASE,
    [HealthEnv.LEDGER_TABLE]: TABLE,
    [HealthEnv.FLAGS]: undefined,
    [HealthEnv.CHECK_TIMEOUT_MS]: undefined,
  };
  return loadLocalHandler('health', { ...base, ...env }, ASSETS) as Handler;
}

/** Invokes the readiness route of the handler and checks what every response shares; returns the status code and the parsed body. */
async function invoke(handler: Handler, event: Partial<APIGatewayProxyEvent> = {}) {
  const result = await handler({ ...READY, ...event }, { awsRequestId: 'lambda-request-id' });
  expect(result.headers).toEqual(HEADERS);
  for (const name of ALL_NAMES) expect(result.body).not.toContain(name);
  const body = JSON.parse(result.body) as { components: Record<string, unknown> };
  expect(Object.keys(body.components)).toEqual([...HEALTH_COMPONENTS]);
  // 200 and 503 alike carry the HealthReport of the shipped OpenAPI document.
  expectSchema('HealthReport', body);
  return { statusCode: result.statusCode, body: body as unknown };
}

/** The structured lines the handler wrote to stderr (WARN, ERROR). */
function errorLogs(): Array<Record<string, unknown>> {
  return consoleError.mock.calls.map(([line]) => JSON.parse(String(line)));
}

/**
 * A log line of a failed check: what every Powertools line has (level, message, timestamp, service,
 * sampling rate), the Lambda context's keys, the request id, then the check's fields.
 */
function failure(component: string, reason: string, fields: Record<string, unknown> = {}) {
  return {
    level: 'ERROR',
    message: 'health check failed',
    timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    service: expect.any(String),
    sampling_rate: 0,
    cold_start: expect.any(Boolean),
    function_request_id: 'lambda-request-id',
    requestId: 'lambda-request-id',
    component,
    reason,
    ...fields,
  };
}

/** A degraded report: every component up but the ones given. */
function degraded(components: Record<string, unknown>) {
  return { status: 'degraded', components: { ...ALL_UP, ...components } };
}

function createTable(client: DynamoDBClient, TableName: string) {
  return client.send(new CreateTableCommand({
    TableName,
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    ProvisionedThroughput: { ReadCapacityUnits: 1, WriteCapacityUnits: 1 },
  }));
}

beforeAll(async () => {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  directory = mkdtempSync(join(tmpdir(), 'ons-health-'));
  s3server = await startS3rver(directory, Object.values(BUCKETS));
  endpoints.s3 = s3server.endpoint;
  dynamo = await startDynalite();
  endpoints.dynamodb = dynamo.endpoint;
  // Tables stay CREATING, then UPDATING, for a while here.
  slowDynamo = await startDynalite({ createTableMs: 2000, updateTableMs: 2000 });
  const client = new DynamoDBClient({ endpoint: endpoints.dynamodb, region: 'us-east-1', credentials: CREDENTIALS });
  await createTable(client, TABLE);
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: TABLE });
  client.destroy();
  slowDynamoClient = new DynamoDBClient({ endpoint: slowDynamo.endpoint, region: 'us-east-1', credentials: CREDENTIALS });
  timestream.databases.add(DATABASE);
  endpoints.timestream = await timestream.start();
  bedrock.knowledgeBases.set(KNOWLEDGE_BASE, 'ACTIVE');
  endpoints.bedrock = await bedrock.start();
  appconfig.profiles.set('ons/dev/flags', flagValues());
  endpoints.appconfig = await appconfig.start();
});

afterAll(async () => {
  restoreEnv();
  slowDynamoClient?.destroy();
  await s3server?.close();
  await Promise.all([dynamo?.close(), slowDynamo?.close()]);
  await timestream.close();
  await bedrock.close();
  await appconfig.close();
  if (directory) rmSync(directory, { recursive: true, force: true });
});

beforeEach(() => {
  output = captureOutput();
  consoleError = output.error;
  timestream.reset();
  bedrock.reset();
});

afterEach(() => {
  output.restore();
  restoreEnv();
});

describe('every component', () => {
  test('all configured components up: 200 ok, the five components listed, one read-only call each', async () => {
    const { statusCode, body } = await invoke(loadHandler());

    expect(statusCode).toBe(200);
    expect(body).toEqual({ status: 'ok', components: ALL_UP });
    expect(consoleError).not.toHaveBeenCalled();
    expect(timestream.requests.map((r) => [r.operation, r.body])).toEqual([['DescribeDatabase', { DatabaseName: DATABASE }]]);
    expect(bedrock.requests).toEqual([`/knowledgebases/${KNOWLEDGE_BASE}`]);
  });

  test('no component configured: 200 ok, all notConfigured, nothing called', async () => {
    const variables = [HealthEnv.LAKE_BUCKETS, HealthEnv.TIME_SERIES, HealthEnv.KNOWLEDGE_BASE_ID, HealthEnv.LEDGER_TABLE, HealthEnv.FLAGS];
    const handler = loadHandler(Object.fromEntries(variables.map((v) => [v, undefined])));

    const { statusCode, body } = await invoke(handler);

    expect(statusCode).toBe(200);
    expect(body).toEqual({ status: 'ok', components: Object.fromEntries(HEALTH_COMPONENTS.map((c) => [c, { status: 'notConfigured' }])) });
    expect(timestream.requests).toEqual([]);
    expect(bedrock.requests).toEqual([]);
    expect(consoleError).not.toHaveBeenCalled();
  });

  test.each([
    ['lake', HealthEnv.LAKE_BUCKETS],
    ['timeSeries', HealthEnv.TIME_SERIES],
    ['knowledgeBase', HealthEnv.KNOWLEDGE_BASE_ID],
    ['ledger', HealthEnv.LEDGER_TABLE],
  ])('%s unset (an empty value too): notConfigured, still 200 ok', async (component, variable) => {
    for (const value of [undefined, '']) {
      const { statusCode, body } = await invoke(loadHandler({ [variable]: value }));

      expect(statusCode).toBe(200);
      expect(body).toEqual({ status: 'ok', components: { ...ALL_UP, [component]: { status: 'notConfigured' } } });
    }
    expect(consoleError).not.toHaveBeenCalled();
  });

  test('the checks run at once: two services that answer only when both have been asked are both up', async () => {
    // A barrier, not a clock: run one after the other, the first check would wait for the second until it timed out.
    let release!: () => void;
    const both = new Promise<void>((resolve) => (release = resolve));
    const poll = setInterval(() => {
      if (bedrock.requests.length > 0 && timestream.of('DescribeDatabase').length > 0) release();
    }, 5);
    timestream.hold = both;
    bedrock.hold = both;
    try {
      const { statusCode, body } = await invoke(loadHandler({ ...NO_RETRIES, [HealthEnv.CHECK_TIMEOUT_MS]: '20000' }));

      expect(statusCode).toBe(200);
      expect(body).toEqual({ status: 'ok', components: ALL_UP });
    } finally {
      clearInterval(poll);
      release();
    }
  });

  test('every check stalled: each ends as timed out (only the check timeout can end it), the others still up', async () => {
    let release!: () => void;
    const never = new Promise<void>((resolve) => (release = resolve));
    timestream.hold = never;
    bedrock.hold = never;
    try {
      // Generous for the healthy components on a loaded machine; the stalled ones can only end by the timeout.
      const { statusCode, body } = await invoke(loadHandler({ ...NO_RETRIES, [HealthEnv.CHECK_TIMEOUT_MS]: '3000' }));

      expect(statusCode).toBe(503);
      expect(body).toEqual(degraded({ timeSeries: { status: 'down', detail: { reason: 'timed out' } }, knowledgeBase: { status: 'down', detail: { reason: 'timed out' } } }));
    } finally {
      release();
    }
  });

  test('the response carries CORS headers for a configured origin (the shared API responses)', async () => {
    const handler = loadHandler({ [ApiEnv.CORS_ORIGINS]: JSON.stringify(['https://ons.example']) });

    const result = await handler({ headers: { Origin: 'https://ons.example' } });

    expect(result.statusCode).toBe(200);
    expect(result.headers).toEqual({ ...HEADERS, 'access-control-allow-origin': 'https://ons.example', 'vary': 'Origin' });
  });
});

describe('liveness and readiness (the amplifier bounded)', () => {
  // s3rver and dynalite keep no request log: count what reaches them through proxies.
  let s3: CountingProxy;
  let ddb: CountingProxy;
  const FLAGS_CONFIG = JSON.stringify({ application: 'ons', environment: 'dev', profile: 'flags', maxAgeSeconds: '60' });
  /** Every component configured (flags too), each reached through a counted endpoint. */
  const counted = (env: Record<string, string | undefined> = {}) => loadHandler({
    AWS_ENDPOINT_URL_S3: proxies.s3,
    AWS_ENDPOINT_URL_DYNAMODB: proxies.dynamodb,
    [HealthEnv.FLAGS]: FLAGS_CONFIG,
    ...env,
  });
  const proxies = { s3: '', dynamodb: '' };
  /** Every control-plane call the local servers received, by service. */
  const calls = () => ({
    s3: [...s3.requests],
    dynamodb: [...ddb.requests],
    timestream: timestream.requests.map((r) => r.operation),
    bedrock: [...bedrock.requests],
    appconfig: [...appconfig.requests],
  });
  const ONE_ROUND = {
    s3: Object.values(BUCKETS).map((b) => `HEAD /${b}/`).sort(),
    dynamodb: ['DescribeTable'],
    timestream: ['DescribeDatabase'],
    bedrock: [`/knowledgebases/${KNOWLEDGE_BASE}`],
    appconfig: ['POST /configurationsessions', 'GET /configuration'],
  };
  const sorted = (c: ReturnType<typeof calls>) => ({ ...c, s3: [...c.s3].sort() });

  beforeAll(async () => {
    s3 = new CountingProxy(endpoints.s3);
    ddb = new CountingProxy(endpoints.dynamodb);
    proxies.s3 = await s3.start();
    proxies.dynamodb = await ddb.start();
  });
  afterAll(async () => {
    await s3.close();
    await ddb.close();
  });
  beforeEach(() => {
    s3.requests.length = 0;
    ddb.requests.length = 0;
    appconfig.requests.length = 0;
  });

  test('GET /health (liveness): 25 anonymous calls answer 200 {status: ok} from the function, no call to any service', async () => {
    const handler = counted();
    for (let i = 0; i < 25; i++) {
      const result = await handler({ resource: '/health', path: '/health', httpMethod: 'GET' }, { awsRequestId: `live-${i}` });
      expect(result.statusCode).toBe(200);
      expect(result.headers).toEqual(HEADERS);
      expect(JSON.parse(result.body)).toEqual({ status: 'ok' });
      expectSchema('HealthLiveness', JSON.parse(result.body));
    }
    // A direct invocation (no API Gateway resource) is liveness too.
    expect(JSON.parse((await handler({})).body)).toEqual({ status: 'ok' });

    expect(calls()).toEqual({ s3: [], dynamodb: [], timestream: [], bedrock: [], appconfig: [] });
  });

  test('GET /health/ready: 25 calls inside the cache time make one round of control-plane calls (3 HeadBucket, DescribeTable, DescribeDatabase, GetKnowledgeBase, an AppConfig session and poll), all answered ok', async () => {
    const handler = counted();
    for (let i = 0; i < 25; i++) {
      const { statusCode, body } = await invoke(handler);
      expect(statusCode).toBe(200);
      expect(body).toEqual({ status: 'ok', components: { ...ALL_UP, flags: { status: 'up' } } });
    }

    expect(sorted(calls())).toEqual(ONE_ROUND);
  });

  test('GET /health/ready: a degraded report is kept as long (a failing dependency is not asked more often)', async () => {
    bedrock.failWith = 500;
    const handler = counted(NO_RETRIES);
    for (let i = 0; i < 10; i++) {
      const { statusCode, body } = await invoke(handler);
      expect(statusCode).toBe(503);
      expect(body).toEqual(degraded({ knowledgeBase: { status: 'down', detail: { reason: 'error 500' } }, flags: { status: 'up' } }));
    }

    expect(sorted(calls())).toEqual(ONE_ROUND);
    // One log line for the one failed check, not one per request.
    expect(errorLogs()).toHaveLength(1);
  });

  test('GET /health/ready after the cache time: one new round; the flags answer from their own cache (AppConfig polled no earlier than allowed)', async () => {
    const handler = counted({ [HealthEnv.READY_CACHE_SECONDS]: '1' });
    await invoke(handler);
    await invoke(handler);
    expect(sorted(calls())).toEqual(ONE_ROUND);

    // Past the 1 s readiness cache, well inside the flags' 60 s poll interval.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const { statusCode, body } = await invoke(handler);

    expect(statusCode).toBe(200);
    expect(body).toEqual({ status: 'ok', components: { ...ALL_UP, flags: { status: 'up' } } });
    const twice = (list: string[]) => [...list, ...list].sort();
    expect(sorted(calls())).toEqual({
      s3: twice(ONE_ROUND.s3),
      dynamodb: twice(ONE_ROUND.dynamodb),
      timestream: twice(ONE_ROUND.timestream),
      bedrock: twice(ONE_ROUND.bedrock),
      appconfig: ONE_ROUND.appconfig,
    });
    expect(consoleError).not.toHaveBeenCalled();
  });
});

describe('log lines', () => {
  test('one JSON line per failed check: component, classified reason, resource name, the API request id', async () => {
    bedrock.knowledgeBases.set(kbInState('CREATING'), 'CREATING');
    const handler = loadHandler({
      [HealthEnv.LAKE_BUCKETS]: JSON.stringify({ ...BUCKETS, raw: MISSING_BUCKET }),
      [HealthEnv.TIME_SERIES]: JSON.stringify({ engine: 'timestream-liveanalytics', database: MISSING_DATABASE }),
      [HealthEnv.KNOWLEDGE_BASE_ID]: kbInState('CREATING'),
      [HealthEnv.LEDGER_TABLE]: MISSING_TABLE,
      [HealthEnv.FLAGS]: JSON.stringify({ application: 'ons', environment: 'dev', profile: 'missing-profile' }),
    });

    const { statusCode } = await invoke(handler, { requestContext: { requestId: 'api-request-id' } as APIGatewayProxyEvent['requestContext'] });

    expect(statusCode).toBe(503);
    const api = (component: string, reason: string, fields: Record<string, unknown> = {}) => ({ ...failure(component, reason, fields), requestId: 'api-request-id' });
    expect(errorLogs()).toEqual(expect.arrayContaining([
      api('lake', 'not found', { layer: 'raw', bucket: MISSING_BUCKET }),
      api('timeSeries', 'not found', { database: MISSING_DATABASE, errorType: 'ResourceNotFoundException' }),
      api('knowledgeBase', 'status CREATING', { knowledgeBaseId: kbInState('CREATING') }),
      api('ledger', 'not found', { table: MISSING_TABLE, errorType: 'ResourceNotFoundException' }),
      api('flags', 'not found', { application: 'ons', errorType: 'ResourceNotFoundException' }),
    ]));
    expect(consoleError).toHaveBeenCalledTimes(5);
    for (const [line] of consoleError.mock.calls) expect(typeof line).toBe('string');
  });
});

describe('lake buckets on s3rver', () => {
  test.each(LAYERS)('the %s bucket is missing: 503, that layer not found, the others up', async (missing) => {
    const handler = loadHandler({ [HealthEnv.LAKE_BUCKETS]: JSON.stringify({ ...BUCKETS, [missing]: MISSING_BUCKET }) });

    const { statusCode, body } = await invoke(handler);

    expect(statusCode).toBe(503);
    expect(body).toEqual(degraded({ lake: { status: 'down', detail: { raw: 'up', processed: 'up', failed: 'up', [missing]: 'not found' } } }));
    // The log names the bucket (the response does not).
    expect(errorLogs()).toEqual([failure('lake', 'not found', { layer: missing, bucket: MISSING_BUCKET })]);
  });

  test.each([
    ['invalid JSON', '{raw: ons-health-raw'],
    ['an empty object', '{}'],
    ['a non-string value', JSON.stringify({ ...BUCKETS, failed: 42 })],
    ['an empty-string value', JSON.stringify({ ...BUCKETS, failed: '' })],
    ['an array', JSON.stringify(Object.values(BUCKETS))],
    ['a JSON string', JSON.stringify(BUCKETS.raw)],
  ])('ONS_LAKE_BUCKETS is %s: 503, must be a JSON object', async (_, value) => {
    const { statusCode, body } = await invoke(loadHandler({ [HealthEnv.LAKE_BUCKETS]: value }));

    expect(statusCode).toBe(503);
    expect(body).toEqual(degraded({ lake: { status: 'down', detail: { configuration: NOT_AN_OBJECT } } }));
    expect(errorLogs()).toEqual([failure('lake', NOT_AN_OBJECT)]);
  });
});

describe('S3 not answering', () => {
  const lakeDown = (reason: string) => degraded({ lake: { status: 'down', detail: { raw: reason, processed: reason, failed: reason } } });

  test('nothing listens on the endpoint: 503, every layer unreachable', async () => {
    const handler = loadHandler({ ...NO_RETRIES, [HealthEnv.CHECK_TIMEOUT_MS]: '10000', AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${await closedPort()}` });

    const { statusCode, body } = await invoke(handler);

    // Connection refused fails at once, well inside the timeout; the SDK surfaces it as a plain Error (ECONNREFUSED).
    expect(statusCode).toBe(503);
    expect(body).toEqual(lakeDown('unreachable (Error)'));
    expect(errorLogs()).toEqual(expect.arrayContaining(LAYERS.map((layer) => failure('lake', 'unreachable (Error)', { layer, bucket: BUCKETS[layer] }))));
    expect(consoleError).toHaveBeenCalledTimes(3);
  });

  describe('the endpoint accepts connections but never answers', () => {
    let stalled: Server;
    const sockets = new Set<Socket>();

    beforeAll(async () => {
      stalled = createServer((socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    });

    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => stalled.close(() => resolve()));
    });

    test('503, every layer timed out (only the check timeout can end the request)', async () => {
      const { port } = stalled.address() as AddressInfo;
      const handler = loadHandler({ ...NO_RETRIES, [HealthEnv.CHECK_TIMEOUT_MS]: '3000', AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}` });

      const { statusCode, body } = await invoke(handler);

      expect(statusCode).toBe(503);
      expect(body).toEqual(lakeDown('timed out'));
      expect(errorLogs()).toEqual(expect.arrayContaining(LAYERS.map((layer) => failure('lake', 'timed out', { layer, bucket: BUCKETS[layer] }))));
      expect(consoleError).toHaveBeenCalledTimes(3);
    });
  });
});

describe('time series on the local Timestream', () => {
  const down = (detail: Record<string, string>) => degraded({ timeSeries: { status: 'down', detail } });

  test('an unknown database: 503, not found', async () => {
    const handler = loadHandler({ [HealthEnv.TIME_SERIES]: JSON.stringify({ engine: 'timestream-liveanalytics', database: MISSING_DATABASE }) });

    const { statusCode, body } = await invoke(handler);

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ reason: 'not found' }));
    expect(timestream.of('DescribeDatabase').map((r) => r.outcome)).toEqual(['ResourceNotFoundException']);
  });

  test('access denied: 503, access denied', async () => {
    timestream.failNext('AccessDeniedException', 1, 'DescribeDatabase');

    const { statusCode, body } = await invoke(loadHandler());

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ reason: 'access denied' }));
    expect(errorLogs()).toEqual([failure('timeSeries', 'access denied', { database: DATABASE, errorType: 'AccessDeniedException' })]);
  });

  test('a 500: 503, error 500', async () => {
    timestream.failNext('status500', 1, 'DescribeDatabase');

    const { statusCode, body } = await invoke(loadHandler(NO_RETRIES));

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ reason: 'error 500' }));
  });

  test('stalled: 503, timed out (the request can only end by the check timeout)', async () => {
    let release!: () => void;
    timestream.hold = new Promise<void>((resolve) => (release = resolve));
    const handler = loadHandler({ ...NO_RETRIES, [HealthEnv.CHECK_TIMEOUT_MS]: '3000' });

    const { statusCode, body } = await invoke(handler).finally(() => release());

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ reason: 'timed out' }));
    expect(errorLogs()).toEqual([failure('timeSeries', 'timed out', { database: DATABASE, errorType: expect.any(String) })]);
  });

  test('another engine: 503, engine unsupported, nothing called', async () => {
    const handler = loadHandler({ [HealthEnv.TIME_SERIES]: JSON.stringify({ engine: 'aurora-postgresql', database: DATABASE }) });

    const { statusCode, body } = await invoke(handler);

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ engine: 'unsupported' }));
    expect(timestream.requests).toEqual([]);
    expect(errorLogs()).toEqual([failure('timeSeries', 'unsupported engine', { engine: 'aurora-postgresql' })]);
  });

  test.each([
    ['invalid JSON', '{engine: timestream', TIME_SERIES_NO_ENGINE],
    ['without a database', JSON.stringify({ engine: 'timestream-liveanalytics' }), TIME_SERIES_MALFORMED],
    ['without an engine', JSON.stringify({ database: DATABASE }), TIME_SERIES_NO_ENGINE],
    ['an empty database', JSON.stringify({ engine: 'timestream-liveanalytics', database: '' }), TIME_SERIES_MALFORMED],
    ['an array', JSON.stringify(['timestream-liveanalytics', DATABASE]), TIME_SERIES_NO_ENGINE],
    ['an engine named like a prototype property', JSON.stringify({ engine: 'constructor', database: DATABASE }), undefined],
  ])('ONS_HEALTH_TIME_SERIES is %s: 503, the configuration reason', async (_, value, reason) => {
    const { statusCode, body } = await invoke(loadHandler({ [HealthEnv.TIME_SERIES]: value }));

    expect(statusCode).toBe(503);
    expect(body).toEqual(reason ? down({ configuration: reason }) : down({ engine: 'unsupported' }));
    expect(timestream.requests).toEqual([]);
    expect(errorLogs()).toEqual([reason ? failure('timeSeries', reason) : failure('timeSeries', 'unsupported engine', { engine: 'constructor' })]);
  });
});

describe('knowledge base on the local Bedrock Agent', () => {
  const down = (detail: Record<string, string>) => degraded({ knowledgeBase: { status: 'down', detail } });

  test('an unknown id: 503, not found', async () => {
    const { statusCode, body } = await invoke(loadHandler({ [HealthEnv.KNOWLEDGE_BASE_ID]: MISSING_KNOWLEDGE_BASE }));

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ reason: 'not found' }));
    expect(errorLogs()).toEqual([failure('knowledgeBase', 'not found', { knowledgeBaseId: MISSING_KNOWLEDGE_BASE, errorType: 'ResourceNotFoundException' })]);
  });

  test.each(KB_STATES)('status %s: 503, down with that status', async (state) => {
    const id = kbInState(state);
    bedrock.knowledgeBases.set(id, state);

    const { statusCode, body } = await invoke(loadHandler({ [HealthEnv.KNOWLEDGE_BASE_ID]: id }));

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ status: state }));
    expect(errorLogs()).toEqual([failure('knowledgeBase', `status ${state}`, { knowledgeBaseId: id })]);
  });

  test('a 500: 503, error 500', async () => {
    bedrock.failWith = 500;

    const { statusCode, body } = await invoke(loadHandler(NO_RETRIES));

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ reason: 'error 500' }));
  });

  test('stalled: 503, timed out (the request can only end by the check timeout)', async () => {
    let release!: () => void;
    bedrock.hold = new Promise<void>((resolve) => (release = resolve));
    const handler = loadHandler({ ...NO_RETRIES, [HealthEnv.CHECK_TIMEOUT_MS]: '3000' });

    const { statusCode, body } = await invoke(handler).finally(() => release());

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ reason: 'timed out' }));
  });
});

describe('ledger on dynalite', () => {
  const down = (detail: Record<string, string>) => degraded({ ledger: { status: 'down', detail } });

  test('a table that does not exist: 503, not found', async () => {
    const { statusCode, body } = await invoke(loadHandler({ [HealthEnv.LEDGER_TABLE]: MISSING_TABLE }));

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ reason: 'not found' }));
    expect(errorLogs()).toEqual([failure('ledger', 'not found', { table: MISSING_TABLE, errorType: 'ResourceNotFoundException' })]);
  });

  test('a table being created: 503, status CREATING; being updated: up (it serves reads and writes)', async () => {
    const creating = loadHandler({ AWS_ENDPOINT_URL_DYNAMODB: slowDynamo.endpoint, [HealthEnv.LEDGER_TABLE]: SLOW_TABLE });
    await createTable(slowDynamoClient, SLOW_TABLE);

    const created = await invoke(creating);

    expect(created.statusCode).toBe(503);
    expect(created.body).toEqual(down({ status: 'CREATING' }));
    expect(errorLogs()).toEqual([failure('ledger', 'status CREATING', { table: SLOW_TABLE })]);
    await waitUntilTableExists({ client: slowDynamoClient, maxWaitTime: 30, minDelay: 1 }, { TableName: SLOW_TABLE });

    const throughput = { ReadCapacityUnits: 2, WriteCapacityUnits: 2 };
    await slowDynamoClient.send(new UpdateTableCommand({ TableName: SLOW_TABLE, ProvisionedThroughput: throughput }));
    const updated = await invoke(loadHandler({ AWS_ENDPOINT_URL_DYNAMODB: slowDynamo.endpoint, [HealthEnv.LEDGER_TABLE]: SLOW_TABLE }));

    expect(updated.statusCode).toBe(200);
    expect(updated.body).toEqual({ status: 'ok', components: ALL_UP });
    // Let the update finish before the server closes.
    await new Promise((resolve) => setTimeout(resolve, 2100));
  });
});

describe('feature flags', () => {
  test('the profile holds every flag: up (the flags checks themselves are in test/runtime/flags.test.ts)', async () => {
    const handler = loadHandler({ [HealthEnv.FLAGS]: JSON.stringify({ application: 'ons', environment: 'dev', profile: 'flags' }) });

    const { statusCode, body } = await invoke(handler);

    expect(statusCode).toBe(200);
    expect(body).toEqual({ status: 'ok', components: { ...ALL_UP, flags: { status: 'up' } } });
    expect(appconfig.requests).toEqual(expect.arrayContaining(['POST /configurationsessions', 'GET /configuration']));
  });

  test('two probes within the poll interval (AppConfig refuses an early poll): both up, the second answered from the last configuration read', async () => {
    appconfig.requests.length = 0;
    appconfig.answers.length = 0;
    // The readiness cache off, so the second probe runs every check again: only the flags' own cache can answer it.
    const handler = loadHandler({ [HealthEnv.FLAGS]: JSON.stringify({ application: 'ons', environment: 'dev', profile: 'flags' }), [HealthEnv.READY_CACHE_SECONDS]: '0' });

    const first = await invoke(handler);
    const second = await invoke(handler);

    expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
    expect(second.body).toEqual({ status: 'ok', components: { ...ALL_UP, flags: { status: 'up' } } });
    // One session, one poll: the local AppConfig Data refuses a second poll inside its 60 s interval, as the service does.
    expect(appconfig.answers).toEqual(['POST /configurationsessions 201', 'GET /configuration 200']);
    expect(timestream.of('DescribeDatabase')).toHaveLength(2);
    expect(consoleError).not.toHaveBeenCalled();
  });
});

describe('kill switches and flags not as deployed', () => {
  const deployedValues = JSON.stringify({
    ragQueries: true, timeSeriesApi: true, largeFileBatch: true, knowledgeBaseSync: true, numericAnswers: true,
  });
  const config = (killSwitchProfile: string) => JSON.stringify({
    application: 'ons', environment: 'dev', profile: 'flags', killSwitchEnvironment: 'dev-kill-switches', killSwitchProfile, deployedValues,
  });

  test('a kill switch off and a flag edited in the console: up, naming both (the edit is undone by the next deploy)', async () => {
    appconfig.profiles.set('ons/dev/edited', flagValues({ timeSeriesApi: { enabled: false } }));
    appconfig.profiles.set('ons/dev-kill-switches/switches', flagValues({ ragQueries: { enabled: false } }));
    const handler = loadHandler({ [HealthEnv.FLAGS]: config('switches').replace('"profile":"flags"', '"profile":"edited"') });

    const { statusCode, body } = await invoke(handler);

    expect(statusCode).toBe(200);
    expect(body).toEqual({ status: 'ok', components: { ...ALL_UP, flags: { status: 'up', detail: { notAsDeployed: 'timeSeriesApi', killed: 'ragQueries' } } } });
  });

  test('every kill switch on and the flags as deployed: up, no detail', async () => {
    appconfig.profiles.set('ons/dev-kill-switches/all-on', flagValues());
    const handler = loadHandler({ [HealthEnv.FLAGS]: config('all-on') });

    const { statusCode, body } = await invoke(handler);

    expect(statusCode).toBe(200);
    expect(body).toEqual({ status: 'ok', components: { ...ALL_UP, flags: { status: 'up' } } });
  });

  test('kill switches that cannot be read: down (an emergency switch would not take effect), the reason classified', async () => {
    const handler = loadHandler({ [HealthEnv.FLAGS]: config('missing-switches') });

    const { statusCode, body } = await invoke(handler);

    expect(statusCode).toBe(503);
    expect(body).toEqual(degraded({ flags: { status: 'down', detail: { reason: 'kill switches unreadable' } } }));
  });
});

describe('time series on Timestream for InfluxDB (control plane, no VPC)', () => {
  const influx = new LocalTimestreamInfluxDb();
  const INSTANCE = 'a1b2c3d4e5';
  const MISSING_INSTANCE = 'z9y8x7w6v5';
  const STATES = ['CREATING', 'MODIFYING', 'UPDATING', 'MAINTENANCE', 'REBOOTING', 'FAILED', 'DELETING'] as const;
  const inState = (state: string) => `i${state.toLowerCase()}`;
  let endpoint: string;
  const down = (detail: Record<string, string>) => degraded({ timeSeries: { status: 'down', detail } });
  const configFor = (instanceId: unknown) => ({
    [HealthEnv.TIME_SERIES]: JSON.stringify({ engine: 'timestream-influxdb', instanceId }),
    AWS_ENDPOINT_URL_TIMESTREAM_INFLUXDB: endpoint,
  });
  /** The handler with the InfluxDB engine configured; checks the response names no instance. */
  async function invokeInflux(env: Record<string, string | undefined>) {
    const result = await invoke(loadHandler(env));
    for (const id of [INSTANCE, MISSING_INSTANCE, ...STATES.map(inState)]) expect(JSON.stringify(result.body)).not.toContain(id);
    return result;
  }

  beforeAll(async () => {
    influx.instances.set(INSTANCE, 'AVAILABLE');
    for (const state of STATES) influx.instances.set(inState(state), state);
    endpoint = await influx.start();
  });
  afterAll(() => influx.close());
  beforeEach(() => influx.reset());

  test('an AVAILABLE instance: 200 ok, one GetDbInstance with its id, nothing asked of LiveAnalytics', async () => {
    const { statusCode, body } = await invokeInflux(configFor(INSTANCE));

    expect(statusCode).toBe(200);
    expect(body).toEqual({ status: 'ok', components: ALL_UP });
    expect(influx.requests).toEqual([{ target: 'AmazonTimestreamInfluxDB.GetDbInstance', body: { identifier: INSTANCE } }]);
    expect(timestream.requests).toEqual([]);
    expect(consoleError).not.toHaveBeenCalled();
  });

  test.each(STATES)('status %s: 503, down with that status, the instance id in the log line only', async (state) => {
    const { statusCode, body } = await invokeInflux(configFor(inState(state)));

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ status: state }));
    expect(errorLogs()).toEqual([failure('timeSeries', `status ${state}`, { instanceId: inState(state) })]);
  });

  test('an unknown instance: 503, not found', async () => {
    const { statusCode, body } = await invokeInflux(configFor(MISSING_INSTANCE));

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ reason: 'not found' }));
    expect(errorLogs()).toEqual([failure('timeSeries', 'not found', { instanceId: MISSING_INSTANCE, errorType: 'ResourceNotFoundException' })]);
  });

  test('access denied (no timestream-influxdb:GetDbInstance): 503, access denied', async () => {
    influx.failWith = { status: 403, type: 'AccessDeniedException' };

    const { statusCode, body } = await invokeInflux(configFor(INSTANCE));

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ reason: 'access denied' }));
  });

  test('a 500: 503, error 500', async () => {
    influx.failWith = { status: 500, type: 'InternalServerException' };

    const { statusCode, body } = await invokeInflux({ ...configFor(INSTANCE), ...NO_RETRIES });

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ reason: 'error 500' }));
  });

  test.each([
    ['without an instanceId', undefined],
    ['an empty instanceId', ''],
    ['a numeric instanceId', 42],
  ])('%s: 503, the configuration reason, nothing called', async (_, instanceId) => {
    const reason = 'ONS_HEALTH_TIME_SERIES must be a JSON object with engine and instanceId';

    const { statusCode, body } = await invokeInflux(configFor(instanceId));

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ configuration: reason }));
    expect(influx.requests).toEqual([]);
    expect(errorLogs()).toEqual([failure('timeSeries', reason)]);
  });
});

describe('time series on the lake engine (Athena: GetWorkGroup, then GetDatabase of the Glue catalog)', () => {
  // The local Athena serves the workgroup and the Glue database of a synthesized DataLake; no query runs here.
  const lakeStack = new Stack(new App(), 'HealthLake', { env: ENV });
  new DataLake(lakeStack, 'Lake', { stage: PlatformStage.DEV, workGroupName: 'ons-health-workgroup', databaseName: 'ons_health_lake' });
  const emptyZone = mkdtempSync(join(tmpdir(), 'ons-health-lake-'));
  const athena = new LocalAthena({ template: Template.fromStack(lakeStack), processedDir: emptyZone });
  const WORK_GROUP = 'ons-health-workgroup';
  const LAKE_DATABASE = 'ons_health_lake';
  let endpoint: string;
  const down = (detail: Record<string, string>) => degraded({ timeSeries: { status: 'down', detail } });
  const configFor = (config: Record<string, unknown>) => ({
    [HealthEnv.TIME_SERIES]: JSON.stringify({ engine: 'athena-lake', ...config }),
    AWS_ENDPOINT_URL_ATHENA: endpoint,
  });
  const lake = { workGroup: WORK_GROUP, database: LAKE_DATABASE };
  async function invokeLake(env: Record<string, string | undefined>) {
    const result = await invoke(loadHandler(env));
    for (const name of [WORK_GROUP, LAKE_DATABASE, 'missing']) expect(JSON.stringify(result.body)).not.toContain(name);
    return result;
  }

  beforeAll(async () => {
    endpoint = await athena.start();
  });
  afterAll(async () => {
    await athena.close();
    rmSync(emptyZone, { recursive: true, force: true });
  });
  beforeEach(() => {
    athena.requests.length = 0;
    athena.clearFaults();
    athena.workGroupState = 'ENABLED';
  });

  test('an ENABLED workgroup and the database: 200 ok, GetWorkGroup then GetDatabase, no query, nothing asked of Timestream', async () => {
    const { statusCode, body } = await invokeLake(configFor(lake));

    expect(statusCode).toBe(200);
    expect(body).toEqual({ status: 'ok', components: ALL_UP });
    expect(athena.requests).toEqual([
      { operation: 'GetWorkGroup', body: { WorkGroup: WORK_GROUP } },
      { operation: 'GetDatabase', body: { CatalogName: 'AwsDataCatalog', DatabaseName: LAKE_DATABASE } },
    ]);
    expect(athena.queries).toEqual([]);
    expect(timestream.requests).toEqual([]);
    expect(consoleError).not.toHaveBeenCalled();
  });

  test('a DISABLED workgroup: 503, down with its state, the database not asked', async () => {
    athena.workGroupState = 'DISABLED';
    const { statusCode, body } = await invokeLake(configFor(lake));

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ status: 'DISABLED' }));
    expect(athena.requests.map((r) => r.operation)).toEqual(['GetWorkGroup']);
    expect(errorLogs()).toEqual([failure('timeSeries', 'status DISABLED', { workGroup: WORK_GROUP })]);
  });

  test.each([
    ['workgroup', { ...lake, workGroup: 'missing-workgroup' }, 'InvalidRequestException'],
    ['database', { ...lake, database: 'missing_database' }, 'MetadataException'],
  ])('an unknown %s: 503, not found, the names in the log line only', async (_, config, errorType) => {
    const { statusCode, body } = await invokeLake(configFor(config));

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ reason: 'not found' }));
    expect(errorLogs()).toEqual([failure('timeSeries', 'not found', { ...config, errorType })]);
  });

  test('access denied (no glue:GetDatabase): 503, access denied', async () => {
    athena.failNext('GetDatabase', 'AccessDeniedException', 'not authorized to perform glue:GetDatabase');
    const { statusCode, body } = await invokeLake(configFor(lake));

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ reason: 'access denied' }));
  });

  test('a 500: 503, error 500', async () => {
    athena.failNext('GetWorkGroup', 'InternalServerException', 'boom', 500);
    const { statusCode, body } = await invokeLake({ ...configFor(lake), ...NO_RETRIES });

    expect(statusCode).toBe(503);
    expect(body).toEqual(down({ reason: 'error 500' }));
  });

  test.each([
    ['without a workGroup', { database: LAKE_DATABASE }],
    ['without a database', { workGroup: WORK_GROUP }],
    ['an empty workGroup', { ...lake, workGroup: '' }],
  ])('%s: 503, the configuration reason, nothing called', async (_, config) => {
    const { statusCode, body } = await invokeLake(configFor(config));

    expect(statusCode).toBe(503);
    expect((body as any).components.timeSeries).toEqual({ status: 'down', detail: { configuration: expect.stringMatching(/ONS_HEALTH_TIME_SERIES must be a JSON object with engine/) } });
    expect(athena.requests).toEqual([]);
  });
});
