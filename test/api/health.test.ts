import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { AddressInfo, createServer, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { HealthEnv } from '../../src/api/health-contract';

/**
 * Runs the pre-bundled handler asset (what the function ships, @aws-sdk/client-s3 included) against a local s3rver.
 * The handler has no endpoint setting: the bundled SDK is pointed at the server through environment variables only.
 */

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
}) => S3rverInstance;
// s3rver ships no type declarations.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver') as S3rverConstructor;

type Handler = () => Promise<APIGatewayProxyResult>;

const ASSET = join(__dirname, '..', '..', 'assets', 'api', 'health.lambda', 'index.js');

/** Buckets that exist on the server. */
const BUCKETS = { raw: 'ons-health-raw', processed: 'ons-health-processed', failed: 'ons-health-failed' } as const;
type Layer = keyof typeof BUCKETS;
const LAYERS = Object.keys(BUCKETS) as Layer[];
const MISSING_BUCKET = 'ons-health-missing';
/** Every bucket name a test hands the handler; none may appear in a response body. */
const ALL_BUCKET_NAMES = [...Object.values(BUCKETS), MISSING_BUCKET];

const HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };
const NOT_SET = 'ONS_LAKE_BUCKETS is not set';
const NOT_AN_OBJECT = 'ONS_LAKE_BUCKETS must be a JSON object of layer to bucket name';

const savedEnv = { ...process.env };
let server: S3rverInstance;
let directory: string;
let endpoint: string;
let consoleError: jest.SpyInstance;

/** Puts process.env back exactly as it was before this file ran (same object, so modules keep seeing it). */
function restoreEnv() {
  for (const key of Object.keys(process.env)) {
    if (!(key in savedEnv)) delete process.env[key];
  }
  Object.assign(process.env, savedEnv);
}

/**
 * Sets the environment, then loads a fresh copy of the bundled handler: it creates its S3 client at module load,
 * and the SDK resolves (and memoizes) endpoint, region, credentials and retries from the environment of that client.
 */
function loadHandler(env: Record<string, string | undefined>): Handler {
  const base: Record<string, string | undefined> = {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    // Keep the machine's AWS setup out of the test.
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_ENDPOINT_URL: undefined,
    AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: undefined,
    AWS_MAX_ATTEMPTS: undefined,
    AWS_CONFIG_FILE: join(directory, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(directory, 'no-aws-credentials'),
    // Each fresh SDK copy would otherwise print its "will require node >=22" warning on Node 20.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    [HealthEnv.LAKE_BUCKETS]: JSON.stringify(BUCKETS),
    [HealthEnv.CHECK_TIMEOUT_MS]: undefined,
  };
  for (const [key, value] of Object.entries({ ...base, ...env })) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  let handler: Handler | undefined;
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    handler = (require(ASSET) as { handler: Handler }).handler;
  });
  return handler!;
}

/** Invokes the handler and checks what every response shares; returns the status code and the parsed body. */
async function invoke(handler: Handler) {
  const result = await handler();
  expect(result.headers).toEqual(HEADERS);
  for (const bucket of ALL_BUCKET_NAMES) expect(result.body).not.toContain(bucket);
  return { statusCode: result.statusCode, body: JSON.parse(result.body) as unknown };
}

/** The structured lines the handler wrote with console.error. */
function errorLogs(): unknown[] {
  return consoleError.mock.calls.map(([line]) => JSON.parse(String(line)));
}

function degraded(detail: Record<string, string>) {
  return { status: 'degraded', components: { lake: { status: 'down', detail } } };
}

/** A port on 127.0.0.1 that was just free (nothing listens on it). */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => probe.close((err) => (err ? reject(err) : resolve())));
  return port;
}

beforeAll(async () => {
  if (!existsSync(ASSET)) throw new Error(`${ASSET} is missing: run \`npx projen bundle\` first`);
  directory = mkdtempSync(join(tmpdir(), 's3rver-health-'));
  server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: Object.values(BUCKETS).map((name) => ({ name })),
  });
  const { port } = await server.run();
  endpoint = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  restoreEnv();
  await server?.close();
  if (directory) rmSync(directory, { recursive: true, force: true });
});

beforeEach(() => {
  consoleError = jest.spyOn(console, 'error').mockImplementation(() => undefined);
});

afterEach(() => {
  consoleError.mockRestore();
  restoreEnv();
});

