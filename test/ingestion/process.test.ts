import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessInput, RouteResult } from '../../src/ingestion/contract';
import { ProcessResult, StepInput } from '../../src/ledger/contract';
import { inspectFile } from '../../src/ons/convert';
import { outputStem, sourceId } from '../../src/ons/layout';
import { localFile } from '../../src/ons/local-file';
import { FileSummary } from '../../src/ons/process';
import { readParquet } from '../../src/ons/readers/parquet';
import {
  BUCKETS, EXECUTION, FaultyS3Proxy, getBytes, handlerEnv, ledgerItem, listKeys, LocalAws, loadHandler, putObject, restoreEnv, sha256, startLocalAws,
} from '../local-aws';
import { ONS_DATA } from '../ons-data';
import { CapturedOutput, captureOutput } from '../runtime/output';

/**
 * The bundled processor end to end on real ONS files, against s3rver and dynalite: what it writes
 * (read back from S3), what the ledger records, duplicates, and refused files.
 */

type Process = (event: ProcessInput) => Promise<ProcessResult>;
type Route = (event: StepInput) => Promise<RouteResult>;

let aws: LocalAws;
let processFile: Process;
let route: Route;
let output: CapturedOutput;
let consoleLog: jest.SpyInstance;
let consoleError: jest.SpyInstance;

/** The handlers' temp directory (os.tmpdir() reads TMPDIR): every run must leave it empty. */
let handlerTmp: string;

beforeAll(async () => {
  aws = await startLocalAws();
  handlerTmp = join(aws.scratch, 'handler-tmp');
  mkdirSync(handlerTmp);
  processFile = loadHandler('process', handlerEnv(aws, { TMPDIR: handlerTmp }));
  route = loadHandler('route', handlerEnv(aws, { TMPDIR: handlerTmp }));
});

afterEach(() => {
  expect(readdirSync(handlerTmp)).toEqual([]);
});

afterAll(async () => {
  restoreEnv();
  await aws?.close();
});

// Quiet from the start (describe blocks process files in their beforeAll); each test sees only its own lines.
beforeAll(() => {
  output = captureOutput();
  consoleLog = output.log;
  consoleError = output.error;
});

beforeEach(() => {
  consoleLog.mockClear();
  consoleError.mockClear();
});

afterAll(() => {
  output.restore();
});

/** Routes then processes a raw object, as the state machine does. */
async function ingest(key: string, body: Buffer, executionArn = EXECUTION): Promise<ProcessResult> {
  await putObject(aws, BUCKETS.raw, key, body);
  const routed = await route({ source: { bucket: BUCKETS.raw, key }, executionArn });
  expect(routed.action).toBe('process');
  return processFile({ source: routed.source, executionArn });
}

async function parquetRows(key: string): Promise<{ header: string[]; rows: unknown[][] }> {
  const table = await readParquet(new Uint8Array(await getBytes(aws, BUCKETS.processed, key)));
  const rows: unknown[][] = [];
  for await (const r of table.rows) rows.push(r.cells!);
  return { header: table.header, rows };
}

