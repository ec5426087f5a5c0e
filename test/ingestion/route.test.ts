import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { strToU8, unzipSync } from 'fflate';
import { IngestionEnv, RouteResult } from '../../src/ingestion/contract';
import { StepInput } from '../../src/ledger/contract';
import { XLSX_CSV_BYTES_PER_EXPANDED_BYTE } from '../../src/ons/readers/xlsx';
import { BUCKETS, EXECUTION, TABLE, handlerEnv, ledgerItem, LocalAws, loadHandler, putObject, restoreEnv, startLocalAws } from '../local-aws';
import { deflated, padded, zip64 } from '../ons/zip64';
import { ONS_DATA } from '../ons-data';
import { CapturedOutput, captureOutput } from '../runtime/output';

/** The bundled router against s3rver and dynalite: decisions by extension and size, and the ledger's `received`. */

type Route = (event: StepInput) => Promise<RouteResult>;

let aws: LocalAws;
let output: CapturedOutput;
let consoleLog: jest.SpyInstance;
const CSV = readFileSync(join(ONS_DATA, 'CARGA_ENERGIA_2013.csv'));

beforeAll(async () => {
  aws = await startLocalAws();
});

afterAll(async () => {
  restoreEnv();
  await aws?.close();
});

beforeEach(() => {
  output = captureOutput();
  consoleLog = output.log;
});

afterEach(() => {
  output.restore();
  restoreEnv();
});

function router(overrides: Record<string, string | undefined> = {}): Route {
  return loadHandler('route', handlerEnv(aws, overrides));
}

async function route(key: string, body: Buffer, overrides: Record<string, string | undefined> = {}): Promise<RouteResult> {
  await putObject(aws, BUCKETS.raw, key, body);
  return router(overrides)({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION });
}

