import { App, Duration, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  DataLake, IDataLake, IngestionPipeline, LakeStore, LakeStoreProps, OnsDataPlatform, PlatformStage, TimeSeriesEngine,
} from '../../src';
import { HealthEnv } from '../../src/health/contract';
import { createHealthCheck } from '../../src/health/health-check';
import { CATALOG } from '../../src/ons/catalog';
import { LakeQueryEnv, TimeSeriesEnv } from '../../src/timeseries/contract';
import { queryConfigFromEnv } from '../../src/timeseries/lake/runtime/query';
import { ENV, lakeAndLedger } from '../helpers';

function storeStack(props: Partial<LakeStoreProps> = {}, stage = PlatformStage.DEV, app = new App()) {
  const stack = new Stack(app, 'Store', { env: ENV });
  const { dataLake, ledger } = lakeAndLedger(stack, stage);
  const store = new LakeStore(stack, 'TimeSeries', { stage, dataLake, ledger, ...props });
  return { app, stack, store, dataLake, ledger, template: () => Template.fromStack(stack) };
}

interface Permission { action: string; resource: string; condition?: unknown }

/** Every (action, resource) the role's policies allow, resources resolved to JSON text. */
function permissionsOf(stack: Stack, role: iam.IRole): Permission[] {
  const t = Template.fromStack(stack);
  const roleId = stack.getLogicalId(role.node.defaultChild as never);
  const out: Permission[] = [];
  for (const policy of Object.values(t.findResources('AWS::IAM::Policy')) as any[]) {
    if (!policy.Properties.Roles.some((r: any) => r.Ref === roleId)) continue;
    for (const s of policy.Properties.PolicyDocument.Statement) {
      expect(s.Effect).toBe('Allow');
      for (const action of [s.Action].flat()) {
        for (const resource of [s.Resource].flat()) out.push({ action, resource: JSON.stringify(resource), condition: s.Condition });
      }
    }
  }
  return out;
}

const ref = (prefix: string) => new RegExp(`"(Ref|Fn::GetAtt)":\\s*\\[?"${prefix}`);

