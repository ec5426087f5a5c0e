import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessInput, QuarantineInput } from '../../src/ingestion/contract';
import { ProcessResult, StepInput } from '../../src/ledger/contract';
import {
  BUCKETS, EXECUTION, getBytes, handlerEnv, ledgerItem, listKeys, LocalAws, loadHandler, putObject, restoreEnv, sha256, startLocalAws,
} from '../local-aws';
import { ONS_DATA } from '../ons-data';
import { CapturedOutput, captureOutput } from '../runtime/output';

/**
 * The bundled quarantine and document-copy handlers against s3rver and dynalite: copies (raw never
 * touched), the error report without stack traces, keys with accents and spaces, and the ledger.
 */

interface QuarantineResult { bucket: string; key?: string; errorKey: string }
interface CopyResult { status: string; kind: string; bucket: string; key: string }

let aws: LocalAws;
let quarantine: (event: QuarantineInput) => Promise<QuarantineResult>;
let copyDocument: (event: StepInput) => Promise<CopyResult>;
let processFile: (event: ProcessInput) => Promise<ProcessResult>;
let output: CapturedOutput;

beforeAll(async () => {
  aws = await startLocalAws();
  const env = handlerEnv(aws, { ONS_STAGE: 'staging' });
  quarantine = loadHandler('quarantine', env);
  copyDocument = loadHandler('copy-document', env);
  processFile = loadHandler('process', env);
});

afterAll(async () => {
  restoreEnv();
  await aws?.close();
});

beforeEach(() => {
  output = captureOutput();
});

afterEach(() => {
  output.restore();
});

async function report(errorKey: string): Promise<Record<string, any>> {
  return JSON.parse((await getBytes(aws, BUCKETS.failed, errorKey)).toString('utf8'));
}

/** `quarantine/YYYY/MM/DD/<key>` for the day of the report's own time (no clock read in the test). */
function expectedKey(time: string, key: string): string {
  return `quarantine/${time.slice(0, 4)}/${time.slice(5, 7)}/${time.slice(8, 10)}/${key}`;
}

