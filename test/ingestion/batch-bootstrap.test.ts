import { spawn } from 'node:child_process';
import { createHash, createHmac, Hash, Hmac } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { IncomingMessage, request } from 'node:http';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
// The oracle is the SDK's own signer (installed with @aws-sdk/client-s3), not the bootstrap's small one.
// eslint-disable-next-line import/no-extraneous-dependencies
import { SignatureV4 } from '@smithy/signature-v4';
import { BATCH_BOOTSTRAP_FILE } from '../../src/ingestion/batch-processing';
import { IngestionEnv } from '../../src/ingestion/contract';
import { BUCKETS, isolatedAwsEnv, LocalAws, putObject, sha256, startLocalAws } from '../local-aws';
import { closedPort, LocalHttpServer } from '../local-http';

/**
 * The Batch job's bootstrap (`node -e <bundled bootstrap>`, as the job definition runs it) against s3rver behind a
 * proxy that checks SigV4 as S3 does (s3rver itself checks only the access key), with the task role's credentials
 * from a local server that answers as the ECS container credentials endpoint does. The code object here is a small
 * program that writes a marker: a verified object runs (its exit status is the job's), anything else never does.
 */

const REGION = 'sa-east-1';
/** What the container credentials endpoint hands out (s3rver knows the access key id S3RVER only). */
const ROLE = { AccessKeyId: 'S3RVER', SecretAccessKey: 'task-role-secret', Token: 'task-role-session-token' };
const AUTHORIZATION = 'container-authorization-token';

const MARKER_CODE = Buffer.from(
  "require('fs').writeFileSync(process.env.MARKER, 'ran as ' + require('path').basename(process.argv[1]));"
  + 'process.exit(Number(process.env.EXIT_WITH || 0));\n',
);

let aws: LocalAws;
let proxy: LocalHttpServer;
let proxyEndpoint: string;
let credentialsServer: LocalHttpServer;
let credentialsUrl: string;
/** What the credentials endpoint answers next (a test may break it). */
let credentialsAnswer: { status: number; body: unknown };
const credentialRequests: Array<string | undefined> = [];
const s3Requests: Array<{ path: string; verdict: string }> = [];
let jobTmp: string;
let marker: string;

type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: SourceData) => typeof d === 'string' ? d : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);

/** The signer's hash and HMAC, from node:crypto. */
class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.hash = secret ? createHmac('sha256', bytes(secret)) : createHash('sha256');
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
}

