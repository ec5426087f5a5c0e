import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { definitionOf } from './asl';
import { DataLake, IngestionPipeline, IngestionPipelineProps, PlatformStage, RestoreTier } from '../../src';
import { IngestionEnv, ReprocessRow } from '../../src/ingestion/contract';
import { validateRequest } from '../../src/ingestion/runtime/reprocess';
import { LakeEnv } from '../../src/lake/contract';
import { TimeSeriesEngines } from '../../src/timeseries/contract';
import { ENV, platformStack } from '../helpers';
import {
  BUCKETS, FaultyS3Proxy, getBytes, handlerEnv, ingestionTasks, ledgerItem, listKeys, loadHandler, LocalAws, putObject, RESTORE_HOURS, restoreEnv,
  startLocalAws,
} from '../local-aws';
import { LocalRun, runLocally, TaskHandler } from '../local-stepfunctions';
import { ONS_DATA } from '../ons-data';

/**
 * The synthesized reprocessing state machine, run by aws-local-stepfunctions with its Lambda tasks served by the
 * bundled handlers against s3rver (behind a proxy that plays S3's archive storage classes) and dynalite, and its
 * IngestFile task running the synthesized ingestion state machine with its own bundled handlers.
 *
 * aws-local-stepfunctions ignores a Distributed Map's ItemReader (it iterates over an array in the state): the local
 * definition reads the items from `$.plan.items`, which the SelectFiles task fills from the manifest the real
 * handler wrote to S3, as the ItemReader does on AWS. Every other state runs as synthesized.
 */

function pipelineStack(props: Partial<IngestionPipelineProps> = {}) {
  const stack = new Stack(new App(), 'Pipeline', { env: ENV });
  const dataLake = new DataLake(stack, 'Lake', { stage: PlatformStage.DEV });
  const pipeline = new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake, ...props });
  return { stack, pipeline, template: Template.fromStack(stack) };
}

/** The reprocessing definition with each Distributed Map reading `$.plan.items` instead of its ItemReader (see above). */
function localReprocess(stack: Stack): Record<string, any> {
  const definition = definitionOf(stack, 'IngestionReprocess');
  for (const name of ['RequestRestores', 'ReprocessFiles']) {
    const map = definition.States[name];
    expect(map.ItemReader.ReaderConfig.InputType).toBe('JSONL');
    delete map.ItemReader;
    map.ItemsPath = '$.plan.items';
  }
  return definition;
}

const { stack, template } = pipelineStack();
const reprocessDefinition = localReprocess(stack);
const ingestionDefinition = definitionOf(stack, 'IngestionStateMachine');
const backfillDefinition = definitionOf(stack, 'IngestionBackfill');
/** The reprocessing functions' environment as synthesized (tier, days, prefixes). */
const reprocessEnv: Record<string, string> = Object.values<any>(
  template.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('reprocessing of one file') } }),
)[0].Properties.Environment.Variables;

const HOUR = 3_600_000;
const files = {
  csv: readFileSync(join(ONS_DATA, 'CURVA_CARGA_2023.csv')),
  carga: readFileSync(join(ONS_DATA, 'CARGA_ENERGIA_2013.csv')),
  ear: readFileSync(join(ONS_DATA, 'EAR_DIARIO_SUBSISTEMA_2022.csv')),
  cmo: readFileSync(join(ONS_DATA, 'CMO_SEMANAL_2013.csv')),
  pdf: readFileSync(join(ONS_DATA, 'DicionarioDados_CurvaCarga.pdf')),
};

let aws: LocalAws;
let proxy: FaultyS3Proxy;
let env: Record<string, string | undefined>;
let handlers: Record<string, TaskHandler>;
/** The ingestion's tasks served by the bundled handlers. */
let ingestion: Record<string, TaskHandler>;
beforeAll(async () => {
  aws = await startLocalAws();
  proxy = new FaultyS3Proxy(aws.s3Endpoint);
  const endpoint = await proxy.start();
  env = handlerEnv(aws, {
    AWS_ENDPOINT_URL_S3: endpoint,
    [LakeEnv.RAW_BUCKET]: BUCKETS.raw,
    [LakeEnv.REPORTS_PREFIX]: reprocessEnv[LakeEnv.REPORTS_PREFIX],
    [IngestionEnv.RESTORE_TIER]: reprocessEnv[IngestionEnv.RESTORE_TIER],
    [IngestionEnv.RESTORE_DAYS]: reprocessEnv[IngestionEnv.RESTORE_DAYS],
  });
  ingestion = ingestionTasks(env);
  handlers = {};
  for (const name of ['reprocess-select', 'reprocess-file', 'reprocess-report']) handlers[name] = loadHandler(name, env);
});
afterAll(async () => {
  restoreEnv();
  await proxy?.close();
  await aws?.close();
});

