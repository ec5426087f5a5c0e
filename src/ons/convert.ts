import { createHash } from 'node:crypto';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, posix, relative, sep } from 'node:path';
import { DataCardBuilder } from './card';
import { normaliseColumn } from './catalog';
import { baseName, DatasetLayout, resolveDataset } from './detect';
import { dataCardKey, dataCardMetadataKey, DEFAULT_PREFIXES, isOutputOf, outputStem, rejectedRowsKey, sourceId, sourceIdentity } from './layout';
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

/** What inspect takes: how to open the file (the sheet, the XLSX limit, progress reports). */
export interface InspectOptions extends OpenOptions {}

export interface ConvertOptions extends InspectOptions, OutputLayout {
  /** Local directory the outputs are written under. */
  readonly outDir: string;
  /**
   * The source object's key (or path), recorded in every output; with `sourceBucket`, it is the source's
   * identity (`ons/layout.ts` sourceIdentity) that names the outputs. @default the file name
   */
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
  /** Outputs of an earlier version of the same source that this one no longer has (a month it dropped), removed; relative to `outDir`. */
  readonly removed: string[];
}

/** Why a file whose every data row was rejected is refused (convert refuses it; inspect reports it, then fails). */
export function noValidRows(summary: FileSummary): string {
  return `none of the ${summary.rows} data rows is valid`;
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

/** Hashes the bytes as they stream past when a hash is given (convert; inspect needs none), and tells whether they were the whole file. */
function tap(source: FileSource, hash: ReturnType<typeof createHash> | undefined): Tapped {
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
      return bytes;
    },
    stream: () => (async function* () {
      for await (const chunk of source.stream()) {
        hash?.update(chunk);
        yield chunk;
      }
      whole = true;
    })(),
    ...random && {
      size: () => random.size!(),
      read: (position: number, length: number) => random.read!(position, length),
    },
  };
}

async function open(fileName: string, source: FileSource, options: InspectOptions, hash?: ReturnType<typeof createHash>) {
  const tapped = tap(source, hash);
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
 * rejected rows with their reasons. Every output is named after the source's identity (the key, not the
 * content), so a revised file converted into the same directory replaces its earlier outputs, and the
 * earlier outputs it no longer has (a month it dropped) are removed. Outputs are written under temporary
 * names and renamed only when everything succeeded; on a failure nothing is left but (for a file whose
 * every row was refused) the rejected-rows report, and the earlier outputs stay as they were.
 */
export async function convertFile(fileName: string, source: FileSource, options: ConvertOptions): Promise<ConvertResult> {
  const hash = createHash('sha256');
  const { table, layout, tapped } = await open(fileName, source, options, hash);
  const name = sourceName(fileName);
  const id = sourceId(sourceIdentity(options.sourceKey ?? baseName(fileName), options.sourceBucket));
  const stem = outputStem(name, id);
  const processedPrefix = options.processedDataPrefix ?? DEFAULT_PREFIXES.processedData;
  const cardsPrefix = options.dataCardsPrefix ?? DEFAULT_PREFIXES.dataCards;
  const rejectedPrefix = options.rejectedRowsPrefix ?? DEFAULT_PREFIXES.rejectedRows;
  const cardPath = dataCardKey(cardsPrefix, layout.id, stem);
  const cardMetadataPath = dataCardMetadataKey(cardPath);
  const rejectedPath = rejectedRowsKey(rejectedPrefix, layout.id, stem);

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
      throw new RefusedFileError(`${noValidRows(summary)}; reasons per row in ${report ?? 'the rejected-rows report'}`);
    }
    // Read by random access (XLSX), the reader skipped parts of the file: hash it in one more streamed pass.
    if (!tapped.whole) for await (const chunk of source.stream()) hash.update(chunk);
    const contentHash = hash.digest('hex');
    const built = card.build(summary, {
      key: options.sourceKey ?? baseName(fileName), bucket: options.sourceBucket, version: options.sourceVersion, contentHash,
    });
    // The card keeps a temporary name until the data has its final names: an earlier card of this source stays until then.
    await writePartial(join(options.outDir, cardPath), built.markdown);
    await writePartial(join(options.outDir, cardMetadataPath), JSON.stringify(built.metadata, null, 2));
    const partitions = (await parquet.finish(id))
      .map((p) => ({ ...p, relativePath: posix.join(processedPrefix, p.relativePath) }));
    const rejectedFile = await rejected.finish();
    await rename(`${join(options.outDir, cardMetadataPath)}.partial`, join(options.outDir, cardMetadataPath));
    await rename(`${join(options.outDir, cardPath)}.partial`, join(options.outDir, cardPath));
    const written = [...partitions.map((p) => p.relativePath), cardPath, cardMetadataPath, ...(rejectedFile ? [rejectedPath] : [])];
    const removed = await removeEarlierOutputs(options.outDir, [processedPrefix, cardsPrefix, rejectedPrefix], stem, new Set(written));
    return {
      summary,
      contentHash,
      parquet: partitions,
      card: cardPath,
      cardMetadata: cardMetadataPath,
      rejected: rejectedFile ? rejectedPath : undefined,
      removed,
    };
  } catch (error) {
    await parquet.abort();
    await rejected.abort();
    await rm(`${join(options.outDir, cardPath)}.partial`, { force: true });
    await rm(`${join(options.outDir, cardMetadataPath)}.partial`, { force: true });
    throw error;
  }
}

async function writePartial(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.partial`, text);
}

/** Removes the files under `prefixes` of `outDir` named after `stem` (an earlier version's outputs) that are not in `keep`; returns their paths. */
async function removeEarlierOutputs(outDir: string, prefixes: string[], stem: string, keep: Set<string>): Promise<string[]> {
  const removed: string[] = [];
  for (const prefix of new Set(prefixes)) {
    const dir = join(outDir, prefix);
    const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isFile() || !isOutputOf(entry.name, stem)) continue;
      const path = relative(outDir, join(entry.parentPath, entry.name)).split(sep).join('/');
      if (keep.has(path)) continue;
      await rm(join(outDir, path), { force: true });
      removed.push(path);
    }
  }
  return removed.sort();
}
