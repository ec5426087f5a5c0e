// @ts-expect-error TS1479: ESM-only package, bundled by esbuild (tests: transpiled by ts-jest).
import { parquetMetadata, parquetRead, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
// @ts-expect-error TS1479: as above.
import { compressors } from 'hyparquet-compressors';
import { Cell, ProgressListener, RawRow, RawTable, RefusedFileError } from '../types';

const MAGIC = 0x31524150; // 'PAR1', little-endian
/** Rows consumed between progress reports within a row group (a row group holds up to ~1M rows). */
const PROGRESS_ROWS = 8192;

export interface ReadParquetOptions {
  /** Called before each row group is decoded and as its rows are consumed, with the rows done of the footer's row count. */
  readonly onProgress?: ProgressListener;
}

/** Reads a Parquet file: one cell per top-level column, rows read one row group at a time. */
export async function readParquet(data: Uint8Array, options: ReadParquetOptions = {}): Promise<RawTable> {
  const metadata = readMetadata(data);
  const header = parquetSchema(metadata).children.map((c) => c.element.name.trim());
  // Copies each range hyparquet asks for: data may be a view (a Buffer, whose slice() is not a copy).
  const file: AsyncBuffer = { byteLength: data.byteLength, slice: (start, end) => new Uint8Array(data.subarray(start, end)).buffer };
  return { format: 'parquet', header, rows: readRows(file, metadata, options.onProgress) };
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

async function* readRows(file: AsyncBuffer, metadata: FileMetaData, onProgress?: ProgressListener): AsyncGenerator<RawRow> {
  let rowStart = 0;
  const total = Number(metadata.num_rows);
  const groups = metadata.row_groups.length;
  for (const [index, group] of metadata.row_groups.entries()) {
    const rowEnd = rowStart + Number(group.num_rows);
    const phase = `row group ${index + 1} of ${groups}`;
    onProgress?.({ phase, done: rowStart, total, unit: 'rows' });
    let values: unknown[][] = [];
    try {
      await parquetRead({ file, metadata, compressors, rowStart, rowEnd, onComplete: (rows) => (values = rows) });
    } catch (e) {
      throw new RefusedFileError(`Parquet row group ${index + 1} cannot be read: ${(e as Error).message}`);
    }
    for (let i = 0; i < values.length; i++) {
      yield { row: rowStart + i + 2, cells: values[i].map(toCell) };
      // After the yield: the row has been consumed.
      if (onProgress && (i + 1) % PROGRESS_ROWS === 0 && i + 1 < values.length) onProgress({ phase, done: rowStart + i + 1, total, unit: 'rows' });
    }
    onProgress?.({ phase, done: rowEnd, total, unit: 'rows' });
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
