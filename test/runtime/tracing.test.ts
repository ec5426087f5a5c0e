import { spawn } from 'node:child_process';
import { createSocket, Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RouteResult } from '../../src/ingestion/contract';
import { StepInput } from '../../src/ledger/contract';
import { OperationsEnv } from '../../src/runtime/contract';
import { ASSETS, BUCKETS, EXECUTION, handlerEnv, LocalAws, putObject, restoreEnv, startLocalAws } from '../local-aws';
import { ONS_DATA } from '../ons-data';

/**
 * Powertools Tracer in a bundled handler (the router, in a child process, against s3rver and dynalite): with tracing on, every
 * AWS SDK call becomes an X-Ray subsegment of the invocation's trace, sent to the X-Ray daemon address over
 * UDP (a local socket here); with tracing off, nothing is sent.
 */

const TRACE_ROOT = '1-6744d3c0-5e1c2a3b4c5d6e7f80912345';
let aws: LocalAws;
let daemon: Socket;
let datagrams: string[];

beforeAll(async () => {
  aws = await startLocalAws();
  daemon = createSocket('udp4');
  daemon.on('message', (m) => datagrams.push(m.toString('utf8')));
  await new Promise<void>((resolve) => daemon.bind(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  restoreEnv();
  daemon?.close();
  await aws?.close();
});

beforeEach(() => {
  datagrams = [];
});

afterEach(() => {
  restoreEnv();
});

/** The Lambda environment the X-Ray SDK and Powertools Tracer read (a Lambda runtime sets these). */
function lambdaEnv(traceEnabled: boolean): Record<string, string> {
  return {
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
    LAMBDA_TASK_ROOT: tmpdir(),
    AWS_LAMBDA_FUNCTION_NAME: 'ons-router',
    _X_AMZN_TRACE_ID: `Root=${TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1`,
    AWS_XRAY_DAEMON_ADDRESS: `127.0.0.1:${daemon.address().port}`,
    AWS_XRAY_CONTEXT_MISSING: 'IGNORE_ERROR',
    [OperationsEnv.TRACE_ENABLED]: String(traceEnabled),
    [OperationsEnv.SERVICE_NAME]: 'ingestion',
  };
}

/** X-Ray documents received: each datagram is a JSON header line, then the (sub)segment. */
function documents(): Array<Record<string, any>> {
  return datagrams.map((d) => {
    const [header, body] = d.split('\n');
    expect(JSON.parse(header)).toEqual({ format: 'json', version: 1 });
    return JSON.parse(body);
  });
}

async function waitFor(check: () => boolean): Promise<void> {
  // UDP delivery on loopback is immediate but asynchronous: poll a few event-loop turns, no wall-clock bound.
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setImmediate(r));
}

/**
 * Runs the bundled router once in a child process: the X-Ray SDK patches Node's http modules and enables async
 * hooks for the life of its process, which would slow every later test file sharing this jest worker.
 */
async function routeOnce(traceEnabled: boolean): Promise<{ result: RouteResult; logs: Array<Record<string, any>> }> {
  const key = `incoming/trace-${traceEnabled}/CARGA_ENERGIA_2013.csv`;
  await putObject(aws, BUCKETS.raw, key, readFileSync(join(ONS_DATA, 'CARGA_ENERGIA_2013.csv')));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...handlerEnv(aws), ...lambdaEnv(traceEnabled) })) if (v !== undefined) env[k] = v;
  const event: StepInput = { source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION };
  const script = 'require(process.argv[1]).handler(JSON.parse(process.argv[2]))'
    + '.then((r) => console.log(JSON.stringify({ routeResult: r })), (e) => { console.error(e); process.exitCode = 1; })';
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, join(ASSETS, 'route.lambda', 'index.js'), JSON.stringify(event)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`router exited with ${code}`))));
  });
  const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
  return { result: lines.find((l) => l.routeResult)!.routeResult as RouteResult, logs: lines.filter((l) => !l.routeResult) };
}

test('tracing on: the S3 and DynamoDB calls are subsegments of the invocation\'s trace', async () => {
  const { result, logs } = await routeOnce(true);
  expect(result.action).toBe('process');
  await waitFor(() => documents().some((d) => d.namespace === 'aws' && d.aws?.operation === 'UpdateItem'));
  const calls = documents().filter((d) => d.namespace === 'aws');
  expect(calls.map((d) => `${d.name}.${d.aws.operation}`)).toEqual(expect.arrayContaining(['S3.HeadObject', 'DynamoDB.UpdateItem']));
  for (const call of calls) {
    expect(call.trace_id).toBe(TRACE_ROOT);
    expect(call.type).toBe('subsegment');
    expect(call.end_time).toBeGreaterThanOrEqual(call.start_time);
  }
  // The log lines carry the trace id, so a trace and its logs find each other.
  expect(logs.some((l) => l.xray_trace_id === TRACE_ROOT && l.executionArn === EXECUTION)).toBe(true);
});

test('tracing off (the stage\'s choice): the same invocation sends nothing to the daemon', async () => {
  const { result } = await routeOnce(false);
  expect(result.action).toBe('process');
  // Give any datagram the same chance to arrive as in the test above.
  await waitFor(() => false);
  expect(datagrams).toEqual([]);
});
