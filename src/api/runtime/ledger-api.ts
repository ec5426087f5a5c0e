import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { LedgerSchema, LedgerStatus, LedgerStatusValue } from '../../ledger/contract';
import { attributeNames, LedgerBusy, listDatasets, queryLedger } from '../../ledger/runtime/datasets';
import { DATASET_ID } from '../../ons/catalog';
import { errorBody, RequestError, RouteResult, safeName, serve } from '../../runtime/http';
import { checksum, pageTokenCodec } from '../../runtime/page-token';
import { traced } from '../../runtime/telemetry';
import { AdditionalDataset, IngestionEntry, IngestionsResponse, LedgerApiEnv } from '../contract';

/**
 * `GET /datasets` and `GET /ingestions`: what the ingestion ledger (DynamoDB) knows, read through its
 * `byDataset` and `byStatus` indexes only (never a Scan: the table grows with every object version).
 *
 * Decisions:
 * - `GET /datasets` takes no parameters. `loaded` counts a dataset's items in the lake (processed, loaded,
 *   indexed): one paged Query of `byDataset` per catalog dataset (status filtered, three attributes projected), 4 at a time.
 * - `GET /ingestions` lists entries newest first: descending `updatedAt`, then `pk`, then `sk` (UTF-8 bytes, as DynamoDB
 *   compares). DynamoDB leaves the order of equal sort keys unspecified, so a read gives an item out only once every item
 *   with its `updatedAt` has been read, and sorts those. `status` alone reads `byStatus`; `dataset` (with or without
 *   `status`) reads `byDataset`, `status` then a FilterExpression. With neither, no index holds every item in time order:
 *   the page is an exact k-way merge of one descending `byStatus` Query per status (7 Queries for a first page).
 * - `limit`: 1 to 100 written in plain digits (`^[1-9][0-9]{0,2}$`, default 25); `+5`, `05`, ` 5`, `5.0`, `1e2`, `0x10`
 *   and non-ASCII digits are refused. Every unfiltered read asks for `limit + 1` items, so `nextToken` comes only when
 *   more entries exist.
 * - `nextToken`: base64url JSON `{ v: 1, c, h }`. `c` holds one cursor per index read (one, or one per status for the
 *   merge), a logical position rather than an ExclusiveStartKey: `{ u, pk, sk }` (after that entry), `{ u }` (from the
 *   entries updated at or before `u`), `null` (from the start) or `"x"` (exhausted). A read resumes with the key
 *   condition `updatedAt <= u` and drops what came before the position. `h` is a SHA-256 digest of the version, the
 *   normalized `status` and `dataset`, and `c`: a token works only with the parameters it was issued for, and an edited
 *   one is refused (it is a checksum, not a secret: a forged cursor can only start a listing the caller may read anyway).
 *   `limit` may change between pages. At most 8192 characters.
 * - A request reads at most MAX_QUERIES (24) index pages: when a filter skips many items, a page can hold fewer than
 *   `limit` entries (even none) and still carry `nextToken`; callers page until `nextToken` is absent.
 * - Responses never hold bucket names, execution ARNs, output locations, content hashes or the stored result:
 *   keys are object keys, `duplicateOf` is `key?versionId=`, and error reasons have S3 URIs, the item's bucket
 *   names and ARNs masked.
 * - Error messages name parameters (`safeName`) but never echo a value. Throttling, a 5xx, a timeout (2 s to connect,
 *   5 s per request) or no answer at all is a 503 `ServiceUnavailable`; any other failure a 500 through `serve`.
 */

const STATUSES: readonly LedgerStatusValue[] = Object.values(LedgerStatus);
const INGESTION_PARAMETERS = ['status', 'dataset', 'limit', 'nextToken'] as const;
const LIMIT = /^[1-9][0-9]{0,2}$/;
const DEFAULT_LIMIT = 25;
const MAX_LIMIT = 100;
/** Index pages one request may read (the merge's first round alone takes one per status). */
const MAX_QUERIES = 24;
/** Items a filtered read evaluates per Query: DynamoDB's Limit counts items before the filter. */
const FILTERED_PAGE = 200;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;

