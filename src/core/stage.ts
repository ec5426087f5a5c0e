import { Duration } from 'aws-cdk-lib';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { DataLakeLifecycle, resolveLifecycle, validateLifecycle } from './lifecycle';

/**
 * Request throttling of REST API methods (API Gateway's token bucket: a steady rate and a bucket size).
 *
 * API Gateway applies a stage's throttling to each method on its own (the `*` / `*` method setting),
 * for all callers together; usage plans limit each API key inside it, and the account's Regional quota
 * (10,000 requests per second by default, a 5,000-request bucket; "Amazon API Gateway quotas") caps
 * every API of the account together.
 */
export interface ApiThrottling {
  /**
   * Steady-state requests per second of each method, all callers together.
   */
  readonly rateLimit: number;

  /**
   * Requests one method may take in a burst (the token bucket's size), all callers together.
   */
  readonly burstLimit: number;
}

/**
 * Thresholds the platform's alarms use for one stage.
 */
export interface AlarmThresholds {
  /**
   * Lambda invocation errors, per function, in one evaluation period, at or above which the alarm fires.
   */
  readonly functionErrors: number;

  /**
   * p99 duration of a function, as a percentage of its timeout, at or above which the alarm fires.
   */
  readonly functionDurationPercentOfTimeout: number;

  /**
   * API 5XX responses as a percentage of requests at or above which the alarm fires.
   */
  readonly apiServerErrorRatePercent: number;

  /**
   * API p99 latency at or above which the alarm fires.
   */
  readonly apiLatencyP99: Duration;

  /**
   * Files quarantined in one evaluation period at or above which the alarm fires.
   */
  readonly quarantinedFiles: number;

  /**
   * API 4XX responses as a percentage of requests at or above which the alarm fires (a warning:
   * clients sending bad requests, missing keys, or being throttled).
   *
   * @default 25
   */
  readonly apiClientErrorRatePercent?: number;

  /**
   * Lambda throttles, per function, in one evaluation period, at or above which the alarm fires.
   *
   * @default 1
   */
  readonly functionThrottles?: number;

  /**
   * Rows the ingestion processor rejected (custom metric `RecordsRejected`) in one evaluation period
   * at or above which the alarm fires.
   *
   * @default 100
   */
  readonly recordsRejected?: number;

  /**
   * Errors of the time-series store in one evaluation period at or above which the alarm fires:
   * records the store rejected (custom metric `RecordsRejectedByStore`), and failed or canceled queries
   * of the lake engine's workgroup.
   *
   * @default 1
   */
  readonly timeSeriesErrors?: number;

  /**
   * Records Timestream rejected asynchronously while writing them to the magnetic store
   * (`AWS/Timestream` `MagneticStoreRejectedRecordCount`, summed over the store's database) in one
   * evaluation period at or above which the alarm fires. Most ONS history is older than the memory
   * store's retention and lands in the magnetic store, where a rejection is reported only to the
   * failed bucket (`timeseries-magnetic-store/`), never to the loader.
   *
   * @default 1
   */
  readonly magneticStoreRejectedRecords?: number;

  /**
   * p99 total execution time (Athena's `TotalExecutionTime`, successful DML queries) of the platform's workgroup at or
   * above which the lake engine's slow-query alarm fires: its query handler answers 504 at 25 s.
   *
   * @default Duration.seconds(20)
   */
  readonly lakeQueryTimeP99?: Duration;

  /**
   * CPU, memory or disk utilization (%) of a provisioned time-series instance (Timestream for InfluxDB)
   * at or above which its alarm fires.
   *
   * @default 80
   */
  readonly storeUtilizationPercent?: number;

  /**
   * Length of one evaluation period.
   */
  readonly period: Duration;

  /**
   * Number of periods evaluated.
   */
  readonly evaluationPeriods: number;

  /**
   * Number of breaching periods, out of `evaluationPeriods`, that fire the alarm.
   */
  readonly datapointsToAlarm: number;
}

/**
 * Changes to a stage's alarm thresholds (`PlatformStage.derive()`, `PlatformMonitoring`'s `thresholds`).
 * Each field set replaces the stage's; unset fields keep the stage's value.
 */
