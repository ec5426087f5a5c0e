import { ComponentReport } from '../runtime/contract';

/**
 * Environment variables of the health function, shared by the construct that sets them and the handler that reads them.
 * A component whose variable is unset is reported `notConfigured` and does not make the platform degraded.
 * @internal
 */
export const HealthEnv = {
  /** JSON object: lake layer name (raw, processed, failed) to bucket name. */
  LAKE_BUCKETS: 'ONS_LAKE_BUCKETS',
  /** Milliseconds each component check may take before it counts as down. */
  CHECK_TIMEOUT_MS: 'ONS_HEALTH_CHECK_TIMEOUT_MS',
  /**
   * JSON object: the time-series store's probe configuration (`ITimeSeriesStore.healthProbe()`): `engine` names
   * the engine's probe (timeseries/runtime/health.ts), the other fields are its parameters.
   */
  TIME_SERIES: 'ONS_HEALTH_TIME_SERIES',
  /** The Bedrock knowledge base id: GetKnowledgeBase, up when ACTIVE. */
  KNOWLEDGE_BASE_ID: 'ONS_HEALTH_KNOWLEDGE_BASE_ID',
  /** The ingestion ledger table: DescribeTable, up when ACTIVE or UPDATING (an updating table serves reads and writes). */
  LEDGER_TABLE: 'ONS_HEALTH_LEDGER_TABLE',
  /**
   * JSON object `{ "application", "environment", "profile", "maxAgeSeconds"? }` of the feature flags (AppConfig): up when
   * the profile holds every flag. `maxAgeSeconds` is the flags' cache time and poll interval (default 60).
   */
  FLAGS: 'ONS_HEALTH_FLAGS',
  /** Seconds a readiness report is served from the instance before the checks run again (default 30; 0: every request). */
  READY_CACHE_SECONDS: 'ONS_HEALTH_READY_CACHE_SECONDS',
} as const;

/** The route (API Gateway resource) of the deep readiness check; any other event is answered as liveness. @internal */
export const READINESS_PATH = '/health/ready';

/** The liveness route, open to anyone (load balancers, uptime checks). @internal */
export const LIVENESS_PATH = '/health';

/** Seconds a readiness report is kept when the function is not told otherwise (the construct's default). @internal */
export const DEFAULT_READY_CACHE_SECONDS = 30;

/** The components a health report lists, in order. @internal */
export const HEALTH_COMPONENTS = ['lake', 'timeSeries', 'knowledgeBase', 'ledger', 'flags'] as const;

/** Body of the liveness answer (`GET /health`). @internal */
export interface HealthLiveness {
  readonly status: 'ok';
}

/**
 * Body of a readiness response: `ok` (200) when every configured component is up, `degraded` (503) otherwise.
 * @internal
 */
export interface HealthReport {
  readonly status: 'ok' | 'degraded';
  readonly components: Record<typeof HEALTH_COMPONENTS[number], ComponentReport>;
}
