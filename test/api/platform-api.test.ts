import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import { openApi } from './openapi';
import {
  ApiAuthorization, ApiTier, DataLake, IngestionLedger, OnsDataPlatform, PlatformApi, PlatformApiOptions, PlatformStage,
} from '../../src';
import { LedgerApiEnv } from '../../src/api/contract';
import { openApiDocument } from '../../src/api/openapi';
import { REQUEST_MODELS, ROUTES } from '../../src/api/routes';
import { ApiEnv } from '../../src/runtime/contract';
import { ENV } from '../helpers';

type Resources = Record<string, { Type: string; Properties: any }>;

function fn(stack: Stack, id: string): lambda.Function {
  return new lambda.Function(stack, id, { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=1') });
}

/** A standalone API with every route's backend, as a user composing the parts would build it. */
function apiStack(
  options: PlatformApiOptions = {}, stage = PlatformStage.DEV, routes: 'all' | 'health' = 'all', extend?: (stack: Stack, api: PlatformApi) => void,
) {
  const app = new App();
  const stack = new Stack(app, 'Api', { env: ENV });
  const lake = new DataLake(stack, 'Lake', { stage });
  const ledger = new IngestionLedger(stack, 'Ledger', { stage, encryptionKey: lake.encryptionKey });
  const functions = { health: fn(stack, 'Health'), timeSeries: fn(stack, 'TimeSeries'), knowledge: fn(stack, 'Knowledge') };
  const api = new PlatformApi(stack, 'PlatformApi', {
    ...options,
    stage,
    encryptionKey: lake.encryptionKey,
    healthFunction: functions.health,
    ...(routes === 'all' ? {
      timeSeriesQueryFunction: functions.timeSeries,
      knowledgeQueryFunction: functions.knowledge,
      ledger,
      timeSeriesDatasets: ['curva_carga'],
    } : {}),
  });
  extend?.(stack, api);
  const template = Template.fromStack(stack);
  return { app, stack, api, functions, ledger, template, resources: template.toJSON().Resources as Resources };
}

function ofType(resources: Resources, type: string) {
  return Object.entries(resources).filter(([, r]) => r.Type === type);
}

/** `METHOD /path` of every method in the template, from the resource tree. */
function deployedRoutes(resources: Resources): Map<string, any> {
  const pathOf = (ref: any): string => {
    if (ref['Fn::GetAtt']) return '';
    const r = resources[ref.Ref];
    return `${pathOf(r.Properties.ParentId)}/${r.Properties.PathPart}`;
  };
  return new Map(ofType(resources, 'AWS::ApiGateway::Method')
    .filter(([, m]) => m.Properties.HttpMethod !== 'OPTIONS')
    .map(([, m]) => [`${m.Properties.HttpMethod} ${pathOf(m.Properties.ResourceId)}`, m.Properties]));
}

describe('PlatformApi routes', () => {
  const { resources } = apiStack();
  const methods = deployedRoutes(resources);

  test('the six routes, each on a Lambda proxy integration; /health (liveness) open, every other route (readiness too) behind an API key', () => {
    expect([...methods.keys()].sort()).toEqual(['GET /datasets', 'GET /health', 'GET /health/ready', 'GET /ingestions', 'GET /timeseries/{dataset}', 'POST /query']);
    // Liveness and readiness are one function behind one integration.
    expect(methods.get('GET /health/ready').Integration.Uri).toEqual(methods.get('GET /health').Integration.Uri);
    for (const [route, m] of methods) {
      expect({ route, type: m.Integration.Type }).toEqual({ route, type: 'AWS_PROXY' });
      expect({ route, key: m.ApiKeyRequired }).toEqual({ route, key: route !== 'GET /health' });
      expect({ route, auth: m.AuthorizationType }).toEqual({ route, auth: 'NONE' });
    }
  });

  test('POST /query validates its body against the QueryRequest model (JSON Schema draft 4)', () => {
    const query = methods.get('POST /query');
    const [modelId, model] = ofType(resources, 'AWS::ApiGateway::Model')[0];
    expect(query.RequestModels).toEqual({ 'application/json': { Ref: modelId } });
    expect(model.Properties.Schema).toEqual({ $schema: 'http://json-schema.org/draft-04/schema#', ...REQUEST_MODELS.QueryRequest });
    expect(model.Properties.Schema.additionalProperties).toBe(false);
    const validator = resources[query.RequestValidatorId.Ref];
    expect(validator.Properties).toMatchObject({ ValidateRequestBody: true });
  });

  test('GET /timeseries/{dataset} requires from and to (parameter validator); no other route requires parameters', () => {
    const ts = methods.get('GET /timeseries/{dataset}');
    expect(ts.RequestParameters).toEqual({ 'method.request.querystring.from': true, 'method.request.querystring.to': true });
    expect(resources[ts.RequestValidatorId.Ref].Properties).toMatchObject({ ValidateRequestParameters: true, ValidateRequestBody: false });
    for (const route of ['GET /health', 'GET /health/ready', 'GET /datasets', 'GET /ingestions']) expect(methods.get(route).RequestParameters).toBeUndefined();
  });

  test('without the optional backends only GET /health and GET /health/ready are deployed', () => {
    expect([...deployedRoutes(apiStack({}, PlatformStage.DEV, 'health').resources).keys()]).toEqual(['GET /health', 'GET /health/ready']);
  });

  test('datasets outside the catalog (the lake\'s additionalDatasets) reach the ledger function for GET /datasets', () => {
    const app = new App();
    const stack = new Stack(app, 'Api', { env: ENV });
    const lake = new DataLake(stack, 'Lake', {
      stage: PlatformStage.DEV,
      additionalDatasets: [{ datasetId: 'restricao_eolica', dimensions: ['id_subsistema'], measures: [{ name: 'val_restricao', unit: 'MW' }] }],
    });
    const ledger = new IngestionLedger(stack, 'Ledger', { stage: PlatformStage.DEV, encryptionKey: lake.encryptionKey });
    new PlatformApi(stack, 'PlatformApi', {
      stage: PlatformStage.DEV, encryptionKey: lake.encryptionKey, healthFunction: fn(stack, 'Health'), ledger, additionalDatasets: lake.additionalDatasets,
    });
    const [, ledgerFn] = ofType(Template.fromStack(stack).toJSON().Resources, 'AWS::Lambda::Function').find(([, f]) => f.Properties.Environment?.Variables?.[LedgerApiEnv.TABLE])!;
    expect(JSON.parse(ledgerFn.Properties.Environment.Variables[LedgerApiEnv.DATASETS])).toEqual([
      { id: 'restricao_eolica', dimensions: ['id_subsistema'], measures: [{ name: 'val_restricao', unit: 'MW' }] },
    ]);
    expect(ofType(resources, 'AWS::Lambda::Function').some(([, f]) => f.Properties.Environment?.Variables?.[LedgerApiEnv.DATASETS])).toBe(false);
  });

  test('the ledger function: the ledger table and time-series datasets in its environment, Query only (no Scan, no writes)', () => {
    const [, ledgerFn] = ofType(resources, 'AWS::Lambda::Function').find(([, f]) => f.Properties.Environment?.Variables?.[LedgerApiEnv.TABLE])!;
    expect(ledgerFn.Properties.Environment.Variables[LedgerApiEnv.TIME_SERIES_DATASETS]).toBe('["curva_carga"]');
    const policies = ofType(resources, 'AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Properties.Roles).includes('PlatformApiLedgerRole'));
    const actions = policies.flatMap(([, p]) => p.Properties.PolicyDocument.Statement.flatMap((s: any) => [s.Action].flat()));
    expect(actions).toContain('dynamodb:Query');
    expect(actions.filter((a: string) => a.startsWith('dynamodb:'))).toEqual(['dynamodb:Query']);
    expect(actions.some((a: string) => a.includes('*'))).toBe(false);
  });
});

describe('PlatformApi authorization', () => {
  test('Cognito: every route but /health needs a user-pool token (with the scopes) and an API key', () => {
    const app = new App();
    const stack = new Stack(app, 'Pool', { env: ENV });
    const pool = new cognito.UserPool(stack, 'Pool');
    const lake = new DataLake(stack, 'Lake', { stage: PlatformStage.DEV });
    new PlatformApi(stack, 'PlatformApi', {
      stage: PlatformStage.DEV,
      encryptionKey: lake.encryptionKey,
      healthFunction: fn(stack, 'Health'),
      knowledgeQueryFunction: fn(stack, 'Knowledge'),
      authorization: ApiAuthorization.cognito([pool], { scopes: ['ons/read'] }),
    });
    const resources = Template.fromStack(stack).toJSON().Resources as Resources;
    const [authorizerId, authorizer] = ofType(resources, 'AWS::ApiGateway::Authorizer')[0];
    expect(authorizer.Properties.Type).toBe('COGNITO_USER_POOLS');
    const methods = deployedRoutes(resources);
    expect(methods.get('POST /query')).toMatchObject({
      AuthorizationType: 'COGNITO_USER_POOLS', AuthorizerId: { Ref: authorizerId }, AuthorizationScopes: ['ons/read'], ApiKeyRequired: true,
    });
    expect(methods.get('GET /health')).toMatchObject({ AuthorizationType: 'NONE', ApiKeyRequired: false });
    expect(methods.get('GET /health/ready')).toMatchObject({ AuthorizationType: 'COGNITO_USER_POOLS', ApiKeyRequired: true });
  });

  test('IAM: signed requests (AWS_IAM) besides the key; grantInvoke allows execute-api:Invoke on this API stage only', () => {
    const { template, resources } = apiStack({ authorization: ApiAuthorization.iam() }, PlatformStage.DEV, 'all', (stack, api) => {
      api.grantInvoke(new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() }));
    });
    for (const [route, m] of deployedRoutes(resources)) {
      expect({ route, auth: m.AuthorizationType }).toEqual({ route, auth: route === 'GET /health' ? 'NONE' : 'AWS_IAM' });
    }
    const policy = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: Match.stringLikeRegexp('Caller') }] } });
    const statement = Object.values<any>(policy)[0].Properties.PolicyDocument.Statement[0];
    expect(statement.Action).toBe('execute-api:Invoke');
    expect(JSON.stringify(statement.Resource)).toContain('/v1/*/*');
  });

  test('a Cognito authorization without user pools is refused', () => {
    expect(() => ApiAuthorization.cognito([])).toThrow(/authorization: .*at least one user pool/);
  });
});

