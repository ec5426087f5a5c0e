import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { IHealthProbe } from '../core/health-probe';
import { PlatformStage } from '../core/stage';
import { DataLake } from '../lake/data-lake';
import { IngestionLedger } from '../ledger/ingestion-ledger';

/**
 * What a time-series store's functions need from the rest of the platform.
 */
export interface TimeSeriesFunctionOptions {
  /** The stage (function defaults). */
  readonly stage: PlatformStage;
  /** The lake: the loader reads processed Parquet and writes rejected records to the failed bucket. */
  readonly dataLake: DataLake;
  /** The ingestion ledger: the loader records what it loaded. */
  readonly ledger: IngestionLedger;
  /**
   * Concurrent executions reserved for each function.
   *
   * @default - no reservation
   */
  readonly reservedConcurrentExecutions?: number;
}

/**
 * A time-series engine, as the ingestion pipeline and the API see it. The pipeline's
 * LoadTimeSeries step invokes `loaderFunction()` with `{ source, executionArn, processed }`; the API
 * answers `GET /timeseries/{dataset}` with `queryFunction()`. Nothing outside the store depends on
 * the engine behind it.
 */
export interface ITimeSeriesStore {
  /** The engine's name, e.g. `timestream-liveanalytics`. */
  readonly engine: string;

  /** Dataset ids the store has a table for: the datasets `GET /timeseries/{dataset}` serves. */
  readonly datasetIds: string[];

  /** Lets `grantee` write points to every table of the store. */
  grantWrite(grantee: iam.IGrantable): iam.Grant;

  /** Lets `grantee` query every table of the store (read only). */
  grantRead(grantee: iam.IGrantable): iam.Grant;

  /**
   * How the platform's health check reaches the store with a read-only call: `config.engine` names the
   * engine's probe, which lives with the engine (timeseries/<engine>/runtime/health.ts).
   */
  healthProbe(): IHealthProbe;

  /**
   * The function that loads one processed file into the store (created on first call, then reused).
   */
  loaderFunction(options: TimeSeriesFunctionOptions): lambda.IFunction;

  /**
   * The function that answers time-series queries in API Gateway proxy format (created on first
   * call, then reused).
   */
  queryFunction(options: TimeSeriesFunctionOptions): lambda.IFunction;
}
