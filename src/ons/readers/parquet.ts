// @ts-expect-error TS1479: ESM-only package, bundled by esbuild (tests: transpiled by ts-jest).
import { parquetMetadata, parquetRead, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
// @ts-expect-error TS1479: as above.
import { compressors } from 'hyparquet-compressors';
import { Cell, RawRow, RawTable, RefusedFileError } from '../types';

const MAGIC = 0x31524150; // 'PAR1', little-endian

/** Reads a Parquet file: one cell per top-level column, rows read one row group at a time. */
export async function readParquet(data: Uint8Array): Promise<RawTable> {
  const metadata = readMetadata(data);
  const header = parquetSchema(metadata).children.map((c) => c.element.name.trim());
  // Copies each range hyparquet asks for: data may be a view (a Buffer, whose slice() is not a copy).
  const file: AsyncBuffer = { byteLength: data.byteLength, slice: (start, end) => new Uint8Array(data.subarray(start, end)).buffer };
  return { format: 'parquet', header, rows: readRows(file, metadata) };
}

function readMetadata(data: Uint8Array): FileMetaData {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.byteLength < 12 || view.getUint32(0, true) !== MAGIC) {
    throw new RefusedFileError('not a Parquet file: it does not start with the PAR1 magic bytes');
  }
  if (view.getUint32(data.byteLength - 4, true) !== MAGIC) {
    throw new RefusedFileError('Parquet file is truncated or corrupt: it does not end with the PAR1 magic bytes');
  }
  try {
    return parquetMetadata(data);
  } catch (e) {
    throw new RefusedFileError(`Parquet footer is corrupt: ${(e as Error).message}`);
  }
}

async function* readRows(file: AsyncBuffer, metadata: FileMetaData): AsyncGenerator<RawRow> {
  let rowStart = 0;
  for (const [index, group] of metadata.row_groups.entries()) {
    const rowEnd = rowStart + Number(group.num_rows);
    let values: unknown[][] = [];
    try {
      await parquetRead({ file, metadata, compressors, rowStart, rowEnd, onComplete: (rows) => (values = rows) });
    } catch (e) {
      throw new RefusedFileError(`Parquet row group ${index + 1} cannot be read: ${(e as Error).message}`);
    }
    for (const [i, row] of values.entries()) yield { row: rowStart + i + 2, cells: row.map(toCell) };
    rowStart = rowEnd;
  }
}

function toCell(value: unknown): Cell {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (typeof value === 'boolean') return String(value);
  // ONS timestamps are naive Brasília wall-clock stored as if UTC, so the UTC fields are the wall-clock.
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString().slice(0, 19).replace('T', ' ');
  return JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}
