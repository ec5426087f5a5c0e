/**
 * What the ingestion constructs and the ingestion handlers (router, processor, Batch entrypoint,
 * document copy, quarantine) share: environment variable names, the state data passed between
 * steps, and the ledger's item shape. The construct sets, the handlers read; neither repeats a name.
 * @internal
 */
export const IngestionEnv = {
  /** Stage name (`dev`, `staging`, `prod`), written into every error report. */
  STAGE: 'ONS_STAGE',
  /** Processed bucket: Parquet, data cards, copied documents. */
  PROCESSED_BUCKET: 'ONS_PROCESSED_BUCKET',
  /** Failed bucket: rejected rows and quarantined objects. */
  FAILED_BUCKET: 'ONS_FAILED_BUCKET',
  /** DynamoDB table of the ingestion ledger. */
  LEDGER_TABLE: 'ONS_LEDGER_TABLE',
  /** Prefixes in the processed bucket (each ends with `/`). */
  PROCESSED_DATA_PREFIX: 'ONS_PROCESSED_DATA_PREFIX',
  DATA_CARDS_PREFIX: 'ONS_DATA_CARDS_PREFIX',
  DOCUMENTS_PREFIX: 'ONS_DOCUMENTS_PREFIX',
  /** Prefixes in the failed bucket (each ends with `/`). */
  REJECTED_ROWS_PREFIX: 'ONS_REJECTED_ROWS_PREFIX',
  QUARANTINE_PREFIX: 'ONS_QUARANTINE_PREFIX',
  /** Largest object (bytes) the processor function takes; larger tabular files go to AWS Batch. */
  LAMBDA_MAX_BYTES: 'ONS_LAMBDA_MAX_BYTES',
  /** Comma-separated lower-case extensions (no dot) routed as tabular data, e.g. `csv,xlsx,parquet`. */
  TABULAR_EXTENSIONS: 'ONS_TABULAR_EXTENSIONS',
  /** Comma-separated lower-case extensions (no dot) routed as documents, e.g. `pdf,docx,md,txt,html`. */
  DOCUMENT_EXTENSIONS: 'ONS_DOCUMENT_EXTENSIONS',
  /** Largest XLSX expanded size in bytes (zip-bomb guard of the domain core). */
  XLSX_MAX_EXPANDED_BYTES: 'ONS_XLSX_MAX_EXPANDED_BYTES',
  /** Batch only: the job's input (a `ProcessInput` as JSON), set per job by the state machine. */
  JOB_INPUT: 'ONS_JOB_INPUT',
  /**
   * Optional: milliseconds an S3 request may take to connect, or stay without any byte moving, before
   * the handler gives up on it (default 60000; a long transfer that keeps moving is never cut).
   */
  S3_REQUEST_TIMEOUT_MS: 'ONS_S3_REQUEST_TIMEOUT_MS',
} as const;

/** Default extensions, shared by the construct's props and the router's fallback. @internal */
export const DEFAULT_TABULAR_EXTENSIONS = ['csv', 'txt', 'xlsx', 'parquet'] as const;
/** @internal */
export const DEFAULT_DOCUMENT_EXTENSIONS = ['pdf', 'docx', 'md', 'html', 'htm'] as const;

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

/** What the router decided. @internal */
export type RouteAction = 'process' | 'processLarge' | 'document' | 'quarantine';

/** Input of every ingestion handler after Route: the object and the execution. @internal */
export interface StepInput {
  readonly source: SourceObject;
  /** `$$.Execution.Id`, recorded in the ledger and in error reports. */
  readonly executionArn: string;
}

/** The router's output, kept by the state machine at `$.route`. @internal */
export interface RouteResult {
  readonly action: RouteAction;
  /** Why (always set for `quarantine`). */
  readonly reason?: string;
  /** The object as the router saw it (size and version from HeadObject). */
  readonly source: SourceObject;
  /** The object's ledger item key (the Batch path reads its result back with it). */
  readonly ledgerKey: { readonly pk: string; readonly sk: string };
  /** `false` when the knowledgeBaseSync feature flag is off: SyncKnowledgeBase is skipped (absent: it runs). */
  readonly knowledgeBaseSync?: boolean;
}

/** Input of the processor (Lambda event or Batch `ONS_JOB_INPUT`). @internal */
export type ProcessInput = StepInput;

/** The processor's output, kept at `$.processed` (the Batch path reads it back from the ledger). @internal */
export interface ProcessResult {
  /** `duplicate`: the same content was already processed from another object or version; nothing was written. */
  readonly status: 'processed' | 'duplicate';
  readonly contentHash: string;
  readonly dataset?: string;
  /** Ledger key of the earlier object with the same content (duplicates only). */
  readonly duplicateOf?: string;
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

/** Input of the quarantine handler: the failure caught by the state machine. @internal */
export interface QuarantineInput extends StepInput {
  /** The step that failed, or `Route` when the router refused the file. */
  readonly step: string;
  /** Step Functions' caught error (`Error`, `Cause`), or the router's reason. */
  readonly error?: { readonly Error?: string; readonly Cause?: string };
  readonly reason?: string;
}

/** Ledger statuses, in order of a successful ingestion; `quarantined` and `duplicate` end a run. @internal */
export const LedgerStatus = {
  RECEIVED: 'received',
  PROCESSING: 'processing',
  PROCESSED: 'processed',
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
