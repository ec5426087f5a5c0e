import { App, Duration, Size, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  IngestionPipeline, InfluxDbStore, InfluxDbStoreProps, OnsDataPlatform, PlatformStage, TimeSeriesEngine,
} from '../../src';
import { HealthEnv } from '../../src/health/contract';
import { createHealthCheck } from '../../src/health/health-check';
import { CATALOG } from '../../src/ons/catalog';
import { InfluxDbEnv, TimeSeriesEnv } from '../../src/timeseries/contract';
import { influxEngine, loadConfigFromEnv } from '../../src/timeseries/influxdb/runtime/load-object';
import { queryConfigFromEnv } from '../../src/timeseries/influxdb/runtime/query';
import { ENV, lakeAndLedger } from '../helpers';
import { grantedRoles } from './store';

function storeStack(props: Partial<InfluxDbStoreProps> = {}, stage = PlatformStage.DEV, app = new App()) {
  const stack = new Stack(app, 'Store', { env: ENV });
  const { dataLake, ledger } = lakeAndLedger(stack, stage);
  const store = new InfluxDbStore(stack, 'TimeSeries', { stage, dataLake, ledger, ...props });
  return { stack, store, dataLake, ledger, template: () => Template.fromStack(stack) };
}

/** A store with its loader and query functions, as the platform builds it. */
function storeWithFunctions(props: Partial<InfluxDbStoreProps> = {}, stage = PlatformStage.DEV) {
  const built = storeStack(props, stage);
  return { ...built, loader: built.store.loaderFunction, query: built.store.queryFunction };
}

const logicalId = (stack: Stack, c: { node: { defaultChild?: unknown } } | unknown) =>
  stack.getLogicalId(((c as { node: { defaultChild: unknown } }).node.defaultChild ?? c) as never);

function groupIdOf(stack: Stack, fn: { connections: ec2.Connections }): string {
  return stack.resolve(fn.connections.securityGroups[0].securityGroupId)['Fn::GetAtt'][0];
}

