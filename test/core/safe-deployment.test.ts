import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { buildReferenceApp } from '../../examples/reference/app';
import { PlatformStage, SafeDeployment } from '../../src';
import { ENV, platformStack } from '../helpers';

type Resource = { Type: string; Properties: Record<string, any>; UpdatePolicy?: Record<string, any> };
type Resources = Record<string, Resource>;

let templates: Record<string, Resources>;
beforeAll(() => {
  const assembly = buildReferenceApp(new App()).synth();
  templates = Object.fromEntries(assembly.stacks.map((s) => [s.stackName.replace('OnsDataPlatform-', ''), s.template.Resources as Resources]));
});

const ofType = (r: Resources, type: string) => Object.entries(r).filter(([, v]) => v.Type === type);
/** Every `Ref` and `Fn::GetAtt` target inside a value. */
function references(value: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {value.forEach((v) => references(v, found));} else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'Ref' && typeof v === 'string') found.add(v);
      else if (k === 'Fn::GetAtt' && Array.isArray(v)) found.add(v[0]);
      else references(v, found);
    }
  }
  return found;
}

/** Function logical id → its alias logical id, for the functions the platform publishes. */
function aliases(r: Resources): Map<string, string> {
  return new Map(ofType(r, 'AWS::Lambda::Alias').map(([id, a]) => [a.Properties.FunctionName.Ref as string, id]));
}

/** The platform's own functions (API-facing and processing), by the path segment of their logical id (the lake engine: no loader). */
const PUBLISHED = ['HealthCheck', 'ApiLedger', 'TimeSeriesQuery', 'KnowledgeQuery', 'IngestionRouter', 'IngestionProcessor',
  'IngestionCopyDocument', 'IngestionQuarantine'];

/** The functions that answer the data routes through the handler toolkit: their 5xx answers roll a deployment back. */
const API_HANDLERS = ['ApiLedger', 'TimeSeriesQuery', 'KnowledgeQuery'];

const CONFIGS: Record<string, string> = {
  dev: 'CodeDeployDefault.LambdaAllAtOnce',
  staging: 'CodeDeployDefault.LambdaLinear10PercentEvery1Minute',
  prod: 'CodeDeployDefault.LambdaCanary10Percent5Minutes',
};

