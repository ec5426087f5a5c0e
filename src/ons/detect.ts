import { Aggregation, CATALOG, DatasetDefinition, datasetForFile, normaliseColumn } from './catalog';
import { identityDimensions } from './layout';
import { RefusedFileError } from './types';

/** A column of the file, by normalised name and position. */
export interface Column {
  readonly name: string;
  readonly index: number;
}

export interface MeasureColumn extends Column {
  readonly unit: string | null;
  readonly aggregation: Aggregation;
}

/** How the columns of one file map onto a dataset. */
export interface DatasetLayout {
  readonly id: string;
  /** `catalog`: a known dataset; `convention`: read by the ONS naming convention. */
  readonly source: 'catalog' | 'convention';
  readonly definition?: DatasetDefinition;
  readonly time: Column;
  readonly dimensions: readonly Column[];
  readonly labels: readonly Column[];
  readonly measures: readonly MeasureColumn[];
  /** Normalised names of all columns, in file order (aliases applied). */
  readonly columns: readonly string[];
}

const PERIOD_SUFFIX = /[_-]\d{4}(?:[_-]\d{2})?$/;

/** The base name of a path or S3 key, without folders. */
export function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

/**
 * Works out which dataset a file holds and where its columns are: by the catalog's file-name pattern,
 * then by a catalog dataset whose columns the header has (a renamed file), then by the ONS naming
 * convention. Refuses, saying what was expected, a file that fits none of them.
 */
export function resolveDataset(fileName: string, header: readonly string[]): DatasetLayout {
  const raw = header.map(normaliseColumn);
  const seen = new Set<string>();
  for (const name of raw) {
    if (name === '') throw new RefusedFileError(`the header has an empty column name: ${JSON.stringify(header)}`);
    if (seen.has(name)) throw new RefusedFileError(`the header has the column '${name}' twice`);
    seen.add(name);
  }
  const base = baseName(fileName);
  const byName = datasetForFile(base);
  if (byName) {
    const missing = missingColumns(byName, raw);
    if (missing.length > 0) {
      throw new RefusedFileError(
        `'${base}' is named like the ONS dataset ${byName.id}, but its header lacks ${missing.join(', ')}; found: ${header.join(', ')}`,
      );
    }
    return fromDefinition(byName, raw);
  }
  const byHeader = CATALOG.find((d) => missingColumns(d, raw).length === 0);
  if (byHeader) return fromDefinition(byHeader, raw);
  return fromConvention(base, raw, header);
}

function applyAliases(def: DatasetDefinition, raw: readonly string[]): string[] {
  return raw.map((n) => def.aliases?.[n] ?? n);
}

function missingColumns(def: DatasetDefinition, raw: readonly string[]): string[] {
  const columns = new Set(applyAliases(def, raw));
  const required = [def.time, ...def.dimensions, ...def.labels, ...def.measures.map((m) => m.name)]
    .filter((c) => !def.optional?.includes(c));
  const missing = required.filter((c) => !columns.has(c));
  // An identity dimension with a fallback is not missing if its fallback column is there.
  return missing.filter((c) => !(def.identityFallback?.[c] && columns.has(def.identityFallback[c])));
}

function fromDefinition(def: DatasetDefinition, raw: readonly string[]): DatasetLayout {
  const columns = applyAliases(def, raw);
  const index = (name: string) => columns.indexOf(name);
  const present = (name: string) => index(name) >= 0;
  const dimensionNames = identityDimensions(def, columns);
  const known = new Set([def.time, ...dimensionNames, ...def.measures.map((m) => m.name), ...(def.ignored ?? [])]);
  const measures: MeasureColumn[] = def.measures.filter((m) => present(m.name))
    .map((m) => ({ name: m.name, index: index(m.name), unit: m.unit, aggregation: m.aggregation }));
  // Columns a newer publication adds: val_* are measures (unit unknown); anything else is a label,
  // so a new column never changes the identity of a known dataset's series.
  for (const name of columns) {
    if (!known.has(name) && /^val_/.test(name)) {
      measures.push({ name, index: index(name), unit: null, aggregation: 'mean' });
      known.add(name);
    }
  }
  const labels = columns.filter((c) => !known.has(c)).map((name) => ({ name, index: index(name) }));
  return {
    id: def.id,
    source: 'catalog',
    definition: def,
    time: { name: def.time, index: index(def.time) },
    dimensions: dimensionNames.map((name) => ({ name, index: index(name) })),
    labels,
    measures,
    columns,
  };
}

function fromConvention(base: string, columns: readonly string[], header: readonly string[]): DatasetLayout {
  const index = (name: string) => columns.indexOf(name);
  const time = columns.find((c) => /^(din|dat)_/.test(c)) ?? columns.find((c) => /^[a-z]+_data$/.test(c));
  // Families such as ear_*/ena_* name the time `<prefix>_data` and their measures `<prefix>_*`.
  const family = time && /^([a-z]+)_data$/.test(time) ? `${time.split('_')[0]}_` : undefined;
  const isMeasure = (c: string) => c !== time && (/^val_/.test(c) || (family !== undefined && c.startsWith(family)));
  const measures = columns.filter(isMeasure);
  const id = normaliseColumn(base.replace(/\.[^.]+$/, '').replace(PERIOD_SUFFIX, ''));
  if (!time || measures.length === 0 || id === '') {
    throw new RefusedFileError(
      `not ONS data: '${base}' matches no catalog dataset (${CATALOG.map((d) => d.id).join(', ')}) and its header does not follow the ONS ` +
      `naming convention (a time column din_* or dat_*, and measures val_*); found columns: ${header.join(', ')}`,
    );
  }
  const dimensions = identityDimensions(undefined, columns);
  const labels = columns.filter((c) => c !== time && !measures.includes(c) && !dimensions.includes(c));
  return {
    id,
    source: 'convention',
    time: { name: time, index: index(time) },
    dimensions: dimensions.map((name) => ({ name, index: index(name) })),
    labels: labels.map((name) => ({ name, index: index(name) })),
    measures: measures.map((name) => ({ name, index: index(name), unit: null, aggregation: 'mean' as const })),
    columns,
  };
}
