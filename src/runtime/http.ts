import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { ApiEnv, ApiErrorBody, EXPECTED_UNAVAILABLE_CODES } from './contract';
import { log, recordServerError, startInvocation } from './telemetry';

/**
 * The handler side of every API route: one error shape, JSON responses that are never cached, CORS for
 * the configured origins only, one structured log line per request (`log`), and no exception text to callers.
 */

/** A request the API refuses: its status and code go into the error body as they are. */
export class RequestError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'RequestError';
  }
}

const PLAIN_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/** A parameter or field name for a message: only when it is a plain identifier (no user text echoed otherwise). */
export function safeName(name: string, kind = 'parameter'): string {
  return PLAIN_NAME.test(name) ? `'${name}'` : `(a ${kind} with an invalid name)`;
}

/** A request header, whatever its case. */
export function header(event: Pick<APIGatewayProxyEvent, 'headers'>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === wanted) return value ?? undefined;
  }
  return undefined;
}

export function errorBody(code: string, message: string, requestId: string): ApiErrorBody {
  return { error: { code, message }, requestId };
}

let cors: { readonly raw: string | undefined; readonly origins: readonly string[] } | undefined;

/** The allowed origins (parsed once per value); a malformed value allows none and says so in the log. */
function allowedOrigins(): readonly string[] {
  const raw = process.env[ApiEnv.CORS_ORIGINS];
  if (cors && cors.raw === raw) return cors.origins;
  let parsed: unknown = [];
  try {
    parsed = raw ? JSON.parse(raw) : [];
  } catch {
    log('ERROR', 'configuration', { reason: `${ApiEnv.CORS_ORIGINS} is not a JSON array of origins; CORS disabled` });
  }
  cors = { raw, origins: Array.isArray(parsed) ? parsed.filter((o): o is string => typeof o === 'string') : [] };
  return cors.origins;
}

/** CORS headers for this request: only when its Origin is one of the allowed origins (or `*` is). */
function corsHeaders(event: Pick<APIGatewayProxyEvent, 'headers'> | undefined): Record<string, string> {
  const origins = allowedOrigins();
  if (origins.length === 0) return {};
  const origin = event ? header(event, 'origin') : undefined;
  if (origins.includes('*')) return { 'access-control-allow-origin': '*' };
  if (origin === undefined || !origins.includes(origin)) return { vary: 'Origin' };
  return { 'access-control-allow-origin': origin, 'vary': 'Origin' };
}

export function respond(statusCode: number, body: unknown, event?: Pick<APIGatewayProxyEvent, 'headers'>): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...corsHeaders(event) },
    body: JSON.stringify(body),
  };
}


/**
 * Starts the log context of one API request: the API Gateway request id (`requestId`) and, from the
 * Lambda context, the Lambda request id (`function_request_id`), on every line of the invocation.
 */
export function startRequest(requestId: string | undefined, context?: Partial<Context>): void {
  startInvocation(context, { requestId });
}

/** What a route returns: its body (status 200 unless given) and the fields of its log line. */
export interface RouteResult {
  readonly status?: number;
  readonly body: unknown;
  readonly log?: Record<string, unknown>;
}

/** Counts a 5xx answer in `ServerErrors` unless its code says it is expected (a feature switched off). */
function countServerError(status: number, code?: string): void {
  if (status >= 500 && !(code && EXPECTED_UNAVAILABLE_CODES.includes(code))) recordServerError();
}

/**
 * Runs one route: its result as JSON, a RequestError as its status and code, anything else as a 500 whose
 * text goes to the log only. `operation` names the route in the log lines. Every 5xx but the expected ones
 * counts in `ServerErrors` (the version's rollback alarm).
 */
export async function serve(
  event: Pick<APIGatewayProxyEvent, 'headers'>, requestId: string, operation: string, route: () => Promise<RouteResult>,
): Promise<APIGatewayProxyResult> {
  const started = Date.now();
  try {
    const result = await route();
    const status = result.status ?? 200;
    log(status >= 500 ? 'ERROR' : 'INFO', operation, { requestId, status, ...result.log, ms: Date.now() - started });
    countServerError(status, (result.body as Partial<ApiErrorBody> | undefined)?.error?.code);
    return respond(status, result.body, event);
  } catch (error) {
    if (error instanceof RequestError) {
      log(error.status >= 500 ? 'ERROR' : 'WARN', `${operation} refused`, { requestId, status: error.status, code: error.code, reason: error.message });
      countServerError(error.status, error.code);
      return respond(error.status, errorBody(error.code, error.message, requestId), event);
    }
    const e = error as Error;
    log('ERROR', `${operation} failed`, { requestId, errorType: e?.name, errorMessage: e?.message });
    countServerError(500);
    return respond(500, errorBody('InternalError', 'the request could not be completed', requestId), event);
  }
}

/** The request id of an API Gateway event (the one API Gateway logs and puts in its own error responses). */
export function requestIdOf(event: Partial<Pick<APIGatewayProxyEvent, 'requestContext'>>, fallback?: string): string {
  return event.requestContext?.requestId ?? fallback ?? 'unknown';
}
