import { App, Stack } from 'aws-cdk-lib';
import * as expected from './stateful-ids.json';
import { OnsDataPlatform, PlatformStage, TimeSeriesEngine, VectorStore } from '../src';

/**
 * Resources whose replacement loses data: a changed logical id replaces them, and what they hold, on the
 * user's next deploy. `stateful-ids.json` is the contract (not a Jest snapshot, which `npm test` would update):
 * a refactor that moves a construct keeps these ids.
 */
const STATEFUL = new Set([
  'AWS::S3::Bucket', 'AWS::KMS::Key', 'AWS::DynamoDB::Table', 'AWS::Glue::Database', 'AWS::Glue::Table',
  'AWS::Timestream::Database', 'AWS::Timestream::Table', 'AWS::Timestream::InfluxDBInstance',
  'AWS::Bedrock::KnowledgeBase', 'AWS::Bedrock::DataSource', 'AWS::S3Vectors::VectorBucket', 'AWS::S3Vectors::Index',
  'AWS::OpenSearchServerless::Collection', 'AWS::OpenSearchServerless::Index', 'AWS::SecretsManager::Secret',
  'AWS::SQS::Queue', 'AWS::Logs::LogGroup', 'AWS::Athena::WorkGroup',
]);

function statefulIds(build: (stack: Stack) => void): string[] {
  const app = new App();
  const stack = new Stack(app, 'S', { env: { account: '123456789012', region: 'us-east-1' } });
  build(stack);
  const resources = app.synth().getStackByName('S').template.Resources as Record<string, { Type: string }>;
  return Object.entries(resources).filter(([, r]) => STATEFUL.has(r.Type)).map(([id, r]) => `${r.Type} ${id}`).sort();
}

test.each([
  ['timestream-liveanalytics', TimeSeriesEngine.timestreamLiveAnalytics()],
  ['timestream-influxdb', TimeSeriesEngine.timestreamInfluxDb()],
] as const)('the stateful resources of the platform on %s keep their logical ids', (name, timeSeries) => {
  expect(statefulIds((s) => new OnsDataPlatform(s, 'Platform', {
    stage: PlatformStage.PROD, timeSeries, knowledgeBase: { vectorStore: VectorStore.openSearchServerless() },
  }))).toEqual(expected[`prod-${name}`]);
});

test('the stateful resources of the default platform keep their logical ids', () => {
  expect(statefulIds((s) => new OnsDataPlatform(s, 'Platform', { stage: PlatformStage.DEV }))).toEqual(expected.dev);
});
