import { App, Duration, Size, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { definitionOf } from './asl';
import { DataLake, IngestionLedger, IngestionPipeline, IngestionPipelineProps, PlatformStage, TimestreamStore } from '../../src';
import { ENV, platformStack } from '../helpers';

// asl-validator ships CommonJS without types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const aslValidator = require('asl-validator') as (definition: unknown) => { isValid: boolean; errors: unknown[]; errorsText: (sep?: string) => string };

function pipelineStack(props: Partial<IngestionPipelineProps> = {}, stage = PlatformStage.DEV) {
  const app = new App();
  const stack = new Stack(app, 'Pipeline', { env: ENV });
  const dataLake = new DataLake(stack, 'Lake', { stage });
  const pipeline = new IngestionPipeline(stack, 'Ingestion', { stage, dataLake, ...props });
  return { stack, pipeline, dataLake, template: Template.fromStack(stack) };
}

const { stack: defaultStack, template: defaultTemplate } = pipelineStack();

describe('trigger', () => {
  test('an EventBridge rule on Object Created events of the raw bucket starts the state machine, with a KMS dead-letter queue', () => {
    defaultTemplate.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        'source': ['aws.s3'],
        'detail-type': ['Object Created'],
        'detail': { bucket: { name: [{ Ref: Match.stringLikeRegexp('^LakeRawBucket') }] } },
      },
      Targets: [Match.objectLike({
        Arn: { Ref: Match.stringLikeRegexp('^IngestionStateMachine') },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^IngestionTriggerDeadLetterQueue'), 'Arn'] } },
        RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 },
      })],
    });
    defaultTemplate.hasResourceProperties('AWS::SQS::Queue', { KmsMasterKeyId: Match.anyValue() });
  });

  test.each([
    [{ keyPrefix: 'incoming/' }, [{ prefix: 'incoming/' }]],
    [{ keySuffixes: ['.csv', '.xlsx'] }, [{ suffix: { 'equals-ignore-case': '.csv' } }, { suffix: { 'equals-ignore-case': '.xlsx' } }]],
    [{ keyPrefix: 'in*/', keySuffixes: ['.csv'] }, [{ wildcard: 'in\\*/*.csv' }]],
  ])('key filter %j', (props, expected) => {
    pipelineStack(props).template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { detail: { object: { key: expected } } },
    });
  });

  test('empty filters are refused, naming the prop', () => {
    expect(() => pipelineStack({ keyPrefix: '' })).toThrow(/keyPrefix/);
    expect(() => pipelineStack({ keySuffixes: [] })).toThrow(/keySuffixes/);
  });
});

