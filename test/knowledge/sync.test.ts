import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BedrockAgentClient, GetIngestionJobCommand, StartIngestionJobCommand } from '@aws-sdk/client-bedrock-agent';
import { DynamoDBClient, PutItemCommand, PutItemCommandInput, ScanCommand, UpdateItemCommand, UpdateItemCommandInput } from '@aws-sdk/client-dynamodb';
import { App, Stack } from 'aws-cdk-lib';
import { LocalBedrockAgent } from './local-bedrock';
import {
  DataLake, IngestionLedger, IngestionPipeline, KnowledgeBase, PlatformStage, TimestreamStore,
} from '../../src';
import { KnowledgeEnv } from '../../src/knowledge/contract';
import { LedgerItem, LedgerSchema } from '../../src/ledger/contract';
import { Ledger } from '../../src/ledger/runtime/ledger';
import { ENV } from '../helpers';
import { definitionOf } from '../ingestion/asl';
import {
  ASSETS, BUCKETS, handlerEnv, ingestionTasks, ledgerItem, loadHandler, LocalAws, putObject, restoreEnv, startLocalAws, TABLE,
} from '../local-aws';
import { LocalRun, runLocally, TaskHandler } from '../local-stepfunctions';
import { ONS_DATA } from '../ons-data';

/**
 * The knowledge-base sync end to end: the synthesized ingestion state machine (its request step) and the synthesized
 * sync state machine, run by aws-local-stepfunctions; the bundled router, processor and sync handlers against s3rver
 * and dynalite; the Bedrock SDK tasks served by the real bedrock-agent client against the local Bedrock fake, which
 * answers ConflictException while a job runs and makes jobs take simulated time. The loader's step records `loaded`
 * through the real ledger client (the store itself is tested in test/timeseries).
 */

const stack = new Stack(new App(), 'Sync', { env: ENV });
const stage = PlatformStage.DEV;
const dataLake = new DataLake(stack, 'Lake', { stage });
const ledger = new IngestionLedger(stack, 'Ledger', { stage, encryptionKey: dataLake.encryptionKey });
const knowledgeBase = new KnowledgeBase(stack, 'Kb', { stage, dataLake });
const timeSeriesStore = new TimestreamStore(stack, 'TimeSeries', { stage, dataLake, ledger });
new IngestionPipeline(stack, 'Ingestion', { stage, dataLake, knowledgeBase, timeSeriesStore, largeFileProcessing: { enabled: false } });
const ingestionAsl = definitionOf(stack, 'IngestionStateMachine');
const syncAsl = definitionOf(stack, 'IngestionKnowledgeSyncStateMachine');
// The ids as the definitions carry them (placeholders of the knowledge base's attributes).
const partition: string = ingestionAsl.States.RequestSync.Parameters.Item.pk.S;
const KB_ID = partition.replace(/^kbsync#/, '');
const CARDS = ingestionAsl.States.DataCardsSource.Parameters.dataSourceId;
const DOCUMENTS = ingestionAsl.States.DocumentsSource.Parameters.dataSourceId;
const POLL_SECONDS: number = syncAsl.States.SyncEachSource.ItemProcessor.States.WaitForJob.Seconds;

/** 50 real ONS files: four yearly files cut in 12 parts each (header kept), a data dictionary PDF and one more CSV. */
function backfillFiles(): Array<{ key: string; bytes: Buffer }> {
  const files: Array<{ key: string; bytes: Buffer }> = [];
  for (const name of ['CARGA_ENERGIA_2013.csv', 'EAR_DIARIO_SUBSISTEMA_2022.csv', 'CMO_SEMANAL_2013.csv', 'CURVA_CARGA_2023.csv']) {
    const [header, ...rows] = readFileSync(join(ONS_DATA, name), 'utf8').split('\n').filter((l) => l.trim());
    const size = Math.ceil(rows.length / 12);
    for (let part = 0; part < 12; part++) {
      const slice = rows.slice(part * size, (part + 1) * size);
      files.push({ key: `backfill/part${String(part + 1).padStart(2, '0')}/${name}`, bytes: Buffer.from([header, ...slice, ''].join('\n')) });
    }
  }
  files.push({ key: 'backfill/docs/DicionarioDados_CurvaCarga.pdf', bytes: readFileSync(join(ONS_DATA, 'DicionarioDados_CurvaCarga.pdf')) });
  files.push({ key: 'backfill/geracao/Temporal Geração de Energia.csv', bytes: readFileSync(join(ONS_DATA, 'Temporal Geração de Energia.csv')) });
  return files;
}

let aws: LocalAws;
let bedrock: LocalBedrockAgent;
let agent: BedrockAgentClient;
let ddb: DynamoDBClient;
let env: Record<string, string | undefined>;
const notify = async () => ({ MessageId: 'm' });
/** The ingestion's tasks served by the bundled handlers. */
let pipelineTasks: Record<string, TaskHandler>;
let syncHandler: TaskHandler;
let realLedger: Ledger;

beforeAll(async () => {
  aws = await startLocalAws();
  bedrock = new LocalBedrockAgent(aws.s3, {
    [CARDS]: { knowledgeBaseId: KB_ID, bucket: BUCKETS.processed, prefix: 'knowledge/cards/' },
    [DOCUMENTS]: { knowledgeBaseId: KB_ID, bucket: BUCKETS.processed, prefix: 'knowledge/documents/' },
  });
  const endpoint = await bedrock.start();
  const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };
  agent = new BedrockAgentClient({ endpoint, region: 'us-east-1', credentials, maxAttempts: 1 });
  ddb = new DynamoDBClient({ endpoint: aws.dynamoEndpoint, region: 'us-east-1', credentials });
  realLedger = new Ledger(aws.ddb, TABLE);
  env = handlerEnv(aws, { [KnowledgeEnv.KB_ID]: KB_ID, ONS_ROUTES: 'process,document,quarantine' });
  pipelineTasks = ingestionTasks(env, notify);
  syncHandler = loadHandler('sync', env, join(ASSETS, '..', 'knowledge'));
});
afterAll(async () => {
  restoreEnv();
  agent?.destroy();
  ddb?.destroy();
  await bedrock?.close();
  await aws?.close();
});

