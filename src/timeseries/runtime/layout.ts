import { CATALOG } from '../../ons/catalog';

/**
 * Which columns of a processed file are a series' identity and which its measures, for every engine.
 * No Parquet here (`part-reader.ts`), so the benchmark runs it as is.
 */

/** One row as a record: the UTC instant, the identity dimensions, the non-null measures. */
export interface PointRecord {
  readonly time: number;
  readonly dimensions: ReadonlyArray<readonly [string, string]>;
  readonly measures: ReadonlyArray<readonly [string, number]>;
}

/** How a processed Parquet file maps onto records. */
export interface PartLayout {
  readonly dimensions: string[];
  readonly measures: string[];
}

/**
 * The identity dimensions and the measures of a processed Parquet file of `dataset`. Measures are its
 * DOUBLE columns (the processor writes nothing else as DOUBLE); dimensions are the catalog's identity
 * dimensions present in the file (with the catalog's fallback column when one is missing, as the
 * processor does), or for a dataset outside the catalog the `id_*`/`cod_*` columns (the ONS convention).
 */
export function partLayout(dataset: string, columns: ReadonlyArray<{ name: string; type?: string }>): PartLayout {
  const names = columns.map((c) => c.name);
  const has = (n: string) => names.includes(n);
  const def = CATALOG.find((d) => d.id === dataset);
  const dimensions = def
    ? def.dimensions.map((d) => (has(d) ? d : def.identityFallback?.[d])).filter((d): d is string => !!d && has(d))
    : names.filter((n) => /^(id|cod)_/.test(n));
  const measures = columns.filter((c) => c.type === 'DOUBLE').map((c) => c.name);
  return { dimensions, measures };
}
