import { Duration, Size, Stack, Token, Validations } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { BatchFileProcessing } from './batch-processing';
import { DEFAULT_DOCUMENT_EXTENSIONS, DEFAULT_TABULAR_EXTENSIONS, INVALID_REPROCESS_REQUEST, IngestionEnv, LAMBDA_MAX_FILE_MIB_LIMIT, RouteAction } from './contract';
import { CopyDocumentFunction } from './copy-document-function';
import { ingestionCalls, reprocessCalls } from './permissions';
import { IngestionPipelineProps, RestoreTier } from './pipeline-props';
import { ProcessFunction } from './process-function';
import { QuarantineFunction } from './quarantine-function';
import { ReprocessFileFunction } from './reprocess-file-function';
import { ReprocessReportFunction } from './reprocess-report-function';
import { ReprocessSelectFunction } from './reprocess-select-function';
import { RouteFunction } from './route-function';
import {
  allowOwnExecutionData, applyPlatformTags, createEventDeadLetterQueue, createPlatformFunction, eventDeadLetterInventory, PlatformFunctionOptions,
} from '../core/defaults';
import { IMonitor, IMonitorable, platformMetric } from '../core/monitorable';
import { acknowledgeScopedWildcards } from '../core/nag';
import { AwsCall, CallerInventory } from '../core/permissions';
import { applyDataRemovalPolicy } from '../core/removal';
import { invokeTarget, SafeDeployment } from '../core/safe-deployment';
import { PlatformStage } from '../core/stage';
import { IKnowledgeBase } from '../knowledge/knowledge-base-ref';
import { KnowledgeBaseSync } from '../knowledge/knowledge-sync';
import { LakeEnv } from '../lake/contract';
import { IDataLake } from '../lake/data-lake';
import { KnowledgeSyncSchema, LedgerEnv, LedgerSchema, LedgerStatus } from '../ledger/contract';
import { IIngestionLedger, IngestionLedger } from '../ledger/ingestion-ledger';
import { XLSX_MAX_EXPANDED_BYTES } from '../ons/limits';
import { HandlerEnv, MetricServices, PlatformMetrics } from '../runtime/contract';
import { LoadErrors, TimeSeriesEngines } from '../timeseries/contract';

/** Error name the processor gives a file the domain core refuses (shared with the handler's contract). */
const FILE_REFUSED = 'FileRefused';
/** Restore requests sent at once by reprocessing's first pass (S3 takes 3,500 PUT/COPY/POST/DELETE per second per prefix). */
const RESTORE_REQUEST_CONCURRENCY = 100;
/** Loader errors that a retry cannot fix (bad input, nothing accepted, or the engine refused the request itself). */
const LOADER_NON_RETRYABLE = [LoadErrors.INVALID_INPUT, LoadErrors.NOTHING_WRITTEN, LoadErrors.WRITE_REFUSED];

/**
 * From upload to processed data: an EventBridge rule on the raw bucket's Object Created events starts
 * one Standard state machine execution per object version:
 *
 * Route → ProcessFile (Lambda, or AWS Batch on Fargate above `lambdaMaxFileSize`) | CopyDocument |
 * Quarantine → LoadTimeSeries → SyncKnowledgeBase → Done.
 *
 * Every step retries transient errors with exponential backoff and jitter; every failure is caught,
 * the raw object is copied with an `error.json` to the failed bucket's quarantine prefix (it is never
 * deleted or changed), the ledger records it and `notificationTopic` is notified. The ingestion
 * ledger (DynamoDB) records every object version's status, counts, period and content hash: a file
 * whose content was already processed is recorded as a duplicate and not processed again.
 *
 * A source key owns its outputs (named after `s3://<bucket>/<key>`, not its content): a new version of
 * the key replaces them and the partitions it no longer has are deleted. A run stages its outputs under
 * the lake's `stagingPrefix` (recorded in the ledger first) and copies them to their final names only
 * once all are written, so a killed run leaves nothing a query reads.
 *
 * A second state machine, `reprocessStateMachine`, re-runs the ingestion for files chosen by a ledger query
 * (`{ "status": "quarantined" }`, a dataset and a period) or a raw-bucket prefix, `reprocessMaxConcurrency` at a
 * time, with `force` to redo settled files; it restores archived raw objects first and writes a per-file report.
 * A third, `backfillStateMachine`, runs it with its own input: start it with `{ "prefix": "2000/" }`.
 *
 * LoadTimeSeries invokes the `timeSeriesStore`'s loader (a pass-through step without a store, or with a store that
 * has no loader: the lake engine, `LakeStore`, reads the published Parquet itself, so ProcessFile records the file
 * `loaded`, meaning queryable, as soon as its outputs are in place and it is its key's current version);
 * SyncKnowledgeBase asks the `knowledgeBase` for a sync of the file's data source (a request in the ledger, and a
 * `KnowledgeBaseSync` execution started without waiting) and the execution ends at `loaded`; the sync runs one
 * ingestion job at a time for many files and records `indexed` when the job completes. It passes through without a
 * knowledge base.
 *
 * @example
 * const pipeline = new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake: lake });
 */
export class IngestionPipeline extends Construct implements IMonitorable {
  /** The largest file the processor function takes when `lambdaMaxFileSize` is not set; larger ones go to AWS Batch. */
  public static readonly DEFAULT_LAMBDA_MAX_FILE_SIZE = Size.mebibytes(256);
  /** The largest expanded size of an XLSX workbook's parts read when `maxXlsxExpandedSize` is not set. */
  public static readonly DEFAULT_MAX_XLSX_EXPANDED_SIZE = Size.bytes(XLSX_MAX_EXPANDED_BYTES);
  /** How long a throttled load is tried again when `throttledLoadRetryPeriod` is not set: twice the 6 hours magnetic-store throttling may last. */
  public static readonly DEFAULT_THROTTLED_LOAD_RETRY_PERIOD = Duration.hours(12);

  /**
   * Files reprocessed at once by default, for a time-series engine (`ITimeSeriesStore.engine`), or none: what the
   * store absorbs without throttling that outlasts the loader's retries (see `reprocessMaxConcurrency`).
   */
  public static defaultReprocessConcurrency(engine?: string): number {
    if (engine === TimeSeriesEngines.LIVE_ANALYTICS) return 2;
    if (engine === TimeSeriesEngines.INFLUXDB) return 4;
    // Without a store, or the lake engine (`athena-lake`, no store of its own to write): the processors' S3 and ledger traffic only.
    return 10;
  }

  /** The ingestion state machine (one execution per uploaded object version). */
  public readonly stateMachine: sfn.StateMachine;
  /**
   * Ingests the files of a raw-bucket prefix (`{ "prefix": "2000/" }`): a thin front of `reprocessStateMachine`,
   * which it runs with its input (kept for its ARN and grants).
   */
  public readonly backfillStateMachine: sfn.StateMachine;
  /**
   * Reprocesses files chosen by a ledger query (`{ "status": "quarantined" }`, `{ "dataset": "curva_carga", "start": …,
   * "end": … }`) or a raw-bucket prefix (`{ "prefix": "2000/" }`), with `"force": true` to redo settled files: restores
   * archived raw objects first, runs the ingestion for each file (`reprocessMaxConcurrency` at a time) and writes a
   * per-file report to the processed bucket (the execution's output says where).
   */
  public readonly reprocessStateMachine: sfn.StateMachine;
  /** Files the reprocessing state machine ingests at once. */
  public readonly reprocessMaxConcurrency: number;
  /** The rule that starts the state machine on Object Created events. */
  public readonly rule: events.Rule;
  /** Events the rule could not deliver to the state machine. */
  public readonly deadLetterQueue: sqs.IQueue;
  /** The ingestion ledger. */
  public readonly ledger: IIngestionLedger;
  /** Where quarantined files are notified. */
  public readonly notificationTopic: sns.ITopic;
  /** Decides what happens to each object. */
  public readonly routerFunction: lambda.IFunction;
  /** Processes tabular files up to `lambdaMaxFileSize`. */
  public readonly processorFunction: lambda.IFunction;
  /** Copies documents to the knowledge-base documents prefix. */
  public readonly copyDocumentFunction: lambda.IFunction;
  /** Copies failed objects with their error report to the failed bucket. */
  public readonly quarantineFunction: lambda.IFunction;
  /** Largest file the processor function takes. */
  public readonly lambdaMaxFileSize: Size;
  /** Largest expanded size of the parts of an XLSX workbook that are read. */
  public readonly maxXlsxExpandedSize: Size;
  /** The Batch job queue for large files (absent when large-file processing is disabled). */
  public readonly jobQueue?: batch.IJobQueue;
  /** The Batch job definition for large files (absent when large-file processing is disabled). */
  public readonly jobDefinition?: batch.IJobDefinition;

