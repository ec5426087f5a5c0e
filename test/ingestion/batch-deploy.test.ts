import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { BatchNetwork, DataLake, IngestionPipeline, LargeFileProcessingOptions, PlatformStage } from '../../src';
import {
  BATCH_BOOTSTRAP_FILE, BATCH_CODE_FILE, BATCH_IMAGE_TAG, BATCH_MAX_JOB_DEFINITION_BYTES, BATCH_NODE_VERSION, BATCH_PUBLIC_IMAGE,
} from '../../src/ingestion/batch-processing';
import { IngestionEnv } from '../../src/ingestion/contract';
import { ENV, platformStack } from '../helpers';

/**
 * Deploying the Batch path needs no Docker: a published Node.js image, the code as a file asset, and per stage a
 * network that costs nothing idle in DEV (public subnets, no interface endpoints) or none of the internet in PROD.
 */

const ROOT = join(__dirname, '..', '..');

type Resources = Record<string, { Type: string; Properties: any }>;

function jobDefinitionOf(template: Template): any {
  return Object.values(template.findResources('AWS::Batch::JobDefinition'))[0].Properties;
}

function pipelineStack(stage: PlatformStage, largeFileProcessing: LargeFileProcessingOptions = {}, stackName = 'Pipeline') {
  const stack = new Stack(new App(), stackName, { env: ENV });
  const dataLake = new DataLake(stack, 'Lake', { stage });
  new IngestionPipeline(stack, 'Ingestion', { stage, dataLake, largeFileProcessing });
  return Template.fromStack(stack);
}

describe('cdk synth with Docker unavailable', () => {
  test('every stage synthesizes (cdk-nag on) and its assets need no Docker build', () => {
    const scratch = mkdtempSync(join(tmpdir(), 'ons-no-docker-'));
    try {
      const emptyPath = join(scratch, 'bin');
      mkdirSync(emptyPath);
      const outdir = join(scratch, 'cdk.out');
      const run = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', join(__dirname, 'synth-all-stages.ts'), outdir], {
        cwd: ROOT,
        env: { PATH: emptyPath, HOME: scratch, CDK_DOCKER: '/bin/false', TS_NODE_PROJECT: join(ROOT, 'tsconfig.dev.json'), NODE_OPTIONS: '--openssl-legacy-provider' },
        encoding: 'utf8',
        timeout: 540_000,
      });
      // Synth succeeded (cdk-nag would throw ValidationFailed) and nothing tried to run Docker.
      expect({ status: run.status, failures: run.stderr.split('\n').filter((l) => /ValidationFailed|\bError\b|ENOENT|spawn|\bdocker\b/i.test(l)) })
        .toEqual({ status: 0, failures: [] });

      const manifests = Object.fromEntries(readdirSync(outdir).filter((f) => f.endsWith('.assets.json'))
        .map((f) => [f.replace('.assets.json', ''), JSON.parse(readFileSync(join(outdir, f), 'utf8'))]));
      expect(Object.keys(manifests).sort()).toEqual(['Control', 'Platform-dev', 'Platform-prod', 'Platform-staging']);
      for (const stage of ['dev', 'staging', 'prod']) {
        const manifest = manifests[`Platform-${stage}`];
        expect({ stage, dockerImages: manifest.dockerImages ?? {} }).toEqual({ stage, dockerImages: {} });
        // The job's code is among the file assets (a file, staged as is).
        const codeHash = createHash('sha256').update(readFileSync(BATCH_CODE_FILE)).digest('hex');
        const files = Object.values<any>(manifest.files).map((f) => join(outdir, f.source.path as string));
        expect(files.filter((p) => sha256Of(p) === codeHash)).toHaveLength(1);
      }
      // The control: a Docker image asset shows up where the check looks.
      expect(Object.keys(manifests.Control.dockerImages ?? {})).toHaveLength(1);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 600_000);
});

function sha256Of(path: string): string | undefined {
  return statSync(path).isFile() ? createHash('sha256').update(readFileSync(path)).digest('hex') : undefined;
}

