import { Construct } from 'constructs';
import { ITimeSeriesStore } from './store';
import { TimestreamStore, TimestreamStoreOptions } from './timestream-store';
import { DataLake } from '../lake/data-lake';
import { PlatformStage } from '../platform/stage';

/**
 * What an engine needs to create its store inside `OnsDataPlatform`.
 */
export interface TimeSeriesEngineBindOptions {
  readonly stage: PlatformStage;
  readonly dataLake: DataLake;
}

/**
 * The time-series engine of `OnsDataPlatform`, chosen with one prop:
 * `timeSeries: TimeSeriesEngine.timestreamLiveAnalytics()`.
 */
export abstract class TimeSeriesEngine {
  /**
   * Amazon Timestream for LiveAnalytics (`TimestreamStore`): serverless, no idle cost; closed to AWS
   * accounts that did not use it before 2025-06-20 and offered in a few regions only.
   */
  public static timestreamLiveAnalytics(options: TimestreamStoreOptions = {}): TimeSeriesEngine {
    return new class extends TimeSeriesEngine {
      public bind(scope: Construct, bindOptions: TimeSeriesEngineBindOptions): ITimeSeriesStore {
        return new TimestreamStore(scope, 'TimeSeries', { ...options, ...bindOptions });
      }
    }();
  }

  /** Creates the store under `scope`. */
  public abstract bind(scope: Construct, options: TimeSeriesEngineBindOptions): ITimeSeriesStore;
}
