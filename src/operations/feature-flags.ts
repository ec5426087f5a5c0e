import { Duration, Lazy, Stack, Token } from 'aws-cdk-lib';
import * as appconfig from 'aws-cdk-lib/aws-appconfig';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { grantKeyViaService } from '../core/defaults';
import { IFeatureFlags } from '../core/flags';
import { IHealthProbe } from '../core/health-probe';
import { acknowledgeScopedWildcards } from '../core/nag';
import type { AwsCall, CallerInventory } from '../core/permissions';
import { PlatformStage } from '../core/stage';
import { FeatureFlag, FlagsEnv, POLL_INTERVAL_BOUNDS } from '../runtime/contract';

/**
 * Values of the feature flags, owned by CDK: a change here is a new version of the flags profile, deployed with
 * the stage's (monitored) strategy. Operators do not edit that profile: they switch a feature off with its kill
 * switch (`FeatureFlags.killSwitches`), which CDK never writes after creating it.
 */
export interface FeatureFlagDefaults {
  /**
   * `POST /query` answers questions (off: 503 `FeatureDisabled`).
   *
   * @default true
   */
  readonly ragQueries?: boolean;

  /**
   * `GET /timeseries/{dataset}` answers (off: 503 `FeatureDisabled`).
   *
   * @default true
   */
  readonly timeSeriesApi?: boolean;

  /**
   * Files above `lambdaMaxBytes` go to AWS Batch (off: they wait in quarantine with that reason, to be
   * backfilled once the flag is on again).
   *
   * @default true
   */
  readonly largeFileBatch?: boolean;

  /**
   * Largest file, in bytes, processed by Lambda (an attribute of `largeFileBatch`).
   *
   * @default 268435456 (256 MiB)
   */
  readonly lambdaMaxBytes?: number;

  /**
   * The pipeline starts a knowledge-base ingestion job after each file (off: the step is skipped and
   * the ledger says so; the deployment and scheduled syncs still run).
   *
   * @default true
   */
  readonly knowledgeBaseSync?: boolean;

  /**
   * `POST /query` lets the model query the time series, the catalog and the documents (Converse with tools; off:
   * documents only, through RetrieveAndGenerate). The switch for a model that misreads numbers.
   *
   * @default true
   */
  readonly numericAnswers?: boolean;
}

/**
 * Options of the feature flags that `OnsDataPlatform` passes through.
 */
export interface FeatureFlagsOptions {
  /**
   * The flags' first values.
   *
   * @default - every flag on, Lambda up to 256 MiB
   */
  readonly defaults?: FeatureFlagDefaults;

  /**
   * How a new version of the flags rolls out.
   *
   * @default - from the stage's Lambda deployment configuration: all at once without bake time (DEV), linear 50 % every
   * 30 seconds with 1 minute of bake time (STAGING), linear 20 % every 6 minutes with 30 minutes of
   * bake time (PROD and any canary or custom configuration)
   */
  readonly rolloutStrategy?: appconfig.RolloutStrategy;

  /**
   * How long a handler keeps the flags it read before asking AppConfig again: also the poll interval its
   * AppConfig Data session asks for (`RequiredMinimumPollIntervalInSeconds`, 15 to 86400 seconds), so no poll
   * comes before AppConfig allows it (an early poll is refused with BadRequestException). Whole seconds.
   *
   * @default Duration.seconds(60)
   */
  readonly cacheTtl?: Duration;
}

/**
 * Properties of `FeatureFlags`.
 */
export interface FeatureFlagsProps extends FeatureFlagsOptions {
  /** The stage: the environment's name and the rollout strategy come from it. */
  readonly stage: PlatformStage;

  /** Encrypts the hosted configuration (readers need kms:Decrypt on it). */
  readonly encryptionKey: kms.IKey;
}