  /** The time-series loader LoadTimeSeries invokes (absent without a store, or with a store that reads the lake itself). */
  public readonly timeSeriesLoader?: lambda.IFunction;
  /** How long a throttled load is tried again (`retryLater`) before the file is quarantined. */
  public readonly throttledLoadRetryPeriod: Duration;

  /** The knowledge base SyncKnowledgeBase asks to sync (absent without one). */
  public readonly knowledgeBase?: IKnowledgeBase;

  /** Runs the knowledge base's ingestion jobs for the files that asked, one at a time, and records their outcome (absent without a knowledge base). */
  public readonly knowledgeBaseSync?: KnowledgeBaseSync;

  private readonly stage: PlatformStage;
  private readonly lake: IDataLake;
  /** The store reads the lake itself (no loader): the processor records `loaded`. */
  private readonly timeSeriesQueryableOnPublish: boolean;
  private readonly safeDeployment?: SafeDeployment;
  private readonly key: kms.IKey;
  /** The router's flag reads, for the permission inventory. */
  private readonly flagReads: AwsCall[];

  constructor(scope: Construct, id: string, props: IngestionPipelineProps) {
    super(scope, id);
    this.stage = props.stage;
    this.lake = props.dataLake;
    this.key = props.dataLake.encryptionKey;
    this.safeDeployment = props.safeDeployment;
    applyPlatformTags(this, this.stage);

    this.lambdaMaxFileSize = props.lambdaMaxFileSize ?? IngestionPipeline.DEFAULT_LAMBDA_MAX_FILE_SIZE;
    const maxMiB = this.lambdaMaxFileSize.toMebibytes({ rounding: 2 });
    if (!Token.isUnresolved(maxMiB) && (maxMiB < 1 || maxMiB > LAMBDA_MAX_FILE_MIB_LIMIT)) {
      throw new Error(`lambdaMaxFileSize: expected 1 MiB to ${LAMBDA_MAX_FILE_MIB_LIMIT} MiB (the function's /tmp holds the file and its outputs), got ${maxMiB} MiB`);
    }
    this.maxXlsxExpandedSize = props.maxXlsxExpandedSize ?? IngestionPipeline.DEFAULT_MAX_XLSX_EXPANDED_SIZE;
    const maxExpanded = this.maxXlsxExpandedSize.toBytes({ rounding: 2 });
    if (!Token.isUnresolved(maxExpanded) && maxExpanded < 1024 * 1024) {
      throw new Error(`maxXlsxExpandedSize: expected at least 1 MiB, got ${maxExpanded} bytes`);
    }
    const tabular = extensions('tabularExtensions', props.tabularExtensions ?? [...DEFAULT_TABULAR_EXTENSIONS]);
    // A default list gives way to the tabular one (e.g. `txt` made tabular); lists both given must not overlap.
    const documents = extensions('documentExtensions', props.documentExtensions ?? DEFAULT_DOCUMENT_EXTENSIONS.filter((e) => !tabular.includes(e)));
    const overlap = tabular.filter((e) => documents.includes(e));
    if (overlap.length) throw new Error(`documentExtensions: ${overlap.join(', ')} is also in tabularExtensions`);

    if (props.ledger && props.timeSeriesStore && props.ledger !== props.timeSeriesStore.ledger) {
      throw new Error('ledger: the time-series store records its loads in another ledger; give both the same one');
    }
    this.ledger = props.ledger ?? props.timeSeriesStore?.ledger ?? new IngestionLedger(this, 'Ledger', { stage: this.stage, encryptionKey: this.key });
    this.notificationTopic = props.notificationTopic ?? new sns.Topic(this, 'NotificationTopic', {
      displayName: `ONS data platform (${this.stage.name}): ingestion failures`,
      masterKey: this.key,
      enforceSSL: true,
    });

    const environment: Record<string, string> = {
      [HandlerEnv.STAGE]: this.stage.name,
      [LakeEnv.PROCESSED_BUCKET]: this.lake.processedBucket.bucketName,
      [LakeEnv.FAILED_BUCKET]: this.lake.failedBucket.bucketName,
      [LedgerEnv.TABLE]: this.ledger.tableName,
      [LakeEnv.PROCESSED_DATA_PREFIX]: this.lake.processedDataPrefix,
      [LakeEnv.DATA_CARDS_PREFIX]: this.lake.dataCardsPrefix,
      [LakeEnv.DOCUMENTS_PREFIX]: this.lake.documentsPrefix,
      [LakeEnv.REJECTED_ROWS_PREFIX]: this.lake.rejectedRowsPrefix,
      [LakeEnv.QUARANTINE_PREFIX]: this.lake.quarantinePrefix,
      [LakeEnv.STAGING_PREFIX]: this.lake.stagingPrefix,
      [IngestionEnv.LAMBDA_MAX_BYTES]: String(this.lambdaMaxFileSize.toBytes()),
      // Router (quarantines a workbook over it), processor and Batch job (refuse a part that expands past it).
      [IngestionEnv.XLSX_MAX_EXPANDED_BYTES]: String(maxExpanded),
      [IngestionEnv.TABULAR_EXTENSIONS]: tabular.join(','),
      [IngestionEnv.DOCUMENT_EXTENSIONS]: documents.join(','),
    };
    const common = {
      stage: this.stage,
      service: MetricServices.INGESTION,
      encryptionKey: this.key,
      environment,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
    };

    // Router: reads object metadata (and a workbook's zip directory, by ranged reads), records `received`.
    const router = createPlatformFunction(this, 'Router', RouteFunction, {
      ...common, description: `ONS data platform (${this.stage.name}): ingestion router`, timeout: Duration.seconds(30),
    });
    this.grantReadRaw(router);
    props.featureFlags?.bind(router);
    this.flagReads = (props.featureFlags as { _readCalls?: () => AwsCall[] } | undefined)?._readCalls?.() ?? [];
    this.ledger.grantRecord(router);
    this.routerFunction = router;

    // Processor: the domain core in Lambda.
    const processorTimeout = props.processorTimeout ?? Duration.minutes(15);
    if (processorTimeout.toSeconds() > 900) throw new Error(`processorTimeout: Lambda allows at most 15 minutes, got ${processorTimeout.toHumanString()}`);
    const memorySize = props.processorMemorySize ?? 3008;
    if (!Number.isInteger(memorySize) || memorySize < 128 || memorySize > 10240) {
      throw new Error(`processorMemorySize: expected an integer from 128 to 10240 (MiB), got ${memorySize}`);
    }
    // A store without a loader reads the lake itself: the processor records a published version `loaded` (queryable).
    const queryableOnPublish: Record<string, string> = props.timeSeriesStore && !props.timeSeriesStore.loaderFunction
      ? { [IngestionEnv.LOADED_ON_PUBLISH]: props.timeSeriesStore.engine } : {};
    const processor = createPlatformFunction(this, 'Processor', ProcessFunction, {
      ...common,
      environment: { ...environment, ...queryableOnPublish },
      description: `ONS data platform (${this.stage.name}): file processor (Lambda path)`,
      traceCalls: false, // data-heavy: see PlatformFunctionOptions.traceCalls
      timeout: processorTimeout,
      memorySize,
      ephemeralStorageSize: props.processorEphemeralStorage ?? defaultEphemeralStorage(this.lambdaMaxFileSize),
    });
    this.grantProcess(processor);
    this.processorFunction = processor;

    const copyDocument = createPlatformFunction(this, 'CopyDocument', CopyDocumentFunction, {
      ...common, description: `ONS data platform (${this.stage.name}): document copy`, timeout: Duration.minutes(5),
    });
    this.grantReadRaw(copyDocument, { copies: true });
    this.grantWrite(copyDocument, this.lake.processedBucket.bucketArn, [this.lake.documentsPrefix], { copies: true });
    this.ledger.grantRecord(copyDocument);
    this.copyDocumentFunction = copyDocument;

    const quarantine = createPlatformFunction(this, 'Quarantine', QuarantineFunction, {
      ...common, description: `ONS data platform (${this.stage.name}): quarantine`, timeout: Duration.minutes(5),
    });
    this.grantReadRaw(quarantine, { copies: true });
    this.grantWrite(quarantine, this.lake.failedBucket.bucketArn, [this.lake.quarantinePrefix], { copies: true });
    this.ledger.grantRecord(quarantine);
    this.quarantineFunction = quarantine;

    let large: BatchFileProcessing | undefined;
    if (props.largeFileProcessing?.enabled ?? true) {
      large = new BatchFileProcessing(this, 'LargeFiles', {
        ...props.largeFileProcessing, stage: this.stage, encryptionKey: this.key, environment: { ...environment, ...queryableOnPublish },
      });
      this.grantProcess(large.jobRole);
      this.jobQueue = large.jobQueue;
      this.jobDefinition = large.jobDefinition;
    }

    this.timeSeriesLoader = props.timeSeriesStore?.loaderFunction;
    this.timeSeriesQueryableOnPublish = !!props.timeSeriesStore && !this.timeSeriesLoader;
    this.throttledLoadRetryPeriod = props.throttledLoadRetryPeriod ?? IngestionPipeline.DEFAULT_THROTTLED_LOAD_RETRY_PERIOD;
    retryLaterSchedule(this.throttledLoadRetryPeriod); // validates the prop with or without a store
    this.knowledgeBase = props.knowledgeBase;
    if (this.knowledgeBase) {
      this.knowledgeBaseSync = new KnowledgeBaseSync(this, 'KnowledgeSync', {
        stage: this.stage,
        knowledgeBase: this.knowledgeBase,
        ledger: this.ledger,
        encryptionKey: this.key,
        reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      });
    }
    this.stateMachine = this.createStateMachine(large, router);
    // Every state machine publishes to the topic and reads or writes ledger items (ReadBatchResult, RequestSync,
    // RecordRetryLater), both encrypted with the lake key: the key through those two services only.
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({
      actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'],
      resources: [this.key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': ['sns', 'dynamodb'].map((service) => `${service}.${Stack.of(this).region}.amazonaws.com`) } },
    }));

    this.reprocessMaxConcurrency = props.reprocessMaxConcurrency ?? props.backfillMaxConcurrency
      ?? IngestionPipeline.defaultReprocessConcurrency(props.timeSeriesStore?.engine);
    this.reprocessStateMachine = this.createReprocess(props, common);
    this.backfillStateMachine = this.createBackfill();
    const { rule, deadLetterQueue } = this.createTrigger(props.keyPrefix, props.keySuffixes);
    this.rule = rule;
    this.deadLetterQueue = deadLetterQueue;
    acknowledgeScopedWildcards(this);
  }

