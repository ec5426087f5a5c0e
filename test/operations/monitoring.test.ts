import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { buildReferenceApp, ENGINE_CONTEXT } from '../../examples/reference/app';
import { AlarmSeverity, DashboardSection, IMonitor, IMonitorable, InfluxDbStore, OnsDataPlatform, PlatformMonitoring, PlatformStage, TimeSeriesEngine, TimestreamStore } from '../../src';
import { KnowledgeBaseLogMetrics, OPERATION_DIMENSION, PlatformMetrics, metricsNamespace } from '../../src/runtime/contract';
import { ENV, platformStack } from '../helpers';

type Resource = { Type: string; Properties: Record<string, any> };
type Resources = Record<string, Resource>;

const STAGES = [PlatformStage.DEV, PlatformStage.STAGING, PlatformStage.PROD];

// One synthesis of the reference app, with cdk-nag registered before it (a later synth() would
// return the cached assembly without validating): a finding fails the synthesis.
let templates: Record<string, Resources>;
beforeAll(() => {
  const assembly = buildReferenceApp(new App()).synth();
  templates = Object.fromEntries(assembly.stacks.map((s) => [s.stackName.replace('OnsDataPlatform-', ''), s.template.Resources as Resources]));
});

function ofType(resources: Resources, type: string): Array<[string, Resource]> {
  return Object.entries(resources).filter(([, r]) => r.Type === type);
}

/** The monitoring's alarms: not the rollback alarms of SafeDeployment (tested with it). */
function alarms(resources: Resources): Array<[string, Resource]> {
  // Rollback alarms watch the alias (a `Resource` dimension) or the version being deployed (`FunctionVersion`).
  return ofType(resources, 'AWS::CloudWatch::Alarm').filter(([, a]) => !(a.Properties.Dimensions ?? []).some((d: any) => ['Resource', 'FunctionVersion'].includes(d.Name)));
}

/** Alarms on `metricName` whose (single-metric) dimensions include `{ Name: dimension, Value: value }`. */
function alarmsOn(resources: Resources, metricName: string, dimension: string, value: unknown): Resource[] {
  return alarms(resources).map(([, a]) => a).filter((a) => a.Properties.MetricName === metricName
    && (a.Properties.Dimensions ?? []).some((d: any) => d.Name === dimension && JSON.stringify(d.Value) === JSON.stringify(value)));
}

/** Logical ID of the topic an alarm notifies. */
function topicOf(alarm: Resource): string {
  expect(alarm.Properties.AlarmActions).toHaveLength(1);
  return alarm.Properties.AlarmActions[0].Ref;
}

function topicIds(resources: Resources): { critical: string; warning: string } {
  const topics = ofType(resources, 'AWS::SNS::Topic').map(([id]) => id);
  return { critical: topics.find((t) => t.includes('MonitoringCriticalTopic'))!, warning: topics.find((t) => t.includes('MonitoringWarningTopic'))! };
}

