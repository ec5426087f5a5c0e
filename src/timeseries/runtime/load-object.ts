import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Context } from 'aws-lambda';
import type { PointRecord } from './layout';
import { readPartRecords } from './part-reader';
import { tablesEnv } from './tables';
import { LakeEnv } from '../../lake/contract';
import { LedgerLoad, ProcessResult } from '../../ledger/contract';
import { startStep, StepDeps, stepDepsFromEnv, validateInput } from '../../ledger/runtime/step';
import { sourceName } from '../../ons/convert';
import { DEFAULT_PREFIXES, outputStem, parsePartKey, rejectedRecordsKey, rejectedRecordsPrefix, sourceId, sourceIdentity } from '../../ons/layout';
import { PlatformMetrics } from '../../runtime/contract';
import { describeError, numberEnv, prefixEnv, requiredEnv } from '../../runtime/handler';
import { RetryOptions } from '../../runtime/retry';
import { flushMetrics, log, recordMetric } from '../../runtime/telemetry';
import { DEFAULT_THROTTLE_BUDGET_MS, LoadErrors, LoadInput, LoadResult, TimeSeriesEnv } from '../contract';

/**
 * LoadTimeSeries, for any engine: the processed Parquet parts of one source object read as records and
 * handed to the engine's writer, versioned with the source object's last-modified time; records the
 * engine rejects go with their reasons to the failed bucket; the ledger and the metrics record the outcome.
 */

/** A write error the loader turns into the step's failure, with the name Step Functions sees. */
export class LoadError extends Error {
  constructor(name: typeof LoadErrors[keyof typeof LoadErrors], message: string) {
    super(message);
    this.name = name;
  }
}

/** A record the engine rejected, with the reason it gave. */
export interface RejectedRecord {
  readonly reason: string;
  /** Index of the record in its write request (Timestream) or in the load (InfluxDB, whose writer may split requests). */
  readonly recordIndex: number;
  /** Timestream: the version of the record already stored. */
  readonly existingVersion?: number;
  /** The record as sent. */
  readonly record: { time: string; dimensions: Record<string, string>; measures: Record<string, number>; version?: number };
  /** InfluxDB: the line-protocol line as sent. */
  readonly line?: string;
}

export interface WriteStats {
  readonly requests: number;
  readonly retries: number;
  readonly records: number;
  readonly points: number;
  readonly rejected: number;
}

/** An engine's write path for one load. */
export interface PointWriter {
  /** Adds a record; waits while the requests in flight are at the limit (so memory stays bounded). */
  add(record: PointRecord): Promise<void>;
  /** Sends what is left and waits for every request; throws the first failure. */
  finish(): Promise<WriteStats>;
}

export interface WriterContext {
  readonly dataset: string;
  /** The table (Timestream) or measurement (InfluxDB) the records go to. */
  readonly table: string;
  /** The source object's last-modified time in ms. */
  readonly version: number;
  readonly onRejected: (rejected: RejectedRecord) => void;
}

/** What differs between engines. */
export interface LoadEngine {
  /** Where a dataset's records go (table or measurement); undefined: the dataset is not loaded. */
  target(dataset: string): string | undefined;
  writer(context: WriterContext): PointWriter;
}

export interface LoadConfig {
  readonly processedBucket: string;
  readonly failedBucket: string;
  /** Dataset id → table (or measurement). */
  readonly tables: Readonly<Record<string, string>>;
  readonly catchAllTable?: string;
  readonly maxInFlight: number;
  readonly rejectedRecordsPrefix: string;
  /** Retry settings (tests shorten the backoff). */
  readonly retry?: RetryOptions;
  /** Throttle budget of one load and longest wait after a throttled answer, in ms (see `TimeSeriesEnv.THROTTLE_BUDGET_MS`). */
  readonly throttle?: { readonly budgetMs: number; readonly maxDelayMs?: number };
}

export interface LoadDeps extends StepDeps {
  readonly config: LoadConfig;
}

