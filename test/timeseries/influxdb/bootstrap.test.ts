import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { LocalInfluxDb2 } from './local-influxdb2';
import type { BootstrapProperties } from '../../../src/timeseries/influxdb/bootstrap.lambda';
import { LocalHttpServer, withBody } from '../../local-http';
import { LocalSecretsManager } from '../../local-secrets-manager';
import { CapturedOutput, captureOutput } from '../../runtime/output';

/**
 * The bundled bootstrap handler (what the custom resource's function ships) against a local InfluxDB 2 API, a local
 * Secrets Manager (the SDK pointed at it with AWS_ENDPOINT_URL_SECRETS_MANAGER) and a local stand-in for
 * CloudFormation's pre-signed response URL.
 */

type Handler = (event: CloudFormationCustomResourceEvent, context?: { awsRequestId: string; getRemainingTimeInMillis(): number }) => Promise<void>;
const ASSET = join(__dirname, '..', '..', '..', 'assets', 'timeseries', 'influxdb', 'bootstrap.lambda', 'index.js');

const ARN = (name: string) => `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`;
const ADMIN = ARN('influx-admin');
const WRITE = ARN('influx-write-token');
const READ = ARN('influx-read-token');
const PLACEHOLDER = 'GeneratedPlaceholderNotAToken32c';

interface CfnAnswer {
  Status: 'SUCCESS' | 'FAILED';
  PhysicalResourceId: string;
  Reason?: string;
  Data?: Record<string, string>;
  StackId: string;
  RequestId: string;
  LogicalResourceId: string;
}

const influx = new LocalInfluxDb2();
const secrets = new LocalSecretsManager();
const answers: Array<{ headers: Record<string, unknown>; body: CfnAnswer }> = [];
const cloudFormation = new LocalHttpServer(withBody((req, res, body) => {
  answers.push({ headers: { ...req.headers, method: req.method }, body: JSON.parse(body.toString('utf8')) });
  res.writeHead(200);
  res.end();
}));
const endpoints = { influx: '', secrets: '', cloudFormation: '' };
const savedEnv = { ...process.env };
let directory: string;
let output: CapturedOutput;
let handler: Handler;

function properties(overrides: Partial<BootstrapProperties> = {}): BootstrapProperties {
  return {
    Url: endpoints.influx,
    AdminSecretArn: ADMIN,
    Organization: 'ons',
    Bucket: 'ons_data_platform',
    Database: 'ons_data_platform_dev',
    RetentionPolicy: 'autogen',
    RetentionSeconds: '0',
    WriteTokenSecretArn: WRITE,
    WriteTokenDescription: 'ons-data-platform dev write ons_data_platform',
    ReadTokenSecretArn: READ,
    ReadTokenDescription: 'ons-data-platform dev read ons_data_platform',
    ...overrides,
  };
}

function event(requestType: 'Create' | 'Update' | 'Delete', props = properties(), physicalId = 'previous-id'): CloudFormationCustomResourceEvent {
  const base = {
    ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:bootstrap',
    ResponseURL: `${endpoints.cloudFormation}/cloudformation-custom-resource-response?X-Amz-Signature=abc`,
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/ons/1',
    RequestId: `request-${answers.length + 1}`,
    LogicalResourceId: 'TimeSeriesBootstrap',
    ResourceType: 'Custom::OnsInfluxDbBootstrap',
    ResourceProperties: { ServiceToken: 'x', ...props },
  };
  if (requestType === 'Create') return { ...base, RequestType: 'Create' } as CloudFormationCustomResourceEvent;
  if (requestType === 'Update') return { ...base, RequestType: 'Update', PhysicalResourceId: physicalId, OldResourceProperties: base.ResourceProperties } as CloudFormationCustomResourceEvent;
  return { ...base, RequestType: 'Delete', PhysicalResourceId: physicalId } as CloudFormationCustomResourceEvent;
}

async function run(e: CloudFormationCustomResourceEvent, remainingMs = 300_000): Promise<CfnAnswer> {
  const before = answers.length;
  await handler(e, { getRemainingTimeInMillis: () => remainingMs, awsRequestId: 'lambda-request' });
  expect(answers).toHaveLength(before + 1);
  const answer = answers[answers.length - 1];
  // The pre-signed URL is signed without a content type: the answer is a PUT that sends none.
  expect(answer.headers.method).toBe('PUT');
  expect(answer.headers['content-type'] ?? '').toBe('');
  expect(answer.body).toMatchObject({ StackId: e.StackId, RequestId: e.RequestId, LogicalResourceId: e.LogicalResourceId });
  return answer.body;
}

/** Everything the handler wrote and answered, to search for secrets. */
function everythingVisible(): string {
  return JSON.stringify([output.log.mock.calls, output.error.mock.calls, output.other, answers]);
}

