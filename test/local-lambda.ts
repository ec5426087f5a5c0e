import { randomUUID } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { LocalHttpServer } from './local-http';

/**
 * A local Lambda endpoint for the Invoke API (`POST /2015-03-31/functions/{FunctionName}/invocations`, REST-JSON
 * over HTTP/1.1 as the SDK client speaks it) running registered in-process handlers, synchronous invocations only:
 * - FunctionName: a name, `name:qualifier`, a partial ARN (`account:function:name`) or a function ARN, with or
 *   without a qualifier, URL-encoded; `?Qualifier=` too (a different qualifier than the name's: 400). A function
 *   registered with a qualifier answers only that qualifier; unregistered: 404 `ResourceNotFoundException`.
 * - `X-Amz-Invocation-Type` other than `RequestResponse`: 400 (this fake runs synchronous calls only).
 * - A payload over 6 MB (6,291,456 bytes): 413 `RequestTooLargeException`; not JSON: 400 `InvalidRequestContentException`.
 * - The handler's result: 200, JSON, `X-Amz-Executed-Version`. A thrown error: 200 with `X-Amz-Function-Error:
 *   Unhandled` and `{errorType, errorMessage, trace}`, as the Node.js runtime answers. A result over 6 MB: the
 *   runtime's `Function.ResponseSizeTooLarge` error.
 * - `throttle(request)` returning true: 429 `TooManyRequestsException` (Reason `ReservedFunctionConcurrentInvocationLimitExceeded`).
 * Every request is recorded, whatever was answered.
 */

export const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;

export type LocalFunctionHandler = (event: any, context: LocalLambdaContext) => unknown;

export interface LocalLambdaContext {
  readonly functionName: string;
  readonly functionVersion: string;
  readonly invokedFunctionArn: string;
  readonly memoryLimitInMB: string;
  readonly awsRequestId: string;
  readonly logGroupName: string;
  readonly logStreamName: string;
  getRemainingTimeInMillis(): number;
}

export interface InvokeRecord {
  /** FunctionName as sent (decoded). */
  readonly functionName: string;
  /** The function's name and qualifier, from the ARN or `?Qualifier=`. */
  readonly name: string;
  readonly qualifier?: string;
  readonly invocationType: string;
  readonly bytes: number;
  /** The payload parsed (undefined if it was not JSON). */
  readonly payload: any;
  /** Status answered, and the function error header if any. */
  status?: number;
  functionError?: string;
}

interface Registered {
  readonly name: string;
  readonly qualifier?: string;
  readonly handler: LocalFunctionHandler;
  readonly version: string;
  readonly arn: string;
  readonly timeoutMs: number;
}

