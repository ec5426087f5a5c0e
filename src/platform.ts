import { CfnElement, CfnOutput, Duration, Stack, Token } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { PlatformApi, PlatformApiOptions } from './api/platform-api';
import { applyPlatformTags, logsKeyInventory } from './core/defaults';
import { keepLogicalId } from './core/logical-ids';
import { acknowledgePlatformChoices } from './core/nag';
import { AwsCall, CallerInventory } from './core/permissions';
import { invokeTarget, SafeDeployment, SafeDeploymentOptions } from './core/safe-deployment';
import { PlatformStage } from './core/stage';
import { createHealthCheck, healthCheckInventory, HealthCheckProps } from './health/health-check';
import { IngestionPipeline } from './ingestion/pipeline';
import { IngestionOptions } from './ingestion/pipeline-props';
import { KnowledgeBase, KnowledgeBaseOptions } from './knowledge/knowledge-base';
import { DataLake } from './lake/data-lake';
import { DataLakeOptions } from './lake/data-lake-props';
import { IngestionLedger } from './ledger/ingestion-ledger';
import { FeatureFlags, FeatureFlagsOptions } from './operations/feature-flags';
import { PlatformMonitoring, PlatformMonitoringOptions } from './operations/monitoring';
import { TimeSeriesEngine } from './timeseries/engine';
import { ITimeSeriesStore } from './timeseries/store';

/**
 * The stack outputs `OnsDataPlatform` emits, by name. Each output's key (its `OutputKey` in
 * `aws cloudformation describe-stacks`) is the platform's `outputPrefix` followed by the name, e.g. `PlatformRawBucketName`.
 */
export enum PlatformOutput {
  /** Name of the raw bucket: upload ONS files here to ingest them. */
  RAW_BUCKET_NAME = 'RawBucketName',
  /** Name of the processed bucket (Parquet, data cards, reports of reprocessing runs). */
  PROCESSED_BUCKET_NAME = 'ProcessedBucketName',
  /** Name of the failed bucket (quarantined files and rejected rows). */
  FAILED_BUCKET_NAME = 'FailedBucketName',
  /** Base URL of the REST API, with its stage and a trailing slash (`https://….execute-api.….amazonaws.com/v1/`). */
  API_URL = 'ApiUrl',
  /** ARN of the ingestion state machine (one execution per uploaded object version). */
  INGESTION_STATE_MACHINE_ARN = 'IngestionStateMachineArn',
  /** ARN of the reprocessing state machine (files chosen by a ledger query or a prefix). */
  REPROCESS_STATE_MACHINE_ARN = 'ReprocessStateMachineArn',
  /** ARN of the backfill state machine (every file of a raw-bucket prefix). */
  BACKFILL_STATE_MACHINE_ARN = 'BackfillStateMachineArn',
  /** Name of the ingestion ledger's DynamoDB table. */
  LEDGER_TABLE_NAME = 'LedgerTableName',
  /** Name of the CloudWatch dashboard of the platform. */
  DASHBOARD_NAME = 'DashboardName',
  /** Name of the Athena workgroup to query the lake with. */
  ATHENA_WORK_GROUP_NAME = 'AthenaWorkGroupName',
  /** Name of the Glue database of the lake's tables. */
  GLUE_DATABASE_NAME = 'GlueDatabaseName',
  /** Id of the feature flags' AppConfig application (`aws appconfig start-deployment --application-id`). */
  FLAGS_APPLICATION_ID = 'FlagsApplicationId',
  /** Id of the kill switches' AppConfig environment (no alarm watches it). */
  KILL_SWITCH_ENVIRONMENT_ID = 'KillSwitchEnvironmentId',
  /** Id of the kill-switch configuration profile. */
  KILL_SWITCH_PROFILE_ID = 'KillSwitchProfileId',
  /** Id of the deployment strategy that deploys the kill switches at once. */
  EMERGENCY_STRATEGY_ID = 'EmergencyStrategyId',
}

/**
 * CloudFormation caps an output's logical id (its key) at 255 characters, alphanumeric only, and a template at 200
 * outputs: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html
 */
