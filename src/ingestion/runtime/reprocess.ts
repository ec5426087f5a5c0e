import {
  DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, HeadObjectCommandOutput, paginateListObjectsV2, PutObjectCommand, RestoreObjectCommand,
  S3Client, Tier,
} from '@aws-sdk/client-s3';
import { LakeEnv } from '../../lake/contract';
import { LedgerItem, LedgerStatus, SourceObject } from '../../ledger/contract';
import { StepDeps } from '../../ledger/runtime/step';
import { DATASET_ID } from '../../ons/catalog';
import { DEFAULT_PREFIXES, reprocessManifestKey, reprocessReportKey, reprocessRowKey, reprocessRunPrefix } from '../../ons/layout';
import { isArchivedHead, isNotFound, numberEnv, prefixEnv, requiredEnv } from '../../runtime/handler';
import { log } from '../../runtime/telemetry';
import {
  FileCheck, INVALID_REPROCESS_REQUEST, IngestionEnv, REPROCESS_REQUEST_FIELDS, ReprocessItem, ReprocessPlan, ReprocessReportSummary,
  ReprocessRequest, ReprocessRow,
} from '../contract';

/**
 * Reprocessing: SelectFiles writes the run's manifest (the files, from the ledger's indexes or a listing of the raw
 * bucket) to S3, so that thousands of files never pass through state (256 KiB); CheckFile restores an archived raw
 * object and says when it can be read; RecordOutcome writes what one file ended as; WriteReport gathers those rows.
 */

/** A request the selection refuses: named so the state machine does not retry it, and the execution fails with it. */
export class InvalidReprocessRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = INVALID_REPROCESS_REQUEST;
  }
}

/** Ledger statuses whose recorded result the processor answers without reading the raw object (see process-object.ts). */
const SETTLED_STATUSES = [LedgerStatus.PROCESSED, LedgerStatus.LOADED, LedgerStatus.INDEXED, LedgerStatus.DUPLICATE];

/** Requests at once against S3 and DynamoDB in one invocation (well under S3's 5,500 GET/HEAD per second per prefix). */
const PARALLEL = 16;

export interface SelectInput {
  readonly request: unknown;
  /** The reprocessing execution's name: the run's folder. */
  readonly run: string;
}

/** SelectFiles: validates the request, selects the files and writes the manifest (JSON Lines) under the run's prefix. */
export async function selectFiles(input: SelectInput, deps: StepDeps): Promise<ReprocessPlan> {
  const request = validateRequest(input.request);
  if (typeof input.run !== 'string' || !/^[\w.-]{1,80}$/.test(input.run)) throw new TypeError('input.run must be an execution name');
  const rawBucket = requiredEnv(LakeEnv.RAW_BUCKET);
  const bucket = requiredEnv(LakeEnv.PROCESSED_BUCKET);
  const runPrefix = reprocessRunPrefix(prefixEnv(LakeEnv.REPORTS_PREFIX, DEFAULT_PREFIXES.reports), input.run);

  const items: Array<Omit<ReprocessItem, 'index'>> = [];
  let skipped = 0;
  if (request.status === undefined && request.dataset === undefined) {
    for await (const page of paginateListObjectsV2({ client: deps.s3 }, { Bucket: rawBucket, Prefix: request.prefix })) {
      for (const o of page.Contents ?? []) items.push({ bucket: rawBucket, key: o.Key!, size: o.Size });
    }
  } else {
    // One version per key, the newest the query returns: an older one would replace the newer one's outputs.
    const newest = new Map<string, LedgerItem>();
    const query = request.dataset !== undefined ? deps.ledger.itemsBy('dataset', request.dataset) : deps.ledger.itemsBy('status', request.status!);
    for await (const item of query) {
      if (!matches(item, request, rawBucket)) {
        skipped++;
        continue;
      }
      const kept = newest.get(item.pk);
      if (kept && kept.receivedAt >= item.receivedAt) {
        skipped++;
        continue;
      }
      if (kept) skipped++;
      newest.set(item.pk, item);
    }
    for (const item of [...newest.values()].sort((a, b) => a.key.localeCompare(b.key))) {
      items.push({ bucket: item.bucket, key: item.key, ...(item.sk !== 'null' ? { versionId: item.sk } : {}), size: item.size, status: item.status });
    }
  }

  const manifestKey = reprocessManifestKey(runPrefix);
  const body = items.map((item, index) => JSON.stringify({ index, ...item })).join('\n');
  await deps.s3.send(new PutObjectCommand({
    Bucket: bucket, Key: manifestKey, Body: Buffer.from(body === '' ? '' : `${body}\n`), ContentType: 'application/jsonl',
  }));
  const plan: ReprocessPlan = { bucket, runPrefix, manifestKey, count: items.length, skipped, request, force: request.force === true };
  log('INFO', 'reprocessing selection', { ...plan });
  return plan;
}