export interface LedgerApiConfig {
  readonly table: string;
  /** Dataset ids the time-series store has a table for. */
  readonly timeSeriesDatasets: ReadonlySet<string>;
  /** The datasets outside the catalog that have a lake table, listed after the catalog's. */
  readonly additionalDatasets?: readonly AdditionalDataset[];
}

/** Reads the environment; throws (a 500, the reason in the log only) when the table is unset or the list malformed. */
export function ledgerConfigFromEnv(): LedgerApiConfig {
  const table = process.env[LedgerApiEnv.TABLE];
  if (!table) throw new Error(`${LedgerApiEnv.TABLE} is not set`);
  const raw = process.env[LedgerApiEnv.TIME_SERIES_DATASETS];
  let list: unknown = [];
  try {
    list = raw ? JSON.parse(raw) : [];
  } catch {
    list = undefined;
  }
  if (!Array.isArray(list) || !list.every((id) => typeof id === 'string')) {
    throw new Error(`${LedgerApiEnv.TIME_SERIES_DATASETS} must be a JSON array of dataset ids`);
  }
  const extra = process.env[LedgerApiEnv.DATASETS];
  let additional: unknown = [];
  try {
    additional = extra ? JSON.parse(extra) : [];
  } catch {
    additional = undefined;
  }
  const wellFormed = (d: any) => d && typeof d.id === 'string' && Array.isArray(d.dimensions) && Array.isArray(d.measures)
    && d.measures.every((m: any) => m && typeof m.name === 'string');
  if (!Array.isArray(additional) || !additional.every(wellFormed)) {
    throw new Error(`${LedgerApiEnv.DATASETS} must be a JSON array of datasets ({ id, dimensions, measures })`);
  }
  return { table, timeSeriesDatasets: new Set(list as string[]), additionalDatasets: additional as AdditionalDataset[] };
}

/** The ledger client: endpoint, region and retries from the SDK's environment; short timeouts (API Gateway waits 29 s). */
export function createLedgerClient(): DynamoDBDocumentClient {
  // Without throwOnRequestTimeout the SDK only warns when a request outlives requestTimeout.
  const requestHandler = { connectionTimeout: 2_000, requestTimeout: 5_000, throwOnRequestTimeout: true };
  return DynamoDBDocumentClient.from(traced(new DynamoDBClient({ requestHandler })));
}

export interface LedgerDeps {
  readonly client: DynamoDBDocumentClient;
  readonly config: LedgerApiConfig;
}

type Query = Readonly<Record<string, string | undefined>> | null;
type MultiQuery = Readonly<Record<string, readonly string[] | undefined>> | null;

const invalid = (message: string) => new RequestError(400, 'InvalidParameter', message);

/** Names of every parameter given (single- and multi-value maps alike). */
function parameterNames(query: Query, multi: MultiQuery): string[] {
  return [...new Set([...Object.keys(query ?? {}), ...Object.keys(multi ?? {})])];
}

/** `GET /datasets`: any parameter is refused. */
export function parseDatasetsRequest(query: Query, multi: MultiQuery): void {
  const [first] = parameterNames(query, multi);
  if (first !== undefined) throw new RequestError(400, 'UnknownParameter', `unknown parameter ${safeName(first)}; GET /datasets takes no parameters`);
}

/**
 * Where one index read resumes, in the API's order (descending updatedAt, pk, sk): after the entry `{ u, pk, sk }`, at
 * the first entry updated at or before `u` (`{ u }`), from the start (`null`), or nowhere (`'x'`, exhausted).
 */
interface Position {
  readonly u: string;
  readonly pk?: string;
  readonly sk?: string;
}
type Cursor = Position | null | 'x';

/** A validated `GET /ingestions` request. */
export interface IngestionsRequest {
  readonly status?: LedgerStatusValue;
  readonly dataset?: string;
  readonly limit: number;
  /** One cursor per index read (one, or one per status for the merge); all `null` on the first page. */
  readonly cursors: readonly Cursor[];
}

