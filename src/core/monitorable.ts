import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { IConstruct } from 'constructs';
import { ResolvedAlarmThresholds } from './stage';
import { metricsNamespace, PlatformMetricDefinition } from '../runtime/contract';

/** Which topic an alarm or an event notification goes to. */
export enum AlarmSeverity {
  /** Needs action now: the critical topic (and the composite alarm feature-flag rollouts watch). */
  CRITICAL = 'critical',
  /** To look at during working hours: the warning topic. */
  WARNING = 'warning',
}

/** The section of the platform's dashboard a widget goes to. */
export enum DashboardSection {
  /** REST APIs. */
  API = 'API',
  /** State machines, dead-letter queues, the knowledge base's ingestion. */
  PIPELINE = 'Pipeline',
  /** Lambda functions. */
  FUNCTIONS = 'Functions',
  /** The time-series store. */
  TIME_SERIES_STORE = 'Time-series store',
}

/** One alarm a monitored construct asks for. */
export interface MonitorAlarmOptions {
  /** Which topic it notifies, on alarm and on recovery. */
  readonly severity: AlarmSeverity;
  /** What it watches. */
  readonly metric: cloudwatch.IMetric;
  /** The value it compares the metric with. */
  readonly threshold: number;
  /** What it means, for the person who receives it (the severity is prefixed). */
  readonly description: string;
  /** @default GREATER_THAN_OR_EQUAL_TO_THRESHOLD */
  readonly comparisonOperator?: cloudwatch.ComparisonOperator;
  /** @default - the thresholds' `evaluationPeriods` */
  readonly evaluationPeriods?: number;
  /** @default - the thresholds' `datapointsToAlarm` */
  readonly datapointsToAlarm?: number;
}

/** An event a monitored construct wants sent to a topic (AWS services report some failures as events, not metrics). */
export interface MonitorEventOptions {
  /** Which topic it goes to. */
  readonly severity: AlarmSeverity;
  /** Description of the EventBridge rule. */
  readonly description: string;
  /** The events to send. */
  readonly eventPattern: events.EventPattern;
  /** The message sent, readable by a person. */
  readonly message: events.RuleTargetInput;
}

/** The metrics of a REST API stage that its alarms and widgets use. */
export interface RestApiMetrics {
  /** Requests answered with a 5xx (Sum). */
  readonly serverErrors: cloudwatch.IMetric;
  /** Requests answered with a 4xx (Sum). */
  readonly clientErrors: cloudwatch.IMetric;
  /** Requests (SampleCount). */
  readonly count: cloudwatch.IMetric;
  /** Latency (p99). */
  readonly latency: cloudwatch.IMetric;
}

/**
 * Where a monitored construct adds its alarms, event notifications and widgets (`PlatformMonitoring`): the
 * one place that names alarms, routes them to topics and holds the thresholds.
 */
export interface IMonitor {
  /** Name of the stage, for descriptions. */
  readonly stageName: string;
  /** The thresholds in effect: the stage's, then the monitoring's overrides. */
  readonly thresholds: ResolvedAlarmThresholds;
  /** An alarm on `resource` (its id is unique per resource), notifying the severity's topic. */
  addAlarm(resource: IConstruct, id: string, options: MonitorAlarmOptions): cloudwatch.IAlarm;
  /** An EventBridge rule that sends matching events to the severity's topic. */
  addEventNotification(resource: IConstruct, id: string, options: MonitorEventOptions): events.IRule;
  /** Widgets for a section of the dashboard. */
  addWidgets(section: DashboardSection, ...widgets: cloudwatch.IWidget[]): void;
  /** The 5XX and 4XX rate and p99 latency alarms of a REST API stage, from its metrics. */
  addRestApiAlarms(restApi: apigw.IRestApi, metrics: RestApiMetrics): void;
}

/**
 * A construct that says what to watch in it: its metrics (`metric*()`), with their alarms and widgets.
 * `PlatformMonitoring` calls `addMonitoring()` once for each one it finds, so it needs no concrete class.
 */
export interface IMonitorable extends IConstruct {
  /**
   * Functions, here or elsewhere, whose errors are critical rather than warnings (the ingestion
   * pipeline's: an error there loses or quarantines a file).
   *
   * @default - none
   */
  readonly criticalFunctions?: lambda.IFunction[];

  /** Adds this construct's alarms, event notifications and widgets to `monitor`. */
  addMonitoring(monitor: IMonitor): void;
}

/** Whether `construct` says what to watch in it. @internal */
export function isMonitorable(construct: IConstruct): construct is IMonitorable {
  return typeof (construct as Partial<IMonitorable>).addMonitoring === 'function';
}

/**
 * A custom metric the platform's handlers emit (`runtime/contract.ts`), as CloudWatch sees it: namespace
 * `OnsDataPlatform/<stage>`, dimension `service`, Sum for counts and p99 for times, CloudWatch's 5-minute period
 * unless `props` say otherwise. The constructs' `metric…()` methods and the monitoring's alarms both use it, so
 * they name the same series. @internal
 */
export function platformMetric(stageName: string, definition: PlatformMetricDefinition, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: metricsNamespace(stageName),
    metricName: definition.name,
    statistic: definition.unit === 'Milliseconds' ? 'p99' : 'Sum',
    ...props,
    dimensionsMap: { service: definition.service, ...props.dimensionsMap },
  });
}