describe('the job definition', () => {
  const { template } = platformStack(PlatformStage.PROD);
  const job = jobDefinitionOf(template);

  test('runs the bundled bootstrap with `node -e`, told where the code is and its SHA-256', () => {
    const program = readFileSync(BATCH_BOOTSTRAP_FILE, 'utf8').trim();
    expect(job.ContainerProperties.Command).toEqual(['node', '-e', program]);
    // Batch substitutes `Ref::name` in commands: the program must not contain one.
    expect(program).not.toContain('Ref::');
    expect(Buffer.byteLength(program)).toBeLessThan(10 * 1024);
    const env = Object.fromEntries(job.ContainerProperties.Environment.map((e: any) => [e.Name, e.Value]));
    expect(env[IngestionEnv.JOB_CODE_SHA256]).toBe(createHash('sha256').update(readFileSync(BATCH_CODE_FILE)).digest('hex'));
    expect(env[IngestionEnv.JOB_CODE_BUCKET]).toBe(`cdk-hnb659fds-assets-${ENV.account}-${ENV.region}`);
    expect(env[IngestionEnv.JOB_CODE_KEY]).toMatch(/^[0-9a-f]{64}\.js$/);
    expect(env[IngestionEnv.JOB_CODE_REGION]).toBe(ENV.region);
  });

  test('fits in a RegisterJobDefinition request (24 KiB), ARNs counted at 256 bytes each', () => {
    const placeholders = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(placeholders);
      if (v && typeof v === 'object') {
        const keys = Object.keys(v);
        if (keys.length === 1 && (keys[0].startsWith('Fn::') || keys[0] === 'Ref')) return 'x'.repeat(256);
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, placeholders(x)]));
      }
      return v;
    };
    const size = Buffer.byteLength(JSON.stringify(placeholders(job)));
    expect(size).toBeLessThan(BATCH_MAX_JOB_DEFINITION_BYTES);
  });

  test('the job role reads exactly the code object of the CDK assets bucket, nothing else there', () => {
    const resources = template.toJSON().Resources as Resources;
    const roleId = job.ContainerProperties.JobRoleArn['Fn::GetAtt'][0];
    const statements = Object.values(resources)
      .filter((r) => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: any) => x.Ref === roleId))
      .flatMap((r) => r.Properties.PolicyDocument.Statement);
    const onAssets = statements.filter((s) => JSON.stringify(s.Resource).includes('cdk-hnb659fds-assets'));
    const key = job.ContainerProperties.Environment.find((e: any) => e.Name === IngestionEnv.JOB_CODE_KEY).Value;
    expect(onAssets).toEqual([{
      Effect: 'Allow',
      Action: 's3:GetObject',
      Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::cdk-hnb659fds-assets-${ENV.account}-${ENV.region}/${key}`]] },
    }]);
  });

  test('the default image: the pinned Node.js of the Lambda runtime and of the bundle target', () => {
    expect(BATCH_PUBLIC_IMAGE).toMatch(/^public\.ecr\.aws\/docker\/library\/node:\d+\.\d+\.\d+-bookworm-slim$/);
    const major = BATCH_NODE_VERSION.split('.')[0];
    const tasks = JSON.parse(readFileSync(join(ROOT, '.projen', 'tasks.json'), 'utf8')).tasks;
    for (const bundle of ['bundle:ingestion/batch/entrypoint', 'bundle:ingestion/batch/bootstrap']) {
      expect(tasks[bundle].steps[0].execArgs).toContain(`--target=node${major}`);
    }
    expect(readFileSync(join(ROOT, 'src', 'ingestion', 'process-function.ts'), 'utf8')).toContain(`'nodejs${major}.x'`);
  });
});

describe('DEV: nothing billed while idle', () => {
  const { template } = platformStack(PlatformStage.DEV);
  const resources = template.toJSON().Resources as Resources;
  const job = jobDefinitionOf(template);

  test('public subnets that assign no public IP, gateway endpoints only, no NAT, flow logs on', () => {
    expect(Object.values(resources).filter((r) => r.Type === 'AWS::EC2::VPCEndpoint').map((r) => r.Properties.VpcEndpointType ?? 'Gateway'))
      .toEqual(['Gateway', 'Gateway']);
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 1);
    template.resourceCountIs('AWS::EC2::FlowLog', 1);
    const subnets = Object.values(resources).filter((r) => r.Type === 'AWS::EC2::Subnet');
    expect(subnets.length).toBe(2);
    for (const subnet of subnets) expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
  });

  test('the job asks for its public IP, runs the ECR Public image as `node`, behind no inbound and HTTPS-only egress', () => {
    expect(job.ContainerProperties.NetworkConfiguration).toEqual({ AssignPublicIp: 'ENABLED' });
    expect(job.ContainerProperties.Image).toBe(BATCH_PUBLIC_IMAGE);
    expect(job.ContainerProperties.User).toBe('node');
    template.resourceCountIs('AWS::ECR::PullThroughCacheRule', 0);
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('Batch jobs'),
      SecurityGroupEgress: [{ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, CidrIp: '0.0.0.0/0', Description: Match.anyValue() }],
      SecurityGroupIngress: Match.absent(),
    });
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
  });
});

describe('BatchNetwork.isolated(): no route to the internet', () => {
  const template = pipelineStack(PlatformStage.PROD, { network: BatchNetwork.isolated() });
  const resources = template.toJSON().Resources as Resources;
  const job = jobDefinitionOf(template);
  const rule = Object.values(template.findResources('AWS::ECR::PullThroughCacheRule'))[0]?.Properties;

  test('isolated subnets, interface endpoints for ECR and Logs, no internet gateway, no public IP', () => {
    expect(Object.values(resources).filter((r) => r.Type === 'AWS::EC2::VPCEndpoint').map((r) => r.Properties.VpcEndpointType ?? 'Gateway').sort())
      .toEqual(['Gateway', 'Gateway', 'Interface', 'Interface', 'Interface']);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    expect(job.ContainerProperties.NetworkConfiguration).toEqual({ AssignPublicIp: 'DISABLED' });
  });

  test('the image comes through a pull-through cache rule for ECR Public, under a prefix of this stack', () => {
    expect(rule).toEqual({ EcrRepositoryPrefix: expect.stringMatching(/^ons-[0-9a-f]{16}$/), UpstreamRegistry: 'ecr-public', UpstreamRegistryUrl: 'public.ecr.aws' });
    expect(job.ContainerProperties.Image).toEqual({
      'Fn::Join': ['', [`${ENV.account}.dkr.ecr.${ENV.region}.`, { Ref: 'AWS::URLSuffix' }, `/${rule.EcrRepositoryPrefix}/docker/library/node:${BATCH_IMAGE_TAG}`]],
    });
    // Two platforms in one account and Region must not claim the same prefix.
    const isolated = { network: BatchNetwork.isolated() };
    const other = Object.values(pipelineStack(PlatformStage.PROD, isolated, 'OtherPlatform').findResources('AWS::ECR::PullThroughCacheRule'))[0].Properties;
    const same = Object.values(pipelineStack(PlatformStage.PROD, isolated, 'Pipeline').findResources('AWS::ECR::PullThroughCacheRule'))[0].Properties;
    expect(other.EcrRepositoryPrefix).not.toBe(same.EcrRepositoryPrefix);
  });

  test('the execution role may pull and import that one repository', () => {
    const roleId = job.ContainerProperties.ExecutionRoleArn['Fn::GetAtt'][0];
    const statements = Object.values(resources)
      .filter((r) => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: any) => x.Ref === roleId))
      .flatMap((r) => r.Properties.PolicyDocument.Statement);
    expect(statements).toEqual(expect.arrayContaining([
      { Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
      {
        Effect: 'Allow',
        Action: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage', 'ecr:BatchImportUpstreamImage', 'ecr:CreateRepository'],
        Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ecr:${ENV.region}:${ENV.account}:repository/${rule.EcrRepositoryPrefix}/docker/library/node`]] },
      },
    ]));
    expect(JSON.stringify(statements)).not.toMatch(/repository\/[^"]*\*/);
  });
});

