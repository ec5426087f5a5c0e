import { ArnFormat, Aspects, Duration, Size, Stack, Tags, Token, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { acknowledgeScopedWildcards } from './nag';
import { CallerInventory } from './permissions';
import { applyDataRemovalPolicy } from './removal';
import { PlatformStage } from './stage';
import { MetricServices, metricsNamespace, OperationsEnv } from '../runtime/contract';

/**
 * Tag keys every resource of the platform carries.
 * @internal
 */
export const PLATFORM_TAG_KEYS = { project: 'Project', stage: 'Stage', managedBy: 'ManagedBy' } as const;

/** Value of the `Project` tag unless the `tags` prop says otherwise. */
const PROJECT = 'ons-data-platform';

/**
 * Tags every taggable resource under `scope` with Project, Stage and ManagedBy, then with `tags`
 * (which win on a shared key).
 * @internal
 */
export function applyPlatformTags(scope: Construct, stage: PlatformStage, tags: Record<string, string> = {}): void {
  // Parts tag themselves too (they can stand alone), so user tags need a higher priority to win everywhere.
  const platform = { priority: 50 };
  Tags.of(scope).add(PLATFORM_TAG_KEYS.project, PROJECT, platform);
  Tags.of(scope).add(PLATFORM_TAG_KEYS.stage, stage.name, platform);
  Tags.of(scope).add(PLATFORM_TAG_KEYS.managedBy, 'aws-cdk', platform);
  for (const [key, value] of Object.entries(tags)) {
    // Limits from the AWS tagging documentation; `aws:` is reserved for AWS.
    if (key.length < 1 || key.length > 128 || key.toLowerCase().startsWith('aws:')) {
      throw new Error(`tags: key '${key}' must be 1-128 characters and must not start with 'aws:'`);
    }
    if (value.length > 256) throw new Error(`tags: value of '${key}' is longer than 256 characters`);
    Tags.of(scope).add(key, value, { priority: 150 });
  }
}

/**
 * Lets CloudWatch Logs in this stack's region encrypt log groups of this account with `key`.
 * No-op for an imported key: its policy must already allow it.
 * @internal
 */
export function allowLogsToUseKey(key: kms.IKey): void {
  const stack = Stack.of(key);
  key.addToResourcePolicy(new iam.PolicyStatement({
    sid: 'AllowCloudWatchLogsOfThisAccount',
    principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
    actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:DescribeKey'],
    resources: ['*'], // in a key policy, '*' means this key
    conditions: {
      ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${stack.partition}:logs:${stack.region}:${stack.account}:log-group:*` },
    },
  }));
}

/**
 * CloudWatch Logs encrypting and reading `logGroups` with `key` (allowLogsToUseKey), for the permission-closure test:
 * it calls KMS as `logs.<region>.amazonaws.com` with the log group's ARN as encryption context (aws:logs:arn).
 * @internal
 */
export function logsKeyInventory(key: kms.IKey, logGroups: logs.ILogGroup[]): CallerInventory {
  const stack = Stack.of(key);
  return {
    name: 'CloudWatch Logs, encrypting the log groups with the key',
    principal: `logs.${stack.region}.amazonaws.com`,
    calls: logGroups.flatMap((group) => ['kms:GenerateDataKey', 'kms:Decrypt', 'kms:Encrypt'].map((action) => ({
      action,
      resource: key.keyArn,
      // The log group's ARN without the `:*` that logGroupArn ends with.
      context: { 'kms:EncryptionContext:aws:logs:arn': `arn:${stack.partition}:logs:${stack.region}:${stack.account}:log-group:${group.logGroupName}` },
    }))),
  };
}

/**
 * Step Functions adds `kms:Decrypt*` for `delivery.logs.amazonaws.com` to the key of a state machine that logs with a
 * customer managed key, without conditions. At synthesis this narrows every such statement of `key` to `kms:Decrypt`
 * for log deliveries of this account and region (aws:SourceAccount, aws:SourceArn), as CloudWatch Logs documents for
 * vended-log delivery.
 * @internal
 */
export function conditionLogDeliveryOnKey(key: kms.Key): void {
  Aspects.of(key).add({
    visit(node) {
      if (node !== key.node.defaultChild) return;
      const stack = Stack.of(key);
      const cfn = node as kms.CfnKey;
      const policy = stack.resolve(cfn.keyPolicy) as { Statement: Array<Record<string, any>> } | undefined;
      if (!policy?.Statement.some((s) => s.Principal?.Service === 'delivery.logs.amazonaws.com' && !s.Condition)) return;
      policy.Statement = policy.Statement.map((s) => s.Principal?.Service === 'delivery.logs.amazonaws.com' && !s.Condition ? {
        ...s,
        Sid: 'AllowLogDeliveryOfThisAccount',
        Action: 'kms:Decrypt',
        Condition: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': `arn:${stack.partition}:logs:${stack.region}:${stack.account}:*` },
        },
      } : s);
      cfn.addPropertyOverride('KeyPolicy', policy);
    },
  });
}

/** A generated, pre-bundled function class (projen's `*-function.ts`). */
export type PlatformFunctionClass<T extends lambda.Function> = new (scope: Construct, id: string, props?: lambda.FunctionOptions) => T;

/** A value of the `service` dimension (see MetricServices). @internal */
export type PlatformService = typeof MetricServices[keyof typeof MetricServices];

/**
 * The Powertools environment of every function (and of the Batch job): the stage's metric namespace, the
 * service, the log level, and whether Powertools Tracer traces the AWS SDK and HTTP calls (the stage traces
 * and `traceCalls`).
 * @internal
 */
export function operationsEnvironment(stage: PlatformStage, service: PlatformService, traceCalls = true): Record<string, string> {
  return {
    [OperationsEnv.METRICS_NAMESPACE]: metricsNamespace(stage.name),
    [OperationsEnv.SERVICE_NAME]: service,
    [OperationsEnv.LOG_LEVEL]: 'INFO',
    [OperationsEnv.TRACE_ENABLED]: String(traceCalls && stage.tracing === lambda.Tracing.ACTIVE),
  };
}

/**
 * What a part of the platform says about one of its functions.
 * @internal
 */
export interface PlatformFunctionOptions {
  readonly stage: PlatformStage;
  readonly encryptionKey: kms.IKey;
  readonly description: string;
  /**
   * The part of the platform the function belongs to: its POWERTOOLS_SERVICE_NAME, so the `service` key of
   * its log lines and the `service` dimension of its custom metrics.
   */
  readonly service: PlatformService;
  readonly environment?: Record<string, string>;
  readonly timeout?: Duration;
  readonly memorySize?: number;
  readonly ephemeralStorageSize?: Size;
  readonly reservedConcurrentExecutions?: number;
  /**
   * Whether Powertools Tracer records the handler's AWS SDK and HTTP calls when the stage traces (default true).
   * Off for the data-heavy handlers: the X-Ray SDK's async hooks slow every `await` of the process (`npm run bench:tracing`:
   * the processor's work 1.4 times, the loader's Parquet read 2.4 times slower), and Lambda's own trace segment still
   * covers the invocation.
   */
  readonly traceCalls?: boolean;
  /** A VPC to run the function in (with `vpcSubnets` and `securityGroups`): the role gets the network-interface permissions. */
  readonly vpc?: ec2.IVpc;
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly securityGroups?: ec2.ISecurityGroup[];
}

/**
 * Creates a function with the platform's defaults: arm64, environment encrypted with the platform
 * key, its own KMS-encrypted log group with the stage's retention, tracing per stage, reserved
 * concurrency when given, the Powertools environment (metric namespace, service, log level), and a
 * role that may write only to its log group. The runtime is pinned by the generated class. Every
 * function of the platform is created here.
 * @internal
 */
export function createPlatformFunction<T extends lambda.Function>(
  scope: Construct, id: string, functionClass: PlatformFunctionClass<T>, options: PlatformFunctionOptions,
): T {
  validateReservedConcurrency(options.reservedConcurrentExecutions);
  const logGroup = new logs.LogGroup(scope, `${id}LogGroup`, {
    retention: options.stage.logRetention,
    encryptionKey: options.encryptionKey,
  });
  applyDataRemovalPolicy(logGroup, options.stage);

  // An explicit role, so the function gets no managed policy and no wildcard on logs.
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: `Execution role of ${options.description}`,
  });
  logGroup.grantWrite(role);
  // Only what Lambda encrypted for a function (its environment, context aws:lambda:FunctionArn): the role cannot
  // decrypt the lake's objects, items or messages with this statement. Data reads get their own, per service.
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    actions: ['kms:Decrypt'],
    resources: [options.encryptionKey.keyArn],
    conditions: { ArnLike: { 'kms:EncryptionContext:aws:lambda:FunctionArn': Stack.of(scope).formatArn({ service: 'lambda', resource: 'function', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }) } },
  }));

  const fn = new functionClass(scope, id, {
    description: options.description,
    architecture: lambda.Architecture.ARM_64,
    environmentEncryption: options.encryptionKey,
    environment: { ...options.environment, ...operationsEnvironment(options.stage, options.service, options.traceCalls ?? true) },
    logGroup,
    role,
    tracing: options.stage.tracing,
    timeout: options.timeout ?? Duration.seconds(30),
    memorySize: options.memorySize ?? 256,
    ephemeralStorageSize: options.ephemeralStorageSize,
    reservedConcurrentExecutions: options.reservedConcurrentExecutions,
    vpc: options.vpc,
    vpcSubnets: options.vpc ? options.vpcSubnets : undefined,
    securityGroups: options.vpc ? options.securityGroups : undefined,
  });
  if (options.vpc) allowNetworkInterfaces(role, options.vpc, options.vpcSubnets, fn.connections.securityGroups);

  // `*` only for actions without resource-level permission (X-Ray, VPC attachment, ...), named in the reason at synthesis.
  acknowledgeScopedWildcards(role);
  return fn;
}

/**
 * What Lambda needs to attach a function to a VPC (what AWSLambdaVPCAccessExecutionRole grants on `*`, narrowed): the two
 * Describe actions on `*` (no resource-level permission), creating interfaces only in the function's subnets with its
 * security groups, and deleting or re-addressing network interfaces of this account and region only.
 */
function allowNetworkInterfaces(role: iam.Role, vpc: ec2.IVpc, subnets: ec2.SubnetSelection | undefined, groups: ec2.ISecurityGroup[]): void {
  const stack = Stack.of(role);
  const arn = (resource: string, resourceName: string) => stack.formatArn({ service: 'ec2', resource, resourceName });
  const interfaces = arn('network-interface', '*');
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    actions: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'],
    resources: ['*'],
  }));
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    actions: ['ec2:CreateNetworkInterface'],
    resources: [
      interfaces,
      ...vpc.selectSubnets(subnets).subnetIds.map((id) => arn('subnet', id)),
      ...groups.map((g) => arn('security-group', g.securityGroupId)),
    ],
  }));
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    actions: ['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
    resources: [interfaces],
  }));
  // cdk-nag prints the region and account as they resolve: literal in an environment-bound stack, pseudo parameters otherwise.
  const region = Token.isUnresolved(stack.region) ? '<AWS::Region>' : stack.region;
  const account = Token.isUnresolved(stack.account) ? '<AWS::AccountId>' : stack.account;
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:${region}:${account}:network-interface/*]`,
    reason: 'Lambda creates and deletes the function\'s network interfaces, whose ids exist only at run time: this account and region only.',
  });
}

function validateReservedConcurrency(value: number | undefined): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
    throw new Error(`reservedConcurrentExecutions: expected a positive integer, got ${value}`);
  }
}

/**
 * Lets a state machine encrypted with `key` read and write its own execution data. CDK's
 * `CustomerManagedEncryptionConfiguration` scopes that grant to `...:stateMachine:<physicalName>`, which is empty for a
 * generated name, so it never matches (found by test/permissions/closure.test.ts). The machine's ARN cannot be named in
 * its own role's policy (a dependency cycle): the condition is this account's and region's state machines, on this key.
 * Step Functions calls KMS with encryption context `aws:states:stateMachineArn` (Step Functions data-at-rest encryption).
 */
export function allowOwnExecutionData(machine: sfn.StateMachine, key: kms.IKey): void {
  machine.addToRolePolicy(new iam.PolicyStatement({
    actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
    resources: [key.keyArn],
    conditions: {
      ArnLike: {
        'kms:EncryptionContext:aws:states:stateMachineArn': Stack.of(machine).formatArn({
          service: 'states', resource: 'stateMachine', arnFormat: ArnFormat.COLON_RESOURCE_NAME, resourceName: '*',
        }),
      },
    },
  }));
}

/**
 * Lets `grantee` use `key` only through `service` (kms:ViaService `<service>.<region>.amazonaws.com`): the service
 * calls KMS for it when it reads or writes encrypted data; a direct KMS call is denied.
 * @internal
 */
export function grantKeyViaService(grantee: iam.IGrantable, key: kms.IKey, service: string, ...actions: string[]): void {
  grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({
    actions,
    resources: [key.keyArn],
    conditions: { StringEquals: { 'kms:ViaService': `${service}.${Stack.of(key).region}.amazonaws.com` } },
  }));
}

