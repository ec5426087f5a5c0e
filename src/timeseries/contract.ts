import { ProcessResult, SourceObject } from '../ledger/contract';
import { CALENDAR_INTERVALS } from '../ons/calendar';
import { QueryOperations } from '../runtime/contract';

/**
 * A dataset the query handler serves, as it validates a request (a catalog `DatasetDefinition` is one).
 * @internal
 */
export interface ServedDataset {
  readonly id: string;
  /** Identity dimensions: the filters a request may give and the series key of the answer. */
  readonly dimensions: readonly string[];
  readonly measures: ReadonlyArray<{ readonly name: string; readonly unit: string | null }>;
}

/**
 * What the time-series constructs and handlers share (any engine): environment variable names and the
 * shapes the ingestion state machine and the API pass to the loader and the query handler.
 * @internal
 */
export const TimeSeriesEnv = {
  /** Engine-specific database name (Timestream: the database). */
  DATABASE: 'ONS_TS_DATABASE',
  /** JSON object: dataset id → table name, for every dataset with a table. */
  TABLES: 'ONS_TS_TABLES',
  /**
   * JSON array of the served datasets outside the catalog, `{ id, dimensions, measures: [{ name, unit }] }` (the lake's
   * `additionalDatasets`): what the query handler validates their requests against. Unset: catalog datasets only.
   */
  DATASETS: 'ONS_TS_DATASETS',
  /** Table for datasets outside `TABLES` (ONS datasets not in the catalog); unset: such files are not loaded. */
  CATCH_ALL_TABLE: 'ONS_TS_CATCH_ALL_TABLE',
  /** WriteRecords requests in flight at once. */
  MAX_IN_FLIGHT: 'ONS_TS_MAX_IN_FLIGHT',
  /** Endpoint override of the write/query clients (tests, VPC endpoints); unset: the SDK's endpoint discovery. */
  WRITE_ENDPOINT: 'ONS_TS_WRITE_ENDPOINT',
  QUERY_ENDPOINT: 'ONS_TS_QUERY_ENDPOINT',
  /** Prefix in the failed bucket for records the engine rejected (ends with `/`). */
  REJECTED_RECORDS_PREFIX: 'ONS_TS_REJECTED_RECORDS_PREFIX',
  /** Optional: attempts per WriteRecords request on throttling and 5xx (default 8), and the backoff base in ms (default 100). */
  WRITE_MAX_ATTEMPTS: 'ONS_TS_WRITE_MAX_ATTEMPTS',
  WRITE_BASE_DELAY_MS: 'ONS_TS_WRITE_BASE_DELAY_MS',
  /**
   * Optional: ms a load may stay throttled (no write taken) before it fails with `TimeSeriesThrottled`
   * (default `DEFAULT_THROTTLE_BUDGET_MS`), and the longest single wait after a throttled answer (default: the
   * engine's, 20000 for Timestream's backoff, 60000 for an InfluxDB Retry-After).
   */
  THROTTLE_BUDGET_MS: 'ONS_TS_THROTTLE_BUDGET_MS',
  THROTTLE_MAX_DELAY_MS: 'ONS_TS_THROTTLE_MAX_DELAY_MS',
  /** Largest number of points one query response returns (page size). */
  MAX_POINTS: 'ONS_TS_MAX_POINTS',
  /** Endpoint of the Timestream write API for the health probe (tests, VPC endpoints); unset: the SDK's endpoint discovery. */
  HEALTH_TIMESTREAM_ENDPOINT: 'ONS_HEALTH_TIMESTREAM_ENDPOINT',
} as const;

/**
 * The engines (`ITimeSeriesStore.engine`). A store's health probe configuration names its engine, and the
 * health handler runs that engine's probe (timeseries/runtime/health.ts). @internal
 */
export const TimeSeriesEngines = {
  LIVE_ANALYTICS: 'timestream-liveanalytics',
  INFLUXDB: 'timestream-influxdb',
  /** The lake itself (`LakeStore`): Amazon Athena over the processed zone's current-rows views; no loader. */
  LAKE: 'athena-lake',
} as const;

/** Query intervals accepted by the query handler and the API: those the calendar cuts (ons/calendar.ts). @internal */
export const INTERVALS = CALENDAR_INTERVALS;
/** Aggregations accepted by the query handler and the API. @internal */
export const AGGREGATIONS = ['avg', 'sum', 'min', 'max'] as const;

