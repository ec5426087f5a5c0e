import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { DatasetDefinition } from './catalog';

/**
 * The lake's layout, in one place: where each output goes (prefixes, partition paths, card, rejected,
 * quarantine and document keys), the columns the platform adds to a dataset's own, and which columns
 * identify a series. The Parquet writer, the Glue tables, the handlers, the loaders and the knowledge
 * query all read it from here, so they cannot drift apart.
 */

/**
 * The default prefixes (each ends with `/`). The `@default`s of `DataLakeOptions` repeat them for the
 * API docs; a test keeps the two equal.
 */
export const DEFAULT_PREFIXES = {
  /** Processed Parquet, in the processed bucket. */
  processedData: 'processed/',
  /** Documents for the knowledge base, in the processed bucket. */
  documents: 'knowledge/documents/',
  /** Data cards, in the processed bucket. */
  dataCards: 'knowledge/cards/',
  /** Athena query results, in the processed bucket. */
  queryResults: 'athena-results/',
  /** Rejected rows, in the failed bucket. */
  rejectedRows: 'rejected/',
  /** Quarantined raw objects and their error reports, in the failed bucket. */
  quarantine: 'quarantine/',
  /** A run's outputs before they get their final names, in the processed bucket (no table reads it). */
  staging: 'staging/',
  /** Operational reports (a reprocessing run's manifest and per-file report), in the processed bucket (no table reads it). */
  reports: 'reports/',
} as const;

/** The partition keys of the processed zone, in path order; no dataset may have a column of these names. */
export const PARTITION_KEYS: readonly string[] = ['dataset', 'year', 'month'];

/**
 * `dataset=<id>/year=YYYY/month=MM/`, the folder of a dataset's month under the processed prefix; with
 * no year and month, the dataset's folder `dataset=<id>/`. Year and month are of the data's local
 * (Brasília) time; the month has two digits.
 */
export function partitionPath(dataset: string, year?: string, month?: string): string {
  const datasetPath = `dataset=${dataset}/`;
  return year === undefined ? datasetPath : `${datasetPath}year=${year}/month=${month}/`;
}

/**
 * The identity of a source: `s3://<bucket>/<key>` (the ledger's partition key) for an object, the key
 * alone for a local file. Every output of a source is named after it, so a new version of the source
 * replaces its own outputs and never another source's.
 */
export function sourceIdentity(key: string, bucket?: string): string {
  return bucket === undefined ? key : `s3://${bucket}/${key}`;
}

/** 16 hex digits of the SHA-256 of a source identity: short, stable, and different for two keys with the same file name. */
export function sourceId(identity: string): string {
  return createHash('sha256').update(identity).digest('hex').slice(0, 16);
}

/**
 * The stem every output of a source shares: `<sourceName>.<sourceId>` (card, rejected rows; Parquet parts
 * add their part). The `.` keeps these names apart from the content-hash names of earlier releases (`-<16 hex>`).
 */
export function outputStem(sourceName: string, id: string): string {
  return `${sourceName}.${id}`;
}

/** The file name of a processed part: `<sourceName>.<sourceId>.parquet`, then `-2`, `-3`… for a partition's later parts. */
export function partFileName(sourceName: string, id: string, part = 1): string {
  return `${outputStem(sourceName, id)}${part > 1 ? `-${part}` : ''}.parquet`;
}

/** True when `fileName` (no folder) is an output of the source whose stem is `stem`: a Parquet part, the card, its metadata or the rejected rows. */
export function isOutputOf(fileName: string, stem: string): boolean {
  if (!fileName.startsWith(stem)) return false;
  return /^(?:-\d+)?\.parquet$|^\.md$|^\.md\.metadata\.json$|^\.rejected\.csv$/.test(fileName.slice(stem.length));
}

/** Where a run stages its outputs before copying them to their final names: `<stagingPrefix><sourceId>/<run>/`. */
export function stagingPrefix(prefix: string, id: string, run: string): string {
  return `${prefix}${id}/${run}/`;
}

/** A run's `n`th output in staging: `<run prefix><n>/<file name>` (no partition folders: a staged object is never read as data). */
export function stagedKey(runPrefix: string, n: number, finalKey: string): string {
  return `${runPrefix}${n}/${posix.basename(finalKey)}`;
}

