import { LedgerItem, LedgerLoad } from '../ledger/contract';

export type { AdditionalDataset, DatasetLoaded, DatasetMeasure, DatasetSummary, DatasetsResponse } from '../ledger/contract';
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
