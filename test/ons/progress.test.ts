import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { resolveDataset } from '../../src/ons/detect';
import { localFile } from '../../src/ons/local-file';
import { openTable } from '../../src/ons/open';
import { processTable } from '../../src/ons/process';
import { Progress } from '../../src/ons/types';
import { ONS_DATA } from '../ons-data';
import { curvaCargaParquet } from '../ons-parquet';

/**
 * The domain core's progress hook reports the work done, interleaved with it: at every report, the rows the
 * processing has taken so far are exactly those of the part of the file the report counts as done.
 */

interface Seen {
  readonly progress: Progress;
  /** Rows that had reached the sink (records and rejections) when the report came. */
  readonly rows: number;
}

/** Reads a file as the platform does, counting the rows that reach the sink at each progress report. */
async function run(path: string, source = localFile(path)): Promise<{ seen: Seen[]; rows: number }> {
  let rows = 0;
  const seen: Seen[] = [];
  const table = await openTable(source, { onProgress: (progress) => seen.push({ progress, rows }) });
  const summary = await processTable(path, table, resolveDataset(path, table.header), {
    record: () => { rows++; },
    rejected: () => { rows++; },
  });
  expect(rows).toBe(summary.rows);
  return { seen, rows };
}

/** `\n` in the first `length` bytes. */
function newlines(bytes: Uint8Array, length: number): number {
  let n = 0;
  for (let i = 0; i < length; i++) if (bytes[i] === 10) n++;
  return n;
}

function expectIncreasing(seen: Seen[]): void {
  for (let i = 1; i < seen.length; i++) {
    expect(seen[i].progress.done).toBeGreaterThanOrEqual(seen[i - 1].progress.done);
    expect(seen[i].rows).toBeGreaterThanOrEqual(seen[i - 1].rows);
  }
}

test('CSV: bytes parsed, not read ahead: at each report the rows processed are the lines of the bytes reported', async () => {
  const path = join(ONS_DATA, 'BALANCO_ENERGIA_SUBSISTEMA_2023.csv');
  const bytes = readFileSync(path);
  const { seen, rows } = await run(path);
  expect(seen.length).toBeGreaterThanOrEqual(3); // 3.7 MB in 1 MiB chunks
  for (const s of seen) {
    expect(s.progress).toMatchObject({ phase: 'parsing', unit: 'bytes', total: bytes.length });
    // Every complete line up to `done` but the header has been processed, and no line past it.
    expect(s.rows).toBe(newlines(bytes, s.progress.done) - 1);
  }
  expectIncreasing(seen);
  expect(seen[0].progress.done).toBeLessThan(bytes.length);
  expect(seen[0].rows).toBeLessThan(rows);
  expect(seen[seen.length - 1].progress.done).toBe(bytes.length);
  expect(seen[seen.length - 1].rows).toBe(rows);
});

test('CSV in UTF-16 (the decoding path): the same, in the file\'s own bytes', async () => {
  const text = readFileSync(join(ONS_DATA, 'CURVA_CARGA_2023.csv'), 'utf8');
  const bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
  const CHUNK = 256 * 1024;
  const source = {
    stream: async function* () { for (let i = 0; i < bytes.length; i += CHUNK) yield bytes.subarray(i, i + CHUNK); },
    bytes: async () => bytes,
    head: async () => bytes.subarray(0, 8),
    size: async () => bytes.length,
  };
  const { seen, rows } = await run('CURVA_CARGA_2023.csv', source);
  expect(seen.length).toBeGreaterThanOrEqual(10);
  // In UTF-16LE text of these characters, a 0x0A byte is a line feed.
  for (const s of seen) expect(s.rows).toBe(newlines(bytes, s.progress.done) - 1);
  expectIncreasing(seen);
  expect(seen[0].rows).toBeLessThan(rows);
  expect(seen[seen.length - 1].progress).toEqual({ phase: 'parsing', done: bytes.length, total: bytes.length, unit: 'bytes' });
});

test('XLSX: the sheet\'s bytes inflated whose rows were consumed, against its size in the zip directory', async () => {
  const path = join(ONS_DATA, 'CURVA_CARGA_2021.xlsx');
  const parts = unzipSync(new Uint8Array(readFileSync(path)));
  const sheet = Object.entries(parts).find(([name]) => /^xl\/worksheets\/sheet\d*\.xml$/.test(name))![1];
  const xml = Buffer.from(sheet).toString('latin1');
  const closes: number[] = []; // where each </row> ends
  for (let i = xml.indexOf('</row>'); i >= 0; i = xml.indexOf('</row>', i + 1)) closes.push(i + '</row>'.length);
  const closedRows = (length: number) => closes.filter((end) => end <= length).length;
  const { seen, rows } = await run(path);
  const onSheet = seen.filter((s) => s.progress.phase.startsWith('sheet '));
  expect(onSheet.length).toBeGreaterThanOrEqual(10);
  for (const s of onSheet) {
    expect(s.progress).toMatchObject({ unit: 'bytes', total: sheet.length });
    // Every row closed in the XML inflated so far but the header has been processed.
    expect(s.rows).toBe(closedRows(s.progress.done) - 1);
  }
  expectIncreasing(onSheet);
  expect(onSheet[0].progress.done).toBeLessThan(sheet.length);
  expect(onSheet[0].rows).toBeLessThan(rows);
  expect(onSheet[onSheet.length - 1].progress.done).toBe(sheet.length);
  expect(onSheet[onSheet.length - 1].rows).toBe(rows);
  // The shared strings (447 bytes here: one chunk) are read first, before any row, and end at their size.
  const shared = seen.filter((s) => s.progress.phase === 'shared strings');
  expect(shared.map((s) => [s.progress.done, s.progress.total, s.rows])).toEqual([[447, 447, 0]]);
  expect(seen.indexOf(shared[0])).toBeLessThan(seen.indexOf(onSheet[0]));
  expect(parts['xl/sharedStrings.xml'].length).toBe(447);
});

test('Parquet: rows consumed of the footer\'s row count, by row group and within one', async () => {
  const data = curvaCargaParquet(10_000);
  const source = {
    stream: async function* () { yield data; },
    bytes: async () => data,
    head: async () => data.subarray(0, 8),
  };
  const { seen, rows } = await run('CURVA_CARGA_2023.parquet', source);
  expect(rows).toBe(35040);
  for (const s of seen) {
    expect(s.progress).toMatchObject({ unit: 'rows', total: 35040 });
    expect(s.progress.phase).toMatch(/^row group [1-4] of 4$/);
    expect(s.rows).toBe(s.progress.done);
  }
  expectIncreasing(seen);
  // Before each group is decoded, every 8192 rows within it, and at its end.
  expect(seen.map((s) => s.progress.done)).toEqual([0, 8192, 10000, 10000, 18192, 20000, 20000, 28192, 30000, 30000, 35040]);
});
