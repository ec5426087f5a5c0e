import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { definitionOf } from './asl';
import { DataLake, IngestionLedger, IngestionPipeline, LakeStore, PlatformStage } from '../../src';
import { IngestionEnv } from '../../src/ingestion/contract';
import { LedgerStatus } from '../../src/ledger/contract';
import { Ledger } from '../../src/ledger/runtime/ledger';
import { ENV } from '../helpers';
import { BUCKETS, handlerEnv, ingestionTasks, ledgerItem, LocalAws, putObject, restoreEnv, startLocalAws, TABLE } from '../local-aws';
import { LocalRun, runLocally } from '../local-stepfunctions';
import { ONS_DATA } from '../ons-data';

/**
 * The lake engine has no loader: the synthesized ingestion state machine (run by aws-local-stepfunctions, JSONPath)
 * passes LoadTimeSeries through, and the bundled processor, told so by the construct's environment, records a
 * published file `loaded` (queryable) in the ledger (dynalite), after its outputs are in place (s3rver).
 */

const stack = new Stack(new App(), 'Pipeline', { env: ENV });
const lake = new DataLake(stack, 'Lake', { stage: PlatformStage.DEV });
const ledgerConstruct = new IngestionLedger(stack, 'Ledger', { stage: PlatformStage.DEV, encryptionKey: lake.encryptionKey });
const store = new LakeStore(stack, 'TimeSeries', { stage: PlatformStage.DEV, dataLake: lake, ledger: ledgerConstruct });
new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake: lake, ledger: ledgerConstruct, timeSeriesStore: store });
const template = Template.fromStack(stack);
const definition = definitionOf(stack, 'IngestionStateMachine');
/** What the construct tells the processor (read from the template, not repeated here). */
const processorEnv = (Object.values(template.findResources('AWS::Lambda::Function', {
  Properties: { Description: Match.stringLikeRegexp('file processor') },
}))[0] as any).Properties.Environment.Variables;

let aws: LocalAws;
beforeAll(async () => {
  aws = await startLocalAws();
});
afterAll(async () => {
  restoreEnv();
  await aws?.close();
});

function execute(input: unknown, env: Record<string, string | undefined>): Promise<LocalRun> {
  return runLocally(definition, input, {
    context: { Execution: { Id: 'arn:aws:states:us-east-1:123456789012:execution:OnsIngestion:lake', Input: input, StartTime: new Date().toISOString() } },
    tasks: ingestionTasks(env, async () => ({ MessageId: 'm' })),
  });
}

const backfill = (key: string, size: number) => ({ source: { bucket: BUCKETS.raw, key, size } });

test('the construct: no LoadTimeSeries task, and the processor is told the store reads the lake', () => {
  expect(definition.States.LoadTimeSeries.Type).toBe('Pass');
  expect(JSON.stringify(definition.States.LoadTimeSeries.Result)).toMatch(/reads the lake itself/);
  expect(processorEnv[IngestionEnv.LOADED_ON_PUBLISH]).toBe('athena-lake');
});

