import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { unzipSync } from 'fflate';
import { flagValues, LocalAppConfig } from './local-appconfig';
import { CapturedOutput, captureOutput } from './output';
import { DataLake, IngestionPipeline, KnowledgeBase, PlatformStage } from '../../src';
import { HealthEnv, READINESS_PATH } from '../../src/health/contract';
import { IngestionEnv, RouteResult } from '../../src/ingestion/contract';
import { FlagsEnv, metricsNamespace, OperationsEnv } from '../../src/runtime/contract';
import { TimeSeriesEnv } from '../../src/timeseries/contract';
import { expectSchema } from '../api/openapi';
import { ENV } from '../helpers';
import { definitionOf } from '../ingestion/asl';
import { BUCKETS, EXECUTION, handlerEnv, LocalAws, loadHandler, putObject, restoreEnv, startLocalAws } from '../local-aws';
import { runLocally } from '../local-stepfunctions';
import { ONS_DATA } from '../ons-data';
import { LocalTimestream } from '../timeseries/timestream/local-timestream';

/**
 * Feature flags as the bundled handlers read them (Powertools Parameters' AppConfig provider and the real
 * SDK client) from a local AppConfig Data: a flag turned off gives a 503 FeatureDisabled in the API, a
 * quarantine with its reason or a skipped step in the pipeline; AppConfig unreachable keeps the last
 * value read, or every flag on; the health check reports the profile.
 */

type Api = (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;

const APP = 'ons-data-platform-dev';
const ENVIRONMENT = 'dev';
const PROFILE = 'flags-profile-id';
const PROFILE_KEY = `${APP}/${ENVIRONMENT}/${PROFILE}`;
const CSV = Buffer.from('din_instante;val_cargaenergiamwmed;id_subsistema;nom_subsistema\n2013-01-01;10;N;Norte\n');

let appconfig: LocalAppConfig;
let appconfigEndpoint: string;
let aws: LocalAws;
let timestream: LocalTimestream;
let timestreamEndpoint: string;
let output: CapturedOutput;

const flagsEnv = (overrides: Record<string, string | undefined> = {}) => ({
  AWS_ENDPOINT_URL_APPCONFIGDATA: appconfigEndpoint,
  [FlagsEnv.APPLICATION]: APP,
  [FlagsEnv.ENVIRONMENT]: ENVIRONMENT,
  [FlagsEnv.PROFILE]: PROFILE,
  [FlagsEnv.MAX_AGE_SECONDS]: '60',
  ...overrides,
});

beforeAll(async () => {
  appconfig = new LocalAppConfig();
  appconfigEndpoint = await appconfig.start();
  aws = await startLocalAws();
  timestream = new LocalTimestream();
  timestreamEndpoint = await timestream.start();
});

afterAll(async () => {
  restoreEnv();
  await appconfig?.close();
  await aws?.close();
  await timestream?.close();
});

beforeEach(() => {
  appconfig.reset();
  timestream.reset();
  timestream.onQuery = () => ({ body: { QueryId: 'q', Rows: [], ColumnInfo: [] } });
  output = captureOutput();
});

afterEach(() => {
  output.restore();
  restoreEnv();
});

function apiEvent(resource: string, path: string, query: Record<string, string> | null, body: string | null = null): APIGatewayProxyEvent {
  return {
    resource,
    path,
    httpMethod: body ? 'POST' : 'GET',
    headers: body ? { 'content-type': 'application/json' } : {},
    multiValueHeaders: {},
    pathParameters: resource.includes('{dataset}') ? { dataset: path.split('/').pop()! } : null,
    queryStringParameters: query,
    multiValueQueryStringParameters: query ? Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]])) : null,
    stageVariables: null,
    body,
    isBase64Encoded: false,
    requestContext: { requestId: 'req-flags', stage: 'dev' } as APIGatewayProxyEvent['requestContext'],
  };
}

function timeSeriesQuery(env: Record<string, string | undefined>): Api {
  return loadHandler('query', {
    ...handlerEnv(aws),
    [TimeSeriesEnv.DATABASE]: 'ons_test',
    [TimeSeriesEnv.TABLES]: JSON.stringify({ curva_carga: 'curva_carga' }),
    [TimeSeriesEnv.QUERY_ENDPOINT]: timestreamEndpoint,
    ...env,
  }, join(__dirname, '..', '..', 'assets', 'timeseries', 'timestream'));
}

