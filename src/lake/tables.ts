import { DatasetTableProps } from './data-lake-props';
import { CATALOG, DatasetDefinition } from '../ons/catalog';
import {
  columnClash, CURRENT_ROW_ORDER, DatasetColumns, PARTITION_KEYS, ProcessedColumn, ProcessedColumnRole, processedColumns, ProcessedColumnType,
  RESERVED_COLUMN_NAMES,
} from '../ons/layout';

/**
 * One column of a dataset's table.
 * @internal
 */
export interface TableColumn {
  readonly name: string;
  /** Glue/Hive type. */
  readonly type: ProcessedColumnType;
  readonly role: ProcessedColumnRole;
  readonly comment: string;
}

/**
 * What a dataset's table holds: its name, description and columns, in the order the processor writes them.
 * @internal
 */
export interface TableSchema {
  readonly datasetId: string;
  readonly description: string;
  readonly columns: TableColumn[];
}

/** Glue's limits: column comments, table descriptions. */
const COLUMN_COMMENT_MAX = 255;
const TABLE_DESCRIPTION_MAX = 2048;

/** Names Athena takes unquoted: lower-case letters, digits, underscores, starting with a letter. */
const NAME = /^[a-z][a-z0-9_]{0,254}$/;

/**
 * Tables for every catalog dataset, then for `additional`, with the columns of the processed Parquet:
 * `time` (UTC instant), `local_time` (Brasília time as written), the dimensions and labels (text), the
 * measures (double), then the source object's key, version and row.
 * @internal
 */
export function tableSchemas(additional: readonly DatasetTableProps[] = []): TableSchema[] {
  const schemas = CATALOG.map(fromCatalog);
  additional.forEach((d, i) => schemas.push(fromProps(d, `DataLakeProps.additionalDatasets[${i}]`)));
  const seen = new Set<string>();
  for (const s of schemas) {
    if (seen.has(s.datasetId)) {
      throw new Error(`DataLakeProps.additionalDatasets: dataset '${s.datasetId}' already has a table (${CATALOG.some((d) => d.id === s.datasetId) ? 'it is in the catalog' : 'listed twice'})`);
    }
    seen.add(s.datasetId);
  }
  return schemas;
}

function fromCatalog(def: DatasetDefinition): TableSchema {
  const optional = (name: string) => (def.optional?.includes(name) ? ' Absent from some publications (null there).' : '');
  const fallbackFor = (name: string) => Object.entries(def.identityFallback ?? {}).find(([, fallback]) => fallback === name)?.[0];
  const own = { dimensions: def.dimensions, labels: def.labels, measures: def.measures.map((m) => m.name) };
  const columns = tableColumns(own, def.time, (c) => {
    if (c.role === 'dimension') return `Identity dimension: part of the series key.${optional(c.name)}`;
    if (c.role === 'label') {
      const identifies = fallbackFor(c.name);
      const role = identifies ? ` Identifies the series in files without ${identifies}.` : '';
      return `Descriptive label, never part of the series key.${role}${optional(c.name)}`;
    }
    const m = def.measures.find((x) => x.name === c.name)!;
    return `${m.description.en} / ${m.description.pt} [${m.unit ?? 'unit not stated by ONS'}].${optional(c.name)}`;
  });
  const description = `${def.title.en} (${def.title.pt}), ONS dataset ${def.id}, grain ${def.grain}. ${def.description.en} | ${def.description.pt}`;
  return { datasetId: def.id, description: truncate(description, TABLE_DESCRIPTION_MAX), columns };
}