export interface AlarmThresholdOverrides {
  /** @default - the stage's `functionErrors` */
  readonly functionErrors?: number;
  /** @default - the stage's `functionDurationPercentOfTimeout` */
  readonly functionDurationPercentOfTimeout?: number;
  /** @default - the stage's `functionThrottles` */
  readonly functionThrottles?: number;
  /** @default - the stage's `apiServerErrorRatePercent` */
  readonly apiServerErrorRatePercent?: number;
  /** @default - the stage's `apiClientErrorRatePercent` */
  readonly apiClientErrorRatePercent?: number;
  /** @default - the stage's `apiLatencyP99` */
  readonly apiLatencyP99?: Duration;
  /** @default - the stage's `quarantinedFiles` */
  readonly quarantinedFiles?: number;
  /** @default - the stage's `recordsRejected` */
  readonly recordsRejected?: number;
  /** @default - the stage's `timeSeriesErrors` */
  readonly timeSeriesErrors?: number;
  /** @default - the stage's `magneticStoreRejectedRecords` */
  readonly magneticStoreRejectedRecords?: number;
  /** @default - the stage's `lakeQueryTimeP99` */
  readonly lakeQueryTimeP99?: Duration;
  /** @default - the stage's `storeUtilizationPercent` */
  readonly storeUtilizationPercent?: number;
  /** @default - the stage's `period` */
  readonly period?: Duration;
  /** @default - the stage's `evaluationPeriods` */
  readonly evaluationPeriods?: number;
  /** @default - the stage's `datapointsToAlarm` */
  readonly datapointsToAlarm?: number;
}

/**
 * Alarm thresholds in effect, every field set: the stage's, its `@default`s filled in, then the overrides
 * (`resolveAlarmThresholds()`). What `PlatformMonitoring` and `SafeDeployment` alarm on; fields as in `AlarmThresholds`.
 */
export interface ResolvedAlarmThresholds {
  /** See `AlarmThresholds.functionErrors`. */
  readonly functionErrors: number;
  /** See `AlarmThresholds.functionDurationPercentOfTimeout`. */
  readonly functionDurationPercentOfTimeout: number;
  /** See `AlarmThresholds.functionThrottles`. */
  readonly functionThrottles: number;
  /** See `AlarmThresholds.apiServerErrorRatePercent`. */
  readonly apiServerErrorRatePercent: number;
  /** See `AlarmThresholds.apiClientErrorRatePercent`. */
  readonly apiClientErrorRatePercent: number;
  /** See `AlarmThresholds.apiLatencyP99`. */
  readonly apiLatencyP99: Duration;
  /** See `AlarmThresholds.quarantinedFiles`. */
  readonly quarantinedFiles: number;
  /** See `AlarmThresholds.recordsRejected`. */
  readonly recordsRejected: number;
  /** See `AlarmThresholds.timeSeriesErrors`. */
  readonly timeSeriesErrors: number;
  /** See `AlarmThresholds.magneticStoreRejectedRecords`. */
  readonly magneticStoreRejectedRecords: number;
  /** See `AlarmThresholds.lakeQueryTimeP99`. */
  readonly lakeQueryTimeP99: Duration;
  /** See `AlarmThresholds.storeUtilizationPercent`. */
  readonly storeUtilizationPercent: number;
  /** See `AlarmThresholds.period`. */
  readonly period: Duration;
  /** See `AlarmThresholds.evaluationPeriods`. */
  readonly evaluationPeriods: number;
  /** See `AlarmThresholds.datapointsToAlarm`. */
  readonly datapointsToAlarm: number;
}

/** The `@default`s of the optional fields of `AlarmThresholds`, for stages built with `custom()`. */
const ALARM_THRESHOLD_DEFAULTS = {
  apiClientErrorRatePercent: 25,
  functionThrottles: 1,
  recordsRejected: 100,
  timeSeriesErrors: 1,
  magneticStoreRejectedRecords: 1,
  lakeQueryTimeP99: Duration.seconds(20),
  storeUtilizationPercent: 80,
};

/**
 * The thresholds in effect: the stage's preset (its unset fields at their `@default`), then `overrides`,
 * field by field, validated like a stage's. Monitoring and safe deployment both alarm on these.
 * @internal
 */
export function resolveAlarmThresholds(stage: PlatformStage, overrides?: AlarmThresholdOverrides): ResolvedAlarmThresholds {
  const merged = overrides ? stage.derive({ name: stage.name, alarmThresholds: overrides }).alarmThresholds : stage.alarmThresholds;
  return { ...ALARM_THRESHOLD_DEFAULTS, ...merged };
}

