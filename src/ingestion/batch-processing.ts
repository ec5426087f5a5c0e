import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Duration, Size, Stack, Token, Validations } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { IngestionEnv } from './contract';
import { BatchNetwork, LargeFileProcessingOptions } from './pipeline-props';
import { operationsEnvironment } from '../core/defaults';
import type { AwsCall, CallerInventory } from '../core/permissions';
import { applyDataRemovalPolicy } from '../core/removal';
import { PlatformStage } from '../core/stage';
import { MetricServices, metricsNamespace, PlatformMetrics } from '../runtime/contract';

const BATCH_ASSETS = path.join(__dirname, '..', '..', 'assets', 'ingestion', 'batch');
/** The job's processing code (the bundled entrypoint, built by `npx projen bundle`): a file asset, no Docker build. */
export const BATCH_CODE_FILE = path.join(BATCH_ASSETS, 'entrypoint', 'index.js');
/** The job's command program (`node -e`): downloads, verifies and runs the code (src/ingestion/batch/bootstrap.ts). */
export const BATCH_BOOTSTRAP_FILE = path.join(BATCH_ASSETS, 'bootstrap', 'index.js');

/**
 * Node.js version of the default job image. Bumped with the Lambda runtime (NODEJS_24_X, the target the code is
 * bundled for: a test checks both majors agree). 24.11.1 is the first patch of the 24 LTS line (November 2025); the Docker
 * official images publish `24.11.1-bookworm-slim`, mirrored on ECR Public, and a pinned tag never moves.
 */
export const BATCH_NODE_VERSION = '24.11.1';
/** The Docker official Node.js images, as ECR Public serves them (and as a pull-through cache rule maps them). */
export const BATCH_IMAGE_REPOSITORY = 'docker/library/node';
/** Debian 12 slim: the smallest official variant with glibc (the bundled code needs nothing else). */
export const BATCH_IMAGE_TAG = `${BATCH_NODE_VERSION}-bookworm-slim`;
/** The default job image. */
export const BATCH_PUBLIC_IMAGE = `public.ecr.aws/${BATCH_IMAGE_REPOSITORY}:${BATCH_IMAGE_TAG}`;

/** AWS Batch service quotas: "Maximum job definition size (for RegisterJobDefinition API operations): 24 KiB". */
export const BATCH_MAX_JOB_DEFINITION_BYTES = 24 * 1024;

const FARGATE_CPUS = [0.25, 0.5, 1, 2, 4, 8, 16];

/** @internal */
export interface BatchFileProcessingProps extends LargeFileProcessingOptions {
  readonly stage: PlatformStage;
  readonly encryptionKey: kms.IKey;
  readonly environment: Record<string, string>;
}

/**
 * Fargate compute environment, job queue and job definition that run the processing code on files
 * too large for Lambda.
 * @internal
 */
export class BatchFileProcessing extends Construct {
  public readonly vpc: ec2.IVpc;
  public readonly computeEnvironment: batch.FargateComputeEnvironment;
  public readonly jobQueue: batch.JobQueue;
  public readonly jobDefinition: batch.EcsJobDefinition;
  /** The role the job's code runs with. */
  public readonly jobRole: iam.Role;
  /** The ECR pull-through cache rule of the default image (`BatchNetwork.isolated()` only). */
  public readonly imageCacheRule?: ecr.CfnPullThroughCacheRule;
  /** What the execution role and the flow-log role act on, for `_permissionInventory()`. */
  private readonly inventory: {
    executionRole?: iam.IRole; jobLogGroup?: logs.ILogGroup; repositoryArn?: string; flowLog?: ec2.FlowLog; flowLogGroup?: logs.ILogGroup;
  } = {};