/**
 * The EventBridge rules whose dead letters may be encrypted with a dead-letter queue's key (the key-policy statement's
 * conditions): `{ ruleArn }`, one named rule (aws:SourceArn equal to its ARN); `'accountRules'`, any rule of this
 * account and region (aws:SourceAccount, aws:SourceArn like `rule/*`), for an unnamed rule whose ARN in the key policy
 * would be a dependency cycle.
 * @internal
 */
export type EventDeadLetterSenders = { readonly ruleArn: string } | 'accountRules';

/**
 * What a part of the platform says about the dead-letter queue of its EventBridge rules or Scheduler schedules.
 * @internal
 */
export interface EventDeadLetterQueueOptions {
  /** The key the queue is encrypted with (server-side, SSE-KMS), which EventBridge needs to send to it. */
  readonly encryptionKey: kms.IKey;
  /** Sid of the key-policy statement that lets EventBridge use the key. */
  readonly keyPolicySid: string;
  /** The EventBridge rules that may use the key for their dead letters. */
  readonly senders: EventDeadLetterSenders;
  /** What the queue is the dead-letter queue of, for the cdk-nag reasons (e.g. 'the ingestion rule'). */
  readonly deadLetterOf: string;
}

/**
 * Creates the dead-letter queue of EventBridge rule targets or EventBridge Scheduler targets: KMS-encrypted with the
 * given key, TLS only, 14 days of retention (the most SQS keeps), and the key-policy statement that lets EventBridge
 * encrypt what it dead-letters ("Using dead-letter queues to process undelivered events in EventBridge", eb-rule-dlq:
 * kms:GenerateDataKey and kms:Decrypt), bound to `senders`. The queue policy for a rule comes from CDK's rule targets
 * (`deadLetterQueue`) or allowRuleDeadLetters; a schedule's role gets allowScheduleDeadLetters. The platform's
 * monitoring alarms on any message in the queue (PlatformMonitoring watches every queue). Every such queue of the
 * platform is created here.
 * @internal
 */
