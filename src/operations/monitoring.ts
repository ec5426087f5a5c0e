import { Duration, Lazy, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as budgets from 'aws-cdk-lib/aws-budgets';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct, IConstruct } from 'constructs';
import { PlatformApi } from '../api/platform-api';
import { SafeDeployment } from '../core/safe-deployment';
import { AlarmThresholds, PlatformStage } from '../core/stage';
import { IngestionPipeline } from '../ingestion/pipeline';
import { KnowledgeBase } from '../knowledge/knowledge-base';
import { OPERATION_DIMENSION, PlatformMetricDefinition, PlatformMetrics, metricsNamespace } from '../runtime/contract';
import { InfluxDbStore } from '../timeseries/influxdb-store';
import { TimestreamStore } from '../timeseries/timestream-store';

/**
 * Changes to the stage's alarm thresholds for one `PlatformMonitoring`. Unset fields keep the stage's value.
 */
export interface AlarmThresholdOverrides {
  /** @default - the stage's `functionErrors` */
  readonly functionErrors?: number;
  /** @default - the stage's `functionDurationPercentOfTimeout` */
  readonly functionDurationPercentOfTimeout?: number;
  /** @default - the stage's `functionThrottles`, or 1 */
  readonly functionThrottles?: number;
  /** @default - the stage's `apiServerErrorRatePercent` */
  readonly apiServerErrorRatePercent?: number;
  /** @default - the stage's `apiClientErrorRatePercent`, or 25 */
  readonly apiClientErrorRatePercent?: number;
  /** @default - the stage's `apiLatencyP99` */
  readonly apiLatencyP99?: Duration;
  /** @default - the stage's `quarantinedFiles` */
  readonly quarantinedFiles?: number;
  /** @default - the stage's `recordsRejected`, or 100 */
  readonly recordsRejected?: number;
  /** @default - the stage's `timeSeriesErrors`, or 1 */
  readonly timeSeriesErrors?: number;
  /** @default - the stage's `storeUtilizationPercent`, or 80 */
  readonly storeUtilizationPercent?: number;
  /** @default - the stage's `period` */
  readonly period?: Duration;
  /** @default - the stage's `evaluationPeriods` */
  readonly evaluationPeriods?: number;
  /** @default - the stage's `datapointsToAlarm` */
  readonly datapointsToAlarm?: number;
}

/**
 * Options of the platform's monitoring (`OnsDataPlatform`'s `monitoring` prop).
 */
export interface PlatformMonitoringOptions {
  /**
   * Email addresses subscribed to both the critical and the warning topic. Each address must confirm
   * its subscription from the email SNS sends.
   *
   * @default - no subscription: subscribe to `criticalTopic` and `warningTopic` yourself
   */
  readonly alarmEmails?: string[];

  /**
   * Monthly cost budget of the account, in US dollars. When set, an AWS Budget notifies the critical
   * topic (and `alarmEmails`) at 80% of actual and 100% of forecasted cost.
   *
   * The amount depends on the account and its other workloads, which the platform cannot know, so
   * there is no default amount.
   *
   * @default - no budget
   */
  readonly monthlyBudgetUsd?: number;

  /**
   * Thresholds that replace the stage's, per alarm family.
   *
   * @default - the stage's `alarmThresholds`
   */
  readonly thresholds?: AlarmThresholdOverrides;
}

/**
 * Properties of `PlatformMonitoring`.
 */
export interface PlatformMonitoringProps extends PlatformMonitoringOptions {
  /**
   * The stage: alarm thresholds and the namespace of the custom metrics come from it.
   */
  readonly stage: PlatformStage;

  /**
   * The key that encrypts the topics. Its policy is extended so CloudWatch alarms, EventBridge and
   * AWS Budgets can publish to them (no-op for an imported key: its policy must already allow it).
   */
  readonly encryptionKey: kms.IKey;

  /**
   * The construct whose resources get alarms: every Lambda function, state machine, SQS queue,
   * REST API, Batch job queue and Timestream store under it. Call `watch()` for more.
   *
   * @default - the scope the monitoring is created in
   */
  readonly watch?: IConstruct;
}

