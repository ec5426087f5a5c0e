import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { IFeatureFlags } from '../core/flags';
import { IHealthProbe } from '../core/health-probe';
import { PlatformStage } from '../core/stage';
import { IDataLake } from '../lake/data-lake';
import { IIngestionLedger } from '../ledger/ingestion-ledger';

/**
 * What every time-series store takes from the rest of the platform: the stage, the lake it loads from and the ledger
 * its loader records in.
 */
export interface TimeSeriesStoreBaseProps {
  /** The stage: retention, sizing and function defaults. */
  readonly stage: PlatformStage;
  /** The lake: the loader reads processed Parquet and writes rejected records to the failed bucket; its key encrypts the store. */
  readonly dataLake: IDataLake;
  /** The ingestion ledger: the loader records what it loaded. */
  readonly ledger: IIngestionLedger;
  /**
   * Concurrent executions reserved for each of the store's functions.
   *
   * @default - no reservation
   */
  readonly reservedConcurrentExecutions?: number;

  /**
   * The feature flags the query function reads (`FeatureFlags`, or your own `IFeatureFlags`); bound when the function is made.
   *
   * @default - no flags: the handler treats every flag as on
   */
  readonly featureFlags?: IFeatureFlags;
}

/**
 * A time-series engine, as the ingestion pipeline and the API see it. The pipeline's
 * LoadTimeSeries step invokes `loaderFunction`, when the store has one, with `{ source, executionArn, processed }`; the API
 * answers `GET /timeseries/{dataset}` with `queryFunction`. Nothing outside the store depends on
 * the engine behind it.
 */
export interface ITimeSeriesStore {
  /** The engine's name, e.g. `timestream-liveanalytics`. */
  readonly engine: string;

  /** Dataset ids the store has a table for: the datasets `GET /timeseries/{dataset}` serves. */
  readonly datasetIds: string[];

  /** The ledger the loader records in. */
  readonly ledger: IIngestionLedger;

  /**
   * The function that loads one processed file into the store (the pipeline's LoadTimeSeries step).
   *
   * @default - none: the store reads the lake itself (`LakeStore`), so a file is queryable once the processor
   * has published it, and the processor records it `loaded` then
   */
  readonly loaderFunction?: lambda.IFunction;

  /** The function that answers time-series queries in API Gateway proxy format. */
  readonly queryFunction: lambda.IFunction;

  /** Lets `grantee` write points to every table of the store. */
  grantWrite(grantee: iam.IGrantable): iam.Grant;

  /** Lets `grantee` query every table of the store (read only). */
  grantRead(grantee: iam.IGrantable): iam.Grant;

  /**
   * How the platform's health check reaches the store with a read-only call: `config.engine` names the
   * engine's probe, which lives with the engine (timeseries/<engine>/runtime/health.ts).
   */
  healthProbe(): IHealthProbe;
}