/** Ledger items outside the request (a filter DynamoDB's key condition cannot express) or of another bucket. */
function matches(item: LedgerItem, request: ReprocessRequest, rawBucket: string): boolean {
  if (item.bucket !== rawBucket) return false;
  if (request.status !== undefined && item.status !== request.status) return false;
  if (request.prefix !== undefined && !item.key.startsWith(request.prefix)) return false;
  // The period: files whose rows overlap it (a file without a period has no rows to reprocess by period).
  if (request.start !== undefined && !(item.end !== undefined && item.end >= request.start)) return false;
  if (request.end !== undefined && !(item.start !== undefined && item.start <= request.end)) return false;
  return true;
}

/** The request, checked field by field: a clear error names the field, and selects nothing. */
export function validateRequest(input: unknown): ReprocessRequest {
  const fail = (message: string): never => {
    throw new InvalidReprocessRequestError(message);
  };
  if (!input || typeof input !== 'object' || Array.isArray(input)) fail('the input must be an object such as { "status": "quarantined" }, { "dataset": "curva_carga" } or { "prefix": "2000/" }');
  const request = input as Record<string, unknown>;
  const known = REPROCESS_REQUEST_FIELDS as readonly string[];
  // Step Functions adds this to a child execution's input (the backfill starts this machine as its child).
  const unknown = Object.keys(request).filter((k) => !known.includes(k) && k !== 'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID');
  if (unknown.length) fail(`unknown field ${unknown.join(', ')}: expected ${known.join(', ')}`);
  for (const field of ['status', 'dataset', 'start', 'end'] as const) {
    const v = request[field];
    if (v !== undefined && (typeof v !== 'string' || v === '')) fail(`${field}: expected a non-empty string, got ${JSON.stringify(v)}`);
  }
  // "" is the whole bucket (the engine migration's reload).
  if (request.prefix !== undefined && typeof request.prefix !== 'string') fail(`prefix: expected a string, got ${JSON.stringify(request.prefix)}`);
  if (request.force !== undefined && typeof request.force !== 'boolean') fail(`force: expected true or false, got ${JSON.stringify(request.force)}`);
  const statuses = Object.values(LedgerStatus) as string[];
  if (request.status !== undefined && !/^[A-Za-z]{1,32}$/.test(request.status as string)) {
    fail(`status: expected a ledger status (${statuses.join(', ')}), got ${JSON.stringify(request.status)}`);
  }
  if (request.dataset !== undefined && !DATASET_ID.test(request.dataset as string)) {
    fail(`dataset: expected a dataset id (lower-case letters, digits and _), got ${JSON.stringify(request.dataset)}`);
  }
  for (const field of ['start', 'end'] as const) {
    const v = request[field] as string | undefined;
    if (v === undefined) continue;
    if (request.dataset === undefined) fail(`${field}: a period selects within a dataset; give dataset too`);
    if (Number.isNaN(Date.parse(v))) fail(`${field}: expected an ISO-8601 date or time, got ${JSON.stringify(v)}`);
  }
  const start = request.start as string | undefined;
  const end = request.end as string | undefined;
  if (start !== undefined && end !== undefined && Date.parse(start) > Date.parse(end)) fail(`start (${start}) must not be after end (${end})`);
  if (request.status === undefined && request.dataset === undefined && request.prefix === undefined) {
    fail('select files by status, dataset (with start/end) or prefix, e.g. { "status": "quarantined" }');
  }
  // Ledger periods are UTC ISO strings: compare in the same form.
  const iso = (v: string | undefined) => (v === undefined ? undefined : new Date(v).toISOString());
  return {
    ...(request.status !== undefined ? { status: request.status as string } : {}),
    ...(request.dataset !== undefined ? { dataset: request.dataset as string } : {}),
    ...(start !== undefined ? { start: iso(start) } : {}),
    ...(end !== undefined ? { end: iso(end) } : {}),
    ...(request.prefix !== undefined ? { prefix: request.prefix as string } : {}),
    ...(request.force !== undefined ? { force: request.force as boolean } : {}),
  };
}

/**
 * CheckFile: whether the file can be ingested now. An archived raw object (S3 Glacier Flexible Retrieval, Deep
 * Archive) that is not restored gets a RestoreObject (the tier and days from the environment) and the answer
 * `restoring`; the state machine waits and asks again until HeadObject's `Restore` says `ongoing-request="false"`.
 * Unless `force`, a tabular version the ledger settled needs no restore: the processor answers its recorded result
 * without reading the raw object (and the loader reads the processed Parquet), as an engine migration's reload does.
 */
