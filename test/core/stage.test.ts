import { Duration } from 'aws-cdk-lib';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { PlatformStage } from '../../src';
import { resolveAlarmThresholds } from '../../src/core/stage';

describe('PlatformStage presets', () => {
  test.each([
    [PlatformStage.DEV, 'dev', logs.RetentionDays.ONE_WEEK, true, lambda.Tracing.DISABLED, codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE],
    [PlatformStage.STAGING, 'staging', logs.RetentionDays.ONE_MONTH, true, lambda.Tracing.ACTIVE, codedeploy.LambdaDeploymentConfig.LINEAR_10PERCENT_EVERY_1MINUTE],
    [PlatformStage.PROD, 'prod', logs.RetentionDays.THREE_MONTHS, false, lambda.Tracing.ACTIVE, codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_5MINUTES],
  ])('%#: %s', (stage, name, retention, allowDataRemoval, tracing, deployment) => {
    expect(stage.name).toBe(name);
    expect(stage.logRetention).toBe(retention);
    expect(stage.allowDataRemoval).toBe(allowDataRemoval);
    expect(stage.tracing).toBe(tracing);
    expect(stage.deploymentConfig).toBe(deployment);
  });

  test('log retention is 7, 30 and 90 days', () => {
    expect([PlatformStage.DEV, PlatformStage.STAGING, PlatformStage.PROD].map((s) => s.logRetention)).toEqual([7, 30, 90]);
  });

  test('throttling and alarm thresholds tighten towards production', () => {
    const [dev, staging, prod] = [PlatformStage.DEV, PlatformStage.STAGING, PlatformStage.PROD];
    expect(dev.apiThrottling.rateLimit).toBeLessThan(staging.apiThrottling.rateLimit);
    expect(staging.apiThrottling.rateLimit).toBeLessThan(prod.apiThrottling.rateLimit);
    expect(prod.alarmThresholds.functionErrors).toBeLessThan(dev.alarmThresholds.functionErrors);
    expect(prod.alarmThresholds.apiLatencyP99.toMilliseconds()).toBeLessThan(dev.alarmThresholds.apiLatencyP99.toMilliseconds());
  });

  test('POST /query is throttled at a tenth of the other methods; magnetic-store rejections alarm at 100, 10 and 1', () => {
    const stages = [PlatformStage.DEV, PlatformStage.STAGING, PlatformStage.PROD];
    expect(stages.map((s) => s.queryThrottling)).toEqual([
      { rateLimit: 2, burstLimit: 4 }, { rateLimit: 5, burstLimit: 10 }, { rateLimit: 10, burstLimit: 20 },
    ]);
    expect(stages.map((s) => s.alarmThresholds.magneticStoreRejectedRecords)).toEqual([100, 10, 1]);
    expect(PlatformStage.PROD.derive({ name: 'qa', queryThrottling: { rateLimit: 1, burstLimit: 1 } }).queryThrottling).toEqual({ rateLimit: 1, burstLimit: 1 });
    expect(PlatformStage.PROD.derive({ name: 'qa' }).queryThrottling).toEqual(PlatformStage.PROD.queryThrottling);
  });

  test('every preset sets every lifecycle field', () => {
    for (const stage of [PlatformStage.DEV, PlatformStage.STAGING, PlatformStage.PROD]) {
      expect(Object.values(stage.lifecycle).filter((v) => v === undefined)).toEqual([]);
      expect(Object.keys(stage.lifecycle)).toHaveLength(8);
    }
  });
});

