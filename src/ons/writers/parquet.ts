import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
// @ts-expect-error TS1479: ESM-only package, bundled by esbuild (tests: transpiled by ts-jest).
import { ByteWriter, ParquetWriter, type SchemaElement } from 'hyparquet-writer';
import { columnClash, partFileName, partitionPath, processedColumns, ProcessedColumnType } from '../layout';
import { OnsRecord } from '../types';

/** The columns of one dataset in the processed zone. */
export interface ProcessedSchema {
  readonly dataset: string;
  readonly dimensions: string[];
  readonly labels: string[];
  readonly measures: string[];
}

/** The Parquet type of each column type of the layout. */
const PARQUET_TYPES: Record<ProcessedColumnType, Omit<SchemaElement, 'name'>> = {
  timestamp: { type: 'INT64', repetition_type: 'OPTIONAL', converted_type: 'TIMESTAMP_MILLIS', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' } },
  string: { type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'UTF8', logical_type: { type: 'STRING' } },
  double: { type: 'DOUBLE', repetition_type: 'OPTIONAL' },
  int: { type: 'INT32', repetition_type: 'OPTIONAL' },
};

/** The raw-zone object the records came from. */
export interface ParquetSource {
  readonly key: string;
  readonly version?: string;
  /** When the version was stored, epoch milliseconds (the `source_time` column; null when unknown). */
  readonly time?: number;
}

/**
 * A finished file, under its final name. A partition usually has one file; it has more (parts 2, 3, …)
 * only when records of that month came back after its file had been closed (see
 * `ProcessedParquetWriterOptions.maxOpenPartitions`).
 */
export interface WrittenPartition {
  /** The file: `relativePath` joined to outDir. */
  readonly path: string;
  /**
   * `dataset=<dataset>/year=YYYY/month=MM/<sourceName>.<sourceId>.parquet` for a partition's first file,
   * `…/<sourceName>.<sourceId>-<n>.parquet` for its part n (2, 3, …); always with `/`.
   */
  readonly relativePath: string;
  readonly year: string;
  readonly month: string;
  readonly rows: number;
  readonly bytes: number;
}

export interface ProcessedParquetWriterOptions {
  readonly outDir: string;
  readonly schema: ProcessedSchema;
  readonly source: ParquetSource;
  /** File name stem, e.g. the source file name without extension. */
  readonly sourceName: string;
  /** Rows buffered per partition before they are written as one row group. @default 100_000 */
  readonly rowGroupSize?: number;
  /**
   * Rows buffered across all partitions together. When one more record would exceed it, the partition
   * with the most buffered rows is written out as a row group (smaller than `rowGroupSize`), and so on
   * until there is room; so memory does not grow with the size of the file or the number of partitions
   * it spans. A partition's row groups are therefore never larger than this either. @default 200_000
   */
  readonly maxBufferedRows?: number;
  /**
   * Partitions with a file open at once. Opening one more closes the file of the partition written to
   * least recently: its buffered rows are written and its footer too, so the writer keeps nothing of it but
   * its name and size, and memory does not grow with the number of partitions a file spans. A record that
   * comes later for a closed partition starts a new file for it, part 2 (then 3, …), named
   * `<sourceName>.<sourceId>-2.parquet`; a closed file is never reopened. ONS files are sorted by time,
   * so the default, two years of months, closes no partition too early for them. (Their rows do not wait
   * for that: once a record two or more months later than any before it comes, the buffered rows of the
   * months at least two behind it are written as a row group.) @default 24
   */
  readonly maxOpenPartitions?: number;
}

type Value = string | number | null;

/**
 * A Parquet byte sink that writes each row group to a file and then drops its buffer. The file is
 * created by the first flush and opened only for the length of each append, so the number of open
 * handles does not grow with the number of partitions.
 */
class AppendingSink extends ByteWriter {
  private written: Promise<void> = Promise.resolve();
  private started = false;
  private discarded = false;

  constructor(readonly path: string) {
    super();
  }

  /** Resolves once every pending file operation has ended, successfully or not. */
  settled(): Promise<void> {
    return this.written.catch(() => undefined);
  }

  /** Drops whatever is written from now on, so the file, once removed, is not created again. */
  discard(): void {
    this.discarded = true;
  }

  // ParquetWriter calls this after every row group and awaits it.
  flush(): Promise<void> {
    const bytes = new Uint8Array(this.buffer, 0, this.index);
    // Nothing is kept between row groups: the next one grows a fresh buffer.
    this.buffer = new ArrayBuffer(0);
    this.view = new DataView(this.buffer);
    this.index = 0;
    if (this.discarded) return this.written;
    const append = this.started
      ? () => appendFile(this.path, bytes)
      : () => mkdir(dirname(this.path), { recursive: true }).then(() => writeFile(this.path, bytes, { flag: 'wx' }));
    this.started = true;
    // Chained so appends stay in order even if callers do not await write().
    this.written = this.written.then(append);
    this.written.catch(() => undefined); // surfaced by the awaited flush; not an unhandled rejection meanwhile
    return this.written;
  }

  finish(): Promise<void> {
    return this.flush();
  }
}

interface Partition {
  readonly key: string;
  readonly year: string;
  readonly month: string;
  /** `year * 12 + month - 1`. */
  readonly index: number;
  /** 1 for the partition's first file, 2 for the file opened after that one was closed, and so on. */
  readonly part: number;
  readonly sink: AppendingSink;
  readonly parquet: ParquetWriter;
  /** The buffered rows, column by column; undefined when there are none. */
  columns: Value[][] | undefined;
  /** Rows in `columns`. */
  buffered: number;
  /** Rows written as row groups. */
  rows: number;
}

/** What is kept of a file closed before finish(): what finish() needs to name it and report it. */
interface ClosedPart {
  readonly year: string;
  readonly month: string;
  readonly part: number;
  /** The temporary file. */
  readonly path: string;
  rows: number;
  bytes: number;
  /** Until the file is complete, so abort() can stop and await its writes. */
  sink?: AppendingSink;
}

/**
 * Writes records to the processed zone as Hive-partitioned Parquet (dataset/year/month by local time).
 * Buffers at most `rowGroupSize` rows per partition and `maxBufferedRows` rows in all (and writes out a
 * month's rows once the records have moved two months past it), and keeps at most
 * `maxOpenPartitions` files open (a partition revisited after its file was closed gets a part file,
 * `<sourceName>.<sourceId>-2.parquet`); files keep a temporary name until `finish()`.
 */
export class ProcessedParquetWriter {
  private readonly names: string[];
  private readonly schemaElements: SchemaElement[];
  /** The schema of every file, shared by their writers. */
  private readonly fileSchema: SchemaElement[];
  /** The partitions with an open file, least recently written to first. */
  private readonly partitions = new Map<string, Partition>();
  /** Files closed before finish(), in the order they were closed. */
  private readonly closed: ClosedPart[] = [];
  /** Per partition key whose file was closed: the number of its last part. */
  private readonly lastPart = new Map<string, number>();
  private readonly rowGroupSize: number;
  private readonly maxBufferedRows: number;
  private readonly maxOpenPartitions: number;
  private readonly token = randomBytes(6).toString('hex');
  private state: 'open' | 'finishing' | 'closed' = 'open';
  /** Rows buffered in all partitions. */
  private buffered = 0;
  /** The most rows ever buffered at once (after a record was added). */
  private peakBuffered = 0;
  /** Per column: copies of its string values, so buffered rows keep no file text alive (see `copyString`). */
  private readonly strings: StringCopies[];
  /** The last partition written to, and the `YYYY-MM-` prefix of its local times. */
  private last?: { prefix: string; partition: Partition };
  /** The latest month written to, as `year * 12 + month - 1`. */
  private latest = -Infinity;

  constructor(private readonly options: ProcessedParquetWriterOptions) {
    const { schema, sourceName } = options;
    this.rowGroupSize = options.rowGroupSize ?? 100_000;
    this.maxBufferedRows = options.maxBufferedRows ?? 200_000;
    this.maxOpenPartitions = options.maxOpenPartitions ?? 24;
    if (!Number.isInteger(this.rowGroupSize) || this.rowGroupSize < 1) throw new Error(`rowGroupSize must be a positive integer: ${this.rowGroupSize}`);
    if (!Number.isInteger(this.maxBufferedRows) || this.maxBufferedRows < 1) throw new Error(`maxBufferedRows must be a positive integer: ${this.maxBufferedRows}`);
    if (!Number.isInteger(this.maxOpenPartitions) || this.maxOpenPartitions < 1) throw new Error(`maxOpenPartitions must be a positive integer: ${this.maxOpenPartitions}`);
    checkSegment('dataset', schema.dataset);
    checkSegment('sourceName', sourceName);
    // write() fills the columns in this order: time, local time, dimensions, labels, measures, source key, version, time, row.
    const columns = processedColumns(schema);
    const clash = columnClash(columns);
    if (clash) throw new Error(`column name '${clash}' is duplicated or reserved for a partition key`);
    this.schemaElements = columns.map((c): SchemaElement => ({ name: c.name, ...PARQUET_TYPES[c.type] }));
    this.names = this.schemaElements.map((e) => e.name);
    this.fileSchema = [{ name: 'root', num_children: this.names.length }, ...this.schemaElements];
    this.strings = this.names.map(() => new StringCopies());
  }

  /** Rows buffered now, and the most ever buffered at once: never more than `maxBufferedRows`. */
  get bufferedRows(): { readonly now: number; readonly peak: number } {
    return { now: this.buffered, peak: this.peakBuffered };
  }

  /** Partitions with a file open now (never more than `maxOpenPartitions`), and files closed before finish(). */
  get files(): { readonly open: number; readonly closed: number } {
    return { open: this.partitions.size, closed: this.closed.length };
  }

  /** Buffers one record; writes row groups when its partition's buffer, or the buffers together, are full. */
  async write(record: OnsRecord): Promise<void> {
    if (this.state !== 'open') throw new Error('ProcessedParquetWriter is closed');
    const { schema, source } = this.options;
    if (record.dataset !== schema.dataset) throw new Error(`record of dataset '${record.dataset}' given to the writer of '${schema.dataset}'`);
    // Records come mostly in time order: the partition of the previous record is the likely one.
    let p: Partition;
    if (this.last && record.local.startsWith(this.last.prefix)) {
      p = this.last.partition;
    } else {
      const m = /^(\d{4})-(\d{2})-/.exec(record.local);
      if (!m) throw new Error(`record local time is not YYYY-MM-DDTHH:MM:SS: '${record.local}'`);
      const key = `${m[1]}-${m[2]}`;
      // Awaits only when a file must be closed first, so a write not awaited still buffers its record at once.
      while (!this.partitions.has(key) && this.partitions.size >= this.maxOpenPartitions) {
        await this.close(this.partitions.values().next().value!);
        if (this.state !== 'open') throw new Error('ProcessedParquetWriter is closed');
      }
      p = this.partition(key, m[1], m[2]);
      this.last = { prefix: m[0], partition: p };
      if (p.index > this.latest) {
        this.latest = p.index;
        // In a file sorted by time a month two behind the latest is complete: its rows need not wait in memory.
        for (const q of [...this.partitions.values()]) if (q.buffered && q.index <= p.index - 2) await this.flush(q);
        if (this.state !== 'open') throw new Error('ProcessedParquetWriter is closed');
      }
    }
    while (this.buffered >= this.maxBufferedRows) await this.flush(this.fullest());
    if (this.state !== 'open') throw new Error('ProcessedParquetWriter is closed');

    const columns = p.columns ??= this.names.map(() => []);
    let i = 0;
    columns[i++].push(record.time);
    const strings = this.strings;
    columns[i].push(strings[i].copy(record.localRaw));
    i++;
    for (const d of schema.dimensions) {
      columns[i].push(strings[i].copy(record.dimensions[d]));
      i++;
    }
    for (const l of schema.labels) {
      columns[i].push(strings[i].copy(record.labels[l]));
      i++;
    }
    for (const v of schema.measures) columns[i++].push(record.measures[v] ?? null);
    columns[i++].push(source.key);
    columns[i++].push(source.version ?? null);
    columns[i++].push(source.time ?? null);
    columns[i].push(record.row);
    p.buffered++;
    if (++this.buffered > this.peakBuffered) this.peakBuffered = this.buffered;
    if (p.buffered >= this.rowGroupSize) await this.flush(p);
  }

  /** Writes what is buffered, closes every file and gives each its final name (`sourceId`: see `ons/layout.ts`). */
  async finish(sourceId: string): Promise<WrittenPartition[]> {
    if (this.state !== 'open') throw new Error('ProcessedParquetWriter is closed');
    checkSegment('sourceId', sourceId);
    this.state = 'finishing';
    const { outDir, schema, sourceName } = this.options;
    type Named = { year: string; month: string; part: number };
    const order = (a: Named, b: Named) => (a.year + a.month).localeCompare(b.year + b.month) || a.part - b.part;
    const partitions = [...this.partitions.values()].sort(order);
    try {
      // Complete every file before any gets its final name; one file at a time.
      for (const p of partitions) {
        if (p.buffered) await this.flush(p);
        await p.parquet.finish();
      }
      const files = [
        ...this.closed,
        ...partitions.map(({ year, month, part, sink, rows }) => ({ year, month, part, path: sink.path, rows, bytes: sink.offset })),
      ].sort(order);
      const written: WrittenPartition[] = [];
      for (const { year, month, part, path: temporary, rows, bytes } of files) {
        const dir = partitionPath(schema.dataset, year, month);
        const relativePath = `${dir}${partFileName(sourceName, sourceId, part)}`;
        const path = join(outDir, relativePath);
        await mkdir(join(outDir, dir), { recursive: true });
        await rename(temporary, path);
        written.push({ path, relativePath, year, month, rows, bytes });
      }
      this.state = 'closed';
      return written;
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Removes the temporary files; files already given their final name are complete and stay. */
  async abort(): Promise<void> {
    this.state = 'closed';
    for (const p of this.partitions.values()) {
      p.columns = undefined;
      p.buffered = 0;
    }
    this.buffered = 0;
    const sinks = [...this.partitions.values()].map((p) => p.sink);
    for (const c of this.closed) if (c.sink) sinks.push(c.sink);
    for (const sink of sinks) sink.discard();
    // One file at a time: there may be thousands.
    for (const sink of sinks) {
      await sink.settled();
      await rm(sink.path, { force: true });
    }
    for (const c of this.closed) await rm(c.path, { force: true });
  }

  /** The partition's open file, opened now if need be. */
  private partition(key: string, year: string, month: string): Partition {
    let p = this.partitions.get(key);
    if (p) {
      // Map order is recency order: the first partition is the one to close next.
      this.partitions.delete(key);
      this.partitions.set(key, p);
      return p;
    }
    const part = (this.lastPart.get(key) ?? 0) + 1;
    // Temporaries live in outDir itself, so an aborted run leaves no partition directories behind.
    const sink = new AppendingSink(join(this.options.outDir, `.${this.options.sourceName}.${key}${part > 1 ? `-${part}` : ''}.${this.token}.partial`));
    const parquet = new ParquetWriter({ writer: sink, schema: this.fileSchema });
    p = { key, year, month, index: Number(year) * 12 + Number(month) - 1, part, sink, parquet, columns: undefined, buffered: 0, rows: 0 };
    this.partitions.set(key, p);
    return p;
  }

  /** Completes a partition's file (rows and footer) and keeps only its name and size until finish(). */
  private async close(p: Partition): Promise<void> {
    // Out of the open partitions first, so no record is added to a file being completed.
    this.partitions.delete(p.key);
    if (this.last?.partition === p) this.last = undefined;
    this.lastPart.set(p.key, p.part);
    const closed: ClosedPart = { year: p.year, month: p.month, part: p.part, path: p.sink.path, rows: 0, bytes: 0, sink: p.sink };
    this.closed.push(closed);
    await this.flush(p);
    await p.parquet.finish();
    closed.rows = p.rows;
    closed.bytes = p.sink.offset;
    closed.sink = undefined;
  }

  /** The partition with the most buffered rows. */
  private fullest(): Partition {
    let fullest: Partition | undefined;
    for (const p of this.partitions.values()) if (!fullest || p.buffered > fullest.buffered) fullest = p;
    return fullest!;
  }

  /** Writes a partition's buffered rows as one row group, and keeps nothing of them. */
  private async flush(p: Partition): Promise<void> {
    const { columns, buffered: rows } = p;
    if (!columns || !rows) return;
    p.columns = undefined;
    p.buffered = 0;
    p.rows += rows;
    this.buffered -= rows;
    const columnData = this.names.map((name, i) => ({ name, data: columns[i] }));
    // Encodes synchronously: the row group's footer metadata is in place before the bytes are written.
    const written = p.parquet.write({ columnData, rowGroupSize: rows });
    // The footer keeps each column's min and max until finish(). A string value cut from a larger string
    // (a CSV chunk) would keep that whole chunk alive for the rest of the file: keep copies instead.
    for (const { meta_data } of p.parquet.row_groups.at(-1)?.columns ?? []) {
      const statistics = meta_data?.statistics;
      if (typeof statistics?.min_value === 'string') statistics.min_value = copyString(statistics.min_value);
      if (typeof statistics?.max_value === 'string') statistics.max_value = copyString(statistics.max_value);
    }
    await written;
  }
}

/**
 * A copy of `s` that shares no memory with the text it was cut from. Engines may keep a substring as a
 * view into its parent (V8 does from 13 characters on), so a buffered cell cut from a line of the file
 * would keep the whole chunk the reader decoded (about 1 MiB) alive. Slicing a concatenation makes V8
 * flatten it into a new string first, which is what the slice then refers to.
 */
function copyString(s: string): string {
  return `${s} `.slice(0, -1);
}

/** Gives each string its own memory (see `copyString`); repeated values share one copy. */
class StringCopies {
  private static readonly MAX_ENTRIES = 4_096;
  private readonly copies = new Map<string, string>();
  private last = '';

  copy(s: string | null | undefined): string | null {
    if (s === undefined || s === null) return null;
    if (s === this.last) return this.last;
    let c = this.copies.get(s);
    if (c === undefined) {
      if (this.copies.size >= StringCopies.MAX_ENTRIES) this.copies.clear();
      c = copyString(s);
      this.copies.set(c, c); // keyed by the copy: the key must not keep the original alive either
    }
    this.last = c;
    return c;
  }
}

function checkSegment(what: string, value: string): void {
  if (!value || value.startsWith('.') || /[/\\]/.test(value)) throw new Error(`${what} is not a valid file name segment: '${value}'`);
}
