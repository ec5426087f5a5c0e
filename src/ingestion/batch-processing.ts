import * as path from 'node:path';
import { Duration, Size, Token, Validations } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { LargeFileProcessingOptions } from './pipeline-props';
import { operationsEnvironment } from '../core/defaults';
import { applyDataRemovalPolicy } from '../core/removal';
import { PlatformStage } from '../core/stage';
import { MetricServices, metricsNamespace, PlatformMetrics } from '../runtime/contract';

/** The Docker build context of the Batch job: the bundled entrypoint and its Dockerfile (built by `npx projen bundle`). */
export const BATCH_IMAGE_DIRECTORY = path.join(__dirname, '..', '..', 'assets', 'ingestion', 'batch', 'entrypoint');

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

    this.vpc = props.vpc ?? this.createVpc(props);
    const securityGroup = new ec2.SecurityGroup(this, 'JobSecurityGroup', {
      vpc: this.vpc,
      description: 'ONS ingestion Batch jobs: no inbound, HTTPS out to AWS endpoints only',
      allowAllOutbound: false,
    });
    securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS service endpoints');

    this.computeEnvironment = new batch.FargateComputeEnvironment(this, 'ComputeEnvironment', {
      vpc: this.vpc,
      vpcSubnets: props.vpcSubnets,
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

    this.jobDefinition = new batch.EcsJobDefinition(this, 'JobDefinition', {
      container: new batch.EcsFargateContainerDefinition(this, 'Container', {
        image: ecs.ContainerImage.fromAsset(BATCH_IMAGE_DIRECTORY, { platform: Platform.LINUX_AMD64 }),
        cpu,
        memory: props.memory ?? Size.gibibytes(8),
        ephemeralStorageSize: storage,
        // The processor's Powertools environment too: the same logs and metrics as the Lambda path (no X-Ray
        // daemon in the job, so no call tracing).
        environment: { ...props.environment, ...operationsEnvironment(props.stage, MetricServices.INGESTION, false) },
        jobRole: this.jobRole,
        executionRole,
        logging: ecs.LogDriver.awsLogs({ logGroup, streamPrefix: 'ingestion' }),
        assignPublicIp: false,
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

  private createVpc(props: BatchFileProcessingProps): ec2.Vpc {
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'jobs', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 }],
      // A custom resource (and its Lambda) only to empty the default security group: the jobs never use it.
      restrictDefaultSecurityGroup: false,
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });
    for (const [name, service] of Object.entries({
      EcrApi: ec2.InterfaceVpcEndpointAwsService.ECR,
      EcrDocker: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
      Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    })) {
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
    vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs) });
    return vpc;
  }
}