describe('the choices', () => {
  test('every stage defaults to public egress (no interface endpoint, no cache rule); isolated can be chosen in any stage', () => {
    for (const stage of [PlatformStage.STAGING, PlatformStage.PROD]) {
      expect(pipelineStack(stage).toJSON()).toEqual(pipelineStack(stage, { network: BatchNetwork.publicEgress() }).toJSON());
    }
    const template = pipelineStack(PlatformStage.PROD);
    template.resourceCountIs('AWS::EC2::VPCEndpoint', 2);
    template.resourceCountIs('AWS::ECR::PullThroughCacheRule', 0);
    expect(jobDefinitionOf(template).ContainerProperties.NetworkConfiguration).toEqual({ AssignPublicIp: 'ENABLED' });
    const isolatedDev = pipelineStack(PlatformStage.DEV, { network: BatchNetwork.isolated() });
    isolatedDev.resourceCountIs('AWS::ECR::PullThroughCacheRule', 1);
    isolatedDev.resourceCountIs('AWS::EC2::InternetGateway', 0);
  });

  test('your own image: used as given, with its own user, and no cache rule', () => {
    const template = pipelineStack(PlatformStage.PROD, { image: ecs.ContainerImage.fromRegistry('registry.example.com/node:22') });
    const job = jobDefinitionOf(template);
    expect(job.ContainerProperties.Image).toBe('registry.example.com/node:22');
    expect(job.ContainerProperties.User).toBeUndefined();
    template.resourceCountIs('AWS::ECR::PullThroughCacheRule', 0);
  });

  test('your own VPC with public subnets; `network` and `vpc` together are refused, naming the prop', () => {
    const stack = new Stack(new App(), 'OwnVpc', { env: ENV });
    const vpc = new ec2.Vpc(stack, 'MyVpc', { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'pub', subnetType: ec2.SubnetType.PUBLIC }] });
    const dataLake = new DataLake(stack, 'Lake', { stage: PlatformStage.PROD });
    new IngestionPipeline(stack, 'Ingestion', {
      stage: PlatformStage.PROD, dataLake, largeFileProcessing: { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC }, assignPublicIp: true },
    });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::EC2::VPC', 1);
    expect(jobDefinitionOf(template).ContainerProperties.NetworkConfiguration).toEqual({ AssignPublicIp: 'ENABLED' });
    expect(() => pipelineStack(PlatformStage.DEV, { vpc, network: BatchNetwork.isolated() })).toThrow(/^largeFileProcessing\.network: give `network`/);
  });
});