/**
 * The platform's feature flags in AWS AppConfig: an application, one environment for the stage, a
 * feature-flag configuration profile (`AWS.AppConfig.FeatureFlags`: `ragQueries`, `timeSeriesApi`,
 * `largeFileBatch` with its `lambdaMaxBytes` attribute, `knowledgeBaseSync`, `numericAnswers`) encrypted with the
 * platform key, and a deployment strategy from the stage. Alarms given to `rollBackOn()` watch every
 * deployment: AppConfig rolls the flags back when one fires during the rollout or the bake time.
 *
 * Handlers read the flags with Powertools Parameters (AppConfig provider, cached for `cacheTtl`):
 * `bind(fn)` gives a function the environment and the read permissions.
 *
 * @example
 * const flags = new FeatureFlags(stack, 'Flags', { stage: PlatformStage.PROD, encryptionKey: key });
 * flags.bind(myFunction);
 */
export class FeatureFlags extends Construct implements IFeatureFlags {
  /** The AppConfig application. */
  public readonly application: appconfig.Application;
  /** The stage's environment. */
  public readonly environment: appconfig.Environment;
  /** The feature-flag configuration profile and its first version. */
  public readonly configuration: appconfig.HostedConfiguration;
  /** The rollout strategy of every flag deployment. */
  public readonly deploymentStrategy: appconfig.DeploymentStrategy;
  /**
   * The environment of the kill switches: no alarm watches it, so a kill switch deployed during an incident (the
   * critical alarm already in ALARM) stays. Named `<stage>-kill-switches`.
   */
  public readonly killSwitchEnvironment: appconfig.Environment;
  /**
   * The kill-switch profile (`kill-switches`, `AWS.AppConfig.FeatureFlags`): the same four flags, all on. Operators
   * own it: CDK writes its first version only (its content is fixed), and a flag off here is off for every reader,
   * whatever the flags profile says.
   */
  public readonly killSwitches: appconfig.HostedConfiguration;
  /** Deploys the kill switches at once: to every reader in one step, no bake time. */
  public readonly emergencyStrategy: appconfig.DeploymentStrategy;
  private readonly key: kms.IKey;
  private readonly cacheTtl: Duration;
  private readonly environmentName: string;
  private readonly killSwitchEnvironmentName: string;
  /** CDK's flag values (`defaults`), as the served flags should be: the readiness check reports a difference. */
  private readonly deployedValues: Record<string, boolean>;
  private readonly alarms: cloudwatch.IAlarm[] = [];
  private monitorRole?: iam.Role;