describe('InfluxDbStore instance', () => {
  test.each([
    ['dev', PlatformStage.DEV, 'db.influx.medium', 20, 'SINGLE_AZ'],
    ['staging', PlatformStage.STAGING, 'db.influx.medium', 20, 'SINGLE_AZ'],
    ['prod', PlatformStage.PROD, 'db.influx.large', 100, 'WITH_MULTIAZ_STANDBY'],
  ])('stage defaults (%s): instance class, storage, deployment type; never public; IPv4 on 8086', (_n, stage, type, storage, deployment) => {
    storeStack({}, stage).template().hasResourceProperties('AWS::Timestream::InfluxDBInstance', {
      DbInstanceType: type,
      DbStorageType: 'InfluxIOIncludedT1',
      AllocatedStorage: storage,
      DeploymentType: deployment,
      PubliclyAccessible: false,
      NetworkType: 'IPV4',
      Port: 8086,
      Organization: 'ons',
      Bucket: 'ons_data_platform',
      Username: 'onsadmin',
      KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LakeKey'), 'Arn'] },
      Name: Match.stringLikeRegexp('^[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*$'),
    });
  });

  test('overrides: instance class, storage type and size, single-AZ in PROD, organization, bucket, no log delivery', () => {
    const t = storeStack({
      instanceType: 'db.influx.2xlarge',
      storageType: 'InfluxIOIncludedT2',
      allocatedStorage: Size.gibibytes(400),
      multiAz: false,
      organization: 'ons-energia',
      bucketName: 'ons_series',
      logDelivery: false,
    }, PlatformStage.PROD).template();
    t.hasResourceProperties('AWS::Timestream::InfluxDBInstance', {
      DbInstanceType: 'db.influx.2xlarge',
      DbStorageType: 'InfluxIOIncludedT2',
      AllocatedStorage: 400,
      DeploymentType: 'SINGLE_AZ',
      Organization: 'ons-energia',
      Bucket: 'ons_series',
      LogDeliveryConfiguration: Match.absent(),
    });
  });

  test('validation errors name the prop', () => {
    expect(() => storeStack({ instanceType: 'db.r5.large' })).toThrow(/instanceType/);
    expect(() => storeStack({ storageType: 'gp3' })).toThrow(/storageType/);
    expect(() => storeStack({ allocatedStorage: Size.gibibytes(10) })).toThrow(/allocatedStorage: expected whole GiB from 20 to 15360/);
    expect(() => storeStack({ storageType: 'InfluxIOIncludedT3', allocatedStorage: Size.gibibytes(100) })).toThrow(/allocatedStorage: .*from 400/);
    expect(() => storeStack({ allocatedStorage: Size.gibibytes(20000) })).toThrow(/allocatedStorage/);
    expect(() => storeStack({ allocatedStorage: Size.mebibytes(20 * 1024 + 1) })).toThrow(/allocatedStorage/);
    expect(() => storeStack({ bucketRetention: Duration.minutes(5) })).toThrow(/bucketRetention/);
    expect(() => storeStack({ batchLines: 0 })).toThrow(/batchLines/);
    expect(() => storeStack({ maxWritesInFlight: 65 })).toThrow(/maxWritesInFlight/);
    expect(() => storeStack({ organization: 'has space' })).toThrow(/organization/);
    expect(() => storeStack({ bucketName: '_internal' })).toThrow(/bucketName/);
    expect(() => storeStack({ databaseName: 'bad-name' })).toThrow(/databaseName/);
    expect(() => storeStack({ additionalDatasets: ['Bad Name'] })).toThrow(/additionalDatasets/);
    expect(() => storeStack({ additionalDatasets: [CATALOG[0].id] })).toThrow(/additionalDatasets/);
  });

  test('engine logs go to the access-log bucket under InfluxLogs/, allowed by bucket and key policy before the instance exists', () => {
    const { template, stack, dataLake } = storeStack();
    const t = template();
    const bucket = logicalId(stack, dataLake.accessLogsBucket);
    t.hasResourceProperties('AWS::Timestream::InfluxDBInstance', {
      LogDeliveryConfiguration: { S3Configuration: { BucketName: { Ref: bucket }, Enabled: true } },
    });
    t.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucket },
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({
          Sid: 'AllowTimestreamInfluxDbLogDelivery',
          Principal: { Service: 'timestream-influxdb.amazonaws.com' },
          Action: 's3:PutObject',
          Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket, 'Arn'] }, '/InfluxLogs/*']] },
        })]),
      },
    });
    t.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: { Statement: Match.arrayWith([Match.objectLike({ Sid: 'AllowTimestreamInfluxDbLogDeliveryEncryption' })]) },
    });
    const instance = Object.values(t.findResources('AWS::Timestream::InfluxDBInstance'))[0];
    expect(instance.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^LakeAccessLogsBucketPolicy/)]));
  });

  test('the instance and its admin secret are retained unless data removal is allowed and asked for', () => {
    const t = storeStack().template();
    t.hasResource('AWS::Timestream::InfluxDBInstance', { DeletionPolicy: 'Retain' });
    for (const secret of Object.values(t.findResources('AWS::SecretsManager::Secret'))) expect(secret.DeletionPolicy).toBe('Retain');
    const removable = storeStack({}, PlatformStage.DEV, new App({ context: { [PlatformStage.REMOVE_DATA_ON_DESTROY_CONTEXT]: true } }));
    removable.template().hasResource('AWS::Timestream::InfluxDBInstance', { DeletionPolicy: 'Delete' });
  });
});

