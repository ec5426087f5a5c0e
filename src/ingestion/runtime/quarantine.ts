import { CopyObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { LakeEnv } from '../../lake/contract';
import { LedgerError } from '../../ledger/contract';
import { StepDeps } from '../../ledger/runtime/step';
import { DEFAULT_PREFIXES, quarantineKey } from '../../ons/layout';
import { HandlerEnv, PlatformMetrics } from '../../runtime/contract';
import { copySource, isArchived, isNotFound, prefixEnv, requiredEnv } from '../../runtime/handler';
import { log, recordMetric } from '../../runtime/telemetry';
import { QuarantineInput } from '../contract';

export interface QuarantineResult {
  readonly bucket: string;
  /** The copy of the raw object; absent when the raw object no longer existed or is archived. */
  readonly key?: string;
  readonly errorKey: string;
  /** The raw object's storage class when it is archived and so was not copied. */
  readonly archived?: string;
}

/** Longest reason kept (an error report, not a log dump). */
const MAX_REASON = 2000;

/**
 * Quarantine: copies the raw object (never moved, deleted or changed) to the failed bucket under
 * `<prefix>YYYY/MM/DD/<original key>`, writes `<that key>.error.json` beside it and records the
 * object as quarantined. The report holds the error's type and message, never a stack trace.
 */
export async function quarantineObject(event: QuarantineInput, deps: StepDeps): Promise<QuarantineResult> {
  const { source, executionArn } = event;
  const { s3, ledger } = deps;
  const bucket = requiredEnv(LakeEnv.FAILED_BUCKET);
  const stage = process.env[HandlerEnv.STAGE] ?? 'unknown';
  const now = new Date();
  const copyKey = quarantineKey(prefixEnv(LakeEnv.QUARANTINE_PREFIX, DEFAULT_PREFIXES.quarantine), now, source.key);
  const errorKey = `${copyKey}.error.json`;
  const step = typeof event.step === 'string' && event.step ? event.step : 'unknown';
  const error = explain(event);

  let copied = true;
  let archived: string | undefined;
  try {
    await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: copyKey, CopySource: copySource(source) }));
  } catch (e) {
    copied = false; // the report and the ledger entry still say what happened
    if (isArchived(e)) archived = await storageClassOf(s3, source);
    else if (!isNotFound(e)) throw e;
  }

  const report = {
    stage,
    step,
    reason: error.reason,
    ...(error.errorType ? { errorType: error.errorType } : {}),
    executionArn,
    time: now.toISOString(),
    source: { bucket: source.bucket, key: source.key, versionId: source.versionId ?? null, size: source.size ?? null },
    quarantinedCopy: copied ? { bucket, key: copyKey } : null,
    ...(archived ? {
      archived,
      note: `the raw object is archived (${archived}) and was not copied: it stays in the raw bucket at the key and version above; `
        + 'reprocess it (the reprocessing state machine restores it first)',
    } : copied ? {} : { note: 'the raw object no longer existed: nothing was copied' }),
  };
  await s3.send(new PutObjectCommand({
    Bucket: bucket, Key: errorKey, Body: Buffer.from(`${JSON.stringify(report, null, 2)}\n`), ContentType: 'application/json',
  }));

  const ledgerError: LedgerError = { step, reason: error.reason, ...(error.errorType ? { errorType: error.errorType } : {}) };
  await ledger.recordQuarantined(source, {
    executionArn, error: ledgerError, quarantine: { bucket, ...(copied ? { key: copyKey } : {}), errorKey, ...(archived ? { archived } : {}) },
  });
  log('WARN', 'quarantined', { source, step, ...error, copied, archived, bucket, key: copyKey });
  recordMetric(PlatformMetrics.FILES_QUARANTINED, 1);
  return { bucket, ...(copied ? { key: copyKey } : {}), errorKey, ...(archived ? { archived } : {}) };
}

/** The object's storage class from HeadObject (which works on archived objects), or `ARCHIVED` when even that fails. */
async function storageClassOf(s3: S3Client, source: QuarantineInput['source']): Promise<string> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: source.bucket, Key: source.key, VersionId: source.versionId }));
    return head.StorageClass ?? 'ARCHIVED';
  } catch {
    return 'ARCHIVED';
  }
}

/**
 * The reason and error type to report: the router's reason, or Step Functions' caught error. For a
 * Lambda error, `Cause` is JSON `{errorType, errorMessage, trace|stackTrace}`: only type and message are
 * kept. A Batch job's `Cause` is its description: its status reason and exit code are kept.
 */
export function explain(input: QuarantineInput): { reason: string; errorType?: string } {
  const errorName = typeof input.error?.Error === 'string' ? input.error.Error : undefined;
  if (typeof input.reason === 'string' && input.reason) return { reason: clip(input.reason), errorType: errorName };
  const cause = input.error?.Cause;
  if (typeof cause !== 'string' || cause.trim() === '') return { reason: errorName ?? 'no reason given', errorType: errorName };
  let parsed: unknown;
  try {
    parsed = JSON.parse(cause);
  } catch {
    return { reason: clip(withoutStack(cause)), errorType: errorName };
  }
  if (parsed && typeof parsed === 'object') {
    const p = parsed as Record<string, unknown>;
    if (typeof p.errorMessage === 'string') {
      return { reason: clip(withoutStack(p.errorMessage)), errorType: typeof p.errorType === 'string' ? p.errorType : errorName };
    }
    // Step Functions passes the job description with PascalCase keys; the Batch API's own shape is camelCase.
    const statusReason = p.StatusReason ?? p.statusReason;
    if (typeof statusReason === 'string') {
      const container = (p.Container ?? p.container) as { ExitCode?: number; exitCode?: number } | undefined;
      const code = container?.ExitCode ?? container?.exitCode;
      const exit = typeof code === 'number' ? ` (exit code ${code}${code === 2 ? ': file refused' : ''})` : '';
      return { reason: clip(`${statusReason}${exit}`), errorType: errorName };
    }
  }
  return { reason: clip(withoutStack(cause)), errorType: errorName };
}

/** Drops stack-trace lines (`    at f (file:1:2)`) that a plain-text cause may carry. */
function withoutStack(text: string): string {
  return text.split('\n').filter((line) => !/^\s+at\s/.test(line)).join('\n').trim();
}

function clip(text: string): string {
  return text.length > MAX_REASON ? `${text.slice(0, MAX_REASON)}…` : text;
}
