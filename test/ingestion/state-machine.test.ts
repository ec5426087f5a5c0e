import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DynamoDBClient, GetItemCommand, GetItemCommandInput } from '@aws-sdk/client-dynamodb';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { definitionOf } from './asl';
import { DataLake, IngestionPipeline, PlatformStage } from '../../src';
import { IngestionEnv } from '../../src/ingestion/contract';
import { outputStem, sourceId } from '../../src/ons/layout';
import { ENV } from '../helpers';
import {
  ASSETS, BUCKETS, FaultyS3Proxy, getBytes, handlerEnv, ingestionTasks, isPutObject, ledgerItem, listKeys, loadHandler, LocalAws, putObject,
  restoreEnv, startLocalAws,
} from '../local-aws';
import { LocalRun, runLocally, TaskHandler } from '../local-stepfunctions';
import { ONS_DATA } from '../ons-data';

/**
 * The synthesized ingestion state machine, run by aws-local-stepfunctions (JSONPath) with its Lambda
 * tasks served by the bundled handlers against s3rver and dynalite, the Batch task by the bundled
 * entrypoint run with node, and the DynamoDB read-back as a real GetItem of the state's parameters.
 */

const run = promisify(execFile);
const stack = new Stack(new App(), 'Pipeline', { env: ENV });
new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake: new DataLake(stack, 'Lake', { stage: PlatformStage.DEV }) });
const definition = definitionOf(stack, 'IngestionStateMachine');

const CSV = 'CURVA_CARGA_2023.csv';
const csvBytes = readFileSync(join(ONS_DATA, CSV));

let aws: LocalAws;
beforeAll(async () => {
  aws = await startLocalAws();
});
afterAll(async () => {
  restoreEnv();
  await aws?.close();
});

interface Outcome extends LocalRun {
  readonly notifications: unknown[];
}

/** Runs one execution; `env` is the handlers' environment. */
async function execute(
  input: unknown, env: Record<string, string | undefined>, overrides: Record<string, TaskHandler> = {}, asl: Record<string, any> = definition,
): Promise<Outcome> {
  const notifications: unknown[] = [];
  const notify = async (params: unknown) => {
    notifications.push(params);
    return { MessageId: `m-${notifications.length}` };
  };
  const outcome = await runLocally(asl, input, {
    context: {
      Execution: { Id: 'arn:aws:states:sa-east-1:123456789012:execution:OnsIngestion:local', Input: input, StartTime: new Date().toISOString() },
    },
    tasks: {
      ...ingestionTasks(env, notify),
      ProcessFileBatch: (params: any) => runBatchJob(params, env),
      ReadBatchResult: (params: any) => getItem(params),
      ...overrides,
    },
  });
  return { ...outcome, notifications };
}

/** `batch:submitJob.sync`: runs the bundled entrypoint with the job's environment overrides; a non-zero exit fails the task. */
type JobParameters = { ContainerOverrides: { Environment: Array<{ Name: string; Value: string }> } };
async function runBatchJob(params: JobParameters, env: Record<string, string | undefined>) {
  const jobEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) jobEnv[k] = v;
  for (const { Name, Value } of params.ContainerOverrides.Environment) jobEnv[Name] = Value;
  await run(process.execPath, [join(ASSETS, 'batch', 'entrypoint', 'index.js')], { env: jobEnv });
  return { Status: 'SUCCEEDED' };
}