describe('InfluxDbStore network', () => {
  test('a new VPC: two AZs, isolated subnets only (no NAT, no internet gateway), rejected traffic in flow logs; the instance in them', () => {
    const { template, stack, store } = storeStack();
    const t = template();
    t.resourceCountIs('AWS::EC2::VPC', 1);
    t.resourceCountIs('AWS::EC2::Subnet', 2);
    t.resourceCountIs('AWS::EC2::NatGateway', 0);
    t.resourceCountIs('AWS::EC2::InternetGateway', 0);
    t.allResourcesProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: false });
    t.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'REJECT', LogDestinationType: 'cloud-watch-logs' });
    const subnets = stack.resolve(store.vpc.isolatedSubnets.map((s) => s.subnetId));
    t.hasResourceProperties('AWS::Timestream::InfluxDBInstance', {
      VpcSubnetIds: subnets,
      VpcSecurityGroupIds: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^TimeSeriesInstanceSecurityGroup'), 'GroupId'] }],
    });
  });

  test('8086 on the instance only from the loader, query and bootstrap functions\' security groups; the instance has no egress', () => {
    const { template, stack, store, loader, query } = storeWithFunctions();
    const t = template();
    const instanceGroup = logicalId(stack, store.securityGroup);
    const ingress = Object.values(t.findResources('AWS::EC2::SecurityGroupIngress'))
      .map((r) => r.Properties).filter((p) => p.GroupId['Fn::GetAtt'][0] === instanceGroup);
    const bootstrapGroup = Object.keys(t.findResources('AWS::EC2::SecurityGroup')).find((id) => id.startsWith('TimeSeriesBootstrapFunctionSecurityGroup'));
    expect(ingress.map((p) => [p.IpProtocol, p.FromPort, p.ToPort, p.SourceSecurityGroupId['Fn::GetAtt'][0]]).sort()).toEqual([
      ['tcp', 8086, 8086, bootstrapGroup],
      ['tcp', 8086, 8086, groupIdOf(stack, loader as never)],
      ['tcp', 8086, 8086, groupIdOf(stack, query as never)],
    ].sort());
    const group = t.findResources('AWS::EC2::SecurityGroup')[instanceGroup].Properties;
    expect(group.SecurityGroupIngress).toBeUndefined();
    // CDK's "no egress" marker: one rule no packet can match.
    expect(group.SecurityGroupEgress).toEqual([expect.objectContaining({ CidrIp: '255.255.255.255/32', Description: 'Disallow all traffic' })]);
    // No rule anywhere opens anything to the world.
    for (const sg of Object.values(t.findResources('AWS::EC2::SecurityGroup'))) {
      for (const rule of sg.Properties.SecurityGroupIngress ?? []) expect(rule.CidrIp).not.toBe('0.0.0.0/0');
    }
  });

  test('the functions\' groups send only HTTPS (to the endpoints) and 8086 (to the instance)', () => {
    const { template, stack, loader } = storeWithFunctions();
    const t = template();
    const loaderGroup = groupIdOf(stack, loader as never);
    expect(t.findResources('AWS::EC2::SecurityGroup')[loaderGroup].Properties.SecurityGroupEgress)
      .toEqual([expect.objectContaining({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, CidrIp: '0.0.0.0/0' })]);
    const egress = Object.values(t.findResources('AWS::EC2::SecurityGroupEgress')).map((r) => r.Properties)
      .filter((p) => p.GroupId['Fn::GetAtt'][0] === loaderGroup).map((p) => [p.FromPort, p.DestinationSecurityGroupId['Fn::GetAtt'][0]]);
    expect(egress).toEqual(expect.arrayContaining([[8086, expect.stringMatching(/^TimeSeriesInstanceSecurityGroup/)]]));
    expect(egress.every(([port]) => port === 8086 || port === 443)).toBe(true);
  });

  test('VPC endpoints: S3 and DynamoDB gateways, Secrets Manager for every function, AppConfig Data for the query function only', () => {
    const { template, stack, loader, query } = storeWithFunctions();
    const t = template();
    const services = Object.values(t.findResources('AWS::EC2::VPCEndpoint')).map((r) => [r.Properties.VpcEndpointType, JSON.stringify(r.Properties.ServiceName)]);
    expect(services).toEqual(expect.arrayContaining([
      ['Gateway', expect.stringContaining('.s3')], ['Gateway', expect.stringContaining('.dynamodb')],
      ['Interface', expect.stringContaining('secretsmanager')], ['Interface', expect.stringContaining('appconfigdata')],
    ]));
    expect(services).toHaveLength(4);
    t.allResourcesProperties('AWS::EC2::VPCEndpoint', Match.objectLike({ VpcId: { Ref: Match.stringLikeRegexp('^TimeSeriesVpc') } }));
    const into = (endpoint: string) => Object.values(t.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => r.Properties)
      .filter((p) => p.GroupId['Fn::GetAtt'][0].includes(endpoint)).map((p) => p.SourceSecurityGroupId['Fn::GetAtt'][0]);
    expect(into('SecretsManagerEndpoint')).toEqual(expect.arrayContaining([groupIdOf(stack, loader as never), groupIdOf(stack, query as never)]));
    expect(into('SecretsManagerEndpoint')).toHaveLength(3);
    expect(into('AppConfigDataEndpoint')).toEqual([groupIdOf(stack, query as never)]);
  });

  test('a VPC passed in: its private subnets, no VPC, endpoints or flow logs created (unless asked); public subnets refused', () => {
    const app = new App();
    const stack = new Stack(app, 'Shared', { env: ENV });
    const vpc = new ec2.Vpc(stack, 'Network', { maxAzs: 2, natGateways: 1 });
    const { dataLake, ledger } = lakeAndLedger(stack, PlatformStage.DEV);
    new InfluxDbStore(stack, 'TimeSeries', { stage: PlatformStage.DEV, dataLake, ledger, vpc });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::EC2::VPC', 1);
    t.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    t.hasResourceProperties('AWS::Timestream::InfluxDBInstance', { VpcSubnetIds: stack.resolve(vpc.privateSubnets.map((s) => s.subnetId)) });

    const withEndpoints = new Stack(new App(), 'Endpoints', { env: ENV });
    new InfluxDbStore(withEndpoints, 'TimeSeries', {
      stage: PlatformStage.DEV,
      ...lakeAndLedger(withEndpoints, PlatformStage.DEV),
      vpc: new ec2.Vpc(withEndpoints, 'Network', { maxAzs: 2 }),
      vpcEndpoints: true,
    });
    Template.fromStack(withEndpoints).resourceCountIs('AWS::EC2::VPCEndpoint', 4);

    const pub = new Stack(new App(), 'Public', { env: ENV });
    expect(() => new InfluxDbStore(pub, 'TimeSeries', {
      stage: PlatformStage.DEV,
      ...lakeAndLedger(pub, PlatformStage.DEV),
      vpc: new ec2.Vpc(pub, 'Network', { maxAzs: 2 }),
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
    })).toThrow(/vpcSubnets/);

    const oneAz = new Stack(new App(), 'OneAz', { env: ENV });
    expect(() => new InfluxDbStore(oneAz, 'TimeSeries', {
      stage: PlatformStage.PROD,
      ...lakeAndLedger(oneAz, PlatformStage.PROD),
      vpc: new ec2.Vpc(oneAz, 'Network', { maxAzs: 1 }),
    })).toThrow(/multiAz/);
  });
});