describe('LakeStore', () => {
  test('no table and no loader of its own: the query function reads the lake\'s current views in its workgroup', () => {
    const { store, dataLake, template } = storeStack();
    const t = template();
    t.resourceCountIs('AWS::Timestream::Database', 0);
    t.resourceCountIs('AWS::Timestream::Table', 0);
    expect(store.loaderFunction).toBeUndefined();
    expect(store.engine).toBe('athena-lake');
    expect(store.datasetIds).toEqual(dataLake.datasetIds);
    expect(store.datasetIds).toEqual(CATALOG.map((d) => d.id));
    const fns = t.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('time-series queries \\(Athena') } });
    expect(Object.keys(fns)).toHaveLength(1);
    const fn = Object.values(fns)[0] as any;
    // Above the handler's 25 s deadline, below API Gateway's 29 s.
    expect(fn.Properties.Timeout).toBe(28);
    const env = fn.Properties.Environment.Variables;
    expect(env[TimeSeriesEnv.DATABASE]).toBe('ons_data_platform_dev');
    expect(env[LakeQueryEnv.WORK_GROUP]).toBe('ons-data-platform-dev');
    expect(JSON.parse(env[TimeSeriesEnv.TABLES])).toEqual(Object.fromEntries(CATALOG.map((d) => [d.id, `${d.id}_current`])));
    expect(env[TimeSeriesEnv.MAX_POINTS]).toBe('999');
    expect(env[LakeQueryEnv.DEADLINE_MS]).toBe('25000');
    expect(env[LakeQueryEnv.RESULT_REUSE_MINUTES]).toBe('60');
    expect(env[LakeQueryEnv.ATHENA_ENDPOINT]).toBeUndefined();
  });

  test('the environment the construct writes is one the handler accepts', () => {
    const { template } = storeStack({ queryDeadline: Duration.seconds(10), resultReuse: Duration.minutes(0), maxPointsPerPage: 100 });
    const fn = Object.values(template().findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('Athena') } }))[0] as any;
    const saved = { ...process.env };
    try {
      Object.assign(process.env, fn.Properties.Environment.Variables);
      const config = queryConfigFromEnv();
      expect(config).toMatchObject({ database: 'ons_data_platform_dev', workGroup: 'ons-data-platform-dev', deadlineMs: 10_000, reuseMinutes: 0, maxPoints: 100 });
    } finally {
      process.env = saved;
    }
  });

  test('the query role runs queries only in the platform\'s workgroup, reads only the processed zone and the results, and uses the key through S3', () => {
    const { stack, store } = storeStack();
    const perms = permissionsOf(stack, store.queryFunction.role!);
    for (const p of perms) {
      expect(p.action).not.toMatch(/\*/);
      expect(p.resource).not.toBe('"*"');
    }
    const athena = perms.filter((p) => p.action.startsWith('athena:'));
    expect(new Set(athena.map((p) => p.action))).toEqual(new Set(['athena:StartQueryExecution', 'athena:GetQueryExecution', 'athena:GetQueryResults', 'athena:StopQueryExecution', 'athena:GetWorkGroup']));
    for (const p of athena) expect(p.resource).toMatch(/:workgroup\/ons-data-platform-dev"/);

    const s3 = perms.filter((p) => p.action.startsWith('s3:'));
    const objects = s3.filter((p) => !['s3:ListBucket', 's3:GetBucketLocation'].includes(p.action));
    for (const p of objects) {
      expect(p.resource).toMatch(ref('LakeProcessedBucket'));
      expect(p.resource).toMatch(/\/(processed|athena-results|[a-z-]*results)\/\*"/);
    }
    // Reads the data; writes only query results.
    const writes = objects.filter((p) => p.action !== 's3:GetObject');
    expect(writes.length).toBeGreaterThan(0);
    for (const p of writes) expect(p.resource).not.toMatch(/\/processed\/\*"/);
    const list = s3.filter((p) => p.action === 's3:ListBucket');
    expect(list.length).toBeGreaterThan(0);
    for (const p of list) expect(p.condition).toEqual({ StringLike: { 's3:prefix': expect.any(Array) } });
    expect(s3.some((p) => p.resource.match(ref('LakeRawBucket')) || p.resource.match(ref('LakeFailedBucket')))).toBe(false);

    const glue = perms.filter((p) => p.action.startsWith('glue:'));
    expect(glue.every((p) => ['glue:GetDatabase', 'glue:GetTable', 'glue:GetTables', 'glue:GetPartitions'].includes(p.action))).toBe(true);
    for (const p of glue) expect(p.resource).toMatch(/:glue:.*:(catalog|database\/ons_data_platform_dev|table\/ons_data_platform_dev\/[a-z0-9_]+)"/);

    const kms = perms.filter((p) => p.action.startsWith('kms:'));
    for (const p of kms) expect(p.resource).toMatch(ref('LakeKey'));
    // Data goes through S3 only; the function's own environment is the one Decrypt outside S3 (Lambda's context).
    for (const p of kms) {
      const environment = (p.condition as { ArnLike?: Record<string, unknown> } | undefined)?.ArnLike?.['kms:EncryptionContext:aws:lambda:FunctionArn'];
      if (environment) expect(p.action).toBe('kms:Decrypt');
      else expect(p.condition).toEqual({ StringEquals: { 'kms:ViaService': `s3.${ENV.region}.amazonaws.com` } });
    }
    expect(kms.every((p) => p.condition)).toBe(true);
    const others = perms.filter((p) => !/^(athena|s3|glue|kms|logs|xray|appconfig):/.test(p.action));
    expect(others).toEqual([]);
    expect(perms.some((p) => p.action.startsWith('dynamodb:') || p.action.startsWith('timestream:'))).toBe(false);
  });

  test('props are validated and errors name the prop', () => {
    expect(() => storeStack({ queryDeadline: Duration.seconds(26) })).toThrow(/queryDeadline/);
    expect(() => storeStack({ queryDeadline: Duration.millis(500) })).toThrow(/queryDeadline/);
    expect(() => storeStack({ resultReuse: Duration.days(8) })).toThrow(/resultReuse/);
    expect(() => storeStack({ resultReuse: Duration.seconds(90) })).toThrow(/resultReuse/);
    expect(() => storeStack({ maxPointsPerPage: 1000 })).toThrow(/maxPointsPerPage/);
    expect(() => storeStack({ maxPointsPerPage: 0 })).toThrow(/maxPointsPerPage/);
    expect(() => storeStack({ reservedConcurrentExecutions: -1 })).toThrow(/reservedConcurrentExecutions/);
  });

  test('TimeSeriesEngine.lake() refuses a lake that cannot be queried, naming dataLake', () => {
    const stack = new Stack(new App(), 'S', { env: ENV });
    const { dataLake, ledger } = lakeAndLedger(stack, PlatformStage.DEV);
    const bare: IDataLake = {
      encryptionKey: dataLake.encryptionKey,
      rawBucket: dataLake.rawBucket,
      processedBucket: dataLake.processedBucket,
      failedBucket: dataLake.failedBucket,
      accessLogsBucket: dataLake.accessLogsBucket,
      processedDataPrefix: 'processed/',
      documentsPrefix: 'documents/',
      dataCardsPrefix: 'cards/',
      rejectedRowsPrefix: 'rejected/',
      quarantinePrefix: 'quarantine/',
      stagingPrefix: 'staging/',
      reportsPrefix: 'reports/',
      grantUpload: (g) => dataLake.grantUpload(g),
    };
    expect(() => TimeSeriesEngine.lake().bind(stack, { stage: PlatformStage.DEV, dataLake: bare, ledger })).toThrow(/^dataLake: /);
    expect(TimeSeriesEngine.lake().bind(stack, { stage: PlatformStage.DEV, dataLake, ledger })).toBeInstanceOf(LakeStore);
  });

  test('health probe: GetWorkGroup on the workgroup and GetDatabase on the catalog and the database, nothing else', () => {
    const { stack, store, dataLake } = storeStack();
    const probe = store.healthProbe();
    expect(stack.resolve(probe.config)).toEqual({ engine: 'athena-lake', database: 'ons_data_platform_dev', workGroup: 'ons-data-platform-dev' });
    const fn = createHealthCheck(stack, 'Health', {
      stage: PlatformStage.DEV,
      encryptionKey: dataLake.encryptionKey,
      buckets: { raw: dataLake.rawBucket, processed: dataLake.processedBucket, failed: dataLake.failedBucket },
      timeSeries: probe,
    });
    const perms = permissionsOf(stack, fn.role!).filter((p) => /^(athena|glue):/.test(p.action));
    expect(perms.map((p) => p.action).sort()).toEqual(['athena:GetDatabase', 'athena:GetWorkGroup', 'glue:GetDatabase', 'glue:GetDatabase']);
    expect(perms.find((p) => p.action === 'athena:GetWorkGroup')!.resource).toMatch(/:workgroup\/ons-data-platform-dev"/);
    expect(perms.find((p) => p.action === 'athena:GetDatabase')!.resource).toMatch(/:datacatalog\/AwsDataCatalog"/);
    expect(perms.filter((p) => p.action === 'glue:GetDatabase').map((p) => p.resource).sort()).toEqual([
      expect.stringMatching(/:catalog"/), expect.stringMatching(/:database\/ons_data_platform_dev"/),
    ]);
    const env = (Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('health') } }))[0] as any)
      .Properties.Environment.Variables;
    expect(JSON.parse(env[HealthEnv.TIME_SERIES])).toEqual({ engine: 'athena-lake', database: 'ons_data_platform_dev', workGroup: 'ons-data-platform-dev' });
  });

  test('monitoring: failed, canceled and slow queries of the workgroup (AWS/Athena), thresholds from the stage', () => {
    const app = new App();
    const stack = new Stack(app, 'P', { env: ENV });
    const stage = PlatformStage.DEV.derive({ name: 'dev', alarmThresholds: { timeSeriesErrors: 3, lakeQueryTimeP99: Duration.seconds(15) } });
    new OnsDataPlatform(stack, 'Platform', { stage });
    const t = Template.fromStack(stack);
    const dims = (state: string) => Match.arrayEquals([
      { Name: 'QueryState', Value: state }, { Name: 'QueryType', Value: 'DML' }, { Name: 'WorkGroup', Value: 'ons-data-platform-dev' },
    ]);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Athena', MetricName: 'TotalExecutionTime', Statistic: 'SampleCount', Dimensions: dims('FAILED'), Threshold: 3,
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Athena', MetricName: 'TotalExecutionTime', Statistic: 'SampleCount', Dimensions: dims('CANCELED'), Threshold: 3,
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Athena', MetricName: 'TotalExecutionTime', ExtendedStatistic: 'p99', Dimensions: dims('SUCCEEDED'), Threshold: 15_000,
    });
    expect(JSON.stringify(t.findResources('AWS::CloudWatch::Dashboard'))).toContain('Lake bytes scanned');
    expect(() => PlatformStage.DEV.derive({ name: 'x', alarmThresholds: { lakeQueryTimeP99: Duration.seconds(0) } })).toThrow(/alarmThresholds.lakeQueryTimeP99/);
  });

  test('the default platform uses the lake engine: no Timestream, no loader, the processor records loaded; cdk-nag AwsSolutions clean', () => {
    const app = new App();
    const stack = new Stack(app, 'Platform-lake', { env: ENV });
    // Registered before the first synthesis: a later synth() returns the cached assembly without validating.
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const platform = new OnsDataPlatform(stack, 'Platform', { stage: PlatformStage.PROD });
    expect(platform.timeSeries).toBeInstanceOf(LakeStore);
    expect(platform.ingestion.timeSeriesLoader).toBeUndefined();
    expect(platform.ingestion.reprocessMaxConcurrency).toBe(IngestionPipeline.defaultReprocessConcurrency('athena-lake'));
    expect(() => app.synth()).not.toThrow();
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::Timestream::Database', 0);
    t.resourceCountIs('AWS::Timestream::Table', 0);
    t.resourceCountIs('AWS::Timestream::InfluxDBInstance', 0);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('file processor'),
      Environment: { Variables: Match.objectLike({ ONS_LOADED_ON_PUBLISH: 'athena-lake' }) },
    });
    t.hasResourceProperties('AWS::Batch::JobDefinition', {
      ContainerProperties: { Environment: Match.arrayWith([{ Name: 'ONS_LOADED_ON_PUBLISH', Value: 'athena-lake' }]) },
    });
    // With a Timestream engine the processor is not told: the loader records loaded.
    const other = new OnsDataPlatform(new Stack(new App(), 'Platform-ts', { env: ENV }), 'Platform', {
      stage: PlatformStage.PROD, timeSeries: TimeSeriesEngine.timestreamLiveAnalytics(),
    });
    const ot = Template.fromStack(Stack.of(other));
    const processor = Object.values(ot.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('file processor') } }))[0] as any;
    expect(processor.Properties.Environment.Variables.ONS_LOADED_ON_PUBLISH).toBeUndefined();
    expect(DataLake).toBeDefined();
  });
});
