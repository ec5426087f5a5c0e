import { Annotations, RemovalPolicy } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { PlatformStage } from './stage';

/**
 * The removal policy for stateful resources: DESTROY only when the context flag
 * `ons-data-platform:removeDataOnDestroy` is `true` and the stage allows data removal; RETAIN otherwise.
 * A refused DESTROY adds a warning annotation to `scope`.
 * @internal
 */
export function dataRemovalPolicy(scope: Construct, stage: PlatformStage): RemovalPolicy {
  if (!removalRequested(scope)) return RemovalPolicy.RETAIN;
  if (stage.allowDataRemoval) return RemovalPolicy.DESTROY;
  Annotations.of(scope).addWarningV2(
    'ons-data-platform:dataRetained',
    `Context flag ${PlatformStage.REMOVE_DATA_ON_DESTROY_CONTEXT} is true, but stage '${stage.name}' does not allow data removal: ` +
    'buckets, keys and log groups are retained.',
  );
  return RemovalPolicy.RETAIN;
}

/**
 * Applies the stage's data removal policy to a stateful resource.
 * @internal
 */
export function applyDataRemovalPolicy(
  resource: Construct & { applyRemovalPolicy(policy: RemovalPolicy): void }, stage: PlatformStage,
): RemovalPolicy {
  const policy = dataRemovalPolicy(resource, stage);
  resource.applyRemovalPolicy(policy);
  return policy;
}

function removalRequested(scope: Construct): boolean {
  const value = scope.node.tryGetContext(PlatformStage.REMOVE_DATA_ON_DESTROY_CONTEXT);
  // Context from the command line arrives as a string.
  return value === true || value === 'true';
}
