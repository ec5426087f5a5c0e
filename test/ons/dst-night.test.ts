import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileSummary } from '../../src/ons/process';
import { ONS_DATA } from '../ons-data';
import { readBothPaths } from './outcome';

/**
 * The night the clocks moved forward: a local time that did not exist (00:00 on a day daylight saving
 * began) moves forward by the gap, unless a row of the same series really has that instant; then that
 * row is kept and the shifted one rejected. Files are real ONS files moved to a year with daylight
 * saving; the expected figures are computed here with Intl and the IANA zone, not with our parser.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const zone = new Intl.DateTimeFormat('en-US', {
  timeZone: 'America/Sao_Paulo', hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
});

/** Local minus UTC, in ms, at a UTC instant (from Intl). */
function offsetAt(utc: number): number {
  const p: Record<string, number> = {};
  for (const part of zone.formatToParts(new Date(utc))) if (part.type !== 'literal') p[part.type] = Number(part.value);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - utc;
}

/**
 * The instant of a Brasília wall-clock `YYYY-MM-DD HH:MM:SS`: the earliest instant whose local time it
 * is; one that no instant has (skipped by the clocks) keeps the offset in force before the gap.
 */
function instant(text: string): { utc: number; exists: boolean } {
  let known = converted.get(text);
  if (!known) {
    const wall = Date.parse(`${text.replace(' ', 'T')}Z`);
    const offsets = [...new Set([offsetAt(wall - DAY), offsetAt(wall + DAY)])];
    const valid = offsets.map((o) => wall - o).filter((utc) => offsetAt(utc) === wall - utc);
    known = valid.length ? { utc: Math.min(...valid), exists: true } : { utc: wall - offsetAt(wall - DAY), exists: false };
    converted.set(text, known);
  }
  return known;
}
const converted = new Map<string, { utc: number; exists: boolean }>();


/** A real file as a header and rows of cells (a plain split: ONS never quotes); its time column moved to `year`. */
function plain(file: string, year?: number): { header: string; rows: string[][]; time: number } {
  const lines = readFileSync(join(ONS_DATA, file), 'utf8').split('\n').filter((l) => l.length > 0);
  const time = lines[0].split(';').indexOf('din_instante');
  const rows = lines.slice(1).map((l) => l.split(';'));
  if (year !== undefined) for (const r of rows) r[time] = `${year}${r[time].slice(4)}`;
  return { header: lines[0], rows, time };
}

const csv = (header: string, rows: readonly string[][]) => `${[header, ...rows.map((r) => r.join(';'))].join('\n')}\n`;

/** Rows are numbered from the header (row 1): data row i (from 0) is row i + 2. */
const rowNumber = (i: number) => i + 2;

/** The summary of the given rows kept (all valid, distinct) and `rejected` others. */
function expectFigures(summary: FileSummary, header: string, kept: readonly string[][], rejected: number, time: number): void {
  const columns = header.split(';');
  const instants = kept.map((r) => instant(r[time]).utc);
  const { rows, records, series, start, end } = summary;
  expect({ rows, records, rejected: summary.rejected, series, start, end }).toEqual({
    rows: kept.length + rejected,
    records: kept.length,
    rejected,
    series: new Set(kept.map((r) => r[0])).size,
    start: new Date(Math.min(...instants)).toISOString(),
    end: new Date(Math.max(...instants)).toISOString(),
  });
  for (const m of summary.measures) {
    const values = kept.map((r) => r[columns.indexOf(m.name)]).filter((v) => v !== '').map(Number);
    expect({ name: m.name, count: m.count, nulls: m.nulls }).toEqual({ name: m.name, count: values.length, nulls: kept.length - values.length });
    const sum = values.reduce((a, b) => a + b, 0);
    expect(Math.abs(m.sum - sum)).toBeLessThanOrEqual(Math.abs(sum) * 1e-12);
  }
}

