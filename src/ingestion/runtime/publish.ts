import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { CopyObjectCommand, DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { LedgerOutputs, LedgerStatus, ProcessResult, SourceObject, StagingRecord } from '../../ledger/contract';
import { IN_LAKE, isConditionFailure, Ledger, ledgerKey } from '../../ledger/runtime/ledger';
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
  readonly config: { readonly processedBucket: string; readonly stagingPrefix: string };
}

export interface PublishRun {
  readonly source: SourceObject;
  readonly executionArn: string;
  readonly result: ProcessResult;
  readonly outputs: LedgerOutputs;
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
 * run, and the staging objects go. Returns the result the ledger holds (a concurrent run of the same
 * version may have settled it first).
 */
export async function publishOutputs(deps: PublishDeps, run: PublishRun): Promise<ProcessResult> {
  const { s3, ledger, config } = deps;
  const { source, executionArn, result, outputs, files } = run;
  const self = ledgerKey(source);
  const versions = await ledger.versions(source);

  // What earlier runs of this key left in staging: a killed attempt of this version, or of a version that ended since.
  for (const v of versions) {
    if (v.staging && (v.sk === self.sk || v.status !== LedgerStatus.PROCESSING)) {
      await deleteObjects(s3, v.staging.keys.map((key) => ({ bucket: v.staging!.bucket, key })));
      await ledger.clearStaging(v, v.staging);
    }
  }

  const prefix = stagingPrefix(config.stagingPrefix, sourceId(self.pk), randomBytes(8).toString('hex'));
  const staged = files.map((f, i) => ({ ...f, staged: stagedKey(prefix, i, f.key) }));
  const staging: StagingRecord = { bucket: config.processedBucket, prefix, keys: staged.map((f) => f.staged) };
  const removeStaging = () => deleteObjects(s3, staging.keys.map((key) => ({ bucket: staging.bucket, key })));
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

  for (const f of staged) {
    await s3.send(new CopyObjectCommand({ Bucket: f.bucket, Key: f.key, CopySource: copySource({ bucket: config.processedBucket, key: f.staged }) }));
  }

  // The key's earlier current versions (and this version's own earlier run): what they wrote that this run did not.
  const written = new Set(files.map(id));
  const earlier = versions.filter((v) => v.outputs && !v.supersededBy);
  const stale = new Map<string, S3Object>();
  for (const v of earlier) for (const o of outputObjects(v.outputs!)) if (!written.has(id(o))) stale.set(id(o), o);
  // Strict: an earlier output left in place would be counted twice, so the run fails (and is retried) instead.
  await deleteObjects(s3, [...stale.values()], { strict: true });

  let recorded = result;
  try {
    await ledger.recordProcessed(source, { executionArn, result, outputs });
  } catch (error) {
    // A concurrent run of this version settled it first: its outputs have the same names and content.
    const now = isConditionFailure(error) ? await ledger.get(source) : undefined;
    if (!(now?.result && (IN_LAKE as string[]).includes(now.status))) throw error;
    recorded = JSON.parse(now.result) as ProcessResult;
  }
  for (const v of earlier) if (v.sk !== self.sk) await ledger.recordSuperseded(v, self.sk);
  await removeStaging();
  await ledger.clearStaging(self, staging);
  if (stale.size) log('INFO', 'removed outputs of earlier versions', { source, removed: [...stale.keys()] });
  return recorded;
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


/** Deletes objects one by one (they span two buckets); a failure is logged, and thrown when `strict`. */
async function deleteObjects(s3: S3Client, objects: readonly S3Object[], options: { strict?: boolean } = {}): Promise<void> {
  for (const o of objects) {
    try {
      await s3.send(new DeleteObjectCommand({ Bucket: o.bucket, Key: o.key }));
    } catch (error) {
      if (options.strict) throw error;
      // Staging objects only: the lake's lifecycle rule expires them anyway.
      log('ERROR', 'could not delete a staging object', { bucket: o.bucket, key: o.key, ...describeError(error) });
    }
  }
}
