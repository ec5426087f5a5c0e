import { App, CfnResource, Stack, TagManager } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Construct, IConstruct } from 'constructs';
import { DataLake, DataLakeProps, IngestionLedger, OnsDataPlatform, OnsDataPlatformProps, PlatformStage } from '../src';

export const ENV = { account: '123456789012', region: 'sa-east-1' };

/** A stack holding one platform, optionally with the data-removal context flag set. */
export function platformStack(stage: PlatformStage, options: { removeData?: unknown; props?: Partial<OnsDataPlatformProps> } = {}) {
  const context: Record<string, unknown> = {};
  if (options.removeData !== undefined) context[PlatformStage.REMOVE_DATA_ON_DESTROY_CONTEXT] = options.removeData;
  const app = new App({ context });
  const stack = new Stack(app, `Platform-${stage.name}`, { env: ENV });
  const platform = new OnsDataPlatform(stack, 'Platform', { stage, ...options.props });
  return { app, stack, platform, template: Template.fromStack(stack) };
}

/** Every L1 resource under `root`, by its logical ID in its stack. */
export function cfnResources(root: IConstruct): Map<string, CfnResource> {
  const out = new Map<string, CfnResource>();
  for (const c of root.node.findAll()) {
    if (CfnResource.isCfnResource(c)) out.set(Stack.of(c).resolve(c.logicalId), c);
  }
  return out;
}

/** Logical IDs of resources CDK can tag. */
export function taggableLogicalIds(root: IConstruct): string[] {
  return [...cfnResources(root)].filter(([, r]) => TagManager.isTaggable(r)).map(([id]) => id);
}

/** Tags of a synthesized resource as a plain object, whether the type uses a list or a map. */
export function tagsOf(resource: { Properties?: Record<string, unknown> }): Record<string, string> {
  const tags = resource.Properties?.Tags;
  if (!tags) return {};
  if (Array.isArray(tags)) return Object.fromEntries(tags.map((t: { Key: string; Value: string }) => [t.Key, t.Value]));
  return tags as Record<string, string>;
}

/** A lake and the ledger a time-series store records its loads in, as `OnsDataPlatform` makes them. */
export function lakeAndLedger(scope: Construct, stage: PlatformStage, lakeProps: Partial<DataLakeProps> = {}) {
  const dataLake = new DataLake(scope, 'Lake', { stage, ...lakeProps });
  const ledger = new IngestionLedger(scope, 'Ledger', { stage, encryptionKey: dataLake.encryptionKey });
  return { dataLake, ledger };
}
