import type { Context } from 'aws-lambda';
import { ProcessInput } from './contract';
import { processConfigFromEnv, processObject, ProcessDeps } from './runtime/process-object';
import { ProcessResult } from '../ledger/contract';
import { startStep, stepDepsFromEnv, validateInput } from '../ledger/runtime/step';
import { flushMetrics } from '../runtime/telemetry';

// Created once per container, on first use (the environment is read then).
let deps: ProcessDeps | undefined;

/**
 * ProcessFile (Lambda): converts one tabular object with the domain core and writes the processed
 * Parquet, the data card and the rejected rows; duplicates of content already in the lake are skipped.
 * Throws `FileRefused` for a file the domain core refuses (not retried), anything else as it came.
 */
export async function handler(event: ProcessInput, context?: Context): Promise<ProcessResult> {
  startStep(event, context);
  try {
    const input = validateInput(event);
    deps ??= { ...stepDepsFromEnv(), config: processConfigFromEnv() };
    return await processObject(input, deps);
  } finally {
    flushMetrics(); // RecordsProcessed and RecordsRejected (see processObject)
  }
}
