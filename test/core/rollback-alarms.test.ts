import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { PlatformStage } from '../../src';
import { LedgerApiEnv } from '../../src/api/contract';
import { OperationsEnv } from '../../src/runtime/contract';
import { platformStack } from '../helpers';
import { createLedgerTable, isolatedAwsEnv, loadHandler, LocalServer, restoreEnv, startDynalite } from '../local-aws';
import { closedPort } from '../local-http';
import { captureOutput, EmfDocument } from '../runtime/output';

/**
 * "Deploying" a version of the ledger API function against the rollback alarms of its CodeDeploy deployment group,
 * as synthesized for PROD: the real bundled handler runs with the environment CloudFormation gives it and the
 * variables Lambda sets (AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION), and every alarm the group watches is
 * evaluated (namespace, metric, exact dimension set, statistic, threshold, missing data) over what CloudWatch would
 * hold for that minute: the EMF documents the handler printed, and the AWS/Lambda metrics Lambda publishes per
 * invocation through the alias (`Errors` only when the handler throws; `Duration`).
 */

type Handler = (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;
type Resource = { Type: string; Properties: Record<string, any> };

const ASSETS = join(__dirname, '..', '..', 'assets', 'api');
const TABLE = 'ons-rollback-ledger';
const CREDENTIALS = { accessKeyId: 'DYNALITE', secretAccessKey: 'DYNALITE' };
/** The physical names CloudFormation would give: what Lambda sets in the execution environment. */
const FUNCTION_NAME = 'Platform-prod-PlatformApiLedger-AbCdEf123456';
const NEW_VERSION = '8';
const OLD_VERSION = '7';
const ALIAS = 'live';

/** One value CloudWatch stores: metric identity and the value. */
interface Datapoint {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Record<string, string>;
  readonly value: number;
}

let resources: Record<string, Resource>;
let functionId: string;
let versionId: string;
/** The alarms the ledger function's deployment group watches, by logical id. */
let watched: Array<[string, Resource]>;
let dynamo: LocalServer;
let endpoint: string;
let scratch: string;

beforeAll(async () => {
  resources = platformStack(PlatformStage.PROD).template.toJSON().Resources;
  functionId = Object.keys(resources).find((id) => resources[id].Type === 'AWS::Lambda::Function' && /PlatformApiLedger[0-9A-F]{8}$/.test(id))!;
  const alias = Object.values(resources).find((r) => r.Type === 'AWS::Lambda::Alias' && r.Properties.FunctionName.Ref === functionId)!;
  versionId = alias.Properties.FunctionVersion['Fn::GetAtt'][0];
  const group = Object.values(resources).find((r) => r.Type === 'AWS::CodeDeploy::DeploymentGroup' && groupOfAlias(r, alias))!;
  watched = group.Properties.AlarmConfiguration.Alarms.map((a: { Name: { Ref: string } }) => [a.Name.Ref, resources[a.Name.Ref]]);

  scratch = mkdtempSync(join(tmpdir(), 'ons-rollback-'));
  dynamo = await startDynalite();
  endpoint = dynamo.endpoint;
  await createLedgerTable(new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: CREDENTIALS }), TABLE);
}, 120_000);

