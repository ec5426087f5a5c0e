import { createHash } from 'node:crypto';
import { Arn, ArnFormat, Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as bedrock from 'aws-cdk-lib/aws-bedrock';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { ChunkingStrategy } from './chunking';
import { AnswerEnv, AnswerLimitRanges, AnswerLimits, KnowledgeEnv } from './contract';
import { EmbeddingModel } from './embedding-model';
import { defaultGenerationModel } from './generation-model';
import { grantIngestionJobs, IKnowledgeBase, KnowledgeBaseAttributes } from './knowledge-base-ref';
import { QueryFunction } from './query-function';
import { retryWhileIngestionJobRuns } from './sync-retry';
import { VECTOR_INDEX_NAME, VectorStore, VectorStoreConfig } from './vector-store';
import {
  allowOwnExecutionData, allowScheduleDeadLetters, applyPlatformTags, createEventDeadLetterQueue, createPlatformFunction, eventDeadLetterInventory,
  grantKeyViaService,
} from '../core/defaults';
import { IFeatureFlags } from '../core/flags';
import { AlarmSeverity, DashboardSection, IMonitor, IMonitorable, platformMetric } from '../core/monitorable';
import { acknowledgeScopedWildcards } from '../core/nag';
import { AwsCall, CallerInventory, functionRuntimeCalls, machineRuntimeCalls, startEncrypted } from '../core/permissions';
import { applyDataRemovalPolicy } from '../core/removal';
import { PlatformStage } from '../core/stage';
import { IDataLake } from '../lake/data-lake';
import { LedgerEnv, LedgerSchema } from '../ledger/contract';
import { IIngestionLedger } from '../ledger/ingestion-ledger';
import { KnowledgeBaseLogMetrics, MetricServices, metricsNamespace, PlatformMetrics } from '../runtime/contract';

/**
 * Options of the knowledge base (what `OnsDataPlatform` passes through).
 */
export interface KnowledgeBaseOptions {
  /**
   * Where the vectors are stored.
   *
   * @default VectorStore.s3Vectors()
   */
  readonly vectorStore?: VectorStore;

  /**
   * The model that embeds chunks and questions; its dimension is the index's.
   *
   * @default EmbeddingModel.titanTextV2() (1024 dimensions)
   */
  readonly embeddingModel?: EmbeddingModel;

  /**
   * How documents and data cards are split into chunks.
   *
   * @default ChunkingStrategy.fixedSize() (300 tokens, 20 % overlap)
   */
  readonly chunking?: ChunkingStrategy;

  /**
   * A schedule on which both data sources are synchronised again (EventBridge Scheduler), on top of
   * the pipeline's sync after each file, e.g. `scheduler.ScheduleExpression.cron({ hour: '3', minute: '0' })`.
   *
   * @default - no scheduled sync
   */
  readonly scheduledSync?: scheduler.ScheduleExpression;

  /**
   * Synchronise both data sources after every successful deployment of the stack (creation and
   * updates: a changed chunking strategy or model needs a new sync), with an EventBridge rule on the
   * stack's CloudFormation status events that starts a small state machine (no Lambda).
   *
   * @default true
   */
  readonly syncAfterDeployment?: boolean;

  /**
   * Deliver the knowledge base's application logs (each ingestion job's status and each document's
   * outcome) to a KMS-encrypted log group, with metric filters for failed jobs and failed documents
   * (`metricIngestionJobsFailed()`, `metricDocumentsFailed()`): Bedrock publishes neither an event nor a
   * metric for them. Delivery is charged as CloudWatch vended logs.
   *
   * @default true
   */
  readonly applicationLogs?: boolean;

  /**
   * A description of the knowledge base.
   *
   * @default - names the stage
   */
  readonly description?: string;

  /**
   * The model that writes answers (`POST /query`): a foundation model id, or an inference profile or
   * model ARN. Model access must be enabled for it in the account.
   *
   * @default - Amazon Nova Lite where it runs: `amazon.nova-lite-v1:0` in us-east-1, its geography's inference
   * profile (`us.`, `eu.`, `apac.amazon.nova-lite-v1:0`) in the other Regions that offer one; in any other Region
   * (sa-east-1 among them) or a stack without a region, `amazon.nova-lite-v1:0` and a synth warning asking for a model
   */
  readonly generationModel?: string;

  /**
   * ARNs the query function may invoke besides `generationModel` (for an inference profile: the
   * foundation models it routes to, in every region it routes to).
   *
   * @default - only `generationModel`; for the default inference profile, Nova Lite in each Region it routes to
   */
  readonly generationModelArns?: string[];

  /**
   * Chunks retrieved per question (1–100).
   *
   * @default 5
   */
  readonly numberOfResults?: number;

  /**
   * The generation prompt template; must contain `$search_results$`.
   *
   * @default - the handler's template, which answers in the language of the question and cites sources
   */
  readonly promptTemplate?: string;

  /**
   * How questions about numbers are answered when the knowledge base is given `timeSeries`: the model (`generationModel`,
   * which must support Converse tool use, as Amazon Nova and Anthropic Claude models do) calls tools that query the
   * time series, list the catalog and search the documents.
   *
   * @default - on when `timeSeries` is given, with the defaults of `NumericAnswersOptions`
   */
  readonly numericAnswers?: NumericAnswersOptions;
}

/**
 * Bounds of the numeric path of `POST /query` (Converse with tools).
 */
export interface NumericAnswersOptions {
  /**
   * Whether questions may use the tools at all (the `numericAnswers` feature flag switches them at run time).
   *
   * @default true
   */
  readonly enabled?: boolean;

  /**
   * Tool calls one question may make (1 to 50). The model then gets one last turn to answer; asking for more tools
   * again is a 502 `AnswerIncomplete`.
   *
   * @default 8
   */
  readonly maxToolCalls?: number;

  /**
   * Points one time-series tool call may return to the model (1 to 1000). A request whose period and interval would
   * give more is refused before the engine is asked: the model must aggregate on the engine. 500 holds a year of daily
   * values or three weeks of one hourly series.
   *
   * @default 500
   */
  readonly maxPoints?: number;

  /**
   * Time from a request's start to the last model call's deadline (1 to 28 seconds): API Gateway ends an integration
   * at 29 s. Over it, the answer is a 504 `AnswerTimeout`.
   *
   * @default Duration.seconds(25)
   */
  readonly deadline?: Duration;

  /**
   * An Amazon Bedrock guardrail applied to every model call of a question.
   *
   * @default - no guardrail
   */
  readonly guardrail?: AnswerGuardrail;
}

/**
 * An Amazon Bedrock guardrail, by id (or ARN) and version.
 */
export interface AnswerGuardrail {
  /** The guardrail id or ARN. */
  readonly guardrailId: string;
  /** The version (`DRAFT` or a number). */
  readonly guardrailVersion: string;
}

/**
 * The time series the model may query: the query function that answers `GET /timeseries/{dataset}` (an alias
 * where deployments are gradual) and the datasets it serves (an `ITimeSeriesStore` has both).
 */
export interface KnowledgeTimeSeries {
  /** The function (or alias) invoked with the `GET /timeseries/{dataset}` request of each tool call. */
  readonly queryFunction: lambda.IFunction;
  /** Dataset ids the function serves. */
  readonly datasetIds: string[];
}

/**
 * Properties of `KnowledgeBase`.
 */
export interface KnowledgeBaseProps extends KnowledgeBaseOptions {
  /** The stage (defaults such as standby replicas). */
  readonly stage: PlatformStage;
  /** The lake whose processed bucket holds the documents and data cards; its key encrypts the knowledge base's data. */
  readonly dataLake: IDataLake;

  /**
   * Concurrent executions reserved for the query function.
   *
   * @default - no reservation
   */
  readonly reservedConcurrentExecutions?: number;

  /**
   * The feature flags the query function (`ragQueries`) reads (`FeatureFlags`, or your own `IFeatureFlags`); bound when the function is made.
   *
   * @default - no flags: the handler treats every flag as on
   */
  readonly featureFlags?: IFeatureFlags;

  /**
   * The time series the question handler's tools query (with `ledger`, whose catalog of loaded periods they list).
   *
   * @default - no numeric path: questions are answered from the documents and data cards only (RetrieveAndGenerate)
   */
  readonly timeSeries?: KnowledgeTimeSeries;

  /**
   * The ingestion ledger the catalog tool reads (what is loaded, per dataset). Required with `timeSeries`.
   *
   * @default - none
   */
  readonly ledger?: IIngestionLedger;
}

/**
 * An Amazon Bedrock knowledge base over the lake: uploaded documents (`documentsPrefix`) and the data
 * cards the processor writes (`dataCardsPrefix`, each with a `.metadata.json` file that Bedrock reads
 * for filtering by dataset and year).
 *
 * Creates the vector store (`VectorStore`), a service role with least privilege (the embedding model
 * only, the two prefixes only, the lake key, the vector index only), the knowledge base, and one S3
 * data source per prefix with the chunking strategy and the lake key for transient data. The
 * knowledge base is created after its vector index.
 *
 * Sync: given to an ingestion pipeline, its files ask for a sync and the pipeline's `KnowledgeBaseSync` runs one
 * ingestion job at a time for many files, recording the outcome in the ledger; `scheduledSync` adds a periodic sync
 * of both sources.
 *
 * @example
 * new KnowledgeBase(stack, 'Knowledge', { stage: PlatformStage.DEV, dataLake: lake });
 */
export class KnowledgeBase extends Construct implements IKnowledgeBase, IMonitorable {
  /**
   * A knowledge base that exists already (another stack, or made outside CDK), for an `IngestionPipeline` to sync:
   * `KnowledgeBase.fromKnowledgeBaseAttributes(this, 'Knowledge', { knowledgeBaseArn, documentsDataSourceId, cardsDataSourceId })`.
   */
  public static fromKnowledgeBaseAttributes(scope: Construct, id: string, attrs: KnowledgeBaseAttributes): IKnowledgeBase {
    const knowledgeBaseId = Arn.split(attrs.knowledgeBaseArn, ArnFormat.SLASH_RESOURCE_NAME).resourceName;
    if (!knowledgeBaseId) throw new Error(`knowledgeBaseArn: expected arn:aws:bedrock:<region>:<account>:knowledge-base/<id>, got '${attrs.knowledgeBaseArn}'`);
    return new class extends Construct implements IKnowledgeBase {
      public readonly knowledgeBaseArn = attrs.knowledgeBaseArn;
      public readonly knowledgeBaseId = knowledgeBaseId!;
      public readonly documentsDataSourceId = attrs.documentsDataSourceId;
      public readonly cardsDataSourceId = attrs.cardsDataSourceId;
      public grantIngest(grantee: iam.IGrantable): iam.Grant {
        return grantIngestionJobs(grantee, this.knowledgeBaseArn);
      }
    }(scope, id);
  }

  /** The knowledge base. */
  public readonly cfnKnowledgeBase: bedrock.CfnKnowledgeBase;
  /** The knowledge base id. */
  public readonly knowledgeBaseId: string;
  /** The knowledge base ARN. */
  public readonly knowledgeBaseArn: string;
  /** The data source over uploaded documents. */
  public readonly documentsDataSource: bedrock.CfnDataSource;
  /** The data source over data cards. */
  public readonly cardsDataSource: bedrock.CfnDataSource;
  /** Id of the documents data source. */
  public readonly documentsDataSourceId: string;
  /** Id of the data cards data source. */
  public readonly cardsDataSourceId: string;
  /** The role Bedrock assumes to read the lake, embed and write vectors. */
  public readonly role: iam.IRole;
  /** The embedding model. */
  public readonly embeddingModel: EmbeddingModel;
  /** The vector store's type (`S3_VECTORS` or `OPENSEARCH_SERVERLESS`). */
  public readonly vectorStoreType: string;
  /** The role EventBridge Scheduler uses for the scheduled sync (absent without `scheduledSync`). */
  public readonly syncScheduleRole?: iam.IRole;
  /** Synchronises both data sources; started after each deployment (absent when `syncAfterDeployment` is false). */
  public readonly syncStateMachine?: sfn.StateMachine;
  /**
   * Answers `POST /query` in API Gateway proxy format: RetrieveAndGenerate over this knowledge base,
   * with citations, sessions and dataset/year filters.
   */
  public readonly queryFunction: lambda.IFunction;
  /** The application logs of ingestion jobs (absent when `applicationLogs` is false). */
  public readonly applicationLogGroup?: logs.ILogGroup;

  private readonly key: kms.IKey;
  /** What the permission inventory needs: the lake, the vector index, the query model, the flags. */
  private readonly inventoryParts: {
    readonly lake: IDataLake;
    readonly indexArn?: string;
    modelArn?: string;
    readonly featureFlags?: IFeatureFlags;
    numeric?: { readonly timeSeriesFunction: string; readonly ledgerIndex: string; readonly ledgerKey?: string; readonly guardrailArn?: string };
  };
  private readonly stageName: string;
  /** What the knowledge base's name ends with: empty for the default model and store, else a hash of them. */
  private readonly knowledgeBaseSuffix: string;

  constructor(scope: Construct, id: string, props: KnowledgeBaseProps) {
    super(scope, id);
    applyPlatformTags(this, props.stage);
    const stack = Stack.of(this);
    const lake = props.dataLake;
    this.key = lake.encryptionKey;
    this.embeddingModel = props.embeddingModel ?? EmbeddingModel.titanTextV2();
    const chunking = props.chunking ?? ChunkingStrategy.fixedSize();

    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('bedrock.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': `arn:${stack.partition}:bedrock:${stack.region}:${stack.account}:knowledge-base/*` },
        },
      }),
      description: `Service role of the ONS knowledge base (${props.stage.name})`,
    });
    this.role = role;
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['bedrock:InvokeModel'], resources: [this.embeddingModel.modelArn(this)] }));
    const prefixes = [lake.documentsPrefix, lake.dataCardsPrefix];
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:ListBucket'],
      resources: [lake.processedBucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': prefixes.map((p) => `${p}*`) } },
    }));
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:GetObject'],
      resources: prefixes.map((p) => lake.processedBucket.arnForObjects(`${p}*`)),
    }));
    this.key.grant(role, 'kms:Decrypt', 'kms:GenerateDataKey');

    // Replacement-only properties (the index's dimension, the knowledge base's embedding model and storage, the data
    // sources' chunking) are hashed into the names, so a change creates the new resource under a new name before
    // CloudFormation deletes the old one; the default configuration keeps the names it always had.
    const model = { modelId: this.embeddingModel.modelId, dimensions: this.embeddingModel.dimensions };
    const defaultModel = EmbeddingModel.titanTextV2();
    const indexSuffix = replacementSuffix(this, model, { modelId: defaultModel.modelId, dimensions: defaultModel.dimensions });
    const store: VectorStoreConfig = (props.vectorStore ?? VectorStore.s3Vectors()).bind(this, {
      stage: props.stage, encryptionKey: this.key, role, dimensions: this.embeddingModel.dimensions, indexName: `${VECTOR_INDEX_NAME}${indexSuffix}`,
    });
    this.vectorStoreType = store.type;
    const knowledgeBaseSuffix = replacementSuffix(this, { ...model, store: store.type }, { modelId: defaultModel.modelId, dimensions: defaultModel.dimensions, store: 'S3_VECTORS' });
    this.knowledgeBaseSuffix = knowledgeBaseSuffix;
    const chunkingSuffix = replacementSuffix(this, chunking.configuration, ChunkingStrategy.fixedSize().configuration);
    const indexArn = (store.storageConfiguration.s3VectorsConfiguration as { indexArn?: string } | undefined)?.indexArn;
    this.inventoryParts = { lake, featureFlags: props.featureFlags, indexArn };

    this.cfnKnowledgeBase = new bedrock.CfnKnowledgeBase(this, 'Resource', {
      name: `ons-knowledge-${props.stage.name}-${this.node.addr.slice(-8)}${knowledgeBaseSuffix}`,
      description: props.description ?? `ONS data platform (${props.stage.name}): documents and data cards`,
      roleArn: role.roleArn,
      knowledgeBaseConfiguration: {
        type: 'VECTOR',
        vectorKnowledgeBaseConfiguration: {
          embeddingModelArn: this.embeddingModel.modelArn(this),
          embeddingModelConfiguration: {
            bedrockEmbeddingModelConfiguration: { dimensions: this.embeddingModel.dimensions, embeddingDataType: 'FLOAT32' },
          },
        },
      },
      storageConfiguration: store.storageConfiguration,
    });
    // The index before the knowledge base, and the role's policy before Bedrock checks it.
    this.cfnKnowledgeBase.node.addDependency(store.dependable);
    this.cfnKnowledgeBase.node.addDependency(role);
    this.knowledgeBaseId = this.cfnKnowledgeBase.attrKnowledgeBaseId;
    this.knowledgeBaseArn = this.cfnKnowledgeBase.attrKnowledgeBaseArn;

    const dataSource = (sourceId: string, name: string, prefix: string, description: string) => new bedrock.CfnDataSource(this, sourceId, {
      knowledgeBaseId: this.knowledgeBaseId,
      name,
      description,
      dataSourceConfiguration: { type: 'S3', s3Configuration: { bucketArn: lake.processedBucket.bucketArn, inclusionPrefixes: [prefix] } },
      serverSideEncryptionConfiguration: { kmsKeyArn: this.key.keyArn },
      vectorIngestionConfiguration: { chunkingConfiguration: chunking.configuration },
      // Vectors of a deleted data source are removed with it.
      dataDeletionPolicy: 'DELETE',
    });
    this.documentsDataSource = dataSource('DocumentsDataSource', `documents${chunkingSuffix}`, lake.documentsPrefix, 'Documents uploaded to the raw bucket (PDF, DOCX, Markdown, HTML)');
    this.cardsDataSource = dataSource('CardsDataSource', `data-cards${chunkingSuffix}`, lake.dataCardsPrefix, 'Data cards of the processed ONS files, with metadata (dataset, years)');
    this.documentsDataSourceId = this.documentsDataSource.attrDataSourceId;
    this.cardsDataSourceId = this.cardsDataSource.attrDataSourceId;

    if (props.scheduledSync) this.syncScheduleRole = this.createScheduledSync(props.scheduledSync);
    if (props.syncAfterDeployment ?? true) this.syncStateMachine = this.createDeploymentSync(props.stage);
    this.queryFunction = this.createQueryFunction(props);
    if (props.applicationLogs ?? true) this.applicationLogGroup = this.createApplicationLogs(props.stage);
    this.stageName = props.stage.name;
    acknowledgeScopedWildcards(this);
  }

  /**
   * Ingestion jobs of this knowledge base that ended FAILED (from its application logs; Sum over 5 minutes).
   * Published only when `applicationLogs` is on.
   */
  public metricIngestionJobsFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.logMetric(KnowledgeBaseLogMetrics.INGESTION_JOBS_FAILED, props);
  }

  /**
   * Documents of this knowledge base whose ingestion ended FAILED (from its application logs; Sum over 5
   * minutes). Published only when `applicationLogs` is on.
   */
  public metricDocumentsFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.logMetric(KnowledgeBaseLogMetrics.DOCUMENTS_FAILED, props);
  }

  /**
   * Ingestion jobs of the platform's sync that ended FAILED or STOPPED, or could not start (Sum over 5 minutes). The
   * metric is the stage's (namespace `OnsDataPlatform/<stage>`, dimension `service` = `knowledge`), emitted by the
   * sync whatever `applicationLogs` says; its files stay `loaded` in the ledger with the reason.
   */
  public metricSyncJobsFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return platformMetric(this.stageName, PlatformMetrics.KNOWLEDGE_SYNC_JOBS_FAILED, props);
  }

  /** Failed ingestion jobs and documents, from the application logs (nothing to watch without them): warnings. */
  public addMonitoring(monitor: IMonitor): void {
    if (!this.applicationLogGroup) return;
    const period = monitor.thresholds.period;
    const jobs = this.metricIngestionJobsFailed({ period });
    const documents = this.metricDocumentsFailed({ period });
    // One failure is worth a look: one datapoint is enough.
    const any = { severity: AlarmSeverity.WARNING, threshold: 1, evaluationPeriods: 1, datapointsToAlarm: 1 };
    monitor.addAlarm(this, 'IngestionJobsFailed', {
      ...any, metric: jobs, description: `Knowledge base ${this.node.path}: an ingestion job failed (its application logs say why)`,
    });
    monitor.addAlarm(this, 'DocumentsFailed', {
      ...any, metric: documents, description: `Knowledge base ${this.node.path}: a document failed to ingest (its application logs name it and say why)`,
    });
    monitor.addWidgets(DashboardSection.PIPELINE, new cloudwatch.GraphWidget({ title: 'Knowledge base: failed ingestion jobs and documents', left: [jobs, documents], width: 12 }));
  }

  private logMetric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: metricsNamespace(this.stageName),
      metricName,
      dimensionsMap: { [KnowledgeBaseLogMetrics.DIMENSION]: this.knowledgeBaseArn },
      statistic: 'Sum',
      period: Duration.minutes(5),
      ...props,
    });
  }

  /** Vended-log delivery of the application logs to a log group, and the metric filters over it. */
  private createApplicationLogs(stage: PlatformStage): logs.ILogGroup {
    const name = `ons-kb-${stage.name}-${this.node.addr.slice(-8)}`;
    // Under /aws/vendedlogs/, CloudWatch Logs grants every vended delivery through one shared resource policy
    // (an account holds at most 10 resource policies).
    const logGroupName = `/aws/vendedlogs/bedrock/knowledge-base/APPLICATION_LOGS/${name}`;
    const logGroup = new logs.LogGroup(this, 'ApplicationLogs', { logGroupName, retention: stage.logRetention, encryptionKey: this.key });
    applyDataRemovalPolicy(logGroup, stage);
    // A replaced knowledge base gets its own delivery source (a new name) while the old one is deleted with it.
    const source = new logs.CfnDeliverySource(this, 'ApplicationLogsSource', {
      name: `${name}${this.knowledgeBaseSuffix}`, resourceArn: this.knowledgeBaseArn, logType: 'APPLICATION_LOGS',
    });
    const destination = new logs.CfnDeliveryDestination(this, 'ApplicationLogsDestination', {
      name,
      // The log group's ARN without the trailing ':*' of logGroupArn.
      destinationResourceArn: Stack.of(this).formatArn({
        service: 'logs', resource: 'log-group', resourceName: logGroupName, arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      }),
      outputFormat: 'json',
    });
    destination.node.addDependency(logGroup);
    const delivery = new logs.CfnDelivery(this, 'ApplicationLogsDelivery', {
      deliverySourceName: source.name, deliveryDestinationArn: destination.attrArn,
    });
    delivery.addResourceDependency(source);

    const namespace = metricsNamespace(stage.name);
    const filter = (id: string, metricName: string, ...conditions: logs.JsonPattern[]) => logGroup.addMetricFilter(id, {
      filterPattern: logs.FilterPattern.all(...conditions),
      metricNamespace: namespace,
      metricName,
      metricValue: '1',
      dimensions: { [KnowledgeBaseLogMetrics.DIMENSION]: '$.event.knowledge_base_arn' },
      unit: cloudwatch.Unit.COUNT,
    });
    filter('IngestionJobsFailedFilter', KnowledgeBaseLogMetrics.INGESTION_JOBS_FAILED,
      logs.FilterPattern.stringValue('$.event_type', '=', 'StartIngestionJob.StatusChanged'),
      logs.FilterPattern.stringValue('$.event.ingestion_job_status', '=', 'FAILED'));
    // The final status of a document only: its intermediate EMBEDDING_FAILED/INDEXING_FAILED lines would count it twice.
    filter('DocumentsFailedFilter', KnowledgeBaseLogMetrics.DOCUMENTS_FAILED,
      logs.FilterPattern.stringValue('$.event_type', '=', 'StartIngestionJob.ResourceStatusChanged'),
      logs.FilterPattern.stringValue('$.event.status', '=', 'FAILED'));
    return logGroup;
  }

  /**
   * Lets `grantee` query the knowledge base (Retrieve, RetrieveAndGenerate) and, when given, invoke
   * the generation model (a foundation model or inference profile ARN; for an inference profile, also
   * give the ARNs of the foundation models it routes to).
   */
  public grantQuery(grantee: iam.IGrantable, ...generationModelArns: string[]): iam.Grant {
    const grant = iam.Grant.addToPrincipal({ grantee, actions: ['bedrock:Retrieve'], resourceArns: [this.knowledgeBaseArn] });
    // RetrieveAndGenerate has no resource type: the knowledge base is authorised through Retrieve above.
    iam.Grant.addToPrincipal({ grantee, actions: ['bedrock:RetrieveAndGenerate'], resourceArns: ['*'] });
    if (generationModelArns.length) {
      iam.Grant.addToPrincipal({
        grantee, actions: ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream', 'bedrock:GetInferenceProfile'], resourceArns: generationModelArns,
      });
    }
    return grant;
  }

  private createQueryFunction(props: KnowledgeBaseProps): lambda.IFunction {
    const results = props.numberOfResults ?? 5;
    if (!Number.isInteger(results) || results < 1 || results > 100) {
      throw new Error(`numberOfResults: expected an integer from 1 to 100, got ${results}`);
    }
    if (props.promptTemplate !== undefined && !props.promptTemplate.includes('$search_results$')) {
      throw new Error('promptTemplate: must contain $search_results$ (where Bedrock puts the retrieved chunks)');
    }
    const resolved = props.generationModel === undefined ? defaultGenerationModel(this) : undefined;
    const model = props.generationModel ?? resolved!.model;
    if (!Token.isUnresolved(model) && !/^(arn:aws[a-z-]*:bedrock:|[a-z0-9-]+\.)[A-Za-z0-9._:/-]+$/.test(model)) {
      throw new Error(`generationModel: expected a Bedrock model id, inference profile id or ARN, got '${model}'`);
    }
    const stack = Stack.of(this);
    const modelArn = model.startsWith('arn:') ? model
      : /^(us|eu|apac|global|us-gov|ca|jp|au)\./.test(model)
        ? `arn:${stack.partition}:bedrock:${stack.region}:${stack.account}:inference-profile/${model}`
        : `arn:${stack.partition}:bedrock:${stack.region}::foundation-model/${model}`;
    const fn = createPlatformFunction(this, 'Query', QueryFunction, {
      stage: props.stage,
      service: MetricServices.API,
      encryptionKey: this.key,
      description: `ONS data platform (${props.stage.name}): questions over the knowledge base (RAG) and the time series (tools)`,
      timeout: Duration.seconds(29),
      memorySize: 512,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      environment: {
        [KnowledgeEnv.KB_ID]: this.knowledgeBaseId,
        [KnowledgeEnv.MODEL_ARN]: modelArn,
        [KnowledgeEnv.RESULTS]: String(results),
        ...(props.promptTemplate ? { [KnowledgeEnv.PROMPT_TEMPLATE]: props.promptTemplate } : {}),
        ...this.numericAnswersEnvironment(props),
      },
    });
    this.grantQuery(fn, modelArn, ...(props.generationModelArns ?? resolved?.foundationModelArns ?? []));
    this.inventoryParts.modelArn = modelArn;
    this.grantNumericAnswers(fn, props);
    props.featureFlags?.bind(fn);
    return fn;
  }

  /** The numeric path's environment, validated; none without `timeSeries` or with `numericAnswers.enabled` false. */
  private numericAnswersEnvironment(props: KnowledgeBaseProps): Record<string, string> {
    const options = props.numericAnswers ?? {};
    if (!props.timeSeries || options.enabled === false) return {};
    if (!props.ledger) throw new Error('ledger: required with timeSeries (the catalog tool lists what the ledger says is loaded)');
    const bounded = (name: string, value: number | undefined, [min, max]: readonly [number, number], fallback: number) => {
      if (value === undefined) return fallback;
      if (!Token.isUnresolved(value) && (!Number.isInteger(value) || value < min || value > max)) {
        throw new Error(`numericAnswers.${name}: expected an integer from ${min} to ${max}, got ${value}`);
      }
      return value;
    };
    const deadline = options.deadline?.toMilliseconds();
    const [minDeadline, maxDeadline] = AnswerLimitRanges.DEADLINE_MS;
    if (deadline !== undefined && (deadline < minDeadline || deadline > maxDeadline)) {
      throw new Error(`numericAnswers.deadline: expected ${minDeadline / 1000} to ${maxDeadline / 1000} seconds (API Gateway ends an integration at 29 s), got ${deadline / 1000} s`);
    }
    const guardrail = options.guardrail;
    if (guardrail && !Token.isUnresolved(guardrail.guardrailVersion) && !/^(DRAFT|[1-9][0-9]{0,7})$/.test(guardrail.guardrailVersion)) {
      throw new Error(`numericAnswers.guardrail.guardrailVersion: expected DRAFT or a version number, got '${guardrail.guardrailVersion}'`);
    }
    return {
      [AnswerEnv.TIME_SERIES_FUNCTION]: props.timeSeries.queryFunction.functionArn,
      [AnswerEnv.TIME_SERIES_DATASETS]: JSON.stringify(props.timeSeries.datasetIds),
      [LedgerEnv.TABLE]: props.ledger.tableName,
      [AnswerEnv.MAX_TOOL_CALLS]: String(bounded('maxToolCalls', options.maxToolCalls, AnswerLimitRanges.MAX_TOOL_CALLS, AnswerLimits.MAX_TOOL_CALLS)),
      [AnswerEnv.MAX_POINTS]: String(bounded('maxPoints', options.maxPoints, AnswerLimitRanges.MAX_POINTS, AnswerLimits.MAX_POINTS)),
      [AnswerEnv.DEADLINE_MS]: String(deadline ?? AnswerLimits.DEADLINE_MS),
      ...(guardrail ? { [AnswerEnv.GUARDRAIL_ID]: guardrail.guardrailId, [AnswerEnv.GUARDRAIL_VERSION]: guardrail.guardrailVersion } : {}),
    };
  }

  /** The tools' rights: invoke the time-series function, query the ledger's dataset index, apply the guardrail. */
  private grantNumericAnswers(fn: lambda.Function, props: KnowledgeBaseProps): void {
    if (!props.timeSeries || !props.ledger || props.numericAnswers?.enabled === false) return;
    props.timeSeries.queryFunction.grantInvoke(fn);
    const ledger = props.ledger;
    // The catalog reads the byDataset index only (never the table, never a Scan); DynamoDB decrypts on its behalf.
    const index = `${ledger.table.tableArn}/index/${LedgerSchema.BY_DATASET.name}`;
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['dynamodb:Query'], resources: [index] }));
    if (ledger.table.encryptionKey) grantKeyViaService(fn, ledger.table.encryptionKey, 'dynamodb', 'kms:Decrypt');
    const guardrailArn = this.guardrailArn(props);
    if (guardrailArn) fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['bedrock:ApplyGuardrail'], resources: [guardrailArn] }));
    this.inventoryParts.numeric = {
      timeSeriesFunction: props.timeSeries.queryFunction.functionArn, ledgerIndex: index, ledgerKey: ledger.table.encryptionKey?.keyArn, guardrailArn,
    };
  }

  private guardrailArn(props: KnowledgeBaseProps): string | undefined {
    const id = props.numericAnswers?.guardrail?.guardrailId;
    if (id === undefined) return undefined;
    return id.startsWith('arn:') ? id : Stack.of(this).formatArn({ service: 'bedrock', resource: 'guardrail', resourceName: id });
  }

  /**
   * The calls of the knowledge base's principals, for the permission-closure test (test/permissions/closure.test.ts).
   * Bedrock ingests as the service role: it lists and reads the two prefixes (S3 decrypts with the lake key), embeds
   * with the model, writes and reads the vector index, and encrypts its transient ingestion data with the data
   * source's key (`serverSideEncryptionConfiguration`), a direct KMS call.
   * @internal
   */
  public _permissionInventory(): CallerInventory[] {
    const { lake, indexArn, modelArn, featureFlags, numeric } = this.inventoryParts;
    const key = this.key.keyArn;
    const prefixes = [lake.documentsPrefix, lake.dataCardsPrefix];
    const out: CallerInventory[] = [{
      name: 'knowledge base (Bedrock service role)',
      principal: this.role,
      calls: [
        { action: 'bedrock:InvokeModel', resource: this.embeddingModel.modelArn(this) },
        ...prefixes.map((prefix) => ({ action: 's3:ListBucket', resource: lake.processedBucket.bucketArn, context: { 's3:prefix': prefix } })),
        ...prefixes.map((prefix) => ({ action: 's3:GetObject', resource: lake.processedBucket.arnForObjects(`${prefix}x.md`), kmsKey: key })),
        ...['kms:GenerateDataKey', 'kms:Decrypt'].map((action) => ({ action, resource: key })),
        ...(indexArn ? ['GetIndex', 'PutVectors', 'GetVectors', 'DeleteVectors', 'QueryVectors', 'ListVectors']
          .map((a) => ({ action: `s3vectors:${a}`, resource: indexArn })) : []),
      ],
    }];
    const fn = this.queryFunction as lambda.Function;
    out.push({
      name: 'knowledge-base query',
      principal: fn.role!,
      calls: [
        ...functionRuntimeCalls(fn),
        // RetrieveAndGenerate has no resource type; Bedrock then retrieves and invokes the model as the caller.
        { action: 'bedrock:RetrieveAndGenerate', resource: '*' },
        { action: 'bedrock:Retrieve', resource: this.knowledgeBaseArn },
        ...(modelArn ? [{ action: 'bedrock:InvokeModel', resource: modelArn }] : []),
        // The numeric path: Converse (authorised as InvokeModel above), the time-series function, the catalog, the guardrail.
        ...(numeric ? [
          { action: 'lambda:InvokeFunction', resource: numeric.timeSeriesFunction },
          { action: 'dynamodb:Query', resource: numeric.ledgerIndex, ...(numeric.ledgerKey ? { kmsKey: numeric.ledgerKey } : {}) },
          ...(numeric.guardrailArn ? [{ action: 'bedrock:ApplyGuardrail', resource: numeric.guardrailArn }] : []),
        ] : []),
        ...(featureFlags as { _readCalls?: () => AwsCall[] } | undefined)?._readCalls?.() ?? [],
      ],
    });
    if (this.syncStateMachine) {
      const machine = this.syncStateMachine;
      out.push({
        name: 'knowledge-base sync after deployment',
        principal: machine.role,
        calls: [{ action: 'bedrock:StartIngestionJob', resource: this.knowledgeBaseArn }, ...machineRuntimeCalls(machine, this.key)],
      });
      out.push({ name: 'after-deployment rule (EventBridge target role)', principal: this.node.findChild('AfterDeploymentRole') as iam.Role, calls: startEncrypted(machine, this.key) });
      out.push(eventDeadLetterInventory('EventBridge, to the knowledge-base sync dead-letter queue', this.syncDeadLetterQueue(), this.key, this.node.findChild('AfterDeployment') as events.Rule));
    }
    return out;
  }

  /** Lets `grantee` start and read ingestion jobs of the knowledge base's data sources. */
  public grantIngest(grantee: iam.IGrantable): iam.Grant {
    return grantIngestionJobs(grantee, this.knowledgeBaseArn);
  }

  /**
   * A state machine that starts an ingestion job of each data source (retried while one is running),
   * started by the stack's CREATE_COMPLETE and UPDATE_COMPLETE events.
   */
  private createDeploymentSync(stage: PlatformStage): sfn.StateMachine {
    const flow = new Construct(this, 'SyncWorkflow');
    const branches = new sfn.Parallel(flow, 'SyncBothSources', { resultPath: sfn.JsonPath.DISCARD });
    for (const [id, dataSourceId] of [['SyncDocuments', this.documentsDataSourceId], ['SyncDataCards', this.cardsDataSourceId]] as const) {
      const task = new tasks.CallAwsService(flow, id, {
        service: 'bedrockagent',
        action: 'startIngestionJob',
        parameters: { KnowledgeBaseId: this.knowledgeBaseId, DataSourceId: dataSourceId, Description: 'ONS: sync after deployment' },
        iamResources: [this.knowledgeBaseArn],
        iamAction: 'bedrock:StartIngestionJob',
        resultSelector: { 'jobId.$': '$.IngestionJob.IngestionJobId' },
      });
      retryWhileIngestionJobRuns(task);
      task.addRetry({
        errors: ['BedrockAgent.ThrottlingException', 'BedrockAgent.InternalServerException', 'BedrockAgent.ServiceQuotaExceededException'],
        interval: Duration.seconds(5),
        backoffRate: 2,
        maxAttempts: 6,
        jitterStrategy: sfn.JitterType.FULL,
      });
      branches.branch(task);
    }
    const logGroup = new logs.LogGroup(this, 'SyncLogs', { retention: stage.logRetention, encryptionKey: this.key });
    applyDataRemovalPolicy(logGroup, stage);
    const machine = new sfn.StateMachine(this, 'SyncStateMachine', {
      comment: `ONS data platform (${stage.name}): sync both knowledge-base data sources`,
      definitionBody: sfn.DefinitionBody.fromChainable(branches),
      stateMachineType: sfn.StateMachineType.STANDARD,
      queryLanguage: sfn.QueryLanguage.JSON_PATH,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: stage.tracing === lambda.Tracing.ACTIVE,
      encryptionConfiguration: new sfn.CustomerManagedEncryptionConfiguration(this.key, Duration.minutes(5)),
    });
    allowOwnExecutionData(machine, this.key);
    if (stage.tracing !== lambda.Tracing.ACTIVE) {
      Validations.of(machine).acknowledge({ id: 'AwsSolutions-SF2', reason: `X-Ray tracing follows the stage: off in '${stage.name}'.` });
    }
    const stack = Stack.of(this);
    const rule = new events.Rule(this, 'AfterDeployment', {
      description: 'Synchronises the ONS knowledge base after each successful deployment of its stack',
      eventPattern: {
        source: ['aws.cloudformation'],
        detailType: ['CloudFormation Stack Status Change'],
        resources: [stack.stackId],
        detail: { 'status-details': { status: ['CREATE_COMPLETE', 'UPDATE_COMPLETE'] } },
      },
    });
    const role = new iam.Role(this, 'AfterDeploymentRole', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com'),
      description: 'Starts the ONS knowledge-base sync after a deployment',
    });
    machine.grantStartExecution(role);
    this.key.grant(role, 'kms:GenerateDataKey', 'kms:Decrypt');
    rule.addTarget(new targets.SfnStateMachine(machine, {
      role,
      input: events.RuleTargetInput.fromObject({}),
      retryAttempts: 10,
      maxEventAge: Duration.hours(2),
      deadLetterQueue: this.syncDeadLetterQueue(),
    }));
    return machine;
  }

  /**
   * The dead-letter queue of the after-deployment rule and the sync schedules (KMS-encrypted with the lake key), created
   * on first use; the platform's monitoring alarms on any message in it. A sync start that could not be delivered
   * leaves the knowledge base stale until the next sync. `sender`: a Scheduler role, which sends dead letters itself.
   */
  private syncDeadLetterQueue(sender?: iam.IRole): sqs.Queue {
    let queue = this.node.tryFindChild('SyncDeadLetterQueue') as sqs.Queue | undefined;
    // The after-deployment rule is unnamed (its ARN in the key policy would be a cycle), so this account's rules.
    queue ??= createEventDeadLetterQueue(this, 'SyncDeadLetterQueue', {
      encryptionKey: this.key,
      keyPolicySid: 'AllowEventBridgeKnowledgeSyncDeadLetters',
      senders: 'accountRules',
      deadLetterOf: 'the knowledge-base sync rule and schedules',
    });
    if (sender) allowScheduleDeadLetters(queue, this.key, sender);
    return queue;
  }

  /** One EventBridge Scheduler schedule per data source, calling StartIngestionJob through a universal target. */
  private createScheduledSync(expression: scheduler.ScheduleExpression): iam.IRole {
    const role = new iam.Role(this, 'SyncScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
      description: 'Starts scheduled ingestion jobs of the ONS knowledge base',
    });
    this.grantIngest(role);
    for (const [id, dataSourceId] of [['SyncDocumentsSchedule', this.documentsDataSourceId], ['SyncCardsSchedule', this.cardsDataSourceId]] as const) {
      const schedule = new scheduler.CfnSchedule(this, id, {
        description: 'Synchronises a data source of the ONS knowledge base',
        scheduleExpression: expression.expressionString,
        scheduleExpressionTimezone: expression.timeZone?.timezoneName,
        flexibleTimeWindow: { mode: 'FLEXIBLE', maximumWindowInMinutes: 15 },
        kmsKeyArn: this.key.keyArn,
        target: {
          arn: `arn:${Stack.of(this).partition}:scheduler:::aws-sdk:bedrockagent:startIngestionJob`,
          roleArn: role.roleArn,
          input: Stack.of(this).toJsonString({ KnowledgeBaseId: this.knowledgeBaseId, DataSourceId: dataSourceId }),
          // A job already running (ConflictException) is retried by the scheduler's retry policy.
          retryPolicy: { maximumEventAgeInSeconds: 3600, maximumRetryAttempts: 10 },
          // Scheduler sends what it could not deliver with the schedule's role (granted in syncDeadLetterQueue).
          deadLetterConfig: { arn: this.syncDeadLetterQueue(role).queueArn },
        },
      });
      schedule.node.addDependency(role);
    }
    this.key.grant(role, 'kms:Decrypt');
    return role;
  }
}

/**
 * `-` and 8 hex characters of a hash of `value` (resolved, so tokens hash as the same intrinsics in every synth),
 * or nothing when it equals `defaultValue`: names of resources CloudFormation replaces when `value` changes.
 */
function replacementSuffix(scope: Construct, value: unknown, defaultValue: unknown): string {
  const stack = Stack.of(scope);
  const text = stableJson(stack.resolve(value));
  if (text === stableJson(stack.resolve(defaultValue))) return '';
  return `-${createHash('sha256').update(text).digest('hex').slice(0, 8)}`;
}

/** JSON with object keys sorted, so equal values give equal text. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
