import { DatasetLayout } from './detect';
import { parseMeasure } from './number';
import { clip, LocalTime, parseLocalTime } from './time';
import { Cell, OnsRecord, RawRow, RawTable } from './types';

/** A row that could not become a record, with the reason and its cells as read. */
export interface Rejection {
  readonly row: number;
  readonly reason: string;
  readonly cells: readonly Cell[];
}

/** Where records and rejections go (a Parquet writer, a data card, a rejected-rows file...). */
export interface RecordSink {
  record?(record: OnsRecord): void | Promise<void>;
  rejected?(rejection: Rejection): void | Promise<void>;
}

export interface MeasureSummary {
  readonly name: string;
  readonly unit: string | null;
  /** Non-null values. */
  readonly count: number;
  readonly nulls: number;
  readonly sum: number;
  readonly min: number | null;
  readonly max: number | null;
}

/** What one pass over a file found: the shape of `ons-data-platform inspect --json`. */
export interface FileSummary {
  readonly file: string;
  readonly dataset: string;
  readonly datasetSource: 'catalog' | 'convention';
  readonly format: string;
  readonly encoding: string | null;
  readonly delimiter: string | null;
  /** Data rows read (blank lines aside). */
  readonly rows: number;
  /** Valid records. */
  readonly records: number;
  /** Refused rows. */
  readonly rejected: number;
  readonly timeColumn: string;
  readonly dimensions: string[];
  readonly measures: MeasureSummary[];
  /** Distinct identities (dataset plus id/cod dimensions). */
  readonly series: number;
  /** First and last instant, UTC ISO-8601 with milliseconds; null without records. */
  readonly start: string | null;
  readonly end: string | null;
}

/**
 * Rows of one (series, instant) after the first are rejected as duplicates. Detection keeps the
 * series of the most recent DUPLICATE_WINDOW distinct instants, so memory stays flat: exact for files
 * ordered by time, as ONS publishes them.
 */
export const DUPLICATE_WINDOW = 64;

/**
 * Turns the rows of a table into validated records: the time converted from Brasília civil time to
 * UTC, identity dimensions required, measures parsed (empty is null, never zero; nothing imputed).
 * A row that cannot be read is rejected with its row number and reason; the rest of the file goes on.
 */
