import { Annotations, Duration, Fn, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as athena from 'aws-cdk-lib/aws-athena';
import * as glue from 'aws-cdk-lib/aws-glue';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DataLakeProps, DatasetTableProps } from './data-lake-props';
import { acknowledgeObjectWildcards } from './nag';
import { configureReplication } from './replication';
import { checkName, currentViewName, currentViewSql, TABLE_PARTITION_KEYS, TableSchema, tableSchemas } from './tables';
import { allowLogsToUseKey, applyPlatformTags, conditionLogDeliveryOnKey } from '../core/defaults';
import { DataLakeLifecycle, resolveLifecycle } from '../core/lifecycle';
import { applyDataRemovalPolicy, dataRemovalPolicy } from '../core/removal';
import { PlatformStage } from '../core/stage';
import { DEFAULT_PREFIXES, partitionPath } from '../ons/layout';

const GIB = 1024 ** 3;
/** The smallest per-query cutoff Athena accepts (WorkGroupConfiguration.BytesScannedCutoffPerQuery). */
const MIN_BYTES_SCANNED_CUTOFF = 10_000_000;
/** Presto (Athena) types of the Glue column types, for view definitions. */
const PRESTO_TYPES = { string: 'varchar', double: 'double', timestamp: 'timestamp(3)', int: 'integer' } as const;

/** ONS history starts in 2000: the first year the tables' partition projection covers. */
const FIRST_PROJECTED_YEAR = 2000;
const ATHENA_ENGINE_VERSION = 'Athena engine version 3';

/**
 * The data lake as the other parts of the platform see it: its buckets, its key and the prefixes of its layout.
 * Implemented by `DataLake`; the time-series stores, the knowledge base and the ingestion pipeline take this.
 */
export interface IDataLake {
  /** The customer-managed key that encrypts the lake. */
  readonly encryptionKey: kms.IKey;
  /** Where ONS files are dropped, as published. */
  readonly rawBucket: s3.IBucket;
  /** Processed Parquet, data cards and copied documents. */
  readonly processedBucket: s3.IBucket;
  /** Rejected rows and quarantined objects. */
  readonly failedBucket: s3.IBucket;
  /** Server access logs of the other buckets (and of the engines that log to S3). */
  readonly accessLogsBucket: s3.IBucket;
  /** Prefix of the processed Parquet in the processed bucket. */
  readonly processedDataPrefix: string;
  /** Prefix of the copied documents in the processed bucket. */
  readonly documentsPrefix: string;
  /** Prefix of the data cards in the processed bucket. */
  readonly dataCardsPrefix: string;
  /** Prefix of the rejected rows in the failed bucket. */
  readonly rejectedRowsPrefix: string;
  /** Prefix of the quarantined objects in the failed bucket. */
  readonly quarantinePrefix: string;
  /** Prefix in the processed bucket where the processor stages a run's outputs until all are written. */
  readonly stagingPrefix: string;
  /** Prefix in the processed bucket of operational reports (reprocessing manifests and reports). */
  readonly reportsPrefix: string;
  /** Lets `grantee` upload files to the raw bucket (which starts their ingestion). */
  grantUpload(grantee: iam.IGrantable): iam.Grant;
}

/**
 * A data lake that can be queried with Amazon Athena: its Glue database of per-dataset tables and current-rows
 * views, and the workgroup queries run in. Implemented by `DataLake`; the lake time-series engine (`LakeStore`) takes this.
 */
export interface IQueryableDataLake extends IDataLake {
  /** Name of the Glue database of the lake's tables and views. */
  readonly databaseName: string;
  /** ARN of the Glue database. */
  readonly databaseArn: string;
  /** Name of the Athena workgroup queries over the lake run in. */
  readonly workGroupName: string;
  /** ARN of the Athena workgroup. */
  readonly workGroupArn: string;
  /** Most bytes one query in the workgroup may scan (the workgroup's BytesScannedCutoffPerQuery). */
  readonly bytesScannedCutoffPerQuery: number;
  /** Ids of the datasets that have a table. */
  readonly datasetIds: string[];
  /** The datasets outside the catalog that have a table, as given (`DataLakeProps.additionalDatasets`). */
  readonly additionalDatasets: DatasetTableProps[];
  /** Name of the view of a dataset's current rows. Throws if the dataset has no table. */
  currentViewName(datasetId: string): string;
  /** Lets `grantee` run Athena queries over the lake's tables in the lake's workgroup. */
  grantQuery(grantee: iam.IGrantable): iam.Grant;
}