const ACCOUNT = '123456789012';
const REGION = 'sa-east-1';
// name, optional qualifier; an ARN `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]` or `<account>:function:<name>[:q]`.
const ARN = /^(?:arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):)?(\d{12}):function:([a-zA-Z0-9_-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?$/;
const NAME = /^([a-zA-Z0-9_-]{1,64})(?::(\$LATEST|[a-zA-Z0-9_-]+))?$/;

/** Name and qualifier of a FunctionName, or undefined if it is none of the accepted forms. */
export function parseFunctionName(value: string): { name: string; qualifier?: string; region?: string; account?: string } | undefined {
  const arn = ARN.exec(value);
  if (arn) return { name: arn[3], qualifier: arn[4], region: arn[1], account: arn[2] };
  const name = NAME.exec(value);
  if (name) return { name: name[1], qualifier: name[2] };
  return undefined;
}

export class LocalLambda {
  private readonly server = new LocalHttpServer((req, res) => void this.handle(req, res));
  private readonly functions: Registered[] = [];
  readonly requests: InvokeRecord[] = [];
  /** Return true to answer a request 429 TooManyRequestsException. */
  throttle?: (request: InvokeRecord) => boolean;

  start(): Promise<string> {
    return this.server.start();
  }

  close(): Promise<void> {
    return this.server.close();
  }

  reset(): void {
    this.requests.length = 0;
  }

  /**
   * Registers a handler under a name or ARN (with a qualifier: that alias or version only). `version` is what
   * `X-Amz-Executed-Version` reports (default: the qualifier if it is a version, `1` for an alias, `$LATEST` without).
   */
  register(nameOrArn: string, handler: LocalFunctionHandler, options: { version?: string; timeoutMs?: number } = {}): void {
    const parsed = parseFunctionName(nameOrArn);
    if (!parsed) throw new Error(`not a function name or ARN: ${nameOrArn}`);
    const { name, qualifier } = parsed;
    const version = options.version ?? (qualifier === undefined ? '$LATEST' : /^\d+$/.test(qualifier) ? qualifier : '1');
    const arn = `arn:aws:lambda:${parsed.region ?? REGION}:${parsed.account ?? ACCOUNT}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
    this.functions.push({ name, qualifier, handler, version, arn, timeoutMs: options.timeoutMs ?? 30_000 });
  }

  /** Requests for a function (by name), in order. */
  of(name: string): InvokeRecord[] {
    return this.requests.filter((r) => r.name === name);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': randomUUID(), ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    const error = (
      record: InvokeRecord | undefined, status: number, type: string, message: string,
      extra: Record<string, unknown> = {}, headers: Record<string, string> = {},
    ) => {
      if (record) record.status = status;
      reply(status, { Type: 'User', message, ...extra }, { 'x-amzn-errortype': type, ...headers });
    };
    const url = new URL(req.url ?? '/', 'http://local');
    const m = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(url.pathname);
    if (req.method !== 'POST' || !m) return error(undefined, 404, 'UnknownOperationException', 'unknown operation');
    const functionName = decodeURIComponent(m[1]);
    const parsed = parseFunctionName(functionName);
    const queryQualifier = url.searchParams.get('Qualifier') ?? undefined;
    let payload: any;
    let json = true;
    try {
      payload = raw.length ? JSON.parse(raw.toString('utf8')) : {};
    } catch {
      json = false;
    }
    const invocationType = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    const record: InvokeRecord = {
      functionName,
      name: parsed?.name ?? functionName,
      qualifier: parsed?.qualifier ?? queryQualifier,
      invocationType,
      bytes: raw.length,
      payload,
    };
    this.requests.push(record);
    if (!parsed) return error(record, 400, 'ValidationException', `1 validation error detected: Value '${functionName}' at 'functionName' failed to satisfy constraint`);
    if (parsed.qualifier && queryQualifier && parsed.qualifier !== queryQualifier) {
      return error(record, 400, 'InvalidParameterValueException', 'The derived qualifier from the function name does not match the specified qualifier.');
    }
    if (raw.length > MAX_PAYLOAD_BYTES) {
      return error(record, 413, 'RequestTooLargeException', `Request must be smaller than ${MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation`);
    }
    if (invocationType !== 'RequestResponse') return error(record, 400, 'InvalidParameterValueException', `local Lambda runs RequestResponse invocations only, not ${invocationType}`);
    const fn = this.functions.find((f) => f.name === parsed.name && f.qualifier === record.qualifier);
    if (!fn) {
      return error(record, 404, 'ResourceNotFoundException', `Function not found: arn:aws:lambda:${REGION}:${ACCOUNT}:function:${parsed.name}${record.qualifier ? `:${record.qualifier}` : ''}`);
    }
    if (!json) return error(record, 400, 'InvalidRequestContentException', 'Could not parse request body into json: Could not parse payload into json');
    if (this.throttle?.(record)) {
      return error(record, 429, 'TooManyRequestsException', 'Rate Exceeded.', { Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded' }, { 'retry-after': '1' });
    }
    const started = Date.now();
    const context: LocalLambdaContext = {
      functionName: fn.name,
      functionVersion: fn.version,
      invokedFunctionArn: fn.arn,
      memoryLimitInMB: '1024',
      awsRequestId: randomUUID(),
      logGroupName: `/aws/lambda/${fn.name}`,
      logStreamName: 'local',
      getRemainingTimeInMillis: () => Math.max(0, fn.timeoutMs - (Date.now() - started)),
    };
    const headers = { 'x-amz-executed-version': fn.version };
    const unhandled = (errorType: string, errorMessage: string, trace: string[] = []) => {
      record.status = 200;
      record.functionError = 'Unhandled';
      reply(200, { errorType, errorMessage, trace }, { ...headers, 'x-amz-function-error': 'Unhandled' });
    };
    let result: unknown;
    try {
      result = await fn.handler(payload, context);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      return unhandled(err.name, err.message, (err.stack ?? '').split('\n'));
    }
    const body = JSON.stringify(result ?? null);
    if (Buffer.byteLength(body) > MAX_PAYLOAD_BYTES) {
      return unhandled('Function.ResponseSizeTooLarge', `Response payload size exceeded maximum allowed payload size (${MAX_PAYLOAD_BYTES} bytes).`);
    }
    record.status = 200;
    reply(200, body, headers);
  }
}
