/**
 * What the ledger construct, its runtime client and the API share: the table's environment name, key schema
 * and statuses, and the shapes of what it records (the source object version, the processor's result).
 * @internal
 */

/** Environment of every function that reads or writes the ledger. @internal */
export const LedgerEnv = {
  /** DynamoDB table of the ingestion ledger. */
  TABLE: 'ONS_LEDGER_TABLE',
} as const;

/** The object a pipeline execution is about. @internal */
export interface SourceObject {
  readonly bucket: string;
  /**
   * The object key. Decoded (as S3 stores it) unless `keyUrlEncoded` is true; every handler after
   * Route gets it decoded (from `$.route.source`).
   */
  readonly key: string;
  /**
   * True when `key` is copied from an S3 EventBridge event (`$.detail.object.key`), which S3 sends
   * URL-encoded in form style (`Temporal+Gera%C3%A7%C3%A3o.csv`): the router decodes it. Leave unset
   * for keys from S3 APIs (ListObjectsV2, a backfill's item reader), which are already decoded.
   */
  readonly keyUrlEncoded?: boolean;
  /** The object version; absent only for unversioned buckets. */
  readonly versionId?: string;
  /** Size in bytes, from the event. */
  readonly size?: number;
}

/** Input of every pipeline step after Route (processor, loader, quarantine...): the object and the execution. @internal */
export interface StepInput {
  readonly source: SourceObject;
  /** `$$.Execution.Id`, recorded in the ledger and in error reports. */
  readonly executionArn: string;
  /**
   * Redo a version the ledger already settled (a reprocessing run with `force`): the router records it
   * received again and the processor neither answers the recorded result nor skips duplicate content.
   */
  readonly force?: boolean;
}

/** The processor's output, kept at `$.processed` (the Batch path reads it back from the ledger). @internal */
export interface ProcessResult {
  /**
   * `duplicate`: the same content was already processed from another object or version; nothing was written.
   * `superseded`: processed, but a newer version of the same key was published first; nothing was published.
   */
  readonly status: 'processed' | 'duplicate' | 'superseded';
  readonly contentHash: string;
  readonly dataset?: string;
  /** Ledger key of the earlier object with the same content (duplicates only). */
  readonly duplicateOf?: string;
  /** The version (`sk`) of the same key that is current instead (superseded only). */
  readonly supersededBy?: string;
  readonly rows?: number;
  readonly records?: number;
  readonly rejected?: number;
  readonly series?: number;
  /** First and last instant, UTC ISO-8601. */
  readonly start?: string;
  readonly end?: string;
  /** Keys written in the processed bucket (Parquet parts). */
  readonly parquetKeys?: string[];
  readonly cardKey?: string;
  /** Key in the failed bucket of the rejected-rows report, when rows were rejected. */
  readonly rejectedKey?: string;
}

/**
 * Ledger statuses, in order of a successful ingestion; `quarantined` and `duplicate` end a run.
 * `retryLater`: processed (its outputs are in the lake), but the time-series store throttled the load;
 * the execution waits (minutes, growing) and loads it again (see `LedgerItem.retryLater`), then `loaded`.
 * @internal
 */
export const LedgerStatus = {
  RECEIVED: 'received',
  PROCESSING: 'processing',
  PROCESSED: 'processed',
  RETRY_LATER: 'retryLater',
  LOADED: 'loaded',
  INDEXED: 'indexed',
  QUARANTINED: 'quarantined',
  DUPLICATE: 'duplicate',
} as const;
/** @internal */
export type LedgerStatusValue = typeof LedgerStatus[keyof typeof LedgerStatus];

/**
 * The ledger table's key schema and indexes. One item per source object version:
 * `pk` = `s3://<bucket>/<key>`, `sk` = the version id (`null` for unversioned buckets).
 * @internal
 */
