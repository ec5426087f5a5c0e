import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
// @ts-expect-error TS1479: ESM-only package, bundled by esbuild (tests: transpiled by ts-jest).
import { ByteWriter, ParquetWriter, type SchemaElement } from 'hyparquet-writer';
import { OnsRecord } from '../types';

/** The columns of one dataset in the processed zone. */
export interface ProcessedSchema {
  readonly dataset: string;
  readonly dimensions: string[];
  readonly labels: string[];
  readonly measures: string[];
}

/** The raw-zone object the records came from. */
export interface ParquetSource {
  readonly key: string;
  readonly version?: string;
}

/** A finished file, under its final name. */
export interface WrittenPartition {
  /** The file: `relativePath` joined to outDir. */
  readonly path: string;
  /** `dataset=<dataset>/year=YYYY/month=MM/<sourceName>-<contentHash>.parquet`, always with `/`. */
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
}

type Value = string | number | null;

/** A Parquet byte sink that appends each row group to a file and then drops its buffer. */
class AppendingSink extends ByteWriter {
  private written: Promise<void>;

  constructor(readonly path: string) {
    super();
    this.written = mkdir(dirname(path), { recursive: true }).then(() => writeFile(path, new Uint8Array(0), { flag: 'wx' }));
    this.written.catch(() => undefined); // surfaced by the next flush; not an unhandled rejection meanwhile
  }

  /** Resolves once every pending file operation has ended, successfully or not. */
  settled(): Promise<void> {
    return this.written.catch(() => undefined);
  }

  // ParquetWriter calls this after every row group and awaits it.
  flush(): Promise<void> {
    const bytes = new Uint8Array(this.buffer, 0, this.index);
    this.buffer = new ArrayBuffer(1024);
    this.view = new DataView(this.buffer);
    this.index = 0;
    // Chained so appends stay in order even if callers do not await write().
    this.written = this.written.then(() => appendFile(this.path, bytes));
    return this.written;
  }

  finish(): Promise<void> {
    return this.flush();
  }
}

interface Partition {
  readonly year: string;
  readonly month: string;
  readonly sink: AppendingSink;
  readonly parquet: ParquetWriter;
  columns: Value[][];
  rows: number;
}

const RESERVED = ['dataset', 'year', 'month'];

/**
 * Writes records to the processed zone as Hive-partitioned Parquet (dataset/year/month by local time).
 * Buffers at most `rowGroupSize` rows per partition; files keep a temporary name until `finish()`.
 */
export class ProcessedParquetWriter {
  private readonly names: string[];
  private readonly schemaElements: SchemaElement[];
  private readonly partitions = new Map<string, Partition>();
  private readonly rowGroupSize: number;
  private readonly token = randomBytes(6).toString('hex');
  private state: 'open' | 'finishing' | 'closed' = 'open';