/** Severity of an alarm: which topic it notifies. */
type Severity = 'critical' | 'warning';

/** What one alarm says; periods default to the thresholds'. */
type AlarmOptions = Omit<cloudwatch.CreateAlarmOptions, 'evaluationPeriods'> & { readonly evaluationPeriods?: number; readonly metric: cloudwatch.IMetric };

/** Every field of the thresholds, resolved. */
type Thresholds = Required<AlarmThresholds>;

/** Timestream operations the platform calls: the loader writes, the query handler reads. */
const TIMESTREAM_OPERATIONS = ['WriteRecords', 'Query'];

/** Values of the `operation` dimension of `QueryLatency`: operationIds of the query routes (src/api/routes.ts). */
const QUERY_OPERATIONS = ['getTimeSeries', 'query'];

/**
 * Alarms, topics, a dashboard and a budget for the ONS data platform.
 *
 * Alarms are made by kind, walking the construct tree, so a part added later gets its alarms by
 * construction: every Lambda function (errors, throttles, p99 duration near its timeout), every
 * Step Functions state machine (failed, timed-out and throttled executions), every SQS queue
 * (messages visible: the platform's queues are dead-letter queues), every REST API (5XX and 4XX
 * rates, p99 latency), every Timestream store (system and user errors per operation), every Batch
 * job queue (an EventBridge rule on failed jobs), and the platform's custom metrics (quarantined
 * files, rejected rows and records, query latency per operation).
 *
 * Severity: **critical** for API 5XX rate, state machine failures and time-outs, dead-letter
 * messages, and errors of functions of the ingestion pipeline; **warning** for everything else.
 */
export class PlatformMonitoring extends Construct {
  /** Alarms that need action now. */
  public readonly criticalTopic: sns.Topic;
  /** Alarms to look at during working hours; failed Batch jobs. */
  public readonly warningTopic: sns.Topic;
  /** One dashboard of the whole platform. */
  public readonly dashboard: cloudwatch.Dashboard;
  /** The monthly cost budget (absent without `monthlyBudgetUsd`). */
  public readonly budget?: budgets.CfnBudget;

  private readonly stage: PlatformStage;
  private readonly thresholds: Thresholds;
  private readonly created: cloudwatch.Alarm[] = [];
  private readonly critical: cloudwatch.Alarm[] = [];
  private anyCritical?: cloudwatch.CompositeAlarm;
  private readonly watched = new Set<IConstruct>();
  private readonly ingestionFunctions = new Set<IConstruct>();
  private readonly apiWidgets: cloudwatch.IWidget[] = [];
  private readonly pipelineWidgets: cloudwatch.IWidget[] = [];
  private readonly functionWidgets: cloudwatch.IWidget[] = [];
  private readonly storeWidgets: cloudwatch.IWidget[] = [];
  private dashboardFilled = false;

