import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
// @ts-expect-error TS1479: ESM-only package, transpiled by ts-jest.
import { parquetMetadata, parquetSchema } from 'hyparquet';
import { DataLake, PlatformStage } from '../../src';
import { CATALOG } from '../../src/ons/catalog';
import { convertFile, ConvertResult } from '../../src/ons/convert';
import { resolveDataset } from '../../src/ons/detect';
import {
  ADDED_COLUMNS, columnClash, dataCardDataset, dataCardKey, DEFAULT_PREFIXES, identityDimensions, isOutputOf, outputStem, parsePartKey, partitionPath,
  processedColumns, quarantineKey, rejectedRowsKey, RESERVED_COLUMN_NAMES, sourceId, sourceIdentity,
} from '../../src/ons/layout';
import { localFile } from '../../src/ons/local-file';
import { partLayout } from '../../src/timeseries/runtime/layout';
import { ENV } from '../helpers';
import { ONS_DATA } from '../ons-data';

/** The Glue type of a column of the processed Parquet, as the file itself declares it. */
function glueType(element: { type?: string; logical_type?: { type: string } }): string {
  if (element.type === 'INT64' && element.logical_type?.type === 'TIMESTAMP') return 'timestamp';
  if (element.type === 'BYTE_ARRAY' && element.logical_type?.type === 'STRING') return 'string';
  if (element.type === 'DOUBLE') return 'double';
  if (element.type === 'INT32' && element.logical_type === undefined) return 'int';
  throw new Error(`no Glue type for ${JSON.stringify(element)}`);
}

function parquetColumns(path: string): Array<{ name: string; type: string }> {
  return parquetMetadata(readFileSync(path)).schema.slice(1).map((e: any) => ({ name: e.name, type: glueType(e) }));
}

const app = new App();
const stack = new Stack(app, 'Layout', { env: ENV });
const lake = new DataLake(stack, 'Lake', { stage: PlatformStage.DEV });
const tables = Object.values(Template.fromStack(stack).findResources('AWS::Glue::Table'))
  .map((t: any) => t.Properties.TableInput);
const table = (dataset: string) => tables.find((t) => t.Name === dataset)!;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ons-layout-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the default prefixes', () => {
  test('are the DataLake defaults, and the @default values its props document', () => {
    expect({
      processedData: lake.processedDataPrefix,
      documents: lake.documentsPrefix,
      dataCards: lake.dataCardsPrefix,
      queryResults: lake.queryResultsPrefix,
      rejectedRows: lake.rejectedRowsPrefix,
      quarantine: lake.quarantinePrefix,
      staging: lake.stagingPrefix,
      reports: lake.reportsPrefix,
    }).toEqual(DEFAULT_PREFIXES);
    const props = readFileSync(join(__dirname, '..', '..', 'src', 'lake', 'data-lake-props.ts'), 'utf8');
    const documented = (prop: string) => new RegExp(`@default '([^']*)'\\s*\\*/\\s*readonly ${prop}\\?`).exec(props)?.[1];
    expect({
      processedData: documented('processedDataPrefix'),
      documents: documented('documentsPrefix'),
      dataCards: documented('dataCardsPrefix'),
      queryResults: documented('queryResultsPrefix'),
      rejectedRows: documented('rejectedRowsPrefix'),
      quarantine: documented('quarantinePrefix'),
      staging: documented('stagingPrefix'),
      reports: documented('reportsPrefix'),
    }).toEqual(DEFAULT_PREFIXES);
  });
});