/**
 * Input of the loader (LoadTimeSeries): the state machine passes `$.route.source`, `$$.Execution.Id`
 * and the processor's `$.processed`.
 * @internal
 */
export interface LoadInput {
  readonly source: SourceObject;
  readonly executionArn: string;
  readonly processed: ProcessResult;
}

/** The loader's output (kept by the state machine, e.g. at `$.loaded`). @internal */
export interface LoadResult {
  /** `notLoaded`: the dataset has no table (and no catch-all table is set); nothing was written. */
  readonly status: 'loaded' | 'notLoaded';
  readonly table?: string;
  /** Records (rows) the engine accepted. */
  readonly records: number;
  /** Measure values the engine accepted (non-null measures of the accepted records). */
  readonly points: number;
  /** Records the engine rejected (each reported with its reason under `rejectedKey`). */
  readonly rejected: number;
  /** Rows without any non-null measure: nothing to write for them. */
  readonly skipped: number;
  /** Write requests that succeeded or were partly rejected (retries not counted). */
  readonly requests: number;
  /** Key in the failed bucket of the rejected-records report, when records were rejected. */
  readonly rejectedKey?: string;
  readonly reason?: string;
}

/**
 * Error names the loader throws (Lambda reports `error.name` as the `Error` Step Functions sees).
 * @internal
 */
export const LoadErrors = {
  /** The input is not a processed object with Parquet parts (a duplicate, an empty result): not retried. */
  INVALID_INPUT: 'InvalidLoadInput',
  /** Records were to be written and the engine accepted none of them (all rejected): not retried. */
  NOTHING_WRITTEN: 'NothingWritten',
  /** The engine refused the request itself (validation, access denied, missing table): not retried. */
  WRITE_REFUSED: 'TimeSeriesWriteRefused',
  /** Server or network errors outlasted the retries; writes are idempotent (Version), so retrying is safe. */
  UNAVAILABLE: 'TimeSeriesUnavailable',
  /**
   * The store kept throttling writes for the loader's whole throttle budget: load again later (minutes),
   * which the ingestion state machine does (ledger status `retryLater`); writes are idempotent.
   */
  THROTTLED: 'TimeSeriesThrottled',
} as const;

/**
 * How long a load may stay throttled inside one loader invocation before it fails with
 * `TimeSeriesThrottled`: 5 minutes, a third of the loader's 15-minute timeout (Lambda's maximum), so the
 * writes already under way and the ledger update still fit. Timestream for LiveAnalytics asks clients
 * to keep sending while its memory store scales ("you must continue to send data at the same (or
 * higher) throughput", Handling WriteRecords throttles); InfluxDB's 429/503 name their wait in
 * Retry-After. Longer throttling is waited out by the state machine, not by a running Lambda. @internal
 */
export const DEFAULT_THROTTLE_BUDGET_MS = 5 * 60_000;

/** One point of a query response. @internal */
export interface TimeSeriesPoint {
  /** UTC ISO-8601 with milliseconds: the instant, or the first instant of the bucket (ons/calendar.ts). */
  readonly time: string;
  /**
   * Aggregates only: the bucket's local (America/Sao_Paulo) start, `YYYY-MM-DD` for `1d` `1w` `1mo` `1y`, the local
   * date-time with its offset (`2013-02-16T23:00-03:00`) for sub-day intervals.
   */
  readonly local?: string;
  /** Aggregates only: the bucket's calendar name, `2013-02-15`, `2013-W07`, `2013-02-S3`, `2013-02`, `2013` (sub-day: as `local`). */
  readonly period?: string;
  /** Identity dimensions of the series. */
  readonly dimensions: Readonly<Record<string, string | null>>;
  readonly value: number | null;
}

/** Body of a successful `GET /timeseries/{dataset}`. @internal */
export interface TimeSeriesResponse {
  readonly dataset: string;
  readonly measure: string;
  readonly unit: string | null;
  /** Null for raw points (no interval asked). */
  readonly interval: typeof INTERVALS[number] | null;
  readonly aggregation: typeof AGGREGATIONS[number] | null;
  readonly from: string;
  readonly to: string;
  readonly points: TimeSeriesPoint[];
  /** Pass back as `nextToken` with the same parameters for the next page. */
  readonly nextToken?: string;
}