function run(
  asl: Record<string, any>, input: unknown, executionId: string, tasks: Record<string, TaskHandler>, waits: Record<string, number> = {},
): Promise<LocalRun> {
  return runLocally(asl, input, { context: { Execution: { Id: executionId, Input: input, StartTime: new Date().toISOString() } }, tasks, waits });
}

/** What Step Functions hands a state from an AWS SDK integration: the response with PascalCase names, errors as `<Service>.<name>`. */
function pascal(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(pascal);
  if (value instanceof Date) return value.toISOString();
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([k]) => k !== '$metadata').map(([k, v]) => [k.charAt(0).toUpperCase() + k.slice(1), pascal(v)]));
  }
  return value;
}
async function sdk<T>(service: string, call: () => Promise<T>): Promise<unknown> {
  try {
    return pascal(await call());
  } catch (error) {
    const e = new Error((error as Error).message);
    e.name = `${service}.${(error as Error).name}`;
    throw e;
  }
}

/** Runs the sync state machine with its tasks served locally; every execution started is kept to be awaited. */
class Syncs {
  readonly runs: Array<Promise<LocalRun>> = [];
  private n = 0;
  /** Called before the real handler of a sync task, by state name (a test's interleaving). */
  before: Record<string, (input: any) => Promise<void>> = {};

  start(input: unknown): { ExecutionArn: string } {
    const id = `arn:aws:states:sa-east-1:123456789012:execution:KnowledgeSync:run-${++this.n}`;
    this.runs.push(this.run(input, id));
    return { ExecutionArn: id };
  }