describe('lake buckets on s3rver', () => {
  test('all three buckets exist: 200 ok, every layer up', async () => {
    const { statusCode, body } = await invoke(loadHandler({}));

    expect(statusCode).toBe(200);
    expect(body).toEqual({
      status: 'ok',
      components: { lake: { status: 'up', detail: { raw: 'up', processed: 'up', failed: 'up' } } },
    });
    expect(consoleError).not.toHaveBeenCalled();
  });

  test.each(LAYERS)('the %s bucket is missing: 503, that layer not found, the others up', async (missing) => {
    const handler = loadHandler({ [HealthEnv.LAKE_BUCKETS]: JSON.stringify({ ...BUCKETS, [missing]: MISSING_BUCKET }) });

    const { statusCode, body } = await invoke(handler);

    expect(statusCode).toBe(503);
    expect(body).toEqual(degraded({ ...{ raw: 'up', processed: 'up', failed: 'up' }, [missing]: 'not found' }));
    // The log names the bucket (the response does not).
    expect(errorLogs()).toEqual([{ level: 'ERROR', component: 'lake', layer: missing, bucket: MISSING_BUCKET, reason: 'not found' }]);
  });
});

describe('lake configuration', () => {
  test('ONS_LAKE_BUCKETS unset: 503 with the configuration reason', async () => {
    const { statusCode, body } = await invoke(loadHandler({ [HealthEnv.LAKE_BUCKETS]: undefined }));

    expect(statusCode).toBe(503);
    expect(body).toEqual(degraded({ configuration: NOT_SET }));
    expect(errorLogs()).toEqual([{ level: 'ERROR', component: 'lake', reason: NOT_SET }]);
  });

  test.each([
    ['invalid JSON', '{raw: ons-health-raw'],
    ['an empty object', '{}'],
    ['a non-string value', JSON.stringify({ ...BUCKETS, failed: 42 })],
    ['an empty-string value', JSON.stringify({ ...BUCKETS, failed: '' })],
    ['an array', JSON.stringify(Object.values(BUCKETS))],
    ['a JSON string', JSON.stringify(BUCKETS.raw)],
  ])('ONS_LAKE_BUCKETS is %s: 503, must be a JSON object', async (_, value) => {
    const { statusCode, body } = await invoke(loadHandler({ [HealthEnv.LAKE_BUCKETS]: value }));

    expect(statusCode).toBe(503);
    expect(body).toEqual(degraded({ configuration: NOT_AN_OBJECT }));
    expect(errorLogs()).toEqual([{ level: 'ERROR', component: 'lake', reason: NOT_AN_OBJECT }]);
  });
});

describe('S3 not answering', () => {
  // One attempt: the SDK otherwise retries connection errors with backoff, racing the check's own timeout.
  const noRetries = { AWS_MAX_ATTEMPTS: '1', [HealthEnv.CHECK_TIMEOUT_MS]: '200' };

  test('nothing listens on the endpoint: 503, every layer unreachable', async () => {
    const handler = loadHandler({ ...noRetries, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${await closedPort()}` });

    const { statusCode, body } = await invoke(handler);

    // Connection refused fails at once, well inside the timeout; the SDK surfaces it as a plain Error (ECONNREFUSED).
    expect(statusCode).toBe(503);
    expect(body).toEqual(degraded({ raw: 'unreachable (Error)', processed: 'unreachable (Error)', failed: 'unreachable (Error)' }));
    expect(errorLogs()).toEqual(expect.arrayContaining(LAYERS.map((layer) => (
      { level: 'ERROR', component: 'lake', layer, bucket: BUCKETS[layer], reason: 'unreachable (Error)' }))));
    expect(consoleError).toHaveBeenCalledTimes(3);
  });

  describe('the endpoint accepts connections but never answers', () => {
    let stalled: Server;
    const sockets = new Set<Socket>();

    beforeAll(async () => {
      stalled = createServer((socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    });

    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => stalled.close(() => resolve()));
    });

    test('503, every layer timed out (only the check timeout can end the request)', async () => {
      const { port } = stalled.address() as AddressInfo;
      const handler = loadHandler({ ...noRetries, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}` });

      const { statusCode, body } = await invoke(handler);

      expect(statusCode).toBe(503);
      expect(body).toEqual(degraded({ raw: 'timed out', processed: 'timed out', failed: 'timed out' }));
      expect(errorLogs()).toEqual(expect.arrayContaining(LAYERS.map((layer) => (
        { level: 'ERROR', component: 'lake', layer, bucket: BUCKETS[layer], reason: 'timed out' }))));
      expect(consoleError).toHaveBeenCalledTimes(3);
    });
  });
});
