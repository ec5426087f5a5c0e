/**
 * The AWS calls of the ingestion pipeline's principals, for the permission-closure test
 * (test/permissions/closure.test.ts). Keep it in step with the handlers (runtime/*.ts) and the state machine tasks
 * (pipeline.ts): a call added there goes here, or the test fails on the grant that no inventory uses.
 * Not exported from src/index.ts.
 * @module
 */
import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { AwsCall, CallerInventory, functionRuntimeCalls, machineName, machineRuntimeCalls, machineTracing, runChild, startEncrypted } from '../core/permissions';
import { IDataLake } from '../lake/data-lake';
import { IIngestionLedger } from '../ledger/ingestion-ledger';

/** What the inventory needs of the pipeline (its private parts included). @internal */
export interface IngestionParts {
  readonly lake: IDataLake;
  readonly key: kms.IKey;
  readonly ledger: IIngestionLedger;
  readonly topicArn: string;
  readonly router: lambda.Function;
  /** The router reads the feature flags when the platform binds them. */
  readonly routerFlagReads: AwsCall[];
  readonly processor: lambda.Function;
  readonly copyDocument: lambda.Function;
  readonly quarantine: lambda.Function;
  /** The function or alias the state machine invokes, per function. */
  readonly invokeArn: (fn: lambda.Function) => string;
  readonly stateMachine: sfn.StateMachine;
  readonly batch?: { readonly jobRole: iam.IRole; readonly jobQueueArn: string; readonly jobDefinitionArn: string; readonly codeObjectArn: string };
  readonly knowledgeSyncStateMachineArn?: string;
  readonly timeSeriesLoaderArn?: string;
}

/** Ledger calls on the table (and its indexes for Query), through the table's key. */
function ledgerCalls(p: IngestionParts, actions: string[]): AwsCall[] {
  const table = p.ledger.table.tableArn;
  return actions.map((a) => ({ action: `dynamodb:${a}`, resource: table, kmsKey: p.key.keyArn }));
}

