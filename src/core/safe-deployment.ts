import { Duration, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as events from 'aws-cdk-lib/aws-events';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { AlarmSeverity, IMonitor, IMonitorable } from './monitorable';
import { PlatformStage, resolveAlarmThresholds } from './stage';
import { FUNCTION_DIMENSIONS, metricsNamespace, PlatformMetrics } from '../runtime/contract';

/**
 * Options of `SafeDeployment` (what `OnsDataPlatform` passes through).
 */
export interface SafeDeploymentOptions {
  /**
   * Whether `OnsDataPlatform` publishes its functions through aliases and CodeDeploy at all. Off, API
   * integrations and Step Functions tasks invoke `$LATEST` and a code change reaches all traffic at once.
   * (A `SafeDeployment` you create yourself is always on.)
   *
   * @default true
   */
  readonly enabled?: boolean;

  /**
   * How CodeDeploy shifts traffic from the old version to the new one.
   *
   * @default - the stage's `deploymentConfig`: all at once in DEV, linear 10 % every minute in STAGING,
   * canary 10 % for 5 minutes in PROD
   */
  readonly deploymentConfig?: codedeploy.ILambdaDeploymentConfig;

  /**
   * Name of the alias every caller invokes.
   *
   * @default 'live'
   */
  readonly aliasName?: string;

  /**
   * Errors of the alias in one minute at or above which a deployment rolls back.
   *
   * @default - the stage's `alarmThresholds.functionErrors` (DEV 5, STAGING 3, PROD 1); in `OnsDataPlatform`,
   * its `monitoring.thresholds.functionErrors` when set
   */
  readonly rollbackErrors?: number;

  /**
   * p99 duration of the alias in one minute, as a percentage of the function's timeout, at or above
   * which a deployment rolls back.
   *
   * @default - the stage's `alarmThresholds.functionDurationPercentOfTimeout` (DEV 90, STAGING 85, PROD 80); in
   * `OnsDataPlatform`, its `monitoring.thresholds.functionDurationPercentOfTimeout` when set
   */
  readonly rollbackLatencyPercentOfTimeout?: number;
}

/**
 * Properties of `SafeDeployment`.
 */
export interface SafeDeploymentProps extends SafeDeploymentOptions {
  /** The stage: the traffic shifting and the rollback thresholds come from it. */
  readonly stage: PlatformStage;
}

/**
 * A function published by `SafeDeployment`: the alias callers invoke, its deployment group and the
 * alarms that roll a deployment back.
 */
export interface PublishedFunction {
  /** The function. */
  readonly function: lambda.Function;
  /** The alias that API integrations and Step Functions tasks invoke. */
  readonly alias: lambda.Alias;
  /** Shifts the alias from the old version to the new one. */
  readonly deploymentGroup: codedeploy.LambdaDeploymentGroup;
  /** Errors of the alias at or above `rollbackErrors` in one minute. */
  readonly errorsAlarm: cloudwatch.Alarm;
  /** p99 duration of the alias at or above `rollbackLatencyPercentOfTimeout` of the timeout in one minute. */
  readonly latencyAlarm: cloudwatch.Alarm;
  /**
   * 5xx answers of the new version (`ServerErrors` of the published version) at or above `rollbackErrors` in one
   * minute: for functions published with `watchServerErrors`.
   *
   * @default - none (the function was published without `watchServerErrors`)
   */
  readonly serverErrorsAlarm?: cloudwatch.Alarm;
}

/**
 * How `SafeDeployment.publish` watches one function.
 */
export interface PublishOptions {
  /**
   * The function is an API handler of the platform (it answers through the handler toolkit, which turns every
   * exception into a 500 and counts each unexpected 5xx in the stage's `ServerErrors` metric, with dimensions
   * `FunctionName` and `FunctionVersion`): a third rollback alarm watches that metric for the version being
   * deployed, since Lambda's `Errors` never sees an error the handler answers.
   *
   * @default false
   */
  readonly watchServerErrors?: boolean;
}

/**
 * Publishes functions through an alias and a CodeDeploy Lambda deployment group, so a code or
 * configuration change reaches traffic gradually (the stage's `deploymentConfig`) and rolls back by
 * itself when the alias's error or latency alarm fires during the deployment (or the deployment fails
 * or is stopped).
 *
 * Callers must invoke the alias (`publish(fn).alias`), never the function: `$LATEST` skips the
 * traffic shifting. Each change of a published function creates a new version; old versions are kept
 * (Lambda's version retention).
 *
 * @example
 * const deployment = new SafeDeployment(stack, 'Deployment', { stage: PlatformStage.PROD });
 * const live = deployment.publish(myFunction).alias;
 */
export class SafeDeployment extends Construct implements IMonitorable {
  /** The CodeDeploy application of every deployment group. */
  public readonly application: codedeploy.LambdaApplication;
  /** How traffic shifts. */
  public readonly deploymentConfig: codedeploy.ILambdaDeploymentConfig;
  /** The alias name. */
  public readonly aliasName: string;

  private readonly rollbackErrors: number;
  private readonly rollbackLatencyPercent: number;
  private readonly metricsNamespace: string;
  private readonly published = new Map<lambda.Function, PublishedFunction>();

  constructor(scope: Construct, id: string, props: SafeDeploymentProps) {
    super(scope, id);
    if (props.enabled === false) throw new Error('enabled: a SafeDeployment is always on; do not create one to deploy functions directly');
    this.deploymentConfig = props.deploymentConfig ?? props.stage.deploymentConfig;
    this.aliasName = props.aliasName ?? 'live';
    if (!/^(?!^[0-9]+$)[a-zA-Z0-9-_]{1,128}$/.test(this.aliasName)) {
      throw new Error(`aliasName: expected 1 to 128 letters, digits, - or _, not only digits (a Lambda alias name), got '${this.aliasName}'`);
    }
    const thresholds = resolveAlarmThresholds(props.stage);
    this.rollbackErrors = props.rollbackErrors ?? thresholds.functionErrors;
    if (!Number.isInteger(this.rollbackErrors) || this.rollbackErrors < 1) {
      throw new Error(`rollbackErrors: expected a positive integer, got ${this.rollbackErrors}`);
    }
    this.rollbackLatencyPercent = props.rollbackLatencyPercentOfTimeout ?? thresholds.functionDurationPercentOfTimeout;
    if (!(this.rollbackLatencyPercent > 0 && this.rollbackLatencyPercent <= 100)) {
      throw new Error(`rollbackLatencyPercentOfTimeout: expected more than 0 and at most 100, got ${this.rollbackLatencyPercent}`);
    }
    this.metricsNamespace = metricsNamespace(props.stage.name);
    this.application = new codedeploy.LambdaApplication(this, 'Application');
  }

  /** A deployment that fails (a rollback alarm fired, or it was stopped) is an event, not a metric: a warning. */
  public addMonitoring(monitor: IMonitor): void {
    const field = (path: string) => events.EventField.fromPath(path);
    monitor.addEventNotification(this, 'FailedDeployments', {
      severity: AlarmSeverity.WARNING,
      description: `ONS data platform (${monitor.stageName}): failed or rolled-back function deployments`,
      eventPattern: {
        source: ['aws.codedeploy'],
        detailType: ['CodeDeploy Deployment State-change Notification'],
        detail: { state: ['FAILURE'], application: [this.application.applicationName] },
      },
      message: events.RuleTargetInput.fromText(
        `[warning] ONS data platform (${monitor.stageName}): deployment ${field('$.detail.deploymentId')} of group ${field('$.detail.deploymentGroup')} `
        + `failed at ${field('$.time')}; CodeDeploy rolled the alias back to the previous version. See the deployment's rollback alarms.`,
      ),
    });
  }

  /** Every function published so far. */
  public get publishedFunctions(): PublishedFunction[] {
    return [...this.published.values()];
  }

  /**
   * Publishes `fn` (once: later calls return the same alias): its current version behind the alias,
   * a deployment group with this construct's traffic shifting, and the rollback alarms (errors and latency of
   * the alias; with `watchServerErrors`, the 5xx answers of the new version).
   */
  public publish(fn: lambda.Function, options: PublishOptions = {}): PublishedFunction {
    const existing = this.published.get(fn);
    if (existing) {
      if (options.watchServerErrors && !existing.serverErrorsAlarm) {
        throw new Error(`watchServerErrors: ${fn.node.path} was already published without it; publish an API handler with it the first time`);
      }
      return existing;
    }

    // Under the function, so every id is unique and the resources read as the function's own.
    const alias = new lambda.Alias(fn, 'LiveAlias', { aliasName: this.aliasName, version: fn.currentVersion });
    const minute = Duration.minutes(1);
    // One minute, one datapoint: a canary lasts minutes, so the alarms must fire within its window.
    const errorsAlarm = new cloudwatch.Alarm(fn, 'DeploymentErrors', {
      metric: alias.metricErrors({ period: minute, statistic: 'Sum' }),
      threshold: this.rollbackErrors,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: `Deployment of ${fn.node.path}: ${this.rollbackErrors} or more errors of alias ${this.aliasName} in 1 minute (rolls the deployment back)`,
    });
    const timeout = fn.timeout ?? Duration.seconds(3);
    const limit = Math.round(timeout.toMilliseconds() * this.rollbackLatencyPercent / 100);
    const latencyAlarm = new cloudwatch.Alarm(fn, 'DeploymentLatency', {
      metric: alias.metricDuration({ period: minute, statistic: 'p99' }),
      threshold: limit,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: `Deployment of ${fn.node.path}: p99 duration of alias ${this.aliasName} at or above ${this.rollbackLatencyPercent}% of the `
        + `${timeout.toHumanString()} timeout (${limit} ms) in 1 minute (rolls the deployment back)`,
    });
    const serverErrorsAlarm = options.watchServerErrors ? this.serverErrorsAlarm(fn) : undefined;
    const deploymentGroup = new codedeploy.LambdaDeploymentGroup(fn, 'Deployment', {
      application: this.application,
      alias,
      deploymentConfig: this.deploymentConfig,
      // CodeDeploy takes at most 10 alarms per deployment group (AWS::CodeDeploy::DeploymentGroup AlarmConfiguration).
      alarms: [errorsAlarm, latencyAlarm, ...(serverErrorsAlarm ? [serverErrorsAlarm] : [])],
      autoRollback: { failedDeployment: true, stoppedDeployment: true, deploymentInAlarm: true },
    });
    Validations.of(deploymentGroup.role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited]',
      reason: 'CodeDeploy adds AWSCodeDeployRoleForLambdaLimited to every Lambda deployment group role: the AWS-maintained policy limited to '
        + 'alias reads and updates, alarm reads and invoking hook functions named CodeDeployHook_*.',
    });
    // The alarm names the new version: CloudFormation updates it before the alias update starts the traffic shifting.
    if (serverErrorsAlarm) alias.node.addDependency(serverErrorsAlarm);
    const result: PublishedFunction = { function: fn, alias, deploymentGroup, errorsAlarm, latencyAlarm, serverErrorsAlarm };
    this.published.set(fn, result);
    return result;
  }

  /**
   * 5xx answers of the version being deployed: the handlers count them in `ServerErrors` with the function's name
   * and version (Lambda's AWS_LAMBDA_FUNCTION_VERSION), so only the new version's answers count, whatever share of
   * the traffic it has, and the old version's errors never roll the new one back.
   */
  private serverErrorsAlarm(fn: lambda.Function): cloudwatch.Alarm {
    const metric = new cloudwatch.Metric({
      namespace: this.metricsNamespace,
      metricName: PlatformMetrics.SERVER_ERRORS.name,
      dimensionsMap: {
        [FUNCTION_DIMENSIONS.FUNCTION_NAME.name]: fn.functionName,
        [FUNCTION_DIMENSIONS.FUNCTION_VERSION.name]: fn.currentVersion.version,
      },
      statistic: 'Sum',
      period: Duration.minutes(1),
    });
    return new cloudwatch.Alarm(fn, 'DeploymentServerErrors', {
      metric,
      threshold: this.rollbackErrors,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      // No 5xx answer publishes nothing: a healthy version has no datapoint at all.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: `Deployment of ${fn.node.path}: ${this.rollbackErrors} or more 5xx answers of the new version in 1 minute (rolls the deployment back)`,
    });
  }
}

/**
 * What callers invoke: the alias when a deployment is given and `fn` is a function of this app, `fn` itself
 * otherwise (an imported function has no version to publish).
 * @internal
 */
export function invokeTarget(deployment: SafeDeployment | undefined, fn: lambda.IFunction, options?: PublishOptions): lambda.IFunction {
  return deployment && fn instanceof lambda.Function ? deployment.publish(fn, options).alias : fn;
}
