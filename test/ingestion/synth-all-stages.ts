/**
 * Synthesizes the whole platform in every stage into `process.argv[2]`, as `cdk synth` would, run by
 * batch-deploy.test.ts in a child process whose PATH has no `docker` (and CDK_DOCKER=/bin/false). A control stack
 * with a Docker image asset shows that the manifest check would see one.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OnsDataPlatform, PlatformStage } from '../../src';

const outdir = process.argv[2];
const app = new App({ outdir });
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
for (const stage of [PlatformStage.DEV, PlatformStage.STAGING, PlatformStage.PROD]) {
  const stack = new Stack(app, `Platform-${stage.name}`, { env: { account: '123456789012', region: 'sa-east-1' } });
  new OnsDataPlatform(stack, 'Platform', { stage });
}
const context = join(outdir, '..', 'control-image');
mkdirSync(context, { recursive: true });
writeFileSync(join(context, 'Dockerfile'), 'FROM scratch\n');
const control = new Stack(app, 'Control');
const image = new ecrAssets.DockerImageAsset(control, 'Image', { directory: context });
new ssm.CfnParameter(control, 'ImageUri', { type: 'String', value: image.imageUri });
app.synth();
