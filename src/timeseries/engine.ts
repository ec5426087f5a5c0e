import { Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { InfluxDbStore, InfluxDbStoreOptions } from './influxdb-store';
import { LakeStore, LakeStoreOptions } from './lake-store';
import { ITimeSeriesStore, TimeSeriesStoreBaseProps } from './store';
import { TimestreamStore, TimestreamStoreOptions } from './timestream-store';
import { IDataLake, IQueryableDataLake } from '../lake/data-lake';

/**
 * What an engine needs to create its store inside `OnsDataPlatform`.
 */
export interface TimeSeriesEngineBindOptions extends TimeSeriesStoreBaseProps {}

/**
 * The time-series engine of `OnsDataPlatform`, chosen with one prop: `timeSeries: TimeSeriesEngine.lake()` (the
 * default), `TimeSeriesEngine.timestreamLiveAnalytics()` or `TimeSeriesEngine.timestreamInfluxDb()`.
 */
export abstract class TimeSeriesEngine {
  /**
   * The data lake itself (`LakeStore`), queried with Amazon Athena: the default. No loader, no idle cost (Athena bills
   * the bytes each query scans), open to every account and offered wherever Athena is; a query takes seconds rather
   * than the milliseconds of the two Timestream engines, and answers 504 past `queryDeadline`.
   */
  public static lake(options: LakeStoreOptions = {}): TimeSeriesEngine {
    return new class extends TimeSeriesEngine {
      public bind(scope: Construct, bindOptions: TimeSeriesEngineBindOptions): ITimeSeriesStore {
        const { dataLake, ...rest } = bindOptions;
        if (!isQueryableDataLake(dataLake)) {
          throw new Error('dataLake: TimeSeriesEngine.lake() needs a lake with a Glue database and an Athena workgroup (a DataLake, or an IQueryableDataLake)');
        }
        return new LakeStore(scope, 'TimeSeries', { ...options, ...rest, dataLake });
      }
    }();
  }

  /**
   * Amazon Timestream for LiveAnalytics (`TimestreamStore`): serverless, no idle cost, queries in milliseconds; closed
   * to AWS accounts that did not use it before 2025-06-20 and offered in a few regions only. The choice for platforms
   * that already deployed it (the default before the lake engine).
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
   * offered in more regions; the lowest query latency, but it runs, and costs, all the time (instance class and storage
   * from the stage or the options).
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

/** Whether `lake` can be queried with Athena (a `DataLake`, or your own `IQueryableDataLake`). */
function isQueryableDataLake(lake: IDataLake): lake is IQueryableDataLake {
  const l = lake as Partial<IQueryableDataLake>;
  return typeof l.grantQuery === 'function' && typeof l.currentViewName === 'function'
    && typeof l.workGroupName === 'string' && typeof l.databaseName === 'string' && Array.isArray(l.datasetIds)
    && !Token.isUnresolved(l.datasetIds);
}