/**
 * How long the time-series store keeps data in each tier.
 */
export interface TimeSeriesRetention {
  /**
   * Hours a point stays in the memory store (fast, recent queries): 1 to 8766.
   */
  readonly memoryStoreHours: number;

  /**
   * Days a point stays in the magnetic store (1 to 73000). Points older than this are rejected on
   * write, so it must cover the oldest ONS data you load (ONS history starts in 2000).
   */
  readonly magneticStoreDays: number;
}

/**
 * What a stage sets. Every field is the stage's default for every part of the platform.
 */
export interface PlatformStageProps {
  /**
   * Name of the stage, used in the `Stage` tag and in resource descriptions.
   * Lower-case letters, digits and hyphens, starting with a letter.
   */
  readonly name: string;

  /**
   * Retention of every log group the platform creates.
   */
  readonly logRetention: logs.RetentionDays;

  /**
   * Throttling of each method of the REST API (all callers together); every usage plan must fit under it.
   */
  readonly apiThrottling: ApiThrottling;

  /**
   * Throttling of `POST /query`, all callers together: each question spends Bedrock tokens
   * (retrieval, then generation), so it gets a lower limit than the other methods.
   *
   * @default - a tenth of `apiThrottling` (at least 1 request per second and a burst of 1)
   */
  readonly queryThrottling?: ApiThrottling;

  /**
   * Whether stateful resources (buckets, keys, log groups) may be destroyed with the stack when the
   * context flag `ons-data-platform:removeDataOnDestroy` is `true`. When `false` they are always retained.
   */
  readonly allowDataRemoval: boolean;

  /**
   * Lifecycle of the data lake's objects. Every field must be set.
   */
  readonly lifecycle: DataLakeLifecycle;

  /**
   * How new versions of the platform's Lambda functions receive traffic.
   */
  readonly deploymentConfig: codedeploy.ILambdaDeploymentConfig;

  /**
   * X-Ray tracing of the platform's Lambda functions.
   */
  readonly tracing: lambda.Tracing;

  /**
   * Alarm thresholds.
   */
  readonly alarmThresholds: AlarmThresholds;

  /**
   * Retention of the time-series store.
   *
   * @default - 24 hours in memory, 73000 days (200 years, the maximum) on magnetic storage
   */
  readonly timeSeriesRetention?: TimeSeriesRetention;
}

/**
 * Changes to apply to an existing stage with `PlatformStage.derive()`. Unset fields keep the base stage's value.
 */
export interface PlatformStageOverrides {
  /**
   * Name of the derived stage.
   */
  readonly name: string;

  /**
   * @default - the base stage's value
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * @default - the base stage's value
   */
  readonly apiThrottling?: ApiThrottling;

  /**
   * @default - the base stage's value
   */
  readonly queryThrottling?: ApiThrottling;

  /**
   * @default - the base stage's value
   */
  readonly allowDataRemoval?: boolean;

  /**
   * Lifecycle fields to change; unset fields keep the base stage's value.
   *
   * @default - the base stage's lifecycle
   */
  readonly lifecycle?: DataLakeLifecycle;

  /**
   * @default - the base stage's value
   */
  readonly deploymentConfig?: codedeploy.ILambdaDeploymentConfig;

  /**
   * @default - the base stage's value
   */
  readonly tracing?: lambda.Tracing;

  /**
   * Alarm thresholds to change; unset fields keep the base stage's value.
   *
   * @default - the base stage's thresholds
   */
  readonly alarmThresholds?: AlarmThresholdOverrides;

  /**
   * Retention of the time-series store.
   */
  readonly timeSeriesRetention?: TimeSeriesRetention;
}

/**
 * A deployment stage of the platform and every default that depends on it.
 *
 * Use `PlatformStage.DEV`, `PlatformStage.STAGING` or `PlatformStage.PROD`, or derive your own:
 *
 * ```ts
 * const qa = PlatformStage.STAGING.derive({ name: 'qa', logRetention: logs.RetentionDays.TWO_WEEKS });
 * ```
 *
 * Any prop of a construct overrides its stage preset.
 */