  constructor(scope: Construct, id: string, props: PlatformMonitoringProps) {
    super(scope, id);
    this.stage = props.stage;
    this.thresholds = resolveThresholds(props.stage, props.thresholds);
    const stack = Stack.of(this);

    this.criticalTopic = this.newTopic('CriticalTopic', 'critical', props);
    this.warningTopic = this.newTopic('WarningTopic', 'warning', props);
    // CloudWatch alarms, EventBridge (failed Batch jobs) and AWS Budgets publish to topics encrypted
    // with this key: each service needs to create data keys with it.
    for (const service of ['cloudwatch', 'events', ...(props.monthlyBudgetUsd !== undefined ? ['budgets'] : [])]) {
      props.encryptionKey.addToResourcePolicy(new iam.PolicyStatement({
        sid: `AllowPublishToEncryptedTopics-${service}`,
        principals: [new iam.ServicePrincipal(`${service}.amazonaws.com`)],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'], // in a key policy, '*' means this key
      }));
    }

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      periodOverride: cloudwatch.PeriodOverride.AUTO,
    });

    if (props.monthlyBudgetUsd !== undefined) this.budget = this.createBudget(props.monthlyBudgetUsd, props.alarmEmails ?? [], stack);

    this.watch(props.watch ?? scope);
    this.createCustomMetricAlarms();
    this.fillDashboard();
  }

  /** Every alarm created so far. */
  public get alarms(): cloudwatch.IAlarm[] {
    return [...this.created];
  }

  /**
   * One composite alarm in ALARM while any critical alarm is (created on first call; it follows alarms
   * created later too). Feature-flag deployments roll back on it: AppConfig watches at most 5 alarms.
   */
  public anyCriticalAlarm(): cloudwatch.IAlarm {
    this.anyCritical ??= new cloudwatch.CompositeAlarm(this, 'AnyCritical', {
      alarmDescription: `[critical] ONS data platform (${this.stage.name}): any critical alarm`,
      // The rule is rendered at synthesis, so critical alarms created after this call are in it.
      alarmRule: cloudwatch.AlarmRule.fromString(Lazy.string({
        produce: () => this.critical.map((a) => cloudwatch.AlarmRule.fromAlarm(a, cloudwatch.AlarmState.ALARM).renderAlarmRule()).join(' OR '),
      })),
    });
    return this.anyCritical;
  }

  /**
   * Creates the alarms of every resource under `scope` that has none yet (functions, state
   * machines, queues, REST APIs, Batch job queues, Timestream stores).
   */
  public watch(scope: IConstruct): void {
    const all = scope.node.findAll().filter((c) => !c.node.path.startsWith(this.node.path));
    for (const pipeline of all.filter((c): c is IngestionPipeline => c instanceof IngestionPipeline)) {
      for (const c of pipeline.node.findAll()) this.ingestionFunctions.add(c);
      if (pipeline.timeSeriesLoader) this.ingestionFunctions.add(pipeline.timeSeriesLoader);
    }
    const platformApis = all.filter((c): c is PlatformApi => c instanceof PlatformApi);
    for (const c of all) {
      if (this.watched.has(c)) continue;
      if (c instanceof lambda.Function) this.watchFunction(c);
      else if (c instanceof sfn.StateMachine) this.watchStateMachine(c);
      else if (c instanceof sqs.Queue) this.watchQueue(c);
      else if (c instanceof apigw.RestApi) this.watchApi(c, platformApis.find((a) => a.restApi === c));
      else if (c instanceof batch.JobQueue) this.watchJobQueue(c);
      else if (c instanceof TimestreamStore) this.watchTimestream(c);
      else if (c instanceof InfluxDbStore) this.watchInfluxDb(c);
      else if (c instanceof SafeDeployment) this.watchDeployments(c);
      else if (c instanceof KnowledgeBase && c.applicationLogGroup) this.watchKnowledgeBase(c);
      else continue;
      this.watched.add(c);
    }
    // Parts watched after construction get their widgets at the end of the dashboard.
    if (this.dashboardFilled) this.addSections();
  }

  private newTopic(id: string, severity: Severity, props: PlatformMonitoringProps): sns.Topic {
    const topic = new sns.Topic(this, id, {
      displayName: `ONS data platform (${props.stage.name}): ${severity} alarms`,
      masterKey: props.encryptionKey,
      enforceSSL: true,
    });
    const stack = Stack.of(this);
    // The topic policy replaces SNS's default one: let this account's alarms publish.
    topic.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AllowCloudWatchAlarms',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: {
        StringEquals: { 'aws:SourceAccount': stack.account },
        ArnLike: { 'aws:SourceArn': `arn:${stack.partition}:cloudwatch:${stack.region}:${stack.account}:alarm:*` },
      },
    }));
    for (const email of props.alarmEmails ?? []) {
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw new Error(`alarmEmails: '${email}' is not an email address`);
      topic.addSubscription(new subscriptions.EmailSubscription(email));
    }
    return topic;
  }

  private createBudget(amount: number, emails: string[], stack: Stack): budgets.CfnBudget {
    if (!Number.isFinite(amount) || amount <= 0) throw new Error(`monthlyBudgetUsd: expected a positive number, got ${amount}`);
    this.criticalTopic.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AllowBudgets',
      principals: [new iam.ServicePrincipal('budgets.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [this.criticalTopic.topicArn],
      conditions: {
        StringEquals: { 'aws:SourceAccount': stack.account },
        ArnLike: { 'aws:SourceArn': `arn:${stack.partition}:budgets::${stack.account}:*` },
      },
    }));
    const subscribers = [
      { subscriptionType: 'SNS', address: this.criticalTopic.topicArn },
      ...emails.map((address) => ({ subscriptionType: 'EMAIL', address })),
    ];
    const budget = new budgets.CfnBudget(this, 'MonthlyBudget', {
      budget: {
        budgetName: `ons-data-platform-${this.stage.name}-${stack.stackName}`.slice(0, 100),
        budgetType: 'COST',
        timeUnit: 'MONTHLY',
        budgetLimit: { amount, unit: 'USD' },
      },
      notificationsWithSubscribers: [
        { notification: { notificationType: 'ACTUAL', comparisonOperator: 'GREATER_THAN', threshold: 80, thresholdType: 'PERCENTAGE' }, subscribers },
        { notification: { notificationType: 'FORECASTED', comparisonOperator: 'GREATER_THAN', threshold: 100, thresholdType: 'PERCENTAGE' }, subscribers },
      ],
    });
    // The topic policy must exist before Budgets validates its subscriber.
    const policy = this.criticalTopic.node.tryFindChild('Policy');
    if (policy) budget.node.addDependency(policy);
    return budget;
  }

  /**
   * An alarm on its severity's topic (on alarm and on recovery). Unless `props` say otherwise it fires at or
   * above the threshold, and missing data never breaches: every metric watched here is published only when
   * something happens, so no data means nothing happened, and an idle platform must not sit in ALARM.
   */
  private alarm(scope: IConstruct, id: string, severity: Severity, props: AlarmOptions): cloudwatch.Alarm {
    const owner = scope === this ? this : this.scopeFor(scope);
    const alarm = new cloudwatch.Alarm(owner, id, {
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      ...props,
      evaluationPeriods: props.evaluationPeriods ?? this.thresholds.evaluationPeriods,
      datapointsToAlarm: props.datapointsToAlarm ?? this.thresholds.datapointsToAlarm,
      alarmDescription: `[${severity}] ${props.alarmDescription}`,
    });
    const topic = severity === 'critical' ? this.criticalTopic : this.warningTopic;
    alarm.addAlarmAction(new actions.SnsAction(topic));
    alarm.addOkAction(new actions.SnsAction(topic));
    this.created.push(alarm);
    if (severity === 'critical') this.critical.push(alarm);
    return alarm;
  }

  /** A scope under this construct per watched resource, named after its path, so alarm IDs never collide. */
  private scopeFor(resource: IConstruct): Construct {
    const id = resource.node.path.replace(/\//g, '-');
    return (this.node.tryFindChild(id) as Construct | undefined) ?? new Construct(this, id);
  }

  private watchFunction(fn: lambda.Function): void {
    const t = this.thresholds;
    const period = t.period;
    const name = fn.node.path;
    const ingestion = this.ingestionFunctions.has(fn);
    // Errors, throttles and duration: no data means no invocation, which is healthy, so missing data
    // never breaches (an idle function would otherwise stay in ALARM or INSUFFICIENT_DATA).
    this.alarm(fn, 'Errors', ingestion ? 'critical' : 'warning', {
      metric: fn.metricErrors({ period, statistic: 'Sum' }),
      threshold: t.functionErrors,
      alarmDescription: `Lambda ${name}: ${t.functionErrors} or more errors in ${period.toHumanString()}`,
    });
    this.alarm(fn, 'Throttles', 'warning', {
      metric: fn.metricThrottles({ period, statistic: 'Sum' }),
      threshold: t.functionThrottles,
      alarmDescription: `Lambda ${name}: ${t.functionThrottles} or more throttled invocations in ${period.toHumanString()}`,
    });
    const timeout = fn.timeout ?? Duration.seconds(3);
    const limit = Math.round(timeout.toMilliseconds() * t.functionDurationPercentOfTimeout / 100);
    this.alarm(fn, 'Duration', 'warning', {
      metric: fn.metricDuration({ period, statistic: 'p99' }),
      threshold: limit,
      alarmDescription: `Lambda ${name}: p99 duration at or above ${t.functionDurationPercentOfTimeout}% of its ${timeout.toHumanString()} timeout (${limit} ms)`,
    });
    this.functionWidgets.push(new cloudwatch.GraphWidget({
      title: `λ ${fn.node.path.split('/').slice(-2).join('/')}`,
      left: [fn.metricInvocations({ period }), fn.metricErrors({ period }), fn.metricThrottles({ period })],
      right: [fn.metricDuration({ period, statistic: 'p99' })],
      width: 8,
    }));
  }

  private watchStateMachine(machine: sfn.StateMachine): void {
    const period = this.thresholds.period;
    const name = machine.node.path;
    // Any failed, timed-out or throttled execution is worth a look: one datapoint is enough.
    // No data means no execution ended that way, so missing data never breaches.
    const any = {
      threshold: 1,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
    };
    this.alarm(machine, 'ExecutionsFailed', 'critical', {
      ...any, metric: machine.metricFailed({ period, statistic: 'Sum' }), alarmDescription: `State machine ${name}: an execution failed`,
    });
    this.alarm(machine, 'ExecutionsTimedOut', 'critical', {
      ...any, metric: machine.metricTimedOut({ period, statistic: 'Sum' }), alarmDescription: `State machine ${name}: an execution timed out`,
    });
    this.alarm(machine, 'ExecutionThrottled', 'warning', {
      ...any, metric: machine.metricThrottled({ period, statistic: 'Sum' }), alarmDescription: `State machine ${name}: executions were throttled`,
    });
    this.pipelineWidgets.push(new cloudwatch.GraphWidget({
      title: `Executions: ${machine.node.path.split('/').slice(-2).join('/')}`,
      left: [machine.metricStarted({ period }), machine.metricSucceeded({ period }), machine.metricFailed({ period }),
        machine.metricTimedOut({ period })],
      width: 12,
    }));
  }

  private watchQueue(queue: sqs.Queue): void {
    const period = this.thresholds.period;
    // The platform's queues are dead-letter queues: one message is a lost event. The metric is
    // reported every minute even when the queue is empty; missing data (no report) is not a breach.
    const metric = queue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' });
    this.alarm(queue, 'MessagesVisible', 'critical', {
      metric,
      threshold: 0,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription: `Queue ${queue.node.path}: messages in a dead-letter queue (events that could not be delivered)`,
    });
    this.pipelineWidgets.push(new cloudwatch.GraphWidget({ title: `Dead letters: ${queue.node.path.split('/').slice(-2).join('/')}`, left: [metric], width: 12 }));
  }

  private watchApi(api: apigw.RestApi, platformApi: PlatformApi | undefined): void {
    const t = this.thresholds;
    const period = t.period;
    const stageName = platformApi?.stageName ?? api.deploymentStage.stageName;
    const metric = (metricName: string, statistic: string): cloudwatch.Metric => new cloudwatch.Metric({
      namespace: 'AWS/ApiGateway', metricName, statistic, period, dimensionsMap: { ApiName: api.restApiName, Stage: stageName },
    });
    const serverErrors = platformApi?.metricServerError({ period }) ?? metric('5XXError', 'Sum');
    const clientErrors = platformApi?.metricClientError({ period }) ?? metric('4XXError', 'Sum');
    const count = platformApi?.metricCount({ period }) ?? metric('Count', 'SampleCount');
    const latency = platformApi?.metricLatency({ period }) ?? metric('Latency', 'p99');
    const rate = (errors: cloudwatch.IMetric, kind: 'server' | 'client', label: string): cloudwatch.MathExpression => new cloudwatch.MathExpression({
      // No request in a period gives no datapoint (not a division by zero).
      expression: `100 * FILL(${kind}Errors, 0) / requests`,
      usingMetrics: { [`${kind}Errors`]: errors, requests: count },
      period,
      label,
    });
    const name = api.restApiName;
    // Rates and latency: no data means no request, which is healthy, so missing data never breaches.
    this.alarm(api, 'ServerErrorRate', 'critical', {
      metric: rate(serverErrors, 'server', '5XX %'),
      threshold: t.apiServerErrorRatePercent,
      alarmDescription: `API ${name}: ${t.apiServerErrorRatePercent}% or more of requests answered with a 5XX`,
    });
    this.alarm(api, 'ClientErrorRate', 'warning', {
      metric: rate(clientErrors, 'client', '4XX %'),
      threshold: t.apiClientErrorRatePercent,
      alarmDescription: `API ${name}: ${t.apiClientErrorRatePercent}% or more of requests answered with a 4XX`,
    });
    this.alarm(api, 'LatencyP99', 'warning', {
      metric: latency,
      threshold: t.apiLatencyP99.toMilliseconds(),
      alarmDescription: `API ${name}: p99 latency at or above ${t.apiLatencyP99.toHumanString()}`,
    });
    this.apiWidgets.push(
      new cloudwatch.GraphWidget({ title: `API ${name}: requests and errors`, left: [count, serverErrors, clientErrors], width: 8 }),
      new cloudwatch.GraphWidget({ title: `API ${name}: error rates (%)`, left: [rate(serverErrors, 'server', '5XX %'), rate(clientErrors, 'client', '4XX %')], width: 8 }),
      new cloudwatch.GraphWidget({ title: `API ${name}: p99 latency`, left: [latency], width: 8 }),
    );
  }

  private watchJobQueue(queue: batch.JobQueue): void {
    // Batch reports failed jobs as events, not metrics: an EventBridge rule forwards them, readable.
    const rule = new events.Rule(this.scopeFor(queue), 'FailedJobs', {
      description: `ONS data platform (${this.stage.name}): failed jobs of ${queue.node.path}`,
      eventPattern: {
        source: ['aws.batch'],
        detailType: ['Batch Job State Change'],
        detail: { status: ['FAILED'], jobQueue: [queue.jobQueueArn] },
      },
    });
    const field = (path: string) => events.EventField.fromPath(path);
    rule.addTarget(new targets.SnsTopic(this.warningTopic, {
      message: events.RuleTargetInput.fromText(
        `[warning] ONS data platform (${this.stage.name}): Batch job ${field('$.detail.jobName')} (${field('$.detail.jobId')}) failed at ${field('$.time')}: ${field('$.detail.statusReason')}. Queue: ${field('$.detail.jobQueue')}.`,
      ),
    }));
  }

  private watchDeployments(deployment: SafeDeployment): void {
    // A deployment that fails (a rollback alarm fired, or it was stopped) is an event, not a metric.
    const rule = new events.Rule(this.scopeFor(deployment), 'FailedDeployments', {
      description: `ONS data platform (${this.stage.name}): failed or rolled-back function deployments`,
      eventPattern: {
        source: ['aws.codedeploy'],
        detailType: ['CodeDeploy Deployment State-change Notification'],
        detail: { state: ['FAILURE'], application: [deployment.application.applicationName] },
      },
    });
    const field = (path: string) => events.EventField.fromPath(path);
    rule.addTarget(new targets.SnsTopic(this.warningTopic, {
      message: events.RuleTargetInput.fromText(
        `[warning] ONS data platform (${this.stage.name}): deployment ${field('$.detail.deploymentId')} of group ${field('$.detail.deploymentGroup')} `
        + `failed at ${field('$.time')}; CodeDeploy rolled the alias back to the previous version. See the deployment's rollback alarms.`,
      ),
    }));
  }

  private watchKnowledgeBase(kb: KnowledgeBase): void {
    const period = this.thresholds.period;
    // From the application logs' metric filters: a job or a document that failed after its sync started.
    const jobs = kb.metricIngestionJobsFailed({ period });
    const documents = kb.metricDocumentsFailed({ period });
    this.alarm(kb, 'IngestionJobsFailed', 'warning', {
      metric: jobs,
      threshold: 1,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      alarmDescription: `Knowledge base ${kb.node.path}: an ingestion job failed (its application logs say why)`,
    });
    this.alarm(kb, 'DocumentsFailed', 'warning', {
      metric: documents,
      threshold: 1,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      alarmDescription: `Knowledge base ${kb.node.path}: a document failed to ingest (its application logs name it and say why)`,
    });
    this.pipelineWidgets.push(new cloudwatch.GraphWidget({ title: 'Knowledge base: failed ingestion jobs and documents', left: [jobs, documents], width: 12 }));
  }

  private watchInfluxDb(store: InfluxDbStore): void {
    const t = this.thresholds;
    const period = t.period;
    const limit = t.storeUtilizationPercent;
    const families: Array<[string, cloudwatch.Metric, Severity, string]> = [
      ['CpuUtilization', store.metricCpuUtilization({ period }), 'warning', 'CPU'],
      ['MemoryUtilization', store.metricMemoryUtilization({ period }), 'warning', 'memory'],
      // A full disk stops every write: critical.
      ['DiskUtilization', store.metricDiskUtilization({ period, statistic: 'Maximum' }), 'critical', 'disk'],
    ];
    for (const [id, metric, severity, what] of families) {
      this.alarm(store, id, severity, {
        metric,
        threshold: limit,
        alarmDescription: `Timestream for InfluxDB ${store.instanceName}: ${what} utilization at or above ${limit}% over ${period.toHumanString()}`,
      });
    }
    this.storeWidgets.push(new cloudwatch.GraphWidget({
      title: 'Timestream for InfluxDB: CPU, memory and disk (%)', left: families.map(([, m]) => m), right: [store.metricWriteOpsPerSec({ period })], width: 12,
    }));
  }

  private watchTimestream(store: TimestreamStore): void {
    const t = this.thresholds;
    const period = t.period;
    // AWS/Timestream publishes SystemErrors and UserErrors with the Operation dimension only (not per
    // database or table): these alarms watch the account's calls of each operation in the region.
    // No data means no error; missing data never breaches.
    const metrics: cloudwatch.IMetric[] = [];
    for (const operation of TIMESTREAM_OPERATIONS) {
      for (const metricName of ['SystemErrors', 'UserErrors']) {
        const metric = new cloudwatch.Metric({ namespace: 'AWS/Timestream', metricName, dimensionsMap: { Operation: operation }, statistic: 'Sum', period });
        metrics.push(metric);
        this.alarm(store, `${metricName}-${operation}`, 'warning', {
          metric,
          threshold: t.timeSeriesErrors,
          alarmDescription: `Timestream ${operation}: ${t.timeSeriesErrors} or more ${metricName} in ${period.toHumanString()}`,
        });
      }
    }
    this.storeWidgets.push(new cloudwatch.GraphWidget({ title: 'Timestream errors by operation', left: metrics, width: 12 }));
  }

  private customMetric(definition: PlatformMetricDefinition, statistic: string, extra: Record<string, string> = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: metricsNamespace(this.stage.name),
      metricName: definition.name,
      dimensionsMap: { service: definition.service, ...extra },
      statistic,
      period: this.thresholds.period,
    });
  }

  private createCustomMetricAlarms(): void {
    const t = this.thresholds;
    const every = t.period.toHumanString();
    // Counts the handlers emit only when something happens: missing data is zero, never a breach.
    const count = {
    };
    this.alarm(this, 'FilesQuarantined', 'warning', {
      ...count,
      metric: this.customMetric(PlatformMetrics.FILES_QUARANTINED, 'Sum'),
      threshold: t.quarantinedFiles,
      alarmDescription: `Ingestion: ${t.quarantinedFiles} or more files quarantined in ${every}`,
    });
    this.alarm(this, 'RecordsRejected', 'warning', {
      ...count,
      metric: this.customMetric(PlatformMetrics.RECORDS_REJECTED, 'Sum'),
      threshold: t.recordsRejected,
      alarmDescription: `Ingestion: ${t.recordsRejected} or more rows rejected by validation in ${every}`,
    });
    this.alarm(this, 'RecordsRejectedByStore', 'warning', {
      ...count,
      metric: this.customMetric(PlatformMetrics.POINTS_REJECTED, 'Sum'),
      threshold: t.timeSeriesErrors,
      alarmDescription: `Time series: ${t.timeSeriesErrors} or more records rejected by the store in ${every}`,
    });
    for (const operation of QUERY_OPERATIONS) {
      // Latency is emitted per request: no data means no request, never a breach.
      this.alarm(this, `QueryLatency-${operation}`, 'warning', {
        ...count,
        metric: this.customMetric(PlatformMetrics.QUERY_LATENCY, 'p99', { [OPERATION_DIMENSION]: operation }),
        threshold: t.apiLatencyP99.toMilliseconds(),
        alarmDescription: `API ${operation}: handler p99 latency at or above ${t.apiLatencyP99.toHumanString()}`,
      });
    }
  }

  private addSections(): void {
    this.section('API', this.apiWidgets);
    this.section('Pipeline', this.pipelineWidgets);
    this.section('Functions', this.functionWidgets);
    this.section('Time-series store', this.storeWidgets);
  }

  /** Adds `widgets` under a title, three to a row, and empties the list. */
  private section(title: string, widgets: cloudwatch.IWidget[]): void {
    if (widgets.length === 0) return;
    this.dashboard.addWidgets(new cloudwatch.TextWidget({ markdown: `## ${title}`, width: 24, height: 1 }));
    for (let i = 0; i < widgets.length; i += 3) this.dashboard.addWidgets(...widgets.slice(i, i + 3));
    widgets.length = 0;
  }

  private fillDashboard(): void {
    const m = PlatformMetrics;
    this.dashboard.addWidgets(new cloudwatch.TextWidget({ markdown: `# ONS data platform (${this.stage.name})`, width: 24, height: 1 }));
    this.dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.created, width: 24, height: 8 }));
    this.storeWidgets.push(new cloudwatch.GraphWidget({
      title: 'Points written / rejected by the store',
      left: [this.customMetric(m.POINTS_WRITTEN, 'Sum'), this.customMetric(m.POINTS_REJECTED, 'Sum')],
      width: 12,
    }));
    this.addSections();
    this.dashboardFilled = true;
    this.section('Custom metrics', [
      new cloudwatch.GraphWidget({ title: 'Rows processed / rejected', left: [this.customMetric(m.RECORDS_PROCESSED, 'Sum'), this.customMetric(m.RECORDS_REJECTED, 'Sum')], width: 8 }),
      new cloudwatch.GraphWidget({ title: 'Files quarantined', left: [this.customMetric(m.FILES_QUARANTINED, 'Sum')], width: 8 }),
      new cloudwatch.GraphWidget({
        title: 'Query latency p99',
        left: QUERY_OPERATIONS.map((o) => this.customMetric(m.QUERY_LATENCY, 'p99', { [OPERATION_DIMENSION]: o })),
        width: 8,
      }),
    ]);
  }
}

/** The stage's thresholds with `overrides`, validated like a stage's. */
function resolveThresholds(stage: PlatformStage, overrides: AlarmThresholdOverrides = {}): Thresholds {
  const merged: AlarmThresholds = { ...stage.alarmThresholds };
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) (merged as any)[key] = value;
  // A derived stage runs the stage's validation on the merged thresholds.
  const checked = stage.derive({ name: stage.name, alarmThresholds: merged }).alarmThresholds;
  return {
    ...checked,
    apiClientErrorRatePercent: checked.apiClientErrorRatePercent ?? 25,
    functionThrottles: checked.functionThrottles ?? 1,
    recordsRejected: checked.recordsRejected ?? 100,
    timeSeriesErrors: checked.timeSeriesErrors ?? 1,
    storeUtilizationPercent: checked.storeUtilizationPercent ?? 80,
  };
}
