import { BedrockAgentClient, GetKnowledgeBaseCommand } from '@aws-sdk/client-bedrock-agent';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { DEFAULT_READY_CACHE_SECONDS, HEALTH_COMPONENTS, HealthEnv, HealthReport, READINESS_PATH } from './contract';
import { ComponentReport } from '../runtime/contract';
import { fetchFlagsAt, InvalidFlagsError, pollIntervalOf } from '../runtime/flags';
import { requestIdOf, respond, startRequest } from '../runtime/http';
import { describeError, Fail, failed, inState, misconfigured, once, parseObject } from '../runtime/probe';
import { log, traced } from '../runtime/telemetry';
import { TIME_SERIES_PROBES } from '../timeseries/runtime/health';

/**
 * Two answers from one function:
 * - `GET /health` (liveness, open): 200 `{ status: ok }` from the function itself, no call to any service, so
 *   anonymous traffic costs no control-plane call (what load balancers and uptime checks use).
 * - `GET /health/ready` (readiness, API key): whether each part of the platform is reachable, with read-only
 *   calls (no synthetic writes), all at once, each bounded by the check timeout. 200 when every configured
 *   component is up, 503 otherwise; a component whose variable is unset is `notConfigured`. The report is kept
 *   for `ONS_HEALTH_READY_CACHE_SECONDS` in the instance: at most one round of calls per that time per warm
 *   instance. The response holds classified reasons only: resource names and exception text go to the log line
 *   of the failed check.
 */

type Component = typeof HEALTH_COMPONENTS[number];
type Check = (config: string, signal: AbortSignal, fail: Fail) => Promise<ComponentReport>;

const s3 = once(() => traced(new S3Client({})));
const dynamodb = once(() => traced(new DynamoDBClient({})));
const bedrockAgent = once(() => traced(new BedrockAgentClient({})));

const CHECKS: Record<Component, { readonly variable: string; readonly check: Check }> = {
  lake: { variable: HealthEnv.LAKE_BUCKETS, check: checkLake },
  timeSeries: { variable: HealthEnv.TIME_SERIES, check: checkTimeSeries },
  knowledgeBase: { variable: HealthEnv.KNOWLEDGE_BASE_ID, check: checkKnowledgeBase },
  ledger: { variable: HealthEnv.LEDGER_TABLE, check: checkLedger },
  flags: { variable: HealthEnv.FLAGS, check: checkFlags },
};

/** The last readiness report of this instance and when it stops being served. */
let cached: { readonly ok: boolean; readonly report: HealthReport; readonly until: number } | undefined;

export async function handler(event: Partial<APIGatewayProxyEvent> = {}, context?: Partial<Context>): Promise<APIGatewayProxyResult> {
  const requestId = requestIdOf(event, context?.awsRequestId);
  startRequest(requestId, context);
  const headers = { headers: event.headers ?? {} };
  if (event.resource !== READINESS_PATH) return respond(200, { status: 'ok' }, headers);
  if (!cached || Date.now() >= cached.until) {
    const report = await checkAll(requestId);
    cached = { ...report, until: Date.now() + readyCacheSeconds() * 1000 };
  }
  return respond(cached.ok ? 200 : 503, cached.report, headers);
}

/** The readiness cache time: unset or invalid is the default; 0 checks on every request (the construct allows 5 to 300). */
function readyCacheSeconds(): number {
  const value = process.env[HealthEnv.READY_CACHE_SECONDS];
  const configured = Number(value);
  return value && Number.isFinite(configured) && configured >= 0 ? configured : DEFAULT_READY_CACHE_SECONDS;
}

/** One round of checks: every configured component at once. */
async function checkAll(requestId: string): Promise<{ ok: boolean; report: HealthReport }> {
  const configured = Number(process.env[HealthEnv.CHECK_TIMEOUT_MS]);
  const timeoutMs = Number.isFinite(configured) && configured > 0 ? configured : 2000;
  const reports = await Promise.all(HEALTH_COMPONENTS.map(async (component): Promise<ComponentReport> => {
    const config = process.env[CHECKS[component].variable];
    if (!config) return { status: 'notConfigured' };
    const fail: Fail = (reason, fields) => log('ERROR', 'health check failed', { requestId, component, reason, ...fields });
    try {
      return await CHECKS[component].check(config, AbortSignal.timeout(timeoutMs), fail);
    } catch (error) {
      const reason = describeError(error);
      fail(reason, { errorType: (error as Error)?.name });
      return { status: 'down', detail: { reason } };
    }
  }));
  const components = Object.fromEntries(HEALTH_COMPONENTS.map((c, i) => [c, reports[i]])) as HealthReport['components'];
  const ok = reports.every((r) => r.status !== 'down');
  return { ok, report: { status: ok ? 'ok' : 'degraded', components } };
}

/** HeadBucket on each bucket (s3:ListBucket); detail by layer. */
async function checkLake(config: string, signal: AbortSignal, fail: Fail): Promise<ComponentReport> {
  const buckets = parseObject(config, (v) => Object.values(v).length > 0 && Object.values(v).every((b) => typeof b === 'string' && b.length > 0));
  if (!buckets) return misconfigured(`${HealthEnv.LAKE_BUCKETS} must be a JSON object of layer to bucket name`, fail);
  const results = await Promise.all(Object.entries(buckets as Record<string, string>).map(async ([layer, bucket]) => {
    try {
      await s3().send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal });
      return [layer, 'up'] as const;
    } catch (error) {
      const reason = describeError(error);
      fail(reason, { layer, bucket });
      return [layer, reason] as const;
    }
  }));
  return { status: results.every(([, r]) => r === 'up') ? 'up' : 'down', detail: Object.fromEntries(results) };
}

