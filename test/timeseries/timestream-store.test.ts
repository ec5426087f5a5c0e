import { App, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { IngestionPipeline, PlatformStage, TimestreamStore, TimestreamStoreProps } from '../../src';
import { CATALOG } from '../../src/ons/catalog';
import { ENV, lakeAndLedger } from '../helpers';
import { grantedRoles } from './store';
import { definitionOf } from '../ingestion/asl';

function storeStack(props: Partial<TimestreamStoreProps> = {}, stage = PlatformStage.DEV, env = ENV) {
  const stack = new Stack(new App(), 'Store', { env });
  const { dataLake, ledger } = lakeAndLedger(stack, stage);
  const store = new TimestreamStore(stack, 'TimeSeries', { stage, dataLake, ledger, ...props });
  return { stack, store, dataLake, ledger, template: () => Template.fromStack(stack) };
}

describe('TimestreamStore', () => {
  test('a KMS-encrypted database and one table per catalog dataset, with magnetic-store writes reporting to the failed bucket', () => {
    const { template } = storeStack();
    const t = template();
    t.hasResourceProperties('AWS::Timestream::Database', { DatabaseName: 'ons_data_platform_dev', KmsKeyId: Match.anyValue() });
    t.resourceCountIs('AWS::Timestream::Table', CATALOG.length);
    for (const dataset of CATALOG) {
      t.hasResourceProperties('AWS::Timestream::Table', {
        TableName: dataset.id,
        MagneticStoreWriteProperties: {
          EnableMagneticStoreWrites: true,
          MagneticStoreRejectedDataLocation: {
            S3Configuration: {
              BucketName: { Ref: Match.stringLikeRegexp('^LakeFailedBucket') },
              ObjectKeyPrefix: `rejected/timeseries-magnetic-store/${dataset.id}/`,
              EncryptionOption: 'SSE_KMS',
              KmsKeyId: Match.anyValue(),
            },
          },
        },
      });
    }
  });

  test.each([
    ['dev', PlatformStage.DEV, '24'],
    ['staging', PlatformStage.STAGING, '72'],
    ['prod', PlatformStage.PROD, '168'],
  ])('retention from the stage (%s): memory hours, 73000 magnetic days', (_name, stage, hours) => {
    storeStack({}, stage).template().allResourcesProperties('AWS::Timestream::Table', {
      RetentionProperties: { MemoryStoreRetentionPeriodInHours: hours, MagneticStoreRetentionPeriodInDays: '73000' },
    });
  });

  test('retention, extra datasets and a catch-all table as props; invalid values name the prop', () => {
    const { template } = storeStack({
      memoryStoreRetention: Duration.hours(12),
      magneticStoreRetention: Duration.days(36500),
      additionalDatasets: ['geracao_termica_despacho'],
      catchAllTable: true,
    });
    const t = template();
    t.resourceCountIs('AWS::Timestream::Table', CATALOG.length + 2);
    t.hasResourceProperties('AWS::Timestream::Table', { TableName: 'geracao_termica_despacho' });
    t.hasResourceProperties('AWS::Timestream::Table', {
      TableName: 'ons_other_datasets',
      RetentionProperties: { MemoryStoreRetentionPeriodInHours: '12', MagneticStoreRetentionPeriodInDays: '36500' },
    });
    expect(() => storeStack({ memoryStoreRetention: Duration.hours(9000) })).toThrow(/memoryStoreRetention/);
    expect(() => storeStack({ magneticStoreRetention: Duration.days(80000) })).toThrow(/magneticStoreRetention/);
    expect(() => storeStack({ additionalDatasets: ['Bad Name'] })).toThrow(/additionalDatasets/);
    expect(() => storeStack({ additionalDatasets: [CATALOG[0].id] })).toThrow(/additionalDatasets/);
    expect(() => storeStack({ maxWritesInFlight: 0 })).toThrow(/maxWritesInFlight/);
  });

  test('a short magnetic retention warns that old ONS data will be rejected', () => {
    const { stack } = storeStack({ magneticStoreRetention: Duration.days(365) });
    Annotations.fromStack(stack).hasWarning('/Store/TimeSeries', Match.stringLikeRegexp('ONS history starts in 2000'));
  });

  test('a region without LiveAnalytics gets a synth warning; a supported one does not', () => {
    const sp = storeStack({}, PlatformStage.DEV, { account: '123456789012', region: 'sa-east-1' });
    Annotations.fromStack(sp.stack).hasWarning('/Store/TimeSeries', Match.stringLikeRegexp('not offered in sa-east-1'));
    const va = storeStack({}, PlatformStage.DEV, { account: '123456789012', region: 'us-east-1' });
    Annotations.fromStack(va.stack).hasNoWarning('/Store/TimeSeries', Match.stringLikeRegexp('not offered'));
  });

  test('retained unless data removal is allowed and asked for', () => {
    storeStack().template().hasResource('AWS::Timestream::Database', { DeletionPolicy: 'Retain' });
    const app = new App({ context: { [PlatformStage.REMOVE_DATA_ON_DESTROY_CONTEXT]: true } });
    const stack = new Stack(app, 'Removable', { env: ENV });
    new TimestreamStore(stack, 'TimeSeries', { stage: PlatformStage.DEV, ...lakeAndLedger(stack, PlatformStage.DEV) });
    Template.fromStack(stack).hasResource('AWS::Timestream::Table', { DeletionPolicy: 'Delete' });
  });

  describe('grants', () => {
    const { stack, store } = storeStack();
    const { writerStatements, readerStatements } = grantedRoles(stack, store);

    test('the writer may only write records to the store\'s tables (and discover endpoints)', () => {
      const statements = writerStatements;
      expect(statements.map((s: any) => s.Action).sort()).toEqual(['timestream:DescribeEndpoints', 'timestream:WriteRecords']);
      const write = statements.find((s: any) => s.Action === 'timestream:WriteRecords');
      expect(write.Resource).toHaveLength(CATALOG.length);
      for (const r of write.Resource) expect(r['Fn::GetAtt'][1]).toBe('Arn');
    });

    test('the reader may only select and describe', () => {
      const actions = readerStatements.flatMap((s: any) => [s.Action].flat()).sort();
      expect(actions).toEqual(['timestream:DescribeEndpoints', 'timestream:DescribeTable', 'timestream:ListMeasures', 'timestream:Select']);
    });
  });

  test('the pipeline invokes the store\'s loader in LoadTimeSeries, with retries and the quarantine on failure', () => {
    const { stack, store, dataLake } = storeStack();
    new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake, timeSeriesStore: store });
    const load = definitionOf(stack, 'IngestionStateMachine').States.LoadTimeSeries;
    expect(load.Type).toBe('Task');
    expect(load.Parameters).toEqual({ 'source.$': '$.route.source', 'executionArn.$': '$.executionArn', 'processed.$': '$.processed' });
    expect(load.Retry[0]).toEqual({ ErrorEquals: ['InvalidLoadInput', 'NothingWritten', 'TimeSeriesWriteRefused', 'TimeSeriesThrottled'], MaxAttempts: 0 });
    // Throttling past the loader's budget waits and loads again (retryLater); anything else is quarantined.
    expect(load.Catch.map((c: any) => [c.ErrorEquals, c.Next])).toEqual([[['TimeSeriesThrottled'], 'LoadThrottled'], [['States.ALL'], 'LoadTimeSeriesFailed']]);
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('time-series loader'),
      Environment: { Variables: Match.objectLike({ ONS_TS_MAX_IN_FLIGHT: '8', ONS_TS_REJECTED_RECORDS_PREFIX: 'rejected/timeseries/' }) },
    });
  });
});