/**
 * The platform's S3 data lake: raw, processed and failed buckets, plus a bucket for their server access logs.
 *
 * Every bucket is encrypted with one customer-managed KMS key (rotated yearly, S3 Bucket Keys on),
 * versioned, blocks all public access, disables ACLs, and denies requests without TLS 1.2 or later.
 * The raw bucket sends its events to Amazon EventBridge (natively, with no custom resource), which is
 * where ingestion starts. Lifecycle rules come from the stage and can be overridden one by one.
 *
 * Buckets, key and logs are retained when the stack is deleted, unless the context flag
 * `ons-data-platform:removeDataOnDestroy` is `true` and the stage allows data removal (not PROD).
 *
 * For analytics, the lake has an AWS Glue database with one table per catalog dataset over the
 * processed Parquet (`<processedDataPrefix>dataset=<id>/year=YYYY/month=MM/`), partitioned by `year`
 * and `month` with partition projection, so new months need no crawler and no `MSCK REPAIR`; and an
 * Amazon Athena workgroup that enforces its settings: results encrypted with the lake key, a
 * bytes-scanned cutoff per query, CloudWatch metrics. Query results go to a prefix of the processed
 * bucket (`queryResultsPrefix`) rather than a bucket of their own: they get the same key, TLS-only
 * policy, access logging and retention guard as the data, with a lifecycle rule that expires them, and
 * the replication rules, being per prefix, leave them out.
 *
 * The database and the workgroup follow the lake's removal policy (retained, they keep views and
 * saved queries users created; a new stack then needs other names or their deletion). Tables are
 * definitions generated from the catalog and are always deleted with the stack; the data stays.
 *
 * @example
 * const lake = new DataLake(stack, 'Lake', { stage: PlatformStage.PROD });
 * lake.grantUpload(uploaderRole);
 * lake.grantQuery(analystRole);
 */
export class DataLake extends Construct implements IQueryableDataLake {
  /** The customer-managed key that encrypts the lake. */
  public readonly encryptionKey: kms.IKey;
  /** Where ONS files are dropped, as published. Sends its events to EventBridge. */
  public readonly rawBucket: s3.IBucket;
  /** Processed Parquet, data cards and knowledge-base documents. */
  public readonly processedBucket: s3.IBucket;
  /** Quarantined files and rejected rows, with the reasons. */
  public readonly failedBucket: s3.IBucket;
  /** Server access logs of the other three buckets. */
  public readonly accessLogsBucket: s3.IBucket;
  /** The lifecycle in force (the stage's, with the props' overrides). */
  public readonly lifecycle: DataLakeLifecycle;
  /** The removal policy applied to the buckets and the key. */
  public readonly removalPolicy: RemovalPolicy;
  /** Prefix of processed Parquet files in the processed bucket. */
  public readonly processedDataPrefix: string;
  /** Prefix of knowledge-base documents in the processed bucket. */
  public readonly documentsPrefix: string;
  /** Prefix of data cards in the processed bucket. */
  public readonly dataCardsPrefix: string;
  /** Prefix of rejected rows in the failed bucket. */
  public readonly rejectedRowsPrefix: string;
  /** Prefix of quarantined files in the failed bucket. */
  public readonly quarantinePrefix: string;
  /** Prefix of Athena query results in the processed bucket. */
  public readonly queryResultsPrefix: string;
  /** Prefix in the processed bucket where the processor stages a run's outputs until all are written. */
  public readonly stagingPrefix: string;
  /** Prefix in the processed bucket of operational reports (reprocessing manifests and reports). */
  public readonly reportsPrefix: string;
  /** The Glue database of the lake's tables. */
  public readonly database: glue.CfnDatabase;
  /** Name of the Glue database. */
  public readonly databaseName: string;
  /** ARN of the Glue database. */
  public readonly databaseArn: string;
  /** One table per dataset (the catalog's, then `additionalDatasets`), named after the dataset id. */
  public readonly tables: glue.CfnTable[];
  /**
   * One view per dataset, `<dataset>_current`, in the order of `tables`: the table's rows, one per series and
   * instant, that of the newest source version where two sources overlap. Query these.
   */
  public readonly currentViews: glue.CfnTable[];
  /** Ids of the datasets that have a table, in the order of `tables`. */
  public readonly datasetIds: string[];
  /** The datasets outside the catalog that have a table, as given (`additionalDatasets`). */
  public readonly additionalDatasets: DatasetTableProps[];
  /** The Athena workgroup for queries over the lake. */
  public readonly workGroup: athena.CfnWorkGroup;
  /** Name of the Athena workgroup. */
  public readonly workGroupName: string;
  /** ARN of the Athena workgroup. */
  public readonly workGroupArn: string;
  /** Most bytes one query in the workgroup may scan. */
  public readonly bytesScannedCutoffPerQuery: number;
  /** The role S3 replicates the processed bucket with; undefined without `replication`. */
  public readonly replicationRole?: iam.IRole;