describe('CURVA_CARGA_2023.csv end to end', () => {
  const key = 'incoming/curva-carga/CURVA_CARGA_2023.csv';
  const body = readFileSync(join(ONS_DATA, 'CURVA_CARGA_2023.csv'));
  const hash = sha256(body);
  // Every output is named after the source object (`s3://bucket/key`), not its content.
  const stem = outputStem('CURVA_CARGA_2023', sourceId(`s3://${BUCKETS.raw}/${key}`));
  const card = `knowledge/cards/curva_carga/${stem}.md`;
  let result: ProcessResult;
  let figures: FileSummary;

  beforeAll(async () => {
    figures = await inspectFile('CURVA_CARGA_2023.csv', localFile(join(ONS_DATA, 'CURVA_CARGA_2023.csv')));
    result = await ingest(key, body);
  });

  test('the result carries the domain core figures, the hash and the output keys', () => {
    const months = Array.from({ length: 12 }, (_, i) => String(i + 1).padStart(2, '0'));
    expect(result).toEqual({
      status: 'processed',
      contentHash: hash,
      dataset: 'curva_carga',
      rows: figures.rows,
      records: figures.records,
      rejected: figures.rejected,
      series: figures.series,
      start: figures.start,
      end: figures.end,
      parquetKeys: months.map((m) => `processed/dataset=curva_carga/year=2023/month=${m}/${stem}.parquet`),
      cardKey: card,
    });
    expect(figures).toMatchObject({ rows: 35040, records: 35040, rejected: 0, series: 4 });
  });

  test('the processed bucket holds the Parquet parts, the card and its metadata, and nothing else; the failed bucket nothing', async () => {
    // Nothing left in staging either.
    expect(await listKeys(aws, BUCKETS.processed)).toEqual([card, `${card}.metadata.json`, ...result.parquetKeys!].sort());
    expect(await listKeys(aws, BUCKETS.failed)).toEqual([]);
  });

  test('the Parquet parts read back with every record, the source key and row on each', async () => {
    let total = 0;
    for (const partKey of result.parquetKeys!) {
      const { header, rows } = await parquetRows(partKey);
      expect(header).toEqual(expect.arrayContaining(['time', 'local_time', 'id_subsistema', 'source_key', 'source_row']));
      const sourceKey = header.indexOf('source_key');
      expect(new Set(rows.map((r) => r[sourceKey]))).toEqual(new Set([key]));
      total += rows.length;
    }
    expect(total).toBe(figures.records);
  });

  test('the card names the source object and the metadata the dataset', async () => {
    expect((await getBytes(aws, BUCKETS.processed, card)).toString('utf8')).toContain(`s3://${BUCKETS.raw}/${key}`);
    const metadata = JSON.parse((await getBytes(aws, BUCKETS.processed, `${card}.metadata.json`)).toString('utf8'));
    expect(metadata.metadataAttributes).toMatchObject({ dataset: 'curva_carga' });
  });

  test('the ledger item: processed, with counts, period, outputs, history and the result as JSON text', async () => {
    const item = await ledgerItem(aws, BUCKETS.raw, key);
    expect(item).toMatchObject({
      status: 'processed',
      kind: 'tabular',
      dataset: 'curva_carga',
      contentHash: hash,
      size: body.length,
      rows: figures.rows,
      records: figures.records,
      rejected: figures.rejected,
      series: figures.series,
      start: figures.start,
      end: figures.end,
      executionArn: EXECUTION,
      outputs: {
        processedBucket: BUCKETS.processed,
        parquetKeys: result.parquetKeys,
        cardKey: card,
        cardMetadataKey: `${card}.metadata.json`,
      },
    });
    expect(item!.history.map((h) => h.status)).toEqual(['received', 'processing', 'processed']);
    expect(item!.error).toBeUndefined();
    expect(JSON.parse(item!.result!)).toEqual(result);
  });

  test('the raw object is untouched', async () => {
    expect(sha256(await getBytes(aws, BUCKETS.raw, key))).toBe(hash);
  });

  test('a replay of the same object version returns the recorded result and writes nothing', async () => {
    const before = await listKeys(aws, BUCKETS.processed);
    const item = await ledgerItem(aws, BUCKETS.raw, key);

    const again = await processFile({ source: { bucket: BUCKETS.raw, key }, executionArn: `${EXECUTION}-replay` });

    expect(again).toEqual(result);
    expect(await listKeys(aws, BUCKETS.processed)).toEqual(before);
    expect(await ledgerItem(aws, BUCKETS.raw, key)).toEqual(item);
  });

  test('a replay of a settled version reads the ledger before S3: no GetObject, so an unreadable (archived) raw object still answers', async () => {
    const proxy = new FaultyS3Proxy(aws.s3Endpoint);
    const endpoint = await proxy.start();
    try {
      // Any GetObject of the raw bucket fails, as Deep Archive answers InvalidObjectState; failed counts the attempts.
      proxy.failNth('status500', 1, (req) => req.method === 'GET' && (req.url ?? '').startsWith(`/${BUCKETS.raw}/`));
      const replay = loadHandler<ProcessInput, ProcessResult>('process', handlerEnv(aws, { TMPDIR: handlerTmp, AWS_ENDPOINT_URL_S3: endpoint, AWS_MAX_ATTEMPTS: '1' }));
      const item = await ledgerItem(aws, BUCKETS.raw, key);

      const again = await replay({ source: { bucket: BUCKETS.raw, key }, executionArn: `${EXECUTION}-archived` });

      expect(again).toEqual(result);
      expect(proxy.failed).toBe(0);
      expect(await ledgerItem(aws, BUCKETS.raw, key)).toEqual(item);
    } finally {
      await proxy.close();
      processFile = loadHandler('process', handlerEnv(aws, { TMPDIR: handlerTmp }));
    }
  });

  test('the same content under another key is a recorded duplicate: nothing converted or written', async () => {
    const copyKey = 'incoming/again/curva carga 2023 (cópia).csv';
    const before = await listKeys(aws, BUCKETS.processed);

    const duplicate = await ingest(copyKey, body, `${EXECUTION}-copy`);

    expect(duplicate).toEqual({ status: 'duplicate', contentHash: hash, duplicateOf: `s3://${BUCKETS.raw}/${key}?versionId=null` });
    expect(await listKeys(aws, BUCKETS.processed)).toEqual(before);
    expect(await listKeys(aws, BUCKETS.failed)).toEqual([]);
    const item = await ledgerItem(aws, BUCKETS.raw, copyKey);
    expect(item).toMatchObject({ status: 'duplicate', duplicateOf: duplicate.duplicateOf, contentHash: hash, executionArn: `${EXECUTION}-copy` });
    expect(item!.history.map((h) => h.status)).toEqual(['received', 'duplicate']);
    expect(item!.dataset).toBeUndefined();
    expect(JSON.parse(item!.result!)).toEqual(duplicate);
  });
});

