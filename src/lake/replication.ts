import { Fn, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ProcessedDataReplication } from './data-lake-props';
import { acknowledgeObjectWildcards } from './nag';

const WHERE = 'DataLakeProps.replication';
const PARTITION = 'aws(?:-cn|-us-gov|-iso|-iso-[a-z]|-eusc)?';
const BUCKET_ARN = new RegExp(`^arn:(${PARTITION}):s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])$`);
const KEY_ARN = new RegExp(`^arn:(${PARTITION}):kms:([a-z]{2}(?:-[a-z]+)+-\\d):(\\d{12}):key/([A-Za-z0-9-]+)$`);
/** Storage classes S3 replication accepts (ReplicationDestination.StorageClass). */
const REPLICA_STORAGE_CLASSES = ['STANDARD', 'REDUCED_REDUNDANCY', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER', 'DEEP_ARCHIVE', 'GLACIER_IR'];

/** What `configureReplication` needs to know about the source. */
export interface ReplicationSource {
  readonly bucket: s3.Bucket;
  readonly key: kms.IKey;
  /** Prefixes to replicate, each in its own rule. */
  readonly prefixes: readonly string[];
}

/**
 * Validates `options` (errors name the prop), then sets the processed bucket's replication
 * configuration (one rule per prefix, SSE-KMS objects only, replicas encrypted with the destination
 * key) and creates the role S3 replicates with, limited to those prefixes on both sides.
 * @internal
 */
export function configureReplication(scope: Construct, source: ReplicationSource, options: ProcessedDataReplication): iam.Role {
  const stack = Stack.of(scope);
  const destination = parseDestination(stack, options);
  const replicateDeletes = options.replicateDeletes ?? false;

  const role = new iam.Role(scope, 'ReplicationRole', {
    assumedBy: new iam.ServicePrincipal('s3.amazonaws.com'),
    description: 'Replicates processed data, data cards and documents of the ONS data platform to another Region',
  });
  const sourceObjects = source.prefixes.map((p) => `${source.bucket.bucketArn}/${p}*`);
  const destinationObjects = source.prefixes.map((p) => `${options.destinationBucketArn}/${p}*`);
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'ReadReplicationConfiguration',
    actions: ['s3:GetReplicationConfiguration', 's3:ListBucket'],
    resources: [source.bucket.bucketArn],
  }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'ReadSourceVersions',
    actions: ['s3:GetObjectVersionForReplication', 's3:GetObjectVersionAcl', 's3:GetObjectVersionTagging'],
    resources: sourceObjects,
  }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'WriteReplicas',
    actions: [
      's3:ReplicateObject',
      's3:ReplicateTags',
      ...(replicateDeletes ? ['s3:ReplicateDelete'] : []),
      ...(options.destinationAccount ? ['s3:ObjectOwnerOverrideToBucketOwner'] : []),
    ],
    resources: destinationObjects,
  }));
  // With S3 Bucket Keys the encryption context is the bucket ARN; objects written without one carry their own ARN.
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'DecryptSourceObjects',
    actions: ['kms:Decrypt'],
    resources: [source.key.keyArn],
    conditions: {
      StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` },
      StringLike: { 'kms:EncryptionContext:aws:s3:arn': [source.bucket.bucketArn, ...sourceObjects] },
    },
  }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'EncryptReplicas',
    actions: ['kms:Encrypt'],
    resources: [options.destinationKeyArn],
    conditions: {
      StringEquals: { 'kms:ViaService': `s3.${destination.region}.amazonaws.com` },
      StringLike: { 'kms:EncryptionContext:aws:s3:arn': [options.destinationBucketArn, ...destinationObjects] },
    },
  }));
  const reason = 'Replication reads and writes every object version under the replicated prefixes only '
    + '(processed data, data cards, documents); object ARNs <bucket>/<prefix>* are the narrowest resource for that.';
  acknowledgeObjectWildcards(role, source.bucket, source.prefixes, reason);
  acknowledgeObjectWildcards(role, options.destinationBucketArn, source.prefixes, reason);

  const cfnBucket = source.bucket.node.defaultChild as s3.CfnBucket;
  cfnBucket.replicationConfiguration = {
    role: role.roleArn,
    rules: source.prefixes.map((prefix, i) => ({
      id: `replicate-${prefix.replace(/[^A-Za-z0-9-]+/g, '-').replace(/-+$/, '')}`,
      priority: i + 1,
      status: 'Enabled',
      filter: { prefix },
      deleteMarkerReplication: { status: replicateDeletes ? 'Enabled' : 'Disabled' },
      sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: 'Enabled' } },
      destination: {
        bucket: options.destinationBucketArn,
        encryptionConfiguration: { replicaKmsKeyId: options.destinationKeyArn },
        storageClass: options.storageClass?.value,
        ...(options.destinationAccount
          ? { account: options.destinationAccount, accessControlTranslation: { owner: 'Destination' } }
          : {}),
      },
    })),
  };
  return role;
}

function parseDestination(stack: Stack, options: ProcessedDataReplication): { region: string } {
  const bucketArn = options.destinationBucketArn;
  const keyArn = options.destinationKeyArn;
  let bucketPartition: string | undefined;
  if (!Token.isUnresolved(bucketArn)) {
    const m = BUCKET_ARN.exec(bucketArn);
    if (!m) throw new Error(`${WHERE}.destinationBucketArn: expected arn:<partition>:s3:::<bucket name>, got '${bucketArn}'`);
    bucketPartition = m[1];
  }
  let region: string;
  if (Token.isUnresolved(keyArn)) {
    region = Fn.select(3, Fn.split(':', keyArn));
  } else {
    const m = KEY_ARN.exec(keyArn);
    if (!m) {
      throw new Error(`${WHERE}.destinationKeyArn: expected a key ARN, arn:<partition>:kms:<region>:<account>:key/<key id> (not an alias), got '${keyArn}'`);
    }
    region = m[2];
    if (bucketPartition !== undefined && m[1] !== bucketPartition) {
      throw new Error(`${WHERE}.destinationKeyArn: the key is in partition '${m[1]}' and the bucket in '${bucketPartition}'; they must be in the same partition`);
    }
    if (!Token.isUnresolved(stack.region) && region === stack.region) {
      throw new Error(`${WHERE}.destinationKeyArn: the key is in ${region}, the lake's own Region; cross-Region replication needs the destination bucket and its key in another Region`);
    }
  }
  const account = options.destinationAccount;
  if (account !== undefined && !Token.isUnresolved(account)) {
    if (!/^\d{12}$/.test(account)) throw new Error(`${WHERE}.destinationAccount: expected a 12-digit AWS account id, got '${account}'`);
    if (!Token.isUnresolved(stack.account) && account === stack.account) {
      throw new Error(`${WHERE}.destinationAccount: ${account} is the lake's own account; leave it unset for a destination in the same account`);
    }
  }
  const storageClass = options.storageClass?.value;
  if (storageClass !== undefined && !Token.isUnresolved(storageClass) && !REPLICA_STORAGE_CLASSES.includes(storageClass)) {
    throw new Error(`${WHERE}.storageClass: S3 replication accepts ${REPLICA_STORAGE_CLASSES.join(', ')}, got '${storageClass}'`);
  }
  return { region };
}
