import { GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import { AdminCredentials, bootstrap, BootstrapConfig, SecretStore } from './runtime/bootstrap';
import { log, startInvocation, traced } from '../../runtime/telemetry';

/**
 * The InfluxDbStore's bootstrap custom resource (CloudFormation invokes this function directly; it answers on the
 * pre-signed response URL itself). Create and Update run the bootstrap (organization and bucket found, retention
 * set, write and read tokens in their secrets, DBRP mapping); both are idempotent. Delete keeps everything: the
 * data, the tokens and the mapping stay with the instance. A run that fails, or would outlast the function,
 * answers FAILED with a reason that never holds a secret.
 */

/** The custom resource's properties, as CloudFormation passes them (every value a string). @internal */
export interface BootstrapProperties {
  readonly Url: string;
  readonly AdminSecretArn: string;
  readonly Organization: string;
  readonly Bucket: string;
  readonly Database: string;
  readonly RetentionPolicy: string;
  readonly RetentionSeconds: string;
  readonly WriteTokenSecretArn: string;
  readonly WriteTokenDescription: string;
  readonly ReadTokenSecretArn: string;
  readonly ReadTokenDescription: string;
}

/** Time kept to answer CloudFormation before the function's own timeout. */
const ANSWER_MARGIN_MS = 10_000;

let client: SecretsManagerClient | undefined;
const secretsManager = () => (client ??= traced(new SecretsManagerClient({})));

const secrets: SecretStore = {
  async get(secretArn) {
    try {
      return (await secretsManager().send(new GetSecretValueCommand({ SecretId: secretArn }))).SecretString;
    } catch (error) {
      if ((error as Error).name === 'ResourceNotFoundException') return undefined;
      throw error;
    }
  },
  async put(secretArn, value) {
    await secretsManager().send(new PutSecretValueCommand({ SecretId: secretArn, SecretString: value }));
  },
};

export async function handler(event: CloudFormationCustomResourceEvent, context?: Partial<Context>): Promise<void> {
  startInvocation(context, { requestType: event.RequestType, logicalResourceId: event.LogicalResourceId, stackId: event.StackId });
  const previousId = event.RequestType === 'Create' ? undefined : event.PhysicalResourceId;
  let answer: { Status: 'SUCCESS' | 'FAILED'; PhysicalResourceId: string; Reason?: string; Data?: Record<string, string> };
  try {
    if (event.RequestType === 'Delete') {
      log('INFO', 'delete: the data, tokens and DBRP mapping stay with the instance');
      answer = { Status: 'SUCCESS', PhysicalResourceId: previousId! };
    } else {
      const config = configOf(event.ResourceProperties as unknown as BootstrapProperties);
      const admin = await adminCredentials((event.ResourceProperties as unknown as BootstrapProperties).AdminSecretArn);
      const remaining = context?.getRemainingTimeInMillis?.() ?? 300_000;
      const result = await withDeadline(bootstrap(config, admin, secrets), remaining - ANSWER_MARGIN_MS);
      log('INFO', 'bootstrap done', { ...result });
      answer = {
        Status: 'SUCCESS',
        PhysicalResourceId: `${result.organizationId}/${result.bucketId}`,
        Data: { OrganizationId: result.organizationId, BucketId: result.bucketId, DbrpId: result.dbrpId },
      };
    }
  } catch (error) {
    const e = error as Error;
    log('ERROR', 'bootstrap failed', { errorType: e?.name, errorMessage: e?.message });
    answer = {
      Status: 'FAILED',
      // A failed Create still needs an id; the Delete that follows is a no-op.
      PhysicalResourceId: previousId ?? `bootstrap-failed-${event.RequestId}`,
      Reason: `${e?.name ?? 'Error'}: ${e?.message ?? String(error)}`.slice(0, 1000),
    };
  }
  await respond(event, answer);
}

function configOf(p: BootstrapProperties): BootstrapConfig {
  const required = ['Url', 'AdminSecretArn', 'Organization', 'Bucket', 'Database', 'RetentionPolicy', 'WriteTokenSecretArn', 'ReadTokenSecretArn'] as const;
  const missing = required.filter((k) => typeof p[k] !== 'string' || p[k].length === 0);
  if (missing.length) throw new Error(`missing properties: ${missing.join(', ')}`);
  const retentionSeconds = Number(p.RetentionSeconds ?? '0');
  if (!Number.isInteger(retentionSeconds) || retentionSeconds < 0) throw new Error(`RetentionSeconds: expected a whole number of seconds, got ${p.RetentionSeconds}`);
  return {
    url: p.Url.replace(/\/+$/, ''),
    organization: p.Organization,
    bucket: p.Bucket,
    database: p.Database,
    retentionPolicy: p.RetentionPolicy,
    retentionSeconds,
    writeToken: { secretArn: p.WriteTokenSecretArn, description: p.WriteTokenDescription || 'ons-data-platform write' },
    readToken: { secretArn: p.ReadTokenSecretArn, description: p.ReadTokenDescription || 'ons-data-platform read' },
  };
}

async function adminCredentials(secretArn: string): Promise<AdminCredentials> {
  const value = await secrets.get(secretArn);
  let parsed: Partial<AdminCredentials> | undefined;
  try {
    parsed = value ? JSON.parse(value) as Partial<AdminCredentials> : undefined;
  } catch {
    parsed = undefined;
  }
  // The value itself is never quoted: it holds the password.
  if (!parsed || typeof parsed.username !== 'string' || typeof parsed.password !== 'string') {
    throw new Error('the admin secret is not a JSON object with username and password');
  }
  return { username: parsed.username, password: parsed.password };
}

async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    const error = Object.assign(new Error(`the bootstrap did not finish within ${Math.round(ms / 1000)} s`), { name: 'TimeoutError' });
    timer = setTimeout(() => reject(error), Math.max(ms, 0));
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** PUT to the pre-signed S3 URL, with no content type (it is not part of the signature). */
async function respond(event: CloudFormationCustomResourceEvent, answer: Record<string, unknown>): Promise<void> {
  const { StackId, RequestId, LogicalResourceId } = event;
  const body = JSON.stringify({ ...answer, StackId, RequestId, LogicalResourceId, NoEcho: false });
  const response = await fetch(event.ResponseURL, { method: 'PUT', headers: { 'content-type': '' }, body });
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`CloudFormation response refused: HTTP ${response.status}`);
}
