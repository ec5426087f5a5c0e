import type { LedgerStatusValue, SourceObject, StepInput } from '../ledger/contract';

/**
 * What the ingestion constructs and the ingestion handlers (router, processor, Batch entrypoint,
 * document copy, quarantine) share: environment variable names, the state data passed between
 * steps. The construct sets, the handlers read; neither repeats a name. The lake's and the ledger's names
 * are in `lake/contract.ts` and `ledger/contract.ts`.
 * @internal
 */
export const IngestionEnv = {
  /** Largest object (bytes) the processor function takes; larger tabular files go to AWS Batch. */
  LAMBDA_MAX_BYTES: 'ONS_LAMBDA_MAX_BYTES',
  /** Comma-separated lower-case extensions (no dot) routed as tabular data, e.g. `csv,xlsx,parquet`. */
  TABULAR_EXTENSIONS: 'ONS_TABULAR_EXTENSIONS',
  /** Comma-separated lower-case extensions (no dot) routed as documents, e.g. `pdf,docx,md,txt,html`. */
  DOCUMENT_EXTENSIONS: 'ONS_DOCUMENT_EXTENSIONS',
  /** Largest XLSX expanded size in bytes (zip-bomb guard of the domain core). */
  XLSX_MAX_EXPANDED_BYTES: 'ONS_XLSX_MAX_EXPANDED_BYTES',
  /**
   * Router only: comma-separated route actions the ingestion state machine has a branch for (`process,document,quarantine`,
   * plus `processLarge` with Batch); the router answers no other. Set from the state machine's own branches.
   */
  ROUTES: 'ONS_ROUTES',
  /**
   * Processor and Batch job only: set (to the engine's name) when the time-series store is the lake itself
   * (`LakeStore`, no loader): a published version is what queries read, so the run records it `loaded` (queryable).
   */
  LOADED_ON_PUBLISH: 'ONS_LOADED_ON_PUBLISH',
  /** Batch only: the job's input (a `ProcessInput` as JSON), set per job by the state machine. */
  JOB_INPUT: 'ONS_JOB_INPUT',
  /** Batch only: the bucket of the job's processing code (the bundled entrypoint, a CDK file asset). */
  JOB_CODE_BUCKET: 'ONS_JOB_CODE_BUCKET',
  /** Batch only: the key of the job's processing code in `ONS_JOB_CODE_BUCKET`. */
  JOB_CODE_KEY: 'ONS_JOB_CODE_KEY',
  /** Batch only: the region of `ONS_JOB_CODE_BUCKET` (the stack's: CDK assets live in the stack's region). */
  JOB_CODE_REGION: 'ONS_JOB_CODE_REGION',
  /** Batch only: the SHA-256 (hex) of the code object, computed at synth; the bootstrap runs nothing else. */
  JOB_CODE_SHA256: 'ONS_JOB_CODE_SHA256',
  /** Reprocessing only: the retrieval tier of RestoreObject (`Standard` or `Bulk`). */
  RESTORE_TIER: 'ONS_RESTORE_TIER',
  /** Reprocessing only: days a restored copy of an archived raw object stays readable. */
  RESTORE_DAYS: 'ONS_RESTORE_DAYS',
} as const;

/**
 * What a reprocessing run is started with (the reprocessing state machine's input; the backfill passes its own
 * through). Files come from the ledger (`status`, `dataset` with an optional period `start`/`end`), with `prefix`
 * filtering their keys; or, with `prefix` alone, from a listing of the raw bucket (files never ingested included).
 * @internal
 */
export interface ReprocessRequest {
  readonly status?: string;
  readonly dataset?: string;
  /** ISO-8601: files whose period (the ledger's `start`..`end`) overlaps `start`..`end`; only with `dataset`. */
  readonly start?: string;
  readonly end?: string;
  readonly prefix?: string;
  /** Redo files the ledger already settled (see `StepInput.force`). */
  readonly force?: boolean;
}

