import { DeleteCommand, DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { KnowledgeSyncRequest, KnowledgeSyncSchema, LedgerIndexing, LedgerKey } from '../../ledger/contract';
import { isConditionFailure, updateIf, updateItem } from '../../ledger/runtime/conditional';
import { Ledger, queryItems } from '../../ledger/runtime/ledger';
import { PlatformMetrics } from '../../runtime/contract';
import { log, recordMetric } from '../../runtime/telemetry';
import { KnowledgeSync, KnowledgeSyncClaim, KnowledgeSyncInput, KnowledgeSyncRecorded } from '../contract';

/**
 * The knowledge-base sync's ledger work, one action per call of its state machine:
 *
 * - `acquire`: takes the knowledge base's lease (a conditional write: free, expired, or already ours), or says another
 *   sync holds it. Only the holder starts ingestion jobs, so one job runs at a time for the knowledge base.
 * - `claim`: reads the request counter, then takes every pending request into a new batch (`claimedBy`). The claim
 *   comes before StartIngestionJob, and a request is written after its file's outputs: a job covers every file it claimed.
 * - `record`: writes a job's outcome on the files of the batch: `indexed` with the statistics when COMPLETE (and the
 *   requests are deleted, unless one was written again meanwhile), else the reason, the status unchanged, and a retry
 *   decision (bounded, with backoff). A failed job never quarantines anything.
 * - `release`: gives the lease back only if no request was counted since the claim (a condition on the counter): a
 *   request arriving while the last job finished is never lost, the holder takes another round instead.
 * - `renew`: keeps the lease while a job runs.
 */

export class LeaseLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeaseLost';
  }
}

export interface SyncDeps {
  readonly client: DynamoDBDocumentClient;
  readonly ledger: Ledger;
  readonly table: string;
  readonly knowledgeBaseId: string;
  /** Milliseconds since the epoch (the tests' clock can differ). */
  readonly now?: () => number;
}

export async function syncAction(input: KnowledgeSyncInput, deps: SyncDeps): Promise<unknown> {
  if (typeof input?.holder !== 'string' || !input.holder) throw new TypeError('input.holder must be the execution ARN');
  switch (input.action) {
    case 'acquire': return acquire(input.holder, deps);
    case 'renew': return renew(input.holder, deps);
    case 'claim': return claim(input.holder, input.round, deps);
    case 'release': return release(input.holder, deps, input.seen, input.force);
    case 'record': return record(input, deps);
    default: throw new TypeError(`input.action must be acquire, renew, claim, release or record, got ${JSON.stringify((input as { action?: unknown }).action)}`);
  }
}

function control(deps: SyncDeps): LedgerKey {
  return { pk: `${KnowledgeSyncSchema.PARTITION_PREFIX}${deps.knowledgeBaseId}`, sk: KnowledgeSyncSchema.CONTROL };
}

const nowOf = (deps: SyncDeps) => (deps.now ?? Date.now)();

async function acquire(holder: string, deps: SyncDeps): Promise<{ acquired: boolean }> {
  const now = Math.floor(nowOf(deps) / 1000);
  const acquired = await updateIf(deps.client, deps.table, control(deps), {
    update: 'SET #h = :h, #x = :x, #r = if_not_exists(#r, :zero)',
    condition: 'attribute_not_exists(#h) OR #x < :now OR #h = :h',
    names: { '#h': 'holder', '#x': 'leaseExpiresAt', '#r': KnowledgeSyncSchema.REQUESTS },
    values: { ':h': holder, ':x': now + KnowledgeSync.LEASE_SECONDS, ':now': now, ':zero': 0 },
  });
  return { acquired };
}

async function renew(holder: string, deps: SyncDeps): Promise<{ renewed: true }> {
  const renewed = await updateIf(deps.client, deps.table, control(deps), {
    update: 'SET #x = :x',
    condition: '#h = :h',
    names: { '#h': 'holder', '#x': 'leaseExpiresAt' },
    values: { ':h': holder, ':x': Math.floor(nowOf(deps) / 1000) + KnowledgeSync.LEASE_SECONDS },
  });
  if (!renewed) throw new LeaseLostError('another sync holds the lease of this knowledge base (this one\'s expired)');
  return { renewed: true };
}

async function claim(holder: string, round: number, deps: SyncDeps): Promise<KnowledgeSyncClaim> {
  await renew(holder, deps);
  // The counter first: a request counted after this read makes the release fail, whether or not this claim saw it.
  const { Item } = await deps.client.send(new GetCommand({ TableName: deps.table, Key: control(deps), ConsistentRead: true }));
  const seen = Number(Item?.[KnowledgeSyncSchema.REQUESTS] ?? 0);
  const batch = `${holder}#${round}`;
  const pending = await requests(deps);
  const perSource = new Map<string, number>();
  for (const request of pending) {
    await updateItem(deps.client, deps.table, { pk: request.pk, sk: request.sk }, {
      update: 'SET #c = :c', condition: 'attribute_exists(pk)', names: { '#c': 'claimedBy' }, values: { ':c': batch },
    });
    perSource.set(request.dataSourceId, (perSource.get(request.dataSourceId) ?? 0) + 1);
  }
  const sources = [...perSource].sort(([a], [b]) => a.localeCompare(b)).map(([dataSourceId, n]) => ({ dataSourceId, requests: n }));
  log('INFO', 'sync round claimed', { round, batch, requests: pending.length, sources });
  return { seen, batch, requests: pending.length, sources };
}

