import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { LakeEnv } from '../../lake/contract';
import { LedgerItem, LedgerKey, LedgerOutputs, LedgerStatus, LedgerStatusValue, ProcessResult, SourceObject } from '../../ledger/contract';
import { IN_LAKE, Ledger, ledgerKey, ledgerRef } from '../../ledger/runtime/ledger';
import { StepDeps } from '../../ledger/runtime/step';
import { convertFile, ConvertResult } from '../../ons/convert';
import { DEFAULT_PREFIXES } from '../../ons/layout';
import { localFile } from '../../ons/local-file';
import { RefusedFileError } from '../../ons/types';
import { PlatformMetrics } from '../../runtime/contract';
import { describeError, numberEnv, prefixEnv, requiredEnv } from '../../runtime/handler';
import { log, recordMetric } from '../../runtime/telemetry';
import { IngestionEnv, ProcessInput } from '../contract';
import { publishOutputs, recordQueryable, RunOutput } from './publish';

/**
 * A file the domain core refuses. Its name is the `Error` Step Functions sees (Lambda reports
 * `error.name` as `errorType`): the state machine does not retry it.
 */
export class FileRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FileRefused';
  }
}

/**
 * ProcessFile, shared by the processor Lambda and the Batch entrypoint: a version the ledger already settled
 * answers its recorded result without a download; otherwise the raw object is streamed to
 * a temp file (hashed on the way), skipped as a duplicate when the same content is already in the
 * lake, else converted by the domain core exactly as `ons-data-platform convert` does and the outputs
 * published as the source key's current version (staged, then copied: see publish.ts); the ledger
 * records each step.
 */

export interface ProcessConfig {
  readonly processedBucket: string;
  readonly failedBucket: string;
  readonly processedDataPrefix: string;
  readonly dataCardsPrefix: string;
  readonly rejectedRowsPrefix: string;
  /** Where a run's outputs wait, in the processed bucket, until all are written (see publish.ts). */
  readonly stagingPrefix: string;
  readonly maxExpandedBytes?: number;
  /** The time-series engine when the store is the lake itself (`IngestionEnv.LOADED_ON_PUBLISH`): published means queryable. */
  readonly loadedOnPublish?: string;
}

export interface ProcessDeps extends StepDeps {
  readonly config: ProcessConfig;
}

export function processConfigFromEnv(): ProcessConfig {
  const maxExpanded = process.env[IngestionEnv.XLSX_MAX_EXPANDED_BYTES];
  return {
    processedBucket: requiredEnv(LakeEnv.PROCESSED_BUCKET),
    failedBucket: requiredEnv(LakeEnv.FAILED_BUCKET),
    // The domain core's defaults, so a run writes what `ons-data-platform convert` writes.
    processedDataPrefix: prefixEnv(LakeEnv.PROCESSED_DATA_PREFIX, DEFAULT_PREFIXES.processedData),
    dataCardsPrefix: prefixEnv(LakeEnv.DATA_CARDS_PREFIX, DEFAULT_PREFIXES.dataCards),
    rejectedRowsPrefix: prefixEnv(LakeEnv.REJECTED_ROWS_PREFIX, DEFAULT_PREFIXES.rejectedRows),
    stagingPrefix: prefixEnv(LakeEnv.STAGING_PREFIX, DEFAULT_PREFIXES.staging),
    maxExpandedBytes: maxExpanded ? numberEnv(IngestionEnv.XLSX_MAX_EXPANDED_BYTES) : undefined,
    loadedOnPublish: process.env[IngestionEnv.LOADED_ON_PUBLISH] || undefined,
  };
}