/**
 * The store's probe configuration names its engine, and the engine's probe (timeseries/runtime/health.ts) makes
 * the call: this handler knows no engine. Down when the engine has no probe or a parameter of its probe is missing.
 */
async function checkTimeSeries(config: string, signal: AbortSignal, fail: Fail): Promise<ComponentReport> {
  const store = parseObject(config, (v) => typeof v.engine === 'string' && v.engine.length > 0);
  if (!store) return misconfigured(`${HealthEnv.TIME_SERIES} must be a JSON object with an engine`, fail);
  const engine = store.engine as string;
  const probe = Object.prototype.hasOwnProperty.call(TIME_SERIES_PROBES, engine) ? TIME_SERIES_PROBES[engine] : undefined;
  if (!probe) {
    fail('unsupported engine', { engine });
    return { status: 'down', detail: { engine: 'unsupported' } };
  }
  if (!probe.parameters.every((p) => typeof store[p] === 'string' && (store[p] as string).length > 0)) {
    return misconfigured(`${HealthEnv.TIME_SERIES} must be a JSON object with engine and ${probe.parameters.join(' and ')}`, fail);
  }
  return probe.run(store as Record<string, string>, signal, fail);
}

/** GetKnowledgeBase (bedrock:GetKnowledgeBase): up when ACTIVE. */
async function checkKnowledgeBase(id: string, signal: AbortSignal, fail: Fail): Promise<ComponentReport> {
  try {
    const { knowledgeBase } = await bedrockAgent().send(new GetKnowledgeBaseCommand({ knowledgeBaseId: id }), { abortSignal: signal });
    return inState(knowledgeBase?.status, ['ACTIVE'], fail, { knowledgeBaseId: id });
  } catch (error) {
    return failed(error, fail, { knowledgeBaseId: id });
  }
}

/**
 * DescribeTable (dynamodb:DescribeTable): up when ACTIVE or UPDATING (a table being updated, e.g. an index
 * being added, serves reads and writes); CREATING, DELETING, ARCHIVING, INACCESSIBLE_ENCRYPTION_CREDENTIALS... are down.
 */
async function checkLedger(table: string, signal: AbortSignal, fail: Fail): Promise<ComponentReport> {
  try {
    const { Table } = await dynamodb().send(new DescribeTableCommand({ TableName: table }), { abortSignal: signal });
    return inState(Table?.TableStatus, ['ACTIVE', 'UPDATING'], fail, { table });
  } catch (error) {
    return failed(error, fail, { table });
  }
}

/**
 * Feature flags: the profile read from AppConfig (appconfig:StartConfigurationSession and
 * GetLatestConfiguration) through the flags' cache, kept for the profile's poll interval (`maxAgeSeconds`,
 * default 60 s): a probe inside the interval answers from the last configuration read, as AppConfig Data
 * refuses an early poll. Up when it holds every flag of the platform, and the kill switches (when configured)
 * can be read; the detail names the features a kill switch turned off (`killed`) and the flags whose served value
 * is not the one CDK deployed (`notAsDeployed`: a console edit the next deploy undoes).
 */
async function checkFlags(config: string, signal: AbortSignal, fail: Fail): Promise<ComponentReport> {
  const fields = ['application', 'environment', 'profile'];
  const where = parseObject(config, (v) => fields.every((k) => typeof v[k] === 'string' && (v[k] as string).length > 0));
  if (!where) return misconfigured(`${HealthEnv.FLAGS} must be a JSON object with application, environment and profile`, fail);
  const [application, environment, profile] = fields.map((k) => where[k] as string);
  const location = { application, environment, profile, maxAge: pollIntervalOf(where.maxAgeSeconds as string | undefined) };
  try {
    // The provider takes no abort signal: the check's bound comes from racing it.
    const aborted = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    aborted.catch(() => undefined); // an abort after the reads is nobody's error
    const flags = await Promise.race([fetchFlagsAt(location), aborted]);
    const detail: Record<string, string> = {};
    const deployed = parseObject(String(where.deployedValues ?? '{}'), () => true) ?? {};
    const notAsDeployed = Object.keys(deployed).filter((name) => typeof deployed[name] === 'boolean' && flags[name]?.enabled !== deployed[name]);
    if (notAsDeployed.length) detail.notAsDeployed = notAsDeployed.join(',');
    if (typeof where.killSwitchEnvironment === 'string' && typeof where.killSwitchProfile === 'string') {
      const switchesAt = { ...location, environment: where.killSwitchEnvironment, profile: where.killSwitchProfile };
      const switches = await Promise.race([fetchFlagsAt(switchesAt), aborted])
        .catch((error) => { throw Object.assign(new Error('kill switches unreadable'), { killSwitches: true, cause: error }); });
      const killed = Object.keys(switches).filter((name) => switches[name]?.enabled === false);
      if (killed.length) detail.killed = killed.join(',');
    }
    return Object.keys(detail).length ? { status: 'up', detail } : { status: 'up' };
  } catch (error) {
    if ((error as { killSwitches?: boolean }).killSwitches) {
      // Powertools wraps the SDK's error in a GetParameterError: name the SDK's.
      const cause = (error as { cause?: { cause?: unknown } }).cause;
      fail('kill switches unreadable', { application: location.application, error: describeError(cause?.cause ?? cause) });
      return { status: 'down', detail: { reason: 'kill switches unreadable' } };
    }
    if (error instanceof InvalidFlagsError) {
      fail('invalid flags', { application: location.application, problem: error.message });
      return { status: 'down', detail: { reason: 'invalid flags' } };
    }
    // Powertools wraps the SDK's error in a GetParameterError: classify the SDK's.
    return failed((error as { cause?: unknown }).cause ?? error, fail, { application: location.application });
  }
}
