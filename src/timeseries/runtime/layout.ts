import { CATALOG } from '../../ons/catalog';
import { identityDimensions } from '../../ons/layout';

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
 * DOUBLE columns (the processor writes nothing else as DOUBLE); dimensions follow the domain core's
 * identity rule, as the processor applied it.
 */
export function partLayout(dataset: string, columns: ReadonlyArray<{ name: string; type?: string }>): PartLayout {
  const dimensions = identityDimensions(CATALOG.find((d) => d.id === dataset), columns.map((c) => c.name));
  const measures = columns.filter((c) => c.type === 'DOUBLE').map((c) => c.name);
  return { dimensions, measures };
}
