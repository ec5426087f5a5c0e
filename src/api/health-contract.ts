/**
 * Environment variables of the health function, shared by the construct that sets them and the handler that reads them.
 * @internal
 */
export const HealthEnv = {
  /** JSON object: lake layer name (raw, processed, failed) to bucket name. */
  LAKE_BUCKETS: 'ONS_LAKE_BUCKETS',
  /** Milliseconds each component check may take before it counts as down. */
  CHECK_TIMEOUT_MS: 'ONS_HEALTH_CHECK_TIMEOUT_MS',
} as const;

/** @internal */
export type ComponentStatus = 'up' | 'down';

/**
 * Body of a health response.
 * @internal
 */
export interface HealthReport {
  readonly status: 'ok' | 'degraded';
  readonly components: Record<string, { readonly status: ComponentStatus; readonly detail?: Record<string, string> }>;
}
