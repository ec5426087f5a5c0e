import { QueryOperations } from '../runtime/contract';

/**
 * What the knowledge-base constructs and handlers share: environment variable names and the shapes of
 * the RAG query API (`POST /query`).
 * @internal
 */
export const KnowledgeEnv = {
  /** The Bedrock knowledge base id (not the ARN). */
  KB_ID: 'ONS_KB_ID',
  /**
   * The generation model: an ARN (foundation model, inference profile, provisioned model) or a bare
   * foundation model id (e.g. `anthropic.claude-3-haiku-20240307-v1:0`), made an ARN with the region.
   * A bare inference profile id (`us.…`, `eu.…`, `global.…`) is made an ARN with the function's account.
   */
  MODEL_ARN: 'ONS_KB_MODEL_ARN',
  /** Chunks retrieved per question (1 to 100; default 5). */
  RESULTS: 'ONS_KB_RESULTS',
  /** Optional prompt template (must contain `$search_results$`); unset: the handler's default (answers in the question's language). */
  PROMPT_TEMPLATE: 'ONS_KB_PROMPT_TEMPLATE',
  /** Endpoint override of the bedrock-agent-runtime client (tests, VPC endpoints); unset: the SDK's endpoint. */
  ENDPOINT: 'ONS_KB_ENDPOINT',
} as const;

/**
 * Environment of the question handler's numeric path (Converse with tools). Unset `TIME_SERIES_FUNCTION`: the
 * handler answers with RetrieveAndGenerate only. @internal
 */
export const AnswerEnv = {
  /** The function (an alias ARN under a SafeDeployment) that answers `GET /timeseries/{dataset}`; invoked by `query_time_series`. */
  TIME_SERIES_FUNCTION: 'ONS_ANSWER_TIME_SERIES_FUNCTION',
  /** JSON array of the dataset ids the time-series store serves. */
  TIME_SERIES_DATASETS: 'ONS_ANSWER_TIME_SERIES_DATASETS',
  /** Tool calls per question (1 to 50; default `AnswerLimits.MAX_TOOL_CALLS`). */
  MAX_TOOL_CALLS: 'ONS_ANSWER_MAX_TOOL_CALLS',
  /** Points one `query_time_series` call may return to the model (1 to 1000; default `AnswerLimits.MAX_POINTS`). */
  MAX_POINTS: 'ONS_ANSWER_MAX_POINTS',
  /** Milliseconds from the request's start to the last model call's deadline (1000 to 28000; default `AnswerLimits.DEADLINE_MS`). */
  DEADLINE_MS: 'ONS_ANSWER_DEADLINE_MS',
  /** Optional guardrail: its id (or ARN) and version, applied to every Converse call. */
  GUARDRAIL_ID: 'ONS_ANSWER_GUARDRAIL_ID',
  GUARDRAIL_VERSION: 'ONS_ANSWER_GUARDRAIL_VERSION',
  /** Endpoint overrides (tests, VPC endpoints): bedrock-runtime and Lambda; unset: the SDK's endpoints. */
  RUNTIME_ENDPOINT: 'ONS_ANSWER_RUNTIME_ENDPOINT',
  LAMBDA_ENDPOINT: 'ONS_ANSWER_LAMBDA_ENDPOINT',
} as const;

/** Bounds of the numeric path; each default is a construct prop's `@default`. @internal */
export const AnswerLimits = {
  MAX_TOOL_CALLS: 8,
  MAX_POINTS: 500,
  /** API Gateway ends an integration at 29 s: the answer must be written before. */
  DEADLINE_MS: 25_000,
} as const;

/** The range each bound may take, `[min, max]`: the construct refuses others at synth, the handler at start. @internal */
export const AnswerLimitRanges = {
  MAX_TOOL_CALLS: [1, 50],
  MAX_POINTS: [1, 1000],
  /** Up to 28 s: API Gateway ends an integration at 29 s. */
  DEADLINE_MS: [1000, 28_000],
} as const;

/** The tools the model may call, by the name it sees. @internal */
export const AnswerTools = {
  QUERY_TIME_SERIES: 'query_time_series',
  LIST_DATASETS: 'list_datasets',
  SEARCH_DOCUMENTS: 'search_documents',
} as const;

/** Limits of a `POST /query` body: the handler and the API's request model both apply them. @internal */
export const KnowledgeQueryLimits = {
  /** Characters of a question, after trimming. */
  MAX_QUESTION: 1000,
  /** Years a filter may name. */
  MIN_YEAR: 2000,
  MAX_YEAR: 2100,
  /** Bedrock's session id pattern (RetrieveAndGenerate `sessionId`). */
  SESSION_ID_PATTERN: '^[0-9a-zA-Z._:-]{2,100}$',
} as const;

/** Filters of a `POST /query` (all optional). @internal */
export interface KnowledgeQueryFilters {
  /** A catalog dataset id (src/ons/catalog.ts): only data cards of that dataset are retrieved. */
  readonly dataset?: string;
  /** Years (2000–2100): only data cards whose period overlaps [yearFrom, yearTo] are retrieved. */
  readonly yearFrom?: number;
  readonly yearTo?: number;
}

/** Body of a `POST /query`. @internal */
export interface KnowledgeQueryRequest {
  /** 1 to 1000 characters after trimming, no control characters. */
  readonly question: string;
  /** The `sessionId` of a previous answer, for a follow-up question. */
  readonly sessionId?: string;
  readonly filters?: KnowledgeQueryFilters;
}