describe('quarantine', () => {
  test("the router's refusal: raw copied, error.json with stage, step, reason, execution and time; raw untouched; ledger quarantined", async () => {
    const key = 'incoming/setup.exe';
    const body = Buffer.from('MZ\x90\x00 not an ONS file');
    await putObject(aws, BUCKETS.raw, key, body);
    const reason = "'.exe' files are not supported: expected a tabular file (.csv, .xlsx, .parquet) or a document (.pdf, .docx, .md, .txt, .html, .htm)";

    const result = await quarantine({ source: { bucket: BUCKETS.raw, key, size: body.length }, executionArn: EXECUTION, step: 'Route', reason });

    const errorReport = await report(result.errorKey);
    expect(result).toEqual({ bucket: BUCKETS.failed, key: expectedKey(errorReport.time, key), errorKey: `${expectedKey(errorReport.time, key)}.error.json` });
    expect(errorReport).toEqual({
      stage: 'staging',
      step: 'Route',
      reason,
      executionArn: EXECUTION,
      time: errorReport.time,
      source: { bucket: BUCKETS.raw, key, versionId: null, size: body.length },
      quarantinedCopy: { bucket: BUCKETS.failed, key: result.key },
    });
    expect(new Date(errorReport.time).toISOString()).toBe(errorReport.time);
    expect(await getBytes(aws, BUCKETS.failed, result.key!)).toEqual(body);
    expect(await getBytes(aws, BUCKETS.raw, key)).toEqual(body);
    const item = await ledgerItem(aws, BUCKETS.raw, key);
    expect(item).toMatchObject({
      status: 'quarantined',
      executionArn: EXECUTION,
      error: { step: 'Route', reason },
      quarantine: { bucket: BUCKETS.failed, key: result.key, errorKey: result.errorKey },
    });
    expect(item!.history.map((h) => h.status)).toEqual(['quarantined']);
  });

  test("a Lambda failure caught by Step Functions: the Cause's type and message kept, never the stack trace", async () => {
    const key = 'incoming/recusado/Relatório mensal.csv';
    const pdf = readFileSync(join(ONS_DATA, 'DicionarioDados_CurvaCarga.pdf'));
    await putObject(aws, BUCKETS.raw, key, pdf);
    // The real error, as the Lambda runtime reports it and Step Functions catches it.
    const thrown = await processFile({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION }).then(() => undefined, (e: Error) => e);
    expect(thrown!.stack).toMatch(/\n\s+at /);
    const cause = JSON.stringify({ errorType: thrown!.name, errorMessage: thrown!.message, trace: thrown!.stack!.split('\n') });

    const result = await quarantine({
      source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION, step: 'ProcessFile', error: { Error: 'FileRefused', Cause: cause },
    });

    const text = (await getBytes(aws, BUCKETS.failed, result.errorKey)).toString('utf8');
    const errorReport = JSON.parse(text);
    expect(errorReport).toMatchObject({
      stage: 'staging',
      step: 'ProcessFile',
      errorType: 'FileRefused',
      reason: `${key} refused: this is a PDF document, not a table of data (documents belong in the knowledge base)`,
    });
    expect(text).not.toMatch(/\bat .*index\.js|trace|stack/i);
    expect(result.key).toBe(expectedKey(errorReport.time, key));
    expect(sha256(await getBytes(aws, BUCKETS.failed, result.key!))).toBe(sha256(pdf));
    expect(await ledgerItem(aws, BUCKETS.raw, key)).toMatchObject({
      status: 'quarantined', error: { step: 'ProcessFile', errorType: 'FileRefused', reason: errorReport.reason },
    });
    const item = await ledgerItem(aws, BUCKETS.raw, key);
    expect(item!.history.map((h) => h.status)).toEqual(['processing', 'quarantined']);
  });

  test.each([
    ['PascalCase (Step Functions)', { JobName: 'ons-process', Status: 'FAILED', StatusReason: 'Essential container in task exited', Container: { ExitCode: 2, LogStreamName: 'x/y/z' } }],
    ['camelCase (Batch API)', { jobName: 'ons-process', status: 'FAILED', statusReason: 'Essential container in task exited', container: { exitCode: 2 } }],
  ])('a Batch job failure, %s: the status reason and exit code are the reason', async (_, description) => {
    const key = 'incoming/large/BIG.csv';
    await putObject(aws, BUCKETS.raw, key, Buffer.from('id_x;din_y\n'));
    const cause = JSON.stringify(description);

    const result = await quarantine({
      source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION, step: 'ProcessFileBatch', error: { Error: 'States.TaskFailed', Cause: cause },
    });

    expect(await report(result.errorKey)).toMatchObject({
      step: 'ProcessFileBatch', errorType: 'States.TaskFailed', reason: 'Essential container in task exited (exit code 2: file refused)',
    });
  });

  test('a plain-text cause (States.Timeout) is kept, stack-like lines dropped', async () => {
    const key = 'incoming/slow.csv';
    await putObject(aws, BUCKETS.raw, key, Buffer.from('x'));
    const result = await quarantine({
      source: { bucket: BUCKETS.raw, key },
      executionArn: EXECUTION,
      step: 'ProcessFile',
      error: { Error: 'States.Timeout', Cause: 'Task timed out after 900 seconds\n    at Runtime.handler (/var/task/index.js:1:2)' },
    });
    expect(await report(result.errorKey)).toMatchObject({ errorType: 'States.Timeout', reason: 'Task timed out after 900 seconds' });
  });

  test('the raw object no longer exists: error.json and the ledger entry are still written', async () => {
    const key = 'incoming/deleted.csv';
    const result = await quarantine({
      source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION, step: 'Route', reason: 'the object no longer exists',
    });

    const errorReport = await report(result.errorKey);
    expect(result).toEqual({ bucket: BUCKETS.failed, errorKey: `${expectedKey(errorReport.time, key)}.error.json` });
    expect(errorReport).toMatchObject({ reason: 'the object no longer exists', quarantinedCopy: null });
    expect(await listKeys(aws, BUCKETS.failed, expectedKey(errorReport.time, key))).toEqual([result.errorKey]);
    expect(await ledgerItem(aws, BUCKETS.raw, key)).toMatchObject({
      status: 'quarantined', quarantine: { bucket: BUCKETS.failed, errorKey: result.errorKey },
    });
    expect((await ledgerItem(aws, BUCKETS.raw, key))!.quarantine!.key).toBeUndefined();
  });

  test('a key with accents and spaces is copied under the same key', async () => {
    const key = 'incoming/Temporal Geração de Energia.csv';
    const body = readFileSync(join(ONS_DATA, 'Temporal Geração de Energia.csv'));
    await putObject(aws, BUCKETS.raw, key, body);
    const result = await quarantine({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION, step: 'LoadTimeSeries', error: { Error: 'ThrottlingException' } });
    expect(result.key).toMatch(/^quarantine\/\d{4}\/\d\d\/\d\d\/incoming\/Temporal Geração de Energia\.csv$/);
    expect(await getBytes(aws, BUCKETS.failed, result.key!)).toEqual(body);
    expect(await report(result.errorKey)).toMatchObject({ step: 'LoadTimeSeries', errorType: 'ThrottlingException', reason: 'ThrottlingException' });
  });
});

describe('copy-document', () => {
  test('copies a PDF with accents and spaces in its key to the documents prefix; raw kept; ledger processed (document)', async () => {
    const key = 'documentos/Dicionário de Dados — Curva de Carga (2024).pdf';
    const pdf = readFileSync(join(ONS_DATA, 'DicionarioDados_CurvaCarga.pdf'));
    await putObject(aws, BUCKETS.raw, key, pdf);

    const result = await copyDocument({ source: { bucket: BUCKETS.raw, key, size: pdf.length }, executionArn: EXECUTION });

    expect(result).toEqual({ status: 'processed', kind: 'document', bucket: BUCKETS.processed, key: `knowledge/documents/${key}` });
    expect(sha256(await getBytes(aws, BUCKETS.processed, result.key))).toBe(sha256(pdf));
    expect(sha256(await getBytes(aws, BUCKETS.raw, key))).toBe(sha256(pdf));
    const item = await ledgerItem(aws, BUCKETS.raw, key);
    expect(item).toMatchObject({
      status: 'processed',
      kind: 'document',
      size: pdf.length,
      executionArn: EXECUTION,
      outputs: { processedBucket: BUCKETS.processed, documentKey: result.key },
    });
  });

  test('a missing document fails with S3 own error name (the state machine quarantines it)', async () => {
    await expect(copyDocument({ source: { bucket: BUCKETS.raw, key: 'documentos/none.pdf' }, executionArn: EXECUTION }))
      .rejects.toMatchObject({ name: 'NoSuchKey' });
    expect(await ledgerItem(aws, BUCKETS.raw, 'documentos/none.pdf')).toBeUndefined();
  });
});