/** Validates `GET /ingestions`' parameters; throws RequestError (400) naming the parameter at fault. */
export function parseIngestionsRequest(query: Query, multi: MultiQuery): IngestionsRequest {
  const given = parameterNames(query, multi);
  for (const name of given) {
    if (!(INGESTION_PARAMETERS as readonly string[]).includes(name)) {
      throw new RequestError(400, 'UnknownParameter', `unknown parameter ${safeName(name)}; accepted: ${INGESTION_PARAMETERS.join(', ')}`);
    }
  }
  for (const name of given) {
    if ((multi?.[name]?.length ?? 0) > 1) throw invalid(`${safeName(name)} is given more than once`);
  }
  // API Gateway fills both maps; the multi-value one alone when a caller's event lacks the other.
  const value = (name: string): string | undefined => {
    const v = query?.[name] ?? multi?.[name]?.[0];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw invalid(`${name} must be a string`);
    return v;
  };

  const statusValue = value('status');
  if (statusValue !== undefined && !(STATUSES as readonly string[]).includes(statusValue)) {
    throw invalid(`status must be one of ${STATUSES.join(', ')}`);
  }
  const status = statusValue as LedgerStatusValue | undefined;

  const dataset = value('dataset');
  if (dataset !== undefined && !DATASET_ID.test(dataset)) throw invalid('dataset must be a dataset id: 1 to 64 lower-case letters, digits or _');

  const limitValue = value('limit');
  if (limitValue !== undefined && (!LIMIT.test(limitValue) || Number(limitValue) > MAX_LIMIT)) {
    throw invalid(`limit must be an integer from 1 to ${MAX_LIMIT} in plain digits`);
  }
  const limit = limitValue === undefined ? DEFAULT_LIMIT : Number(limitValue);

  const reads = readCount(dataset, status);
  const token = value('nextToken');
  const cursors = token === undefined ? new Array<Cursor>(reads).fill(null) : pageTokens.decode(token, { status, dataset });
  return { status, dataset, limit, cursors };
}

/** Index reads of a request: one, or one per status for the merge. */
function readCount(dataset: string | undefined, status: string | undefined): number {
  return dataset === undefined && status === undefined ? STATUSES.length : 1;
}

/** `nextToken`: the cursors, and a digest of the version, the request's status and dataset, and the cursors. */
const pageTokens = pageTokenCodec<Cursor[], Pick<IngestionsRequest, 'status' | 'dataset'>>({
  maxLength: 8192,
  cursorField: 'c',
  digestField: 'h',
  digest: (cursors, { status, dataset }) => checksum(JSON.stringify([1, status ?? null, dataset ?? null, cursors]), 'base64url', 22),
  isCursor: (c, { status, dataset }): c is Cursor[] => Array.isArray(c) && c.length === readCount(dataset, status) && c.every(isCursor)
    // A token is issued only while some read has more to give.
    && !c.every((cursor) => cursor === 'x'),
});

function isCursor(c: unknown): boolean {
  if (c === null || c === 'x') return true;
  if (!c || typeof c !== 'object' || Array.isArray(c)) return false;
  const keys = Object.keys(c).sort().join();
  if (keys !== 'pk,sk,u' && keys !== 'u') return false;
  const { pk, sk, u } = c as Record<string, unknown>;
  if (typeof u !== 'string' || u.length > 40 || !INSTANT.test(u)) return false;
  if (keys === 'u') return true;
  return typeof pk === 'string' && pk.startsWith('s3://') && pk.length <= 1100 && typeof sk === 'string' && sk.length >= 1 && sk.length <= 1024;
}

/** The attributes an IngestionEntry is built from, and the bucket names its error text is masked with. */
const ENTRY_ATTRIBUTES = [
  'pk', 'sk', 'key', 'status', 'dataset', 'kind', 'size', 'receivedAt', 'updatedAt', 'start', 'end', 'rows', 'records', 'rejected',
  'series', 'duplicateOf', 'error', 'load', 'bucket', 'outputs.processedBucket', 'outputs.failedBucket', 'quarantine.bucket',
];