describe('TimestreamStore health and metrics', () => {
  test('its health probe names the engine and the database; it may call DescribeEndpoints and DescribeDatabase on that database only', () => {
    const { stack, store } = storeStack();
    const health = new lambda.Function(stack, 'Health', {
      runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = 1'),
    });
    const probe = store.healthProbe();
    expect(stack.resolve(probe.config)).toEqual({ engine: 'timestream-liveanalytics', database: { Ref: stack.getLogicalId(store.database) } });
    probe.grant(health);
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [
          { Action: 'timestream:DescribeEndpoints', Effect: 'Allow', Resource: '*' },
          { Action: 'timestream:DescribeDatabase', Effect: 'Allow', Resource: { 'Fn::GetAtt': [stack.getLogicalId(store.database), 'Arn'] } },
        ],
      },
    });
  });

  test('system and user errors per operation (AWS/Timestream, Operation: the only dimension it gives them)', () => {
    const { stack, store } = storeStack();
    for (const [metric, name] of [[store.metricSystemErrors('WriteRecords'), 'SystemErrors'], [store.metricUserErrors('WriteRecords'), 'UserErrors']] as const) {
      expect(metric.namespace).toBe('AWS/Timestream');
      expect(metric.metricName).toBe(name);
      expect(metric.statistic).toBe('Sum');
      expect(stack.resolve(metric.dimensions)).toEqual({ Operation: 'WriteRecords' });
    }
    expect(store.metricUserErrors('Query', { period: Duration.minutes(1) }).period.toMinutes()).toBe(1);
  });

  test('magnetic-store rejections of its own database: a Metrics Insights SUM over the tables (DatabaseName, Operation, TableName)', () => {
    const { stack, store } = storeStack({}, PlatformStage.PROD);
    const config = store.metricMagneticStoreRejectedRecords(Duration.minutes(1)).toMetricConfig();
    expect(config.mathExpression).toBeDefined();
    expect(stack.resolve(config.mathExpression!.expression)).toEqual({
      'Fn::Join': ['', [
        'SELECT SUM(MagneticStoreRejectedRecordCount) FROM SCHEMA("AWS/Timestream", DatabaseName, Operation, TableName) WHERE DatabaseName = \'',
        { Ref: stack.getLogicalId(store.database) },
        '\'',
      ]],
    });
    expect(config.mathExpression!.period).toBe(60);
    expect(store.metricMagneticStoreRejectedRecords().toMetricConfig().mathExpression!.period).toBe(300);
  });
});