describe('state machines', () => {
  const ingestion = definitionOf(defaultStack, 'IngestionStateMachine');
  const backfill = definitionOf(defaultStack, 'IngestionBackfill');

  const reprocess = definitionOf(defaultStack, 'IngestionReprocess');

  test.each([['ingestion', ingestion], ['backfill', backfill], ['reprocess', reprocess]])('the %s definition passes asl-validator', (_name, definition) => {
    const result = aslValidator(definition);
    expect(result.errorsText('\n')).toBe('');
    expect(result.isValid).toBe(true);
  });

  test('asl-validator does catch a broken definition (the check above can fail)', () => {
    const broken = { ...ingestion, States: { ...ingestion.States, Done: undefined } };
    delete broken.States.Done;
    const result = aslValidator(broken);
    expect(result.isValid).toBe(false);
    expect(result.errorsText('\n')).toMatch(/Done/);
  });

  test('the route is state data, and every outcome has its own branch', () => {
    expect(ingestion.StartAt).toBe('Normalise');
    const decide = ingestion.States.Decide;
    expect(decide.Type).toBe('Choice');
    expect(decide.Choices.map((c: any) => [c.Variable, c.StringEquals, c.Next])).toEqual([
      ['$.route.action', 'process', 'ProcessFile'],
      ['$.route.action', 'document', 'CopyDocument'],
      ['$.route.action', 'quarantine', 'Quarantine'],
      ['$.route.action', 'processLarge', 'BatchJobInput'],
    ]);
    expect(ingestion.States.ProcessFile.Next).toBe('AlreadyProcessed?');
    expect(ingestion.States.LoadTimeSeries.Next).toBe('SyncKnowledgeBase');
    expect(ingestion.States.SyncKnowledgeBase.Next).toBe('Done');
    expect(ingestion.States.ProcessFileBatch.Resource).toBe('arn:aws:states:::batch:submitJob.sync');
  });

  test('every task retries with backoff and jitter and is caught into the quarantine', () => {
    const tasks = Object.entries<any>(ingestion.States).filter(([, s]) => s.Type === 'Task');
    expect(tasks.map(([n]) => n).sort()).toEqual(
      ['CopyDocument', 'NotifyFailure', 'NotifyQuarantined', 'ProcessFile', 'ProcessFileBatch', 'Quarantine', 'QuarantineFailure', 'ReadBatchResult', 'Route'],
    );
    for (const [name, state] of tasks) {
      expect({ name, retry: state.Retry?.length > 0 }).toEqual({ name, retry: true });
      for (const r of state.Retry.filter((x: any) => x.MaxAttempts !== 0)) {
        expect({ name, backoff: r.BackoffRate, jitter: r.JitterStrategy }).toEqual({ name, backoff: 2, jitter: 'FULL' });
      }
      if (!name.startsWith('Notify') && name !== 'QuarantineFailure') {
        expect({ name, catch: state.Catch?.[0]?.Next }).toEqual({ name, catch: `${name}Failed` });
        expect(ingestion.States[`${name}Failed`].Next).toBe('QuarantineFailure');
      }
    }
    // A refused file is not retried; everything else is.
    expect(ingestion.States.ProcessFile.Retry[0]).toEqual({ ErrorEquals: ['FileRefused'], MaxAttempts: 0 });
    expect(ingestion.States.ProcessFile.Retry[1].ErrorEquals).toEqual(['States.ALL']);
    expect(ingestion.States.QuarantineFailure.Next).toBe('NotifyFailure');
    expect(ingestion.States.NotifyFailure.Next).toBe('IngestionFailed');
  });

  test('backfill: a thin front that runs the reprocessing state machine with its input; its concurrency sets the reprocessing\'s', () => {
    const { stack } = pipelineStack({ backfillMaxConcurrency: 25 });
    const backfillStates = definitionOf(stack, 'IngestionBackfill').States;
    expect(backfillStates.Reprocess.Resource).toBe('arn:aws:states:::states:startExecution.sync:2');
    expect(backfillStates.Reprocess.Parameters['Input.$']).toBe('$');
    expect(backfillStates.Reprocess.Parameters.StateMachineArn).toMatch(/stateMachine:IngestionReprocess/);
    expect(definitionOf(stack, 'IngestionReprocess').States.ReprocessFiles.MaxConcurrency).toBe(25);
    expect(() => pipelineStack({ backfillMaxConcurrency: 0 })).toThrow(/backfillMaxConcurrency/);
  });

  test('the three state machines log everything to an encrypted log group and encrypt execution data with the platform key', () => {
    defaultTemplate.resourcePropertiesCountIs('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: true }),
      EncryptionConfiguration: Match.objectLike({ Type: 'CUSTOMER_MANAGED_KMS_KEY' }),
      StateMachineType: 'STANDARD',
    }, 3);
  });
});

