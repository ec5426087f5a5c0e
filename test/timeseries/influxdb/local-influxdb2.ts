import { randomBytes } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { LocalHttpServer, withBody } from '../../local-http';

/**
 * The few InfluxDB 2 HTTP API endpoints the store's bootstrap calls, in memory, as InfluxDB OSS 2.7 answers them:
 * `/api/v2/signin` (Basic auth, a session cookie), `/signout`, `/orgs`, `/buckets` (GET, PATCH), `/authorizations`
 * (GET, POST, DELETE, tokens listed as OSS lists them), `/dbrps` (GET, POST, PATCH, DELETE). Every call but sign-in
 * needs the session cookie; errors are `{ code, message }` with InfluxDB's codes. The data endpoints the loader and
 * the query function call (`/write`, `/api/v2/write`, `/query`) take an API token and check its permissions, and a
 * write is all or nothing (see `data`).
 */
export interface Authorization {
  id: string;
  token: string;
  status: 'active' | 'inactive';
  description: string;
  orgID: string;
  permissions: Array<{ action: string; resource: { type: string; id?: string; orgID?: string } }>;
}
export interface Dbrp {
  id: string;
  orgID: string;
  bucketID: string;
  database: string;
  retention_policy: string;
  default: boolean;
}

/**
 * Why a line-protocol line cannot be parsed (the syntax InfluxDB 2 accepts: measurement, tags, fields of float, `i`
 * integer, `u` unsigned, boolean or quoted string, an optional int64 nanosecond timestamp), or undefined.
 */
