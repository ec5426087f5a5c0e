import { PlatformStage, TimeSeriesEngine } from '../../src';
import { platformStack } from '../helpers';

/** Resource policies a service principal can be named in: key, topic, queue and bucket policies. */
const POLICY_PROPERTIES: Record<string, string> = {
  'AWS::KMS::Key': 'KeyPolicy',
  'AWS::SNS::TopicPolicy': 'PolicyDocument',
  'AWS::SQS::QueuePolicy': 'PolicyDocument',
  'AWS::S3::BucketPolicy': 'PolicyDocument',
};

/** Conditions that bind a service principal's call to this account or to named resources of it. */
function binding(statement: any): string[] {
  const keys = Object.values(statement.Condition ?? {}).flatMap((c: any) => Object.keys(c));
  return keys.filter((k) => /^aws:Source(Account|Arn)$/.test(k) || /^kms:EncryptionContext:aws:(logs:arn|sns:topicArn)$/.test(k));
}

function servicePrincipalStatements(template: any): Array<{ id: string; sid: string; service: string; statement: any }> {
  const out: Array<{ id: string; sid: string; service: string; statement: any }> = [];
  for (const [id, r] of Object.entries(template.Resources) as Array<[string, any]>) {
    const property = POLICY_PROPERTIES[r.Type];
    if (!property) continue;
    for (const statement of r.Properties[property]?.Statement ?? []) {
      if (statement.Effect !== 'Allow') continue;
      for (const service of [statement.Principal?.Service ?? []].flat()) {
        out.push({ id, sid: statement.Sid, service: JSON.stringify(service), statement });
      }
    }
  }
  return out;
}

describe.each([
  ['dev, lake', PlatformStage.DEV, TimeSeriesEngine.lake()],
  ['staging, lake', PlatformStage.STAGING, TimeSeriesEngine.lake()],
  ['prod, lake, budget', PlatformStage.PROD, TimeSeriesEngine.lake()],
  ['prod, Timestream LiveAnalytics', PlatformStage.PROD, TimeSeriesEngine.timestreamLiveAnalytics()],
  ['prod, Timestream for InfluxDB', PlatformStage.PROD, TimeSeriesEngine.timestreamInfluxDb()],
] as const)('OnsDataPlatform %s', (name, stage, timeSeries) => {
  const { template } = platformStack(stage, { props: { timeSeries, monitoring: name.includes('budget') ? { monthlyBudgetUsd: 100 } : undefined } });
  const statements = servicePrincipalStatements(template.toJSON());

  test('has service-principal statements (so the check below checks something)', () => {
    expect(statements.length).toBeGreaterThan(5);
  });

  test('every service-principal statement on a key, topic, queue or bucket names aws:SourceAccount or aws:SourceArn', () => {
    // CloudWatch Logs, and SNS for EventBridge, call KMS without them; those statements are bound by the encryption
    // context (the log group's ARN, the topics of this account).
    for (const s of statements) {
      expect({ id: s.id, sid: s.sid, service: s.service, binding: binding(s.statement).length > 0 })
        .toEqual({ id: s.id, sid: s.sid, service: s.service, binding: true });
    }
  });

  test('key statements for service principals name exact actions, no wildcard', () => {
    for (const s of statements.filter((x) => x.id.startsWith('PlatformDataLakeKey') || x.statement.Resource === '*')) {
      const actions = [s.statement.Action].flat() as string[];
      expect({ sid: s.sid, wildcards: actions.filter((a) => a.includes('*')) }).toEqual({ sid: s.sid, wildcards: [] });
    }
  });
});

test('the EventBridge → SNS topic statements name the one rule that publishes (no unconditioned statement)', () => {
  const { template } = platformStack(PlatformStage.PROD, { props: { timeSeries: TimeSeriesEngine.lake() } });
  const json = template.toJSON();
  const topicStatements = servicePrincipalStatements(json).filter((s) => json.Resources[s.id].Type === 'AWS::SNS::TopicPolicy' && s.service === '"events.amazonaws.com"');
  expect(topicStatements.length).toBeGreaterThan(0);
  const rules = Object.entries(json.Resources).filter(([, r]: [string, any]) => r.Type === 'AWS::Events::Rule').map(([id]) => id);
  for (const s of topicStatements) {
    const arn = s.statement.Condition.ArnEquals['aws:SourceArn'];
    expect(rules).toContain(arn['Fn::GetAtt'][0]);
  }
});

test('EventBridge may use the key for this account\'s topics without aws:Source* keys, which its SNS delivery does not carry', () => {
  const { template } = platformStack(PlatformStage.PROD, { props: { timeSeries: TimeSeriesEngine.lake() } });
  const events = servicePrincipalStatements(template.toJSON()).find((s) => s.sid === 'AllowPublishToEncryptedTopics-events')!;
  expect(events.statement.Condition).toEqual({
    StringLike: { 'kms:EncryptionContext:aws:sns:topicArn': { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, expect.stringMatching(/^:sns:.*:\*$/)]] } },
  });
  const cloudwatch = servicePrincipalStatements(template.toJSON()).find((s) => s.sid === 'AllowPublishToEncryptedTopics-cloudwatch')!;
  expect(Object.keys(cloudwatch.statement.Condition).sort()).toEqual(['ArnLike', 'StringEquals', 'StringLike']);
});
