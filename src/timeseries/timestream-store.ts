import { Annotations, Duration, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as timestream from 'aws-cdk-lib/aws-timestream';
import { Construct } from 'constructs';
import { TimeSeriesEngines, TimeSeriesEnv } from './contract';
import { checkedMaxWritesInFlight, grantLoaderLakeAccess, loaderEnvironment, loaderLakeCalls } from './loader-access';
import { ITimeSeriesStore, TimeSeriesStoreBaseProps } from './store';
import { LoadFunction } from './timestream/load-function';
import { QueryFunction } from './timestream/query-function';
import { applyPlatformTags, createPlatformFunction } from '../core/defaults';
import { IHealthProbe } from '../core/health-probe';
import { AlarmSeverity, DashboardSection, IMonitor, IMonitorable, platformMetric } from '../core/monitorable';
import { acknowledgeScopedWildcards } from '../core/nag';
import { AwsCall, CallerInventory, functionRuntimeCalls } from '../core/permissions';
import { applyDataRemovalPolicy } from '../core/removal';
import { PlatformStage } from '../core/stage';
import { IDataLake } from '../lake/data-lake';
import { IIngestionLedger } from '../ledger/ingestion-ledger';
import { CATALOG } from '../ons/catalog';
import { rejectedRecordsPrefix } from '../ons/layout';
import { MetricServices, PlatformMetrics } from '../runtime/contract';

/**
 * Regions where Amazon Timestream for LiveAnalytics is offered (AWS service endpoints page), for the
 * synth-time warning only: deployment elsewhere fails.
 */
const LIVE_ANALYTICS_REGIONS = ['us-east-1', 'us-east-2', 'us-west-2', 'eu-central-1', 'eu-west-1', 'ap-northeast-1', 'ap-southeast-2', 'ap-south-1'];

/** Timestream operations the platform calls: the loader writes, the query handler reads. */
const OPERATIONS = ['WriteRecords', 'Query'];

/** Name of the table that takes ONS datasets outside the catalog when `catchAllTable` is on. */
export const CATCH_ALL_TABLE_NAME = 'ons_other_datasets';

/**
 * Options of a `TimestreamStore` (what `OnsDataPlatform` passes through).
 */
export interface TimestreamStoreOptions {
  /**
   * Name of the database.
   *
   * @default - `ons_data_platform_<stage>`
   */
  readonly databaseName?: string;

  /**
   * How long points stay in the memory store.
   *
   * @default - the stage's `timeSeriesRetention.memoryStoreHours` (DEV 24 hours, STAGING 72, PROD 168)
   */
  readonly memoryStoreRetention?: Duration;

  /**
   * How long points stay in the magnetic store. Points older than this are rejected, so it must
   * cover the oldest data you load (ONS history starts in 2000).
   *
   * @default - the stage's `timeSeriesRetention.magneticStoreDays` (73000 days, the maximum)
   */
  readonly magneticStoreRetention?: Duration;

  /**
   * Extra tables, for ONS datasets outside the catalog (ids as the naming convention gives them,
   * e.g. `geracao_termica_despacho`).
   *
   * @default - one table per catalog dataset only
   */
  readonly additionalDatasets?: string[];

  /**
   * A table (`ons_other_datasets`) for ONS datasets that have no table of their own. Without it,
   * such files stay in the lake and the ledger records them as not loaded, with the reason.
   *
   * @default false
   */
  readonly catchAllTable?: boolean;

  /**
   * WriteRecords requests the loader keeps in flight at once (1–64).
   *
   * @default 8
   */
  readonly maxWritesInFlight?: number;
}

/**
 * Properties of `TimestreamStore`.
 */
export interface TimestreamStoreProps extends TimestreamStoreOptions, TimeSeriesStoreBaseProps {}

/**
 * The time-series store on Amazon Timestream for LiveAnalytics: a KMS-encrypted database, one table
 * per catalog dataset (plus `additionalDatasets`, plus an optional catch-all table), memory and
 * magnetic retention from the stage, magnetic-store writes on (ONS history is older than any memory
 * retention) with the rejected-data report in the failed bucket.
 *
 * Records are multi-measure: measure name = the dataset, every measure of a row one DOUBLE value,
 * dimensions = the dataset's identity dimensions, `Version` = the source object's last-modified time
 * in milliseconds, so reprocessing a file is idempotent and a revised file wins.
 *
 * LiveAnalytics is closed to AWS accounts that did not use it before 2025-06-20 and is offered in a
 * few regions only (a synth warning says so when the stack's region is known and not one of them).
 *
 * @example
 * const store = new TimestreamStore(stack, 'TimeSeries', { stage: PlatformStage.PROD, dataLake: lake, ledger });
 */
export class TimestreamStore extends Construct implements ITimeSeriesStore, IMonitorable {
  public readonly engine = TimeSeriesEngines.LIVE_ANALYTICS;
  /** The database. */
  public readonly database: timestream.CfnDatabase;
  /** Name of the database. */
  public readonly databaseName: string;
  /** Dataset ids with a table (the table name is the dataset id). */
  public readonly datasetIds: string[];
  /** Whether the catch-all table exists. */
  public readonly hasCatchAllTable: boolean;
  /** Prefix in the failed bucket of records Timestream rejected. */
  public readonly rejectedRecordsPrefix: string;

  public readonly ledger: IIngestionLedger;
  /** The loader (always set for this engine; optional only because `ITimeSeriesStore` allows a store without one). */
  public readonly loaderFunction?: lambda.IFunction;
  public readonly queryFunction: lambda.IFunction;
  /** What the permission inventory needs (the lake, the ledger, the flags). */
  private readonly inventoryOptions: TimeSeriesStoreBaseProps;

  private readonly tables = new Map<string, timestream.CfnTable>();
  private readonly stage: PlatformStage;
  private readonly lake: IDataLake;
  private readonly key: kms.IKey;
  private readonly maxWritesInFlight: number;

  constructor(scope: Construct, id: string, props: TimestreamStoreProps) {
    super(scope, id);
    this.inventoryOptions = props;
    this.stage = props.stage;
    this.lake = props.dataLake;
    this.key = props.dataLake.encryptionKey;
    this.ledger = props.ledger;
    applyPlatformTags(this, this.stage);

    this.maxWritesInFlight = checkedMaxWritesInFlight(props.maxWritesInFlight, 8);
    const memoryHours = props.memoryStoreRetention?.toHours() ?? this.stage.timeSeriesRetention.memoryStoreHours;
    const magneticDays = props.magneticStoreRetention?.toDays() ?? this.stage.timeSeriesRetention.magneticStoreDays;
    if (!Number.isInteger(memoryHours) || memoryHours < 1 || memoryHours > 8766) {
      throw new Error(`memoryStoreRetention: expected whole hours from 1 to 8766, got ${memoryHours}`);
    }
    if (!Number.isInteger(magneticDays) || magneticDays < 1 || magneticDays > 73000) {
      throw new Error(`magneticStoreRetention: expected whole days from 1 to 73000, got ${magneticDays}`);
    }
    const oldestDays = Math.ceil((Date.now() - Date.UTC(2000, 0, 1)) / 86_400_000);
    if (magneticDays < oldestDays) {
      Annotations.of(this).addWarningV2('ons-data-platform:magneticRetention',
        `magneticStoreRetention is ${magneticDays} days: points older than that (ONS history starts in 2000, ${oldestDays} days ago) will be rejected.`);
    }

    const datasets = [...CATALOG.map((d) => d.id), ...(props.additionalDatasets ?? [])];
    for (const dataset of datasets) {
      if (!/^[a-z0-9_]{3,64}$/.test(dataset)) {
        throw new Error(`additionalDatasets: '${dataset}' is not an ONS dataset id (3-64 lower-case letters, digits, underscores)`);
      }
    }
    if (new Set(datasets).size !== datasets.length) throw new Error('additionalDatasets: a dataset is listed twice or is already in the catalog');
    this.hasCatchAllTable = props.catchAllTable ?? false;
    this.rejectedRecordsPrefix = rejectedRecordsPrefix(this.lake.rejectedRowsPrefix);

    this.database = new timestream.CfnDatabase(this, 'Database', {
      databaseName: props.databaseName ?? `ons_data_platform_${this.stage.name.replace(/-/g, '_')}`,
      kmsKeyId: this.key.keyArn,
    });
    applyDataRemovalPolicy(this.database, this.stage);
    this.databaseName = this.database.ref;

    for (const dataset of [...datasets, ...(this.hasCatchAllTable ? [CATCH_ALL_TABLE_NAME] : [])]) {
      const table = new timestream.CfnTable(this, `Table-${dataset}`, {
        databaseName: this.databaseName,
        tableName: dataset,
        retentionProperties: {
          MemoryStoreRetentionPeriodInHours: String(memoryHours),
          MagneticStoreRetentionPeriodInDays: String(magneticDays),
        },
        magneticStoreWriteProperties: {
          EnableMagneticStoreWrites: true,
          MagneticStoreRejectedDataLocation: {
            S3Configuration: {
              BucketName: this.lake.failedBucket.bucketName,
              ObjectKeyPrefix: `${this.lake.rejectedRowsPrefix}timeseries-magnetic-store/${dataset}/`,
              EncryptionOption: 'SSE_KMS',
              KmsKeyId: this.key.keyArn,
            },
          },
        },
      });
      table.addResourceDependency(this.database);
      applyDataRemovalPolicy(table, this.stage);
      this.tables.set(dataset, table);
    }
    this.datasetIds = datasets;

    const region = Stack.of(this).region;
    if (!Token.isUnresolved(region) && !LIVE_ANALYTICS_REGIONS.includes(region)) {
      Annotations.of(this).addWarningV2('ons-data-platform:timestreamRegion',
        `Amazon Timestream for LiveAnalytics is not offered in ${region} (it is in ${LIVE_ANALYTICS_REGIONS.join(', ')}): ` +
        'deploy the store in one of those regions, or use another time-series engine.');
    }
    this.loaderFunction = this.createLoader(props);
    this.queryFunction = this.createQuery(props);
  }

  /** Name of the table of `dataset` (throws for a dataset without a table). */
  public tableName(dataset: string): string {
    const table = this.tables.get(dataset);
    if (!table) throw new Error(`tableName: no table for dataset '${dataset}' (known: ${[...this.tables.keys()].join(', ')})`);
    return table.tableName!;
  }

  public grantWrite(grantee: iam.IGrantable): iam.Grant {
    this.grantDescribeEndpoints(grantee);
    return iam.Grant.addToPrincipal({ grantee, actions: ['timestream:WriteRecords'], resourceArns: this.tableArns() });
  }

  public grantRead(grantee: iam.IGrantable): iam.Grant {
    this.grantDescribeEndpoints(grantee);
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['timestream:Select', 'timestream:DescribeTable', 'timestream:ListMeasures'],
      resourceArns: this.tableArns(),
    });
  }

  private createLoader(options: TimeSeriesStoreBaseProps): lambda.IFunction {
    const fn = createPlatformFunction(this, 'Loader', LoadFunction, {
      stage: options.stage,
      service: MetricServices.TIME_SERIES,
      encryptionKey: this.key,
      description: `ONS data platform (${options.stage.name}): time-series loader (Timestream)`,
      traceCalls: false, // data-heavy: see PlatformFunctionOptions.traceCalls
      timeout: Duration.minutes(15),
      memorySize: 1024,
      reservedConcurrentExecutions: options.reservedConcurrentExecutions,
      environment: {
        ...this.environment(),
        ...loaderEnvironment(options, this.rejectedRecordsPrefix, this.maxWritesInFlight),
      },
    });
    this.grantWrite(fn);
    grantLoaderLakeAccess(fn, options, this.rejectedRecordsPrefix);
    return fn;
  }

  private createQuery(options: TimeSeriesStoreBaseProps): lambda.IFunction {
    const fn = createPlatformFunction(this, 'Query', QueryFunction, {
      stage: options.stage,
      service: MetricServices.API,
      encryptionKey: this.key,
      description: `ONS data platform (${options.stage.name}): time-series queries (Timestream)`,
      timeout: Duration.seconds(29),
      memorySize: 512,
      reservedConcurrentExecutions: options.reservedConcurrentExecutions,
      environment: { ...this.environment(), [TimeSeriesEnv.MAX_POINTS]: '1000' },
    });
    this.grantRead(fn);
    acknowledgeScopedWildcards(fn.role!);
    options.featureFlags?.bind(fn);
    return fn;
  }

  /** DescribeDatabase: up when the database answers. */
  public healthProbe(): IHealthProbe {
    return {
      config: { engine: this.engine, database: this.databaseName },
      grant: (grantee) => {
        // DescribeDatabase is a write-API call: endpoint discovery first, then the database itself.
        this.grantDescribeEndpoints(grantee);
        grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['timestream:DescribeDatabase'], resources: [this.database.attrArn] }));
      },
    };
  }

  /**
   * Calls of `operation` (`WriteRecords`, `Query`...) that failed on Timestream's side (Sum over 5 minutes).
   * AWS/Timestream publishes it with the `Operation` dimension only ("Timestream for LiveAnalytics metrics and
   * dimensions"): it counts every database of the account in the Region, so every stage sharing the account.
   */
  public metricSystemErrors(operation: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.operationMetric('SystemErrors', operation, props);
  }

  /**
   * Calls of `operation` that Timestream refused (bad request, throttling, access; Sum over 5 minutes). Like
   * `metricSystemErrors()`, per account and Region: not this store's alone.
   */
  public metricUserErrors(operation: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.operationMetric('UserErrors', operation, props);
  }

  /**
   * Records of this store's database that Timestream rejected asynchronously while writing them to the magnetic
   * store (`MagneticStoreRejectedRecordCount`, which has the `DatabaseName`, `TableName` and `Operation`
   * dimensions), summed over every table by a CloudWatch Metrics Insights query (one query, where metric math
   * would be limited to 10 metrics per alarm and the catalog has more tables).
   *
   * @param period length of each datapoint (5 minutes by default)
   */
  public metricMagneticStoreRejectedRecords(period?: Duration): cloudwatch.IMetric {
    return new cloudwatch.MathExpression({
      expression: 'SELECT SUM(MagneticStoreRejectedRecordCount) FROM SCHEMA("AWS/Timestream", DatabaseName, Operation, TableName) '
        + `WHERE DatabaseName = '${this.databaseName}'`,
      usingMetrics: {},
      label: 'Magnetic-store records rejected',
      period: period ?? Duration.minutes(5),
    });
  }

  /**
   * Reports of magnetic-store rejections that Timestream could not upload to the failed bucket, for this store's
   * database: `MagneticStoreRejectedUploadUserFailures` (our side: the bucket, its policy or the key refused the report)
   * or `MagneticStoreRejectedUploadSystemFailures` (Timestream's), summed over the tables like the rejected records
   * (per table metrics: "Timestream for LiveAnalytics metrics and dimensions", only CumulativeBytesMetered, UserErrors
   * and SystemErrors are per account). A report not uploaded loses the reasons of its rejected records.
   *
   * @param kind `User` or `System`
   * @param period length of each datapoint (5 minutes by default)
   */
  public metricMagneticStoreRejectedUploadFailures(kind: 'User' | 'System', period?: Duration): cloudwatch.IMetric {
    if (kind !== 'User' && kind !== 'System') throw new Error(`kind: expected 'User' or 'System', got '${kind}'`);
    return new cloudwatch.MathExpression({
      expression: `SELECT SUM(MagneticStoreRejectedUpload${kind}Failures) FROM SCHEMA("AWS/Timestream", DatabaseName, Operation, TableName) `
        + `WHERE DatabaseName = '${this.databaseName}'`,
      usingMetrics: {},
      label: `Magnetic-store rejection reports not uploaded (${kind.toLowerCase()} failures)`,
      period: period ?? Duration.minutes(5),
    });
  }

  /** Measure values the loader wrote to Timestream (Sum over 5 minutes; the stage's metric, `service` = `timeseries`). */
  public metricPointsWritten(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return platformMetric(this.stage.name, PlatformMetrics.POINTS_WRITTEN, props);
  }

  /** Records Timestream refused, kept with the reason under `rejectedRecordsPrefix` (Sum over 5 minutes; the stage's metric). */
  public metricPointsRejected(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return platformMetric(this.stage.name, PlatformMetrics.POINTS_REJECTED, props);
  }

  /**
   * Records rejected by the magnetic store of this database, at the `magneticStoreRejectedRecords` threshold (a
   * warning), and any rejection report that could not be uploaded (a warning at 1: the reasons are lost). `SystemErrors` and `UserErrors` are graphed but not alarmed: they are the account's, in every stage
   * (the stage's own failures reach its loader's and query handler's error alarms and `RecordsRejectedByStore`).
   */
  public addMonitoring(monitor: IMonitor): void {
    const { period, magneticStoreRejectedRecords } = monitor.thresholds;
    // No data means no rejection; missing data never breaches.
    const rejected = this.metricMagneticStoreRejectedRecords(period);
    monitor.addAlarm(this, 'MagneticStoreRejectedRecords', {
      severity: AlarmSeverity.WARNING,
      metric: rejected,
      threshold: magneticStoreRejectedRecords,
      description: `Timestream database ${this.databaseName}: ${magneticStoreRejectedRecords} or more records rejected by the magnetic store `
        + `in ${period.toHumanString()}; the reasons are in the failed bucket under ${this.lake.rejectedRowsPrefix}timeseries-magnetic-store/`,
    });
    const uploads = (['User', 'System'] as const).map((kind) => {
      const metric = this.metricMagneticStoreRejectedUploadFailures(kind, period);
      monitor.addAlarm(this, `MagneticStoreRejectedUpload${kind}Failures`, {
        severity: AlarmSeverity.WARNING,
        metric,
        threshold: 1,
        description: `Timestream database ${this.databaseName}: a report of magnetic-store rejections could not be uploaded to the failed bucket `
          + `(${kind === 'User' ? 'the bucket, its policy or the lake key refused it' : 'a Timestream failure'}); the reasons of those records are lost`,
      });
      return metric;
    });
    const accountErrors: cloudwatch.IMetric[] = [];
    for (const operation of OPERATIONS) {
      accountErrors.push(this.metricSystemErrors(operation, { period }), this.metricUserErrors(operation, { period }));
    }
    monitor.addWidgets(DashboardSection.TIME_SERIES_STORE,
      new cloudwatch.GraphWidget({ title: 'Magnetic-store records rejected (this database)', left: [rejected], right: uploads, width: 12 }),
      new cloudwatch.GraphWidget({ title: 'Timestream errors by operation (whole account and Region, every stage)', left: accountErrors, width: 12 }));
  }

  private operationMetric(metricName: string, operation: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/Timestream', metricName, dimensionsMap: { Operation: operation }, statistic: 'Sum', period: Duration.minutes(5), ...props,
    });
  }

  private environment(): Record<string, string> {
    const tables = Object.fromEntries([...this.tables].filter(([d]) => d !== CATCH_ALL_TABLE_NAME).map(([d, t]) => [d, t.tableName!]));
    return {
      [TimeSeriesEnv.DATABASE]: this.databaseName,
      [TimeSeriesEnv.TABLES]: JSON.stringify(tables),
      ...(this.hasCatchAllTable ? { [TimeSeriesEnv.CATCH_ALL_TABLE]: CATCH_ALL_TABLE_NAME } : {}),
    };
  }

  private tableArns(): string[] {
    return [...this.tables.values()].map((t) => t.attrArn);
  }

  /** Endpoint discovery (the SDK calls it before any other call) supports no resource-level permission. */
  /**
   * The calls of the store's functions, for the permission-closure test (test/permissions/closure.test.ts).
   * @internal
   */
  public _permissionInventory(): CallerInventory[] {
    const table = this.tableArns()[0];
    const discover: AwsCall = { action: 'timestream:DescribeEndpoints', resource: '*' };
    const out: CallerInventory[] = [];
    const query = this.queryFunction as lambda.Function;
    out.push({
      name: 'time-series query (Timestream)',
      principal: query.role!,
      calls: [...functionRuntimeCalls(query), discover, ...['Select', 'DescribeTable', 'ListMeasures'].map((a) => ({ action: `timestream:${a}`, resource: table })),
        ...(this.inventoryOptions.featureFlags as { _readCalls?: () => AwsCall[] } | undefined)?._readCalls?.() ?? []],
    });
    if (this.loaderFunction) {
      const loader = this.loaderFunction as lambda.Function;
      out.push({
        name: 'time-series loader (Timestream)',
        principal: loader.role!,
        calls: [...functionRuntimeCalls(loader), discover, { action: 'timestream:WriteRecords', resource: table }, ...loaderLakeCalls(this.inventoryOptions, this.rejectedRecordsPrefix)],
      });
    }
    return out;
  }

  /** The health probe's calls (see `healthProbe()`). @internal */
  public _healthProbeCalls(): AwsCall[] {
    return [{ action: 'timestream:DescribeEndpoints', resource: '*' }, { action: 'timestream:DescribeDatabase', resource: this.database.attrArn }];
  }

  private grantDescribeEndpoints(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['timestream:DescribeEndpoints'], resources: ['*'] }));
  }
}