function expectNoSecretVisible() {
  const visible = everythingVisible();
  for (const secret of [influx.password, ...influx.authorizations.map((a) => a.token), ...secrets.secrets.values()]) {
    expect(visible).not.toContain(secret);
  }
}

/** The store's authorizations of one kind: the base description, then ` #` and the token's fingerprint. */
function tokenOf(description: string) {
  return influx.authorizations.filter((a) => a.description.startsWith(`${description} #`));
}

const fingerprint = (token: string) => createHash('sha256').update(token).digest('hex').slice(0, 16);

beforeAll(async () => {
  if (!existsSync(ASSET)) throw new Error(`${ASSET} is missing: run \`npx projen bundle\` first`);
  directory = mkdtempSync(join(tmpdir(), 'ons-bootstrap-'));
  endpoints.influx = await influx.start();
  endpoints.secrets = await secrets.start();
  endpoints.cloudFormation = await cloudFormation.start();
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoints.secrets,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'LOCAL',
    AWS_SECRET_ACCESS_KEY: 'LOCAL',
    AWS_CONFIG_FILE: join(directory, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(directory, 'no-credentials'),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    POWERTOOLS_SERVICE_NAME: 'timeseries',
  });
  for (const key of ['AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_ENDPOINT_URL']) delete process.env[key];
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    handler = (require(ASSET) as { handler: Handler }).handler;
  });
});

afterAll(async () => {
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
  await Promise.all([influx.close(), secrets.close(), cloudFormation.close()]);
  if (directory) rmSync(directory, { recursive: true, force: true });
});

beforeEach(() => {
  output = captureOutput();
  influx.authorizations.length = 0;
  influx.dbrps.length = 0;
  influx.points.clear();
  influx.requests.length = 0;
  influx.buckets[0].retentionRules = [];
  influx.password = 'Adm1nPassw0rdFromTheSecret';
  secrets.secrets.clear();
  secrets.secrets.set(ADMIN, JSON.stringify({ username: 'onsadmin', password: influx.password }));
  secrets.secrets.set(WRITE, PLACEHOLDER);
  secrets.secrets.set(READ, `${PLACEHOLDER}r`);
  secrets.requests.length = 0;
  answers.length = 0;
});

afterEach(() => output.restore());

describe('Create', () => {
  test('a write token and a read token on the bucket only, each in its secret; the DBRP mapping as the default; SUCCESS with the ids', async () => {
    const answer = await run(event('Create'));

    expect(answer).toMatchObject({
      Status: 'SUCCESS',
      PhysicalResourceId: `${influx.org.id}/${influx.buckets[0].id}`,
      Data: { OrganizationId: influx.org.id, BucketId: influx.buckets[0].id, DbrpId: influx.dbrps[0].id },
    });
    const [write] = tokenOf('ons-data-platform dev write ons_data_platform');
    const [read] = tokenOf('ons-data-platform dev read ons_data_platform');
    expect(influx.authorizations).toHaveLength(2);
    const bucket = { type: 'buckets', id: influx.buckets[0].id, orgID: influx.org.id };
    expect(write).toMatchObject({ status: 'active', permissions: [{ action: 'write', resource: bucket }] });
    expect(read).toMatchObject({ status: 'active', permissions: [{ action: 'read', resource: bucket }] });
    expect(secrets.secrets.get(WRITE)).toBe(write.token);
    expect(secrets.secrets.get(READ)).toBe(read.token);
    // Each labelled with a fingerprint of its token (not the token), to be recognised when InfluxDB hides tokens.
    expect(write.description).toBe(`ons-data-platform dev write ons_data_platform #${fingerprint(write.token)}`);
    expect(read.description).toBe(`ons-data-platform dev read ons_data_platform #${fingerprint(read.token)}`);
    expect(influx.dbrps).toEqual([{
      id: expect.any(String), orgID: influx.org.id, bucketID: influx.buckets[0].id, database: 'ons_data_platform_dev', retention_policy: 'autogen', default: true,
    }]);
    // Infinite retention is already the bucket's: nothing to change.
    expect(influx.requests.some((r) => r.startsWith('PATCH /api/v2/buckets'))).toBe(false);
    expect(influx.requests[0]).toBe('POST /api/v2/signin');
    expect(influx.requests[influx.requests.length - 1]).toBe('POST /api/v2/signout');
    expectNoSecretVisible();
  });

  test('the tokens it stores do what they are for and nothing else: the loader\'s cannot read, the query function\'s cannot write', async () => {
    expect((await run(event('Create'))).Status).toBe('SUCCESS');
    const [loader, reader] = [secrets.secrets.get(WRITE)!, secrets.secrets.get(READ)!];
    const call = async (method: 'GET' | 'POST', path: string, apiToken: string, body?: string) => {
      const response = await fetch(`${endpoints.influx}${path}`, { method, headers: { Authorization: `Token ${apiToken}` }, body });
      return response.status;
    };
    const write = (apiToken: string) => call('POST', '/write?db=ons_data_platform_dev&rp=autogen&precision=ns', apiToken, 'curva_carga,id_subsistema=SE val=1 1672531200000000000');
    const query = (apiToken: string) => call('GET', `/query?db=ons_data_platform_dev&rp=autogen&q=${encodeURIComponent('SELECT * FROM curva_carga')}`, apiToken);
    expect(await write(loader)).toBe(204);
    expect(await query(loader)).toBe(401);
    expect(await write(reader)).toBe(401);
    expect(await query(reader)).toBe(200);
    expect(influx.points.get(influx.buckets[0].id)).toEqual(['curva_carga,id_subsistema=SE val=1 1672531200000000000']);
  });

  test('the bucket retention from the properties', async () => {
    expect((await run(event('Create', properties({ RetentionSeconds: String(30 * 365 * 86400) })))).Status).toBe('SUCCESS');
    expect(influx.buckets[0].retentionRules).toEqual([{ type: 'expire', everySeconds: 30 * 365 * 86400 }]);

    expect((await run(event('Update', properties({ RetentionSeconds: '0' }))))).toMatchObject({ Status: 'SUCCESS' });
    expect(influx.buckets[0].retentionRules).toEqual([]);
  });
});

