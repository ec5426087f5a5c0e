import { getAppConfig } from '@aws-lambda-powertools/parameters/appconfig';
import { FeatureFlag, FlagsEnv } from './contract';
import { log } from './telemetry';

/**
 * Handler side of the feature flags (bundled into the handlers that read them): the flags of the
 * function's AppConfig environment, read with Powertools Parameters' AppConfig provider and kept for
 * `ONS_FLAGS_MAX_AGE_SECONDS`.
 *
 * Decisions:
 * - A function without the flags' environment (a part used on its own, a local run) treats every flag
 *   as on: flags switch features off, they are not needed to run.
 * - When AppConfig cannot be read, the last value read stays in force; with none yet, every flag is on,
 *   and the error is logged. A kill switch that fails closed would turn an AppConfig outage into an
 *   outage of the platform.
 * @internal
 */

/** One flag as AppConfig serves a feature-flag profile: `enabled` and the flag's attributes. @internal */
export interface FlagValue {
  readonly enabled: boolean;
  readonly [attribute: string]: unknown;
}

export type FlagName = typeof FeatureFlag[keyof typeof FeatureFlag];

let lastGood: Record<string, FlagValue> | undefined;

/** Where the function's flags are, or undefined when it has none. */
export function flagsLocation(): FlagsLocation | undefined {
  const application = process.env[FlagsEnv.APPLICATION];
  const environment = process.env[FlagsEnv.ENVIRONMENT];
  const profile = process.env[FlagsEnv.PROFILE];
  if (!application || !environment || !profile) return undefined;
  const maxAge = Number(process.env[FlagsEnv.MAX_AGE_SECONDS] ?? 60);
  return { application, environment, profile, maxAge: Number.isFinite(maxAge) && maxAge >= 0 ? maxAge : 60 };
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
  /** Seconds a value read is kept. */
  readonly maxAge: number;
}

/**
 * Reads the flags at `where` (cached for `maxAge` unless `forceFetch`); throws when AppConfig cannot be
 * read or serves something other than the platform's flags.
 * @internal
 */
export async function fetchFlagsAt(where: FlagsLocation, forceFetch = false): Promise<Record<string, FlagValue>> {
  const value = await getAppConfig(where.profile, {
    application: where.application,
    environment: where.environment,
    maxAge: where.maxAge,
    forceFetch,
    transform: 'json',
  });
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new InvalidFlagsError('the feature-flag profile is not a JSON object');
  const flags = value as Record<string, FlagValue>;
  for (const name of Object.values(FeatureFlag)) {
    if (typeof flags[name]?.enabled !== 'boolean') throw new InvalidFlagsError(`the feature-flag profile has no flag ${name}`);
  }
  return flags;
}

/** The function's own flags (cached), or undefined when it has none. */
async function fetchFlags(): Promise<Record<string, FlagValue> | undefined> {
  const where = flagsLocation();
  if (!where) return undefined;
  lastGood = await fetchFlagsAt(where);
  return lastGood;
}

/** A flag: its value from AppConfig, the last value read when AppConfig fails, or on. */
export async function flag(name: FlagName): Promise<FlagValue> {
  try {
    const flags = await fetchFlags();
    return flags?.[name] ?? { enabled: true };
  } catch (error) {
    const e = error as Error;
    log('ERROR', 'feature flags unreadable; using the last value read, or on', { flag: name, errorType: e?.name, errorMessage: e?.message });
    return lastGood?.[name] ?? { enabled: true };
  }
}
