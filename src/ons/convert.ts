import { createHash } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { DataCardBuilder } from './card';
import { normaliseColumn } from './catalog';
import { baseName, DatasetLayout, resolveDataset } from './detect';
import { dataCardKey, dataCardMetadataKey, DEFAULT_PREFIXES, rejectedRowsKey } from './layout';
import { FileSource, openTable, OpenOptions } from './open';
import { FileSummary, processTable, RecordSink } from './process';
import { RawTable, RefusedFileError } from './types';
import { ProcessedParquetWriter, WrittenPartition } from './writers/parquet';
import { RejectedRowsWriter } from './writers/rejected';

/** Where each kind of output goes, relative to the output directory (the lake's prefixes). */
export interface OutputLayout {
  /** @default DEFAULT_PREFIXES.processedData */
  readonly processedDataPrefix?: string;
  /** @default DEFAULT_PREFIXES.dataCards */
  readonly dataCardsPrefix?: string;
  /** @default DEFAULT_PREFIXES.rejectedRows */
  readonly rejectedRowsPrefix?: string;
}

export interface InspectOptions extends OpenOptions {
  /** Called with the bytes read so far (CSV), for progress reports. */
  readonly onProgress?: (bytesRead: number) => void;
}

export interface ConvertOptions extends InspectOptions, OutputLayout {
  /** Local directory the outputs are written under. */
  readonly outDir: string;
  /** The source object's key (or path), recorded in every output. @default the file name */
  readonly sourceKey?: string;
  readonly sourceBucket?: string;
  readonly sourceVersion?: string;
  /** When the source version was stored (S3 LastModified, a file's mtime): where sources overlap, the newest wins. @default - null in `source_time` */
  readonly sourceTime?: Date;
}

export interface ConvertResult {
  readonly summary: FileSummary;
  /** SHA-256 of the source bytes (hex). */
  readonly contentHash: string;
  /** Output paths relative to `outDir`. */
  readonly parquet: WrittenPartition[];
  readonly card: string;
  readonly cardMetadata: string;
  readonly rejected?: string;
}

/** A file name safe in S3 keys and file systems: ASCII letters, digits, `.`, `_`, `-`. */
export function sourceName(fileName: string): string {
  const stem = baseName(fileName).replace(/\.[^.]+$/, '');
  return stem.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'file';
}

/** A source that counts the bytes read and hashes them when they are the whole file (`whole`: streamed to the end, or `bytes()`). */
interface Tapped extends FileSource {
  readonly whole: boolean;
}

/** Counts bytes as they stream past, and hashes them when a hash is given (convert; inspect needs none). */
function tap(source: FileSource, hash: ReturnType<typeof createHash> | undefined, onProgress?: (n: number) => void): Tapped {
  let read = 0;
  let whole = false;
  const random = source.read && source.size ? source : undefined;
  return {
    get whole() {
      return whole;
    },
    head: () => source.head(),
    bytes: async () => {
      const bytes = await source.bytes();
      hash?.update(bytes);
      whole = true;
      onProgress?.(bytes.length);
      return bytes;
    },
    stream: () => (async function* () {
      for await (const chunk of source.stream()) {
        hash?.update(chunk);
        read += chunk.length;
        onProgress?.(read);
        yield chunk;
      }
      whole = true;
    })(),
    ...random && {
      size: () => random.size!(),
      read: async (position: number, length: number) => {
        const bytes = await random.read!(position, length);
        read += bytes.length;
        onProgress?.(read);
        return bytes;
      },
    },
  };
}

async function open(fileName: string, source: FileSource, options: InspectOptions, hash?: ReturnType<typeof createHash>) {
  const tapped = tap(source, hash, options.onProgress);
  const table: RawTable = await openTable(tapped, options);
  const layout: DatasetLayout = resolveDataset(fileName, table.header);
  return { table, layout, tapped };
}

/**
 * Reads a file once and reports what it holds (the `inspect` command), writing nothing.
 * Throws RefusedFileError when the file cannot be read as ONS data.
 */