  constructor(scope: Construct, id: string, props: BatchFileProcessingProps) {
    super(scope, id);
    const cpu = props.cpu ?? 2;
    if (!FARGATE_CPUS.includes(cpu)) {
      throw new Error(`largeFileProcessing.cpu: expected one of ${FARGATE_CPUS.join(', ')} (Fargate vCPU values), got ${cpu}`);
    }
    const storage = props.ephemeralStorage ?? Size.gibibytes(100);
    const storageGiB = storage.toGibibytes({ rounding: 2 });
    if (!Token.isUnresolved(storageGiB) && (storageGiB < 21 || storageGiB > 200)) {
      throw new Error(`largeFileProcessing.ephemeralStorage: Fargate allows 21–200 GiB, got ${storageGiB} GiB`);
    }
    const attempts = props.attempts ?? 3;
    if (!Number.isInteger(attempts) || attempts < 1 || attempts > 10) {
      throw new Error(`largeFileProcessing.attempts: expected an integer from 1 to 10, got ${attempts}`);
    }

    if (props.vpc && props.network) {
      throw new Error('largeFileProcessing.network: give `network` (a VPC the pipeline creates) or `vpc` (your own), not both');
    }
    // Public egress in every stage: an isolated network cannot make the first pull of its image (see BatchNetwork.isolated).
    const network = props.vpc ? undefined : props.network ?? BatchNetwork.publicEgress();
    const publicEgress = network?.kind === 'publicEgress';
    this.vpc = props.vpc ?? this.createVpc(props, publicEgress);
    const securityGroup = new ec2.SecurityGroup(this, 'JobSecurityGroup', {
      vpc: this.vpc,
      description: 'ONS ingestion Batch jobs: no inbound, HTTPS out to AWS endpoints only',
      allowAllOutbound: false,
    });
    securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS service endpoints');

    this.computeEnvironment = new batch.FargateComputeEnvironment(this, 'ComputeEnvironment', {
      vpc: this.vpc,
      vpcSubnets: props.vpcSubnets ?? (publicEgress ? { subnetType: ec2.SubnetType.PUBLIC } : undefined),
      securityGroups: [securityGroup],
      maxvCpus: props.maxvCpus ?? 16,
      spot: props.spot ?? false,
    });
    this.jobQueue = new batch.JobQueue(this, 'JobQueue', {
      computeEnvironments: [{ computeEnvironment: this.computeEnvironment, order: 1 }],
    });

    const logGroup = new logs.LogGroup(this, 'JobLogGroup', { retention: props.stage.logRetention, encryptionKey: props.encryptionKey });
    applyDataRemovalPolicy(logGroup, props.stage);
    // The awslogs driver does not extract embedded metric format (only Lambda and the CloudWatch agent do):
    // metric filters turn the job's EMF documents into the same metrics the Lambda processor publishes.
    for (const metric of [PlatformMetrics.RECORDS_PROCESSED, PlatformMetrics.RECORDS_REJECTED]) {
      logGroup.addMetricFilter(`${metric.name}Filter`, {
        filterPattern: logs.FilterPattern.numberValue(`$.${metric.name}`, '>=', 0), // a number: counts are never negative
        metricNamespace: metricsNamespace(props.stage.name),
        metricName: metric.name,
        metricValue: `$.${metric.name}`,
        dimensions: { service: '$.service' },
        unit: cloudwatch.Unit.COUNT,
      });
    }
    this.jobRole = new iam.Role(this, 'JobRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'ONS ingestion Batch job: reads raw files, writes processed outputs and the ledger',
    });
    const executionRole = new iam.Role(this, 'ExecutionRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'ONS ingestion Batch job execution: pulls the image and writes the job log',
    });
    Object.assign(this.inventory, { executionRole, jobLogGroup: logGroup });

    // The code is a file asset (no Docker): the job role may read that one object. The CDK bootstrap bucket is
    // encrypted with SSE-S3 or the AWS managed key by default, usable through S3 by any principal of the account.
    const code = new s3assets.Asset(this, 'JobCode', { path: requireBundle(BATCH_CODE_FILE) });
    this.jobRole.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:GetObject'],
      resources: [code.bucket.arnForObjects(code.s3ObjectKey)],
    }));
    let image = props.image ?? ecs.ContainerImage.fromRegistry(BATCH_PUBLIC_IMAGE);
    if (!props.image && network?.kind === 'isolated') {
      this.imageCacheRule = this.pullThroughCacheRule(executionRole);
      image = ecs.ContainerImage.fromRegistry(this.cachedImageUri(this.imageCacheRule));
    }

    this.jobDefinition = new batch.EcsJobDefinition(this, 'JobDefinition', {
      container: new batch.EcsFargateContainerDefinition(this, 'Container', {
        image,
        command: ['node', '-e', readFileSync(requireBundle(BATCH_BOOTSTRAP_FILE), 'utf8').trim()],
        // The official image runs as root unless told: its unprivileged `node` user is enough (temp files go to /tmp).
        user: props.image ? undefined : 'node',
        cpu,
        memory: props.memory ?? Size.gibibytes(8),
        ephemeralStorageSize: storage,
        // The processor's Powertools environment too: the same logs and metrics as the Lambda path (no X-Ray
        // daemon in the job, so no call tracing).
        environment: {
          ...props.environment,
          ...operationsEnvironment(props.stage, MetricServices.INGESTION, false),
          [IngestionEnv.JOB_CODE_BUCKET]: code.s3BucketName,
          [IngestionEnv.JOB_CODE_KEY]: code.s3ObjectKey,
          [IngestionEnv.JOB_CODE_REGION]: Stack.of(this).region,
          [IngestionEnv.JOB_CODE_SHA256]: createHash('sha256').update(readFileSync(BATCH_CODE_FILE)).digest('hex'),
        },
        jobRole: this.jobRole,
        executionRole,
        logging: ecs.LogDriver.awsLogs({ logGroup, streamPrefix: 'ingestion' }),
        assignPublicIp: props.assignPublicIp ?? publicEgress,
        fargateCpuArchitecture: ecs.CpuArchitecture.X86_64,
        fargateOperatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        readonlyRootFilesystem: false,
      }),
      timeout: props.jobTimeout ?? Duration.hours(6),
      retryAttempts: attempts,
      // Exit status 2 means the file is refused: retrying cannot help.
      retryStrategies: [
        batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom({ onExitCode: '2' })),
        batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.NON_ZERO_EXIT_CODE),
        batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.CANNOT_PULL_CONTAINER),
        batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
      ],
    });
  }

  /**
   * The default image through an ECR pull-through cache rule for ECR Public (interface endpoints do not serve ECR
   * Public). Rules are per account and Region: the prefix is unique to this stack (stack names are unique per account
   * and Region) and construct. The execution role may pull that one repository and let ECR create and fill it.
   */
  private pullThroughCacheRule(executionRole: iam.Role): ecr.CfnPullThroughCacheRule {
    const stack = Stack.of(this);
    const owner = `${Token.isUnresolved(stack.stackName) ? '' : stack.stackName}/${this.node.path}`;
    // ECR: the prefix is 2-30 characters of lowercase letters, digits and separators.
    const prefix = `ons-${createHash('sha256').update(owner).digest('hex').slice(0, 16)}`;
    const rule = new ecr.CfnPullThroughCacheRule(this, 'ImageCache', {
      ecrRepositoryPrefix: prefix,
      upstreamRegistry: 'ecr-public',
      upstreamRegistryUrl: 'public.ecr.aws',
    });
    const repositoryName = `${prefix}/${BATCH_IMAGE_REPOSITORY}`;
    this.inventory.repositoryArn = stack.formatArn({ service: 'ecr', resource: 'repository', resourceName: repositoryName });
    executionRole.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['ecr:GetAuthorizationToken'],
      resources: ['*'],
    }));
    executionRole.addToPrincipalPolicy(new iam.PolicyStatement({
      // Pulling, plus what a pull through the cache needs the first time (ECR user guide: pull-through-cache-iam).
      actions: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage', 'ecr:BatchImportUpstreamImage', 'ecr:CreateRepository'],
      resources: [stack.formatArn({ service: 'ecr', resource: 'repository', resourceName: repositoryName })],
    }));
    return rule;
  }

  /** The default image as the pull-through cache serves it: `<registry>/<prefix>/docker/library/node:<tag>`. */
  private cachedImageUri(rule: ecr.CfnPullThroughCacheRule): string {
    const stack = Stack.of(this);
    return `${stack.account}.dkr.ecr.${stack.region}.${stack.urlSuffix}/${rule.ecrRepositoryPrefix}/${BATCH_IMAGE_REPOSITORY}:${BATCH_IMAGE_TAG}`;
  }

  private createVpc(props: BatchFileProcessingProps, publicEgress: boolean): ec2.Vpc {
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [publicEgress
        // The jobs ask for their own public IP; nothing else launched here gets one.
        ? { name: 'jobs', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 22, mapPublicIpOnLaunch: false }
        : { name: 'jobs', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 }],
      // A custom resource (and its Lambda) only to empty the default security group: the jobs never use it.
      restrictDefaultSecurityGroup: false,
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });
    // Interface endpoints are billed per hour and AZ: only where the subnets have no other way out.
    const interfaceEndpoints = {
      EcrApi: ec2.InterfaceVpcEndpointAwsService.ECR,
      EcrDocker: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
      Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    };
    for (const [name, service] of Object.entries(publicEgress ? {} : interfaceEndpoints)) {
      const endpoint = vpc.addInterfaceEndpoint(name, { service, privateDnsEnabled: true });
      for (const group of endpoint.connections.securityGroups) {
        Validations.of(group).acknowledge({
          id: 'AwsSolutions-EC23',
          reason: 'Inbound HTTPS from this VPC\'s own CIDR only (CDK\'s interface endpoint default); cdk-nag cannot resolve the CIDR intrinsic.',
        });
      }
    }
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', { retention: props.stage.logRetention, encryptionKey: props.encryptionKey });
    applyDataRemovalPolicy(flowLogs, props.stage);
    this.inventory.flowLog = vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs) });
    this.inventory.flowLogGroup = flowLogs;
    return vpc;
  }

  /**
   * The calls of the execution role (ECS pulls the image, through the pull-through cache when isolated, and the awslogs
   * driver writes the job log) and of the VPC's flow-log role, for the permission-closure test.
   * @internal
   */
  public _permissionInventory(): CallerInventory[] {
    const { executionRole, jobLogGroup, repositoryArn, flowLog, flowLogGroup } = this.inventory;
    const writeLog = (group: logs.ILogGroup, actions: string[]): AwsCall[] => actions.map((a) => ({ action: `logs:${a}`, resource: group.logGroupArn }));
    const out: CallerInventory[] = [{
      name: 'large-file Batch execution (ECS)',
      principal: executionRole!,
      calls: [...writeLog(jobLogGroup!, ['CreateLogStream', 'PutLogEvents']),
        ...(repositoryArn ? [{ action: 'ecr:GetAuthorizationToken', resource: '*' },
          ...['BatchCheckLayerAvailability', 'GetDownloadUrlForLayer', 'BatchGetImage', 'BatchImportUpstreamImage', 'CreateRepository']
            .map((a) => ({ action: `ecr:${a}`, resource: repositoryArn }))] : [])],
    }];
    if (flowLog?.iamRole && flowLogGroup) {
      out.push({ name: 'VPC flow logs (Batch)', principal: flowLog.iamRole, calls: writeLog(flowLogGroup, ['CreateLogStream', 'DescribeLogStreams', 'PutLogEvents']) });
    }
    return out;
  }
}

function requireBundle(file: string): string {
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npx projen bundle\` (the Batch job's code and bootstrap)`);
  return file;
}
