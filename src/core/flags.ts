import * as lambda from 'aws-cdk-lib/aws-lambda';

/**
 * Feature flags, as the constructs whose functions read them see them (implemented by `FeatureFlags`). The construct
 * that makes a reading function binds it when it makes it, so no other construct edits that function afterwards.
 */
export interface IFeatureFlags {
  /** Gives `fn` the environment that names the flags and the permission to read them. */
  bind(fn: lambda.Function): void;
}
