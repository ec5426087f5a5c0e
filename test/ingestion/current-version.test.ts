import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { DataLake, PlatformStage } from '../../src';
import { processObject, ProcessConfig } from '../../src/ingestion/runtime/process-object';
import { ProcessResult, SourceObject } from '../../src/ledger/contract';
import { Ledger } from '../../src/ledger/runtime/ledger';
import { DEFAULT_PREFIXES } from '../../src/ons/layout';
import { figuresBySource, queryCurrentView, SourceFigures } from '../duckdb';
import { ENV } from '../helpers';
import {
  BUCKETS, EXECUTION, FaultyS3Proxy, getBytes, ledgerItem, listKeys, LocalAws, putObject, startLocalAws, TABLE,
} from '../local-aws';
import { ONS_DATA } from '../ons-data';
import { figures, revise } from '../revisions';
import { CapturedOutput, captureOutput } from '../runtime/output';

/**
 * One current version per source key, with the real processObject over s3rver and dynalite: a revised
 * version replaces its key's outputs (and drops the months it no longer has), a second key with the
 * same file name keeps its own, and a run killed while staging leaves nothing readable. After each
 * step DuckDB reads the processed zone as the Glue table does (hive partitions under the processed
 * prefix) and must see exactly the newest version of each key, checked against figures computed here
 * from the file text.
 */

const MEASURE = 'val_cargaenergiahomwmed';
const A = 'ons/curva-carga/CURVA_CARGA_2023.csv';
const B = 'mirror/CURVA_CARGA_2023.csv';
const V1 = readFileSync(join(ONS_DATA, 'CURVA_CARGA_2023.csv'), 'utf8');

const V2 = revise(V1, 1.5, ['12']);
const V3 = revise(V1, 7);

let aws: LocalAws;
let proxy: FaultyS3Proxy;
let s3: S3Client;
let ledger: Ledger;
let output: CapturedOutput;
const config: ProcessConfig = {
  processedBucket: BUCKETS.processed,
  failedBucket: BUCKETS.failed,
  processedDataPrefix: DEFAULT_PREFIXES.processedData,
  dataCardsPrefix: DEFAULT_PREFIXES.dataCards,
  rejectedRowsPrefix: DEFAULT_PREFIXES.rejectedRows,
  stagingPrefix: DEFAULT_PREFIXES.staging,
};

