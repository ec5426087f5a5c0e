import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { LakeQueryEnv, ServedDataset, TimeSeriesEngines, TimeSeriesEnv } from './contract';
import { QueryFunction } from './lake/query-function';
import { ITimeSeriesStore } from './store';
import { applyPlatformTags, createPlatformFunction } from '../core/defaults';
import { IFeatureFlags } from '../core/flags';
import { IHealthProbe } from '../core/health-probe';
import { AlarmSeverity, DashboardSection, IMonitor, IMonitorable } from '../core/monitorable';
import { acknowledgeScopedWildcards } from '../core/nag';
import { AwsCall, CallerInventory, functionRuntimeCalls } from '../core/permissions';
import { PlatformStage } from '../core/stage';
import { IQueryableDataLake } from '../lake/data-lake';
import { DatasetTableProps } from '../lake/data-lake-props';
import { IIngestionLedger } from '../ledger/ingestion-ledger';
import { MetricServices } from '../runtime/contract';

/**
 * API Gateway's REST integration timeout is 29 s by default (API Gateway quotas): the handler answers or stops its
 * query by the deadline (at most 25 s, `LakeQueryEnv.DEADLINE_MS`) and the function outlives it by the time
 * GetQueryResults and the response need, still under 29 s.
 */
const MAX_QUERY_DEADLINE_SECONDS = 25;
const QUERY_FUNCTION_TIMEOUT = Duration.seconds(28);
/** ResultReuseByAgeConfiguration.MaxAgeInMinutes: 0 (off) to 10080 (7 days) (Athena API reference). */
const MAX_RESULT_REUSE_MINUTES = 10_080;
/** GetQueryResults returns at most 1000 rows a call, the header row included on the first page: 999 points a page. */
const MAX_POINTS_PER_PAGE = 999;

/**
 * Options of a `LakeStore` (what `TimeSeriesEngine.lake()` passes through).
 */
export interface LakeStoreOptions {
  /**
   * How long a request waits for its Athena query (1 to 25 seconds). A query not done by then is stopped
   * (StopQueryExecution) and the request answered 504 with the query id; API Gateway gives up at 29 s.
   *
   * @default Duration.seconds(25)
   */
  readonly queryDeadline?: Duration;

  /**
   * How old an earlier identical query's results may be for Athena to answer from them instead of scanning again
   * (query result reuse; 0 turns it off, at most 7 days). New files show up in answers after at most this long
   * for a request repeated within it.
   *
   * @default Duration.minutes(60)
   */
  readonly resultReuse?: Duration;

  /**
   * Points one response holds at most (1 to 999, the GetQueryResults page); the rest come with `nextToken`.
   *
   * @default 999
   */
  readonly maxPointsPerPage?: number;
}

/**
 * Properties of `LakeStore`.
 */
export interface LakeStoreProps extends LakeStoreOptions {
  /** The stage: function defaults, log retention, tracing. */
  readonly stage: PlatformStage;
  /** The lake: its Glue database and views are the store, its workgroup runs the queries, its key encrypts the function. */
  readonly dataLake: IQueryableDataLake;
  /** The ingestion ledger: the processor records a published file `loaded` in it (the store has no loader). */
  readonly ledger: IIngestionLedger;
  /**
   * Concurrent executions reserved for the query function.
   *
   * @default - no reservation
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * The feature flags the query function reads (`FeatureFlags`, or your own `IFeatureFlags`); bound when the function is made.
   *
   * @default - no flags: the handler treats every flag as on
   */
  readonly featureFlags?: IFeatureFlags;
}

/**
 * The time-series store that is the data lake itself: `GET /timeseries/{dataset}` runs Trino SQL with Amazon Athena,
 * in the lake's workgroup, over each dataset's `<dataset>_current` Glue view of the processed Parquet. It has no
 * table, no loader and no idle cost (Athena bills the bytes each query scans, 10 MB at least), and works in every
 * region that has Athena and in any account.
 *
 * A file is queryable once the ingestion processor has published its outputs, so the pipeline has no load step for
 * this store and the processor records the file `loaded` itself. Queries read partitions by dataset, year and month,
 * stay under the workgroup's bytes-scanned cutoff (a request over it answers 400), use Athena result reuse, and are
 * stopped and answered 504 at `queryDeadline`.
 *
 * @example
 * const store = new LakeStore(stack, 'TimeSeries', { stage: PlatformStage.PROD, dataLake: lake, ledger });
 */