describe('throttled loads (retryLater)', () => {
  function withStore(props: Partial<IngestionPipelineProps> = {}) {
    const stack = new Stack(new App(), 'Throttled', { env: { account: '123456789012', region: 'us-east-1' } });
    const dataLake = new DataLake(stack, 'Lake', { stage: PlatformStage.DEV });
    const ledger = new IngestionLedger(stack, 'Ledger', { stage: PlatformStage.DEV, encryptionKey: dataLake.encryptionKey });
    const store = new TimestreamStore(stack, 'TimeSeries', { stage: PlatformStage.DEV, dataLake, ledger });
    const pipeline = new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake, timeSeriesStore: store, ...props });
    return { stack, pipeline, ledger, definition: definitionOf(stack, 'IngestionStateMachine') };
  }
  const { stack, pipeline, ledger, definition } = withStore();

  test('the definition with a store passes asl-validator; TimeSeriesThrottled goes to the retry-later loop, which waits and loads again', () => {
    const result = aslValidator(definition);
    expect(result.errorsText('\n')).toBe('');
    const s = definition.States;
    expect(s.LoadTimeSeries.Catch[0]).toMatchObject({ ErrorEquals: ['TimeSeriesThrottled'], Next: 'LoadThrottled', ResultPath: '$.throttled' });
    expect(s.FirstRetryLater.Next).toBe('RetryLaterLeft?');
    expect(s.NextRetryLater.Next).toBe('RetryLaterLeft?');
    expect(s['RetryLaterLeft?'].Choices).toEqual([{ Variable: '$.retryLater.attempt', NumericGreaterThan: 15, Next: 'ThrottledTooLong' }]);
    expect(s['RetryLaterLeft?'].Default).toBe('RecordRetryLater');
    expect(s.RecordRetryLater).toMatchObject({ Resource: 'arn:aws:states:::aws-sdk:dynamodb:updateItem', Next: 'RetryLaterWait' });
    expect(s.RecordRetryLater.Catch[0].Next).toBe('RecordRetryLaterFailed');
    expect(s.RetryLaterWait).toMatchObject({ Type: 'Wait', SecondsPath: '$.retryLater.waitSeconds', Next: 'LoadTimeSeries' });
    expect(s.ThrottledTooLong.Next).toBe('LoadTimeSeriesFailed');
  });

  test('the default period is 12 hours (15 waits); the prop is validated and named', () => {
    expect(pipeline.throttledLoadRetryPeriod.toHours()).toBe(12);
    expect(withStore({ throttledLoadRetryPeriod: Duration.hours(1) }).definition.States['RetryLaterLeft?'].Choices[0].NumericGreaterThan).toBe(4);
    expect(() => withStore({ throttledLoadRetryPeriod: Duration.minutes(4) })).toThrow(/^throttledLoadRetryPeriod: expected 5 minutes to 7 days, got 4 minutes/);
    expect(() => withStore({ throttledLoadRetryPeriod: Duration.days(8) })).toThrow(/^throttledLoadRetryPeriod: expected 5 minutes to 7 days/);
    // Validated without a store too.
    expect(() => pipelineStack({ throttledLoadRetryPeriod: Duration.seconds(10) })).toThrow(/throttledLoadRetryPeriod/);
  });

  test('the state machine may read (the Batch result) and update ledger items of that table only, with the lake key', () => {
    const statements = Object.values<any>(Template.fromStack(stack).findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles).includes('IngestionStateMachineRole'))
      .flatMap((p) => p.Properties.PolicyDocument.Statement);
    const dynamo = statements.filter((st: any) => [st.Action].flat().some((a: string) => a.startsWith('dynamodb:')));
    expect(dynamo.map((st: any) => st.Action).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    for (const st of dynamo) expect(st.Resource).toEqual({ 'Fn::GetAtt': [stack.getLogicalId(ledger.table.node.defaultChild as any), 'Arn'] });
    expect(statements.some((st: any) => [st.Action].flat().includes('kms:GenerateDataKey'))).toBe(true);
  });
});

describe('the ingestion state machine and the lake key', () => {
  const keyStatements = (stack: Stack) => Object.values<any>(Template.fromStack(stack).findResources('AWS::IAM::Policy'))
    .filter((p) => JSON.stringify(p.Properties.Roles).includes('IngestionStateMachineRole'))
    .flatMap((p) => p.Properties.PolicyDocument.Statement)
    .filter((st: any) => [st.Action].flat().some((a: string) => a.startsWith('kms:')));

  test('without a knowledge base or a loader it may still publish to the encrypted topic and read the encrypted ledger, through SNS and DynamoDB only', () => {
    // NotifyQuarantined (SNS, topic under the lake key) and ReadBatchResult (ledger, lake key) run in every pipeline.
    const viaServices = keyStatements(defaultStack).filter((st: any) => st.Condition?.StringEquals?.['kms:ViaService']);
    expect(viaServices).toEqual([{
      Effect: 'Allow',
      Action: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'],
      Resource: { 'Fn::GetAtt': [expect.stringMatching(/^LakeKey/), 'Arn'] },
      Condition: { StringEquals: { 'kms:ViaService': [`sns.${ENV.region}.amazonaws.com`, `dynamodb.${ENV.region}.amazonaws.com`] } },
    }]);
    // Every other use of the key by the role is conditioned (its own execution data, its log group): none is open.
    for (const st of keyStatements(defaultStack)) expect(st.Condition).toBeDefined();
  });
});