export class PlatformStage {
  /**
   * Context flag that lets stateful resources be destroyed with the stack, in stages that allow it.
   * Without it (or with any value but `true`), buckets, keys and log groups are retained.
   */
  public static readonly REMOVE_DATA_ON_DESTROY_CONTEXT = 'ons-data-platform:removeDataOnDestroy';

  /**
   * Development: short retention, low throttling, all-at-once deployments, no tracing; data may be
   * destroyed with the stack when the context flag allows it.
   */
  public static readonly DEV = new PlatformStage({
    name: 'dev',
    logRetention: logs.RetentionDays.ONE_WEEK,
    apiThrottling: { rateLimit: 10, burstLimit: 20 },
    queryThrottling: { rateLimit: 2, burstLimit: 4 },
    allowDataRemoval: true,
    lifecycle: {
      rawInfrequentAccessAfterDays: 30,
      rawGlacierInstantRetrievalAfterDays: 90,
      rawDeepArchiveAfterDays: 365,
      processedInfrequentAccessAfterDays: 30,
      failedExpirationDays: 30,
      accessLogsExpirationDays: 30,
      noncurrentVersionExpirationDays: 7,
      abortIncompleteMultipartUploadDays: 1,
    },
    deploymentConfig: codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE,
    tracing: lambda.Tracing.DISABLED,
    alarmThresholds: {
      functionErrors: 5,
      functionDurationPercentOfTimeout: 90,
      apiServerErrorRatePercent: 10,
      apiLatencyP99: Duration.seconds(10),
      quarantinedFiles: 10,
      apiClientErrorRatePercent: 50,
      functionThrottles: 10,
      recordsRejected: 1000,
      storeUtilizationPercent: 90,
      timeSeriesErrors: 10,
      magneticStoreRejectedRecords: 100,
      period: Duration.minutes(5),
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
    },
    timeSeriesRetention: { memoryStoreHours: 24, magneticStoreDays: 73000 },
  });

  /**
   * Staging: production-like lifecycle and tracing, linear deployments; data may be destroyed with
   * the stack when the context flag allows it.
   */
  public static readonly STAGING = new PlatformStage({
    name: 'staging',
    logRetention: logs.RetentionDays.ONE_MONTH,
    apiThrottling: { rateLimit: 50, burstLimit: 100 },
    queryThrottling: { rateLimit: 5, burstLimit: 10 },
    allowDataRemoval: true,
    lifecycle: {
      rawInfrequentAccessAfterDays: 30,
      rawGlacierInstantRetrievalAfterDays: 90,
      rawDeepArchiveAfterDays: 365,
      processedInfrequentAccessAfterDays: 30,
      failedExpirationDays: 365,
      accessLogsExpirationDays: 90,
      noncurrentVersionExpirationDays: 30,
      abortIncompleteMultipartUploadDays: 7,
    },
    deploymentConfig: codedeploy.LambdaDeploymentConfig.LINEAR_10PERCENT_EVERY_1MINUTE,
    tracing: lambda.Tracing.ACTIVE,
    alarmThresholds: {
      functionErrors: 3,
      functionDurationPercentOfTimeout: 85,
      apiServerErrorRatePercent: 5,
      apiLatencyP99: Duration.seconds(5),
      quarantinedFiles: 5,
      apiClientErrorRatePercent: 25,
      functionThrottles: 5,
      recordsRejected: 500,
      storeUtilizationPercent: 85,
      timeSeriesErrors: 5,
      magneticStoreRejectedRecords: 10,
      period: Duration.minutes(5),
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
    },
    timeSeriesRetention: { memoryStoreHours: 72, magneticStoreDays: 73000 },
  });

