import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { numberEnv, requiredEnv } from '../../../runtime/handler';
import { InfluxDbEnv, TimeSeriesEnv } from '../../contract';

/**
 * The InfluxDB 1.x-compatible HTTP API (`/write`, `/query`) that InfluxDB 2 and Timestream for
 * InfluxDB serve for a bucket with a DBRP mapping, over Node's own http/https (no client library),
 * with the API token from Secrets Manager. The token goes only into the Authorization header, never
 * into an error message or a log line.
 */

export interface InfluxConnection {
  /** Base URL, e.g. `https://<endpoint>:8086`. */
  readonly url: string;
  readonly database: string;
  readonly retentionPolicy: string;
  readonly tokenSecretArn: string;
  /** Per request: no response by then is a network error (retried by the loader, 503 for a query). */
  readonly timeoutMs: number;
}

export function connectionFromEnv(): InfluxConnection {
  return {
    url: requiredEnv(InfluxDbEnv.URL).replace(/\/+$/, ''),
    database: requiredEnv(TimeSeriesEnv.DATABASE),
    retentionPolicy: requiredEnv(InfluxDbEnv.RETENTION_POLICY),
    tokenSecretArn: requiredEnv(InfluxDbEnv.TOKEN_SECRET_ARN),
    timeoutMs: Math.max(1, numberEnv(InfluxDbEnv.REQUEST_TIMEOUT_MS, 30_000)),
  };
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** A request that got no response: refused, reset, timed out. */
export class NetworkError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'NetworkError';
  }
}

export type Send = (method: 'GET' | 'POST', pathAndQuery: string, headers: Record<string, string>, body?: Buffer) => Promise<HttpResponse>;

/** A sender with keep-alive sockets (at least `maxSockets`) that resolves with any HTTP status and rejects with NetworkError. */
export function createSender(connection: InfluxConnection, maxSockets: number): Send {
  const base = new URL(connection.url);
  const secure = base.protocol === 'https:';
  const agent = secure ? new HttpsAgent({ keepAlive: true, maxSockets }) : new HttpAgent({ keepAlive: true, maxSockets });
  const prefix = base.pathname.replace(/\/+$/, '');
  return (method, pathAndQuery, headers, body) => new Promise<HttpResponse>((resolve, reject) => {
    const options = {
      method,
      agent,
      hostname: base.hostname,
      port: base.port || (secure ? 443 : 80),
      path: `${prefix}${pathAndQuery}`,
      headers: { ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) },
    };
    const req = (secure ? httpsRequest : httpRequest)(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e: Error & { code?: string }) => reject(new NetworkError(`${method} ${base.host}: response broken: ${e.message}`, e.code ?? 'ECONNRESET')));
    });
    req.setTimeout(connection.timeoutMs, () => req.destroy(Object.assign(new Error(`no response in ${connection.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (e: Error & { code?: string }) => reject(new NetworkError(`${method} ${base.host}: ${e.message}`, e.code ?? 'ECONNRESET')));
    req.end(body);
  });
}

/** The API token (the secret's SecretString), cached by Powertools for five minutes. */
export async function token(connection: InfluxConnection): Promise<string> {
  const value = await getSecret<string>(connection.tokenSecretArn, { maxAge: 300 });
  if (typeof value !== 'string' || value.trim() === '') throw new Error(`the secret ${connection.tokenSecretArn} has no SecretString token`);
  return value.trim();
}

/** The query string of a 1.x-compatible request: db, rp and the rest, URL-encoded. */
export function params(connection: InfluxConnection, extra: Record<string, string>): string {
  return new URLSearchParams({ db: connection.database, rp: connection.retentionPolicy, ...extra }).toString();
}
