import type { SourceObject, StepInput } from '../ledger/contract';

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
  /** Batch only: the job's input (a `ProcessInput` as JSON), set per job by the state machine. */
  JOB_INPUT: 'ONS_JOB_INPUT',
} as const;

/** The largest `lambdaMaxFileSize` (MiB): the processor function's /tmp holds the file and its outputs. @internal */
export const LAMBDA_MAX_FILE_MIB_LIMIT = 3072;

/** Default extensions, shared by the construct's props and the router's fallback. @internal */
export const DEFAULT_TABULAR_EXTENSIONS = ['csv', 'txt', 'xlsx', 'parquet'] as const;
/** @internal */
export const DEFAULT_DOCUMENT_EXTENSIONS = ['pdf', 'docx', 'md', 'html', 'htm'] as const;

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
