import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { ComponentStatus, HealthEnv, HealthReport } from './health-contract';

const s3 = new S3Client({});

/**
 * Reports whether each part of the platform is reachable, with read-only calls (no synthetic writes):
 * 200 when every component is up, 503 otherwise. Bucket names stay out of the response.
 */
export async function handler(): Promise<APIGatewayProxyResult> {
  const timeoutMs = Number(process.env[HealthEnv.CHECK_TIMEOUT_MS] ?? 2000);
  const lake = await checkLake(process.env[HealthEnv.LAKE_BUCKETS], timeoutMs);
  const report: HealthReport = {
    status: Object.values({ lake }).every((c) => c.status === 'up') ? 'ok' : 'degraded',
    components: { lake },
  };
  return {
    statusCode: report.status === 'ok' ? 200 : 503,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    body: JSON.stringify(report),
  };
}

async function checkLake(config: string | undefined, timeoutMs: number): Promise<{ status: ComponentStatus; detail: Record<string, string> }> {
  const buckets = parseBuckets(config);
  if (typeof buckets === 'string') {
    console.error(JSON.stringify({ level: 'ERROR', component: 'lake', reason: buckets }));
    return { status: 'down', detail: { configuration: buckets } };
  }
  const results = await Promise.all(Object.entries(buckets).map(async ([layer, bucket]) => {
    try {
      await s3.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: AbortSignal.timeout(timeoutMs) });
      return [layer, 'up'] as const;
    } catch (error) {
      const reason = describeError(error);
      console.error(JSON.stringify({ level: 'ERROR', component: 'lake', layer, bucket, reason }));
      return [layer, reason] as const;
    }
  }));
  const detail = Object.fromEntries(results);
  return { status: results.every(([, r]) => r === 'up') ? 'up' : 'down', detail };
}

function parseBuckets(config: string | undefined): Record<string, string> | string {
  if (!config) return `${HealthEnv.LAKE_BUCKETS} is not set`;
  try {
    const parsed: unknown = JSON.parse(config);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)
      && Object.values(parsed).length > 0 && Object.values(parsed).every((v) => typeof v === 'string' && v.length > 0)) {
      return parsed as Record<string, string>;
    }
  } catch {
    // reported below
  }
  return `${HealthEnv.LAKE_BUCKETS} must be a JSON object of layer to bucket name`;
}

function describeError(error: unknown): string {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (status === 404) return 'not found';
  if (status === 403) return 'access denied';
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out';
  return status ? `error ${status}` : `unreachable (${e.name ?? 'unknown error'})`;
}