/** A passage the answer is based on. @internal */
export interface KnowledgeCitation {
  /** The passage retrieved from the source (the chunk the answer draws on). */
  readonly text: string;
  /** The source document in S3. */
  readonly source: { readonly bucket: string; readonly key: string };
  /** Dataset id, from the data card's metadata or its key (`…/cards/<dataset>/…`); absent for uploaded documents. */
  readonly dataset?: string;
}

/** A time-series query the model ran to answer, as the `GET /timeseries` request a user can run again. @internal */
export interface AnswerQuery {
  /** Path and query string of the `GET /timeseries/{dataset}` request, relative to the API's base URL. */
  readonly request: string;
  readonly dataset: string;
  readonly measure: string;
  readonly unit: string | null;
  /** Points the engine answered (0: the data does not cover the request). */
  readonly points: number;
}

/** What answering cost: summed over every model call of the question. @internal */
export interface AnswerUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly modelCalls: number;
  readonly toolCalls: number;
}

/** Body of a successful `POST /query`. @internal */
export interface KnowledgeQueryResponse {
  readonly queryId: string;
  readonly answer: string;
  readonly citations: KnowledgeCitation[];
  /** Pass back as `sessionId` for a follow-up question (RetrieveAndGenerate only; empty for an answer from tools). */
  readonly sessionId: string;
  /** `tools`: the model queried the time series, the catalog and the documents (Converse); `documents`: RetrieveAndGenerate. */
  readonly answeredFrom?: 'tools' | 'documents';
  /** The time-series queries behind the numbers (tools only). */
  readonly queries?: AnswerQuery[];
  /** Token usage (tools only: RetrieveAndGenerate reports none). */
  readonly usage?: AnswerUsage;
}

/** The `operationId` of `POST /query` in the route table, and the `operation` dimension of its QueryLatency. @internal */
export const KNOWLEDGE_QUERY_OPERATION = QueryOperations.KNOWLEDGE_QUERY;

/**
 * The knowledge-base sync (`KnowledgeBaseSync`): what its state machine and its handler share. Bedrock runs one
 * ingestion job at a time per data source and per knowledge base, and five per account (Amazon Bedrock service
 * quotas, "Concurrent ingestion jobs"; https://docs.aws.amazon.com/bedrock/latest/userguide/quotas.html), so the
 * sync holds a lease per knowledge base and runs its data sources one after the other. @internal
 */
export const KnowledgeSync = {
  /**
   * Seconds between two GetIngestionJob calls while a job runs. Jobs are asynchronous and take minutes (an
   * incremental sync re-embeds only added and changed documents); 30 s adds at most that to a sync's end and
   * keeps the execution's history small (Standard executions hold at most 25,000 events).
   */
  POLL_SECONDS: 30,
  /**
   * How long a lease holds without being renewed. It is renewed at every poll and every round; the longest gap
   * between renewals is StartIngestionJob retrying a ConflictException (about an hour, `retryWhileIngestionJobRuns`),
   * so a crashed sync blocks the next one for at most this long.
   */
  LEASE_SECONDS: 2 * 3600,
  /** Tries of one batch's job (the first included) before the sync gives up, fails (alarmed) and leaves the requests pending. */
  MAX_JOB_ATTEMPTS: 3,
  /** Seconds before the second try of a failed job; doubled for each further try. */
  RETRY_BASE_SECONDS: 120,
  /**
   * Rounds (claim, jobs, record) of one execution; then it releases the lease and ends, and the next request or the
   * hourly sweep carries on, so a long backfill never reaches the 25,000-event history limit of a Standard execution.
   */
  MAX_ROUNDS: 20,
} as const;

/** Environment of the sync handler. @internal */
export const KnowledgeSyncEnv = {
  /** The knowledge base id: its sync items are in the ledger partition `kbsync#<id>`. */
  KB_ID: KnowledgeEnv.KB_ID,
} as const;

/** What the sync state machine asks its handler. @internal */
export type KnowledgeSyncInput =
  | { readonly action: 'acquire' | 'renew'; readonly holder: string }
  | { readonly action: 'claim'; readonly holder: string; readonly round: number }
  | { readonly action: 'release'; readonly holder: string; readonly seen?: number; readonly force?: boolean }
  | {
    readonly action: 'record';
    readonly holder: string;
    readonly batch: string;
    readonly dataSourceId: string;
    readonly attempt: number;
    /** GetIngestionJob's `IngestionJob` (Step Functions' PascalCase), or absent when the job could not start. */
    readonly job?: Record<string, any>;
    /** Step Functions' caught error (`Error`, `Cause`) when StartIngestionJob failed. */
    readonly startError?: { readonly Error?: string; readonly Cause?: string };
  };

/** A round's claim: the requests it took, per data source. @internal */
export interface KnowledgeSyncClaim {
  /** The control item's request count when the claim read it. */
  readonly seen: number;
  readonly batch: string;
  readonly requests: number;
  readonly sources: Array<{ readonly dataSourceId: string; readonly requests: number }>;
}

/** What recording a job's outcome decided. @internal */
export interface KnowledgeSyncRecorded {
  readonly status: string;
  readonly files: number;
  /** `retry`: wait `waitSeconds`, then start the job again as try `nextAttempt`; `gaveUp`: tries exhausted; `done`. */
  readonly next: 'done' | 'retry' | 'gaveUp';
  readonly nextAttempt?: number;
  readonly waitSeconds?: number;
}
