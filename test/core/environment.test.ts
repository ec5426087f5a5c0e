import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { IngestionPipeline, OnsDataPlatform, PlatformStage, TimeSeriesEngine, TimestreamStore } from '../../src';
import { MetricServices, metricsNamespace, OperationsEnv } from '../../src/runtime/contract';
import { ENV, lakeAndLedger } from '../helpers';

/**
 * The Powertools environment every function gets from createPlatformFunction (and the Batch job from its
 * definition): the stage's metric namespace, the function's service, the log level. What the handlers read.
 */

const STAGE = PlatformStage.STAGING;

function functionsOf(template: Template): Array<{ Description: string; Environment: { Variables: Record<string, unknown> } }> {
  return Object.values(template.findResources('AWS::Lambda::Function')).map((r) => r.Properties);
}

const powertools = (service: string) => ({
  [OperationsEnv.METRICS_NAMESPACE]: metricsNamespace(STAGE.name),
  [OperationsEnv.SERVICE_NAME]: service,
  [OperationsEnv.LOG_LEVEL]: 'INFO',
});

test('ingestion and time series: every function and the Batch job definition carry their service, in the stage namespace', () => {
  const stack = new Stack(new App(), 'Pipeline', { env: ENV });
  const { dataLake, ledger } = lakeAndLedger(stack, STAGE);
  const timeSeriesStore = new TimestreamStore(stack, 'TimeSeries', { stage: STAGE, dataLake, ledger });
  new IngestionPipeline(stack, 'Ingestion', { stage: STAGE, dataLake, timeSeriesStore });
  const template = Template.fromStack(stack);

  const platformFunctions = functionsOf(template).filter((f) => /^ONS data platform/.test(f.Description ?? ''));
  const loader = platformFunctions.filter((f) => /time-series loader/.test(f.Description));
  const query = platformFunctions.filter((f) => /time-series queries/.test(f.Description));
  const ingestion = platformFunctions.filter((f) => !/time-series (loader|queries)/.test(f.Description));
  expect(loader).toHaveLength(1);
  expect(query).toHaveLength(1);
  expect(query[0].Environment.Variables).toMatchObject(powertools(MetricServices.API));
  expect(ingestion.map((f) => f.Description)).toEqual(expect.arrayContaining([expect.stringMatching(/router/), expect.stringMatching(/quarantine/)]));
  for (const fn of ingestion) expect(fn.Environment.Variables).toMatchObject(powertools(MetricServices.INGESTION));
  expect(loader[0].Environment.Variables).toMatchObject(powertools(MetricServices.TIME_SERIES));

  const [job] = Object.values(template.findResources('AWS::Batch::JobDefinition'));
  const environment = job.Properties.ContainerProperties.Environment as Array<{ Name: string; Value: unknown }>;
  const variables = Object.fromEntries(environment.map((e) => [e.Name, e.Value]));
  expect(variables).toMatchObject(powertools(MetricServices.INGESTION));
});

test('Powertools Tracer traces calls where the stage traces, except in the data-heavy processor, loaders and Batch job', () => {
  for (const stage of [PlatformStage.DEV, PlatformStage.STAGING, PlatformStage.PROD]) {
    const stack = new Stack(new App(), `Platform${stage.name}`, { env: ENV });
    // An engine with a loader, so the loader's tracing is checked too.
    new OnsDataPlatform(stack, 'Platform', { stage, timeSeries: TimeSeriesEngine.timestreamLiveAnalytics() });
    const template = Template.fromStack(stack);
    const tracing = stage.tracing === lambda.Tracing.ACTIVE;
    const platformFunctions = functionsOf(template).filter((f) => /^ONS data platform/.test(f.Description ?? ''));
    const heavy = /file processor|time-series loader/;
    expect(platformFunctions.filter((f) => heavy.test(f.Description))).toHaveLength(2);
    for (const fn of platformFunctions) {
      const expected = String(tracing && !heavy.test(fn.Description));
      expect([fn.Description, fn.Environment.Variables[OperationsEnv.TRACE_ENABLED]]).toEqual([fn.Description, expected]);
    }
    const [job] = Object.values(template.findResources('AWS::Batch::JobDefinition'));
    const environment = job.Properties.ContainerProperties.Environment as Array<{ Name: string; Value: unknown }>;
    expect(environment.find((e) => e.Name === OperationsEnv.TRACE_ENABLED)?.Value).toBe('false');
  }
});
