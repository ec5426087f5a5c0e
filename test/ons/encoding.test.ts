import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectFile } from '../../src/ons/convert';
import { resolveDataset } from '../../src/ons/detect';
import { localFile } from '../../src/ons/local-file';
import { FileSummary, processTable } from '../../src/ons/process';
import { readCsv } from '../../src/ons/readers/csv';
import { OnsRecord, RefusedFileError } from '../../src/ons/types';
import { ONS_DATA } from '../ons-data';

/**
 * The encoding of a CSV is decided at its first byte that is not ASCII, wherever it lies: Latin-1
 * when that byte does not start a valid UTF-8 character, UTF-8 when it does (and then a later byte
 * that is not UTF-8 refuses the file at its exact offset). Files are CURVA_CARGA_2023.csv with the
 * label column moved last (so a label can end the file) and accented labels from a chosen byte on;
 * the figures expected are computed here from the original text and reference-figures.json.
 */

const CURVA = 'CURVA_CARGA_2023.csv';
const ORIGINAL = readFileSync(join(ONS_DATA, CURVA), 'utf8');
const REFERENCE = (JSON.parse(readFileSync(join(ONS_DATA, 'reference-figures.json'), 'utf8')) as Record<string, {
  rows: number; series: number; start: string; end: string; measures: Record<string, { count: number; sum: number }>;
}>)[CURVA];
const HEADER = 'id_subsistema;din_instante;val_cargaenergiahomwmed;nom_subsistema';
/** id, name, time, value of each data line of the original. */
const FIELDS = ORIGINAL.slice(ORIGINAL.indexOf('\n') + 1, -1).split('\n').map((line) => line.split(';'));
const PLACES: Record<string, string> = { N: 'Norte (Pará, Amapá)', NE: 'Nordeste Ç', S: 'Sul (Paraná)', SE: 'SÃO PAULO / Centro-Oeste' };
const MIB = 1024 * 1024;
const SNIFF = 64 * 1024;

const prefix = (f: readonly string[]): string => `${f[0]};${f[2]};${f[3]};`;
/** Where each row's label starts when every label before it is the original one. */
const LABEL_STARTS: number[] = [];
for (let o = HEADER.length + 1, i = 0; i < FIELDS.length; i++) {
  LABEL_STARTS.push(o + prefix(FIELDS[i]).length);
  o += prefix(FIELDS[i]).length + FIELDS[i][1].length + 1;
}

const firstNotAscii = (bytes: Uint8Array): number => bytes.findIndex((b) => b >= 0x80);

interface Built {
  readonly bytes: Buffer;
  readonly labels: string[];
  /** The row whose label holds the first accented byte. */
  readonly row: number;
}

/**
 * CURVA with the label last, in Latin-1: the labels are the original ones up to the row whose label
 * holds byte `at`; that label ends with 'Ç' at `at` exactly (0xC7, which looks like the start of a
 * UTF-8 character); the later rows have accented names.
 */
function latin1At(at: number, finalNewline = true): Built {
  let i = LABEL_STARTS.length - 1;
  while (LABEL_STARTS[i] > at) i--;
  const labels = FIELDS.map((f, j) => (j < i ? f[1] : j === i ? `${'_'.repeat(at - LABEL_STARTS[i])}Ç` : PLACES[f[0]]));
  const text = [HEADER, ...FIELDS.map((f, j) => prefix(f) + labels[j])].join('\n') + (finalNewline ? '\n' : '');
  const bytes = Buffer.from(text, 'latin1');
  expect(firstNotAscii(bytes)).toBe(at);
  expect(bytes[at]).toBe(0xc7);
  return { bytes, labels, row: i };
}

/** The figures of the original, computed here: every row a record, the times from reference-figures.json. */
function expectOriginalFigures(s: FileSummary): void {
  const values = FIELDS.map((f) => Number(f[3]));
  const sum = values.reduce((a, b) => a + b, 0);
  expect(sum).toBeCloseTo(REFERENCE.measures.val_cargaenergiahomwmed.sum, 3);
  expect(s).toMatchObject({
    dataset: 'curva_carga',
    rows: FIELDS.length,
    records: FIELDS.length,
    rejected: 0,
    series: REFERENCE.series,
    start: REFERENCE.start,
    end: REFERENCE.end,
  });
  expect(s.measures).toHaveLength(1);
  expect(s.measures[0]).toMatchObject({ name: 'val_cargaenergiahomwmed', count: values.length, nulls: 0 });
  expect(s.measures[0].sum).toBe(sum);
}