/** The settings every engine's loader reads from `TimeSeriesEnv`. */
export function loadConfigFromEnv(): LoadConfig {
  return {
    processedBucket: requiredEnv(LakeEnv.PROCESSED_BUCKET),
    failedBucket: requiredEnv(LakeEnv.FAILED_BUCKET),
    tables: tablesEnv(),
    catchAllTable: process.env[TimeSeriesEnv.CATCH_ALL_TABLE] || undefined,
    maxInFlight: Math.max(1, Math.floor(numberEnv(TimeSeriesEnv.MAX_IN_FLIGHT, 4))),
    rejectedRecordsPrefix: prefixEnv(TimeSeriesEnv.REJECTED_RECORDS_PREFIX, rejectedRecordsPrefix(DEFAULT_PREFIXES.rejectedRows)),
    retry: {
      maxAttempts: Math.max(1, Math.floor(numberEnv(TimeSeriesEnv.WRITE_MAX_ATTEMPTS, 8))),
      baseDelayMs: numberEnv(TimeSeriesEnv.WRITE_BASE_DELAY_MS, 100),
    },
    throttle: {
      budgetMs: Math.max(0, numberEnv(TimeSeriesEnv.THROTTLE_BUDGET_MS, DEFAULT_THROTTLE_BUDGET_MS)),
      // Unset: the engine's own cap (Timestream 20 s of backoff; InfluxDB a Retry-After of up to 60 s).
      maxDelayMs: process.env[TimeSeriesEnv.THROTTLE_MAX_DELAY_MS] ? Math.max(1, numberEnv(TimeSeriesEnv.THROTTLE_MAX_DELAY_MS)) : undefined,
    },
  };
}

/** The step input, or InvalidLoadInput saying what is wrong (a duplicate, no parts, parts of another dataset). */
export function validateLoadInput(event: unknown): LoadInput {
  let step;
  try {
    step = validateInput(event);
  } catch (e) {
    throw new LoadError(LoadErrors.INVALID_INPUT, (e as Error).message);
  }
  const processed = (event as { processed?: Partial<ProcessResult> }).processed;
  if (!processed || typeof processed !== 'object') throw new LoadError(LoadErrors.INVALID_INPUT, 'input.processed is missing');
  if (processed.status !== 'processed') {
    throw new LoadError(LoadErrors.INVALID_INPUT, `input.processed.status is '${processed.status}': only a processed object is loaded (a duplicate's content was loaded from ${processed.duplicateOf ?? 'its first copy'})`);
  }
  const dataset = processed.dataset;
  if (typeof dataset !== 'string' || !/^[a-z0-9_]{1,128}$/.test(dataset)) throw new LoadError(LoadErrors.INVALID_INPUT, 'input.processed.dataset is not a dataset id');
  const keys = processed.parquetKeys;
  if (!Array.isArray(keys) || keys.length === 0) throw new LoadError(LoadErrors.INVALID_INPUT, 'input.processed.parquetKeys is empty: nothing to load');
  const stray = keys.find((k) => typeof k !== 'string' || parsePartKey(k)?.dataset !== dataset);
  if (stray !== undefined) throw new LoadError(LoadErrors.INVALID_INPUT, `input.processed.parquetKeys has a key that is not a Parquet part of ${dataset}: ${JSON.stringify(stray)}`);
  if (new Set(keys).size !== keys.length) throw new LoadError(LoadErrors.INVALID_INPUT, 'input.processed.parquetKeys lists a part twice');
  return { source: step.source, executionArn: step.executionArn, processed: processed as ProcessResult };
}

