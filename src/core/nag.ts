import { Aspects, CfnResource, IAspect, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { IConstruct } from 'constructs';

/** Actions that support no resource-level permission, so `Resource: *` is the only form AWS accepts. */
const NO_RESOURCE_LEVEL = new Set([
  'xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets',
  'logs:CreateLogDelivery', 'logs:GetLogDelivery', 'logs:UpdateLogDelivery', 'logs:DeleteLogDelivery', 'logs:ListLogDeliveries',
  'logs:PutResourcePolicy', 'logs:DescribeResourcePolicies', 'logs:DescribeLogGroups',
  'ecr:GetAuthorizationToken',
  'timestream:DescribeEndpoints',
  'bedrock:RetrieveAndGenerate',
  'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets',
]);

/** Why each kind of scoped wildcard is needed; a wildcard that fits none stays a finding. */
const SCOPED_WILDCARDS: Array<{ test: (resource: string, actions: string[]) => boolean; reason: string | ((actions: string[]) => string) }> = [
  {
    test: (r, a) => /^<[A-Za-z0-9]+\.Arn>\/([A-Za-z0-9._=-]+\/)*\*$/.test(r) && a.every((x) => x.startsWith('s3:')),
    reason: 'Object keys are known only at run time: object-level S3 access on one lake bucket, limited to the prefix this code reads or writes.',
  },
  {
    test: (r, a) => /^<[A-Za-z0-9]+\.Arn>\/index\/\*$/.test(r) && a.every((x) => x.startsWith('dynamodb:')),
    reason: 'Queries on the indexes of this one table (the ledger), whose index names are part of the construct.',
  },
  {
    test: (r, a) => /^<[A-Za-z0-9]+\.Arn>:\*$/.test(r) && a.every((x) => x === 'lambda:InvokeFunction'),
    reason: 'Invoking one function of the pipeline, any of its versions (the state machine invokes the unqualified function).',
  },
  {
    test: (r, a) => r.includes(':execution:') && a.every((x) => x.startsWith('states:')),
    reason: 'Executions of one state machine of the pipeline, whose names are generated at run time.',
  },
  {
    test: (r, a) => /:job-definition\/\*$/.test(r) && a.every((x) => x === 'batch:SubmitJob'),
    reason: 'Submitting jobs of the pipeline\'s job definition, whatever its revision (Step Functions submits by ARN without a revision).',
  },
  {
    test: (r, a) => /:application\/<[A-Za-z0-9]+>\/environment\/\*\/configuration\/<[A-Za-z0-9.]+>$/.test(r) && a.every((x) => x.startsWith('appconfig:')),
    reason: 'Reading one flag profile of the platform (the feature flags, or the kill switches) in its own environment of the platform\'s application, the environment named rather than referenced to keep the flags environment\'s rollback alarms free of a dependency cycle.',
  },
  {
    test: (r, a) => /^<[A-Za-z0-9]+\.VectorBucketArn>\/index\/ons-knowledge\*$/.test(r) && a.every((x) => x.startsWith('s3vectors:')),
    reason: 'The knowledge base\'s vector indexes in its own vector bucket: the current one and, while CloudFormation replaces it for a new embedding model, the old one.',
  },
  {
    test: (r, a) => r === '*' && a.every((x) => NO_RESOURCE_LEVEL.has(x)),
    // Generated from the policy's own statements on `*`, so the reason names exactly what the wildcard covers.
    reason: (actions) => `${actions.join(', ')} support no resource-level permission; they are the only actions on * in this policy.`,
  },
];

/**
 * Acknowledges the cdk-nag IAM5 findings of every policy under `scope` whose wildcards are scoped as
 * the platform intends (each kind with its reason). Any other wildcard is left for cdk-nag to report.
 * The policies are read at synthesis (an aspect), so grants added after the call are covered and the
 * reason of `Resource::*` lists exactly the actions the policy grants on `*`.
 * @internal
 */
export function acknowledgeScopedWildcards(scope: IConstruct): void {
  Aspects.of(scope).add(new ScopedWildcardsAspect(scope));
}

class ScopedWildcardsAspect implements IAspect {
  private done = false;
  constructor(private readonly scope: IConstruct) {}

  public visit(node: IConstruct): void {
    if (node !== this.scope || this.done) return;
    this.done = true;
    for (const policy of this.scope.node.findAll().filter((c): c is iam.Policy => c instanceof iam.Policy)) {
      const stack = Stack.of(policy);
      type Document = { Statement?: Array<{ Action: string | string[]; Resource?: unknown }> } | undefined;
      const document = stack.resolve(policy.document.toJSON()) as Document;
      const byResource = new Map<string, string[]>();
      for (const statement of document?.Statement ?? []) {
        const actions = [statement.Action].flat();
        for (const resource of [statement.Resource ?? []].flat().map(nagNotation)) {
          if (resource.includes('*')) byResource.set(resource, [...new Set([...byResource.get(resource) ?? [], ...actions])]);
        }
      }
      for (const [resource, actions] of byResource) {
        const id = `AwsSolutions-IAM5[Resource::${resource}]`;
        if (isAcknowledged(policy, id)) continue;
        const kind = SCOPED_WILDCARDS.find((k) => k.test(resource, actions));
        if (kind) Validations.of(policy).acknowledge({ id, reason: typeof kind.reason === 'string' ? kind.reason : kind.reason(actions.sort()) });
      }
    }
  }
}

/** Whether `id` is acknowledged on `construct` itself. */
function isAcknowledged(construct: IConstruct, id: string): boolean {
  return construct.node.metadata
    .some((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY && Object.keys(m.data ?? {}).some((k) => k.endsWith(id)));
}

/**
 * Acknowledges cdk-nag rules on one construct (and what it contains), each with the reason true for it.
 * @internal
 */
export function acknowledgeRules(scope: IConstruct, ids: readonly string[], reason: string): void {
  Validations.of(scope).acknowledge(...ids.map((id) => ({ id, reason })));
}

/** How cdk-nag prints a resolved resource: `<LogicalId.Attr>` for GetAtt, `<LogicalId>` for Ref, joins flattened. */
function nagNotation(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, any>;
  if (v['Fn::Join']) return (v['Fn::Join'][1] as unknown[]).map(nagNotation).join(v['Fn::Join'][0]);
  if (v['Fn::GetAtt']) return `<${v['Fn::GetAtt'][0]}.${v['Fn::GetAtt'][1]}>`;
  if (v.Ref) return `<${v.Ref}>`;
  return JSON.stringify(value);
}

/**
 * Acknowledges, resource by resource, the NIST 800-53 R5 and Serverless findings that are choices of the platform,
 * each with the reason that is true for that resource (read at synthesis, so every part is there). What is not listed
 * here stays a finding. Called once by `OnsDataPlatform`.
 * @internal
 */
export function acknowledgePlatformChoices(scope: IConstruct, options: { tracing: boolean; stageName: string }): void {
  Aspects.of(scope).add(new PlatformChoicesAspect(scope, options));
}

class PlatformChoicesAspect implements IAspect {
  private done = false;
  constructor(private readonly scope: IConstruct, private readonly options: { tracing: boolean; stageName: string }) {}

  public visit(node: IConstruct): void {
    if (node !== this.scope || this.done) return;
    this.done = true;
    const resources = this.scope.node.findAll().filter(CfnResource.isCfnResource);
    const stack = Stack.of(this.scope);
    // Alarms a CodeDeploy deployment group watches: CodeDeploy acts on them (rolls back), not a topic.
    const rollbackAlarms = new Set<string>();
    for (const group of resources.filter((x): x is codedeploy.CfnDeploymentGroup => x instanceof codedeploy.CfnDeploymentGroup)) {
      const config = stack.resolve(group.alarmConfiguration) as { alarms?: Array<{ name?: { Ref?: string } }> } | undefined;
      for (const alarm of config?.alarms ?? []) if (alarm.name?.Ref) rollbackAlarms.add(alarm.name.Ref);
    }
    const tracingOff = `X-Ray tracing follows the stage: off in '${this.options.stageName}'.`;
    for (const r of resources) {
      switch (r.cfnResourceType) {
        case 'AWS::IAM::Policy':
          acknowledgeRules(r, ['NIST.800.53.R5-IAMNoInlinePolicy'],
            'The one role\'s own least-privilege policy, written by CDK grants for that role only; a managed policy would be attached to nothing else.');
          break;
        case 'AWS::Lambda::Function':
          if ((r as lambda.CfnFunction).reservedConcurrentExecutions === undefined) {
            acknowledgeRules(r, ['NIST.800.53.R5-LambdaConcurrency'],
              'Reserved concurrency is opt-in (`reservedConcurrentExecutions`): reserving it takes it from the account\'s shared pool; API stage throttling and usage plans bound the API\'s callers.');
          }
          acknowledgeRules(r, ['NIST.800.53.R5-LambdaDLQ', 'Serverless-LambdaDLQ'], r.node.path.includes('/Bootstrap')
            ? 'A custom resource handler: CloudFormation waits for its answer and fails the stack operation without one; a dead letter would not resume it.'
            : 'Invoked synchronously only (API Gateway, Step Functions tasks): the caller sees each failure and retries, catches or answers it; a dead-letter queue only receives failed asynchronous invocations.');
          if ((r as lambda.CfnFunction).vpcConfig === undefined) {
            acknowledgeRules(r, ['NIST.800.53.R5-LambdaInsideVPC'],
              'Calls only AWS APIs (IAM-authorized, over TLS), no private network resource; outside a VPC it needs no NAT gateway or interface endpoints. Functions that reach the InfluxDB instance run in its VPC.');
          }
          if (!this.options.tracing) acknowledgeRules(r, ['Serverless-LambdaTracing'], tracingOff);
          break;
        case 'AWS::StepFunctions::StateMachine':
          if (!this.options.tracing) acknowledgeRules(r, ['Serverless-StepFunctionStateMachineXray'], tracingOff);
          break;
        case 'AWS::CloudWatch::Alarm':
          if (!(stack.resolve((r as cloudwatch.CfnAlarm).alarmActions) ?? []).length && rollbackAlarms.has(stack.resolve(r.logicalId))) {
            acknowledgeRules(r, ['NIST.800.53.R5-CloudWatchAlarmAction'],
              'A rollback alarm of a CodeDeploy deployment group: CodeDeploy watches it during a deployment and rolls back; the function\'s own alarms notify the topics.');
          }
          break;
        case 'AWS::S3::Bucket':
          if ((r as s3.CfnBucket).replicationConfiguration === undefined) {
            acknowledgeRules(r, ['NIST.800.53.R5-S3BucketReplicationEnabled'],
              'Cross-region replication is opt-in (`dataLake.replication`, processed data): a second copy doubles storage cost; versioning and the lifecycle rules keep what is overwritten or deleted.');
          }
          break;
        case 'AWS::EC2::VPC':
          acknowledgeRules(r, ['NIST.800.53.R5-VPCDefaultSecurityGroupClosed'],
            'Nothing in this VPC uses its default security group: every network interface gets the platform\'s own group.');
          break;
        case 'AWS::EC2::Route':
          if ((r as ec2.CfnRoute).gatewayId !== undefined) {
            acknowledgeRules(r, ['NIST.800.53.R5-VPCNoUnrestrictedRouteToIGW'],
              'The Batch jobs\' public subnets: Fargate tasks reach ECR Public and AWS APIs with a public IP instead of a NAT gateway; their security group allows no inbound traffic.');
          }
          break;
        default:
          break;
      }
    }
  }
}
