import { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { Ledger } from './ledger';
import { createDocumentClient, createS3Client, decodeEventKey, requiredEnv } from '../../runtime/handler';
import { startInvocation } from '../../runtime/telemetry';
import { LedgerEnv, SourceObject, StepInput } from '../contract';

/**
 * What every pipeline step that records in the ledger shares (router, processor, Batch entrypoint, document copy,
 * quarantine, time-series loader): its input (the source object version and the execution), its log context and
 * its clients.
 */

/** What every step calls: S3 and the ledger. */
export interface StepDeps {
  readonly s3: S3Client;
  readonly ledger: Ledger;
}

/** The clients of a step (the ledger's table from the environment); a handler creates them once per container. */
export function stepDepsFromEnv(): StepDeps {
  return { s3: createS3Client(), ledger: new Ledger(createDocumentClient(), requiredEnv(LedgerEnv.TABLE)) };
}

/**
 * Starts the log context of one pipeline step: the Step Functions execution ARN and the object key of
 * its input (when they are there: a malformed input is still logged), and the Lambda context if any.
 */
export function startStep(event: unknown, context?: Partial<Context>): void {
  const input = event as { executionArn?: unknown; source?: { key?: unknown; keyUrlEncoded?: unknown } } | undefined;
  const rawKey = input?.source?.key;
  let objectKey: string | undefined;
  if (typeof rawKey === 'string') {
    try {
      objectKey = input?.source?.keyUrlEncoded ? decodeEventKey(rawKey) : rawKey;
    } catch {
      objectKey = rawKey; // a malformed escape: logged as it came
    }
  }
  startInvocation(context, { executionArn: typeof input?.executionArn === 'string' ? input.executionArn : undefined, objectKey });
}

/** The source with its key decoded (see `SourceObject.keyUrlEncoded`) and without the flag. */
export function decodedSource(source: SourceObject): SourceObject {
  if (!source.keyUrlEncoded) return source;
  const { keyUrlEncoded: _encoded, ...rest } = source;
  return { ...rest, key: decodeEventKey(source.key) };
}

/** Checks the step input, so a malformed payload fails with a reason instead of deep inside a call. */
export function validateInput(input: unknown): StepInput {
  const i = input as Partial<StepInput> | undefined;
  const s = i?.source;
  if (!s || typeof s.bucket !== 'string' || !s.bucket || typeof s.key !== 'string' || !s.key) {
    throw new TypeError('input.source must have a bucket and a key');
  }
  if (s.versionId !== undefined && s.versionId !== null && typeof s.versionId !== 'string') {
    throw new TypeError('input.source.versionId must be a string');
  }
  if (typeof i.executionArn !== 'string' || !i.executionArn) throw new TypeError('input.executionArn must be a string');
  // A JSON null version (unversioned bucket) is the same as none.
  const source: SourceObject = s.versionId === null ? { ...s, versionId: undefined } : s;
  return { ...(i as StepInput), source: decodedSource(source) };
}
