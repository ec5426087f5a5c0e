/**
 * Synthesizes the platform in every shape a user deploys it (the whole platform in each stage and on both engines,
 * and each construct used alone) and writes one normalized template per stack to a folder, so two trees can be
 * compared: `ts-node build-tools/templates.ts <outdir>` here and at the ref before a refactor, then `diff -r`.
 * Asset hashes (and the code hash in a function version's logical id) are replaced: moving a handler's source changes
 * its bundle's bytes, not what it does.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as src from '../src';

const ENV = { account: '123456789012', region: 'us-east-1' };
const outdir = process.argv[2] ?? 'cdk.out/templates';
mkdirSync(outdir, { recursive: true });

/** Object keys (and policy statements) sorted: the order constructs are created in moves text, not resources. */
function sortKeys(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => sortKeys(v));
    // The statements of a policy have no order: the order grants were made in is not a difference.
    return key === 'Statement' ? items.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))) : items;
  }
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys((value as Record<string, unknown>)[k], k)]));
}

function write(name: string, build: (stack: Stack) => void): void {
  const app = new App();
  const stack = new Stack(app, name, { env: ENV });
  build(stack);
  const template = JSON.stringify(sortKeys(app.synth().getStackByName(name).template), null, 1)
    .replace(/[0-9a-f]{64}(\.zip|\.json)?/g, '<asset>$1')
    // A function version's logical id ends with a hash of its code.
    .replace(/(CurrentVersion[0-9A-F]{8})[0-9a-f]{32}/g, '$1<code>');
  writeFileSync(join(outdir, `${name}.json`), template);
}

const stages = [src.PlatformStage.DEV, src.PlatformStage.STAGING, src.PlatformStage.PROD];
for (const stage of stages) {
  write(`Platform-${stage.name}`, (s) => new src.OnsDataPlatform(s, 'Platform', { stage }));
  write(`PlatformInflux-${stage.name}`, (s) => new src.OnsDataPlatform(s, 'Platform', {
    stage, timeSeries: src.TimeSeriesEngine.timestreamInfluxDb(),
  }));
}
write('PlatformFull-prod', (s) => new src.OnsDataPlatform(s, 'Platform', {
  stage: src.PlatformStage.PROD,
  knowledgeBase: { vectorStore: src.VectorStore.openSearchServerless() },
  api: { waf: { rateLimitPerIp: 2000 } },
  monitoring: { alarmEmails: ['ops@example.com'] },
}));
write('PlatformNoSafeDeployment-dev', (s) => new src.OnsDataPlatform(s, 'Platform', {
  stage: src.PlatformStage.DEV, safeDeployment: { enabled: false },
}));
write('DataLake-dev', (s) => new src.DataLake(s, 'Lake', { stage: src.PlatformStage.DEV }));
write('IngestionAlone-dev', (s) => {
  const dataLake = new src.DataLake(s, 'Lake', { stage: src.PlatformStage.DEV });
  new src.IngestionPipeline(s, 'Ingestion', { stage: src.PlatformStage.DEV, dataLake });
});
write('IngestionWithStore-prod', (s) => {
  const stage = src.PlatformStage.PROD;
  const dataLake = new src.DataLake(s, 'Lake', { stage });
  const ledger = new src.IngestionLedger(s, 'Ledger', { stage, encryptionKey: dataLake.encryptionKey });
  const timeSeriesStore = new src.TimestreamStore(s, 'TimeSeries', { stage, dataLake, ledger });
  const knowledgeBase = new src.KnowledgeBase(s, 'Knowledge', { stage, dataLake });
  new src.IngestionPipeline(s, 'Ingestion', { stage, dataLake, timeSeriesStore, knowledgeBase });
});
write('KnowledgeAlone-dev', (s) => {
  const dataLake = new src.DataLake(s, 'Lake', { stage: src.PlatformStage.DEV });
  new src.KnowledgeBase(s, 'Knowledge', { stage: src.PlatformStage.DEV, dataLake });
});
console.log(`templates written to ${outdir}`);