/** For each row whose local time does not exist, the row of the same series that really has its instant (or -1). */
function phantoms(rows: readonly string[][], time: number): Array<{ phantom: number; genuine: number }> {
  const genuine = new Map<string, number>();
  rows.forEach((r, i) => {
    const t = instant(r[time]);
    if (t.exists) genuine.set(`${r[0]}|${t.utc}`, i);
  });
  return rows.flatMap((r, i) => {
    const t = instant(r[time]);
    return t.exists ? [] : [{ phantom: i, genuine: genuine.get(`${r[0]}|${t.utc}`) ?? -1 }];
  });
}

describe('hourly: CURVA_CARGA_2023 moved to 2018, which has 2018-11-04 00:00 (a time the clocks skipped) and 01:00', () => {
  const { header, rows, time } = plain('CURVA_CARGA_2023.csv', 2018);
  const found = phantoms(rows, time);

  test('the file has the phantom 00:00 and the genuine 01:00 of every series that day', () => {
    expect(found.map(({ phantom }) => rows[phantom].slice(0, 3).join(';')))
      .toEqual(['N;NORTE', 'NE;NORDESTE', 'S;SUL', 'SE;SUDESTE'].map((s) => `${s};2018-11-04 00:00:00`));
    expect(found.map(({ genuine }) => rows[genuine][time])).toEqual(Array(4).fill('2018-11-04 01:00:00'));
  });

  test('the genuine 01:00 rows are kept; the 00:00 rows are rejected, naming the row with the real time', async () => {
    const o = await readBothPaths('CURVA_CARGA_2018.csv', csv(header, rows));
    const refused = new Set(found.map((f) => f.phantom));
    expectFigures(o.summary, header, rows.filter((_, i) => !refused.has(i)), found.length, time);
    expect(o.rejections.map((r) => r.row)).toEqual(found.map((f) => rowNumber(f.phantom)));
    for (const [k, r] of o.rejections.entries()) {
      expect(r.reason).toBe(`din_instante: 2018-11-04T00:00:00 does not exist on that day (the clocks moved forward 60 minutes); row ${rowNumber(found[k].genuine)} has the real 2018-11-04T01:00:00 of this series and is kept`);
    }
    // Each series' 01:00 record is the genuine row, with its own value.
    for (const { genuine } of found) {
      const record = o.records.find((r) => r.row === rowNumber(genuine))!;
      expect(record).toMatchObject({ local: '2018-11-04T01:00:00', measures: { val_cargaenergiahomwmed: Number(rows[genuine][3]) } });
      expect(new Date(record.time).toISOString()).toBe('2018-11-04T03:00:00.000Z');
    }
    // The other rows' records come in file order.
    expect(o.records.map((r) => r.row)).toEqual(rows.flatMap((_, i) => (refused.has(i) ? [] : [rowNumber(i)])));
  });

  test('in any order: the phantom rows moved after the genuine ones are refused the same way', async () => {
    const refused = new Set(found.map((f) => f.phantom));
    const reordered = [...rows.filter((_, i) => !refused.has(i)), ...found.map((f) => rows[f.phantom])];
    const o = await readBothPaths('CURVA_CARGA_2018.csv', csv(header, reordered));
    expectFigures(o.summary, header, reordered.slice(0, rows.length - found.length), found.length, time);
    const again = phantoms(reordered, time);
    expect(o.rejections.map((r) => [r.row, r.reason.match(/ row (\d+) has the real /)?.[1]]))
      .toEqual(again.map((f) => [rowNumber(f.phantom), String(rowNumber(f.genuine))]));
  });

  test('without a genuine 01:00 row, the 00:00 row is kept, moved forward to 01:00, and reaches the sink last', async () => {
    const se = found.find((f) => rows[f.phantom][0] === 'SE')!;
    const withoutSe = rows.filter((_, i) => i !== se.genuine);
    const again = phantoms(withoutSe, time);
    expect(again.map((f) => f.genuine === -1)).toEqual([false, false, false, true]);
    const o = await readBothPaths('CURVA_CARGA_2018.csv', csv(header, withoutSe));
    const refused = new Set(again.filter((f) => f.genuine >= 0).map((f) => f.phantom));
    expectFigures(o.summary, header, withoutSe.filter((_, i) => !refused.has(i)), refused.size, time);
    const last = o.records[o.records.length - 1];
    const phantomSe = again[3].phantom;
    expect(last).toMatchObject({
      row: rowNumber(phantomSe),
      series: 'id_subsistema=SE',
      local: '2018-11-04T00:00:00',
      localRaw: '2018-11-04 00:00:00',
      measures: { val_cargaenergiahomwmed: Number(withoutSe[phantomSe][3]) },
    });
    expect(new Date(last.time).toISOString()).toBe('2018-11-04T03:00:00.000Z');
  });
});

