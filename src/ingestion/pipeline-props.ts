import { Duration, Size } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { IFeatureFlags } from '../core/flags';
import { SafeDeployment } from '../core/safe-deployment';
import { PlatformStage } from '../core/stage';
import { IKnowledgeBase } from '../knowledge/knowledge-base-ref';
import { IDataLake } from '../lake/data-lake';
import { IIngestionLedger } from '../ledger/ingestion-ledger';
import { ITimeSeriesStore } from '../timeseries/store';

/**
 * Retrieval tier of a restore from S3 Glacier Flexible Retrieval or Deep Archive (Deep Archive has no Expedited tier).
 */
export enum RestoreTier {
  /** Deep Archive: typically within 12 hours; Glacier Flexible Retrieval: 3–5 hours. */
  STANDARD = 'Standard',
  /** The cheapest. Deep Archive: typically within 48 hours; Glacier Flexible Retrieval: 5–12 hours. */
  BULK = 'Bulk',
}

/**
 * The network the Batch jobs of large files run in, when the pipeline creates it (see
 * `LargeFileProcessingOptions.network`; give `vpc` to use your own).
 */
export class BatchNetwork {
  /**
   * Public subnets without a NAT gateway and without interface endpoints: costs nothing while no job runs. Each
   * job gets a public IPv4 address for its run (billed per hour while assigned), and a security group with no inbound
   * rule and HTTPS-only egress; S3 and DynamoDB go through (free) gateway endpoints. The subnets assign no public IP
   * on launch: only the jobs ask for one.
   *
   * Amazon VPC pricing (Public IPv4 Address): USD 0.005 per address-hour, for addresses in use or idle, so a
   * job's address costs only while the job runs. AWS Batch API reference (NetworkConfiguration): a Fargate job
   * reaches the internet (to pull its image) with a public IP, or through a NAT gateway from a private subnet.
   */
  public static publicEgress(): BatchNetwork {
    return new BatchNetwork('publicEgress');
  }

  /**
   * Isolated subnets (no route to the internet): gateway endpoints for S3 and DynamoDB, interface endpoints for ECR
   * (API and Docker) and CloudWatch Logs in two Availability Zones (billed per hour: about USD 44 a month idle in
   * us-east-1), and an ECR pull-through cache rule for ECR Public, so the job image comes from this account's
   * private registry (interface endpoints do not serve ECR Public). The ECR user guide (interface VPC endpoints)
   * says the first pull of an image through such a rule over interface endpoints needs an internet route, so jobs
   * fail with `CannotPullContainerError` until the cache holds the image: before the first large file, pull it once
   * through the cache from a machine with internet access (the README shows how), or give `image` from a private
   * repository of yours. That is why this is not the default.
   *
   * AWS PrivateLink pricing: an interface endpoint is billed per hour in each Availability Zone while it exists
   * (USD 0.01 in us-east-1), whether used or not.
   */
  public static isolated(): BatchNetwork {
    return new BatchNetwork('isolated');
  }

  /**
   * @param kind `publicEgress` or `isolated`
   */
  private constructor(
    /** Which network: `publicEgress` or `isolated`. */
    public readonly kind: string,
  ) {}
}

/**
 * How tabular files above the Lambda threshold are processed: AWS Batch on Fargate, running the same
 * bundled processing code as the processor function. The job runs a published Node.js image; the code is a
 * file asset it downloads and verifies at start, so neither synth nor `cdk deploy` needs Docker.
 */
export interface LargeFileProcessingOptions {
  /**
   * Process large files at all. When `false`, no Batch resources (and no VPC) are created and a
   * tabular file above `lambdaMaxFileSize` is quarantined and notified, with a reason that says how to
   * load it (raise `lambdaMaxFileSize`, or enable this, then backfill the file).
   *
   * @default true
   */
  readonly enabled?: boolean;

