import { DynamoDBDocumentClient, GetCommand, QueryCommand, QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure, ItemUpdate, updateIf, updateItem } from './conditional';
import { sourceIdentity } from '../../ons/layout';
import { LedgerError, LedgerIndexing, LedgerItem, LedgerKey, LedgerLoad, LedgerOutputs, LedgerSchema, LedgerStatus, LedgerStatusValue, ProcessResult, QuarantineRecord, SourceObject, StagingRecord } from '../contract';

/**
 * The ingestion ledger (DynamoDB): one item per source object version, keyed
 * `pk = s3://<bucket>/<key>`, `sk = <version id>` (`null` for unversioned buckets). Every change is
 * one UpdateItem (dynalite and the local tests have no transactions), conditional where a status
 * must not go back (an object already in the lake is never marked received or processing again).
 */

/** Statuses meaning the object's content is in the lake: never overwritten by a later run (`retryLater`: processed, its load waiting). */
export const IN_LAKE: readonly LedgerStatusValue[] = [LedgerStatus.PROCESSED, LedgerStatus.RETRY_LATER, LedgerStatus.LOADED, LedgerStatus.INDEXED];
/** Statuses that end processing for good: in the lake, or a recorded duplicate. */
const SETTLED: readonly LedgerStatusValue[] = [...IN_LAKE, LedgerStatus.DUPLICATE];

export function ledgerKey(source: Pick<SourceObject, 'bucket' | 'key' | 'versionId'>): LedgerKey {
  // The pk is the source's identity, which also names its outputs in the lake.
  return { pk: sourceIdentity(source.key, source.bucket), sk: source.versionId ?? 'null' };
}

/**
 * The item that names the object version whose run owns a content hash: the strongly consistent half of
 * the copy check. Not a file: it has no status, dataset or content hash attribute, so no index holds it.
 */
export function contentClaimKey(contentHash: string): LedgerKey {
  return { pk: `content#${contentHash}`, sk: 'claim' };
}

/** The item that names a source key's current version and serialises its publication (in no index either). */
export function currentVersionKey(source: Pick<SourceObject, 'bucket' | 'key'>): LedgerKey {
  return { pk: `current#${ledgerKey(source).pk}`, sk: 'current' };
}

/** A source key's current version: the one whose outputs the lake holds. */
export interface CurrentVersion {
  /** The version's `sk`. */
  readonly version: string;
  /** When S3 stored it (ISO-8601): the newest wins. */
  readonly sourceTime: string;
}

/** How a ledger item is named elsewhere (`duplicateOf`, logs): `s3://bucket/key?versionId=<sk>`. */
export function ledgerRef(key: LedgerKey): string {
  return `${key.pk}?versionId=${key.sk}`;
}

interface UpdateOptions {
  /** Attributes to set (undefined values are skipped). */
  readonly set?: Record<string, unknown>;
  readonly remove?: string[];
  /** The update applies only when the item is new or its status is NOT one of these. */
  readonly unlessStatus?: readonly LedgerStatusValue[];
  /** The update applies only when the item exists with one of these statuses. */
  readonly onlyFromStatus?: readonly LedgerStatusValue[];
  /** ...and no newer version of its key has replaced it (`supersededBy` unset). */
  readonly unlessSuperseded?: boolean;
}

export class Ledger {
  constructor(private readonly client: DynamoDBDocumentClient, private readonly tableName: string) {}