describe('PlatformStage.derive', () => {
  test('takes the base values and changes only what it is given', () => {
    const qa = PlatformStage.STAGING.derive({
      name: 'qa',
      logRetention: logs.RetentionDays.TWO_WEEKS,
      lifecycle: { failedExpirationDays: 60 },
    });
    expect(qa.name).toBe('qa');
    expect(qa.logRetention).toBe(logs.RetentionDays.TWO_WEEKS);
    expect(qa.lifecycle).toEqual({ ...PlatformStage.STAGING.lifecycle, failedExpirationDays: 60 });
    expect(qa.apiThrottling).toEqual(PlatformStage.STAGING.apiThrottling);
    expect(qa.tracing).toBe(PlatformStage.STAGING.tracing);
    expect(qa.allowDataRemoval).toBe(true);
    // The preset itself is untouched.
    expect(PlatformStage.STAGING.lifecycle.failedExpirationDays).toBe(365);
  });

  test('a stage derived from PROD does not allow data removal unless told', () => {
    expect(PlatformStage.PROD.derive({ name: 'prod-eu' }).allowDataRemoval).toBe(false);
    expect(PlatformStage.PROD.derive({ name: 'prod-eu', allowDataRemoval: true }).allowDataRemoval).toBe(true);
  });

  const base = PlatformStage.PROD.alarmThresholds;
  test.each([
    [{ name: 'Prod' }, /PlatformStage name: expected 1-32 lower-case letters/],
    [{ name: '' }, /PlatformStage name/],
    [{ name: 'x', apiThrottling: { rateLimit: 0, burstLimit: 10 } }, /PlatformStage 'x' apiThrottling.rateLimit: expected a positive number, got 0/],
    [{ name: 'x', apiThrottling: { rateLimit: 10, burstLimit: 1.5 } }, /apiThrottling.burstLimit: expected a positive integer/],
    [{ name: 'x', queryThrottling: { rateLimit: -1, burstLimit: 1 } }, /PlatformStage 'x' queryThrottling.rateLimit: expected a positive number, got -1/],
    [{ name: 'x', queryThrottling: { rateLimit: 1, burstLimit: 0 } }, /PlatformStage 'x' queryThrottling.burstLimit: expected a positive integer/],
    [{ name: 'x', alarmThresholds: { magneticStoreRejectedRecords: 0.5 } }, /PlatformStage 'x' alarmThresholds.magneticStoreRejectedRecords: expected a positive integer/],
    [{ name: 'x', alarmThresholds: { ...base, functionDurationPercentOfTimeout: 120 } }, /alarmThresholds.functionDurationPercentOfTimeout: expected a percentage/],
    [{ name: 'x', alarmThresholds: { ...base, datapointsToAlarm: 5, evaluationPeriods: 3 } }, /datapointsToAlarm \(5\) must not exceed evaluationPeriods \(3\)/],
    [{ name: 'x', lifecycle: { rawDeepArchiveAfterDays: -365 } }, /PlatformStage 'x' lifecycle.rawDeepArchiveAfterDays: expected a whole number of days/],
    [{ name: 'x', lifecycle: { rawInfrequentAccessAfterDays: 100 } }, /rawGlacierInstantRetrievalAfterDays \(90\) must come at least 30 days after rawInfrequentAccessAfterDays \(100\)/],
  ])('%j is refused', (overrides, message) => {
    expect(() => PlatformStage.PROD.derive(overrides)).toThrow(message);
  });

  test('alarm thresholds change field by field, like monitoring overrides', () => {
    const qa = PlatformStage.PROD.derive({ name: 'qa', alarmThresholds: { functionErrors: 4, period: Duration.minutes(1) } });
    expect(qa.alarmThresholds).toEqual({ ...PlatformStage.PROD.alarmThresholds, functionErrors: 4, period: Duration.minutes(1) });
    expect(resolveAlarmThresholds(PlatformStage.PROD, { functionErrors: 4, period: Duration.minutes(1) }))
      .toEqual({ lakeQueryTimeP99: Duration.seconds(20), ...qa.alarmThresholds });
    // An unset field keeps the base value, even when given as undefined.
    expect(PlatformStage.PROD.derive({ name: 'qa', alarmThresholds: { functionErrors: undefined } }).alarmThresholds).toEqual(PlatformStage.PROD.alarmThresholds);
    expect(() => resolveAlarmThresholds(PlatformStage.PROD, { functionErrors: 0 })).toThrow(/PlatformStage 'prod' alarmThresholds.functionErrors/);
  });

  test('a longer alarm period is kept as given', () => {
    const slow = PlatformStage.DEV.derive({ name: 'slow', alarmThresholds: { ...PlatformStage.DEV.alarmThresholds, period: Duration.minutes(15) } });
    expect(slow.alarmThresholds.period.toMinutes()).toBe(15);
  });
});

