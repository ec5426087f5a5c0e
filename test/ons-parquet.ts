import { readFileSync } from 'node:fs';
import { join } from 'node:path';
// @ts-expect-error TS1479: ESM-only package, transpiled by ts-jest.
import { parquetWriteBuffer, type ColumnSource } from 'hyparquet-writer';
import { ONS_DATA } from './ons-data';

/**
 * CURVA_CARGA_2023.csv as a Parquet file of the same columns (ONS publishes its datasets as CSV, XLSX and Parquet;
 * no real ONS Parquet file is in the fixtures, see SOURCES.md): text columns as STRING, the measure as DOUBLE, the
 * time as written (`2023-01-01 00:00:00`), in row groups of `rowGroupSize` rows.
 */
export function curvaCargaParquet(rowGroupSize: number): Uint8Array {
  const [header, ...lines] = readFileSync(join(ONS_DATA, 'CURVA_CARGA_2023.csv'), 'utf8').trimEnd().split('\n');
  const rows = lines.map((l) => l.split(';'));
  const columnData = header.split(';').map((name, i): ColumnSource => (name.startsWith('val_')
    ? { name, type: 'DOUBLE', data: rows.map((r) => (r[i] === '' ? null : Number(r[i]))) }
    : { name, type: 'STRING', data: rows.map((r) => r[i]) }));
  return new Uint8Array(parquetWriteBuffer({ columnData, rowGroupSize }));
}
