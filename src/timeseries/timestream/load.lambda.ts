import type { Context } from 'aws-lambda';
import { IngestionEnv } from '../../ingestion/contract';
import { Ledger } from '../../ingestion/ledger';
import { createDocumentClient, createS3Client, requiredEnv, startStep } from '../../ingestion/runtime';
import { flushMetrics } from '../../operations/telemetry';
import { LoadInput, LoadResult, TimeSeriesEnv } from '../contract';
import { LoadDeps, LoadEngine, loadObject, validateLoadInput } from '../runtime/load-object';
import { loadConfigFromEnv, timestreamEngine } from './runtime/load-object';
import { createWriteClient } from './runtime/writer';

// Created once per container, on first use (the environment is read then).
let deps: (LoadDeps & { engine: LoadEngine }) | undefined;

/**
 * LoadTimeSeries (Lambda): writes the processed Parquet parts of one object to Timestream. Throws
 * `InvalidLoadInput`, `NothingWritten` or `TimeSeriesWriteRefused` (not worth retrying) and
 * `TimeSeriesUnavailable` (retry later; writes are idempotent).
 */
export async function handler(event: LoadInput, context?: Context): Promise<LoadResult> {
  startStep(event, context);
  try {
    const input = validateLoadInput(event);
    if (!deps) {
      const config = loadConfigFromEnv();
      const client = createWriteClient(process.env[TimeSeriesEnv.WRITE_ENDPOINT] || undefined, config.maxInFlight);
      deps = {
        s3: createS3Client(),
        ledger: new Ledger(createDocumentClient(), requiredEnv(IngestionEnv.LEDGER_TABLE)),
        engine: timestreamEngine(client, config),
        config,
      };
    }
    return await loadObject(input, deps, deps.engine);
  } finally {
    flushMetrics(); // PointsWritten and RecordsRejectedByStore (see loadObject)
  }
}
