import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { TimeSeriesEnv } from './contract';
import { TimeSeriesStoreBaseProps } from './store';
import { acknowledgeScopedWildcards } from '../core/nag';
import { AwsCall } from '../core/permissions';
import { LakeEnv } from '../lake/contract';
import { LedgerEnv } from '../ledger/contract';
import { HandlerEnv } from '../runtime/contract';

/**
 * What every engine's loader needs from the lake and the ledger: the processed Parquet parts, the raw source's
 * metadata, the rejected-records report under `rejectedRecordsPrefix` in the failed bucket, the key, and the ledger.
 * @internal
 */
export function grantLoaderLakeAccess(fn: lambda.Function, options: TimeSeriesStoreBaseProps, rejectedRecordsPrefix: string): void {
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

/** The loader's environment every engine shares: where it reads, where it reports rejected records, the ledger. @internal */
export function loaderEnvironment(props: TimeSeriesStoreBaseProps, rejectedRecordsPrefix: string, maxWritesInFlight: number): Record<string, string> {
  return {
    [TimeSeriesEnv.MAX_IN_FLIGHT]: String(maxWritesInFlight),
    [TimeSeriesEnv.REJECTED_RECORDS_PREFIX]: rejectedRecordsPrefix,
    [HandlerEnv.STAGE]: props.stage.name,
    [LakeEnv.PROCESSED_BUCKET]: props.dataLake.processedBucket.bucketName,
    [LakeEnv.FAILED_BUCKET]: props.dataLake.failedBucket.bucketName,
    [LedgerEnv.TABLE]: props.ledger.tableName,
  };
}

/** `maxWritesInFlight` of a store's props, checked (each engine has its own default). @internal */
export function checkedMaxWritesInFlight(value: number | undefined, fallback: number): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`maxWritesInFlight: expected an integer from 1 to 64, got ${n}`);
  return n;
}

/**
 * The loader's lake and ledger calls (the ones `grantLoaderLakeAccess` allows), for the permission-closure test.
 * HeadObject of the source is a GetObject right; the ledger is read and updated, never queried.
 * @internal
 */
export function loaderLakeCalls(options: TimeSeriesStoreBaseProps, rejectedRecordsPrefix: string): AwsCall[] {
  const lake = options.dataLake;
  const key = lake.encryptionKey.keyArn;
  const raw = lake.rawBucket.arnForObjects('uploads/file.csv');
  const rejected = lake.failedBucket.arnForObjects(`${rejectedRecordsPrefix}x`);
  return [
    { action: 's3:GetObject', resource: lake.processedBucket.arnForObjects(`${lake.processedDataPrefix}x`), kmsKey: key },
    { action: 's3:GetObject', resource: raw, kmsKey: key },
    { action: 's3:GetObjectVersion', resource: raw, kmsKey: key },
    { action: 's3:ListBucket', resource: lake.rawBucket.bucketArn },
    { action: 's3:PutObject', resource: rejected, kmsKey: key },
    { action: 's3:AbortMultipartUpload', resource: rejected },
    ...['GetItem', 'UpdateItem'].map((a) => ({ action: `dynamodb:${a}`, resource: options.ledger.table.tableArn, kmsKey: key })),
  ];
}
