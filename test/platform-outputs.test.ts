import { App, CfnElement, CfnOutput, Lazy, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { OnsDataPlatform, PlatformOutput, PlatformStage, TimeSeriesEngine } from '../src';
import { ENV, platformStack } from './helpers';

type Outputs = Record<string, { Value: unknown; Description?: string; Export?: unknown; Condition?: string }>;
type Resources = Record<string, { Type: string; Properties?: any }>;

const NAMES = Object.values(PlatformOutput);

/** The logical id of a construct's CloudFormation resource, as the template holds it. */
function logicalId(stack: Stack, c: IConstruct): string {
  return stack.resolve((c.node.defaultChild as CfnElement).logicalId);
}

/** Logical ids of every resource a value names through Ref or Fn::GetAtt. */
function referenced(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(referenced);
  if (value === null || typeof value !== 'object') return [];
  const o = value as Record<string, unknown>;
  if (typeof o.Ref === 'string') return [o.Ref];
  if (Array.isArray(o['Fn::GetAtt'])) return [o['Fn::GetAtt'][0] as string];
  return Object.values(o).flatMap(referenced);
}

describe('OnsDataPlatform stack outputs, default (DEV, the lake engine)', () => {
  const { stack, template, platform } = platformStack(PlatformStage.DEV);
  const outputs = template.toJSON().Outputs as Outputs;
  const resources = template.toJSON().Resources as Resources;
  const ours = Object.fromEntries(NAMES.map((n) => [n, outputs[`Platform${n}`]]));

  test('every output exists under the key <construct id><name>, as a plain output (no export, no condition)', () => {
    for (const name of NAMES) {
      expect({ name, output: ours[name] }).toEqual({ name, output: { Value: expect.anything(), Description: expect.stringMatching(/^ONS data platform \(dev\): /) } });
      expect(platform.outputKey(name)).toBe(`Platform${name}`);
    }
    expect(platform.outputPrefix).toBe('Platform');
    expect(Object.values(outputs).filter((o) => o.Export !== undefined)).toEqual([]);
  });

  test('each value is a Ref to the resource it names', () => {
    const expected: Record<string, [IConstruct, string]> = {
      RawBucketName: [platform.dataLake.rawBucket, 'AWS::S3::Bucket'],
      ProcessedBucketName: [platform.dataLake.processedBucket, 'AWS::S3::Bucket'],
      FailedBucketName: [platform.dataLake.failedBucket, 'AWS::S3::Bucket'],
      IngestionStateMachineArn: [platform.ingestion.stateMachine, 'AWS::StepFunctions::StateMachine'],
      ReprocessStateMachineArn: [platform.ingestion.reprocessStateMachine, 'AWS::StepFunctions::StateMachine'],
      BackfillStateMachineArn: [platform.ingestion.backfillStateMachine, 'AWS::StepFunctions::StateMachine'],
      LedgerTableName: [platform.ledger.table, 'AWS::DynamoDB::Table'],
      DashboardName: [platform.monitoring.dashboard, 'AWS::CloudWatch::Dashboard'],
    };
    for (const [name, [construct, type]] of Object.entries(expected)) {
      const id = logicalId(stack, construct);
      expect({ name, value: ours[name].Value, type: resources[id]?.Type }).toEqual({ name, value: { Ref: id }, type });
    }
    // Ref of a workgroup and of a Glue database returns its name.
    expect(ours.AthenaWorkGroupName.Value).toEqual({ Ref: stack.resolve(platform.dataLake.workGroup.logicalId) });
    expect(resources[stack.resolve(platform.dataLake.workGroup.logicalId)].Properties.Name).toBe('ons-data-platform-dev');
    expect(ours.GlueDatabaseName.Value).toEqual({ Ref: stack.resolve(platform.dataLake.database.logicalId) });
    expect(resources[stack.resolve(platform.dataLake.database.logicalId)].Properties.DatabaseInput.Name).toBe('ons_data_platform_dev');
    // Three state machines, three different ARNs.
    expect(new Set(['IngestionStateMachineArn', 'ReprocessStateMachineArn', 'BackfillStateMachineArn'].map((n) => JSON.stringify(ours[n].Value))).size).toBe(3);
  });

  test('ApiUrl is the URL of the API\'s stage: https://<rest api>.execute-api.<region>.<suffix>/v1/', () => {
    const restApiId = logicalId(stack, platform.api.restApi);
    const stageId = stack.resolve((platform.api.restApi.deploymentStage.node.defaultChild as CfnElement).logicalId);
    expect(ours.ApiUrl.Value).toEqual({
      'Fn::Join': ['', ['https://', { Ref: restApiId }, '.execute-api.sa-east-1.', { Ref: 'AWS::URLSuffix' }, '/', { Ref: stageId }, '/']],
    });
    expect(resources[stageId].Properties.StageName).toBe('v1');
  });

  test('no output names a secret, an API key or a dynamic reference', () => {
    for (const [key, output] of Object.entries(outputs)) {
      const types = referenced(output.Value).map((id) => resources[id]?.Type ?? id);
      expect({ key, types: types.filter((t) => /SecretsManager|ApiGateway::ApiKey|SSM::Parameter/.test(t)) }).toEqual({ key, types: [] });
      expect(JSON.stringify(output.Value)).not.toMatch(/\{\{resolve:/);
    }
  });

  test('snapshot of the platform\'s outputs', () => {
    expect(Object.fromEntries(Object.entries(outputs).filter(([k]) => k.startsWith('Platform') && NAMES.some((n) => k === `Platform${n}`))))
      .toMatchSnapshot();
  });
});

test('the keys are the same in every stage', () => {
  const keys = [PlatformStage.STAGING, PlatformStage.PROD].map((stage) =>
    Object.keys(platformStack(stage).template.toJSON().Outputs).filter((k) => NAMES.some((n) => k === `Platform${n}`)).sort());
  expect(keys[0]).toEqual(NAMES.map((n) => `Platform${n}`).sort());
  expect(keys[1]).toEqual(keys[0]);
});

test('the InfluxDB engine (which holds secrets): no output names a secret', () => {
  const { template } = platformStack(PlatformStage.DEV, { props: { timeSeries: TimeSeriesEngine.timestreamInfluxDb() } });
  const resources = template.toJSON().Resources as Resources;
  expect(Object.values(resources).filter((r) => r.Type === 'AWS::SecretsManager::Secret').length).toBeGreaterThan(0);
  for (const [key, output] of Object.entries(template.toJSON().Outputs as Outputs)) {
    const types = referenced(output.Value).map((id) => resources[id]?.Type ?? id);
    expect({ key, types: types.filter((t) => /SecretsManager|ApiGateway::ApiKey|SSM::Parameter|InfluxDB/.test(t)) }).toEqual({ key, types: [] });
  }
});

describe('two platforms in one stack', () => {
  test('default prefixes from their ids: no clash, each output names its own platform\'s resource, cdk-nag clean', () => {
    // Two platforms (about 330 resources each) exceed CloudFormation's 500 resources per stack, which CDK checks at
    // synthesis: lifted here, where only the outputs are under test.
    const app = new App({ context: { '@aws-cdk/core:stackResourceLimit': 0 } });
    const stack = new Stack(app, 'Two', { env: ENV });
    const energy = new OnsDataPlatform(stack, 'Energy', { stage: PlatformStage.DEV });
    const climate = new OnsDataPlatform(stack, 'Climate-2', { stage: PlatformStage.STAGING });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const outputs = app.synth().getStackByName('Two').template.Outputs as Outputs;
    expect(climate.outputPrefix).toBe('Climate2');
    for (const [platform, prefix] of [[energy, 'Energy'], [climate, 'Climate2']] as const) {
      expect(outputs[`${prefix}RawBucketName`].Value).toEqual({ Ref: logicalId(stack, platform.dataLake.rawBucket) });
      expect(outputs[`${prefix}LedgerTableName`].Value).toEqual({ Ref: logicalId(stack, platform.ledger.table) });
      for (const name of NAMES) expect(outputs[platform.outputKey(name)]).toBeDefined();
    }
    expect(logicalId(stack, energy.dataLake.rawBucket)).not.toBe(logicalId(stack, climate.dataLake.rawBucket));
  });

  test('the same outputPrefix twice fails synthesis naming the prop and both platforms', () => {
    const app = new App();
    const stack = new Stack(app, 'Clash', { env: ENV });
    new OnsDataPlatform(stack, 'Energy', { stage: PlatformStage.DEV, outputPrefix: 'Ons' });
    new OnsDataPlatform(stack, 'Climate', { stage: PlatformStage.STAGING, outputPrefix: 'Ons' });
    expect(() => app.synth()).toThrow(/outputPrefix: the output key 'OnsRawBucketName' is used by Clash\/Energy\/Outputs\/RawBucketName and Clash\/Climate\/Outputs\/RawBucketName/);
  });

  test('an output of the app with a platform\'s key fails synthesis too', () => {
    const app = new App();
    const stack = new Stack(app, 'Mine', { env: ENV });
    const platform = new OnsDataPlatform(stack, 'Platform', { stage: PlatformStage.DEV, outputPrefix: '' });
    new CfnOutput(stack, 'ApiUrl', { value: platform.api.url });
    expect(() => app.synth()).toThrow(/outputPrefix: the output key 'ApiUrl' is used by/);
  });
});

describe('outputs and outputPrefix props', () => {
  test('outputPrefix \'\' gives the bare names', () => {
    const { template, platform } = platformStack(PlatformStage.DEV, { props: { outputPrefix: '' } });
    const outputs = template.toJSON().Outputs as Outputs;
    for (const name of NAMES) expect(outputs[name]).toBeDefined();
    expect(platform.outputKey(PlatformOutput.RAW_BUCKET_NAME)).toBe('RawBucketName');
  });

  test('outputs: false adds none of them, and outputKey says why', () => {
    const { template, platform } = platformStack(PlatformStage.DEV, { props: { outputs: false } });
    const keys = Object.keys(template.toJSON().Outputs ?? {});
    expect(keys.filter((k) => NAMES.some((n) => k.endsWith(n)))).toEqual([]);
    expect(() => platform.outputKey(PlatformOutput.API_URL)).toThrow('outputs: the platform at Platform-dev/Platform has no stack outputs (outputs is false)');
  });

  test.each([
    ['ons-prod', /outputPrefix: letters and digits only, got 'ons-prod'/],
    ['x'.repeat(232), /outputPrefix: at most 231 characters \(output keys are at most 255\), got 232$/],
    [Lazy.string({ produce: () => 'Ons' }), /outputPrefix: must be a literal string, not a token/],
  ])('outputPrefix %p is refused at construction', (outputPrefix, message) => {
    const stack = new Stack(new App(), 'Bad', { env: ENV });
    expect(() => new OnsDataPlatform(stack, 'Platform', { stage: PlatformStage.DEV, outputPrefix })).toThrow(message);
    expect(stack.node.tryFindChild('Platform')?.node.children.length).toBe(0);
  });

  test('a construct id too long for the keys is refused, asking for outputPrefix', () => {
    const stack = new Stack(new App(), 'Bad', { env: ENV });
    expect(() => new OnsDataPlatform(stack, 'P'.repeat(240), { stage: PlatformStage.DEV }))
      .toThrow(/outputPrefix: at most 231 characters .* got 240 \(derived from the construct id 'P+'; set outputPrefix\)/);
  });
});