describe('SafeDeployment in the reference app', () => {
  test.each(['dev', 'staging', 'prod'])('every API-facing and processing function is published with the stage\'s traffic shifting (%s)', (stage) => {
    const r = templates[stage];
    const functions = ofType(r, 'AWS::Lambda::Function').map(([id]) => id);
    const byFunction = aliases(r);
    for (const name of PUBLISHED) {
      const fn = functions.filter((id) => new RegExp(`Platform${name}[0-9A-F]{8}$`).test(id));
      expect({ name, found: fn.length }).toEqual({ name, found: 1 });
      expect({ name, alias: byFunction.has(fn[0]) }).toEqual({ name, alias: true });
    }
    expect(byFunction.size).toBe(PUBLISHED.length);

    const groups = ofType(r, 'AWS::CodeDeploy::DeploymentGroup');
    expect(groups).toHaveLength(PUBLISHED.length);
    expect(ofType(r, 'AWS::CodeDeploy::Application')).toHaveLength(1);
    const alarmIds = new Set(ofType(r, 'AWS::CloudWatch::Alarm').map(([id]) => id));
    for (const [aliasId, alias] of ofType(r, 'AWS::Lambda::Alias')) {
      expect(alias.Properties.Name).toBe('live');
      // The alias points at a published version of its own function.
      const version = r[alias.Properties.FunctionVersion['Fn::GetAtt'][0]];
      expect(version.Type).toBe('AWS::Lambda::Version');
      expect(version.Properties.FunctionName).toEqual({ Ref: alias.Properties.FunctionName.Ref });
      const groupId = alias.UpdatePolicy!.CodeDeployLambdaAliasUpdate.DeploymentGroupName.Ref;
      const group = r[groupId];
      expect(group.Properties.DeploymentConfigName).toBe(CONFIGS[stage]);
      expect(group.Properties.DeploymentStyle).toEqual({ DeploymentType: 'BLUE_GREEN', DeploymentOption: 'WITH_TRAFFIC_CONTROL' });
      expect(group.Properties.AutoRollbackConfiguration).toEqual({
        Enabled: true, Events: expect.arrayContaining(['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_REQUEST', 'DEPLOYMENT_STOP_ON_ALARM']),
      });
      // Rollback on the alias's own errors and p99 duration; for the data routes' handlers, also the new version's 5xx answers.
      const watched = group.Properties.AlarmConfiguration.Alarms.map((a: any) => a.Name.Ref);
      expect(group.Properties.AlarmConfiguration.Enabled).toBe(true);
      const api = API_HANDLERS.some((name) => new RegExp(`Platform${name}[0-9A-F]{8}$`).test(alias.Properties.FunctionName.Ref));
      expect(watched).toHaveLength(api ? 3 : 2);
      const metrics = watched.filter((id: string) => r[id].Properties.MetricName !== 'ServerErrors').map((id: string) => {
        expect(alarmIds.has(id)).toBe(true);
        const a = r[id].Properties;
        expect(a.Dimensions).toEqual(expect.arrayContaining([
          { Name: 'Resource', Value: { 'Fn::Join': ['', [{ Ref: alias.Properties.FunctionName.Ref }, ':live']] } },
        ]));
        expect(a).toMatchObject({ Period: 60, EvaluationPeriods: 1, TreatMissingData: 'notBreaching', ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
        return `${a.MetricName}/${a.Statistic ?? a.ExtendedStatistic}`;
      });
      expect(metrics.sort()).toEqual(['Duration/p99', 'Errors/Sum']);
      expect(aliasId).toBeDefined();
    }
  });

  test.each(['dev', 'prod'])('API integrations, their permissions and Step Functions tasks invoke the aliases, never $LATEST (%s)', (stage) => {
    const r = templates[stage];
    const byFunction = aliases(r);
    const aliasIds = new Set(byFunction.values());
    const methods = ofType(r, 'AWS::ApiGateway::Method').filter(([, m]) => m.Properties.HttpMethod !== 'OPTIONS');
    expect(methods.length).toBeGreaterThanOrEqual(5);
    for (const [id, m] of methods) {
      const refs = [...references(m.Properties.Integration.Uri)];
      expect({ id, alias: refs.some((x) => aliasIds.has(x)), fn: refs.some((x) => byFunction.has(x)) }).toEqual({ id, alias: true, fn: false });
    }
    for (const [id, p] of ofType(r, 'AWS::Lambda::Permission').filter(([, v]) => v.Properties.Principal === 'apigateway.amazonaws.com')) {
      expect({ id, target: aliasIds.has(p.Properties.FunctionName.Ref) }).toEqual({ id, target: true });
    }
    const machine = ofType(r, 'AWS::StepFunctions::StateMachine').find(([id]) => /IngestionStateMachine/.test(id))!;
    const refs = references(machine[1].Properties.DefinitionString);
    const invoked = [...refs].filter((x) => r[x]?.Type === 'AWS::Lambda::Function' || r[x]?.Type === 'AWS::Lambda::Alias');
    expect(invoked.every((x) => aliasIds.has(x))).toBe(true);
    expect(invoked).toHaveLength(4); // router, processor, copy, quarantine (the lake engine has no loader)
  });

  test.each(['dev', 'prod'])('a failed or rolled-back deployment reaches the warning topic; rollback alarms notify nobody (%s)', (stage) => {
    const r = templates[stage];
    const [appId] = ofType(r, 'AWS::CodeDeploy::Application')[0];
    const rules = ofType(r, 'AWS::Events::Rule').filter(([, rule]) => rule.Properties.EventPattern?.source?.[0] === 'aws.codedeploy');
    expect(rules).toHaveLength(1);
    const rule = rules[0][1].Properties;
    expect(rule.EventPattern).toEqual({
      'source': ['aws.codedeploy'],
      'detail-type': ['CodeDeploy Deployment State-change Notification'],
      'detail': { state: ['FAILURE'], application: [{ Ref: appId }] },
    });
    const warning = ofType(r, 'AWS::SNS::Topic').find(([id]) => id.includes('MonitoringWarningTopic'))![0];
    expect(rule.Targets.map((t: any) => t.Arn)).toEqual([{ Ref: warning }]);
    expect(rule.Targets[0].InputTransformer.InputTemplate).toContain('rolled the alias back');
    const rollbackAlarms = ofType(r, 'AWS::CloudWatch::Alarm').filter(([id]) => /Deployment(Errors|Latency|ServerErrors)/.test(id));
    expect(rollbackAlarms).toHaveLength(2 * PUBLISHED.length + API_HANDLERS.length);
    expect(rollbackAlarms.every(([, a]) => a.Properties.AlarmActions === undefined)).toBe(true);
  });
});

describe('SafeDeployment options', () => {
  test('deploymentConfig, alias name and rollback thresholds override the stage', () => {
    const { template: t } = platformStack(PlatformStage.PROD, {
      props: {
        safeDeployment: {
          deploymentConfig: codedeploy.LambdaDeploymentConfig.LINEAR_10PERCENT_EVERY_2MINUTES,
          aliasName: 'current',
          rollbackErrors: 4,
          rollbackLatencyPercentOfTimeout: 50,
        },
      },
    });
    const r = t.toJSON().Resources as Resources;
    for (const [, g] of ofType(r, 'AWS::CodeDeploy::DeploymentGroup')) {
      expect(g.Properties.DeploymentConfigName).toBe('CodeDeployDefault.LambdaLinear10PercentEvery2Minutes');
    }
    expect(ofType(r, 'AWS::Lambda::Alias').every(([, a]) => a.Properties.Name === 'current')).toBe(true);
    const health = ofType(r, 'AWS::Lambda::Function').find(([id]) => /PlatformHealthCheck[0-9A-F]{8}$/.test(id))!;
    const alarmsOfHealth = ofType(r, 'AWS::CloudWatch::Alarm').filter(([id]) => /PlatformHealthCheckDeployment(Errors|Latency)/.test(id));
    expect(alarmsOfHealth.map(([, a]) => [a.Properties.MetricName, a.Properties.Threshold]).sort()).toEqual([
      ['Duration', health[1].Properties.Timeout * 1000 * 0.5], ['Errors', 4],
    ]);
  });

  test('the monitoring\'s threshold overrides reach the rollback alarms: one set of thresholds', () => {
    const { template: t } = platformStack(PlatformStage.PROD, {
      props: { monitoring: { thresholds: { functionErrors: 6, functionDurationPercentOfTimeout: 40 } } },
    });
    const r = t.toJSON().Resources as Resources;
    const health = ofType(r, 'AWS::Lambda::Function').find(([id]) => /PlatformHealthCheck[0-9A-F]{8}$/.test(id))!;
    const alarmsOfHealth = ofType(r, 'AWS::CloudWatch::Alarm').filter(([id]) => /PlatformHealthCheckDeployment(Errors|Latency)/.test(id));
    expect(alarmsOfHealth.map(([, a]) => [a.Properties.MetricName, a.Properties.Threshold]).sort()).toEqual([
      ['Duration', health[1].Properties.Timeout * 1000 * 0.4], ['Errors', 6],
    ]);
  });

  test('enabled: false publishes nothing and the API invokes the functions', () => {
    const { template: t } = platformStack(PlatformStage.PROD, { props: { safeDeployment: { enabled: false } } });
    t.resourceCountIs('AWS::Lambda::Alias', 0);
    t.resourceCountIs('AWS::CodeDeploy::DeploymentGroup', 0);
    t.resourceCountIs('AWS::CodeDeploy::Application', 0);
    const r = t.toJSON().Resources as Resources;
    const methods = ofType(r, 'AWS::ApiGateway::Method').filter(([, m]) => m.Properties.HttpMethod !== 'OPTIONS');
    expect(methods.every(([, m]) => [...references(m.Properties.Integration.Uri)].some((x) => r[x]?.Type === 'AWS::Lambda::Function'))).toBe(true);
  });

  test('a version is re-published when the function changes after publish (environment added later)', () => {
    const versionIds = (extra?: string) => {
      const stack = new Stack(new App(), 'S', { env: ENV });
      const fn = new lambda.Function(stack, 'Fn', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=1') });
      new SafeDeployment(stack, 'Deployment', { stage: PlatformStage.PROD }).publish(fn);
      if (extra) fn.addEnvironment('LATER', extra);
      return ofType(Template.fromStack(stack).toJSON().Resources, 'AWS::Lambda::Version').map(([id]) => id);
    };
    const [plain] = versionIds();
    const [changed] = versionIds('x');
    expect(plain).toBeDefined();
    expect(changed).not.toBe(plain);
  });

  test('publishing twice returns the same alias; bad options name the prop', () => {
    const stack = new Stack(new App(), 'S', { env: ENV });
    const fn = new lambda.Function(stack, 'Fn', {
      runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=1'), timeout: Duration.seconds(10),
    });
    const deployment = new SafeDeployment(stack, 'Deployment', { stage: PlatformStage.DEV });
    expect(deployment.publish(fn)).toBe(deployment.publish(fn));
    expect(deployment.publishedFunctions).toHaveLength(1);
    Template.fromStack(stack).hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Duration', Threshold: 9000 });
    expect(() => new SafeDeployment(stack, 'A', { stage: PlatformStage.DEV, aliasName: '123' })).toThrow(/aliasName/);
    expect(() => new SafeDeployment(stack, 'B', { stage: PlatformStage.DEV, rollbackErrors: 0 })).toThrow(/rollbackErrors/);
    expect(() => new SafeDeployment(stack, 'C', { stage: PlatformStage.DEV, rollbackLatencyPercentOfTimeout: 120 })).toThrow(/rollbackLatencyPercentOfTimeout/);
    expect(() => new SafeDeployment(stack, 'D', { stage: PlatformStage.DEV, enabled: false })).toThrow(/enabled/);
    expect(() => deployment.publish(fn, { watchServerErrors: true })).toThrow(/watchServerErrors/);
  });
});
