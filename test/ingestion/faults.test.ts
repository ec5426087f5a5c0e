import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessInput } from '../../src/ingestion/contract';
import { ProcessResult } from '../../src/ledger/contract';
import { HandlerEnv } from '../../src/runtime/contract';
import {
  BUCKETS, EXECUTION, FaultyS3Proxy, getBytes, handlerEnv, isPutObject, ledgerItem, listKeys, LocalAws, loadHandler, putObject,
  restoreEnv, sha256, startLocalAws,
} from '../local-aws';
import { ONS_DATA } from '../ons-data';
import { CapturedOutput, captureOutput } from '../runtime/output';

/**
 * S3 faults injected under the bundled processor (a proxy in front of s3rver): a failed or stalled
 * upload (to staging) makes the run throw with its own error name (so the state machine retries),
 * leaves no output in the processed or failed bucket, keeps the raw object, and does not mark the
 * ledger processed; the retry then succeeds.
 */

type Process = (event: ProcessInput) => Promise<ProcessResult>;

let aws: LocalAws;
let proxy: FaultyS3Proxy;
let processFile: Process;
let output: CapturedOutput;
let consoleError: jest.SpyInstance;

// One attempt per request, so the injected fault reaches the handler (the SDK would retry a 500 itself);
// a short socket timeout, so a stalled response fails the request. Neither is asserted on.
const FAULT_ENV = { AWS_MAX_ATTEMPTS: '1', [HandlerEnv.S3_REQUEST_TIMEOUT_MS]: '1500' };

const CARGA = readFileSync(join(ONS_DATA, 'CARGA_ENERGIA_2013.csv'));

beforeAll(async () => {
  aws = await startLocalAws();
  proxy = new FaultyS3Proxy(aws.s3Endpoint);
  const endpoint = await proxy.start();
  processFile = loadHandler('process', handlerEnv(aws, { ...FAULT_ENV, AWS_ENDPOINT_URL_S3: endpoint }));
});

afterAll(async () => {
  restoreEnv();
  await proxy?.close();
  await aws?.close();
});

beforeEach(() => {
  output = captureOutput();
  consoleError = output.error;
  proxy.disarm();
  proxy.failed = 0;
});

afterEach(() => {
  output.restore();
});

async function expectNothingWritten(before: { processed: string[]; failed: string[] }) {
  expect(await listKeys(aws, BUCKETS.processed)).toEqual(before.processed);
  expect(await listKeys(aws, BUCKETS.failed)).toEqual(before.failed);
}

async function snapshot() {
  return { processed: await listKeys(aws, BUCKETS.processed), failed: await listKeys(aws, BUCKETS.failed) };
}

describe.each([
  // Each case its own file: content already processed would be a duplicate.
  ['a 500 on the 2nd upload', 'status500' as const, 2, 'InternalError', 'CARGA_ENERGIA_2013.csv', 1461],
  ['a 500 on the last upload (the card, after 12 Parquet parts and the metadata)', 'status500' as const, 14, 'InternalError', 'CMO_SEMANAL_2013.csv', 208],
  ['a stalled response to the 2nd upload (stored, never answered)', 'stall' as const, 2, 'TimeoutError', 'EAR_DIARIO_SUBSISTEMA_2022.csv', 1460],
])('%s', (_, fault, nth, errorName, file, records) => {
  const key = `incoming/${fault}-${nth}/${file}`;
  const body = readFileSync(join(ONS_DATA, file));

  test('throws with its own name, removes every output of the run, keeps the raw object, ledger not processed; the retry succeeds', async () => {
    await putObject(aws, BUCKETS.raw, key, body);
    const before = await snapshot();
    proxy.failNth(fault, nth, isPutObject());

    const error = await processFile({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION }).then(() => undefined, (e: Error) => e);

    expect(proxy.failed).toBe(1);
    expect(error).toBeInstanceOf(Error);
    expect(error!.name).toBe(errorName);
    expect(error!.name).not.toBe('FileRefused');
    await expectNothingWritten(before);
    expect(sha256(await getBytes(aws, BUCKETS.raw, key))).toBe(sha256(body));
    const failed = await ledgerItem(aws, BUCKETS.raw, key);
    expect(failed).toMatchObject({ status: 'processing', error: { step: 'ProcessFile', errorType: errorName } });
    expect(failed!.result).toBeUndefined();

    proxy.disarm();
    const result = await processFile({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION });

    expect(result).toMatchObject({ status: 'processed', records });
    expect(result.parquetKeys).toHaveLength(12);
    expect(await listKeys(aws, BUCKETS.processed)).toEqual([...before.processed, ...result.parquetKeys!, result.cardKey!, `${result.cardKey}.metadata.json`].sort());
    const item = await ledgerItem(aws, BUCKETS.raw, key);
    expect(item).toMatchObject({ status: 'processed', records });
    expect(item!.error).toBeUndefined();
    expect(item!.history.map((h) => h.status)).toEqual(['processing', 'processing', 'processed']);
  });
});

