import type { TimestreamWriteClient } from '@aws-sdk/client-timestream-write';
import { RecordWriter, WriterOptions } from '../../../src/timeseries/timestream/runtime/writer';

type Record = Parameters<RecordWriter['add']>[0];

/**
 * Writes `records` into ons_test.carga_energia through a RecordWriter on `client` (destroyed afterwards): the
 * writer's statistics, or the error it ended with.
 */
export async function writeAll(client: TimestreamWriteClient, records: readonly Record[], options: WriterOptions):
Promise<{ stats?: Awaited<ReturnType<RecordWriter['finish']>>; error?: Error }> {
  const writer = new RecordWriter(client, { database: 'ons_test', table: 'carga_energia', measureName: 'carga_energia', version: 1 }, options);
  try {
    for (const record of records) await writer.add(record);
    return { stats: await writer.finish() };
  } catch (error) {
    return { error: error as Error };
  } finally {
    client.destroy();
  }
}