describe('PlatformApi usage plans and throttling', () => {
  const STAGES = { dev: PlatformStage.DEV, staging: PlatformStage.STAGING, prod: PlatformStage.PROD };

  test.each([
    ['dev', 2, 4, 10, 20],
    ['staging', 10, 20, 50, 100],
    ['prod', 20, 40, 100, 200],
  ])('stage %s: basic %d/%d and premium %d/%d per key, within the stage\'s method throttling, on the API stage', (name, bRate, bBurst, pRate, pBurst) => {
    const { template } = apiStack({}, STAGES[name as 'dev']);
    template.resourceCountIs('AWS::ApiGateway::UsagePlan', 2);
    template.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      Quota: { Limit: 10_000, Period: 'DAY' }, Throttle: { RateLimit: bRate, BurstLimit: bBurst }, ApiStages: [Match.objectLike({ Stage: Match.anyValue() })],
    });
    template.hasResourceProperties('AWS::ApiGateway::UsagePlan', { Quota: { Limit: 100_000, Period: 'DAY' }, Throttle: { RateLimit: pRate, BurstLimit: pBurst } });
  });

  test.each(Object.keys(STAGES))('stage %s: no usage plan promises a key more than the stage allows any method (API Gateway applies the method limit first)', (name) => {
    const { resources } = apiStack({}, STAGES[name as 'dev']);
    const [[, stage]] = ofType(resources, 'AWS::ApiGateway::Stage');
    const settings = stage.Properties.MethodSettings as Array<{ ThrottlingRateLimit: number; ThrottlingBurstLimit: number }>;
    const plans = ofType(resources, 'AWS::ApiGateway::UsagePlan').map(([, p]) => p.Properties.Throttle);
    expect(plans).toHaveLength(2);
    const all = settings.find((m: any) => m.ResourcePath === '/*')!;
    for (const plan of plans) {
      expect(plan.RateLimit).toBeLessThanOrEqual(all.ThrottlingRateLimit);
      expect(plan.BurstLimit).toBeLessThanOrEqual(all.ThrottlingBurstLimit);
    }
    // POST /query is capped lower, for all keys together.
    const query = settings.find((m: any) => m.ResourcePath === '/~1query')!;
    expect(query.ThrottlingRateLimit).toBeLessThan(all.ThrottlingRateLimit);
  });

  test('plans from props', () => {
    const { template } = apiStack({ basicPlan: { requestsPerDay: 50, rateLimit: 1, burstLimit: 2 } });
    template.hasResourceProperties('AWS::ApiGateway::UsagePlan', { Quota: { Limit: 50, Period: 'DAY' }, Throttle: { RateLimit: 1, BurstLimit: 2 } });
  });

  test('a plan above the stage\'s method throttling is refused, naming the plan and the limit', () => {
    expect(() => apiStack({ premiumPlan: { requestsPerDay: 100_000, rateLimit: 500, burstLimit: 1_000 } }, PlatformStage.PROD))
      .toThrow(/premiumPlan: rate 500, burst 1000 exceed the stage's method throttling \(throttling: rate 100, burst 200\)/);
    expect(() => apiStack({ basicPlan: { requestsPerDay: 10, rateLimit: 5, burstLimit: 21 } }, PlatformStage.DEV)).toThrow(/basicPlan: .*throttling: rate 10, burst 20/);
    // Raising the stage's method limits lets the plan through.
    const raised = { throttling: { rateLimit: 500, burstLimit: 1_000 }, premiumPlan: { requestsPerDay: 100_000, rateLimit: 500, burstLimit: 1_000 } };
    const { template } = apiStack(raised, PlatformStage.PROD);
    template.hasResourceProperties('AWS::ApiGateway::UsagePlan', { Throttle: { RateLimit: 500, BurstLimit: 1_000 } });
  });

  test.each([
    [{ basicPlan: { requestsPerDay: 0, rateLimit: 1, burstLimit: 1 } }, /basicPlan.requestsPerDay/],
    [{ premiumPlan: { requestsPerDay: 10, rateLimit: -1, burstLimit: 1 } }, /premiumPlan.rateLimit/],
    [{ premiumPlan: { requestsPerDay: 10, rateLimit: 1, burstLimit: 1.5 } }, /premiumPlan.burstLimit/],
    [{ throttling: { rateLimit: 0, burstLimit: 1 } }, /throttling.rateLimit/],
    [{ queryThrottling: { rateLimit: 1, burstLimit: 0 } }, /queryThrottling.burstLimit/],
    [{ queryThrottling: { rateLimit: Number.NaN, burstLimit: 1 } }, /queryThrottling.rateLimit/],
    [{ corsAllowOrigins: ['https://x.example.com/path'] }, /corsAllowOrigins: .* must be an origin/],
    [{ stageName: 'v 1' }, /stageName/],
    [{ waf: { rateLimitPerIp: 5 } }, /waf.rateLimitPerIp/],
  ])('invalid %j is refused naming the prop', (options, message) => {
    expect(() => apiStack(options as PlatformApiOptions)).toThrow(message);
  });

  test.each([
    ['dev', 10, 20, 2, 4, false],
    ['staging', 50, 100, 5, 10, true],
    ['prod', 100, 200, 10, 20, true],
  ])('stage %s: every method %d/%d, POST /query %d/%d (all keys together), tracing %s, execution logs at ERROR, no data trace', (name, rate, burst, qRate, qBurst, tracing) => {
    const { template } = apiStack({}, STAGES[name as 'dev']);
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'v1',
      TracingEnabled: tracing,
      MethodSettings: [{
        HttpMethod: '*',
        ResourcePath: '/*',
        ThrottlingRateLimit: rate,
        ThrottlingBurstLimit: burst,
        LoggingLevel: 'ERROR',
        DataTraceEnabled: false,
        MetricsEnabled: true,
      }, {
        HttpMethod: 'POST',
        ResourcePath: '/~1query',
        ThrottlingRateLimit: qRate,
        ThrottlingBurstLimit: qBurst,
        DataTraceEnabled: false,
      }],
    });
  });

  test('without POST /query there is no method setting for it', () => {
    const { template } = apiStack({}, PlatformStage.PROD, 'health');
    template.hasResourceProperties('AWS::ApiGateway::Stage', { MethodSettings: [Match.objectLike({ ResourcePath: '/*', ThrottlingRateLimit: 100 })] });
  });

  test('queryThrottling overrides the stage\'s for POST /query only', () => {
    const { template } = apiStack({ queryThrottling: { rateLimit: 3, burstLimit: 6 } }, PlatformStage.PROD);
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: [
        Match.objectLike({ ResourcePath: '/*', ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 }),
        Match.objectLike({ ResourcePath: '/~1query', HttpMethod: 'POST', ThrottlingRateLimit: 3, ThrottlingBurstLimit: 6 }),
      ],
    });
  });

  test('method limits that add up above the account\'s default Regional quota (10,000 rps) get a synth warning', () => {
    const high = apiStack({ throttling: { rateLimit: 4_000, burstLimit: 4_000 } }, PlatformStage.PROD);
    Annotations.fromStack(high.stack).hasWarning('/Api/PlatformApi', Match.stringLikeRegexp('more than the account\'s default API Gateway quota of 10000'));
    const prod = apiStack({}, PlatformStage.PROD);
    expect(Annotations.fromStack(prod.stack).findWarning('*', Match.stringLikeRegexp('API Gateway quota'))).toEqual([]);
  });

  test('throttling and tracing props override the stage', () => {
    const { template } = apiStack({ throttling: { rateLimit: 7, burstLimit: 9 }, tracing: true }, PlatformStage.DEV, 'health');
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      TracingEnabled: true, MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 7, ThrottlingBurstLimit: 9 })],
    });
  });

  test('addApiKey: a key without a value in the template, attached to its tier\'s plan', () => {
    const { resources } = apiStack({}, PlatformStage.DEV, 'health', (_stack, api) => {
      api.addApiKey('Dashboard', { tier: ApiTier.PREMIUM });
    });
    const [keyId, key] = ofType(resources, 'AWS::ApiGateway::ApiKey')[0];
    expect(key.Properties.Value).toBeUndefined();
    expect(key.Properties.Enabled).toBe(true);
    const [, planKey] = ofType(resources, 'AWS::ApiGateway::UsagePlanKey')[0];
    expect(planKey.Properties.KeyId).toEqual({ Ref: keyId });
    expect(resources[planKey.Properties.UsagePlanId.Ref].Properties.Quota.Limit).toBe(100_000);
  });
});