describe('idempotency', () => {
  test('a second Create, then an Update with the same properties, change nothing: same tokens, same secrets, one mapping', async () => {
    const first = await run(event('Create'));
    const tokens = influx.authorizations.map((a) => ({ ...a }));
    const stored = [secrets.secrets.get(WRITE), secrets.secrets.get(READ)];
    influx.requests.length = 0;

    const again = await run(event('Create'));
    const update = await run(event('Update', properties(), first.PhysicalResourceId));

    for (const answer of [again, update]) expect(answer).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: first.PhysicalResourceId, Data: first.Data });
    expect(influx.authorizations).toEqual(tokens);
    expect([secrets.secrets.get(WRITE), secrets.secrets.get(READ)]).toEqual(stored);
    expect(influx.dbrps).toHaveLength(1);
    expect(influx.changes()).toEqual([]);
    expect(secrets.requests.filter((r) => r.target === 'secretsmanager.PutSecretValue')).toHaveLength(2);
    expectNoSecretVisible();
  });

  test('InfluxDB listing tokens hashed (OSS 2.9 default): a second run still recognises both tokens by their fingerprints', async () => {
    influx.hashedTokens = true;
    try {
      await run(event('Create'));
      const ids = influx.authorizations.map((a) => a.id);
      const stored = [secrets.secrets.get(WRITE), secrets.secrets.get(READ)];
      influx.requests.length = 0;

      expect((await run(event('Update'))).Status).toBe('SUCCESS');

      expect(influx.authorizations.map((a) => a.id)).toEqual(ids);
      expect([secrets.secrets.get(WRITE), secrets.secrets.get(READ)]).toEqual(stored);
      expect(influx.changes()).toEqual([]);

      // A secret that no longer holds the token: replaced, even though InfluxDB cannot show which token it has.
      secrets.secrets.set(WRITE, 'someone-overwrote-it');
      expect((await run(event('Update'))).Status).toBe('SUCCESS');
      const [write] = tokenOf('ons-data-platform dev write ons_data_platform');
      expect(write.id).not.toBe(ids[0]);
      expect(secrets.secrets.get(WRITE)).toBe(write.token);
      expect(influx.authorizations).toHaveLength(2);
    } finally {
      influx.hashedTokens = false;
    }
  });

  test('a token deleted in InfluxDB, or a secret that no longer holds it: a new one in the secret, stale ones of the store deleted', async () => {
    await run(event('Create'));
    const write = tokenOf('ons-data-platform dev write ons_data_platform')[0];
    const read = tokenOf('ons-data-platform dev read ons_data_platform')[0];
    influx.authorizations.splice(influx.authorizations.indexOf(write), 1);
    secrets.secrets.set(READ, 'someone-overwrote-it');
    // A token of someone else stays.
    influx.authorizations.push({ ...read, id: influx.id(), token: 'another-teams-token', description: 'grafana read' });

    expect((await run(event('Update'))).Status).toBe('SUCCESS');

    const writes = tokenOf('ons-data-platform dev write ons_data_platform');
    const reads = tokenOf('ons-data-platform dev read ons_data_platform');
    expect(writes).toHaveLength(1);
    expect(reads).toHaveLength(1);
    expect(writes[0].id).not.toBe(write.id);
    expect(reads[0].id).not.toBe(read.id);
    expect(secrets.secrets.get(WRITE)).toBe(writes[0].token);
    expect(secrets.secrets.get(READ)).toBe(reads[0].token);
    expect(influx.authorizations.map((a) => a.description)).toContain('grafana read');
    expect(influx.requests).toContain(`DELETE /api/v2/authorizations/${read.id}`);
  });

  test('a mapping of the database to another bucket is replaced; a non-default one of this bucket becomes the default', async () => {
    influx.buckets.push({ id: 'c0c0c0c0c0c0c0c0', name: 'old', orgID: influx.org.id, retentionRules: [] });
    influx.dbrps.push({ id: 'd1', orgID: influx.org.id, bucketID: 'c0c0c0c0c0c0c0c0', database: 'ons_data_platform_dev', retention_policy: 'autogen', default: true });
    try {
      expect((await run(event('Create'))).Status).toBe('SUCCESS');
      expect(influx.dbrps).toEqual([expect.objectContaining({ bucketID: influx.buckets[0].id, database: 'ons_data_platform_dev', default: true })]);

      influx.dbrps[0].default = false;
      expect((await run(event('Update'))).Status).toBe('SUCCESS');
      expect(influx.dbrps).toEqual([expect.objectContaining({ bucketID: influx.buckets[0].id, default: true })]);
      expect(influx.requests).toContain(`PATCH /api/v2/dbrps/${influx.dbrps[0].id}?orgID=${influx.org.id}`);
    } finally {
      influx.buckets.splice(1);
    }
  });
});

