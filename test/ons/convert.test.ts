import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertFile } from '../../src/ons/convert';
import { outputStem, sourceId, sourceIdentity } from '../../src/ons/layout';
import { localFile } from '../../src/ons/local-file';
import { readParquet } from '../../src/ons/readers/parquet';
import { Cell, RefusedFileError } from '../../src/ons/types';
import { ONS_DATA } from '../ons-data';

/** The output stem of CURVA_CARGA_2023.csv converted with its file name as the source key (the default). */
const CURVA_STEM = outputStem('CURVA_CARGA_2023', sourceId(sourceIdentity('CURVA_CARGA_2023.csv')));

const DATA = ONS_DATA;

function listFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(root.length + 1)).sort();
}

async function readAll(path: string): Promise<Cell[][]> {
  const table = await readParquet(new Uint8Array(readFileSync(path)));
  const rows: Cell[][] = [];
  for await (const r of table.rows) rows.push(r.cells!);
  return [table.header as Cell[], ...rows];
}

describe('convert CMO_SEMIHORARIO_2022.csv', () => {
  const out = mkdtempSync(join(tmpdir(), 'ons-convert-'));
  let result: Awaited<ReturnType<typeof convertFile>>;

  beforeAll(async () => {
    result = await convertFile('CMO_SEMIHORARIO_2022.csv', localFile(join(DATA, 'CMO_SEMIHORARIO_2022.csv')), {
      outDir: out, sourceKey: 'incoming/CMO_SEMIHORARIO_2022.csv', sourceBucket: 'raw-bucket', sourceVersion: 'v1',
    });
  });

  test('writes one Parquet file per local month, the card and its metadata, and nothing else', () => {
    const hash = '3f707c4368a0ce51eea66d730530c8bc23b68fd2209d53d7af24e0ac54bdaa40'; // sha256 from SOURCES.md
    expect(result.contentHash).toBe(hash);
    const months = Array.from({ length: 12 }, (_, i) => String(i + 1).padStart(2, '0'));
    // Named after the source (bucket and key), not the content: a revision of the key replaces them.
    const stem = `CMO_SEMIHORARIO_2022.${sourceId('s3://raw-bucket/incoming/CMO_SEMIHORARIO_2022.csv')}`;
    expect(listFiles(out)).toEqual([
      `knowledge/cards/cmo_semihorario/${stem}.md`,
      `knowledge/cards/cmo_semihorario/${stem}.md.metadata.json`,
      ...months.map((m) => `processed/dataset=cmo_semihorario/year=2022/month=${m}/${stem}.parquet`),
    ]);
    expect(result.rejected).toBeUndefined();
  });

  test('the Parquet files hold every record, with UTC time, the local string, labels and the source', async () => {
    let total = 0;
    let sum = 0;
    for (const p of result.parquet) {
      const [header, ...rows] = await readAll(join(out, p.relativePath));
      expect(header).toEqual(['time', 'local_time', 'id_subsistema', 'nom_subsistema', 'val_cmo', 'source_key', 'source_version', 'source_time', 'source_row']);
      total += rows.length;
      for (const r of rows) sum += r[4] as number;
      if (p.month === '01') {
        expect(rows[0]).toEqual(['2022-01-01 03:00:00', '2022-01-01 00:00:00', 'NE', 'NORDESTE', 0.24, 'incoming/CMO_SEMIHORARIO_2022.csv', 'v1', null, 2]);
      }
    }
    expect(total).toBe(67008);
    expect(sum).toBeCloseTo(1834224.7800001486, 4);
  });

  test('the local month decides the partition: 31 December 21:00 local (00:00 UTC next year) stays in 2022-12', async () => {
    const december = result.parquet.find((p) => p.month === '12')!;
    const [, ...rows] = await readAll(join(out, december.relativePath));
    expect(rows.map((r) => r[1]).filter((t) => String(t) >= '2022-12-31 21:00:00').length).toBeGreaterThan(0);
  });

  test('the data card says what the dataset is, in Portuguese and English, with period, series and monthly figures', () => {
    const card = readFileSync(join(out, result.card), 'utf8');
    expect(card).toContain('# CMO semi-horário / Half-hourly marginal operating cost');
    expect(card).toContain('Custo Marginal de Operação semi-horário');
    expect(card).toContain('Half-hourly marginal operating cost per subsystem');
    expect(card).toContain('2022-01-01T00:00:00 → 2022-12-31T23:30:00');
    expect(card).toContain('s3://raw-bucket/incoming/CMO_SEMIHORARIO_2022.csv');
    expect(card).toMatch(/\| id_subsistema=SE \| SUDESTE \| val_cmo \| 16752 \| -6\.18 \|/);
    expect(card).toMatch(/\| 2022-01 \| id_subsistema=N \| val_cmo \| \d+ \|/);
    const meta = JSON.parse(readFileSync(join(out, result.cardMetadata), 'utf8'));
    expect(meta).toEqual({
      metadataAttributes: {
        dataset: 'cmo_semihorario',
        source_file: 'CMO_SEMIHORARIO_2022.csv',
        year_from: 2022,
        year_to: 2022,
        grain: 'PT30M',
        records: 67008,
        series: 4,
        measures: ['val_cmo'],
      },
    });
  });
});