describe.each([
  ['CARGA_ENERGIA_2013.csv', 'carga_energia'],
  ['CMO_SEMIHORARIO_2022.csv', 'cmo_semihorario'],
  ['BALANCO_ENERGIA_SUBSISTEMA_2023.csv', 'balanco_energia_subsistema'],
  ['EAR_DIARIO_SUBSISTEMA_2022.csv', 'ear_diario_subsistema'],
])('%s converted as the processor converts it', (file, dataset) => {
  let result: ConvertResult;
  beforeAll(async () => {
    result = await convertFile(file, localFile(join(ONS_DATA, file)), { outDir: join(dir, dataset) });
  });

  test('the Glue table of DataLake has exactly the columns, in order and type, the Parquet writer wrote', () => {
    const glue = table(dataset).StorageDescriptor.Columns.map((c: any) => ({ name: c.Name, type: c.Type }));
    expect(result.parquet.length).toBeGreaterThan(0);
    for (const part of result.parquet) expect(parquetColumns(part.path)).toEqual(glue);
    // The platform's columns frame the dataset's own: time and local time first, the source last.
    expect(glue.map((c: any) => c.name).slice(0, 2)).toEqual([ADDED_COLUMNS.time, ADDED_COLUMNS.localTime]);
    expect(glue.map((c: any) => c.name).slice(-4))
      .toEqual([ADDED_COLUMNS.sourceKey, ADDED_COLUMNS.sourceVersion, ADDED_COLUMNS.sourceTime, ADDED_COLUMNS.sourceRow]);
  });

  test('every part is where the table projects its partition, and parses back to it', () => {
    const template = table(dataset).Parameters['storage.location.template'];
    for (const part of result.parquet) {
      expect(parsePartKey(part.relativePath)).toEqual({ dataset, year: part.year, month: part.month });
      expect(part.relativePath.startsWith(`${DEFAULT_PREFIXES.processedData}${partitionPath(dataset, part.year, part.month)}`)).toBe(true);
      // The template is an Fn::Join around the bucket name; its text after the bucket is the layout's path.
      const tail = JSON.stringify(template).match(/\/(processed\/dataset=[^"]+)"/)?.[1];
      expect(tail?.replace('${year}', part.year).replace('${month}', part.month)).toBe(`${DEFAULT_PREFIXES.processedData}${partitionPath(dataset, part.year, part.month)}`);
    }
  });

  test('the card and rejected keys are the layout\'s, and the knowledge query reads the dataset back from the card key', () => {
    // Converted with the file name as the source key: the stem is `<name>.<sourceId(file name)>`.
    const stem = outputStem(file.replace(/\.csv$/, ''), sourceId(sourceIdentity(file)));
    expect(stem).toMatch(/^[A-Z_0-9]+\.[0-9a-f]{16}$/);
    expect(result.card).toBe(dataCardKey(DEFAULT_PREFIXES.dataCards, dataset, stem));
    expect(result.card).toBe(`knowledge/cards/${dataset}/${stem}.md`);
    expect(dataCardDataset(result.card)).toBe(dataset);
    expect(rejectedRowsKey(DEFAULT_PREFIXES.rejectedRows, dataset, stem)).toBe(`rejected/${dataset}/${stem}.rejected.csv`);
    for (const part of result.parquet) expect(isOutputOf(part.relativePath.split('/').pop()!, stem)).toBe(true);
    expect(isOutputOf(result.card.split('/').pop()!, stem)).toBe(true);
    expect(isOutputOf(`${stem}.md.metadata.json`, stem) && isOutputOf(`${stem}.rejected.csv`, stem) && isOutputOf(`${stem}-2.parquet`, stem)).toBe(true);
  });

  test('the loader finds the identity dimensions the processor used in the Parquet it wrote', () => {
    const columns = parquetSchema(parquetMetadata(readFileSync(result.parquet[0].path))).children
      .map((c: any) => ({ name: c.element.name, type: c.element.type }));
    const def = CATALOG.find((d) => d.id === dataset)!;
    expect(partLayout(dataset, columns).dimensions).toEqual(def.dimensions);
    expect(identityDimensions(def, columns.map((c: { name: string }) => c.name))).toEqual(['id_subsistema']);
  });
});

describe('the identity rule', () => {
  test('a catalog dataset: its identity dimensions, with the fallback column where one is missing; names never identify', () => {
    const usinas = CATALOG.find((d) => d.id === 'geracao_usina_2')!;
    expect(identityDimensions(usinas, ['din_instante', 'id_ons', 'nom_usina', 'val_geracao'])).toEqual(['id_ons']);
    expect(identityDimensions(usinas, ['din_instante', 'nom_usina', 'val_geracao'])).toEqual(['nom_usina']);
    const carga = CATALOG.find((d) => d.id === 'carga_energia')!;
    expect(identityDimensions(carga, ['id_subsistema', 'nom_subsistema', 'din_instante', 'val_cargaenergiamwmed'])).toEqual(['id_subsistema']);
  });

  test('a file outside the catalog (real rows under convention names): its id_*/cod_* columns, for the processor and the loader alike', async () => {
    const rows = readFileSync(join(ONS_DATA, 'CARGA_ENERGIA_2013.csv'), 'utf8').split('\n').slice(1).join('\n');
    const file = join(dir, 'RESTRICAO_EOLICA_2013.csv');
    writeFileSync(file, `cod_area;nom_area;din_instante;val_restricao\n${rows}`);
    const header = ['cod_area', 'nom_area', 'din_instante', 'val_restricao'];
    const detected = resolveDataset('RESTRICAO_EOLICA_2013.csv', header);
    expect(detected.source).toBe('convention');
    expect(detected.dimensions.map((d) => d.name)).toEqual(['cod_area']);
    expect(identityDimensions(undefined, header)).toEqual(['cod_area']);

    const result = await convertFile('RESTRICAO_EOLICA_2013.csv', localFile(file), { outDir: join(dir, 'convention') });
    expect(result.summary.dataset).toBe('restricao_eolica');
    const columns = parquetSchema(parquetMetadata(readFileSync(result.parquet[0].path))).children
      .map((c: any) => ({ name: c.element.name, type: c.element.type }));
    expect(partLayout('restricao_eolica', columns)).toEqual({ dimensions: ['cod_area'], measures: ['val_restricao'] });
    expect(parquetColumns(result.parquet[0].path).map((c) => c.name))
      .toEqual(processedColumns({ dimensions: ['cod_area'], labels: ['nom_area'], measures: ['val_restricao'] }).map((c) => c.name));
  });
});

describe('keys and columns', () => {
  test('a quarantined copy goes under the UTC day it was quarantined', () => {
    expect(quarantineKey('quarantine/', new Date('2024-03-01T02:30:00Z'), 'raw/x.csv')).toBe('quarantine/2024/03/01/raw/x.csv');
  });

  test('a dataset column may not take a name the platform adds or partitions by', () => {
    expect(columnClash(processedColumns({ dimensions: ['year'], labels: [], measures: ['val_x'] }))).toBe('year');
    expect(columnClash(processedColumns({ dimensions: [], labels: ['source_key'], measures: ['val_x'] }))).toBe('source_key');
    expect(columnClash(processedColumns({ dimensions: ['id_a'], labels: ['nom_a'], measures: ['val_a', 'id_a'] }))).toBe('id_a');
    expect(columnClash(processedColumns({ dimensions: ['id_a'], labels: ['nom_a'], measures: ['val_a'] }))).toBeUndefined();
    expect(RESERVED_COLUMN_NAMES).toEqual(['time', 'local_time', 'source_key', 'source_version', 'source_time', 'source_row', 'dataset', 'year', 'month']);
  });
});

describe('outputs are named after the source, not the content', () => {
  test('the identity is the ledger pk for an object, the key alone for a local file; same file name, other folder: another stem', () => {
    expect(sourceIdentity('ons/CURVA_CARGA_2023.csv', 'raw')).toBe('s3://raw/ons/CURVA_CARGA_2023.csv');
    expect(sourceIdentity('CURVA_CARGA_2023.csv')).toBe('CURVA_CARGA_2023.csv');
    const a = outputStem('CURVA_CARGA_2023', sourceId('s3://raw/ons/CURVA_CARGA_2023.csv'));
    const b = outputStem('CURVA_CARGA_2023', sourceId('s3://raw/mirror/CURVA_CARGA_2023.csv'));
    expect(a).not.toBe(b);
    expect(sourceId('s3://raw/ons/CURVA_CARGA_2023.csv')).toBe(sourceId('s3://raw/ons/CURVA_CARGA_2023.csv'));
  });

  test('isOutputOf knows a source\'s files, and neither another source\'s nor the content-hash names of earlier releases', () => {
    const stem = outputStem('CURVA_CARGA_2023', '0123456789abcdef');
    for (const f of [`${stem}.parquet`, `${stem}-3.parquet`, `${stem}.md`, `${stem}.md.metadata.json`, `${stem}.rejected.csv`]) {
      expect(isOutputOf(f, stem)).toBe(true);
    }
    for (const f of ['CURVA_CARGA_2023-0123456789abcdef.parquet', 'CURVA_CARGA_2023.md', `${stem}.parquet.partial`,
      `${outputStem('CURVA_CARGA_2023', 'fedcba9876543210')}.parquet`, `${stem}0.parquet`]) {
      expect(isOutputOf(f, stem)).toBe(false);
    }
  });
});
