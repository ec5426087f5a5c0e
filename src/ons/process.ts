import { DatasetLayout } from './detect';
import { notANumber, parseMeasure, parseMeasureBytes } from './number';
import { hashKey, SeriesIndex, SeriesInstants } from './series';
import { clip, LocalTime, offsetAt, parseLocalTime, parseLocalTimeBytes } from './time';
import { Cell, OnsRecord, RawRow, RawTable } from './types';
import { endsWithUnicodeSpace, isAsciiSpace, sameBytes, startsWithUnicodeSpace } from './utf8';

/** A row that could not become a record, with the reason and its cells as read. */
export interface Rejection {
  readonly row: number;
  readonly reason: string;
  readonly cells: readonly Cell[];
}

/**
 * Where records and rejections go (a Parquet writer, a data card, a rejected-rows file...). Rows reach it
 * in file order, except those at a local time the clocks skipped: after all the others (see processTable).
 */
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
 * Turns the rows of a table into validated records: the time converted from Brasília civil time to
 * UTC, identity dimensions required, measures parsed (empty is null, never zero; nothing imputed).
 * A row that cannot be read is rejected with its row number and reason; the rest of the file goes on.
 *
 * Duplicates: the first row of a (series, instant) is kept and later ones are rejected, whatever the
 * order of the rows. One exception, the night the clocks moved forward: a row at a local time that did
 * not exist moves forward by the gap, unless a row of the same series really has that instant; then
 * that row is kept and the shifted one is rejected. Such rows are held back and decided once the whole
 * file is read, so their records (and rejections) reach the sink last; every other row reaches it in
 * file order as it is read.
 *
 * A table with `lines` (UTF-8 CSV) is read from its bytes: a line that is a plain valid new record is
 * taken without a string per cell; any other line (quotes, a rejection, an unusual cell, a time that
 * did not exist) goes through the same path as decoded rows, so both give the same records, rejections
 * and figures.
 */
