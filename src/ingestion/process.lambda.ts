import { IngestionEnv, ProcessInput, ProcessResult } from './contract';
import { Ledger } from './ledger';
import { processConfigFromEnv, processObject, ProcessDeps } from './process-object';
import { createDocumentClient, createS3Client, requiredEnv, validateInput } from './runtime';

// Created once per container, on first use (the environment is read then).
let deps: ProcessDeps | undefined;

/**
 * ProcessFile (Lambda): converts one tabular object with the domain core and writes the processed
 * Parquet, the data card and the rejected rows; duplicates of content already in the lake are skipped.
 * Throws `FileRefused` for a file the domain core refuses (not retried), anything else as it came.
 */
export async function handler(event: ProcessInput): Promise<ProcessResult> {
  const input = validateInput(event);
  deps ??= {
    s3: createS3Client(),
    ledger: new Ledger(createDocumentClient(), requiredEnv(IngestionEnv.LEDGER_TABLE)),
    config: processConfigFromEnv(),
  };
  return processObject(input, deps);
}