async function* chunked(bytes: Uint8Array, cuts: readonly number[]): AsyncGenerator<Uint8Array> {
  const points = [0, ...cuts.filter((o) => o > 0 && o < bytes.length), bytes.length];
  for (let k = 1; k < points.length; k++) yield bytes.subarray(points[k - 1], points[k]);
}

/** Chunk offsets every `size` bytes, or (size 1) one-byte chunks around `around`. */
function offsets(length: number, size: number, around: number): number[] {
  const out: number[] = [];
  if (size === 1) for (let at = around - 4; at < around + 4; at++) out.push(at);
  else for (let at = size; at < length; at += size) out.push(at);
  return out;
}

async function read(source: AsyncIterable<Uint8Array>): Promise<{ summary: FileSummary; records: OnsRecord[] }> {
  const table = await readCsv(source);
  const records: OnsRecord[] = [];
  const summary = await processTable(CURVA, table, resolveDataset(CURVA, table.header), { record: (r) => { records.push(r); } });
  return { summary, records };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ons-encoding-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The file on disk, read as the CLI reads it (1 MiB chunks). */
function onDisk(bytes: Uint8Array): string {
  const file = join(dir, CURVA);
  writeFileSync(file, bytes);
  return file;
}

describe('a Latin-1 file whose first accented byte lies anywhere is read as Latin-1', () => {
  /** A byte of the last row's label: with a final newline after the label, the last byte but one. */
  const last = LABEL_STARTS[LABEL_STARTS.length - 1] + 5;
  const cases: Array<[string, number, boolean]> = [
    ['the first byte after the sniffed 64 KiB', SNIFF, true],
    ['the last byte of the sniffed 64 KiB', SNIFF - 1, true],
    ['in the middle of the first 1 MiB chunk', 700_000, true],
    ['the last byte of the first 1 MiB chunk (cut from the next)', MIB - 1, true],
    ['the first byte of the second 1 MiB chunk', MIB, true],
    ['the last byte before the final newline', last, true],
  ];

  test.each(cases)('%s', async (_, at, finalNewline) => {
    const { bytes, labels } = latin1At(at, finalNewline);
    const file = onDisk(bytes);
    const summary = await inspectFile(CURVA, localFile(file));
    expect(summary.encoding).toBe('latin1');
    expectOriginalFigures(summary);

    for (const size of [0, 1, 4096, 65_537, 1_000_003]) {
      const o = await read(size === 0 ? localFile(file).stream() : chunked(bytes, offsets(bytes.length, size, at)));
      expect(o.summary).toEqual(summary);
      expect(o.records.map((r) => r.labels.nom_subsistema)).toEqual(labels);
    }
  });

  test('the very last byte of the file (no final newline): decided at the end of the file', async () => {
    const { bytes, labels } = latin1At(last, false);
    expect(bytes.length).toBe(last + 1);
    for (const size of [0, 1, 4096, 65_537]) {
      const o = await read(size === 0 ? localFile(onDisk(bytes)).stream() : chunked(bytes, offsets(bytes.length, size, last)));
      expect(o.summary.encoding).toBe('latin1');
      expectOriginalFigures(o.summary);
      expect(o.records.map((r) => r.labels.nom_subsistema)).toEqual(labels);
    }
  });

  test('Windows-1252 punctuation (0x96, an en dash) as the first non-ASCII byte, after 1 MiB', async () => {
    const { bytes, labels, row } = latin1At(MIB + 10);
    bytes[MIB + 10] = 0x96;
    const o = await read(localFile(onDisk(bytes)).stream());
    expect(o.summary.encoding).toBe('latin1');
    expectOriginalFigures(o.summary);
    expect(o.records.map((r) => r.labels.nom_subsistema)).toEqual(labels.map((l, j) => (j === row ? `${l.slice(0, -1)}–` : l)));
  });
});

describe('UTF-8 stays UTF-8, and a file that mixes encodings is refused at the exact byte', () => {
  /** The original with accented labels from row `from` on: UTF-8 up to row `latin1`, Latin-1 from there (from <= latin1). */
  function mixed(from: number, latin1: number, bom = false): { bytes: Buffer; offset: number; line: number } {
    const lines = FIELDS.map((f, j) => prefix(f) + (j < from ? f[1] : PLACES[f[0]]));
    const utf8 = Buffer.from([HEADER, ...lines.slice(0, latin1)].join('\n') + '\n', 'utf8');
    const rest = Buffer.from(lines.slice(latin1).join('\n') + '\n', 'latin1');
    const bytes = Buffer.concat([Buffer.from(bom ? [0xef, 0xbb, 0xbf] : []), utf8, rest]);
    return { bytes, offset: bytes.length - rest.length + firstNotAscii(rest), line: latin1 + 2 };
  }

  test('UTF-8 accents first met after 64 KiB and after 1 MiB: UTF-8, labels read back', async () => {
    for (const from of [LABEL_STARTS.findIndex((s) => s > SNIFF), LABEL_STARTS.findIndex((s) => s > MIB)]) {
      const { bytes } = mixed(from, FIELDS.length);
      expect(firstNotAscii(bytes)).toBeGreaterThan(SNIFF);
      for (const source of [localFile(onDisk(bytes)).stream(), chunked(bytes, offsets(bytes.length, 4096, 0))]) {
        const o = await read(source);
        expect(o.summary.encoding).toBe('utf-8');
        expectOriginalFigures(o.summary);
        expect(o.records.map((r) => r.labels.nom_subsistema)).toEqual(FIELDS.map((f, j) => (j < from ? f[1] : PLACES[f[0]])));
      }
    }
  });

  test.each([
    ['UTF-8 from row 100, a Latin-1 row inside the first 64 KiB', 100, 500, false],
    ['UTF-8 from 64 KiB on, Latin-1 after 1 MiB', LABEL_STARTS.findIndex((s) => s > SNIFF), LABEL_STARTS.findIndex((s) => s > MIB), false],
    ['a UTF-8 BOM, then Latin-1 after 64 KiB', LABEL_STARTS.findIndex((s) => s > SNIFF), LABEL_STARTS.findIndex((s) => s > SNIFF), true],
  ])('%s', async (_, from, latin1, bom) => {
    const { bytes, offset, line } = mixed(from, latin1, bom);
    expect(new TextDecoder('utf-8').decode(bytes.subarray(0, offset)).includes('\uFFFD')).toBe(false);
    const message = `mixed encodings: the file is UTF-8 (${bom ? 'it starts with a UTF-8 BOM' : 'it has UTF-8 characters before'}), `
      + `but the byte at offset ${offset} (line ${line}) is 0x${bytes[offset].toString(16).toUpperCase()}, not valid UTF-8 there (Latin-1?); `
      + 'save the whole file in one encoding, UTF-8';
    await expect(inspectFile(CURVA, localFile(onDisk(bytes)))).rejects.toThrow(new RefusedFileError(message));
    for (const size of [1, 4096, 65_537]) {
      await expect(read(chunked(bytes, offsets(bytes.length, size, offset)))).rejects.toThrow(new RefusedFileError(message));
    }
  });

  test('the only UTF-8 character cut across two chunks still makes the file UTF-8: a later Latin-1 byte is refused', async () => {
    const from = LABEL_STARTS.findIndex((s) => s > 200_000);
    const lines = FIELDS.map((f, j) => prefix(f) + (j === from ? 'SÃO PAULO' : f[1]));
    const utf8 = Buffer.from([HEADER, ...lines.slice(0, from + 10)].join('\n') + '\n', 'utf8');
    const bytes = Buffer.concat([utf8, Buffer.from('N;2023-12-31 23:00:00;1;Ç\n', 'latin1')]);
    const first = firstNotAscii(bytes); // 0xC3 0x83: the chunk ends between them
    const offset = bytes.length - 2;
    for (const cuts of [[first + 1], [first, first + 1, first + 2]]) {
      await expect(read(chunked(bytes, [SNIFF, ...cuts]))).rejects.toThrow(new RefusedFileError(
        `mixed encodings: the file is UTF-8 (it has UTF-8 characters before), but the byte at offset ${offset} (line ${from + 12}) is 0xC7, `
        + 'not valid UTF-8 there (Latin-1?); save the whole file in one encoding, UTF-8'));
    }
  });
});
