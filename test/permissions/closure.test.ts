/**
 * Permissions, proven: every declared AWS call of the platform's principals (src/ingestion/permissions.ts ...) is
 * evaluated with an IAM policy simulator against the synthesized identity, key, bucket, topic and queue policies.
 * A denied call fails (a deployed platform would fail there); so does a granted action no inventory uses.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ACCOUNT, REGION, SynthesizedPermissions, UnusedAllowed, concreteCalls, denials, simulate, staleAllowances, unusedGrants } from './simulator';
import { BatchNetwork, OnsDataPlatform, PlatformStage, IngestionPipeline, TimeSeriesEngine, KnowledgeBase, LakeStore, TimestreamStore, PlatformApi } from '../../src';
import { CallerInventory } from '../../src/core/permissions';
import { lakeAndLedger } from '../helpers';

/**
 * IIngestionLedger.grantRecord (public API) grants the set a recorder outside the platform may need; the platform's
 * handlers write with UpdateItem only and DynamoDB asks KMS for Decrypt only. Narrowing it is a public behaviour change.
 */
const GRANT_RECORD = 'IIngestionLedger.grantRecord bundle (public API)';
const grantRecordExtras = (...extra: string[]): Record<string, string> => Object.fromEntries(
  ['dynamodb:PutItem', 'kms:DescribeKey', 'kms:Encrypt', ...extra].map((a) => [a, GRANT_RECORD]));

/** InfluxDbStore.grantRead/grantWrite (public API) are Secret.grantRead of a token: CDK bundles DescribeSecret. */
const INFLUX_GRANT = 'InfluxDbStore.grantRead/grantWrite (public API): Secret.grantRead bundles DescribeSecret';

/**
 * Per caller (an inventory's name), granted actions that no call uses, each with why it stays. Keyed by caller so an
 * unused grant elsewhere is not hidden; an entry no configuration needs fails the test too. Narrow a grant instead.
 */
const UNUSED_ALLOWED: UnusedAllowed = {
  'ingestion router': grantRecordExtras('kms:GenerateDataKey'),
  'ingestion processor': grantRecordExtras(),
  'document copy': grantRecordExtras(),
  'quarantine': grantRecordExtras(),
  'large-file Batch job': grantRecordExtras(),
  'knowledge-base sync handler': grantRecordExtras('kms:GenerateDataKey'),
  'time-series loader (Timestream)': grantRecordExtras('dynamodb:Query'),
  'time-series loader (InfluxDB)': { ...grantRecordExtras('dynamodb:Query'), 'secretsmanager:DescribeSecret': INFLUX_GRANT },
  'time-series query (InfluxDB)': { 'secretsmanager:DescribeSecret': INFLUX_GRANT },
  // The bootstrap reads its three secrets with Secret.grantRead (CDK), which bundles DescribeSecret.
  'time-series InfluxDB bootstrap': { 'secretsmanager:DescribeSecret': 'Secret.grantRead (CDK) bundles it with GetSecretValue' },
  // The state machine's DynamoDB and SNS statement (CDK's CallAwsService/SnsPublish key grant) names Encrypt too.
  'ingestion state machine': { 'kms:Encrypt': 'the key grant of the state machine\'s DynamoDB/SNS statement names it' },
  // KnowledgeBase.grantQuery (public API) also serves streaming callers and inference-profile models.
  'knowledge-base query': {
    'bedrock:InvokeModelWithResponseStream': 'KnowledgeBase.grantQuery (public API): streaming callers',
    'bedrock:GetInferenceProfile': 'KnowledgeBase.grantQuery (public API): inference-profile models',
  },
  // IQueryableDataLake.grantQuery (public API) lets analysts read the workgroup's settings; the handler does not.
  'time-series query (Athena over the lake)': { 'athena:GetWorkGroup': 'IQueryableDataLake.grantQuery (public API)' },
};