export async function checkFile(item: ReprocessItem, deps: StepDeps, force = false): Promise<FileCheck> {
  const { s3 } = deps;
  const requested: SourceObject = { bucket: item.bucket, key: item.key, versionId: item.versionId, size: item.size };
  let head: HeadObjectCommandOutput;
  try {
    head = await s3.send(new HeadObjectCommand({ Bucket: item.bucket, Key: item.key, VersionId: item.versionId }));
  } catch (error) {
    if (!isNotFound(error)) throw error;
    return { state: 'missing', source: requested, reason: `the object no longer exists${item.versionId ? ` (version ${item.versionId})` : ''}` };
  }
  const source: SourceObject = {
    bucket: item.bucket, key: item.key, versionId: head.VersionId ?? item.versionId, size: head.ContentLength ?? item.size,
  };
  if (item.versionId) {
    // Only the key's current version may be reprocessed: an older one would replace the newer one's outputs.
    const current = await s3.send(new HeadObjectCommand({ Bucket: item.bucket, Key: item.key })).catch((e) => {
      if (isNotFound(e)) return undefined;
      throw e;
    });
    if (current?.VersionId !== item.versionId) {
      const reason = current ? `a newer version of the key (${current.VersionId}) is current` : 'the key was deleted (its current version is a delete marker)';
      return { state: 'superseded', source, storageClass: head.StorageClass, reason };
    }
  }
  const storageClass = head.StorageClass ?? 'STANDARD';
  if (!isArchivedHead(head)) return { state: 'ready', source, storageClass };
  if (head.Restore?.includes('ongoing-request="true"')) return { state: 'restoring', source, storageClass };
  const intelligentArchive = storageClass === 'INTELLIGENT_TIERING';
  if (!force) {
    const recorded = await deps.ledger.get(source);
    if (recorded?.kind === 'tabular' && recorded.result && (SETTLED_STATUSES as string[]).includes(recorded.status)) {
      return { state: 'ready', source, storageClass, reason: `archived, not restored: the ledger settled it (${recorded.status}) and the processor answers that` };
    }
  }
  const tier = restoreTier();
  try {
    await s3.send(new RestoreObjectCommand({
      Bucket: item.bucket,
      Key: item.key,
      VersionId: source.versionId,
      // S3 Intelligent-Tiering's archive tiers take no Days (the object moves back to Frequent Access).
      RestoreRequest: intelligentArchive
        ? { GlacierJobParameters: { Tier: tier } }
        : { Days: numberEnv(IngestionEnv.RESTORE_DAYS, 7), GlacierJobParameters: { Tier: tier } },
    }));
  } catch (error) {
    // A restore requested meanwhile (by the first pass of this run, or by hand): wait for it.
    if ((error as Error).name !== 'RestoreAlreadyInProgress') throw error;
    return { state: 'restoring', source, storageClass };
  }
  log('INFO', 'restore requested', { source, storageClass, tier });
  return { state: 'restoring', source, storageClass, restoreRequested: true };
}

function restoreTier(): Tier {
  const tier = process.env[IngestionEnv.RESTORE_TIER] ?? 'Standard';
  if (tier !== 'Standard' && tier !== 'Bulk') throw new Error(`${IngestionEnv.RESTORE_TIER} must be Standard or Bulk, got '${tier}'`);
  return tier;
}

/** What RecordOutcome gets: the whole state of the file's iteration. */
export interface RecordInput {
  readonly item: ReprocessItem;
  readonly plan: Pick<ReprocessPlan, 'bucket' | 'runPrefix'>;
  readonly check?: FileCheck;
  readonly ingest?: { readonly executionArn?: string; readonly status?: string };
  readonly failure?: { readonly Error?: string; readonly Cause?: string };
}

/** The error of a `startExecution.sync` task whose child execution failed. */
const CHILD_FAILED = 'States.TaskFailed';

/** Longest reason kept in a row. */
const MAX_REASON = 500;

