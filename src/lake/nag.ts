import { Stack, Token, Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { IConstruct } from 'constructs';

/**
 * How cdk-nag names a bucket's ARN in a finding: `<LogicalId.Arn>` for a bucket of this app, the ARN
 * itself for a literal; undefined for any other token (its finding cannot be named in advance).
 * @internal
 */
export function nagBucketArn(bucket: s3.IBucket | string): string | undefined {
  if (typeof bucket === 'string') return Token.isUnresolved(bucket) ? undefined : bucket;
  const cfn = bucket.node.defaultChild;
  if (!(cfn instanceof s3.CfnBucket)) return undefined;
  return `<${Stack.of(cfn).resolve(cfn.logicalId)}.Arn>`;
}

/**
 * Acknowledges, on `scope`, exactly the AwsSolutions-IAM5 findings for the object ARNs
 * `<bucket>/<prefix>*`, one per prefix: nothing broader.
 * @internal
 */
export function acknowledgeObjectWildcards(scope: IConstruct, bucket: s3.IBucket | string, prefixes: readonly string[], reason: string): void {
  const arn = nagBucketArn(bucket);
  if (arn === undefined) return;
  for (const prefix of prefixes) {
    Validations.of(scope).acknowledge({ id: `AwsSolutions-IAM5[Resource::${arn}/${prefix}*]`, reason });
  }
}