describe('processor sizing', () => {
  test('defaults: 3008 MiB, 15 minutes, /tmp of three times the threshold plus 512 MiB', () => {
    defaultTemplate.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('file processor'),
      MemorySize: 3008,
      Timeout: 900,
      EphemeralStorage: { Size: 1280 },
      Environment: { Variables: Match.objectLike({ ONS_LAMBDA_MAX_BYTES: String(256 * 1024 * 1024) }) },
    });
  });

  test('the threshold and sizes are props, validated', () => {
    pipelineStack({ lambdaMaxFileSize: Size.gibibytes(1), processorMemorySize: 4096 }).template.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: 4096,
      EphemeralStorage: { Size: 3584 },
      Environment: { Variables: Match.objectLike({ ONS_LAMBDA_MAX_BYTES: String(1024 ** 3) }) },
    });
    expect(() => pipelineStack({ lambdaMaxFileSize: Size.gibibytes(4) })).toThrow(/lambdaMaxFileSize/);
    expect(() => pipelineStack({ processorMemorySize: 20000 })).toThrow(/processorMemorySize/);
    expect(() => pipelineStack({ tabularExtensions: ['csv'], documentExtensions: ['csv'] })).toThrow(/documentExtensions/);
    expect(() => pipelineStack({ tabularExtensions: ['c sv'] })).toThrow(/tabularExtensions/);
  });
});

describe('extensions', () => {
  const lists = (tabular: string, documents: string) => ({
    Variables: Match.objectLike({ ONS_TABULAR_EXTENSIONS: tabular, ONS_DOCUMENT_EXTENSIONS: documents }),
  });

  test('by default .txt is routed as a document, not as a table', () => {
    defaultTemplate.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('ingestion router'), Environment: lists('csv,xlsx,parquet', 'pdf,docx,md,txt,html,htm'),
    });
  });

  test('txt made tabular leaves the default document list; two lists given must not overlap', () => {
    pipelineStack({ tabularExtensions: ['csv', 'TXT'] }).template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('ingestion router'), Environment: lists('csv,txt', 'pdf,docx,md,html,htm'),
    });
    expect(() => pipelineStack({ tabularExtensions: ['csv', 'txt'], documentExtensions: ['txt'] })).toThrow(/documentExtensions: txt is also in tabularExtensions/);
  });
});

describe('XLSX expanded-size limit', () => {
  const env = (bytes: number) => ({ Variables: Match.objectLike({ ONS_XLSX_MAX_EXPANDED_BYTES: String(bytes) }) });

  test('default 2 GiB, set for the router, the processor and the Batch job', () => {
    for (const description of ['ingestion router', 'file processor']) {
      defaultTemplate.hasResourceProperties('AWS::Lambda::Function', { Description: Match.stringLikeRegexp(description), Environment: env(2 * 1024 ** 3) });
    }
    defaultTemplate.hasResourceProperties('AWS::Batch::JobDefinition', {
      ContainerProperties: Match.objectLike({
        Environment: Match.arrayWith([{ Name: 'ONS_XLSX_MAX_EXPANDED_BYTES', Value: String(2 * 1024 ** 3) }]),
      }),
    });
  });

  test('a prop, validated', () => {
    const template = pipelineStack({ maxXlsxExpandedSize: Size.gibibytes(8) }).template;
    template.hasResourceProperties('AWS::Lambda::Function', { Description: Match.stringLikeRegexp('ingestion router'), Environment: env(8 * 1024 ** 3) });
    template.hasResourceProperties('AWS::Lambda::Function', { Description: Match.stringLikeRegexp('file processor'), Environment: env(8 * 1024 ** 3) });
    expect(() => pipelineStack({ maxXlsxExpandedSize: Size.kibibytes(512) })).toThrow(/maxXlsxExpandedSize: expected at least 1 MiB/);
  });
});