describe('PlatformMonitoring on the reference app', () => {
  test('cdk-nag AwsSolutions is clean on the whole reference app with monitoring', () => {
    expect(Object.keys(templates).sort()).toEqual(['dev', 'prod', 'staging']);
    for (const resources of Object.values(templates)) {
      expect(ofType(resources, 'AWS::CloudWatch::Dashboard')).toHaveLength(1);
      expect(alarms(resources).length).toBeGreaterThan(0);
    }
  });

  test.each(['dev', 'staging', 'prod'])('every function, state machine, queue and REST API has its alarms (%s)', (stage) => {
    const r = templates[stage];
    const topics = topicIds(r);
    const missing: string[] = [];
    const need = (what: string, found: Resource[]) => { if (found.length !== 1) missing.push(`${what}: ${found.length} alarms`); return found[0]; };
    const functions = ofType(r, 'AWS::Lambda::Function');
    expect(functions.length).toBeGreaterThanOrEqual(9);
    for (const [id] of functions) {
      const errors = need(`${id} Errors`, alarmsOn(r, 'Errors', 'FunctionName', { Ref: id }));
      need(`${id} Throttles`, alarmsOn(r, 'Throttles', 'FunctionName', { Ref: id }));
      need(`${id} Duration`, alarmsOn(r, 'Duration', 'FunctionName', { Ref: id }));
      // Errors of the ingestion pipeline's functions (and of its time-series loader) are critical.
      if (errors) expect([id, topicOf(errors)]).toEqual([id, /^PlatformIngestion|^PlatformTimeSeriesLoader/.test(id) ? topics.critical : topics.warning]);
    }
    const machines = ofType(r, 'AWS::StepFunctions::StateMachine');
    expect(machines.length).toBeGreaterThanOrEqual(3);
    for (const [id] of machines) {
      for (const [metric, severity] of [['ExecutionsFailed', 'critical'], ['ExecutionsTimedOut', 'critical'], ['ExecutionThrottled', 'warning']] as const) {
        const alarm = need(`${id} ${metric}`, alarmsOn(r, metric, 'StateMachineArn', { Ref: id }));
        if (alarm) expect(topicOf(alarm)).toBe(topics[severity]);
      }
    }
    const queues = ofType(r, 'AWS::SQS::Queue');
    expect(queues.length).toBeGreaterThanOrEqual(1);
    for (const [id] of queues) {
      const alarm = need(`${id} depth`, alarmsOn(r, 'ApproximateNumberOfMessagesVisible', 'QueueName', { 'Fn::GetAtt': [id, 'QueueName'] }));
      if (alarm) {
        expect(alarm.Properties).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
        expect(topicOf(alarm)).toBe(topics.critical);
      }
    }
    const apis = ofType(r, 'AWS::ApiGateway::RestApi');
    expect(apis).toHaveLength(1);
    for (const [id, api] of apis) {
      const onApi = (metricName: string) => alarms(r).map(([, a]) => a).filter((a) => JSON.stringify(a.Properties).includes(`"MetricName":"${metricName}"`)
        && JSON.stringify(a.Properties).includes(JSON.stringify({ Name: 'ApiName', Value: api.Properties.Name })));
      const server = need(`${id} 5XX rate`, onApi('5XXError'));
      need(`${id} 4XX rate`, onApi('4XXError'));
      need(`${id} latency`, onApi('Latency'));
      if (server) {
        expect(topicOf(server)).toBe(topics.critical);
        // A rate: metric math over 5XXError and Count.
        const expression = server.Properties.Metrics.find((m: any) => m.Expression);
        expect(expression.Expression).toBe('100 * FILL(serverErrors, 0) / requests');
        expect(JSON.stringify(server.Properties.Metrics)).toContain('"MetricName":"Count"');
        // The readiness route's 503s (a component down, alarmed by that component) are left out of the 5XX rate.
        const errors = server.Properties.Metrics.find((m: any) => m.Id === 'serverErrors');
        expect(errors.Expression).toBe('FILL(allServerErrors, 0) - FILL(readinessServerErrors, 0)');
        const readiness = server.Properties.Metrics.find((m: any) => m.Id === 'readinessServerErrors').MetricStat.Metric;
        expect(readiness).toMatchObject({ MetricName: '5XXError', Namespace: 'AWS/ApiGateway' });
        expect(readiness.Dimensions).toEqual(expect.arrayContaining([{ Name: 'Method', Value: 'GET' }, { Name: 'Resource', Value: '/health/ready' }]));
      }
    }
    expect(missing).toEqual([]);
  });

  test.each(STAGES.map((s) => [s.name, s] as const))('thresholds come from the stage (%s)', (name, stage) => {
    const r = templates[name];
    const t = stage.alarmThresholds;
    for (const [id, fn] of ofType(r, 'AWS::Lambda::Function')) {
      const duration = alarmsOn(r, 'Duration', 'FunctionName', { Ref: id })[0];
      expect(duration.Properties).toMatchObject({
        ExtendedStatistic: 'p99',
        Threshold: Math.round(fn.Properties.Timeout * 1000 * t.functionDurationPercentOfTimeout / 100),
        Period: t.period.toSeconds(),
        EvaluationPeriods: t.evaluationPeriods,
        DatapointsToAlarm: t.datapointsToAlarm,
      });
      expect(alarmsOn(r, 'Errors', 'FunctionName', { Ref: id })[0].Properties.Threshold).toBe(t.functionErrors);
      expect(alarmsOn(r, 'Throttles', 'FunctionName', { Ref: id })[0].Properties.Threshold).toBe(t.functionThrottles);
    }
    const byDescription = (text: string) => alarms(r).map(([, a]) => a).filter((a) => a.Properties.AlarmDescription.includes(text));
    expect(byDescription('requests answered with a 5XX')[0].Properties.Threshold).toBe(t.apiServerErrorRatePercent);
    expect(byDescription('requests answered with a 4XX')[0].Properties.Threshold).toBe(t.apiClientErrorRatePercent);
    expect(byDescription(': p99 latency at or above')[0].Properties.Threshold).toBe(t.apiLatencyP99.toMilliseconds());
    expect(alarmsOn(r, PlatformMetrics.FILES_QUARANTINED.name, 'service', 'ingestion')[0].Properties.Threshold).toBe(t.quarantinedFiles);
    expect(alarmsOn(r, PlatformMetrics.RECORDS_REJECTED.name, 'service', 'ingestion')[0].Properties.Threshold).toBe(t.recordsRejected);
  });

  test('the stages differ, so the thresholds really come from them', () => {
    const dev = PlatformStage.DEV.alarmThresholds;
    const prod = PlatformStage.PROD.alarmThresholds;
    expect(dev.functionErrors).not.toBe(prod.functionErrors);
    expect(dev.apiServerErrorRatePercent).not.toBe(prod.apiServerErrorRatePercent);
  });

  test('missing data never breaches, on every alarm', () => {
    for (const resources of Object.values(templates)) {
      const wrong = alarms(resources).filter(([, a]) => a.Properties.TreatMissingData !== 'notBreaching').map(([id]) => id);
      expect(wrong).toEqual([]);
    }
  });

  test('every alarm notifies exactly one of the two topics, on alarm and on recovery', () => {
    for (const resources of Object.values(templates)) {
      const topics = topicIds(resources);
      for (const [id, a] of alarms(resources)) {
        const topic = topicOf(a);
        expect([id, [topics.critical, topics.warning].includes(topic)]).toEqual([id, true]);
        expect(a.Properties.OKActions).toEqual(a.Properties.AlarmActions);
        expect(a.Properties.AlarmDescription).toMatch(topic === topics.critical ? /^\[critical\]/ : /^\[warning\]/);
      }
    }
  });

  test('topics are encrypted with the platform key and refuse plain HTTP; the key lets CloudWatch and EventBridge publish', () => {
    const r = templates.prod;
    const topics = topicIds(r);
    const key = ofType(r, 'AWS::KMS::Key');
    expect(key).toHaveLength(1);
    for (const id of [topics.critical, topics.warning]) {
      expect(r[id].Properties.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [key[0][0], 'Arn'] });
      const policy = ofType(r, 'AWS::SNS::TopicPolicy').find(([, p]) => JSON.stringify(p.Properties.Topics) === JSON.stringify([{ Ref: id }]));
      expect(policy).toBeDefined();
      const statements = policy![1].Properties.PolicyDocument.Statement;
      expect(statements).toEqual(expect.arrayContaining([
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        expect.objectContaining({ Effect: 'Allow', Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: 'sns:Publish' }),
      ]));
    }
    const keyStatements = key[0][1].Properties.KeyPolicy.Statement;
    // This account's alarms only, and only for SNS topics of this account (the encryption context SNS sets).
    expect(keyStatements).toEqual(expect.arrayContaining([expect.objectContaining({
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
      Condition: expect.objectContaining({
        StringEquals: { 'aws:SourceAccount': expect.anything() },
        ArnLike: { 'aws:SourceArn': expect.anything() },
        StringLike: { 'kms:EncryptionContext:aws:sns:topicArn': expect.anything() },
      }),
    })]));
    // EventBridge's delivery through SNS carries no aws:Source* keys to KMS: the topics of this account only.
    expect(keyStatements).toEqual(expect.arrayContaining([expect.objectContaining({
      Principal: { Service: 'events.amazonaws.com' },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
      Condition: { StringLike: { 'kms:EncryptionContext:aws:sns:topicArn': expect.anything() } },
    })]));
  });

  test('failed jobs of the Batch queue reach the warning topic with a readable message', () => {
    for (const resources of Object.values(templates)) {
      const [queueId] = ofType(resources, 'AWS::Batch::JobQueue')[0];
      const rules = ofType(resources, 'AWS::Events::Rule').filter(([, rule]) => rule.Properties.EventPattern?.source?.[0] === 'aws.batch');
      expect(rules).toHaveLength(1);
      const rule = rules[0][1].Properties;
      expect(rule.EventPattern).toEqual({
        'source': ['aws.batch'],
        'detail-type': ['Batch Job State Change'],
        'detail': { status: ['FAILED'], jobQueue: [{ 'Fn::GetAtt': [queueId, 'JobQueueArn'] }] },
      });
      expect(rule.Targets).toHaveLength(1);
      expect(rule.Targets[0].Arn).toEqual({ Ref: topicIds(resources).warning });
      const transformer = rule.Targets[0].InputTransformer;
      expect(transformer.InputPathsMap).toMatchObject({ 'detail-jobName': '$.detail.jobName', 'detail-statusReason': '$.detail.statusReason' });
      expect(transformer.InputTemplate).toContain('failed at <time>: <detail-statusReason>');
    }
  });

  test('knowledge-base ingestion jobs and documents that fail after the sync started are alarmed from its application logs', () => {
    for (const [stage, resources] of Object.entries(templates)) {
      const [kbId] = ofType(resources, 'AWS::Bedrock::KnowledgeBase')[0];
      const topics = topicIds(resources);
      for (const metricName of [KnowledgeBaseLogMetrics.INGESTION_JOBS_FAILED, KnowledgeBaseLogMetrics.DOCUMENTS_FAILED]) {
        const found = alarmsOn(resources, metricName, KnowledgeBaseLogMetrics.DIMENSION, { 'Fn::GetAtt': [kbId, 'KnowledgeBaseArn'] });
        expect(found).toHaveLength(1);
        expect(found[0].Properties).toMatchObject({ Namespace: metricsNamespace(stage), Statistic: 'Sum', Threshold: 1, EvaluationPeriods: 1 });
        expect(topicOf(found[0])).toBe(topics.warning);
        // The metric filter that publishes it exists, in the same namespace.
        const filters = ofType(resources, 'AWS::Logs::MetricFilter').filter(([, f]) => f.Properties.MetricTransformations[0].MetricName === metricName);
        expect(filters.map(([, f]) => f.Properties.MetricTransformations[0].MetricNamespace)).toEqual([metricsNamespace(stage)]);
      }
    }
  });

  test('the dashboard shows the API, the state machines, the functions and the custom metrics', () => {
    for (const [stage, resources] of Object.entries(templates)) {
      const body = JSON.stringify(ofType(resources, 'AWS::CloudWatch::Dashboard')[0][1].Properties.DashboardBody);
      const api = ofType(resources, 'AWS::ApiGateway::RestApi')[0][1];
      expect(body).toContain(`\\"ApiName\\",\\"${api.Properties.Name}\\"`);
      for (const [id] of ofType(resources, 'AWS::StepFunctions::StateMachine')) expect(body).toContain(JSON.stringify({ Ref: id }));
      for (const [id] of ofType(resources, 'AWS::Lambda::Function')) expect(body).toContain(JSON.stringify({ Ref: id }));
      expect(body).toContain(`\\"${metricsNamespace(stage)}\\",\\"${PlatformMetrics.RECORDS_PROCESSED.name}\\"`);
      // The reference app's engine: the lake (AWS/Athena of its workgroup).
      expect(body).toContain('AWS/Athena');
      expect(body).toContain('alarm');
    }
  });

  test('custom-metric alarms watch exactly what the handlers emit: names, namespace and dimensions from the contract', () => {
    for (const [stage, resources] of Object.entries(templates)) {
      // The knowledge base's log-filter metrics are checked with their filters above.
      const fromLogs: string[] = [KnowledgeBaseLogMetrics.INGESTION_JOBS_FAILED, KnowledgeBaseLogMetrics.DOCUMENTS_FAILED];
      const custom = alarms(resources).map(([, a]) => a.Properties)
        .filter((p) => p.Namespace === metricsNamespace(stage) && !fromLogs.includes(p.MetricName));
      const seen = custom.map((p) => ({ name: p.MetricName, dims: p.Dimensions, stat: p.Statistic ?? p.ExtendedStatistic }))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
      const m = PlatformMetrics;
      const service = (d: { service: string }) => ({ Name: 'service', Value: d.service });
      const expected = [
        { name: m.FILES_QUARANTINED.name, dims: [service(m.FILES_QUARANTINED)], stat: 'Sum' },
        { name: m.RECORDS_REJECTED.name, dims: [service(m.RECORDS_REJECTED)], stat: 'Sum' },
        { name: m.POINTS_REJECTED.name, dims: [service(m.POINTS_REJECTED)], stat: 'Sum' },
        { name: m.KNOWLEDGE_SYNC_JOBS_FAILED.name, dims: [service(m.KNOWLEDGE_SYNC_JOBS_FAILED)], stat: 'Sum' },
        ...['getTimeSeries', 'query'].map((operation) => ({
          name: m.QUERY_LATENCY.name, dims: [{ Name: OPERATION_DIMENSION, Value: operation }, service(m.QUERY_LATENCY)], stat: 'p99',
        })),
      ].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
      // Dimension order in the template follows the map's keys; compare as sets.
      const norm = (x: typeof expected) => x.map((e) => ({ ...e, dims: [...e.dims].sort((a, b) => a.Name.localeCompare(b.Name)) }));
      expect(norm(seen)).toEqual(norm(expected));
      const latency = custom.find((p) => p.MetricName === m.QUERY_LATENCY.name)!;
      expect(latency.Threshold).toBe(STAGES.find((s) => s.name === stage)!.alarmThresholds.apiLatencyP99.toMilliseconds());
    }
  });

  test('the lake engine\'s failed, canceled and slow queries are watched in the platform\'s workgroup', () => {
    for (const [stage, resources] of Object.entries(templates)) {
      const athena = alarms(resources).map(([, a]) => a.Properties).filter((p) => p.Namespace === 'AWS/Athena');
      const states = athena.map((p) => p.Dimensions.find((d: any) => d.Name === 'QueryState').Value).sort();
      expect(states).toEqual(['CANCELED', 'FAILED', 'SUCCEEDED']);
      for (const p of athena) expect(p.Dimensions).toContainEqual({ Name: 'WorkGroup', Value: `ons-data-platform-${stage}` });
    }
  });

  test('Timestream alarms watch this stage\'s database only: magnetic-store rejections summed over its tables, no account-wide SystemErrors/UserErrors alarm', () => {
    const live = buildReferenceApp(new App({ context: { [ENGINE_CONTEXT]: 'timestream-liveanalytics' } })).synth();
    for (const stage of STAGES) {
      const r = live.getStackByName(`OnsDataPlatform-${stage.name}`).template.Resources as Resources;
      const timestream = alarms(r).map(([, a]) => a.Properties).filter((p) => p.Namespace === 'AWS/Timestream');
      // SystemErrors and UserErrors have only the Operation dimension: an alarm on them would fire in every stage of the account.
      expect(timestream).toEqual([]);
      const [[dbId, db]] = ofType(r, 'AWS::Timestream::Database');
      expect(db.Properties.DatabaseName).toBe(`ons_data_platform_${stage.name}`);
      const rejected = alarms(r).map(([, a]) => a).filter((a) => JSON.stringify(a.Properties.Metrics ?? []).includes('MagneticStoreRejectedRecordCount'));
      expect(rejected).toHaveLength(1);
      const [query] = rejected[0].Properties.Metrics;
      expect(query.ReturnData).toBe(true);
      expect(query.Period).toBe(stage.alarmThresholds.period.toSeconds());
      // The query names the stage's own database (its Ref), over every table and operation of it.
      expect(query.Expression).toEqual({
        'Fn::Join': ['', [
          'SELECT SUM(MagneticStoreRejectedRecordCount) FROM SCHEMA("AWS/Timestream", DatabaseName, Operation, TableName) WHERE DatabaseName = \'',
          { Ref: dbId },
          '\'',
        ]],
      });
      expect(rejected[0].Properties).toMatchObject({
        Threshold: stage.alarmThresholds.magneticStoreRejectedRecords, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching',
      });
      expect(topicOf(rejected[0])).toBe(topicIds(r).warning);
      // Rejection reports that could not be uploaded: one alarm per kind, this database only, at the first one.
      for (const kind of ['User', 'System']) {
        const upload = alarms(r).map(([, a]) => a).filter((a) => JSON.stringify(a.Properties.Metrics ?? []).includes(`MagneticStoreRejectedUpload${kind}Failures`));
        expect(upload).toHaveLength(1);
        expect(upload[0].Properties.Metrics[0].Expression).toEqual({
          'Fn::Join': ['', [
            `SELECT SUM(MagneticStoreRejectedUpload${kind}Failures) FROM SCHEMA("AWS/Timestream", DatabaseName, Operation, TableName) WHERE DatabaseName = '`,
            { Ref: dbId },
            '\'',
          ]],
        });
        expect(upload[0].Properties).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' });
        expect(topicOf(upload[0])).toBe(topicIds(r).warning);
      }
      const dashboard = JSON.stringify(ofType(r, 'AWS::CloudWatch::Dashboard')[0][1].Properties.DashboardBody);
      expect(dashboard).toContain('Magnetic-store records rejected (this database)');
      expect(dashboard).toContain('whole account and Region, every stage');
    }
  });
});