  /** Every function of the pipeline and the time-series loader it invokes: an error there loses or quarantines a file. */
  public get criticalFunctions(): lambda.IFunction[] | undefined {
    const own = this.node.findAll().filter((c): c is lambda.Function => c instanceof lambda.Function);
    return this.timeSeriesLoader ? [...own, this.timeSeriesLoader] : own;
  }

  /** Nothing of its own: its state machines, dead-letter queue, job queue and functions are watched as resources. */
  public addMonitoring(_monitor: IMonitor): void {}

  /**
   * Rows of tabular files written to the lake, by the processor function and the Batch job (Sum over 5 minutes).
   * The metric is the stage's (namespace `OnsDataPlatform/<stage>`, dimension `service` = `ingestion`): every
   * pipeline of the stage counts in it.
   */
  public metricRecordsProcessed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return platformMetric(this.stage.name, PlatformMetrics.RECORDS_PROCESSED, props);
  }

  /** Rows the processor rejected, kept with their reason in the failed bucket (Sum over 5 minutes; the stage's metric). */
  public metricRecordsRejected(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return platformMetric(this.stage.name, PlatformMetrics.RECORDS_REJECTED, props);
  }

  /** Files moved to quarantine, unsupported or failed (Sum over 5 minutes; the stage's metric). */
  public metricFilesQuarantined(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return platformMetric(this.stage.name, PlatformMetrics.FILES_QUARANTINED, props);
  }

  /** Lets `grantee` start a backfill (and read its executions). */
  public grantStartBackfill(grantee: iam.IGrantable): iam.Grant {
    this.key.grant(grantee, 'kms:GenerateDataKey', 'kms:Decrypt');
    return this.backfillStateMachine.grantStartExecution(grantee);
  }

  /** Lets `grantee` start a reprocessing run, and read the reports under the lake's reports prefix. */
  public grantStartReprocess(grantee: iam.IGrantable): iam.Grant {
    this.key.grant(grantee, 'kms:GenerateDataKey', 'kms:Decrypt');
    grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:GetObject'],
      resources: [this.lake.processedBucket.arnForObjects(`${this.reportsPrefix}reprocess/*`)],
    }));
    return this.reprocessStateMachine.grantStartExecution(grantee);
  }

  /**
   * The AWS calls of this pipeline's principals, for the permission-closure test (src/ingestion/permissions.ts).
   * @internal
   */
  public _permissionInventory(): CallerInventory[] {
    const large = this.node.tryFindChild('LargeFiles') as BatchFileProcessing | undefined;
    const child = (id: string) => this.node.findChild(id) as lambda.Function;
    const reprocess = reprocessCalls({
      lake: this.lake,
      key: this.key,
      ledger: this.ledger,
      select: child('ReprocessSelect'),
      file: child('ReprocessFile'),
      report: child('ReprocessReport'),
      runObjectsPrefix: `${this.reportsPrefix}reprocess/`,
      reprocess: this.reprocessStateMachine,
      backfill: this.backfillStateMachine,
      ingestion: this.stateMachine,
      triggerRole: this.node.findChild('TriggerRole') as iam.Role,
    });
    const triggerRule = this.node.findChild('ObjectCreated') as events.Rule;
    const trigger = eventDeadLetterInventory('EventBridge, to the ingestion trigger dead-letter queue', this.deadLetterQueue, this.key, triggerRule);
    const parts = [...(large?._permissionInventory() ?? []), ...(this.knowledgeBaseSync?._permissionInventory() ?? [])];
    return [...reprocess, trigger, ...parts, ...ingestionCalls({
      lake: this.lake,
      key: this.key,
      ledger: this.ledger,
      topicArn: this.notificationTopic.topicArn,
      router: this.routerFunction as lambda.Function,
      routerFlagReads: this.flagReads,
      processor: this.processorFunction as lambda.Function,
      copyDocument: this.copyDocumentFunction as lambda.Function,
      quarantine: this.quarantineFunction as lambda.Function,
      invokeArn: (fn) => invokeTarget(this.safeDeployment, fn).functionArn,
      stateMachine: this.stateMachine,
      batch: large && {
        jobRole: large.jobRole,
        jobQueueArn: large.jobQueue.jobQueueArn,
        jobDefinitionArn: large.jobDefinition.jobDefinitionArn,
        codeObjectArn: (large.node.findChild('JobCode') as s3assets.Asset).bucket.arnForObjects((large.node.findChild('JobCode') as s3assets.Asset).s3ObjectKey),
      },
      knowledgeSyncStateMachineArn: this.knowledgeBaseSync?.stateMachine.stateMachineArn,
      timeSeriesLoaderArn: this.timeSeriesLoader && invokeTarget(this.safeDeployment, this.timeSeriesLoader).functionArn,
    })];
  }

  private get reportsPrefix(): string {
    return this.lake.reportsPrefix;
  }

  /**
   * Reads raw objects. ListBucket too: without it S3 answers a missing object with 403 instead of 404,
   * and the handlers could not tell a deleted upload from a permission problem.
   */
  private grantReadRaw(grantee: iam.IGrantable, options: { copies?: boolean } = {}): void {
    const principal = grantee.grantPrincipal;
    principal.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:GetObject', 's3:GetObjectVersion', ...(options.copies ? ['s3:GetObjectTagging', 's3:GetObjectVersionTagging'] : [])],
      resources: [this.lake.rawBucket.arnForObjects('*')],
    }));
    principal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.lake.rawBucket.bucketArn] }));
    this.key.grant(grantee, 'kms:Decrypt');
  }

  /** Put, abort and delete (to remove its own partial outputs) under the given prefixes only; CopyObject also copies tags. */
  private grantWrite(grantee: iam.IGrantable, bucketArn: string, prefixes: string[], options: { copies?: boolean } = {}): void {
    grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject', ...(options.copies ? ['s3:PutObjectTagging'] : [])],
      resources: prefixes.map((p) => `${bucketArn}/${p}*`),
    }));
    this.key.grant(grantee, 'kms:Decrypt', 'kms:GenerateDataKey');
  }

  /**
   * The processor stages its outputs (put, delete; get, as the source of CopyObject) and copies them to
   * their final names, deleting what an earlier version of the source no longer has.
   */
  private grantProcess(grantee: iam.IGrantable): void {
    this.grantReadRaw(grantee);
    const { processedDataPrefix, dataCardsPrefix, stagingPrefix } = this.lake;
    this.grantWrite(grantee, this.lake.processedBucket.bucketArn, [processedDataPrefix, dataCardsPrefix, stagingPrefix]);
    this.grantWrite(grantee, this.lake.failedBucket.bucketArn, [this.lake.rejectedRowsPrefix]);
    grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:GetObject'],
      resources: [this.lake.processedBucket.arnForObjects(`${stagingPrefix}*`)],
    }));
    this.ledger.grantRecord(grantee);
  }

  /**
   * SyncKnowledgeBase: the file asks for a sync and the execution ends. A choice on the route (documents or data
   * cards) picks the data source; the request is written in the ledger (PutItem: one item per object version, no index
   * holds it) and counted on the knowledge base's control item (UpdateItem ADD), both through the Step Functions SDK
   * integration; then the `KnowledgeBaseSync` state machine is started without waiting. It runs one job at a time and
   * writes the outcome (`indexed` on COMPLETE) on the file later. Nothing here quarantines: the file is in the lake.
   */
  private createSync(flow: Construct, done: sfn.IChainable, backoff: sfn.RetryProps): sfn.IChainable {
    const kb = this.knowledgeBase!;
    const sync = this.knowledgeBaseSync!;
    const retry = { ...backoff, maxAttempts: 4, errors: ['States.ALL'] };
    // Recording the request failed: the file stays loaded and the next sync of its data source indexes it anyway.
    const notRequested = new tasks.SnsPublish(flow, 'NotifySyncNotRequested', {
      topic: this.notificationTopic,
      subject: `ONS knowledge-base sync not requested (${this.stage.name})`,
      message: sfn.TaskInput.fromObject({
        'execution.$': '$$.Execution.Id',
        'source.$': '$.route.source',
        'reason': 'The file is processed and loaded; its knowledge-base sync request could not be written, so its ledger item will not say indexed. The next sync of its data source indexes it anyway.',
        'failure.$': '$.syncError',
      }),
      resultPath: sfn.JsonPath.DISCARD,
    });
    notRequested.addRetry({ ...backoff, errors: ['SNS.SdkClientException', 'SNS.InternalErrorException', 'SNS.ThrottledException'] });
    notRequested.addCatch(done, { resultPath: sfn.JsonPath.DISCARD });
    notRequested.next(done);

    const request = new tasks.CallAwsService(flow, 'RequestSync', {
      service: 'dynamodb',
      action: 'putItem',
      parameters: {
        TableName: this.ledger.tableName,
        Item: {
          [LedgerSchema.PARTITION_KEY]: { S: sync.ledgerPartition },
          // One request per object version and data source, whatever its key's length: a replay rewrites it.
          [LedgerSchema.SORT_KEY]: {
            'S.$': `States.Format('${KnowledgeSyncSchema.REQUEST_PREFIX}{}#{}', $.syncRequest.dataSourceId, `
              + 'States.Hash(States.Format(\'{}?versionId={}\', $.route.ledgerKey.pk, $.route.ledgerKey.sk), \'SHA-256\'))',
          },
          dataSourceId: { 'S.$': '$.syncRequest.dataSourceId' },
          bucket: { 'S.$': '$.route.source.bucket' },
          key: { 'S.$': '$.route.source.key' },
          filePk: { 'S.$': '$.route.ledgerKey.pk' },
          fileSk: { 'S.$': '$.route.ledgerKey.sk' },
          // When the file's execution started (Step Functions' context; a local run of the ASL has no State.EnteredTime).
          requestedAt: { 'S.$': '$$.Execution.StartTime' },
          executionArn: { 'S.$': '$$.Execution.Id' },
        },
      },
      iamResources: [this.ledger.table.tableArn],
      iamAction: 'dynamodb:PutItem',
      resultPath: sfn.JsonPath.DISCARD,
    });
    const count = new tasks.CallAwsService(flow, 'CountSyncRequest', {
      service: 'dynamodb',
      action: 'updateItem',
      parameters: {
        TableName: this.ledger.tableName,
        Key: { [LedgerSchema.PARTITION_KEY]: { S: sync.ledgerPartition }, [LedgerSchema.SORT_KEY]: { S: KnowledgeSyncSchema.CONTROL } },
        // After the request item: a sync that read the count before this cannot give its lease back (see KnowledgeBaseSync).
        UpdateExpression: 'ADD #r :one SET lastRequestAt = :now',
        ExpressionAttributeNames: { '#r': KnowledgeSyncSchema.REQUESTS },
        ExpressionAttributeValues: { ':one': { N: '1' }, ':now': { 'S.$': '$$.Execution.StartTime' } },
      },
      iamResources: [this.ledger.table.tableArn],
      iamAction: 'dynamodb:UpdateItem',
      resultPath: sfn.JsonPath.DISCARD,
    });
    const start = new tasks.StepFunctionsStartExecution(flow, 'StartSync', {
      stateMachine: sync.stateMachine,
      integrationPattern: sfn.IntegrationPattern.REQUEST_RESPONSE,
      input: sfn.TaskInput.fromObject({ 'trigger': 'ingestion', 'execution.$': '$$.Execution.Id' }),
      resultPath: sfn.JsonPath.DISCARD,
    });
    for (const task of [request, count, start]) task.addRetry(retry);
    request.addCatch(notRequested, { resultPath: '$.syncError' });
    count.addCatch(notRequested, { resultPath: '$.syncError' });
    // The request is written: the hourly sweep starts the sync when this start failed.
    start.addCatch(done, { resultPath: sfn.JsonPath.DISCARD });
    request.next(count).next(start).next(done);

    const source = (id: string, dataSourceId: string) => new sfn.Pass(flow, id, {
      parameters: { dataSourceId }, resultPath: '$.syncRequest',
    }).next(request);
    // The router reads the knowledgeBaseSync flag once per execution; off, the step is skipped and says why.
    const skipped = new sfn.Pass(flow, 'SyncSkipped', {
      result: sfn.Result.fromObject({ skipped: 'knowledge-base sync is turned off (feature flag knowledgeBaseSync)' }),
      resultPath: '$.sync',
    });
    skipped.next(done);
    const flagOff = sfn.Condition.and(sfn.Condition.isPresent('$.route.knowledgeBaseSync'), sfn.Condition.booleanEquals('$.route.knowledgeBaseSync', false));
    return new sfn.Choice(flow, 'SyncKnowledgeBase')
      .when(flagOff, skipped)
      .when(sfn.Condition.stringEquals('$.route.action', 'document'), source('DocumentsSource', kb.documentsDataSourceId))
      .otherwise(source('DataCardsSource', kb.cardsDataSourceId));
  }

  /**
   * A load the store throttled past the loader's budget (`TimeSeriesThrottled`) is loaded again later:
   * the attempt is counted, the ledger says `retryLater` (attempt, wait, since when, why), the execution
   * waits (5, 10, 20, 40, then 60 minutes, plus up to a minute of jitter so files throttled together do
   * not return together) and LoadTimeSeries runs again. Once the waits add up to
   * `throttledLoadRetryPeriod`, the file is quarantined with a reason that says throttling.
   *
   * Why a Wait in the file's own Standard execution rather than a queue: a Standard execution may run
   * for a year and a Wait up to 99,999,999 s (Step Functions quotas; the Wait state), an SQS message
   * delay stops at 15 minutes, the state is in the execution history, nothing else is deployed, and a
   * backfill's child execution that waits keeps its concurrency slot, so a throttled store gets fewer
   * writers instead of more.
   */
  private retryLaterWhenThrottled(
    flow: Construct, load: sfn.TaskStateBase, period: Duration, backoff: sfn.RetryProps,
    onFailure: (state: sfn.TaskStateBase, step: string) => sfn.Pass,
  ): void {
    const schedule = retryLaterSchedule(period);
    const maxAttempts = schedule.length;
    // Index n of the literal is the wait after attempt n+1; the trailing 0 keeps ArrayGetItem in range at the bound.
    const waits = `States.Array(${[...schedule, 0].join(', ')})`;
    const jitter = `States.MathRandom(0, ${RETRY_LATER_JITTER_SECONDS})`;
    // Lambda reports a function error's Cause as JSON {errorType, errorMessage, trace}: the message is kept.
    const first = new sfn.Pass(flow, 'FirstRetryLater', {
      parameters: { 'attempt': 1, 'waitSeconds.$': `States.MathAdd(${schedule[0]}, ${jitter})`, 'error.$': 'States.StringToJson($.throttled.Cause)' },
      resultPath: '$.retryLater',
    });
    const next = new sfn.Pass(flow, 'NextRetryLater', {
      parameters: {
        'attempt.$': 'States.MathAdd($.retryLater.attempt, 1)',
        'waitSeconds.$': `States.MathAdd(States.ArrayGetItem(${waits}, $.retryLater.attempt), ${jitter})`,
        'error.$': 'States.StringToJson($.throttled.Cause)',
      },
      resultPath: '$.retryLater',
    });
    load.addCatch(new sfn.Choice(flow, 'LoadThrottled')
      .when(sfn.Condition.isPresent('$.retryLater.attempt'), next)
      .otherwise(first), { errors: [LoadErrors.THROTTLED], resultPath: '$.throttled' });
    const loadFailed = onFailure(load, 'LoadTimeSeries');

    const record = new tasks.CallAwsService(flow, 'RecordRetryLater', {
      service: 'dynamodb',
      action: 'updateItem',
      parameters: {
        TableName: this.ledger.tableName,
        Key: {
          [LedgerSchema.PARTITION_KEY]: { 'S.$': `$.route.ledgerKey.${LedgerSchema.PARTITION_KEY}` },
          [LedgerSchema.SORT_KEY]: { 'S.$': `$.route.ledgerKey.${LedgerSchema.SORT_KEY}` },
        },
        UpdateExpression: 'SET #status = :status, #retry = :retry, #updated = :now, #history = list_append(if_not_exists(#history, :empty), :entry)',
        ConditionExpression: 'attribute_exists(#pk)',
        ExpressionAttributeNames: {
          '#status': 'status', '#retry': 'retryLater', '#updated': 'updatedAt', '#history': 'history', '#pk': LedgerSchema.PARTITION_KEY,
        },
        ExpressionAttributeValues: {
          ':status': { S: LedgerStatus.RETRY_LATER },
          ':retry': {
            M: {
              attempt: { 'N.$': "States.Format('{}', $.retryLater.attempt)" },
              maxAttempts: { N: String(maxAttempts) },
              waitSeconds: { 'N.$': "States.Format('{}', $.retryLater.waitSeconds)" },
              at: { 'S.$': '$$.State.EnteredTime' },
              reason: { 'S.$': '$.retryLater.error.errorMessage' },
            },
          },
          ':now': { 'S.$': '$$.State.EnteredTime' },
          ':empty': { L: [] },
          ':entry': { L: [{ M: { status: { S: LedgerStatus.RETRY_LATER }, at: { 'S.$': '$$.State.EnteredTime' } } }] },
        },
      },
      iamResources: [this.ledger.table.tableArn],
      iamAction: 'dynamodb:UpdateItem',
      resultPath: sfn.JsonPath.DISCARD,
    });
    record.addRetry({ ...backoff, errors: ['States.ALL'] });
    onFailure(record, 'RecordRetryLater');
    record.next(new sfn.Wait(flow, 'RetryLaterWait', { time: sfn.WaitTime.secondsPath('$.retryLater.waitSeconds') })).next(load);

    const minutes = Math.round(schedule.reduce((a, b) => a + b, 0) / 60);
    const tooLong = new sfn.Pass(flow, 'ThrottledTooLong', {
      parameters: {
        'Error': LoadErrors.THROTTLED,
        'Cause.$': `States.Format('the time-series store kept throttling the load: ${maxAttempts + 1} attempts over ${minutes} minutes of waits `
          + '(throttledLoadRetryPeriod); load the file again with the backfill once the store takes writes. Last: {}\', $.retryLater.error.errorMessage)',
      },
      resultPath: '$.failure',
    });
    tooLong.next(loadFailed);
    const left = new sfn.Choice(flow, 'RetryLaterLeft?')
      .when(sfn.Condition.numberGreaterThan('$.retryLater.attempt', maxAttempts), tooLong)
      .otherwise(record);
    first.next(left);
    next.next(left);
  }

  private createStateMachine(large: BatchFileProcessing | undefined, router: lambda.Function): sfn.StateMachine {
    // States live in their own scope: their names are the construct IDs, free of the functions' IDs.
    const flow = new Construct(this, 'Workflow');
    const backoff = { interval: Duration.seconds(2), backoffRate: 2, maxAttempts: 3, jitterStrategy: sfn.JitterType.FULL };
    const stepInput = { 'source.$': '$.source', 'executionArn.$': '$.executionArn' };
    const routedInput = { 'source.$': '$.route.source', 'executionArn.$': '$.executionArn' };
    // The processor redoes a settled version when a reprocessing run forces it (every entry sets `$.force`).
    const forcedInput = { ...routedInput, 'force.$': '$.force' };

    // Failures: remember the step, quarantine, notify, fail the execution.
    const notifyFailure = new tasks.SnsPublish(flow, 'NotifyFailure', {
      topic: this.notificationTopic,
      subject: `ONS ingestion failed (${this.stage.name})`,
      message: sfn.TaskInput.fromObject({
        'execution.$': '$$.Execution.Id',
        'source.$': '$.source',
        'step.$': '$.failedStep',
        'failure.$': '$.failure',
      }),
      resultPath: sfn.JsonPath.DISCARD,
    });
    notifyFailure.addRetry({ ...backoff, errors: ['SNS.SdkClientException', 'SNS.InternalErrorException', 'SNS.ThrottledException'] });
    const failed = new sfn.Fail(flow, 'IngestionFailed', {
      error: 'IngestionFailed',
      cause: 'The file was quarantined in the failed bucket with an error.json; the notification names the step and the reason.',
    });
    const quarantineFailure = new tasks.LambdaInvoke(flow, 'QuarantineFailure', {
      lambdaFunction: invokeTarget(this.safeDeployment, this.quarantineFunction),
      payload: sfn.TaskInput.fromObject({ ...stepInput, 'step.$': '$.failedStep', 'error.$': '$.failure' }),
      payloadResponseOnly: true,
      resultPath: '$.quarantine',
      retryOnServiceExceptions: false,
    });
    quarantineFailure.addRetry({ ...backoff, errors: ['States.ALL'] });
    // Even a failed quarantine is notified (the raw object stays in the raw bucket).
    quarantineFailure.addCatch(new sfn.Pass(flow, 'QuarantineItselfFailed', {
      parameters: { 'reason.$': '$.quarantineError.Cause' }, resultPath: '$.quarantine',
    }).next(notifyFailure), { resultPath: '$.quarantineError' });
    quarantineFailure.next(notifyFailure);
    notifyFailure.next(failed);
    const onFailure = (state: sfn.TaskStateBase, step: string): sfn.Pass => {
      const failedStep = new sfn.Pass(flow, `${step}Failed`, { result: sfn.Result.fromString(step), resultPath: '$.failedStep' });
      state.addCatch(failedStep.next(quarantineFailure), { resultPath: '$.failure' });
      return failedStep;
    };

    // Normalise: an S3 event from EventBridge (with a version id when the bucket is versioned), or `{ source }` from the backfill.
    const eventSource = (versioned: boolean) => ({
      'bucket.$': '$.detail.bucket.name',
      // S3 sends event keys URL-encoded; the router decodes them.
      'key.$': '$.detail.object.key',
      'keyUrlEncoded': true,
      'size.$': '$.detail.object.size',
      ...(versioned ? { 'versionId.$': "$.detail.object['version-id']" } : {}),
    });
    const fromEvent = new sfn.Pass(flow, 'FromEvent', { parameters: { 'source': eventSource(true), 'force': false, 'executionArn.$': '$$.Execution.Id' } });
    const fromUnversionedEvent = new sfn.Pass(flow, 'FromUnversionedEvent', {
      parameters: { 'source': eventSource(false), 'force': false, 'executionArn.$': '$$.Execution.Id' },
    });
    const fromBackfill = new sfn.Pass(flow, 'FromBackfill', { parameters: { 'source.$': '$.source', 'force': false, 'executionArn.$': '$$.Execution.Id' } });
    // A reprocessing run says whether to redo a settled file.
    const fromReprocess = new sfn.Pass(flow, 'FromReprocess', {
      parameters: { 'source.$': '$.source', 'force.$': '$.force', 'executionArn.$': '$$.Execution.Id' },
    });

    const route = new tasks.LambdaInvoke(flow, 'Route', {
      lambdaFunction: invokeTarget(this.safeDeployment, this.routerFunction),
      payload: sfn.TaskInput.fromObject({ ...stepInput, 'force.$': '$.force' }),
      payloadResponseOnly: true,
      resultPath: '$.route',
      retryOnServiceExceptions: false,
    });
    route.addRetry({ ...backoff, errors: ['States.ALL'] });
    onFailure(route, 'Route');

    const processFile = new tasks.LambdaInvoke(flow, 'ProcessFile', {
      lambdaFunction: invokeTarget(this.safeDeployment, this.processorFunction),
      payload: sfn.TaskInput.fromObject(forcedInput),
      payloadResponseOnly: true,
      resultPath: '$.processed',
      retryOnServiceExceptions: false,
    });
    // A refused file will be refused again: no retry. Anything else (S3, DynamoDB, timeouts) is retried.
    processFile.addRetry({ errors: [FILE_REFUSED], maxAttempts: 0 });
    processFile.addRetry({ ...backoff, interval: Duration.seconds(10), errors: ['States.ALL'] });
    onFailure(processFile, 'ProcessFile');

    const copyDocument = new tasks.LambdaInvoke(flow, 'CopyDocument', {
      lambdaFunction: invokeTarget(this.safeDeployment, this.copyDocumentFunction),
      payload: sfn.TaskInput.fromObject(routedInput),
      payloadResponseOnly: true,
      resultPath: '$.document',
      retryOnServiceExceptions: false,
    });
    copyDocument.addRetry({ ...backoff, errors: ['States.ALL'] });
    onFailure(copyDocument, 'CopyDocument');

    const quarantineUnsupported = new tasks.LambdaInvoke(flow, 'Quarantine', {
      lambdaFunction: invokeTarget(this.safeDeployment, this.quarantineFunction),
      payload: sfn.TaskInput.fromObject({ ...routedInput, 'step': 'Route', 'reason.$': '$.route.reason' }),
      payloadResponseOnly: true,
      resultPath: '$.quarantine',
      retryOnServiceExceptions: false,
    });
    quarantineUnsupported.addRetry({ ...backoff, errors: ['States.ALL'] });
    const notifyUnsupported = new tasks.SnsPublish(flow, 'NotifyQuarantined', {
      topic: this.notificationTopic,
      subject: `ONS file quarantined (${this.stage.name})`,
      message: sfn.TaskInput.fromObject({ 'execution.$': '$$.Execution.Id', 'source.$': '$.route.source', 'reason.$': '$.route.reason' }),
      resultPath: sfn.JsonPath.DISCARD,
    });
    notifyUnsupported.addRetry({ ...backoff, errors: ['SNS.SdkClientException', 'SNS.InternalErrorException', 'SNS.ThrottledException'] });
    onFailure(quarantineUnsupported, 'Quarantine');
    quarantineUnsupported.next(notifyUnsupported).next(new sfn.Succeed(flow, 'Quarantined'));

    let loadTimeSeries: sfn.TaskStateBase | sfn.Pass;
    if (this.timeSeriesLoader) {
      const load = new tasks.LambdaInvoke(flow, 'LoadTimeSeries', {
        lambdaFunction: invokeTarget(this.safeDeployment, this.timeSeriesLoader),
        payload: sfn.TaskInput.fromObject({ ...routedInput, 'processed.$': '$.processed' }),
        payloadResponseOnly: true,
        resultPath: '$.load',
        retryOnServiceExceptions: false,
      });
      // Throttling already had the loader's in-Lambda budget: it goes to the retry-later loop, not the Retry.
      load.addRetry({ errors: [...LOADER_NON_RETRYABLE, LoadErrors.THROTTLED], maxAttempts: 0 });
      load.addRetry({ ...backoff, interval: Duration.seconds(10), errors: ['States.ALL'] });
      this.retryLaterWhenThrottled(flow, load, this.throttledLoadRetryPeriod, backoff, onFailure);
      loadTimeSeries = load;
    } else {
      loadTimeSeries = new sfn.Pass(flow, 'LoadTimeSeries', {
        result: sfn.Result.fromObject(this.timeSeriesQueryableOnPublish
          ? { skipped: 'the time-series store reads the lake itself: ProcessFile recorded the published file loaded (queryable)' }
          : { skipped: 'no time-series store is attached to the pipeline' }),
        resultPath: '$.load',
      });
    }
    const done = new sfn.Succeed(flow, 'Done');
    if (this.knowledgeBase) {
      const syncKnowledgeBase = this.createSync(flow, done, backoff);
      loadTimeSeries.next(syncKnowledgeBase);
      copyDocument.next(syncKnowledgeBase);
    } else {
      const syncKnowledgeBase = new sfn.Pass(flow, 'SyncKnowledgeBase', {
        result: sfn.Result.fromObject({ skipped: 'no knowledge base is attached to the pipeline' }),
        resultPath: '$.sync',
      });
      loadTimeSeries.next(syncKnowledgeBase).next(done);
      copyDocument.next(syncKnowledgeBase);
    }

    const duplicate = new sfn.Choice(flow, 'AlreadyProcessed?')
      .when(sfn.Condition.stringEquals('$.processed.status', 'duplicate'), new sfn.Succeed(flow, 'Duplicate'))
      // An older version that finished after a newer one of its key: nothing was published, nothing to load.
      .when(sfn.Condition.stringEquals('$.processed.status', 'superseded'), new sfn.Succeed(flow, 'Superseded'))
      .otherwise(loadTimeSeries);
    processFile.next(duplicate);

    const branches: Partial<Record<RouteAction, sfn.IChainable>> = {
      process: processFile, document: copyDocument, quarantine: quarantineUnsupported,
    };
    if (large) {
      const submit = new tasks.BatchSubmitJob(flow, 'ProcessFileBatch', {
        jobName: 'ons-ingestion',
        jobQueueArn: large.jobQueue.jobQueueArn,
        jobDefinitionArn: large.jobDefinition.jobDefinitionArn,
        containerOverrides: {
          environment: { [IngestionEnv.JOB_INPUT]: sfn.JsonPath.jsonToString(sfn.JsonPath.objectAt('$.jobInput')) },
        },
        integrationPattern: sfn.IntegrationPattern.RUN_JOB,
        resultPath: sfn.JsonPath.DISCARD,
      });
      submit.addRetry({ ...backoff, errors: ['Batch.AWSBatchException', 'Batch.TooManyRequestsException', 'Batch.ServerException'] });
      onFailure(submit, 'ProcessFileBatch');
      // The job cannot return data to the state machine: its result is read back from the ledger.
      const readResult = new tasks.CallAwsService(flow, 'ReadBatchResult', {
        service: 'dynamodb',
        action: 'getItem',
        parameters: {
          TableName: this.ledger.tableName,
          ConsistentRead: true,
          Key: {
            [LedgerSchema.PARTITION_KEY]: { 'S.$': `$.route.ledgerKey.${LedgerSchema.PARTITION_KEY}` },
            [LedgerSchema.SORT_KEY]: { 'S.$': `$.route.ledgerKey.${LedgerSchema.SORT_KEY}` },
          },
        },
        iamResources: [this.ledger.table.tableArn],
        iamAction: 'dynamodb:GetItem',
        resultSelector: { 'value.$': 'States.StringToJson($.Item.result.S)' },
        resultPath: '$.batchResult',
      });
      readResult.addRetry({ ...backoff, errors: ['States.ALL'] });
      onFailure(readResult, 'ReadBatchResult');
      const jobInput = new sfn.Pass(flow, 'BatchJobInput', { parameters: forcedInput, resultPath: '$.jobInput' });
      jobInput.next(submit).next(readResult)
        .next(new sfn.Pass(flow, 'BatchResult', { inputPath: '$.batchResult.value', resultPath: '$.processed' }))
        .next(duplicate);
      branches.processLarge = jobInput;
    }
    // One source of truth: the router answers only the routes this Choice has.
    router.addEnvironment(IngestionEnv.ROUTES, Object.keys(branches).join(','));
    const decide = new sfn.Choice(flow, 'Decide');
    for (const [action, next] of Object.entries(branches)) decide.when(sfn.Condition.stringEquals('$.route.action', action), next!);
    // An action without a branch (a router out of step with this machine) is quarantined and notified, never a bare Fail.
    decide.otherwise(new sfn.Pass(flow, 'UnknownRoute', {
      parameters: {
        'action': 'quarantine',
        'reason.$': "States.Format('the router answered {}, a route this state machine does not have', $.route.action)",
        'source.$': '$.route.source',
        'ledgerKey.$': '$.route.ledgerKey',
      },
      resultPath: '$.route',
    }).next(quarantineUnsupported));

    const normalise = new sfn.Choice(flow, 'Normalise')
      .when(sfn.Condition.isPresent("$.detail.object['version-id']"), fromEvent)
      .when(sfn.Condition.isPresent('$.detail'), fromUnversionedEvent)
      .when(sfn.Condition.isPresent('$.force'), fromReprocess)
      .otherwise(fromBackfill);
    fromEvent.next(route);
    fromUnversionedEvent.next(route);
    fromBackfill.next(route);
    fromReprocess.next(route);
    route.next(decide);
    return this.newStateMachine('StateMachine', normalise, 'ingestion');
  }

  /** A Standard state machine with the platform's settings: full logging, tracing per stage, the platform key. */
  private newStateMachine(id: string, start: sfn.IChainable, purpose: string): sfn.StateMachine {
    const logGroup = new logs.LogGroup(this, `${id}Logs`, { retention: this.stage.logRetention, encryptionKey: this.key });
    applyDataRemovalPolicy(logGroup, this.stage);
    const machine = new sfn.StateMachine(this, id, {
      comment: `ONS data platform (${this.stage.name}): ${purpose}`,
      definitionBody: sfn.DefinitionBody.fromChainable(start),
      stateMachineType: sfn.StateMachineType.STANDARD,
      queryLanguage: sfn.QueryLanguage.JSON_PATH,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: this.stage.tracing === lambda.Tracing.ACTIVE,
      encryptionConfiguration: new sfn.CustomerManagedEncryptionConfiguration(this.key, Duration.minutes(5)),
    });
    allowOwnExecutionData(machine, this.key);
    if (this.stage.tracing !== lambda.Tracing.ACTIVE) {
      Validations.of(machine).acknowledge({ id: 'AwsSolutions-SF2', reason: `X-Ray tracing follows the stage: off in '${this.stage.name}'.` });
    }
    return machine;
  }

  /** The backfill: a thin front that runs the reprocessing state machine with its own input (`{ "prefix": "2000/" }`). */
  private createBackfill(): sfn.StateMachine {
    const flow = new Construct(this, 'BackfillWorkflow');
    const reprocess = new tasks.StepFunctionsStartExecution(flow, 'Reprocess', {
      stateMachine: this.reprocessStateMachine,
      integrationPattern: sfn.IntegrationPattern.RUN_JOB,
      // The whole input: the reprocessing selection checks it and names a field it does not know.
      input: sfn.TaskInput.fromJsonPathAt('$'),
      resultSelector: { 'report.$': '$.Output' },
      outputPath: '$.report',
    });
    reprocess.addRetry({
      errors: ['StepFunctions.ExecutionLimitExceededException', 'StepFunctions.SdkClientException', 'StepFunctions.AWSStepFunctionsException'],
      interval: Duration.seconds(5),
      backoffRate: 2,
      maxAttempts: 6,
      jitterStrategy: sfn.JitterType.FULL,
    });
    const machine = this.newStateMachine('Backfill', reprocess, 'backfill (runs the reprocessing state machine)');
    this.key.grant(machine, 'kms:GenerateDataKey', 'kms:Decrypt');
    return machine;
  }

  /**
   * Reprocessing: SelectFiles writes the manifest (JSON Lines, in the processed bucket) that two Distributed Maps read,
   * so thousands of files never pass through state (256 KiB per payload). RequestRestores sends RestoreObject for
   * every archived file first, so restores run side by side instead of `reprocessMaxConcurrency` at a time;
   * ReprocessFiles then waits for each file's restore (HeadObject every `restorePollInterval`), starts the ingestion
   * state machine for it (`.sync:2`, `{ source, force }`) and records what it ended as; WriteReport gathers the rows.
   */
  private createReprocess(props: IngestionPipelineProps, common: Pick<PlatformFunctionOptions, 'stage' | 'service' | 'encryptionKey'> & { environment: Record<string, string> }): sfn.StateMachine {
    const concurrency = this.reprocessMaxConcurrency;
    const prop = props.reprocessMaxConcurrency !== undefined || props.backfillMaxConcurrency === undefined ? 'reprocessMaxConcurrency' : 'backfillMaxConcurrency';
    // 10,000: the Distributed Map's limit of concurrent child executions.
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10000) {
      throw new Error(`${prop}: expected an integer from 1 to 10000, got ${concurrency}`);
    }
    const tier = props.restoreTier ?? RestoreTier.STANDARD;
    if (!Object.values(RestoreTier).includes(tier)) throw new Error(`restoreTier: expected RestoreTier.STANDARD or RestoreTier.BULK, got ${tier}`);
    const restoreDays = props.restoreDays ?? 7;
    if (!Number.isInteger(restoreDays) || restoreDays < 1) throw new Error(`restoreDays: expected a whole number of days of at least 1, got ${restoreDays}`);
    const poll = props.restorePollInterval ?? Duration.hours(tier === RestoreTier.BULK ? 4 : 1);
    const pollSeconds = poll.toSeconds();
    if (pollSeconds < 60 || pollSeconds > 86400) throw new Error(`restorePollInterval: expected 1 minute to 24 hours, got ${poll.toHumanString()}`);
    // Deep Archive restores typically complete within 12 hours (Standard) or 48 hours (Bulk): twice that before giving up.
    const timeout = props.restoreTimeout ?? Duration.hours(tier === RestoreTier.BULK ? 96 : 24);
    if (timeout.toSeconds() < pollSeconds) throw new Error(`restoreTimeout (${timeout.toHumanString()}) must be at least restorePollInterval (${poll.toHumanString()})`);
    const maxPolls = Math.ceil(timeout.toSeconds() / pollSeconds);

    const reportsPrefix = this.reportsPrefix;
    const runObjects = this.lake.processedBucket.arnForObjects(`${reportsPrefix}reprocess/*`);
    const environment = {
      ...common.environment,
      [LakeEnv.RAW_BUCKET]: this.lake.rawBucket.bucketName,
      [LakeEnv.REPORTS_PREFIX]: reportsPrefix,
      [IngestionEnv.RESTORE_TIER]: tier,
      [IngestionEnv.RESTORE_DAYS]: String(restoreDays),
    };
    const options = { ...common, environment, reservedConcurrentExecutions: props.reservedConcurrentExecutions };
    const writeRuns = (grantee: iam.IGrantable, actions: string[]) => {
      grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions, resources: [runObjects] }));
      this.key.grant(grantee, 'kms:Decrypt', 'kms:GenerateDataKey');
    };

    const select = createPlatformFunction(this, 'ReprocessSelect', ReprocessSelectFunction, {
      ...options, description: `ONS data platform (${this.stage.name}): reprocessing selection`, timeout: Duration.minutes(15), memorySize: 1024,
    });
    this.ledger.grantQuery(select); // itemsBy: Query on an index, nothing else
    select.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.lake.rawBucket.bucketArn] }));
    writeRuns(select, ['s3:PutObject']);

    const file = createPlatformFunction(this, 'ReprocessFile', ReprocessFileFunction, {
      ...options, description: `ONS data platform (${this.stage.name}): reprocessing of one file (restore, outcome)`, timeout: Duration.minutes(1),
    });
    this.grantReadRaw(file);
    file.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:RestoreObject'], resources: [this.lake.rawBucket.arnForObjects('*')] }));
    // ledger.get: GetItem only (the raw key's kms:Decrypt comes with grantReadRaw).
    this.ledger.table.grant(file, 'dynamodb:GetItem');
    writeRuns(file, ['s3:PutObject']);

    const report = createPlatformFunction(this, 'ReprocessReport', ReprocessReportFunction, {
      ...options, description: `ONS data platform (${this.stage.name}): reprocessing report`, timeout: Duration.minutes(15), memorySize: 1024,
    });
    writeRuns(report, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject']);

    const flow = new Construct(this, 'ReprocessWorkflow');
    const backoff = { interval: Duration.seconds(2), backoffRate: 2, maxAttempts: 3, jitterStrategy: sfn.JitterType.FULL };
    const invoke = (id: string, fn: lambda.IFunction, payload: Record<string, unknown>, resultPath: string) => {
      const task = new tasks.LambdaInvoke(flow, id, {
        lambdaFunction: fn, payload: sfn.TaskInput.fromObject(payload), payloadResponseOnly: true, resultPath, retryOnServiceExceptions: false,
      });
      task.addRetry({ errors: [INVALID_REPROCESS_REQUEST], maxAttempts: 0 });
      task.addRetry({ ...backoff, errors: ['States.ALL'] });
      return task;
    };

    const selectFiles = invoke('SelectFiles', select, { 'request.$': '$', 'run.$': '$$.Execution.Name' }, '$.plan');
    const manifest = () => new sfn.S3JsonLItemReader({
      bucketNamePath: sfn.JsonPath.stringAt('$.plan.bucket'), key: sfn.JsonPath.stringAt('$.plan.manifestKey'),
    });
    // A file's iteration returns {} (its row is in S3): 10,000s of files stay far below the 256 KiB of the Map's result.
    const nothing = (id: string) => new sfn.Pass(flow, id, { result: sfn.Result.fromObject({}) });

    // First pass: a restore for every archived file (S3 takes 3,500 POST requests per second per prefix).
    const requestRestore = invoke('RequestRestore', file, { 'action': 'check', 'item.$': '$.item', 'force.$': '$.force' }, sfn.JsonPath.DISCARD);
    requestRestore.addCatch(nothing('RestoreNotRequested'), { resultPath: sfn.JsonPath.DISCARD });
    requestRestore.next(nothing('RestoreRequested'));
    const requestRestores = new sfn.DistributedMap(flow, 'RequestRestores', {
      itemReader: manifest(),
      itemSelector: { 'item.$': '$$.Map.Item.Value', 'force.$': '$.plan.force' },
      maxConcurrency: RESTORE_REQUEST_CONCURRENCY,
      mapExecutionType: sfn.StateMachineType.STANDARD,
      // The second pass asks again for a file whose request failed here.
      toleratedFailurePercentage: 100,
      resultPath: sfn.JsonPath.DISCARD,
    });
    requestRestores.itemProcessor(requestRestore);

    // Second pass, per file: wait for its restore, ingest it, record its outcome.
    const recordOutcome = invoke('RecordOutcome', file, { 'action': 'record', 'state.$': '$' }, sfn.JsonPath.DISCARD);
    recordOutcome.next(nothing('FileDone'));
    const checkFile = invoke('CheckFile', file, { 'action': 'check', 'item.$': '$.item', 'force.$': '$.force', 'polls.$': '$.counter.polls' }, '$.check');
    checkFile.addCatch(recordOutcome, { resultPath: '$.failure' });
    const ingestFile = new tasks.StepFunctionsStartExecution(flow, 'IngestFile', {
      stateMachine: this.stateMachine,
      integrationPattern: sfn.IntegrationPattern.RUN_JOB,
      input: sfn.TaskInput.fromObject({ 'source.$': '$.check.source', 'force.$': '$.force' }),
      associateWithParent: true,
      resultSelector: { 'executionArn.$': '$.ExecutionArn', 'status.$': '$.Status' },
      resultPath: '$.ingest',
    });
    ingestFile.addRetry({
      errors: ['StepFunctions.ExecutionLimitExceededException', 'StepFunctions.SdkClientException', 'StepFunctions.AWSStepFunctionsException'],
      interval: Duration.seconds(5),
      backoffRate: 2,
      maxAttempts: 6,
      jitterStrategy: sfn.JitterType.FULL,
    });
    // A failed ingestion (States.TaskFailed) quarantined the file: the ledger says so, RecordOutcome reads it.
    ingestFile.addCatch(recordOutcome, { resultPath: '$.failure' });
    ingestFile.next(recordOutcome);
    const waitForRestore = new sfn.Wait(flow, 'WaitForRestore', { time: sfn.WaitTime.duration(poll) });
    const countPoll = new sfn.Pass(flow, 'CountPoll', { parameters: { 'polls.$': 'States.MathAdd($.counter.polls, 1)' }, resultPath: '$.counter' });
    waitForRestore.next(countPoll).next(checkFile);
    const timedOut = new sfn.Pass(flow, 'RestoreTimedOut', {
      result: sfn.Result.fromObject({
        Error: 'RestoreTimedOut',
        Cause: `the raw object was still being restored after ${timeout.toHumanString()} (restoreTimeout); start the reprocessing again once it is restored`,
      }),
      resultPath: '$.failure',
    }).next(recordOutcome);
    const keepWaiting = new sfn.Choice(flow, 'KeepWaiting?')
      .when(sfn.Condition.numberLessThan('$.counter.polls', maxPolls), waitForRestore)
      .otherwise(timedOut);
    checkFile.next(new sfn.Choice(flow, 'FileReady?')
      .when(sfn.Condition.stringEquals('$.check.state', 'ready'), ingestFile)
      .when(sfn.Condition.stringEquals('$.check.state', 'restoring'), keepWaiting)
      .otherwise(recordOutcome));
    const reprocessFiles = new sfn.DistributedMap(flow, 'ReprocessFiles', {
      itemReader: manifest(),
      itemSelector: { 'item.$': '$$.Map.Item.Value', 'plan.$': '$.plan', 'force.$': '$.plan.force', 'counter': { polls: 0 } },
      maxConcurrency: concurrency,
      mapExecutionType: sfn.StateMachineType.STANDARD,
      // Every file ends with a row, failed or not; a file whose iteration failed outright is reported without one.
      toleratedFailurePercentage: 100,
      resultPath: sfn.JsonPath.DISCARD,
    });
    reprocessFiles.itemProcessor(checkFile);

    const writeReport = invoke('WriteReport', report, { 'plan.$': '$.plan' }, '$.report');
    const done = new sfn.Succeed(flow, 'Done', { outputPath: '$.report' });
    writeReport.next(done);
    selectFiles.next(new sfn.Choice(flow, 'AnyFiles?')
      .when(sfn.Condition.numberEquals('$.plan.count', 0), writeReport)
      .otherwise(requestRestores.next(reprocessFiles).next(writeReport)));

    const machine = this.newStateMachine('Reprocess', selectFiles, `reprocessing (${concurrency} files at a time)`);
    // The Distributed Maps read the manifest (the item reader is given the bucket by path, so it grants nothing itself).
    machine.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [runObjects] }));
    this.key.grant(machine, 'kms:GenerateDataKey', 'kms:Decrypt');
    return machine;
  }

  private createTrigger(keyPrefix: string | undefined, keySuffixes: string[] | undefined): { rule: events.Rule; deadLetterQueue: sqs.IQueue } {
    // Rules of this account only ('account' alone let EventBridge use the lake key for any call on the account's behalf).
    const deadLetterQueue = createEventDeadLetterQueue(this, 'TriggerDeadLetterQueue', {
      encryptionKey: this.key, keyPolicySid: 'AllowEventBridgeDeadLetters', senders: 'accountRules', deadLetterOf: 'the ingestion rule',
    });

    const rule = new events.Rule(this, 'ObjectCreated', {
      description: `ONS data platform (${this.stage.name}): start an ingestion for each object created in the raw bucket`,
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: { bucket: { name: [this.lake.rawBucket.bucketName] }, ...keyFilter(keyPrefix, keySuffixes) },
      },
    });
    const role = new iam.Role(this, 'TriggerRole', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com'),
      description: 'Starts the ONS ingestion state machine for raw-bucket events',
    });
    this.stateMachine.grantStartExecution(role);
    this.key.grant(role, 'kms:GenerateDataKey', 'kms:Decrypt');
    rule.addTarget(new targets.SfnStateMachine(this.stateMachine, {
      role,
      deadLetterQueue,
      retryAttempts: 185,
      maxEventAge: Duration.hours(24),
    }));
    return { rule, deadLetterQueue };
  }
}