  async get(source: SourceObject): Promise<LedgerItem | undefined> {
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: ledgerKey(source), ConsistentRead: true }));
    return Item as LedgerItem | undefined;
  }

  /**
   * Router: the object arrived. Returns false (and changes nothing) when the object was already
   * settled by an earlier run: an event delivered twice must not move it back.
   */
  async recordReceived(source: SourceObject, fields: { executionArn: string; route: string; reason?: string; force?: boolean }): Promise<boolean> {
    return this.tryTransition(source, LedgerStatus.RECEIVED, {
      set: { size: source.size, executionArn: fields.executionArn, route: fields.route, routeReason: fields.reason },
      remove: ['error'],
      // A forced reprocessing redoes a settled version on purpose.
      unlessStatus: fields.force ? [] : SETTLED,
    });
  }

  /**
   * Processor: work starts on content with this hash. Returns the item as it is when it was already
   * settled by another run (nothing changed), else undefined.
   */
  async startProcessing(
    source: SourceObject, fields: { executionArn: string; contentHash: string; force?: boolean },
  ): Promise<LedgerItem | undefined> {
    const started = await this.tryTransition(source, LedgerStatus.PROCESSING, {
      set: { size: source.size, executionArn: fields.executionArn, contentHash: fields.contentHash, kind: 'tabular' },
      // `duplicateOf` belongs to a run that skipped the content; a forced run processes it.
      remove: fields.force ? ['error', 'duplicateOf'] : ['error'],
      unlessStatus: fields.force ? [] : SETTLED,
    });
    return started ? undefined : this.get(source);
  }

  /**
   * An object version whose content is already in the lake (processed, loaded or indexed, and not
   * superseded by a newer version of its key), other than `excluding`; the earliest one first. Reads the byContentHash index (its projection must
   * include `status`).
   */
  async findProcessedCopy(contentHash: string, excluding: SourceObject): Promise<LedgerKey | undefined> {
    const self = ledgerKey(excluding);
    const index = LedgerSchema.BY_CONTENT_HASH;
    for await (const found of queryItems(this.client, {
      TableName: this.tableName,
      IndexName: index.name,
      KeyConditionExpression: '#h = :h',
      // A superseded version's outputs were replaced by its key's newer version: its content is no longer in the lake.
      FilterExpression: `#s IN (${IN_LAKE.map((_, i) => `:s${i}`).join(', ')}) AND attribute_not_exists(#x)`,
      ExpressionAttributeNames: { '#h': index.partitionKey, '#s': 'status', '#x': 'supersededBy' },
      ExpressionAttributeValues: { ':h': contentHash, ...Object.fromEntries(IN_LAKE.map((s, i) => [`:s${i}`, s])) },
      ScanIndexForward: true,
    })) {
      if (!(found.pk === self.pk && found.sk === self.sk)) return { pk: found.pk as string, sk: found.sk as string };
    }
    return undefined;
  }

  /** Processor: same content as `duplicateOf`; nothing was written. */
  async recordDuplicate(source: SourceObject, fields: { executionArn: string; result: ProcessResult }): Promise<void> {
    await this.transition(source, LedgerStatus.DUPLICATE, {
      set: {
        size: source.size,
        executionArn: fields.executionArn,
        kind: 'tabular',
        contentHash: fields.result.contentHash,
        duplicateOf: fields.result.duplicateOf,
        result: JSON.stringify(fields.result),
      },
      remove: ['error'],
      unlessStatus: IN_LAKE,
    });
  }

  /** Processor: outputs written; only from `processing` (the run that started it, or a concurrent one). */
  async recordProcessed(source: SourceObject, fields: {
    executionArn: string; result: ProcessResult; outputs?: LedgerOutputs; sourceTime?: string; supersededBy?: string;
  }): Promise<void> {
    const r = fields.result;
    await this.transition(source, LedgerStatus.PROCESSED, {
      set: {
        executionArn: fields.executionArn,
        kind: 'tabular',
        contentHash: r.contentHash,
        dataset: r.dataset,
        start: r.start,
        end: r.end,
        rows: r.rows,
        records: r.records,
        rejected: r.rejected,
        series: r.series,
        outputs: fields.outputs,
        sourceTime: fields.sourceTime,
        supersededBy: fields.supersededBy,
        result: JSON.stringify(r),
      },
      remove: ['error'],
      onlyFromStatus: [LedgerStatus.PROCESSING],
    });
  }

  /** Document copy: the document is in the knowledge-base prefix. */
  async recordDocument(source: SourceObject, fields: { executionArn: string; outputs: LedgerOutputs }): Promise<void> {
    await this.transition(source, LedgerStatus.PROCESSED, {
      set: { size: source.size, executionArn: fields.executionArn, kind: 'document', outputs: fields.outputs },
      remove: ['error'],
      unlessStatus: [LedgerStatus.INDEXED],
    });
  }

  /**
   * Loader: the records are in the time-series store. From `processed`, `retryLater` (a throttled load
   * that went through this time) or `loaded` (a replay); an item already `indexed` keeps its status and
   * gets the load figures only.
   */
  async recordLoaded(source: SourceObject, fields: { executionArn: string; load: LedgerLoad }): Promise<void> {
    const loaded = await this.tryTransition(source, LedgerStatus.LOADED, {
      set: { executionArn: fields.executionArn, load: fields.load },
      remove: ['error'],
      onlyFromStatus: [LedgerStatus.PROCESSED, LedgerStatus.RETRY_LATER, LedgerStatus.LOADED],
    });
    if (!loaded) await this.setLoad(source, fields.load, [LedgerStatus.INDEXED]);
  }

  /**
   * Processor, when the time-series store is the lake itself: the version it just published is what queries read,
   * so it is `loaded` (queryable), with `load` saying so. From `processed` or `loaded` (a replay) only, and never for
   * a version a newer one of its key superseded; an `indexed` item keeps its status. False when nothing changed.
   */
  async recordQueryable(source: SourceObject, fields: { executionArn: string; load: LedgerLoad }): Promise<boolean> {
    return this.tryTransition(source, LedgerStatus.LOADED, {
      set: { executionArn: fields.executionArn, load: fields.load },
      remove: ['error'],
      onlyFromStatus: [LedgerStatus.PROCESSED, LedgerStatus.LOADED],
      unlessSuperseded: true,
    });
  }

  /** Loader: nothing was written (the dataset has no table); the status stays as it is (`processed`). */
  async recordNotLoaded(source: SourceObject, fields: { executionArn: string; load: LedgerLoad }): Promise<void> {
    await this.setLoad(source, fields.load, IN_LAKE);
  }

  /** Sets `load` (and clears `error`) on an item whose status is one of `statuses`, without a transition. */
  private async setLoad(source: SourceObject, load: LedgerLoad, statuses: readonly LedgerStatusValue[]): Promise<void> {
    const values: Record<string, unknown> = { ':l': load, ':u': new Date().toISOString() };
    statuses.forEach((s, i) => (values[`:s${i}`] = s));
    await updateItem(this.client, this.tableName, ledgerKey(source), {
      update: 'SET #l = :l, #u = :u REMOVE #e',
      condition: `#s IN (${statuses.map((_, i) => `:s${i}`).join(', ')})`,
      names: { '#l': 'load', '#u': 'updatedAt', '#e': 'error', '#s': 'status' },
      values,
    });
  }

  /**
   * Knowledge-base sync: a COMPLETE ingestion job covered the object. From an in-lake status only (a file quarantined or
   * recorded again meanwhile is left alone: false).
   */
  async recordIndexed(source: SourceObject, indexing: LedgerIndexing): Promise<boolean> {
    return this.tryTransition(source, LedgerStatus.INDEXED, { set: { indexing }, onlyFromStatus: IN_LAKE });
  }

  /**
   * Knowledge-base sync: the job that covered the object FAILED, STOPPED or did not start. The status stays as it is
   * (`loaded`: the data is in the lake and the store); only `indexing` says why. False when the item is not in the lake.
   */
  async recordIndexingFailed(source: SourceObject, indexing: LedgerIndexing): Promise<boolean> {
    const values: Record<string, unknown> = { ':i': indexing, ':u': new Date().toISOString() };
    IN_LAKE.forEach((s, i) => (values[`:s${i}`] = s));
    return updateIf(this.client, this.tableName, ledgerKey(source), {
      update: 'SET #i = :i, #u = :u',
      condition: `#s IN (${IN_LAKE.map((_, i) => `:s${i}`).join(', ')})`,
      names: { '#i': 'indexing', '#u': 'updatedAt', '#s': 'status' },
      values,
    });
  }

  /** A failed attempt that the state machine may retry: the error is kept, the status is not changed. */
  async recordFailure(source: SourceObject, error: LedgerError): Promise<void> {
    await updateItem(this.client, this.tableName, ledgerKey(source), {
      update: 'SET #e = :e, #u = :u',
      condition: 'attribute_exists(pk)',
      names: { '#e': 'error', '#u': 'updatedAt' },
      values: { ':e': error, ':u': new Date().toISOString() },
    });
  }

  /** Quarantine: whatever the status was (a failure after processing too), with the error and the copies. */
  async recordQuarantined(source: SourceObject, fields: { executionArn: string; error: LedgerError; quarantine: QuarantineRecord }): Promise<void> {
    await this.transition(source, LedgerStatus.QUARANTINED, {
      set: { executionArn: fields.executionArn, error: fields.error, quarantine: fields.quarantine },
    });
  }

  /** Every version of the source's key (one Query on the pk, strongly consistent). */
  async versions(source: SourceObject): Promise<LedgerItem[]> {
    const items: LedgerItem[] = [];
    for await (const item of queryItems<LedgerItem>(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': LedgerSchema.PARTITION_KEY },
      ExpressionAttributeValues: { ':pk': ledgerKey(source).pk },
      ConsistentRead: true,
    })) items.push(item);
    return items;
  }

  /** Every item with this status, or of this dataset (the byStatus / byDataset index, newest first), page by page. */
  async *itemsBy(index: 'status' | 'dataset', value: string): AsyncGenerator<LedgerItem> {
    const gsi = index === 'status' ? LedgerSchema.BY_STATUS : LedgerSchema.BY_DATASET;
    yield* queryItems<LedgerItem>(this.client, {
      TableName: this.tableName,
      IndexName: gsi.name,
      KeyConditionExpression: '#h = :h',
      ExpressionAttributeNames: { '#h': gsi.partitionKey },
      ExpressionAttributeValues: { ':h': value },
      ScanIndexForward: false,
    });
  }

  /** Processor: the outputs this run is about to stage; only while `processing`. */
  async recordStaging(source: SourceObject, staging: StagingRecord): Promise<void> {
    await updateItem(this.client, this.tableName, ledgerKey(source), {
      update: 'SET #g = :g, #u = :u',
      condition: '#s = :p',
      names: { '#g': 'staging', '#u': 'updatedAt', '#s': 'status' },
      values: { ':g': staging, ':u': new Date().toISOString(), ':p': LedgerStatus.PROCESSING },
    });
  }

  /** The staged objects recorded on `key` are gone; unless another run recorded its own meanwhile. */
  async clearStaging(key: LedgerKey, staging: StagingRecord): Promise<void> {
    await updateIf(this.client, this.tableName, { pk: key.pk, sk: key.sk }, {
      update: 'REMOVE #g',
      condition: '#g.#p = :p',
      names: { '#g': 'staging', '#p': 'prefix' },
      values: { ':p': staging.prefix },
    });
  }

  /** An earlier version of the key is no longer current: `by` (a version id) replaced it. */
  async recordSuperseded(key: LedgerKey, by: string): Promise<void> {
    await updateItem(this.client, this.tableName, { pk: key.pk, sk: key.sk }, {
      update: 'SET #b = :b',
      condition: 'attribute_exists(pk)',
      names: { '#b': 'supersededBy' },
      values: { ':b': by },
    });
  }

  /** Any ledger item by its key, strongly consistent. */
  async getByKey(key: LedgerKey): Promise<LedgerItem | undefined> {
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: { pk: key.pk, sk: key.sk }, ConsistentRead: true }));
    return Item as LedgerItem | undefined;
  }

  /**
   * Claims `contentHash` for `claimant` with a conditional write (free, or already its own); returns the
   * owner: the claimant when it won, else the version that holds the claim.
   */
  async claimContent(contentHash: string, claimant: SourceObject): Promise<LedgerKey> {
    const me = ledgerKey(claimant);
    if (await updateIf(this.client, this.tableName, contentClaimKey(contentHash), {
      update: 'SET #o = :o, #u = :u',
      condition: 'attribute_not_exists(#o) OR (#o.pk = :pk AND #o.sk = :sk)',
      names: { '#o': 'owner', '#u': 'updatedAt' },
      values: { ':o': me, ':u': new Date().toISOString(), ':pk': me.pk, ':sk': me.sk },
    })) return me;
    const claim = await this.getByKey(contentClaimKey(contentHash)) as unknown as { owner?: LedgerKey } | undefined;
    // Released between the two calls: try again.
    return claim?.owner ?? this.claimContent(contentHash, claimant);
  }

  /** Moves the claim on `contentHash` from `from` (whose run no longer holds that content) to `to`; false when someone else moved it first. */
  async takeOverContent(contentHash: string, from: LedgerKey, to: SourceObject): Promise<boolean> {
    const me = ledgerKey(to);
    return updateIf(this.client, this.tableName, contentClaimKey(contentHash), {
      update: 'SET #o = :o, #u = :u',
      condition: '#o.pk = :fpk AND #o.sk = :fsk',
      names: { '#o': 'owner', '#u': 'updatedAt' },
      values: { ':o': me, ':u': new Date().toISOString(), ':fpk': from.pk, ':fsk': from.sk },
    });
  }

  /**
   * Frees the claim on `contentHash` if `owner` holds it (its run failed, or its version was superseded:
   * its content is not in the lake). An update, not a delete: ledger writers have no DeleteItem.
   */
  async releaseContent(contentHash: string, owner: LedgerKey): Promise<void> {
    await updateIf(this.client, this.tableName, contentClaimKey(contentHash), {
      update: 'REMOVE #o SET #u = :u',
      condition: '#o.pk = :pk AND #o.sk = :sk',
      names: { '#o': 'owner', '#u': 'updatedAt' },
      values: { ':pk': owner.pk, ':sk': owner.sk, ':u': new Date().toISOString() },
    });
  }

  /**
   * Takes the key's publication lease for `leaseMs` (free, expired, or already `holder`'s). Returns
   * whether it was taken and the key's current version (undefined before its first publication).
   */
  async acquirePublication(source: SourceObject, holder: string, leaseMs: number): Promise<{ acquired: boolean; current?: CurrentVersion }> {
    const now = Date.now();
    try {
      const item = await updateItem(this.client, this.tableName, currentVersionKey(source), {
        update: 'SET #l = :l',
        condition: 'attribute_not_exists(#l) OR #l.#until < :now OR #l.#holder = :h',
        names: { '#l': 'lease', '#until': 'until', '#holder': 'holder' },
        values: { ':l': { holder, until: now + leaseMs }, ':now': now, ':h': holder },
        returnNew: true,
      });
      return { acquired: true, current: currentOf(item) };
    } catch (error) {
      if (isConditionFailure(error)) return { acquired: false };
      throw error;
    }
  }

  /** Ends `holder`'s lease; with `current`, records the key's new current version. Throws when the lease was lost. */
  async completePublication(source: SourceObject, holder: string, current?: CurrentVersion): Promise<void> {
    await updateItem(this.client, this.tableName, currentVersionKey(source), {
      update: current ? 'SET #v = :v, #t = :t REMOVE #l' : 'REMOVE #l',
      condition: '#l.#holder = :h',
      names: { '#l': 'lease', '#holder': 'holder', ...(current ? { '#v': 'version', '#t': 'sourceTime' } : {}) },
      values: { ':h': holder, ...(current ? { ':v': current.version, ':t': current.sourceTime } : {}) },
    });
  }

  /**
   * Moves an item to `status` (later steps: `loaded`, `indexed`), creating it when new; throws
   * ConditionalCheckFailedException when the conditions do not hold.
   */
  async transition(source: SourceObject, status: LedgerStatusValue, options: UpdateOptions = {}): Promise<void> {
    await updateItem(this.client, this.tableName, ledgerKey(source), this.transitionUpdate(source, status, options));
  }

  /** The transition; false when its conditions do not hold. */
  private async tryTransition(source: SourceObject, status: LedgerStatusValue, options: UpdateOptions): Promise<boolean> {
    return updateIf(this.client, this.tableName, ledgerKey(source), this.transitionUpdate(source, status, options));
  }

  /** The UpdateItem that moves an item to `status`: aliases numbered in the order they are named. */
  private transitionUpdate(source: SourceObject, status: LedgerStatusValue, options: UpdateOptions): ItemUpdate {
    const now = new Date().toISOString();
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const name = (attr: string) => {
      const alias = `#a${Object.keys(names).length}`;
      names[alias] = attr;
      return alias;
    };
    const value = (v: unknown) => {
      const alias = `:v${Object.keys(values).length}`;
      values[alias] = v;
      return alias;
    };
    const sets = [
      `${name('status')} = ${value(status)}`,
      `${name('updatedAt')} = ${value(now)}`,
      `${name('receivedAt')} = if_not_exists(${name('receivedAt')}, ${value(now)})`,
      `${name('history')} = list_append(if_not_exists(${name('history')}, ${value([])}), ${value([{ status, at: now }])})`,
      `${name('bucket')} = ${value(source.bucket)}`,
      `${name('key')} = ${value(source.key)}`,
    ];
    const fields = { versionId: source.versionId, ...options.set };
    for (const [attr, v] of Object.entries(fields)) {
      if (v !== undefined) sets.push(`${name(attr)} = ${value(v)}`);
    }
    const removes = (options.remove ?? []).filter((attr) => !(attr in fields)).map(name);
    // `status` is the first attribute named above; a second alias would be unused when there is no condition.
    const statusName = Object.keys(names).find((alias) => names[alias] === 'status')!;
    let condition: string | undefined;
    if (options.onlyFromStatus) {
      condition = `${statusName} IN (${options.onlyFromStatus.map(value).join(', ')})`;
      if (options.unlessSuperseded) condition += ` AND attribute_not_exists(${name('supersededBy')})`;
    } else if (options.unlessStatus?.length) {
      condition = `attribute_not_exists(pk) OR NOT (${statusName} IN (${options.unlessStatus.map(value).join(', ')}))`;
    }
    return { update: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`, condition, names, values };
  }
}

/** Every item a Query matches, page after page (the next page is read only when the caller gets that far). */
export async function* queryItems<T = Record<string, unknown>>(client: DynamoDBDocumentClient, input: QueryCommandInput): AsyncGenerator<T> {
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(new QueryCommand({ ...input, ExclusiveStartKey }));
    yield* (page.Items ?? []) as T[];
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
}

function currentOf(item: Record<string, unknown> | undefined): CurrentVersion | undefined {
  return typeof item?.version === 'string' && typeof item.sourceTime === 'string' ? { version: item.version, sourceTime: item.sourceTime } : undefined;
}