describe('PlatformApi errors, logs and protection', () => {
  const { resources } = apiStack();
  const responses = new Map(ofType(resources, 'AWS::ApiGateway::GatewayResponse').map(([, r]) => [r.Properties.ResponseType, r.Properties]));

  test('API Gateway\'s own responses have the API\'s error shape, with the request id', () => {
    const expected: Record<string, string | undefined> = {
      DEFAULT_4XX: undefined,
      DEFAULT_5XX: undefined,
      BAD_REQUEST_BODY: '400',
      BAD_REQUEST_PARAMETERS: '400',
      INVALID_API_KEY: '403',
      ACCESS_DENIED: '403',
      MISSING_AUTHENTICATION_TOKEN: '404',
      RESOURCE_NOT_FOUND: '404',
      REQUEST_TOO_LARGE: '413',
      THROTTLED: '429',
      QUOTA_EXCEEDED: '429',
      INTEGRATION_TIMEOUT: '504',
      WAF_FILTERED: '403',
      UNSUPPORTED_MEDIA_TYPE: '415',
    };
    for (const [type, status] of Object.entries(expected)) {
      const r = responses.get(type);
      expect({ type, status: r?.StatusCode }).toEqual({ type, status });
      const template: string = r.ResponseTemplates['application/json'];
      // What API Gateway would render, with its variables filled in: valid JSON of the error shape.
      const rendered = JSON.parse(template.replace('$context.error.messageString', '"Forbidden"').replace('$context.requestId', 'req-1'));
      expect(rendered).toEqual({ error: { code: expect.stringMatching(/^[A-Za-z]+$/), message: expect.any(String) }, requestId: 'req-1' });
      expect(r.ResponseParameters['gatewayresponse.header.Cache-Control']).toBe("'no-store'");
    }
    expect(JSON.parse(responses.get('THROTTLED').ResponseTemplates['application/json'].replace('$context.requestId', 'r')).error.code).toBe('TooManyRequests');
  });

  test('with IAM authorization a missing token stays a 403 (an unsigned request), not a 404', () => {
    const iamResources = apiStack({ authorization: ApiAuthorization.iam() }, PlatformStage.DEV, 'health').resources;
    const missing = ofType(iamResources, 'AWS::ApiGateway::GatewayResponse').find(([, r]) => r.Properties.ResponseType === 'MISSING_AUTHENTICATION_TOKEN')!;
    expect(missing[1].Properties.StatusCode).toBe('403');
  });

  test('JSON access logs with the request id, caller, route, status and latencies, in a KMS-encrypted log group', () => {
    const [, stage] = ofType(resources, 'AWS::ApiGateway::Stage')[0];
    const format = JSON.parse(stage.Properties.AccessLogSetting.Format);
    expect(format).toMatchObject({
      requestId: '$context.requestId',
      ip: '$context.identity.sourceIp',
      apiKeyId: '$context.identity.apiKeyId',
      httpMethod: '$context.httpMethod',
      resourcePath: '$context.resourcePath',
      status: '$context.status',
      responseLatency: '$context.responseLatency',
      integrationLatency: '$context.integrationLatency',
      errorType: '$context.error.responseType',
      xrayTraceId: '$context.xrayTraceId',
    });
    const logGroupId = stage.Properties.AccessLogSetting.DestinationArn['Fn::GetAtt'][0];
    expect(resources[logGroupId].Properties).toMatchObject({ KmsKeyId: { 'Fn::GetAtt': [expect.stringMatching(/^LakeKey/), 'Arn'] }, RetentionInDays: 7 });
  });

  test('regional endpoint, API keys from the x-api-key header', () => {
    const [, api] = ofType(resources, 'AWS::ApiGateway::RestApi')[0];
    expect(api.Properties).toMatchObject({ EndpointConfiguration: { Types: ['REGIONAL'] }, ApiKeySourceType: 'HEADER' });
  });

  test('no CORS by default: no OPTIONS methods, no origins in any function environment', () => {
    expect(ofType(resources, 'AWS::ApiGateway::Method').filter(([, m]) => m.Properties.HttpMethod === 'OPTIONS')).toEqual([]);
    expect(JSON.stringify(resources)).not.toContain(ApiEnv.CORS_ORIGINS);
  });

  test('CORS origins: preflight routes, the origins in every backend\'s environment, one origin on gateway responses', () => {
    const { resources: cors } = apiStack({ corsAllowOrigins: ['https://dash.example.com'] });
    expect(ofType(cors, 'AWS::ApiGateway::Method').filter(([, m]) => m.Properties.HttpMethod === 'OPTIONS').length).toBeGreaterThanOrEqual(5);
    const withOrigins = ofType(cors, 'AWS::Lambda::Function').filter(([, f]) => f.Properties.Environment?.Variables?.[ApiEnv.CORS_ORIGINS]);
    expect(withOrigins).toHaveLength(4);
    for (const [, f] of withOrigins) expect(f.Properties.Environment.Variables[ApiEnv.CORS_ORIGINS]).toBe('["https://dash.example.com"]');
    const throttled = ofType(cors, 'AWS::ApiGateway::GatewayResponse').find(([, r]) => r.Properties.ResponseType === 'THROTTLED')!;
    expect(throttled[1].Properties.ResponseParameters['gatewayresponse.header.Access-Control-Allow-Origin']).toBe("'https://dash.example.com'");
  });

  test('no WAF unless asked; with waf: a regional web ACL with a rate rule per IP, associated with the stage; WAF blocks answer 429', () => {
    expect(ofType(resources, 'AWS::WAFv2::WebACL')).toEqual([]);
    const { template, resources: waf } = apiStack({ waf: { rateLimitPerIp: 500 } }, PlatformStage.PROD, 'health');
    template.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'REGIONAL',
      DefaultAction: { Allow: {} },
      Rules: [Match.objectLike({ Action: { Block: {} }, Statement: { RateBasedStatement: { Limit: 500, AggregateKeyType: 'IP', EvaluationWindowSec: 300 } } })],
    });
    const [, association] = ofType(waf, 'AWS::WAFv2::WebACLAssociation')[0];
    expect(JSON.stringify(association.Properties.ResourceArn)).toContain('/stages/');
    const filtered = ofType(waf, 'AWS::ApiGateway::GatewayResponse').find(([, r]) => r.Properties.ResponseType === 'WAF_FILTERED')!;
    expect(filtered[1].Properties.StatusCode).toBe('429');
  });

  test('with waf: the web ACL logs to an aws-waf-logs-* log group encrypted with the platform key, secrets redacted', () => {
    const { api, stack, resources: waf } = apiStack({ waf: {} }, PlatformStage.PROD, 'health');
    const [[groupId, group]] = ofType(waf, 'AWS::Logs::LogGroup').filter(([, r]) => String(r.Properties.LogGroupName).startsWith('aws-waf-logs-'));
    expect(group.Properties.KmsKeyId).toEqual({ 'Fn::GetAtt': [ofType(waf, 'AWS::KMS::Key')[0][0], 'Arn'] });
    expect(group.Properties.RetentionInDays).toBe(PlatformStage.PROD.logRetention);
    expect(stack.resolve(api.wafLogGroup!.logGroupName)).toEqual({ Ref: groupId });
    const [[, logging]] = ofType(waf, 'AWS::WAFv2::LoggingConfiguration');
    expect(logging.Properties.ResourceArn).toEqual({ 'Fn::GetAtt': [ofType(waf, 'AWS::WAFv2::WebACL')[0][0], 'Arn'] });
    // WAF takes the log group's ARN without LogGroup.logGroupArn's trailing `:*`.
    const destination = JSON.stringify(logging.Properties.LogDestinationConfigs);
    expect(destination).toContain(`:log-group:\",{\"Ref\":\"${groupId}\"}`);
    expect(destination).not.toContain(':*');
    expect(logging.Properties.RedactedFields).toEqual([{ SingleHeader: { Name: 'x-api-key' } }, { SingleHeader: { Name: 'authorization' } }]);
  });

  test('a shared web ACL (webAclArn) gets no logging configuration from the platform: its owner configures it', () => {
    const { resources: waf } = apiStack({ waf: { webAclArn: 'arn:aws:wafv2:sa-east-1:123456789012:regional/webacl/shared/0000' } }, PlatformStage.PROD, 'health');
    expect(ofType(waf, 'AWS::WAFv2::LoggingConfiguration')).toEqual([]);
  });

  test('an existing web ACL is associated, none created, and its blocks answer 403', () => {
    const arn = 'arn:aws:wafv2:sa-east-1:123456789012:regional/webacl/shared/0000';
    const { resources: waf } = apiStack({ waf: { webAclArn: arn } }, PlatformStage.PROD, 'health');
    expect(ofType(waf, 'AWS::WAFv2::WebACL')).toEqual([]);
    expect(ofType(waf, 'AWS::WAFv2::WebACLAssociation')[0][1].Properties.WebACLArn).toBe(arn);
    expect(ofType(waf, 'AWS::ApiGateway::GatewayResponse').find(([, r]) => r.Properties.ResponseType === 'WAF_FILTERED')![1].Properties.StatusCode).toBe('403');
  });

  test('metrics are the stage\'s API Gateway metrics', () => {
    const { api, stack } = apiStack({}, PlatformStage.DEV, 'health');
    const m = stack.resolve(api.metricServerError().toMetricConfig().metricStat);
    expect(m).toMatchObject({
      namespace: 'AWS/ApiGateway',
      metricName: '5XXError',
      statistic: 'Sum',
      dimensions: [{ name: 'ApiName', value: 'ons-data-platform-dev' }, { name: 'Stage', value: 'v1' }],
    });
    expect(stack.resolve(api.metricLatency().toMetricConfig().metricStat).statistic).toBe('p99');
  });
});