  run(input: unknown, id = `arn:aws:states:sa-east-1:123456789012:execution:KnowledgeSync:direct-${++this.n}`): Promise<LocalRun> {
    const lambda = (name: string) => async (payload: any) => {
      await this.before[name]?.(payload);
      return syncHandler(payload);
    };
    const tasks: Record<string, TaskHandler> = {
      StartJob: (p) => sdk('BedrockAgent', () => agent.send(new StartIngestionJobCommand({
        knowledgeBaseId: p.KnowledgeBaseId, dataSourceId: p.DataSourceId, description: p.Description,
      }))),
      // The Wait before it took POLL_SECONDS of the fake's time.
      GetJob: (p) => {
        bedrock.advance(POLL_SECONDS);
        return sdk('BedrockAgent', () => agent.send(new GetIngestionJobCommand({
          knowledgeBaseId: p.KnowledgeBaseId, dataSourceId: p.DataSourceId, ingestionJobId: p.IngestionJobId,
        })));
      },
    };
    for (const name of ['Acquire', 'Claim', 'Release', 'RenewLease', 'RecordOutcome', 'RecordStartFailure', 'ReleaseAfterFailure', 'Pause']) tasks[name] = lambda(name);
    return run(syncAsl, input, id, tasks, { WaitForJob: 0, WaitBeforeRetry: 0 });
  }

  async settle(): Promise<LocalRun[]> {
    const done: LocalRun[] = [];
    while (done.length < this.runs.length) done.push(await this.runs[done.length]);
    return done;
  }
}

/** One ingestion execution of a raw object, as the backfill starts it. */
function ingest(key: string, size: number, syncs: Syncs): Promise<LocalRun> {
  return run(ingestionAsl, { source: { bucket: BUCKETS.raw, key, size } }, `arn:aws:states:sa-east-1:123456789012:execution:Ingestion:${key}`, {
    ...pipelineTasks,
    NotifySyncNotRequested: notify,
    // The loader's outcome, recorded through the real ledger client.
    LoadTimeSeries: async (input: any) => {
      const load = { status: 'loaded' as const, at: new Date().toISOString(), table: input.processed.dataset, records: input.processed.records };
      await realLedger.recordLoaded(input.source, { executionArn: input.executionArn, load });
      return load;
    },
    RequestSync: async (p: PutItemCommandInput) => sdk('DynamoDB', () => ddb.send(new PutItemCommand({ ...p, TableName: TABLE }))),
    CountSyncRequest: async (p: UpdateItemCommandInput) => sdk('DynamoDB', () => ddb.send(new UpdateItemCommand({ ...p, TableName: TABLE }))),
    StartSync: async () => syncs.start({ trigger: 'ingestion' }),
  });
}

/** Runs `items` through `fn`, `concurrency` at a time (the backfill's Distributed Map). */
async function pool<T, R>(items: T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  }));
  return results;
}

async function pendingRequests(): Promise<any[]> {
  const { Items } = await ddb.send(new ScanCommand({ TableName: TABLE }));
  return (Items ?? []).filter((i) => i.pk.S === partition && i.sk.S!.startsWith('request#'));
}

function overlaps(history: LocalBedrockAgent['history']): number {
  const sorted = [...history].sort((a, b) => a.start - b.start);
  let found = 0;
  for (let i = 1; i < sorted.length; i++) if (sorted[i].start < sorted[i - 1].end) found++;
  return found;
}

