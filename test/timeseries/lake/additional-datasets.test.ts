import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { LocalAthena } from './local-athena';
import { DataLake, IngestionLedger, LakeStore, PlatformStage } from '../../../src';
import { LakeQueryEnv, TimeSeriesEnv, TimeSeriesResponse } from '../../../src/timeseries/contract';
import { ENV } from '../../helpers';
import { BUCKETS, getBytes, handlerEnv, ingester, LocalAws, loadHandler, restoreEnv, startLocalAws } from '../../local-aws';
import { ONS_DATA } from '../../ons-data';
import { event } from '../query-contract';

/**
 * A dataset outside the catalog, given to the lake as `additionalDatasets`, is queryable through GET /timeseries/{dataset}:
 * a real ONS file (CMO_SEMANAL_2013.csv without its weekly-average column, so it matches no catalog dataset and is read by
 * the ONS naming convention) through the bundled router and processor into the local processed bucket, its Parquet under
 * the local Athena (DuckDB) with the catalog of the synthesized lake, and the bundled lake query handler with the
 * environment the synthesized LakeStore gives its function.
 */

const DATASET = 'cmo_patamar_semanal';
const FILE = 'CMO_PATAMAR_SEMANAL_2013.csv';
const RS_MWH = 'R$/MWh';

const stack = new Stack(new App(), 'Lake', { env: ENV });
const lake = new DataLake(stack, 'Lake', {
  stage: PlatformStage.PROD,
  additionalDatasets: [{
    datasetId: DATASET,
    dimensions: ['id_subsistema'],
    labels: ['nom_subsistema'],
    measures: ['val_cmoleve', 'val_cmomedia', 'val_cmopesada'].map((name) => ({ name, unit: RS_MWH })),
  }],
});
const ledger = new IngestionLedger(stack, 'Ledger', { stage: PlatformStage.PROD, encryptionKey: lake.encryptionKey });
new LakeStore(stack, 'TimeSeries', { stage: PlatformStage.PROD, dataLake: lake, ledger });
const template = Template.fromStack(stack);

/** The query function's environment as synthesized (the served tables and datasets). */
function synthesizedEnv(): Record<string, string> {
  const fns = Object.values(template.findResources('AWS::Lambda::Function'))
    .filter((f: any) => /time-series queries \(Athena over the lake\)/.test(f.Properties.Description));
  expect(fns).toHaveLength(1);
  const variables = (fns[0] as any).Properties.Environment.Variables as Record<string, unknown>;
  return Object.fromEntries([TimeSeriesEnv.TABLES, TimeSeriesEnv.DATASETS, TimeSeriesEnv.MAX_POINTS]
    .filter((k) => typeof variables[k] === 'string').map((k) => [k, variables[k] as string]));
}

/** The real file without val_cmomediasemanal: the rows ONS published, as a dataset the catalog does not know. */
function patamarFile(): { csv: Buffer; rows: string[][] } {
  const lines = readFileSync(join(ONS_DATA, 'CMO_SEMANAL_2013.csv'), 'latin1').split(/\r?\n/).filter((l) => l.trim() !== '');
  const cells = lines.map((l) => l.split(';'));
  const drop = cells[0].indexOf('val_cmomediasemanal');
  expect(drop).toBeGreaterThan(0);
  const kept = cells.map((c) => c.filter((_, i) => i !== drop));
  return { csv: Buffer.from(kept.map((c) => c.join(';')).join('\n') + '\n', 'latin1'), rows: kept };
}

const scratch = mkdtempSync(join(tmpdir(), 'lake-additional-'));
const processedDir = join(scratch, 'processed');
const athena = new LocalAthena({ template, processedDir });
let aws: LocalAws;
let query: (dataset: string, q: Record<string, string>) => Promise<{ status: number; body: any }>;
const file = patamarFile();

beforeAll(async () => {
  aws = await startLocalAws();
  const endpoint = await athena.start();
  const ingest = ingester(aws, handlerEnv(aws, { TMPDIR: scratch }));
  const { processed } = await ingest(FILE, file.csv);
  expect(processed.dataset).toBe(DATASET);
  for (const key of processed.parquetKeys ?? []) {
    const target = join(processedDir, key.replace(/^processed\//, ''));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, await getBytes(aws, BUCKETS.processed, key));
  }
  const handler = loadHandler<APIGatewayProxyEvent, APIGatewayProxyResult>('query', handlerEnv(aws, {
    TMPDIR: scratch,
    ...synthesizedEnv(),
    [TimeSeriesEnv.DATABASE]: athena.database,
    [LakeQueryEnv.WORK_GROUP]: athena.workGroup,
    [LakeQueryEnv.ATHENA_ENDPOINT]: endpoint,
    [LakeQueryEnv.POLL_DELAY_MS]: '1',
  }), join(__dirname, '..', '..', '..', 'assets', 'timeseries', 'lake'));
  query = async (dataset, q) => {
    const response = await handler(event(dataset, q));
    return { status: response.statusCode, body: JSON.parse(response.body) };
  };
}, 300_000);

afterAll(async () => {
  restoreEnv();
  await athena.close();
  await aws?.close();
  rmSync(scratch, { recursive: true, force: true });
});

test('the construct tells the query function what the additional dataset holds', () => {
  const env = synthesizedEnv();
  expect(JSON.parse(env[TimeSeriesEnv.TABLES])).toMatchObject({ [DATASET]: `${DATASET}_current` });
  expect(JSON.parse(env[TimeSeriesEnv.DATASETS])).toEqual([{
    id: DATASET,
    dimensions: ['id_subsistema'],
    measures: ['val_cmoleve', 'val_cmomedia', 'val_cmopesada'].map((name) => ({ name, unit: RS_MWH })),
  }]);
});

test('GET /timeseries/{dataset} answers the file\'s points of one subsystem and measure, with the unit given to the lake', async () => {
  const { status, body } = await query(DATASET, { from: '2013-01-01', to: '2014-01-01', measure: 'val_cmopesada', id_subsistema: 'SE' });
  expect(status).toBe(200);
  const r = body as TimeSeriesResponse;
  expect(r).toMatchObject({ dataset: DATASET, measure: 'val_cmopesada', unit: RS_MWH });
  const [header, ...rows] = file.rows;
  const col = (name: string) => header.indexOf(name);
  const expected = rows.filter((c) => c[col('id_subsistema')] === 'SE').map((c) => Number(c[col('val_cmopesada')]));
  expect(expected.length).toBeGreaterThan(40);
  expect(r.points.map((p) => p.value)).toEqual(expected);
  expect(r.points.every((p) => p.dimensions.id_subsistema === 'SE')).toBe(true);
});

test('its measures and dimensions are validated like a catalog dataset\'s', async () => {
  const missing = await query(DATASET, { from: '2013-01-01', to: '2014-01-01' });
  expect(missing).toMatchObject({ status: 400, body: { error: { message: 'measure is required: one of val_cmoleve, val_cmomedia, val_cmopesada' } } });
  const unknown = await query(DATASET, { from: '2013-01-01', to: '2014-01-01', measure: 'val_cmoleve', id_usina: 'X' });
  expect(unknown.status).toBe(400);
  expect((await query('not_served', { from: '2013-01-01', to: '2014-01-01' })).status).toBe(404);
});