export async function inspectFile(fileName: string, source: FileSource, options: InspectOptions = {}): Promise<FileSummary> {
  const { table, layout } = await open(fileName, source, options);
  const summary = await processTable(baseName(fileName), table, layout);
  if (summary.rows === 0) throw new RefusedFileError('the file has a header but no data rows');
  return summary;
}

/**
 * Reads a file once and writes what the processing function writes: processed Parquet partitioned by
 * dataset/year/month of the data's local time, the data card (Markdown + `.metadata.json`) and the
 * rejected rows with their reasons. Outputs get their final names only when everything succeeded; on a
 * failure nothing is left but (for a file whose every row was refused) the rejected-rows report.
 */
export async function convertFile(fileName: string, source: FileSource, options: ConvertOptions): Promise<ConvertResult> {
  const hash = createHash('sha256');
  const { table, layout, tapped } = await open(fileName, source, options, hash);
  const name = sourceName(fileName);
  const processedPrefix = options.processedDataPrefix ?? DEFAULT_PREFIXES.processedData;
  const cardPath = dataCardKey(options.dataCardsPrefix ?? DEFAULT_PREFIXES.dataCards, layout.id, name);
  const cardMetadataPath = dataCardMetadataKey(cardPath);
  const rejectedPath = rejectedRowsKey(options.rejectedRowsPrefix ?? DEFAULT_PREFIXES.rejectedRows, layout.id, name);

  const parquet = new ProcessedParquetWriter({
    outDir: join(options.outDir, processedPrefix),
    schema: {
      dataset: layout.id,
      dimensions: layout.dimensions.map((d) => d.name),
      labels: layout.labels.map((l) => l.name),
      measures: layout.measures.map((m) => m.name),
    },
    source: { key: options.sourceKey ?? baseName(fileName), version: options.sourceVersion, time: options.sourceTime?.getTime() },
    sourceName: name,
  });
  const rejected = new RejectedRowsWriter(join(options.outDir, rejectedPath), table.header.map((h) => h || normaliseColumn(h)));
  const card = new DataCardBuilder(layout);
  const sink: RecordSink = {
    record: async (r) => {
      card.add(r);
      await parquet.write(r);
    },
    rejected: (r) => rejected.write(r),
  };

  try {
    const summary = await processTable(baseName(fileName), table, layout, sink);
    if (summary.rows === 0) throw new RefusedFileError('the file has a header but no data rows');
    if (summary.records === 0) {
      await parquet.abort();
      const report = await rejected.finish();
      throw new RefusedFileError(`none of the ${summary.rows} data rows is valid; reasons per row in ${report ?? 'the rejected-rows report'}`);
    }
    // Read by random access (XLSX), the reader skipped parts of the file: hash it in one more streamed pass.
    if (!tapped.whole) for await (const chunk of source.stream()) hash.update(chunk);
    const contentHash = hash.digest('hex');
    const built = card.build(summary, {
      key: options.sourceKey ?? baseName(fileName), bucket: options.sourceBucket, version: options.sourceVersion, contentHash,
    });
    await writeAtomically(join(options.outDir, cardPath), built.markdown);
    await writeAtomically(join(options.outDir, cardMetadataPath), JSON.stringify(built.metadata, null, 2));
    const partitions = (await parquet.finish(contentHash.slice(0, 16)))
      .map((p) => ({ ...p, relativePath: posix.join(processedPrefix, p.relativePath) }));
    const rejectedFile = await rejected.finish();
    return {
      summary,
      contentHash,
      parquet: partitions,
      card: cardPath,
      cardMetadata: cardMetadataPath,
      rejected: rejectedFile ? rejectedPath : undefined,
    };
  } catch (error) {
    await parquet.abort();
    await rejected.abort();
    await rm(join(options.outDir, cardPath), { force: true });
    await rm(join(options.outDir, cardMetadataPath), { force: true });
    throw error;
  }
}

async function writeAtomically(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.partial`, text);
  await rename(`${path}.partial`, path);
}