export async function loadObject(input: LoadInput, deps: LoadDeps, engine: LoadEngine): Promise<LoadResult> {
  const { s3, ledger, config } = deps;
  const { source, executionArn, processed } = input;
  const dataset = processed.dataset!;
  const table = engine.target(dataset);
  if (!table) {
    const reason = `dataset ${dataset} has no time-series table (not in the catalog, and no catch-all table is configured)`;
    await ledger.recordNotLoaded(source, { executionArn, load: { status: 'notLoaded', at: new Date().toISOString(), reason } });
    log('INFO', 'not loaded', { source, dataset, reason });
    return { status: 'notLoaded', records: 0, points: 0, rejected: 0, skipped: 0, requests: 0, reason };
  }

  // A newer version of the key replaced this one's outputs (their names are the key's): loading them now would
  // write the newer rows under this version's number, or miss the months it dropped.
  const superseded = async (): Promise<LoadResult | undefined> => {
    const item = await ledger.get(source);
    const by = item?.supersededBy;
    if (!by) return undefined;
    const reason = `version ${by} of ${source.key} replaced this one before it was loaded; that version's run loads its rows`;
    // An earlier load's record stays: it says what this version put in the store.
    if (item.load?.status !== 'loaded') {
      await ledger.recordNotLoaded(source, { executionArn, load: { status: 'notLoaded', at: new Date().toISOString(), table, reason } });
    }
    log('INFO', 'not loaded', { source, dataset, reason });
    return { status: 'notLoaded', records: 0, points: 0, rejected: 0, skipped: 0, requests: 0, reason };
  };
  const before = await superseded();
  if (before) return before;

  const work = await mkdtemp(join(tmpdir(), 'ons-load-'));
  const reportPath = join(work, 'rejected-records.jsonl');
  const report = createWriteStream(reportPath);
  const rejectedKey = rejectedRecordsKey(config.rejectedRecordsPrefix, dataset,
    outputStem(sourceName(source.key), sourceId(sourceIdentity(source.key, source.bucket))));
  let reported = 0;
  try {
    const version = await sourceVersion(s3, source);
    const onRejected = (r: RejectedRecord) => {
      reported++;
      report.write(`${JSON.stringify({ source: `s3://${source.bucket}/${source.key}`, versionId: source.versionId, table, ...r })}\n`);
    };
    const writer = engine.writer({ dataset, table, version, onRejected });
    const counters = { skipped: 0, rows: 0 };
    let failure: unknown;
    try {
      for (const key of processed.parquetKeys!) {
        const data = await getBytes(s3, config.processedBucket, key);
        for await (const record of readPartRecords(data, dataset, counters)) await writer.add(record);
      }
    } catch (e) {
      failure = e;
    }
    // Whatever happened, wait for the requests under way, so every rejection is reported.
    const stats = await writer.finish().catch((e: unknown) => {
      failure ??= e;
      return undefined;
    });
    report.end();
    await finished(report);
    if (reported) await upload(s3, config.failedBucket, rejectedKey, reportPath);
    if (failure) throw failure;

    const result: LoadResult = {
      status: 'loaded',
      table,
      records: stats!.records,
      points: stats!.points,
      rejected: stats!.rejected,
      skipped: counters.skipped,
      requests: stats!.requests,
      ...(reported ? { rejectedKey } : {}),
    };
    // Every write finished: what the store took and refused, also when it refused everything (thrown below).
    recordMetric(PlatformMetrics.POINTS_WRITTEN, result.points);
    recordMetric(PlatformMetrics.POINTS_REJECTED, result.rejected);
    if (result.records === 0 && result.rejected > 0) {
      throw new LoadError(LoadErrors.NOTHING_WRITTEN, `${table} rejected all ${result.rejected} records of ${source.key}; reasons in s3://${config.failedBucket}/${rejectedKey}`);
    }
    const load: LedgerLoad = {
      status: 'loaded',
      at: new Date().toISOString(),
      table,
      records: result.records,
      points: result.points,
      rejected: result.rejected,
      skipped: result.skipped,
      requests: result.requests,
      version,
      ...(reported ? { failedBucket: config.failedBucket, rejectedKey } : {}),
    };
    await ledger.recordLoaded(source, { executionArn, load });
    log('INFO', 'loaded', { source, dataset, table, rows: counters.rows, ...result, retries: stats!.retries, version });
    return result;
  } catch (error) {
    // Superseded while loading: a part deleted under the reader. What was written carries this version's number.
    const during = (error as Error)?.name === 'NoSuchKey' ? await superseded().catch(() => undefined) : undefined;
    if (during) return during;
    log('ERROR', 'loading failed', { source, dataset, table, ...describeError(error) });
    await ledger.recordFailure(source, { step: 'LoadTimeSeries', reason: describeError(error).errorMessage, errorType: describeError(error).errorType })
      .catch(() => undefined); // best effort: the error that matters is the one rethrown
    throw error;
  } finally {
    report.destroy();
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * An engine's LoadTimeSeries Lambda handler: its clients and settings created once per container, on
 * first use (the environment is read then); the metrics flushed after every invocation.
 */
export function createLoadHandler<C extends LoadConfig>(configFromEnv: () => C, engineOf: (config: C) => LoadEngine) {
  let deps: (LoadDeps & { engine: LoadEngine }) | undefined;
  return async (event: LoadInput, context?: Context): Promise<LoadResult> => {
    startStep(event, context);
    try {
      const input = validateLoadInput(event);
      if (!deps) {
        const config = configFromEnv();
        deps = { ...stepDepsFromEnv(), engine: engineOf(config), config };
      }
      return await loadObject(input, deps, deps.engine);
    } finally {
      flushMetrics(); // PointsWritten and RecordsRejectedByStore (see loadObject)
    }
  };
}

/** The source object's last-modified time in ms (the version of every record written from it). */
async function sourceVersion(s3: S3Client, source: LoadInput['source']): Promise<number> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: source.bucket, Key: source.key, VersionId: source.versionId }));
  const ms = head.LastModified?.getTime();
  if (!ms) throw new Error(`s3://${source.bucket}/${source.key} has no LastModified`);
  return ms;
}

async function getBytes(s3: S3Client, bucket: string, key: string): Promise<Uint8Array> {
  const { Body } = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Body!.transformToByteArray();
}

async function upload(s3: S3Client, bucket: string, key: string, path: string): Promise<void> {
  await new Upload({ client: s3, params: { Bucket: bucket, Key: key, Body: createReadStream(path), ContentType: 'application/x-ndjson' } }).done();
}
