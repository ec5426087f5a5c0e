/**
 * Timestream clients discover their endpoint first (DescribeEndpoints), in the SDK's build step, before the call's
 * retry middleware: once DescribeEndpoints' own attempts fail (one, for the loader's client with `maxAttempts: 1`),
 * the call is not retried and the caller gets a plain `Error` ("The operation to discover endpoint failed. Please
 * retry, ...") carrying the service's error as `reason`. Classifying the wrapper by its name made throttling, 5xx
 * and network failures of discovery look permanent.
 */

/** The error to classify (the service's, for a failed discovery) and whether it came from discovery. */
export interface CallFailure {
  readonly error: Error & { code?: string; cause?: unknown; $metadata?: { httpStatusCode?: number } };
  readonly discovery: boolean;
}

/** Unwraps the SDK's endpoint-discovery failure to the error DescribeEndpoints got; any other error as it is. */
export function callFailure(error: unknown): CallFailure {
  const e = error as Error & { reason?: unknown };
  if (e instanceof Error && e.reason instanceof Error && /discover endpoint failed/i.test(e.message)) {
    return { error: e.reason, discovery: true };
  }
  return { error: e, discovery: false };
}

/** `name: message`, saying when it was endpoint discovery that failed. */
export function describeFailure(failure: CallFailure): string {
  return `${failure.discovery ? 'endpoint discovery (DescribeEndpoints) failed: ' : ''}${failure.error.name}: ${failure.error.message}`;
}
