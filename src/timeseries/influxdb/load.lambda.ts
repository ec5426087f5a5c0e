import { createLoadHandler } from '../runtime/load-object';
import { influxEngine, loadConfigFromEnv } from './runtime/load-object';

/**
 * LoadTimeSeries (Lambda): writes the processed Parquet parts of one object to Timestream for InfluxDB
 * (1.x-compatible /write). Throws `InvalidLoadInput`, `NothingWritten` or `TimeSeriesWriteRefused` (not
 * worth retrying) and `TimeSeriesUnavailable` (retry later; writes are idempotent).
 */
export const handler = createLoadHandler(loadConfigFromEnv, influxEngine);
