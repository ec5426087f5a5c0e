import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileSummary } from '../../src/ons/process';
import { SeriesInstants } from '../../src/ons/series';
import { ONS_DATA } from '../ons-data';
import { readBothPaths } from './outcome';

/**
 * Duplicates are found whatever the order of the rows: real ONS files downloaded twice and concatenated,
 * a re-export appended, shuffled, sorted by series. The expected figures come from
 * reference-figures.json (an independent implementation) or from a plain split of the file here.
 */

interface Reference { rows: number; series: number; start: string; end: string; measures: Record<string, { count: number; sum: number }> }
const REFERENCE: Record<string, Reference> = JSON.parse(readFileSync(join(ONS_DATA, 'reference-figures.json'), 'utf8'));


/** The real file as a header and rows of cells (a plain split: ONS never quotes). */
function plain(file: string): { header: string; rows: string[][] } {
  const lines = readFileSync(join(ONS_DATA, file), 'utf8').split('\n').filter((l) => l.length > 0);
  return { header: lines[0], rows: lines.slice(1).map((l) => l.split(';')) };
}

const csv = (header: string, rows: readonly string[][]) => `${[header, ...rows.map((r) => r.join(';'))].join('\n')}\n`;

/** Sums agree to a relative 1e-12: the same values added in another order. */
function expectSum(actual: number, expected: number): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(Math.abs(expected) * 1e-12);
}

/** The summary holds the reference figures of the original file, plus `rejected` rejected rows. */
function expectReference(summary: FileSummary, file: string, rejected: number): void {
  const ref = REFERENCE[file];
  expect({ rows: summary.rows, records: summary.records, rejected: summary.rejected, series: summary.series, start: summary.start, end: summary.end })
    .toEqual({ rows: ref.rows + rejected, records: ref.rows, rejected, series: ref.series, start: ref.start, end: ref.end });
  expect(summary.measures.map((m) => m.name).sort()).toEqual(Object.keys(ref.measures).sort());
  for (const m of summary.measures) {
    expect(m.count).toBe(ref.measures[m.name].count);
    expectSum(m.sum, ref.measures[m.name].sum);
  }
}

/** Deterministic shuffle (mulberry32), so a failure can be reproduced. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let a = seed;
  const random = () => {
    /* eslint-disable no-bitwise */
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    /* eslint-enable no-bitwise */
  };
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Rows are numbered from the header (row 1): data row i (from 0) is row i + 2. */
const rowNumber = (i: number) => i + 2;

const CURVA = 'CURVA_CARGA_2023.csv';
const BALANCO = 'BALANCO_ENERGIA_SUBSISTEMA_2023.csv';