describe('PlatformMonitoring with the InfluxDB engine', () => {
  const stages = [PlatformStage.DEV, PlatformStage.PROD].map((s) => [s.name, s] as const);
  test.each(stages)('CPU, memory and disk of the instance are alarmed (%s)', (_, stage) => {
    const { template, platform } = platformStack(stage, {
      props: {
        timeSeries: TimeSeriesEngine.timestreamInfluxDb(),
        monitoring: stage === PlatformStage.DEV ? { thresholds: { storeUtilizationPercent: 70 } } : {},
      },
    });
    const r = template.toJSON().Resources as Resources;
    const [, instance] = ofType(r, 'AWS::Timestream::InfluxDBInstance')[0];
    const topics = topicIds(r);
    const limit = stage === PlatformStage.DEV ? 70 : PlatformStage.PROD.alarmThresholds.storeUtilizationPercent;
    for (const [metricName, severity] of [['CPUUtilization', 'warning'], ['MemoryUtilization', 'warning'], ['DiskUtilization', 'critical']] as const) {
      const found = alarms(r).map(([, a]) => a).filter((a) => a.Properties.MetricName === metricName && a.Properties.Namespace === 'AWS/TimestreamInfluxDB');
      expect(found).toHaveLength(1);
      expect(found[0].Properties).toMatchObject({ Threshold: limit, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' });
      expect(found[0].Properties.Dimensions).toEqual([{ Name: 'DbInstanceName', Value: instance.Properties.Name }]);
      expect(topicOf(found[0])).toBe(severity === 'critical' ? topics.critical : topics.warning);
    }
    expect(instance).toBeDefined();
    // The engine's write errors: the loader's errors and the store's rejections, alarmed as for Timestream.
    expect(alarmsOn(r, PlatformMetrics.POINTS_REJECTED.name, 'service', PlatformMetrics.POINTS_REJECTED.service)).toHaveLength(1);
    const store = platform.timeSeries as InfluxDbStore;
    expect(store.metricPointsRejected()).toMatchObject({ metricName: PlatformMetrics.POINTS_REJECTED.name, dimensions: { service: 'timeseries' } });
    expect(store.metricPointsWritten()).toMatchObject({ metricName: PlatformMetrics.POINTS_WRITTEN.name, namespace: metricsNamespace(stage.name) });
    expect(ofType(r, 'AWS::Timestream::Database')).toHaveLength(0);
  });
});

describe('PlatformMonitoring options', () => {
  // One platform with every option, shared by the tests below.
  const emails = ['oncall@example.com', 'data-team@example.com'];
  let template: Template;
  beforeAll(() => {
    const built = platformStack(PlatformStage.PROD, {
      props: {
        monitoring: {
          alarmEmails: emails,
          monthlyBudgetUsd: 750,
          thresholds: { functionErrors: 7, apiLatencyP99: Duration.seconds(1), functionDurationPercentOfTimeout: 50 },
        },
      },
    });
    template = built.template;
  });

  test('per-family overrides replace the stage thresholds; the rest keep the stage values', () => {
    const r = template.toJSON().Resources as Resources;
    for (const [id, fn] of ofType(r, 'AWS::Lambda::Function')) {
      expect(alarmsOn(r, 'Errors', 'FunctionName', { Ref: id })[0].Properties.Threshold).toBe(7);
      expect(alarmsOn(r, 'Duration', 'FunctionName', { Ref: id })[0].Properties.Threshold).toBe(fn.Properties.Timeout * 500);
      expect(alarmsOn(r, 'Throttles', 'FunctionName', { Ref: id })[0].Properties.Threshold).toBe(PlatformStage.PROD.alarmThresholds.functionThrottles);
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'QueryLatency', Threshold: 1000 });
  });

  test('email subscriptions on both topics', () => {
    const subscriptions = template.findResources('AWS::SNS::Subscription');
    const r = template.toJSON().Resources as Resources;
    const topics = topicIds(r);
    const pairs = Object.values(subscriptions).map((s: any) => `${s.Properties.TopicArn.Ref} ${s.Properties.Protocol} ${s.Properties.Endpoint}`).sort();
    expect(pairs).toEqual(emails.flatMap((e) => [`${topics.critical} email ${e}`, `${topics.warning} email ${e}`]).sort());
  });

  test('a monthly budget: 80% actual and 100% forecasted to the critical topic and the emails, which Budgets may publish to', () => {
    const r = template.toJSON().Resources as Resources;
    const topics = topicIds(r);
    const budgets = ofType(r, 'AWS::Budgets::Budget');
    expect(budgets).toHaveLength(1);
    const p = budgets[0][1].Properties;
    expect(p.Budget).toMatchObject({ BudgetType: 'COST', TimeUnit: 'MONTHLY', BudgetLimit: { Amount: 750, Unit: 'USD' } });
    const subscribers = [{ SubscriptionType: 'SNS', Address: { Ref: topics.critical } }, ...emails.map((Address) => ({ SubscriptionType: 'EMAIL', Address }))];
    expect(p.NotificationsWithSubscribers).toEqual([
      { Notification: { NotificationType: 'ACTUAL', ComparisonOperator: 'GREATER_THAN', Threshold: 80, ThresholdType: 'PERCENTAGE' }, Subscribers: subscribers },
      { Notification: { NotificationType: 'FORECASTED', ComparisonOperator: 'GREATER_THAN', Threshold: 100, ThresholdType: 'PERCENTAGE' }, Subscribers: subscribers },
    ]);
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topics.critical }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Allow', Principal: { Service: 'budgets.amazonaws.com' }, Action: 'sns:Publish' })]) },
    });
    template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([Match.objectLike({
          Principal: { Service: 'budgets.amazonaws.com' },
          Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
          Condition: Match.objectLike({ StringEquals: { 'aws:SourceAccount': Match.anyValue() }, ArnLike: { 'aws:SourceArn': Match.anyValue() } }),
        })]),
      },
    });
  });

  test('no budget, no subscription and no Budgets permission without the options', () => {
    const r = templates.dev;
    expect(ofType(r, 'AWS::Budgets::Budget')).toHaveLength(0);
    expect(ofType(r, 'AWS::SNS::Subscription')).toHaveLength(0);
    expect(JSON.stringify(r)).not.toContain('budgets.amazonaws.com');
  });

  test('a function added later gets its alarms from watch(), once', () => {
    const stack = new Stack(new App(), 'Watched', { env: ENV });
    const platform = new OnsDataPlatform(stack, 'Platform', { stage: PlatformStage.DEV });
    const before = platform.monitoring.alarms.length;
    const fn = new lambda.Function(platform, 'AddedLater', {
      runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => {}'), timeout: Duration.seconds(20),
    });
    platform.monitoring.watch(platform);
    platform.monitoring.watch(fn);
    expect(platform.monitoring.alarms.length).toBe(before + 3);
    const r = Template.fromStack(stack).toJSON().Resources as Resources;
    const id = stack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction);
    expect(alarmsOn(r, 'Duration', 'FunctionName', { Ref: id })[0].Properties.Threshold).toBe(18000); // 90% (dev) of 20 s
    expect(alarmsOn(r, 'Errors', 'FunctionName', { Ref: id })).toHaveLength(1);
  });

  test('a construct of your own says what to watch in it (IMonitorable): its alarms, widgets and critical functions', () => {
    class Gauge extends Construct implements IMonitorable {
      public readonly fn = new lambda.Function(this, 'Fn', {
        runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => {}'),
      });
      public readonly criticalFunctions = [this.fn];
      public metricLevel(): cloudwatch.Metric {
        return new cloudwatch.Metric({ namespace: 'Lab', metricName: 'Level', statistic: 'Maximum' });
      }
      public addMonitoring(monitor: IMonitor): void {
        monitor.addAlarm(this, 'Level', {
          severity: AlarmSeverity.CRITICAL, metric: this.metricLevel(), threshold: monitor.thresholds.storeUtilizationPercent, description: 'level too high',
        });
        monitor.addWidgets(DashboardSection.TIME_SERIES_STORE, new cloudwatch.GraphWidget({ title: 'Gauge level', left: [this.metricLevel()] }));
      }
    }
    const stack = new Stack(new App(), 'Own', { env: ENV });
    const gauge = new Gauge(stack, 'Gauge');
    const monitoring = new PlatformMonitoring(stack, 'Monitoring', {
      stage: PlatformStage.DEV, encryptionKey: new kms.Key(stack, 'Key'), thresholds: { storeUtilizationPercent: 42 },
    });
    const r = Template.fromStack(stack).toJSON().Resources as Resources;
    const topics = topicIds(r);
    const level = alarms(r).find(([, a]) => a.Properties.MetricName === 'Level')![1];
    expect(level.Properties).toMatchObject({ Threshold: 42, AlarmDescription: '[critical] level too high', EvaluationPeriods: 3 });
    expect(topicOf(level)).toBe(topics.critical);
    const id = stack.getLogicalId(gauge.fn.node.defaultChild as lambda.CfnFunction);
    expect(topicOf(alarmsOn(r, 'Errors', 'FunctionName', { Ref: id })[0])).toBe(topics.critical);
    expect(JSON.stringify(ofType(r, 'AWS::CloudWatch::Dashboard')[0][1].Properties.DashboardBody)).toContain('Gauge level');
    expect(monitoring.thresholds.storeUtilizationPercent).toBe(42);
  });

  test('monitoring imports no area: every area construct says what to watch in it', () => {
    const source = readFileSync(join(__dirname, '../../src/operations/monitoring.ts'), 'utf8');
    const imports = [...source.matchAll(/from '\.\.\/([a-z]+)\//g)].map(([, folder]) => folder);
    expect(new Set(imports)).toEqual(new Set(['core', 'runtime']));
  });

  test('invalid options are refused', () => {
    const make = (monitoring: object) => () => platformStack(PlatformStage.DEV, { props: { monitoring } });
    expect(make({ thresholds: { datapointsToAlarm: 5 } })).toThrow(/datapointsToAlarm \(5\) must not exceed evaluationPeriods/);
    expect(make({ thresholds: { apiClientErrorRatePercent: 150 } })).toThrow(/apiClientErrorRatePercent/);
    expect(make({ alarmEmails: ['not-an-email'] })).toThrow(/alarmEmails/);
    expect(make({ monthlyBudgetUsd: 0 })).toThrow(/monthlyBudgetUsd/);
  });
});

