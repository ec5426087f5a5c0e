import { TimestreamQueryClient } from '@aws-sdk/client-timestream-query';
import type { TimestreamWriteClient } from '@aws-sdk/client-timestream-write';
import { RequestError } from '../../../src/runtime/http';
import { LoadErrors } from '../../../src/timeseries/contract';
import { parseRequest } from '../../../src/timeseries/runtime/request';
import { buildSql, runQuery } from '../../../src/timeseries/timestream/runtime/query';
import { createWriteClient } from '../../../src/timeseries/timestream/runtime/writer';
import { SimulatedClock } from '../../runtime/simulated-clock';
import { REFERENCE } from '../load-contract';
import { cargaEnergia2013 } from '../ons-records';
import { LocalTimestream } from './local-timestream';
import { writeAll } from './write-all';

/**
 * Endpoint discovery as the SDK does it on AWS: the production clients without an endpoint override, so every call
 * first asks DescribeEndpoints (in the SDK's build step, before the call's own retries), with their requests delivered to the
 * local Timestream (which answers DescribeEndpoints as the service does). A discovery failure must be classified by
 * what DescribeEndpoints got: throttling and 5xx again later, an access error at once.
 */

const ts = new LocalTimestream();
let port: number;
const records = cargaEnergia2013();
const POINTS = REFERENCE['CARGA_ENERGIA_2013.csv'].measures.val_cargaenergiamwmed.count;

const saved = { ...process.env };
beforeAll(async () => {
  Object.assign(process.env, { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
  port = Number(new URL(await ts.start()).port);
});
afterAll(async () => {
  process.env = saved;
  await ts.close();
});
beforeEach(() => ts.reset());

/** Delivers every request of the client (DescribeEndpoints and the discovered-endpoint calls) to the local server. */
function toLocal<C extends TimestreamWriteClient | TimestreamQueryClient>(client: C): C {
  client.middlewareStack.add((next) => async (args) => {
    const request = args.request as { protocol: string; hostname: string; port?: number; headers: Record<string, string> };
    Object.assign(request, { protocol: 'http:', hostname: '127.0.0.1', port });
    request.headers.host = `127.0.0.1:${port}`;
    return next(args);
  }, { step: 'finalizeRequest', priority: 'high', name: 'toLocalTimestream' });
  return client;
}

function load() {
  const options = { maxInFlight: 3, baseDelayMs: 100, maxAttempts: 8, clock: new SimulatedClock() };
  return writeAll(toLocal(createWriteClient(undefined, 3)), records, options);
}

describe('the loader', () => {
  test('without an endpoint override it discovers the endpoint first (DescribeEndpoints) and loads the real file', async () => {
    const { stats, error } = await load();
    expect(error).toBeUndefined();
    expect(stats).toMatchObject({ records: POINTS, rejected: 0 });
    expect(ts.of('DescribeEndpoints').length).toBeGreaterThanOrEqual(1);
    expect(ts.store.size).toBe(POINTS);
  });

  test('DescribeEndpoints throttled, then a 500 and an InternalServerException: retried, and the load completes', async () => {
    ts.failNext('ThrottlingException', 2, 'DescribeEndpoints');
    ts.failNext('status500', 1, 'DescribeEndpoints');
    ts.failNext('InternalServerException', 1, 'DescribeEndpoints');
    const { stats, error } = await load();
    expect(error).toBeUndefined();
    expect(stats).toMatchObject({ records: POINTS, rejected: 0 });
    expect(stats!.retries).toBeGreaterThanOrEqual(4);
    expect(ts.of('DescribeEndpoints').map((r) => r.outcome).slice(0, 5))
      .toEqual(['ThrottlingException', 'ThrottlingException', 'status500', 'InternalServerException', 'ok']);
    expect(ts.store.size).toBe(POINTS);
  });

  test('DescribeEndpoints denied: refused at once, the message says it was endpoint discovery', async () => {
    ts.failNext('AccessDeniedException', 1, 'DescribeEndpoints');
    const { error } = await load();
    expect(error).toMatchObject({
      name: LoadErrors.WRITE_REFUSED,
      message: 'WriteRecords to carga_energia refused: endpoint discovery (DescribeEndpoints) failed: AccessDeniedException: injected AccessDeniedException',
    });
    expect(ts.of('DescribeEndpoints')).toHaveLength(1);
    expect(ts.of('WriteRecords')).toHaveLength(0);
  });
});

describe('the query handler', () => {
  const config = { tables: { carga_energia: 'carga_energia' }, maxPoints: 100, database: 'ons_test' };
  const query = () => parseRequest('carga_energia', { from: '2013-01-01', to: '2013-02-01' }, null, config, (q) => buildSql(q, config.database));

  test.each([
    ['ThrottlingException', 'ThrottlingException' as const],
    ['a 500', 'status500' as const],
  ])('DescribeEndpoints answering %s is 503 ServiceUnavailable (retry later), not a 500', async (_name, fault) => {
    const client = toLocal(new TimestreamQueryClient({}));
    try {
      // The query client's own SDK attempts (3 by default) at DescribeEndpoints all fail.
      ts.failNext(fault, 3, 'DescribeEndpoints');
      const failure = await runQuery(client, query(), config).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(RequestError);
      expect(failure).toMatchObject({ status: 503, code: 'ServiceUnavailable' });
      expect(ts.of('Query')).toHaveLength(0);
      // The next call discovers again and is answered.
      await expect(runQuery(client, query(), config)).resolves.toMatchObject({ dataset: 'carga_energia', points: [] });
      expect(ts.of('DescribeEndpoints').map((r) => r.outcome)).toEqual([fault, fault, fault, 'ok']);
    } finally {
      client.destroy();
    }
  });
});
