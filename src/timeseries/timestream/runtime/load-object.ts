import type { TimestreamWriteClient } from '@aws-sdk/client-timestream-write';
import { RecordWriter } from './writer';
import { requiredEnv } from '../../../runtime/handler';
import { TimeSeriesEnv } from '../../contract';
import { LoadConfig, LoadEngine, loadConfigFromEnv as sharedConfigFromEnv } from '../../runtime/load-object';

/**
 * LoadTimeSeries on Timestream: multi-measure records (measure name = dataset id) in the dataset's
 * table, versioned with the source object's last-modified time; the rest is the shared loader's.
 */

export interface TimestreamLoadConfig extends LoadConfig {
  readonly database: string;
}

export function loadConfigFromEnv(): TimestreamLoadConfig {
  return { ...sharedConfigFromEnv(), database: requiredEnv(TimeSeriesEnv.DATABASE) };
}

/** The Timestream side of a load: the dataset's table (or the catch-all table) and a RecordWriter. */
export function timestreamEngine(client: TimestreamWriteClient, config: TimestreamLoadConfig): LoadEngine {
  return {
    target: (dataset) => config.tables[dataset] ?? config.catchAllTable,
    writer: ({ dataset, table, version, onRejected }) => {
      const target = { database: config.database, table, measureName: dataset, version };
      return new RecordWriter(client, target, {
        maxInFlight: config.maxInFlight,
        onRejected,
        ...config.retry,
        throttleBudgetMs: config.throttle?.budgetMs,
        maxThrottleDelayMs: config.throttle?.maxDelayMs,
      });
    },
  };
}