  private readonly catalogArn: string;
  private readonly encryptsDataCatalog: boolean;

  constructor(scope: Construct, id: string, props: DataLakeProps) {
    super(scope, id);
    const stage = props.stage;
    const lifecycle = resolveLifecycle(stage.lifecycle, props.lifecycle, 'DataLakeProps.lifecycle');
    this.lifecycle = lifecycle;

    this.processedDataPrefix = validatePrefix('processedDataPrefix', props.processedDataPrefix ?? DEFAULT_PREFIXES.processedData);
    this.documentsPrefix = validatePrefix('documentsPrefix', props.documentsPrefix ?? DEFAULT_PREFIXES.documents);
    this.dataCardsPrefix = validatePrefix('dataCardsPrefix', props.dataCardsPrefix ?? DEFAULT_PREFIXES.dataCards);
    this.rejectedRowsPrefix = validatePrefix('rejectedRowsPrefix', props.rejectedRowsPrefix ?? DEFAULT_PREFIXES.rejectedRows);
    this.quarantinePrefix = validatePrefix('quarantinePrefix', props.quarantinePrefix ?? DEFAULT_PREFIXES.quarantine);
    this.queryResultsPrefix = validatePrefix('queryResultsPrefix', props.queryResultsPrefix ?? DEFAULT_PREFIXES.queryResults);
    this.stagingPrefix = validatePrefix('stagingPrefix', props.stagingPrefix ?? DEFAULT_PREFIXES.staging);
    this.reportsPrefix = validatePrefix('reportsPrefix', props.reportsPrefix ?? DEFAULT_PREFIXES.reports);
    assertDisjoint('processed bucket', {
      processedDataPrefix: this.processedDataPrefix,
      documentsPrefix: this.documentsPrefix,
      dataCardsPrefix: this.dataCardsPrefix,
      queryResultsPrefix: this.queryResultsPrefix,
      stagingPrefix: this.stagingPrefix,
      reportsPrefix: this.reportsPrefix,
    });
    assertDisjoint('failed bucket', { rejectedRowsPrefix: this.rejectedRowsPrefix, quarantinePrefix: this.quarantinePrefix });
    const queryResultsExpirationDays = props.queryResultsExpirationDays ?? 30;
    if (!Number.isInteger(queryResultsExpirationDays) || queryResultsExpirationDays < 1) {
      throw new Error(`DataLakeProps.queryResultsExpirationDays: expected a whole number of days of at least 1, got ${queryResultsExpirationDays}`);
    }
    const stagingExpirationDays = props.stagingExpirationDays ?? 3;
    if (!Number.isInteger(stagingExpirationDays) || stagingExpirationDays < 1) {
      throw new Error(`DataLakeProps.stagingExpirationDays: expected a whole number of days of at least 1, got ${stagingExpirationDays}`);
    }
    const databaseName = props.databaseName ?? `ons_data_platform_${stage.name.replace(/-/g, '_')}`;
    this.databaseName = Token.isUnresolved(databaseName) ? databaseName : checkName('DataLakeProps.databaseName', databaseName);
    this.workGroupName = validateWorkGroupName(props.workGroupName ?? `ons-data-platform-${stage.name}`);
    this.bytesScannedCutoffPerQuery = validateCutoff(props.bytesScannedCutoffPerQuery ?? (stage === PlatformStage.DEV ? 10 * GIB : 100 * GIB));
    const projectionEndYear = props.projectionEndYear ?? 2050;
    if (!Number.isInteger(projectionEndYear) || projectionEndYear < FIRST_PROJECTED_YEAR || projectionEndYear > 9999) {
      throw new Error(`DataLakeProps.projectionEndYear: expected a year from ${FIRST_PROJECTED_YEAR} to 9999, got ${projectionEndYear}`);
    }
    const schemas = tableSchemas(props.additionalDatasets);
    this.encryptsDataCatalog = props.encryptDataCatalog ?? false;

    applyPlatformTags(this, stage, props.tags);
    this.removalPolicy = dataRemovalPolicy(this, stage);
    const destroy = this.removalPolicy === RemovalPolicy.DESTROY;

    if (props.encryptionKey) {
      this.encryptionKey = props.encryptionKey;
    } else {
      const key = new kms.Key(this, 'Key', {
        description: `ONS data platform (${stage.name}): data lake, logs and function environments`,
        enableKeyRotation: true,
      });
      if (this.encryptsDataCatalog) {
        // The catalog stays encrypted with this key after the stack is gone: losing the key would lose the catalog.
        key.applyRemovalPolicy(RemovalPolicy.RETAIN);
        if (destroy) {
          Annotations.of(this).addWarningV2('ons-data-platform:catalogKeyRetained',
            'The lake key is retained although data removal was requested: encryptDataCatalog encrypts the account\'s Glue Data Catalog with it.');
        }
      } else {
        applyDataRemovalPolicy(key, stage);
      }
      this.encryptionKey = key;
    }
    allowLogsToUseKey(this.encryptionKey);
    if (this.encryptionKey instanceof kms.Key) conditionLogDeliveryOnKey(this.encryptionKey);

    const noncurrentAndUploads: s3.LifecycleRule = {
      id: 'noncurrent-versions-and-incomplete-uploads',
      noncurrentVersionExpiration: Duration.days(lifecycle.noncurrentVersionExpirationDays),
      abortIncompleteMultipartUploadAfter: Duration.days(lifecycle.abortIncompleteMultipartUploadDays),
    };
    const bucketProps: s3.BucketProps = {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.encryptionKey,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      removalPolicy: this.removalPolicy,
      autoDeleteObjects: destroy,
    };

    const accessLogs = new s3.Bucket(this, 'AccessLogsBucket', {
      ...bucketProps,
      lifecycleRules: [
        noncurrentAndUploads,
        { id: 'expire-access-logs', expiration: Duration.days(lifecycle.accessLogsExpirationDays) },
      ],
    });
    this.accessLogsBucket = accessLogs;

    const raw = this.dataBucket('RawBucket', 'raw/', bucketProps, [
      {
        ...noncurrentAndUploads,
        transitions: [
          { storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(lifecycle.rawInfrequentAccessAfterDays) },
          { storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(lifecycle.rawGlacierInstantRetrievalAfterDays) },
          { storageClass: s3.StorageClass.DEEP_ARCHIVE, transitionAfter: Duration.days(lifecycle.rawDeepArchiveAfterDays) },
        ],
      },
    ]);
    // Native S3 → EventBridge delivery: no notification custom resource (and its Lambda) needed.
    (raw.node.defaultChild as s3.CfnBucket).notificationConfiguration = { eventBridgeConfiguration: { eventBridgeEnabled: true } };
    this.rawBucket = raw;

    const processed = this.dataBucket('ProcessedBucket', 'processed/', bucketProps, [
      noncurrentAndUploads,
      {
        id: 'processed-data-to-infrequent-access',
        prefix: this.processedDataPrefix,
        transitions: [{
          storageClass: s3.StorageClass.INFREQUENT_ACCESS,
          transitionAfter: Duration.days(lifecycle.processedInfrequentAccessAfterDays),
        }],
      },
      { id: 'expire-query-results', prefix: this.queryResultsPrefix, expiration: Duration.days(queryResultsExpirationDays) },
      // What a killed run staged and no later run of its source removed (see IngestionPipeline).
      { id: 'expire-staging', prefix: this.stagingPrefix, expiration: Duration.days(stagingExpirationDays) },
    ]);
    this.processedBucket = processed;
    if (props.replication) {
      this.replicationRole = configureReplication(this, {
        bucket: processed,
        key: this.encryptionKey,
        prefixes: [this.processedDataPrefix, this.dataCardsPrefix, this.documentsPrefix],
      }, props.replication);
    }

    this.failedBucket = this.dataBucket('FailedBucket', 'failed/', bucketProps, [
      noncurrentAndUploads,
      { id: 'expire-failed', expiration: Duration.days(lifecycle.failedExpirationDays) },
    ]);

    this.allowAccessLogDelivery(accessLogs, [raw, this.processedBucket, this.failedBucket]);

    const stack = Stack.of(this);
    this.catalogArn = stack.formatArn({ service: 'glue', resource: 'catalog' });
    if (this.encryptsDataCatalog) this.encryptDataCatalog();
    this.database = new glue.CfnDatabase(this, 'Database', {
      catalogId: stack.account,
      databaseInput: {
        name: this.databaseName,
        // No LocationUri: engines that write managed tables there would write among the processed data.
        description: `ONS data platform (${stage.name}): one table per ONS dataset over the processed Parquet`,
      },
    });
    this.database.applyRemovalPolicy(this.removalPolicy);
    this.databaseArn = stack.formatArn({ service: 'glue', resource: 'database', resourceName: this.databaseName });
    this.datasetIds = schemas.map((t) => t.datasetId);
    this.additionalDatasets = [...(props.additionalDatasets ?? [])];
    this.tables = schemas.map((t) => this.table(t, projectionEndYear));
    const clash = this.datasetIds.find((d) => this.datasetIds.includes(currentViewName(d)));
    if (clash) throw new Error(`DataLakeProps.additionalDatasets: dataset '${currentViewName(clash)}' takes the name of the current-rows view of '${clash}'`);
    this.currentViews = schemas.map((t) => this.currentView(t));

    this.workGroup = new athena.CfnWorkGroup(this, 'WorkGroup', {
      name: this.workGroupName,
      description: `ONS data platform (${stage.name}): queries over the data lake`,
      state: 'ENABLED',
      // Deleting a workgroup that is not empty needs this; a retained one keeps its saved queries.
      recursiveDeleteOption: destroy,
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: this.bytesScannedCutoffPerQuery,
        engineVersion: { selectedEngineVersion: ATHENA_ENGINE_VERSION },
        resultConfiguration: {
          outputLocation: `s3://${this.processedBucket.bucketName}/${this.queryResultsPrefix}`,
          expectedBucketOwner: stack.account,
          encryptionConfiguration: { encryptionOption: 'SSE_KMS', kmsKey: this.encryptionKey.keyArn },
        },
      },
    });
    this.workGroup.applyRemovalPolicy(this.removalPolicy);
    this.workGroupArn = stack.formatArn({ service: 'athena', resource: 'workgroup', resourceName: this.workGroupName });
  }

  /**
   * Name of the table of a dataset (its id), for SQL such as `SELECT ... FROM "<databaseName>"."<table>"`.
   * Throws if the dataset has no table.
   */
  public tableName(datasetId: string): string {
    return this.cfnTable(datasetId).ref;
  }

  /**
   * Name of the view of a dataset's current rows (`<dataset>_current`: one row per series and instant, the newest
   * source version's). Throws if the dataset has no table.
   */
  public currentViewName(datasetId: string): string {
    this.cfnTable(datasetId);
    return currentViewName(datasetId);
  }

  /**
   * ARN of the table of a dataset. Throws if the dataset has no table.
   */
  public tableArn(datasetId: string): string {
    this.cfnTable(datasetId);
    return Stack.of(this).formatArn({ service: 'glue', resource: 'table', resourceName: `${this.databaseName}/${datasetId}` });
  }

  /**
   * ARN of the view of a dataset's current rows. Throws if the dataset has no table.
   */
  public currentViewArn(datasetId: string): string {
    return Stack.of(this).formatArn({ service: 'glue', resource: 'table', resourceName: `${this.databaseName}/${this.currentViewName(datasetId)}` });
  }

  /**
   * Lets `grantee` run Athena queries over the lake's tables in the lake's workgroup: start, follow, read
   * and stop queries in the workgroup (and read its settings); read the database and its tables in the
   * Glue Data Catalog; read processed Parquet (only under `processedDataPrefix`); read and write query
   * results (only under `queryResultsPrefix`); use the lake key through S3 (and Glue, when the catalog
   * is encrypted). Every query result in the workgroup is readable by every grantee.
   *
   * The object ARNs under those two prefixes (`<bucket>/<prefix>*`) are the narrowest resources for
   * reading a partitioned table; when the grantee is a construct of this app, exactly those two
   * cdk-nag AwsSolutions-IAM5 findings are acknowledged on it, with that reason.
   */
  public grantQuery(grantee: iam.IGrantable): iam.Grant {
    const stack = Stack.of(this);
    const bucket = this.processedBucket;
    const athenaGrant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['athena:StartQueryExecution', 'athena:GetQueryExecution', 'athena:GetQueryResults', 'athena:StopQueryExecution', 'athena:GetWorkGroup'],
      resourceArns: [this.workGroupArn],
    });
    const glueGrant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['glue:GetDatabase', 'glue:GetTable', 'glue:GetTables', 'glue:GetPartitions'],
      // GetTables returns only the tables listed here.
      resourceArns: [this.catalogArn, this.databaseArn, ...this.datasetIds.flatMap((id) => [this.tableArn(id), this.currentViewArn(id)])],
    });
    const listGrant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:ListBucket'],
      resourceArns: [bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${this.processedDataPrefix}*`, `${this.queryResultsPrefix}*`] } },
    });
    // GetBucketLocation carries no s3:prefix: it needs its own statement without the condition.
    const locationGrant = iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetBucketLocation'], resourceArns: [bucket.bucketArn] });
    const dataGrant = iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObject'], resourceArns: [bucket.arnForObjects(`${this.processedDataPrefix}*`)] });
    const resultsGrant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
      resourceArns: [bucket.arnForObjects(`${this.queryResultsPrefix}*`)],
    });
    const viaServices = [`s3.${stack.region}.amazonaws.com`, ...(this.encryptsDataCatalog ? [`glue.${stack.region}.amazonaws.com`] : [])];
    const keyGrant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resourceArns: [this.encryptionKey.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': viaServices.length === 1 ? viaServices[0] : viaServices } },
    });
    if (Construct.isConstruct(grantee.grantPrincipal)) {
      acknowledgeObjectWildcards(grantee.grantPrincipal, bucket, [this.processedDataPrefix, this.queryResultsPrefix],
        'DataLake.grantQuery: Athena reads every object of a table\'s partitions and writes results under their own '
        + 'prefix; object ARNs <processed bucket>/<prefix>* for those two prefixes are the narrowest resources for that.');
    }
    return athenaGrant.combine(glueGrant).combine(listGrant).combine(locationGrant).combine(dataGrant).combine(resultsGrant).combine(keyGrant);
  }

  /**
   * Lets `grantee` upload files to the raw bucket (which starts their ingestion).
   */
  public grantUpload(grantee: iam.IGrantable): iam.Grant {
    return this.rawBucket.grantPut(grantee);
  }

  /**
   * Lets `grantee` read the raw files.
   */
  public grantReadRaw(grantee: iam.IGrantable): iam.Grant {
    return this.rawBucket.grantRead(grantee);
  }

  /**
   * Lets `grantee` read processed Parquet files (only under `processedDataPrefix`), e.g. an analytics engine.
   */
  public grantReadProcessedData(grantee: iam.IGrantable): iam.Grant {
    return this.processedBucket.grantRead(grantee, `${this.processedDataPrefix}*`);
  }

  private cfnTable(datasetId: string): glue.CfnTable {
    const i = this.datasetIds.indexOf(datasetId);
    if (i < 0) throw new Error(`DataLake has no table for dataset '${datasetId}'; tables: ${this.datasetIds.join(', ')}`);
    return this.tables[i];
  }

  private table(schema: TableSchema, projectionEndYear: number): glue.CfnTable {
    const stack = Stack.of(this);
    // The lake layout (ons/layout.ts) the Parquet writer follows: <prefix>dataset=<id>/year=YYYY/month=MM/<source>-<hash>.parquet.
    const under = (path: string) => `s3://${this.processedBucket.bucketName}/${this.processedDataPrefix}${path}`;
    const location = under(partitionPath(schema.datasetId));
    const table = new glue.CfnTable(this, `Table-${schema.datasetId}`, {
      catalogId: stack.account,
      databaseName: this.database.ref,
      tableInput: {
        name: schema.datasetId,
        description: schema.description,
        tableType: 'EXTERNAL_TABLE',
        parameters: {
          'EXTERNAL': 'TRUE',
          'classification': 'parquet',
          'projection.enabled': 'true',
          'projection.year.type': 'integer',
          'projection.year.range': `${FIRST_PROJECTED_YEAR},${projectionEndYear}`,
          'projection.month.type': 'integer',
          'projection.month.range': '1,12',
          // month=01..12 in the path; the column is an int (WHERE month = 3).
          'projection.month.digits': '2',
          'storage.location.template': under(partitionPath(schema.datasetId, '${year}', '${month}')),
        },
        partitionKeys: [
          { name: 'year', type: 'int', comment: 'Year of local_time (Brasília), the year=YYYY path segment.' },
          { name: 'month', type: 'int', comment: 'Month of local_time (Brasília), 1-12; the month=MM path segment.' },
        ],
        storageDescriptor: {
          location,
          columns: schema.columns.map((c) => ({ name: c.name, type: c.type, comment: c.comment })),
          inputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
          outputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat',
          serdeInfo: { serializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' },
          compressed: false,
          storedAsSubDirectories: false,
        },
      },
    });
    return table;
  }

  /**
   * The `<dataset>_current` view, as Athena stores a view it creates: a VIRTUAL_VIEW whose original text is the
   * base64 Presto view definition (SQL from currentViewSql, the database as default schema) and whose expanded
   * text is the Presto marker.
   */
  private currentView(schema: TableSchema): glue.CfnTable {
    const stack = Stack.of(this);
    const columns = [...schema.columns, ...TABLE_PARTITION_KEYS.map((name) => ({ name, type: 'int' as const, comment: `The table's ${name} partition.` }))];
    const definition = {
      originalSql: currentViewSql(schema),
      catalog: 'awsdatacatalog',
      schema: this.databaseName,
      columns: columns.map((c) => ({ name: c.name, type: PRESTO_TYPES[c.type] })),
    };
    // Glue does not check a view's SQL: the view needs no dependency on its table.
    return new glue.CfnTable(this, `View-${schema.datasetId}`, {
      catalogId: stack.account,
      databaseName: this.database.ref,
      tableInput: {
        name: currentViewName(schema.datasetId),
        description: `Current rows of ${schema.datasetId}: one row per series and instant; where sources overlap, the newest source version's `
          + '(latest source_time, then greatest source_key).',
        tableType: 'VIRTUAL_VIEW',
        parameters: { presto_view: 'true', comment: 'Presto View' },
        viewOriginalText: Fn.join('', ['/* Presto View: ', Fn.base64(stack.toJsonString(definition)), ' */']),
        viewExpandedText: '/* Presto View */',
        storageDescriptor: { columns: columns.map((c) => ({ name: c.name, type: c.type, comment: c.comment })), serdeInfo: {} },
      },
    });
  }

  private encryptDataCatalog(): void {
    const settings = new glue.CfnDataCatalogEncryptionSettings(this, 'DataCatalogEncryption', {
      catalogId: Stack.of(this).account,
      dataCatalogEncryptionSettings: {
        encryptionAtRest: { catalogEncryptionMode: 'SSE-KMS', sseAwsKmsKeyId: this.encryptionKey.keyArn },
        // The API sets both halves together: rather than turning password encryption off, turn it on with the same key.
        connectionPasswordEncryption: { returnConnectionPasswordEncrypted: true, kmsKeyId: this.encryptionKey.keyArn },
      },
    });
    // Account-wide settings: removing the stack must not change them for everyone else.
    settings.applyRemovalPolicy(RemovalPolicy.RETAIN);
  }

  private dataBucket(id: string, logPrefix: string, bucketProps: s3.BucketProps, lifecycleRules: s3.LifecycleRule[]): s3.Bucket {
    const bucket = new s3.Bucket(this, id, { ...bucketProps, lifecycleRules });
    // Logging set on the L1 with an explicit bucket policy below, so it does not depend on the
    // consumer's feature flags (without one, CDK would switch the log bucket to ACLs).
    (bucket.node.defaultChild as s3.CfnBucket).loggingConfiguration = {
      destinationBucketName: this.accessLogsBucket.bucketName,
      logFilePrefix: logPrefix,
      targetObjectKeyFormat: { partitionedPrefix: { partitionDateSource: 'EventTime' } },
    };
    return bucket;
  }

  private allowAccessLogDelivery(accessLogs: s3.Bucket, sources: s3.IBucket[]): void {
    const stack = Stack.of(this);
    const logging = new iam.ServicePrincipal('logging.s3.amazonaws.com');
    accessLogs.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AllowServerAccessLogDelivery',
      principals: [logging],
      actions: ['s3:PutObject'],
      resources: [accessLogs.arnForObjects('*')],
      conditions: {
        ArnLike: { 'aws:SourceArn': sources.map((b) => b.bucketArn) },
        StringEquals: { 'aws:SourceAccount': stack.account },
      },
    }));
    // S3 server access logging writes SSE-KMS objects with the lake key.
    this.encryptionKey.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AllowServerAccessLogDeliveryEncryption',
      principals: [logging],
      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
      resources: ['*'], // in a key policy, '*' means this key
      conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
    }));
  }
}

