import { connectionFromEnv, createSender, InfluxConnection, token } from './http';
import { InfluxWriter } from './writer';
import { numberEnv } from '../../../runtime/handler';
import { InfluxDbEnv } from '../../contract';
import { LoadConfig, LoadEngine, loadConfigFromEnv as sharedConfigFromEnv } from '../../runtime/load-object';

/**
 * LoadTimeSeries on InfluxDB: one measurement per dataset (`TABLES` gives it; with a catch-all set,
 * a dataset outside `TABLES` goes to a measurement named after its id), tags = the identity
 * dimensions, fields = the measures. InfluxDB keeps one point per series and time, so a replay writes
 * the same points again (idempotent) and a revised file overwrites the values it has.
 */

export interface InfluxLoadConfig extends LoadConfig {
  readonly connection: InfluxConnection;
  readonly batchLines: number;
}

export function loadConfigFromEnv(): InfluxLoadConfig {
  return {
    ...sharedConfigFromEnv(),
    connection: connectionFromEnv(),
    batchLines: Math.max(1, Math.floor(numberEnv(InfluxDbEnv.BATCH_LINES, 5000))),
  };
}

/** The InfluxDB side of a load. */
export function influxEngine(config: InfluxLoadConfig): LoadEngine {
  const send = createSender(config.connection, config.maxInFlight);
  return {
    target: (dataset) => config.tables[dataset] ?? (config.catchAllTable ? dataset : undefined),
    writer: ({ table, onRejected }) => new InfluxWriter(send, config.connection, table, () => token(config.connection), {
      maxInFlight: config.maxInFlight,
      batchLines: config.batchLines,
      onRejected,
      ...config.retry,
      throttleBudgetMs: config.throttle?.budgetMs,
      maxRetryAfterMs: config.throttle?.maxDelayMs,
    }),
  };
}