describe('half-hourly: CMO_SEMIHORARIO_2022 moved to 2018 (00:00 and 00:30 skipped)', () => {
  test('both phantom half-hours of every series are rejected; the genuine 01:00 and 01:30 kept', async () => {
    const { header, rows, time } = plain('CMO_SEMIHORARIO_2022.csv', 2018);
    const found = phantoms(rows, time);
    expect(found.map((f) => `${rows[f.phantom][time]} -> ${rows[f.genuine][time]}`).sort()).toEqual([
      ...Array(4).fill('2018-11-04 00:00:00 -> 2018-11-04 01:00:00'),
      ...Array(4).fill('2018-11-04 00:30:00 -> 2018-11-04 01:30:00'),
    ]);
    const o = await readBothPaths('CMO_SEMIHORARIO_2018.csv', csv(header, rows));
    const refused = new Set(found.map((f) => f.phantom));
    expectFigures(o.summary, header, rows.filter((_, i) => !refused.has(i)), found.length, time);
    expect(o.rejections.map((r) => [r.row, r.reason.match(/^din_instante: (\S+) does not exist on that day .* row (\d+) has the real/)?.slice(1)]))
      .toEqual(found.map((f) => [rowNumber(f.phantom), [rows[f.phantom][time].replace(' ', 'T'), String(rowNumber(f.genuine))]]));
  });
});

describe('daily: CARGA_ENERGIA_2013, whose 2013-10-20 00:00 (the clocks skipped it) is the day\'s only row', () => {
  const { header, rows, time } = plain('CARGA_ENERGIA_2013.csv');
  const found = phantoms(rows, time);

  test('the day\'s rows are kept, moved forward to 01:00 (03:00 UTC), and reach the sink after the others', async () => {
    expect(found.map((f) => [rows[f.phantom][time], f.genuine])).toEqual(Array(4).fill(['2013-10-20 00:00:00', -1]));
    const o = await readBothPaths('CARGA_ENERGIA_2013.csv', csv(header, rows));
    expectFigures(o.summary, header, rows, 0, time);
    const held = found.map((f) => rowNumber(f.phantom));
    expect(o.records.map((r) => r.row)).toEqual([...rows.map((_, i) => rowNumber(i)).filter((r) => !held.includes(r)), ...held]);
    for (const r of o.records.slice(-4)) {
      expect(r.local).toBe('2013-10-20T00:00:00');
      expect(new Date(r.time).toISOString()).toBe('2013-10-20T03:00:00.000Z');
    }
  });

  test('downloaded twice and concatenated: the second copy of the day is a duplicate of the first', async () => {
    const o = await readBothPaths('CARGA_ENERGIA_2013.csv', csv(header, [...rows, ...rows]));
    expectFigures(o.summary, header, rows, rows.length, time);
    const day = o.rejections.filter((r) => r.reason.includes('2013-10-20T00:00:00'));
    expect(day.map((r) => [r.row, r.reason])).toEqual(found.map((f) => [
      rowNumber(rows.length + f.phantom),
      `duplicate of row ${rowNumber(f.phantom)} (same series and time, 2013-10-20T00:00:00): the first row is kept`,
    ]));
  });
});
