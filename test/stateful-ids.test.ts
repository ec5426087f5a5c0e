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
  'AWS::SQS::Queue', 'AWS::Logs::LogGroup', 'AWS::Athena::WorkGroup', 'AWS::Backup::BackupVault',
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

test('the stateful resources of the default platform (the lake engine) keep their logical ids', () => {
  expect(statefulIds((s) => new OnsDataPlatform(s, 'Platform', { stage: PlatformStage.DEV }))).toEqual(expected.dev);
});

/**
 * Upgrade path: the default engine was Timestream for LiveAnalytics. A platform deployed with that default keeps its
 * Timestream database, tables and loader log group, under the same ids, by choosing the engine explicitly (README,
 * "Upgrade notes"); leaving the default would remove them, and nothing else.
 */
test('a platform deployed with the former default keeps every id by choosing timestreamLiveAnalytics() explicitly', () => {
  const kept = statefulIds((s) => new OnsDataPlatform(s, 'Platform', { stage: PlatformStage.DEV, timeSeries: TimeSeriesEngine.timestreamLiveAnalytics() }));
  expect(kept).toEqual(expected['dev-timestream-liveanalytics']);
  const removedByTheNewDefault = kept.filter((id) => !expected.dev.includes(id));
  expect(removedByTheNewDefault.length).toBeGreaterThan(0);
  expect(removedByTheNewDefault.every((id) => /^AWS::Timestream::(Database|Table) PlatformTimeSeries|^AWS::Logs::LogGroup PlatformTimeSeriesLoaderLogGroup/.test(id))).toBe(true);
  expect(expected.dev.every((id) => kept.includes(id))).toBe(true);
});
