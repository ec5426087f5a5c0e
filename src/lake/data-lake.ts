import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DataLakeProps } from './data-lake-props';
import { DataLakeLifecycle, resolveLifecycle } from './lifecycle';
import { allowLogsToUseKey, applyPlatformTags } from '../platform/defaults';
import { applyDataRemovalPolicy, dataRemovalPolicy } from '../platform/removal';

/**
 * The platform's S3 data lake: raw, processed and failed buckets, plus a bucket for their server access logs.
 *
 * Every bucket is encrypted with one customer-managed KMS key (rotated yearly, S3 Bucket Keys on),
 * versioned, blocks all public access, disables ACLs, and denies requests without TLS 1.2 or later.
 * The raw bucket sends its events to Amazon EventBridge (natively, with no custom resource), which is
 * where ingestion starts. Lifecycle rules come from the stage and can be overridden one by one.
 *
 * Buckets, key and logs are retained when the stack is deleted, unless the context flag
 * `ons-data-platform:removeDataOnDestroy` is `true` and the stage allows data removal (not PROD).
 *
 * @example
 * const lake = new DataLake(stack, 'Lake', { stage: PlatformStage.PROD });
 * lake.grantUpload(uploaderRole);
 */
export class DataLake extends Construct {
  /** The customer-managed key that encrypts the lake. */
  public readonly encryptionKey: kms.IKey;
  /** Where ONS files are dropped, as published. Sends its events to EventBridge. */
  public readonly rawBucket: s3.IBucket;
  /** Processed Parquet, data cards and knowledge-base documents. */
  public readonly processedBucket: s3.IBucket;
  /** Quarantined files and rejected rows, with the reasons. */
  public readonly failedBucket: s3.IBucket;
  /** Server access logs of the other three buckets. */
  public readonly accessLogsBucket: s3.IBucket;
  /** The lifecycle in force (the stage's, with the props' overrides). */
  public readonly lifecycle: DataLakeLifecycle;
  /** The removal policy applied to the buckets and the key. */
  public readonly removalPolicy: RemovalPolicy;
  /** Prefix of processed Parquet files in the processed bucket. */
  public readonly processedDataPrefix: string;
  /** Prefix of knowledge-base documents in the processed bucket. */
  public readonly documentsPrefix: string;
  /** Prefix of data cards in the processed bucket. */
  public readonly dataCardsPrefix: string;
  /** Prefix of rejected rows in the failed bucket. */
  public readonly rejectedRowsPrefix: string;
  /** Prefix of quarantined files in the failed bucket. */
  public readonly quarantinePrefix: string;

  constructor(scope: Construct, id: string, props: DataLakeProps) {
    super(scope, id);
    const stage = props.stage;
    const lifecycle = resolveLifecycle(stage.lifecycle, props.lifecycle, 'DataLakeProps.lifecycle');
    this.lifecycle = lifecycle;

    this.processedDataPrefix = validatePrefix('processedDataPrefix', props.processedDataPrefix ?? 'processed/');
    this.documentsPrefix = validatePrefix('documentsPrefix', props.documentsPrefix ?? 'knowledge/documents/');
    this.dataCardsPrefix = validatePrefix('dataCardsPrefix', props.dataCardsPrefix ?? 'knowledge/cards/');
    this.rejectedRowsPrefix = validatePrefix('rejectedRowsPrefix', props.rejectedRowsPrefix ?? 'rejected/');
    this.quarantinePrefix = validatePrefix('quarantinePrefix', props.quarantinePrefix ?? 'quarantine/');
    assertDisjoint('processed bucket', {
      processedDataPrefix: this.processedDataPrefix,
      documentsPrefix: this.documentsPrefix,
      dataCardsPrefix: this.dataCardsPrefix,
    });
    assertDisjoint('failed bucket', { rejectedRowsPrefix: this.rejectedRowsPrefix, quarantinePrefix: this.quarantinePrefix });

    applyPlatformTags(this, stage, props.tags);
    this.removalPolicy = dataRemovalPolicy(this, stage);
    const destroy = this.removalPolicy === RemovalPolicy.DESTROY;

    if (props.encryptionKey) {
      this.encryptionKey = props.encryptionKey;
    } else {
      const key = new kms.Key(this, 'Key', {
        description: `ONS data platform (${stage.name}): data lake, logs and function environments`,
        enableKeyRotation: true,
      });
      applyDataRemovalPolicy(key, stage);
      this.encryptionKey = key;
    }
    allowLogsToUseKey(this.encryptionKey);

    const noncurrentAndUploads: s3.LifecycleRule = {
      id: 'noncurrent-versions-and-incomplete-uploads',
      noncurrentVersionExpiration: Duration.days(lifecycle.noncurrentVersionExpirationDays),
      abortIncompleteMultipartUploadAfter: Duration.days(lifecycle.abortIncompleteMultipartUploadDays),
    };
    const bucketProps: s3.BucketProps = {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.encryptionKey,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      removalPolicy: this.removalPolicy,
      autoDeleteObjects: destroy,
    };

    const accessLogs = new s3.Bucket(this, 'AccessLogsBucket', {
      ...bucketProps,
      lifecycleRules: [
        noncurrentAndUploads,
        { id: 'expire-access-logs', expiration: Duration.days(lifecycle.accessLogsExpirationDays) },
      ],
    });
    this.accessLogsBucket = accessLogs;

    const raw = this.dataBucket('RawBucket', 'raw/', bucketProps, [
      {
        ...noncurrentAndUploads,
        transitions: [
          { storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(lifecycle.rawInfrequentAccessAfterDays) },
          { storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(lifecycle.rawGlacierInstantRetrievalAfterDays) },
          { storageClass: s3.StorageClass.DEEP_ARCHIVE, transitionAfter: Duration.days(lifecycle.rawDeepArchiveAfterDays) },
        ],
      },
    ]);
    // Native S3 → EventBridge delivery: no notification custom resource (and its Lambda) needed.
    (raw.node.defaultChild as s3.CfnBucket).notificationConfiguration = { eventBridgeConfiguration: { eventBridgeEnabled: true } };
    this.rawBucket = raw;

    this.processedBucket = this.dataBucket('ProcessedBucket', 'processed/', bucketProps, [
      noncurrentAndUploads,
      {
        id: 'processed-data-to-infrequent-access',
        prefix: this.processedDataPrefix,
        transitions: [{
          storageClass: s3.StorageClass.INFREQUENT_ACCESS,
          transitionAfter: Duration.days(lifecycle.processedInfrequentAccessAfterDays),
        }],
      },
    ]);

    this.failedBucket = this.dataBucket('FailedBucket', 'failed/', bucketProps, [
      noncurrentAndUploads,
      { id: 'expire-failed', expiration: Duration.days(lifecycle.failedExpirationDays) },
    ]);

    this.allowAccessLogDelivery(accessLogs, [raw, this.processedBucket, this.failedBucket]);
  }