/** The ingestion pipeline's principals and their calls. @internal */
export function ingestionCalls(p: IngestionParts): CallerInventory[] {
  const { lake } = p;
  const raw = lake.rawBucket.arnForObjects('uploads/file.csv');
  const readRaw = (extra: string[] = []): AwsCall[] => [
    ...['s3:GetObject', 's3:GetObjectVersion'].map((action) => ({ action, resource: raw, kmsKey: p.key.keyArn })),
    // Tags are not encrypted: no KMS call.
    ...extra.map((action) => ({ action, resource: raw })),
    // HeadObject of a missing key: ListBucket turns S3's 403 into a 404 (see grantReadRaw).
    { action: 's3:ListBucket', resource: lake.rawBucket.bucketArn },
  ];
  const write = (bucketArn: string, prefix: string, extra: string[] = []): AwsCall[] => [
    { action: 's3:PutObject', resource: `${bucketArn}/${prefix}x`, kmsKey: p.key.keyArn },
    ...['s3:AbortMultipartUpload', 's3:DeleteObject', ...extra].map((action) => ({ action, resource: `${bucketArn}/${prefix}x` })),
  ];
  const processCalls: AwsCall[] = [
    ...readRaw(),
    ...write(lake.processedBucket.bucketArn, lake.processedDataPrefix),
    ...write(lake.processedBucket.bucketArn, lake.dataCardsPrefix),
    ...write(lake.processedBucket.bucketArn, lake.stagingPrefix),
    ...write(lake.failedBucket.bucketArn, lake.rejectedRowsPrefix),
    // CopyObject from staging to the final names reads the staged object.
    { action: 's3:GetObject', resource: lake.processedBucket.arnForObjects(`${lake.stagingPrefix}x`), kmsKey: p.key.keyArn },
    ...ledgerCalls(p, ['GetItem', 'UpdateItem', 'Query']),
  ];
  const fn = (name: string, f: lambda.Function, calls: AwsCall[]): CallerInventory => ({
    name, principal: f.role as iam.IRole, calls: [...functionRuntimeCalls(f), ...calls],
  });
  const region = Stack.of(p.stateMachine).region;
  const account = Stack.of(p.stateMachine).account;
  const machineLogs = `arn:aws:logs:${region}:${account}:*`;
  const inventories: CallerInventory[] = [
    fn('ingestion router', p.router, [...readRaw(), ...p.routerFlagReads, ...ledgerCalls(p, ['GetItem', 'UpdateItem', 'Query'])]),
    fn('ingestion processor', p.processor, processCalls),
    fn('document copy', p.copyDocument, [
      ...readRaw(['s3:GetObjectTagging', 's3:GetObjectVersionTagging']),
      ...write(lake.processedBucket.bucketArn, lake.documentsPrefix, ['s3:PutObjectTagging']),
      ...ledgerCalls(p, ['GetItem', 'UpdateItem', 'Query']),
    ]),
    fn('quarantine', p.quarantine, [
      ...readRaw(['s3:GetObjectTagging', 's3:GetObjectVersionTagging']),
      ...write(lake.failedBucket.bucketArn, lake.quarantinePrefix, ['s3:PutObjectTagging']),
      ...ledgerCalls(p, ['GetItem', 'UpdateItem', 'Query']),
    ]),
    {
      name: 'ingestion state machine',
      principal: p.stateMachine.role,
      calls: [
        ...[p.router, p.processor, p.copyDocument, p.quarantine].map((f) => ({ action: 'lambda:InvokeFunction', resource: p.invokeArn(f) })),
        ...(p.timeSeriesLoaderArn ? [{ action: 'lambda:InvokeFunction', resource: p.timeSeriesLoaderArn }] : []),
        { action: 'sns:Publish', resource: p.topicArn, kmsKey: p.key.keyArn },
        // ReadBatchResult (GetItem), RequestSync (PutItem), CountSyncRequest and RecordRetryLater (UpdateItem).
        ...ledgerCalls(p, [
          ...(p.batch ? ['GetItem'] : []),
          ...(p.knowledgeSyncStateMachineArn ? ['PutItem'] : []),
          ...(p.knowledgeSyncStateMachineArn || p.timeSeriesLoaderArn ? ['UpdateItem'] : []),
        ]),
        ...(p.batch ? [
          { action: 'batch:SubmitJob', resource: p.batch.jobQueueArn },
          { action: 'batch:SubmitJob', resource: p.batch.jobDefinitionArn },
          // The .sync integration manages its own rule to hear of the job's end.
          ...['events:PutTargets', 'events:PutRule', 'events:DescribeRule'].map((action) => ({
            action, resource: `arn:aws:events:${region}:${account}:rule/StepFunctionsGetEventsForBatchJobsRule`,
          })),
        ] : []),
        ...(p.knowledgeSyncStateMachineArn ? [{ action: 'states:StartExecution', resource: p.knowledgeSyncStateMachineArn }] : []),
        // Its own execution data, encrypted with the lake key (context: the state machine ARN).
        ...['kms:Decrypt', 'kms:GenerateDataKey'].map((action) => ({
          action,
          resource: p.key.keyArn,
          context: { 'kms:EncryptionContext:aws:states:stateMachineArn': p.stateMachine.stateMachineArn },
        })),
        ...(machineTracing(p.stateMachine) ? [
          'xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets',
        ].map((action) => ({ action, resource: '*' })) : []),
        // Vended log delivery to its KMS-encrypted log group.
        { action: 'kms:GenerateDataKey', resource: p.key.keyArn, context: { 'kms:EncryptionContext:SourceArn': machineLogs } },
        ...['logs:CreateLogDelivery', 'logs:GetLogDelivery', 'logs:UpdateLogDelivery', 'logs:DeleteLogDelivery', 'logs:ListLogDeliveries',
          'logs:PutResourcePolicy', 'logs:DescribeResourcePolicies', 'logs:DescribeLogGroups'].map((action) => ({ action, resource: '*' })),
      ],
    },
  ];
  if (p.batch) {
    // The job's bootstrap downloads its code asset (the CDK bootstrap bucket: SSE-S3, no KMS call).
    inventories.push({ name: 'large-file Batch job', principal: p.batch.jobRole, calls: [...processCalls, { action: 's3:GetObject', resource: p.batch.codeObjectArn }] });
  }
  return inventories;
}

