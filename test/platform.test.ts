import { App, Duration, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks, NIST80053R5Checks, ServerlessChecks } from 'cdk-nag';
import { OnsDataPlatform, PlatformStage } from '../src';
import { ENV, platformStack, tagsOf, taggableLogicalIds } from './helpers';
import { HealthEnv } from '../src/health/contract';

const STAGES = [PlatformStage.DEV, PlatformStage.STAGING, PlatformStage.PROD];

/** The CDK-provided function that empties buckets before DESTROY: not the platform's own. */
const CDK_AUTO_DELETE_PROVIDER = /^CustomS3AutoDeleteObjectsCustomResourceProviderHandler/;

describe.each(STAGES.flatMap((stage) => [[stage.name, 'unset', stage, undefined], [stage.name, 'true', stage, true]] as const))(
  'OnsDataPlatform %s, removeDataOnDestroy %s', (_name, _flag, stage, removeData) => {
    const { stack, template, platform } = platformStack(stage, { removeData, props: { tags: { CostCenter: 'energy-data' } } });
    const resources = template.toJSON().Resources as Record<string, { Type: string; Properties: any }>;
    const functions = Object.entries(resources).filter(([id, r]) => r.Type === 'AWS::Lambda::Function' && !CDK_AUTO_DELETE_PROVIDER.test(id));

    test('creates at least one function (so the checks below check something)', () => {
      expect(functions.length).toBeGreaterThan(0);
    });

    test('every function has the platform defaults', () => {
      const keyId = Object.keys(template.findResources('AWS::KMS::Key'))[0];
      for (const [id, fn] of functions) {
        const p = fn.Properties;
        const logGroupRef = p.LoggingConfig?.LogGroup?.Ref;
        expect({ id, runtime: p.Runtime, arch: p.Architectures, key: p.KmsKeyArn }).toEqual({
          id, runtime: 'nodejs24.x', arch: ['arm64'], key: { 'Fn::GetAtt': [keyId, 'Arn'] },
        });
        expect(logGroupRef).toBeDefined();
        const logGroup = resources[logGroupRef];
        expect(logGroup.Type).toBe('AWS::Logs::LogGroup');
        expect(logGroup.Properties.RetentionInDays).toBe(stage.logRetention);
        expect(logGroup.Properties.KmsKeyId).toEqual({ 'Fn::GetAtt': [keyId, 'Arn'] });
        if (stage.tracing === 'Active') {
          expect(p.TracingConfig).toEqual({ Mode: 'Active' });
        } else {
          expect(p.TracingConfig).toBeUndefined();
        }
      }
    });

    test('every taggable resource carries Project, Stage, ManagedBy and the tags prop', () => {
      const ids = taggableLogicalIds(stack);
      expect(ids.length).toBeGreaterThan(5);
      for (const id of ids) {
        expect({ id, tags: tagsOf(resources[id]) }).toEqual({
          id,
          tags: expect.objectContaining({ Project: 'ons-data-platform', Stage: stage.name, ManagedBy: 'aws-cdk', CostCenter: 'energy-data' }),
        });
      }
    });

    test('no IAM policy grants a wildcard action', () => {
      for (const [id, r] of Object.entries(resources).filter(([, x]) => x.Type === 'AWS::IAM::Policy')) {
        for (const s of r.Properties.PolicyDocument.Statement) {
          const actions = [s.Action].flat();
          expect({ id, wildcard: actions.filter((a: string) => a === '*' || a.endsWith(':*')) }).toEqual({ id, wildcard: [] });
        }
      }
    });

    test('the health function may only list the three data buckets', () => {
      const roleRef = (template.findResources('AWS::Lambda::Function', { Properties: { Description: `ONS data platform (${stage.name}): health check` } }));
      const [fn] = Object.values(roleRef);
      const roleId = fn.Properties.Role['Fn::GetAtt'][0];
      const [policy] = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) => p.Properties.Roles.some((r: any) => r.Ref === roleId));
      const list = policy.Properties.PolicyDocument.Statement.find((s: any) => s.Action === 's3:ListBucket');
      expect(list.Resource.map((r: any) => r['Fn::GetAtt'][0])).toEqual([
        stack.resolve((platform.dataLake.rawBucket.node.defaultChild as any).logicalId),
        stack.resolve((platform.dataLake.processedBucket.node.defaultChild as any).logicalId),
        stack.resolve((platform.dataLake.failedBucket.node.defaultChild as any).logicalId),
      ]);
    });
  });