describe.each([CURVA, BALANCO])('%s', (file) => {
  const { header, rows } = plain(file);
  const columns = header.split(';');
  const time = columns.indexOf('din_instante');
  const id = columns.findIndex((c) => c.startsWith('id_subsist'));
  const key = (r: readonly string[]) => `${r[id]}|${r[time]}`;

  test('concatenated with itself (header once): every row of the second copy is a duplicate of its twin', async () => {
    const o = await readBothPaths(file, csv(header, [...rows, ...rows]));
    expectReference(o.summary, file, rows.length);
    expect(o.rejections.map((r) => r.row)).toEqual(rows.map((_, i) => rowNumber(rows.length + i)));
    for (const [i, r] of o.rejections.entries()) {
      expect(r.reason).toBe(`duplicate of row ${rowNumber(i)} (same series and time, ${rows[i][time].replace(' ', 'T')}): the first row is kept`);
    }
  });

  test('a re-export appended (the last month again, values changed): the first rows are kept', async () => {
    const lastMonth = rows[rows.length - 1][time].slice(0, 7);
    const again = rows.filter((r) => r[time].startsWith(lastMonth))
      .map((r) => r.map((cell, k) => (k === time || k <= 1 || cell === '' ? cell : String(Number(cell) + 1))));
    expect(again.length).toBeGreaterThan(100);
    const o = await readBothPaths(file, csv(header, [...rows, ...again]));
    // The sums are the original file's: none of the changed values was taken.
    expectReference(o.summary, file, again.length);
    const firstRow = new Map(rows.map((r, i) => [key(r), rowNumber(i)]));
    expect(o.rejections.map((r) => r.reason.match(/^duplicate of row (\d+) /)?.[1]).map(Number))
      .toEqual(again.map((r) => firstRow.get(key(r))));
  });

  test('shuffled, with a changed copy of every tenth row mixed in: exact, and the first in file order is kept', async () => {
    const copies = rows.filter((_, i) => i % 10 === 0).map((r) => r.map((cell, k) => (k === time || k <= 1 || cell === '' ? cell : String(Number(cell) * 2))));
    const mixed = shuffled([...rows, ...copies], 22);
    const o = await readBothPaths(file, csv(header, mixed));

    // Expected, from the shuffled rows: the first of each (series, time) kept, every later one rejected as its duplicate.
    const first = new Map<string, number>();
    const rejected: Array<[number, number]> = [];
    mixed.forEach((r, i) => {
      const k = key(r);
      if (first.has(k)) rejected.push([rowNumber(i), first.get(k)!]);
      else first.set(k, i);
    });
    const kept = [...first.values()].map((i) => mixed[i]);
    expect(o.rejections.map((r) => [r.row, Number(r.reason.match(/^duplicate of row (\d+) /)?.[1])]))
      .toEqual(rejected.map(([row, i]) => [row, rowNumber(i)]));
    const ref = REFERENCE[file];
    expect(o.summary).toMatchObject({
      rows: mixed.length, records: ref.rows, rejected: copies.length, series: ref.series, start: ref.start, end: ref.end,
    });
    for (const m of o.summary.measures) {
      const column = columns.indexOf(m.name);
      const values = kept.map((r) => r[column]).filter((v) => v !== '').map(Number);
      expect(m.count).toBe(values.length);
      expectSum(m.sum, values.reduce((a, b) => a + b, 0));
      expect(m.max).toBe(Math.max(...values));
    }
  });

  test('sorted by series then time: read whole; twice, concatenated or each row next to its twin, the second copies are duplicates', async () => {
    // Stable: twins stay in file order. ONS times sort as text.
    const order = (r: readonly string[]) => `${r[id]}|${r[time]}`;
    const bySeries = (list: string[][]) => list.slice().sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
    const sorted = bySeries(rows);
    expectReference((await readBothPaths(file, csv(header, sorted))).summary, file, 0);

    const concatenated = await readBothPaths(file, csv(header, [...sorted, ...sorted]));
    expectReference(concatenated.summary, file, rows.length);
    expect(concatenated.rejections.map((r) => [r.row, r.reason.match(/^duplicate of row (\d+) /)?.[1]]))
      .toEqual(sorted.map((_, i) => [rowNumber(rows.length + i), String(rowNumber(i))]));

    const twice = bySeries([...rows, ...rows]);
    const o = await readBothPaths(file, csv(header, twice));
    expectReference(o.summary, file, rows.length);
    // Each row comes right after its twin.
    expect(o.rejections.map((r) => [r.row, r.reason.match(/^duplicate of row (\d+) /)?.[1]]))
      .toEqual(twice.flatMap((_, i) => (i % 2 === 1 ? [[rowNumber(i), String(rowNumber(i - 1))]] : [])));
  });
});

describe('SeriesInstants memory', () => {
  test('a real file in time order costs one run per series; each irregularity or block out of order, a few more', () => {
    const { rows } = plain(CURVA);
    const ids = new Map<string, number>();
    const idOf = (s: string) => ids.get(s) ?? ids.set(s, ids.size).get(s)!;
    const instants = new SeriesInstants();
    // The time column read as UTC-3 (2023 had no daylight saving).
    const utc = (text: string) => Date.parse(`${text.replace(' ', 'T')}-03:00`);
    expect(rows.filter((r, i) => instants.claim(idOf(r[0]), utc(r[2]), rowNumber(i)) !== -1)).toEqual([]);
    expect(instants.runCount).toBe(4);
    expect(rows.filter((r, i) => instants.claim(idOf(r[0]), utc(r[2]), 0) !== rowNumber(i))).toEqual([]);
    expect(instants.runCount).toBe(4);

    // Rows with a gap (one hour of one series missing) and then one out of time order.
    const gappy = new SeriesInstants();
    const missing = 1000;
    let row = 2;
    rows.forEach((r, i) => { if (i !== missing) gappy.claim(idOf(r[0]), utc(r[2]), row++); });
    // The gap breaks its series' run, the rows one fewer at that hour the other series' runs: one more run each.
    expect(gappy.runCount).toBe(8);
    expect(gappy.claim(idOf(rows[missing][0]), utc(rows[missing][2]), 99)).toBe(-1);
    expect(gappy.claim(idOf(rows[missing][0]), utc(rows[missing][2]), 100)).toBe(99);
    expect(gappy.claim(idOf(rows[missing + 4][0]), utc(rows[missing + 4][2]), 100)).toBe(rowNumber(missing + 4) - 1);

    // Months in reverse order (as the bench's CURVA_CARGA_2099 stacks years), and the whole file reversed.
    const months = [...new Set(rows.map((r) => r[2].slice(0, 7)))].reverse();
    const byMonth = months.flatMap((m) => rows.filter((r) => r[2].startsWith(m)));
    const reversed = rows.slice().reverse();
    for (const [order, runs] of [[byMonth, 12 * 4], [reversed, 4]] as const) {
      const out = new SeriesInstants();
      expect(order.filter((r, i) => out.claim(idOf(r[0]), utc(r[2]), rowNumber(i)) !== -1)).toEqual([]);
      expect(out.runCount).toBe(runs);
      expect(order.filter((r, i) => out.claim(idOf(r[0]), utc(r[2]), 0) !== rowNumber(i))).toEqual([]);
    }
  });
});
