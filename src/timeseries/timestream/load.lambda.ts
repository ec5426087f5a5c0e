import { TimeSeriesEnv } from '../contract';
import { createLoadHandler } from '../runtime/load-object';
import { loadConfigFromEnv, timestreamEngine } from './runtime/load-object';
import { createWriteClient } from './runtime/writer';

/**
 * LoadTimeSeries (Lambda): writes the processed Parquet parts of one object to Timestream. Throws
 * `InvalidLoadInput`, `NothingWritten` or `TimeSeriesWriteRefused` (not worth retrying) and
 * `TimeSeriesUnavailable` (retry later; writes are idempotent).
 */
export const handler = createLoadHandler(loadConfigFromEnv, (config) =>
  timestreamEngine(createWriteClient(process.env[TimeSeriesEnv.WRITE_ENDPOINT] || undefined, config.maxInFlight), config));
