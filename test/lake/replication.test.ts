import { App, Fn, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DataLake, DataLakeProps, PlatformStage, ProcessedDataReplication } from '../../src';
import { ENV } from '../helpers';

/** CDK's bundled CloudFormation validator fails synth on a template error (property names, types, patterns, ranges). */
const VALIDATE = { '@aws-cdk/core:validateAgainstDefaultRules': true };

const DESTINATION = 'arn:aws:s3:::ons-lake-replica-us-east-1';
const DESTINATION_KEY = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const REPLICATION: ProcessedDataReplication = { destinationBucketArn: DESTINATION, destinationKeyArn: DESTINATION_KEY };

function lake(props: Partial<DataLakeProps> = {}, stage = PlatformStage.PROD) {
  const app = new App({ context: VALIDATE });
  const stack = new Stack(app, 'Lake', { env: ENV });
  const dataLake = new DataLake(stack, 'Lake', { stage, ...props });
  const template = Template.fromStack(stack);
  const bucketId: string = stack.resolve((dataLake.processedBucket.node.defaultChild as s3.CfnBucket).logicalId);
  const processed = template.findResources('AWS::S3::Bucket')[bucketId];
  return { app, stack, dataLake, template, bucketId, processed };
}

function roleStatements(template: Template, roleId: string): any[] {
  const policies = Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => p.Properties.Roles.some((r: any) => r.Ref === roleId));
  expect(policies).toHaveLength(1);
  return policies[0].Properties.PolicyDocument.Statement;
}