describe('decisions', () => {
  test('a small CSV goes to the processor Lambda; size from HeadObject; the ledger says received', async () => {
    const result = await route('incoming/carga/CARGA_ENERGIA_2013.csv', CSV);

    expect(result).toEqual({
      action: 'process',
      source: { bucket: BUCKETS.raw, key: 'incoming/carga/CARGA_ENERGIA_2013.csv', size: CSV.length },
      ledgerKey: { pk: `s3://${BUCKETS.raw}/incoming/carga/CARGA_ENERGIA_2013.csv`, sk: 'null' },
    });
    const item = await ledgerItem(aws, BUCKETS.raw, 'incoming/carga/CARGA_ENERGIA_2013.csv');
    expect(item).toMatchObject({
      pk: `s3://${BUCKETS.raw}/incoming/carga/CARGA_ENERGIA_2013.csv`,
      sk: 'null',
      bucket: BUCKETS.raw,
      key: 'incoming/carga/CARGA_ENERGIA_2013.csv',
      size: CSV.length,
      status: 'received',
      route: 'process',
      executionArn: EXECUTION,
    });
    expect(item!.history.map((h) => h.status)).toEqual(['received']);
    expect(item!.receivedAt).toBe(item!.updatedAt);
  });

  test('a CSV above ONS_LAMBDA_MAX_BYTES goes to Batch; exactly at the threshold stays on Lambda', async () => {
    const large = await route('incoming/large/CARGA_ENERGIA_2013.csv', CSV, { [IngestionEnv.LAMBDA_MAX_BYTES]: String(CSV.length - 1) });
    const exact = await route('incoming/exact/CARGA_ENERGIA_2013.csv', CSV, { [IngestionEnv.LAMBDA_MAX_BYTES]: String(CSV.length) });

    expect(large.action).toBe('processLarge');
    expect(exact.action).toBe('process');
  });

  test('the size that counts is the stored one, not the size the event claimed', async () => {
    await putObject(aws, BUCKETS.raw, 'incoming/claimed/CARGA_ENERGIA_2013.csv', CSV);
    const result = await router({ [IngestionEnv.LAMBDA_MAX_BYTES]: String(CSV.length - 1) })({
      source: { bucket: BUCKETS.raw, key: 'incoming/claimed/CARGA_ENERGIA_2013.csv', size: 10 }, executionArn: EXECUTION,
    });
    expect(result).toMatchObject({ action: 'processLarge', source: { size: CSV.length } });
  });

  test('XLSX is tabular, upper-case extensions too', async () => {
    const xlsx = readFileSync(join(ONS_DATA, 'CURVA_CARGA_2021.xlsx'));
    expect((await route('incoming/CURVA_CARGA_2021.xlsx', xlsx)).action).toBe('process');
    expect((await route('incoming/CURVA_CARGA_2021.XLSX', xlsx)).action).toBe('process');
  });

  test('a PDF is a document for the knowledge base', async () => {
    const pdf = readFileSync(join(ONS_DATA, 'DicionarioDados_CurvaCarga.pdf'));
    const result = await route('docs/DicionarioDados_CurvaCarga.pdf', pdf);
    expect(result).toEqual({
      action: 'document',
      source: { bucket: BUCKETS.raw, key: 'docs/DicionarioDados_CurvaCarga.pdf', size: pdf.length },
      ledgerKey: { pk: `s3://${BUCKETS.raw}/docs/DicionarioDados_CurvaCarga.pdf`, sk: 'null' },
    });
    expect((await ledgerItem(aws, BUCKETS.raw, 'docs/DicionarioDados_CurvaCarga.pdf'))).toMatchObject({ status: 'received', route: 'document' });
  });

  test('a .txt file is a document for the knowledge base (the default lists, and the router\'s fallback without them)', async () => {
    const text = Buffer.from('Notas metodológicas da carga de energia.\nValores em MWmed; o subsistema SE inclui o Centro-Oeste.\n', 'utf8');
    const configured = await route('docs/notas-carga.txt', text);
    const fallback = await route('docs/NOTAS.TXT', text, { [IngestionEnv.TABULAR_EXTENSIONS]: undefined, [IngestionEnv.DOCUMENT_EXTENSIONS]: undefined });

    expect(configured).toMatchObject({ action: 'document', source: { key: 'docs/notas-carga.txt', size: text.length } });
    expect(fallback).toMatchObject({ action: 'document', source: { key: 'docs/NOTAS.TXT' } });
    expect(await ledgerItem(aws, BUCKETS.raw, 'docs/notas-carga.txt')).toMatchObject({ status: 'received', route: 'document' });
  });

  test('a CSV export named .txt is tabular when txt is in the tabular list', async () => {
    const result = await route('incoming/CARGA_ENERGIA_2013.txt', CSV, { [IngestionEnv.TABULAR_EXTENSIONS]: 'csv,txt', [IngestionEnv.DOCUMENT_EXTENSIONS]: 'pdf' });
    expect(result.action).toBe('process');
  });

  test.each([
    ['incoming/setup.exe', "'.exe' files are not supported"],
    ['incoming/CURVA_CARGA_2023.zip', "'.zip' files are not supported"],
    ['incoming/README', 'the file name has no extension'],
  ])('%s goes to quarantine with a reason naming the expected extensions', async (key, found) => {
    const result = await route(key, Buffer.from('MZ not data'));

    expect(result.action).toBe('quarantine');
    expect(result.reason).toBe(`${found}: expected a tabular file (.csv, .xlsx, .parquet) or a document (.pdf, .docx, .md, .txt, .html, .htm)`);
    expect(await ledgerItem(aws, BUCKETS.raw, key)).toMatchObject({ status: 'received', route: 'quarantine', routeReason: result.reason });
  });

  test('the extension lists come from the environment', async () => {
    const result = await route('incoming/notes.md', Buffer.from('# notes'), { [IngestionEnv.DOCUMENT_EXTENSIONS]: 'pdf' });
    expect(result).toMatchObject({ action: 'quarantine', reason: "'.md' files are not supported: expected a tabular file (.csv, .xlsx, .parquet) or a document (.pdf)" });
  });

  test('an empty object is quarantined', async () => {
    const result = await route('incoming/EMPTY.csv', Buffer.alloc(0));
    expect(result).toMatchObject({ action: 'quarantine', reason: 'the object is empty (0 bytes)' });
  });

  test('an object deleted before the router ran is quarantined, not an error', async () => {
    const result = await router()({ source: { bucket: BUCKETS.raw, key: 'incoming/gone.csv' }, executionArn: EXECUTION });
    expect(result).toEqual({
      action: 'quarantine',
      reason: 'the object no longer exists',
      source: { bucket: BUCKETS.raw, key: 'incoming/gone.csv' },
      ledgerKey: { pk: `s3://${BUCKETS.raw}/incoming/gone.csv`, sk: 'null' },
    });
  });

  test('ONS_LAMBDA_MAX_BYTES missing is a configuration error, not a routing decision', async () => {
    await putObject(aws, BUCKETS.raw, 'incoming/config/CARGA_ENERGIA_2013.csv', CSV);
    const handler = router({ [IngestionEnv.LAMBDA_MAX_BYTES]: undefined });
    await expect(handler({ source: { bucket: BUCKETS.raw, key: 'incoming/config/CARGA_ENERGIA_2013.csv' }, executionArn: EXECUTION }))
      .rejects.toMatchObject({ name: 'ConfigurationError', message: 'ONS_LAMBDA_MAX_BYTES is not set' });
  });
});