type Item = Record<string, unknown>;

const utf8 = (s: string) => Buffer.from(s, 'utf8');

/** The API's order: descending (updatedAt, pk, sk), strings compared as DynamoDB compares them (UTF-8 bytes); negative when `a` comes first. */
function newestFirst(a: Position, b: Position): number {
  return Buffer.compare(utf8(b.u), utf8(a.u))
    || Buffer.compare(utf8(b.pk ?? ''), utf8(a.pk ?? ''))
    || Buffer.compare(utf8(b.sk ?? ''), utf8(a.sk ?? ''));
}

const positionOf = (item: Item): Position => ({ u: item.updatedAt as string, pk: item.pk as string, sk: item.sk as string });

/**
 * One descending index read (a status of `byStatus`, or a dataset of `byDataset` with an optional status filter) in the API's order.
 * DynamoDB leaves the order of equal sort keys unspecified, so an item is given out only once every item with its `updatedAt` has been
 * read (they are then sorted by pk, sk), and a page resumes from a logical position (`updatedAt <= u`, skipping what came before it)
 * rather than from an ExclusiveStartKey.
 */
class IndexRead {
  /** Read, not given out yet: in the API's order. */
  private buffer: Item[] = [];
  private startKey: Item | undefined;
  /** updatedAt of the last item DynamoDB evaluated (filtered out or not): every item updated later has been read. */
  private evaluatedTo: string | undefined;
  private done: boolean;
  private lastEmitted: Position | undefined;

  constructor(
    private readonly index: typeof LedgerSchema.BY_STATUS | typeof LedgerSchema.BY_DATASET,
    private readonly partition: string,
    private readonly filterStatus: string | undefined,
    private readonly start: Cursor,
  ) {
    this.done = start === 'x';
  }

  /** The next item in order; `undefined` when exhausted, `'budget'` when finding it needs a Query the budget forbids. */
  async head(ctx: ReadContext): Promise<Item | undefined | 'budget'> {
    // Until DynamoDB has gone past the first buffered item's updatedAt, an equal one that sorts before it may still come.
    while (!this.done && (this.buffer.length === 0 || this.evaluatedTo === undefined || this.evaluatedTo >= (this.buffer[0].updatedAt as string))) {
      if (ctx.queries >= MAX_QUERIES) return 'budget';
      await this.fetch(ctx);
    }
    return this.buffer[0];
  }

  pop(): Item {
    const item = this.buffer.shift()!;
    this.lastEmitted = positionOf(item);
    return item;
  }

  get exhausted(): boolean {
    return this.buffer.length === 0 && this.done;
  }

  /** Where the next page resumes. */
  cursor(): Cursor {
    if (this.exhausted) return 'x';
    const base = this.lastEmitted ?? this.start;
    if (this.buffer.length > 0 || this.evaluatedTo === undefined) return base;
    // Everything read was given out or filtered out: go on from the last evaluated instant (its items read again, filtered again),
    // unless that is the instant the page started in, part of which may have been given out on an earlier page.
    if (base && base !== 'x' && base.u === this.evaluatedTo) return base;
    return { u: this.evaluatedTo };
  }