export async function processTable(fileName: string, table: RawTable, layout: DatasetLayout, sink: RecordSink = {}): Promise<FileSummary> {
  const width = table.header.length;
  const decimalComma = table.decimalComma ?? false;
  const measures = layout.measures.map((m) => ({ ...m, count: 0, nulls: 0, sum: 0, min: Infinity, max: -Infinity }));
  const recent = new Map<number, Map<string, number>>(); // instant → series → first row
  let rows = 0;
  let records = 0;
  let rejected = 0;
  let start = Infinity;
  let end = -Infinity;
  let lastTimeText: string | undefined;
  let lastTime: LocalTime | string = '';

  // Series by the raw values of their dimensions, so the `name=value` key is built once per series.
  const seriesInfo = new Map<string, { key: string; dimensions: Record<string, string> }>();
  const dims = layout.dimensions;
  const wantsRecords = sink.record !== undefined;

  // Synchronous unless a sink returns a promise: most rows then cost no microtask at all.
  const reject = (row: number, reason: string, cells: readonly Cell[]): void | Promise<void> => {
    rejected++;
    return sink.rejected?.({ row, reason, cells });
  };

  const handle = (raw: RawRow): void | Promise<void> => {
    rows++;
    const cells = raw.cells;
    if (!cells) return reject(raw.row, raw.error ?? 'unreadable row', []);
    if (cells.length !== width) {
      const sep = table.delimiter ? ` separated by '${printable(table.delimiter)}'` : '';
      return reject(raw.row, `expected ${width} fields${sep}, found ${cells.length}`, cells);
    }
    const timeCell = cells[layout.time.index];
    const timeText = timeCell === null ? '' : String(timeCell);
    if (timeText !== lastTimeText) {
      lastTimeText = timeText;
      lastTime = typeof timeCell === 'number' ? `a number (${timeCell}), not a date` : parseLocalTime(timeText);
    }
    if (typeof lastTime === 'string') return reject(raw.row, `${layout.time.name}: ${lastTime}`, cells);
    const time = lastTime;

    let seriesRaw = '';
    for (let i = 0; i < dims.length; i++) {
      const cell = cells[dims[i].index];
      const value = cell === null ? '' : String(cell).trim();
      if (value === '') return reject(raw.row, `${dims[i].name} is empty: it identifies the series`, cells);
      seriesRaw = i === 0 ? value : `${seriesRaw}\u0001${value}`;
    }
    const values: Record<string, number | null> = {};
    for (const m of layout.measures) {
      const value = parseMeasure(cells[m.index], decimalComma);
      if (Number.isNaN(value)) return reject(raw.row, `${m.name}: '${clip(String(cells[m.index]))}' is not a number`, cells);
      values[m.name] = value;
    }

    let atInstant = recent.get(time.utc);
    if (!atInstant) {
      atInstant = new Map();
      recent.set(time.utc, atInstant);
      if (recent.size > DUPLICATE_WINDOW) recent.delete(recent.keys().next().value as number);
    }
    const firstRow = atInstant.get(seriesRaw);
    if (firstRow !== undefined) {
      return reject(raw.row, `duplicate of row ${firstRow} (same series and time, ${time.iso}): the first row is kept`, cells);
    }
    atInstant.set(seriesRaw, raw.row);

    for (const m of measures) {
      const value = values[m.name];
      if (value === null) {
        m.nulls++;
      } else {
        m.count++;
        m.sum += value;
        if (value < m.min) m.min = value;
        if (value > m.max) m.max = value;
      }
    }
    if (time.utc < start) start = time.utc;
    if (time.utc > end) end = time.utc;
    records++;
    let info = seriesInfo.get(seriesRaw);
    if (!info) {
      const dimensions: Record<string, string> = {};
      const parts = dims.length ? seriesRaw.split('\u0001') : [];
      dims.forEach((d, i) => { dimensions[d.name] = parts[i]; });
      info = { key: dims.map((d, i) => `${d.name}=${parts[i]}`).join('|'), dimensions };
      seriesInfo.set(seriesRaw, info);
    }
    if (!wantsRecords) return;
    const labels: Record<string, string | null> = {};
    for (const l of layout.labels) {
      const value = cells[l.index];
      labels[l.name] = value === null || String(value).trim() === '' ? null : String(value).trim();
    }
    return sink.record!({
      dataset: layout.id,
      time: time.utc,
      local: time.iso,
      localRaw: timeText.trim(),
      series: info.key,
      dimensions: info.dimensions,
      labels,
      measures: values,
      row: raw.row,
    });
  };

  if (table.batches) {
    for await (const batch of table.batches) {
      for (const raw of batch) {
        const pending = handle(raw);
        if (pending) await pending;
      }
    }
  } else {
    for await (const raw of table.rows) {
      const pending = handle(raw);
      if (pending) await pending;
    }
  }

  return {
    file: fileName,
    dataset: layout.id,
    datasetSource: layout.source,
    format: table.format,
    encoding: table.encoding ?? null,
    delimiter: table.delimiter ?? null,
    rows,
    records,
    rejected,
    timeColumn: layout.time.name,
    dimensions: layout.dimensions.map((d) => d.name),
    measures: measures.map((m) => ({
      name: m.name,
      unit: m.unit,
      count: m.count,
      nulls: m.nulls,
      sum: m.sum,
      min: m.count ? m.min : null,
      max: m.count ? m.max : null,
    })),
    series: seriesInfo.size,
    start: records ? new Date(start).toISOString() : null,
    end: records ? new Date(end).toISOString() : null,
  };
}

function printable(delimiter: string): string {
  return delimiter === '\t' ? '\\t' : delimiter;
}