describe('a pipeline without large-file processing (ONS_ROUTES without processLarge)', () => {
  const BATCH_OFF = 'process,document,quarantine';

  test('a CSV above the threshold is quarantined at Route with how to load it; the ledger records the reason', async () => {
    const key = 'incoming/no-batch/CARGA_ENERGIA_2013.csv';
    const result = await route(key, CSV, { [IngestionEnv.LAMBDA_MAX_BYTES]: String(CSV.length - 1), [IngestionEnv.ROUTES]: BATCH_OFF });

    expect(result.action).toBe('quarantine');
    expect(result.reason).toBe(`the file is larger than ${CSV.length - 1} bytes, the most the processor function takes, and this pipeline has no `
      + 'large-file processing (largeFileProcessing.enabled is false): raise lambdaMaxFileSize (up to 3072 MiB) or enable largeFileProcessing, '
      + `then run the backfill with this key as its prefix ({ "prefix": "${key}" })`);
    expect(await ledgerItem(aws, BUCKETS.raw, key)).toMatchObject({ status: 'received', route: 'quarantine', routeReason: result.reason });
  });

  test('files within the threshold and documents are routed as usual', async () => {
    const small = await route('incoming/no-batch/small.csv', CSV, { [IngestionEnv.ROUTES]: BATCH_OFF });
    const pdf = await route('incoming/no-batch/notes.md', Buffer.from('# notes'), { [IngestionEnv.ROUTES]: BATCH_OFF });
    expect([small.action, pdf.action]).toEqual(['process', 'document']);
  });

  test('any action the state machine lacks is answered as quarantine, naming it', async () => {
    const result = await route('incoming/no-documents/notes.md', Buffer.from('# notes'), { [IngestionEnv.ROUTES]: 'process,quarantine' });
    expect(result).toMatchObject({
      action: 'quarantine',
      reason: "the ingestion state machine has no 'document' route (ONS_ROUTES=process,quarantine)",
    });
  });

  test('ONS_ROUTES missing is a configuration error, not a routing decision', async () => {
    await putObject(aws, BUCKETS.raw, 'incoming/config/routes.csv', CSV);
    await expect(router({ [IngestionEnv.ROUTES]: undefined })({ source: { bucket: BUCKETS.raw, key: 'incoming/config/routes.csv' }, executionArn: EXECUTION }))
      .rejects.toMatchObject({ name: 'ConfigurationError', message: 'ONS_ROUTES is not set' });
  });
});