beforeAll(async () => {
  output = captureOutput();
  aws = await startLocalAws();
  proxy = new FaultyS3Proxy(aws.s3Endpoint);
  s3 = new S3Client({
    endpoint: await proxy.start(),
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
  // As the handlers make it (createDocumentClient): undefined attributes left out.
  const dynamo = new DynamoDBClient({ endpoint: aws.dynamoEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  ledger = new Ledger(DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } }), TABLE);
});

afterAll(async () => {
  s3?.destroy();
  await proxy?.close();
  await aws?.close();
  output.restore();
});

/** Uploads a version (s3rver keeps no versions: the id is the one the event would carry) and processes it. */
async function ingest(key: string, text: string, versionId: string): Promise<ProcessResult> {
  await putObject(aws, BUCKETS.raw, key, Buffer.from(text));
  const source: SourceObject = { bucket: BUCKETS.raw, key, versionId, size: Buffer.byteLength(text) };
  return processObject({ source, executionArn: EXECUTION }, { s3, ledger, config });
}

/** The processed zone as Athena reads it, per source key: downloaded, then read by DuckDB with hive partitioning. */
async function lake(): Promise<Map<string, SourceFigures>> {
  return withLake((dir) => figuresBySource(dir, 'curva_carga', MEASURE));
}

/** The processed zone downloaded to a temp dir, for `read` (DuckDB). */
async function withLake<T>(read: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'ons-current-'));
  try {
    for (const key of await listKeys(aws, BUCKETS.processed, DEFAULT_PREFIXES.processedData)) {
      mkdirSync(dirname(join(dir, key)), { recursive: true });
      writeFileSync(join(dir, key), await getBytes(aws, BUCKETS.processed, key));
    }
    return await read(join(dir, DEFAULT_PREFIXES.processedData));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What DuckDB sees for `key` is exactly the file `text`, of version `versionId`. */
function expectCurrent(seen: Map<string, SourceFigures>, key: string, text: string, versionId: string, months: number): void {
  const expected = figures(text);
  const got = seen.get(key);
  expect(got?.count).toBe(expected.count);
  expect(got?.sum).toBeCloseTo(expected.sum, 3);
  expect(got?.versions).toEqual([versionId]);
  expect(got?.months).toHaveLength(months);
}

async function keysUnder(bucket: string, prefix: string): Promise<string[]> {
  return listKeys(aws, bucket, prefix);
}

test('v1 of a key: its rows, once', async () => {
  const result = await ingest(A, V1, 'v1');
  expect(result.status).toBe('processed');
  const seen = await lake();
  expect([...seen.keys()]).toEqual([A]);
  expectCurrent(seen, A, V1, 'v1', 12);
  expect(await keysUnder(BUCKETS.processed, DEFAULT_PREFIXES.dataCards)).toHaveLength(2); // the card and its metadata
});

test('v2 under the same key replaces v1: changed values, and its dropped month is gone', async () => {
  const before = await keysUnder(BUCKETS.processed, DEFAULT_PREFIXES.processedData);
  const result = await ingest(A, V2, 'v2');
  expect(result.status).toBe('processed');
  const seen = await lake();
  expect([...seen.keys()]).toEqual([A]);
  expectCurrent(seen, A, V2, 'v2', 11);
  expect(seen.get(A)?.months).not.toContain('2023-12');
  // Same names for the months both versions have: v2 rewrote v1's objects, nothing beside them.
  const after = await keysUnder(BUCKETS.processed, DEFAULT_PREFIXES.processedData);
  expect(after).toEqual(before.filter((k) => !k.includes('month=12/')));
  expect(await keysUnder(BUCKETS.processed, DEFAULT_PREFIXES.dataCards)).toHaveLength(2);
  expect(await ledgerItem(aws, BUCKETS.raw, A, 'v1')).toMatchObject({ supersededBy: 'v2' });
  expect(await keysUnder(BUCKETS.processed, DEFAULT_PREFIXES.staging)).toEqual([]);
  expect((await ledgerItem(aws, BUCKETS.raw, A, 'v2'))?.staging).toBeUndefined();
});

test('the same file name under another key: its own objects, the first key\'s untouched', async () => {
  // v1's bytes: superseded under A, so no longer in the lake, and processed again under B.
  const result = await ingest(B, V1, 'b1');
  expect(result.status).toBe('processed');
  const seen = await lake();
  expect([...seen.keys()].sort()).toEqual([B, A].sort());
  expectCurrent(seen, A, V2, 'v2', 11);
  expectCurrent(seen, B, V1, 'b1', 12);
  const cards = await keysUnder(BUCKETS.processed, DEFAULT_PREFIXES.dataCards);
  expect(cards).toHaveLength(4);
  expect(new Set(cards.map((k) => k.split('/').pop()!.split('.').slice(0, 2).join('.'))).size).toBe(2);
});

test('a run killed while staging leaves nothing readable; the next run of the key removes what it left', async () => {
  // S3 goes away after the run's second request to the processed bucket: the rest of its uploads and its clean-up fail.
  proxy.failFrom('status500', 3, (req) => (req.url ?? '').startsWith(`/${BUCKETS.processed}/`));
  await expect(ingest(A, V3, 'v3')).rejects.toThrow();
  proxy.disarm();

  const left = await keysUnder(BUCKETS.processed, DEFAULT_PREFIXES.staging);
  expect(left).toHaveLength(2);
  const item = await ledgerItem(aws, BUCKETS.raw, A, 'v3');
  expect(item?.status).toBe('processing');
  expect(item?.staging?.keys).toEqual(expect.arrayContaining(left));
  const seen = await lake();
  expectCurrent(seen, A, V2, 'v2', 11);
  expectCurrent(seen, B, V1, 'b1', 12);

  // The state machine's retry of the same version.
  const result = await ingest(A, V3, 'v3');
  expect(result.status).toBe('processed');
  const after = await lake();
  expectCurrent(after, A, V3, 'v3', 12);
  expectCurrent(after, B, V1, 'b1', 12);
  expect(await keysUnder(BUCKETS.processed, DEFAULT_PREFIXES.staging)).toEqual([]);
  expect((await ledgerItem(aws, BUCKETS.raw, A, 'v3'))?.staging).toBeUndefined();
  expect(await ledgerItem(aws, BUCKETS.raw, A, 'v2')).toMatchObject({ supersededBy: 'v3' });
});

test('the same new bytes under two keys at once: one is processed, the other recorded as its copy', async () => {
  const C = 'drop/a/CURVA_CARGA_2023.csv';
  const D = 'drop/b/CURVA_CARGA_2023.csv';
  const text = revise(V1, 11);
  await putObject(aws, BUCKETS.raw, C, Buffer.from(text));
  await putObject(aws, BUCKETS.raw, D, Buffer.from(text));
  const sources = [C, D].map((key): SourceObject => ({ bucket: BUCKETS.raw, key, versionId: 'c1', size: Buffer.byteLength(text) }));
  // As the router does for each event, before either processor runs.
  for (const source of sources) await ledger.recordReceived(source, { executionArn: EXECUTION, route: 'process' });
  const results = await Promise.all(sources.map((source) => processObject({ source, executionArn: EXECUTION }, { s3, ledger, config })));

  expect(results.map((r) => r.status).sort()).toEqual(['duplicate', 'processed']);
  const [winner, copy] = results[0].status === 'processed' ? [C, D] : [D, C];
  const copied = results.find((r) => r.status === 'duplicate')!;
  expect(copied.duplicateOf).toBe(`s3://${BUCKETS.raw}/${winner}?versionId=c1`);
  expect(await ledgerItem(aws, BUCKETS.raw, copy, 'c1')).toMatchObject({ status: 'duplicate', duplicateOf: copied.duplicateOf });
  const seen = await lake();
  expect([...seen.keys()].sort()).toEqual([A, B, winner].sort());
  expectCurrent(seen, winner, text, 'c1', 12);
});

test('a copy of a version that was since superseded is processed: its content left the lake', async () => {
  // V3 was A's current version until now; A moves on, and V3's bytes then arrive under another key.
  await ingest(A, V2, 'v4');
  const E = 'late/CURVA_CARGA_2023.csv';
  const result = await ingest(E, V3, 'e1');
  expect(result.status).toBe('processed');
  const seen = await lake();
  expectCurrent(seen, A, V2, 'v4', 11);
  expectCurrent(seen, E, V3, 'e1', 12);
});

/** The real ledger, whose publication lease a run waits for until the test opens the gate. */
class GatedLedger extends Ledger {
  private open?: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.open = resolve));
  public waiting = false;

  async acquirePublication(...args: Parameters<Ledger['acquirePublication']>): ReturnType<Ledger['acquirePublication']> {
    this.waiting = true;
    await this.gate;
    return super.acquirePublication(...args);
  }

  release(): void {
    this.open!();
  }
}