describe('AWS Batch on Fargate for large files', () => {
  test('compute environment, queue and job definition; refused files (exit 2) are not retried', () => {
    defaultTemplate.hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      Type: 'managed',
      ComputeResources: Match.objectLike({ Type: 'FARGATE', MaxvCpus: 16 }),
    });
    defaultTemplate.resourceCountIs('AWS::Batch::JobQueue', 1);
    defaultTemplate.hasResourceProperties('AWS::Batch::JobDefinition', {
      PlatformCapabilities: ['FARGATE'],
      RetryStrategy: {
        Attempts: 3,
        EvaluateOnExit: [
          { Action: 'EXIT', OnExitCode: '2' },
          { Action: 'RETRY', OnExitCode: '*' },
          { Action: 'RETRY', OnReason: 'CannotPullContainerError:*' },
          { Action: 'RETRY', OnStatusReason: 'Host EC2*' },
        ],
      },
      ContainerProperties: Match.objectLike({
        EphemeralStorage: { SizeInGiB: 100 },
        // DEV's default network: public subnets, the job asks for its own public IP (test/ingestion/batch-deploy.test.ts).
        NetworkConfiguration: { AssignPublicIp: 'ENABLED' },
        Environment: Match.arrayWith([{ Name: 'ONS_STAGE', Value: 'dev' }]),
      }),
    });
  });

  test('DEV\'s default VPC costs nothing idle: no NAT, gateway endpoints for S3 and DynamoDB only, flow logs', () => {
    defaultTemplate.resourceCountIs('AWS::EC2::NatGateway', 0);
    defaultTemplate.resourceCountIs('AWS::EC2::VPCEndpoint', 2);
    defaultTemplate.resourceCountIs('AWS::EC2::FlowLog', 1);
  });

  test('the router is told the routes its state machine has (ONS_ROUTES), from the Decide branches, with and without Batch', () => {
    const off = pipelineStack({ largeFileProcessing: { enabled: false } });
    for (const [{ stack, template }, routes] of [[off, 'process,document,quarantine'], [{ stack: defaultStack, template: defaultTemplate }, 'process,document,quarantine,processLarge']] as const) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Description: Match.stringLikeRegexp('ingestion router'), Environment: { Variables: Match.objectLike({ ONS_ROUTES: routes }) },
      });
      const states = definitionOf(stack, 'IngestionStateMachine').States;
      expect(states.Decide.Choices.map((c: any) => c.StringEquals).join(',')).toBe(routes);
      // Any other action is quarantined and notified, never a bare Fail.
      expect(states.Decide.Default).toBe('UnknownRoute');
      expect(states.UnknownRoute).toMatchObject({ Type: 'Pass', Next: 'Quarantine' });
      // Only the router reads it.
      expect(Object.values<any>(template.findResources('AWS::Lambda::Function')).filter((f) => f.Properties.Environment?.Variables?.ONS_ROUTES)).toHaveLength(1);
    }
  });

  test('a given VPC is used; disabling removes every Batch resource', () => {
    const app = new App();
    const stack = new Stack(app, 'WithVpc', { env: ENV });
    const vpc = new ec2.Vpc(stack, 'MyVpc', { maxAzs: 2 });
    const dataLake = new DataLake(stack, 'Lake', { stage: PlatformStage.DEV });
    new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake, largeFileProcessing: { vpc } });
    Template.fromStack(stack).resourceCountIs('AWS::EC2::VPC', 1);

    const off = pipelineStack({ largeFileProcessing: { enabled: false } });
    off.template.resourceCountIs('AWS::Batch::JobDefinition', 0);
    off.template.resourceCountIs('AWS::EC2::VPC', 0);
    expect(JSON.stringify(definitionOf(off.stack, 'IngestionStateMachine'))).not.toContain('batch:submitJob');
    expect(() => pipelineStack({ largeFileProcessing: { cpu: 3 } })).toThrow(/largeFileProcessing.cpu/);
    expect(() => pipelineStack({ largeFileProcessing: { ephemeralStorage: Size.gibibytes(500) } })).toThrow(/ephemeralStorage/);
  });
});