  /**
   * The network the pipeline creates for the jobs (give this or `vpc`, not both).
   *
   * @default - `BatchNetwork.publicEgress()` in every stage: nothing billed while idle, and the first job can
   * pull its image (an isolated network cannot, until its pull-through cache holds the image)
   */
  readonly network?: BatchNetwork;

  /**
   * Your own VPC for the Fargate jobs, instead of one the pipeline creates. The jobs need to reach S3,
   * DynamoDB, CloudWatch Logs and the registry of `image` (ECR Public by default): through VPC endpoints,
   * a NAT gateway, or public subnets with `assignPublicIp`.
   *
   * @default - a new VPC, as `network` says
   */
  readonly vpc?: ec2.IVpc;

  /**
   * Subnets of `vpc` for the jobs.
   *
   * @default - the private subnets of `vpc` (isolated ones when it has no subnets with egress)
   */
  readonly vpcSubnets?: ec2.SubnetSelection;

  /**
   * Give each job a public IPv4 address (for public subnets of your own `vpc`).
   *
   * @default - true with `BatchNetwork.publicEgress()`, false otherwise
   */
  readonly assignPublicIp?: boolean;

  /**
   * The image the jobs run. It must have `node` (Node.js 24 or later) on its PATH: the job command is
   * `node -e <bootstrap>`, which downloads the processing code (a file asset) and runs it. With
   * `BatchNetwork.isolated()`, the default image is pulled through this account's ECR pull-through cache.
   *
   * @default - the pinned Node.js 24 Debian bookworm-slim image of the Docker official images on ECR Public
   * (`public.ecr.aws/docker/library/node:<version>-bookworm-slim`)
   */
  readonly image?: ecs.ContainerImage;

  /**
   * vCPUs of one job (a Fargate value: 0.25, 0.5, 1, 2, 4, 8 or 16).
   *
   * @default 2
   */
  readonly cpu?: number;

  /**
   * Memory of one job (must suit `cpu` under Fargate's rules).
   *
   * @default Size.gibibytes(8)
   */
  readonly memory?: Size;

  /**
   * Ephemeral storage of one job: the source file and the outputs are written there (21–200 GiB).
   *
   * @default Size.gibibytes(100)
   */
  readonly ephemeralStorage?: Size;

  /**
   * Largest number of vCPUs the compute environment runs at once.
   *
   * @default 16
   */
  readonly maxvCpus?: number;

  /**
   * Run jobs on Fargate Spot (cheaper, may be interrupted; interrupted jobs are retried).
   *
   * @default false
   */
  readonly spot?: boolean;

  /**
   * Time after which a job is stopped.
   *
   * @default Duration.hours(6)
   */
  readonly jobTimeout?: Duration;

  /**
   * Attempts per job (1–10). A job that exits with status 2 (the file is refused) is never retried.
   *
   * @default 3
   */
  readonly attempts?: number;
}

/**
 * Options of the ingestion pipeline (what `OnsDataPlatform` passes through).
 */
export interface IngestionOptions {
  /**
   * Only objects whose key starts with this prefix start an ingestion.
   *
   * @default - every object of the raw bucket
   */
  readonly keyPrefix?: string;

  /**
   * Only objects whose key ends with one of these suffixes (e.g. `.csv`; case-insensitive alone,
   * case-sensitive together with `keyPrefix`, where EventBridge needs a wildcard filter) start an
   * ingestion. Others are not even routed; without this filter, unsupported files are quarantined.
   *
   * @default - every object of the raw bucket
   */
  readonly keySuffixes?: string[];

  /**
   * File extensions (without the dot) processed as tabular data (the format is recognised by content:
   * XLSX, Parquet, else CSV). Add `txt` here for CSV exports named `.txt`; it then leaves the default
   * `documentExtensions`.
   *
   * @default ['csv', 'xlsx', 'parquet']
   */
  readonly tabularExtensions?: string[];

