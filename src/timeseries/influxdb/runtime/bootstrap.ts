import { createHash } from 'node:crypto';

/**
 * The InfluxDB 2 side of the store's bootstrap (handler-side, bundled into the bootstrap function): with the
 * admin's credentials, find the organization and the bucket the instance was created with, set the bucket's
 * retention, make sure a write token and a read token (each on that bucket only) exist and are the values of
 * their secrets, and map the 1.x database and retention policy to the bucket (DBRP), so the 1.x `/write` and
 * `/query` endpoints serve it. Idempotent: a second run changes nothing that is already right. Never logs or
 * returns a token or the password.
 * @internal
 */

/** Where a token lives and what marks its authorization as the store's. @internal */
export interface TokenSpec {
  /** ARN of the Secrets Manager secret whose SecretString is the token. */
  readonly secretArn: string;
  /** Description of the authorization: the store finds its own tokens by it. */
  readonly description: string;
}

/** What the bootstrap sets up (the custom resource's properties). @internal */
export interface BootstrapConfig {
  /** Base URL of the InfluxDB HTTP API, without a trailing slash. */
  readonly url: string;
  readonly organization: string;
  readonly bucket: string;
  /** 1.x database name of the DBRP mapping. */
  readonly database: string;
  /** 1.x retention policy name of the DBRP mapping (the default one of the database). */
  readonly retentionPolicy: string;
  /** Bucket retention in seconds; 0 keeps points forever. */
  readonly retentionSeconds: number;
  readonly writeToken: TokenSpec;
  readonly readToken: TokenSpec;
}

/** The admin user the instance was created with. @internal */
export interface AdminCredentials {
  readonly username: string;
  readonly password: string;
}

/** Reads and writes the token secrets (Secrets Manager in the function, a stand-in in tests). @internal */
export interface SecretStore {
  get(secretArn: string): Promise<string | undefined>;
  put(secretArn: string, value: string): Promise<void>;
}

/** What the bootstrap found or did (ids and outcomes only: never a token). @internal */
export interface BootstrapResult {
  readonly organizationId: string;
  readonly bucketId: string;
  readonly dbrpId: string;
  readonly retentionChanged: boolean;
  readonly writeToken: 'kept' | 'created';
  readonly readToken: 'kept' | 'created';
  readonly dbrp: 'kept' | 'created' | 'updated';
  /** Stale authorizations of the store that were deleted (ids). */
  readonly deletedAuthorizations: string[];
}

/** An InfluxDB API call failed: the operation and HTTP status, and InfluxDB's error code (never a body that could echo a secret). @internal */
export class InfluxDbApiError extends Error {
  constructor(public readonly operation: string, public readonly status: number, code?: string) {
    super(`InfluxDB ${operation} failed: HTTP ${status}${code ? ` (${code})` : ''}`);
    this.name = 'InfluxDbApiError';
  }
}

/** The instance refused the admin's credentials at sign-in. @internal */
export class AdminCredentialsRefusedError extends Error {
  constructor(status: number) {
    super(`InfluxDB refused the admin credentials from the admin secret (sign-in answered HTTP ${status}): ` +
      'the secret no longer holds the password the instance was created with, or the user was changed in InfluxDB');
    this.name = 'InfluxDbAdminCredentialsRefused';
  }
}

/** The organization or the bucket the instance was created with is not there. @internal */
export class InfluxDbNotFoundError extends Error {
  constructor(kind: 'organization' | 'bucket', name: string) {
    super(`InfluxDB ${kind} '${name}' not found: the instance was created with another ${kind}, or it was deleted`);
    this.name = 'InfluxDbNotFound';
  }
}

type Fetch = typeof fetch;

interface Permission {
  readonly action: 'read' | 'write';
  readonly resource: { readonly type: string; readonly id?: string; readonly orgID?: string };
}
interface Authorization {
  readonly id: string;
  readonly token?: string;
  readonly status?: string;
  readonly description?: string;
  readonly permissions?: Permission[];
}
interface Dbrp {
  readonly id: string;
  readonly bucketID: string;
  readonly database: string;
  readonly retention_policy: string;
  readonly default?: boolean;
}