const MAX_OUTPUT_KEY_LENGTH = 255;
const LONGEST_OUTPUT_NAME = Math.max(...Object.values(PlatformOutput).map((n) => n.length));

/**
 * Properties of `OnsDataPlatform`.
 */
export interface OnsDataPlatformProps {
  /**
   * The stage: every default that differs between development and production comes from it.
   */
  readonly stage: PlatformStage;

  /**
   * Options of the data lake.
   *
   * @default - the stage's defaults and a new KMS key
   */
  readonly dataLake?: DataLakeOptions;

  /**
   * The time-series engine the API queries (and the pipeline loads, for the two Timestream engines). The lake engine
   * queries the processed Parquet with Athena: no loader, no idle cost, any account and region with Athena.
   * `TimeSeriesEngine.timestreamLiveAnalytics()` keeps the Timestream database of a platform deployed before the lake
   * engine became the default (and queries in milliseconds); `TimeSeriesEngine.timestreamInfluxDb()` has the lowest
   * latency and an always-on instance's cost.
   *
   * @default TimeSeriesEngine.lake()
   */
  readonly timeSeries?: TimeSeriesEngine;

  /**
   * Options of the knowledge base (vector store, embedding model, chunking, scheduled sync).
   *
   * @default - S3 Vectors, Titan Text Embeddings V2 (1024), fixed-size chunks of 300 tokens, no scheduled sync
   */
  readonly knowledgeBase?: KnowledgeBaseOptions;

  /**
   * Options of the ingestion pipeline.
   *
   * @default - the stage's defaults: Lambda up to 256 MiB, AWS Batch on Fargate above
   */
  readonly ingestion?: IngestionOptions;

  /**
   * Options of the REST API (authorization, usage plans, throttling, CORS, WAF).
   *
   * @default - API keys with the basic and premium usage plans, the stage's throttling, no CORS, no WAF
   */
  readonly api?: PlatformApiOptions;

  /**
   * Options of the feature flags (AppConfig): first values, rollout strategy, cache time.
   *
   * @default - every flag on, Lambda up to the ingestion's threshold, the stage's rollout, 60 s cache
   */
  readonly featureFlags?: FeatureFlagsOptions;

  /**
   * Tags added to every resource of the platform, after `Project`, `Stage` and `ManagedBy`
   * (a key given here wins).
   *
   * @default - only the platform tags
   */
  readonly tags?: { [key: string]: string };

  /**
   * Concurrent executions reserved for each Lambda function the platform creates.
   *
   * @default - no reservation: functions share the account's unreserved concurrency
   */
  readonly reservedConcurrentExecutions?: number;

  /**
   * Options of the platform's monitoring (alarm topics and their email subscriptions, a monthly
   * budget, threshold overrides).
   *
   * @default - the stage's thresholds, no email subscription, no budget
   */
  readonly monitoring?: PlatformMonitoringOptions;

  /**
   * How long the readiness check (`GET /health/ready`) serves its last report from a warm instance before it asks
   * every component again: at most one round of control-plane calls (HeadBucket, DescribeTable, GetKnowledgeBase,
   * the time-series store's describe call, AppConfig) per this time per instance, however many requests come.
   * Whole seconds from 5 to 300: shorter barely bounds a burst, longer hides an outage (and a recovery) too long.
   *
   * @default Duration.seconds(30)
   */
  readonly healthReadinessCacheTtl?: Duration;

  /**
   * How function changes reach traffic: the API-facing and processing functions are published through
   * an alias and a CodeDeploy deployment group that shifts traffic per the stage and rolls back on the
   * alias's error or latency alarm.
   *
   * @default - on, with the stage's deployment config (all at once in DEV, linear 10 % a minute in
   * STAGING, canary 10 % for 5 minutes in PROD) and rollback thresholds
   */
  readonly safeDeployment?: SafeDeploymentOptions;

