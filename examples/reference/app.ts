/**
 * Reference app: the ONS data platform in dev, staging and prod, checked by cdk-nag AwsSolutions.
 *
 * Synthesizes offline with no AWS credentials:
 *   npm run synth                    (from the repository root; prints a summary)
 *   npx cdk synth                    (from this folder, with cdk.json; needs the aws-cdk CLI)
 * In your own app, import from 'ons-data-platform' instead of '../../src'.
 */
import { App, CfnOutput, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ApiTier, OnsDataPlatform, PlatformStage, TimeSeriesEngine, VectorStore } from '../../src';

/**
 * Context key choosing the time-series engine: `athena-lake` (the default: Athena over the lake, no idle cost, any
 * account), `timestream-liveanalytics` (a platform deployed before the lake engine was the default keeps its Timestream
 * database with it) or `timestream-influxdb` (lowest latency, an always-on instance):
 * `npx cdk synth -c ons-data-platform:timeSeriesEngine=timestream-influxdb`.
 */
export const ENGINE_CONTEXT = 'ons-data-platform:timeSeriesEngine';

const ENGINES: Record<string, () => TimeSeriesEngine> = {
  'athena-lake': () => TimeSeriesEngine.lake(),
  'timestream-liveanalytics': () => TimeSeriesEngine.timestreamLiveAnalytics(),
  'timestream-influxdb': () => TimeSeriesEngine.timestreamInfluxDb(),
};

/** Adds one stack per stage to `app`, with cdk-nag registered. */
export function buildReferenceApp(app: App): App {
  const engineName = app.node.tryGetContext(ENGINE_CONTEXT) ?? 'athena-lake';
  if (!Object.prototype.hasOwnProperty.call(ENGINES, engineName)) {
    throw new Error(`${ENGINE_CONTEXT}: expected one of ${Object.keys(ENGINES).join(', ')}, got '${engineName}'`);
  }
  for (const stage of [PlatformStage.DEV, PlatformStage.STAGING, PlatformStage.PROD]) {
    const stack = new Stack(app, `OnsDataPlatform-${stage.name}`, {
      // The CLI's region, else N. Virginia (which has every service the three engines and the knowledge base use);
      // the lake engine itself works in any region with Athena, São Paulo included. The account comes from the CLI's credentials.
      env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION ?? 'us-east-1' },
      description: `ONS data platform (${stage.name})`,
    });
    const platform = new OnsDataPlatform(stack, 'Platform', {
      stage,
      timeSeries: ENGINES[engineName](),
      tags: { CostCenter: 'energy-data' },
      // S3 Vectors (no idle cost) in dev and staging; OpenSearch Serverless (lower latency, standby replicas) in prod.
      knowledgeBase: stage === PlatformStage.PROD ? { vectorStore: VectorStore.openSearchServerless() } : undefined,
      // Production also sits behind AWS WAF, with a rate-based rule per client address.
      api: stage === PlatformStage.PROD ? { waf: { rateLimitPerIp: 2000 } } : undefined,
    });
    // One key for the team's dashboard; API Gateway generates its value (never in the template).
    const key = platform.api.addApiKey('DashboardKey', { tier: ApiTier.BASIC });
    new CfnOutput(stack, 'ApiUrl', { value: platform.api.url, description: 'Base URL of the REST API' });
    new CfnOutput(stack, 'DashboardApiKeyId', {
      value: key.keyId,
      description: 'Read the key with: aws apigateway get-api-key --include-value --api-key <this id>',
    });
  }
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return app;
}

if (require.main === module) {
  const started = process.hrtime.bigint();
  // Under the CDK CLI, CDK_OUTDIR is set; run directly, write to ./cdk.out.
  const app = buildReferenceApp(new App({
    ...(process.env.CDK_OUTDIR ? {} : { outdir: 'cdk.out' }),
    // Errors from CDK's bundled CloudFormation validator fail the synth instead of printing.
    context: { '@aws-cdk/core:validateAgainstDefaultRules': true },
  }));
  const assembly = app.synth();
  const stacks = assembly.stacks.map((s) => {
    const resources = Object.values<{ Type: string }>(s.template.Resources ?? {});
    const byType: Record<string, number> = {};
    for (const r of resources) byType[r.Type] = (byType[r.Type] ?? 0) + 1;
    return { stack: s.stackName, resources: resources.length, byType };
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  for (const s of stacks) {
    console.log(`${s.stack}: ${s.resources} resources (${Object.entries(s.byType).map(([t, n]) => `${n} ${t}`).join(', ')})`);
  }
  console.log(`Synthesized ${stacks.length} stacks to ${assembly.directory} in ${seconds.toFixed(1)} s; cdk-nag AwsSolutions: no unacknowledged findings.`);
}