  /**
   * File extensions (without the dot) copied to the knowledge-base documents prefix.
   *
   * @default ['pdf', 'docx', 'md', 'txt', 'html', 'htm'], less any extension in `tabularExtensions`
   */
  readonly documentExtensions?: string[];

  /**
   * Largest tabular file processed by the processor function; larger files go to AWS Batch. The
   * function's ephemeral storage is sized from it (the file and its outputs are written there).
   * At most 3 GiB.
   *
   * @default Size.mebibytes(256)
   */
  readonly lambdaMaxFileSize?: Size;

  /**
   * Largest expanded size of the parts of an XLSX workbook that are read (the sheet, its shared strings, styles and
   * the workbook part), against zip bombs. The router reads it from the workbook's zip directory (ranged reads of the
   * object's tail) and quarantines a larger workbook at once, with a reason naming this prop; the processor and the
   * Batch job also refuse a part that expands past it while inflating. Memory does not grow with the sheet (it is
   * inflated and parsed chunk by chunk, as a CSV is streamed) and the expanded bytes never touch the disk, so the limit
   * guards processing time: 2 GiB is above any sheet Excel can hold with ONS-shaped rows (a sheet has at most
   * 1,048,576 rows; CURVA_CARGA's 4 columns take 177 bytes a row, so 185 MB, and 12-column GERACAO_USINA rows a
   * few times that), and reading it takes a few minutes (about 15 MB of expanded sheet per second, measured by
   * `npm run bench:xlsx`). Only the shared strings are held in memory (cells refer to them by index); they count
   * against this limit too, so keep it within what the processor's memory can hold.
   *
   * @default IngestionPipeline.DEFAULT_MAX_XLSX_EXPANDED_SIZE (2 GiB)
   */
  readonly maxXlsxExpandedSize?: Size;

  /**
   * Memory of the processor function (128–10240 MiB; CPU grows with it).
   *
   * @default 3008
   */
  readonly processorMemorySize?: number;

  /**
   * Timeout of the processor function (at most 15 minutes).
   *
   * @default Duration.minutes(15)
   */
  readonly processorTimeout?: Duration;

  /**
   * Ephemeral storage (`/tmp`) of the processor function (512 MiB – 10 GiB).
   *
   * @default - three times `lambdaMaxFileSize` plus 512 MiB, at most 10 GiB
   */
  readonly processorEphemeralStorage?: Size;

  /**
   * Large-file processing on AWS Batch.
   *
   * @default - enabled, with the defaults of `LargeFileProcessingOptions`
   */
  readonly largeFileProcessing?: LargeFileProcessingOptions;

  /**
   * Concurrent child executions of the backfill state machine (1–10000).
   *
   * @deprecated the backfill now runs the reprocessing state machine: use `reprocessMaxConcurrency`
   * (this value is taken when that one is not set).
   * @default - `reprocessMaxConcurrency`
   */
  readonly backfillMaxConcurrency?: number;

  /**
   * How long a processed file whose time-series load is throttled keeps being loaded again before it is
   * quarantined (5 minutes to 7 days). When the loader's in-Lambda throttle budget is spent
   * (`TimeSeriesThrottled`), the file's ledger status becomes `retryLater` and its execution waits 5
   * minutes, then 10, 20, 40 and 60 minutes per attempt, each wait plus up to a minute of jitter, until
   * the waits add up to this period; then the file is quarantined with a reason that says throttling.
   * The default is twice the 6 hours that Timestream for LiveAnalytics says magnetic-store partition
   * throttling may take to resolve.
   *
   * @default Duration.hours(12)
   */
  readonly throttledLoadRetryPeriod?: Duration;