test('a failed copy of the rejected rows to the failed bucket: the run throws, its staging is recorded, and the retry completes and removes it', async () => {
  const lines = CARGA.toString('utf8').split('\n');
  const body = Buffer.from([...lines.slice(0, 5), lines[5].replace(/;[^;]*$/, ';x'), ...lines.slice(6)].join('\n'));
  const key = 'incoming/rejected-fault/CARGA_ENERGIA_2013.csv';
  await putObject(aws, BUCKETS.raw, key, body);
  const before = await snapshot();
  // Outputs are staged in the processed bucket, then copied (PUT with x-amz-copy-source) to their final names.
  proxy.failNth('status500', 1, (req) => req.method === 'PUT' && !!req.headers['x-amz-copy-source'] && (req.url ?? '').startsWith(`/${BUCKETS.failed}/`));

  await expect(processFile({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION })).rejects.toMatchObject({ name: 'InternalError' });

  expect(proxy.failed).toBe(1);
  const failed = await ledgerItem(aws, BUCKETS.raw, key);
  expect(failed!.status).toBe('processing');
  expect(await listKeys(aws, BUCKETS.processed, 'staging/')).toEqual([...failed!.staging!.keys].sort());
  expect(await listKeys(aws, BUCKETS.failed)).toEqual(before.failed);

  proxy.disarm();
  const result = await processFile({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION });
  expect(result).toMatchObject({ status: 'processed', rejected: 1 });
  expect(await listKeys(aws, BUCKETS.processed, 'staging/')).toEqual([]);
  expect(await listKeys(aws, BUCKETS.failed)).toEqual([...before.failed, result.rejectedKey!].sort());
  expect((await ledgerItem(aws, BUCKETS.raw, key))!.staging).toBeUndefined();
});

test('a failed download: nothing written, the error keeps its name', async () => {
  const key = 'incoming/get-fault/CARGA_ENERGIA_2013.csv';
  await putObject(aws, BUCKETS.raw, key, CARGA);
  const before = await snapshot();
  proxy.failNth('status500', 1, (req) => req.method === 'GET' && (req.url ?? '').startsWith(`/${BUCKETS.raw}/`));

  await expect(processFile({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION })).rejects.toMatchObject({ name: 'InternalError' });

  expect(proxy.failed).toBe(1);
  await expectNothingWritten(before);
  expect(await ledgerItem(aws, BUCKETS.raw, key)).toBeUndefined();
});

test('the error log names the error, without a stack trace', async () => {
  const key = 'incoming/log-fault/Temporal Geração de Energia.csv';
  await putObject(aws, BUCKETS.raw, key, readFileSync(join(ONS_DATA, 'Temporal Geração de Energia.csv')));
  proxy.failNth('status500', 1, isPutObject());

  await expect(processFile({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION })).rejects.toMatchObject({ name: 'InternalError' });

  const lines = consoleError.mock.calls.map(([line]) => String(line));
  expect(lines.map((l) => JSON.parse(l))).toContainEqual(expect.objectContaining({ level: 'ERROR', message: 'processing failed', errorType: 'InternalError' }));
  expect(lines.join('\n')).not.toMatch(/\n\s+at /);
});