export class LakeStore extends Construct implements ITimeSeriesStore, IMonitorable {
  public readonly engine = TimeSeriesEngines.LAKE;
  /** Dataset ids with a current-rows view: the lake's datasets. */
  public readonly datasetIds: string[];
  public readonly ledger: IIngestionLedger;
  /** None: the store reads the processed Parquet itself, so the pipeline has no load step (the processor records `loaded`). */
  public readonly loaderFunction?: lambda.IFunction;
  /** The function that answers time-series queries (API Gateway proxy format). */
  public readonly queryFunction: lambda.IFunction;
  /** The lake whose views the store reads. */
  public readonly dataLake: IQueryableDataLake;
  /** How long a request waits for its query before it is stopped and answered 504. */
  public readonly queryDeadline: Duration;
  /** How old reused query results may be. */
  public readonly resultReuse: Duration;
  /** The flags the query function reads (for the permission inventory). */
  private readonly featureFlags?: IFeatureFlags;

  constructor(scope: Construct, id: string, props: LakeStoreProps) {
    super(scope, id);
    this.dataLake = props.dataLake;
    this.ledger = props.ledger;
    this.featureFlags = props.featureFlags;
    this.datasetIds = [...props.dataLake.datasetIds];
    applyPlatformTags(this, props.stage);

    this.queryDeadline = props.queryDeadline ?? Duration.seconds(MAX_QUERY_DEADLINE_SECONDS);
    const deadlineMs = this.queryDeadline.toMilliseconds();
    if (!Number.isInteger(deadlineMs) || deadlineMs < 1000 || deadlineMs > MAX_QUERY_DEADLINE_SECONDS * 1000) {
      throw new Error(`queryDeadline: expected 1 to ${MAX_QUERY_DEADLINE_SECONDS} seconds (whole milliseconds; API Gateway gives up at 29 s), got ${this.queryDeadline.toHumanString()}`);
    }
    this.resultReuse = props.resultReuse ?? Duration.minutes(60);
    const reuseMinutes = this.resultReuse.toMinutes({ integral: false });
    if (!Number.isInteger(reuseMinutes) || reuseMinutes < 0 || reuseMinutes > MAX_RESULT_REUSE_MINUTES) {
      throw new Error(`resultReuse: expected whole minutes from 0 to ${MAX_RESULT_REUSE_MINUTES} (7 days, Athena's maximum), got ${this.resultReuse.toHumanString()}`);
    }
    const maxPoints = props.maxPointsPerPage ?? MAX_POINTS_PER_PAGE;
    if (!Number.isInteger(maxPoints) || maxPoints < 1 || maxPoints > MAX_POINTS_PER_PAGE) {
      throw new Error(`maxPointsPerPage: expected an integer from 1 to ${MAX_POINTS_PER_PAGE} (a GetQueryResults page less its header row), got ${maxPoints}`);
    }
    if (this.datasetIds.length === 0) throw new Error('dataLake: the lake has no dataset table to serve');

    const lake = this.dataLake;
    const fn = createPlatformFunction(this, 'Query', QueryFunction, {
      stage: props.stage,
      service: MetricServices.API,
      encryptionKey: lake.encryptionKey,
      description: `ONS data platform (${props.stage.name}): time-series queries (Athena over the lake)`,
      timeout: QUERY_FUNCTION_TIMEOUT,
      memorySize: 512,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      environment: {
        [TimeSeriesEnv.DATABASE]: lake.databaseName,
        [TimeSeriesEnv.TABLES]: JSON.stringify(Object.fromEntries(this.datasetIds.map((d) => [d, lake.currentViewName(d)]))),
        // Datasets outside the catalog: their dimensions and measures, which the handler validates requests against.
        ...(lake.additionalDatasets.length ? { [TimeSeriesEnv.DATASETS]: JSON.stringify(lake.additionalDatasets.map(servedDataset)) } : {}),
        [TimeSeriesEnv.MAX_POINTS]: String(maxPoints),
        [LakeQueryEnv.WORK_GROUP]: lake.workGroupName,
        [LakeQueryEnv.DEADLINE_MS]: String(deadlineMs),
        [LakeQueryEnv.RESULT_REUSE_MINUTES]: String(reuseMinutes),
      },
    });
    this.grantRead(fn);
    acknowledgeScopedWildcards(fn.role!);
    props.featureFlags?.bind(fn);
    this.queryFunction = fn;
  }