  /**
   * Whether the platform adds its stack outputs (see `PlatformOutput`: the buckets, the API URL, the state machines,
   * the ledger table, the dashboard, the Athena workgroup and the Glue database) to the stack that holds it, so a
   * script reads them with `aws cloudformation describe-stacks` instead of hunting in the console. They are plain
   * outputs, never exports (an export blocks replacing or deleting what it names while another stack imports it), and
   * no output holds a secret. Turn them off to keep the template's outputs for your own (CloudFormation allows 200).
   *
   * @default true
   */
  readonly outputs?: boolean;

  /**
   * Prefix of every output key: the key of `PlatformOutput.RAW_BUCKET_NAME` is `<outputPrefix>RawBucketName`. Letters
   * and digits only (CloudFormation output keys are alphanumeric, at most 255 characters); `''` gives the bare names.
   * Two platforms in one stack need different prefixes: synthesis fails naming the clashing key otherwise.
   *
   * @default - the platform's construct id without its non-alphanumeric characters (`PlatformRawBucketName` for id
   * `Platform`), the same in every stage
   */
  readonly outputPrefix?: string;
}

/**
 * The ONS data platform: ONS files dropped into a bucket become validated time series, an analytics
 * lake and a knowledge base behind a REST API.
 *
 * It composes the `DataLake`, the `IngestionPipeline`, the time-series store, the `KnowledgeBase`
 * and the `PlatformApi` in front of them, each also usable on its own.
 * Every part takes its defaults from `stage`, every resource is tagged, and every Lambda function
 * gets the platform's defaults (Node.js 24 on arm64, KMS-encrypted environment and log group, the
 * stage's log retention and tracing).
 *
 * @example
 * new OnsDataPlatform(stack, 'Platform', { stage: PlatformStage.PROD });
 */
export class OnsDataPlatform extends Construct {
  /** The stage the platform was built for. */
  public readonly stage: PlatformStage;
  /** The customer-managed key that encrypts data, logs and function environments. */
  public readonly encryptionKey: kms.IKey;
  /** Raw, processed, failed and access-log buckets. */
  public readonly dataLake: DataLake;
  /** The ingestion ledger: the pipeline and the time-series loader record in it, the API and the health check read it. */
  public readonly ledger: IngestionLedger;
  /**
   * Reports whether the platform's components are reachable (read-only checks): 200 when all are
   * up, 503 otherwise, in API Gateway proxy format.
   */
  public readonly healthFunction: lambda.IFunction;
  /** From upload to processed data: the trigger, the state machines, the processors and the ledger. */
  public readonly ingestion: IngestionPipeline;
  /** The time-series store. */
  public readonly timeSeries: ITimeSeriesStore;
  /** The Bedrock knowledge base over uploaded documents and data cards, synchronised by the pipeline. */
  public readonly knowledgeBase: KnowledgeBase;
  /** The feature flags (AppConfig) the router, the query functions and the health check read. */
  public readonly featureFlags: FeatureFlags;
  /** The REST API: health, questions, the catalog, time series and the ingestion ledger. */
  public readonly api: PlatformApi;
  /**
   * Alarms on every function, state machine, queue, API and store of the platform, their topics,
   * the dashboard and the budget. Call `monitoring.watch(construct)` for resources you add to the platform later.
   */
  public readonly monitoring: PlatformMonitoring;
  /**
   * Aliases and CodeDeploy deployment groups of the API-facing and processing functions (absent when
   * `safeDeployment.enabled` is false).
   */
  public readonly safeDeployment?: SafeDeployment;
  /** Prefix of the keys of the platform's stack outputs (`''` when the keys are the bare names). */
  public readonly outputPrefix: string;
  /** The health check's props (for the permission inventory). */
  private readonly healthProps: HealthCheckProps;
  /** Whether the platform added its stack outputs. */
  private readonly outputsEnabled: boolean;

