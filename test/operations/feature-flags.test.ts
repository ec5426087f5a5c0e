import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as appconfig from 'aws-cdk-lib/aws-appconfig';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { FeatureFlags, FeatureFlagsProps, OnsDataPlatform, PlatformStage } from '../../src';
import { HealthEnv } from '../../src/health/contract';
import { FeatureFlag, FlagsEnv } from '../../src/runtime/contract';
import { ENV } from '../helpers';

type Resources = Record<string, { Type: string; Properties: any }>;

function flagsStack(props: Partial<FeatureFlagsProps> = {}, stage = PlatformStage.DEV, extend?: (stack: Stack, flags: FeatureFlags) => void) {
  const app = new App();
  const stack = new Stack(app, 'Flags', { env: ENV });
  const key = new kms.Key(stack, 'Key');
  const flags = new FeatureFlags(stack, 'Flags', { stage, encryptionKey: key, ...props });
  extend?.(stack, flags);
  const template = Template.fromStack(stack);
  return { stack, flags, template, resources: template.toJSON().Resources as Resources };
}

const ofType = (resources: Resources, type: string) => Object.values(resources).filter((r) => r.Type === type);

describe('FeatureFlags', () => {
  test('an application, the stage\'s environment, a feature-flag profile with the four flags, encrypted, deployed once', () => {
    const { resources } = flagsStack();
    expect(ofType(resources, 'AWS::AppConfig::Application')).toHaveLength(1);
    expect(ofType(resources, 'AWS::AppConfig::Environment')[0].Properties.Name).toBe('dev');
    const profile = ofType(resources, 'AWS::AppConfig::ConfigurationProfile')[0].Properties;
    expect(profile).toMatchObject({ Type: 'AWS.AppConfig.FeatureFlags', LocationUri: 'hosted', KmsKeyIdentifier: expect.anything() });
    const version = ofType(resources, 'AWS::AppConfig::HostedConfigurationVersion')[0].Properties;
    const document = JSON.parse(version.Content);
    expect(Object.keys(document.flags).sort()).toEqual(Object.values(FeatureFlag).sort());
    expect(document.values).toEqual({
      ragQueries: { enabled: true },
      timeSeriesApi: { enabled: true },
      largeFileBatch: { enabled: true, lambdaMaxBytes: 268435456 },
      knowledgeBaseSync: { enabled: true },
      numericAnswers: { enabled: true },
    });
    expect(document.flags.largeFileBatch.attributes.lambdaMaxBytes.constraints).toEqual({ type: 'number', required: true, minimum: 1 });
    // One deployment of each profile: the flags to the stage's environment, the kill switches to theirs.
    expect(ofType(resources, 'AWS::AppConfig::Deployment')).toHaveLength(2);
  });

  test('kill switches: an environment no alarm watches, a fixed all-on profile CDK never rewrites, deployed at once', () => {
    const alarmed = (stack: Stack, flags: FeatureFlags) => flags.rollBackOn(new cloudwatch.Alarm(stack, 'Critical', {
      metric: new cloudwatch.Metric({ namespace: 'X', metricName: 'Y' }), threshold: 1, evaluationPeriods: 1,
    }));
    const { resources, flags, stack } = flagsStack({}, PlatformStage.PROD, alarmed);
    const byId = (ref: { Ref: string }) => resources[ref.Ref];
    const environments = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::AppConfig::Environment');
    const kill = environments.find(([, r]) => r.Properties.Name === 'prod-kill-switches')!;
    const main = environments.find(([, r]) => r.Properties.Name === 'prod')!;
    // Monitors are per environment: the stage's has the critical alarm, the kill switches' none.
    expect(main[1].Properties.Monitors).toHaveLength(1);
    expect(kill[1].Properties.Monitors).toBeUndefined();
    expect(stack.resolve(flags.killSwitchEnvironment.environmentId)).toEqual({ Ref: kill[0] });

    const deployment = ofType(resources, 'AWS::AppConfig::Deployment').find((d) => d.Properties.EnvironmentId.Ref === kill[0])!.Properties;
    expect(byId(deployment.DeploymentStrategyId).Properties)
      .toMatchObject({ DeploymentDurationInMinutes: 0, FinalBakeTimeInMinutes: 0, GrowthFactor: 100 });
    expect(byId(deployment.ConfigurationProfileId).Properties)
      .toMatchObject({ Name: 'kill-switches', Type: 'AWS.AppConfig.FeatureFlags', KmsKeyIdentifier: expect.anything() });
    const content = (r: Resources) => ofType(r, 'AWS::AppConfig::HostedConfigurationVersion').map((v) => v.Properties.Content)
      .find((c: string) => JSON.parse(c).flags.ragQueries.name.startsWith('Kill switch'));
    const document = JSON.parse(content(resources));
    // The four flags of its first version: a flag added later (numericAnswers) would make a new version, turning every switch back on.
    const frozen = [FeatureFlag.RAG_QUERIES, FeatureFlag.TIME_SERIES_API, FeatureFlag.LARGE_FILE_BATCH, FeatureFlag.KNOWLEDGE_BASE_SYNC];
    expect(document.values).toEqual(Object.fromEntries(frozen.map((f) => [f, { enabled: true }])));
    // Whatever the flags' values, the kill switches' content is the same: CloudFormation never makes a second version.
    const other = flagsStack({
      defaults: { ragQueries: false, lambdaMaxBytes: 1024 }, rolloutStrategy: appconfig.RolloutStrategy.CANARY_10_PERCENT_20_MINUTES,
    });
    expect(content(other.resources)).toBe(content(resources));
  });

  test('defaults from props', () => {
    const { resources } = flagsStack({ defaults: { ragQueries: false, lambdaMaxBytes: 1024 } });
    const values = JSON.parse(ofType(resources, 'AWS::AppConfig::HostedConfigurationVersion')[0].Properties.Content).values;
    expect(values.ragQueries).toEqual({ enabled: false });
    expect(values.largeFileBatch).toEqual({ enabled: true, lambdaMaxBytes: 1024 });
  });

  test.each([
    ['dev', { DeploymentDurationInMinutes: 0, GrowthFactor: 100, FinalBakeTimeInMinutes: 0 }],
    ['staging', { DeploymentDurationInMinutes: 1, GrowthFactor: 50, FinalBakeTimeInMinutes: 1 }],
    ['prod', { DeploymentDurationInMinutes: 30, GrowthFactor: 20, FinalBakeTimeInMinutes: 30 }],
  ])('stage %s: its rollout strategy', (name, expected) => {
    const stage = { dev: PlatformStage.DEV, staging: PlatformStage.STAGING, prod: PlatformStage.PROD }[name]!;
    const { resources } = flagsStack({}, stage);
    expect(ofType(resources, 'AWS::AppConfig::DeploymentStrategy')[0].Properties).toMatchObject({ ...expected, GrowthType: 'LINEAR' });
  });

  test('a rollout strategy from props', () => {
    const rolloutStrategy = appconfig.RolloutStrategy.linear({
      growthFactor: 25, deploymentDuration: Duration.minutes(8), finalBakeTime: Duration.minutes(4),
    });
    const { resources } = flagsStack({ rolloutStrategy }, PlatformStage.PROD);
    expect(ofType(resources, 'AWS::AppConfig::DeploymentStrategy')[0].Properties).toMatchObject({
      DeploymentDurationInMinutes: 8, GrowthFactor: 25, FinalBakeTimeInMinutes: 4,
    });
  });

  test('rollBackOn: the environment monitors the alarm with a role that may only describe it; at most 5', () => {
    const { resources } = flagsStack({}, PlatformStage.PROD, (stack, flags) => {
      const metric = new cloudwatch.Metric({ namespace: 'X', metricName: 'Errors' });
      flags.rollBackOn(new cloudwatch.Alarm(stack, 'Critical', { metric, threshold: 1, evaluationPeriods: 1 }));
    });
    const monitors = ofType(resources, 'AWS::AppConfig::Environment')[0].Properties.Monitors;
    expect(monitors).toEqual([{ AlarmArn: { 'Fn::GetAtt': [expect.stringMatching(/^Critical/), 'Arn'] }, AlarmRoleArn: { 'Fn::GetAtt': [expect.stringMatching(/MonitorRole/), 'Arn'] } }]);
    const policy = ofType(resources, 'AWS::IAM::Policy').find((p) => JSON.stringify(p.Properties.Roles).includes('MonitorRole'))!;
    expect(policy.Properties.PolicyDocument.Statement).toEqual([expect.objectContaining({ Action: 'cloudwatch:DescribeAlarms' })]);
    expect(() => flagsStack({}, PlatformStage.PROD, (stack, flags) => {
      for (let i = 0; i < 6; i++) {
        flags.rollBackOn(new cloudwatch.Alarm(stack, `A${i}`, { metric: new cloudwatch.Metric({ namespace: 'X', metricName: `M${i}` }), threshold: 1, evaluationPeriods: 1 }));
      }
    })).toThrow(/at most 5 alarms/);
  });

  test('bind: the flags\' and the kill switches\' location in the environment, read access to those two profiles only, kms:Decrypt', () => {
    const { resources } = flagsStack({ cacheTtl: Duration.seconds(30) }, PlatformStage.DEV, (stack, flags) => {
      flags.bind(new lambda.Function(stack, 'Fn', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('x') }));
    });
    const fn = ofType(resources, 'AWS::Lambda::Function')[0].Properties;
    expect(Object.keys(fn.Environment.Variables).sort()).toEqual(Object.values(FlagsEnv).sort());
    expect(fn.Environment.Variables[FlagsEnv.MAX_AGE_SECONDS]).toBe('30');
    const statements = ofType(resources, 'AWS::IAM::Policy').flatMap((p) => p.Properties.PolicyDocument.Statement);
    const read = statements.find((s: any) => [s.Action].flat().includes('appconfig:GetLatestConfiguration'));
    expect([read.Action].flat().sort()).toEqual(['appconfig:GetLatestConfiguration', 'appconfig:StartConfigurationSession']);
    expect(JSON.stringify(read.Resource)).toMatch(/application\/.*\/environment\/.*\/configuration\//);
    // The flags profile and the kill switches, nothing else.
    const profiles = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::AppConfig::ConfigurationProfile').map(([id]) => id);
    expect(read.Resource).toHaveLength(2);
    for (const id of profiles) expect(JSON.stringify(read.Resource)).toContain(`"Ref":"${id}"`);
    expect(fn.Environment.Variables[FlagsEnv.KILL_SWITCH_ENVIRONMENT]).toBe('dev-kill-switches');
    expect(statements.some((s: any) => [s.Action].flat().includes('kms:Decrypt'))).toBe(true);
  });

  test.each([
    // Under AppConfig Data's shortest poll interval (15 s): every read inside it would be refused (BadRequestException).
    [{ cacheTtl: Duration.seconds(5) }, /cacheTtl: whole seconds from 15 to 86400 .*got 5 s/],
    [{ cacheTtl: Duration.seconds(14) }, /cacheTtl: whole seconds from 15 to 86400 .*got 14 s/],
    [{ cacheTtl: Duration.millis(15500) }, /cacheTtl: whole seconds .*got 15.5 s/],
    [{ cacheTtl: Duration.days(2) }, /cacheTtl: whole seconds from 15 to 86400 .*got 172800 s/],
    [{ defaults: { lambdaMaxBytes: 0 } }, /defaults.lambdaMaxBytes/],
  ])('invalid %j refused naming the prop', (props, message) => {
    expect(() => flagsStack(props as Partial<FeatureFlagsProps>)).toThrow(message);
  });
});

