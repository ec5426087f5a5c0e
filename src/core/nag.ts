import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { IConstruct } from 'constructs';

/** Actions that support no resource-level permission, so `Resource: *` is the only form AWS accepts. */
const NO_RESOURCE_LEVEL = new Set([
  'xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets',
  'logs:CreateLogDelivery', 'logs:GetLogDelivery', 'logs:UpdateLogDelivery', 'logs:DeleteLogDelivery', 'logs:ListLogDeliveries',
  'logs:PutResourcePolicy', 'logs:DescribeResourcePolicies', 'logs:DescribeLogGroups',
  'ecr:GetAuthorizationToken',
  'timestream:DescribeEndpoints',
  'bedrock:RetrieveAndGenerate',
]);

/** Why each kind of scoped wildcard is needed; a wildcard that fits none stays a finding. */
const SCOPED_WILDCARDS: Array<{ test: (resource: string, actions: string[]) => boolean; reason: string }> = [
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
    reason: 'Reading the platform\'s one feature-flag profile in its application\'s (one) environment, named rather than referenced to keep the environment\'s rollback alarms free of a dependency cycle.',
  },
  {
    test: (r, a) => /^<[A-Za-z0-9]+\.VectorBucketArn>\/index\/ons-knowledge\*$/.test(r) && a.every((x) => x.startsWith('s3vectors:')),
    reason: 'The knowledge base\'s vector indexes in its own vector bucket: the current one and, while CloudFormation replaces it for a new embedding model, the old one.',
  },
  {
    test: (r, a) => r === '*' && a.every((x) => NO_RESOURCE_LEVEL.has(x)),
    reason: 'X-Ray, CloudWatch Logs delivery, ECR authorization, Timestream endpoint discovery and Bedrock RetrieveAndGenerate support no resource-level permission.',
  },
];

/**
 * Acknowledges the cdk-nag IAM5 findings of every policy under `scope` whose wildcards are scoped as
 * the platform intends (each kind with its reason). Any other wildcard is left for cdk-nag to report.
 * Call it once everything under `scope` is granted.
 * @internal
 */
export function acknowledgeScopedWildcards(scope: IConstruct): void {
  for (const policy of scope.node.findAll().filter((c): c is iam.Policy => c instanceof iam.Policy)) {
    const stack = Stack.of(policy);
    const document = stack.resolve(policy.document.toJSON()) as { Statement?: Array<{ Action: string | string[]; Resource?: unknown }> } | undefined;
    for (const statement of document?.Statement ?? []) {
      const actions = [statement.Action].flat();
      for (const resource of [statement.Resource ?? []].flat().map(nagNotation)) {
        if (!resource.includes('*')) continue;
        const kind = SCOPED_WILDCARDS.find((k) => k.test(resource, actions));
        if (kind) Validations.of(policy).acknowledge({ id: `AwsSolutions-IAM5[Resource::${resource}]`, reason: kind.reason });
      }
    }
  }
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
