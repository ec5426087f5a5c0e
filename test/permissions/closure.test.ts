/**
 * Permissions, proven: every declared AWS call of the platform's principals (src/ingestion/permissions.ts ...) is
 * evaluated with an IAM policy simulator against the synthesized identity, key, bucket, topic and queue policies.
 * A denied call fails (a deployed platform would fail there); so does a granted action no inventory uses.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ACCOUNT, REGION, SynthesizedPermissions, denials, unusedGrants } from './simulator';
import { OnsDataPlatform, PlatformStage, IngestionPipeline, TimeSeriesEngine } from '../../src';
import { CallerInventory } from '../../src/core/permissions';
import { lakeAndLedger } from '../helpers';

/**
 * Granted actions that no inventory needs to use, each with why it stays. Keep it short: narrow a grant instead.
 */
const UNUSED_ALLOWED: Record<string, string> = {
  // IIngestionLedger.grantRecord (public API) grants the set a recorder outside the platform may need; the platform's
  // handlers write with UpdateItem only, and DynamoDB asks KMS for Decrypt only. Narrowing it is a public behaviour change.
  'dynamodb:PutItem': 'IIngestionLedger.grantRecord bundle (public API)',
  'kms:DescribeKey': 'IIngestionLedger.grantRecord bundle (public API)',
  'kms:GenerateDataKey': 'IIngestionLedger.grantRecord bundle (public API): the router writes no S3 object',
  'kms:Encrypt': 'IIngestionLedger.grantRecord bundle (public API); the state machine statement names it for DynamoDB/SNS',
};

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
    return platform.ingestion._permissionInventory();
  })],
  ['IngestionPipeline alone, without knowledge base', () => synth((stack) => {
    const { dataLake, ledger } = lakeAndLedger(stack, PlatformStage.DEV);
    return new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake, ledger })._permissionInventory();
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
});