export async function processTable(fileName: string, table: RawTable, layout: DatasetLayout, sink: RecordSink = {}): Promise<FileSummary> {
  const width = table.header.length;
  const decimalComma = table.decimalComma ?? false;
  const measures = layout.measures.map((m) => ({ ...m, count: 0, nulls: 0, sum: 0, min: Infinity, max: -Infinity }));
  const dims = layout.dimensions;
  const wantsRecords = sink.record !== undefined;
  const series = new SeriesIndex(table.lines !== undefined);
  const instants = new SeriesInstants();
  let rows = 0;
  let records = 0;
  let rejected = 0;
  let start = Infinity;
  let end = -Infinity;

  // Synchronous unless a sink returns a promise: most rows then cost no microtask at all.
  const reject = (row: number, reason: string, cells: readonly Cell[]): void | Promise<void> => {
    rejected++;
    return sink.rejected?.({ row, reason, cells });
  };

  /** Counts a valid record (its measures in layout order). */
  const accept = (time: number, values: readonly (number | null)[]): void => {
    for (let k = 0; k < measures.length; k++) {
      const m = measures[k];
      const value = values[k];
      if (value === null) {
        m.nulls++;
      } else {
        m.count++;
        m.sum += value;
        if (value < m.min) m.min = value;
        if (value > m.max) m.max = value;
      }
    }
    if (time < start) start = time;
    if (time > end) end = time;
    records++;
  };

  // The `name=value` key and dimensions of a series, built once per series and only when records are wanted.
  const infos: Array<{ key: string; dimensions: Record<string, string> }> = [];
  const record = (
    id: number, time: LocalTime, localRaw: string, labels: Record<string, string | null>, values: readonly (number | null)[], row: number,
  ): void | Promise<void> => {
    let info = infos[id];
    if (!info) {
      const dimensions: Record<string, string> = {};
      const parts = dims.length ? series.text(id).split('\u0001') : [];
      dims.forEach((d, i) => { dimensions[d.name] = parts[i]; });
      info = { key: dims.map((d, i) => `${d.name}=${parts[i]}`).join('|'), dimensions };
      infos[id] = info;
    }
    const measured: Record<string, number | null> = {};
    for (let k = 0; k < measures.length; k++) measured[measures[k].name] = values[k];
    return sink.record!({
      dataset: layout.id,
      time: time.utc,
      local: time.iso,
      localRaw,
      series: info.key,
      dimensions: info.dimensions,
      labels,
      measures: measured,
      row,
    });
  };

  /** Rows at a local time that did not exist, held back until the whole file is read. */
  const held: Array<{
    id: number;
    time: LocalTime;
    localRaw: string;
    labels: Record<string, string | null>;
    values: Array<number | null>;
    row: number;
    cells: readonly Cell[];
  }> = [];

  const labelsOf = (cells: readonly Cell[]): Record<string, string | null> => {
    const labels: Record<string, string | null> = {};
    for (const l of layout.labels) {
      const value = cells[l.index];
      labels[l.name] = value === null || String(value).trim() === '' ? null : String(value).trim();
    }
    return labels;
  };

  let lastTimeText: string | undefined;
  let lastTime: LocalTime | string = '';
  /** A row as cells (any format). */
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
    const values: Array<number | null> = [];
    for (const m of layout.measures) {
      const value = parseMeasure(cells[m.index], decimalComma);
      if (Number.isNaN(value)) return reject(raw.row, `${m.name}: ${notANumber(clip(String(cells[m.index])), decimalComma, table.decimalEvidence)}`, cells);
      values.push(value);
    }

    let id = series.find(seriesRaw);
    if (id < 0) id = series.add(seriesRaw);
    if (time.skipped) {
      held.push({ id, time, localRaw: timeText.trim(), labels: wantsRecords ? labelsOf(cells) : {}, values, row: raw.row, cells });
      return;
    }
    const firstRow = instants.claim(id, time.utc, raw.row);
    if (firstRow >= 0) return reject(raw.row, duplicate(firstRow, time), cells);
    accept(time.utc, values);
    if (!wantsRecords) return;
    return record(id, time, timeText.trim(), labelsOf(cells), values, raw.row);
  };

  // Byte path. Cell bounds of the current line; the previous time and label cells' bytes, reused while repeated.
  const delimiter = table.delimiter?.charCodeAt(0) ?? -1;
  const cellStarts = new Int32Array(width);
  const cellEnds = new Int32Array(width);
  const dimStarts = new Int32Array(dims.length);
  const dimEnds = new Int32Array(dims.length);
  const values: Array<number | null> = layout.measures.map(() => null);
  let timeBytes: Buffer | undefined;
  let timeStart = 0;
  let timeEnd = 0;
  let timeText: string | undefined; // as written, trimmed: decoded for records only
  let time: LocalTime | string = '';
  let timeSkipped = false;
  const labelBytes: Array<Buffer | undefined> = layout.labels.map(() => undefined);
  const labelStarts = new Int32Array(layout.labels.length);
  const labelEnds = new Int32Array(layout.labels.length);
  const labelValues: Array<string | null> = layout.labels.map(() => null);

  /** A line read from its bytes: false, having changed nothing, when it is not a plain valid new record. */
  const line = (bytes: Buffer, s: number, e: number, row: number): boolean | Promise<void> => {
    let n = 0;
    let cell = s;
    for (let p = s; p < e; p++) {
      const c = bytes[p];
      if (c === delimiter) {
        if (n === width - 1) return false;
        cellStarts[n] = cell;
        cellEnds[n++] = p;
        cell = p + 1;
      } else if (c === 34) {
        return false; // quoted fields: the decoded path splits them
      }
    }
    if (n !== width - 1) return false;
    cellStarts[n] = cell;
    cellEnds[n] = e;

    const ts = cellStarts[layout.time.index];
    const te = cellEnds[layout.time.index];
    if (timeBytes === undefined || !sameBytes(bytes, ts, te, timeBytes, timeStart, timeEnd)) {
      timeBytes = bytes;
      timeStart = ts;
      timeEnd = te;
      timeText = undefined;
      time = parseLocalTimeBytes(bytes, ts, te) ?? parseLocalTime(bytes.toString('utf8', ts, te));
      timeSkipped = typeof time !== 'string' && time.skipped;
    }
    if (typeof time === 'string' || timeSkipped) return false;

    for (let k = 0; k < dims.length; k++) {
      let a = cellStarts[dims[k].index];
      let b = cellEnds[dims[k].index];
      while (a < b && isAsciiSpace(bytes[a])) a++;
      while (b > a && isAsciiSpace(bytes[b - 1])) b--;
      // Empty, or a non-ASCII space trim() would remove: the decoded path rejects or reads it.
      if (a === b || (bytes[a] >= 0x80 && startsWithUnicodeSpace(bytes, a, b))) return false;
      if (bytes[b - 1] >= 0x80 && endsWithUnicodeSpace(bytes, a, b)) return false;
      dimStarts[k] = a;
      dimEnds[k] = b;
    }
    for (let k = 0; k < measures.length; k++) {
      const ms = cellStarts[measures[k].index];
      const me = cellEnds[measures[k].index];
      let value = parseMeasureBytes(bytes, ms, me, decimalComma);
      if (value === undefined) {
        value = parseMeasure(bytes.toString('utf8', ms, me), decimalComma);
        if (Number.isNaN(value)) return false;
      }
      values[k] = value;
    }

    const hash = hashKey(bytes, dimStarts, dimEnds);
    let id = series.findBytes(bytes, dimStarts, dimEnds, hash);
    if (id < 0) id = series.addBytes(bytes, dimStarts, dimEnds, hash);
    if (instants.claim(id, time.utc, row) >= 0) return false; // a duplicate: recorded nothing
    rows++;
    accept(time.utc, values);
    if (!wantsRecords) return true;
    const labels: Record<string, string | null> = {};
    for (let k = 0; k < layout.labels.length; k++) {
      const ls = cellStarts[layout.labels[k].index];
      const le = cellEnds[layout.labels[k].index];
      const previous = labelBytes[k];
      if (previous === undefined || !sameBytes(bytes, ls, le, previous, labelStarts[k], labelEnds[k])) {
        labelBytes[k] = bytes;
        labelStarts[k] = ls;
        labelEnds[k] = le;
        const text = bytes.toString('utf8', ls, le).trim();
        labelValues[k] = text === '' ? null : text;
      }
      labels[layout.labels[k].name] = labelValues[k];
    }
    timeText ??= bytes.toString('utf8', ts, te).trim();
    return record(id, time, timeText, labels, values, row) ?? true;
  };

  if (table.lines) {
    for await (const batch of table.lines) {
      const { bytes, starts, ends } = batch;
      for (let i = 0; i < batch.count; i++) {
        if (ends[i] >= 0) {
          const done = line(bytes, starts[i], ends[i], batch.first + i);
          if (done === true) continue;
          if (done !== false) {
            await done;
            continue;
          }
        }
        const raw = batch.row(i);
        if (raw) {
          const pending = handle(raw);
          if (pending) await pending;
        }
      }
    }
  } else if (table.batches) {
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

  // Held rows in file order: each is kept unless its series has the instant already, from a row that
  // really has that time (the shifted one is then rejected) or from a held row before it (a duplicate).
  const keptHeld = new Set<number>();
  for (const h of held) {
    const firstRow = instants.claim(h.id, h.time.utc, h.row);
    let pending: void | Promise<void> = undefined;
    if (firstRow < 0) {
      keptHeld.add(h.row);
      accept(h.time.utc, h.values);
      if (wantsRecords) pending = record(h.id, h.time, h.localRaw, h.labels, h.values, h.row);
    } else {
      const reason = keptHeld.has(firstRow) ? duplicate(firstRow, h.time) : skippedTime(layout.time.name, h.time, firstRow);
      pending = reject(h.row, reason, h.cells);
    }
    if (pending) await pending;
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
    series: series.size,
    start: records ? new Date(start).toISOString() : null,
    end: records ? new Date(end).toISOString() : null,
  };
}

function duplicate(firstRow: number, time: LocalTime): string {
  return `duplicate of row ${firstRow} (same series and time, ${time.iso}): the first row is kept`;
}

/** Why a row at a local time that did not exist is refused in favour of the row that really has the instant. */
function skippedTime(column: string, time: LocalTime, genuineRow: number): string {
  const wall = Date.parse(`${time.iso}Z`);
  const moved = time.utc + offsetAt(time.utc);
  const iso = new Date(moved).toISOString().slice(0, 19);
  return `${column}: ${time.iso} does not exist on that day (the clocks moved forward ${(moved - wall) / 60_000} minutes);`
    + ` row ${genuineRow} has the real ${iso} of this series and is kept`;
}

function printable(delimiter: string): string {
  return delimiter === '\t' ? '\\t' : delimiter;
}