const seriesRequest = apiEvent('/timeseries/{dataset}', '/timeseries/curva_carga', { from: '2023-01-01', to: '2023-01-02' });

describe('the time-series API (timeSeriesApi)', () => {
  test('off: 503 FeatureDisabled in the error shape, nothing queried', async () => {
    appconfig.profiles.set(PROFILE_KEY, flagValues({ timeSeriesApi: { enabled: false } }));
    const response = await timeSeriesQuery(flagsEnv())(seriesRequest);
    const body = JSON.parse(response.body);

    expect(response.statusCode).toBe(503);
    expect(body).toEqual({ error: { code: 'FeatureDisabled', message: expect.stringContaining('timeSeriesApi') }, requestId: 'req-flags' });
    expectSchema('Error', body);
    expect(timestream.of('Query')).toHaveLength(0);
    expect(appconfig.requests).toEqual(['POST /configurationsessions', 'GET /configuration']);
  });

  test('on: the query runs; the flags are read once and kept for the cache time', async () => {
    appconfig.profiles.set(PROFILE_KEY, flagValues());
    const handler = timeSeriesQuery(flagsEnv());
    const first = await handler(seriesRequest);
    const second = await handler(seriesRequest);

    expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
    expect(timestream.of('Query')).toHaveLength(2);
    expect(appconfig.requests).toEqual(['POST /configurationsessions', 'GET /configuration']);
  });

  test('AppConfig failing before any read: every flag on, the error logged', async () => {
    appconfig.failWith = 500;
    const response = await timeSeriesQuery(flagsEnv({ AWS_MAX_ATTEMPTS: '1' }))(seriesRequest);

    expect(response.statusCode).toBe(200);
    expect(output.error.mock.calls.map(([l]) => JSON.parse(l).message)).toContain('feature flags unreadable; using the last value read, or on');
  });

  test('a function without flags configured: every flag on, AppConfig never called', async () => {
    const response = await timeSeriesQuery({})(seriesRequest);

    expect(response.statusCode).toBe(200);
    expect(appconfig.requests).toEqual([]);
  });
});

describe('kill switches (the unmonitored environment)', () => {
  const KILL_ENVIRONMENT = 'dev-kill-switches';
  const KILL_PROFILE = 'kill-switches-profile-id';
  const KILL_KEY = `${APP}/${KILL_ENVIRONMENT}/${KILL_PROFILE}`;
  const killEnv = (overrides: Record<string, string | undefined> = {}) => flagsEnv({
    [FlagsEnv.KILL_SWITCH_ENVIRONMENT]: KILL_ENVIRONMENT,
    [FlagsEnv.KILL_SWITCH_PROFILE]: KILL_PROFILE,
    // A platform function in a published version: a 5xx it answers would count in ServerErrors.
    [OperationsEnv.METRICS_NAMESPACE]: metricsNamespace('dev'),
    [OperationsEnv.SERVICE_NAME]: 'api',
    AWS_LAMBDA_FUNCTION_NAME: 'ons-timeseries-query',
    AWS_LAMBDA_FUNCTION_VERSION: '3',
    ...overrides,
  });

  test('a kill switch off turns the feature off though the flags profile has it on: 503 FeatureDisabled, not a server error', async () => {
    appconfig.profiles.set(PROFILE_KEY, flagValues());
    appconfig.profiles.set(KILL_KEY, flagValues({ timeSeriesApi: { enabled: false } }));
    const response = await timeSeriesQuery(killEnv())(seriesRequest);

    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body).error.code).toBe('FeatureDisabled');
    expect(timestream.of('Query')).toHaveLength(0);
    // Both profiles read, each in its own session; a switched-off feature never counts toward a rollback.
    expect(appconfig.sessions.map((x) => x.profile).sort()).toEqual([KILL_KEY, PROFILE_KEY].sort());
    expect(output.emf.flatMap((d) => d._aws.CloudWatchMetrics.flatMap((m) => m.Metrics.map((x) => x.Name)))).not.toContain('ServerErrors');
  });

  test('kill switches all on: the flags profile decides (off stays off, attributes come from it)', async () => {
    appconfig.profiles.set(PROFILE_KEY, flagValues({ timeSeriesApi: { enabled: false } }));
    appconfig.profiles.set(KILL_KEY, flagValues());
    expect((await timeSeriesQuery(killEnv())(seriesRequest)).statusCode).toBe(503);

    appconfig.reset();
    appconfig.profiles.set(PROFILE_KEY, flagValues());
    appconfig.profiles.set(KILL_KEY, flagValues());
    expect((await timeSeriesQuery(killEnv())(seriesRequest)).statusCode).toBe(200);
  });

  test('the kill switches unreadable: the flags profile decides, the error logged', async () => {
    appconfig.profiles.set(PROFILE_KEY, flagValues());
    // No kill-switch profile served at that location (ResourceNotFoundException).
    const response = await timeSeriesQuery(killEnv({ AWS_MAX_ATTEMPTS: '1' }))(seriesRequest);

    expect(response.statusCode).toBe(200);
    const errors = output.error.mock.calls.map(([l]) => JSON.parse(l));
    expect(errors).toContainEqual(expect.objectContaining({ message: 'feature flags unreadable; using the last value read, or on', profile: KILL_PROFILE }));
  });

  test('an unexpected 5xx of the same handler does count: ServerErrors with the function\'s name and version only', async () => {
    appconfig.profiles.set(PROFILE_KEY, flagValues());
    appconfig.profiles.set(KILL_KEY, flagValues());
    timestream.onQuery = () => { throw new Error('the local store broke'); };
    const response = await timeSeriesQuery(killEnv({ AWS_MAX_ATTEMPTS: '1' }))(seriesRequest);

    expect(response.statusCode).toBeGreaterThanOrEqual(500);
    const docs = output.emf.filter((d) => d._aws.CloudWatchMetrics.some((m) => m.Metrics.some((x) => x.Name === 'ServerErrors')));
    expect(docs).toHaveLength(1);
    expect(docs[0]._aws.CloudWatchMetrics).toEqual([{ Namespace: metricsNamespace('dev'), Dimensions: [['FunctionName', 'FunctionVersion']], Metrics: [{ Name: 'ServerErrors', Unit: 'Count' }] }]);
    expect(docs[0]).toMatchObject({ FunctionName: 'ons-timeseries-query', FunctionVersion: '3', ServerErrors: 1 });
  });
});