  private async fetch(ctx: ReadContext): Promise<void> {
    ctx.queries++;
    const projection = attributeNames(ENTRY_ATTRIBUTES);
    const start = this.start && this.start !== 'x' ? this.start : undefined;
    const values: Record<string, unknown> = { ':ip': this.partition };
    let key = '#ip = :ip';
    if (start) {
      key += ' AND #updatedAt <= :u';
      values[':u'] = start.u;
    }
    let filter: string | undefined;
    if (this.filterStatus !== undefined) {
      filter = '#status = :fs';
      values[':fs'] = this.filterStatus;
    }
    const input: QueryCommandInput = {
      TableName: ctx.table,
      IndexName: this.index.name,
      KeyConditionExpression: key,
      FilterExpression: filter,
      ProjectionExpression: projection.expression,
      ExpressionAttributeNames: { ...projection.names, '#ip': this.index.partitionKey },
      ExpressionAttributeValues: values,
      ScanIndexForward: false,
      Limit: this.filterStatus === undefined ? ctx.limit + 1 : FILTERED_PAGE,
      ExclusiveStartKey: this.startKey,
    };
    const page = await queryLedger(ctx.client, input);
    const items = page.Items ?? [];
    // Resuming inside an instant: its items up to the position were given out on an earlier page.
    const fresh = start?.pk === undefined ? items : items.filter((i) => newestFirst(start, positionOf(i)) < 0);
    this.buffer = [...this.buffer, ...fresh].sort((a, b) => newestFirst(positionOf(a), positionOf(b)));
    this.startKey = page.LastEvaluatedKey;
    this.done = !page.LastEvaluatedKey;
    const last = page.LastEvaluatedKey?.[this.index.sortKey] ?? items[items.length - 1]?.updatedAt;
    if (typeof last === 'string') this.evaluatedTo = last;
  }
}

interface ReadContext {
  readonly client: DynamoDBDocumentClient;
  readonly table: string;
  readonly limit: number;
  queries: number;
}