  constructor(scope: Construct, id: string, props: OnsDataPlatformProps) {
    super(scope, id);
    this.stage = props.stage;
    // Checked first: a bad prefix fails before any resource is built.
    this.outputPrefix = validateOutputPrefix(props.outputPrefix, id);
    this.outputsEnabled = props.outputs ?? true;
    applyPlatformTags(this, this.stage, props.tags);

    this.dataLake = new DataLake(this, 'DataLake', { ...props.dataLake, stage: this.stage });
    this.encryptionKey = this.dataLake.encryptionKey;

    if (props.safeDeployment?.enabled ?? true) {
      // Rollback alarms and monitoring alarm on the same thresholds: the stage's, then the monitoring's overrides.
      const thresholds = this.stage.derive({ name: this.stage.name, alarmThresholds: props.monitoring?.thresholds });
      this.safeDeployment = new SafeDeployment(this, 'SafeDeployment', { ...props.safeDeployment, stage: thresholds });
    }

    // The ledger first: the store's loader and the pipeline both record in it. Its table keeps the logical id it had
    // when the pipeline made it (Ingestion/Ledger/Table), so upgrading never replaces the table and its items.
    this.ledger = new IngestionLedger(this, 'Ledger', { stage: this.stage, encryptionKey: this.encryptionKey });
    keepLogicalId(this.ledger.table.node.defaultChild as CfnElement, this, ['Ingestion', 'Ledger', 'Table']);

    // The flags before the parts whose functions read them: each part binds its own function when it makes it.
    this.featureFlags = new FeatureFlags(this, 'FeatureFlags', {
      ...props.featureFlags,
      defaults: {
        lambdaMaxBytes: (props.ingestion?.lambdaMaxFileSize ?? IngestionPipeline.DEFAULT_LAMBDA_MAX_FILE_SIZE).toBytes(),
        ...props.featureFlags?.defaults,
      },
      stage: this.stage,
      encryptionKey: this.encryptionKey,
    });

    this.timeSeries = (props.timeSeries ?? TimeSeriesEngine.lake()).bind(this, {
      stage: this.stage,
      dataLake: this.dataLake,
      ledger: this.ledger,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      featureFlags: this.featureFlags,
    });

    this.knowledgeBase = new KnowledgeBase(this, 'Knowledge', {
      ...props.knowledgeBase,
      stage: this.stage,
      dataLake: this.dataLake,
      // The tools invoke what the API invokes: the alias, where deployments are gradual.
      timeSeries: {
        queryFunction: invokeTarget(this.safeDeployment, this.timeSeries.queryFunction, { watchServerErrors: true }),
        datasetIds: this.timeSeries.datasetIds,
      },
      ledger: this.ledger,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      featureFlags: this.featureFlags,
    });

    this.ingestion = new IngestionPipeline(this, 'Ingestion', {
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      ...props.ingestion,
      stage: this.stage,
      dataLake: this.dataLake,
      ledger: this.ledger,
      timeSeriesStore: this.timeSeries,
      knowledgeBase: this.knowledgeBase,
      safeDeployment: this.safeDeployment,
      featureFlags: this.featureFlags,
    });

    // The health check, once every component exists: it reaches each with a read-only call.
    const health: HealthCheckProps = {
      stage: this.stage,
      encryptionKey: this.encryptionKey,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      buckets: { raw: this.dataLake.rawBucket, processed: this.dataLake.processedBucket, failed: this.dataLake.failedBucket },
      timeSeries: this.timeSeries.healthProbe(),
      flags: this.featureFlags.healthProbe(),
      knowledgeBase: this.knowledgeBase,
      ledger: this.ledger,
      readinessCacheTtl: validateReadinessCacheTtl(props.healthReadinessCacheTtl),
    };
    this.healthFunction = createHealthCheck(this, 'HealthCheck', health);
    this.healthProps = health;

    this.api = new PlatformApi(this, 'Api', {
      ...props.api,
      stage: this.stage,
      encryptionKey: this.encryptionKey,
      healthFunction: this.healthFunction,
      timeSeriesQueryFunction: this.timeSeries.queryFunction,
      knowledgeQueryFunction: this.knowledgeBase.queryFunction,
      ledger: this.ledger,
      timeSeriesDatasets: this.timeSeries.datasetIds,
      additionalDatasets: this.dataLake.additionalDatasets,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      safeDeployment: this.safeDeployment,
    });

    // Last, so the walk of the tree finds every part.
    this.monitoring = new PlatformMonitoring(this, 'Monitoring', {
      ...props.monitoring,
      stage: this.stage,
      encryptionKey: this.encryptionKey,
      watch: this,
    });
    // A flag change rolls back when any critical alarm fires during its rollout or bake time.
    this.featureFlags.rollBackOn(this.monitoring.anyCriticalAlarm());

    if (this.outputsEnabled) this.addOutputs();
    // NIST 800-53 R5 and Serverless findings that are the platform's choices, each with its reason (README, cdk-nag).
    acknowledgePlatformChoices(this, { tracing: this.stage.tracing === lambda.Tracing.ACTIVE, stageName: this.stage.name });
  }