/** Pending requests (of one data source when given), strongly consistent, all pages. */
async function requests(deps: SyncDeps, dataSourceId?: string): Promise<KnowledgeSyncRequest[]> {
  const items: KnowledgeSyncRequest[] = [];
  for await (const item of queryItems<KnowledgeSyncRequest>(deps.client, {
    TableName: deps.table,
    KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
    ExpressionAttributeNames: { '#pk': 'pk', '#sk': 'sk' },
    ExpressionAttributeValues: {
      ':pk': control(deps).pk,
      ':prefix': `${KnowledgeSyncSchema.REQUEST_PREFIX}${dataSourceId ? `${dataSourceId}#` : ''}`,
    },
    ConsistentRead: true,
  })) items.push(item);
  return items;
}

async function release(holder: string, deps: SyncDeps, seen?: number, force?: boolean): Promise<{ released: boolean }> {
  const names: Record<string, string> = { '#h': 'holder', '#x': 'leaseExpiresAt' };
  const values: Record<string, unknown> = { ':h': holder };
  let condition = '#h = :h';
  if (!force) {
    if (typeof seen !== 'number') throw new TypeError('input.seen must be the count the claim read (or give force)');
    names['#r'] = KnowledgeSyncSchema.REQUESTS;
    values[':seen'] = seen;
    condition += ' AND #r = :seen';
  }
  const released = await updateIf(deps.client, deps.table, control(deps), { update: 'REMOVE #h, #x', condition, names, values });
  // Forced: the lease is not ours any more, nothing to give back.
  if (released || force) return { released: true };
  const { Item } = await deps.client.send(new GetCommand({ TableName: deps.table, Key: control(deps), ConsistentRead: true }));
  if (Item?.holder !== holder) throw new LeaseLostError('another sync holds the lease of this knowledge base (this one\'s expired)');
  log('INFO', 'requests arrived since the claim: another round', { seen, requests: Item?.[KnowledgeSyncSchema.REQUESTS] });
  return { released: false };
}

type RecordInput = Extract<KnowledgeSyncInput, { action: 'record' }>;

async function record(input: RecordInput, deps: SyncDeps): Promise<KnowledgeSyncRecorded> {
  const job = input.job;
  const status = typeof job?.Status === 'string' ? job.Status : 'NOT_STARTED';
  const at = new Date(nowOf(deps)).toISOString();
  const reason = status === 'COMPLETE' ? undefined
    : job ? (Array.isArray(job.FailureReasons) && job.FailureReasons.length ? job.FailureReasons.join('; ') : `the ingestion job ended ${status}`)
      : `StartIngestionJob failed: ${input.startError?.Error ?? 'error'}${input.startError?.Cause ? `: ${input.startError.Cause}` : ''}`;
  const indexing: LedgerIndexing = {
    status,
    at,
    dataSourceId: input.dataSourceId,
    attempt: input.attempt,
    ...(typeof job?.IngestionJobId === 'string' ? { jobId: job.IngestionJobId } : {}),
    ...(job?.Statistics ? { statistics: statistics(job.Statistics) } : {}),
    ...(reason ? { reason: reason.slice(0, 2048) } : {}),
  };
  const batch = (await requests(deps, input.dataSourceId)).filter((r) => r.claimedBy === input.batch);
  let files = 0;
  for (const request of batch) {
    const source = { bucket: request.bucket, key: request.key, versionId: request.fileSk === 'null' ? undefined : request.fileSk };
    const written = status === 'COMPLETE' ? await deps.ledger.recordIndexed(source, indexing) : await deps.ledger.recordIndexingFailed(source, indexing);
    if (written) files++;
    else log('WARN', 'the object is no longer in the lake: its sync outcome is not recorded', { source, status });
    if (status === 'COMPLETE' || !written) await deleteRequest(request, input.batch, deps);
  }
  if (status === 'COMPLETE') {
    log('INFO', 'ingestion job complete', { dataSourceId: input.dataSourceId, jobId: indexing.jobId, files, statistics: indexing.statistics });
    return { status, files, next: 'done' };
  }
  recordMetric(PlatformMetrics.KNOWLEDGE_SYNC_JOBS_FAILED, 1);
  const gaveUp = input.attempt >= KnowledgeSync.MAX_JOB_ATTEMPTS;
  log(gaveUp ? 'ERROR' : 'WARN', 'ingestion job failed: the files stay as they are, with the reason', {
    dataSourceId: input.dataSourceId, jobId: indexing.jobId, status, reason, attempt: input.attempt, files,
  });
  if (gaveUp) return { status, files, next: 'gaveUp' };
  return {
    status, files, next: 'retry', nextAttempt: input.attempt + 1, waitSeconds: KnowledgeSync.RETRY_BASE_SECONDS * 2 ** (input.attempt - 1),
  };
}

/** Bedrock's statistics with their API names (Step Functions hands them over in PascalCase). */
function statistics(raw: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value === 'number') out[name.charAt(0).toLowerCase() + name.slice(1)] = value;
  }
  return out;
}

async function deleteRequest(request: KnowledgeSyncRequest, batch: string, deps: SyncDeps): Promise<void> {
  try {
    await deps.client.send(new DeleteCommand({
      TableName: deps.table,
      Key: { pk: request.pk, sk: request.sk },
      // Written again since the claim: it waits for the next round.
      ConditionExpression: '#c = :c',
      ExpressionAttributeNames: { '#c': 'claimedBy' },
      ExpressionAttributeValues: { ':c': batch },
    }));
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
  }
}