describe('metric…() of the parts', () => {
  test('each part offers the custom metrics its handlers emit, the very series the monitoring alarms on', () => {
    const { stack, platform, template } = platformStack(PlatformStage.STAGING, { props: { timeSeries: TimeSeriesEngine.timestreamLiveAnalytics() } });
    const store = platform.timeSeries as TimestreamStore;
    const all = template.toJSON().Resources as Resources;
    /** The monitoring's alarm on the series `metric` names (same namespace, name, dimensions and statistic). */
    const alarmOn = (metric: cloudwatch.Metric) => {
      const stat = metric.toMetricConfig().metricStat!;
      const dims = (stat.dimensions ?? []).map((d) => ({ Name: d.name, Value: stack.resolve(d.value) }));
      const byName = (a: { Name: string }, b: { Name: string }) => a.Name.localeCompare(b.Name);
      return alarms(all).map(([, a]) => a.Properties).filter((p) => p.Namespace === stat.namespace && p.MetricName === stat.metricName
        && (p.Statistic ?? p.ExtendedStatistic) === stat.statistic
        && JSON.stringify([...(p.Dimensions ?? [])].sort(byName)) === JSON.stringify(dims.sort(byName)));
    };
    const period = { period: PlatformStage.STAGING.alarmThresholds.period };
    for (const metric of [
      platform.ingestion.metricFilesQuarantined(period),
      platform.ingestion.metricRecordsRejected(period),
      store.metricPointsRejected(period),
      platform.knowledgeBase.metricSyncJobsFailed(period),
      platform.api.metricQueryLatency('getTimeSeries', period),
      platform.api.metricQueryLatency('query', period),
    ]) {
      expect(metric.namespace).toBe(metricsNamespace(PlatformStage.STAGING.name));
      expect(alarmOn(metric)).toHaveLength(1);
    }
    // No alarm, but the same namespace and dimension as the handlers' EMF documents.
    for (const [metric, definition] of [
      [platform.ingestion.metricRecordsProcessed(), PlatformMetrics.RECORDS_PROCESSED],
      [store.metricPointsWritten(), PlatformMetrics.POINTS_WRITTEN],
    ] as const) {
      expect(metric).toMatchObject({ namespace: metricsNamespace('staging'), metricName: definition.name, statistic: 'Sum', dimensions: { service: definition.service } });
      expect(metric.period.toMinutes()).toBe(5);
    }
    expect(() => platform.api.metricQueryLatency('getDatasets')).toThrow("operation: expected one of getTimeSeries, query, got 'getDatasets'");
  });
});