describe('workbooks: sized by what their reading expands, from the zip directory', () => {
  const XLSX = readFileSync(join(ONS_DATA, 'CURVA_CARGA_2021.xlsx'));
  const parts = unzipSync(new Uint8Array(XLSX));
  // Independently of the reader: the parts it inflates for the first sheet, as fflate unzips them.
  const READ = ['xl/workbook.xml', 'xl/_rels/workbook.xml.rels', 'xl/worksheets/sheet1.xml', 'xl/sharedStrings.xml', 'xl/styles.xml'];
  const expanded = READ.reduce((n, name) => n + parts[name].length, 0);
  const csvEquivalent = Math.ceil(expanded * XLSX_CSV_BYTES_PER_EXPANDED_BYTE);
  const TWO_GIB = String(2 * 1024 ** 3);

  test('the real workbook goes to Batch when its expanded parts weigh more than the threshold, though its file is smaller', async () => {
    expect(XLSX.length).toBeLessThan(csvEquivalent - 1);
    const env = (threshold: number) => ({ [IngestionEnv.LAMBDA_MAX_BYTES]: String(threshold), [IngestionEnv.XLSX_MAX_EXPANDED_BYTES]: TWO_GIB });
    expect((await route('incoming/wb/exact/CURVA_CARGA_2021.xlsx', XLSX, env(csvEquivalent))).action).toBe('process');
    expect((await route('incoming/wb/large/CURVA_CARGA_2021.xlsx', XLSX, env(csvEquivalent - 1))).action).toBe('processLarge');
  });

  test('a workbook over maxXlsxExpandedSize is quarantined at once, the reason naming the prop', async () => {
    const result = await route('incoming/wb/limit/CURVA_CARGA_2021.xlsx', XLSX, { [IngestionEnv.XLSX_MAX_EXPANDED_BYTES]: String(expanded - 1) });
    const reason = `the workbook's parts read for sheet 'Sheet1' (${READ.join(', ')}) declare ${expanded} bytes uncompressed, over the limit of `
      + `${expanded - 1} bytes: refused as a possible zip bomb; if the file is genuine, raise maxXlsxExpandedSize (IngestionPipeline, `
      + 'or the ingestion options of OnsDataPlatform) and backfill it';
    expect(result).toMatchObject({ action: 'quarantine', reason });
    expect(await ledgerItem(aws, BUCKETS.raw, 'incoming/wb/limit/CURVA_CARGA_2021.xlsx')).toMatchObject({ route: 'quarantine', routeReason: reason });
    // At the limit exactly, it is processed.
    expect((await route('incoming/wb/at-limit/CURVA_CARGA_2021.xlsx', XLSX, { [IngestionEnv.XLSX_MAX_EXPANDED_BYTES]: String(expanded) })).action)
      .toBe('process');
  });

  test('a ZIP64 workbook whose real sheet is padded to 5 GiB: quarantined under 2 GiB, to Batch under 8 GiB', async () => {
    const sheet = new TextDecoder().decode(parts['xl/worksheets/sheet1.xml']);
    const cut = sheet.indexOf('</sheetData>');
    const big = padded('xl/worksheets/sheet1.xml', strToU8(sheet.slice(0, cut)), 5 * 1024, strToU8(sheet.slice(cut)));
    const others = Object.entries(parts).filter(([name]) => name !== 'xl/worksheets/sheet1.xml').map(([name, bytes]) => deflated(name, bytes));
    const body = Buffer.concat(zip64([...others, big]));
    expect(body.length).toBeLessThan(8 * 1024 * 1024);
    const refused = await route('incoming/wb/zip64/CURVA_CARGA_2021.xlsx', body, { [IngestionEnv.XLSX_MAX_EXPANDED_BYTES]: TWO_GIB });
    expect(refused.action).toBe('quarantine');
    expect(refused.reason).toMatch(new RegExp(`declare ${expanded + 5 * 1024 ** 3} bytes uncompressed, over the limit of ${TWO_GIB} bytes.*maxXlsxExpandedSize`));
    const raised = await route('incoming/wb/zip64-raised/CURVA_CARGA_2021.xlsx', body, { [IngestionEnv.XLSX_MAX_EXPANDED_BYTES]: String(8 * 1024 ** 3) });
    expect(raised.action).toBe('processLarge');
  });

  test('a truncated workbook is quarantined with the reason the processor would give', async () => {
    const result = await route('incoming/wb/cut/CURVA_CARGA_2021.xlsx', XLSX.subarray(0, Math.floor(XLSX.length / 2)));
    expect(result).toMatchObject({
      action: 'quarantine',
      reason: 'the processor would refuse it: not a readable XLSX: the zip archive is damaged or truncated (no end of central directory record)',
    });
  });

  test('the content decides, as in the processor: a CSV named .xlsx is sized as a CSV', async () => {
    const result = await route('incoming/wb/csv/CARGA_ENERGIA_2013.xlsx', CSV, { [IngestionEnv.XLSX_MAX_EXPANDED_BYTES]: '1' });
    expect(result.action).toBe('process');
  });
});