  /**
   * Production: 90-day logs, canary deployments, tracing, failed files kept 7 years; data is
   * always retained, whatever the context flag says.
   */
  public static readonly PROD = new PlatformStage({
    name: 'prod',
    logRetention: logs.RetentionDays.THREE_MONTHS,
    apiThrottling: { rateLimit: 100, burstLimit: 200 },
    queryThrottling: { rateLimit: 10, burstLimit: 20 },
    allowDataRemoval: false,
    lifecycle: {
      rawInfrequentAccessAfterDays: 30,
      rawGlacierInstantRetrievalAfterDays: 90,
      rawDeepArchiveAfterDays: 365,
      processedInfrequentAccessAfterDays: 30,
      failedExpirationDays: 7 * 365,
      accessLogsExpirationDays: 90,
      noncurrentVersionExpirationDays: 90,
      abortIncompleteMultipartUploadDays: 7,
    },
    deploymentConfig: codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_5MINUTES,
    tracing: lambda.Tracing.ACTIVE,
    alarmThresholds: {
      functionErrors: 1,
      functionDurationPercentOfTimeout: 80,
      apiServerErrorRatePercent: 1,
      apiLatencyP99: Duration.seconds(3),
      quarantinedFiles: 1,
      apiClientErrorRatePercent: 10,
      functionThrottles: 1,
      recordsRejected: 100,
      storeUtilizationPercent: 80,
      timeSeriesErrors: 1,
      magneticStoreRejectedRecords: 1,
      period: Duration.minutes(5),
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
    },
    timeSeriesRetention: { memoryStoreHours: 168, magneticStoreDays: 73000 },
  });

  /**
   * A stage built from scratch, with every value given. To change a few values of a preset, use `derive()`.
   */
  public static custom(props: PlatformStageProps): PlatformStage {
    return new PlatformStage(props);
  }

  /** Name of the stage (the `Stage` tag). */
  public readonly name: string;
  /** Retention of every log group. */
  public readonly logRetention: logs.RetentionDays;
  /** Throttling of each method of the REST API, all callers together. */
  public readonly apiThrottling: ApiThrottling;
  /** Throttling of `POST /query`, all callers together. */
  public readonly queryThrottling: ApiThrottling;
  /** Whether stateful resources may be destroyed when the context flag asks for it. */
  public readonly allowDataRemoval: boolean;
  /** Lifecycle of the data lake's objects (every field set). */
  public readonly lifecycle: DataLakeLifecycle;
  /** How new Lambda versions receive traffic. */
  public readonly deploymentConfig: codedeploy.ILambdaDeploymentConfig;
  /** X-Ray tracing of Lambda functions. */
  public readonly tracing: lambda.Tracing;
  /** Alarm thresholds. */
  public readonly alarmThresholds: AlarmThresholds;
  /** Retention of the time-series store. */
  public readonly timeSeriesRetention: TimeSeriesRetention;

  private constructor(props: PlatformStageProps) {
    validateStage(props);
    this.name = props.name;
    this.logRetention = props.logRetention;
    // Copied, so a later change to the caller's objects cannot change the stage.
    this.apiThrottling = { ...props.apiThrottling };
    this.queryThrottling = { ...(props.queryThrottling ?? defaultQueryThrottling(props.apiThrottling)) };
    this.allowDataRemoval = props.allowDataRemoval;
    this.lifecycle = { ...props.lifecycle };
    this.deploymentConfig = props.deploymentConfig;
    this.tracing = props.tracing;
    this.alarmThresholds = { ...props.alarmThresholds };
    this.timeSeriesRetention = { ...(props.timeSeriesRetention ?? { memoryStoreHours: 24, magneticStoreDays: 73000 }) };
  }

  /**
   * A new stage that takes this stage's values, changed by `overrides`.
   */
  public derive(overrides: PlatformStageOverrides): PlatformStage {
    return new PlatformStage({
      name: overrides.name,
      logRetention: overrides.logRetention ?? this.logRetention,
      apiThrottling: overrides.apiThrottling ?? this.apiThrottling,
      queryThrottling: overrides.queryThrottling ?? this.queryThrottling,
      allowDataRemoval: overrides.allowDataRemoval ?? this.allowDataRemoval,
      lifecycle: resolveLifecycle(this.lifecycle, overrides.lifecycle, `PlatformStage '${overrides.name}' lifecycle`),
      deploymentConfig: overrides.deploymentConfig ?? this.deploymentConfig,
      tracing: overrides.tracing ?? this.tracing,
      alarmThresholds: { ...this.alarmThresholds, ...definedFields(overrides.alarmThresholds) },
      timeSeriesRetention: overrides.timeSeriesRetention ?? this.timeSeriesRetention,
    });
  }
}

