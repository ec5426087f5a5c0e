import { readCsv } from './readers/csv';
import { readParquet } from './readers/parquet';
import { readXlsx } from './readers/xlsx';
import { isZip } from './readers/zip';
import { ProgressListener, RawTable, RefusedFileError } from './types';

/** A file to read, wherever it lives (a local path, an S3 object...). */
export interface FileSource {
  /** The file's bytes as a stream (CSV is read this way, in constant memory). */
  stream(): AsyncIterable<Uint8Array>;
  /** The whole file (Parquet needs random access; XLSX too when the source has no `read`). */
  bytes(): Promise<Uint8Array>;
  /** The first bytes, to recognise the format. */
  head(): Promise<Uint8Array>;
  /** The file's size in bytes; with `read`, XLSX is read by random access in bounded memory. */
  size?(): Promise<number>;
  /** `length` bytes from `position` (fewer only past the end of the file). */
  read?(position: number, length: number): Promise<Uint8Array>;
}

export interface OpenOptions {
  /** XLSX sheet, by name or 0-based index. @default the first sheet */
  readonly sheet?: string | number;
  /** Largest expanded size of an XLSX's parts, against zip bombs. @default XLSX_MAX_EXPANDED_BYTES (2 GiB) */
  readonly maxExpandedBytes?: number;
  /**
   * Reports the progress of the real work as the rows are consumed (see Progress): CSV bytes parsed, the XLSX sheet's
   * bytes inflated, Parquet rows. @default - none
   */
  readonly onProgress?: ProgressListener;
}

/** Recognises the format by content (zip → XLSX, `PAR1` → Parquet), else CSV. */
export function formatOf(head: Uint8Array): 'csv' | 'xlsx' | 'parquet' {
  if (isZip(head)) return 'xlsx';
  if (head[0] === 0x50 && head[1] === 0x41 && head[2] === 0x52 && head[3] === 0x31) return 'parquet';
  return 'csv';
}

/** Opens a file with the reader its content calls for. */
export async function openTable(source: FileSource, options: OpenOptions = {}): Promise<RawTable> {
  const head = await source.head();
  if (head[0] === 0x25 && head[1] === 0x50 && head[2] === 0x44 && head[3] === 0x46) {
    throw new RefusedFileError('this is a PDF document, not a table of data (documents belong in the knowledge base)');
  }
  switch (formatOf(head)) {
    case 'xlsx': {
      const file = source.read && source.size ? { read: source.read.bind(source), size: source.size.bind(source) } : await source.bytes();
      return readXlsx(file, { sheet: options.sheet, maxExpandedBytes: options.maxExpandedBytes, onProgress: options.onProgress });
    }
    case 'parquet': return readParquet(await source.bytes(), { onProgress: options.onProgress });
    default: return readCsv(source.stream(), { onProgress: options.onProgress, size: options.onProgress && await source.size?.() });
  }
}