describe('the shipped OpenAPI document', () => {
  test('is the one generated from the route table (run `npx projen docgen` after changing the API)', () => {
    const { version } = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));
    expect(openApi).toEqual(openApiDocument(version));
  });

  test('matches the deployed routes: methods, API keys, required parameters and the body schema', () => {
    const { resources } = apiStack();
    const methods = deployedRoutes(resources);
    const documented = Object.entries(openApi.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op] as const));
    expect([...methods.keys()].sort()).toEqual(documented.map(([route]) => route).sort());
    for (const [route, op] of documented) {
      const deployed = methods.get(route);
      expect({ route, open: op.security?.length === 0 }).toEqual({ route, open: !deployed.ApiKeyRequired });
      const required = (op.parameters ?? []).filter((p: any) => p.in === 'query' && p.required).map((p: any) => `method.request.querystring.${p.name}`);
      expect({ route, required: Object.keys(deployed.RequestParameters ?? {}).sort() }).toEqual({ route, required: required.sort() });
      const bodyRef: string | undefined = op.requestBody?.content['application/json'].schema.$ref;
      if (bodyRef) {
        const name = bodyRef.split('/').pop()!;
        const model = resources[deployed.RequestModels['application/json'].Ref].Properties;
        expect(model.Name).toBe(name);
        const { $schema: _s, title: _t, ...schema } = model.Schema;
        expect(schema).toEqual(openApi.components.schemas[name]);
      } else {
        expect(deployed.RequestModels).toBeUndefined();
      }
    }
    expect(ROUTES.map((r) => r.operationId).sort()).toEqual(documented.map(([, op]) => op.operationId).sort());
  });
});