let executions = 0;
function context(prefix: string) {
  const name = `${prefix}-${++executions}`;
  return { Execution: { Id: `arn:aws:states:sa-east-1:123456789012:execution:Local:${name}`, Name: name, StartTime: new Date().toISOString() } };
}

function run(definition: Record<string, any>, input: unknown, tasks: Record<string, TaskHandler>, prefix: string): Promise<LocalRun> {
  return runLocally(definition, input, { context: context(prefix), tasks, waits: { WaitForRestore: 0 } });
}

/** One execution of the synthesized ingestion state machine with the bundled handlers (`processFile` may replace the processor). */
function ingest(input: unknown, processFile: TaskHandler = ingestion.ProcessFile): Promise<LocalRun> {
  return run(ingestionDefinition, input, { ...ingestion, ProcessFile: processFile }, 'ingestion');
}

interface ReprocessRun {
  readonly output?: any;
  readonly error?: Error;
  /** CheckFile calls of the second pass, with the simulated time each ran at. */
  readonly checks: Array<{ key: string; polls: number; at: number; state: string }>;
  readonly ingested: string[];
}

const pollMs = reprocessDefinition.States.ReprocessFiles.ItemProcessor.States.WaitForRestore.Seconds * 1000;

/** One reprocessing execution; the simulated clock moves by WaitForRestore's seconds for each poll a file waited. */
async function reprocess(input: unknown, definition: Record<string, any> = reprocessDefinition): Promise<ReprocessRun> {
  const checks: ReprocessRun['checks'] = [];
  const ingested: string[] = [];
  const started = proxy.now;
  const wait = definition.States.ReprocessFiles.ItemProcessor.States.WaitForRestore.Seconds * 1000;
  const taskHandlers: Record<string, TaskHandler> = {
    SelectFiles: async (event) => {
      const plan = await handlers['reprocess-select'](event);
      // What the ItemReader reads on AWS: the manifest's lines.
      const { Body } = await aws.s3.send(new GetObjectCommand({ Bucket: plan.bucket, Key: plan.manifestKey }));
      const items = (await Body!.transformToString()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
      return { ...plan, items };
    },
    RequestRestore: handlers['reprocess-file'],
    CheckFile: async (event) => {
      // Files wait side by side: after n polls, n poll intervals have passed for every file.
      proxy.advanceTo(started + event.polls * wait);
      const check = await handlers['reprocess-file'](event);
      checks.push({ key: event.item.key, polls: event.polls, at: proxy.now, state: check.state });
      return check;
    },
    IngestFile: async (params) => {
      ingested.push(params.Input.source.key);
      const child = await ingest(params.Input);
      if (child.error) throw Object.assign(new Error(child.error), { name: 'States.TaskFailed' });
      return { ExecutionArn: `arn:aws:states:sa-east-1:123456789012:execution:OnsIngestion:child-${ingested.length}`, Status: 'SUCCEEDED', Output: child.output };
    },
    RecordOutcome: handlers['reprocess-file'],
    WriteReport: handlers['reprocess-report'],
  };
  const { output, failure } = await run(definition, input, taskHandlers, 'reprocess');
  return { output, error: failure, checks, ingested };
}

interface Report { readonly counts: Record<string, number>; readonly files: ReprocessRow[]; readonly [k: string]: unknown }
async function report(output: { bucket: string; key: string }): Promise<Report> {
  return JSON.parse((await getBytes(aws, output.bucket, output.key)).toString());
}

describe('an archived raw object', () => {
  const key = 'archive/2023/CURVA_CARGA_2023.csv';
  let first: LocalRun;
  let outcome: ReprocessRun;
  beforeAll(async () => {
    await putObject(aws, BUCKETS.raw, key, files.csv);
    first = await ingest({ source: { bucket: BUCKETS.raw, key } });
    // A year later: the lifecycle rule moved it to Deep Archive.
    proxy.archive(BUCKETS.raw, key, 'DEEP_ARCHIVE');
    outcome = await reprocess({ prefix: 'archive/', force: true });
  });

  test('cannot be read until restored (the local S3 answers as S3 does)', async () => {
    expect(first.error).toBeUndefined();
    const other = 'archive/locked/CURVA_CARGA_2023.csv';
    await putObject(aws, BUCKETS.raw, other, files.csv);
    proxy.archive(BUCKETS.raw, other, 'DEEP_ARCHIVE');
    const processFile = ingestion.ProcessFile;
    await expect(processFile({ source: { bucket: BUCKETS.raw, key: other }, executionArn: 'arn:x', force: true })).rejects.toMatchObject({ name: 'InvalidObjectState' });
  });

  test('is restored once with the configured tier and days, polled until the restore completes, then reprocessed', () => {
    expect(outcome.error).toBeUndefined();
    expect(proxy.restores.filter((r) => r.key === key)).toEqual([{ bucket: BUCKETS.raw, key, tier: 'Standard', days: 7, at: 0 }]);
    const polls = outcome.checks.filter((c) => c.key === key);
    // Deep Archive Standard: 12 hours, polled every hour (the default interval): restoring 12 times, then ready.
    expect(pollMs).toBe(HOUR);
    expect(polls.map((c) => c.state)).toEqual([...Array(RESTORE_HOURS.DEEP_ARCHIVE.Standard).fill('restoring'), 'ready']);
    expect(polls.at(-1)!.at).toBe(12 * HOUR);
    expect(outcome.ingested).toEqual([key]);
  });

  test('forced, the processor redoes it (the ledger shows a second run) and the report says processed', async () => {
    expect(outcome.output).toMatchObject({ bucket: BUCKETS.processed, total: 1, counts: { processed: 1 } });
    expect(outcome.output.key).toMatch(/^reports\/reprocess\/reprocess-\d+\/report\.json$/);
    const r = await report(outcome.output);
    expect(r.files).toEqual([expect.objectContaining({ index: 0, key, outcome: 'processed', storageClass: 'DEEP_ARCHIVE' })]);
    const item = await ledgerItem(aws, BUCKETS.raw, key);
    expect(item!.history.map((h) => h.status)).toEqual(['received', 'processing', 'processed', 'received', 'processing', 'processed']);
    // The rows were gathered into the report and removed; the manifest stays beside it.
    const folder = outcome.output.key.replace(/report\.json$/, '');
    expect(await listKeys(aws, BUCKETS.processed, folder)).toEqual([`${folder}manifest.jsonl`, `${folder}report.json`]);
  });
});

describe('an archived raw object that the ledger settled, not forced', () => {
  test('is not restored: the processor answers its recorded result without reading it (an engine migration\'s reload)', async () => {
    const key = 'archive-settled/CURVA_CARGA_2023.csv';
    await putObject(aws, BUCKETS.raw, key, files.csv);
    expect((await ingest({ source: { bucket: BUCKETS.raw, key } })).error).toBeUndefined(); // a duplicate of the file above
    proxy.archive(BUCKETS.raw, key, 'DEEP_ARCHIVE');
    const history = (await ledgerItem(aws, BUCKETS.raw, key))!.history;
    const restores = proxy.restores.length;
    const refused = proxy.refusedReads;
    const outcome = await reprocess({ prefix: 'archive-settled/' });
    expect(outcome.error).toBeUndefined();
    expect(outcome.checks.map((c) => c.state)).toEqual(['ready']);
    expect(proxy.restores.length).toBe(restores);
    expect(proxy.refusedReads).toBe(refused);
    expect(outcome.output).toMatchObject({ total: 1, counts: { duplicate: 1 } });
    expect((await ledgerItem(aws, BUCKETS.raw, key))!.history).toEqual(history);
  });
});

describe('an archived document', () => {
  test('never ingested, selected by prefix: restored from Glacier, then copied to the documents prefix', async () => {
    const key = 'docs/DicionarioDados_CurvaCarga.pdf';
    await putObject(aws, BUCKETS.raw, key, files.pdf);
    proxy.archive(BUCKETS.raw, key, 'GLACIER');
    const copy = await ingest({ source: { bucket: BUCKETS.raw, key } });
    // Before the restore, the copy fails and the file is quarantined: its report is written, nothing is copied.
    expect(copy.error).toBeDefined();
    const before = await ledgerItem(aws, BUCKETS.raw, key);
    expect(before).toMatchObject({ status: 'quarantined', quarantine: { archived: 'GLACIER' } });
    expect(before!.quarantine!.key).toBeUndefined();

    const outcome = await reprocess({ prefix: 'docs/' });
    expect(outcome.error).toBeUndefined();
    // Glacier Flexible Retrieval Standard: 5 hours.
    expect(outcome.checks.map((c) => c.state)).toEqual([...Array(RESTORE_HOURS.GLACIER.Standard).fill('restoring'), 'ready']);
    expect(outcome.output).toMatchObject({ total: 1, counts: { processed: 1 } });
    expect(await getBytes(aws, BUCKETS.processed, `knowledge/documents/${key}`)).toEqual(files.pdf);
    const r = await report(outcome.output);
    expect(r.files[0]).toMatchObject({ key, outcome: 'processed', storageClass: 'GLACIER' });
    expect(r.files[0].before).toBeUndefined(); // listed from the bucket, not from the ledger
  });
});

describe('quarantine of an archived object', () => {
  test('writes its error.json and records that the raw object is archived, not copied', async () => {
    const key = 'cold/EAR_DIARIO_SUBSISTEMA_2022.csv';
    await putObject(aws, BUCKETS.raw, key, files.ear);
    proxy.archive(BUCKETS.raw, key, 'DEEP_ARCHIVE');
    const before = proxy.refusedReads;
    const result = await ingestion.Quarantine({
      source: { bucket: BUCKETS.raw, key },
      executionArn: 'arn:aws:states:sa-east-1:123456789012:execution:OnsIngestion:q',
      step: 'ProcessFile',
      error: { Error: 'InvalidObjectState', Cause: JSON.stringify({ errorType: 'InvalidObjectState', errorMessage: 'The operation is not valid for the object\'s storage class' }) },
    });
    expect(proxy.refusedReads).toBe(before + 1);
    expect(result).toEqual({ bucket: BUCKETS.failed, errorKey: expect.stringMatching(/cold\/EAR_DIARIO_SUBSISTEMA_2022\.csv\.error\.json$/), archived: 'DEEP_ARCHIVE' });
    const errorReport = JSON.parse((await getBytes(aws, BUCKETS.failed, result.errorKey)).toString());
    expect(errorReport).toMatchObject({ step: 'ProcessFile', archived: 'DEEP_ARCHIVE', quarantinedCopy: null, source: { bucket: BUCKETS.raw, key } });
    expect(errorReport.note).toMatch(/archived \(DEEP_ARCHIVE\) and was not copied/);
    expect((await listKeys(aws, BUCKETS.failed, 'quarantine/')).filter((k) => k.endsWith('cold/EAR_DIARIO_SUBSISTEMA_2022.csv'))).toEqual([]);
    expect(await ledgerItem(aws, BUCKETS.raw, key)).toMatchObject({ status: 'quarantined', quarantine: { archived: 'DEEP_ARCHIVE', errorKey: result.errorKey } });
  });
});

describe('quarantined files, selected by a ledger query', () => {
  const good = 'ons/q/EAR_DIARIO_SUBSISTEMA_2022.csv';
  const unsupported = 'ons/q/tools/setup.exe';
  const fine = 'ons/q/CMO_SEMANAL_2013.csv';
  let outcome: ReprocessRun;
  beforeAll(async () => {
    await putObject(aws, BUCKETS.raw, good, files.ear);
    await putObject(aws, BUCKETS.raw, unsupported, Buffer.from('MZ not an ONS file'));
    await putObject(aws, BUCKETS.raw, fine, files.cmo);
    // A processor bug of the day quarantines a good file.
    const broken = await ingest({ source: { bucket: BUCKETS.raw, key: good } }, async () => {
      throw Object.assign(new Error('out of memory'), { name: 'Runtime.OutOfMemory' });
    });
    expect(broken.error).toBeDefined();
    expect((await ingest({ source: { bucket: BUCKETS.raw, key: unsupported } })).error).toBeUndefined();
    expect((await ingest({ source: { bucket: BUCKETS.raw, key: fine } })).error).toBeUndefined();
    outcome = await reprocess({ status: 'quarantined', prefix: 'ons/q/' });
  });

  test('only the quarantined ones run again; the good file is processed, the unsupported one quarantined again', async () => {
    expect(outcome.error).toBeUndefined();
    expect(outcome.ingested.sort()).toEqual([good, unsupported]);
    expect(outcome.output).toMatchObject({ total: 2, counts: { processed: 1, quarantined: 1 } });
    const r = await report(outcome.output);
    expect(r).toMatchObject({ request: { status: 'quarantined', prefix: 'ons/q/' }, force: false, selected: 2 });
    const rows = Object.fromEntries(r.files.map((f) => [f.key, f]));
    expect(rows[good]).toMatchObject({ outcome: 'processed', before: 'quarantined' });
    expect(rows[unsupported]).toMatchObject({ outcome: 'quarantined', before: 'quarantined' });
    expect(rows[unsupported].reason).toMatch(/^Route: '\.exe' files are not supported/);
    expect((await ledgerItem(aws, BUCKETS.raw, good))?.status).toBe('processed');
  });
});

describe('force', () => {
  const key = 'ons/f/CARGA_ENERGIA_2013.csv';
  const copy = 'ons/f/copy/CARGA_ENERGIA_2013.csv';
  beforeAll(async () => {
    await putObject(aws, BUCKETS.raw, key, files.carga);
    expect((await ingest({ source: { bucket: BUCKETS.raw, key } })).error).toBeUndefined();
    await putObject(aws, BUCKETS.raw, copy, files.carga);
  });

  test('without it, a settled file answers its recorded result (no second run) and a copy is a duplicate', async () => {
    const history = (await ledgerItem(aws, BUCKETS.raw, key))!.history;
    const outcome = await reprocess({ prefix: 'ons/f/' });
    expect(outcome.output).toMatchObject({ total: 2, counts: { processed: 1, duplicate: 1 } });
    expect((await ledgerItem(aws, BUCKETS.raw, key))!.history).toEqual(history);
  });

  test('with it, the settled file and the duplicate are both processed again', async () => {
    const outcome = await reprocess({ prefix: 'ons/f/', force: true });
    expect(outcome.output).toMatchObject({ total: 2, counts: { processed: 2 } });
    expect((await ledgerItem(aws, BUCKETS.raw, key))!.history.map((h) => h.status).slice(-3)).toEqual(['received', 'processing', 'processed']);
    const dup = await ledgerItem(aws, BUCKETS.raw, copy);
    expect(dup).toMatchObject({ status: 'processed', dataset: 'carga_energia' });
    expect(dup!.duplicateOf).toBeUndefined();
  });

  test('a dataset and a period select by the ledger (byDataset); a period with no file runs nothing', async () => {
    const june = await reprocess({ dataset: 'carga_energia', start: '2013-06-01T00:00:00Z', end: '2013-06-30T00:00:00Z' });
    expect(june.output).toMatchObject({ total: 2, counts: { processed: 2 } });
    expect((await report(june.output)).files.map((f) => f.key).sort()).toEqual([key, copy]);
    const none = await reprocess({ dataset: 'carga_energia', start: '2015-01-01' });
    expect(none.output).toEqual(expect.objectContaining({ total: 0, counts: {} }));
    expect(none.ingested).toEqual([]);
  });

  test('the backfill ({ "prefix": … }) runs the reprocessing state machine and answers its report', async () => {
    const { output } = await run(backfillDefinition, { prefix: 'ons/f/' }, {
      Reprocess: async (params) => {
        const child = await reprocess(params.Input);
        if (child.error) throw child.error;
        return { Output: child.output, Status: 'SUCCEEDED' };
      },
    }, 'backfill');
    expect(output).toMatchObject({ total: 2, counts: { processed: 2 } });
  });
});

describe('a restore that does not complete within restoreTimeout', () => {
  test('is reported failed with the reason, and the file is not ingested', async () => {
    const { stack: short } = pipelineStack({ restoreTimeout: Duration.hours(3) });
    const key = 'slow/CMO_SEMANAL_2013.csv';
    await putObject(aws, BUCKETS.raw, key, files.cmo);
    proxy.archive(BUCKETS.raw, key, 'DEEP_ARCHIVE');
    const outcome = await reprocess({ prefix: 'slow/' }, localReprocess(short));
    expect(outcome.ingested).toEqual([]);
    expect(outcome.checks.map((c) => c.state)).toEqual(['restoring', 'restoring', 'restoring', 'restoring']);
    expect(outcome.output).toMatchObject({ total: 1, counts: { failed: 1 } });
    expect((await report(outcome.output)).files[0].reason).toMatch(/^RestoreTimedOut: the raw object was still being restored after 3 hours/);
  });
});

describe('a request the selection refuses', () => {
  test.each([
    [{ prefx: 'ons/' }, /unknown field prefx/],
    [{ dataset: 'curva_carga', start: 'yesterday' }, /^start: expected an ISO-8601 date/],
    [{ start: '2023-01-01' }, /^start: a period selects within a dataset/],
    [{ force: true }, /select files by status, dataset \(with start\/end\) or prefix/],
    [{ prefix: 7 }, /^prefix: expected a string, got 7/],
    [{ status: 'quarantined', force: 'yes' }, /^force: expected true or false/],
  ])('%j fails the execution with a reason naming the field, and writes nothing', async (input, reason) => {
    const before = await listKeys(aws, BUCKETS.processed, 'reports/');
    const outcome = await reprocess(input);
    expect(outcome.error?.name).toBe('InvalidReprocessRequest');
    expect(outcome.error?.message).toMatch(reason);
    expect(await listKeys(aws, BUCKETS.processed, 'reports/')).toEqual(before);
  });
});

describe('a request the selection takes', () => {
  test('"" is the whole bucket (the engine migration\'s reload); dates become the ledger\'s UTC ISO form; a status may be any, retryLater too', () => {
    expect(validateRequest({ prefix: '' })).toEqual({ prefix: '' });
    expect(validateRequest({ dataset: 'curva_carga', start: '2023-01-01', end: '2023-12-31T21:00:00-03:00', force: false }))
      .toEqual({ dataset: 'curva_carga', start: '2023-01-01T00:00:00.000Z', end: '2024-01-01T00:00:00.000Z', force: false });
    expect(validateRequest({ status: 'retryLater', AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: 'arn:x' })).toEqual({ status: 'retryLater' });
  });
});

describe('the construct', () => {
  test('reprocessStateMachine: selection, two Distributed Maps over the manifest (JSON Lines), report', () => {
    const { pipeline } = pipelineStack();
    expect(pipeline.reprocessStateMachine).toBeDefined();
    const definition = definitionOf(stack, 'IngestionReprocess');
    expect(definition.StartAt).toBe('SelectFiles');
    for (const name of ['RequestRestores', 'ReprocessFiles']) {
      const map = definition.States[name];
      expect(map.ItemProcessor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
      expect(map.ItemReader).toEqual({
        Resource: 'arn:aws:states:::s3:getObject', ReaderConfig: { InputType: 'JSONL' }, Parameters: { 'Bucket.$': '$.plan.bucket', 'Key.$': '$.plan.manifestKey' },
      });
      expect(map.ResultPath).toBeNull();
    }
    const perFile = definition.States.ReprocessFiles;
    expect(perFile.MaxConcurrency).toBe(10);
    expect(perFile.ItemProcessor.States.IngestFile.Resource).toBe('arn:aws:states:::states:startExecution.sync:2');
    expect(perFile.ItemProcessor.States.IngestFile.Parameters.Input).toMatchObject({ 'source.$': '$.check.source', 'force.$': '$.force' });
    expect(perFile.ItemProcessor.States.WaitForRestore.Seconds).toBe(3600);
    expect(perFile.ItemProcessor.States['KeepWaiting?'].Choices[0].NumericLessThan).toBe(24);
    expect(definition.States.SelectFiles.Retry[0]).toEqual({ ErrorEquals: ['InvalidReprocessRequest'], MaxAttempts: 0 });
  });

  test('the ingestion state machine passes force from a reprocessing run to the router and the processor', () => {
    expect(ingestionDefinition.States.Normalise.Choices.map((c: any) => c.Next)).toEqual(['FromEvent', 'FromUnversionedEvent', 'FromReprocess']);
    expect(ingestionDefinition.States.FromBackfill.Parameters.force).toBe(false);
    expect(ingestionDefinition.States.Route.Parameters['force.$']).toBe('$.force');
    expect(ingestionDefinition.States.ProcessFile.Parameters['force.$']).toBe('$.force');
  });

  test('default concurrency per engine: 10 without a store or on the lake, 2 for LiveAnalytics, 4 for InfluxDB; the props win', () => {
    expect(IngestionPipeline.defaultReprocessConcurrency()).toBe(10);
    expect(IngestionPipeline.defaultReprocessConcurrency(TimeSeriesEngines.LIVE_ANALYTICS)).toBe(2);
    expect(IngestionPipeline.defaultReprocessConcurrency(TimeSeriesEngines.INFLUXDB)).toBe(4);
    expect(IngestionPipeline.defaultReprocessConcurrency(TimeSeriesEngines.LAKE)).toBe(10);
    // The default platform is on the lake engine.
    expect(platformStack(PlatformStage.DEV).platform.ingestion.reprocessMaxConcurrency).toBe(10);
    expect(pipelineStack({ backfillMaxConcurrency: 7 }).pipeline.reprocessMaxConcurrency).toBe(7);
    expect(pipelineStack({ backfillMaxConcurrency: 7, reprocessMaxConcurrency: 3 }).pipeline.reprocessMaxConcurrency).toBe(3);
  });

  test('Bulk: polls every 4 hours for up to 96 hours', () => {
    const { stack: bulk } = pipelineStack({ restoreTier: RestoreTier.BULK });
    const states = definitionOf(bulk, 'IngestionReprocess').States.ReprocessFiles.ItemProcessor.States;
    expect(states.WaitForRestore.Seconds).toBe(4 * 3600);
    expect(states['KeepWaiting?'].Choices[0].NumericLessThan).toBe(24);
    Template.fromStack(bulk).hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('reprocessing of one file'), Environment: { Variables: { [IngestionEnv.RESTORE_TIER]: 'Bulk', [IngestionEnv.RESTORE_DAYS]: '7' } },
    });
  });

  test.each([
    [{ reprocessMaxConcurrency: 0 }, /^reprocessMaxConcurrency: expected an integer from 1 to 10000, got 0/],
    [{ backfillMaxConcurrency: 10001 }, /^backfillMaxConcurrency: expected an integer from 1 to 10000/],
    [{ restoreDays: 0 }, /^restoreDays: expected a whole number of days of at least 1/],
    [{ restorePollInterval: Duration.seconds(30) }, /^restorePollInterval: expected 1 minute to 24 hours/],
    [{ restoreTimeout: Duration.minutes(30) }, /^restoreTimeout \(30 minutes\) must be at least restorePollInterval \(1 hour\)/],
    [{ restoreTier: 'Expedited' as RestoreTier }, /^restoreTier: expected RestoreTier.STANDARD or RestoreTier.BULK/],
  ])('%j is refused, naming the prop', (props, message) => {
    expect(() => pipelineStack(props)).toThrow(message);
  });

  test('least privilege: RestoreObject on the raw bucket\'s objects only, report objects under the reports prefix, no wildcard action', () => {
    const policies = template.findResources('AWS::IAM::Policy');
    const statements = Object.values<any>(policies).flatMap((p) => p.Properties.PolicyDocument.Statement);
    for (const s of statements) for (const a of [s.Action].flat()) expect(a).not.toMatch(/\*/);
    const restores = statements.filter((s) => [s.Action].flat().includes('s3:RestoreObject'));
    expect(restores).toHaveLength(1);
    expect(JSON.stringify(restores[0].Resource)).toMatch(/LakeRawBucket.*\/\*/);
    const reports = statements.filter((s) => JSON.stringify(s.Resource ?? '').includes('/reports/reprocess/*'));
    expect(reports.length).toBeGreaterThanOrEqual(4); // select, file, report, the state machine's item reader
  });

  test('grantStartReprocess: start the machine and read the reports', () => {
    const s = new Stack(new App(), 'Grants', { env: ENV });
    const pipeline = new IngestionPipeline(s, 'Ingestion', { stage: PlatformStage.DEV, dataLake: new DataLake(s, 'Lake', { stage: PlatformStage.DEV }) });
    const role = new iam.Role(s, 'Operator', { assumedBy: new iam.AccountRootPrincipal() });
    pipeline.grantStartReprocess(role);
    const statements = Object.values<any>(Template.fromStack(s).findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles).includes('Operator')).flatMap((p) => p.Properties.PolicyDocument.Statement);
    expect(statements.map((st) => st.Action)).toEqual(expect.arrayContaining(['states:StartExecution', 's3:GetObject']));
  });
});