  constructor(scope: Construct, id: string, props: FeatureFlagsProps) {
    super(scope, id);
    this.key = props.encryptionKey;
    this.cacheTtl = props.cacheTtl ?? Duration.seconds(60);
    validateCacheTtl(this.cacheTtl);
    const defaults = props.defaults ?? {};
    const lambdaMaxBytes = defaults.lambdaMaxBytes ?? 256 * 1024 * 1024;
    if (!Number.isInteger(lambdaMaxBytes) || lambdaMaxBytes < 1) throw new Error(`defaults.lambdaMaxBytes: expected a positive integer, got ${lambdaMaxBytes}`);

    const name = `ons-data-platform-${props.stage.name}`;
    this.application = new appconfig.Application(this, 'Application', { applicationName: name, description: 'ONS data platform feature flags' });
    this.environmentName = props.stage.name;
    this.environment = new appconfig.Environment(this, 'Environment', {
      application: this.application,
      environmentName: this.environmentName,
      description: `Stage ${props.stage.name}`,
    });
    this.deploymentStrategy = new appconfig.DeploymentStrategy(this, 'Strategy', {
      rolloutStrategy: props.rolloutStrategy ?? defaultRollout(props.stage),
      description: `Feature-flag rollout of ${name}`,
    });
    const document = flagDocument(defaults, lambdaMaxBytes);
    this.deployedValues = Object.fromEntries(Object.entries(document.values).map(([flag, v]) => [flag, v.enabled]));
    this.configuration = new appconfig.HostedConfiguration(this, 'Flags', {
      application: this.application,
      name: 'feature-flags',
      // Unchanged: the description is copied to the deployment, and a new one would deploy CDK's version again.
      description: 'ragQueries, timeSeriesApi, largeFileBatch (lambdaMaxBytes), knowledgeBaseSync, numericAnswers',
      type: appconfig.ConfigurationType.FEATURE_FLAGS,
      content: appconfig.ConfigurationContent.fromInlineJson(JSON.stringify(document)),
      kmsKey: this.key,
      deploymentStrategy: this.deploymentStrategy,
      deployTo: [this.environment],
    });
    // Monitors belong to an environment, and AppConfig rolls back any deployment to a monitored environment while
    // an alarm is in ALARM: the kill switches live in an environment of their own, with no monitor.
    this.killSwitchEnvironmentName = `${props.stage.name}-kill-switches`;
    this.killSwitchEnvironment = new appconfig.Environment(this, 'KillSwitchEnvironment', {
      application: this.application,
      environmentName: this.killSwitchEnvironmentName,
      description: `Stage ${props.stage.name}: kill switches, never rolled back by an alarm`,
    });
    const immediate = Duration.minutes(0);
    this.emergencyStrategy = new appconfig.DeploymentStrategy(this, 'EmergencyStrategy', {
      rolloutStrategy: appconfig.RolloutStrategy.linear({ growthFactor: 100, deploymentDuration: immediate, finalBakeTime: immediate }),
      description: `Kill switches of ${name}: every reader at once, no bake time`,
    });
    this.killSwitches = new appconfig.HostedConfiguration(this, 'KillSwitches', {
      application: this.application,
      name: 'kill-switches',
      description: 'Owned by operators: a flag off here is off whatever feature-flags says. CDK writes the first version only.',
      type: appconfig.ConfigurationType.FEATURE_FLAGS,
      // Fixed content: CloudFormation never makes a second version, so a deploy never turns a kill switch back on.
      content: appconfig.ConfigurationContent.fromInlineJson(JSON.stringify(KILL_SWITCH_DOCUMENT)),
      kmsKey: this.key,
      deploymentStrategy: this.emergencyStrategy,
      deployTo: [this.killSwitchEnvironment],
    });
    // AppConfig watches these alarms during each deployment and its bake time; added by rollBackOn().
    (this.environment.node.defaultChild as appconfig.CfnEnvironment).monitors = Lazy.any({
      produce: () => (this.alarms.length
        ? this.alarms.map((alarm) => ({ alarmArn: alarm.alarmArn, alarmRoleArn: this.monitorRole!.roleArn }))
        : undefined),
    });
  }

  /**
   * Rolls a flag deployment back when `alarm` fires during the rollout or the bake time. AppConfig
   * watches at most 5 alarms per environment: give a composite alarm for more.
   */
  public rollBackOn(alarm: cloudwatch.IAlarm): void {
    if (this.alarms.length === 5) throw new Error('rollBackOn: AppConfig monitors at most 5 alarms per environment; combine them in a composite alarm');
    this.monitorRole ??= new iam.Role(this, 'MonitorRole', {
      assumedBy: new iam.ServicePrincipal('appconfig.amazonaws.com'),
      description: 'Lets AppConfig read the alarms that roll feature-flag deployments back',
    });
    this.monitorRole.addToPolicy(new iam.PolicyStatement({ actions: ['cloudwatch:DescribeAlarms'], resources: [alarm.alarmArn] }));
    this.alarms.push(alarm);
  }

  /**
   * AppConfig's calls with the monitor role (reading the rollback alarms), for the permission-closure test.
   * @internal
   */
  public _permissionInventory(): CallerInventory[] {
    if (!this.monitorRole) return [];
    return [{
      name: 'feature-flag rollback monitor (AppConfig)',
      principal: this.monitorRole,
      calls: this.alarms.map((alarm) => ({ action: 'cloudwatch:DescribeAlarms', resource: alarm.alarmArn })),
    }];
  }