describe('rejected rows and the duplicate rule', () => {
  const text = [
    'id_subsistema;nom_subsistema;din_instante;val_cargaenergiahomwmed',
    'N;NORTE;2023-01-01 00:00:00;10',
    'N;=HYPERLINK("http://x");2023-01-01 00:00:00;11', // duplicate of row 2: rejected, the first kept
    'S;@SUM(A1);2023-01-01 01:00:00;abc', // not a number
    'S;SUL;2023-01-01 02:00:00;-3.6',
    ';SUL;2023-01-01 03:00:00;5', // empty identity
    'S;+SUL;2023-02-30 00:00:00;5', // no such day
  ].join('\n') + '\n';

  test('are written with their row number and reason; formula-like cells are neutralised; numbers are not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ons-rejected-'));
    writeFileSync(join(dir, 'CURVA_CARGA_2023.csv'), text);
    const result = await convertFile('CURVA_CARGA_2023.csv', localFile(join(dir, 'CURVA_CARGA_2023.csv')), { outDir: join(dir, 'out') });
    expect(result.summary).toMatchObject({ rows: 6, records: 2, rejected: 4 });
    expect(result.rejected).toBe(`rejected/curva_carga/${CURVA_STEM}.rejected.csv`);
    expect(readFileSync(join(dir, 'out', result.rejected!), 'utf8').split('\n')).toEqual([
      'row;reason;id_subsistema;nom_subsistema;din_instante;val_cargaenergiahomwmed',
      '3;duplicate of row 2 (same series and time, 2023-01-01T00:00:00): the first row is kept;N;"\'=HYPERLINK(""http://x"")";2023-01-01 00:00:00;11',
      "4;val_cargaenergiahomwmed: 'abc' is not a number;S;'@SUM(A1);2023-01-01 01:00:00;abc",
      '6;id_subsistema is empty: it identifies the series;;SUL;2023-01-01 03:00:00;5',
      "7;din_instante: '2023-02-30 00:00:00' is not a valid date-time;S;'+SUL;2023-02-30 00:00:00;5",
      '',
    ]);
    const [, ...rows] = await readAll(join(dir, 'out', result.parquet[0].relativePath));
    expect(rows.map((r) => [r[2], r[4], r[8]])).toEqual([['N', 10, 2], ['S', -3.6, 5]]);
  });

  test('a file whose every row is refused is refused, leaving only the rejected-rows report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ons-all-bad-'));
    writeFileSync(join(dir, 'CURVA_CARGA_2023.csv'), 'id_subsistema;nom_subsistema;din_instante;val_cargaenergiahomwmed\nN;NORTE;ontem;1\nS;SUL;amanhã;2\n');
    await expect(convertFile('CURVA_CARGA_2023.csv', localFile(join(dir, 'CURVA_CARGA_2023.csv')), { outDir: join(dir, 'out') }))
      .rejects.toThrow(new RefusedFileError('none of the 2 data rows is valid; reasons per row in ' + join(dir, 'out', `rejected/curva_carga/${CURVA_STEM}.rejected.csv`)));
    expect(listFiles(join(dir, 'out'))).toEqual([`rejected/curva_carga/${CURVA_STEM}.rejected.csv`]);
  });

  test('a failure while writing leaves no output with a final name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ons-fail-'));
    writeFileSync(join(dir, 'CURVA_CARGA_2023.csv'), text);
    // The card's folder is a file: writing the card fails after the Parquet data was written.
    const out = join(dir, 'out');
    mkdirSync(join(out, 'knowledge/cards'), { recursive: true });
    writeFileSync(join(out, 'knowledge/cards/curva_carga'), 'not a folder');
    await expect(convertFile('CURVA_CARGA_2023.csv', localFile(join(dir, 'CURVA_CARGA_2023.csv')), { outDir: out })).rejects.toThrow();
    expect(listFiles(out)).toEqual(['knowledge/cards/curva_carga']);
  });
});

describe('XLSX and Parquet sources convert the same way', () => {
  test('CURVA_CARGA_2021.xlsx → 12 monthly partitions with 35,040 records', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ons-xlsx-'));
    const result = await convertFile('CURVA_CARGA_2021.xlsx', localFile(join(DATA, 'CURVA_CARGA_2021.xlsx')), { outDir: out });
    expect(result.parquet.map((p) => `${p.year}-${p.month}`)).toEqual(Array.from({ length: 12 }, (_, i) => `2021-${String(i + 1).padStart(2, '0')}`));
    expect(result.parquet.reduce((n, p) => n + p.rows, 0)).toBe(35040);
    expect(existsSync(join(out, result.card))).toBe(true);
  });
});
