import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { IncomingMessage, request, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import {
  GetObjectCommand, ListObjectsCommand, PutObjectCommand, S3Client,
} from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { LocalHttpServer } from './local-http';
import type { TaskHandler } from './local-stepfunctions';
import { ONS_DATA } from './ons-data';
import { IngestionEnv, ProcessInput, RouteResult } from '../src/ingestion/contract';
import { LakeEnv } from '../src/lake/contract';
import { LedgerEnv, LedgerItem, LedgerSchema, ProcessResult, StepInput } from '../src/ledger/contract';
import { HandlerEnv } from '../src/runtime/contract';
import type { LoadInput } from '../src/timeseries/contract';

/**
 * Local AWS for the handler tests: s3rver (S3) and dynalite (DynamoDB) on 127.0.0.1, the ingestion's
 * ledger table created with the contract's keys and indexes, the bundled handlers loaded with their
 * environment, and a proxy in front of S3 that can fail a chosen request.
 */

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: {
  address: string; port: number; silent: boolean; directory: string; configureBuckets: { name: string }[];
}) => S3rverInstance;
// s3rver and dynalite ship no type declarations.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver') as S3rverConstructor;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dynalite = require('dynalite') as (options: Record<string, number>) => Server;

export const ASSETS = join(__dirname, '..', 'assets', 'ingestion');
export const BUCKETS = { raw: 'ons-raw', processed: 'ons-processed', failed: 'ons-failed' } as const;
export const TABLE = 'ons-ingestion-ledger';
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface LocalAws {
  /** s3rver's own endpoint (the handlers get it unless a test puts the proxy in front). */
  readonly s3Endpoint: string;
  readonly dynamoEndpoint: string;
  /** The tests' S3 client (s3rver needs WHEN_REQUIRED checksums for stream bodies; the handlers keep SDK defaults). */
  readonly s3: S3Client;
  readonly ddb: DynamoDBDocumentClient;
  /** A directory for the test's own files, removed at close. */
  readonly scratch: string;
  close(): Promise<void>;
}

/** A local AWS service listening on 127.0.0.1. */
export interface LocalServer {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  close(): Promise<void>;
}

/** s3rver on a free port with `buckets` created, its objects stored under `directory`. */
export async function startS3rver(directory: string, buckets: readonly string[]): Promise<LocalServer> {
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: buckets.map((name) => ({ name })) });
  const { port } = await server.run();
  return { endpoint: `http://127.0.0.1:${port}`, close: () => server.close() };
}