  /** Lets `grantee` read the flags and the kill switches (a configuration session and its latest version). */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    grantKeyViaService(grantee, this.key, 'appconfig', 'kms:Decrypt');
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['appconfig:StartConfigurationSession', 'appconfig:GetLatestConfiguration'],
      resourceArns: [this.configurationArn(this.configuration), this.configurationArn(this.killSwitches)],
    });
  }

  /** Gives `fn` the environment that names the flags and the permission to read them. */
  public bind(fn: lambda.Function): void {
    fn.addEnvironment(FlagsEnv.APPLICATION, this.application.applicationId);
    fn.addEnvironment(FlagsEnv.ENVIRONMENT, this.environmentName);
    fn.addEnvironment(FlagsEnv.PROFILE, this.configuration.configurationProfileId);
    fn.addEnvironment(FlagsEnv.MAX_AGE_SECONDS, String(this.cacheTtl.toSeconds()));
    fn.addEnvironment(FlagsEnv.KILL_SWITCH_ENVIRONMENT, this.killSwitchEnvironmentName);
    fn.addEnvironment(FlagsEnv.KILL_SWITCH_PROFILE, this.killSwitches.configurationProfileId);
    this.grantRead(fn);
    if (fn.role) acknowledgeScopedWildcards(fn.role);
  }

  /**
   * How the health check reads the flags (`GET /health/ready` component `flags`): where they are, their cache
   * time (the poll interval), and the read permissions. Up when the profile holds every flag.
   */
  public healthProbe(): IHealthProbe {
    return {
      config: {
        application: this.application.applicationId,
        environment: this.environmentName,
        profile: this.configuration.configurationProfileId,
        maxAgeSeconds: String(this.cacheTtl.toSeconds()),
        killSwitchEnvironment: this.killSwitchEnvironmentName,
        killSwitchProfile: this.killSwitches.configurationProfileId,
        // Readiness names flags whose served value is not CDK's: a console edit the next deploy will undo.
        deployedValues: JSON.stringify(this.deployedValues),
      },
      grant: (grantee) => this.grantRead(grantee),
    };
  }

  /**
   * The profile's ARN in any environment of the application (`environment/` then a wildcard): what a session reads.
   * Readers name the environment instead of referencing it: the environment's rollback alarms watch these
   * very functions, and a reference back would be a dependency cycle. The application has the stage's environment
   * and the kill switches' one.
   */
  /**
   * The calls a bound function makes to read the flags and the kill switches (each profile in its own environment),
   * for the permission-closure test (src/core/permissions.ts).
   * @internal
   */
  public _readCalls(): AwsCall[] {
    return ([[this.configuration, this.environment], [this.killSwitches, this.killSwitchEnvironment]] as const).flatMap(([profile, env]) => {
      const resource = this.configurationArn(profile).replace('/environment/*/', `/environment/${env.environmentId}/`);
      return [
        { action: 'appconfig:StartConfigurationSession', resource },
        { action: 'appconfig:GetLatestConfiguration', resource, kmsKey: this.key.keyArn },
      ];
    });
  }

  private configurationArn(profile: appconfig.HostedConfiguration): string {
    const stack = Stack.of(this);
    return stack.formatArn({
      service: 'appconfig',
      resource: 'application',
      resourceName: `${this.application.applicationId}/environment/*/configuration/${profile.configurationProfileId}`,
    });
  }
}

/**
 * The cache time is the session's poll interval: AppConfig Data's `RequiredMinimumPollIntervalInSeconds` takes
 * 15 to 86400 whole seconds (StartConfigurationSession).
 */
function validateCacheTtl(ttl: Duration): void {
  if (ttl.isUnresolved()) throw new Error('cacheTtl: must be a literal duration (it is the AppConfig poll interval)');
  const ms = ttl.toMilliseconds();
  const seconds = ms / 1000;
  if (!Number.isInteger(seconds) || seconds < POLL_INTERVAL_BOUNDS.min || seconds > POLL_INTERVAL_BOUNDS.max) {
    throw new Error(`cacheTtl: whole seconds from ${POLL_INTERVAL_BOUNDS.min} to ${POLL_INTERVAL_BOUNDS.max} (AppConfig Data's RequiredMinimumPollIntervalInSeconds; a shorter cache would poll before AppConfig allows), got ${seconds} s`);
  }
}

