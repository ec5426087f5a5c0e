import { randomBytes } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { LocalHttpServer } from '../../local-http';

/**
 * The few InfluxDB 2 HTTP API endpoints the store's bootstrap calls, in memory, as InfluxDB OSS 2.7 answers them:
 * `/api/v2/signin` (Basic auth, a session cookie), `/signout`, `/orgs`, `/buckets` (GET, PATCH), `/authorizations`
 * (GET, POST, DELETE, tokens listed as OSS lists them), `/dbrps` (GET, POST, PATCH, DELETE). Every call but sign-in
 * needs the session cookie; errors are `{ code, message }` with InfluxDB's codes.
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

export class LocalInfluxDb2 {
  public username = 'onsadmin';
  public password = 'Adm1nPassw0rdFromTheSecret';
  public readonly org = { id: '0a1b2c3d4e5f6071', name: 'ons' };
  public readonly buckets = [{ id: 'b1b2b3b4b5b6b7b8', name: 'ons_data_platform', orgID: this.org.id, retentionRules: [] as Array<{ type: string; everySeconds: number }> }];
  public readonly authorizations: Authorization[] = [];
  public readonly dbrps: Dbrp[] = [];
  /** Tokens stored hashed (the OSS 2.9 default): listings carry no token values, only creation answers one. */
  public hashedTokens = false;
  /** Every request: method and path with query. */
  public readonly requests: string[] = [];
  private readonly sessions = new Set<string>();
  private readonly server = new LocalHttpServer((req, res) => this.handle(req, res));
  private nextId = 1;

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

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      this.requests.push(`${req.method} ${url.pathname}${url.search}`);
      const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }), ...headers });
        res.end(body === undefined ? undefined : JSON.stringify(body));
      };
      const fail = (status: number, code: string, message: string) => send(status, { code, message });
      let body: any = {};
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
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
    });
  }
}

