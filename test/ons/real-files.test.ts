import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspectFile } from '../../src/ons/convert';
import { resolveDataset } from '../../src/ons/detect';
import { localFile } from '../../src/ons/local-file';
import { FileSummary, processTable } from '../../src/ons/process';
import { readCsv } from '../../src/ons/readers/csv';
import { OnsRecord, RefusedFileError } from '../../src/ons/types';
import { ONS_DATA } from '../ons-data';

/**
 * Every real ONS file in test/fixtures/ons, checked against figures computed without the code
 * under test: reference-figures.json (Python csv + zoneinfo, XLSX read as raw XML) and, for what it
 * does not cover, a plain split of the file in this test.
 */
const DATA = ONS_DATA;
const REFERENCE: Record<string, {
  rows: number; series: number; start: string; end: string; measures: Record<string, { count: number; sum: number }>;
}> = JSON.parse(readFileSync(join(DATA, 'reference-figures.json'), 'utf8'));

/** Rows and empty cells counted by splitting the text, independently of the reader. */
function plainCsvFigures(file: string) {
  const lines = readFileSync(join(DATA, file), 'utf8').split('\n').filter((l) => l.length > 0);
  const header = lines[0].split(';');
  const rows = lines.slice(1).map((l) => l.split(';'));
  return { header, rows };
}

const summaries = new Map<string, FileSummary>();
async function summary(file: string): Promise<FileSummary> {
  if (!summaries.has(file)) summaries.set(file, await inspectFile(file, localFile(join(DATA, file))));
  return summaries.get(file)!;
}

async function records(file: string): Promise<OnsRecord[]> {
  const table = await readCsv(localFile(join(DATA, file)).stream());
  const out: OnsRecord[] = [];
  await processTable(file, table, resolveDataset(file, table.header), { record: (r) => { out.push(r); } });
  return out;
}

describe.each(Object.keys(REFERENCE))('%s', (file) => {
  const ref = REFERENCE[file];

  test('rows, records, rejected, series, start and end match the reference', async () => {
    const s = await summary(file);
    expect({ rows: s.rows, records: s.records, rejected: s.rejected, series: s.series, start: s.start, end: s.end })
      .toEqual({ rows: ref.rows, records: ref.rows, rejected: 0, series: ref.series, start: ref.start, end: ref.end });
  });

  test('each measure has the reference count, sum and no other', async () => {
    const s = await summary(file);
    expect(s.measures.map((m) => m.name).sort()).toEqual(Object.keys(ref.measures).sort());
    for (const m of s.measures) {
      const expected = ref.measures[m.name];
      expect({ name: m.name, count: m.count, nulls: m.nulls }).toEqual({ name: m.name, count: expected.count, nulls: ref.rows - expected.count });
      expect(m.sum).toBeCloseTo(ref.measures[m.name].sum, 4);
    }
  });
});