/** One page of `GET /ingestions`. */
export async function listIngestions(client: DynamoDBDocumentClient, table: string, request: IngestionsRequest): Promise<{
  body: IngestionsResponse; strategy: string; queries: number;
}> {
  const { status, dataset, limit, cursors } = request;
  let reads: IndexRead[];
  let strategy: string;
  if (dataset !== undefined) {
    reads = [new IndexRead(LedgerSchema.BY_DATASET, dataset, status, cursors[0])];
    strategy = status === undefined ? 'dataset' : 'datasetAndStatus';
  } else if (status !== undefined) {
    reads = [new IndexRead(LedgerSchema.BY_STATUS, status, undefined, cursors[0])];
    strategy = 'status';
  } else {
    reads = STATUSES.map((s, i) => new IndexRead(LedgerSchema.BY_STATUS, s, undefined, cursors[i]));
    strategy = 'merge';
  }
  const ctx: ReadContext = { client, table, limit, queries: 0 };
  const items: Item[] = [];
  // One more head than the page holds: the token comes only when an entry is left.
  while (items.length <= limit) {
    const heads = await Promise.all(reads.map((r) => r.head(ctx)));
    // The merge may take an item only once every read has shown its head.
    if (heads.includes('budget')) break;
    let best = -1;
    heads.forEach((h, i) => {
      if (h && h !== 'budget' && (best < 0 || newestFirst(positionOf(h), positionOf(heads[best] as Item)) < 0)) best = i;
    });
    if (best < 0 || items.length === limit) break;
    items.push(reads[best].pop());
  }
  // Out of budget, a read not yet exhausted may still hold entries: its cursor says where to go on.
  const more = reads.some((r) => !r.exhausted);
  const body: IngestionsResponse = {
    ingestions: items.map(toEntry),
    ...(more ? { nextToken: pageTokens.encode(reads.map((r) => r.cursor()), request) } : {}),
  };
  return { body, strategy, queries: ctx.queries };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Masks what must not leave the API in free text (error reasons): S3 URIs and ARNs, and the bucket names the item names. */
function scrub(text: string, buckets: readonly string[]): string {
  let out = text
    .replace(/s3:\/\/[^/\s"'`]+\/?/gi, '')
    .replace(/arn:aws[a-z-]*:[^\s"'`,;)]+/gi, '<arn>');
  for (const bucket of buckets) {
    if (bucket.length >= 3) out = out.split(bucket).join('<bucket>');
  }
  return out;
}

function defined<T extends object>(fields: T): T {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as T;
}

/** A ledger item as the API shows it: no bucket, execution ARN, outputs, content hash or stored result. */
export function toEntry(item: Item): IngestionEntry {
  const outputs = (item.outputs ?? {}) as Item;
  const quarantine = (item.quarantine ?? {}) as Item;
  const buckets = [item.bucket, outputs.processedBucket, outputs.failedBucket, quarantine.bucket].filter((b): b is string => typeof b === 'string');
  const sk = str(item.sk);
  const duplicateOf = str(item.duplicateOf);
  // Stored as ledgerRef: `s3://<bucket>/<key>?versionId=<sk>`; anything else is not shown.
  const duplicateMatch = duplicateOf ? /^s3:\/\/[^/]+\/(.+)$/s.exec(duplicateOf) : null;
  const error = item.error as Item | undefined;
  const load = item.load as Item | undefined;
  return defined({
    key: str(item.key) ?? '',
    versionId: sk === undefined || sk === 'null' ? null : sk,
    status: str(item.status) ?? '',
    dataset: str(item.dataset),
    kind: str(item.kind),
    size: num(item.size),
    receivedAt: str(item.receivedAt) ?? '',
    updatedAt: str(item.updatedAt) ?? '',
    start: str(item.start),
    end: str(item.end),
    rows: num(item.rows),
    records: num(item.records),
    rejected: num(item.rejected),
    series: num(item.series),
    duplicateOf: duplicateMatch ? duplicateMatch[1] : undefined,
    error: error && typeof error === 'object' ? defined({
      step: scrub(str(error.step) ?? 'unknown', buckets),
      reason: scrub(str(error.reason) ?? '', buckets),
      errorType: str(error.errorType) === undefined ? undefined : scrub(str(error.errorType)!, buckets),
    }) : undefined,
    load: load && typeof load === 'object' ? defined({
      status: str(load.status) ?? '',
      at: str(load.at) ?? '',
      points: num(load.points),
      rejected: num(load.rejected),
      reason: str(load.reason) === undefined ? undefined : scrub(str(load.reason)!, buckets),
    }) : undefined,
  });
}

/** Runs a route's reads; a busy ledger becomes a 503 whose cause goes into the request's one log line. */
async function guarded(requestId: string, work: () => Promise<RouteResult>): Promise<RouteResult> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof LedgerBusy)) throw error;
    return {
      status: 503,
      body: errorBody('ServiceUnavailable', 'the ledger is busy; retry later', requestId),
      log: { code: 'ServiceUnavailable', errorType: error.cause?.name, errorCode: error.cause?.code, errorMessage: error.cause?.message },
    };
  }
}

/** The whole API Gateway proxy exchange for both routes: routing, validation, reads, one error shape, a log line per request. */
export async function handleRequest(event: APIGatewayProxyEvent, requestId: string, deps: () => LedgerDeps): Promise<APIGatewayProxyResult> {
  const resource = event.resource;
  const operation = resource === '/datasets' ? 'datasets' : resource === '/ingestions' ? 'ingestions' : 'ledger';
  return serve(event, requestId, operation, async () => {
    if (event.httpMethod !== 'GET' || operation === 'ledger') throw new RequestError(404, 'NotFound', 'no such route');
    if (operation === 'datasets') {
      parseDatasetsRequest(event.queryStringParameters, event.multiValueQueryStringParameters);
      const d = deps();
      return guarded(requestId, async () => {
        const { body, queries } = await listDatasets(d.client, d.config.table, d.config.timeSeriesDatasets, d.config.additionalDatasets);
        return { body, log: { datasets: body.datasets.length, queries } };
      });
    }
    const request = parseIngestionsRequest(event.queryStringParameters, event.multiValueQueryStringParameters);
    const { client, config } = deps();
    return guarded(requestId, async () => {
      const { body, strategy, queries } = await listIngestions(client, config.table, request);
      return {
        body,
        log: {
          strategy,
          status: request.status,
          dataset: request.dataset,
          limit: request.limit,
          entries: body.ingestions.length,
          queries,
          paged: request.cursors.some((c) => c !== null),
          more: body.nextToken !== undefined,
        },
      };
    });
  });
}