describe('questions (ragQueries)', () => {
  test('off: 503 FeatureDisabled before the body is even read', async () => {
    appconfig.profiles.set(PROFILE_KEY, flagValues({ ragQueries: { enabled: false } }));
    const handler = loadHandler<APIGatewayProxyEvent, APIGatewayProxyResult>('query', {
      ...handlerEnv(aws), ...flagsEnv(), ONS_KB_ID: 'KB12345678', ONS_KB_MODEL_ARN: 'amazon.nova-lite-v1:0', ONS_KB_ENDPOINT: 'http://127.0.0.1:9',
    }, join(__dirname, '..', '..', 'assets', 'knowledge'));
    const response = await handler(apiEvent('/query', '/query', null, JSON.stringify({ question: 'Qual a carga do Sudeste?' })));

    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body).error.code).toBe('FeatureDisabled');
  });
});

describe('the router (largeFileBatch, knowledgeBaseSync)', () => {
  const route = async (key: string, flags: ReturnType<typeof flagValues>) => {
    appconfig.profiles.set(PROFILE_KEY, flags);
    await putObject(aws, BUCKETS.raw, key, CSV);
    const handler = loadHandler<unknown, RouteResult>('route', handlerEnv(aws, { ...flagsEnv(), [IngestionEnv.LAMBDA_MAX_BYTES]: String(64 * 1024 * 1024) }));
    return handler({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION });
  };

  test('the lambdaMaxBytes attribute replaces the threshold: a file above it goes to Batch', async () => {
    const result = await route('flags/large/CARGA_ENERGIA_2013.csv', flagValues({ largeFileBatch: { enabled: true, lambdaMaxBytes: CSV.length - 1 } }));
    expect(result.action).toBe('processLarge');
  });

  test('largeFileBatch off: a file above the threshold waits in quarantine, with the reason', async () => {
    const result = await route('flags/off/CARGA_ENERGIA_2013.csv', flagValues({ largeFileBatch: { enabled: false, lambdaMaxBytes: CSV.length - 1 } }));
    expect(result.action).toBe('quarantine');
    expect(result.reason).toMatch(/large-file processing is turned off \(feature flag largeFileBatch\)/);
  });

  test('largeFileBatch off in a pipeline without Batch: the pipeline\'s reason, as turning the flag on would not help', async () => {
    appconfig.profiles.set(PROFILE_KEY, flagValues({ largeFileBatch: { enabled: false, lambdaMaxBytes: CSV.length - 1 } }));
    await putObject(aws, BUCKETS.raw, 'flags/no-batch/CARGA_ENERGIA_2013.csv', CSV);
    const handler = loadHandler<unknown, RouteResult>('route', handlerEnv(aws, { ...flagsEnv(), [IngestionEnv.ROUTES]: 'process,document,quarantine' }));
    const result = await handler({ source: { bucket: BUCKETS.raw, key: 'flags/no-batch/CARGA_ENERGIA_2013.csv' }, executionArn: EXECUTION });
    expect(result.action).toBe('quarantine');
    expect(result.reason).toMatch(/largeFileProcessing\.enabled is false\): raise lambdaMaxFileSize/);
    expect(result.reason).not.toMatch(/feature flag/);
  });

  test('largeFileBatch off leaves files under the threshold alone', async () => {
    const result = await route('flags/small/CARGA_ENERGIA_2013.csv', flagValues({ largeFileBatch: { enabled: false, lambdaMaxBytes: CSV.length } }));
    expect(result.action).toBe('process');
  });

  test('largeFileBatch off: a workbook whose expanded parts weigh more than the threshold waits, the reason says why', async () => {
    const xlsx = readFileSync(join(ONS_DATA, 'CURVA_CARGA_2021.xlsx'));
    const parts = unzipSync(new Uint8Array(xlsx));
    const expanded = ['xl/workbook.xml', 'xl/_rels/workbook.xml.rels', 'xl/worksheets/sheet1.xml', 'xl/sharedStrings.xml', 'xl/styles.xml']
      .reduce((n, name) => n + parts[name].length, 0);
    const threshold = 2 * xlsx.length; // the file fits; its expanded parts do not
    appconfig.profiles.set(PROFILE_KEY, flagValues({ largeFileBatch: { enabled: false, lambdaMaxBytes: threshold } }));
    await putObject(aws, BUCKETS.raw, 'flags/off/CURVA_CARGA_2021.xlsx', xlsx);
    const handler = loadHandler<unknown, RouteResult>('route', handlerEnv(aws, flagsEnv()));
    const result = await handler({ source: { bucket: BUCKETS.raw, key: 'flags/off/CURVA_CARGA_2021.xlsx' }, executionArn: EXECUTION });
    expect(result.action).toBe('quarantine');
    expect(result.reason).toMatch(new RegExp(`^the workbook expands to ${expanded} bytes, as much work as a CSV of \\d+ bytes, more than ${threshold} bytes `
      + 'and large-file processing is turned off \\(feature flag largeFileBatch\\)'));
  });

  test('knowledgeBaseSync off is passed on as false; on, nothing is added', async () => {
    const off = await route('flags/sync-off/CARGA_ENERGIA_2013.csv', flagValues({ knowledgeBaseSync: { enabled: false } }));
    const on = await route('flags/sync-on/CARGA_ENERGIA_2013.csv', flagValues());
    expect(off.knowledgeBaseSync).toBe(false);
    expect('knowledgeBaseSync' in on).toBe(false);
  });
});