export const LedgerSchema = {
  PARTITION_KEY: 'pk',
  SORT_KEY: 'sk',
  /** GSI: content hash → items, to find an already processed copy. */
  BY_CONTENT_HASH: { name: 'byContentHash', partitionKey: 'contentHash', sortKey: 'updatedAt' },
  /** GSI: dataset → items, newest first. */
  BY_DATASET: { name: 'byDataset', partitionKey: 'dataset', sortKey: 'updatedAt' },
  /** GSI: status → items, newest first. */
  BY_STATUS: { name: 'byStatus', partitionKey: 'status', sortKey: 'updatedAt' },
} as const;

/** A ledger item's key. @internal */
export interface LedgerKey {
  readonly pk: string;
  readonly sk: string;
}

/** Where a run's outputs went (a tabular file, or a document). @internal */
export interface LedgerOutputs {
  readonly processedBucket?: string;
  readonly parquetKeys?: string[];
  readonly cardKey?: string;
  readonly cardMetadataKey?: string;
  readonly failedBucket?: string;
  readonly rejectedKey?: string;
  readonly documentKey?: string;
}

/**
 * Where a run stages its outputs before they get their final names, recorded before the first is
 * written, so a later run of the same source finds and removes what a killed run left. @internal
 */
export interface StagingRecord {
  readonly bucket: string;
  /** The run's prefix: every key below is under it. */
  readonly prefix: string;
  /** Every staged object's key (all under one run prefix). */
  readonly keys: string[];
}

/** Why a run failed. @internal */
export interface LedgerError {
  /** The step that failed (`Route`, `ProcessFile`, ...). */
  readonly step: string;
  readonly reason: string;
  /** The error's name (`FileRefused`, `States.Timeout`...), when there was one. */
  readonly errorType?: string;
}

/** Where the quarantined copy and its report are. @internal */
export interface QuarantineRecord {
  readonly bucket: string;
  /** The copy of the raw object; absent when the raw object no longer existed or is archived. */
  readonly key?: string;
  readonly errorKey: string;
  /**
   * The raw object's storage class when it was archived (`GLACIER`, `DEEP_ARCHIVE`) and so not copied: it stays
   * where the item's `bucket`/`key`/`versionId` say; reprocessing restores it first.
   */
  readonly archived?: string;
}

/** What the time-series loader did with an object (LoadTimeSeries). @internal */
export interface LedgerLoad {
  /** `notLoaded`: nothing written, with the reason (the dataset has no table). */
  readonly status: 'loaded' | 'notLoaded';
  readonly at: string;
  readonly table?: string;
  /** Records and measure values (points) the store accepted, records it rejected, rows without a measure. */
  readonly records?: number;
  readonly points?: number;
  readonly rejected?: number;
  readonly skipped?: number;
  readonly requests?: number;
  /** The version written with every record: the source object's last-modified time in ms. */
  readonly version?: number;
  readonly failedBucket?: string;
  readonly rejectedKey?: string;
  readonly reason?: string;
}

/**
 * A throttled load waiting for its next attempt, written by the ingestion state machine (RecordRetryLater)
 * when the loader fails with `TimeSeriesThrottled`. @internal
 */
export interface RetryLaterRecord {
  /** 1 for the first wait; the file is quarantined after `maxAttempts` waits. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** The wait before the next load attempt, in seconds. */
  readonly waitSeconds: number;
  /** When the wait started (UTC ISO-8601): the next attempt is at `at` + `waitSeconds`. */
  readonly at: string;
  /** The loader's error message (which store, how long it throttled). */
  readonly reason: string;
}

/** One status transition. @internal */
export interface HistoryEntry {
  readonly status: LedgerStatusValue;
  readonly at: string;
}