/** Runs the bootstrap against the instance at `config.url`. @internal */
export async function bootstrap(
  config: BootstrapConfig, admin: AdminCredentials, secrets: SecretStore, fetchFn: Fetch = fetch,
): Promise<BootstrapResult> {
  const api = await InfluxApi.signIn(config.url, admin, fetchFn);
  try {
    const orgs = await api.json<{ orgs?: Array<{ id: string; name: string }> }>(
      'find organization', 'GET', `/api/v2/orgs?org=${q(config.organization)}`, undefined, [404]);
    const org = orgs?.orgs?.find((o) => o.name === config.organization);
    if (!org) throw new InfluxDbNotFoundError('organization', config.organization);
    const buckets = await api.json<{ buckets?: Array<{ id: string; name: string; retentionRules?: Array<{ everySeconds?: number }> }> }>(
      'find bucket', 'GET', `/api/v2/buckets?orgID=${q(org.id)}&name=${q(config.bucket)}`, undefined, [404]);
    const bucket = buckets?.buckets?.find((b) => b.name === config.bucket);
    if (!bucket) throw new InfluxDbNotFoundError('bucket', config.bucket);

    // InfluxDB lists an infinite retention as no rule or a rule of 0 seconds.
    const current = bucket.retentionRules?.[0]?.everySeconds ?? 0;
    const retentionChanged = current !== config.retentionSeconds;
    if (retentionChanged) {
      const retentionRules = config.retentionSeconds > 0 ? [{ type: 'expire', everySeconds: config.retentionSeconds }] : [];
      await api.json('set bucket retention', 'PATCH', `/api/v2/buckets/${q(bucket.id)}`, { retentionRules });
    }

    const authorizations = (await api.json<{ authorizations?: Authorization[] }>('list authorizations', 'GET', `/api/v2/authorizations?orgID=${q(org.id)}`))
      ?.authorizations ?? [];
    const deleted: string[] = [];
    const tokenOutcome = async (action: 'write' | 'read', spec: TokenSpec): Promise<'kept' | 'created'> => {
      const permissions: Permission[] = [{ action, resource: { type: 'buckets', id: bucket.id, orgID: org.id } }];
      const ours = authorizations.filter((a) => a.description === spec.description || a.description?.startsWith(`${spec.description} #`));
      const stored = await secrets.get(spec.secretArn);
      // InfluxDB may list tokens hashed (the default from OSS 2.9): the fingerprint in the description still matches.
      const holds = (a: Authorization) => stored !== undefined && (a.token === stored || a.description === fingerprinted(spec.description, stored));
      const keep = ours.find((a) => holds(a) && a.status !== 'inactive' && samePermissions(a.permissions, permissions));
      let outcome: 'kept' | 'created' = 'kept';
      if (!keep) {
        const created = await api.json<Authorization>(`create ${action} token`, 'POST', '/api/v2/authorizations', {
          orgID: org.id, description: spec.description, status: 'active', permissions,
        });
        if (!created?.token) throw new InfluxDbApiError(`create ${action} token`, 201, 'no token in the response');
        await api.json(`label ${action} token`, 'PATCH', `/api/v2/authorizations/${q(created.id)}`, { description: fingerprinted(spec.description, created.token) });
        // The secret before any deletion: a failure after this leaves the new token in use and the old ones for the next run.
        await secrets.put(spec.secretArn, created.token);
        outcome = 'created';
      }
      for (const stale of ours.filter((a) => a.id !== keep?.id)) {
        await api.json(`delete stale ${action} token`, 'DELETE', `/api/v2/authorizations/${q(stale.id)}`, undefined, [404]);
        deleted.push(stale.id);
      }
      return outcome;
    };
    const writeToken = await tokenOutcome('write', config.writeToken);
    const readToken = await tokenOutcome('read', config.readToken);

    const [dbrpId, dbrp] = await ensureDbrp(api, org.id, bucket.id, config);
    return { organizationId: org.id, bucketId: bucket.id, dbrpId, retentionChanged, writeToken, readToken, dbrp, deletedAuthorizations: deleted };
  } finally {
    await api.signOut();
  }
}

