import { AppConfigProvider } from '@aws-lambda-powertools/parameters/appconfig';
import { DEFAULT_POLL_INTERVAL_SECONDS, FeatureFlag, FlagsEnv, POLL_INTERVAL_BOUNDS } from './contract';
import { log } from './telemetry';

/**
 * Handler side of the feature flags (bundled into the handlers that read them): the flags of the
 * function's AppConfig environment, read with Powertools Parameters' AppConfig provider and kept for
 * `ONS_FLAGS_MAX_AGE_SECONDS`.
 *
 * Decisions:
 * - A function without the flags' environment (a part used on its own, a local run) treats every flag
 *   as on: flags switch features off, they are not needed to run.
 * - Two profiles: the flags (owned by CDK, deployed with the monitored strategy) and the kill switches (owned by
 *   operators, in an environment no alarm watches, deployed at once). A flag is on when both say so, so an
 *   operator can switch a feature off during an incident without AppConfig rolling it back; its attributes
 *   come from the flags profile.
 * - When AppConfig cannot be read, the last value read stays in force; with none yet, every flag is on,
 *   and the error is logged. A kill switch that fails closed would turn an AppConfig outage into an
 *   outage of the platform.
 * - Never a forced fetch: AppConfig Data refuses (BadRequestException) a GetLatestConfiguration made before
 *   the session's `RequiredMinimumPollIntervalInSeconds` (default 60 s). The session is started with the
 *   cache time as its poll interval, and the provider keeps each value that long and the token chain between
 *   polls, so no poll is early. A BadRequestException anyway (a token refused) answers from the last
 *   configuration read and starts a new session on the next read.
 * @internal
 */

/** One flag as AppConfig serves a feature-flag profile: `enabled` and the flag's attributes. @internal */
export interface FlagValue {
  readonly enabled: boolean;
  readonly [attribute: string]: unknown;
}

export type FlagName = typeof FeatureFlag[keyof typeof FeatureFlag];

/** The last flags read of each profile the function reads, by `application/environment/profile`. */
const lastGood = new Map<string, Record<string, FlagValue>>();

/** Where the function's flags are, or undefined when it has none. */
export function flagsLocation(): FlagsLocation | undefined {
  const application = process.env[FlagsEnv.APPLICATION];
  const environment = process.env[FlagsEnv.ENVIRONMENT];
  const profile = process.env[FlagsEnv.PROFILE];
  if (!application || !environment || !profile) return undefined;
  return { application, environment, profile, maxAge: pollIntervalOf(process.env[FlagsEnv.MAX_AGE_SECONDS]) };
}

/** Where the function's kill switches are, or undefined when it has none. @internal */
export function killSwitchLocation(): FlagsLocation | undefined {
  const main = flagsLocation();
  const environment = process.env[FlagsEnv.KILL_SWITCH_ENVIRONMENT];
  const profile = process.env[FlagsEnv.KILL_SWITCH_PROFILE];
  if (!main || !environment || !profile) return undefined;
  return { ...main, environment, profile };
}

/**
 * A cache time, in seconds, as a poll interval AppConfig Data accepts: unset or not a number is the default
 * (60 s); otherwise rounded up to whole seconds and clamped to 15..86400 (the construct validates its prop first).
 * @internal
 */
export function pollIntervalOf(seconds: string | number | undefined): number {
  const value = Number(seconds ?? DEFAULT_POLL_INTERVAL_SECONDS);
  if (seconds === '' || !Number.isFinite(value)) return DEFAULT_POLL_INTERVAL_SECONDS;
  return Math.min(POLL_INTERVAL_BOUNDS.max, Math.max(POLL_INTERVAL_BOUNDS.min, Math.ceil(value)));
}

/** AppConfig served something other than the platform's flags. @internal */
export class InvalidFlagsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidFlagsError';
  }
}

/** Where a profile of flags is. @internal */
export interface FlagsLocation {
  readonly application: string;
  readonly environment: string;
  readonly profile: string;
  /** Seconds a value read is kept: also the session's poll interval (15 to 86400). */
  readonly maxAge: number;
}

/** One provider (session and token chain) and the last flags read, per profile. */
const readers = new Map<string, { provider: AppConfigProvider; last?: Record<string, FlagValue> }>();

/**
 * Reads the flags at `where`, kept for `maxAge` seconds (the session's poll interval); throws when AppConfig
 * cannot be read or serves something other than the platform's flags. A BadRequestException (an early poll or
 * a refused token) answers from the last flags read, when there are some, and the next read starts a new session.
 * @internal
 */
export async function fetchFlagsAt(where: FlagsLocation): Promise<Record<string, FlagValue>> {
  const key = `${where.application}/${where.environment}/${where.profile}`;
  const interval = pollIntervalOf(where.maxAge);
  let reader = readers.get(key);
  if (!reader) {
    reader = { provider: new AppConfigProvider({ application: where.application, environment: where.environment }) };
    readers.set(key, reader);
  }
  let value: unknown;
  try {
    value = await reader.provider.get(where.profile, {
      maxAge: interval,
      transform: 'json',
      sdkOptions: { RequiredMinimumPollIntervalInSeconds: interval },
    });
  } catch (error) {
    // Powertools wraps the SDK's error in a GetParameterError.
    const cause = (error as { cause?: { name?: string } }).cause;
    if (cause?.name !== 'BadRequestException' || !reader.last) throw error;
    log('WARN', 'feature flags: AppConfig refused the poll; answering from the last flags read, a new session next time', { application: where.application });
    readers.set(key, { provider: new AppConfigProvider({ application: where.application, environment: where.environment }), last: reader.last });
    return reader.last;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new InvalidFlagsError('the feature-flag profile is not a JSON object');
  const flags = value as Record<string, FlagValue>;
  // A flag the profile lacks is on: a profile written before the flag existed (the kill switches, a rollout under way).
  if (!Object.values(FeatureFlag).some((name) => flags[name] !== undefined)) throw new InvalidFlagsError('the feature-flag profile holds none of the platform\'s flags');
  for (const name of Object.values(FeatureFlag)) {
    if (flags[name] !== undefined && typeof flags[name]?.enabled !== 'boolean') throw new InvalidFlagsError(`the feature-flag profile's flag ${name} has no boolean enabled`);
  }
  reader.last = flags;
  return flags;
}

/** The flags at `where` (cached), or the last read when AppConfig fails (then the error is logged), or undefined. */
async function readProfile(where: FlagsLocation, name: FlagName): Promise<Record<string, FlagValue> | undefined> {
  const key = `${where.application}/${where.environment}/${where.profile}`;
  try {
    const flags = await fetchFlagsAt(where);
    lastGood.set(key, flags);
    return flags;
  } catch (error) {
    const e = error as Error;
    log('ERROR', 'feature flags unreadable; using the last value read, or on', { flag: name, profile: where.profile, errorType: e?.name, errorMessage: e?.message });
    return lastGood.get(key);
  }
}

/**
 * A flag: its value from the flags profile (the last value read when AppConfig fails, or on), switched off when
 * the function's kill switch for it is off.
 */
export async function flag(name: FlagName): Promise<FlagValue> {
  const main = flagsLocation();
  const kill = killSwitchLocation();
  const [flags, switches] = await Promise.all([
    main ? readProfile(main, name) : undefined,
    kill ? readProfile(kill, name) : undefined,
  ]);
  const value = flags?.[name] ?? { enabled: true };
  return switches?.[name]?.enabled === false ? { ...value, enabled: false } : value;
}