afterAll(async () => {
  restoreEnv();
  await dynamo.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** The deployment group the alias's UpdatePolicy names. */
function groupOfAlias(group: Resource, alias: Resource & { UpdatePolicy?: any }): boolean {
  const id = alias.UpdatePolicy.CodeDeployLambdaAliasUpdate.DeploymentGroupName.Ref;
  return resources[id] === group;
}

/** A template value as deployed: the function's name, the new version's number, the alias ARN's resource part. */
function deployed(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, any>;
  if (v.Ref === functionId) return FUNCTION_NAME;
  if (v['Fn::GetAtt']?.[0] === versionId && v['Fn::GetAtt'][1] === 'Version') return NEW_VERSION;
  if (v['Fn::Join']) return (v['Fn::Join'][1] as unknown[]).map(deployed).join(v['Fn::Join'][0]);
  throw new Error(`unexpected template value ${JSON.stringify(value)}`);
}

/** The ledger function's environment as CloudFormation sets it (the Powertools variables are literals), then the local endpoint. */
function environment(version: string, dynamoEndpoint: string): Record<string, string | undefined> {
  const variables = resources[functionId].Properties.Environment.Variables as Record<string, unknown>;
  const literal = Object.fromEntries(Object.entries(variables).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
  expect(literal[OperationsEnv.METRICS_NAMESPACE]).toBe('OnsDataPlatform/prod');
  return {
    ...literal,
    ...isolatedAwsEnv(scratch),
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint,
    AWS_MAX_ATTEMPTS: '1',
    [LedgerApiEnv.TABLE]: TABLE,
    [LedgerApiEnv.TIME_SERIES_DATASETS]: JSON.stringify(['carga_energia']),
    // What Lambda sets in every execution environment of a published version.
    AWS_LAMBDA_FUNCTION_NAME: FUNCTION_NAME,
    AWS_LAMBDA_FUNCTION_VERSION: version,
  };
}

function apiEvent(n: number): APIGatewayProxyEvent {
  return {
    resource: '/datasets',
    path: '/datasets',
    httpMethod: 'GET',
    headers: {},
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: { requestId: `req-${n}`, stage: 'prod', resourcePath: '/datasets', httpMethod: 'GET' } as APIGatewayProxyEvent['requestContext'],
  };
}

/** Runs `requests` requests through a fresh container of `version`: the answers and the datapoints of that minute. */
async function serve(version: string, dynamoEndpoint: string, requests: number): Promise<{ statuses: number[]; datapoints: Datapoint[] }> {
  const output = captureOutput();
  const statuses: number[] = [];
  const datapoints: Datapoint[] = [];
  try {
    const handler = loadHandler('ledger', environment(version, dynamoEndpoint), ASSETS) as Handler;
    for (let n = 0; n < requests; n++) {
      const started = Date.now();
      let threw = false;
      try {
        statuses.push((await handler(apiEvent(n))).statusCode);
      } catch {
        threw = true;
      }
      // What Lambda publishes for an invocation through the alias.
      const lambda = { FunctionName: FUNCTION_NAME, Resource: `${FUNCTION_NAME}:${ALIAS}`, ExecutedVersion: version };
      const sets: Array<Record<string, string>> = [
        { FunctionName: lambda.FunctionName },
        { FunctionName: lambda.FunctionName, Resource: lambda.Resource },
        { FunctionName: lambda.FunctionName, Resource: lambda.Resource, ExecutedVersion: lambda.ExecutedVersion },
      ];
      for (const dimensions of sets) {
        datapoints.push({ namespace: 'AWS/Lambda', metricName: 'Errors', dimensions, value: threw ? 1 : 0 });
        datapoints.push({ namespace: 'AWS/Lambda', metricName: 'Duration', dimensions, value: Date.now() - started });
      }
    }
  } finally {
    output.restore();
  }
  datapoints.push(...output.emf.flatMap(emfDatapoints));
  return { statuses, datapoints };
}

/** The datapoints CloudWatch extracts from one EMF document: each metric under each of its dimension sets. */
function emfDatapoints(doc: EmfDocument): Datapoint[] {
  return doc._aws.CloudWatchMetrics.flatMap((directive) => directive.Dimensions.flatMap((set) => directive.Metrics.map((m) => ({
    namespace: directive.Namespace,
    metricName: m.Name,
    dimensions: Object.fromEntries(set.map((d) => [d, String(doc[d])])),
    value: doc[m.Name] as number,
  }))));
}

/** An alarm's state after one period holding `datapoints` (its dimension set must match exactly, as CloudWatch's does). */
function evaluate(alarm: Resource, datapoints: Datapoint[]): 'ALARM' | 'OK' {
  const a = alarm.Properties;
  const wanted = Object.fromEntries((a.Dimensions as Array<{ Name: string; Value: unknown }>).map((d) => [d.Name, deployed(d.Value)]));
  const values = datapoints.filter((p) => p.namespace === deployed(a.Namespace) && p.metricName === a.MetricName
    && JSON.stringify(Object.entries(p.dimensions).sort()) === JSON.stringify(Object.entries(wanted).sort())).map((p) => p.value);
  expect(a).toMatchObject({ Period: 60, EvaluationPeriods: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
  if (values.length === 0) {
    expect(a.TreatMissingData).toBe('notBreaching');
    return 'OK';
  }
  let statistic: number;
  if (a.Statistic === 'Sum') statistic = values.reduce((x, y) => x + y, 0);
  else if (a.ExtendedStatistic === 'p99') statistic = [...values].sort((x, y) => x - y)[Math.ceil(0.99 * values.length) - 1];
  else throw new Error(`statistic ${a.Statistic ?? a.ExtendedStatistic} not evaluated here`);
  return statistic >= a.Threshold ? 'ALARM' : 'OK';
}

const states = (datapoints: Datapoint[]) => Object.fromEntries(watched.map(([id, alarm]) => [id.replace(/^.*PlatformApiLedger(.*)[0-9A-F]{8}$/, '$1'), evaluate(alarm, datapoints)]));

describe('the rollback alarms of an API function see the new version\'s server errors', () => {
  test('a new version that answers every request with a 5xx (DynamoDB unreachable) puts a rollback alarm in ALARM', async () => {
    const { statuses, datapoints } = await serve(NEW_VERSION, `http://127.0.0.1:${await closedPort()}`, 3);
    // The handler answers; Lambda sees no error.
    expect(statuses).toEqual([503, 503, 503]);
    expect(datapoints.filter((p) => p.metricName === 'Errors').every((p) => p.value === 0)).toBe(true);
    const result = states(datapoints);
    expect(Object.values(result)).toContain('ALARM');
    expect(result).toMatchObject({ DeploymentServerErrors: 'ALARM' });
  }, 60_000);

  test('a healthy new version leaves every rollback alarm OK', async () => {
    const { statuses, datapoints } = await serve(NEW_VERSION, endpoint, 3);
    expect(statuses).toEqual([200, 200, 200]);
    expect(Object.values(states(datapoints)).every((s) => s === 'OK')).toBe(true);
  }, 60_000);

  test('the old version\'s 5xx answers (90 % of a canary\'s traffic) do not roll the new version back', async () => {
    const { statuses, datapoints } = await serve(OLD_VERSION, `http://127.0.0.1:${await closedPort()}`, 3);
    expect(statuses).toEqual([503, 503, 503]);
    expect(Object.values(states(datapoints)).every((s) => s === 'OK')).toBe(true);
  }, 60_000);

  test('the group watches the alias\'s errors and latency and the new version\'s ServerErrors, at the stage\'s threshold', () => {
    const byMetric = Object.fromEntries(watched.map(([, a]) => [a.Properties.MetricName, a.Properties]));
    expect(Object.keys(byMetric).sort()).toEqual(['Duration', 'Errors', 'ServerErrors']);
    expect(byMetric.ServerErrors).toMatchObject({ Namespace: 'OnsDataPlatform/prod', Statistic: 'Sum', Threshold: 1, TreatMissingData: 'notBreaching' });
    expect(byMetric.ServerErrors.Dimensions).toEqual([
      { Name: 'FunctionName', Value: { Ref: functionId } },
      { Name: 'FunctionVersion', Value: { 'Fn::GetAtt': [versionId, 'Version'] } },
    ]);
  });
});