function validateWorkGroupName(value: string): string {
  if (!Token.isUnresolved(value) && !/^[a-zA-Z0-9._-]{1,128}$/.test(value)) {
    throw new Error(`DataLakeProps.workGroupName: expected 1-128 letters, digits, '.', '_' or '-', got '${value}'`);
  }
  return value;
}

function validateCutoff(value: number): number {
  if (!Number.isInteger(value) || value < MIN_BYTES_SCANNED_CUTOFF) {
    throw new Error(`DataLakeProps.bytesScannedCutoffPerQuery: expected a whole number of bytes of at least ${MIN_BYTES_SCANNED_CUTOFF} (10 MB, the Athena minimum), got ${value}`);
  }
  return value;
}

const PREFIX_PATTERN = /^[A-Za-z0-9!_.*'()=-]+(\/[A-Za-z0-9!_.*'()=-]+)*\/$/;

function validatePrefix(prop: string, value: string): string {
  if (value.length === 0) throw new Error(`DataLakeProps.${prop}: must not be empty (the lake keeps each kind of object under its own prefix)`);
  if (value.length > 512 || !PREFIX_PATTERN.test(value)) {
    throw new Error(`DataLakeProps.${prop}: expected path segments of letters, digits and !_.*'()=- ending with '/', with no leading '/', got '${value}'`);
  }
  return value;
}

function assertDisjoint(where: string, prefixes: Record<string, string>): void {
  const entries = Object.entries(prefixes);
  for (const [a, pa] of entries) {
    for (const [b, pb] of entries) {
      if (a !== b && pb.startsWith(pa)) {
        throw new Error(`DataLakeProps.${b} ('${pb}') must not be inside ${a} ('${pa}'): both live in the ${where} and need separate prefixes`);
      }
    }
  }
}