describe('a backfill of 50 real ONS files with the knowledge base attached', () => {
  const files = backfillFiles();
  const syncs = new Syncs();
  let ingestions: LocalRun[];
  let syncOutcomes: LocalRun[];
  let items: Array<LedgerItem | undefined>;

  beforeAll(async () => {
    for (const f of files) await putObject(aws, BUCKETS.raw, f.key, f.bytes);
    ingestions = await pool(files, 10, (f) => ingest(f.key, f.bytes.length, syncs));
    syncOutcomes = await syncs.settle();
    items = await Promise.all(files.map((f) => ledgerItem(aws, BUCKETS.raw, f.key)));
  }, 600_000);

  test('every ingestion ends successfully after asking for a sync; none is quarantined', () => {
    expect(ingestions.map((o) => o.error).filter(Boolean)).toEqual([]);
    for (const o of ingestions) expect(o.states.slice(-5)).toEqual(expect.arrayContaining(['RequestSync', 'CountSyncRequest', 'StartSync', 'Done']));
    expect(items.filter((i) => i?.status === 'quarantined')).toEqual([]);
  });

  test('one ingestion job at a time, coalesced: far fewer jobs than files, no ConflictException from the sync itself', () => {
    expect(overlaps(bedrock.history)).toBe(0);
    expect(bedrock.conflicts).toBe(0);
    expect(bedrock.history.length).toBeGreaterThanOrEqual(2); // cards and documents
    expect(bedrock.history.length).toBeLessThan(files.length / 2);
    expect(syncOutcomes.length).toBe(files.length);
    expect(syncOutcomes.map((o) => o.error).filter(Boolean)).toEqual([]);
    // Every execution but the lease holders ended at once.
    expect(syncOutcomes.filter((o) => o.states.includes('StartJob')).length).toBeLessThanOrEqual(bedrock.history.length);
    expect(syncOutcomes.filter((o) => o.states.at(-1) === 'AnotherSyncRuns').length).toBeGreaterThan(0);
  });

  test('every file is indexed after the job that covered it completed, with that job\'s statistics', () => {
    const complete = new Map(bedrock.history.filter((j) => j.status === 'COMPLETE').map((j) => [j.id, j]));
    for (const [i, item] of items.entries()) {
      expect({ key: files[i].key, status: item?.status }).toEqual({ key: files[i].key, status: 'indexed' });
      const job = complete.get(item!.indexing!.jobId!);
      expect(job).toBeDefined();
      expect(item!.indexing).toMatchObject({ status: 'COMPLETE', attempt: 1, statistics: job!.statistics });
      expect(item!.indexing!.statistics!.numberOfDocumentsFailed).toBe(0);
      // Loaded first, indexed after.
      expect(item!.history.map((h) => h.status).slice(-2)).toEqual([item!.kind === 'document' ? 'processed' : 'loaded', 'indexed']);
    }
    const pdf = items[files.findIndex((f) => f.key.endsWith('.pdf'))]!;
    expect(pdf.indexing!.dataSourceId).toBe(DOCUMENTS);
    expect(items[0]!.indexing!.dataSourceId).toBe(CARDS);
    // Every data card is in some completed job.
    const indexedCards = [...complete.values()].filter((j) => j.dataSourceId === CARDS)
      .reduce((n, j) => n + j.statistics.numberOfNewDocumentsIndexed, 0);
    expect(indexedCards).toBe(items.filter((i) => i!.kind === 'tabular').length);
  });

  test('no request is left pending, and the lease is free', async () => {
    expect(await pendingRequests()).toEqual([]);
    const { Items } = await ddb.send(new ScanCommand({ TableName: TABLE }));
    const control = (Items ?? []).find((i) => i.pk.S === partition && i.sk.S === 'control');
    expect(control?.holder).toBeUndefined();
    expect(Number(control?.requests.N)).toBe(files.length);
  });

  test('the sync\'s own items are in no index the ledger API reads', async () => {
    for (const index of [LedgerSchema.BY_STATUS, LedgerSchema.BY_DATASET, LedgerSchema.BY_CONTENT_HASH]) {
      const { Items } = await ddb.send(new ScanCommand({ TableName: TABLE, IndexName: index.name }));
      expect((Items ?? []).length).toBeGreaterThan(0);
      expect((Items ?? []).filter((i) => i.pk.S!.startsWith('kbsync#'))).toEqual([]);
    }
  });
});

describe('a request that arrives while the last job finishes', () => {
  test('is not lost: the holder cannot give the lease back and takes another round', async () => {
    const syncs = new Syncs();
    const first = { key: 'race/one/EAR_DIARIO_SUBSISTEMA_2022.csv', bytes: readFileSync(join(ONS_DATA, 'EAR_DIARIO_SUBSISTEMA_2022.csv')) };
    const late = { key: 'race/two/CARGA_ENERGIA_2013.csv', bytes: readFileSync(join(ONS_DATA, 'CARGA_ENERGIA_2013.csv')) };
    await putObject(aws, BUCKETS.raw, first.key, first.bytes);
    await putObject(aws, BUCKETS.raw, late.key, late.bytes);
    let lateRun: Promise<LocalRun> | undefined;
    // Just before the holder's release: a file asks (its execution's own sync start finds the lease taken).
    syncs.before.Release = async () => {
      if (!lateRun) {
        lateRun = ingest(late.key, late.bytes.length, syncs);
        await lateRun;
      }
    };
    const outcome = await ingest(first.key, first.bytes.length, syncs);
    expect(outcome.error).toBeUndefined();
    const outcomes = await syncs.settle();
    const holder = outcomes[0];
    expect(holder.error).toBeUndefined();
    // Released? said no once (a request was counted since the claim), then a second round took it.
    expect(holder.states.filter((s) => s === 'Claim').length).toBeGreaterThanOrEqual(2);
    expect(outcomes[1].states.at(-1)).toBe('AnotherSyncRuns');
    expect((await ledgerItem(aws, BUCKETS.raw, late.key))?.status).toBe('indexed');
    expect((await ledgerItem(aws, BUCKETS.raw, first.key))?.status).toBe('indexed');
    expect(await pendingRequests()).toEqual([]);
    expect(overlaps(bedrock.history)).toBe(0);
  }, 120_000);
});

