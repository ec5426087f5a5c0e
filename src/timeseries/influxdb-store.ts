import { CustomResource, Duration, Names, Size, SizeRoundingBehavior, Stack, Token, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as timestream from 'aws-cdk-lib/aws-timestream';
import { Construct } from 'constructs';
import { InfluxDbEnv, TimeSeriesEngines, TimeSeriesEnv } from './contract';
import { BootstrapFunction } from './influxdb/bootstrap-function';
import { LoadFunction } from './influxdb/load-function';
import { QueryFunction } from './influxdb/query-function';
import { checkedMaxWritesInFlight, grantLoaderLakeAccess, loaderEnvironment, loaderLakeCalls } from './loader-access';
import { ITimeSeriesStore, TimeSeriesStoreBaseProps } from './store';
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

/** Instance types of Timestream for InfluxDB (API reference, DbInstanceType; supported instance types page). */
const INSTANCE_TYPES = [
  'db.influx.medium', 'db.influx.large', 'db.influx.xlarge', 'db.influx.2xlarge', 'db.influx.4xlarge',
  'db.influx.8xlarge', 'db.influx.12xlarge', 'db.influx.16xlarge', 'db.influx.24xlarge',
];
/** Storage types: 3,000, 12,000 and 16,000 included IOPS; T2 and T3 need at least 400 GiB. */
const STORAGE_TYPES = ['InfluxIOIncludedT1', 'InfluxIOIncludedT2', 'InfluxIOIncludedT3'];
/** Port of the InfluxDB HTTP API (the service's default). */
const INFLUX_PORT = 8086;
/** CloudWatch namespace of the instance's metrics, whose one dimension is the instance name. */
const METRICS_NAMESPACE = 'AWS/TimestreamInfluxDB';

/**
 * Options of an `InfluxDbStore` (what `OnsDataPlatform` passes through). Defaults that depend on the stage follow
 * whether the stage keeps its data: a stage that never allows data removal (PROD) gets production sizing.
 */
export interface InfluxDbStoreOptions {
  /**
   * Instance class (`db.influx.medium` to `db.influx.24xlarge`). It cannot be changed on a running instance.
   *
   * @default - `db.influx.large` (2 vCPU, 16 GiB) in stages that keep their data, `db.influx.medium` (1 vCPU, 8 GiB) otherwise
   */
  readonly instanceType?: string;

  /**
   * Storage type: `InfluxIOIncludedT1` (3,000 IOPS), `InfluxIOIncludedT2` (12,000) or `InfluxIOIncludedT3` (16,000).
   *
   * @default 'InfluxIOIncludedT1'
   */
  readonly storageType?: string;

  /**
   * Allocated storage, whole GiB from 20 (400 for T2 and T3) to 15,360.
   *
   * @default - 100 GiB in stages that keep their data, 20 GiB otherwise
   */
  readonly allocatedStorage?: Size;

  /**
   * A standby in a second Availability Zone (deployment type `WITH_MULTIAZ_STANDBY`), which doubles the instance cost.
   * Needs subnets in two Availability Zones.
   *
   * @default - true in stages that keep their data, false otherwise
   */
  readonly multiAz?: boolean;

  /**
   * How long the bucket keeps points (the bootstrap sets the bucket's retention rule). ONS history starts in 2000.
   *
   * @default - forever
   */
  readonly bucketRetention?: Duration;

  /**
   * The VPC of the instance and of the loader, query and bootstrap functions.
   *
   * @default - a new VPC: two Availability Zones, private isolated subnets only (no NAT gateway, no internet gateway),
   * VPC endpoints for what the functions call, rejected traffic in flow logs
   */
  readonly vpc?: ec2.IVpc;

  /**
   * Subnets of the instance and the functions: private ones (a public subnet is refused).
   *
   * @default - the VPC's private subnets (with egress if it has any, isolated otherwise)
   */
  readonly vpcSubnets?: ec2.SubnetSelection;

  /**
   * VPC endpoints for what the functions call: S3 and DynamoDB (gateway endpoints, no charge), Secrets Manager and AppConfig
   * Data (interface endpoints, billed per endpoint-hour in each Availability Zone plus per GB). Without them the functions need
   * a NAT gateway, billed per hour in each zone plus per GB processed, and a route to the internet, which these functions
   * never need.
   *
   * @default - true when the store creates the VPC, false for a VPC passed in (it has its own endpoints or NAT)
   */
  readonly vpcEndpoints?: boolean;

  /**
   * Hourly InfluxDB engine logs delivered to the lake's access-log bucket, under `InfluxLogs/`.
   *
   * @default true
   */
  readonly logDelivery?: boolean;

  /**
   * The InfluxDB organization created with the instance.
   *
   * @default 'ons'
   */
  readonly organization?: string;

  /**
   * The InfluxDB bucket created with the instance (every dataset is a measurement in it).
   *
   * @default 'ons_data_platform'
   */
  readonly bucketName?: string;

  /**
   * The 1.x database name the bucket is mapped to (DBRP), which the loader and query functions use.
   *
   * @default - `ons_data_platform_<stage>`
   */
  readonly databaseName?: string;

  /**
   * Extra measurements, for ONS datasets outside the catalog (ids as the naming convention gives them).
   *
   * @default - one measurement per catalog dataset only
   */
  readonly additionalDatasets?: string[];

  /**
   * Load ONS datasets outside the catalog and `additionalDatasets` too, each into a measurement named after its dataset
   * id (InfluxDB needs no schema). The API still serves only the listed datasets. Without it, such files stay in the lake
   * and the ledger records them as not loaded.
   *
   * @default false
   */
  readonly loadOtherDatasets?: boolean;

  /**
   * Lines per write request (1 to 100,000; InfluxDB recommends about 5,000).
   *
   * @default 5000
   */
  readonly batchLines?: number;

  /**
   * Write requests the loader keeps in flight at once (1-64).
   *
   * @default 4
   */
  readonly maxWritesInFlight?: number;
}

/**
 * Properties of `InfluxDbStore`.
 */
export interface InfluxDbStoreProps extends InfluxDbStoreOptions, TimeSeriesStoreBaseProps {}

/**
 * The time-series store on Amazon Timestream for InfluxDB (InfluxDB 2): one instance in private subnets, not publicly
 * accessible, its storage encrypted with the platform key; its admin password generated by Secrets Manager and passed
 * to the instance by dynamic reference; a bootstrap custom resource that creates a write token and a read token on the
 * bucket (each in its own secret) and maps the 1.x database to the bucket, so the loader and the query function use
 * the 1.x `/write` and `/query` endpoints with token authentication. Only the loader, query and bootstrap functions'
 * security groups reach port 8086.
 *
 * Points: measurement = the dataset, tags = its identity dimensions, fields = its measures. Unlike LiveAnalytics, the
 * instance runs (and costs) all the time, sized by `instanceType` and `allocatedStorage`.
 *
 * @example
 * const store = new InfluxDbStore(stack, 'TimeSeries', { stage: PlatformStage.PROD, dataLake: lake, ledger });
 */
export class InfluxDbStore extends Construct implements ITimeSeriesStore, IMonitorable {
  public readonly engine = TimeSeriesEngines.INFLUXDB;
  /** Dataset ids with a measurement (the measurement name is the dataset id). */
  public readonly datasetIds: string[];
  /** The instance. */
  public readonly instance: timestream.CfnInfluxDBInstance;
  /** Name of the instance (the `DbInstanceName` dimension of its metrics). */
  public readonly instanceName: string;
  /** Base URL of the instance's HTTP API (`https://<endpoint>:8086`). */
  public readonly url: string;
  /** The VPC of the instance and the functions. */
  public readonly vpc: ec2.IVpc;
  /** The instance's security group (8086 from the functions' groups only). */
  public readonly securityGroup: ec2.ISecurityGroup;
  /** The admin's username and generated password (JSON `{ username, password }`). */
  public readonly adminSecret: secretsmanager.ISecret;
  /** The write token (SecretString), written by the bootstrap. */
  public readonly writeTokenSecret: secretsmanager.ISecret;
  /** The read token (SecretString), written by the bootstrap. */
  public readonly readTokenSecret: secretsmanager.ISecret;
  /** The InfluxDB organization the instance was created with. */
  public readonly organization: string;
  /** The InfluxDB bucket the instance was created with (every dataset a measurement in it). */
  public readonly bucketName: string;
  /** The 1.x database name mapped to the bucket (DBRP), used by the loader and the query function. */
  public readonly databaseName: string;
  /** The 1.x retention policy name of that mapping (InfluxDB's customary default). */
  public readonly retentionPolicy = 'autogen';
  /** Whether the loader also loads datasets outside `datasetIds` (each into a measurement named after it). */
  public readonly loadsOtherDatasets: boolean;
  /** Prefix in the failed bucket of points the engine rejected. */
  public readonly rejectedRecordsPrefix: string;

  public readonly ledger: IIngestionLedger;
  /** The loader (always set for this engine; optional only because `ITimeSeriesStore` allows a store without one). */
  public readonly loaderFunction?: lambda.IFunction;
  public readonly queryFunction: lambda.IFunction;

  private readonly stage: PlatformStage;
  private readonly lake: IDataLake;
  private readonly key: kms.IKey;
  private readonly subnets: ec2.SubnetSelection;
  private readonly batchLines: number;
  private readonly maxWritesInFlight: number;
  private readonly bootstrap: CustomResource;
  /** Interface endpoints by what they serve: every store function reads a secret, only the query function reads flags. */
  private readonly endpoints = new Map<'secrets' | 'flags', ec2.InterfaceVpcEndpoint>();
  private readonly dependables: Construct[] = [];
  private readonly inventoryOptions: TimeSeriesStoreBaseProps;
  private readonly bootstrapFunction: lambda.Function;
  /** The flow-log role and its log group, when the store created the VPC. */
  private flowLogs?: { readonly role: iam.IRole; readonly logGroup: logs.ILogGroup };

  constructor(scope: Construct, id: string, props: InfluxDbStoreProps) {
    super(scope, id);
    this.stage = props.stage;
    this.lake = props.dataLake;
    this.key = props.dataLake.encryptionKey;
    this.ledger = props.ledger;
    this.inventoryOptions = props;
    applyPlatformTags(this, this.stage);
    const production = !this.stage.allowDataRemoval;

    const instanceType = props.instanceType ?? (production ? 'db.influx.large' : 'db.influx.medium');
    if (!INSTANCE_TYPES.includes(instanceType)) throw new Error(`instanceType: expected one of ${INSTANCE_TYPES.join(', ')}, got '${instanceType}'`);
    const storageType = props.storageType ?? 'InfluxIOIncludedT1';
    if (!STORAGE_TYPES.includes(storageType)) throw new Error(`storageType: expected one of ${STORAGE_TYPES.join(', ')}, got '${storageType}'`);
    const storageGiB = props.allocatedStorage?.toGibibytes({ rounding: SizeRoundingBehavior.NONE }) ?? (production ? 100 : 20);
    const minimumGiB = storageType === 'InfluxIOIncludedT1' ? 20 : 400;
    if (!Number.isInteger(storageGiB) || storageGiB < minimumGiB || storageGiB > 15360) {
      throw new Error(`allocatedStorage: expected whole GiB from ${minimumGiB} to 15360 for ${storageType}, got ${storageGiB}`);
    }
    const multiAz = props.multiAz ?? production;
    const retentionSeconds = props.bucketRetention?.toSeconds() ?? 0;
    if (!Number.isInteger(retentionSeconds) || retentionSeconds < 0 || (retentionSeconds > 0 && retentionSeconds < 3600)) {
      throw new Error(`bucketRetention: expected at least one hour in whole seconds, got ${retentionSeconds} s`);
    }
    this.batchLines = props.batchLines ?? 5000;
    if (!Number.isInteger(this.batchLines) || this.batchLines < 1 || this.batchLines > 100_000) {
      throw new Error(`batchLines: expected an integer from 1 to 100000, got ${this.batchLines}`);
    }
    this.maxWritesInFlight = checkedMaxWritesInFlight(props.maxWritesInFlight, 4);
    this.organization = props.organization ?? 'ons';
    if (!/^[^\s"]{1,64}$/.test(this.organization)) throw new Error(`organization: expected 1-64 characters without spaces or quotes, got '${this.organization}'`);
    this.bucketName = props.bucketName ?? 'ons_data_platform';
    if (!/^[^_"][^"]{1,63}$/.test(this.bucketName)) throw new Error(`bucketName: expected 2-64 characters, no quote, not starting with '_', got '${this.bucketName}'`);
    this.databaseName = props.databaseName ?? `ons_data_platform_${this.stage.name.replace(/-/g, '_')}`;
    if (!/^[A-Za-z0-9_]{1,64}$/.test(this.databaseName)) throw new Error(`databaseName: expected 1-64 letters, digits or underscores, got '${this.databaseName}'`);

    const datasets = [...CATALOG.map((d) => d.id), ...(props.additionalDatasets ?? [])];
    for (const dataset of datasets) {
      if (!/^[a-z0-9_]{3,64}$/.test(dataset)) {
        throw new Error(`additionalDatasets: '${dataset}' is not an ONS dataset id (3-64 lower-case letters, digits, underscores)`);
      }
    }
    if (new Set(datasets).size !== datasets.length) throw new Error('additionalDatasets: a dataset is listed twice or is already in the catalog');
    this.datasetIds = datasets;
    this.loadsOtherDatasets = props.loadOtherDatasets ?? false;
    this.rejectedRecordsPrefix = rejectedRecordsPrefix(this.lake.rejectedRowsPrefix);

    // Network: the given VPC, or one with isolated subnets only (nothing reaches the internet, nothing from it).
    this.vpc = props.vpc ?? this.createVpc();
    this.subnets = props.vpcSubnets ?? {};
    const selected = this.vpc.selectSubnets(this.subnets);
    const publicIds = new Set(this.vpc.publicSubnets.map((s) => s.subnetId));
    if (selected.subnetIds.some((s) => publicIds.has(s))) throw new Error('vpcSubnets: the instance and the functions go in private subnets, not public ones');
    if (selected.subnetIds.length === 0) throw new Error('vpcSubnets: no subnet selected (the VPC needs private subnets)');
    const zones = new Set(selected.availabilityZones.filter((z) => !Token.isUnresolved(z)));
    if (multiAz && zones.size > 0 && zones.size < 2) throw new Error('multiAz: the standby needs subnets in two Availability Zones (vpcSubnets)');

    this.securityGroup = new ec2.SecurityGroup(this, 'InstanceSecurityGroup', {
      vpc: this.vpc,
      description: 'Timestream for InfluxDB instance: port 8086 from the store functions only',
      allowAllOutbound: false,
    });

    if (props.vpcEndpoints ?? !props.vpc) this.createEndpoints();

    this.adminSecret = new secretsmanager.Secret(this, 'AdminSecret', {
      description: `ONS data platform (${this.stage.name}): InfluxDB admin user and password`,
      encryptionKey: this.key,
      // Letters and digits only: nothing to escape in a dynamic reference, a Basic auth header or a shell.
      generateSecretString: { secretStringTemplate: JSON.stringify({ username: 'onsadmin' }), generateStringKey: 'password', excludePunctuation: true, passwordLength: 32 },
    });
    this.writeTokenSecret = this.tokenSecret('WriteToken', 'write');
    this.readTokenSecret = this.tokenSecret('ReadToken', 'read');
    for (const secret of [this.adminSecret, this.writeTokenSecret, this.readTokenSecret]) {
      applyDataRemovalPolicy(secret as secretsmanager.Secret, this.stage);
    }
    Validations.of(this.adminSecret).acknowledge(...['AwsSolutions-SMG4', 'NIST.800.53.R5-SecretsManagerRotationEnabled'].map((ruleId) => ({
      id: ruleId,
      reason: 'The admin password is set when the instance is created; rotating the secret alone would lock the bootstrap out. Change it in InfluxDB, then in the secret.',
    })));

    this.instanceName = instanceNameOf(this);
    const logBucket = this.lake.accessLogsBucket;
    const logDelivery = props.logDelivery ?? true;
    this.instance = new timestream.CfnInfluxDBInstance(this, 'Instance', {
      name: this.instanceName,
      dbInstanceType: instanceType,
      dbStorageType: storageType,
      allocatedStorage: storageGiB,
      deploymentType: multiAz ? 'WITH_MULTIAZ_STANDBY' : 'SINGLE_AZ',
      publiclyAccessible: false,
      networkType: 'IPV4',
      port: INFLUX_PORT,
      vpcSubnetIds: selected.subnetIds,
      vpcSecurityGroupIds: [this.securityGroup.securityGroupId],
      kmsKeyId: this.key.keyArn,
      username: 'onsadmin',
      // A dynamic reference: CloudFormation resolves it at deploy time, the template holds only the secret's ARN.
      password: this.adminSecret.secretValueFromJson('password').unsafeUnwrap(),
      organization: this.organization,
      bucket: this.bucketName,
      logDeliveryConfiguration: logDelivery ? { s3Configuration: { bucketName: logBucket.bucketName, enabled: true } } : undefined,
    });
    applyDataRemovalPolicy(this.instance, this.stage);
    Validations.of(this.instance).acknowledge({
      id: 'CloudFormation-Validate::F3002',
      reason: 'KmsKeyId (customer managed key for the instance storage) is in the resource\'s CloudFormation schema that aws-cdk-lib is generated from; the bundled validator\'s copy predates it.',
    });
    if (logDelivery) this.allowLogDelivery();
    this.url = `https://${this.instance.attrEndpoint}:${INFLUX_PORT}`;

    const bootstrapFunction = this.vpcFunction('BootstrapFunction', BootstrapFunction, {
      description: `ONS data platform (${this.stage.name}): InfluxDB bootstrap (tokens, DBRP mapping)`,
      service: MetricServices.TIME_SERIES,
      timeout: Duration.minutes(5),
    });
    this.adminSecret.grantRead(bootstrapFunction);
    for (const secret of [this.writeTokenSecret, this.readTokenSecret]) secret.grantRead(bootstrapFunction);
    // Only PutSecretValue (a new version), not the UpdateSecret family that Secret.grantWrite adds.
    bootstrapFunction.addToRolePolicy(new iam.PolicyStatement({
      actions: ['secretsmanager:PutSecretValue'],
      resources: [this.writeTokenSecret.secretArn, this.readTokenSecret.secretArn],
    }));
    bootstrapFunction.addToRolePolicy(new iam.PolicyStatement({
      actions: ['kms:GenerateDataKey'],
      resources: [this.key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` } },
    }));
    acknowledgeScopedWildcards(bootstrapFunction.role!);
    this.bootstrapFunction = bootstrapFunction;
    this.bootstrap = new CustomResource(this, 'Bootstrap', {
      serviceToken: bootstrapFunction.functionArn,
      resourceType: 'Custom::OnsInfluxDbBootstrap',
      properties: {
        Url: this.url,
        AdminSecretArn: this.adminSecret.secretArn,
        Organization: this.organization,
        Bucket: this.bucketName,
        Database: this.databaseName,
        RetentionPolicy: this.retentionPolicy,
        RetentionSeconds: String(retentionSeconds),
        WriteTokenSecretArn: this.writeTokenSecret.secretArn,
        WriteTokenDescription: `ons-data-platform ${this.stage.name} write ${this.bucketName}`,
        ReadTokenSecretArn: this.readTokenSecret.secretArn,
        ReadTokenDescription: `ons-data-platform ${this.stage.name} read ${this.bucketName}`,
      },
    });
    // Permissions and the paths to Secrets Manager and to the S3 response URL exist before the first call.
    this.bootstrap.node.addDependency(bootstrapFunction.role!, ...this.dependables);
    this.loaderFunction = this.createLoader(props);
    this.queryFunction = this.createQuery(props);
  }

  /** The bootstrap's outcome is a dependency of anything that uses the tokens. */
  public get bootstrapResource(): CustomResource {
    return this.bootstrap;
  }

  public grantWrite(grantee: iam.IGrantable): iam.Grant {
    this.allowConnectionsFrom(grantee);
    // Secrets Manager decrypts with the platform key on the caller's behalf: grantRead allows that (kms:ViaService).
    return this.writeTokenSecret.grantRead(grantee);
  }

  public grantRead(grantee: iam.IGrantable): iam.Grant {
    this.allowConnectionsFrom(grantee);
    return this.readTokenSecret.grantRead(grantee);
  }

  private createLoader(options: TimeSeriesStoreBaseProps): lambda.IFunction {
    const fn = this.vpcFunction('Loader', LoadFunction, {
      description: `ONS data platform (${options.stage.name}): time-series loader (Timestream for InfluxDB)`,
      service: MetricServices.TIME_SERIES,
      traceCalls: false, // data-heavy: see PlatformFunctionOptions.traceCalls
      timeout: Duration.minutes(15),
      memorySize: 1024,
      reservedConcurrentExecutions: options.reservedConcurrentExecutions,
      environment: {
        ...this.environment(this.writeTokenSecret),
        [InfluxDbEnv.BATCH_LINES]: String(this.batchLines),
        ...loaderEnvironment(options, this.rejectedRecordsPrefix, this.maxWritesInFlight),
      },
    }, options.stage);
    this.grantWrite(fn);
    grantLoaderLakeAccess(fn, options, this.rejectedRecordsPrefix);
    // Its token secret holds a token only once the bootstrap has run.
    fn.node.addDependency(this.bootstrap);
    return fn;
  }

  private createQuery(options: TimeSeriesStoreBaseProps): lambda.IFunction {
    const fn = this.vpcFunction('Query', QueryFunction, {
      description: `ONS data platform (${options.stage.name}): time-series queries (Timestream for InfluxDB)`,
      service: MetricServices.API,
      timeout: Duration.seconds(29),
      memorySize: 512,
      reservedConcurrentExecutions: options.reservedConcurrentExecutions,
      environment: {
        ...this.environment(this.readTokenSecret),
        [TimeSeriesEnv.MAX_POINTS]: '1000',
        // Inside the 29 s of the function and of API Gateway, so a stalled instance answers an error, not a timeout.
        [InfluxDbEnv.REQUEST_TIMEOUT_MS]: '20000',
      },
    }, options.stage);
    this.grantRead(fn);
    // The query function reads the feature flags (AppConfig Data) too.
    this.allowConnectionsFrom(fn, ['flags']);
    acknowledgeScopedWildcards(fn.role!);
    fn.node.addDependency(this.bootstrap);
    options.featureFlags?.bind(fn);
    return fn;
  }

  /**
   * The health check asks the control plane (GetDbInstance), outside the VPC: up when the instance is AVAILABLE.
   */
  public healthProbe(): IHealthProbe {
    return {
      config: { engine: this.engine, instanceId: this.instance.attrId },
      grant: (grantee) => {
        grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['timestream-influxdb:GetDbInstance'], resources: [this.instance.attrArn] }));
      },
    };
  }

  /**
   * The calls of the store's functions, for the permission-closure test (test/permissions/closure.test.ts).
   * @internal
   */
  public _permissionInventory(): CallerInventory[] {
    const key = this.key.keyArn;
    const readSecret = (secret: secretsmanager.ISecret): AwsCall => ({ action: 'secretsmanager:GetSecretValue', resource: secret.secretArn, kmsKey: key });
    const subnets = this.vpc.selectSubnets(this.subnets).subnetIds;
    const vpcFunction = (fn: lambda.Function): AwsCall[] => [...functionRuntimeCalls(fn),
      ...vpcNetworkCalls(Stack.of(this), subnets, fn.connections.securityGroups.map((g) => g.securityGroupId))];
    const loader = this.loaderFunction as lambda.Function;
    const query = this.queryFunction as lambda.Function;
    return [
      {
        name: 'time-series InfluxDB bootstrap',
        principal: this.bootstrapFunction.role!,
        calls: [...vpcFunction(this.bootstrapFunction), readSecret(this.adminSecret),
          ...[this.writeTokenSecret, this.readTokenSecret].flatMap((s) => [readSecret(s),
            { action: 'secretsmanager:PutSecretValue', resource: s.secretArn, kmsKey: key }])],
      },
      {
        name: 'time-series loader (InfluxDB)',
        principal: loader.role!,
        calls: [...vpcFunction(loader), readSecret(this.writeTokenSecret), ...loaderLakeCalls(this.inventoryOptions, this.rejectedRecordsPrefix)],
      },
      {
        name: 'time-series query (InfluxDB)',
        principal: query.role!,
        calls: [...vpcFunction(query), readSecret(this.readTokenSecret),
          ...(this.inventoryOptions.featureFlags as { _readCalls?: () => AwsCall[] } | undefined)?._readCalls?.() ?? []],
      },
      // VPC flow logs create a stream in the log group, check it exists and write records into it.
      ...(this.flowLogs ? [{
        name: 'VPC flow logs (InfluxDB store)',
        principal: this.flowLogs.role,
        calls: ['CreateLogStream', 'DescribeLogStreams', 'PutLogEvents'].map((a) => ({ action: `logs:${a}`, resource: this.flowLogs!.logGroup.logGroupArn })),
      }] : []),
    ];
  }

  /** The health probe's calls (see `healthProbe()`). @internal */
  public _healthProbeCalls(): AwsCall[] {
    return [{ action: 'timestream-influxdb:GetDbInstance', resource: this.instance.attrArn }];
  }

  /** Measure values the loader wrote to InfluxDB (Sum over 5 minutes; the stage's metric, `service` = `timeseries`). */
  public metricPointsWritten(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return platformMetric(this.stage.name, PlatformMetrics.POINTS_WRITTEN, props);
  }

  /** Records InfluxDB refused, kept with the reason under `rejectedRecordsPrefix` (Sum over 5 minutes; the stage's metric). */
  public metricPointsRejected(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return platformMetric(this.stage.name, PlatformMetrics.POINTS_REJECTED, props);
  }

  /** CPU and memory at the `storeUtilizationPercent` threshold are warnings; the disk is critical (a full disk stops every write). */
  public addMonitoring(monitor: IMonitor): void {
    const { period, storeUtilizationPercent: limit } = monitor.thresholds;
    const families: Array<[string, cloudwatch.Metric, AlarmSeverity, string]> = [
      ['CpuUtilization', this.metricCpuUtilization({ period }), AlarmSeverity.WARNING, 'CPU'],
      ['MemoryUtilization', this.metricMemoryUtilization({ period }), AlarmSeverity.WARNING, 'memory'],
      ['DiskUtilization', this.metricDiskUtilization({ period, statistic: 'Maximum' }), AlarmSeverity.CRITICAL, 'disk'],
    ];
    for (const [id, metric, severity, what] of families) {
      monitor.addAlarm(this, id, {
        severity,
        metric,
        threshold: limit,
        description: `Timestream for InfluxDB ${this.instanceName}: ${what} utilization at or above ${limit}% over ${period.toHumanString()}`,
      });
    }
    monitor.addWidgets(DashboardSection.TIME_SERIES_STORE, new cloudwatch.GraphWidget({
      title: 'Timestream for InfluxDB: CPU, memory and disk (%)', left: families.map(([, m]) => m), right: [this.metricWriteOpsPerSec({ period })], width: 12,
    }));
  }

  /** A metric of the instance (namespace `AWS/TimestreamInfluxDB`, dimension `DbInstanceName`), 5-minute average by default. */
  public metric(metricName: string, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { DbInstanceName: this.instanceName },
      statistic: cloudwatch.Stats.AVERAGE,
      period: Duration.minutes(5),
      ...props,
    });
  }

  /** CPU in use, percent. */
  public metricCpuUtilization(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('CPUUtilization', { unit: cloudwatch.Unit.PERCENT, ...props });
  }

  /** Memory in use, percent. */
  public metricMemoryUtilization(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('MemoryUtilization', { unit: cloudwatch.Unit.PERCENT, ...props });
  }

  /** Disk space in use, percent: writes fail when it is full. */
  public metricDiskUtilization(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('DiskUtilization', { unit: cloudwatch.Unit.PERCENT, ...props });
  }

  /** Write operations per second on the instance's storage (compare with the storage type's IOPS). */
  public metricWriteOpsPerSec(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('WriteOpsPerSec', { unit: cloudwatch.Unit.COUNT_PER_SECOND, ...props });
  }

  private environment(token: secretsmanager.ISecret): Record<string, string> {
    const measurements = Object.fromEntries(this.datasetIds.map((d) => [d, d]));
    return {
      [TimeSeriesEnv.DATABASE]: this.databaseName,
      [TimeSeriesEnv.TABLES]: JSON.stringify(measurements),
      // For InfluxDB any value turns it on: each such dataset gets a measurement named after its id.
      ...(this.loadsOtherDatasets ? { [TimeSeriesEnv.CATCH_ALL_TABLE]: 'true' } : {}),
      [InfluxDbEnv.URL]: this.url,
      [InfluxDbEnv.RETENTION_POLICY]: this.retentionPolicy,
      [InfluxDbEnv.TOKEN_SECRET_ARN]: token.secretArn,
    };
  }

  /** A platform function in the store's subnets, with its own security group allowed to 8086 and to HTTPS. */
  private vpcFunction<T extends lambda.Function>(
    id: string, functionClass: new (scope: Construct, id: string, props?: lambda.FunctionOptions) => T,
    options: {
      description: string;
      service: typeof MetricServices[keyof typeof MetricServices];
      timeout: Duration;
      memorySize?: number;
      reservedConcurrentExecutions?: number;
      environment?: Record<string, string>;
      traceCalls?: boolean;
    },
    stage: PlatformStage = this.stage,
  ): T {
    const group = new ec2.SecurityGroup(this, `${id}SecurityGroup`, {
      vpc: this.vpc,
      description: `${options.description}: HTTPS to AWS services and 8086 to the instance only`,
      allowAllOutbound: false,
    });
    // In isolated subnets 443 reaches only the VPC endpoints (interface ones, and the S3/DynamoDB gateway routes).
    group.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS services through the VPC endpoints');
    const fn = createPlatformFunction(this, id, functionClass, {
      ...options,
      stage,
      encryptionKey: this.key,
      vpc: this.vpc,
      vpcSubnets: this.subnets,
      securityGroups: [group],
    });
    this.allowConnectionsFrom(fn);
    fn.node.addDependency(...this.dependables);
    return fn;
  }

  /** 8086 from the grantee's security groups (a function in the VPC), and HTTPS to the endpoints it uses. */
  private allowConnectionsFrom(grantee: iam.IGrantable, uses: Array<'secrets' | 'flags'> = ['secrets']): void {
    const connections = (grantee as Partial<ec2.IConnectable>).connections;
    if (!(connections instanceof ec2.Connections)) return;
    for (const group of connections.securityGroups) {
      this.securityGroup.connections.allowFrom(group, ec2.Port.tcp(INFLUX_PORT), 'InfluxDB HTTP API from a store function');
      for (const use of uses) this.endpoints.get(use)?.connections.allowDefaultPortFrom(group, `HTTPS to the ${use} endpoint from a store function`);
    }
  }

  private createVpc(): ec2.IVpc {
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
    });
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', { retention: this.stage.logRetention, encryptionKey: this.key });
    applyDataRemovalPolicy(flowLogs, this.stage);
    const role = new iam.Role(this, 'FlowLogsRole', {
      assumedBy: new iam.ServicePrincipal('vpc-flow-logs.amazonaws.com'),
      description: 'VPC flow logs of the InfluxDB store: rejected traffic to its log group',
    });
    vpc.addFlowLog('RejectedTraffic', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs, role),
      trafficType: ec2.FlowLogTrafficType.REJECT,
    });
    this.flowLogs = { role, logGroup: flowLogs };
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::<' + Stack.of(this).getLogicalId(flowLogs.node.defaultChild as logs.CfnLogGroup) + '.Arn>:*]',
      reason: 'VPC flow logs write log streams, named at run time, of this one log group.',
    });
    return vpc;
  }

  /**
   * Gateway endpoints (no hourly cost) for S3 (the loader's reads and writes, CloudFormation's response URL) and
   * DynamoDB (the ledger); interface endpoints for Secrets Manager (tokens, admin secret) and AppConfig Data (the query
   * function's feature flags). Lambda delivers the functions' logs itself, so no CloudWatch Logs endpoint; nothing calls KMS
   * directly (Secrets Manager and S3 decrypt on the caller's behalf).
   */
  private createEndpoints(): void {
    const subnets = [this.subnets];
    this.dependables.push(
      this.vpc.addGatewayEndpoint('S3Endpoint', { service: ec2.GatewayVpcEndpointAwsService.S3, subnets }),
      this.vpc.addGatewayEndpoint('DynamoDbEndpoint', { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB, subnets }),
    );
    for (const [use, id, service] of [['secrets', 'SecretsManagerEndpoint', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
      ['flags', 'AppConfigDataEndpoint', ec2.InterfaceVpcEndpointAwsService.APPCONFIGDATA]] as const) {
      const endpoint = this.vpc.addInterfaceEndpoint(id, { service, subnets: this.subnets, open: false, privateDnsEnabled: true });
      this.endpoints.set(use, endpoint);
      this.dependables.push(endpoint);
    }
  }

  /** The service writes `InfluxLogs/*` objects, encrypted by the bucket's default key (the lake key). */
  private allowLogDelivery(): void {
    const stack = Stack.of(this);
    const principal = new iam.ServicePrincipal('timestream-influxdb.amazonaws.com');
    const bucket = this.lake.accessLogsBucket;
    const result = bucket.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AllowTimestreamInfluxDbLogDelivery',
      principals: [principal],
      actions: ['s3:PutObject'],
      resources: [bucket.arnForObjects('InfluxLogs/*')],
      conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
    }));
    this.key.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AllowTimestreamInfluxDbLogDeliveryEncryption',
      principals: [principal],
      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
      resources: ['*'], // in a key policy, '*' means this key
      conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
    }));
    // The bucket policy must exist before the instance is created.
    if (result.policyDependable) this.instance.node.addDependency(result.policyDependable);
  }

  private tokenSecret(id: string, action: string): secretsmanager.Secret {
    const secret = new secretsmanager.Secret(this, id, {
      description: `ONS data platform (${this.stage.name}): InfluxDB ${action} token on bucket ${this.bucketName} (written by the bootstrap)`,
      encryptionKey: this.key,
      // A placeholder until the bootstrap writes the token: never a valid token.
      generateSecretString: { excludePunctuation: true, passwordLength: 32 },
    });
    Validations.of(secret).acknowledge(...['AwsSolutions-SMG4', 'NIST.800.53.R5-SecretsManagerRotationEnabled'].map((ruleId) => ({
      id: ruleId,
      reason: 'The token is rotated by the bootstrap (a stack update that changes its description or secret creates a new token and deletes the old one); Secrets Manager rotation cannot create InfluxDB tokens.',
    })));
    return secret;
  }
}

/** A name the service accepts (3-40 characters, a letter first, letters, digits and single hyphens), unique in the account. */
function instanceNameOf(scope: Construct): string {
  const raw = Names.uniqueResourceName(scope, { maxLength: 40, separator: '-' });
  const name = raw.replace(/[^A-Za-z0-9-]/g, '').replace(/-+/g, '-').replace(/^[^A-Za-z]+/, '').replace(/-+$/, '');
  return name.length >= 3 ? name : `ons-${name}`.slice(0, 40);
}

/**
 * What Lambda does with a VPC function's role: creates its network interfaces in the function's subnets with its
 * security groups, describes and deletes them, and assigns their addresses (Describe* supports no resource scoping).
 */
function vpcNetworkCalls(stack: Stack, subnetIds: string[], securityGroupIds: string[]): AwsCall[] {
  const ec2Arn = (resource: string) => stack.formatArn({ service: 'ec2', resource });
  const eni = ec2Arn('network-interface/eni-1');
  return [
    ...[eni, ...subnetIds.map((s) => ec2Arn(`subnet/${s}`)), ...securityGroupIds.map((g) => ec2Arn(`security-group/${g}`))]
      .map((resource) => ({ action: 'ec2:CreateNetworkInterface', resource })),
    ...['DeleteNetworkInterface', 'AssignPrivateIpAddresses', 'UnassignPrivateIpAddresses'].map((a) => ({ action: `ec2:${a}`, resource: eni })),
    ...['DescribeNetworkInterfaces', 'DescribeSubnets'].map((a) => ({ action: `ec2:${a}`, resource: '*' })),
  ];
}