/** The mapping of (database, retention policy) to the bucket, as the default policy of the database. */
async function ensureDbrp(api: InfluxApi, orgId: string, bucketId: string, config: BootstrapConfig): Promise<[string, 'kept' | 'created' | 'updated']> {
  const found = (await api.json<{ content?: Dbrp[] }>('list DBRP mappings', 'GET', `/api/v2/dbrps?orgID=${q(orgId)}&db=${q(config.database)}`))?.content ?? [];
  const mine = found.find((d) => d.bucketID === bucketId && d.retention_policy === config.retentionPolicy);
  if (mine) {
    if (mine.default) return [mine.id, 'kept'];
    await api.json('make the DBRP mapping the default', 'PATCH', `/api/v2/dbrps/${q(mine.id)}?orgID=${q(orgId)}`, { default: true });
    return [mine.id, 'updated'];
  }
  // The same database and policy mapped to another bucket would shadow ours: a mapping's bucket cannot be changed.
  for (const other of found.filter((d) => d.retention_policy === config.retentionPolicy)) {
    await api.json('delete the DBRP mapping to another bucket', 'DELETE', `/api/v2/dbrps/${q(other.id)}?orgID=${q(orgId)}`, undefined, [404]);
  }
  const created = await api.json<{ id?: string; content?: Dbrp }>('create DBRP mapping', 'POST', '/api/v2/dbrps', {
    orgID: orgId, bucketID: bucketId, database: config.database, retention_policy: config.retentionPolicy, default: true,
  });
  return [created?.id ?? created?.content?.id ?? '', 'created'];
}

/**
 * The description of a store token: its base, then the first 16 hex digits of the token's SHA-256 (which identify the
 * token without revealing it), so the bootstrap recognises the token its secret holds even when InfluxDB hides tokens.
 */
function fingerprinted(description: string, token: string): string {
  return `${description} #${createHash('sha256').update(token).digest('hex').slice(0, 16)}`;
}

function samePermissions(actual: Permission[] | undefined, expected: Permission[]): boolean {
  const key = (p: Permission) => `${p.action}:${p.resource.type}:${p.resource.id ?? ''}:${p.resource.orgID ?? ''}`;
  return !!actual && actual.length === expected.length && actual.map(key).sort().join() === expected.map(key).sort().join();
}

const q = encodeURIComponent;

/** An admin session (the `influxdb-oss-session` cookie from `/api/v2/signin`). */
class InfluxApi {
  static async signIn(url: string, admin: AdminCredentials, fetchFn: Fetch): Promise<InfluxApi> {
    const basic = Buffer.from(`${admin.username}:${admin.password}`).toString('base64');
    const response = await fetchFn(`${url}/api/v2/signin`, { method: 'POST', headers: { authorization: `Basic ${basic}` } });
    await response.arrayBuffer();
    if (response.status === 401 || response.status === 403) throw new AdminCredentialsRefusedError(response.status);
    if (!response.ok) throw new InfluxDbApiError('sign in', response.status);
    const cookie = response.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    if (!cookie) throw new InfluxDbApiError('sign in', response.status, 'no session cookie');
    return new InfluxApi(url, cookie, fetchFn);
  }

  private constructor(private readonly url: string, private readonly cookie: string, private readonly fetchFn: Fetch) {}

  /** Calls the API; statuses in `absent` answer undefined, any other non-2xx throws. */
  async json<T>(operation: string, method: string, path: string, body?: unknown, absent: number[] = []): Promise<T | undefined> {
    const headers: Record<string, string> = { cookie: this.cookie, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await this.fetchFn(`${this.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    if (absent.includes(response.status)) return undefined;
    if (!response.ok) {
      if (response.status === 401) throw new AdminCredentialsRefusedError(response.status);
      throw new InfluxDbApiError(operation, response.status, errorCode(text));
    }
    return text ? JSON.parse(text) as T : undefined;
  }

  /** Ends the session; a failure here changes nothing the bootstrap did. */
  async signOut(): Promise<void> {
    try {
      const response = await this.fetchFn(`${this.url}/api/v2/signout`, { method: 'POST', headers: { cookie: this.cookie } });
      await response.arrayBuffer();
    } catch {
      // the session expires on its own
    }
  }
}

/** InfluxDB's error `code` (e.g. `conflict`, `not found`): its message can quote the request, so it is left out. */
function errorCode(text: string): string | undefined {
  try {
    const code = (JSON.parse(text) as { code?: unknown }).code;
    return typeof code === 'string' ? code.slice(0, 64) : undefined;
  } catch {
    return undefined;
  }
}
