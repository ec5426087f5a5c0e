import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { HandlerEnv } from './contract';
import { traced } from './telemetry';

/**
 * What every handler and the Batch entrypoint share at run time: configuration from the environment, the AWS
 * clients and S3 key helpers (logs: `log` in telemetry.ts). Handler-side only (bundled into the assets); the constructs
 * import nothing from here.
 */

/** A configuration problem the construct should have prevented (missing or invalid environment). */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigurationError';
  }
}


export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new ConfigurationError(`${name} is not set`);
  return value;
}

/** A prefix from the environment, ending with `/` (empty when unset and no default is given). */
export function prefixEnv(name: string, fallback: string): string {
  const value = process.env[name] ?? fallback;
  return value === '' || value.endsWith('/') ? value : `${value}/`;
}

export function numberEnv(name: string, fallback?: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') {
    if (fallback === undefined) throw new ConfigurationError(`${name} is not set`);
    return fallback;
  }
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new ConfigurationError(`${name} must be a non-negative number, got '${text}'`);
  return value;
}

/** An integer setting from `min` to `max`; `fallback` when unset or empty. */
export function integerEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer from ${min} to ${max}, got '${raw}'`);
  return n;
}

/** Comma-separated lower-case extensions, without dots (`csv, .XLSX` → `['csv', 'xlsx']`). */
export function listEnv(name: string, fallback: readonly string[]): string[] {
  const text = process.env[name];
  if (text === undefined || text.trim() === '') return [...fallback];
  return text.split(',').map((e) => e.trim().toLowerCase().replace(/^\./, '')).filter(Boolean);
}

/**
 * The S3 client: region, credentials and endpoint come from the standard environment (AWS_REGION,
 * AWS_ENDPOINT_URL_S3...). Only the timeouts are ours: a stalled request fails (and is retried) while
 * a long transfer that keeps moving is never cut (an inactivity timeout, not a total one).
 */
export function createS3Client(): S3Client {
  const timeout = numberEnv(HandlerEnv.S3_REQUEST_TIMEOUT_MS, 60_000);
  return traced(new S3Client({
    requestHandler: { connectionTimeout: timeout, socketTimeout: timeout },
  }));
}

/** The ledger's client: attributes left undefined are dropped rather than refused. */
export function createDocumentClient(): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(traced(new DynamoDBClient({})), { marshallOptions: { removeUndefinedValues: true } });
}

/** An error as logs and reports may show it: its name and message, never its stack. */
export function describeError(error: unknown): { errorType: string; errorMessage: string } {
  if (error instanceof Error) return { errorType: error.name || 'Error', errorMessage: error.message };
  return { errorType: 'Error', errorMessage: String(error) };
}

/**
 * Decodes a key from an S3 event notification or EventBridge event, which S3 URL-encodes in form
 * style: a space is `+`, a real `+` is `%2B`.
 */
export function decodeEventKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/**
 * `CopySource` as S3 expects it: `bucket/key` URL-encoded (each path segment, so `+`, `?`, `#`, `%`
 * and `=` survive), then `?versionId=` for a version.
 */
export function copySource(source: { readonly bucket: string; readonly key: string; readonly versionId?: string }): string {
  const path = `${source.bucket}/${source.key.split('/').map(encodeURIComponent).join('/')}`;
  return source.versionId ? `${path}?versionId=${encodeURIComponent(source.versionId)}` : path;
}

/** True for S3's "no such key / version" answers (404 on HeadObject has no error code). */
export function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.name === 'NoSuchVersion' || e?.$metadata?.httpStatusCode === 404;
}


/**
 * S3's answer to reading (GetObject, or CopyObject from) an object in S3 Glacier Flexible Retrieval or Deep Archive
 * that is not restored: 403 `InvalidObjectState` (HeadObject still works on it).
 */
export function isArchived(error: unknown): boolean {
  return (error as { name?: string })?.name === 'InvalidObjectState';
}

/**
 * True when HeadObject says the object's bytes cannot be read now: in S3 Glacier Flexible Retrieval or Deep Archive
 * (or an S3 Intelligent-Tiering archive tier) and not restored (`x-amz-restore: ongoing-request="false"` once it is).
 */
export function isArchivedHead(head: { readonly StorageClass?: string; readonly ArchiveStatus?: string; readonly Restore?: string }): boolean {
  const archived = head.StorageClass === 'GLACIER' || head.StorageClass === 'DEEP_ARCHIVE'
    || (head.StorageClass === 'INTELLIGENT_TIERING' && head.ArchiveStatus !== undefined);
  return archived && !head.Restore?.includes('ongoing-request="false"');
}
