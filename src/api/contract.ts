import { LedgerItem, LedgerLoad } from '../ledger/contract';
/**
 * What the API construct and the ledger routes' handler share: environment variable names and the response shapes.
 * @internal
 */

/** Environment of the ledger routes' function (`GET /datasets`, `GET /ingestions`). @internal */
export const LedgerApiEnv = {
  /** The ingestion ledger table. */
  TABLE: 'ONS_API_LEDGER_TABLE',
  /** JSON array of the dataset ids the time-series store has a table for (`timeSeries: true` in `GET /datasets`). */
  TIME_SERIES_DATASETS: 'ONS_API_TIME_SERIES_DATASETS',
  /** JSON array of the datasets outside the catalog that have a lake table (`AdditionalDataset`), listed by `GET /datasets`. */
  DATASETS: 'ONS_API_DATASETS',
} as const;

/** A dataset outside the catalog as `LedgerApiEnv.DATASETS` carries it (the lake's `additionalDatasets`). @internal */
export interface AdditionalDataset {
  readonly id: string;
  readonly description?: string;
  readonly dimensions: readonly string[];
  readonly measures: ReadonlyArray<{ readonly name: string; readonly unit?: string; readonly description?: string }>;
}

/** A measure of a dataset in `GET /datasets`. @internal */
export interface DatasetMeasure {
  readonly name: string;
  readonly unit: string | null;
  readonly description: { readonly pt: string; readonly en: string };
  /** How values combine over time: `mean`, `sum` or `last`. */
  readonly aggregation: string;
}

/** What the lake holds of a dataset (objects whose status is processed, loaded or indexed). @internal */
export interface DatasetLoaded {
  /** Source files in the lake. */
  readonly files: number;
  /** Earliest and latest instants of their data (UTC ISO-8601). */
  readonly from: string | null;
  readonly to: string | null;
  /** When the most recent of them was last updated in the ledger. */
  readonly lastLoadedAt: string;
}

/** A catalog dataset in `GET /datasets`. @internal */
export interface DatasetSummary {
  readonly id: string;
  readonly title: { readonly pt: string; readonly en: string };
  readonly description: { readonly pt: string; readonly en: string };
  /** Time grain, ISO 8601 duration; null for a dataset outside the catalog (its files say nothing of it). */
  readonly grain: string | null;
  /** Identity dimensions: the query parameters of `GET /timeseries/{dataset}` that select series. */
  readonly dimensions: readonly string[];
  readonly measures: readonly DatasetMeasure[];
  /** Whether `GET /timeseries/{dataset}` serves it (the store has a table for it). */
  readonly timeSeries: boolean;
  /** Null until a file of the dataset is in the lake. */
  readonly loaded: DatasetLoaded | null;
}

/** Body of `GET /datasets`. @internal */
export interface DatasetsResponse {
  readonly datasets: readonly DatasetSummary[];
}

/** One ledger item as `GET /ingestions` shows it (bucket names, execution ARNs and output locations stay internal). @internal */
export interface IngestionEntry extends Pick<LedgerItem, 'dataset' | 'kind' | 'size' | 'receivedAt' | 'updatedAt'
| 'start' | 'end' | 'rows' | 'records' | 'rejected' | 'series' | 'duplicateOf' | 'error'> {
  /** The object key in the raw bucket, and its version (`null` for an unversioned bucket). */
  readonly key: string;
  readonly versionId: string | null;
  /** The item's status as stored (a `LedgerStatus` value; the API reads items defensively). */
  readonly status: string;
  /** What the time-series load did. */
  readonly load?: Pick<LedgerLoad, 'at' | 'points' | 'rejected' | 'reason'> & { readonly status: string };
}

/** Body of `GET /ingestions`. @internal */
export interface IngestionsResponse {
  readonly ingestions: readonly IngestionEntry[];
  /** Pass back as `nextToken` with the same parameters for the next page. */
  readonly nextToken?: string;
}