describe('the health check (flags component)', () => {
  type Health = (event: Partial<APIGatewayProxyEvent>) => Promise<APIGatewayProxyResult>;
  const health = (flags: string | undefined): Health => loadHandler('health', {
    ...handlerEnv(aws),
    AWS_ENDPOINT_URL_APPCONFIGDATA: appconfigEndpoint,
    AWS_MAX_ATTEMPTS: '1',
    [HealthEnv.LAKE_BUCKETS]: undefined,
    [HealthEnv.TIME_SERIES]: undefined,
    [HealthEnv.KNOWLEDGE_BASE_ID]: undefined,
    [HealthEnv.LEDGER_TABLE]: undefined,
    [HealthEnv.FLAGS]: flags,
  }, join(__dirname, '..', '..', 'assets', 'health'));
  const location = JSON.stringify({ application: APP, environment: ENVIRONMENT, profile: PROFILE });
  /** The readiness route (GET /health is liveness and reads nothing). */
  const ready = { resource: READINESS_PATH, path: READINESS_PATH, httpMethod: 'GET' };

  test('the profile serves the four flags: up', async () => {
    appconfig.profiles.set(PROFILE_KEY, flagValues());
    const response = await health(location)(ready);
    const body = JSON.parse(response.body);
    expect(response.statusCode).toBe(200);
    expect(body.components.flags).toEqual({ status: 'up' });
    expectSchema('HealthReport', body);
  });

  test('a profile written before a flag existed (numericAnswers missing): up, the missing flag reads as on', async () => {
    const { numericAnswers, ...older } = flagValues() as Record<string, unknown>;
    expect(numericAnswers).toEqual({ enabled: true });
    appconfig.profiles.set(PROFILE_KEY, older);
    const response = await health(location)(ready);
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body).components.flags).toEqual({ status: 'up' });
  });

  test('a profile without the platform\'s flags: down, invalid flags', async () => {
    appconfig.profiles.set(PROFILE_KEY, { someOtherFlag: { enabled: true } });
    const response = await health(location)(ready);
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body).components.flags).toEqual({ status: 'down', detail: { reason: 'invalid flags' } });
  });

  test('no such profile: down, not found; AppConfig failing: down, error 500', async () => {
    const missing = await health(location)(ready);
    expect(JSON.parse(missing.body).components.flags).toEqual({ status: 'down', detail: { reason: 'not found' } });
    appconfig.profiles.set(PROFILE_KEY, flagValues());
    appconfig.failWith = 500;
    const failing = await health(location)(ready);
    expect(JSON.parse(failing.body).components.flags).toEqual({ status: 'down', detail: { reason: 'error 500' } });
  });
});

