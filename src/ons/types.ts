/**
 * Types shared by the domain core: what readers produce and what the rest consumes.
 * The domain core knows ONS files and nothing about AWS or CDK.
 */

/** A cell as a reader hands it over: text, a number, or empty (null). */
export type Cell = string | number | null;

/**
 * How far the reading of a file has got, as a reader reports it: `done` of `total` `unit`s whose rows were handed
 * out and consumed (so it never runs ahead of the processing): bytes of the file parsed (CSV), bytes of an XLSX part
 * inflated (its size from the zip directory), rows (Parquet, against the footer's row count).
 */
export interface Progress {
  /** What is being read: `parsing`, `shared strings`, `sheet 'NAME'`, `row group 2 of 5`. */
  readonly phase: string;
  readonly done: number;
  /** undefined when unknown (a stream of unknown size). */
  readonly total?: number;
  readonly unit: 'bytes' | 'rows';
}

/** Receives Progress reports; called synchronously from the reading loop, so it must be cheap (throttle there). */
export type ProgressListener = (progress: Progress) => void;

/** A data row as read, before any interpretation. */
export interface RawRow {
  /**
   * The row's number in the file as a spreadsheet shows it: the header is row 1, the first data row
   * is row 2 (for CSV, the line number; for XLSX, the sheet row; for Parquet, the row index + 2).
   */
  readonly row: number;
  /** Cells in header order; undefined when the row could not be split (see `error`). */
  readonly cells?: Cell[];
  /** Why the row could not be read at all (e.g. a line over the length limit). */
  readonly error?: string;
}

/** What a reader found out about a file, and its rows. */
export interface RawTable {
  readonly format: 'csv' | 'xlsx' | 'parquet';
  /** Text encoding (CSV only): 'utf-8', 'utf-8-bom', 'latin1' or 'utf-16le'. */
  readonly encoding?: string;
  /** Field delimiter (CSV only). */
  readonly delimiter?: string;
  /** Whether numbers use a decimal comma (CSV dashboard exports, Brazilian spreadsheets); see DecimalComma in number.ts. */
  readonly decimalComma?: boolean | 'undecided';
  /** How the CSV reader decided `decimalComma`, for the reasons of rows it refuses (e.g. `as in '50,4' on line 7`). */
  readonly decimalEvidence?: string;
  /** The sheet read (XLSX only). */
  readonly sheet?: string;
  /** Column names as written in the file (trimmed). */
  readonly header: string[];
  /** The data rows, in file order. Iterate `rows` or `batches`, once. */
  readonly rows: AsyncIterable<RawRow>;
  /** The same rows in batches (one per chunk read), when the reader has them: less overhead per row. */
  readonly batches?: AsyncIterable<readonly RawRow[]>;
  /** The same rows as undecoded lines, one batch per chunk (CSV in UTF-8, or Latin-1 transcoded): read without a string per cell. */
  readonly lines?: AsyncIterable<CsvLines>;
}

/**
 * Complete lines of a UTF-8 CSV, as bytes: line i is `bytes[starts[i], ends[i])`, without its CR/LF,
 * and is line number `first + i`. `ends[i]` is -1 for a line over the length limit.
 */
export interface CsvLines {
  readonly bytes: Buffer;
  readonly first: number;
  readonly count: number;
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  /** Line i as a row the way the decoding reader produces it (cells split, reasons), or undefined for a blank line. */
  row(i: number): RawRow | undefined;
}

/**
 * A file-level refusal: the file cannot be read as ONS data at all. The message is a reason a person
 * can act on (what was expected, what was found).
 */
export class RefusedFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefusedFileError';
  }
}

/** A validated record: one row of one series at one instant, in canonical form. */
export interface OnsRecord {
  /** Dataset id (catalog id, or derived from the file name by the naming convention). */
  readonly dataset: string;
  /** The instant, UTC epoch milliseconds. */
  readonly time: number;
  /** The local (Brasília) wall-clock, normalised: `YYYY-MM-DDTHH:MM:SS`. */
  readonly local: string;
  /** The time as written in the file. */
  readonly localRaw: string;
  /** Identity of the series within the dataset: its id/cod dimensions, `name=value` joined by `|`. */
  readonly series: string;
  /** Identity dimensions (id_*, cod_*), by normalised column name. */
  readonly dimensions: Readonly<Record<string, string>>;
  /** Labels and other descriptive columns (nom_*, ...): never part of the identity. */
  readonly labels: Readonly<Record<string, string | null>>;
  /** Measures by normalised column name: a number, or null when the file left it empty. */
  readonly measures: Readonly<Record<string, number | null>>;
  /** The source row (see `RawRow.row`). */
  readonly row: number;
}