  /**
   * Files the reprocessing state machine (and so the backfill) ingests at once (1–10000, the Distributed Map's
   * limit of concurrent child executions): each runs one execution of the ingestion state machine. The default
   * follows what the time-series store can absorb (see the README, "Reprocessing").
   *
   * @default - 10 without a time-series store or with the lake engine (`LakeStore`: nothing is loaded, the processors
   * write the Parquet the store reads); 2 with Timestream for LiveAnalytics (history lands in the magnetic
   * store, whose writes are throttled by the number of partitions receiving data, a throttle that can take up to
   * 6 hours to clear); 4 with Timestream for InfluxDB (one instance takes every write)
   */
  readonly reprocessMaxConcurrency?: number;

  /**
   * Retrieval tier of the RestoreObject requests reprocessing sends for raw objects in S3 Glacier Flexible Retrieval
   * or Deep Archive. Deep Archive restores typically complete within 12 hours (Standard) or 48 hours (Bulk); Bulk
   * costs about an eighth of Standard per GB. Deep Archive has no Expedited tier.
   *
   * @default RestoreTier.STANDARD
   */
  readonly restoreTier?: RestoreTier;

  /**
   * Days a restored copy of an archived raw object stays readable (a whole number, at least 1). The copy is billed
   * at S3 Standard rates for those days, on top of the archived object.
   *
   * @default 7
   */
  readonly restoreDays?: number;

  /**
   * How long reprocessing waits between two checks (HeadObject) of a restore under way (1 minute to 24 hours).
   *
   * @default - Duration.hours(1) for the Standard tier, Duration.hours(4) for Bulk
   */
  readonly restorePollInterval?: Duration;

  /**
   * How long reprocessing waits for a restore before it reports the file `failed` (at least `restorePollInterval`).
   *
   * @default - twice the documented Deep Archive restore time of the tier: Duration.hours(24) for Standard,
   * Duration.hours(96) for Bulk
   */
  readonly restoreTimeout?: Duration;

  /**
   * Where failures (quarantined files) are notified.
   *
   * @default - a new KMS-encrypted topic, `notificationTopic`
   */
  readonly notificationTopic?: sns.ITopic;

  /**
   * Concurrent executions reserved for each function of the pipeline.
   *
   * @default - no reservation
   */
  readonly reservedConcurrentExecutions?: number;

  /**
   * The feature flags the router (`largeFileBatch`, `knowledgeBaseSync`) reads (`FeatureFlags`, or your own `IFeatureFlags`); bound when the function is made.
   *
   * @default - no flags: the handler treats every flag as on
   */
  readonly featureFlags?: IFeatureFlags;
}

/**
 * Properties of `IngestionPipeline`.
 */
export interface IngestionPipelineProps extends IngestionOptions {
  /** The stage: log retention, tracing, removal policy and other defaults come from it. */
  readonly stage: PlatformStage;

  /** The data lake whose raw bucket feeds the pipeline and whose other buckets receive the results. */
  readonly dataLake: IDataLake;

  /**
   * Where LoadTimeSeries writes the processed points.
   *
   * @default - no store: LoadTimeSeries passes through
   */
  readonly timeSeriesStore?: ITimeSeriesStore;

  /**
   * The ledger to record in (e.g. `IngestionLedger.fromLedgerAttributes()`, or the one `OnsDataPlatform` makes first).
   *
   * @default - the time-series store's ledger when there is a store, otherwise a new ledger encrypted with the lake's key
   */
  readonly ledger?: IIngestionLedger;

  /**
   * The knowledge base SyncKnowledgeBase starts ingestion jobs of: the data cards source after a
   * processed file, the documents source after a copied document.
   *
   * @default - no knowledge base: SyncKnowledgeBase passes through
   */
  readonly knowledgeBase?: IKnowledgeBase;

  /**
   * Publishes the router, processor, document-copy, quarantine and time-series loader functions through
   * aliases and CodeDeploy; the state machine's tasks then invoke the aliases.
   *
   * @default - no gradual deployment: the tasks invoke the functions' `$LATEST`
   */
  readonly safeDeployment?: SafeDeployment;
}