describe('PlatformStage.custom', () => {
  const props = {
    name: 'lab',
    logRetention: logs.RetentionDays.ONE_DAY,
    apiThrottling: { rateLimit: 1, burstLimit: 2 },
    allowDataRemoval: true,
    lifecycle: { ...PlatformStage.DEV.lifecycle },
    deploymentConfig: codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE,
    tracing: lambda.Tracing.PASS_THROUGH,
    alarmThresholds: PlatformStage.DEV.alarmThresholds,
  };

  test('the optional alarm thresholds resolve to their documented defaults', () => {
    const {
      apiClientErrorRatePercent, functionThrottles, recordsRejected, timeSeriesErrors, storeUtilizationPercent, lakeQueryTimeP99,
      magneticStoreRejectedRecords, ...required
    } = PlatformStage.DEV.alarmThresholds;
    const lab = PlatformStage.custom({ ...props, alarmThresholds: required });
    expect(lab.alarmThresholds).toEqual(required);
    expect(resolveAlarmThresholds(lab)).toEqual({
      ...required,
      apiClientErrorRatePercent: 25,
      functionThrottles: 1,
      recordsRejected: 100,
      timeSeriesErrors: 1,
      magneticStoreRejectedRecords: 1,
      storeUtilizationPercent: 80,
      lakeQueryTimeP99: Duration.seconds(20),
    });
  });

  test('without queryThrottling, POST /query gets a tenth of apiThrottling, at least 1 rps and a burst of 1', () => {
    const busy = PlatformStage.custom({ ...props, apiThrottling: { rateLimit: 300, burstLimit: 600 } });
    expect(busy.queryThrottling).toEqual({ rateLimit: 30, burstLimit: 60 });
    expect(PlatformStage.custom(props).queryThrottling).toEqual({ rateLimit: 1, burstLimit: 1 });
    const given = PlatformStage.custom({ ...props, queryThrottling: { rateLimit: 0.5, burstLimit: 1 } });
    expect(given.queryThrottling).toEqual({ rateLimit: 0.5, burstLimit: 1 });
  });

  test('takes every value as given, copied', () => {
    const lifecycle = { ...PlatformStage.DEV.lifecycle };
    const lab = PlatformStage.custom({ ...props, lifecycle });
    lifecycle.failedExpirationDays = 1;
    expect(lab.name).toBe('lab');
    expect(lab.tracing).toBe(lambda.Tracing.PASS_THROUGH);
    expect(lab.lifecycle.failedExpirationDays).toBe(PlatformStage.DEV.lifecycle.failedExpirationDays);
  });

  test('requires a complete lifecycle', () => {
    expect(() => PlatformStage.custom({ ...props, lifecycle: { rawInfrequentAccessAfterDays: 30 } }))
      .toThrow("PlatformStage 'lab' lifecycle.rawGlacierInstantRetrievalAfterDays: required, got undefined");
  });
});

describe('PlatformStage time-series retention', () => {
  test('memory store 24, 72 and 168 hours; magnetic store 73000 days (ONS history starts in 2000)', () => {
    expect([PlatformStage.DEV, PlatformStage.STAGING, PlatformStage.PROD].map((s) => s.timeSeriesRetention)).toEqual([
      { memoryStoreHours: 24, magneticStoreDays: 73000 },
      { memoryStoreHours: 72, magneticStoreDays: 73000 },
      { memoryStoreHours: 168, magneticStoreDays: 73000 },
    ]);
  });

  test('derived stages keep or change it; out-of-range values name the field', () => {
    expect(PlatformStage.PROD.derive({ name: 'qa' }).timeSeriesRetention.memoryStoreHours).toBe(168);
    expect(PlatformStage.PROD.derive({ name: 'qa', timeSeriesRetention: { memoryStoreHours: 6, magneticStoreDays: 36500 } }).timeSeriesRetention)
      .toEqual({ memoryStoreHours: 6, magneticStoreDays: 36500 });
    expect(() => PlatformStage.DEV.derive({ name: 'x', timeSeriesRetention: { memoryStoreHours: 0, magneticStoreDays: 10 } }))
      .toThrow(/timeSeriesRetention.memoryStoreHours/);
    expect(() => PlatformStage.DEV.derive({ name: 'x', timeSeriesRetention: { memoryStoreHours: 1, magneticStoreDays: 73001 } }))
      .toThrow(/timeSeriesRetention.magneticStoreDays/);
  });
});
