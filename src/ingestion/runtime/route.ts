import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { SourceObject, StepInput } from '../../ledger/contract';
import { ledgerKey } from '../../ledger/runtime/ledger';
import { StepDeps } from '../../ledger/runtime/step';
import { FeatureFlag } from '../../runtime/contract';
import { flag } from '../../runtime/flags';
import { isNotFound, listEnv, numberEnv } from '../../runtime/handler';
import { log } from '../../runtime/telemetry';
import { DEFAULT_DOCUMENT_EXTENSIONS, DEFAULT_TABULAR_EXTENSIONS, IngestionEnv, RouteAction, RouteResult } from '../contract';

/**
 * Route: decides what happens to a new raw object, by extension and size, and records it in the
 * ledger as received. Unsupported files are routed to quarantine with a reason, not thrown.
 * Extensions, threshold and flags are read on every call.
 */
export async function routeObject(input: StepInput, deps: StepDeps): Promise<RouteResult> {
  const requested = input.source;
  const tabular = listEnv(IngestionEnv.TABULAR_EXTENSIONS, DEFAULT_TABULAR_EXTENSIONS);
  const documents = listEnv(IngestionEnv.DOCUMENT_EXTENSIONS, DEFAULT_DOCUMENT_EXTENSIONS);
  // The largeFileBatch flag may lower or raise the Lambda threshold (its lambdaMaxBytes attribute) or turn Batch off.
  const largeFiles = await flag(FeatureFlag.LARGE_FILE_BATCH);
  const flagged = largeFiles.lambdaMaxBytes;
  const lambdaMaxBytes = typeof flagged === 'number' && Number.isInteger(flagged) && flagged > 0 ? flagged : numberEnv(IngestionEnv.LAMBDA_MAX_BYTES);
  const knowledgeBaseSync = (await flag(FeatureFlag.KNOWLEDGE_BASE_SYNC)).enabled;
  const { s3, ledger } = deps;

  let source: SourceObject;
  let decision: { action: RouteAction; reason?: string };
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: requested.bucket, Key: requested.key, VersionId: requested.versionId }));
    source = {
      bucket: requested.bucket, key: requested.key, versionId: head.VersionId ?? requested.versionId, size: head.ContentLength ?? requested.size,
    };
    decision = decide(source, { tabular, documents, lambdaMaxBytes, largeFiles: largeFiles.enabled });
  } catch (error) {
    if (!isNotFound(error)) throw error;
    // Deleted (or that version removed) before the execution got to it: nothing to process, on the record.
    source = requested;
    decision = { action: 'quarantine', reason: `the object no longer exists${requested.versionId ? ` (version ${requested.versionId})` : ''}` };
  }

  const recorded = await ledger.recordReceived(source, {
    executionArn: input.executionArn, route: decision.action, reason: decision.reason,
  });
  log('INFO', 'routed', { source, ...decision, ...(recorded ? {} : { ledger: 'already settled, left as is' }) });
  // Only an off flag is passed on: absent means the step runs.
  return {
    action: decision.action,
    ...(decision.reason ? { reason: decision.reason } : {}),
    source,
    ledgerKey: ledgerKey(source),
    ...(knowledgeBaseSync ? {} : { knowledgeBaseSync: false }),
  };
}

interface RouteConfig {
  readonly tabular: string[];
  readonly documents: string[];
  readonly lambdaMaxBytes: number;
  /** The largeFileBatch flag: off, files above lambdaMaxBytes wait in quarantine. */
  readonly largeFiles: boolean;
}

function decide(source: SourceObject, config: RouteConfig): { action: RouteAction; reason?: string } {
  const name = source.key.split('/').pop() ?? '';
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
  const expected = `expected a tabular file (${config.tabular.map((e) => `.${e}`).join(', ')}) or a document (${config.documents.map((e) => `.${e}`).join(', ')})`;
  if (name === '') return { action: 'quarantine', reason: `the key ends with '/' (a folder marker, not a file); ${expected}` };
  if (source.size === 0) return { action: 'quarantine', reason: 'the object is empty (0 bytes)' };
  if (config.tabular.includes(extension)) {
    if ((source.size ?? 0) <= config.lambdaMaxBytes) return { action: 'process' };
    if (!config.largeFiles) {
      return {
        action: 'quarantine',
        reason: `the file is larger than ${config.lambdaMaxBytes} bytes and large-file processing is turned off (feature flag largeFileBatch); `
          + 'backfill it once the flag is on',
      };
    }
    return { action: 'processLarge' };
  }
  if (config.documents.includes(extension)) return { action: 'document' };
  const found = extension ? `'.${extension}' files are not supported` : 'the file name has no extension';
  return { action: 'quarantine', reason: `${found}: ${expected}` };
}