export function lineProblem(line: string): string | undefined {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '\\' && i + 1 < line.length) {
      current += c + line[++i];
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (c === ' ' && !quoted) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  if (quoted) return 'unbalanced quotes';
  if (parts.length < 2 || !parts[0] || parts[0].startsWith(',')) return 'missing measurement';
  if (parts.length > 3) return 'invalid field format';
  if (!parts[1]) return 'missing fields';
  for (const field of parts[1].split(/(?<!\\),(?=(?:[^"]*"[^"]*")*[^"]*$)/)) {
    const at = field.search(/(?<!\\)=/);
    if (at <= 0) return 'missing field value';
    const value = field.slice(at + 1);
    const ok = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value) || /^-?\d+i$/.test(value) || /^\d+u$/.test(value)
      || /^(t|T|true|True|TRUE|f|F|false|False|FALSE)$/.test(value) || /^"(?:[^"\\]|\\.)*"$/.test(value);
    if (!ok) return 'invalid number';
  }
  if (parts.length === 3) {
    if (!/^-?\d+$/.test(parts[2])) return 'bad timestamp';
    const ns = BigInt(parts[2]);
    if (ns < -9223372036854775806n || ns > 9223372036854775806n) return 'bad timestamp';
  }
  return undefined;
}

export class LocalInfluxDb2 {
  public username = 'onsadmin';
  public password = 'Adm1nPassw0rdFromTheSecret';
  public readonly org = { id: '0a1b2c3d4e5f6071', name: 'ons' };
  public readonly buckets = [{ id: 'b1b2b3b4b5b6b7b8', name: 'ons_data_platform', orgID: this.org.id, retentionRules: [] as Array<{ type: string; everySeconds: number }> }];
  public readonly authorizations: Authorization[] = [];
  public readonly dbrps: Dbrp[] = [];
  /** Tokens stored hashed (the OSS 2.9 default): listings carry no token values, only creation answers one. */
  public hashedTokens = false;
  /** Lines written, per bucket id. */
  public readonly points = new Map<string, string[]>();
  /** Every request: method and path with query. */
  public readonly requests: string[] = [];
  private readonly sessions = new Set<string>();
  private readonly server = new LocalHttpServer(withBody((req, res, raw) => this.handle(req, res, raw)));
  private nextId = 1;
  /**
   * Lines this server cannot parse besides syntax errors (a stricter parser than the writer's encoder, a limit): the
   * reason, or undefined.
   */
  public unparsable: (line: string) => string | undefined = () => undefined;

  start(): Promise<string> {
    return this.server.start();
  }

  close(): Promise<void> {
    return this.server.close();
  }

  /** Requests that changed something (not GET, sign-in or sign-out). */
  changes(): string[] {
    return this.requests.filter((r) => !r.startsWith('GET ') && !r.includes('/signin') && !r.includes('/signout'));
  }

  id(): string {
    return (this.nextId++).toString(16).padStart(16, '0');
  }

  private handle(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }), ...headers });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    const fail = (status: number, code: string, message: string) => send(status, { code, message });
    if (url.pathname === '/write' || url.pathname === '/api/v2/write' || url.pathname === '/query') return this.data(req, url, raw, send, fail);
    let body: any = {};
    try {
      body = raw.length ? JSON.parse(raw.toString('utf8')) : {};
    } catch {
      return fail(400, 'invalid', 'malformed JSON');
    }
    const path = url.pathname;
    if (req.method === 'POST' && path === '/api/v2/signin') {
      const basic = /^Basic (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
      const [user, ...rest] = Buffer.from(basic ?? '', 'base64').toString('utf8').split(':');
      if (user !== this.username || rest.join(':') !== this.password) return fail(401, 'unauthorized', 'Unauthorized');
      const session = randomBytes(16).toString('base64url');
      this.sessions.add(session);
      return send(204, undefined, { 'set-cookie': `influxdb-oss-session=${session}; Path=/api/; Expires=Thu, 01 Jan 2099 00:00:00 GMT; HttpOnly` });
    }
    const session = /influxdb-oss-session=([^;]+)/.exec(String(req.headers.cookie ?? ''))?.[1];
    if (!session || !this.sessions.has(session)) return fail(401, 'unauthorized', 'unauthorized access');
    if (req.method === 'POST' && path === '/api/v2/signout') {
      this.sessions.delete(session);
      return send(204);
    }
    if (req.method === 'GET' && path === '/api/v2/orgs') {
      const name = url.searchParams.get('org');
      if (name && name !== this.org.name) return fail(404, 'not found', `organization name "${name}" not found`);
      return send(200, { orgs: [this.org] });
    }
    if (req.method === 'GET' && path === '/api/v2/buckets') {
      const found = this.buckets.filter((b) => b.orgID === url.searchParams.get('orgID') && (!url.searchParams.get('name') || b.name === url.searchParams.get('name')));
      if (url.searchParams.get('name') && found.length === 0) return fail(404, 'not found', `bucket "${url.searchParams.get('name')}" not found`);
      return send(200, { buckets: found });
    }
    const bucketMatch = /^\/api\/v2\/buckets\/([^/]+)$/.exec(path);
    if (req.method === 'PATCH' && bucketMatch) {
      const bucket = this.buckets.find((b) => b.id === bucketMatch[1]);
      if (!bucket) return fail(404, 'not found', 'bucket not found');
      if (Array.isArray(body.retentionRules)) bucket.retentionRules = body.retentionRules;
      return send(200, bucket);
    }
    if (req.method === 'GET' && path === '/api/v2/authorizations') {
      const listed = this.authorizations.filter((a) => a.orgID === url.searchParams.get('orgID'));
      return send(200, { authorizations: this.hashedTokens ? listed.map(({ token: _hidden, ...rest }) => rest) : listed });
    }
    if (req.method === 'POST' && path === '/api/v2/authorizations') {
      if (body.orgID !== this.org.id || !Array.isArray(body.permissions) || body.permissions.length === 0) return fail(400, 'invalid', 'invalid authorization');
      const auth: Authorization = {
        id: this.id(),
        token: randomBytes(48).toString('base64url'),
        status: body.status ?? 'active',
        description: body.description ?? '',
        orgID: body.orgID,
        permissions: body.permissions,
      };
      this.authorizations.push(auth);
      return send(201, auth);
    }
    const authMatch = /^\/api\/v2\/authorizations\/([^/]+)$/.exec(path);
    if (req.method === 'PATCH' && authMatch) {
      const auth = this.authorizations.find((a) => a.id === authMatch[1]);
      if (!auth) return fail(404, 'not found', 'authorization not found');
      if (typeof body.description === 'string') auth.description = body.description;
      if (body.status === 'active' || body.status === 'inactive') auth.status = body.status;
      return send(200, this.hashedTokens ? { ...auth, token: undefined } : auth);
    }
    if (req.method === 'DELETE' && authMatch) {
      const index = this.authorizations.findIndex((a) => a.id === authMatch[1]);
      if (index < 0) return fail(404, 'not found', 'authorization not found');
      this.authorizations.splice(index, 1);
      return send(204);
    }
    if (req.method === 'GET' && path === '/api/v2/dbrps') {
      if (!url.searchParams.get('orgID') && !url.searchParams.get('org')) return fail(400, 'invalid', 'either "org" or "orgID" must be provided');
      const db = url.searchParams.get('db');
      return send(200, { content: this.dbrps.filter((d) => d.orgID === url.searchParams.get('orgID') && (!db || d.database === db)) });
    }
    if (req.method === 'POST' && path === '/api/v2/dbrps') {
      if (this.dbrps.some((d) => d.orgID === body.orgID && d.database === body.database && d.retention_policy === body.retention_policy)) {
        return fail(409, 'conflict', 'another DBRP mapping with same orgID, database, and retention policy exists');
      }
      if (!this.buckets.some((b) => b.id === body.bucketID)) return fail(404, 'not found', 'bucket not found');
      const dbrp: Dbrp = {
        id: this.id(),
        orgID: body.orgID,
        bucketID: body.bucketID,
        database: body.database,
        retention_policy: body.retention_policy,
        default: !!body.default,
      };
      this.dbrps.push(dbrp);
      return send(201, dbrp);
    }
    const dbrpMatch = /^\/api\/v2\/dbrps\/([^/]+)$/.exec(path);
    if (dbrpMatch && (req.method === 'PATCH' || req.method === 'DELETE')) {
      const index = this.dbrps.findIndex((d) => d.id === dbrpMatch[1]);
      if (index < 0) return fail(404, 'not found', 'unable to find DBRP');
      if (req.method === 'DELETE') {
        this.dbrps.splice(index, 1);
        return send(204);
      }
      if (body.default !== undefined) this.dbrps[index].default = body.default;
      return send(200, { content: this.dbrps[index] });
    }
    return fail(404, 'not found', `path not found: ${req.method} ${path}`);
  }

  /**
   * The data endpoints, with the API token of the request's `Authorization: Token` header, as InfluxDB OSS 2.x answers
   * them ("Troubleshoot issues writing data", https://docs.influxdata.com/influxdb/v2/write-data/troubleshoot/):
   * "The first rejected point in a batch causes InfluxDB to reject the entire batch"; 400: "The response body contains
   * the first malformed line in the data. All request data was rejected and not written"; 401 when the token is missing
   * or "does not have sufficient permissions to write to the organization and the bucket". Reads need a `read`
   * permission on the bucket the same way (401). `/write` and `/query` (1.x compatibility) find the bucket through the
   * DBRP mapping of `db` and `rp`; `/api/v2/write` by `org` and `bucket` names. `/query` runs no InfluxQL: an allowed
   * query answers one empty result per statement.
   */
  private data(
    req: IncomingMessage, url: URL, raw: Buffer,
    send: (status: number, body?: unknown) => void, fail: (status: number, code: string, message: string) => void,
  ): void {
    const token = /^Token (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    const auth = this.authorizations.find((a) => a.token === token && a.status === 'active');
    if (!auth) return fail(401, 'unauthorized', 'unauthorized access');
    const p = url.searchParams;
    const bucket = url.pathname === '/api/v2/write'
      ? this.buckets.find((b) => b.name === p.get('bucket') && (p.get('org') === this.org.name || p.get('orgID') === this.org.id))
      : this.buckets.find((b) => b.id === this.dbrps.find((d) => d.database === p.get('db') && (p.get('rp') ? d.retention_policy === p.get('rp') : d.default))?.bucketID);
    const action = url.pathname === '/query' ? 'read' : 'write';
    const allowed = bucket && auth.permissions.some((x) => x.action === action && x.resource.type === 'buckets'
      && (x.resource.id === undefined || x.resource.id === bucket.id) && (x.resource.orgID === undefined || x.resource.orgID === bucket.orgID));
    if (!allowed) return fail(401, 'unauthorized', `insufficient permissions to ${action}`);
    if (action === 'read') {
      const statements = (p.get('q') ?? '').split(';').filter((q) => q.trim());
      return send(200, { results: statements.map((_, i) => ({ statement_id: i })) });
    }
    if (req.method !== 'POST') return fail(405, 'method not allowed', 'method not allowed');
    const text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
    const lines = text.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    for (const line of lines) {
      const problem = lineProblem(line) ?? this.unparsable(line);
      if (problem) return fail(400, 'invalid', `unable to parse '${line}': ${problem}`);
    }
    const stored = this.points.get(bucket!.id) ?? [];
    stored.push(...lines);
    this.points.set(bucket!.id, stored);
    return send(204);
  }
}

