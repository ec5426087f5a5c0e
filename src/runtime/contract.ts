/**
 * What the operations constructs and the handlers share: the custom metrics the handlers emit (CloudWatch
 * embedded metric format, through Powertools Metrics) and the alarms watch, and the environment that
 * names them. One place, so an alarm can only watch a metric a handler really emits.
 * @internal
 */

/** Environment variables the platform sets on every function (Powertools reads them as they are). @internal */
export const OperationsEnv = {
  /** CloudWatch namespace of the custom metrics: `OnsDataPlatform/<stage>`. */
  METRICS_NAMESPACE: 'POWERTOOLS_METRICS_NAMESPACE',
  /** The `service` dimension of every custom metric and the `service` key of every log line. */
  SERVICE_NAME: 'POWERTOOLS_SERVICE_NAME',
  /** Log level of the handlers' Powertools Logger (`INFO`; `DEBUG` in no stage by default). */
  LOG_LEVEL: 'POWERTOOLS_LOG_LEVEL',
  /** `true` when the stage turns X-Ray tracing on: Powertools Tracer then traces every AWS SDK and HTTP call. */
  TRACE_ENABLED: 'POWERTOOLS_TRACE_ENABLED',
} as const;

/** The namespace of a stage's custom metrics. @internal */
export function metricsNamespace(stageName: string): string {
  return `OnsDataPlatform/${stageName}`;
}

/** Values of the `service` dimension: which part of the platform emits a metric. @internal */
export const MetricServices = {
  INGESTION: 'ingestion',
  TIME_SERIES: 'timeseries',
  KNOWLEDGE: 'knowledge',
  API: 'api',
} as const;

/** The extra dimension of `QueryLatency`. @internal */
export const OPERATION_DIMENSION = 'operation';

/**
 * Values of `OPERATION_DIMENSION`: the `operationId`s of the two query routes, whose handlers emit `QueryLatency`
 * (the route table and the handlers take them from here, so an alarm watches a series that exists). @internal
 */
export const QueryOperations = { TIME_SERIES: 'getTimeSeries', KNOWLEDGE_QUERY: 'query' } as const;

/**
 * The extra dimensions of `ServerErrors`, with the Lambda environment variable each value comes from (Lambda sets
 * both in every execution environment: the version is `$LATEST` or the published version's number). @internal
 */
export const FUNCTION_DIMENSIONS = {
  FUNCTION_NAME: { name: 'FunctionName', variable: 'AWS_LAMBDA_FUNCTION_NAME' },
  FUNCTION_VERSION: { name: 'FunctionVersion', variable: 'AWS_LAMBDA_FUNCTION_VERSION' },
} as const;

/**
 * Error codes of 5xx answers that are a deliberate state, not a fault: a feature switched off by its flag (503
 * `FeatureDisabled`). They do not count in `ServerErrors`, so switching a feature off never rolls a deployment back.
 * @internal
 */
export const EXPECTED_UNAVAILABLE_CODES: readonly string[] = ['FeatureDisabled'];

/** A custom metric: its name, unit and the service whose handlers emit it. @internal */
export interface PlatformMetricDefinition {
  readonly name: string;
  /** A CloudWatch unit name (`Count`, `Milliseconds`). */
  readonly unit: 'Count' | 'Milliseconds';
  readonly service: typeof MetricServices[keyof typeof MetricServices];
  readonly description: string;
}

/** Every custom metric the handlers emit. @internal */
export const PlatformMetrics = {
  /** Rows of a tabular file written to the lake (the processor, Lambda or Batch). */
  RECORDS_PROCESSED: { name: 'RecordsProcessed', unit: 'Count', service: 'ingestion', description: 'Rows written to the lake' },
  /** Rows of a tabular file the processor rejected (kept with their reason under rejected/). */
  RECORDS_REJECTED: { name: 'RecordsRejected', unit: 'Count', service: 'ingestion', description: 'Rows rejected by validation' },
  /** Files moved to quarantine (unsupported, or a failed step). */
  FILES_QUARANTINED: { name: 'FilesQuarantined', unit: 'Count', service: 'ingestion', description: 'Files quarantined' },
  /** Measure values the time-series store accepted (the loader). */
  POINTS_WRITTEN: { name: 'PointsWritten', unit: 'Count', service: 'timeseries', description: 'Points written to the time-series store' },
  /** Records the time-series store rejected (the loader). */
  POINTS_REJECTED: { name: 'RecordsRejectedByStore', unit: 'Count', service: 'timeseries', description: 'Records the time-series store rejected' },
  /** Knowledge-base ingestion jobs of the sync that ended FAILED or STOPPED, or could not start (its files stay `loaded`). */
  KNOWLEDGE_SYNC_JOBS_FAILED: { name: 'KnowledgeBaseSyncJobsFailed', unit: 'Count', service: 'knowledge', description: 'Knowledge-base sync jobs failed' },
  /**
   * Time to answer one API request of the query handlers (time-series and knowledge base), with a second
   * dimension `operation` = the route's operationId (`getTimeSeries`, `query`; see src/api/routes.ts).
   */
  QUERY_LATENCY: { name: 'QueryLatency', unit: 'Milliseconds', service: 'api', description: 'Query handler latency' },
  /**
   * Tokens the model read answering one question (every Converse call of it), emitted by the question handler (an
   * API function: service `api`, with `operation` = `query` as its QueryLatency).
   */
  MODEL_INPUT_TOKENS: { name: 'ModelInputTokens', unit: 'Count', service: 'api', description: 'Model input tokens per question' },
  /** Tokens the model wrote answering one question. */
  MODEL_OUTPUT_TOKENS: { name: 'ModelOutputTokens', unit: 'Count', service: 'api', description: 'Model output tokens per question' },
  /** Tool calls the model made answering one question (refused calls included). */
  TOOL_CALLS: { name: 'AnswerToolCalls', unit: 'Count', service: 'api', description: 'Tool calls per question' },
  /**
   * API responses with a 5xx status that say something is wrong with the code or what it calls (every 5xx but the
   * expected ones: `FeatureDisabled`, a readiness report), one EMF document per response, with the dimensions
   * `FUNCTION_DIMENSIONS` only (no `service`: the function's name says it; `service` here names the API handlers
   * that emit it): the deployment's rollback alarm watches the new version's count (handlers answer every exception
   * with a 500, so Lambda's `Errors` never sees them).
   */
  SERVER_ERRORS: { name: 'ServerErrors', unit: 'Count', service: 'api', description: 'API 5xx responses by function version' },
} as const satisfies Record<string, PlatformMetricDefinition>;

