import { CopyObjectCommand } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { LakeEnv } from '../lake/contract';
import { LedgerEnv, StepInput } from '../ledger/contract';
import { Ledger } from '../ledger/runtime/ledger';
import { startStep, validateInput } from '../ledger/runtime/step';
import { copySource, createDocumentClient, createS3Client, prefixEnv, requiredEnv } from '../runtime/handler';
import { log } from '../runtime/telemetry';

// Created once per container, on first use (the environment is read then).
let clients: { s3: ReturnType<typeof createS3Client>; ledger: Ledger } | undefined;

export interface CopyDocumentResult {
  readonly status: 'processed';
  readonly kind: 'document';
  readonly bucket: string;
  readonly key: string;
}

/**
 * CopyDocument: copies a document (PDF, DOCX...) from the raw bucket to the knowledge base's
 * documents prefix in the processed bucket, under its original key; the raw object stays.
 */
export async function handler(event: StepInput, context?: Context): Promise<CopyDocumentResult> {
  startStep(event, context);
  const { source, executionArn } = validateInput(event);
  clients ??= { s3: createS3Client(), ledger: new Ledger(createDocumentClient(), requiredEnv(LedgerEnv.TABLE)) };
  const bucket = requiredEnv(LakeEnv.PROCESSED_BUCKET);
  const key = `${prefixEnv(LakeEnv.DOCUMENTS_PREFIX, 'knowledge/documents/')}${source.key}`;
  // CopyObject handles up to 5 GB, far above any document the knowledge base takes.
  await clients.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: key, CopySource: copySource(source) }));
  await clients.ledger.recordDocument(source, { executionArn, outputs: { processedBucket: bucket, documentKey: key } });
  log('INFO', 'document copied', { source, bucket, key });
  return { status: 'processed', kind: 'document', bucket, key };
}