export function createEventDeadLetterQueue(scope: Construct, id: string, options: EventDeadLetterQueueOptions): sqs.Queue {
  const queue = new sqs.Queue(scope, id, {
    encryption: sqs.QueueEncryption.KMS,
    encryptionMasterKey: options.encryptionKey,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  const reason = `This queue is itself the dead-letter queue of ${options.deadLetterOf}.`;
  Validations.of(queue).acknowledge(...['AwsSolutions-SQS3', 'Serverless-SQSRedrivePolicy'].map((nagId) => ({ id: nagId, reason })));
  options.encryptionKey.addToResourcePolicy(new iam.PolicyStatement({
    sid: options.keyPolicySid,
    principals: [new iam.ServicePrincipal('events.amazonaws.com')],
    actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
    resources: ['*'], // in a key policy, '*' means this key
    conditions: deadLetterSenderConditions(Stack.of(scope), options.senders),
  }));
  return queue;
}

/** The key-policy conditions of `senders` (EventBridge sends aws:SourceAccount and aws:SourceArn, the rule's ARN). */
function deadLetterSenderConditions(stack: Stack, senders: EventDeadLetterSenders): Record<string, Record<string, string>> {
  if (senders === 'accountRules') {
    return {
      StringEquals: { 'aws:SourceAccount': stack.account },
      ArnLike: { 'aws:SourceArn': `arn:${stack.partition}:events:${stack.region}:${stack.account}:rule/*` },
    };
  }
  return { ArnEquals: { 'aws:SourceArn': senders.ruleArn } };
}

/**
 * Lets `rule` send its dead letters to `queue` (queue-policy statement `sid`, aws:SourceArn the rule's ARN), for a
 * target bound by hand; CDK's rule targets with a `deadLetterQueue` add the same statement themselves.
 * @internal
 */
export function allowRuleDeadLetters(queue: sqs.Queue, rule: events.IRule, sid: string): void {
  queue.addToResourcePolicy(new iam.PolicyStatement({
    sid,
    principals: [new iam.ServicePrincipal('events.amazonaws.com')],
    actions: ['sqs:SendMessage'],
    resources: [queue.queueArn],
    conditions: { ArnEquals: { 'aws:SourceArn': rule.ruleArn } },
  }));
}

/**
 * Lets a schedule's role send the schedule's dead letters to `queue`, encrypted with `key`: EventBridge Scheduler
 * sends them with the schedule's execution role, not as a service principal. Exact actions (grantSendMessages would add
 * kms:ReEncrypt* and kms:GenerateDataKey*): SQS SSE needs these two.
 * @internal
 */
export function allowScheduleDeadLetters(queue: sqs.Queue, key: kms.IKey, role: iam.IRole): void {
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [queue.queueArn] }));
  key.grant(role, 'kms:GenerateDataKey', 'kms:Decrypt');
}

/**
 * EventBridge sending a dead letter of `rule` to `queue`, encrypted with `key`, for the permission-closure test: the
 * request carries the rule's ARN (aws:SourceArn) and account (aws:SourceAccount), to SQS and to KMS through SQS.
 * @internal
 */
export function eventDeadLetterInventory(name: string, queue: sqs.IQueue, key: kms.IKey, rule: events.IRule): CallerInventory {
  return {
    name,
    principal: 'events.amazonaws.com',
    calls: [{ action: 'sqs:SendMessage', resource: queue.queueArn, kmsKey: key.keyArn, context: { 'aws:SourceArn': rule.ruleArn, 'aws:SourceAccount': Stack.of(queue).account } }],
  };
}
