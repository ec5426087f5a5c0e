import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { DataLake, DataLakeProps, PlatformStage } from '../../src';
import { ENV } from '../helpers';

function lake(props: Partial<DataLakeProps> & { stage: PlatformStage }, context: Record<string, unknown> = {}) {
  const app = new App({ context });
  const stack = new Stack(app, 'Lake', { env: ENV });
  const dataLake = new DataLake(stack, 'Lake', props);
  return { stack, dataLake, template: Template.fromStack(stack) };
}

type Resources = Record<string, { Type: string; Properties: any; DeletionPolicy?: string; UpdateReplacePolicy?: string }>;

function buckets(template: Template): Resources {
  return template.findResources('AWS::S3::Bucket') as Resources;
}

function bucket(template: Template, name: 'Raw' | 'Processed' | 'Failed' | 'AccessLogs') {
  const [id, resource] = Object.entries(buckets(template)).find(([logicalId]) => logicalId.startsWith(`Lake${name}Bucket`))!;
  return { id, ...resource };
}

function rules(template: Template, name: 'Raw' | 'Processed' | 'Failed' | 'AccessLogs'): any[] {
  return bucket(template, name).Properties.LifecycleConfiguration.Rules;
}

describe('DataLake', () => {
  const { template } = lake({ stage: PlatformStage.PROD });

  test('creates raw, processed, failed and access-log buckets and one rotating customer-managed key', () => {
    expect(Object.keys(buckets(template))).toHaveLength(4);
    template.resourceCountIs('AWS::KMS::Key', 1);
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  test('encrypts every bucket with the customer-managed key and S3 Bucket Keys', () => {
    const keyId = Object.keys(template.findResources('AWS::KMS::Key'))[0];
    for (const [id, b] of Object.entries(buckets(template))) {
      const sse = b.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0];
      expect({ id, sse }).toEqual({
        id,
        sse: { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [keyId, 'Arn'] } } },
      });
    }
  });

  test('versions every bucket, blocks public access and disables ACLs', () => {
    for (const b of Object.values(buckets(template))) {
      expect(b.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
      expect(b.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true,
      });
      expect(b.Properties.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
    }
  });

  test('every bucket policy denies requests without TLS and below TLS 1.2', () => {
    const policies = template.findResources('AWS::S3::BucketPolicy');
    expect(Object.keys(policies)).toHaveLength(4);
    for (const policy of Object.values(policies)) {
      const bucketRef = policy.Properties.Bucket.Ref;
      const statements: any[] = policy.Properties.PolicyDocument.Statement;
      const covers = (s: any) => JSON.stringify(s.Resource).includes(bucketRef) && JSON.stringify(s.Resource).includes('/*');
      expect(statements.find((s) => s.Effect === 'Deny' && s.Action === 's3:*' && s.Principal.AWS === '*'
        && s.Condition?.Bool?.['aws:SecureTransport'] === 'false' && covers(s))).toBeDefined();
      expect(statements.find((s) => s.Effect === 'Deny' && s.Condition?.NumericLessThan?.['s3:TlsVersion'] === 1.2 && covers(s))).toBeDefined();
    }
  });

  test('the raw bucket sends events to EventBridge natively, with no custom resource or function', () => {
    expect(bucket(template, 'Raw').Properties.NotificationConfiguration).toEqual({ EventBridgeConfiguration: { EventBridgeEnabled: true } });
    for (const name of ['Processed', 'Failed', 'AccessLogs'] as const) {
      expect(bucket(template, name).Properties.NotificationConfiguration).toBeUndefined();
    }
    template.resourceCountIs('Custom::S3BucketNotifications', 0);
    template.resourceCountIs('AWS::Lambda::Function', 0);
  });

  test('logs access to raw, processed and failed in the access-log bucket, which lets only S3 logging of those buckets write', () => {
    const logsBucket = bucket(template, 'AccessLogs');
    for (const [name, prefix] of [['Raw', 'raw/'], ['Processed', 'processed/'], ['Failed', 'failed/']] as const) {
      expect(bucket(template, name).Properties.LoggingConfiguration).toEqual({
        DestinationBucketName: { Ref: logsBucket.id },
        LogFilePrefix: prefix,
        TargetObjectKeyFormat: { PartitionedPrefix: { PartitionDateSource: 'EventTime' } },
      });
    }
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logsBucket.id },
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({
          Sid: 'AllowServerAccessLogDelivery',
          Effect: 'Allow',
          Principal: { Service: 'logging.s3.amazonaws.com' },
          Action: 's3:PutObject',
          Condition: { ArnLike: { 'aws:SourceArn': Match.arrayWith([{ 'Fn::GetAtt': [bucket(template, 'Raw').id, 'Arn'] }]) }, StringEquals: { 'aws:SourceAccount': ENV.account } },
        })]),
      },
    });
  });

  test('the key lets CloudWatch Logs of this account and region and S3 log delivery use it', () => {
    const key = Object.values(template.findResources('AWS::KMS::Key'))[0];
    const statements: any[] = key.Properties.KeyPolicy.Statement;
    const logs = statements.find((s) => s.Sid === 'AllowCloudWatchLogsOfThisAccount');
    expect(logs.Principal).toEqual({ Service: 'logs.sa-east-1.amazonaws.com' });
    expect(logs.Action).not.toContain('kms:*');
    expect(logs.Condition.ArnLike['kms:EncryptionContext:aws:logs:arn']).toEqual({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':logs:sa-east-1:123456789012:log-group:*']],
    });
    const delivery = statements.find((s) => s.Sid === 'AllowServerAccessLogDeliveryEncryption');
    expect(delivery.Principal).toEqual({ Service: 'logging.s3.amazonaws.com' });
    expect(delivery.Condition).toEqual({ StringEquals: { 'aws:SourceAccount': ENV.account } });
  });

  describe.each([
    [PlatformStage.DEV, { failed: 30, logs: 30, noncurrent: 7, uploads: 1 }],
    [PlatformStage.STAGING, { failed: 365, logs: 90, noncurrent: 30, uploads: 7 }],
    [PlatformStage.PROD, { failed: 2555, logs: 90, noncurrent: 90, uploads: 7 }],
  ])('lifecycle in stage %#', (stage, days) => {
    const t = lake({ stage }).template;
    const common = {
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: days.uploads },
      NoncurrentVersionExpiration: { NoncurrentDays: days.noncurrent },
    };

    test(`${stage.name}: raw goes to Standard-IA at 30 days, Glacier IR at 90, Deep Archive at 365`, () => {
      expect(rules(t, 'Raw')).toEqual([expect.objectContaining({
        ...common,
        Status: 'Enabled',
        Transitions: [
          { StorageClass: 'STANDARD_IA', TransitionInDays: 30 },
          { StorageClass: 'GLACIER_IR', TransitionInDays: 90 },
          { StorageClass: 'DEEP_ARCHIVE', TransitionInDays: 365 },
        ],
      })]);
    });

    test(`${stage.name}: processed Parquet goes to Standard-IA at 30 days; cards and documents stay in Standard; query results and what a killed run staged expire`, () => {
      expect(rules(t, 'Processed')).toEqual([
        expect.objectContaining(common),
        expect.objectContaining({ Prefix: 'processed/', Transitions: [{ StorageClass: 'STANDARD_IA', TransitionInDays: 30 }] }),
        { Id: 'expire-query-results', Prefix: 'athena-results/', ExpirationInDays: 30, Status: 'Enabled' },
        { Id: 'expire-staging', Prefix: 'staging/', ExpirationInDays: 3, Status: 'Enabled' },
      ]);
    });

    test(`${stage.name}: failed objects expire after ${days.failed} days, access logs after ${days.logs}`, () => {
      expect(rules(t, 'Failed')).toEqual([expect.objectContaining(common), expect.objectContaining({ ExpirationInDays: days.failed })]);
      expect(rules(t, 'AccessLogs')).toEqual([expect.objectContaining(common), expect.objectContaining({ ExpirationInDays: days.logs })]);
    });
  });

  test('a lifecycle prop overrides only its own field of the stage preset', () => {
    const t = lake({ stage: PlatformStage.PROD, lifecycle: { rawDeepArchiveAfterDays: 730, failedExpirationDays: 3650 } }).template;
    expect(rules(t, 'Raw')[0].Transitions).toEqual([
      { StorageClass: 'STANDARD_IA', TransitionInDays: 30 },
      { StorageClass: 'GLACIER_IR', TransitionInDays: 90 },
      { StorageClass: 'DEEP_ARCHIVE', TransitionInDays: 730 },
    ]);
    expect(rules(t, 'Failed')[1].ExpirationInDays).toBe(3650);
    expect(rules(t, 'AccessLogs')[1].ExpirationInDays).toBe(90);
  });

  test('uses a given key instead of creating one', () => {
    const app = new App();
    const stack = new Stack(app, 'S', { env: ENV });
    const key = new kms.Key(stack, 'Mine', { enableKeyRotation: true });
    const dataLake = new DataLake(stack, 'Lake', { stage: PlatformStage.DEV, encryptionKey: key });
    expect(dataLake.encryptionKey).toBe(key);
    Template.fromStack(stack).resourceCountIs('AWS::KMS::Key', 1);
  });

  test('grantUpload lets a role put objects in the raw bucket only', () => {
    const app = new App();
    const stack = new Stack(app, 'S', { env: ENV });
    const dataLake = new DataLake(stack, 'Lake', { stage: PlatformStage.DEV });
    const role = new iam.Role(stack, 'Uploader', { assumedBy: new iam.AccountRootPrincipal() });
    dataLake.grantUpload(role);
    const t = Template.fromStack(stack);
    const policy = Object.values(t.findResources('AWS::IAM::Policy'))[0];
    const text = JSON.stringify(policy.Properties.PolicyDocument);
    expect(text).toContain('s3:PutObject');
    expect(text).not.toContain('s3:GetObject');
    expect(text).toContain(stack.resolve((dataLake.rawBucket.node.defaultChild as any).logicalId));
    expect(text).not.toContain(stack.resolve((dataLake.processedBucket.node.defaultChild as any).logicalId));
  });

  test('grantReadProcessedData is limited to the processed-data prefix', () => {
    const app = new App();
    const stack = new Stack(app, 'S', { env: ENV });
    const dataLake = new DataLake(stack, 'Lake', { stage: PlatformStage.DEV, processedDataPrefix: 'parquet/' });
    const role = new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() });
    dataLake.grantReadProcessedData(role);
    const text = JSON.stringify(Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'))[0]);
    expect(text).toContain('/parquet/*');
    expect(text).toContain('kms:Decrypt');
  });
});

