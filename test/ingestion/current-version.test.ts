import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { processObject, ProcessConfig } from '../../src/ingestion/runtime/process-object';
import { ProcessResult, SourceObject } from '../../src/ledger/contract';
import { Ledger } from '../../src/ledger/runtime/ledger';
import { DEFAULT_PREFIXES } from '../../src/ons/layout';
import { figuresBySource, SourceFigures } from '../duckdb';
import { ONS_DATA } from '../ons-data';
import { figures, revise } from '../revisions';
import {
  BUCKETS, EXECUTION, FaultyS3Proxy, getBytes, ledgerItem, listKeys, LocalAws, putObject, startLocalAws, TABLE,
} from './local-aws';
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
  const dir = mkdtempSync(join(tmpdir(), 'ons-current-'));
  try {
    for (const key of await listKeys(aws, BUCKETS.processed, DEFAULT_PREFIXES.processedData)) {
      mkdirSync(dirname(join(dir, key)), { recursive: true });
      writeFileSync(join(dir, key), await getBytes(aws, BUCKETS.processed, key));
    }
    return await figuresBySource(join(dir, DEFAULT_PREFIXES.processedData), 'curva_carga', MEASURE);
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