/** Most seconds of jitter added to each retry-later wait. */
const RETRY_LATER_JITTER_SECONDS = 60;

/**
 * The waits (seconds) of a throttled load before each new attempt: 5 minutes doubling up to 60, until
 * they add up to `period` (5 minutes to 7 days, else an error naming `throttledLoadRetryPeriod`).
 */
export function retryLaterSchedule(period: Duration): number[] {
  const total = period.toSeconds();
  if (!Number.isFinite(total) || total < 300 || total > 7 * 86_400) {
    throw new Error(`throttledLoadRetryPeriod: expected 5 minutes to 7 days, got ${period.toHumanString()}`);
  }
  const waits: number[] = [];
  for (let sum = 0, next = 300; sum < total; next = Math.min(3600, next * 2)) {
    waits.push(next);
    sum += next;
  }
  return waits;
}

/** The rule's `detail.object.key` filter. A prefix and suffixes together need wildcards (a list of filters is an OR). */
function keyFilter(prefix: string | undefined, suffixes: string[] | undefined): Record<string, unknown> {
  if (prefix !== undefined && prefix.length === 0) throw new Error('keyPrefix: give a non-empty prefix, or leave it out');
  if (suffixes !== undefined && (suffixes.length === 0 || suffixes.some((s) => s.length === 0))) {
    throw new Error('keySuffixes: give non-empty suffixes, or leave the prop out');
  }
  if (prefix === undefined && suffixes === undefined) return {};
  if (suffixes === undefined) return { object: { key: [{ prefix }] } };
  if (prefix === undefined) return { object: { key: suffixes.map((s) => ({ suffix: { 'equals-ignore-case': s } })) } };
  const escape = (v: string) => v.replace(/[\\*]/g, (c) => `\\${c}`);
  return { object: { key: suffixes.map((s) => ({ wildcard: `${escape(prefix)}*${escape(s)}` })) } };
}

/** The file, its outputs and headroom fit in /tmp: three times the file plus 512 MiB, within Lambda's 10 GiB. */
function defaultEphemeralStorage(maxFile: Size): Size {
  const mib = maxFile.toMebibytes({ rounding: 2 });
  if (Token.isUnresolved(mib)) return Size.gibibytes(10);
  return Size.mebibytes(Math.min(10240, Math.max(512, Math.ceil(mib * 3 + 512))));
}

function extensions(prop: string, values: string[]): string[] {
  const normalised = values.map((v) => v.trim().toLowerCase().replace(/^\./, ''));
  for (const v of normalised) {
    if (!/^[a-z0-9]{1,16}$/.test(v)) throw new Error(`${prop}: '${v}' is not a file extension (letters and digits, without the dot)`);
  }
  if (normalised.length === 0) throw new Error(`${prop}: give at least one extension`);
  return [...new Set(normalised)];
}
