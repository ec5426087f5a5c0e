import { spawn } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IngestionEnv } from '../contract';

/**
 * The Batch job's command (`node -e <this, minified>`): the job runs a published Node.js image, so the processing
 * code comes from S3 (a CDK file asset: no Docker at deploy). It takes the task role's credentials, downloads the
 * code object with a SigV4-signed GET, checks its SHA-256 against the digest computed at synth, and runs it.
 * Every failure of its own exits 1 (Batch retries it); the code's own exit status (0, 1, 2 = refused) passes through.
 * No SDK inside: with `@smithy/signature-v4` the bundle is about 140 KB, and it must fit in the job definition
 * (AWS Batch: RegisterJobDefinition requests are at most 24 KiB).
 */

interface Credentials { AccessKeyId: string; SecretAccessKey: string; Token?: string }

class BootstrapError extends Error {}

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new BootstrapError(`${name} is not set`);
  return value;
};

/**
 * The task role's credentials: the ECS container credentials endpoint (169.254.170.2 + AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
 * on Fargate, or AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN, as the SDKs read them), else
 * the environment's.
 */
async function credentials(): Promise<Credentials> {
  const relative = process.env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI;
  const url = relative ? `http://169.254.170.2${relative}` : process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI;
  if (url) {
    const token = process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
    const response = await fetch(url, { headers: token ? { Authorization: token } : {}, signal: AbortSignal.timeout(10_000) });
    if (!response.ok) throw new BootstrapError(`container credentials: HTTP ${response.status} from ${url}`);
    const body = await response.json() as Partial<Credentials>;
    if (!body.AccessKeyId || !body.SecretAccessKey) throw new BootstrapError(`container credentials: no AccessKeyId/SecretAccessKey from ${url}`);
    return body as Credentials;
  }
  return { AccessKeyId: env('AWS_ACCESS_KEY_ID'), SecretAccessKey: env('AWS_SECRET_ACCESS_KEY'), Token: process.env.AWS_SESSION_TOKEN };
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
// RFC 3986 unreserved characters stay; everything else is percent-encoded (SigV4's URI encoding; S3 encodes once).
const encode = (segment: string) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** A SigV4-signed S3 GetObject (AWS_ENDPOINT_URL_S3, as the SDKs read it, for a path-style endpoint). */
async function getObject(bucket: string, key: string, region: string, creds: Credentials): Promise<Buffer> {
  const custom = process.env.AWS_ENDPOINT_URL_S3;
  const path = `/${key.split('/').map(encode).join('/')}`;
  const url = new URL(custom
    ? `${custom.replace(/\/$/, '')}/${encode(bucket)}${path}`
    : `https://${bucket}.s3.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}${path}`);
  const date = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
  const day = date.slice(0, 8);
  const headers: Record<string, string> = { 'host': url.host, 'x-amz-content-sha256': sha256(''), 'x-amz-date': date };
  if (creds.Token) headers['x-amz-security-token'] = creds.Token;
  const names = Object.keys(headers).sort();
  const canonical = ['GET', url.pathname, '', ...names.map((n) => `${n}:${headers[n]}`), '', names.join(';'), headers['x-amz-content-sha256']].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', date, scope, sha256(canonical)].join('\n');
  const signingKey = [region, 's3', 'aws4_request'].reduce(hmac, hmac(`AWS4${creds.SecretAccessKey}`, day));
  const signature = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
  const { host: _host, ...sent } = headers;
  const response = await fetch(url, {
    headers: { ...sent, Authorization: `AWS4-HMAC-SHA256 Credential=${creds.AccessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}` },
    signal: AbortSignal.timeout(120_000),
  });
  if (!response.ok) throw new BootstrapError(`s3://${bucket}/${key}: HTTP ${response.status} ${(await response.text()).replace(/\s+/g, ' ').slice(0, 300)}`);
  return Buffer.from(await response.arrayBuffer());
}

/** Downloads, verifies and runs the job's code; resolves to the exit status of the job. */
export async function bootstrap(): Promise<number> {
  let dir: string | undefined;
  try {
    const bucket = env(IngestionEnv.JOB_CODE_BUCKET);
    const key = env(IngestionEnv.JOB_CODE_KEY);
    const expected = env(IngestionEnv.JOB_CODE_SHA256);
    const code = await getObject(bucket, key, env(IngestionEnv.JOB_CODE_REGION), await credentials());
    const actual = sha256(code);
    if (actual !== expected) throw new BootstrapError(`s3://${bucket}/${key}: SHA-256 ${actual}, expected ${expected}: not running it`);
    dir = mkdtempSync(join(tmpdir(), 'ons-job-'));
    const file = join(dir, 'index.js');
    writeFileSync(file, code);
    // A child process, not require(): the code runs as its own main module, and its exit status is the job's.
    const child = spawn(process.execPath, [file], { stdio: 'inherit' });
    // Batch stops a job with SIGTERM (then SIGKILL): pass it on so the code can clean up.
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => child.kill(signal));
    return await new Promise<number>((resolve) => {
      child.on('error', (error) => { console.error(`bootstrap: ${error.message}`); resolve(1); });
      child.on('close', (status) => resolve(status ?? 1));
    });
  } catch (error) {
    // fetch() says only "fetch failed": its cause (ECONNREFUSED, a timeout) is the useful part.
    const cause = (error as Error).cause instanceof Error ? `: ${((error as Error).cause as Error).message}` : '';
    console.error(`bootstrap: ${error instanceof BootstrapError ? '' : 'unexpected error: '}${(error as Error).message}${cause}`);
    return 1;
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

void bootstrap().then((status) => process.exit(status));