/** The rollout that matches how the stage deploys its functions (compared by the CodeDeploy configuration's name). */
function defaultRollout(stage: PlatformStage): appconfig.RolloutStrategy {
  const name = stage.deploymentConfig.deploymentConfigName;
  if (!Token.isUnresolved(name) && /AllAtOnce/.test(name)) {
    // AppConfig's predefined AllAtOnce bakes 10 minutes; a development stage takes a flag change at once.
    const immediate = Duration.minutes(0);
    return appconfig.RolloutStrategy.linear({ growthFactor: 100, deploymentDuration: immediate, finalBakeTime: immediate });
  }
  if (!Token.isUnresolved(name) && /Linear/.test(name)) return appconfig.RolloutStrategy.LINEAR_50_PERCENT_EVERY_30_SECONDS;
  return appconfig.RolloutStrategy.LINEAR_20_PERCENT_EVERY_6_MINUTES;
}

/**
 * The kill switches' `AWS.AppConfig.FeatureFlags` document: the platform's flags, without attributes, all on. The
 * same whatever the props, so CDK writes it once.
 */
/**
 * The flags with a kill switch written by CDK. Frozen: another document is a new version that CloudFormation deploys,
 * turning every switch back on. A later flag (`numericAnswers`) has none until operators add it (a missing flag is on).
 */
const KILL_SWITCH_FLAGS = [FeatureFlag.RAG_QUERIES, FeatureFlag.TIME_SERIES_API, FeatureFlag.LARGE_FILE_BATCH, FeatureFlag.KNOWLEDGE_BASE_SYNC];
const KILL_SWITCH_DOCUMENT = {
  version: '1',
  flags: Object.fromEntries(KILL_SWITCH_FLAGS.map((flag) => [flag, { name: `Kill switch: ${flag}`, description: `Off: ${flag} is off, whatever feature-flags says` }])),
  values: Object.fromEntries(KILL_SWITCH_FLAGS.map((flag) => [flag, { enabled: true }])),
};

/** An `AWS.AppConfig.FeatureFlags` document. */
interface FlagDocument {
  readonly version: string;
  readonly flags: Record<string, unknown>;
  readonly values: Record<string, { enabled: boolean; lambdaMaxBytes?: number }>;
}

/** The `AWS.AppConfig.FeatureFlags` document: definitions and first values. */
function flagDocument(defaults: FeatureFlagDefaults, lambdaMaxBytes: number): FlagDocument {
  const on = (value: boolean | undefined) => value ?? true;
  return {
    version: '1',
    flags: {
      [FeatureFlag.RAG_QUERIES]: { name: 'RAG queries', description: 'POST /query answers questions' },
      [FeatureFlag.TIME_SERIES_API]: { name: 'Time-series API', description: 'GET /timeseries/{dataset} answers' },
      [FeatureFlag.LARGE_FILE_BATCH]: {
        name: 'Large files on AWS Batch',
        description: 'Files above lambdaMaxBytes are processed by AWS Batch',
        attributes: { lambdaMaxBytes: { constraints: { type: 'number', required: true, minimum: 1 } } },
      },
      [FeatureFlag.KNOWLEDGE_BASE_SYNC]: { name: 'Knowledge-base sync', description: 'The pipeline syncs the knowledge base after each file' },
      [FeatureFlag.NUMERIC_ANSWERS]: { name: 'Numeric answers', description: 'POST /query lets the model query the time series' },
    },
    values: {
      [FeatureFlag.RAG_QUERIES]: { enabled: on(defaults.ragQueries) },
      [FeatureFlag.TIME_SERIES_API]: { enabled: on(defaults.timeSeriesApi) },
      [FeatureFlag.LARGE_FILE_BATCH]: { enabled: on(defaults.largeFileBatch), lambdaMaxBytes },
      [FeatureFlag.KNOWLEDGE_BASE_SYNC]: { enabled: on(defaults.knowledgeBaseSync) },
      [FeatureFlag.NUMERIC_ANSWERS]: { enabled: on(defaults.numericAnswers) },
    },
  };
}