/** A processed part's key (under any prefix) as its partition, or undefined when it is not one. */
export function parsePartKey(key: string): { dataset: string; year: string; month: string } | undefined {
  const m = /(?:^|\/)dataset=([^/]+)\/year=(\d{4})\/month=(\d{2})\/[^/]+\.parquet$/.exec(key);
  return m ? { dataset: m[1], year: m[2], month: m[3] } : undefined;
}

/** The data card of a source: `<dataCardsPrefix><dataset>/<stem>.md` (the stem from `outputStem`). */
export function dataCardKey(dataCardsPrefix: string, dataset: string, stem: string): string {
  return posix.join(dataCardsPrefix, dataset, `${stem}.md`);
}

/** The metadata file Bedrock reads beside a data card. */
export function dataCardMetadataKey(cardKey: string): string {
  return `${cardKey}.metadata.json`;
}

/**
 * The dataset of a data card's key (`…/cards/<dataset>/<file>`, under the default prefix or one that
 * also ends with `cards/`), or undefined.
 */
export function dataCardDataset(key: string): string | undefined {
  return /(?:^|\/)cards\/([a-z0-9_]{1,64})\/[^/]+$/.exec(key)?.[1];
}

/** The rejected rows of a source: `<rejectedRowsPrefix><dataset>/<stem>.rejected.csv` (the stem from `outputStem`). */
export function rejectedRowsKey(rejectedRowsPrefix: string, dataset: string, stem: string): string {
  return posix.join(rejectedRowsPrefix, dataset, `${stem}.rejected.csv`);
}

/** Where a time-series engine's loader reports the records it rejected: `<rejectedRowsPrefix>timeseries/`. */
export function rejectedRecordsPrefix(rejectedRowsPrefix: string): string {
  return `${rejectedRowsPrefix}timeseries/`;
}

/** A loader's report of the records its engine rejected: `<rejectedRecordsPrefix><dataset>/<stem>.rejected-records.jsonl`. */
export function rejectedRecordsKey(prefix: string, dataset: string, stem: string): string {
  return `${prefix}${dataset}/${stem}.rejected-records.jsonl`;
}

/** A document's copy for the knowledge base: its raw key under the documents prefix. */
export function documentKey(documentsPrefix: string, sourceKey: string): string {
  return `${documentsPrefix}${sourceKey}`;
}

/** A quarantined object's copy, `<quarantinePrefix>YYYY/MM/DD/<raw key>` (UTC day of `at`); its report is `<copy>.error.json`. */
export function quarantineKey(quarantinePrefix: string, at: Date, sourceKey: string): string {
  return `${quarantinePrefix}${at.toISOString().slice(0, 10).replace(/-/g, '/')}/${sourceKey}`;
}

/** Where one reprocessing run keeps its files: `<reportsPrefix>reprocess/<run>/` (the run is the execution's name). */
export function reprocessRunPrefix(reportsPrefix: string, run: string): string {
  return `${reportsPrefix}reprocess/${run}/`;
}

/** A reprocessing run's selection, one file per line (JSON Lines, what the Distributed Map reads). */
export function reprocessManifestKey(runPrefix: string): string {
  return `${runPrefix}manifest.jsonl`;
}

/** What one file of a reprocessing run ended as, written by its iteration (gathered into the report, then deleted). */
export function reprocessRowKey(runPrefix: string, index: number): string {
  return `${runPrefix}rows/${String(index).padStart(8, '0')}.json`;
}

/** A reprocessing run's report: counts by outcome and one row per file. */
export function reprocessReportKey(runPrefix: string): string {
  return `${runPrefix}report.json`;
}

/** Column types of the processed Parquet, as Glue names them. */
export type ProcessedColumnType = 'timestamp' | 'string' | 'double' | 'int';

/** What a column of the processed Parquet holds. */
export type ProcessedColumnRole = 'time' | 'localTime' | 'dimension' | 'label' | 'measure' | 'sourceKey' | 'sourceVersion' | 'sourceTime' | 'sourceRow';

