import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { CopyObjectCommand, DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { LedgerOutputs, LedgerStatus, ProcessResult, SourceObject, StagingRecord } from '../../ledger/contract';
import { isConditionFailure } from '../../ledger/runtime/conditional';
import { CurrentVersion, IN_LAKE, Ledger, ledgerKey } from '../../ledger/runtime/ledger';
import { sourceId, stagedKey, stagingPrefix } from '../../ons/layout';
import { copySource, describeError } from '../../runtime/handler';
import { log } from '../../runtime/telemetry';

/** One output of a run: a local file and the final object it becomes. */
export interface RunOutput {
  readonly bucket: string;
  readonly key: string;
  /** The local file. */
  readonly path: string;
  readonly contentType: string;
}

export interface PublishDeps {
  readonly s3: S3Client;
  readonly ledger: Ledger;
  readonly config: {
    readonly processedBucket: string;
    readonly stagingPrefix: string;
    /** The time-series engine when the store is the lake itself: a published version is then recorded `loaded` (queryable). */
    readonly loadedOnPublish?: string;
  };
  /** How long a run waits for another run of the same key to finish publishing. @default PUBLISH_WAIT_MS */
  readonly publishWaitMs?: number;
}

/** A publication lease: long enough for hundreds of CopyObjects, renewed at half-time, and freed by expiry if its run is killed. */
export const PUBLISH_LEASE_MS = 5 * 60_000;
/** Then the run fails and the state machine retries it (the wait is paid inside the processor's timeout). */
export const PUBLISH_WAIT_MS = 2 * 60_000;

export interface PublishRun {
  readonly source: SourceObject;
  readonly executionArn: string;
  readonly result: ProcessResult;
  readonly outputs: LedgerOutputs;
  /** When S3 stored the source version (ISO-8601): an older version never replaces a newer one's outputs. */
  readonly sourceTime: string;
  /** Data first, the card (what the knowledge base indexes) last: they are copied in this order. */
  readonly files: readonly RunOutput[];
}

interface S3Object {
  readonly bucket: string;
  readonly key: string;
}

/**
 * Makes a run's outputs the current version of its source key, so that no reader sees a half-written
 * run: every output is uploaded under a staging prefix (recorded in the ledger first, so a later run
 * finds what a killed one left), and only when all are there each is copied (CopyObject, server side)
 * to its final name, which the source key owns. Then the outputs of the key's earlier versions that
 * this run did not rewrite (a month the new version no longer has) are deleted, the ledger records the
 * run, and the staging objects go.
 *
 * The copies happen under the key's publication lease (a conditional write in the ledger), so two runs
 * of one key never interleave their partitions; under it, the newest version by S3 time wins: a run of an
 * older version that ends after a newer one's publishes nothing and returns `superseded`. Returns the
 * result the ledger holds (a concurrent run of the same version may have settled it first).
 */
export async function publishOutputs(deps: PublishDeps, run: PublishRun): Promise<ProcessResult> {
  const { s3, ledger, config } = deps;
  const { source, executionArn, result, outputs, files, sourceTime } = run;
  const self = ledgerKey(source);

  // What earlier runs of this key left in staging: a killed attempt of this version, or of a version that ended since.
  for (const v of await ledger.versions(source)) {
    if (v.staging && (v.sk === self.sk || v.status !== LedgerStatus.PROCESSING)) {
      await deleteObjects(s3, v.staging.keys.map((key) => ({ bucket: v.staging!.bucket, key })));
      await ledger.clearStaging(v, v.staging);
    }
  }

  const runId = randomBytes(8).toString('hex');
  const prefix = stagingPrefix(config.stagingPrefix, sourceId(self.pk), runId);
  const staged = files.map((f, i) => ({ ...f, staged: stagedKey(prefix, i, f.key) }));
  const staging: StagingRecord = { bucket: config.processedBucket, prefix, keys: staged.map((f) => f.staged) };
  // The record goes only with the objects: what stays is removed by the key's next run (or the lifecycle rule).
  const removeStaging = async () => {
    if (await deleteObjects(s3, staging.keys.map((key) => ({ bucket: staging.bucket, key })))) await ledger.clearStaging(self, staging);
  };
  // Recorded before the first request: a request that timed out may still have landed.
  await ledger.recordStaging(source, staging);
  try {
    for (const f of staged) {
      await new Upload({
        client: s3,
        params: { Bucket: config.processedBucket, Key: f.staged, Body: createReadStream(f.path), ContentType: f.contentType },
      }).done();
    }
  } catch (error) {
    await removeStaging();
    throw error;
  }

  const lease = new PublicationLease(ledger, source, `${self.sk}/${runId}`);
  const current = await lease.acquire(deps.publishWaitMs ?? PUBLISH_WAIT_MS);
  try {
    if (current && current.version !== self.sk && current.sourceTime > sourceTime) {
      const stale: ProcessResult = {
        ...result, status: 'superseded', supersededBy: current.version, parquetKeys: undefined, cardKey: undefined, rejectedKey: undefined,
      };
      const recorded = await settle(ledger, source, { executionArn, result: stale, sourceTime, supersededBy: current.version });
      await ledger.releaseContent(result.contentHash, self);
      await removeStaging();
      await lease.release();
      log('INFO', 'a newer version of the key is current: nothing published', { source, current });
      return recorded;
    }

    for (const f of staged) {
      const from = copySource({ bucket: config.processedBucket, key: f.staged });
      await s3.send(new CopyObjectCommand({ Bucket: f.bucket, Key: f.key, CopySource: from }));
      await lease.renew();
    }

    // The key's earlier current versions (and this version's own earlier run): what they wrote that this run did not.
    const written = new Set(files.map(id));
    const earlier = (await ledger.versions(source)).filter((v) => v.outputs && !v.supersededBy);
    const stale = new Map<string, S3Object>();
    for (const v of earlier) for (const o of outputObjects(v.outputs!)) if (!written.has(id(o))) stale.set(id(o), o);
    // Strict: an earlier output left in place would be counted twice, so the run fails (and is retried) instead.
    await deleteObjects(s3, [...stale.values()], { strict: true });

    const recorded = await settle(ledger, source, { executionArn, result, outputs, sourceTime });
    // Still under the lease, so no newer version can supersede this one before it says `loaded`.
    if (recorded === result && config.loadedOnPublish) await recordQueryable(ledger, source, executionArn, result, sourceTime);
    for (const v of earlier) {
      if (v.sk === self.sk) continue;
      await ledger.recordSuperseded(v, self.sk);
      // Its content left the lake: a later copy of it is processed again, not recorded as a copy of nothing.
      if (v.contentHash && v.contentHash !== result.contentHash) await ledger.releaseContent(v.contentHash, v);
    }
    await lease.release({ version: self.sk, sourceTime });
    await removeStaging();
    if (stale.size) log('INFO', 'removed outputs of earlier versions', { source, removed: [...stale.keys()] });
    return recorded;
  } catch (error) {
    await lease.release().catch(() => undefined); // else it expires
    throw error;
  }
}

/**
 * The lake engine's `loaded`: the published outputs are what its queries read (the `<dataset>_current` views), so
 * the version is queryable now; `version` is the source time every row carries, as a loader's would be.
 */
export async function recordQueryable(
  ledger: Ledger, source: SourceObject, executionArn: string, result: ProcessResult, sourceTime: string,
): Promise<boolean> {
  return ledger.recordQueryable(source, {
    executionArn,
    load: { status: 'loaded', at: new Date().toISOString(), records: result.records, version: Date.parse(sourceTime) },
  });
}

/** Records the run as processed; when a concurrent run of this version settled it first, returns that run's result. */
async function settle(ledger: Ledger, source: SourceObject, fields: Parameters<Ledger['recordProcessed']>[1]): Promise<ProcessResult> {
  try {
    await ledger.recordProcessed(source, fields);
    return fields.result;
  } catch (error) {
    // Its outputs have the same names and content.
    const now = isConditionFailure(error) ? await ledger.get(source) : undefined;
    if (!(now?.result && (IN_LAKE as string[]).includes(now.status))) throw error;
    return JSON.parse(now.result) as ProcessResult;
  }
}

/** The key's publication lease, held by one run: taken (waiting for another run's), renewed at half-time, released. */
class PublicationLease {
  private takenAt = 0;

  constructor(private readonly ledger: Ledger, private readonly source: SourceObject, private readonly holder: string) {}

  /** Resolves to the key's current version once the lease is held; throws after `waitMs`. */
  async acquire(waitMs: number): Promise<CurrentVersion | undefined> {
    const deadline = Date.now() + waitMs;
    for (let delay = 200; ; delay = Math.min(delay * 2, 5_000)) {
      const { acquired, current } = await this.ledger.acquirePublication(this.source, this.holder, PUBLISH_LEASE_MS);
      if (acquired) {
        this.takenAt = Date.now();
        return current;
      }
      if (Date.now() + delay > deadline) {
        throw new Error(`another run of ${this.source.key} has been publishing for over ${Math.round(waitMs / 1000)} s; this run will be retried`);
      }
      await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random() / 2)));
    }
  }

  async renew(): Promise<void> {
    if (Date.now() - this.takenAt < PUBLISH_LEASE_MS / 2) return;
    const { acquired } = await this.ledger.acquirePublication(this.source, this.holder, PUBLISH_LEASE_MS);
    if (!acquired) throw new Error(`the publication lease of ${this.source.key} expired while copying; this run will be retried`);
    this.takenAt = Date.now();
  }

  /** With `current`, records the key's new current version. */
  async release(current?: CurrentVersion): Promise<void> {
    await this.ledger.completePublication(this.source, this.holder, current);
  }
}

/** The objects a ledger item says a run wrote. */
function outputObjects(o: LedgerOutputs): S3Object[] {
  const objects: S3Object[] = [];
  if (o.processedBucket) {
    for (const key of [...o.parquetKeys ?? [], o.cardKey, o.cardMetadataKey]) if (key) objects.push({ bucket: o.processedBucket, key });
  }
  if (o.failedBucket && o.rejectedKey) objects.push({ bucket: o.failedBucket, key: o.rejectedKey });
  return objects;
}

function id(o: S3Object): string {
  return `${o.bucket}/${o.key}`;
}


/** Deletes objects one by one (they span two buckets); a failure is logged, and thrown when `strict`. True when all are gone. */
async function deleteObjects(s3: S3Client, objects: readonly S3Object[], options: { strict?: boolean } = {}): Promise<boolean> {
  let all = true;
  for (const o of objects) {
    try {
      await s3.send(new DeleteObjectCommand({ Bucket: o.bucket, Key: o.key }));
    } catch (error) {
      if (options.strict) throw error;
      // Staging objects only: the lake's lifecycle rule expires them anyway.
      log('ERROR', 'could not delete a staging object', { bucket: o.bucket, key: o.key, ...describeError(error) });
      all = false;
    }
  }
  return all;
}
