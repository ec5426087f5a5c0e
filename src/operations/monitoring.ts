import { Duration, Lazy, Names, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as budgets from 'aws-cdk-lib/aws-budgets';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct, IConstruct } from 'constructs';
import { allowRuleDeadLetters, createEventDeadLetterQueue, eventDeadLetterInventory } from '../core/defaults';
import {
  AlarmSeverity, DashboardSection, IMonitor, isMonitorable, MonitorAlarmOptions, MonitorEventOptions, platformMetric, RestApiMetrics,
} from '../core/monitorable';
import { CallerInventory } from '../core/permissions';
import { AlarmThresholdOverrides, PlatformStage, ResolvedAlarmThresholds, resolveAlarmThresholds } from '../core/stage';
import { OPERATION_DIMENSION, PlatformMetricDefinition, PlatformMetrics, QueryOperations } from '../runtime/contract';

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
   * Thresholds that replace the stage's, field by field. In `OnsDataPlatform` they apply to the rollback
   * alarms of its `SafeDeployment` too (`functionErrors`, `functionDurationPercentOfTimeout`).
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
   * REST API and Batch job queue under it, and every construct that says what to watch in it
   * (`IMonitorable`: the stores, the knowledge base, the API, safe deployment). Call `watch()` for more.
   *
   * @default - the scope the monitoring is created in
   */
  readonly watch?: IConstruct;
}

/** What one alarm says; periods default to the thresholds'. */
type AlarmOptions = Omit<cloudwatch.CreateAlarmOptions, 'evaluationPeriods'> & { readonly evaluationPeriods?: number; readonly metric: cloudwatch.IMetric };

/**
 * Alarms, topics, a dashboard and a budget for the ONS data platform.
 *
 * Alarms are made by kind, walking the construct tree, so a part added later gets its alarms by
 * construction: every Lambda function (errors, throttles, p99 duration near its timeout), every
 * Step Functions state machine (failed, timed-out and throttled executions), every SQS queue
 * (messages visible: the platform's queues are dead-letter queues), every REST API (5XX and 4XX
 * rates, p99 latency), every Batch job queue (an EventBridge rule on failed jobs), and the platform's
 * custom metrics (quarantined files, rejected rows and records, query latency per operation). Every
 * `IMonitorable` construct adds its own alarms from its `metric*()` methods (the time-series stores,
 * the knowledge base, the API, failed deployments of `SafeDeployment`), so monitoring knows no area.
 *
 * Severity: **critical** for API 5XX rate, state machine failures and time-outs, dead-letter
 * messages, and errors of the functions an `IMonitorable` names critical (the ingestion pipeline's);
 * **warning** for everything else.
 */
export class PlatformMonitoring extends Construct implements IMonitor {
  /** Alarms that need action now. */
  public readonly criticalTopic: sns.Topic;
  /** Alarms to look at during working hours; failed Batch jobs. */
  public readonly warningTopic: sns.Topic;
  /** One dashboard of the whole platform. */
  public readonly dashboard: cloudwatch.Dashboard;
  /** The monthly cost budget (absent without `monthlyBudgetUsd`). */
  public readonly budget?: budgets.CfnBudget;

  /** Name of the stage. */
  public readonly stageName: string;
  /** The thresholds in effect: the stage's, then `thresholds`. */
  public readonly thresholds: ResolvedAlarmThresholds;

  private readonly encryptionKey: kms.IKey;
  private eventDeadLetters?: sqs.Queue;
  /** The notification rules and the topic each publishes to, for `_permissionInventory`. */
  private readonly notifications: Array<{ rule: events.Rule; topic: sns.ITopic }> = [];
  private readonly created: cloudwatch.Alarm[] = [];
  private readonly critical: cloudwatch.Alarm[] = [];
  private anyCritical?: cloudwatch.CompositeAlarm;
  private readonly watched = new Set<IConstruct>();
  private readonly criticalFunctions = new Set<IConstruct>();
  /** Widgets not yet on the dashboard, by section, in the dashboard's order. */
  private readonly widgets = new Map<DashboardSection, cloudwatch.IWidget[]>(Object.values(DashboardSection).map((s) => [s, []]));
  private dashboardFilled = false;

