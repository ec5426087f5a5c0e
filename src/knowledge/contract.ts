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

/** Body of a successful `POST /query`. @internal */
export interface KnowledgeQueryResponse {
  readonly queryId: string;
  readonly answer: string;
  readonly citations: KnowledgeCitation[];
  /** Pass back as `sessionId` for a follow-up question. */
  readonly sessionId: string;
}

/** The `operationId` of `POST /query` in the route table, and the `operation` dimension of its QueryLatency. @internal */
export const KNOWLEDGE_QUERY_OPERATION = 'query';
