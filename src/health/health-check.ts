import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DEFAULT_READY_CACHE_SECONDS, HealthEnv } from './contract';
import { HealthFunction } from './health-function';
import { createPlatformFunction } from '../core/defaults';
import { IHealthProbe } from '../core/health-probe';
import { acknowledgeScopedWildcards } from '../core/nag';
import { AwsCall, CallerInventory, functionRuntimeCalls } from '../core/permissions';
import { PlatformStage } from '../core/stage';
import { IIngestionLedger } from '../ledger/ingestion-ledger';
import { MetricServices } from '../runtime/contract';

/**
 * What the health check reaches, each with a read-only call; a component left out reports `notConfigured`.
 * @internal
 */
export interface HealthCheckProps {
  readonly stage: PlatformStage;
  /** Encrypts the function's environment. */
  readonly encryptionKey: kms.IKey;
  readonly reservedConcurrentExecutions?: number;
  /** The lake's buckets by layer (`raw`, `processed`, `failed`): HeadBucket on each. */
  readonly buckets: Record<string, s3.IBucket>;
  /** The time-series store's probe (its engine's describe call). */
  readonly timeSeries?: IHealthProbe;
  /** The feature flags' probe (AppConfig). */
  readonly flags?: IHealthProbe;
  /** GetKnowledgeBase on the knowledge base. */
  readonly knowledgeBase?: { readonly knowledgeBaseId: string; readonly knowledgeBaseArn: string };
  /** DescribeTable on the ledger. */
  readonly ledger?: IIngestionLedger;
  /** How long a readiness report is served from a warm instance (validated by `OnsDataPlatform`). */
  readonly readinessCacheTtl?: Duration;
}

/**
 * The health check (behind `GET /health`, liveness, and `GET /health/ready`, readiness), made once with everything it checks: its environment names each component,
 * its role may make only those calls on those resources.
 * @internal
 */
export function createHealthCheck(scope: Construct, id: string, props: HealthCheckProps): lambda.Function {
  const stack = Stack.of(scope);
  const probes: Array<[string, IHealthProbe | undefined]> = [[HealthEnv.TIME_SERIES, props.timeSeries], [HealthEnv.FLAGS, props.flags]];
  const fn = createPlatformFunction(scope, id, HealthFunction, {
    stage: props.stage,
    encryptionKey: props.encryptionKey,
    description: `ONS data platform (${props.stage.name}): health check`,
    service: MetricServices.API,
    timeout: Duration.seconds(10),
    reservedConcurrentExecutions: props.reservedConcurrentExecutions,
    environment: {
      [HealthEnv.LAKE_BUCKETS]: stack.toJsonString(Object.fromEntries(Object.entries(props.buckets).map(([layer, b]) => [layer, b.bucketName]))),
      [HealthEnv.CHECK_TIMEOUT_MS]: '2000',
      [HealthEnv.READY_CACHE_SECONDS]: String(props.readinessCacheTtl?.toSeconds() ?? DEFAULT_READY_CACHE_SECONDS),
      ...Object.fromEntries(probes.filter(([, p]) => p).map(([variable, p]) => [variable, stack.toJsonString(p!.config)])),
      ...(props.knowledgeBase ? { [HealthEnv.KNOWLEDGE_BASE_ID]: props.knowledgeBase.knowledgeBaseId } : {}),
      ...(props.ledger ? { [HealthEnv.LEDGER_TABLE]: props.ledger.tableName } : {}),
    },
  });
  // HeadBucket needs s3:ListBucket on the bucket itself, nothing on its objects.
  fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: Object.values(props.buckets).map((b) => b.bucketArn) }));
  for (const [, probe] of probes) probe?.grant(fn);
  if (props.knowledgeBase) {
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['bedrock:GetKnowledgeBase'], resources: [props.knowledgeBase.knowledgeBaseArn] }));
  }
  if (props.ledger) fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['dynamodb:DescribeTable'], resources: [props.ledger.table.tableArn] }));
  acknowledgeScopedWildcards(fn.role!);
  return fn;
}

/**
 * The health function's calls, for the permission-closure test: HeadBucket (s3:ListBucket) on each bucket, the
 * probes' calls (`probeCalls`, from the store and the flags), GetKnowledgeBase and DescribeTable.
 * @internal
 */
export function healthCheckInventory(fn: lambda.Function, props: HealthCheckProps, probeCalls: AwsCall[]): CallerInventory {
  return {
    name: 'health check',
    principal: fn.role!,
    calls: [
      ...functionRuntimeCalls(fn),
      ...Object.values(props.buckets).map((b) => ({ action: 's3:ListBucket', resource: b.bucketArn })),
      ...probeCalls,
      ...(props.knowledgeBase ? [{ action: 'bedrock:GetKnowledgeBase', resource: props.knowledgeBase.knowledgeBaseArn }] : []),
      ...(props.ledger ? [{ action: 'dynamodb:DescribeTable', resource: props.ledger.table.tableArn }] : []),
    ],
  };
}