describe('file quirks', () => {
  test('CARGA_ENERGIA_2013: five empty values are null (not zero), and the 00:00:01 row is its own instant', async () => {
    const s = await summary('CARGA_ENERGIA_2013.csv');
    expect(s.measures[0]).toMatchObject({ count: 1456, nulls: 5 });
    const { rows } = plainCsvFigures('CARGA_ENERGIA_2013.csv');
    expect(rows.filter((r) => r[3] === '').length).toBe(5);
    const all = await records('CARGA_ENERGIA_2013.csv');
    const stray = all.find((r) => r.localRaw === '2013-02-02 00:00:01')!;
    expect(stray).toMatchObject({ series: 'id_subsistema=S', local: '2013-02-02T00:00:01', measures: { val_cargaenergiamwmed: null } });
    expect(new Date(stray.time).toISOString()).toBe('2013-02-02T02:00:01.000Z'); // summer time: UTC-2
    expect(all.filter((r) => r.local.startsWith('2013-12-01')).map((r) => r.measures.val_cargaenergiamwmed)).toEqual([null, null, null, null]);
  });

  test('CARGA_ENERGIA_2013: daylight-saving days convert with the historical offsets', async () => {
    const all = await records('CARGA_ENERGIA_2013.csv');
    const utcOf = (local: string) => new Date(all.find((r) => r.localRaw === local && r.series === 'id_subsistema=SE')!.time).toISOString();
    expect(utcOf('2013-01-15 00:00:00')).toBe('2013-01-15T02:00:00.000Z'); // summer time, UTC-2
    expect(utcOf('2013-02-16 00:00:00')).toBe('2013-02-16T02:00:00.000Z'); // last day of summer time
    expect(utcOf('2013-02-17 00:00:00')).toBe('2013-02-17T03:00:00.000Z'); // back to UTC-3
    expect(utcOf('2013-07-01 00:00:00')).toBe('2013-07-01T03:00:00.000Z');
    // 2013-10-20 00:00 did not exist (clocks jumped to 01:00): it moves forward to 01:00 summer time.
    expect(utcOf('2013-10-20 00:00:00')).toBe('2013-10-20T03:00:00.000Z');
    expect(utcOf('2013-10-21 00:00:00')).toBe('2013-10-21T02:00:00.000Z');
  });

  test('BALANCO_ENERGIA_SUBSISTEMA_2023: the id_subsistena typo is read as id_subsistema, and SIN is a series of its own', async () => {
    const s = await summary('BALANCO_ENERGIA_SUBSISTEMA_2023.csv');
    expect(s.dimensions).toEqual(['id_subsistema']);
    const all = await records('BALANCO_ENERGIA_SUBSISTEMA_2023.csv');
    expect([...new Set(all.map((r) => r.series))].sort()).toEqual(['N', 'NE', 'S', 'SE', 'SIN'].map((id) => `id_subsistema=${id}`));
    const { rows } = plainCsvFigures('BALANCO_ENERGIA_SUBSISTEMA_2023.csv');
    expect(all.filter((r) => r.dimensions.id_subsistema === 'SIN')).toHaveLength(rows.filter((r) => r[0] === 'SIN').length);
    // 0E-8 is zero, counted as a value.
    const zeros = rows.filter((r) => r[6] === '0E-8').length;
    expect(zeros).toBeGreaterThan(3000);
    expect(all.filter((r) => r.measures.val_gersolar === 0)).toHaveLength(rows.filter((r) => Number(r[6]) === 0).length);
  });

  test('CMO_SEMIHORARIO_2022: 0E-8 is zero and negative prices are kept', async () => {
    const all = await records('CMO_SEMIHORARIO_2022.csv');
    const { rows } = plainCsvFigures('CMO_SEMIHORARIO_2022.csv');
    expect(all.filter((r) => r.measures.val_cmo === 0)).toHaveLength(rows.filter((r) => r[3] === '0E-8').length);
    expect(all.filter((r) => (r.measures.val_cmo ?? 0) < 0)).toHaveLength(rows.filter((r) => Number(r[3]) < 0).length);
    expect(all.find((r) => r.localRaw === '2022-01-01 00:00:00' && r.series === 'id_subsistema=SE')!.measures.val_cmo).toBe(-3.6);
  });

  test('names never split a series: labels are kept but identity is the id', async () => {
    const all = await records('CARGA_ENERGIA_2013.csv');
    const se = all.filter((r) => r.series === 'id_subsistema=SE');
    expect(se[0].labels).toEqual({ nom_subsistema: 'Sudeste/Centro-Oeste' });
    expect(se).toHaveLength(365);
  });
});

describe('CURVA_CARGA_2021.xlsx', () => {
  test('matches the reference figures', async () => {
    const s = await summary('CURVA_CARGA_2021.xlsx');
    const ref = REFERENCE['CURVA_CARGA_2021.xlsx'];
    expect({ format: s.format, dataset: s.dataset, rows: s.rows, records: s.records, rejected: s.rejected })
      .toEqual({ format: 'xlsx', dataset: 'curva_carga', rows: ref.rows, records: ref.rows, rejected: 0 });
    expect({ series: s.series, start: s.start, end: s.end })
      .toEqual({ series: ref.series, start: ref.start, end: ref.end });
    expect(s.measures[0].count).toBe(ref.measures.val_cargaenergiahomwmed.count);
    expect(s.measures[0].sum).toBeCloseTo(ref.measures.val_cargaenergiahomwmed.sum, 4);
  });
});

describe('Temporal Geração de Energia.csv (dashboard export: Brazilian locale)', () => {
  const file = 'Temporal Geração de Energia.csv';

  test('reads DD/MM/YYYY dates and comma decimals; figures match a plain parse', async () => {
    const s = await summary(file);
    const { rows } = plainCsvFigures(file);
    const values = rows.map((r) => Number(r[3].replace(',', '.')));
    const day = (text: string) => {
      const [d, m, y] = text.split(' ')[0].split('/').map(Number);
      return Date.UTC(y, m - 1, d, 3); // 2023-2024 has no daylight saving: UTC-3
    };
    const times = rows.map((r) => day(r[1]));
    expect(s).toMatchObject({
      dataset: 'historico_geracao_energia',
      encoding: 'utf-8',
      delimiter: ';',
      rows: rows.length,
      records: rows.length,
      rejected: 0,
      series: 1,
      start: new Date(Math.min(...times)).toISOString(),
      end: new Date(Math.max(...times)).toISOString(),
    });
    expect(s.measures).toHaveLength(1);
    expect(s.measures[0].count).toBe(values.length);
    expect(s.measures[0].sum).toBeCloseTo(values.reduce((a, b) => a + b, 0), 6);
    expect(s.measures[0].min).toBe(Math.min(...values));
  });
});

describe('DicionarioDados_CurvaCarga.pdf', () => {
  test('is refused as a document, not a table', async () => {
    await expect(inspectFile('DicionarioDados_CurvaCarga.pdf', localFile(join(DATA, 'DicionarioDados_CurvaCarga.pdf'))))
      .rejects.toThrow(new RefusedFileError('this is a PDF document, not a table of data (documents belong in the knowledge base)'));
  });
});