describe('InfluxDbStore secrets', () => {
  test('the admin password is generated by Secrets Manager (KMS, platform key) and reaches the instance by dynamic reference', () => {
    const { template, stack, store, dataLake } = storeStack();
    const t = template();
    const admin = logicalId(stack, store.adminSecret);
    const key = logicalId(stack, dataLake.encryptionKey);
    t.hasResourceProperties('AWS::SecretsManager::Secret', {
      KmsKeyId: { 'Fn::GetAtt': [key, 'Arn'] },
      GenerateSecretString: { SecretStringTemplate: '{"username":"onsadmin"}', GenerateStringKey: 'password', ExcludePunctuation: true, PasswordLength: 32 },
    });
    t.hasResourceProperties('AWS::Timestream::InfluxDBInstance', {
      Password: { 'Fn::Join': ['', ['{{resolve:secretsmanager:', { Ref: admin }, ':SecretString:password::}}']] },
    });
    t.resourceCountIs('AWS::SecretsManager::Secret', 3);
    t.allResourcesProperties('AWS::SecretsManager::Secret', Match.objectLike({ KmsKeyId: { 'Fn::GetAtt': [key, 'Arn'] }, SecretString: Match.absent() }));
  });

  test('no plaintext password or token anywhere in the template', () => {
    const { template } = storeWithFunctions();
    const json = JSON.stringify(template().toJSON());
    // Every secret value is generated or written at run time: the template holds only references to secrets.
    for (const match of json.match(/"(Password|SecretString|Token)"\s*:\s*"[^"]*"/g) ?? []) throw new Error(`literal secret value: ${match}`);
    expect(json).not.toMatch(/"SecretString"/);
    expect(json.match(/\{\{resolve:secretsmanager:/g)).toHaveLength(1);
  });
});

describe('InfluxDbStore bootstrap', () => {
  test('a custom resource served by the bootstrap function, with the instance URL, the secrets and the DBRP names; after its permissions and endpoints', () => {
    const { template, stack, store } = storeStack({ bucketRetention: Duration.days(365 * 30) });
    const t = template();
    t.hasResourceProperties('Custom::OnsInfluxDbBootstrap', {
      ServiceToken: { 'Fn::GetAtt': [Match.stringLikeRegexp('^TimeSeriesBootstrapFunction[0-9A-F]{8}$'), 'Arn'] },
      Url: { 'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [logicalId(stack, store.instance), 'Endpoint'] }, ':8086']] },
      AdminSecretArn: { Ref: logicalId(stack, store.adminSecret) },
      Organization: 'ons',
      Bucket: 'ons_data_platform',
      Database: 'ons_data_platform_dev',
      RetentionPolicy: 'autogen',
      RetentionSeconds: String(365 * 30 * 86400),
      WriteTokenSecretArn: { Ref: logicalId(stack, store.writeTokenSecret) },
      ReadTokenSecretArn: { Ref: logicalId(stack, store.readTokenSecret) },
    });
    const resource = Object.values(t.findResources('Custom::OnsInfluxDbBootstrap'))[0];
    expect(resource.DependsOn).toEqual(expect.arrayContaining([
      expect.stringMatching(/^TimeSeriesBootstrapFunctionRoleDefaultPolicy/),
      expect.stringMatching(/^TimeSeriesVpcSecretsManagerEndpoint/),
      expect.stringMatching(/^TimeSeriesVpcS3Endpoint/),
    ]));
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('InfluxDB bootstrap'),
      VpcConfig: { SubnetIds: stack.resolve(store.vpc.isolatedSubnets.map((s) => s.subnetId)), SecurityGroupIds: Match.anyValue() },
      Timeout: 300,
    });
  });

  test('the bootstrap may read the admin secret and read and write the two token secrets, nothing else', () => {
    const { template, stack, store } = storeStack();
    const policies = template().findResources('AWS::IAM::Policy');
    const [, policy] = Object.entries<any>(policies).find(([id]) => id.startsWith('TimeSeriesBootstrapFunctionRoleDefaultPolicy'))!;
    const statements: any[] = policy.Properties.PolicyDocument.Statement;
    const onSecret = (secret: { node: unknown }) => statements
      .filter((s) => JSON.stringify(s.Resource) === JSON.stringify({ Ref: logicalId(stack, secret) }))
      .flatMap((s) => [s.Action].flat()).sort();
    expect(onSecret(store.adminSecret)).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
    for (const token of [store.writeTokenSecret, store.readTokenSecret]) {
      expect(onSecret(token)).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
    }
    const put = statements.find((s) => s.Action === 'secretsmanager:PutSecretValue');
    expect(put.Resource).toEqual([{ Ref: logicalId(stack, store.writeTokenSecret) }, { Ref: logicalId(stack, store.readTokenSecret) }]);
    const generate = statements.find((s) => s.Action === 'kms:GenerateDataKey');
    expect(generate.Condition).toEqual({ StringEquals: { 'kms:ViaService': 'secretsmanager.sa-east-1.amazonaws.com' } });
    const actions: string[] = statements.flatMap((s) => [s.Action].flat());
    const read = ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'];
    expect(actions.filter((a) => a.startsWith('secretsmanager:')).sort()).toEqual([...read, ...read, ...read, 'secretsmanager:PutSecretValue'].sort());
    expect(actions.some((a) => a.startsWith('s3:') || a.startsWith('dynamodb:') || a.startsWith('timestream'))).toBe(false);
    expect(actions).not.toContain('*');
  });
});

describe('InfluxDbStore functions', () => {
  test('loader and query run in the store\'s subnets with the engine\'s environment: URL, database, retention policy, their own token secret', () => {
    const { template, stack, store } = storeWithFunctions({ additionalDatasets: ['geracao_termica_despacho'], loadOtherDatasets: true });
    const t = template();
    const url = stack.resolve(store.url);
    const measurements = Object.fromEntries([...CATALOG.map((d) => d.id), 'geracao_termica_despacho'].map((d) => [d, d]));
    const common = {
      [TimeSeriesEnv.DATABASE]: 'ons_data_platform_dev',
      [TimeSeriesEnv.TABLES]: JSON.stringify(measurements),
      [TimeSeriesEnv.CATCH_ALL_TABLE]: 'true',
      [InfluxDbEnv.URL]: url,
      [InfluxDbEnv.RETENTION_POLICY]: 'autogen',
    };
    const subnets = stack.resolve(store.vpc.isolatedSubnets.map((s) => s.subnetId));
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('time-series loader \\(Timestream for InfluxDB\\)'),
      Timeout: 900,
      VpcConfig: { SubnetIds: subnets, SecurityGroupIds: Match.anyValue() },
      Environment: {
        Variables: Match.objectLike({
          ...common,
          [InfluxDbEnv.TOKEN_SECRET_ARN]: { Ref: logicalId(stack, store.writeTokenSecret) },
          [InfluxDbEnv.BATCH_LINES]: '5000',
          [TimeSeriesEnv.MAX_IN_FLIGHT]: '4',
          [TimeSeriesEnv.REJECTED_RECORDS_PREFIX]: 'rejected/timeseries/',
          ONS_PROCESSED_BUCKET: Match.anyValue(),
          ONS_FAILED_BUCKET: Match.anyValue(),
          ONS_LEDGER_TABLE: Match.anyValue(),
        }),
      },
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('time-series queries \\(Timestream for InfluxDB\\)'),
      VpcConfig: { SubnetIds: subnets, SecurityGroupIds: Match.anyValue() },
      Environment: {
        Variables: Match.objectLike({
          ...common,
          [InfluxDbEnv.TOKEN_SECRET_ARN]: { Ref: logicalId(stack, store.readTokenSecret) },
          [TimeSeriesEnv.MAX_POINTS]: '1000',
          [InfluxDbEnv.REQUEST_TIMEOUT_MS]: '20000',
        }),
      },
    });
    expect(store.datasetIds).toEqual(Object.keys(measurements));
    // Created after the bootstrap, so their secrets already hold the tokens.
    for (const fn of Object.values(t.findResources('AWS::Lambda::Function')).filter((f) => /\(Timestream for InfluxDB\)/.test(f.Properties.Description))) {
      expect(fn.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^TimeSeriesBootstrap[0-9A-F]{8}$/)]));
    }
  });

  test('the handlers\' own configuration readers accept the environment the construct sets (the contract, both sides)', () => {
    const { template, stack, store } = storeWithFunctions({ batchLines: 2000, maxWritesInFlight: 8, loadOtherDatasets: true });
    const functions = Object.values(template().findResources('AWS::Lambda::Function'));
    const variablesOf = (description: RegExp) => {
      const variables = functions.find((f) => description.test(f.Properties.Description))!.Properties.Environment.Variables;
      // References (bucket names, secret ARNs, the instance endpoint) stand in as their JSON: the readers only need strings.
      return Object.fromEntries(Object.entries<unknown>(variables).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
    };
    const saved = { ...process.env };
    const withEnv = <T>(variables: Record<string, string>, read: () => T): T => {
      try {
        Object.assign(process.env, variables);
        return read();
      } finally {
        for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
        Object.assign(process.env, saved);
      }
    };
    const tables = Object.fromEntries(CATALOG.map((d) => [d.id, d.id]));
    const connection = (secret: { node: unknown }, timeoutMs: number) => ({
      url: JSON.stringify(stack.resolve(store.url)),
      database: 'ons_data_platform_dev',
      retentionPolicy: 'autogen',
      tokenSecretArn: JSON.stringify({ Ref: logicalId(stack, secret) }),
      timeoutMs,
    });

    const load = withEnv(variablesOf(/time-series loader/), loadConfigFromEnv);
    expect(load).toMatchObject({
      tables, maxInFlight: 8, batchLines: 2000, rejectedRecordsPrefix: 'rejected/timeseries/', connection: connection(store.writeTokenSecret, 30_000),
    });
    // Datasets outside the catalog go to a measurement named after them.
    const engine = influxEngine({ ...load, connection: { ...load.connection, url: 'https://instance.example:8086' } });
    expect(engine.target('geracao_termica_despacho')).toBe('geracao_termica_despacho');
    expect(engine.target(CATALOG[0].id)).toBe(CATALOG[0].id);
    const query = withEnv(variablesOf(/time-series queries/), queryConfigFromEnv);
    expect(query).toMatchObject({ tables, connection: connection(store.readTokenSecret, 20_000) });
  });

  test('the query role reads only the read token, the loader only the write token', () => {
    const { template, stack, store } = storeWithFunctions();
    const policies = template().findResources('AWS::IAM::Policy');
    const secretReads = (prefix: string) => Object.entries<any>(policies).filter(([id]) => id.startsWith(prefix))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
      .filter((s: any) => [s.Action].flat().includes('secretsmanager:GetSecretValue')).map((s: any) => s.Resource);
    expect(secretReads('TimeSeriesQueryRole')).toEqual([{ Ref: logicalId(stack, store.readTokenSecret) }]);
    expect(secretReads('TimeSeriesLoaderRole')).toEqual([{ Ref: logicalId(stack, store.writeTokenSecret) }]);
  });

  test('a function in the VPC may create network interfaces only in its subnets with its group; Describe* on * is the only wildcard action scope', () => {
    const { template } = storeWithFunctions();
    const policies = template().findResources('AWS::IAM::Policy');
    const [, loaderPolicy] = Object.entries<any>(policies).find(([id]) => id.startsWith('TimeSeriesLoaderRoleDefaultPolicy'))!;
    const statements: any[] = loaderPolicy.Properties.PolicyDocument.Statement;
    const ec2Statements = statements.filter((s) => [s.Action].flat().some((a: string) => a.startsWith('ec2:')));
    expect(ec2Statements.find((s) => s.Resource === '*').Action.sort()).toEqual(['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets']);
    const create = ec2Statements.find((s) => s.Action === 'ec2:CreateNetworkInterface');
    const resources = JSON.stringify(create.Resource);
    expect(resources).toContain(':network-interface/*');
    expect(resources.match(/:subnet\//g)).toHaveLength(2);
    expect(resources.match(/:security-group\//g)).toHaveLength(1);
    const other = ec2Statements.find((s) => [s.Action].flat().includes('ec2:DeleteNetworkInterface'));
    expect(JSON.stringify(other.Resource)).toMatch(/network-interface\/\*/);
    expect(statements.flatMap((s) => [s.Action].flat())).not.toContain('*');
  });

  test('grantWrite and grantRead: the token secret (decrypted through Secrets Manager) and, for a function in the VPC, port 8086', () => {
    const { stack, store } = storeStack();
    const { writer, reader, writerStatements, readerStatements } = grantedRoles(stack, store);
    expect(writerStatements).toEqual([expect.objectContaining({
      Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], Resource: { Ref: logicalId(stack, store.writeTokenSecret) },
    })]);
    expect(readerStatements).toEqual([expect.objectContaining({
      Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], Resource: { Ref: logicalId(stack, store.readTokenSecret) },
    })]);
    // The key policy lets each decrypt, only through Secrets Manager.
    const keyPolicy = Object.values(Template.fromStack(stack).findResources('AWS::KMS::Key'))[0].Properties.KeyPolicy.Statement;
    for (const role of [writer, reader]) {
      expect(keyPolicy).toContainEqual(expect.objectContaining({
        Action: 'kms:Decrypt',
        Principal: { AWS: { 'Fn::GetAtt': [logicalId(stack, role), 'Arn'] } },
        Condition: { StringEquals: { 'kms:ViaService': 'secretsmanager.sa-east-1.amazonaws.com' } },
      }));
    }
  });

  test('the pipeline invokes the store\'s loader in LoadTimeSeries', () => {
    const { stack, store, dataLake } = storeStack();
    new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake, timeSeriesStore: store });
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('time-series loader \\(Timestream for InfluxDB\\)'),
      VpcConfig: Match.anyValue(),
    });
  });
});