describe('ledger', () => {
  test('on-demand, point-in-time recovery, the platform key, the three indexes, retained and protected by default', () => {
    defaultTemplate.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: Match.anyValue() },
        DeletionProtectionEnabled: true,
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
        GlobalSecondaryIndexes: ['byContentHash', 'byDataset', 'byStatus'].map((name) => Match.objectLike({ IndexName: name })),
      }),
    });
  });
});

describe('least privilege', () => {
  const policies = Object.values<any>(defaultTemplate.findResources('AWS::IAM::Policy'));
  const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement);

  test('no policy grants a `*` action', () => {
    for (const s of statements) {
      for (const action of [s.Action].flat()) expect(action).not.toMatch(/(^\*$|:\*$)/);
    }
  });

  test('the processor writes only under the processed, card and rejected prefixes', () => {
    const processor = Object.entries<any>(defaultTemplate.findResources('AWS::IAM::Policy'))
      .find(([id]) => id.startsWith('IngestionProcessorRole'))![1].Properties.PolicyDocument.Statement;
    const puts = processor.filter((s: any) => [s.Action].flat().includes('s3:PutObject'));
    const resources = JSON.stringify(puts.flatMap((s: any) => [s.Resource].flat()));
    expect(resources).toContain('/processed/*');
    expect(resources).toContain('/knowledge/cards/*');
    expect(resources).toContain('/rejected/*');
    expect(resources).not.toContain('/quarantine/*');
    expect(resources).not.toContain('/knowledge/documents/*');
  });

  test('the processor and the Batch job stage under staging/ (put, delete, and get as a copy source); no one else, and no listing', () => {
    const byRole = Object.entries<any>(defaultTemplate.findResources('AWS::IAM::Policy'))
      .map(([id, p]) => ({ id, document: p.Properties.PolicyDocument.Statement as any[] }));
    const on = (document: any[], action: string, path: string) =>
      document.filter((s) => [s.Action].flat().includes(action) && JSON.stringify(s.Resource).includes(path));
    const staging = byRole.filter((r) => on(r.document, 's3:PutObject', '/staging/*').length > 0).map((r) => r.id);
    expect(staging).toHaveLength(2);
    expect(staging.some((id) => id.startsWith('IngestionProcessorRole'))).toBe(true);
    expect(staging.some((id) => id.includes('JobRole'))).toBe(true);
    for (const id of staging) {
      const { document } = byRole.find((r) => r.id === id)!;
      expect(on(document, 's3:DeleteObject', '/staging/*')).toHaveLength(1);
      // CopyObject reads its source: GetObject on the staging prefix only, never on the processed data.
      const gets = document.filter((s) => [s.Action].flat().includes('s3:GetObject') && JSON.stringify(s.Resource).includes('ProcessedBucket'));
      expect(JSON.stringify(gets.map((s) => s.Resource))).toContain('/staging/*');
      expect(JSON.stringify(gets.map((s) => s.Resource))).not.toContain('/processed/*');
      const lists = document.filter((s) => [s.Action].flat().includes('s3:ListBucket') && JSON.stringify(s.Resource).includes('ProcessedBucket'));
      expect(lists).toEqual([]);
    }
  });
});

describe('OnsDataPlatform', () => {
  test('includes the pipeline, with ingestion options passed through', () => {
    const ingestion = { backfillMaxConcurrency: 5, largeFileProcessing: { enabled: false } };
    const { platform, template } = platformStack(PlatformStage.PROD, { props: { ingestion } });
    expect(platform.ingestion.stateMachine).toBeDefined();
    // The pipeline's four (ingestion, reprocessing, backfill, knowledge-base sync), and the knowledge base's sync after deployment.
    expect(Object.keys(template.findResources('AWS::StepFunctions::StateMachine')).filter((id) => id.startsWith('PlatformIngestion'))).toHaveLength(4);
    template.resourceCountIs('AWS::StepFunctions::StateMachine', 5);
    template.resourceCountIs('AWS::Batch::JobQueue', 0);
  });
});