describe('failures', () => {
  test('admin credentials refused: FAILED with a reason that says so, nothing created, the password nowhere in the logs or the answer', async () => {
    influx.password = 'TheInstancePasswordChanged1';

    const answer = await run(event('Create'));

    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toMatch(/^InfluxDbAdminCredentialsRefused: InfluxDB refused the admin credentials from the admin secret \(sign-in answered HTTP 401\)/);
    expect(answer.PhysicalResourceId).toBe(`bootstrap-failed-${answer.RequestId}`);
    expect(influx.authorizations).toEqual([]);
    expect(influx.requests).toEqual(['POST /api/v2/signin']);
    expect(secrets.secrets.get(WRITE)).toBe(PLACEHOLDER);
    expect(everythingVisible()).not.toContain('Adm1nPassw0rdFromTheSecret');
    expect(output.error.mock.calls.map(([line]) => JSON.parse(line))).toEqual([
      expect.objectContaining({ level: 'ERROR', message: 'bootstrap failed', errorType: 'InfluxDbAdminCredentialsRefused' }),
    ]);
  });

  test('an Update that fails keeps the resource\'s physical id', async () => {
    influx.password = 'Different0';
    expect(await run(event('Update', properties(), 'org/bucket'))).toMatchObject({ Status: 'FAILED', PhysicalResourceId: 'org/bucket' });
  });

  test('a bucket that does not exist, an admin secret that is not JSON, missing properties: FAILED, each with its reason', async () => {
    expect((await run(event('Create', properties({ Bucket: 'missing' }))))).toMatchObject({
      Status: 'FAILED', Reason: expect.stringMatching(/^InfluxDbNotFound: InfluxDB bucket 'missing' not found/),
    });
    secrets.secrets.set(ADMIN, 'not json at all');
    expect((await run(event('Create')))).toMatchObject({ Status: 'FAILED', Reason: 'Error: the admin secret is not a JSON object with username and password' });
    expect(everythingVisible()).not.toContain('not json at all');
    expect((await run(event('Create', properties({ Url: '' }))))).toMatchObject({ Status: 'FAILED', Reason: 'Error: missing properties: Url' });
  });

  test('an instance that does not answer in time: FAILED before the function times out', async () => {
    const silent = new LocalHttpServer(() => undefined);
    const url = await silent.start();
    try {
      // The deadline comes from the remaining time (the reason names it); a handler that waited longer would hit jest's timeout.
      const answer = await run(event('Create', properties({ Url: url })), 11_500);
      expect(answer).toMatchObject({ Status: 'FAILED', Reason: expect.stringMatching(/^TimeoutError: the bootstrap did not finish within 2 s/) });
    } finally {
      await silent.close();
    }
  });
});

describe('Delete', () => {
  test('keeps everything: SUCCESS with the same physical id, InfluxDB and the secrets untouched', async () => {
    await run(event('Create'));
    const before = JSON.stringify([influx.authorizations, influx.dbrps, [...secrets.secrets]]);
    influx.requests.length = 0;

    expect(await run(event('Delete', properties(), 'org/bucket'))).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'org/bucket' });
    expect(influx.requests).toEqual([]);
    expect(JSON.stringify([influx.authorizations, influx.dbrps, [...secrets.secrets]])).toBe(before);
  });
});