export interface ProcessedColumn {
  readonly name: string;
  readonly type: ProcessedColumnType;
  readonly role: ProcessedColumnRole;
}

/** The columns the platform adds to every dataset's own, by role. */
export const ADDED_COLUMNS = {
  /** The UTC instant (Parquet TIMESTAMP_MILLIS, adjusted to UTC). */
  time: 'time',
  /** Brasília civil time as written in the source file. */
  localTime: 'local_time',
  sourceKey: 'source_key',
  /** The S3 version id of the source object (null when its bucket had none). */
  sourceVersion: 'source_version',
  /** When that version was stored (S3 LastModified; the file's modification time for the command), UTC: see currentRowOrder. */
  sourceTime: 'source_time',
  /** The row of the source file, as a spreadsheet numbers it (header = 1). */
  sourceRow: 'source_row',
} as const;

/** The dataset's own columns, by kind. */
export interface DatasetColumns {
  readonly dimensions: readonly string[];
  readonly labels: readonly string[];
  readonly measures: readonly string[];
}

/**
 * Every column of a dataset's processed Parquet, in file order: time, local time, dimensions, labels,
 * measures, then the source key, version, time and row. Check them with `columnClash`.
 */
export function processedColumns(own: DatasetColumns): ProcessedColumn[] {
  const columns: ProcessedColumn[] = [
    { name: ADDED_COLUMNS.time, type: 'timestamp', role: 'time' },
    { name: ADDED_COLUMNS.localTime, type: 'string', role: 'localTime' },
    ...own.dimensions.map((name): ProcessedColumn => ({ name, type: 'string', role: 'dimension' })),
    ...own.labels.map((name): ProcessedColumn => ({ name, type: 'string', role: 'label' })),
    ...own.measures.map((name): ProcessedColumn => ({ name, type: 'double', role: 'measure' })),
    { name: ADDED_COLUMNS.sourceKey, type: 'string', role: 'sourceKey' },
    { name: ADDED_COLUMNS.sourceVersion, type: 'string', role: 'sourceVersion' },
    { name: ADDED_COLUMNS.sourceTime, type: 'timestamp', role: 'sourceTime' },
    { name: ADDED_COLUMNS.sourceRow, type: 'int', role: 'sourceRow' },
  ];
  return columns;
}

/** The names a dataset's own column may not take: the platform's columns and the partition keys. */
export const RESERVED_COLUMN_NAMES: readonly string[] = [...Object.values(ADDED_COLUMNS), ...PARTITION_KEYS];

/** The first column whose name is given twice (an own column may repeat an added one) or is a partition key; undefined when none. */
export function columnClash(columns: readonly ProcessedColumn[]): string | undefined {
  const names = columns.map((c) => c.name);
  return names.find((n, i) => names.indexOf(n) !== i || PARTITION_KEYS.includes(n));
}

/**
 * The identity rule: which of a file's columns identify a series. For a catalog dataset, its identity
 * dimensions present in the file, each replaced by the catalog's fallback column when it is missing;
 * outside the catalog, the `id_*`/`cod_*` columns (the ONS naming convention). Names (`nom_*`) never
 * identify a series.
 */
export function identityDimensions(definition: DatasetDefinition | undefined, columns: readonly string[]): string[] {
  const present = (name: string | undefined): name is string => name !== undefined && columns.includes(name);
  if (!definition) return columns.filter((c) => /^(id|cod)_/.test(c));
  return definition.dimensions.map((d) => (present(d) ? d : definition.identityFallback?.[d])).filter(present);
}

/**
 * The current-version rule where sources overlap: when two source objects hold a row of the same series at the
 * same instant (a yearly and a monthly edition, one file under two keys), the row of the newest source version
 * wins: the latest `source_time`, then the greater `source_key` (so the answer never depends on read order).
 * The lake's `<dataset>_current` views and every reader of the processed zone order rows by this.
 */
export const CURRENT_ROW_ORDER: ReadonlyArray<{ readonly column: string; readonly descending: true }> = [
  { column: ADDED_COLUMNS.sourceTime, descending: true },
  { column: ADDED_COLUMNS.sourceKey, descending: true },
];
