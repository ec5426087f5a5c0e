import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context } from 'aws-lambda';
import { FUNCTION_DIMENSIONS, OperationsEnv, PlatformMetricDefinition, PlatformMetrics } from './contract';

/**
 * Handler side of the operations contract (bundled into the assets; the constructs import nothing from
 * here): the one Powertools Logger and the one Powertools Metrics of a handler. Each bundle holds its own
 * copy of this module, so each function has exactly one of each, created on first use, when the
 * environment the platform sets (POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE,
 * POWERTOOLS_LOG_LEVEL) is read.
 *
 * Logs are JSON lines written by Powertools straight to stdout (INFO, DEBUG) and stderr (WARN, ERROR):
 * `level`, `message`, `timestamp`, `service`, the invocation's correlation keys, then the fields given.
 * Metrics are CloudWatch embedded metric format documents on stdout, one per invocation at most.
 * @internal
 */

let logger: Logger | undefined;
let tracer: Tracer | undefined;

/**
 * `client` with an X-Ray subsegment per AWS call when tracing is on (POWERTOOLS_TRACE_ENABLED, set from the
 * stage, inside Lambda), unchanged otherwise. The one Tracer also traces outgoing HTTP(S) and fetch calls.
 * Logs carry the trace id (`xray_trace_id`) beside the request or execution id, so a trace and its log
 * lines find each other.
 * @internal
 */
export function traced<T>(client: T): T {
  const t = (tracer ??= new Tracer());
  return t.isTracingEnabled() ? t.captureAWSv3Client(client) : client;
}

/** The handler's logger: lines go through `log`. */
function platformLogger(): Logger {
  return (logger ??= new Logger());
}

type Level = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/**
 * One JSON line per event (CloudWatch Logs Insights reads the fields), through the handler's logger:
 * `level`, `message`, `timestamp`, `service`, the invocation's correlation keys (see `startInvocation`:
 * `requestId` for the API, `executionArn` and `objectKey` for the ingestion steps), then `fields`.
 * DEBUG and INFO go to stdout, WARN and ERROR to stderr.
 * @internal
 */
export function log(level: Level, message: string, fields: Record<string, unknown> = {}): void {
  const to = platformLogger();
  if (level === 'ERROR') to.error(message, fields);
  else if (level === 'WARN') to.warn(message, fields);
  else if (level === 'INFO') to.info(message, fields);
  else to.debug(message, fields);
}

// undefined: not created yet; null: no namespace in the environment, so no metrics (see below).
let metrics: Metrics | null | undefined;

function platformMetrics(): Metrics | undefined {
  if (metrics === undefined) {
    const namespace = process.env[OperationsEnv.METRICS_NAMESPACE];
    // Without the namespace the platform sets, the code runs outside a platform function (a local run,
    // a test of the logs only): it emits no metrics rather than metrics in Powertools' default namespace.
    // The cold-start metric stays off (captureColdStartMetric is never called): one more custom metric
    // per function that no alarm watches, paid for on every cold start.
    metrics = namespace
      ? new Metrics({ namespace, serviceName: process.env[OperationsEnv.SERVICE_NAME], logger: platformLogger() })
      : null;
  }
  return metrics ?? undefined;
}

/**
 * Starts an invocation's log context: drops the previous invocation's keys, adds the Lambda context when
 * there is one (`function_request_id`, `function_name`, `cold_start`...) and `keys` to every line after.
 * @internal
 */
export function startInvocation(context: Partial<Context> | undefined, keys: Record<string, string | undefined>): void {
  const to = platformLogger();
  to.resetKeys();
  if (context?.awsRequestId) to.addContext(context as Context);
  const defined = Object.fromEntries(Object.entries(keys).filter(([, v]) => v !== undefined && v !== ''));
  to.appendKeys(defined);
}

/**
 * Stores one value of a platform metric (name and unit from the contract; its `service` dimension is the
 * function's POWERTOOLS_SERVICE_NAME), with extra dimensions when given. Published by `flushMetrics`.
 * @internal
 */
export function recordMetric(metric: PlatformMetricDefinition, value: number, dimensions: Record<string, string> = {}): void {
  const m = platformMetrics();
  if (!m) return;
  for (const [name, dimension] of Object.entries(dimensions)) m.addDimension(name, dimension);
  m.addMetric(metric.name, metric.unit, value);
}

/**
 * Publishes the metrics stored during this invocation (one EMF document), if any: call it in a `finally`
 * at the end of every invocation, so a failed one publishes what it recorded. Never throws.
 * @internal
 */
export function flushMetrics(): void {
  const m = metrics;
  if (!m || !m.hasStoredMetrics()) return;
  try {
    m.publishStoredMetrics();
  } catch (error) {
    platformLogger().warn('metrics not published', { errorType: (error as Error)?.name, errorMessage: (error as Error)?.message });
  }
}

/**
 * Publishes one `ServerErrors` at once (its own EMF document, so its dimensions never mix with the invocation's
 * other metrics): the function's name and its version (no `service`), from the variables Lambda sets. Outside Lambda
 * (no version) or without the platform's namespace, nothing. Never throws.
 * @internal
 */
export function recordServerError(): void {
  const m = platformMetrics();
  const name = process.env[FUNCTION_DIMENSIONS.FUNCTION_NAME.variable];
  const version = process.env[FUNCTION_DIMENSIONS.FUNCTION_VERSION.variable];
  if (!m || !name || !version) return;
  try {
    const single = m.singleMetric();
    // The function's name already says which part it is: the alarm names exactly these two dimensions.
    single.clearDefaultDimensions();
    single.addDimension(FUNCTION_DIMENSIONS.FUNCTION_NAME.name, name);
    single.addDimension(FUNCTION_DIMENSIONS.FUNCTION_VERSION.name, version);
    single.addMetric(PlatformMetrics.SERVER_ERRORS.name, PlatformMetrics.SERVER_ERRORS.unit, 1);
  } catch (error) {
    platformLogger().warn('metrics not published', { errorType: (error as Error)?.name, errorMessage: (error as Error)?.message });
  }
}