describe('cdk-nag AwsSolutions, NIST 800-53 R5 and Serverless', () => {
  // One synth per case, the three packs at once; NIST and Serverless findings that are choices are acknowledged per resource.
  test.each(STAGES.flatMap((stage) => [[stage.name, 'unset', stage, undefined], [stage.name, 'true', stage, true]] as const))(
    '%s, removeDataOnDestroy %s: no unacknowledged finding', (_name, _flag, stage, removeData) => {
      const context = removeData === undefined ? {} : { [PlatformStage.REMOVE_DATA_ON_DESTROY_CONTEXT]: removeData };
      const app = new App({ context });
      const stack = new Stack(app, 'Nag', { env: ENV });
      new OnsDataPlatform(stack, 'Platform', { stage });
      Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new NIST80053R5Checks(app), new ServerlessChecks(app));
      expect(() => app.synth()).not.toThrow();
    });

  test('PROD with waf: the web ACL and its logging pass the three packs (NIST WAFv2 logging included)', () => {
    const app = new App();
    const stack = new Stack(app, 'Nag', { env: ENV });
    new OnsDataPlatform(stack, 'Platform', { stage: PlatformStage.PROD, api: { waf: {} } });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new NIST80053R5Checks(app), new ServerlessChecks(app));
    expect(() => app.synth()).not.toThrow();
  });

  test('the NIST and Serverless checks are live: a queue without a redrive policy fails synth', () => {
    const app = new App();
    const stack = new Stack(app, 'Nag', { env: ENV });
    new OnsDataPlatform(stack, 'Platform', { stage: PlatformStage.PROD });
    new sqs.Queue(stack, 'Bare', { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true });
    Validations.of(app).addPlugins(new NIST80053R5Checks(app), new ServerlessChecks(app));
    expect(() => app.synth()).toThrow(/Serverless-SQSRedrivePolicy/);
  });

  test('the check is live: an unacknowledged finding fails synth', () => {
    const app = new App();
    const stack = new Stack(app, 'Nag', { env: ENV });
    new OnsDataPlatform(stack, 'Platform', { stage: PlatformStage.PROD });
    // A bucket with none of the lake's settings.
    new s3.Bucket(stack, 'Bare');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow(/AwsSolutions-S1|AwsSolutions-S10/);
  });
});

describe('OnsDataPlatform props', () => {
  test('reservedConcurrentExecutions reaches every function', () => {
    const { template } = platformStack(PlatformStage.PROD, { props: { reservedConcurrentExecutions: 5 } });
    template.allResourcesProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: 5 });
  });

  test.each([0, -1, 2.5])('reservedConcurrentExecutions %p is refused', (value) => {
    expect(() => platformStack(PlatformStage.PROD, { props: { reservedConcurrentExecutions: value } }))
      .toThrow(`reservedConcurrentExecutions: expected a positive integer, got ${value}`);
  });

  test('a tag from the tags prop wins over a platform tag', () => {
    const { template } = platformStack(PlatformStage.DEV, { props: { tags: { Project: 'energy-analytics' } } });
    for (const bucket of Object.values(template.findResources('AWS::S3::Bucket'))) {
      expect(tagsOf(bucket).Project).toBe('energy-analytics');
    }
  });

  test('dataLake options reach the lake', () => {
    const { platform } = platformStack(PlatformStage.DEV, { props: { dataLake: { processedDataPrefix: 'parquet/' } } });
    expect(platform.dataLake.processedDataPrefix).toBe('parquet/');
    expect(platform.encryptionKey).toBe(platform.dataLake.encryptionKey);
  });

  test('the health function environment names the three buckets', () => {
    const { template, stack, platform } = platformStack(PlatformStage.DEV);
    const [fn] = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function'))
      .filter((f) => /health check/.test(f.Properties.Description ?? ''));
    const joined = JSON.stringify(fn.Properties.Environment.Variables.ONS_LAKE_BUCKETS);
    for (const b of [platform.dataLake.rawBucket, platform.dataLake.processedBucket, platform.dataLake.failedBucket]) {
      expect(joined).toContain(stack.resolve((b.node.defaultChild as any).logicalId));
    }
    expect(template).toBeDefined();
  });

  test('the readiness cache time reaches the health function: 30 s by default, healthReadinessCacheTtl otherwise', () => {
    const readyCache = (props: Record<string, unknown>) => {
      const { stack } = platformStack(PlatformStage.DEV, { props });
      const [fn] = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function'))
        .filter((f) => /health check/.test(f.Properties.Description ?? ''));
      return fn.Properties.Environment.Variables[HealthEnv.READY_CACHE_SECONDS];
    };
    expect(readyCache({})).toBe('30');
    expect(readyCache({ healthReadinessCacheTtl: Duration.minutes(1) })).toBe('60');
  });

  test.each([Duration.seconds(4), Duration.seconds(301), Duration.millis(7500)])('healthReadinessCacheTtl %s refused naming the prop', (ttl) => {
    const stack = new Stack(new App(), 'Ready', { env: ENV });
    expect(() => new OnsDataPlatform(stack, 'Platform', { stage: PlatformStage.DEV, healthReadinessCacheTtl: ttl }))
      .toThrow(/healthReadinessCacheTtl: whole seconds from 5 to 300, got/);
  });
});

describe('OnsDataPlatform documented defaults', () => {
  test('no reserved concurrency, only the platform tags, a new rotating key', () => {
    const { template, platform } = platformStack(PlatformStage.PROD);
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function'))) {
      expect(fn.Properties.ReservedConcurrentExecutions).toBeUndefined();
      expect(Object.keys(tagsOf(fn)).sort()).toEqual(['ManagedBy', 'Project', 'Stage']);
    }
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    expect(platform.dataLake.lifecycle).toEqual(PlatformStage.PROD.lifecycle);
  });
});