/**
 * Environment of the Timestream for InfluxDB functions (loader, query, bootstrap, health), on top of
 * `TimeSeriesEnv` (`DATABASE` is the InfluxDB 1.x database name that the bucket's DBRP mapping gives,
 * `TABLES` maps each served dataset id to its measurement, `MAX_IN_FLIGHT`, `WRITE_MAX_ATTEMPTS`,
 * `WRITE_BASE_DELAY_MS` and `MAX_POINTS` keep their meaning).
 *
 * The loader reads `URL`, `RETENTION_POLICY`, `TOKEN_SECRET_ARN` (the write token), `BATCH_LINES` (default
 * 5000) and `REQUEST_TIMEOUT_MS`, plus `TimeSeriesEnv` `DATABASE`, `TABLES`, `CATCH_ALL_TABLE` (set to any
 * value: datasets outside `TABLES` go to a measurement named after their id), `MAX_IN_FLIGHT` (default 4),
 * `REJECTED_RECORDS_PREFIX`, `WRITE_MAX_ATTEMPTS`, `WRITE_BASE_DELAY_MS`, and the ingestion settings
 * `PROCESSED_BUCKET`, `FAILED_BUCKET`, `LEDGER_TABLE`. The query handler reads `URL`, `RETENTION_POLICY`,
 * `TOKEN_SECRET_ARN` (the read token), `REQUEST_TIMEOUT_MS`, `DATABASE`, `TABLES` and `MAX_POINTS` (1 to
 * 1000, default 1000). `WRITE_ENDPOINT` and `QUERY_ENDPOINT` are not used: `URL` is the endpoint.
 * @internal
 */
export const InfluxDbEnv = {
  /** Base URL of the instance's HTTP API, e.g. `https://<endpoint>:8086` (no trailing slash). */
  URL: 'ONS_INFLUX_URL',
  /** Retention policy of the DBRP mapping (the 1.x `rp` parameter). */
  RETENTION_POLICY: 'ONS_INFLUX_RETENTION_POLICY',
  /** ARN of the Secrets Manager secret whose SecretString is this function's API token (write or read). */
  TOKEN_SECRET_ARN: 'ONS_INFLUX_TOKEN_SECRET_ARN',
  /** Lines per write request (InfluxDB recommends about 5,000). */
  BATCH_LINES: 'ONS_INFLUX_BATCH_LINES',
  /** Optional: ms to wait for a response to one write or query request before it counts as a network error (default 30000). */
  REQUEST_TIMEOUT_MS: 'ONS_INFLUX_REQUEST_TIMEOUT_MS',
} as const;

/**
 * Environment of the lake engine's query handler (Athena over the processed zone), on top of `TimeSeriesEnv`
 * (`DATABASE` is the Glue database, `TABLES` maps each served dataset id to the Glue view the handler reads,
 * its `<dataset>_current` view of current rows, and `MAX_POINTS` is 1 to 999).
 * @internal
 */
export const LakeQueryEnv = {
  /** The Athena workgroup every query runs in (its result location, encryption and BytesScannedCutoffPerQuery apply). */
  WORK_GROUP: 'ONS_LAKE_WORK_GROUP',
  /** Optional: endpoint override of the Athena client (tests, VPC endpoints). */
  ATHENA_ENDPOINT: 'ONS_LAKE_ATHENA_ENDPOINT',
  /** Optional: ms a request may wait for its query before it is stopped and answered 504 (default 25000, under API Gateway's 29 s). */
  DEADLINE_MS: 'ONS_LAKE_QUERY_DEADLINE_MS',
  /** Optional: first wait in ms between GetQueryExecution polls, doubled up to 1000 (default 100). */
  POLL_DELAY_MS: 'ONS_LAKE_POLL_DELAY_MS',
  /** Optional: minutes Athena may answer from an earlier identical query's results (0 to 10080, default 60). */
  RESULT_REUSE_MINUTES: 'ONS_LAKE_RESULT_REUSE_MINUTES',
} as const;

/** The `operationId` of `GET /timeseries/{dataset}` in the route table, and the `operation` dimension of its QueryLatency. @internal */
export const TIME_SERIES_OPERATION = QueryOperations.TIME_SERIES;
