import { App, Stack } from 'aws-cdk-lib';
import { definitionOf } from './asl';
import { DataLake, IngestionPipeline, PlatformStage } from '../../src';
import { ENV } from '../helpers';
test('print', () => {
  const stack = new Stack(new App(), 'Pipeline', { env: ENV });
  new IngestionPipeline(stack, 'Ingestion', { stage: PlatformStage.DEV, dataLake: new DataLake(stack, 'Lake', { stage: PlatformStage.DEV }) });
  require('fs').writeFileSync('/tmp/rp/reprocess.json', JSON.stringify(definitionOf(stack, 'IngestionReprocess'), null, 1));
  require('fs').writeFileSync('/tmp/rp/backfill.json', JSON.stringify(definitionOf(stack, 'IngestionBackfill'), null, 1));
});