/** A ledger item as stored: the one shape the pipeline writes and the API reads. @internal */
export interface LedgerItem extends LedgerKey {
  readonly bucket: string;
  readonly key: string;
  readonly versionId?: string;
  readonly size?: number;
  readonly status: LedgerStatusValue;
  readonly history: HistoryEntry[];
  readonly receivedAt: string;
  readonly updatedAt: string;
  readonly executionArn?: string;
  /** The router's decision. */
  readonly route?: string;
  /** `tabular` or `document`. */
  readonly kind?: string;
  readonly contentHash?: string;
  readonly dataset?: string;
  readonly start?: string;
  readonly end?: string;
  readonly rows?: number;
  readonly records?: number;
  readonly rejected?: number;
  readonly series?: number;
  readonly outputs?: LedgerOutputs;
  /** The outputs of the run under way (or killed), until they have their final names. */
  readonly staging?: StagingRecord;
  /** When S3 stored this version (its LastModified, ISO-8601): of two versions of a key, the newer is current. */
  readonly sourceTime?: string;
  /** The version (`sk`) of the same key that replaced this one as the current version; its outputs were removed or rewritten (or never published). */
  readonly supersededBy?: string;
  readonly duplicateOf?: string;
  /** The ProcessResult as JSON text: the Batch path reads it back with GetItem and `States.StringToJson`. */
  readonly result?: string;
  readonly error?: LedgerError;
  readonly quarantine?: QuarantineRecord;
  /** The time-series load (kept apart from the processor's `records`/`rejected`). */
  readonly load?: LedgerLoad;
  /** The last knowledge-base ingestion job that covered this object (its outcome, written when the job ended). */
  readonly indexing?: LedgerIndexing;
  /** The last throttled load's wait (kept after the load succeeds: how many waits it took). */
  readonly retryLater?: RetryLaterRecord;
}

/**
 * The outcome of the knowledge-base ingestion job that covered an object, as the knowledge-base sync recorded it:
 * the status becomes `indexed` only when the job is COMPLETE; FAILED or STOPPED leave the status as it was, with
 * the reason. @internal
 */
export interface LedgerIndexing {
  /** The job's final status (`COMPLETE`, `FAILED`, `STOPPED`), or `NOT_STARTED` when StartIngestionJob itself failed. */
  readonly status: string;
  readonly at: string;
  readonly dataSourceId: string;
  readonly jobId?: string;
  /** Which try of the batch this job was (1 = the first). */
  readonly attempt: number;
  /** The job's statistics as Bedrock reports them (`numberOfDocumentsFailed`, `numberOfNewDocumentsIndexed`...). */
  readonly statistics?: Record<string, number>;
  /** Why the job failed (its failureReasons, or the error of StartIngestionJob). */
  readonly reason?: string;
}

/**
 * The knowledge-base sync's own items in the ledger table: a lease (one sync at a time per knowledge base) and one
 * pending request per object. They share one partition per knowledge base, `kbsync#<knowledge base id>`, and have
 * none of the attributes the indexes are keyed on (`status`, `dataset`, `contentHash`), so no index, and so no
 * listing of the API, ever holds them. @internal
 */
export const KnowledgeSyncSchema = {
  /** Partition of a knowledge base's sync items: this prefix and the knowledge base id. */
  PARTITION_PREFIX: 'kbsync#',
  /** Sort key of the lease and request counter. */
  CONTROL: 'control',
  /** Sort keys of pending requests: this prefix, the data source id, `#`, then the SHA-256 of `<object pk>?versionId=<sk>`. */
  REQUEST_PREFIX: 'request#',
  /** Attribute of the control item counting requests ever made: a release holds only when it is unchanged since the last claim. */
  REQUESTS: 'requests',
} as const;

/** A pending knowledge-base sync request, as the ingestion state machine writes it (PutItem). @internal */
export interface KnowledgeSyncRequest extends LedgerKey {
  readonly dataSourceId: string;
  /** The object version that asked (its ledger item is `filePk`/`fileSk`). */
  readonly bucket: string;
  readonly key: string;
  readonly filePk: string;
  readonly fileSk: string;
  readonly requestedAt: string;
  readonly executionArn: string;
  /** The batch (sync round) that took it; a request written again after that has none, and waits for the next round. */
  readonly claimedBy?: string;
}

/** A dataset outside the catalog as the API's and the question handler's environment carry it (the lake's `additionalDatasets`). @internal */
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