/** What the reprocessing and backfill inventory needs. @internal */
export interface ReprocessParts {
  readonly lake: IDataLake;
  readonly key: kms.IKey;
  readonly ledger: IIngestionLedger;
  readonly select: lambda.Function;
  readonly file: lambda.Function;
  readonly report: lambda.Function;
  /** The processed bucket's objects of the runs (manifests, outcomes, reports). */
  readonly runObjectsPrefix: string;
  readonly reprocess: sfn.StateMachine;
  readonly backfill: sfn.StateMachine;
  readonly ingestion: sfn.StateMachine;
  /** The EventBridge rule's role that starts an ingestion per upload. */
  readonly triggerRole: iam.IRole;
}

/** Reprocessing (select, restore, ingest again, report), backfill, and the upload trigger. @internal */
export function reprocessCalls(p: ReprocessParts): CallerInventory[] {
  const { lake, key } = p;
  const runs = p.lake.processedBucket.arnForObjects(`${p.runObjectsPrefix}run-1/manifest.jsonl`);
  const raw = lake.rawBucket.arnForObjects('uploads/file.csv');
  const table = p.ledger.table.tableArn;
  const fn = (name: string, f: lambda.Function, calls: AwsCall[]): CallerInventory => ({
    name, principal: f.role as iam.IRole, calls: [...functionRuntimeCalls(f), ...calls],
  });
  const { region, account } = Stack.of(p.reprocess);
  const reprocessName = machineName(p.reprocess.stateMachineArn);
  return [
    fn('reprocessing selection', p.select, [
      { action: 'dynamodb:Query', resource: `${table}/index/status`, kmsKey: key.keyArn },
      { action: 's3:ListBucket', resource: lake.rawBucket.bucketArn },
      { action: 's3:PutObject', resource: runs, kmsKey: key.keyArn },
    ]),
    fn('reprocessing of one file', p.file, [
      { action: 's3:GetObject', resource: raw, kmsKey: key.keyArn },
      { action: 's3:GetObjectVersion', resource: raw, kmsKey: key.keyArn },
      { action: 's3:ListBucket', resource: lake.rawBucket.bucketArn },
      { action: 's3:RestoreObject', resource: raw },
      { action: 'dynamodb:GetItem', resource: table, kmsKey: key.keyArn },
      { action: 's3:PutObject', resource: runs, kmsKey: key.keyArn },
    ]),
    fn('reprocessing report', p.report, [
      ...['s3:GetObject', 's3:PutObject'].map((action) => ({ action, resource: runs, kmsKey: key.keyArn })),
      { action: 's3:DeleteObject', resource: runs },
    ]),
    {
      name: 'reprocessing state machine',
      principal: p.reprocess.role,
      calls: [
        ...[p.select, p.file, p.report].map((f) => ({ action: 'lambda:InvokeFunction', resource: f.functionArn })),
        // The Distributed Maps read the manifest and run their iterations as child executions of this machine.
        { action: 's3:GetObject', resource: runs, kmsKey: key.keyArn },
        { action: 'states:StartExecution', resource: p.reprocess.stateMachineArn },
        ...['states:DescribeExecution', 'states:StopExecution'].map((action) => ({
          action, resource: `arn:aws:states:${region}:${account}:execution:${reprocessName}:run-1`,
        })),
        { action: 'states:RedriveExecution', resource: `arn:aws:states:${region}:${account}:execution:${reprocessName}/map-1:run-1` },
        ...startEncrypted(p.ingestion, key),
        ...runChild(p.ingestion),
        ...machineRuntimeCalls(p.reprocess, key),
      ],
    },
    {
      name: 'backfill state machine',
      principal: p.backfill.role,
      calls: [...startEncrypted(p.reprocess, key), ...runChild(p.reprocess), ...machineRuntimeCalls(p.backfill, key)],
    },
    { name: 'upload trigger (EventBridge target role)', principal: p.triggerRole, calls: startEncrypted(p.ingestion, key) },
  ];
}