test('an older version whose run ends after a newer one\'s publishes nothing: the newer stays current', async () => {
  const older = revise(V1, 21);
  const newer = revise(V1, 22, ['01']);
  const dynamo = new DynamoDBClient({ endpoint: aws.dynamoEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  const gated = new GatedLedger(DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } }), TABLE);
  try {
    await putObject(aws, BUCKETS.raw, A, Buffer.from(older));
    const source: SourceObject = { bucket: BUCKETS.raw, key: A, versionId: 'v5', size: Buffer.byteLength(older) };
    const slow = processObject({ source, executionArn: EXECUTION }, { s3, ledger: gated, config });
    while (!gated.waiting) await new Promise((resolve) => setTimeout(resolve, 20));
    // S3 times have one-second resolution: the next version is stored at least a second later.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await ingest(A, newer, 'v6')).status).toBe('processed');
    gated.release();

    const late = await slow;
    expect(late).toMatchObject({ status: 'superseded', supersededBy: 'v6' });
    expect(late.parquetKeys).toBeUndefined();
    const seen = await lake();
    expectCurrent(seen, A, newer, 'v6', 11);
    expect(await ledgerItem(aws, BUCKETS.raw, A, 'v5')).toMatchObject({ status: 'processed', supersededBy: 'v6' });
    expect(await ledgerItem(aws, BUCKETS.raw, A, 'v6')).not.toHaveProperty('supersededBy');
    expect(await keysUnder(BUCKETS.processed, DEFAULT_PREFIXES.staging)).toEqual([]);
    // Replayed (a state-machine retry), the late run answers the same without publishing.
    expect(await ingest(A, older, 'v5')).toEqual(late);
    expectCurrent(await lake(), A, newer, 'v6', 11);
  } finally {
    dynamo.destroy();
  }
});

test('through the <dataset>_current view: one row per series and instant, each from the newest source that has it', async () => {
  // The synthesized view, over what the handlers wrote. A monthly edition of March arrives last, under its own key.
  const template = Template.fromStack(((stack) => (new DataLake(stack, 'Lake', { stage: PlatformStage.DEV }), stack))(new Stack(new App(), 'L', { env: ENV })));
  const [header, ...lines] = V1.trimEnd().split('\n');
  const march = revise(`${[header, ...lines.filter((l) => l.split(';')[2].startsWith('2023-03-'))].join('\n')}\n`, 40);
  await new Promise((resolve) => setTimeout(resolve, 1100)); // a later S3 second than A's current version
  expect((await ingest('ons/monthly/CURVA_CARGA_2023_03.csv', march, 'm1')).status).toBe('processed');

  // Expected, from the texts and the order they were stored in: March from the monthly edition, January
  // (which A's current version dropped) from E's (V3), every other month from A's current version.
  const newest = revise(V1, 22, ['01']);
  const month = (text: string, mm: string) => figures(`${header}\n${text.trimEnd().split('\n').slice(1).filter((l) => l.split(';')[2].slice(5, 7) === mm).join('\n')}\n`);
  const expected = { count: 0, sum: 0 };
  for (const mm of ['01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12']) {
    const f = month(mm === '01' ? V3 : mm === '03' ? march : newest, mm);
    expected.count += f.count;
    expected.sum += f.sum;
  }
  const view = await withLake((dir) => queryCurrentView(template, dir, 'curva_carga', {
    count: 'SELECT count(*) FROM curva_carga_current',
    sum: `SELECT sum(${MEASURE}) FROM curva_carga_current`,
    duplicates: 'SELECT count(*) FROM (SELECT id_subsistema, time FROM curva_carga_current GROUP BY 1, 2 HAVING count(*) > 1)',
    rows: 'SELECT count(*) FROM curva_carga',
  }));
  expect(view.duplicates).toBe(0);
  expect(view.count).toBe(expected.count);
  expect(view.count).toBe(figures(V1).count);
  expect(view.sum).toBeCloseTo(expected.sum, 3);
  expect(view.rows).toBeGreaterThan(view.count); // the table holds every source's rows; the view one of each
});