  /**
   * Lets `grantee` write points: Parquet objects under the lake's processed-data prefix (what the ingestion
   * processor writes; a file written any other way is not in the ledger). Encryption with the lake key goes through S3.
   */
  public grantWrite(grantee: iam.IGrantable): iam.Grant {
    const lake = this.dataLake;
    const put = iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
      resourceArns: [lake.processedBucket.arnForObjects(`${lake.processedDataPrefix}*`)],
    });
    const key = iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
      resourceArns: [lake.encryptionKey.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `s3.${this.stackRegion()}.amazonaws.com` } },
    });
    return put.combine(key);
  }

  /**
   * Lets `grantee` query the store: the lake's `grantQuery` (Athena in the lake's workgroup only; the database,
   * tables and views; processed data and query results only; the key through S3).
   */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    return this.dataLake.grantQuery(grantee);
  }

  /** GetWorkGroup (the workgroup is ENABLED) and Athena's GetDatabase of the Glue database: read-only calls, up when both answer. */
  public healthProbe(): IHealthProbe {
    const lake = this.dataLake;
    return {
      config: { engine: this.engine, database: lake.databaseName, workGroup: lake.workGroupName },
      grant: (grantee) => {
        grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['athena:GetWorkGroup'], resources: [lake.workGroupArn] }));
        // Athena's GetDatabase is authorised on Athena's data catalog, then reads Glue with the caller's rights.
        grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['athena:GetDatabase'], resources: [this.athenaCatalogArn()] }));
        // Glue authorises GetDatabase on the catalog and the database (resource-level permissions).
        grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({
          actions: ['glue:GetDatabase'],
          resources: [this.catalogArn(), lake.databaseArn],
        }));
      },
    };
  }

  /**
   * An Athena metric of the lake's workgroup (namespace AWS/Athena, dimensions WorkGroup, QueryType DML and
   * QueryState: Athena user guide, "List of CloudWatch metrics and dimensions for Athena"). It covers every DML
   * query of the workgroup: the API's and those of other `grantQuery` grantees.
   */
  public metricQuery(metricName: string, queryState: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/Athena',
      metricName,
      dimensionsMap: { WorkGroup: this.dataLake.workGroupName, QueryType: 'DML', QueryState: queryState },
      period: Duration.minutes(5),
      statistic: 'Sum',
      ...props,
    });
  }

  /** Queries of the workgroup that FAILED (the count of TotalExecutionTime samples, over 5 minutes). */
  public metricFailedQueries(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricQuery('TotalExecutionTime', 'FAILED', { statistic: 'SampleCount', ...props });
  }

  /** Queries of the workgroup that were CANCELED: stopped at the API deadline, or by the bytes-scanned cutoff (SampleCount). */
  public metricCanceledQueries(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricQuery('TotalExecutionTime', 'CANCELED', { statistic: 'SampleCount', ...props });
  }

  /** p99 total execution time (ms) of the workgroup's successful queries. */
  public metricQueryTime(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricQuery('TotalExecutionTime', 'SUCCEEDED', { statistic: 'p99', ...props });
  }

  /** Bytes the workgroup's successful queries scanned (what Athena bills; Sum). */
  public metricProcessedBytes(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricQuery('ProcessedBytes', 'SUCCEEDED', props);
  }

  /**
   * Failed and canceled queries (warnings at `timeSeriesErrors`), slow ones (p99 at `lakeQueryTimeP99`), and the
   * dashboard's query and scanned-bytes graphs. No data means no query: it never breaches.
   */
  public addMonitoring(monitor: IMonitor): void {
    const { period, timeSeriesErrors, lakeQueryTimeP99 } = monitor.thresholds;
    const every = period.toHumanString();
    const failed = this.metricFailedQueries({ period });
    const canceled = this.metricCanceledQueries({ period });
    const slow = this.metricQueryTime({ period });
    monitor.addAlarm(this, 'FailedQueries', {
      severity: AlarmSeverity.WARNING,
      metric: failed,
      threshold: timeSeriesErrors,
      description: `Lake time series: ${timeSeriesErrors} or more Athena queries FAILED in the workgroup in ${every}`,
    });
    monitor.addAlarm(this, 'CanceledQueries', {
      severity: AlarmSeverity.WARNING,
      metric: canceled,
      threshold: timeSeriesErrors,
      description: `Lake time series: ${timeSeriesErrors} or more Athena queries CANCELED in ${every} (the API's ${this.queryDeadline.toHumanString()} deadline, answered 504, or the bytes-scanned cutoff)`,
    });
    monitor.addAlarm(this, 'SlowQueries', {
      severity: AlarmSeverity.WARNING,
      metric: slow,
      threshold: lakeQueryTimeP99.toMilliseconds(),
      description: `Lake time series: p99 Athena query time at or above ${lakeQueryTimeP99.toHumanString()} in ${every} (requests answer 504 at ${this.queryDeadline.toHumanString()})`,
    });
    monitor.addWidgets(DashboardSection.TIME_SERIES_STORE,
      new cloudwatch.GraphWidget({ title: 'Lake queries: failed / canceled', left: [failed, canceled], width: 8 }),
      new cloudwatch.GraphWidget({ title: 'Lake query time p99 (ms)', left: [slow], width: 8 }),
      new cloudwatch.GraphWidget({ title: 'Lake bytes scanned', left: [this.metricProcessedBytes({ period })], width: 8 }));
  }

  /**
   * The query function's calls, for the permission-closure test (test/permissions/closure.test.ts): Athena runs the
   * query with the caller's credentials, so the Glue reads (a view and its table, partition projection) and the S3
   * reads and result writes are the function's too.
   * @internal
   */
  public _permissionInventory(): CallerInventory[] {
    const lake = this.dataLake;
    const fn = this.queryFunction as lambda.Function;
    const key = lake.encryptionKey.keyArn;
    const dataset = this.datasetIds[0];
    const glueTable = (name: string) => lake.processedBucket.stack.formatArn({ service: 'glue', resource: 'table', resourceName: `${lake.databaseName}/${name}` });
    // The query results' prefix is a DataLake's (an imported lake has none: its grantQuery says where).
    const resultsPrefix = (lake as { queryResultsPrefix?: string }).queryResultsPrefix ?? 'athena-results/';
    const results = lake.processedBucket.arnForObjects(`${resultsPrefix}q-1.csv`);
    const calls: AwsCall[] = [
      ...['StartQueryExecution', 'GetQueryExecution', 'GetQueryResults', 'StopQueryExecution'].map((a) => ({ action: `athena:${a}`, resource: lake.workGroupArn })),
      // Glue asks for the catalog, the database and (for a table's reads) the table: the view and the table under it.
      ...[this.catalogArn(), lake.databaseArn].flatMap((resource) => ['glue:GetDatabase', 'glue:GetTables'].map((action) => ({ action, resource }))),
      ...[this.catalogArn(), lake.databaseArn, glueTable(dataset), glueTable(lake.currentViewName(dataset))].flatMap((resource) =>
        ['glue:GetTable', 'glue:GetPartitions'].map((action) => ({ action, resource }))),
      ...[lake.processedDataPrefix, resultsPrefix].map((prefix) => ({ action: 's3:ListBucket', resource: lake.processedBucket.bucketArn, context: { 's3:prefix': prefix } })),
      { action: 's3:GetBucketLocation', resource: lake.processedBucket.bucketArn },
      { action: 's3:GetObject', resource: lake.processedBucket.arnForObjects(`${lake.processedDataPrefix}dataset=${dataset}/x.parquet`), kmsKey: key },
      ...['s3:GetObject', 's3:PutObject'].map((action) => ({ action, resource: results, kmsKey: key })),
      ...['s3:AbortMultipartUpload', 's3:ListMultipartUploadParts'].map((action) => ({ action, resource: results })),
      ...(this.featureFlags as { _readCalls?: () => AwsCall[] } | undefined)?._readCalls?.() ?? [],
    ];
    return [{ name: 'time-series query (Athena over the lake)', principal: fn.role!, calls: [...functionRuntimeCalls(fn), ...calls] }];
  }

  /** The health probe's calls (see `healthProbe()`): Athena reads the database from Glue as the caller. @internal */
  public _healthProbeCalls(): AwsCall[] {
    const lake = this.dataLake;
    return [
      { action: 'athena:GetWorkGroup', resource: lake.workGroupArn },
      { action: 'athena:GetDatabase', resource: this.athenaCatalogArn() },
      ...[this.catalogArn(), lake.databaseArn].map((resource) => ({ action: 'glue:GetDatabase', resource })),
    ];
  }

  private stackRegion(): string {
    return this.dataLake.processedBucket.stack.region;
  }

  /** Athena's name for the account's Glue Data Catalog. */
  private athenaCatalogArn(): string {
    return this.dataLake.processedBucket.stack.formatArn({ service: 'athena', resource: 'datacatalog', resourceName: 'AwsDataCatalog' });
  }

  private catalogArn(): string {
    const stack = this.dataLake.processedBucket.stack;
    return stack.formatArn({ service: 'glue', resource: 'catalog' });
  }
}

/** What the query handler needs of a dataset outside the catalog (`TimeSeriesEnv.DATASETS`). */
function servedDataset(d: DatasetTableProps): ServedDataset {
  return { id: d.datasetId, dimensions: d.dimensions ?? [], measures: d.measures.map((m) => ({ name: m.name, unit: m.unit ?? null })) };
}