/** The request's fields, so that a misspelt one is refused rather than ignored. @internal */
export const REPROCESS_REQUEST_FIELDS: ReadonlyArray<keyof ReprocessRequest> = ['status', 'dataset', 'start', 'end', 'prefix', 'force'];

/** Error name of a request the selection refuses (not retried). @internal */
export const INVALID_REPROCESS_REQUEST = 'InvalidReprocessRequest';

/** One selected file: a line of the run's manifest, an item of its Distributed Map. @internal */
export interface ReprocessItem {
  readonly index: number;
  readonly bucket: string;
  readonly key: string;
  /** The ledger's version; absent for a file listed from the bucket (its current version is taken). */
  readonly versionId?: string;
  readonly size?: number;
  /** Its ledger status when it was selected (absent for a listed file). */
  readonly status?: string;
}

/** Where a run keeps its files and what it selected; kept at `$.plan` (small: the items are in the manifest). @internal */
export interface ReprocessPlan {
  readonly bucket: string;
  readonly runPrefix: string;
  readonly manifestKey: string;
  readonly count: number;
  /** Ledger items left out: another bucket's, or an older version of a key already selected. */
  readonly skipped: number;
  readonly request: ReprocessRequest;
  readonly force: boolean;
}

/**
 * What CheckFile found: `ready` to ingest (not archived, or restored), `restoring` (a restore was requested or is
 * under way), `missing` (the object or version is gone), `superseded` (no longer the key's current version:
 * reprocessing it would replace the newer version's outputs).
 * @internal
 */
export interface FileCheck {
  readonly state: 'ready' | 'restoring' | 'missing' | 'superseded';
  /** The exact version to ingest (from HeadObject). */
  readonly source: SourceObject;
  readonly storageClass?: string;
  /** True when this call sent RestoreObject. */
  readonly restoreRequested?: boolean;
  readonly reason?: string;
}

/**
 * What a file ended as in a reprocessing run: its ledger status after the run (`processed`, `loaded`, `indexed`,
 * `duplicate`, `quarantined`, and any status the ledger gains, such as `retryLater`), or `failed` (not ingested:
 * missing object, restore not done in time, execution not started) or `skipped` (superseded version).
 * @internal
 */
export type ReprocessOutcome = LedgerStatusValue | 'failed' | 'skipped' | (string & {});

/** One row of the report. @internal */
export interface ReprocessRow {
  readonly index: number;
  readonly bucket: string;
  readonly key: string;
  readonly versionId?: string;
  readonly outcome: ReprocessOutcome;
  readonly reason?: string;
  readonly storageClass?: string;
  /** The ingestion execution that ran for it. */
  readonly execution?: string;
  /** Its ledger status when it was selected. */
  readonly before?: string;
}

/** Where the report is and its counts by outcome (the reprocessing execution's output). @internal */
export interface ReprocessReportSummary {
  readonly bucket: string;
  readonly key: string;
  readonly total: number;
  readonly counts: Record<string, number>;
}

/** The largest `lambdaMaxFileSize` (MiB): the processor function's /tmp holds the file and its outputs. @internal */
export const LAMBDA_MAX_FILE_MIB_LIMIT = 3072;

/** Default extensions, shared by the construct's props and the router's fallback. @internal */
export const DEFAULT_TABULAR_EXTENSIONS = ['csv', 'xlsx', 'parquet'] as const;
/** Plain text is prose for the knowledge base (Bedrock parses `.txt`), not an ONS table. @internal */
export const DEFAULT_DOCUMENT_EXTENSIONS = ['pdf', 'docx', 'md', 'txt', 'html', 'htm'] as const;

/** What the router decided. @internal */
export type RouteAction = 'process' | 'processLarge' | 'document' | 'quarantine';

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

/** Input of the quarantine handler: the failure caught by the state machine. @internal */
export interface QuarantineInput extends StepInput {
  /** The step that failed, or `Route` when the router refused the file. */
  readonly step: string;
  /** Step Functions' caught error (`Error`, `Cause`), or the router's reason. */
  readonly error?: { readonly Error?: string; readonly Cause?: string };
  readonly reason?: string;
}
