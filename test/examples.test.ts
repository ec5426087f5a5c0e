import { App } from 'aws-cdk-lib';
import { buildReferenceApp, ENGINE_CONTEXT } from '../examples/reference/app';

describe('examples/reference', () => {
  test('synthesizes dev, staging and prod offline with no unacknowledged cdk-nag finding', () => {
    const assembly = buildReferenceApp(new App({ context: { '@aws-cdk/core:validateAgainstDefaultRules': true } })).synth();
    expect(assembly.stacks.map((s) => s.stackName).sort()).toEqual(['OnsDataPlatform-dev', 'OnsDataPlatform-prod', 'OnsDataPlatform-staging']);
    for (const stack of assembly.stacks) {
      const types = Object.values<{ Type: string }>(stack.template.Resources).map((r) => r.Type);
      expect(types.filter((t) => t === 'AWS::S3::Bucket')).toHaveLength(4);
      expect(types).toContain('AWS::Lambda::Function');
      expect(types).toContain('AWS::Bedrock::KnowledgeBase');
      // The vector store is chosen per stage: S3 Vectors in dev and staging, OpenSearch Serverless in prod.
      const prod = stack.stackName === 'OnsDataPlatform-prod';
      expect([types.includes('AWS::OpenSearchServerless::Collection'), types.includes('AWS::S3Vectors::Index')]).toEqual([prod, !prod]);
    }
  });

  test('the lake engine by default: no Timestream resource, the query function reads the lake through its workgroup', () => {
    const assembly = buildReferenceApp(new App({ context: { '@aws-cdk/core:validateAgainstDefaultRules': true } })).synth();
    for (const stack of assembly.stacks) {
      const resources = Object.values<{ Type: string; Properties?: any }>(stack.template.Resources);
      expect(resources.filter((r) => r.Type.startsWith('AWS::Timestream::'))).toEqual([]);
      const query = resources.filter((r) => r.Type === 'AWS::Lambda::Function' && /time-series queries \(Athena/.test(r.Properties?.Description ?? ''));
      expect(query).toHaveLength(1);
      expect(query[0].Properties.Environment.Variables.ONS_LAKE_WORK_GROUP).toBe(stack.stackName.replace('OnsDataPlatform-', 'ons-data-platform-'));
    }
  });

  test('with the LiveAnalytics engine (context flag): every stage synthesizes, cdk-nag clean, its database and tables', () => {
    const context = { '@aws-cdk/core:validateAgainstDefaultRules': true, [ENGINE_CONTEXT]: 'timestream-liveanalytics' };
    const assembly = buildReferenceApp(new App({ context })).synth();
    for (const stack of assembly.stacks) {
      const types = Object.values<{ Type: string }>(stack.template.Resources).map((r) => r.Type);
      expect(types.filter((t) => t === 'AWS::Timestream::Database')).toHaveLength(1);
    }
  });

  test('with the InfluxDB engine (context flag): every stage synthesizes, cdk-nag clean, no LiveAnalytics resource', () => {
    const context = { '@aws-cdk/core:validateAgainstDefaultRules': true, [ENGINE_CONTEXT]: 'timestream-influxdb' };
    const assembly = buildReferenceApp(new App({ context })).synth();
    for (const stack of assembly.stacks) {
      const types = Object.values<{ Type: string }>(stack.template.Resources).map((r) => r.Type);
      expect(types.filter((t) => t === 'AWS::Timestream::InfluxDBInstance')).toHaveLength(1);
      expect(types.filter((t) => t.startsWith('AWS::Timestream::') && t !== 'AWS::Timestream::InfluxDBInstance')).toEqual([]);
    }
    expect(() => buildReferenceApp(new App({ context: { [ENGINE_CONTEXT]: 'postgres' } }))).toThrow(ENGINE_CONTEXT);
  });
});