describe('a failed ingestion job', () => {
  const file = { key: 'failing/CMO_SEMIHORARIO_2022.csv', bytes: readFileSync(join(ONS_DATA, 'CMO_SEMIHORARIO_2022.csv')) };
  const reason = 'Embedding model throttled: too many requests (local fake)';

  test('leaves the file loaded with the reason, retries with backoff, then fails the sync (alarmed) with the request pending', async () => {
    const syncs = new Syncs();
    await putObject(aws, BUCKETS.raw, file.key, file.bytes);
    const jobsBefore = bedrock.history.length;
    bedrock.failNext(3, reason);
    const ingestion = await ingest(file.key, file.bytes.length, syncs);
    expect(ingestion.error).toBeUndefined();
    expect(ingestion.states.at(-1)).toBe('Done');
    const [holder] = await syncs.settle();
    expect(holder.error).toMatch(/KnowledgeBaseSyncFailed|ingestion job failed/);
    expect(holder.states.filter((s) => s === 'StartJob')).toHaveLength(3);
    expect(holder.states.filter((s) => s === 'WaitBeforeRetry')).toHaveLength(2);
    expect(holder.states.slice(-2)).toEqual(['ReleaseAfterFailure', 'SyncFailed']);
    expect(bedrock.history.slice(jobsBefore).map((j) => j.status)).toEqual(['FAILED', 'FAILED', 'FAILED']);

    const item = await ledgerItem(aws, BUCKETS.raw, file.key);
    expect(item?.status).toBe('loaded');
    expect(item?.indexing).toMatchObject({ status: 'FAILED', attempt: 3, reason, dataSourceId: CARDS });
    expect(item?.indexing?.statistics?.numberOfDocumentsFailed).toBeGreaterThan(0);
    expect(item?.quarantine).toBeUndefined();
    expect(await pendingRequests()).toHaveLength(1);
  }, 120_000);

  test('the next sync (the hourly sweep) takes the pending request and indexes the file', async () => {
    const syncs = new Syncs();
    const outcome = await syncs.run({ trigger: 'sweep' });
    expect(outcome.error).toBeUndefined();
    expect(outcome.states.at(-1)).toBe('Synced');
    const item = await ledgerItem(aws, BUCKETS.raw, file.key);
    expect(item?.status).toBe('indexed');
    expect(item?.indexing).toMatchObject({ status: 'COMPLETE', attempt: 1 });
    expect(await pendingRequests()).toEqual([]);
  }, 120_000);
});

describe('the knowledgeBaseSync flag off', () => {
  test('the file ends loaded without a request, and the execution says why', async () => {
    const syncs = new Syncs();
    const key = 'flag-off/CMO_SEMANAL_2013.csv';
    const bytes = readFileSync(join(ONS_DATA, 'CMO_SEMANAL_2013.csv'));
    await putObject(aws, BUCKETS.raw, key, bytes);
    const route = pipelineTasks.Route;
    pipelineTasks.Route = async (input) => ({ ...(await route(input) as object), knowledgeBaseSync: false });
    try {
      const outcome = await ingest(key, bytes.length, syncs);
      expect(outcome.states.slice(-2)).toEqual(['SyncSkipped', 'Done']);
      expect(outcome.output.sync.skipped).toMatch(/feature flag knowledgeBaseSync/);
    } finally {
      pipelineTasks.Route = route;
    }
    expect(syncs.runs).toHaveLength(0);
    expect((await ledgerItem(aws, BUCKETS.raw, key))?.status).toBe('loaded');
    expect(await pendingRequests()).toEqual([]);
  }, 60_000);
});