export async function processObject(input: ProcessInput, deps: ProcessDeps): Promise<ProcessResult> {
  const { s3, ledger, config } = deps;
  const { source, executionArn } = input;
  const work = await mkdtemp(join(tmpdir(), 'ons-process-'));
  let claimed: string | undefined;
  try {
    // A replay of a run that already finished (a retry after a timeout, a backfill): same answer, before any
    // download, so a settled version whose raw object is archived (GetObject: InvalidObjectState) still answers.
    // A forced reprocessing redoes it (the ledger still comes first: the state machine restored an archived object).
    const existing = input.force === true ? undefined : await ledger.get(source);
    if (existing?.result && (existing.status === 'processed' || existing.status === 'loaded'
      || existing.status === 'indexed' || existing.status === 'duplicate')) {
      log('INFO', 'already settled by an earlier run', { source, status: existing.status });
      const settledResult = JSON.parse(existing.result) as ProcessResult;
      // An earlier run stopped between publishing and recording `loaded` (the ledger's condition skips a superseded one).
      if (config.loadedOnPublish && existing.status === 'processed' && settledResult.status === 'processed' && !existing.supersededBy) {
        await recordQueryable(ledger, source, executionArn, settledResult, existing.sourceTime ?? existing.updatedAt);
      }
      return settledResult;
    }

    const local = join(work, 'source');
    const { contentHash, lastModified } = await download(s3, source, local);

    // `force` (a reprocess asked to redo settled files): processed even when the content is another object's.
    const copy = input.force === true ? undefined : await copyOf(ledger, contentHash, source);
    if (copy) {
      const result: ProcessResult = { status: 'duplicate', contentHash, duplicateOf: ledgerRef(copy) };
      await ledger.recordDuplicate(source, { executionArn, result });
      log('INFO', 'duplicate content: not processed again', { source, contentHash, duplicateOf: result.duplicateOf });
      return result;
    }
    claimed = contentHash;

    const settled = await ledger.startProcessing(source, { executionArn, contentHash, force: input.force === true });
    if (settled) {
      if (!settled.result) throw new Error(`ledger item ${ledgerRef({ pk: settled.pk, sk: settled.sk })} is ${settled.status} without a result`);
      log('INFO', 'settled by a concurrent run', { source, status: settled.status });
      return JSON.parse(settled.result) as ProcessResult;
    }

    const outDir = join(work, 'out');
    let converted: ConvertResult;
    try {
      converted = await convertFile(source.key, localFile(local), {
        outDir,
        sourceKey: source.key,
        sourceBucket: source.bucket,
        sourceVersion: source.versionId,
        sourceTime: lastModified,
        processedDataPrefix: config.processedDataPrefix,
        dataCardsPrefix: config.dataCardsPrefix,
        rejectedRowsPrefix: config.rejectedRowsPrefix,
        maxExpandedBytes: config.maxExpandedBytes,
      });
    } catch (error) {
      if (error instanceof RefusedFileError || (error as Error)?.name === 'RefusedFileError') {
        throw new FileRefusedError(`${source.key} refused: ${(error as Error).message}`);
      }
      throw error;
    }
    if (converted.contentHash !== contentHash) {
      // The object changed under us (an unversioned key overwritten mid-run): retry on the new content.
      throw new Error(`content hash changed while reading ${source.key} (${contentHash} then ${converted.contentHash})`);
    }

    const s = converted.summary;
    const result: ProcessResult = {
      status: 'processed',
      contentHash,
      dataset: s.dataset,
      rows: s.rows,
      records: s.records,
      rejected: s.rejected,
      series: s.series,
      start: s.start ?? undefined,
      end: s.end ?? undefined,
      parquetKeys: converted.parquet.map((p) => p.relativePath),
      cardKey: converted.card,
      rejectedKey: converted.rejected,
    };
    const outputs: LedgerOutputs = {
      processedBucket: config.processedBucket,
      parquetKeys: result.parquetKeys,
      cardKey: converted.card,
      cardMetadataKey: converted.cardMetadata,
      failedBucket: converted.rejected ? config.failedBucket : undefined,
      rejectedKey: converted.rejected,
    };

    // Data first, the card (what the knowledge base indexes) last.
    const files: RunOutput[] = [
      ...converted.parquet.map((p) => ({ bucket: config.processedBucket, key: p.relativePath, contentType: 'application/vnd.apache.parquet' })),
      ...(converted.rejected ? [{ bucket: config.failedBucket, key: converted.rejected, contentType: 'text/csv; charset=utf-8' }] : []),
      { bucket: config.processedBucket, key: converted.cardMetadata, contentType: 'application/json' },
      { bucket: config.processedBucket, key: converted.card, contentType: 'text/markdown; charset=utf-8' },
    ].map((f) => ({ ...f, path: join(outDir, f.key) }));
    const sourceTime = (lastModified ?? new Date()).toISOString();
    const published = await publishOutputs(deps, { source, executionArn, result, outputs, files, sourceTime });
    // A concurrent run of this version settled it first: its answer, not logged or counted twice.
    if (published !== result) return published;
    log('INFO', 'processed', {
      source,
      dataset: result.dataset,
      rows: result.rows,
      records: result.records,
      rejected: result.rejected,
      series: result.series,
      start: result.start,
      end: result.end,
      outputs: files.length,
    });
    // Once per file this run processed (not for duplicates or replays); published by the caller.
    recordMetric(PlatformMetrics.RECORDS_PROCESSED, s.records);
    recordMetric(PlatformMetrics.RECORDS_REJECTED, s.rejected);
    return result;
  } catch (error) {
    log('ERROR', 'processing failed', { source, ...describeError(error) });
    await ledger.recordFailure(source, { step: 'ProcessFile', reason: describeError(error).errorMessage, errorType: describeError(error).errorType })
      .catch(() => undefined); // best effort: the item may not exist yet, and the error that matters is the one rethrown
    // A failed run holds no content: a copy arriving meanwhile is processed (a retry of this one then becomes its copy).
    if (claimed) await ledger.releaseContent(claimed, ledgerKey(source)).catch(() => undefined);
    throw error;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The version whose run holds this content, when it is not this one. Decided by the claim's conditional
 * write, so two keys with the same bytes uploaded together cannot both be processed; versions processed
 * before claims existed are found through the content index. A holder is checked with a strongly
 * consistent read: one that was quarantined, or superseded by its key's next version, holds nothing.
 */
async function copyOf(ledger: Ledger, contentHash: string, source: SourceObject): Promise<LedgerKey | undefined> {
  const indexed = await ledger.findProcessedCopy(contentHash, source);
  if (indexed && holds(await ledger.getByKey(indexed), contentHash, IN_LAKE)) return indexed;
  const self = ledgerKey(source);
  for (;;) {
    const owner = await ledger.claimContent(contentHash, source);
    if (owner.pk === self.pk && owner.sk === self.sk) return undefined;
    // Still on its way (received, processing) or in the lake: this one is its copy.
    if (holds(await ledger.getByKey(owner), contentHash, [LedgerStatus.RECEIVED, LedgerStatus.PROCESSING, ...IN_LAKE])) return owner;
    if (await ledger.takeOverContent(contentHash, owner, source)) return undefined;
  }
}

function holds(item: LedgerItem | undefined, contentHash: string, statuses: readonly LedgerStatusValue[]): boolean {
  return !!item && statuses.includes(item.status) && !item.supersededBy && (item.contentHash === undefined || item.contentHash === contentHash);
}

/** Streams the object (the given version) to `path`, hashing it; resolves to the SHA-256 (hex) and when the version was stored. */
async function download(s3: S3Client, source: SourceObject, path: string): Promise<{ contentHash: string; lastModified?: Date }> {
  const response = await s3.send(new GetObjectCommand({ Bucket: source.bucket, Key: source.key, VersionId: source.versionId }));
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  await pipeline(response.Body as Readable, tap, createWriteStream(path));
  return { contentHash: hash.digest('hex'), lastModified: response.LastModified };
}
