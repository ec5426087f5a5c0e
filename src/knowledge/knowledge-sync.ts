import { Duration, Names, Stack, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { KnowledgeSync, KnowledgeSyncEnv } from './contract';
import { IKnowledgeBase } from './knowledge-base-ref';
import { SyncFunction } from './sync-function';
import { retryWhileIngestionJobRuns } from './sync-retry';
import { allowOwnExecutionData, applyPlatformTags, createEventDeadLetterQueue, createPlatformFunction, eventDeadLetterInventory } from '../core/defaults';
import { acknowledgeScopedWildcards } from '../core/nag';
import { AwsCall, CallerInventory, functionRuntimeCalls, machineRuntimeCalls, startEncrypted } from '../core/permissions';
import { applyDataRemovalPolicy } from '../core/removal';
import { PlatformStage } from '../core/stage';
import { KnowledgeSyncSchema, LedgerEnv } from '../ledger/contract';
import { IIngestionLedger } from '../ledger/ingestion-ledger';
import { MetricServices } from '../runtime/contract';

/**
 * Properties of `KnowledgeBaseSync`.
 */
export interface KnowledgeBaseSyncProps {
  /** The stage (log retention, tracing, removal policy). */
  readonly stage: PlatformStage;
  /** The knowledge base whose data sources are synchronised. */
  readonly knowledgeBase: IKnowledgeBase;
  /** The ledger that holds the requests and the lease, and where each job's outcome is written on the files it covered. */
  readonly ledger: IIngestionLedger;
  /** The key of the ledger, the logs and the state machine's data (the lake key in `OnsDataPlatform`). */
  readonly encryptionKey: kms.IKey;

  /**
   * How often the sync is started even when no file asks: it takes requests that a failed or paused sync left pending.
   *
   * @default Duration.hours(1)
   */
  readonly sweepInterval?: Duration;

  /**
   * Concurrent executions reserved for the sync's function.
   *
   * @default - no reservation
   */
  readonly reservedConcurrentExecutions?: number;
}

/**
 * Synchronises a knowledge base once per batch of files, and records the outcome in the ingestion ledger.
 *
 * A file asks for a sync (the ingestion state machine writes a request item in the ledger, counts it on the knowledge
 * base's control item, and starts this state machine without waiting). One execution at a time holds the knowledge
 * base's lease (a conditional write); the others end at once. The holder loops: it claims every pending request, runs
 * one ingestion job per data source that has some, one after the other (Bedrock runs one job at a time per data source
 * and per knowledge base), polls `GetIngestionJob` every 30 seconds until the job ends, and writes the outcome on the
 * files it covered: `indexed` with the job's statistics when COMPLETE; on FAILED or STOPPED the files stay `loaded`
 * with the reason and the job is tried again after 2, then 4 minutes. After three tries the execution fails (the
 * `ExecutionsFailed` alarm and the `KnowledgeBaseSyncJobsFailed` metric), and the requests stay pending for the next
 * sync. It gives the lease back only when no request was counted since its last claim, so no request is lost.
 *
 * A sync never quarantines a file: the data of a file that asked for a sync is in the lake already.
 *
 * @example
 * new KnowledgeBaseSync(stack, 'KnowledgeSync', { stage, knowledgeBase, ledger, encryptionKey: lake.encryptionKey });
 */
export class KnowledgeBaseSync extends Construct {
  /** The sync state machine (Standard): start it with any input; it ends at once when another execution holds the lease. */
  public readonly stateMachine: sfn.StateMachine;
  /** The handler of its ledger work (lease, claim, outcome). */
  public readonly syncFunction: lambda.IFunction;
  /** The partition key of the knowledge base's sync items in the ledger (`kbsync#<knowledge base id>`). */
  public readonly ledgerPartition: string;
  /**
   * Where EventBridge puts a scheduled sweep it could not start (after 3 retries or 30 minutes): encrypted with the
   * key, kept 14 days; the platform's monitoring alarms (critical) on any message in it.
   */
  public readonly deadLetterQueue: sqs.IQueue;

  private readonly knowledgeBase: IKnowledgeBase;

  /** What the permission inventory needs (private parts). */
  private readonly inventoryParts: { readonly ledger: IIngestionLedger; readonly key: kms.IKey };

  constructor(scope: Construct, id: string, props: KnowledgeBaseSyncProps) {
    super(scope, id);
    applyPlatformTags(this, props.stage);
    this.knowledgeBase = props.knowledgeBase;
    this.ledgerPartition = `${KnowledgeSyncSchema.PARTITION_PREFIX}${props.knowledgeBase.knowledgeBaseId}`;
    const sweep = props.sweepInterval ?? Duration.hours(1);
    if (!sweep.isUnresolved() && (sweep.toMinutes({ integral: false }) < 1 || !Number.isInteger(sweep.toMinutes({ integral: false })))) {
      throw new Error(`sweepInterval: expected whole minutes, at least 1, got ${sweep.toHumanString()}`);
    }

    const fn = createPlatformFunction(this, 'Handler', SyncFunction, {
      stage: props.stage,
      service: MetricServices.KNOWLEDGE,
      encryptionKey: props.encryptionKey,
      description: `ONS data platform (${props.stage.name}): knowledge-base sync (lease, requests, outcomes)`,
      timeout: Duration.minutes(5),
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      environment: { [LedgerEnv.TABLE]: props.ledger.tableName, [KnowledgeSyncEnv.KB_ID]: props.knowledgeBase.knowledgeBaseId },
    });
    props.ledger.grantRecord(fn);
    // Deletes only the sync's own items (done requests): never a file's ledger item.
    fn.addToRolePolicy(new iam.PolicyStatement({
      actions: ['dynamodb:DeleteItem'],
      resources: [props.ledger.table.tableArn],
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${KnowledgeSyncSchema.PARTITION_PREFIX}*`] } },
    }));
    this.syncFunction = fn;
    this.inventoryParts = { ledger: props.ledger, key: props.encryptionKey };

    this.stateMachine = this.createStateMachine(props.stage, props.encryptionKey);
    this.deadLetterQueue = this.createSweep(sweep, props.encryptionKey);
    acknowledgeScopedWildcards(this);
  }

  /**
   * The AWS calls of the sync's principals, for the permission-closure test (test/permissions/closure.test.ts).
   * @internal
   */
  public _permissionInventory(): CallerInventory[] {
    const { ledger, key } = this.inventoryParts;
    const fn = this.syncFunction as lambda.Function;
    const table = ledger.table.tableArn;
    const own = { 'dynamodb:LeadingKeys': [this.ledgerPartition] };
    const rule = this.node.findChild('Sweep') as events.Rule;
    const queue = this.deadLetterQueue as sqs.Queue;
    const ledgerCall = (action: string, context?: Record<string, string[]>): AwsCall => ({ action, resource: table, kmsKey: key.keyArn, context });
    return [
      {
        name: 'knowledge-base sync handler',
        principal: fn.role!,
        calls: [...functionRuntimeCalls(fn), ...['GetItem', 'UpdateItem', 'Query'].map((a) => ledgerCall(`dynamodb:${a}`)), ledgerCall('dynamodb:DeleteItem', own)],
      },
      {
        name: 'knowledge-base sync state machine',
        principal: this.stateMachine.role,
        calls: [
          { action: 'lambda:InvokeFunction', resource: fn.functionArn },
          ...['bedrock:StartIngestionJob', 'bedrock:GetIngestionJob'].map((action) => ({ action, resource: this.knowledgeBase.knowledgeBaseArn })),
          ...machineRuntimeCalls(this.stateMachine, key),
        ],
      },
      { name: 'knowledge-base sync sweep (EventBridge target role)', principal: this.node.findChild('SweepRole') as iam.Role, calls: startEncrypted(this.stateMachine, key) },
      eventDeadLetterInventory('EventBridge, to the sweep dead-letter queue', queue, key, rule),
    ];
  }

  /** Lets `grantee` (the ingestion state machine) start a sync. */
  public grantStart(grantee: iam.IGrantable): iam.Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }

  private createStateMachine(stage: PlatformStage, key: kms.IKey): sfn.StateMachine {
    const flow = new Construct(this, 'Workflow');
    const holder = { 'holder.$': '$$.Execution.Id' };
    const kb = this.knowledgeBase;
    const call = (stateId: string, payload: Record<string, unknown>, resultPath: string) => {
      const task = new tasks.LambdaInvoke(flow, stateId, {
        lambdaFunction: this.syncFunction,
        payload: sfn.TaskInput.fromObject(payload),
        payloadResponseOnly: true,
        resultPath,
        retryOnServiceExceptions: false,
      });
      // A lost lease is not retried: another sync carries on.
      task.addRetry({ errors: ['LeaseLost'], maxAttempts: 0 });
      task.addRetry({ errors: ['States.ALL'], interval: Duration.seconds(2), backoffRate: 2, maxAttempts: 4, jitterStrategy: sfn.JitterType.FULL });
      return task;
    };
    const bedrockRetry = {
      errors: ['BedrockAgent.ThrottlingException', 'BedrockAgent.InternalServerException', 'BedrockAgent.ServiceQuotaExceededException', 'BedrockAgent.SdkClientException'],
      interval: Duration.seconds(5),
      backoffRate: 2,
      maxAttempts: 6,
      jitterStrategy: sfn.JitterType.FULL,
    };

    // One data source's job, tried again with backoff while it fails.
    const startJob = new tasks.CallAwsService(flow, 'StartJob', {
      service: 'bedrockagent',
      action: 'startIngestionJob',
      parameters: { 'KnowledgeBaseId': kb.knowledgeBaseId, 'DataSourceId.$': '$.dataSourceId', 'Description': 'ONS: sync of the files that asked for it' },
      iamResources: [kb.knowledgeBaseArn],
      iamAction: 'bedrock:StartIngestionJob',
      resultSelector: { 'jobId.$': '$.IngestionJob.IngestionJobId' },
      resultPath: '$.job',
    });
    // A job started outside this sync (after a deployment, on a schedule, by hand) holds the data source: wait for it.
    retryWhileIngestionJobRuns(startJob);
    startJob.addRetry(bedrockRetry);
    const waitForJob = new sfn.Wait(flow, 'WaitForJob', { time: sfn.WaitTime.duration(Duration.seconds(KnowledgeSync.POLL_SECONDS)) });
    const getJob = new tasks.CallAwsService(flow, 'GetJob', {
      service: 'bedrockagent',
      action: 'getIngestionJob',
      parameters: { 'KnowledgeBaseId': kb.knowledgeBaseId, 'DataSourceId.$': '$.dataSourceId', 'IngestionJobId.$': '$.job.jobId' },
      iamResources: [kb.knowledgeBaseArn],
      iamAction: 'bedrock:GetIngestionJob',
      // The whole job: failureReasons and statistics are optional fields.
      resultSelector: { 'status.$': '$.IngestionJob.Status', 'job.$': '$.IngestionJob' },
      resultPath: '$.outcome',
    });
    getJob.addRetry(bedrockRetry);
    const recordInput = { ...holder, 'batch.$': '$.batch', 'dataSourceId.$': '$.dataSourceId', 'attempt.$': '$.attempt' };
    const recordOutcome = call('RecordOutcome', { 'action': 'record', ...recordInput, 'job.$': '$.outcome.job' }, '$.recorded');
    const recordStartFailure = call('RecordStartFailure', { 'action': 'record', ...recordInput, 'startError.$': '$.startError' }, '$.recorded');
    startJob.addCatch(recordStartFailure, { resultPath: '$.startError' });
    const renew = call('RenewLease', { action: 'renew', ...holder }, sfn.JsonPath.DISCARD);
    const backoff = new sfn.Pass(flow, 'NextAttempt', { inputPath: '$.recorded.nextAttempt', resultPath: '$.attempt' })
      .next(new sfn.Wait(flow, 'WaitBeforeRetry', { time: sfn.WaitTime.secondsPath('$.recorded.waitSeconds') }))
      .next(startJob);
    const afterRecord = new sfn.Choice(flow, 'JobOutcome')
      .when(sfn.Condition.stringEquals('$.recorded.next', 'retry'), backoff)
      .when(sfn.Condition.stringEquals('$.recorded.next', 'gaveUp'), new sfn.Fail(flow, 'JobGaveUp', {
        error: 'IngestionJobFailed',
        cause: `The ingestion job failed ${KnowledgeSync.MAX_JOB_ATTEMPTS} times; its files stay loaded with the reason, and their requests wait for the next sync`,
      }))
      .otherwise(new sfn.Succeed(flow, 'SourceSynced'));
    recordOutcome.next(afterRecord);
    recordStartFailure.next(afterRecord);
    const ended = ['COMPLETE', 'FAILED', 'STOPPED'].map((s) => sfn.Condition.stringEquals('$.outcome.status', s));
    startJob.next(waitForJob).next(getJob).next(new sfn.Choice(flow, 'JobEnded?')
      .when(sfn.Condition.or(...ended), recordOutcome)
      .otherwise(renew.next(waitForJob)));

    const eachSource = new sfn.Map(flow, 'SyncEachSource', {
      itemsPath: '$.claim.sources',
      // One job at a time for the knowledge base.
      maxConcurrency: 1,
      itemSelector: { 'dataSourceId.$': '$$.Map.Item.Value.dataSourceId', 'batch.$': '$.claim.batch', 'attempt': 1 },
      resultPath: sfn.JsonPath.DISCARD,
    });
    eachSource.itemProcessor(startJob);
    const giveUp = call('ReleaseAfterFailure', { action: 'release', ...holder, force: true }, '$.release');
    const failed = new sfn.Fail(flow, 'SyncFailed', {
      error: 'KnowledgeBaseSyncFailed',
      cause: 'A knowledge-base ingestion job failed after its retries: its files stay loaded with the reason (ledger `indexing`), their requests stay pending for the next sync',
    });
    giveUp.addCatch(failed, { resultPath: '$.releaseError' });
    giveUp.next(failed);
    eachSource.addCatch(giveUp, { resultPath: '$.failure' });

    const nextRound = new sfn.Pass(flow, 'NextRound', { parameters: { 'n.$': 'States.MathAdd($.round.n, 1)' }, resultPath: '$.round' });
    const claim = call('Claim', { 'action': 'claim', ...holder, 'round.$': '$.round.n' }, '$.claim');
    const release = call('Release', { 'action': 'release', ...holder, 'seen.$': '$.claim.seen' }, '$.release');
    release.next(new sfn.Choice(flow, 'Released?')
      .when(sfn.Condition.booleanEquals('$.release.released', true), new sfn.Succeed(flow, 'Synced'))
      .otherwise(nextRound));
    eachSource.next(nextRound);
    claim.next(new sfn.Choice(flow, 'AnythingPending?')
      .when(sfn.Condition.numberEquals('$.claim.requests', 0), release)
      .otherwise(eachSource));
    const pause = call('Pause', { action: 'release', ...holder, force: true }, '$.release').next(new sfn.Succeed(flow, 'Paused'));
    nextRound.next(new sfn.Choice(flow, 'TooManyRounds?')
      .when(sfn.Condition.numberGreaterThan('$.round.n', KnowledgeSync.MAX_ROUNDS), pause)
      .otherwise(claim));

    const acquire = call('Acquire', { action: 'acquire', ...holder }, '$.lease');
    acquire.next(new sfn.Choice(flow, 'HoldsLease?')
      .when(sfn.Condition.booleanEquals('$.lease.acquired', true),
        new sfn.Pass(flow, 'FirstRound', { result: sfn.Result.fromObject({ n: 1 }), resultPath: '$.round' }).next(claim))
      .otherwise(new sfn.Succeed(flow, 'AnotherSyncRuns')));

    const logGroup = new logs.LogGroup(this, 'Logs', { retention: stage.logRetention, encryptionKey: key });
    applyDataRemovalPolicy(logGroup, stage);
    const machine = new sfn.StateMachine(this, 'StateMachine', {
      comment: `ONS data platform (${stage.name}): knowledge-base sync, one job at a time, outcome in the ledger`,
      definitionBody: sfn.DefinitionBody.fromChainable(acquire),
      stateMachineType: sfn.StateMachineType.STANDARD,
      queryLanguage: sfn.QueryLanguage.JSON_PATH,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: stage.tracing === lambda.Tracing.ACTIVE,
      encryptionConfiguration: new sfn.CustomerManagedEncryptionConfiguration(key, Duration.minutes(5)),
    });
    allowOwnExecutionData(machine, key);
    if (stage.tracing !== lambda.Tracing.ACTIVE) {
      Validations.of(machine).acknowledge({ id: 'AwsSolutions-SF2', reason: `X-Ray tracing follows the stage: off in '${stage.name}'.` });
    }
    return machine;
  }

  /**
   * A rule that starts the sync on a schedule: requests left pending by a failed or paused sync are taken then. A sweep
   * EventBridge cannot start goes to a dead-letter queue rather than being dropped.
   */
  private createSweep(interval: Duration, key: kms.IKey): sqs.IQueue {
    // Named, so the key policy can name its ARN without a reference (the rule depends on the key through the machine).
    const ruleName = `${Names.uniqueResourceName(this, { maxLength: 58 })}-Sweep`;
    const rule = new events.Rule(this, 'Sweep', {
      ruleName,
      description: 'Starts the ONS knowledge-base sync for requests left pending',
      schedule: events.Schedule.rate(interval),
    });
    const ruleArn = Stack.of(this).formatArn({ service: 'events', resource: 'rule', resourceName: ruleName });
    // Only this rule may use the key for dead letters; the queue policy CDK adds is scoped to the rule the same way.
    const deadLetterQueue = createEventDeadLetterQueue(this, 'SweepDeadLetterQueue', {
      encryptionKey: key, keyPolicySid: 'AllowEventBridgeSyncSweepDeadLetters', senders: { ruleArn }, deadLetterOf: 'the sync sweep rule',
    });
    const role = new iam.Role(this, 'SweepRole', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } } }),
      description: 'Starts the ONS knowledge-base sync on a schedule',
    });
    this.stateMachine.grantStartExecution(role);
    key.grant(role, 'kms:GenerateDataKey', 'kms:Decrypt');
    rule.addTarget(new targets.SfnStateMachine(this.stateMachine, {
      role, input: events.RuleTargetInput.fromObject({ trigger: 'sweep' }), retryAttempts: 3, maxEventAge: Duration.minutes(30), deadLetterQueue,
    }));
    return deadLetterQueue;
  }
}
