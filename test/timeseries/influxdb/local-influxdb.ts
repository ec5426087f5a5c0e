import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { IncomingMessage, request, ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { InfluxDbEnv } from '../../../src/timeseries/contract';
import { LocalHttpServer, withBody } from '../../local-http';
import { LocalSecretsManager } from '../../local-secrets-manager';
// Plain JS shared with the test task's pre-flight check, so the line naming what to install is written once.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { requireTool } = require('../../../build-tools/check-tools') as { requireTool: (name: string) => void };

/**
 * A real InfluxDB 1.x server (Debian's `influxd`, installed by .ci/run) for the InfluxDB handler tests:
 * started per test file on free loopback ports with its own temporary directories, no reporting and
 * no authentication (a token is sent and ignored, as the 1.x API does), a database and a retention
 * policy created, and everything removed on `stop()`. Also: a proxy in front of it that records
 * requests and injects faults, and a local Secrets Manager that answers GetSecretValue.
 */

export const DATABASE = 'ons_test';
export const RETENTION_POLICY = 'ons_rp';
/** Shard groups of the retention policy: 7 days. */
export const SHARD_DURATION_MS = 7 * 24 * 3600 * 1000;

/** Start of the shard group holding `ms`: Go's Time.Truncate counts from 0001-01-01, a Monday (the epoch is 3 days after one). */
export function shardStart(ms: number): number {
  const monday = 4 * 24 * 3600 * 1000; // 1970-01-05
  return Math.floor((ms - monday) / SHARD_DURATION_MS) * SHARD_DURATION_MS + monday;
}

/** A free TCP port on 127.0.0.1 (influxd 1.x cannot listen on port 0 and say which port it got). */
async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface InfluxSeries {
  readonly name: string;
  readonly tags?: Record<string, string>;
  readonly columns: string[];
  readonly values: unknown[][];
}

export class LocalInfluxDb {
  public url = '';
  private process?: ChildProcess;
  private dir?: string;
  private exited?: Promise<void>;
  private log = '';

  async start(): Promise<string> {
    if (process.platform === 'win32') throw new Error('influxd is started as a POSIX process');
    // Missing influxd fails the suite with one line naming what to install, never a skip.
    requireTool('influxd');
    this.dir = mkdtempSync(join(tmpdir(), 'ons-influxd-'));
    const [http, rpc] = [await freePort(), await freePort()];
    const config = join(this.dir, 'influxdb.conf');
    writeFileSync(config, [
      'reporting-enabled = false',
      `bind-address = "127.0.0.1:${rpc}"`,
      '[meta]', `  dir = "${join(this.dir, 'meta')}"`, '  logging-enabled = false',
      '[data]', `  dir = "${join(this.dir, 'data')}"`, `  wal-dir = "${join(this.dir, 'wal')}"`, '  query-log-enabled = false',
      '[monitor]', '  store-enabled = false',
      '[http]', `  bind-address = "127.0.0.1:${http}"`, '  auth-enabled = false', '  log-enabled = false',
      '[continuous_queries]', '  enabled = false',
      '[subscriber]', '  enabled = false',
      '[retention]', '  enabled = false',
      '',
    ].join('\n'));
    const child = spawn('influxd', ['run', '-config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = child;
    child.stdout!.on('data', (c: Buffer) => (this.log = (this.log + c.toString()).slice(-4000)));
    child.stderr!.on('data', (c: Buffer) => (this.log = (this.log + c.toString()).slice(-4000)));
    let gone = false;
    this.exited = new Promise<void>((resolve) => child.on('exit', () => {
      gone = true;
      resolve();
    }));
    const spawnError = new Promise<never>((_, reject) => child.on('error', (e) => reject(new Error(`influxd did not start (is Debian's influxdb installed? .ci/run installs it): ${e.message}`))));
    this.url = `http://127.0.0.1:${http}`;
    // Ready when /ping answers; a server that exits instead fails the start with its log.
    for (;;) {
      if (gone) throw new Error(`influxd exited during start:\n${this.log}`);
      const status = await Promise.race([this.raw('GET', '/ping').then((r) => r.status, () => 0), spawnError]);
      if (status === 204) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await this.resetDatabase();
    return this.url;
  }

  /** Drops and re-creates the test database with its retention policy (7-day shards, kept forever). */
  async resetDatabase(): Promise<void> {
    await this.statement(`DROP DATABASE "${DATABASE}"`);
    await this.statement(`CREATE DATABASE "${DATABASE}" WITH DURATION INF SHARD DURATION 7d NAME "${RETENTION_POLICY}"`);
  }

  async stop(): Promise<void> {
    if (this.process && this.process.exitCode === null) {
      this.process.kill('SIGTERM');
      await this.exited;
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Line protocol written as is (ns precision); the status and the error text. */
  async write(lines: string): Promise<{ status: number; body: string }> {
    return this.raw('POST', `/write?db=${DATABASE}&rp=${RETENTION_POLICY}&precision=ns`, Buffer.from(lines, 'utf8'));
  }

  /** An InfluxQL statement (POST, so writes are allowed); throws on an error. */
  async statement(q: string): Promise<void> {
    const r = await this.raw('POST', `/query?${new URLSearchParams({ q })}`);
    if (r.status !== 200 || JSON.parse(r.body).results?.[0]?.error) throw new Error(`${q}: ${r.body}`);
  }

  /** The series an InfluxQL query returns (times in ms). */
  async query(q: string): Promise<InfluxSeries[]> {
    const r = await this.raw('GET', `/query?${new URLSearchParams({ db: DATABASE, rp: RETENTION_POLICY, epoch: 'ms', q })}`);
    const body = JSON.parse(r.body);
    if (r.status !== 200 || body.results?.[0]?.error) throw new Error(`${q}: ${r.body}`);
    return body.results[0].series ?? [];
  }

  private raw(method: string, path: string, body?: Buffer): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(`${this.url}${path}`, { method }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }
}

/** What the proxy answers instead of forwarding: a status (with headers), or no answer at all. */
export type ProxyFault = { status: number; headers?: Record<string, string>; body?: string } | 'stall';

export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  readonly params: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  /** The body as sent and, for gzip, inflated. */
  readonly body: Buffer;
  readonly text: string;
  readonly concurrent: number;
  outcome?: number | 'stall';
}

/**
 * A proxy in front of the server: records every request, injects faults into the next matching ones, and
 * can throttle writes for a span of (simulated) time as InfluxDB documents it: 429 "token is temporarily
 * over quota" or 503 "server is temporarily unavailable to accept writes", each with a Retry-After that
 * "describes when to try the write again" in seconds (InfluxDB v2 API, POST /write).
 */
export class InfluxProxy {
  public readonly requests: ProxiedRequest[] = [];
  public maxConcurrent = 0;
  /** The clock throttling spans are measured on (a test's simulated clock); the real one by default. */
  public clock: { now(): number } = { now: () => Date.now() };
  private throttling?: { until: number; status: 429 | 503; retryAfterSeconds?: number };
  private readonly server: LocalHttpServer;
  private faults: Array<{ fault: ProxyFault; path: string }> = [];
  private active = 0;
  private readonly stalled = new Set<ServerResponse>();

  constructor(private readonly target: () => string) {
    this.server = new LocalHttpServer(withBody((req, res, body) => this.handle(req, res, body)));
  }

  start(): Promise<string> {
    return this.server.start();
  }

  async close(): Promise<void> {
    for (const res of this.stalled) res.destroy();
    await this.server.close();
  }

  /** The next `count` requests to `path` (`/write`, `/query`) get `fault`. */
  failNext(fault: ProxyFault, count = 1, path = '/write'): void {
    for (let i = 0; i < count; i++) this.faults.push({ fault, path });
  }

  /** Every /write is answered `status` (with `Retry-After: retryAfterSeconds` when given) while `clock.now()` is before `until`. */
  throttleUntil(until: number, status: 429 | 503, retryAfterSeconds?: number): void {
    this.throttling = { until, status, retryAfterSeconds };
  }

  reset(): void {
    this.requests.length = 0;
    this.faults = [];
    this.throttling = undefined;
    this.maxConcurrent = 0;
  }

  of(path: string): ProxiedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString('utf8');
    this.active++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.active);
    const recorded: ProxiedRequest = { method: req.method ?? '', path: url.pathname, params: url.searchParams, headers: req.headers, body, text, concurrent: this.active };
    this.requests.push(recorded);
    const done = () => this.active--;
    const throttled = url.pathname === '/write' && this.throttling && this.clock.now() < this.throttling.until ? this.throttling : undefined;
    const i = throttled ? -1 : this.faults.findIndex((f) => f.path === url.pathname);
    if (throttled) {
      recorded.outcome = throttled.status;
      const message = throttled.status === 429 ? 'token is temporarily over quota' : 'server is temporarily unavailable to accept writes';
      const retryAfter: Record<string, string> = throttled.retryAfterSeconds === undefined ? {} : { 'retry-after': String(throttled.retryAfterSeconds) };
      res.writeHead(throttled.status, { 'content-type': 'application/json', ...retryAfter });
      res.end(JSON.stringify({ code: throttled.status === 429 ? 'too many requests' : 'unavailable', message }));
      done();
      return;
    }
    if (i >= 0) {
      const [{ fault }] = this.faults.splice(i, 1);
      recorded.outcome = fault === 'stall' ? 'stall' : fault.status;
      if (fault === 'stall') {
        // Never answered; the client gives up (its timeout) and the socket closes.
        this.stalled.add(res);
        res.on('close', () => {
          this.stalled.delete(res);
          done();
        });
        return;
      }
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      res.end(fault.body ?? JSON.stringify({ error: `injected ${fault.status}` }));
      done();
      return;
    }
    const { host: _host, ...headers } = req.headers;
    const upstream = request(`${this.target()}${req.url}`, { method: req.method, headers }, (r) => {
      recorded.outcome = r.statusCode;
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
      r.on('end', done);
    });
    upstream.on('error', (e) => {
      res.writeHead(502);
      res.end(e.message);
      done();
    });
    upstream.end(body);
  }
}

/** The server behind the proxy and the handlers' token in the local Secrets Manager: what the load and query contracts run against. */
export class LocalInfluxStack {
  readonly influx = new LocalInfluxDb();
  readonly proxy = new InfluxProxy(() => this.influx.url);
  readonly secrets = new LocalSecretsManager();

  constructor(private readonly secretArn: string, private readonly token: string) {}

  /** Starts the three; the environment that points a handler at them. */
  async start(): Promise<Record<string, string>> {
    await this.influx.start();
    this.secrets.secrets.set(this.secretArn, this.token);
    return {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: await this.secrets.start(),
      [InfluxDbEnv.URL]: await this.proxy.start(),
      [InfluxDbEnv.RETENTION_POLICY]: RETENTION_POLICY,
      [InfluxDbEnv.TOKEN_SECRET_ARN]: this.secretArn,
    };
  }

  async stop(): Promise<void> {
    await this.proxy.close();
    await this.secrets.close();
    await this.influx.stop();
  }
}
