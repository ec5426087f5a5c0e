import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectFile } from '../../src/ons/convert';
import { localFile } from '../../src/ons/local-file';
import { notANumber, parseMeasure } from '../../src/ons/number';
import { FileSummary } from '../../src/ons/process';
import { readCsv } from '../../src/ons/readers/csv';
import { ONS_DATA } from '../ons-data';
import { chunks, Outcome, outcome } from './outcome';

/**
 * Thousands separators. In a comma-decimal file a dot only separates thousands (`1.234` = 1234,
 * `12.345.678,9`); in a dot-decimal file a comma is no decimal separator; a file where no number tells
 * refuses `1.234`, which reads as two different numbers. Files are real ONS files re-saved as a
 * spreadsheet in Brazilian locale writes them; the figures expected are computed here from the original.
 */

const REFERENCE = JSON.parse(readFileSync(join(ONS_DATA, 'reference-figures.json'), 'utf8')) as Record<string, {
  rows: number; series: number; start: string; end: string; measures: Record<string, { count: number; sum: number }>;
}>;
const CURVA = 'CURVA_CARGA_2023.csv';
const BALANCO = 'BALANCO_ENERGIA_SUBSISTEMA_2023.csv';
const TEMPORAL = 'Temporal Geração de Energia.csv';
const MIB = 1024 * 1024;

/** A plain decimal (as ONS writes it, `0E-8` included) as a spreadsheet in Brazilian locale shows it: `38.123,4567`, `987,5`, `12.721`. */
function brazilian(value: string): string {
  if (value === '') return '';
  if (/e/i.test(value)) {
    expect(Number(value)).toBe(0);
    return '0';
  }
  const [, sign, int, frac = ''] = /^(-?)(\d+)(?:\.(\d+))?$/.exec(value)!;
  const decimals = frac.replace(/0+$/, '');
  return `${sign}${int.replace(/\B(?=(\d{3})+$)/g, '.')}${decimals ? `,${decimals}` : ''}`;
}

/** `2023-01-01 00:00:00` as `01/01/2023 00:00:00`. */
const brazilianTime = (t: string): string => `${t.slice(8, 10)}/${t.slice(5, 7)}/${t.slice(0, 4)}${t.slice(10)}`;

interface Table {
  readonly header: string[];
  readonly rows: string[][];
}

function table(text: string): Table {
  const [header, ...lines] = text.replace(/\n$/, '').split('\n').map((l) => l.split(';'));
  return { header, rows: lines };
}

const csv = (t: Table): string => [t.header, ...t.rows].map((r) => r.join(';')).join('\n') + '\n';

/** Count and sum of each `val_` column, in file order, from numbers written with a decimal point. */
function figures(t: Table, values: (row: string[], column: number) => string = (row, c) => row[c]): Record<string, { count: number; sum: number }> {
  const out: Record<string, { count: number; sum: number }> = {};
  t.header.forEach((name, c) => {
    if (!name.startsWith('val_')) return;
    const cells = t.rows.map((r) => values(r, c)).filter((v) => v !== '');
    out[name] = { count: cells.length, sum: cells.reduce((a, v) => a + Number(v), 0) };
  });
  return out;
}