/** Recomputes the request's SigV4 signature with the SDK's signer and the role's secret, as S3 would. */
async function verdict(req: IncomingMessage): Promise<string> {
  const auth = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/
    .exec(req.headers.authorization ?? '');
  if (!auth) return 'no SigV4 authorization';
  const [, keyId, , region, signedHeaders, signature] = auth;
  if (keyId !== ROLE.AccessKeyId || region !== REGION) return `wrong credential scope ${keyId}/${region}`;
  if (req.headers['x-amz-security-token'] !== ROLE.Token) return 'missing or wrong session token';
  const url = new URL(req.url!, 'http://placeholder');
  const headers: Record<string, string> = {};
  for (const name of signedHeaders.split(';')) headers[name] = String(req.headers[name]);
  const signer = new SignatureV4({
    service: 's3',
    region,
    sha256: NodeSha256,
    uriEscapePath: false,
    applyChecksum: false,
    credentials: { accessKeyId: ROLE.AccessKeyId, secretAccessKey: ROLE.SecretAccessKey, sessionToken: ROLE.Token },
  });
  const date = headers['x-amz-date'];
  const signingDate = new Date(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`);
  const expected = await signer.sign({
    method: req.method!,
    protocol: 'http:',
    hostname: url.hostname,
    path: url.pathname,
    headers,
    query: Object.fromEntries(url.searchParams),
  }, { signingDate });
  const expectedSignature = /Signature=([0-9a-f]{64})/.exec(String(expected.headers.authorization))![1];
  return expectedSignature === signature ? 'ok' : 'SignatureDoesNotMatch';
}

beforeAll(async () => {
  if (!existsSync(BATCH_BOOTSTRAP_FILE)) throw new Error(`${BATCH_BOOTSTRAP_FILE} is missing: run \`npx projen bundle\` first`);
  aws = await startLocalAws();
  const s3 = new URL(aws.s3Endpoint);
  proxy = new LocalHttpServer((req, res) => {
    void verdict(req).catch((e: Error) => `verifier failed: ${e.message}`).then((v) => {
      s3Requests.push({ path: req.url!, verdict: v });
      if (v !== 'ok') {
        res.writeHead(403, { 'content-type': 'application/xml' }).end(`<Error><Code>SignatureDoesNotMatch</Code><Message>${v}</Message></Error>`);
        return;
      }
      const upstream = request({ host: s3.hostname, port: s3.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      req.pipe(upstream);
    });
  });
  proxyEndpoint = await proxy.start();
  credentialsServer = new LocalHttpServer((req, res) => {
    credentialRequests.push(req.headers.authorization);
    if (req.headers.authorization !== AUTHORIZATION) {
      res.writeHead(401).end(JSON.stringify({ code: 'AccessDenied', message: 'no authorization token' }));
      return;
    }
    res.writeHead(credentialsAnswer.status, { 'content-type': 'application/json' }).end(JSON.stringify(credentialsAnswer.body));
  });
  credentialsUrl = `${await credentialsServer.start()}/v2/credentials/task-role`;
  jobTmp = join(aws.scratch, 'job-tmp');
  mkdirSync(jobTmp);
  marker = join(aws.scratch, 'marker');
});

beforeEach(() => {
  credentialsAnswer = { status: 200, body: { ...ROLE, RoleArn: 'arn:aws:iam::123456789012:role/JobRole', Expiration: new Date(Date.UTC(2030, 0, 1)).toISOString() } };
  credentialRequests.length = 0;
  s3Requests.length = 0;
});

afterEach(() => {
  // The code is written to a temporary directory and removed once it exits, whatever happened.
  expect(readdirSync(jobTmp)).toEqual([]);
});

afterAll(async () => {
  await proxy?.close();
  await credentialsServer?.close();
  await aws?.close();
});

interface Run { code: number | null; stderr: string; ran: string | undefined }

/** Runs the bundled bootstrap as the job definition's command does, in a child process, with the job's environment. */
async function runBootstrap(key: string, digest: string, env: Record<string, string | undefined> = {}): Promise<Run> {
  rmSync(marker, { force: true });
  const merged: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    ...isolatedAwsEnv(aws.scratch),
    AWS_REGION: REGION,
    TMPDIR: jobTmp,
    AWS_ENDPOINT_URL_S3: proxyEndpoint,
    AWS_CONTAINER_CREDENTIALS_FULL_URI: credentialsUrl,
    AWS_CONTAINER_AUTHORIZATION_TOKEN: AUTHORIZATION,
    [IngestionEnv.JOB_CODE_BUCKET]: BUCKETS.raw,
    [IngestionEnv.JOB_CODE_KEY]: key,
    [IngestionEnv.JOB_CODE_REGION]: REGION,
    [IngestionEnv.JOB_CODE_SHA256]: digest,
    MARKER: marker,
    ...env,
  };
  const jobEnv = Object.fromEntries(Object.entries(merged).filter((e): e is [string, string] => e[1] !== undefined));
  const program = readFileSync(BATCH_BOOTSTRAP_FILE, 'utf8').trim();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', program], { env: jobEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, ran: existsSync(marker) ? readFileSync(marker, 'utf8') : undefined }));
  });
}

const CODE_KEY = 'assets/0123abcd.js';

describe('a verified code object runs', () => {
  beforeAll(async () => {
    await putObject(aws, BUCKETS.raw, CODE_KEY, MARKER_CODE);
  });

  test('credentials from the container endpoint, a signed GET, the digest checked: the code runs, exit 0', async () => {
    const run = await runBootstrap(CODE_KEY, sha256(MARKER_CODE));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.ran).toBe('ran as index.js');
    expect(credentialRequests).toEqual([AUTHORIZATION]);
    expect(s3Requests).toEqual([{ path: `/${BUCKETS.raw}/${CODE_KEY}`, verdict: 'ok' }]);
  });

  test('the code\'s exit status is the job\'s: 2 (file refused, not retried) passes through', async () => {
    const run = await runBootstrap(CODE_KEY, sha256(MARKER_CODE), { EXIT_WITH: '2' });
    expect(run.code).toBe(2);
    expect(run.ran).toBeDefined();
  });

  test('without a container endpoint, the environment\'s credentials', async () => {
    const run = await runBootstrap(CODE_KEY, sha256(MARKER_CODE), {
      AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
      AWS_ACCESS_KEY_ID: ROLE.AccessKeyId,
      AWS_SECRET_ACCESS_KEY: ROLE.SecretAccessKey,
      AWS_SESSION_TOKEN: ROLE.Token,
    });
    expect(run.code).toBe(0);
    expect(credentialRequests).toEqual([]);
    expect(s3Requests.map((r) => r.verdict)).toEqual(['ok']);
  });

  test('a key with characters SigV4 encodes is signed as S3 reads it', async () => {
    const key = 'assets/a key (1)+ção.js';
    await putObject(aws, BUCKETS.raw, key, MARKER_CODE);
    const run = await runBootstrap(key, sha256(MARKER_CODE));
    expect(run.code).toBe(0);
    expect(s3Requests.map((r) => r.verdict)).toEqual(['ok']);
  });
});