describe('a real ONS file on the lake engine', () => {
  const key = 'ons/lake/CURVA_CARGA_2023.csv';
  const bytes = readFileSync(join(ONS_DATA, 'CURVA_CARGA_2023.csv'));
  let outcome: LocalRun;
  beforeAll(async () => {
    await putObject(aws, BUCKETS.raw, key, bytes);
    const env = handlerEnv(aws, { [IngestionEnv.LOADED_ON_PUBLISH]: processorEnv[IngestionEnv.LOADED_ON_PUBLISH] });
    outcome = await execute(backfill(key, bytes.length), env);
  });

  test('ends loaded (queryable) once published: processed, then loaded, with the load figures', async () => {
    expect(outcome.error).toBeUndefined();
    expect(outcome.states).toEqual([
      'Normalise', 'FromBackfill', 'Route', 'Decide', 'ProcessFile', 'AlreadyProcessed?', 'LoadTimeSeries', 'SyncKnowledgeBase', 'Done',
    ]);
    const item = await ledgerItem(aws, BUCKETS.raw, key);
    expect(item?.status).toBe(LedgerStatus.LOADED);
    expect(item?.history?.map((h) => h.status)).toEqual(['received', 'processing', 'processed', 'loaded']);
    expect(item?.load).toMatchObject({ status: 'loaded', records: outcome.output.processed.records });
    expect(item?.load?.records).toBeGreaterThan(0);
    // The version rows carry: the source's time, as a loader records it.
    expect(item?.load?.version).toBe(Date.parse(item!.sourceTime!));
  });

  test('a replay of the settled file changes nothing', async () => {
    const before = await ledgerItem(aws, BUCKETS.raw, key);
    const again = await execute(backfill(key, bytes.length), handlerEnv(aws, { [IngestionEnv.LOADED_ON_PUBLISH]: 'athena-lake' }));
    expect(again.error).toBeUndefined();
    const after = await ledgerItem(aws, BUCKETS.raw, key);
    expect(after?.status).toBe(LedgerStatus.LOADED);
    expect(after?.history).toHaveLength(before!.history!.length);
  });
});

test('a file processed before the switch to the lake engine (status processed) becomes loaded when it is ingested again', async () => {
  const key = 'ons/lake/CARGA_ENERGIA_2013.csv';
  const bytes = readFileSync(join(ONS_DATA, 'CARGA_ENERGIA_2013.csv'));
  await putObject(aws, BUCKETS.raw, key, bytes);
  // Without the variable: a store with a loader (Timestream); the processor stops at processed.
  const first = await execute(backfill(key, bytes.length), handlerEnv(aws));
  expect(first.error).toBeUndefined();
  expect((await ledgerItem(aws, BUCKETS.raw, key))?.status).toBe(LedgerStatus.PROCESSED);
  const second = await execute(backfill(key, bytes.length), handlerEnv(aws, { [IngestionEnv.LOADED_ON_PUBLISH]: 'athena-lake' }));
  expect(second.error).toBeUndefined();
  const item = await ledgerItem(aws, BUCKETS.raw, key);
  expect(item?.status).toBe(LedgerStatus.LOADED);
  expect(item?.load?.records).toBe(first.output.processed.records);
});

describe('Ledger.recordQueryable', () => {
  const source = (key: string) => ({ bucket: BUCKETS.raw, key, versionId: 'v1' });
  let ledger: Ledger;
  beforeAll(() => {
    ledger = new Ledger(aws.ddb, TABLE);
  });
  const load = { status: 'loaded' as const, at: '2026-01-01T00:00:00.000Z', records: 5 };

  test('never marks a superseded version loaded', async () => {
    const s = source('ons/lake/superseded.csv');
    await ledger.transition(s, LedgerStatus.PROCESSED, {});
    await ledger.recordSuperseded({ pk: `s3://${s.bucket}/${s.key}`, sk: 'v1' }, 'v2');
    expect(await ledger.recordQueryable(s, { executionArn: 'e', load })).toBe(false);
    expect((await ledger.get(s))?.status).toBe(LedgerStatus.PROCESSED);
  });

  test('moves processed to loaded; leaves indexed, quarantined and missing items alone', async () => {
    const processed = source('ons/lake/processed.csv');
    await ledger.transition(processed, LedgerStatus.PROCESSED, {});
    expect(await ledger.recordQueryable(processed, { executionArn: 'e', load })).toBe(true);
    expect((await ledger.get(processed))).toMatchObject({ status: LedgerStatus.LOADED, load });
    for (const status of [LedgerStatus.INDEXED, LedgerStatus.QUARANTINED]) {
      const s = source(`ons/lake/${status}.csv`);
      await ledger.transition(s, status, {});
      expect(await ledger.recordQueryable(s, { executionArn: 'e', load })).toBe(false);
      expect((await ledger.get(s))?.status).toBe(status);
    }
    expect(await ledger.recordQueryable(source('ons/lake/missing.csv'), { executionArn: 'e', load })).toBe(false);
    expect(await ledger.get(source('ons/lake/missing.csv'))).toBeUndefined();
  });
});