describe('keys from S3 EventBridge events', () => {
  test('a URL-encoded key (space as +, UTF-8 as %XX) is decoded before S3 sees it', async () => {
    const body = readFileSync(join(ONS_DATA, 'Temporal Geração de Energia.csv'));
    await putObject(aws, BUCKETS.raw, 'incoming/Temporal Geração de Energia.csv', body);

    const result = await router()({
      source: { bucket: BUCKETS.raw, key: 'incoming/Temporal+Gera%C3%A7%C3%A3o+de+Energia.csv', keyUrlEncoded: true }, executionArn: EXECUTION,
    });

    expect(result).toEqual({
      action: 'process',
      source: { bucket: BUCKETS.raw, key: 'incoming/Temporal Geração de Energia.csv', size: body.length },
      ledgerKey: { pk: `s3://${BUCKETS.raw}/incoming/Temporal Geração de Energia.csv`, sk: 'null' },
    });
    expect(await ledgerItem(aws, BUCKETS.raw, 'incoming/Temporal Geração de Energia.csv')).toMatchObject({ status: 'received' });
  });

  test('a real + in a key arrives as %2B and stays a +', async () => {
    await putObject(aws, BUCKETS.raw, 'incoming/a+b c.csv', CSV);
    const result = await router()({ source: { bucket: BUCKETS.raw, key: 'incoming/a%2Bb+c.csv', keyUrlEncoded: true }, executionArn: EXECUTION });
    expect(result.source.key).toBe('incoming/a+b c.csv');
    expect(result.action).toBe('process');
  });

  test('a decoded key (backfill, no flag) is used as is, + included', async () => {
    await putObject(aws, BUCKETS.raw, 'incoming/x+y.csv', CSV);
    const result = await router()({ source: { bucket: BUCKETS.raw, key: 'incoming/x+y.csv' }, executionArn: EXECUTION });
    expect(result).toMatchObject({ action: 'process', source: { key: 'incoming/x+y.csv', size: CSV.length } });
  });
});

describe('ledger', () => {
  test('an event delivered again after processing does not move the object back to received', async () => {
    const key = 'incoming/settled/CARGA_ENERGIA_2013.csv';
    await route(key, CSV);
    await aws.ddb.send(new UpdateCommand({
      TableName: TABLE,
      Key: { pk: `s3://${BUCKETS.raw}/${key}`, sk: 'null' },
      UpdateExpression: 'SET #s = :s',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':s': 'processed' },
    }));

    const again = await router()({ source: { bucket: BUCKETS.raw, key }, executionArn: `${EXECUTION}-again` });

    expect(again.action).toBe('process');
    const item = await ledgerItem(aws, BUCKETS.raw, key);
    expect(item).toMatchObject({ status: 'processed', executionArn: EXECUTION });
    expect(item!.history.map((h) => h.status)).toEqual(['received']);
  });

  test('the structured log names the decision', async () => {
    await route('incoming/log/setup.exe', Buffer.from('MZ'));
    const lines = consoleLog.mock.calls.map(([line]) => JSON.parse(String(line)));
    expect(lines).toEqual([expect.objectContaining({ level: 'INFO', message: 'routed', action: 'quarantine', source: expect.objectContaining({ key: 'incoming/log/setup.exe' }) })]);
  });

  test('a malformed input fails with a reason', async () => {
    await expect(router()({ source: { bucket: BUCKETS.raw } } as unknown as StepInput)).rejects.toThrow('input.source must have a bucket and a key');
  });
});
