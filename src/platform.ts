import { CfnElement } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { PlatformApi, PlatformApiOptions } from './api/platform-api';
import { applyPlatformTags } from './core/defaults';
import { keepLogicalId } from './core/logical-ids';
import { SafeDeployment, SafeDeploymentOptions } from './core/safe-deployment';
import { PlatformStage } from './core/stage';
import { createHealthCheck } from './health/health-check';
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
   * How function changes reach traffic: the API-facing and processing functions are published through
   * an alias and a CodeDeploy deployment group that shifts traffic per the stage and rolls back on the
   * alias's error or latency alarm.
   *
   * @default - on, with the stage's deployment config (all at once in DEV, linear 10 % a minute in
   * STAGING, canary 10 % for 5 minutes in PROD) and rollback thresholds
   */
  readonly safeDeployment?: SafeDeploymentOptions;
}

/**
 * The ONS data platform: ONS files dropped into a bucket become validated time series, an analytics
 * lake and a knowledge base behind a REST API.
 *
 * It composes the `DataLake`, the `IngestionPipeline`, the time-series store, the `KnowledgeBase`
 * and the `PlatformApi` in front of them, each also usable on its own.
 * Every part takes its defaults from `stage`, every resource is tagged, and every Lambda function
 * gets the platform's defaults (Node.js 22 on arm64, KMS-encrypted environment and log group, the
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

  constructor(scope: Construct, id: string, props: OnsDataPlatformProps) {
    super(scope, id);
    this.stage = props.stage;
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
    this.healthFunction = createHealthCheck(this, 'HealthCheck', {
      stage: this.stage,
      encryptionKey: this.encryptionKey,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      buckets: { raw: this.dataLake.rawBucket, processed: this.dataLake.processedBucket, failed: this.dataLake.failedBucket },
      timeSeries: this.timeSeries.healthProbe(),
      flags: this.featureFlags.healthProbe(),
      knowledgeBase: this.knowledgeBase,
      ledger: this.ledger,
    });

    this.api = new PlatformApi(this, 'Api', {
      ...props.api,
      stage: this.stage,
      encryptionKey: this.encryptionKey,
      healthFunction: this.healthFunction,
      timeSeriesQueryFunction: this.timeSeries.queryFunction,
      knowledgeQueryFunction: this.knowledgeBase.queryFunction,
      ledger: this.ledger,
      timeSeriesDatasets: this.timeSeries.datasetIds,
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
  }
}