describe('rejected rows', () => {
  // CARGA_ENERGIA_2013.csv with one measure made unreadable: that row is rejected, the others go on.
  const original = readFileSync(join(ONS_DATA, 'CARGA_ENERGIA_2013.csv'), 'utf8');
  const lines = original.split('\n');
  const broken = lines[10].replace(/;[^;]*$/, ';não é número');
  const body = Buffer.from([...lines.slice(0, 10), broken, ...lines.slice(11)].join('\n'));
  const key = 'incoming/carga/CARGA_ENERGIA_2013.csv';

  test('go to the failed bucket with their reasons; the counts say so', async () => {
    const result = await ingest(key, body);

    expect(result).toMatchObject({ status: 'processed', dataset: 'carga_energia', rows: 1461, records: 1460, rejected: 1 });
    expect(result.rejectedKey).toBe(`rejected/carga_energia/${outputStem('CARGA_ENERGIA_2013', sourceId(`s3://${BUCKETS.raw}/${key}`))}.rejected.csv`);
    expect(await listKeys(aws, BUCKETS.failed)).toEqual([result.rejectedKey]);
    const report = (await getBytes(aws, BUCKETS.failed, result.rejectedKey!)).toString('utf8');
    expect(report).toContain('não é número');
    expect(report.trim().split('\n')).toHaveLength(2); // header and the one rejected row
    expect(await ledgerItem(aws, BUCKETS.raw, key)).toMatchObject({
      status: 'processed', rejected: 1, outputs: { failedBucket: BUCKETS.failed, rejectedKey: result.rejectedKey },
    });
  });
});

describe('CURVA_CARGA_2021.xlsx: read from the downloaded file by random access', () => {
  const body = readFileSync(join(ONS_DATA, 'CURVA_CARGA_2021.xlsx'));
  // Independent figures of the real file (reference-figures.json).
  const reference = JSON.parse(readFileSync(join(ONS_DATA, 'reference-figures.json'), 'utf8'))['CURVA_CARGA_2021.xlsx'];

  // First: once processed, the same content is a duplicate and not read again.
  test('ONS_XLSX_MAX_EXPANDED_BYTES below the sheet: FileRefused, naming the limit', async () => {
    const key = 'incoming/xlsx-limit/CURVA_CARGA_2021.xlsx';
    await putObject(aws, BUCKETS.raw, key, body);
    const limited: Process = loadHandler('process', handlerEnv(aws, { TMPDIR: handlerTmp, ONS_XLSX_MAX_EXPANDED_BYTES: String(1024 * 1024) }));
    await expect(limited({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION })).rejects.toMatchObject({
      name: 'FileRefused', message: expect.stringMatching(/declare \d+ bytes uncompressed, over the limit of 1048576 bytes: refused as a possible zip bomb/),
    });
    // The environment of the other tests back (the handlers read it on every call).
    processFile = loadHandler('process', handlerEnv(aws, { TMPDIR: handlerTmp }));
  });

  test('processed to the reference figures; the content hash is the whole object\'s', async () => {
    const result = await ingest('incoming/xlsx/CURVA_CARGA_2021.xlsx', body);
    expect(result).toMatchObject({
      status: 'processed',
      contentHash: sha256(body),
      dataset: 'curva_carga',
      rows: reference.rows,
      records: reference.rows,
      rejected: 0,
      series: reference.series,
      start: reference.start,
      end: reference.end,
    });
    let sum = 0;
    let count = 0;
    for (const partKey of result.parquetKeys!) {
      const { header, rows } = await parquetRows(partKey);
      const value = header.indexOf('val_cargaenergiahomwmed');
      for (const r of rows) {
        sum += Number(r[value]);
        count++;
      }
    }
    expect(count).toBe(reference.measures.val_cargaenergiahomwmed.count);
    expect(Math.abs(sum - reference.measures.val_cargaenergiahomwmed.sum) / reference.measures.val_cargaenergiahomwmed.sum).toBeLessThan(1e-9);
  });
});

describe('refused files', () => {
  test('a PDF named .csv: FileRefused with the domain core reason, nothing written, not processed', async () => {
    const key = 'incoming/refused/CURVA_CARGA.csv';
    const pdf = readFileSync(join(ONS_DATA, 'DicionarioDados_CurvaCarga.pdf'));
    await putObject(aws, BUCKETS.raw, key, pdf);
    const processedBefore = await listKeys(aws, BUCKETS.processed);
    const failedBefore = await listKeys(aws, BUCKETS.failed);

    const error = await processFile({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION }).then(() => undefined, (e: Error) => e);

    expect(error).toMatchObject({
      name: 'FileRefused',
      message: `${key} refused: this is a PDF document, not a table of data (documents belong in the knowledge base)`,
    });
    expect(await listKeys(aws, BUCKETS.processed)).toEqual(processedBefore);
    expect(await listKeys(aws, BUCKETS.failed)).toEqual(failedBefore);
    const item = await ledgerItem(aws, BUCKETS.raw, key);
    expect(item).toMatchObject({ status: 'processing', error: { step: 'ProcessFile', errorType: 'FileRefused', reason: error!.message } });
    expect(sha256(await getBytes(aws, BUCKETS.raw, key))).toBe(sha256(pdf));
  });

  test('a CSV whose every row is invalid is refused; its rejected-rows report is not uploaded', async () => {
    const key = 'incoming/refused/CMO_SEMANAL_2013.csv';
    const [header, ...rows] = readFileSync(join(ONS_DATA, 'CMO_SEMANAL_2013.csv'), 'utf8').trim().split('\n');
    const body = Buffer.from([header, ...rows.slice(0, 5).map((r) => r.replace(/;\d{4}-\d\d-\d\d[^;]*/, ';ontem'))].join('\n'));
    await putObject(aws, BUCKETS.raw, key, body);
    const failedBefore = await listKeys(aws, BUCKETS.failed);

    await expect(processFile({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION }))
      .rejects.toMatchObject({ name: 'FileRefused', message: expect.stringContaining('none of the 5 data rows is valid') });
    expect(await listKeys(aws, BUCKETS.failed)).toEqual(failedBefore);
  });

  test('the log has the error type and message, no stack trace', async () => {
    const key = 'incoming/refused/again.csv';
    await putObject(aws, BUCKETS.raw, key, Buffer.from('%PDF-1.4 not a table'));
    await expect(processFile({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION })).rejects.toMatchObject({ name: 'FileRefused' });
    const lines = consoleError.mock.calls.map(([line]) => String(line));
    expect(lines.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ level: 'ERROR', message: 'processing failed', errorType: 'FileRefused' })]);
    expect(lines.join('\n')).not.toMatch(/\n\s+at |"stack"/);
  });
});

describe('other failures keep their own name (retried by the state machine)', () => {
  test('a missing object: NoSuchKey', async () => {
    await expect(processFile({ source: { bucket: BUCKETS.raw, key: 'incoming/missing.csv' }, executionArn: EXECUTION }))
      .rejects.toMatchObject({ name: 'NoSuchKey' });
    expect(await ledgerItem(aws, BUCKETS.raw, 'incoming/missing.csv')).toBeUndefined();
  });

  test('a missing environment setting: ConfigurationError', async () => {
    const handler = loadHandler<ProcessInput, ProcessResult>('process', handlerEnv(aws, { ONS_PROCESSED_BUCKET: undefined }));
    await expect(handler({ source: { bucket: BUCKETS.raw, key: 'incoming/curva-carga/CURVA_CARGA_2023.csv' }, executionArn: EXECUTION }))
      .rejects.toMatchObject({ name: 'ConfigurationError', message: 'ONS_PROCESSED_BUCKET is not set' });
  });
});
