import { CfnElement, CfnResource, Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';

/**
 * Gives `resource` the logical id it had at `legacyPath` under `scope` before a refactor moved it, so a deploy updates
 * it in place instead of replacing it (and its data). The id is asked of the stack itself for a probe at that path,
 * removed at once, so the stack's own naming (and any `renameLogicalId`) applies. Call it before `scope` has a child
 * named `legacyPath[0]`.
 * @internal
 */
export function keepLogicalId(resource: CfnElement, scope: Construct, legacyPath: readonly string[]): void {
  const [first, ...rest] = legacyPath;
  const top = new Construct(scope, first);
  const parent = rest.reduce<Construct>((p, id) => new Construct(p, id), top);
  const probe = new CfnResource(parent, 'Resource', { type: 'OnsDataPlatform::LogicalIdProbe' });
  const logicalId = Stack.of(scope).getLogicalId(probe);
  scope.node.tryRemoveChild(first);
  resource.overrideLogicalId(logicalId);
}