/** dynalite on a free port; tables change state at once unless `delays` (ms) say otherwise. */
export async function startDynalite(delays: { createTableMs?: number; updateTableMs?: number } = {}): Promise<LocalServer> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...delays });
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', (e?: Error) => (e ? reject(e) : resolve())));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export async function startLocalAws(): Promise<LocalAws> {
  const scratch = mkdtempSync(join(tmpdir(), 'ons-ingestion-test-'));
  const s3server = await startS3rver(join(scratch, 's3rver'), Object.values(BUCKETS));
  const dynamo = await startDynalite();
  const s3Endpoint = s3server.endpoint;
  const dynamoEndpoint = dynamo.endpoint;

  const s3 = new S3Client({
    endpoint: s3Endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const raw = new DynamoDBClient({ endpoint: dynamoEndpoint, region: 'us-east-1', credentials: CREDENTIALS });
  await createLedgerTable(raw);
  const ddb = DynamoDBDocumentClient.from(raw);
  return {
    s3Endpoint,
    dynamoEndpoint,
    s3,
    ddb,
    scratch,
    close: async () => {
      s3.destroy();
      ddb.destroy();
      raw.destroy();
      await s3server.close();
      await dynamo.close();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

/** The ledger table as the construct declares it: pk/sk, and the three GSIs (projection ALL). */
export async function createLedgerTable(client: DynamoDBClient, table: string = TABLE): Promise<void> {
  const indexes = [LedgerSchema.BY_CONTENT_HASH, LedgerSchema.BY_DATASET, LedgerSchema.BY_STATUS];
  const attributes = new Set<string>([LedgerSchema.PARTITION_KEY, LedgerSchema.SORT_KEY, ...indexes.flatMap((i) => [i.partitionKey, i.sortKey])]);
  await client.send(new CreateTableCommand({
    TableName: table,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [...attributes].map((AttributeName) => ({ AttributeName, AttributeType: 'S' })),
    KeySchema: [{ AttributeName: LedgerSchema.PARTITION_KEY, KeyType: 'HASH' }, { AttributeName: LedgerSchema.SORT_KEY, KeyType: 'RANGE' }],
    GlobalSecondaryIndexes: indexes.map((i) => ({
      IndexName: i.name,
      KeySchema: [{ AttributeName: i.partitionKey, KeyType: 'HASH' }, { AttributeName: i.sortKey, KeyType: 'RANGE' }],
      Projection: { ProjectionType: 'ALL' },
    })),
  }));
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: table });
}

/** The region, and the machine's AWS setup (profile, endpoints, retries, config files) kept out of a handler under test. */
export function isolatedAwsEnv(scratch: string): Record<string, string | undefined> {
  return {
    AWS_REGION: 'us-east-1',
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_ENDPOINT_URL: undefined,
    AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: undefined,
    AWS_MAX_ATTEMPTS: undefined,
    AWS_REQUEST_CHECKSUM_CALCULATION: undefined,
    AWS_RESPONSE_CHECKSUM_VALIDATION: undefined,
    AWS_CONFIG_FILE: join(scratch, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(scratch, 'no-aws-credentials'),
    // Each fresh SDK copy would otherwise print its "will require node >=22" warning on Node 20.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

/** The environment the construct gives the handlers, pointed at the local servers. */
export function handlerEnv(aws: LocalAws, overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    AWS_ENDPOINT_URL_S3: aws.s3Endpoint,
    AWS_ENDPOINT_URL_DYNAMODB: aws.dynamoEndpoint,
    ...isolatedAwsEnv(aws.scratch),
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    [HandlerEnv.STAGE]: 'dev',
    [LakeEnv.PROCESSED_BUCKET]: BUCKETS.processed,
    [LakeEnv.FAILED_BUCKET]: BUCKETS.failed,
    [LedgerEnv.TABLE]: TABLE,
    [LakeEnv.PROCESSED_DATA_PREFIX]: 'processed/',
    [LakeEnv.DATA_CARDS_PREFIX]: 'knowledge/cards/',
    [LakeEnv.DOCUMENTS_PREFIX]: 'knowledge/documents/',
    [LakeEnv.REJECTED_ROWS_PREFIX]: 'rejected/',
    [LakeEnv.QUARANTINE_PREFIX]: 'quarantine/',
    [IngestionEnv.LAMBDA_MAX_BYTES]: String(64 * 1024 * 1024),
    // The construct's defaults (test/ingestion/pipeline.test.ts checks it sets these).
    [IngestionEnv.TABULAR_EXTENSIONS]: 'csv,xlsx,parquet',
    [IngestionEnv.DOCUMENT_EXTENSIONS]: 'pdf,docx,md,txt,html,htm',
    // What the construct sets with large-file processing on (test/ingestion/pipeline.test.ts checks it).
    [IngestionEnv.ROUTES]: 'process,document,quarantine,processLarge',
    [IngestionEnv.XLSX_MAX_EXPANDED_BYTES]: undefined,
    [HandlerEnv.S3_REQUEST_TIMEOUT_MS]: undefined,
    [IngestionEnv.JOB_INPUT]: undefined,
    // Set by the pipeline for a store without a loader (the lake engine) only.
    [IngestionEnv.LOADED_ON_PUBLISH]: undefined,
    ...overrides,
  };
}

// The tests' own SDK clients would print the "will require node >=22" warning on Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const savedEnv = { ...process.env };

/** Puts process.env back as it was when this module loaded (same object, so modules keep seeing it). */
export function restoreEnv(): void {
  for (const key of Object.keys(process.env)) {
    if (!(key in savedEnv)) delete process.env[key];
  }
  Object.assign(process.env, savedEnv);
}

/**
 * Sets the environment, then loads a fresh copy of a bundled handler (`<assets>/<name>.lambda/index.js`, default `assets/ingestion`):
 * it creates its clients on first use, and the SDK resolves endpoint, region and retries from the environment then.
 */
export function loadHandler<E, R>(name: string, env: Record<string, string | undefined>, assets: string = ASSETS): (event: E) => Promise<R> {
  const asset = join(assets, `${name}.lambda`, 'index.js');
  if (!existsSync(asset)) throw new Error(`${asset} is missing: run \`npx projen bundle\` first`);
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  let handler: ((event: E) => Promise<R>) | undefined;
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    handler = (require(asset) as { handler: (event: E) => Promise<R> }).handler;
  });
  return handler!;
}

/** The ingestion state machine's Lambda tasks served by the bundled handlers (loaded with `env`), its SNS tasks by `notify`. */
export function ingestionTasks(env: Record<string, string | undefined>, notify: TaskHandler = async () => ({ MessageId: 'local' })): Record<string, TaskHandler> {
  const quarantine = loadHandler('quarantine', env);
  return {
    Route: loadHandler('route', env),
    ProcessFile: loadHandler('process', env),
    CopyDocument: loadHandler('copy-document', env),
    Quarantine: quarantine,
    QuarantineFailure: quarantine,
    NotifyFailure: notify,
    NotifyQuarantined: notify,
  };
}

export async function putObject(aws: LocalAws, bucket: string, key: string, body: Buffer): Promise<void> {
  await aws.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

export async function getBytes(aws: LocalAws, bucket: string, key: string): Promise<Buffer> {
  const { Body } = await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await Body!.transformToByteArray());
}

/** Every key in a bucket (ListObjects v1 with markers: no continuation-token crypto in s3rver). */
export async function listKeys(aws: LocalAws, bucket: string, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  let Marker: string | undefined;
  for (;;) {
    const page = await aws.s3.send(new ListObjectsCommand({ Bucket: bucket, Prefix: prefix, Marker }));
    const contents = page.Contents ?? [];
    keys.push(...contents.map((c) => c.Key!));
    if (!page.IsTruncated || contents.length === 0) return keys.sort();
    Marker = contents[contents.length - 1].Key;
  }
}

export async function ledgerItem(aws: LocalAws, bucket: string, key: string, versionId?: string): Promise<LedgerItem | undefined> {
  const { Item } = await aws.ddb.send(new GetCommand({ TableName: TABLE, Key: { pk: `s3://${bucket}/${key}`, sk: versionId ?? 'null' } }));
  return Item as LedgerItem | undefined;
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export const EXECUTION = 'arn:aws:states:sa-east-1:123456789012:execution:OnsIngestion:test-execution';

export type Fault = 'status500' | 'stall';

/** Storage classes whose objects must be restored before they can be read. */
export type ArchiveClass = 'GLACIER' | 'DEEP_ARCHIVE';
type RestoreTierName = 'Expedited' | 'Standard' | 'Bulk';

/**
 * How long a restore takes, the upper end of what the S3 documentation gives ("Restoring an archived object",
 * checked 2026-12): Deep Archive Standard within 12 hours, Bulk within 48 hours (no Expedited); Glacier Flexible
 * Retrieval Expedited 1–5 minutes, Standard 3–5 hours, Bulk 5–12 hours.
 */
export const RESTORE_HOURS: Record<ArchiveClass, Partial<Record<RestoreTierName, number>>> = {
  DEEP_ARCHIVE: { Standard: 12, Bulk: 48 },
  GLACIER: { Expedited: 5 / 60, Standard: 5, Bulk: 12 },
};

interface Archived {
  readonly storageClass: ArchiveClass;
  restore?: { tier: RestoreTierName; days: number; readyAt: number };
}

/** The simulated clock's origin, for the `expiry-date` S3 writes in `x-amz-restore`. */
const EPOCH = Date.parse('2026-01-05T00:00:00Z');

/**
 * An HTTP proxy in front of s3rver that fails one chosen request: the `nth` request that `matches`
 * gets a 500 InternalError without reaching S3 (`status500`), or reaches S3 and its response is held
 * until the client gives up (`stall`: the object is stored, the client never hears so).
 *
 * It also plays S3's archive storage classes, which s3rver lacks: an object marked with `archive()` is in
 * S3 Glacier Flexible Retrieval or Deep Archive. As S3 does, HeadObject answers with `x-amz-storage-class` (and
 * `x-amz-restore` once a restore was asked for), GetObject and CopyObject from it answer 403 `InvalidObjectState`
 * until a restore completes, and RestoreObject answers 202 (accepted), 409 `RestoreAlreadyInProgress` while one
 * runs, 200 once restored, and 403 `InvalidObjectState` for an object that is not archived. A restore completes
 * after `RESTORE_HOURS` of the tier on a simulated clock that the test moves (`advanceTo`).
 */
export class FaultyS3Proxy {
  private readonly server = new LocalHttpServer((req, res) => this.handle(req, res));
  private plan?: { fault: Fault; nth: number; matches: (req: IncomingMessage) => boolean; seen: number; onward?: boolean };
  private readonly archived = new Map<string, Archived>();
  /** Requests failed so far. */
  public failed = 0;
  /** The simulated clock (ms since the test began), which restores complete against. */
  public now = 0;
  /** Every RestoreObject accepted (202), in order. */
  public readonly restores: Array<{ bucket: string; key: string; tier: string; days: number; at: number }> = [];
  /** Reads (GetObject, CopyObject) refused with InvalidObjectState. */
  public refusedReads = 0;

  constructor(private readonly target: string) {}

  start(): Promise<string> {
    return this.server.start();
  }

  /** Fails the `nth` (1-based) request that `matches`, once. */
  failNth(fault: Fault, nth: number, matches: (req: IncomingMessage) => boolean): void {
    this.plan = { fault, nth, matches, seen: 0 };
  }

  /** Fails every request that `matches` from the `nth` (1-based) on, until disarmed: S3 gone, as for a killed run. */
  failFrom(fault: Fault, nth: number, matches: (req: IncomingMessage) => boolean): void {
    this.plan = { fault, nth, matches, seen: 0, onward: true };
  }

  disarm(): void {
    this.plan = undefined;
  }

  /** Moves the object (already stored) to an archive storage class, as a lifecycle transition does. */
  archive(bucket: string, key: string, storageClass: ArchiveClass): void {
    this.archived.set(`${bucket}/${key}`, { storageClass });
  }

  /** Moves the simulated clock forward (never back). */
  advanceTo(ms: number): void {
    this.now = Math.max(this.now, ms);
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private readable(a: Archived): boolean {
    return a.restore !== undefined && this.now >= a.restore.readyAt && this.now < a.restore.readyAt + a.restore.days * 86_400_000;
  }

  /** The archived object a request is about (its path, or a copy's source), if any. */
  private archivedOf(req: IncomingMessage): { id: string; archived: Archived; asSource: boolean } | undefined {
    const copy = req.headers['x-amz-copy-source'];
    if (typeof copy === 'string') {
      const id = decodeURIComponent(copy.split('?')[0]).replace(/^\//, '');
      const archived = this.archived.get(id);
      return archived ? { id, archived, asSource: true } : undefined;
    }
    const id = decodeURIComponent((req.url ?? '').split('?')[0]).replace(/^\//, '');
    const archived = this.archived.get(id);
    return archived ? { id, archived, asSource: false } : undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.archive_(req, res)) return;
    const plan = this.plan;
    let fault: Fault | undefined;
    if (plan && plan.matches(req) && (++plan.seen === plan.nth || (plan.onward && plan.seen > plan.nth))) {
      fault = plan.fault;
      this.failed++;
    }
    if (fault === 'status500') {
      req.resume();
      req.on('end', () => {
        res.writeHead(500, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
          + '<Message>We encountered an internal error. Please try again.</Message></Error>');
      });
      return;
    }
    this.forward(req, res, fault);
  }

  /** S3's archive behaviour; true when the request was answered here. */
  private archive_(req: IncomingMessage, res: ServerResponse): boolean {
    const isRestore = req.method === 'POST' && /[?&]restore(=|&|$)/.test(req.url ?? '');
    const found = this.archivedOf(req);
    if (isRestore) {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (!found) return error(res, 403, 'InvalidObjectState', 'Restore is not allowed for the object\'s current storage class');
        const a = found.archived;
        const tier = (/<Tier>(\w+)<\/Tier>/.exec(body)?.[1] ?? 'Standard') as RestoreTierName;
        const days = Number(/<Days>(\d+)<\/Days>/.exec(body)?.[1] ?? NaN);
        const hours = RESTORE_HOURS[a.storageClass][tier];
        if (hours === undefined) return error(res, 400, 'InvalidArgument', `the ${tier} tier is not available for ${a.storageClass}`);
        if (!Number.isInteger(days) || days < 1) return error(res, 400, 'MalformedXML', 'Days must be a whole number of at least 1');
        if (a.restore && this.now < a.restore.readyAt) return error(res, 409, 'RestoreAlreadyInProgress', 'Object restore is already in progress');
        if (a.restore && this.readable(a)) {
          a.restore.days = days;
          res.writeHead(200);
          return res.end();
        }
        a.restore = { tier, days, readyAt: this.now + hours * 3_600_000 };
        const [bucket, ...key] = found.id.split('/');
        this.restores.push({ bucket, key: key.join('/'), tier, days, at: this.now });
        res.writeHead(202);
        res.end();
      });
      return true;
    }
    if (!found) return false;
    const a = found.archived;
    const read = (req.method === 'GET' && !found.asSource) || (req.method === 'PUT' && found.asSource);
    if (read && !this.readable(a)) {
      this.refusedReads++;
      req.resume();
      req.on('end', () => error(res, 403, 'InvalidObjectState', 'The operation is not valid for the object\'s storage class', a.storageClass));
      return true;
    }
    if (req.method === 'HEAD' && !found.asSource) {
      const restore = a.restore === undefined ? undefined : this.now < a.restore.readyAt ? 'ongoing-request="true"'
        : `ongoing-request="false", expiry-date="${new Date(EPOCH + a.restore.readyAt + a.restore.days * 86_400_000).toUTCString()}"`;
      this.forward(req, res, undefined, { 'x-amz-storage-class': a.storageClass, ...(restore ? { 'x-amz-restore': restore } : {}) });
      return true;
    }
    return false;
  }

  private forward(req: IncomingMessage, res: ServerResponse, fault: Fault | undefined, extraHeaders: Record<string, string> = {}): void {
    const target = new URL(this.target);
    const upstream = request({
      host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers,
    }, (answer) => {
      if (fault === 'stall') {
        // S3 has done the work; the client never gets the answer and times out.
        answer.resume();
        return;
      }
      res.writeHead(answer.statusCode ?? 502, { ...answer.headers, ...extraHeaders });
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }
}

function error(res: ServerResponse, status: number, code: string, message: string, storageClass?: string): void {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message>`
    + `${storageClass ? `<StorageClass>${storageClass}</StorageClass>` : ''}<RequestId>local</RequestId></Error>`);
}

/** A PutObject (not a copy, not a multipart part) into `bucket`. */
export function isPutObject(bucket?: string): (req: IncomingMessage) => boolean {
  return (req) => req.method === 'PUT' && !req.headers['x-amz-copy-source'] && !/[?&]partNumber=/.test(req.url ?? '')
    && (bucket === undefined || (req.url ?? '').startsWith(`/${bucket}/`));
}

/** The router and processor bundles run on a real file, as the state machine does before the loader. */
/** Ingests a real ONS file by name, or `content` under that name (a file derived from a real one). */
export type Ingest = (file: string, content?: Buffer) => Promise<LoadInput>;

/** Ingests each file once (the same content under another key would be a duplicate, which is not loaded). */
export function ingester(aws: LocalAws, env: Record<string, string | undefined>): Ingest {
  const route = loadHandler<StepInput, RouteResult>('route', env);
  const processFile = loadHandler<ProcessInput, ProcessResult>('process', env);
  const done = new Map<string, Promise<LoadInput>>();
  return (file, content) => {
    let input = done.get(file);
    if (!input) {
      const key = `incoming/${file}`;
      input = (async () => {
        await putObject(aws, BUCKETS.raw, key, content ?? readFileSync(join(ONS_DATA, file)));
        const routed = await route({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION });
        const processed = await processFile({ source: routed.source, executionArn: EXECUTION });
        if (processed.status !== 'processed') throw new Error(`${file}: ${JSON.stringify(processed)}`);
        return { source: routed.source, executionArn: EXECUTION, processed };
      })();
      done.set(file, input);
    }
    return input;
  };
}
