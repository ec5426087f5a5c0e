import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { TimeSeriesFunctionOptions } from './store';
import { acknowledgeScopedWildcards } from '../core/nag';

/**
 * What every engine's loader needs from the lake and the ledger: the processed Parquet parts, the raw source's
 * metadata, the rejected-records report under `rejectedRecordsPrefix` in the failed bucket, the key, and the ledger.
 * @internal
 */
export function grantLoaderLakeAccess(fn: lambda.Function, options: TimeSeriesFunctionOptions, rejectedRecordsPrefix: string): void {
  const lake = options.dataLake;
  fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [lake.processedBucket.arnForObjects(`${lake.processedDataPrefix}*`)] }));
  // The source's last-modified time is the points' version.
  fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: [lake.rawBucket.arnForObjects('*')] }));
  // A deleted source then reads as 404, not 403.
  fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [lake.rawBucket.bucketArn] }));
  fn.addToRolePolicy(new iam.PolicyStatement({
    actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
    resources: [lake.failedBucket.arnForObjects(`${rejectedRecordsPrefix}*`)],
  }));
  lake.encryptionKey.grant(fn, 'kms:Decrypt', 'kms:GenerateDataKey');
  options.ledger.grantRecord(fn);
  acknowledgeScopedWildcards(fn.role!);
}
