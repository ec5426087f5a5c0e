// @ts-expect-error TS1479: ESM-only package, bundled by esbuild (tests: transpiled by ts-jest).
import { parquetMetadata, parquetRead, parquetSchema, type AsyncBuffer } from 'hyparquet';
// @ts-expect-error TS1479: as above.
import { compressors } from 'hyparquet-compressors';
import { partLayout, PointRecord } from './layout';
import { ADDED_COLUMNS } from '../../ons/layout';

/*
 * Reads the processed Parquet directly rather than with the domain core's raw-file reader: it needs the
 * column types (measures are the DOUBLE columns) and the exact UTC milliseconds of `time`, and only
 * the time, identity and measure columns are decoded.
 */

/** Rows of a processed Parquet part as records, one row group at a time; rows without any measure are counted in `skipped`. */
export async function* readPartRecords(
  data: Uint8Array,
  dataset: string,
  counters: { skipped: number; rows: number },
): AsyncGenerator<PointRecord> {
  const metadata = parquetMetadata(data);
  const columns = parquetSchema(metadata).children
    .map((c: { element: { name: string; type?: string } }) => ({ name: c.element.name, type: c.element.type }));
  if (!columns.some((c: { name: string }) => c.name === ADDED_COLUMNS.time)) throw new Error(`not a processed Parquet file of ${dataset}: no '${ADDED_COLUMNS.time}' column`);
  const layout = partLayout(dataset, columns);
  const wanted = [ADDED_COLUMNS.time, ...layout.dimensions, ...layout.measures];
  const file: AsyncBuffer = { byteLength: data.byteLength, slice: (s: number, e?: number) => new Uint8Array(data.subarray(s, e)).buffer };
  const dims = layout.dimensions.length;
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: unknown[][] = [];
    await parquetRead({ file, metadata, compressors, columns: wanted, rowStart, rowEnd, onComplete: (r: unknown[][]) => (rows = r) });
    for (const row of rows) {
      counters.rows++;
      const time = toMillis(row[0]);
      const dimensions: Array<[string, string]> = [];
      for (let i = 0; i < dims; i++) {
        const v = row[1 + i];
        // Timestream refuses empty dimension values; the processor never writes one for an identity dimension.
        if (v !== null && v !== undefined && v !== '') dimensions.push([layout.dimensions[i], String(v)]);
      }
      const measures: Array<[string, number]> = [];
      for (let i = 0; i < layout.measures.length; i++) {
        const v = row[1 + dims + i];
        if (typeof v === 'number' && Number.isFinite(v)) measures.push([layout.measures[i], v]);
      }
      if (time === undefined || measures.length === 0) {
        counters.skipped++;
        continue;
      }
      yield { time, dimensions, measures };
    }
    rowStart = rowEnd;
  }
}

function toMillis(value: unknown): number | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.getTime();
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'number') return value;
  return undefined;
}