describe('the state machine (knowledgeBaseSync)', () => {
  const stack = new Stack(new App(), 'Flags', { env: ENV });
  const dataLake = new DataLake(stack, 'Lake', { stage: PlatformStage.DEV });
  const knowledgeBase = new KnowledgeBase(stack, 'Kb', { stage: PlatformStage.DEV, dataLake });
  new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake, knowledgeBase, largeFileProcessing: { enabled: false } });
  const definition = definitionOf(stack, 'IngestionStateMachine');

  /** Runs the definition from SyncKnowledgeBase with the given route; the SDK tasks answer as Bedrock and DynamoDB would. */
  async function fromSync(route: Record<string, unknown>) {
    // A first state that jumps to SyncKnowledgeBase keeps every state reachable, so the definition still validates.
    const entry = { Type: 'Choice', Choices: [{ Variable: '$.fromSync', IsPresent: true, Next: 'SyncKnowledgeBase' }], Default: definition.StartAt };
    const { states, output: result, error } = await runLocally(
      { ...definition, StartAt: 'TestEntry', States: { ...definition.States, TestEntry: entry } },
      { fromSync: true, route, processed: { status: 'processed' } },
      {
        context: {
          Execution: { Id: 'arn:aws:states:sa-east-1:123456789012:execution:OnsIngestion:local', StartTime: '2026-11-25T00:00:00.000Z' },
        },
        // The sync request's ledger writes and the sync machine's start, as DynamoDB and Step Functions answer.
        tasks: {
          RequestSync: async () => ({}),
          CountSyncRequest: async () => ({}),
          StartSync: async () => ({ ExecutionArn: 'arn:aws:states:sa-east-1:123456789012:execution:Sync:1', StartDate: '2026-11-25T00:00:00.000Z' }),
        },
      },
    );
    if (error) throw new Error(error);
    return { states: states.filter((name) => name !== 'TestEntry'), output: result };
  }

  test('off: SyncSkipped then Done, no ingestion job started, the reason in $.sync', async () => {
    const { states, output: result } = await fromSync({ action: 'process', knowledgeBaseSync: false });
    expect(states).toEqual(['SyncKnowledgeBase', 'SyncSkipped', 'Done']);
    expect(result.sync).toEqual({ skipped: 'knowledge-base sync is turned off (feature flag knowledgeBaseSync)' });
  });

  test('absent (the flag on): the data cards\' sync is requested as before', async () => {
    const { states } = await fromSync({
      action: 'process', source: { bucket: 'raw', key: 'CURVA_CARGA_2023.csv' }, ledgerKey: { pk: 's3://raw/CURVA_CARGA_2023.csv', sk: 'null' },
    });
    expect(states).toEqual(['SyncKnowledgeBase', 'DataCardsSource', 'RequestSync', 'CountSyncRequest', 'StartSync', 'Done']);
  });
});