  /**
   * Lets `grantee` upload files to the raw bucket (which starts their ingestion).
   */
  public grantUpload(grantee: iam.IGrantable): iam.Grant {
    return this.rawBucket.grantPut(grantee);
  }

  /**
   * Lets `grantee` read the raw files.
   */
  public grantReadRaw(grantee: iam.IGrantable): iam.Grant {
    return this.rawBucket.grantRead(grantee);
  }

  /**
   * Lets `grantee` read processed Parquet files (only under `processedDataPrefix`), e.g. an analytics engine.
   */
  public grantReadProcessedData(grantee: iam.IGrantable): iam.Grant {
    return this.processedBucket.grantRead(grantee, `${this.processedDataPrefix}*`);
  }

  private dataBucket(id: string, logPrefix: string, bucketProps: s3.BucketProps, lifecycleRules: s3.LifecycleRule[]): s3.Bucket {
    const bucket = new s3.Bucket(this, id, { ...bucketProps, lifecycleRules });
    // Logging set on the L1 with an explicit bucket policy below, so it does not depend on the
    // consumer's feature flags (without one, CDK would switch the log bucket to ACLs).
    (bucket.node.defaultChild as s3.CfnBucket).loggingConfiguration = {
      destinationBucketName: this.accessLogsBucket.bucketName,
      logFilePrefix: logPrefix,
      targetObjectKeyFormat: { partitionedPrefix: { partitionDateSource: 'EventTime' } },
    };
    return bucket;
  }

  private allowAccessLogDelivery(accessLogs: s3.Bucket, sources: s3.IBucket[]): void {
    const stack = Stack.of(this);
    const logging = new iam.ServicePrincipal('logging.s3.amazonaws.com');
    accessLogs.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AllowServerAccessLogDelivery',
      principals: [logging],
      actions: ['s3:PutObject'],
      resources: [accessLogs.arnForObjects('*')],
      conditions: {
        ArnLike: { 'aws:SourceArn': sources.map((b) => b.bucketArn) },
        StringEquals: { 'aws:SourceAccount': stack.account },
      },
    }));
    // S3 server access logging writes SSE-KMS objects with the lake key.
    this.encryptionKey.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AllowServerAccessLogDeliveryEncryption',
      principals: [logging],
      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
      resources: ['*'], // in a key policy, '*' means this key
      conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
    }));
  }
}

const PREFIX_PATTERN = /^[A-Za-z0-9!_.*'()=-]+(\/[A-Za-z0-9!_.*'()=-]+)*\/$/;

function validatePrefix(prop: string, value: string): string {
  if (value.length === 0) throw new Error(`DataLakeProps.${prop}: must not be empty (the lake keeps each kind of object under its own prefix)`);
  if (value.length > 512 || !PREFIX_PATTERN.test(value)) {
    throw new Error(`DataLakeProps.${prop}: expected path segments of letters, digits and !_.*'()=- ending with '/', with no leading '/', got '${value}'`);
  }
  return value;
}

function assertDisjoint(where: string, prefixes: Record<string, string>): void {
  const entries = Object.entries(prefixes);
  for (const [a, pa] of entries) {
    for (const [b, pb] of entries) {
      if (a !== b && pb.startsWith(pa)) {
        throw new Error(`DataLakeProps.${b} ('${pb}') must not be inside ${a} ('${pa}'): both live in the ${where} and need separate prefixes`);
      }
    }
  }
}
