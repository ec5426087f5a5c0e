import { S3Client } from '@aws-sdk/client-s3';
import { LedgerEnv } from '../../ledger/contract';
import { Ledger } from '../../ledger/runtime/ledger';
import { createDocumentClient, createS3Client, requiredEnv } from '../../runtime/handler';

/** What every ingestion step calls: S3 and the ledger. */
export interface StepDeps {
  readonly s3: S3Client;
  readonly ledger: Ledger;
}

/** The clients of a step (the ledger's table from the environment); a handler creates them once per container. */
export function stepDepsFromEnv(): StepDeps {
  return { s3: createS3Client(), ledger: new Ledger(createDocumentClient(), requiredEnv(LedgerEnv.TABLE)) };
}