describe('DataLake removal policy', () => {
  const stateful = (template: Template) => ({
    ...template.findResources('AWS::S3::Bucket'),
    ...template.findResources('AWS::KMS::Key'),
  }) as Resources;

  test.each([PlatformStage.DEV, PlatformStage.STAGING, PlatformStage.PROD])('without the context flag, %# retains buckets and key', (stage) => {
    const { template, dataLake } = lake({ stage });
    for (const r of Object.values(stateful(template))) {
      expect([r.DeletionPolicy, r.UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
    }
    expect(dataLake.removalPolicy).toBe('retain');
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
  });

  test.each([true, 'true'])('with the flag (%p) in DEV, destroys buckets (emptying them first) and key', (flag) => {
    const { template } = lake({ stage: PlatformStage.DEV }, { [PlatformStage.REMOVE_DATA_ON_DESTROY_CONTEXT]: flag });
    for (const r of Object.values(stateful(template))) {
      expect([r.DeletionPolicy, r.UpdateReplacePolicy]).toEqual(['Delete', 'Delete']);
    }
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 4);
  });

  test('with the flag set to anything but true, retains', () => {
    const { template } = lake({ stage: PlatformStage.DEV }, { [PlatformStage.REMOVE_DATA_ON_DESTROY_CONTEXT]: 'yes' });
    for (const r of Object.values(stateful(template))) expect(r.DeletionPolicy).toBe('Retain');
  });

  test('with the flag in PROD, refuses: retains everything and warns', () => {
    const { template, stack } = lake({ stage: PlatformStage.PROD }, { [PlatformStage.REMOVE_DATA_ON_DESTROY_CONTEXT]: true });
    for (const r of Object.values(stateful(template))) {
      expect([r.DeletionPolicy, r.UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
    }
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
    Annotations.fromStack(stack).hasWarning('/Lake/Lake', Match.stringLikeRegexp("stage 'prod' does not allow data removal"));
  });

  test('a stage derived from PROD keeps refusing unless it says otherwise', () => {
    const derived = PlatformStage.PROD.derive({ name: 'prod-eu' });
    const context = { [PlatformStage.REMOVE_DATA_ON_DESTROY_CONTEXT]: true };
    expect(lake({ stage: derived }, context).dataLake.removalPolicy).toBe('retain');
    expect(lake({ stage: derived.derive({ name: 'sandbox', allowDataRemoval: true }) }, context).dataLake.removalPolicy).toBe('destroy');
  });
});

describe('DataLake validation', () => {
  const make = (props: Partial<DataLakeProps>) => () => lake({ stage: PlatformStage.PROD, ...props });

  test.each([
    [{ lifecycle: { failedExpirationDays: -1 } }, /DataLakeProps.lifecycle.failedExpirationDays: expected a whole number of days of at least 1, got -1/],
    [{ lifecycle: { noncurrentVersionExpirationDays: 0 } }, /DataLakeProps.lifecycle.noncurrentVersionExpirationDays/],
    [{ lifecycle: { accessLogsExpirationDays: 1.5 } }, /DataLakeProps.lifecycle.accessLogsExpirationDays/],
    [{ lifecycle: { rawInfrequentAccessAfterDays: 20 } }, /DataLakeProps.lifecycle.rawInfrequentAccessAfterDays: S3 moves objects to Standard-IA no sooner than 30 days/],
    [{ lifecycle: { rawInfrequentAccessAfterDays: 120 } }, /DataLakeProps.lifecycle.rawGlacierInstantRetrievalAfterDays \(90\) must come at least 30 days after rawInfrequentAccessAfterDays \(120\)/],
    [{ lifecycle: { rawGlacierInstantRetrievalAfterDays: 400 } }, /DataLakeProps.lifecycle.rawDeepArchiveAfterDays \(365\) must come after rawGlacierInstantRetrievalAfterDays \(400\)/],
    [{ processedDataPrefix: '' }, /DataLakeProps.processedDataPrefix: must not be empty/],
    [{ quarantinePrefix: 'quarantine' }, /DataLakeProps.quarantinePrefix: expected path segments .* ending with '\/'/],
    [{ documentsPrefix: '/docs/' }, /DataLakeProps.documentsPrefix: expected path segments/],
    [{ dataCardsPrefix: 'processed/cards/' }, /DataLakeProps.dataCardsPrefix \('processed\/cards\/'\) must not be inside processedDataPrefix/],
    [{ stagingPrefix: 'processed/staging/' }, /DataLakeProps.stagingPrefix \('processed\/staging\/'\) must not be inside processedDataPrefix/],
    [{ stagingExpirationDays: 0 }, /DataLakeProps.stagingExpirationDays: expected a whole number of days of at least 1, got 0/],
    [{ tags: { 'aws:cost': 'x' } }, /tags: key 'aws:cost'/],
  ])('%j is refused', (props, message) => {
    expect(make(props as Partial<DataLakeProps>)).toThrow(message);
  });

  test('defaults pass', () => {
    expect(make({})).not.toThrow();
  });
});

describe('documented defaults', () => {
  test('prefixes, key and lifecycle match the TSDoc @default values', () => {
    const { dataLake, template } = lake({ stage: PlatformStage.STAGING });
    const { processedDataPrefix, documentsPrefix, dataCardsPrefix, rejectedRowsPrefix, quarantinePrefix, stagingPrefix } = dataLake;
    expect([processedDataPrefix, documentsPrefix, dataCardsPrefix, rejectedRowsPrefix, quarantinePrefix, stagingPrefix])
      .toEqual(['processed/', 'knowledge/documents/', 'knowledge/cards/', 'rejected/', 'quarantine/', 'staging/']);
    expect(dataLake.lifecycle).toEqual(PlatformStage.STAGING.lifecycle);
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });
});