describe('OnsDataPlatform with its API', () => {
  test('the platform exposes the API with every route, Cognito, CORS and WAF, and cdk-nag AwsSolutions has nothing unacknowledged', () => {
    const app = new App();
    const stack = new Stack(app, 'Full', { env: { account: ENV.account, region: 'us-east-1' } });
    const pool = new cognito.UserPool(stack, 'Pool', {
      passwordPolicy: { minLength: 12, requireSymbols: true, requireDigits: true, requireLowercase: true, requireUppercase: true },
      mfa: cognito.Mfa.REQUIRED,
      mfaSecondFactor: { sms: false, otp: true },
      featurePlan: cognito.FeaturePlan.PLUS,
      standardThreatProtectionMode: cognito.StandardThreatProtectionMode.FULL_FUNCTION,
    });
    const platform = new OnsDataPlatform(stack, 'Platform', {
      stage: PlatformStage.PROD,
      api: { authorization: ApiAuthorization.cognito([pool]), corsAllowOrigins: ['https://dash.example.com'], waf: {} },
    });
    platform.api.addApiKey('Key', { tier: ApiTier.BASIC });
    // Registered before the first synthesis: a later synth() returns the cached assembly without validating.
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).not.toThrow();
    expect([...deployedRoutes(Template.fromStack(stack).toJSON().Resources).keys()].sort())
      .toEqual(['GET /datasets', 'GET /health', 'GET /health/ready', 'GET /ingestions', 'GET /timeseries/{dataset}', 'POST /query']);
  });

  test('the health function is configured for every component, with read-only permissions on exactly those resources', () => {
    const app = new App();
    const stack = new Stack(app, 'Health', { env: { account: ENV.account, region: 'us-east-1' } });
    new OnsDataPlatform(stack, 'Platform', { stage: PlatformStage.DEV });
    const resources = Template.fromStack(stack).toJSON().Resources as Resources;
    const [, health] = ofType(resources, 'AWS::Lambda::Function').find(([, f]) => f.Properties.Description?.includes('health check'))!;
    expect(Object.keys(health.Properties.Environment.Variables)).toEqual(expect.arrayContaining([
      'ONS_LAKE_BUCKETS', 'ONS_HEALTH_TIME_SERIES', 'ONS_HEALTH_KNOWLEDGE_BASE_ID', 'ONS_HEALTH_LEDGER_TABLE',
    ]));
    const role = health.Properties.Role['Fn::GetAtt'][0];
    const actions = ofType(resources, 'AWS::IAM::Policy')
      .filter(([, p]) => JSON.stringify(p.Properties.Roles).includes(role))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement.flatMap((s: any) => [s.Action].flat()));
    expect(actions).toEqual(expect.arrayContaining([
      // The default engine is the lake: Athena's workgroup and Glue database.
      's3:ListBucket', 'athena:GetWorkGroup', 'athena:GetDatabase', 'glue:GetDatabase', 'bedrock:GetKnowledgeBase', 'dynamodb:DescribeTable',
    ]));
    expect(actions.filter((a: string) => /Put|Write|Delete|Update|Create/.test(a) && !a.startsWith('logs:') && !a.startsWith('xray:'))).toEqual([]);
  });
});

test('ApiAuthorization kinds', () => {
  expect(ApiAuthorization.apiKeyOnly().kind).toBe('apiKey');
  expect(ApiAuthorization.iam().kind).toBe('iam');
  expect(apigw.AuthorizationType.IAM).toBe('AWS_IAM');
});