  constructor(private readonly options: ProcessedParquetWriterOptions) {
    const { schema, sourceName } = options;
    this.rowGroupSize = options.rowGroupSize ?? 100_000;
    if (!Number.isInteger(this.rowGroupSize) || this.rowGroupSize < 1) throw new Error(`rowGroupSize must be a positive integer: ${this.rowGroupSize}`);
    checkSegment('dataset', schema.dataset);
    checkSegment('sourceName', sourceName);
    const str = (name: string): SchemaElement => ({ name, type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'UTF8', logical_type: { type: 'STRING' } });
    this.schemaElements = [
      { name: 'time', type: 'INT64', repetition_type: 'OPTIONAL', converted_type: 'TIMESTAMP_MILLIS', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' } },
      str('local_time'),
      ...schema.dimensions.map(str),
      ...schema.labels.map(str),
      ...schema.measures.map((name): SchemaElement => ({ name, type: 'DOUBLE', repetition_type: 'OPTIONAL' })),
      str('source_key'),
      str('source_version'),
      { name: 'source_row', type: 'INT32', repetition_type: 'OPTIONAL' },
    ];
    this.names = this.schemaElements.map((e) => e.name);
    const clash = this.names.find((n, i) => this.names.indexOf(n) !== i || RESERVED.includes(n));
    if (clash) throw new Error(`column name '${clash}' is duplicated or reserved for a partition key`);
  }

  /** Buffers one record; writes a row group when its partition's buffer is full. */
  async write(record: OnsRecord): Promise<void> {
    if (this.state !== 'open') throw new Error('ProcessedParquetWriter is closed');
    const { schema, source } = this.options;
    if (record.dataset !== schema.dataset) throw new Error(`record of dataset '${record.dataset}' given to the writer of '${schema.dataset}'`);
    const m = /^(\d{4})-(\d{2})-/.exec(record.local);
    if (!m) throw new Error(`record local time is not YYYY-MM-DDTHH:MM:SS: '${record.local}'`);
    const p = this.partition(m[1], m[2]);
    const values: Value[] = [
      record.time,
      record.localRaw,
      ...schema.dimensions.map((d) => record.dimensions[d] ?? null),
      ...schema.labels.map((l) => record.labels[l] ?? null),
      ...schema.measures.map((v) => record.measures[v] ?? null),
      source.key,
      source.version ?? null,
      record.row,
    ];
    values.forEach((v, i) => p.columns[i].push(v));
    if (p.columns[0].length >= this.rowGroupSize) await this.flush(p);
  }

  /** Writes what is buffered, closes every file and gives each its final name. */
  async finish(contentHash: string): Promise<WrittenPartition[]> {
    if (this.state !== 'open') throw new Error('ProcessedParquetWriter is closed');
    checkSegment('contentHash', contentHash);
    this.state = 'finishing';
    const { outDir, schema, sourceName } = this.options;
    const partitions = [...this.partitions.values()].sort((a, b) => (a.year + a.month).localeCompare(b.year + b.month));
    try {
      // Complete every file before any gets its final name.
      for (const p of partitions) {
        if (p.columns[0].length) await this.flush(p);
        await p.parquet.finish();
      }
      const written: WrittenPartition[] = [];
      for (const { year, month, sink, rows } of partitions) {
        const dir = `dataset=${schema.dataset}/year=${year}/month=${month}`;
        const relativePath = `${dir}/${sourceName}-${contentHash}.parquet`;
        const path = join(outDir, relativePath);
        await mkdir(join(outDir, dir), { recursive: true });
        await rename(sink.path, path);
        written.push({ path, relativePath, year, month, rows, bytes: sink.offset });
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
    await Promise.all([...this.partitions.values()].map(async (p) => {
      await p.sink.settled();
      await rm(p.sink.path, { force: true });
    }));
  }

  private partition(year: string, month: string): Partition {
    const key = `${year}-${month}`;
    let p = this.partitions.get(key);
    if (!p) {
      // Temporaries live in outDir itself, so an aborted run leaves no partition directories behind.
      const sink = new AppendingSink(join(this.options.outDir, `.${this.options.sourceName}.${key}.${this.token}.partial`));
      const parquet = new ParquetWriter({ writer: sink, schema: [{ name: 'root', num_children: this.names.length }, ...this.schemaElements] });
      p = { year, month, sink, parquet, columns: this.names.map(() => []), rows: 0 };
      this.partitions.set(key, p);
    }
    return p;
  }

  private async flush(p: Partition): Promise<void> {
    const columnData = this.names.map((name, i) => ({ name, data: p.columns[i] }));
    const rows = p.columns[0].length;
    p.rows += rows;
    p.columns = this.names.map(() => []);
    await p.parquet.write({ columnData, rowGroupSize: rows });
  }
}

function checkSegment(what: string, value: string): void {
  if (!value || value.startsWith('.') || /[/\\]/.test(value)) throw new Error(`${what} is not a valid file name segment: '${value}'`);
}