describe('InfluxDbStore health and metrics', () => {
  test('the health check asks the control plane for the instance (no VPC): environment and timestream-influxdb:GetDbInstance on its ARN', () => {
    const { stack, store, dataLake } = storeStack();
    createHealthCheck(stack, 'Health', {
      stage: PlatformStage.DEV, encryptionKey: dataLake.encryptionKey, buckets: { raw: dataLake.rawBucket }, timeSeries: store.healthProbe(),
    });
    const t = Template.fromStack(stack);
    const instance = logicalId(stack, store.instance);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('health check'),
      VpcConfig: Match.absent(),
      Environment: {
        Variables: {
          [HealthEnv.TIME_SERIES]: {
            'Fn::Join': ['', ['{"engine":"timestream-influxdb","instanceId":"', { 'Fn::GetAtt': [instance, 'Id'] }, '"}']],
          },
        },
      },
    });
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([{ Action: 'timestream-influxdb:GetDbInstance', Effect: 'Allow', Resource: { 'Fn::GetAtt': [instance, 'Arn'] } }]) },
    });
  });

  test('CPU, memory, disk and write-IOPS metrics of the instance (AWS/TimestreamInfluxDB, DbInstanceName)', () => {
    const { stack, store } = storeStack();
    for (const [metric, name] of [[store.metricCpuUtilization(), 'CPUUtilization'], [store.metricMemoryUtilization(), 'MemoryUtilization'],
      [store.metricDiskUtilization(), 'DiskUtilization'], [store.metricWriteOpsPerSec(), 'WriteOpsPerSec']] as const) {
      expect(metric.namespace).toBe('AWS/TimestreamInfluxDB');
      expect(metric.metricName).toBe(name);
      expect(stack.resolve(metric.dimensions)).toEqual({ DbInstanceName: store.instanceName });
      expect(metric.period.toMinutes()).toBe(5);
    }
    expect(store.metric('TotalIOpsPerSec', { statistic: 'Maximum' }).statistic).toBe('Maximum');
  });
});

describe('OnsDataPlatform with TimeSeriesEngine.timestreamInfluxDb()', () => {
  test.each([
    ['prod', PlatformStage.PROD],
    ['dev', PlatformStage.DEV],
  ])('%s: synthesizes with the InfluxDB store behind the API and the pipeline, and cdk-nag AwsSolutions has nothing unacknowledged', (_n, stage) => {
    const app = new App();
    const stack = new Stack(app, 'Platform-influx', { env: ENV });
    // Registered before the first synthesis: a later synth() returns the cached assembly without validating.
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const platform = new OnsDataPlatform(stack, 'Platform', {
      stage, timeSeries: TimeSeriesEngine.timestreamInfluxDb({ bucketRetention: Duration.days(36500) }),
    });
    expect(platform.timeSeries).toBeInstanceOf(InfluxDbStore);
    expect(platform.timeSeries.engine).toBe('timestream-influxdb');
    expect(() => app.synth()).not.toThrow();
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::Timestream::InfluxDBInstance', 1);
    t.resourceCountIs('AWS::Timestream::Database', 0);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('health check'),
      VpcConfig: Match.absent(),
      Environment: { Variables: Match.objectLike({ [HealthEnv.TIME_SERIES]: Match.anyValue() }) },
    });
  });
});