describe('DataLake replication', () => {
  test('is off by default: no replication configuration and no role', () => {
    const { processed, template, dataLake } = lake();
    expect(processed.Properties.ReplicationConfiguration).toBeUndefined();
    expect(dataLake.replicationRole).toBeUndefined();
    template.resourceCountIs('AWS::IAM::Role', 0);
  });

  describe('to a bucket in another Region of the same account', () => {
    const { processed, template, stack, dataLake, bucketId } = lake({ replication: REPLICATION });
    const roleId: string = stack.resolve((dataLake.replicationRole!.node.defaultChild as any).logicalId);
    const statements = roleStatements(template, roleId);
    const bucketArn = { 'Fn::GetAtt': [bucketId, 'Arn'] };
    const sourceObjects = (prefix: string) => ({ 'Fn::Join': ['', [bucketArn, `/${prefix}*`]] });
    const keyArn = { 'Fn::GetAtt': [Object.keys(template.findResources('AWS::KMS::Key'))[0], 'Arn'] };
    const prefixes = ['processed/', 'knowledge/cards/', 'knowledge/documents/'];

    test('replicates processed data, data cards and documents (not query results), SSE-KMS objects only, encrypted with the destination key', () => {
      const config = processed.Properties.ReplicationConfiguration;
      expect(config.Role).toEqual({ 'Fn::GetAtt': [roleId, 'Arn'] });
      expect(config.Rules).toEqual(prefixes.map((prefix, i) => ({
        Id: `replicate-${prefix.replace(/\/$/, '').replace(/\//g, '-')}`,
        Priority: i + 1,
        Status: 'Enabled',
        Filter: { Prefix: prefix },
        DeleteMarkerReplication: { Status: 'Disabled' },
        SourceSelectionCriteria: { SseKmsEncryptedObjects: { Status: 'Enabled' } },
        Destination: { Bucket: DESTINATION, EncryptionConfiguration: { ReplicaKmsKeyID: DESTINATION_KEY } },
      })));
      expect(JSON.stringify(config)).not.toContain('athena-results');
    });

    test('the bucket stays versioned (replication needs it)', () => {
      expect(processed.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    });

    test('the role is for S3 only and has only what replication uses, on the replicated prefixes', () => {
      const role = template.findResources('AWS::IAM::Role')[roleId];
      expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
        { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 's3.amazonaws.com' } },
      ]);
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      expect(statements).toEqual([
        { Sid: 'ReadReplicationConfiguration', Effect: 'Allow', Action: ['s3:GetReplicationConfiguration', 's3:ListBucket'], Resource: bucketArn },
        {
          Sid: 'ReadSourceVersions',
          Effect: 'Allow',
          Action: ['s3:GetObjectVersionForReplication', 's3:GetObjectVersionAcl', 's3:GetObjectVersionTagging'],
          Resource: prefixes.map(sourceObjects),
        },
        {
          Sid: 'WriteReplicas',
          Effect: 'Allow',
          Action: ['s3:ReplicateObject', 's3:ReplicateTags'],
          Resource: prefixes.map((p) => `${DESTINATION}/${p}*`),
        },
        {
          Sid: 'DecryptSourceObjects',
          Effect: 'Allow',
          Action: 'kms:Decrypt',
          Resource: keyArn,
          Condition: {
            StringEquals: { 'kms:ViaService': 's3.sa-east-1.amazonaws.com' },
            StringLike: { 'kms:EncryptionContext:aws:s3:arn': [bucketArn, ...prefixes.map(sourceObjects)] },
          },
        },
        {
          Sid: 'EncryptReplicas',
          Effect: 'Allow',
          Action: 'kms:Encrypt',
          Resource: DESTINATION_KEY,
          Condition: {
            StringEquals: { 'kms:ViaService': 's3.us-east-1.amazonaws.com' },
            StringLike: { 'kms:EncryptionContext:aws:s3:arn': [DESTINATION, ...prefixes.map((p) => `${DESTINATION}/${p}*`)] },
          },
        },
      ]);
      for (const s of statements) for (const a of [s.Action].flat()) expect(a).not.toMatch(/\*/);
    });
  });

  test('to another account: owner override, with the permission it needs; deletes, storage class', () => {
    const { processed, template, stack, dataLake } = lake({
      replication: { ...REPLICATION, destinationAccount: '210987654321', replicateDeletes: true, storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL },
    });
    for (const rule of processed.Properties.ReplicationConfiguration.Rules) {
      expect(rule.DeleteMarkerReplication).toEqual({ Status: 'Enabled' });
      expect(rule.Destination).toEqual({
        Bucket: DESTINATION,
        Account: '210987654321',
        AccessControlTranslation: { Owner: 'Destination' },
        StorageClass: 'GLACIER_IR',
        EncryptionConfiguration: { ReplicaKmsKeyID: DESTINATION_KEY },
      });
    }
    const roleId = stack.resolve((dataLake.replicationRole!.node.defaultChild as any).logicalId);
    const write = roleStatements(template, roleId).find((s) => s.Sid === 'WriteReplicas');
    expect(write.Action).toEqual(['s3:ReplicateObject', 's3:ReplicateTags', 's3:ReplicateDelete', 's3:ObjectOwnerOverrideToBucketOwner']);
  });

  test('follows custom prefixes', () => {
    const { processed } = lake({ replication: REPLICATION, processedDataPrefix: 'parquet/', dataCardsPrefix: 'cards/', documentsPrefix: 'docs/' });
    expect(processed.Properties.ReplicationConfiguration.Rules.map((r: any) => r.Filter.Prefix)).toEqual(['parquet/', 'cards/', 'docs/']);
  });

  test('takes the destination Region from a key ARN that is a token', () => {
    const app = new App({ context: VALIDATE });
    const stack = new Stack(app, 'Lake', { env: ENV });
    const keyArn = Fn.importValue('ReplicaKeyArn');
    const dataLake = new DataLake(stack, 'Lake', { stage: PlatformStage.PROD, replication: { destinationBucketArn: DESTINATION, destinationKeyArn: keyArn } });
    const roleId = stack.resolve((dataLake.replicationRole!.node.defaultChild as any).logicalId);
    const encrypt = roleStatements(Template.fromStack(stack), roleId).find((s) => s.Sid === 'EncryptReplicas');
    expect(encrypt.Condition.StringEquals['kms:ViaService']).toEqual({
      'Fn::Join': ['', ['s3.', { 'Fn::Select': [3, { 'Fn::Split': [':', { 'Fn::ImportValue': 'ReplicaKeyArn' }] }] }, '.amazonaws.com']],
    });
  });

  const refused = (replication: Partial<ProcessedDataReplication>) => () => lake({ replication: { ...REPLICATION, ...replication } });
  test.each([
    [{ destinationBucketArn: 'ons-lake-replica' }, /DataLakeProps.replication.destinationBucketArn: expected arn:<partition>:s3:::<bucket name>, got 'ons-lake-replica'/],
    [{ destinationBucketArn: 'arn:aws:s3:::Bad_Bucket' }, /DataLakeProps.replication.destinationBucketArn/],
    [{ destinationBucketArn: `${DESTINATION}/prefix` }, /DataLakeProps.replication.destinationBucketArn/],
    [{ destinationKeyArn: 'arn:aws:kms:us-east-1:123456789012:alias/replica' }, /DataLakeProps.replication.destinationKeyArn: expected a key ARN, .* \(not an alias\)/],
    [{ destinationKeyArn: '1234abcd-12ab-34cd-56ef-1234567890ab' }, /DataLakeProps.replication.destinationKeyArn: expected a key ARN/],
    [{ destinationKeyArn: 'arn:aws:kms:sa-east-1:123456789012:key/1234abcd' }, /DataLakeProps.replication.destinationKeyArn: the key is in sa-east-1, the lake's own Region; cross-Region replication needs/],
    [{ destinationKeyArn: 'arn:aws-cn:kms:cn-north-1:123456789012:key/1234abcd' }, /the key is in partition 'aws-cn' and the bucket in 'aws'/],
    [{ destinationAccount: '1234' }, /DataLakeProps.replication.destinationAccount: expected a 12-digit AWS account id, got '1234'/],
    [{ destinationAccount: ENV.account }, /DataLakeProps.replication.destinationAccount: 123456789012 is the lake's own account; leave it unset/],
    [{ storageClass: new s3.StorageClass('EXPRESS_ONEZONE') }, /DataLakeProps.replication.storageClass: S3 replication accepts .*, got 'EXPRESS_ONEZONE'/],
  ])('%j is refused', (replication, message) => {
    expect(refused(replication)).toThrow(message);
  });

  test.each([PlatformStage.DEV, PlatformStage.PROD])('cdk-nag: the replication role has exactly its prefix findings acknowledged, nothing else unacknowledged (%#)', (stage) => {
    const { app, dataLake, bucketId } = lake({ replication: REPLICATION }, stage);
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).not.toThrow();
    const ids = dataLake.replicationRole!.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) => Object.keys(m.data as object)).map((k) => k.replace(/^annotation::/i, ''));
    const prefixes = ['processed/', 'knowledge/cards/', 'knowledge/documents/'];
    expect(ids.sort()).toEqual([
      ...prefixes.map((p) => `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${p}*]`),
      ...prefixes.map((p) => `AwsSolutions-IAM5[Resource::${DESTINATION}/${p}*]`),
    ].sort());
  });
});
