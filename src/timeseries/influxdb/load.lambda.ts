import type { Context } from 'aws-lambda';
import { IngestionEnv } from '../../ingestion/contract';
import { Ledger } from '../../ingestion/ledger';
import { createDocumentClient, createS3Client, requiredEnv, startStep } from '../../ingestion/runtime';
import { flushMetrics } from '../../operations/telemetry';
import { LoadInput, LoadResult } from '../contract';
import { LoadDeps, LoadEngine, loadObject, validateLoadInput } from '../runtime/load-object';
import { influxEngine, loadConfigFromEnv } from './runtime/load-object';

// Created once per container, on first use (the environment is read then).
let deps: (LoadDeps & { engine: LoadEngine }) | undefined;

/**
 * LoadTimeSeries (Lambda): writes the processed Parquet parts of one object to Timestream for InfluxDB
 * (1.x-compatible /write). Throws `InvalidLoadInput`, `NothingWritten` or `TimeSeriesWriteRefused` (not
 * worth retrying) and `TimeSeriesUnavailable` (retry later; writes are idempotent).
 */
export async function handler(event: LoadInput, context?: Context): Promise<LoadResult> {
  startStep(event, context);
  try {
    const input = validateLoadInput(event);
    if (!deps) {
      const config = loadConfigFromEnv();
      deps = {
        s3: createS3Client(),
        ledger: new Ledger(createDocumentClient(), requiredEnv(IngestionEnv.LEDGER_TABLE)),
        engine: influxEngine(config),
        config,
      };
    }
    return await loadObject(input, deps, deps.engine);
  } finally {
    flushMetrics(); // PointsWritten and RecordsRejectedByStore (see loadObject)
  }
}