  constructor(scope: Construct, id: string, props: PlatformMonitoringProps) {
    super(scope, id);
    this.stageName = props.stage.name;
    this.thresholds = resolveAlarmThresholds(props.stage, props.thresholds);
    const stack = Stack.of(this);

    this.criticalTopic = this.newTopic('CriticalTopic', AlarmSeverity.CRITICAL, props);
    this.warningTopic = this.newTopic('WarningTopic', AlarmSeverity.WARNING, props);
    this.encryptionKey = props.encryptionKey;
    // CloudWatch alarms, EventBridge (failed Batch jobs, failed deployments) and AWS Budgets publish to topics encrypted
    // with this key: SNS asks KMS for a data key on the publisher's behalf ("Enable compatibility between event sources
    // from AWS services and encrypted topics", SNS Developer Guide), with the encryption context aws:sns:topicArn. Each
    // statement names the exact actions and SNS topics of this account (encryption context); CloudWatch and Budgets
    // also this account (aws:SourceAccount) and their resources (aws:SourceArn). EventBridge does not: its delivery to
    // an encrypted topic carries no aws:Source* keys to KMS, so such a condition would drop every notification silently;
    // its topic statements (addEventNotification) name the one rule.
    // Topics of this account and region: naming the two topics' ARNs here would make the key depend on them (a cycle).
    const topicArns = `arn:${stack.partition}:sns:${stack.region}:${stack.account}:*`;
    const publishers: Array<{ service: string; sourceArn?: string }> = [
      { service: 'cloudwatch', sourceArn: `arn:${stack.partition}:cloudwatch:${stack.region}:${stack.account}:alarm:*` },
      { service: 'events' },
      ...(props.monthlyBudgetUsd !== undefined ? [{ service: 'budgets', sourceArn: `arn:${stack.partition}:budgets::${stack.account}:*` }] : []),
    ];
    for (const { service, sourceArn } of publishers) {
      props.encryptionKey.addToResourcePolicy(new iam.PolicyStatement({
        sid: `AllowPublishToEncryptedTopics-${service}`,
        principals: [new iam.ServicePrincipal(`${service}.amazonaws.com`)],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'], // in a key policy, '*' means this key
        conditions: {
          ...(sourceArn ? { StringEquals: { 'aws:SourceAccount': stack.account }, ArnLike: { 'aws:SourceArn': sourceArn } } : {}),
          StringLike: { 'kms:EncryptionContext:aws:sns:topicArn': topicArns },
        },
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
      alarmDescription: `[critical] ONS data platform (${this.stageName}): any critical alarm`,
      // The rule is rendered at synthesis, so critical alarms created after this call are in it.
      alarmRule: cloudwatch.AlarmRule.fromString(Lazy.string({
        produce: () => this.critical.map((a) => cloudwatch.AlarmRule.fromAlarm(a, cloudwatch.AlarmState.ALARM).renderAlarmRule()).join(' OR '),
      })),
    });
    return this.anyCritical;
  }

  /**
   * Creates the alarms of every resource under `scope` that has none yet (functions, state
   * machines, queues, REST APIs, Batch job queues, and every `IMonitorable`).
   */
  public watch(scope: IConstruct): void {
    const all = scope.node.findAll().filter((c) => !c.node.path.startsWith(this.node.path));
    // Before any alarm: a function's severity depends on who names it critical.
    for (const c of all.filter(isMonitorable)) for (const fn of c.criticalFunctions ?? []) this.criticalFunctions.add(fn);
    for (const c of all) {
      if (this.watched.has(c)) continue;
      if (c instanceof lambda.Function) this.watchFunction(c);
      else if (c instanceof sfn.StateMachine) this.watchStateMachine(c);
      else if (c instanceof sqs.Queue) this.watchQueue(c);
      else if (c instanceof apigw.RestApi) this.watchApi(c, this.stageMetrics(c));
      else if (c instanceof batch.JobQueue) this.watchJobQueue(c);
      else if (isMonitorable(c)) c.addMonitoring(this);
      else continue;
      this.watched.add(c);
    }
    // Parts watched after construction get their widgets at the end of the dashboard.
    if (this.dashboardFilled) this.addSections();
  }

  public addAlarm(resource: IConstruct, id: string, options: MonitorAlarmOptions): cloudwatch.IAlarm {
    const { severity, description, ...rest } = options;
    return this.alarm(resource, id, severity, { ...rest, alarmDescription: description });
  }

  public addEventNotification(resource: IConstruct, id: string, options: MonitorEventOptions): events.IRule {
    const rule = new events.Rule(this.scopeFor(resource), id, { description: options.description, eventPattern: options.eventPattern });
    const topic = this.topic(options.severity);
    const deadLetterQueue = this.eventDeadLetterQueue();
    // Not targets.SnsTopic: its topic statement lets any rule of any account publish. Here only this rule may
    // (aws:SourceArn, "Amazon SNS permissions" in "Using resource-based policies for Amazon EventBridge").
    topic.addToResourcePolicy(new iam.PolicyStatement({
      sid: `AllowEventBridge${Names.uniqueId(rule).slice(-48)}`,
      principals: [new iam.ServicePrincipal('events.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account }, ArnEquals: { 'aws:SourceArn': rule.ruleArn } },
    }));
    allowRuleDeadLetters(deadLetterQueue, rule, `AllowEventBridgeDeadLetters${Names.uniqueId(rule).slice(-48)}`);
    this.notifications.push({ rule, topic });
    rule.addTarget({
      bind: () => ({
        arn: topic.topicArn,
        input: options.message,
        // EventBridge retries for up to 24 hours by default; a notification older than an hour is a dead letter.
        retryPolicy: { maximumEventAgeInSeconds: 3600, maximumRetryAttempts: 10 },
        deadLetterConfig: { arn: deadLetterQueue.queueArn },
      }),
    });
    return rule;
  }

  /**
   * The dead-letter queue of every notification rule (KMS-encrypted with the lake key), created on first use, with
   * the platform's dead-letter alarm: a notification EventBridge could not deliver is a lost alarm.
   */
  private eventDeadLetterQueue(): sqs.Queue {
    if (this.eventDeadLetters) return this.eventDeadLetters;
    const queue = createEventDeadLetterQueue(this, 'NotificationDeadLetterQueue', {
      encryptionKey: this.encryptionKey, keyPolicySid: 'AllowEventBridgeNotificationDeadLetters', senders: 'accountRules', deadLetterOf: 'the notification rules',
    });
    this.eventDeadLetters = queue;
    this.watched.add(queue);
    this.watchQueue(queue);
    return queue;
  }

  /**
   * The calls AWS services make to the topics and the dead-letter queue as service principals, for the
   * permission-closure test (test/permissions/closure.test.ts): CloudWatch alarms and AWS Budgets publishing, and
   * EventBridge publishing a notification or dead-lettering it. SNS asks KMS for a data key on the publisher's behalf.
   * @internal
   */
  public _permissionInventory(): CallerInventory[] {
    const stack = Stack.of(this);
    const key = this.encryptionKey.keyArn;
    const source = (arn: string) => ({ 'aws:SourceArn': arn, 'aws:SourceAccount': stack.account });
    // One alarm of each severity stands for the rest: the statements name all alarms of the account (alarm:*).
    const warning = this.created.find((a) => !this.critical.includes(a));
    const alarms = [[this.critical[0], this.criticalTopic], [warning, this.warningTopic]] as const;
    const out: CallerInventory[] = [{
      name: 'CloudWatch alarms, to the alarm topics',
      principal: 'cloudwatch.amazonaws.com',
      calls: alarms.filter(([alarm]) => alarm).map(([alarm, topic]) => ({ action: 'sns:Publish', resource: topic.topicArn, kmsKey: key, context: source(alarm!.alarmArn) })),
    }];
    if (this.budget) {
      const budgetArn = `arn:${stack.partition}:budgets::${stack.account}:budget/${(this.budget.budget as budgets.CfnBudget.BudgetDataProperty).budgetName}`;
      out.push({
        name: 'AWS Budgets, to the critical topic',
        principal: 'budgets.amazonaws.com',
        calls: [{ action: 'sns:Publish', resource: this.criticalTopic.topicArn, kmsKey: key, context: source(budgetArn) }],
      });
    }
    for (const { rule, topic } of this.notifications) {
      // EventBridge's KMS calls through SNS carry no aws:Source* keys (see the key statements in the constructor).
      out.push({
        name: `EventBridge, notification rule ${rule.node.path}`,
        principal: 'events.amazonaws.com',
        calls: [
          { action: 'sns:Publish', resource: topic.topicArn, context: source(rule.ruleArn) },
          ...['kms:GenerateDataKey', 'kms:Decrypt'].map((action) => ({
            action, resource: key, context: { 'kms:EncryptionContext:aws:sns:topicArn': topic.topicArn, 'kms:ViaService': `sns.${stack.region}.amazonaws.com` },
          })),
        ],
      });
      out.push(eventDeadLetterInventory(`EventBridge, dead letters of notification rule ${rule.node.path}`, this.eventDeadLetters!, this.encryptionKey, rule));
    }
    return out;
  }

  public addWidgets(section: DashboardSection, ...widgets: cloudwatch.IWidget[]): void {
    this.widgets.get(section)!.push(...widgets);
  }

  public addRestApiAlarms(restApi: apigw.IRestApi, metrics: RestApiMetrics): void {
    this.watched.add(restApi);
    this.watchApi(restApi, metrics);
  }

  private topic(severity: AlarmSeverity): sns.ITopic {
    return severity === AlarmSeverity.CRITICAL ? this.criticalTopic : this.warningTopic;
  }

  private newTopic(id: string, severity: AlarmSeverity, props: PlatformMonitoringProps): sns.Topic {
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
        budgetName: `ons-data-platform-${this.stageName}-${stack.stackName}`.slice(0, 100),
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
  private alarm(scope: IConstruct, id: string, severity: AlarmSeverity, props: AlarmOptions): cloudwatch.Alarm {
    const owner = scope === this ? this : this.scopeFor(scope);
    const alarm = new cloudwatch.Alarm(owner, id, {
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      ...props,
      evaluationPeriods: props.evaluationPeriods ?? this.thresholds.evaluationPeriods,
      datapointsToAlarm: props.datapointsToAlarm ?? this.thresholds.datapointsToAlarm,
      alarmDescription: `[${severity}] ${props.alarmDescription}`,
    });
    const topic = this.topic(severity);
    alarm.addAlarmAction(new actions.SnsAction(topic));
    alarm.addOkAction(new actions.SnsAction(topic));
    this.created.push(alarm);
    if (severity === AlarmSeverity.CRITICAL) this.critical.push(alarm);
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
    const critical = this.criticalFunctions.has(fn);
    // Errors, throttles and duration: no data means no invocation, which is healthy, so missing data
    // never breaches (an idle function would otherwise stay in ALARM or INSUFFICIENT_DATA).
    this.alarm(fn, 'Errors', critical ? AlarmSeverity.CRITICAL : AlarmSeverity.WARNING, {
      metric: fn.metricErrors({ period, statistic: 'Sum' }),
      threshold: t.functionErrors,
      alarmDescription: `Lambda ${name}: ${t.functionErrors} or more errors in ${period.toHumanString()}`,
    });
    this.alarm(fn, 'Throttles', AlarmSeverity.WARNING, {
      metric: fn.metricThrottles({ period, statistic: 'Sum' }),
      threshold: t.functionThrottles,
      alarmDescription: `Lambda ${name}: ${t.functionThrottles} or more throttled invocations in ${period.toHumanString()}`,
    });
    const timeout = fn.timeout ?? Duration.seconds(3);
    const limit = Math.round(timeout.toMilliseconds() * t.functionDurationPercentOfTimeout / 100);
    this.alarm(fn, 'Duration', AlarmSeverity.WARNING, {
      metric: fn.metricDuration({ period, statistic: 'p99' }),
      threshold: limit,
      alarmDescription: `Lambda ${name}: p99 duration at or above ${t.functionDurationPercentOfTimeout}% of its ${timeout.toHumanString()} timeout (${limit} ms)`,
    });
    this.addWidgets(DashboardSection.FUNCTIONS, new cloudwatch.GraphWidget({
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
    this.alarm(machine, 'ExecutionsFailed', AlarmSeverity.CRITICAL, {
      ...any, metric: machine.metricFailed({ period, statistic: 'Sum' }), alarmDescription: `State machine ${name}: an execution failed`,
    });
    this.alarm(machine, 'ExecutionsTimedOut', AlarmSeverity.CRITICAL, {
      ...any, metric: machine.metricTimedOut({ period, statistic: 'Sum' }), alarmDescription: `State machine ${name}: an execution timed out`,
    });
    this.alarm(machine, 'ExecutionThrottled', AlarmSeverity.WARNING, {
      ...any, metric: machine.metricThrottled({ period, statistic: 'Sum' }), alarmDescription: `State machine ${name}: executions were throttled`,
    });
    this.addWidgets(DashboardSection.PIPELINE, new cloudwatch.GraphWidget({
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
    this.alarm(queue, 'MessagesVisible', AlarmSeverity.CRITICAL, {
      metric,
      threshold: 0,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription: `Queue ${queue.node.path}: messages in a dead-letter queue (events that could not be delivered)`,
    });
    this.addWidgets(DashboardSection.PIPELINE, new cloudwatch.GraphWidget({ title: `Dead letters: ${queue.node.path.split('/').slice(-2).join('/')}`, left: [metric], width: 12 }));
  }

  /** Metrics of the deployment stage of a REST API that says nothing about itself. */
  private stageMetrics(api: apigw.RestApi): RestApiMetrics {
    const metric = (metricName: string, statistic: string): cloudwatch.Metric => new cloudwatch.Metric({
      namespace: 'AWS/ApiGateway',
      metricName,
      statistic,
      period: this.thresholds.period,
      dimensionsMap: { ApiName: api.restApiName, Stage: api.deploymentStage.stageName },
    });
    return { serverErrors: metric('5XXError', 'Sum'), clientErrors: metric('4XXError', 'Sum'), count: metric('Count', 'SampleCount'), latency: metric('Latency', 'p99') };
  }

  private watchApi(api: apigw.IRestApi, metrics: RestApiMetrics): void {
    const t = this.thresholds;
    const period = t.period;
    const { serverErrors, clientErrors, count, latency } = metrics;
    const rate = (errors: cloudwatch.IMetric, kind: 'server' | 'client', label: string): cloudwatch.MathExpression => new cloudwatch.MathExpression({
      // No request in a period gives no datapoint (not a division by zero).
      expression: `100 * FILL(${kind}Errors, 0) / requests`,
      usingMetrics: { [`${kind}Errors`]: errors, requests: count },
      period,
      label,
    });
    const name = api.restApiName;
    // Rates and latency: no data means no request, which is healthy, so missing data never breaches.
    this.alarm(api, 'ServerErrorRate', AlarmSeverity.CRITICAL, {
      metric: rate(serverErrors, 'server', '5XX %'),
      threshold: t.apiServerErrorRatePercent,
      alarmDescription: `API ${name}: ${t.apiServerErrorRatePercent}% or more of requests answered with a 5XX`,
    });
    this.alarm(api, 'ClientErrorRate', AlarmSeverity.WARNING, {
      metric: rate(clientErrors, 'client', '4XX %'),
      threshold: t.apiClientErrorRatePercent,
      alarmDescription: `API ${name}: ${t.apiClientErrorRatePercent}% or more of requests answered with a 4XX`,
    });
    this.alarm(api, 'LatencyP99', AlarmSeverity.WARNING, {
      metric: latency,
      threshold: t.apiLatencyP99.toMilliseconds(),
      alarmDescription: `API ${name}: p99 latency at or above ${t.apiLatencyP99.toHumanString()}`,
    });
    this.addWidgets(DashboardSection.API,
      new cloudwatch.GraphWidget({ title: `API ${name}: requests and errors`, left: [count, serverErrors, clientErrors], width: 8 }),
      new cloudwatch.GraphWidget({ title: `API ${name}: error rates (%)`, left: [rate(serverErrors, 'server', '5XX %'), rate(clientErrors, 'client', '4XX %')], width: 8 }),
      new cloudwatch.GraphWidget({ title: `API ${name}: p99 latency`, left: [latency], width: 8 }),
    );
  }

  private watchJobQueue(queue: batch.JobQueue): void {
    // Batch reports failed jobs as events, not metrics: an EventBridge rule forwards them, readable.
    const field = (path: string) => events.EventField.fromPath(path);
    this.addEventNotification(queue, 'FailedJobs', {
      severity: AlarmSeverity.WARNING,
      description: `ONS data platform (${this.stageName}): failed jobs of ${queue.node.path}`,
      eventPattern: {
        source: ['aws.batch'],
        detailType: ['Batch Job State Change'],
        detail: { status: ['FAILED'], jobQueue: [queue.jobQueueArn] },
      },
      message: events.RuleTargetInput.fromText(
        `[warning] ONS data platform (${this.stageName}): Batch job ${field('$.detail.jobName')} (${field('$.detail.jobId')}) failed at ${field('$.time')}: ${field('$.detail.statusReason')}. Queue: ${field('$.detail.jobQueue')}.`,
      ),
    });
  }

  private customMetric(definition: PlatformMetricDefinition, statistic: string, extra: Record<string, string> = {}): cloudwatch.Metric {
    return platformMetric(this.stageName, definition, { statistic, period: this.thresholds.period, dimensionsMap: extra });
  }

  private createCustomMetricAlarms(): void {
    const t = this.thresholds;
    const every = t.period.toHumanString();
    // Counts the handlers emit only when something happens: missing data is zero, never a breach.
    const count = {
    };
    this.alarm(this, 'FilesQuarantined', AlarmSeverity.WARNING, {
      ...count,
      metric: this.customMetric(PlatformMetrics.FILES_QUARANTINED, 'Sum'),
      threshold: t.quarantinedFiles,
      alarmDescription: `Ingestion: ${t.quarantinedFiles} or more files quarantined in ${every}`,
    });
    // A failed sync job leaves files loaded but not indexed: one is worth a look (the sync retries it on its own).
    this.alarm(this, 'KnowledgeBaseSyncJobsFailed', AlarmSeverity.WARNING, {
      ...count,
      metric: this.customMetric(PlatformMetrics.KNOWLEDGE_SYNC_JOBS_FAILED, 'Sum'),
      threshold: 1,
      alarmDescription: `Knowledge base: an ingestion job of the sync failed in ${every}; its files stay loaded with the reason (ledger \`indexing\`)`,
    });
    this.alarm(this, 'RecordsRejected', AlarmSeverity.WARNING, {
      ...count,
      metric: this.customMetric(PlatformMetrics.RECORDS_REJECTED, 'Sum'),
      threshold: t.recordsRejected,
      alarmDescription: `Ingestion: ${t.recordsRejected} or more rows rejected by validation in ${every}`,
    });
    this.alarm(this, 'RecordsRejectedByStore', AlarmSeverity.WARNING, {
      ...count,
      metric: this.customMetric(PlatformMetrics.POINTS_REJECTED, 'Sum'),
      threshold: t.timeSeriesErrors,
      alarmDescription: `Time series: ${t.timeSeriesErrors} or more records rejected by the store in ${every}`,
    });
    for (const operation of Object.values(QueryOperations)) {
      // Latency is emitted per request: no data means no request, never a breach.
      this.alarm(this, `QueryLatency-${operation}`, AlarmSeverity.WARNING, {
        ...count,
        metric: this.customMetric(PlatformMetrics.QUERY_LATENCY, 'p99', { [OPERATION_DIMENSION]: operation }),
        threshold: t.apiLatencyP99.toMilliseconds(),
        alarmDescription: `API ${operation}: handler p99 latency at or above ${t.apiLatencyP99.toHumanString()}`,
      });
    }
  }

  private addSections(): void {
    for (const [title, widgets] of this.widgets) this.section(title, widgets);
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
    this.dashboard.addWidgets(new cloudwatch.TextWidget({ markdown: `# ONS data platform (${this.stageName})`, width: 24, height: 1 }));
    this.dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.created, width: 24, height: 8 }));
    this.addWidgets(DashboardSection.TIME_SERIES_STORE, new cloudwatch.GraphWidget({
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
        left: Object.values(QueryOperations).map((o) => this.customMetric(m.QUERY_LATENCY, 'p99', { [OPERATION_DIMENSION]: o })),
        width: 8,
      }),
    ]);
  }
}