function validateStage(props: PlatformStageProps): void {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(props.name)) {
    throw new Error(`PlatformStage name: expected 1-32 lower-case letters, digits or hyphens starting with a letter, got '${props.name}'`);
  }
  const where = `PlatformStage '${props.name}'`;
  positiveNumber(`${where} apiThrottling.rateLimit`, props.apiThrottling.rateLimit);
  positiveInteger(`${where} apiThrottling.burstLimit`, props.apiThrottling.burstLimit);
  if (props.queryThrottling) {
    positiveNumber(`${where} queryThrottling.rateLimit`, props.queryThrottling.rateLimit);
    positiveInteger(`${where} queryThrottling.burstLimit`, props.queryThrottling.burstLimit);
  }
  const a = props.alarmThresholds;
  positiveInteger(`${where} alarmThresholds.functionErrors`, a.functionErrors);
  percentage(`${where} alarmThresholds.functionDurationPercentOfTimeout`, a.functionDurationPercentOfTimeout);
  percentage(`${where} alarmThresholds.apiServerErrorRatePercent`, a.apiServerErrorRatePercent);
  positiveInteger(`${where} alarmThresholds.quarantinedFiles`, a.quarantinedFiles);
  if (a.apiClientErrorRatePercent !== undefined) percentage(`${where} alarmThresholds.apiClientErrorRatePercent`, a.apiClientErrorRatePercent);
  if (a.functionThrottles !== undefined) positiveInteger(`${where} alarmThresholds.functionThrottles`, a.functionThrottles);
  if (a.recordsRejected !== undefined) positiveInteger(`${where} alarmThresholds.recordsRejected`, a.recordsRejected);
  if (a.timeSeriesErrors !== undefined) positiveInteger(`${where} alarmThresholds.timeSeriesErrors`, a.timeSeriesErrors);
  if (a.magneticStoreRejectedRecords !== undefined) {
    positiveInteger(`${where} alarmThresholds.magneticStoreRejectedRecords`, a.magneticStoreRejectedRecords);
  }
  if (a.lakeQueryTimeP99 !== undefined && !a.lakeQueryTimeP99.isUnresolved() && a.lakeQueryTimeP99.toMilliseconds() <= 0) {
    throw new Error(`${where} alarmThresholds.lakeQueryTimeP99: expected a positive duration, got ${a.lakeQueryTimeP99.toHumanString()}`);
  }
  if (a.storeUtilizationPercent !== undefined) percentage(`${where} alarmThresholds.storeUtilizationPercent`, a.storeUtilizationPercent);
  positiveInteger(`${where} alarmThresholds.evaluationPeriods`, a.evaluationPeriods);
  positiveInteger(`${where} alarmThresholds.datapointsToAlarm`, a.datapointsToAlarm);
  if (a.datapointsToAlarm > a.evaluationPeriods) {
    throw new Error(`${where} alarmThresholds.datapointsToAlarm (${a.datapointsToAlarm}) must not exceed evaluationPeriods (${a.evaluationPeriods})`);
  }
  validateLifecycle(`${where} lifecycle`, props.lifecycle, { complete: true });
  const r = props.timeSeriesRetention;
  // Limits of Timestream for LiveAnalytics' RetentionProperties.
  if (r && (!Number.isInteger(r.memoryStoreHours) || r.memoryStoreHours < 1 || r.memoryStoreHours > 8766)) {
    throw new Error(`${where} timeSeriesRetention.memoryStoreHours: expected an integer from 1 to 8766, got ${r.memoryStoreHours}`);
  }
  if (r && (!Number.isInteger(r.magneticStoreDays) || r.magneticStoreDays < 1 || r.magneticStoreDays > 73000)) {
    throw new Error(`${where} timeSeriesRetention.magneticStoreDays: expected an integer from 1 to 73000, got ${r.magneticStoreDays}`);
  }
}

/** A tenth of the stage's method limits, for `POST /query` of stages that do not set it. */
function defaultQueryThrottling(api: ApiThrottling): ApiThrottling {
  return { rateLimit: Math.max(1, api.rateLimit / 10), burstLimit: Math.max(1, Math.ceil(api.burstLimit / 10)) };
}

/** The fields of `overrides` that are set: an unset field keeps the base value. */
function definedFields<T extends object>(overrides: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(overrides ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function positiveNumber(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}: expected a positive number, got ${value}`);
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name}: expected a positive integer, got ${value}`);
}

function percentage(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0 || value > 100) throw new Error(`${name}: expected a percentage in (0, 100], got ${value}`);
}
