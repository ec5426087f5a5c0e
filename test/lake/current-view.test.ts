import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { DataLake, PlatformStage } from '../../src';
import { queryCurrentView, viewDefinition } from '../duckdb';
import { ENV } from '../helpers';
import { convertCurvaEditions, curvaEditions } from '../revisions';

/**
 * The `<dataset>_current` views: their definition is read back from the synthesized template (as Athena decodes
 * it) and its SQL run by DuckDB over Parquet the command wrote from the real CURVA_CARGA_2023.csv and an
 * overlapping monthly edition. The expected rows are computed from the files' text (test/revisions.ts).
 */
const stack = new Stack(new App(), 'Lake', { env: ENV });
const lake = new DataLake(stack, 'Lake', { stage: PlatformStage.PROD });
const template = Template.fromStack(stack);

const { rows, february: FEBRUARY } = curvaEditions();

async function convertEditions(yearlyTime: Date, monthlyTime: Date): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), 'ons-current-view-'));
  await convertCurvaEditions(out, yearlyTime, monthlyTime);
  return out;
}

/** The view's SQL in DuckDB, its table being the processed zone read with the Hive partitions, as the Glue table reads it. */
async function current(out: string): Promise<{ count: number; sum: number; duplicates: number; februarySum: number; rawCount: number }> {
  const c = await queryCurrentView(template, join(out, 'processed'), 'curva_carga', {
    rawCount: 'SELECT count(*) FROM curva_carga',
    count: 'SELECT count(*) FROM curva_carga_current',
    sum: 'SELECT sum(val_cargaenergiahomwmed) FROM curva_carga_current',
    duplicates: 'SELECT count(*) FROM (SELECT id_subsistema, time FROM curva_carga_current GROUP BY 1, 2 HAVING count(*) > 1)',
    februarySum: 'SELECT sum(val_cargaenergiahomwmed) FROM curva_carga_current WHERE year = 2023 AND month = 2',
  });
  return { count: c.count, sum: c.sum, duplicates: c.duplicates, februarySum: c.februarySum, rawCount: c.rawCount };
}

const sum = (values: string[][]) => values.reduce((s, r) => s + Number(r[3]), 0);

describe('the <dataset>_current views', () => {
  test('one per dataset, stored as Athena stores a view: the table\'s columns and partitions, with Presto types, in the lake\'s database', () => {
    for (const id of lake.datasetIds) {
      const { view, definition } = viewDefinition(template, `${id}_current`);
      const table = lake.tables[lake.datasetIds.indexOf(id)];
      const tableInput = (table as any).tableInput;
      expect(view.Properties.TableInput).toMatchObject({ TableType: 'VIRTUAL_VIEW', Parameters: { presto_view: 'true' }, ViewExpandedText: '/* Presto View */' });
      const columns = [...tableInput.storageDescriptor.columns, ...tableInput.partitionKeys].map((c: any) => c.name);
      expect(definition.columns.map((c) => c.name)).toEqual(columns);
      expect(view.Properties.TableInput.StorageDescriptor.Columns.map((c: any) => c.Name)).toEqual(columns);
      expect(definition).toMatchObject({ catalog: 'awsdatacatalog', schema: lake.databaseName });
      expect(new Set(definition.columns.map((c) => c.type))).toEqual(new Set(['timestamp(3)', 'varchar', 'double', 'integer']));
      expect(definition.originalSql).toContain(`FROM "${id}")`);
      expect(lake.currentViewName(id)).toBe(`${id}_current`);
    }
  });

  test('a monthly edition newer than the yearly one: its month is read from it, every other from the yearly; one row per series and instant', async () => {
    const c = await current(await convertEditions(new Date('2024-01-10T12:00:00Z'), new Date('2024-03-01T12:00:00Z')));
    expect(c.rawCount).toBe(rows.length + FEBRUARY.length); // the table holds both editions
    expect(c.count).toBe(rows.length);
    expect(c.duplicates).toBe(0);
    expect(c.februarySum).toBeCloseTo(sum(FEBRUARY), 4);
    expect(c.sum).toBeCloseTo(sum(rows.filter((r) => !r[2].startsWith('2023-02-'))) + sum(FEBRUARY), 4);
  });

  test('a yearly edition newer than the monthly one wins over it', async () => {
    const c = await current(await convertEditions(new Date('2024-03-01T12:00:00Z'), new Date('2024-01-10T12:00:00Z')));
    expect(c.count).toBe(rows.length);
    expect(c.duplicates).toBe(0);
    expect(c.februarySum).toBeCloseTo(sum(rows.filter((r) => r[2].startsWith('2023-02-'))), 4);
    expect(c.sum).toBeCloseTo(sum(rows), 4);
  });

  test('a dataset the view name of another would clash with is refused at synth, naming the prop', () => {
    const other = new Stack(new App(), 'Other', { env: ENV });
    expect(() => new DataLake(other, 'Lake', {
      stage: PlatformStage.DEV,
      additionalDatasets: [{ datasetId: 'curva_carga_current', measures: [{ name: 'val_x' }] }],
    })).toThrow("DataLakeProps.additionalDatasets: dataset 'curva_carga_current' takes the name of the current-rows view of 'curva_carga'");
  });
});