/**
 * Metrics the knowledge base's application-log metric filters publish (namespace `OnsDataPlatform/<stage>`,
 * dimension `KnowledgeBase` = the knowledge base ARN): Bedrock reports ingestion jobs and documents only in
 * those logs, with no event and no metric of its own. @internal
 */
export const KnowledgeBaseLogMetrics = {
  /** Ingestion jobs that ended FAILED (`StartIngestionJob.StatusChanged`, `ingestion_job_status` FAILED). */
  INGESTION_JOBS_FAILED: 'KnowledgeBaseIngestionJobsFailed',
  /** Documents whose final status is FAILED (`StartIngestionJob.ResourceStatusChanged`, `status` FAILED). */
  DOCUMENTS_FAILED: 'KnowledgeBaseDocumentsFailed',
  /** The dimension: the knowledge base ARN, from the log event's `event.knowledge_base_arn`. */
  DIMENSION: 'KnowledgeBase',
} as const;

/** The feature flags (AppConfig `AWS.AppConfig.FeatureFlags` profile) the handlers read. @internal */
export const FeatureFlag = {
  /** `POST /query` answers (off: 503 FeatureDisabled). */
  RAG_QUERIES: 'ragQueries',
  /** `GET /timeseries/{dataset}` answers (off: 503 FeatureDisabled). */
  TIME_SERIES_API: 'timeSeriesApi',
  /** Large files go to AWS Batch; attribute `lambdaMaxBytes` is the Lambda size threshold. */
  LARGE_FILE_BATCH: 'largeFileBatch',
  /** The pipeline syncs the knowledge base after each file. */
  KNOWLEDGE_BASE_SYNC: 'knowledgeBaseSync',
  /** `POST /query` lets the model query the time series (Converse with tools); off: documents only (RetrieveAndGenerate). */
  NUMERIC_ANSWERS: 'numericAnswers',
} as const;

/** Environment that tells a handler where its flags are. @internal */
export const FlagsEnv = {
  APPLICATION: 'ONS_FLAGS_APPLICATION',
  ENVIRONMENT: 'ONS_FLAGS_ENVIRONMENT',
  PROFILE: 'ONS_FLAGS_PROFILE',
  /** Seconds a handler keeps the flags before asking AppConfig again. */
  MAX_AGE_SECONDS: 'ONS_FLAGS_MAX_AGE_SECONDS',
  /**
   * The unmonitored environment of the kill switches (same application): a flag whose kill switch is off is off,
   * whatever the flags profile says. Optional.
   */
  KILL_SWITCH_ENVIRONMENT: 'ONS_FLAGS_KILL_SWITCH_ENVIRONMENT',
  /** The kill-switch profile (the same four flags, all on until an operator deploys one off). Optional. */
  KILL_SWITCH_PROFILE: 'ONS_FLAGS_KILL_SWITCH_PROFILE',
} as const;

/** AppConfig Data's bounds of `RequiredMinimumPollIntervalInSeconds` (StartConfigurationSession: 15 to 86400 s). @internal */
export const POLL_INTERVAL_BOUNDS = { min: 15, max: 86400 } as const;
/** AppConfig Data's poll interval when a session names none (StartConfigurationSession), and the flags' default cache time. @internal */
export const DEFAULT_POLL_INTERVAL_SECONDS = 60;

/** Environment every handler may read (the handler toolkit's clients). @internal */
export const HandlerEnv = {
  /** Stage name (`dev`, `staging`, `prod`), written into every error report. */
  STAGE: 'ONS_STAGE',
  /**
   * Optional: milliseconds an S3 request may take to connect, or stay without any byte moving, before
   * the handler gives up on it (default 60000; a long transfer that keeps moving is never cut).
   */
  S3_REQUEST_TIMEOUT_MS: 'ONS_S3_REQUEST_TIMEOUT_MS',
} as const;

/** What the API construct and every HTTP handler share: the CORS environment. @internal */
export const ApiEnv = {
  /**
   * JSON array of the origins allowed to call the API from a browser (CORS); unset or `[]`: none.
   * Handlers answer with `Access-Control-Allow-Origin` only for a request whose `Origin` is listed.
   */
  CORS_ORIGINS: 'ONS_API_CORS_ORIGINS',
} as const;

/** Body of every error response of the API, API Gateway's own responses included. @internal */
export interface ApiErrorBody {
  readonly error: { readonly code: string; readonly message: string };
  readonly requestId: string;
}

/** What one health probe found: `notConfigured` when the component is absent. @internal */
export type ComponentStatus = 'up' | 'down' | 'notConfigured';

/** The report of one component in `GET /health`. @internal */
export interface ComponentReport {
  readonly status: ComponentStatus;
  /** Classified reasons only (`not found`, `timed out`, `status CREATING`...), never exception text or resource names. */
  readonly detail?: Record<string, string>;
}
