import { CopyObjectCommand } from '@aws-sdk/client-s3';
import { LakeEnv } from '../../lake/contract';
import { StepInput } from '../../ledger/contract';
import { StepDeps } from '../../ledger/runtime/step';
import { DEFAULT_PREFIXES, documentKey } from '../../ons/layout';
import { copySource, prefixEnv, requiredEnv } from '../../runtime/handler';
import { log } from '../../runtime/telemetry';

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
export async function copyDocument(input: StepInput, deps: StepDeps): Promise<CopyDocumentResult> {
  const { source, executionArn } = input;
  const bucket = requiredEnv(LakeEnv.PROCESSED_BUCKET);
  const key = documentKey(prefixEnv(LakeEnv.DOCUMENTS_PREFIX, DEFAULT_PREFIXES.documents), source.key);
  // CopyObject handles up to 5 GB, far above any document the knowledge base takes.
  await deps.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: key, CopySource: copySource(source) }));
  await deps.ledger.recordDocument(source, { executionArn, outputs: { processedBucket: bucket, documentKey: key } });
  log('INFO', 'document copied', { source, bucket, key });
  return { status: 'processed', kind: 'document', bucket, key };
}
