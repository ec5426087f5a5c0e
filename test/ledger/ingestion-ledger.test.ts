import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import { IngestionLedger, IngestionPipeline, KnowledgeBase, PlatformStage, TimestreamStore } from '../../src';
import { ENV, lakeAndLedger } from '../helpers';

const TABLE_ARN = 'arn:aws:dynamodb:us-east-1:123456789012:table/shared-ledger';
const KB_ARN = 'arn:aws:bedrock:us-east-1:123456789012:knowledge-base/KB12345678';

/** Every IAM statement of the stack, flattened. */
function statements(stack: Stack): Array<{ Action: string | string[]; Resource: unknown }> {
  return Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}

test('a pipeline records in an imported ledger and syncs an imported knowledge base: no table made, grants on their ARNs', () => {
  const stack = new Stack(new App(), 'Imported', { env: ENV });
  const { dataLake } = lakeAndLedger(stack, PlatformStage.DEV);
  const key = kms.Key.fromKeyArn(stack, 'SharedKey', 'arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555');
  const ledger = IngestionLedger.fromLedgerAttributes(stack, 'SharedLedger', { tableArn: TABLE_ARN, encryptionKey: key });
  const knowledgeBase = KnowledgeBase.fromKnowledgeBaseAttributes(stack, 'SharedKnowledge', {
    knowledgeBaseArn: KB_ARN, documentsDataSourceId: 'DOCS123456', cardsDataSourceId: 'CARDS12345',
  });
  expect(knowledgeBase.knowledgeBaseId).toBe('KB12345678');
  const pipeline = new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake, ledger, knowledgeBase });
  expect(pipeline.ledger).toBe(ledger);

  const template = Template.fromStack(stack);
  // lakeAndLedger made one ledger table; the pipeline made none of its own.
  template.resourceCountIs('AWS::DynamoDB::Table', 1);
  const all = statements(stack);
  const on = (action: string) => all.filter((s) => [s.Action].flat().includes(action)).map((s) => JSON.stringify(s.Resource));
  expect(on('dynamodb:PutItem').every((r) => r.includes(TABLE_ARN))).toBe(true);
  expect(on('dynamodb:PutItem').length).toBeGreaterThan(0);
  expect(on('bedrock:StartIngestionJob')).toEqual(expect.arrayContaining([JSON.stringify(KB_ARN)]));
});

test('a knowledge base ARN without an id is refused, naming the attribute', () => {
  const stack = new Stack(new App(), 'Bad', { env: ENV });
  expect(() => KnowledgeBase.fromKnowledgeBaseAttributes(stack, 'Kb', {
    knowledgeBaseArn: 'arn:aws:bedrock:us-east-1:123456789012:knowledge-base', documentsDataSourceId: 'D', cardsDataSourceId: 'C',
  })).toThrow(/knowledgeBaseArn/);
});

test('the pipeline takes the store\'s ledger, and refuses a second one', () => {
  const stack = new Stack(new App(), 'Two', { env: ENV });
  const { dataLake, ledger } = lakeAndLedger(stack, PlatformStage.DEV);
  const timeSeriesStore = new TimestreamStore(stack, 'TimeSeries', { stage: PlatformStage.DEV, dataLake, ledger });
  expect(new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake, timeSeriesStore }).ledger).toBe(ledger);
  const other = new IngestionLedger(stack, 'Other', { stage: PlatformStage.DEV, encryptionKey: dataLake.encryptionKey });
  expect(() => new IngestionPipeline(stack, 'Second', { stage: PlatformStage.DEV, dataLake, timeSeriesStore, ledger: other }))
    .toThrow(/ledger: the time-series store records its loads in another ledger/);
});

describe('backup', () => {
  function ledgerTemplate(stage: PlatformStage, backup?: boolean) {
    const stack = new Stack(new App(), 'Backup', { env: ENV });
    const key = new kms.Key(stack, 'Key');
    const ledger = new IngestionLedger(stack, 'Ledger', { stage, encryptionKey: key, backup });
    return { stack, key, ledger, template: Template.fromStack(stack) };
  }

  test('prod: the table is in a daily and monthly backup plan whose vault is encrypted with the ledger key', () => {
    const { stack, key, ledger, template } = ledgerTemplate(PlatformStage.PROD);
    expect(ledger.backupPlan).toBeDefined();
    template.hasResourceProperties('AWS::Backup::BackupVault', { EncryptionKeyArn: stack.resolve(key.keyArn) });
    const [plan] = Object.values(template.findResources('AWS::Backup::BackupPlan'));
    const retention = plan.Properties.BackupPlan.BackupPlanRule.map((r: any) => r.Lifecycle.DeleteAfterDays).sort((a: number, b: number) => a - b);
    expect(retention).toEqual([35, 365]);
    const [selection] = Object.values(template.findResources('AWS::Backup::BackupSelection'));
    const tableId = Object.keys(template.findResources('AWS::DynamoDB::Table'))[0];
    expect(JSON.stringify(selection.Properties.BackupSelection.Resources)).toContain(tableId);
  });

  test.each([
    ['dev', PlatformStage.DEV, undefined, 0], ['staging', PlatformStage.STAGING, undefined, 0],
    ['dev', PlatformStage.DEV, true, 1], ['prod', PlatformStage.PROD, false, 0],
  ] as const)('%s, backup %p: %p plans', (_name, stage, backup, plans) => {
    const { ledger, template } = ledgerTemplate(stage, backup);
    template.resourceCountIs('AWS::Backup::BackupPlan', plans);
    expect(ledger.backupPlan !== undefined).toBe(plans === 1);
  });
});