describe('anything else never runs: exit 1 (retried) with one clear line', () => {
  test('a tampered object (digest mismatch)', async () => {
    const tampered = Buffer.concat([MARKER_CODE, Buffer.from('/* tampered */\n')]);
    await putObject(aws, BUCKETS.raw, 'assets/tampered.js', tampered);
    const run = await runBootstrap('assets/tampered.js', sha256(MARKER_CODE));
    expect(run.code).toBe(1);
    expect(run.ran).toBeUndefined();
    expect(run.stderr).toBe(`bootstrap: s3://${BUCKETS.raw}/assets/tampered.js: SHA-256 ${sha256(tampered)}, expected ${sha256(MARKER_CODE)}: not running it\n`);
  });

  test('a bad signature is refused by the proxy (so the signed runs above prove the signature)', async () => {
    // The endpoint hands out a secret that is not the role's: the request is well-formed but wrongly signed.
    credentialsAnswer = { status: 200, body: { ...ROLE, SecretAccessKey: 'not-the-role-secret' } };
    const run = await runBootstrap(CODE_KEY, sha256(MARKER_CODE));
    expect(run.code).toBe(1);
    expect(run.ran).toBeUndefined();
    expect(s3Requests.map((r) => r.verdict)).toEqual(['SignatureDoesNotMatch']);
    expect(run.stderr).toMatch(new RegExp(`^bootstrap: s3://${BUCKETS.raw}/${CODE_KEY}: HTTP 403 .*SignatureDoesNotMatch`));

    // And the SDK's own client, with the wrong secret, is refused the same way.
    const client = new S3Client({
      endpoint: proxyEndpoint,
      region: REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: ROLE.AccessKeyId, secretAccessKey: 'wrong', sessionToken: ROLE.Token },
    });
    await expect(client.send(new GetObjectCommand({ Bucket: BUCKETS.raw, Key: CODE_KEY }))).rejects.toThrow();
    client.destroy();
  });

  test('the credentials endpoint fails', async () => {
    credentialsAnswer = { status: 500, body: { code: 'InternalError' } };
    const run = await runBootstrap(CODE_KEY, sha256(MARKER_CODE));
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`bootstrap: container credentials: HTTP 500 from ${credentialsUrl}\n`);
    expect(s3Requests).toEqual([]);
  });

  test('an unreachable credentials endpoint: the cause is said', async () => {
    // A port that was just listening and is closed again: nothing answers there.
    const url = `http://127.0.0.1:${await closedPort()}`;
    const run = await runBootstrap(CODE_KEY, sha256(MARKER_CODE), { AWS_CONTAINER_CREDENTIALS_FULL_URI: `${url}/v2/credentials/x` });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`bootstrap: unexpected error: fetch failed: connect ECONNREFUSED ${new URL(url).host}\n`);
  });

  test('no credentials at all', async () => {
    const run = await runBootstrap(CODE_KEY, sha256(MARKER_CODE), { AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('bootstrap: AWS_ACCESS_KEY_ID is not set\n');
  });

  test('a missing code object', async () => {
    const run = await runBootstrap('assets/missing.js', sha256(MARKER_CODE));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^bootstrap: s3://${BUCKETS.raw}/assets/missing.js: HTTP 404 .*NoSuchKey`));
  });

  test('a job definition without the code\'s digest', async () => {
    const run = await runBootstrap(CODE_KEY, '', {});
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`bootstrap: ${IngestionEnv.JOB_CODE_SHA256} is not set\n`);
    expect(s3Requests).toEqual([]);
  });
});