/** Roles without an inventory, by logical id and trusted service, each with the reason: keep it shrinking. */
const NOT_YET_INVENTORIED: RegExp[] = [
  // Only an AWS managed policy (AWSCodeDeployRoleForLambdaLimited, AmazonAPIGatewayPushToCloudWatchLogs): nothing of
  // it is in the template for the simulator to evaluate.
  /DeploymentServiceRole[0-9A-F]{8} \("codedeploy/,
  /ApiCloudWatchRole[0-9A-F]{8} \("apigateway/,
  // Not yet inventoried: the ledger's backup role (its DynamoDB rights come from the AWS managed policy
  // AWSBackupServiceRolePolicyForBackup, outside the template; only CDK's inline KMS statement could be simulated).
  /BackupPlanTableRole[0-9A-F]{8} \("backup/,
];

interface Configuration {
  readonly stack: Stack;
  readonly perms: SynthesizedPermissions;
  readonly inventories: CallerInventory[];
}

function synth(build: (stack: Stack) => CallerInventory[]): Configuration {
  const app = new App();
  const stack = new Stack(app, 'Closure', { env: { account: ACCOUNT, region: REGION } });
  const inventories = build(stack);
  const template = Template.fromStack(stack).toJSON();
  return { stack, perms: new SynthesizedPermissions(stack, template), inventories };
}

const format = (d: { caller: string; principal: string; action: string; resource: string; missing: string }) =>
  `${d.caller} (${d.principal}): ${d.action} on ${d.resource} -> ${d.missing}`;

const CONFIGURATIONS: Array<[string, () => Configuration]> = [
  ['whole platform, lake engine, with knowledge base', () => synth((stack) => {
    const platform = new OnsDataPlatform(stack, 'Platform', { stage: PlatformStage.PROD, timeSeries: TimeSeriesEngine.lake() });
    return platform._permissionInventory();
  })],
  ['whole platform, Timestream for LiveAnalytics engine', () => synth((stack) => {
    const platform = new OnsDataPlatform(stack, 'Platform', { stage: PlatformStage.PROD, timeSeries: TimeSeriesEngine.timestreamLiveAnalytics() });
    return platform._permissionInventory();
  })],
  ['whole platform, Timestream for InfluxDB engine', () => synth((stack) => {
    const platform = new OnsDataPlatform(stack, 'Platform', { stage: PlatformStage.PROD, timeSeries: TimeSeriesEngine.timestreamInfluxDb() });
    return platform._permissionInventory();
  })],
  ['IngestionPipeline alone, without knowledge base', () => synth((stack) => {
    const { dataLake, ledger } = lakeAndLedger(stack, PlatformStage.DEV);
    return new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake, ledger })._permissionInventory();
  })],
  // The isolated Batch network pulls the default image through an ECR pull-through cache rule (execution role).
  ['IngestionPipeline alone, Batch in isolated subnets', () => synth((stack) => {
    const { dataLake, ledger } = lakeAndLedger(stack, PlatformStage.PROD);
    return new IngestionPipeline(stack, 'Ingestion', {
      stage: PlatformStage.PROD, dataLake, ledger, largeFileProcessing: { network: BatchNetwork.isolated() },
    })._permissionInventory();
  })],
  ['KnowledgeBase alone', () => synth((stack) => {
    const { dataLake } = lakeAndLedger(stack, PlatformStage.DEV);
    return new KnowledgeBase(stack, 'Knowledge', { stage: PlatformStage.DEV, dataLake })._permissionInventory();
  })],
  ['LakeStore alone', () => synth((stack) => {
    const { dataLake, ledger } = lakeAndLedger(stack, PlatformStage.DEV);
    return new LakeStore(stack, 'TimeSeries', { stage: PlatformStage.DEV, dataLake, ledger })._permissionInventory();
  })],
  ['TimestreamStore alone', () => synth((stack) => {
    const { dataLake, ledger } = lakeAndLedger(stack, PlatformStage.DEV);
    return new TimestreamStore(stack, 'TimeSeries', { stage: PlatformStage.DEV, dataLake, ledger })._permissionInventory();
  })],
  ['PlatformApi alone, with the ledger routes (over a LakeStore)', () => synth((stack) => {
    const { dataLake, ledger } = lakeAndLedger(stack, PlatformStage.DEV);
    const store = new LakeStore(stack, 'TimeSeries', { stage: PlatformStage.DEV, dataLake, ledger });
    const api = new PlatformApi(stack, 'Api', {
      stage: PlatformStage.DEV,
      encryptionKey: dataLake.encryptionKey,
      healthFunction: store.queryFunction,
      timeSeriesQueryFunction: store.queryFunction,
      ledger,
      timeSeriesDatasets: store.datasetIds,
    });
    return [...store._permissionInventory(), ...api._permissionInventory()];
  })],
];

describe.each(CONFIGURATIONS)('%s', (_name, make) => {
  let config: Configuration;
  beforeAll(() => { config = make(); });

  test('every inventoried call is allowed', async () => {
    expect((await denials(config.perms, config.inventories)).map(format)).toEqual([]);
  });

  test('every granted action is used by an inventoried call (or allowlisted with a reason)', () => {
    expect(unusedGrants(config.perms, config.inventories, UNUSED_ALLOWED)).toEqual([]);
  });

  test('a service principal\'s call bound to this account is denied when it comes from another account', async () => {
    // Each declared call with aws:SourceAccount, made again for the same resource by another account's source (its
    // account and SourceArn changed): some step of it (the resource's policy or the key's) must deny it.
    const other = '222222222222';
    const allowedFromElsewhere: string[] = [];
    for (const inv of config.inventories.filter((i) => typeof i.principal === 'string')) {
      for (const declared of inv.calls.filter((c) => c.context?.['aws:SourceAccount'] !== undefined)) {
        const steps = concreteCalls(config.perms, [declared]).map((c) => ({
          ...c,
          context: {
            ...c.context,
            ...(c.context['aws:SourceAccount'] ? { 'aws:SourceAccount': other } : {}),
            ...(c.context['aws:SourceArn'] ? { 'aws:SourceArn': String(c.context['aws:SourceArn']).replace(`:${ACCOUNT}:`, `:${other}:`) } : {}),
          },
        }));
        const results = await Promise.all(steps.map((c) => simulate(config.perms, inv.principal as string, c)));
        if (results.every((r) => r === undefined)) allowedFromElsewhere.push(`${inv.name}: ${steps[0].action} on ${steps[0].resource}`);
      }
    }
    expect(allowedFromElsewhere).toEqual([]);
  });
});

test('the whole platform inventories the calls of EventBridge, CloudWatch, CloudWatch Logs and Budgets', () => {
  const config = synth((stack) => new OnsDataPlatform(stack, 'Platform', {
    stage: PlatformStage.PROD, timeSeries: TimeSeriesEngine.lake(), monitoring: { monthlyBudgetUsd: 100 },
  })._permissionInventory());
  const services = config.inventories.filter((i) => typeof i.principal === 'string').map((i) => `${i.principal}: ${i.name.replace(/ rule .*/, ' rule')}`);
  expect([...new Set(services)].sort()).toEqual([
    'budgets.amazonaws.com: AWS Budgets, to the critical topic',
    'cloudwatch.amazonaws.com: CloudWatch alarms, to the alarm topics',
    'events.amazonaws.com: EventBridge, dead letters of notification rule',
    'events.amazonaws.com: EventBridge, notification rule',
    'events.amazonaws.com: EventBridge, to the ingestion trigger dead-letter queue',
    'events.amazonaws.com: EventBridge, to the knowledge-base sync dead-letter queue',
    'events.amazonaws.com: EventBridge, to the sweep dead-letter queue',
    `logs.${REGION}.amazonaws.com: CloudWatch Logs, encrypting the log groups with the key`,
  ]);
});

test.each(CONFIGURATIONS)('%s: every role of the template has an inventory, or is listed as not yet inventoried', (_name, make) => {
  const config = make();
  const inventoried = new Set(config.inventories.flatMap((i) => typeof i.principal === 'string' ? [] : [config.perms.roleLogicalIdOf(i.principal.roleArn)]));
  const template = Template.fromStack(config.stack).toJSON();
  const missing = config.perms.roleIds().filter((id) => !inventoried.has(id))
    .map((id) => `${id} (${JSON.stringify(template.Resources[id].Properties.AssumeRolePolicyDocument.Statement[0].Principal.Service)})`)
    .filter((role) => !NOT_YET_INVENTORIED.some((pattern) => pattern.test(role)));
  expect(missing).toEqual([]);
});

test('every allowlist entry is needed by some configuration', () => {
  const configs = CONFIGURATIONS.map(([, make]) => make());
  const neededSomewhere = (entry: string) => configs.some((c) => !staleAllowances(c.perms, c.inventories, UNUSED_ALLOWED).includes(entry)
    && c.inventories.some((i) => entry.startsWith(`${i.name}: `)));
  const entries = Object.entries(UNUSED_ALLOWED).flatMap(([caller, actions]) => Object.keys(actions).map((a) => `${caller}: ${a}`));
  expect(entries.filter((e) => !neededSomewhere(e))).toEqual([]);
});

describe('the simulator denies what the policies do not allow', () => {
  let config: Configuration;
  let machine: ReturnType<SynthesizedPermissions['principal']>;
  let key: string;
  beforeAll(() => {
    const built: { pipeline?: IngestionPipeline } = {};
    config = synth((stack) => {
      const { dataLake, ledger } = lakeAndLedger(stack, PlatformStage.DEV);
      built.pipeline = new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake, ledger });
      return [];
    });
    machine = config.perms.principal(config.perms.roleLogicalIdOf(built.pipeline!.stateMachine.role.roleArn));
    key = dataKeyOf(config);
  });

  test("the state machine's kms:Decrypt works through SNS and DynamoDB only, not called directly", async () => {
    const decrypt = (context: Record<string, string>) => simulate(config.perms, machine, { action: 'kms:Decrypt', resource: key, context });
    expect(await decrypt({ 'kms:ViaService': `sns.${REGION}.amazonaws.com` })).toBeUndefined();
    expect(await decrypt({ 'kms:ViaService': `dynamodb.${REGION}.amazonaws.com` })).toBeUndefined();
    expect(await decrypt({})).toMatch(/^ImplicitlyDenied: identity policy/);
    expect(await decrypt({ 'kms:ViaService': `s3.${REGION}.amazonaws.com` })).toMatch(/^ImplicitlyDenied/);
  });

  test('a call on another bucket is denied, and the message names the missing policy', async () => {
    const denied = await simulate(config.perms, machine, { action: 's3:GetObject', resource: 'arn:aws:s3:::someone-else/x', context: {} });
    expect(denied).toBe('ImplicitlyDenied: identity policy (ImplicitlyDenied)');
  });
});

