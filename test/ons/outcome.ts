import { resolveDataset } from '../../src/ons/detect';
import { FileSummary, processTable, Rejection } from '../../src/ons/process';
import { readCsv } from '../../src/ons/readers/csv';
import { OnsRecord, RawTable } from '../../src/ons/types';

/** What processTable made of a table: its summary, and the records and rejections its sink received, in order. */
export interface Outcome {
  readonly summary: FileSummary;
  readonly records: OnsRecord[];
  readonly rejections: Rejection[];
}

/** processTable over a table, with the dataset resolved from its name and header. */
export async function outcome(name: string, table: RawTable): Promise<Outcome> {
  const records: OnsRecord[] = [];
  const rejections: Rejection[] = [];
  const summary = await processTable(name, table, resolveDataset(name, table.header), {
    record: (r) => { records.push(r); },
    rejected: (r) => { rejections.push(r); },
  });
  return { summary, records, rejections };
}

/** Bytes as a stream of `size`-byte chunks (one chunk by default). */
export async function* chunks(bytes: Uint8Array, size = bytes.length || 1): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

/** Reads UTF-8 text from its bytes (the byte path) and as decoded rows (the table without `lines`); both must agree. */
export async function readBothPaths(name: string, text: string): Promise<Outcome> {
  const viaBytes = await outcome(name, await readCsv(chunks(Buffer.from(text))));
  const { lines, ...rows } = await readCsv(chunks(Buffer.from(text)));
  expect(lines).toBeDefined();
  expect(await outcome(name, rows)).toEqual(viaBytes);
  return viaBytes;
}
