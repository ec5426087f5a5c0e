import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { s3RandomAccess } from './s3-range';
import { SourceObject, StepInput } from '../../ledger/contract';
import { ledgerKey } from '../../ledger/runtime/ledger';
import { StepDeps } from '../../ledger/runtime/step';
import { planXlsx, XLSX_CSV_BYTES_PER_EXPANDED_BYTE, XLSX_MAX_EXPANDED_BYTES } from '../../ons/readers/xlsx';
import { isZip } from '../../ons/readers/zip';
import { RefusedFileError } from '../../ons/types';
import { FeatureFlag } from '../../runtime/contract';
import { flag } from '../../runtime/flags';
import { isArchivedHead, isNotFound, listEnv, numberEnv, requiredEnv } from '../../runtime/handler';
import { log } from '../../runtime/telemetry';
import { DEFAULT_DOCUMENT_EXTENSIONS, DEFAULT_TABULAR_EXTENSIONS, IngestionEnv, LAMBDA_MAX_FILE_MIB_LIMIT, RouteAction, RouteResult } from '../contract';

/**
 * Route: decides what happens to a new raw object, by extension and size, and records it in the
 * ledger as received. Unsupported files are routed to quarantine with a reason, not thrown.
 * A workbook (a tabular file with zip content, read by the processor as XLSX) is sized by what its
 * reading expands, from its zip directory (ranged reads of the object's tail and workbook part).
 * Extensions, threshold, limit and flags are read on every call.
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
  const maxExpandedBytes = numberEnv(IngestionEnv.XLSX_MAX_EXPANDED_BYTES, XLSX_MAX_EXPANDED_BYTES);
  const routes = requiredEnv(IngestionEnv.ROUTES).split(',').map((r) => r.trim());
  const { s3, ledger } = deps;

  let source: SourceObject;
  let decision: { action: RouteAction; reason?: string };
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: requested.bucket, Key: requested.key, VersionId: requested.versionId }));
    source = {
      bucket: requested.bucket, key: requested.key, versionId: head.VersionId ?? requested.versionId, size: head.ContentLength ?? requested.size,
    };
    const config = { tabular, documents, lambdaMaxBytes, largeFiles: largeFiles.enabled, routes };
    // An archived object's bytes cannot be read (InvalidObjectState): routed by its size; the processor answers a settled
    // version from the ledger, and reprocessing restores any other first.
    const readable = !isArchivedHead(head);
    const workbook = readable && config.tabular.includes(extensionOf(source.key)) && source.size
      ? await workbookNeeds(s3, source, maxExpandedBytes) : undefined;
    decision = decide(source, config, workbook);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    // Deleted (or that version removed) before the execution got to it: nothing to process, on the record.
    source = requested;
    decision = { action: 'quarantine', reason: `the object no longer exists${requested.versionId ? ` (version ${requested.versionId})` : ''}` };
  }

  const recorded = await ledger.recordReceived(source, {
    executionArn: input.executionArn, route: decision.action, reason: decision.reason, force: input.force === true,
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
  /** The actions the state machine has a branch for: any other is answered as quarantine. */
  readonly routes: string[];
}

/** What reading a workbook takes: its processing measured in CSV bytes, or the reason it is refused at once. */
type WorkbookNeeds = { readonly csvBytes: number; readonly expandedBytes: number } | { readonly refused: string };

/**
 * For a zip (what the processor reads as XLSX, whatever the extension): the declared expanded size of the parts the
 * reader inflates, against the limit, and as the CSV size that takes as long to process. Undefined for other files.
 */
async function workbookNeeds(s3: S3Client, source: SourceObject, maxExpandedBytes: number): Promise<WorkbookNeeds | undefined> {
  const file = s3RandomAccess(s3, source, source.size!);
  if (!isZip(await file.read(0, 4))) return undefined;
  try {
    const plan = await planXlsx(file);
    if (plan.expandedBytes > maxExpandedBytes) {
      return {
        refused: `the workbook's parts read for sheet '${plan.sheet}' (${plan.parts.map((p) => p.name).join(', ')}) declare `
          + `${plan.expandedBytes} bytes uncompressed, over the limit of ${maxExpandedBytes} bytes: refused as a possible zip bomb; `
          + 'if the file is genuine, raise maxXlsxExpandedSize (IngestionPipeline, or the ingestion options of OnsDataPlatform) and backfill it',
      };
    }
    return { expandedBytes: plan.expandedBytes, csvBytes: Math.ceil(plan.expandedBytes * XLSX_CSV_BYTES_PER_EXPANDED_BYTE) };
  } catch (error) {
    if (error instanceof RefusedFileError) return { refused: `the processor would refuse it: ${error.message}` };
    throw error;
  }
}

function extensionOf(key: string): string {
  const name = key.split('/').pop() ?? '';
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
}

function decide(source: SourceObject, config: RouteConfig, workbook?: WorkbookNeeds): { action: RouteAction; reason?: string } {
  const decision = decideAction(source, config, workbook);
  if (config.routes.includes(decision.action)) return decision;
  // Never a route the state machine lacks (it would end without quarantine or notification).
  return { action: 'quarantine', reason: `the ingestion state machine has no '${decision.action}' route (${IngestionEnv.ROUTES}=${config.routes.join(',')})` };
}

function decideAction(source: SourceObject, config: RouteConfig, workbook?: WorkbookNeeds): { action: RouteAction; reason?: string } {
  const name = source.key.split('/').pop() ?? '';
  const extension = extensionOf(source.key);
  const expected = `expected a tabular file (${config.tabular.map((e) => `.${e}`).join(', ')}) or a document (${config.documents.map((e) => `.${e}`).join(', ')})`;
  if (name === '') return { action: 'quarantine', reason: `the key ends with '/' (a folder marker, not a file); ${expected}` };
  if (source.size === 0) return { action: 'quarantine', reason: 'the object is empty (0 bytes)' };
  if (config.tabular.includes(extension)) {
    if (workbook && 'refused' in workbook) return { action: 'quarantine', reason: workbook.refused };
    // A workbook weighs what a CSV that takes as long to process weighs (never less than its own size).
    const work = Math.max(source.size ?? 0, workbook?.csvBytes ?? 0);
    if (work <= config.lambdaMaxBytes) return { action: 'process' };
    const larger = workbook && work > (source.size ?? 0)
      ? `the workbook expands to ${workbook.expandedBytes} bytes, as much work as a CSV of ${work} bytes, more than ${config.lambdaMaxBytes} bytes`
      : `the file is larger than ${config.lambdaMaxBytes} bytes`;
    if (!config.routes.includes('processLarge')) {
      return {
        action: 'quarantine',
        reason: `${larger}, the most the processor function takes, and this pipeline has no large-file processing `
          + `(largeFileProcessing.enabled is false): raise lambdaMaxFileSize (up to ${LAMBDA_MAX_FILE_MIB_LIMIT} MiB) or enable largeFileProcessing, `
          + `then run the backfill with this key as its prefix ({ "prefix": "${source.key}" })`,
      };
    }
    if (!config.largeFiles) {
      return {
        action: 'quarantine',
        reason: `${larger} and large-file processing is turned off (feature flag largeFileBatch); backfill it once the flag is on`,
      };
    }
    return { action: 'processLarge' };
  }
  if (config.documents.includes(extension)) return { action: 'document' };
  const found = extension ? `'.${extension}' files are not supported` : 'the file name has no extension';
  return { action: 'quarantine', reason: `${found}: ${expected}` };
}