/** RecordOutcome: what the file ended as (the ledger's word once it was ingested), written as the run's row for it. */
export async function recordOutcome(input: RecordInput, deps: StepDeps): Promise<{ outcome: string }> {
  const { item, plan, check, ingest, failure } = input;
  if (!item || typeof item.index !== 'number' || !plan?.bucket || !plan.runPrefix) throw new TypeError('input must have the item and the plan');
  const source = check?.source ?? { bucket: item.bucket, key: item.key, versionId: item.versionId };
  const base = {
    index: item.index, bucket: item.bucket, key: item.key, versionId: source.versionId, storageClass: check?.storageClass, before: item.status,
  };
  // The ingestion execution failed (Step Functions reports a failed child as States.TaskFailed): it quarantined the file, or tried to.
  const childFailed = failure?.Error === CHILD_FAILED;
  let row: ReprocessRow;
  if (check?.state === 'superseded') {
    row = { ...base, outcome: 'skipped', reason: check.reason };
  } else if (check?.state === 'missing') {
    row = { ...base, outcome: 'failed', reason: check.reason };
  } else if (!check || (!ingest && !childFailed)) {
    // Never handed to the ingestion (CheckFile failed, the restore did not finish in time, the execution could not start).
    row = { ...base, outcome: 'failed', reason: clip(failureReason(failure) ?? 'not ingested') };
  } else {
    const ledgerItem = await deps.ledger.get(source);
    const status = ledgerItem?.status;
    const outcome = !status || (childFailed && status !== LedgerStatus.QUARANTINED) ? 'failed' : status;
    const reason = outcome === LedgerStatus.QUARANTINED && ledgerItem?.error ? `${ledgerItem.error.step}: ${ledgerItem.error.reason}`
      : outcome === 'failed' ? (failureReason(failure) ?? 'the ledger has no item for it') : undefined;
    row = { ...base, outcome, ...(reason ? { reason: clip(reason) } : {}), execution: ingest?.executionArn ?? ledgerItem?.executionArn };
  }
  await deps.s3.send(new PutObjectCommand({
    Bucket: plan.bucket, Key: reprocessRowKey(plan.runPrefix, item.index), Body: JSON.stringify(row), ContentType: 'application/json',
  }));
  return { outcome: row.outcome };
}

function failureReason(failure: RecordInput['failure']): string | undefined {
  if (!failure?.Error) return undefined;
  return failure.Cause ? `${failure.Error}: ${failure.Cause}` : failure.Error;
}

function clip(text: string): string {
  return text.length > MAX_REASON ? `${text.slice(0, MAX_REASON)}…` : text;
}

/** WriteReport: the rows of every selected file (from the manifest: a file without a row is reported failed), counts by outcome. */
export async function writeReport(input: { plan: ReprocessPlan }, deps: StepDeps): Promise<ReprocessReportSummary> {
  const { plan } = input;
  if (!plan?.bucket || !plan.runPrefix || !plan.manifestKey) throw new TypeError('input.plan must be the selection\'s plan');
  const { s3 } = deps;
  const manifest = await readText(s3, plan.bucket, plan.manifestKey);
  const items = manifest.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as ReprocessItem);
  const rows: ReprocessRow[] = new Array(items.length);
  const rowKeys: string[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) {
      const item = items[i];
      const key = reprocessRowKey(plan.runPrefix, item.index);
      try {
        rows[i] = JSON.parse(await readText(s3, plan.bucket, key)) as ReprocessRow;
        rowKeys.push(key);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        rows[i] = { index: item.index, bucket: item.bucket, key: item.key, versionId: item.versionId, before: item.status, outcome: 'failed', reason: 'its iteration recorded no outcome' };
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  const counts: Record<string, number> = {};
  for (const row of rows) counts[row.outcome] = (counts[row.outcome] ?? 0) + 1;
  const key = reprocessReportKey(plan.runPrefix);
  const report = {
    run: plan.runPrefix,
    request: plan.request,
    force: plan.force,
    selected: items.length,
    skippedAtSelection: plan.skipped,
    writtenAt: new Date().toISOString(),
    counts,
    files: rows,
  };
  await s3.send(new PutObjectCommand({ Bucket: plan.bucket, Key: key, Body: `${JSON.stringify(report, null, 1)}\n`, ContentType: 'application/json' }));
  // The rows are in the report now (1,000 keys per DeleteObjects, the API's maximum).
  for (let i = 0; i < rowKeys.length; i += 1000) {
    const batch = rowKeys.slice(i, i + 1000);
    const result = await s3.send(new DeleteObjectsCommand({ Bucket: plan.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
    if (result.Errors?.length) log('WARN', 'could not delete report rows', { errors: result.Errors.slice(0, 5) });
  }
  log('INFO', 'reprocessing report', { bucket: plan.bucket, key, total: items.length, counts });
  return { bucket: plan.bucket, key, total: items.length, counts };
}

async function readText(s3: S3Client, bucket: string, key: string): Promise<string> {
  const { Body } = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Body!.transformToString('utf-8');
}