  /**
   * The AWS calls of every principal of the platform, for the permission-closure test (test/permissions/closure.test.ts).
   * @internal
   */
  public _permissionInventory(): CallerInventory[] {
    type Inventoried = { _permissionInventory?: () => CallerInventory[]; _healthProbeCalls?: () => AwsCall[] };
    const store = this.timeSeries as unknown as Inventoried;
    const probeCalls = [...store._healthProbeCalls?.() ?? [], ...this.featureFlags._readCalls()];
    return [
      ...this.ingestion._permissionInventory(),
      ...this.knowledgeBase._permissionInventory(),
      ...store._permissionInventory?.() ?? [],
      ...this.api._permissionInventory(),
      ...this.featureFlags._permissionInventory(),
      healthCheckInventory(this.healthFunction as lambda.Function, this.healthProps, probeCalls),
      ...this.monitoring._permissionInventory(),
      logsKeyInventory(this.dataLake.encryptionKey, this.node.findAll().filter((c): c is logs.LogGroup => c instanceof logs.LogGroup
        && (c.node.defaultChild as logs.CfnLogGroup).kmsKeyId !== undefined)),
    ];
  }

  /**
   * The key of one of the platform's stack outputs, as `aws cloudformation describe-stacks` shows it in `OutputKey`.
   */
  public outputKey(output: PlatformOutput): string {
    if (!this.outputsEnabled) throw new Error(`outputs: the platform at ${this.node.path} has no stack outputs (outputs is false)`);
    return `${this.outputPrefix}${output}`;
  }