describe("a function role's kms:Decrypt works only through its services and for its environment", () => {
  let config: Configuration;
  let role: ReturnType<SynthesizedPermissions['principal']>;
  let key: string;
  beforeAll(() => {
    const built: { api?: PlatformApi } = {};
    config = synth((stack) => {
      const { dataLake, ledger } = lakeAndLedger(stack, PlatformStage.DEV);
      const store = new LakeStore(stack, 'TimeSeries', { stage: PlatformStage.DEV, dataLake, ledger });
      built.api = new PlatformApi(stack, 'Api', {
        stage: PlatformStage.DEV,
        encryptionKey: dataLake.encryptionKey,
        healthFunction: store.queryFunction,
        ledger,
        timeSeriesDatasets: store.datasetIds,
      });
      return [];
    });
    role = config.perms.principal(config.perms.roleLogicalIdOf(built.api!.ledgerFunction!.role!.roleArn));
    key = dataKeyOf(config);
  });
  const decrypt = (context: Record<string, string>) => simulate(config.perms, role, { action: 'kms:Decrypt', resource: key, context });

  test('through DynamoDB (the ledger) and for a Lambda environment: allowed', async () => {
    expect(await decrypt({ 'kms:ViaService': `dynamodb.${REGION}.amazonaws.com` })).toBeUndefined();
    expect(await decrypt({ 'kms:EncryptionContext:aws:lambda:FunctionArn': `arn:aws:lambda:${REGION}:${ACCOUNT}:function:f` })).toBeUndefined();
  });

  test('called directly, or through S3 (the lake\'s objects): denied', async () => {
    expect(await decrypt({})).toMatch(/^ImplicitlyDenied: identity policy/);
    expect(await decrypt({ 'kms:ViaService': `s3.${REGION}.amazonaws.com`, 'kms:EncryptionContext:aws:s3:arn': 'arn:aws:s3:::lakerawbucket' })).toMatch(/^ImplicitlyDenied/);
  });
});

/** The lake key's ARN in a synthesized configuration (its only KMS key). */
function dataKeyOf(config: Configuration): string {
  const keys = Object.entries(Template.fromStack(config.stack).findResources('AWS::KMS::Key'));
  expect(keys).toHaveLength(1);
  return config.perms.resolver.getAtt(keys[0][0], 'Arn');
}
