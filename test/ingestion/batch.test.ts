import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IngestionEnv, ProcessInput } from '../../src/ingestion/contract';
import { ProcessResult } from '../../src/ledger/contract';
import { ASSETS, BUCKETS, EXECUTION, handlerEnv, ledgerItem, listKeys, LocalAws, putObject, startLocalAws } from '../local-aws';
import { ONS_DATA } from '../ons-data';

/**
 * The bundled Batch entrypoint run as the bootstrap runs it (`node index.js`, input in ONS_JOB_INPUT; the bootstrap
 * itself is tested in batch-bootstrap.test.ts)
 * against s3rver and dynalite: exit status 0 (processed or duplicate), 2 (refused), 1 (anything else),
 * the result in the ledger item's `result` (what the state machine reads back), JSON logs.
 */

const DIR = join(ASSETS, 'batch', 'entrypoint');
const ENTRYPOINT = join(DIR, 'index.js');

let aws: LocalAws;

/** The job's temp directory (os.tmpdir() reads TMPDIR): every run must leave it empty. */
let jobTmp: string;

beforeAll(async () => {
  if (!existsSync(ENTRYPOINT)) throw new Error(`${ENTRYPOINT} is missing: run \`npx projen bundle\` first`);
  aws = await startLocalAws();
  jobTmp = join(aws.scratch, 'job-tmp');
  mkdirSync(jobTmp);
});

afterEach(() => {
  expect(readdirSync(jobTmp)).toEqual([]);
});

afterAll(async () => {
  await aws?.close();
});

interface Run { code: number | null; stdout: string; stderr: string; logs: Array<Record<string, unknown>> }

/** Runs the entrypoint in a child process with the job environment (asynchronously: the servers live in this process). */
function runJob(input: ProcessInput | string | undefined, env: Record<string, string | undefined> = {}): Promise<Run> {
  const jobEnv: Record<string, string> = {};
  const merged = {
    ...process.env,
    ...handlerEnv(aws),
    TMPDIR: jobTmp,
    [IngestionEnv.JOB_INPUT]: typeof input === 'string' ? input : input && JSON.stringify(input),
    ...env,
  };
  for (const [k, v] of Object.entries(merged)) if (v !== undefined) jobEnv[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ENTRYPOINT], { cwd: DIR, env: jobEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const logs = `${stdout}${stderr}`.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, stdout, stderr, logs });
    });
  });
}

describe('exit status and the ledger result', () => {
  const key = 'incoming/batch/EAR_DIARIO_SUBSISTEMA_2022.csv';
  const body = readFileSync(join(ONS_DATA, 'EAR_DIARIO_SUBSISTEMA_2022.csv'));

  test('processed: exit 0, outputs written, the ledger result parses to the ProcessResult', async () => {
    await putObject(aws, BUCKETS.raw, key, body);

    const run = await runJob({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION });

    expect(run.code).toBe(0);
    const item = await ledgerItem(aws, BUCKETS.raw, key);
    expect(item).toMatchObject({ status: 'processed', dataset: 'ear_diario_subsistema', rows: 1460, records: 1460, executionArn: EXECUTION });
    const result = JSON.parse(item!.result!) as ProcessResult;
    expect(result).toMatchObject({ status: 'processed', dataset: 'ear_diario_subsistema', records: 1460, contentHash: item!.contentHash });
    expect(await listKeys(aws, BUCKETS.processed, 'processed/dataset=ear_diario_subsistema/')).toEqual([...result.parquetKeys!].sort());
    expect(run.logs).toContainEqual(expect.objectContaining({ level: 'INFO', message: 'job done', status: 'processed' }));
  });

  test('the same content under another key: exit 0, a recorded duplicate with its result', async () => {
    const copy = 'incoming/batch/copy of EAR_DIARIO_SUBSISTEMA_2022.csv';
    await putObject(aws, BUCKETS.raw, copy, body);

    const run = await runJob({ source: { bucket: BUCKETS.raw, key: copy }, executionArn: `${EXECUTION}-copy` });

    expect(run.code).toBe(0);
    const item = await ledgerItem(aws, BUCKETS.raw, copy);
    expect(item).toMatchObject({ status: 'duplicate', duplicateOf: `s3://${BUCKETS.raw}/${key}?versionId=null` });
    expect(JSON.parse(item!.result!)).toEqual({ status: 'duplicate', contentHash: item!.contentHash, duplicateOf: item!.duplicateOf });
  });

  test('a refused file: exit 2, the reason logged, nothing written', async () => {
    const refused = 'incoming/batch/not-a-table.csv';
    await putObject(aws, BUCKETS.raw, refused, readFileSync(join(ONS_DATA, 'DicionarioDados_CurvaCarga.pdf')));
    const before = await listKeys(aws, BUCKETS.processed);

    const run = await runJob({ source: { bucket: BUCKETS.raw, key: refused }, executionArn: EXECUTION });

    expect(run.code).toBe(2);
    expect(run.logs).toContainEqual(expect.objectContaining({
      level: 'ERROR', message: 'job failed', errorType: 'FileRefused', errorMessage: expect.stringContaining('this is a PDF document'),
    }));
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/\n\s+at /);
    expect(await listKeys(aws, BUCKETS.processed)).toEqual(before);
    expect((await ledgerItem(aws, BUCKETS.raw, refused))!.result).toBeUndefined();
  });

  test.each([
    ['a missing object', { source: { bucket: BUCKETS.raw, key: 'incoming/batch/missing.csv' }, executionArn: EXECUTION }, 'NoSuchKey'],
    ['no job input', undefined, 'ConfigurationError'],
    ['a job input that is not JSON', '{source:', 'SyntaxError'],
    ['a job input without a key', { source: { bucket: BUCKETS.raw }, executionArn: EXECUTION } as unknown as ProcessInput, 'TypeError'],
  ])('%s: exit 1', async (_, input, errorType) => {
    const run = await runJob(input);
    expect(run.code).toBe(1);
    expect(run.logs).toContainEqual(expect.objectContaining({ level: 'ERROR', message: 'job failed', errorType }));
  });
});

describe('the code asset', () => {
  test('holds the bundle only: the job downloads it as a file asset (no Docker build)', () => {
    expect(readdirSync(DIR)).toEqual(['index.js']);
  });
});