describe('FeatureFlags in OnsDataPlatform', () => {
  const app = new App();
  const stack = new Stack(app, 'Platform', { env: { account: ENV.account, region: 'us-east-1' } });
  new OnsDataPlatform(stack, 'Platform', { stage: PlatformStage.PROD });
  const resources = Template.fromStack(stack).toJSON().Resources as Resources;

  test('the router, both query functions and the health check read the flags; nothing else does', () => {
    const readers = Object.values(resources)
      .filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Environment?.Variables?.[FlagsEnv.PROFILE])
      .map((r) => r.Properties.Description as string);
    expect(readers).toHaveLength(3);
    for (const pattern of [/rout/i, /question|knowledge/i, /time-series queries/]) expect(readers.filter((d) => pattern.test(d))).toHaveLength(1);
    const health = Object.values(resources).find((r) => r.Type === 'AWS::Lambda::Function' && /health check/.test(r.Properties.Description))!;
    expect(JSON.stringify(health.Properties.Environment.Variables[HealthEnv.FLAGS])).toContain('application');
    // The health check reads the flags through their cache, kept for the poll interval the handlers use (cacheTtl).
    expect(JSON.stringify(health.Properties.Environment.Variables[HealthEnv.FLAGS])).toContain('\\"maxAgeSeconds\\":\\"60\\"');
    // It also reads the kill switches, and knows CDK's values to name flags edited outside CDK.
    expect(JSON.stringify(health.Properties.Environment.Variables[HealthEnv.FLAGS])).toContain('killSwitchEnvironment\\":\\"prod-kill-switches');
    expect(JSON.stringify(health.Properties.Environment.Variables[HealthEnv.FLAGS])).toContain('deployedValues');
  });

  test('flag deployments roll back on one composite alarm over every critical alarm', () => {
    const [environment] = ofType(resources, 'AWS::AppConfig::Environment');
    expect(environment.Properties.Monitors).toHaveLength(1);
    const compositeId = environment.Properties.Monitors[0].AlarmArn['Fn::GetAtt'][0];
    const composite = resources[compositeId];
    expect(composite.Type).toBe('AWS::CloudWatch::CompositeAlarm');
    const rule = JSON.stringify(composite.Properties.AlarmRule);
    const critical = Object.entries(resources)
      .filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm' && String(r.Properties.AlarmDescription).startsWith('[critical]'))
      .map(([id]) => id);
    expect(critical.length).toBeGreaterThan(5);
    for (const id of critical) expect(rule).toContain(id);
  });
});