  private addOutputs(): void {
    const values: Record<PlatformOutput, { value: string; description: string }> = {
      [PlatformOutput.RAW_BUCKET_NAME]: { value: this.dataLake.rawBucket.bucketName, description: 'Raw bucket: upload ONS files here' },
      [PlatformOutput.PROCESSED_BUCKET_NAME]: { value: this.dataLake.processedBucket.bucketName, description: 'Processed bucket: Parquet, data cards, reports' },
      [PlatformOutput.FAILED_BUCKET_NAME]: { value: this.dataLake.failedBucket.bucketName, description: 'Failed bucket: quarantined files and rejected rows' },
      [PlatformOutput.API_URL]: { value: this.api.url, description: 'Base URL of the REST API' },
      [PlatformOutput.INGESTION_STATE_MACHINE_ARN]: { value: this.ingestion.stateMachine.stateMachineArn, description: 'Ingestion state machine' },
      [PlatformOutput.REPROCESS_STATE_MACHINE_ARN]: { value: this.ingestion.reprocessStateMachine.stateMachineArn, description: 'Reprocessing state machine' },
      [PlatformOutput.BACKFILL_STATE_MACHINE_ARN]: { value: this.ingestion.backfillStateMachine.stateMachineArn, description: 'Backfill state machine' },
      [PlatformOutput.LEDGER_TABLE_NAME]: { value: this.ledger.tableName, description: 'Ingestion ledger table' },
      [PlatformOutput.DASHBOARD_NAME]: { value: this.monitoring.dashboard.dashboardName, description: 'CloudWatch dashboard' },
      // Refs of the resources (not the configured names), so the outputs wait for them and name what exists.
      [PlatformOutput.ATHENA_WORK_GROUP_NAME]: { value: this.dataLake.workGroup.ref, description: 'Athena workgroup of the lake' },
      [PlatformOutput.GLUE_DATABASE_NAME]: { value: this.dataLake.database.ref, description: 'Glue database of the lake' },
      [PlatformOutput.FLAGS_APPLICATION_ID]: { value: this.featureFlags.application.applicationId, description: 'AppConfig application of the feature flags' },
      [PlatformOutput.KILL_SWITCH_ENVIRONMENT_ID]: {
        value: this.featureFlags.killSwitchEnvironment.environmentId, description: 'AppConfig environment of the kill switches (never rolled back)',
      },
      [PlatformOutput.KILL_SWITCH_PROFILE_ID]: { value: this.featureFlags.killSwitches.configurationProfileId, description: 'Kill-switch configuration profile' },
      [PlatformOutput.EMERGENCY_STRATEGY_ID]: { value: this.featureFlags.emergencyStrategy.deploymentStrategyId, description: 'Deployment strategy of the kill switches (immediate)' },
    };
    const outputs = new Construct(this, 'Outputs');
    const keys: string[] = [];
    for (const [name, { value, description }] of Object.entries(values)) {
      const output = new CfnOutput(outputs, name, { value, description: `ONS data platform (${this.stage.name}): ${description}` });
      // The key a script reads: fixed, not the path-hashed logical id CDK would give an output nested in a construct.
      const key = this.outputKey(name as PlatformOutput);
      output.overrideLogicalId(key);
      keys.push(key);
    }
    // At synthesis, once every construct of the stack exists: a second platform or an output of the app may take a key.
    this.node.addValidation({ validate: () => this.clashingOutputKeys(keys) });
  }

  private clashingOutputKeys(keys: readonly string[]): string[] {
    const stack = Stack.of(this);
    const owners = new Map<string, string[]>();
    for (const c of stack.node.findAll()) {
      if (!(c instanceof CfnOutput) || Stack.of(c) !== stack) continue;
      const id = stack.resolve(c.logicalId) as string;
      owners.set(id, [...owners.get(id) ?? [], c.node.path]);
    }
    return keys.filter((k) => (owners.get(k)?.length ?? 0) > 1).map((k) =>
      `outputPrefix: the output key '${k}' is used by ${owners.get(k)!.join(' and ')}; give each OnsDataPlatform of the stack its own outputPrefix`);
  }
}

function validateOutputPrefix(prefix: string | undefined, id: string): string {
  if (prefix !== undefined && Token.isUnresolved(prefix)) throw new Error('outputPrefix: must be a literal string, not a token (it names the outputs at synthesis)');
  const value = prefix ?? id.replace(/[^A-Za-z0-9]/g, '');
  const from = prefix === undefined ? ` (derived from the construct id '${id}'; set outputPrefix)` : '';
  if (!/^[A-Za-z0-9]*$/.test(value)) throw new Error(`outputPrefix: letters and digits only, got '${value}'`);
  if (value.length + LONGEST_OUTPUT_NAME > MAX_OUTPUT_KEY_LENGTH) {
    throw new Error(`outputPrefix: at most ${MAX_OUTPUT_KEY_LENGTH - LONGEST_OUTPUT_NAME} characters (output keys are at most ${MAX_OUTPUT_KEY_LENGTH}), got ${value.length}${from}`);
  }
  return value;
}

/** The readiness cache time: whole seconds from 5 to 300 (see `healthReadinessCacheTtl`). */
function validateReadinessCacheTtl(ttl: Duration | undefined): Duration | undefined {
  if (ttl === undefined) return undefined;
  if (ttl.isUnresolved()) throw new Error('healthReadinessCacheTtl: must be a literal duration');
  const seconds = ttl.toMilliseconds() / 1000;
  if (!Number.isInteger(seconds) || seconds < 5 || seconds > 300) {
    throw new Error(`healthReadinessCacheTtl: whole seconds from 5 to 300, got ${seconds} s`);
  }
  return ttl;
}