/** `dynamodb:getItem` with the parameters the state machine built, against dynalite. */
async function getItem(params: GetItemCommandInput) {
  const client = new DynamoDBClient({ endpoint: aws.dynamoEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  try {
    const { Item } = await client.send(new GetItemCommand({ ...params, TableName: 'ons-ingestion-ledger' }));
    return { Item };
  } finally {
    client.destroy();
  }
}

/** What EventBridge delivers for an Object Created event (S3 URL-encodes the key; s3rver has no versioning). */
function s3Event(key: string, size: number, versionId?: string) {
  return {
    'version': '0',
    'detail-type': 'Object Created',
    'source': 'aws.s3',
    'detail': {
      bucket: { name: BUCKETS.raw },
      object: { key: encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/'), size, ...(versionId ? { 'version-id': versionId } : {}) },
      reason: 'PutObject',
    },
  };
}

describe('a real ONS file through the state machine', () => {
  let outcome: Outcome;
  const key = `ons/curva_carga/${CSV}`;
  beforeAll(async () => {
    await putObject(aws, BUCKETS.raw, key, csvBytes);
    outcome = await execute(s3Event(key, csvBytes.length), handlerEnv(aws));
  });

  test('goes Route → ProcessFile → LoadTimeSeries → SyncKnowledgeBase → Done', () => {
    expect(outcome.error).toBeUndefined();
    expect(outcome.states).toEqual(['Normalise', 'FromUnversionedEvent', 'Route', 'Decide', 'ProcessFile', 'AlreadyProcessed?', 'LoadTimeSeries', 'SyncKnowledgeBase', 'Done']);
    expect(outcome.output.route.action).toBe('process');
    expect(outcome.output.processed.status).toBe('processed');
  });

  test('writes the processed Parquet, the data card and the ledger entry', async () => {
    const processed = await listKeys(aws, BUCKETS.processed);
    expect(processed.filter((k) => k.startsWith('processed/dataset=curva_carga/year=2023/')).length).toBeGreaterThanOrEqual(12);
    const card = `knowledge/cards/curva_carga/${outputStem('CURVA_CARGA_2023', sourceId(`s3://${BUCKETS.raw}/${key}`))}.md`;
    expect(processed).toEqual(expect.arrayContaining([card, `${card}.metadata.json`]));
    const item = await ledgerItem(aws, BUCKETS.raw, key, 'null');
    expect(item?.status).toBe('processed');
    expect(item?.records).toBe(outcome.output.processed.records);
  });

  test('the same bytes under another key, from the backfill, end as a recorded duplicate', async () => {
    const copy = 'ons/curva_carga/copy-of-curva.csv';
    await putObject(aws, BUCKETS.raw, copy, csvBytes);
    const before = await listKeys(aws, BUCKETS.processed);
    const dup = await execute({ source: { bucket: BUCKETS.raw, key: copy, size: csvBytes.length } }, handlerEnv(aws));
    expect(dup.error).toBeUndefined();
    expect(dup.states).toEqual(['Normalise', 'FromBackfill', 'Route', 'Decide', 'ProcessFile', 'AlreadyProcessed?', 'Duplicate']);
    expect((await ledgerItem(aws, BUCKETS.raw, copy))?.status).toBe('duplicate');
    expect(await listKeys(aws, BUCKETS.processed)).toEqual(before);
  });
});

describe('events of a versioned bucket', () => {
  test('carry the version id to the router, decoded key included', async () => {
    let seen: any;
    const outcome = await execute(s3Event('ons/Temporal Geração de Energia.csv', 10, '3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY'), handlerEnv(aws), {
      Route: async (input) => {
        seen = input;
        return { action: 'quarantine', reason: 'stopped by the test', source: { bucket: BUCKETS.raw, key: 'x' }, ledgerKey: { pk: 'p', sk: 's' } };
      },
      Quarantine: async () => ({ errorKey: 'k' }),
    });
    expect(outcome.states.slice(0, 3)).toEqual(['Normalise', 'FromEvent', 'Route']);
    expect(seen.source).toEqual({
      bucket: BUCKETS.raw, key: 'ons/Temporal+Gera%C3%A7%C3%A3o+de+Energia.csv', keyUrlEncoded: true, size: 10, versionId: '3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY',
    });
    expect(seen.executionArn).toMatch(/^arn:aws:states:/);
  });
});

describe('an unsupported file', () => {
  test('is quarantined with its reason and notified; the raw object stays', async () => {
    const key = 'ons/tools/setup.exe';
    const bytes = Buffer.from('MZ not an ONS file');
    await putObject(aws, BUCKETS.raw, key, bytes);
    const outcome = await execute(s3Event(key, bytes.length), handlerEnv(aws));
    expect(outcome.error).toBeUndefined();
    expect(outcome.states.slice(-3)).toEqual(['Quarantine', 'NotifyQuarantined', 'Quarantined']);
    expect(JSON.stringify(outcome.notifications)).toContain('setup.exe');
    const quarantined = await listKeys(aws, BUCKETS.failed, 'quarantine/');
    expect(quarantined.filter((k) => k.endsWith('ons/tools/setup.exe'))).toHaveLength(1);
    const report = JSON.parse((await getBytes(aws, BUCKETS.failed, quarantined.find((k) => k.endsWith('setup.exe.error.json'))!)).toString());
    expect(report).toMatchObject({ stage: 'dev', step: 'Route' });
    expect(await getBytes(aws, BUCKETS.raw, key)).toEqual(bytes);
    expect((await ledgerItem(aws, BUCKETS.raw, key))?.status).toBe('quarantined');
  });
});

describe('faults in S3 during processing', () => {
  const key = 'ons/faults/CARGA_ENERGIA_2013.csv';
  const bytes = readFileSync(join(ONS_DATA, 'CARGA_ENERGIA_2013.csv'));
  let proxy: FaultyS3Proxy;
  let endpoint: string;
  beforeAll(async () => {
    await putObject(aws, BUCKETS.raw, key, bytes);
    proxy = new FaultyS3Proxy(aws.s3Endpoint);
    endpoint = await proxy.start();
  });
  afterAll(async () => proxy.close());

  test('a failed upload is retried by the state machine, and the retry completes the ingestion', async () => {
    proxy.failNth('status500', 1, isPutObject(BUCKETS.processed));
    // SDK retries off in the handler, so the state machine's Retry is what recovers.
    const outcome = await execute(s3Event(key, bytes.length), handlerEnv(aws, { AWS_ENDPOINT_URL_S3: endpoint, AWS_MAX_ATTEMPTS: '1' }));
    expect(proxy.failed).toBe(1);
    expect(outcome.error).toBeUndefined();
    expect(outcome.retried).toContain('ProcessFile');
    expect(outcome.states.at(-1)).toBe('Done');
    expect((await ledgerItem(aws, BUCKETS.raw, key, 'null'))?.status).toBe('processed');
  });

  test('a processor that keeps failing ends quarantined and notified, with no partial output and the raw object intact', async () => {
    const other = 'ons/faults/EAR_DIARIO_SUBSISTEMA_2022.csv';
    const ear = readFileSync(join(ONS_DATA, 'EAR_DIARIO_SUBSISTEMA_2022.csv'));
    await putObject(aws, BUCKETS.raw, other, ear);
    const before = await listKeys(aws, BUCKETS.processed);
    let attempts = 0;
    const env = handlerEnv(aws, { AWS_ENDPOINT_URL_S3: endpoint, AWS_MAX_ATTEMPTS: '1' });
    const process = loadHandler<unknown, unknown>('process', env);
    const outcome = await execute(s3Event(other, ear.length), env, {
      ProcessFile: async (input) => {
        attempts++;
        // Every attempt's second upload fails: some outputs were already written when it fails.
        proxy.failNth('status500', 2, isPutObject());
        return process(input);
      },
    });
    expect(attempts).toBe(4);
    expect(outcome.error).toMatch(/quarantined in the failed bucket/);
    expect(outcome.states.slice(-4)).toEqual(['ProcessFileFailed', 'QuarantineFailure', 'NotifyFailure', 'IngestionFailed']);
    expect(await listKeys(aws, BUCKETS.processed)).toEqual(before);
    expect(await listKeys(aws, BUCKETS.failed, 'rejected/ear')).toEqual([]);
    expect(await getBytes(aws, BUCKETS.raw, other)).toEqual(ear);
    const item = await ledgerItem(aws, BUCKETS.raw, other, 'null');
    expect(item?.status).toBe('quarantined');
    expect(JSON.stringify(outcome.notifications)).toContain('ProcessFile');
    const reports = await listKeys(aws, BUCKETS.failed, 'quarantine/');
    const report = JSON.parse((await getBytes(aws, BUCKETS.failed, reports.find((k) => k.endsWith('EAR_DIARIO_SUBSISTEMA_2022.csv.error.json'))!)).toString());
    expect(report.step).toBe('ProcessFile');
    expect(JSON.stringify(report)).not.toMatch(/\bat .+\.js:\d+/);
  });
});

describe('a file above the Lambda threshold', () => {
  test('runs on the Batch path (the bundled entrypoint) and its result is read back from the ledger', async () => {
    const key = 'ons/large/CMO_SEMANAL_2013.csv';
    const bytes = readFileSync(join(ONS_DATA, 'CMO_SEMANAL_2013.csv'));
    await putObject(aws, BUCKETS.raw, key, bytes);
    const outcome = await execute(s3Event(key, bytes.length), handlerEnv(aws, { [IngestionEnv.LAMBDA_MAX_BYTES]: '1024' }));
    expect(outcome.error).toBeUndefined();
    expect(outcome.states).toEqual([
      'Normalise', 'FromUnversionedEvent', 'Route', 'Decide', 'BatchJobInput', 'ProcessFileBatch', 'ReadBatchResult', 'BatchResult',
      'AlreadyProcessed?', 'LoadTimeSeries', 'SyncKnowledgeBase', 'Done',
    ]);
    expect(outcome.output.route.action).toBe('processLarge');
    expect(outcome.output.processed).toMatchObject({ status: 'processed', dataset: 'cmo_semanal' });
    expect((await listKeys(aws, BUCKETS.processed, 'processed/dataset=cmo_semanal/')).length).toBeGreaterThan(0);
  });
});

describe('a pipeline without large-file processing', () => {
  const noBatch = new Stack(new App(), 'NoBatch', { env: ENV });
  new IngestionPipeline(noBatch, 'Ingestion', {
    stage: PlatformStage.DEV, dataLake: new DataLake(noBatch, 'Lake', { stage: PlatformStage.DEV }), largeFileProcessing: { enabled: false },
  });
  const noBatchDefinition = definitionOf(noBatch, 'IngestionStateMachine');
  // The routes the construct gives its router, read from the synthesized template.
  const router = Template.fromStack(noBatch).findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('router') } });
  const routes: string = Object.values<any>(router)[0].Properties.Environment.Variables[IngestionEnv.ROUTES];
  const bytes = readFileSync(join(ONS_DATA, 'CMO_SEMANAL_2013.csv'));

  async function quarantinedReport(key: string) {
    const reports = await listKeys(aws, BUCKETS.failed, 'quarantine/');
    return JSON.parse((await getBytes(aws, BUCKETS.failed, reports.find((k) => k.endsWith(`${key}.error.json`))!)).toString());
  }

  test('a file above the Lambda threshold is quarantined at Route and notified, with how to load it; the ledger says so', async () => {
    const key = 'ons/no-batch/CMO_SEMANAL_2013.csv';
    await putObject(aws, BUCKETS.raw, key, bytes);
    const outcome = await execute(s3Event(key, bytes.length), handlerEnv(aws, { [IngestionEnv.LAMBDA_MAX_BYTES]: '1024', [IngestionEnv.ROUTES]: routes }), {}, noBatchDefinition);

    expect(outcome.error).toBeUndefined();
    expect(outcome.states).toEqual(['Normalise', 'FromUnversionedEvent', 'Route', 'Decide', 'Quarantine', 'NotifyQuarantined', 'Quarantined']);
    const howTo = /largeFileProcessing\.enabled is false\): raise lambdaMaxFileSize \(up to 3072 MiB\) or enable largeFileProcessing, then run the backfill/;
    expect(JSON.stringify(outcome.notifications)).toMatch(howTo);
    const item = await ledgerItem(aws, BUCKETS.raw, key);
    expect(item).toMatchObject({ status: 'quarantined', route: 'quarantine', error: { step: 'Route' } });
    expect(item!.error!.reason).toMatch(howTo);
    expect((await quarantinedReport(key)).reason).toMatch(howTo);
    expect(await getBytes(aws, BUCKETS.raw, key)).toEqual(bytes);
  });

  test('a router out of step with the machine (it answers processLarge) ends quarantined and notified, not in a bare Fail', async () => {
    const key = 'ons/stale-router/CMO_SEMANAL_2013.csv';
    await putObject(aws, BUCKETS.raw, key, bytes);
    const stale = handlerEnv(aws, { [IngestionEnv.LAMBDA_MAX_BYTES]: '1024', [IngestionEnv.ROUTES]: 'process,document,quarantine,processLarge' });
    const outcome = await execute(s3Event(key, bytes.length), stale, {}, noBatchDefinition);

    expect(outcome.error).toBeUndefined();
    expect(outcome.states).toEqual(['Normalise', 'FromUnversionedEvent', 'Route', 'Decide', 'UnknownRoute', 'Quarantine', 'NotifyQuarantined', 'Quarantined']);
    const reason = 'the router answered processLarge, a route this state machine does not have';
    expect(JSON.stringify(outcome.notifications)).toContain(reason);
    expect(await ledgerItem(aws, BUCKETS.raw, key)).toMatchObject({ status: 'quarantined', error: { step: 'Route', reason } });
    expect((await quarantinedReport(key)).reason).toBe(reason);
  });
});