function fromProps(d: DatasetTableProps, where: string): TableSchema {
  checkName(`${where}.datasetId`, d.datasetId);
  if (d.measures.length === 0) throw new Error(`${where}.measures: a dataset needs at least one measure`);
  const own = { dimensions: d.dimensions ?? [], labels: d.labels ?? [], measures: d.measures.map((m) => m.name) };
  [...own.dimensions, ...own.labels, ...own.measures].forEach((name) => checkName(`${where} column`, name));
  const clash = columnClash(processedColumns(own));
  if (clash) {
    throw new Error(`${where}: column '${clash}' is listed twice or is one the processor adds or partitions by (${RESERVED_COLUMN_NAMES.join(', ')})`);
  }
  const columns = tableColumns(own, 'the time column', (c) => {
    if (c.role === 'dimension') return 'Identity dimension: part of the series key.';
    if (c.role === 'label') return 'Descriptive label, never part of the series key.';
    const m = d.measures.find((x) => x.name === c.name)!;
    return `${m.description ?? m.name} [${m.unit ?? 'unit not stated'}].`;
  });
  const description = d.description ?? `ONS dataset ${d.datasetId} (outside the catalog; read by the ONS naming convention).`;
  if (description.length > TABLE_DESCRIPTION_MAX) throw new Error(`${where}.description: at most ${TABLE_DESCRIPTION_MAX} characters, got ${description.length}`);
  return { datasetId: d.datasetId, description, columns };
}

/**
 * The table's columns: those of the processed Parquet (`processedColumns`, one home for their names,
 * order and types), with the comments of the platform's columns here and of the dataset's own from `comment`.
 */
function tableColumns(own: DatasetColumns, timeSource: string, comment: (c: ProcessedColumn) => string): TableColumn[] {
  const added: Partial<Record<ProcessedColumn['role'], string>> = {
    time: `Instant of the row in UTC: ${timeSource} read as Brasília civil time (America/Sao_Paulo, with historical DST).`,
    localTime: `Brasília civil time as written in the source file (${timeSource}).`,
    sourceKey: 'S3 key of the raw file the row came from.',
    sourceVersion: 'S3 version id of that raw file (null when the bucket had none).',
    sourceTime: 'When that version of the raw file was stored (UTC): where two sources hold a series at one instant, the newest wins (the _current view).',
    sourceRow: 'Row of the raw file, as a spreadsheet numbers it (header = 1).',
  };
  return processedColumns(own)
    .map((c) => ({ name: c.name, type: c.type, role: c.role, comment: truncate(added[c.role] ?? comment(c), COLUMN_COMMENT_MAX) }));
}

/**
 * The partition columns of a dataset's table: the processed zone's partition keys below the dataset (its location).
 * @internal
 */
export const TABLE_PARTITION_KEYS = PARTITION_KEYS.filter((k) => k !== 'dataset');

/**
 * The name of a dataset's view of current rows.
 * @internal
 */
export function currentViewName(datasetId: string): string {
  return `${datasetId}_current`;
}

/**
 * The SQL of a dataset's view of current rows (Athena/Trino, and DuckDB alike): every column of the table
 * and its partition columns, one row per (series, instant), that of the newest source version
 * (CURRENT_ROW_ORDER). The window is partitioned by year and month too (an instant lies in one), so a filter
 * on them still prunes partitions through the view.
 * @internal
 */
export function currentViewSql(schema: TableSchema): string {
  const q = (name: string) => `"${name}"`;
  const columns = [...schema.columns.map((c) => c.name), ...TABLE_PARTITION_KEYS];
  const key = [...TABLE_PARTITION_KEYS, ...schema.columns.filter((c) => c.role === 'dimension' || c.role === 'time').map((c) => c.name)];
  const order = CURRENT_ROW_ORDER.map((o) => `${q(o.column)} DESC NULLS LAST`);
  return `SELECT ${columns.map(q).join(', ')} FROM (SELECT *, row_number() OVER (PARTITION BY ${key.map(q).join(', ')} `
    + `ORDER BY ${order.join(', ')}) AS current_rank FROM ${q(schema.datasetId)}) AS ranked WHERE current_rank = 1`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * Throws unless `value` is a name Athena and Glue take unquoted.
 * @internal
 */
export function checkName(prop: string, value: string): string {
  if (!NAME.test(value)) {
    throw new Error(`${prop}: expected lower-case letters, digits and underscores, starting with a letter, at most 255 characters, got '${value}'`);
  }
  return value;
}