async function read(name: string, text: string | Buffer, size = 65_537): Promise<Outcome> {
  return outcome(name, await readCsv(chunks(Buffer.from(text), size)));
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ons-thousands-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** inspect of the text as a file on disk, as the CLI reads it. */
async function inspect(name: string, text: string): Promise<FileSummary> {
  const file = join(dir, name);
  writeFileSync(file, text);
  return inspectFile(name, localFile(file));
}

function expectFigures(s: FileSummary, expected: Record<string, { count: number; sum: number }>): void {
  expect(Object.fromEntries(s.measures.map((m) => [m.name, { count: m.count, sum: m.sum }]))).toEqual(expected);
}

describe('real files re-saved from a spreadsheet in Brazilian locale', () => {
  test.each([CURVA, BALANCO])('%s: every value read as the original, `1.234` as 1234', async (name) => {
    const original = table(readFileSync(join(ONS_DATA, name), 'utf8'));
    const ref = REFERENCE[name];
    const resaved: Table = {
      header: original.header,
      rows: original.rows.map((r) => r.map((cell, c) => (original.header[c].startsWith('val_') ? brazilian(cell) : c === 2 ? brazilianTime(cell) : cell))),
    };
    const cells = resaved.rows.flatMap((r) => r.slice(3));
    // The forms the rule is about are all there.
    expect(cells.some((v) => /^\d{1,3}(\.\d{3})+,\d+$/.test(v))).toBe(true);
    if (name === CURVA) expect(cells.some((v) => /^\d{1,3}(\.\d{3})+$/.test(v))).toBe(true); // integers of 1000 or more: `12.721`
    if (name === BALANCO) expect(cells.some((v) => /^-?\d{1,3},\d+$/.test(v))).toBe(true);

    const expected = figures(original);
    for (const [measure, f] of Object.entries(expected)) expect(f.sum).toBeCloseTo(ref.measures[measure].sum, 3);
    const s = await inspect(name, csv(resaved));
    expect(s).toMatchObject({ rows: ref.rows, records: ref.rows, rejected: 0, series: ref.series, start: ref.start, end: ref.end });
    expectFigures(s, expected);
    expect((await read(name, csv(resaved), 4099)).summary).toEqual(s);
  });

  test(`${TEMPORAL} (a dashboard export, comma decimals): as published, and in kWh with thousands dots`, async () => {
    const original = table(readFileSync(join(ONS_DATA, TEMPORAL), 'utf8').replace(/\n?$/, '\n'));
    const values = original.rows.map((r) => Number(r[3].replace(',', '.')));
    const s = await inspect(TEMPORAL, csv(original));
    expect(s).toMatchObject({ rows: values.length, records: values.length, rejected: 0, series: 1 });
    expect(s.measures.map((m) => ({ count: m.count, sum: m.sum }))).toEqual([{ count: values.length, sum: values.reduce((a, b) => a + b, 0) }]);

    // MWmed to kWmed: the decimal comma three places to the right, every 10th value rounded (`50.411`).
    const kilo = (v: string, i: number): string => {
      const [int, frac] = v.split(',');
      const moved = `${int}${frac.padEnd(3, '0').slice(0, 3)}.${frac.slice(3) || '0'}`.replace(/^0+(?=\d)/, '');
      return i % 10 === 0 ? String(Math.round(Number(moved))) : moved;
    };
    const rows = original.rows.map((r, i) => [...r.slice(0, 3), brazilian(kilo(r[3], i))]);
    expect(rows.filter((r) => /^\d{1,3}\.\d{3}$/.test(r[3])).length).toBeGreaterThan(40);
    const expected = original.rows.reduce((a, r, i) => a + Number(kilo(r[3], i)), 0);
    const k = await inspect(TEMPORAL, csv({ header: original.header, rows }));
    expect(k).toMatchObject({ rows: rows.length, records: rows.length, rejected: 0 });
    expect(k.measures[0].count).toBe(rows.length);
    expect(k.measures[0].sum).toBe(expected);
  });
});

describe('deciding the decimal style', () => {
  const curva = table(readFileSync(join(ONS_DATA, CURVA), 'utf8'));
  const rounded = (v: string): string => String(Math.round(Number(v)));

  test('the first 200 lines hold only `5.991` (either style): the reader looks further and finds `5.990,553`', async () => {
    const rows = curva.rows.map((r, i) => [r[0], r[1], r[2], brazilian(i < 300 ? rounded(r[3]) : r[3])]);
    expect(rows.slice(0, 300).every((r) => /^\d{1,3}\.\d{3}$/.test(r[3]))).toBe(true);
    const o = await read(CURVA, csv({ header: curva.header, rows }));
    expect(o.summary).toMatchObject({ records: rows.length, rejected: 0 });
    expect(o.summary.measures[0].sum).toBe(curva.rows.reduce((a, r, i) => a + Number(i < 300 ? rounded(r[3]) : r[3]), 0));
  });

  test('no number tells within 4 MiB: the file stays undecided, `5.991` is refused everywhere and `5.990,553` read', async () => {
    // Four years of CURVA rounded (no daylight saving since 2019: every local hour exists once), then one as published.
    const rows: string[][] = [];
    const originals: string[] = [];
    for (let copy = 0; copy < 5; copy++) {
      const year = String(2023 + copy);
      for (const r of curva.rows) {
        rows.push([r[0], r[1], year + r[2].slice(4), brazilian(copy < 4 ? rounded(r[3]) : r[3])]);
        originals.push(r[3]);
      }
    }
    const text = csv({ header: curva.header, rows });
    // The lines read to decide: at least 200, then up to 4 MiB of text.
    let lines = 0;
    for (let chars = 0; lines < 200 || chars < 4 * MIB; lines++) chars += rows[lines].join(';').length;
    expect(rows.slice(0, lines).some((r) => !/^\d{1,3}\.\d{3}$/.test(r[3]))).toBe(false);

    const o = await read(CURVA, text, MIB);
    const isAmbiguous = (r: string[]) => /^\d{1,3}\.\d{3}$/.test(r[3]);
    const ambiguous = rows.filter(isAmbiguous);
    const keptAt = rows.map((_, i) => i).filter((i) => i >= 4 * curva.rows.length && !isAmbiguous(rows[i]));
    const kept = keptAt.map((i) => rows[i]);
    const utc = (local: string) => new Date(Date.parse(`${local.replace(' ', 'T')}Z`) + 3 * 3_600_000).toISOString();
    expect(o.summary).toMatchObject({
      rows: rows.length, records: kept.length, rejected: ambiguous.length, series: 4, start: utc(kept[0][2]), end: utc(kept[kept.length - 1][2]),
    });
    expect(o.summary.measures[0].sum).toBe(keptAt.reduce((a, i) => a + Number(originals[i]), 0));
    expect(o.rejections[0]).toEqual({
      row: 2,
      reason: `val_cargaenergiahomwmed: '${rows[0][3]}' is ambiguous: ${Number(rows[0][3])} with a decimal point or ${rows[0][3].replace('.', '')} `
        + `with a thousands separator, and no number in the file's first ${lines} data lines tells which`,
      cells: rows[0],
    });
  });

  test('a file where no number tells at all: `1.234` refused, the rest read', async () => {
    const rows = curva.rows.slice(0, 8).map((r, i) => [r[0], r[1], r[2], ['5.991', '987', '', '1.234.567', '12721', '-2.500', '0', '10.456'][i]]);
    const o = await read(CURVA, csv({ header: curva.header, rows }));
    expect(o.records.map((r) => r.measures.val_cargaenergiahomwmed)).toEqual([987, null, 1234567, 12721, 0]);
    expect(o.rejections.map((r) => r.reason)).toEqual(['5.991', '-2.500', '10.456'].map((v) => `val_cargaenergiahomwmed: '${v}' is ambiguous: `
      + `${Number(v)} with a decimal point or ${Number(v.replace('.', ''))} with a thousands separator, and no number in the file tells which`));
  });

  test('more fields with a decimal comma than with a decimal point: comma (a tie would be a point)', async () => {
    const values = ['50,4', '1.5', '1.234,5', '2.25', '7,125', '1.234'];
    const rows = curva.rows.slice(0, values.length).map((r, i) => [r[0], r[1], r[2], values[i]]);
    const o = await read(CURVA, csv({ header: curva.header, rows }));
    expect(o.records.map((r) => r.measures.val_cargaenergiahomwmed)).toEqual([50.4, 1234.5, 7.125, 1234]);
    const tie = await read(CURVA, csv({ header: curva.header, rows: rows.slice(0, 4) }));
    expect(tie.records.map((r) => r.measures.val_cargaenergiahomwmed)).toEqual([1.5, 2.25]);
  });
});

describe('each rejection names the value and the file\'s style', () => {
  const curva = table(readFileSync(join(ONS_DATA, CURVA), 'utf8'));
  /** The first rows of CURVA, values in the given form, with row 5's value replaced. */
  const rows = (form: (v: string) => string, value: string) => curva.rows.slice(0, 8).map((r, i) => [r[0], r[1], r[2], i === 3 ? value : form(r[3])]);

  test.each([
    ['a comma-decimal file, a decimal point', brazilian, '5990.553',
      `'5990.553' is not a number in this file: it writes decimal commas (as in '${brazilian(curva.rows[0][3])}' on line 2), `
      + 'where a dot only separates thousands in groups of 3 (1.234 = 1234)'],
    ['a comma-decimal file, a dot in the wrong place', brazilian, '10.45,5',
      `'10.45,5' is not a number in this file: it writes decimal commas (as in '${brazilian(curva.rows[0][3])}' on line 2), `
      + 'where a dot only separates thousands in groups of 3 (1.234 = 1234)'],
    ['a dot-decimal file, a decimal comma', (v: string) => v, '10.455,818',
      `'10.455,818' is not a number in this file: it reads as dot-decimal (as in '${curva.rows[0][3]}' on line 2), with no thousands separator`],
    ['a dot-decimal file, thousands dots', (v: string) => v, '10.455.818',
      `'10.455.818' is not a number in this file: it reads as dot-decimal (as in '${curva.rows[0][3]}' on line 2), with no thousands separator`],
    ['text', brazilian, 'n/d', "'n/d' is not a number"],
  ])('%s', async (_, form, value, reason) => {
    const o = await read(CURVA, csv({ header: curva.header, rows: rows(form, value) }));
    expect(o.summary).toMatchObject({ records: 7, rejected: 1 });
    expect(o.rejections).toEqual([{ row: 5, reason: `val_cargaenergiahomwmed: ${reason}`, cells: rows(form, value)[3] }]);
  });

  test("a ','-delimited file reads as dot-decimal, and says so", async () => {
    const text = [curva.header, ...rows((v) => v, '"10455,818"')].map((r) => r.join(',')).join('\n') + '\n';
    const o = await read(CURVA, text);
    expect(o.rejections.map((r) => r.reason)).toEqual([
      "val_cargaenergiahomwmed: '10455,818' is not a number in this file: it reads as dot-decimal (its delimiter is ','), with no thousands separator",
    ]);
  });
});

describe('parseMeasure by decimal style', () => {
  test.each([
    // [text, comma-decimal, dot-decimal, undecided]
    ['1.234', 1234, 1.234, NaN],
    ['12.345.678,9', 12345678.9, NaN, 12345678.9],
    ['1.234,5', 1234.5, NaN, 1234.5],
    ['987,5', 987.5, NaN, 987.5],
    ['-1.000', -1000, -1, NaN],
    ['1.5', NaN, 1.5, 1.5],
    ['0.123', NaN, 0.123, 0.123],
    ['1234.567', NaN, 1234.567, 1234.567],
    ['1.23', NaN, 1.23, 1.23],
    ['1.2345', NaN, 1.2345, 1.2345],
    ['01.234', NaN, 1.234, 1.234],
    ['1.234.5', NaN, NaN, NaN],
    ['1.234e3', NaN, 1234, 1234],
    ['1234', 1234, 1234, 1234],
    ['0E-8', 0, 0, 0],
  ])('%j: comma %p, point %p, undecided %p', (text, comma, point, undecided) => {
    expect(parseMeasure(text, true)).toBe(comma);
    expect(parseMeasure(text, false)).toBe(point);
    expect(parseMeasure(text, 'undecided')).toBe(undecided);
  });
});

test('a reason without how the style was decided (XLSX and Parquet text cells read as dot-decimal)', () => {
  expect(notANumber('50,4', false)).toBe("'50,4' is not a number in this file: it reads as dot-decimal, with no thousands separator");
  expect(notANumber('1.5', true)).toBe("'1.5' is not a number in this file: it writes decimal commas, where a dot only separates thousands in groups of 3 (1.234 = 1234)");
  expect(notANumber('1.234', 'undecided')).toBe("'1.234' is ambiguous: 1.234 with a decimal point or 1234 with a thousands separator, and no number in the file tells which");
  expect(notANumber('n/d', false)).toBe("'n/d' is not a number");
});
