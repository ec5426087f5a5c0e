import { Construct } from 'constructs';
import { InfluxDbStore, InfluxDbStoreOptions } from './influxdb-store';
import { ITimeSeriesStore, TimeSeriesStoreBaseProps } from './store';
import { TimestreamStore, TimestreamStoreOptions } from './timestream-store';

/**
 * What an engine needs to create its store inside `OnsDataPlatform`.
 */
export interface TimeSeriesEngineBindOptions extends TimeSeriesStoreBaseProps {}

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

  /**
   * Amazon Timestream for InfluxDB (`InfluxDbStore`): an InfluxDB 2 instance in private subnets, open to new accounts and
   * offered in more regions; it runs, and costs, all the time (instance class and storage from the stage or the options).
   */
  public static timestreamInfluxDb(options: InfluxDbStoreOptions = {}): TimeSeriesEngine {
    return new class extends TimeSeriesEngine {
      public bind(scope: Construct, bindOptions: TimeSeriesEngineBindOptions): ITimeSeriesStore {
        return new InfluxDbStore(scope, 'TimeSeries', { ...options, ...bindOptions });
      }
    }();
  }

  /** Creates the store under `scope`. */
  public abstract bind(scope: Construct, options: TimeSeriesEngineBindOptions): ITimeSeriesStore;
}
