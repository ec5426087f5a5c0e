import { ComponentReport } from './contract';

/**
 * The toolkit of health probes: read-only calls that say whether a component is reachable, each bounded by an
 * abort signal, reporting classified reasons only (resource names and exception text go to the log line of
 * the failed check). The health handler runs them; areas with several engines keep their probes next to them.
 */

/** Logs one failed check (its reason, and resource names the response leaves out). */
export type Fail = (reason: string, fields?: Record<string, unknown>) => void;

/**
 * A probe of one kind (an engine): `config` is the JSON object its construct wrote (`healthProbe()`), already
 * checked to hold every one of `parameters` as a non-empty string.
 */
export interface Probe {
  /** Names of the fields of `config` the probe needs. */
  readonly parameters: readonly string[];
  readonly run: (config: Record<string, string>, signal: AbortSignal, fail: Fail) => Promise<ComponentReport>;
}

/** One client per service, created on first use and kept for the container's life. */
export function once<T>(create: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= create());
}

/** Up when `status` is one of `upStates`; down with the status otherwise. */
export function inState(status: string | undefined, upStates: readonly string[], fail: Fail, fields: Record<string, unknown>): ComponentReport {
  if (status && upStates.includes(status)) return { status: 'up' };
  const state = status ?? 'UNKNOWN';
  fail(`status ${state}`, fields);
  return { status: 'down', detail: { status: state } };
}

/** Down with the classified reason of `error`. */
export function failed(error: unknown, fail: Fail, fields: Record<string, unknown>): ComponentReport {
  const reason = describeError(error);
  fail(reason, { ...fields, errorType: (error as Error)?.name });
  return { status: 'down', detail: { reason } };
}

/** Down with the configuration's problem (it names variables, not resources). */
export function misconfigured(reason: string, fail: Fail): ComponentReport {
  fail(reason);
  return { status: 'down', detail: { configuration: reason } };
}

/** A JSON object that passes `valid`, or undefined. */
export function parseObject(config: string, valid: (value: Record<string, unknown>) => boolean): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(config);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && valid(parsed as Record<string, unknown>)) {
      return parsed as Record<string, unknown>;
    }
  } catch {
    // undefined below
  }
  return undefined;
}

const NOT_FOUND = new Set(['NotFound', 'NoSuchBucket', 'ResourceNotFoundException']);
const ACCESS_DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'Forbidden']);

/** The classified reason of a failed call: never the exception's message, which may name the resource. */
export function describeError(error: unknown): string {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const status = e?.$metadata?.httpStatusCode;
  if (status === 404 || NOT_FOUND.has(e?.name ?? '')) return 'not found';
  if (status === 403 || ACCESS_DENIED.has(e?.name ?? '')) return 'access denied';
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timed out';
  return status ? `error ${status}` : `unreachable (${e?.name ?? 'unknown error'})`;
}
