import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectFile } from '../../src/ons/convert';
import { resolveDataset } from '../../src/ons/detect';
import { localFile } from '../../src/ons/local-file';
import { processTable, Rejection } from '../../src/ons/process';
import { readCsv } from '../../src/ons/readers/csv';
import { OnsRecord } from '../../src/ons/types';
import { ONS_DATA } from '../ons-data';

/**
 * GERACAO_USINA-2 identity, on a file built from the real CURVA_CARGA_2023.csv: each subsystem's hourly
 * load becomes one plant's generation. ONS's data contract gives the natural key (din_instante, id_ons):
 * a plant that changes operating mode stays one series, and the hour ONS repeats around the change counts once.
 */
const REFERENCE = JSON.parse(readFileSync(join(ONS_DATA, 'reference-figures.json'), 'utf8'))['CURVA_CARGA_2023.csv'];
const HEADER = 'din_instante;id_subsistema;nom_subsistema;id_estado;nom_estado;cod_modalidadeoperacao;nom_tipousina;'
  + 'nom_tipocombustivel;nom_usina;id_ons;ceg;val_geracao';
const STATES: Record<string, [string, string]> = { N: ['PA', 'PARÁ'], NE: ['BA', 'BAHIA'], S: ['RS', 'RIO GRANDE DO SUL'], SE: ['SP', 'SÃO PAULO'] };
const CHANGE = '2023-07-01 00:00:00'; // from this hour on, the NE plant runs in another operating mode

const dir = mkdtempSync(join(tmpdir(), 'ons-identity-'));

/** The real rows as GERACAO_USINA-2 rows; the NE plant's hour of change repeated under the old mode, with 0 as its value. */
function build(withIdOns: boolean): { file: string; lines: number; duplicateLine: number } {
  const rows = readFileSync(join(ONS_DATA, 'CURVA_CARGA_2023.csv'), 'utf8').trimEnd().split('\n').slice(1).map((l) => l.split(';'));
  const header = withIdOns ? HEADER : HEADER.replace(';id_ons;ceg', '');
  const out = [header];
  let duplicateLine = -1;
  for (const [sub, name, instant, value] of rows) {
    const [uf, state] = STATES[sub];
    const line = (mode: string, v: string) => [instant, sub, name, uf, state, mode, 'HIDROELÉTRICA', 'Hídrica', `Usina ${name}`,
      ...(withIdOns ? [`${sub}UHE0001`, '-'] : []), v].join(';');
    const changed = sub === 'NE' && instant >= CHANGE;
    out.push(line(changed ? 'TIPO I' : 'TIPO II-A', value));
    if (sub === 'NE' && instant === CHANGE) {
      out.push(line('TIPO II-A', '0'));
      duplicateLine = out.length; // 1-based line number of the repeat
    }
  }
  const file = join(dir, withIdOns ? 'GERACAO_USINA-2_2023.csv' : 'GERACAO_USINA-2_2019.csv');
  writeFileSync(file, `${out.join('\n')}\n`);
  return { file, lines: out.length - 1, duplicateLine };
}

describe.each([
  ['with id_ons (2020 on)', true, 'id_ons'],
  ['without id_ons (before 2020): the plant name', false, 'nom_usina'],
])('GERACAO_USINA-2 %s', (_, withIdOns, identity) => {
  const built = build(withIdOns);

  test('a mode change does not split the plant: 4 series, the repeated hour rejected, figures equal the source', async () => {
    const s = await inspectFile(built.file, localFile(built.file));
    expect(s).toMatchObject({
      dataset: 'geracao_usina_2',
      dimensions: [identity],
      rows: built.lines,
      records: REFERENCE.rows,
      rejected: 1,
      series: REFERENCE.series,
      start: REFERENCE.start,
      end: REFERENCE.end,
    });
    const m = s.measures.find((x) => x.name === 'val_geracao')!;
    expect(m.count).toBe(REFERENCE.measures.val_cargaenergiahomwmed.count);
    expect(m.sum).toBeCloseTo(REFERENCE.measures.val_cargaenergiahomwmed.sum, 4);
  });

  test('the first row of the hour is kept with its mode; the repeat is in the rejected rows with its reason', async () => {
    const table = await readCsv(localFile(built.file).stream());
    const records: OnsRecord[] = [];
    const rejected: Rejection[] = [];
    await processTable(built.file, table, resolveDataset(built.file, table.header), {
      record: (r) => { if (r.localRaw === CHANGE && r.labels.id_subsistema === 'NE') records.push(r); },
      rejected: (r) => { rejected.push(r); },
    });
    expect(rejected).toHaveLength(1);
    expect(rejected[0].row).toBe(built.duplicateLine);
    expect(rejected[0].reason).toBe(`duplicate of row ${built.duplicateLine - 1} (same series and time, 2023-07-01T00:00:00): the first row is kept`);
    expect(records).toHaveLength(1);
    expect(records[0].labels.cod_modalidadeoperacao).toBe('TIPO I');
    expect(records[0].series).toBe(withIdOns ? 'id_ons=NEUHE0001' : 'nom_usina=Usina NORDESTE');
  });
});
