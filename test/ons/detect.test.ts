import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CATALOG } from '../../src/ons/catalog';
import { inspectFile } from '../../src/ons/convert';
import { resolveDataset } from '../../src/ons/detect';
import { localFile } from '../../src/ons/local-file';
import { RefusedFileError } from '../../src/ons/types';

const dir = mkdtempSync(join(tmpdir(), 'ons-detect-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
const inspect = (name: string, text: string) => inspectFile(name, localFile(file(name, text)));

describe('catalog', () => {
  test('has the datasets the platform promises, each with a unit for every ONS measure', () => {
    const ids = CATALOG.map((d) => d.id);
    for (const id of ['carga_energia', 'curva_carga', 'balanco_energia_subsistema', 'cmo_semihorario', 'cmo_semanal',
      'ear_diario_subsistema', 'ena_diario_subsistema', 'intercambio_nacional', 'geracao_usina_2']) {
      expect(ids).toContain(id);
    }
    for (const d of CATALOG.filter((x) => x.id !== 'historico_geracao_energia')) {
      expect(d.measures.filter((m) => !m.unit).map((m) => `${d.id}.${m.name}`)).toEqual([]);
      const texts = [d.title.pt, d.title.en, d.description.pt, d.description.en];
      expect({ id: d.id, empty: texts.filter((t) => t.trim().length < 5) }).toEqual({ id: d.id, empty: [] });
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  test.each([
    ['CARGA_ENERGIA_2013.csv', 'carga_energia'],
    ['CARGA_ENERGIA_2024.parquet', 'carga_energia'],
    ['curva_carga_2021.xlsx', 'curva_carga'],
    ['BALANCO_ENERGIA_SUBSISTEMA_2025.csv', 'balanco_energia_subsistema'],
    ['GERACAO_USINA-2_2022_01.csv', 'geracao_usina_2'],
    ['GERACAO_USINA-2_2015.csv', 'geracao_usina_2'],
    ['GERACAO_USINA_2019.csv', 'geracao_usina_2'],
    ['Intercambio_Nacional-2024.csv', 'intercambio_nacional'],
    ['ENA_DIARIO_SUBSISTEMA_2024.csv', 'ena_diario_subsistema'],
  ])('%s is %s by its name', (name, id) => {
    expect(CATALOG.find((d) => d.files.test(name))?.id).toBe(id);
  });

  test('a name that only starts like a dataset is not that dataset', () => {
    expect(CATALOG.find((d) => d.files.test('CARGA_ENERGIA_DESSEM_2023.csv'))).toBeUndefined();
    expect(CATALOG.find((d) => d.files.test('BALANCO_ENERGIA_DESSEM_2023.csv'))).toBeUndefined();
  });
});

describe('other years and publication styles of known datasets', () => {
  test('CARGA_ENERGIA with date-only times, upper-case names and trimmed numbers', async () => {
    const s = await inspect('CARGA_ENERGIA_2024.csv', 'id_subsistema;nom_subsistema;din_instante;val_cargaenergiamwmed\n'
      + 'SE;SUDESTE;2024-01-01;41000.5\nS;SUL;2024-01-01;12000\nSE;SUDESTE;2024-01-02;0.0\n');
    expect(s).toMatchObject({ dataset: 'carga_energia', records: 3, rejected: 0, series: 2, start: '2024-01-01T03:00:00.000Z', end: '2024-01-02T03:00:00.000Z' });
    expect(s.measures[0]).toMatchObject({ count: 3, sum: 53000.5, min: 0 });
  });

  test('BALANCO 2025 with the corrected id_subsistema header', () => {
    const layout = resolveDataset('BALANCO_ENERGIA_SUBSISTEMA_2025.csv',
      ['id_subsistema', 'nom_subsistema', 'din_instante', 'val_gerhidraulica', 'val_gertermica', 'val_gereolica', 'val_gersolar', 'val_carga', 'val_intercambio']);
    expect(layout.dimensions).toEqual([{ name: 'id_subsistema', index: 0 }]);
    expect(layout.measures).toHaveLength(6);
  });

  test('INTERCAMBIO_NACIONAL without the scheduled column, with a directed pair as identity', async () => {
    const s = await inspect('INTERCAMBIO_NACIONAL_2024.csv',
      'din_instante;id_subsistema_origem;nom_subsistema_origem;id_subsistema_destino;nom_subsistema_destino;val_intercambiomwmed\n'
      + '2024-01-01 00:00:00;N;NORTE ;NE;NORDESTE;-5195.29699999\n2024-01-01 00:00:00;N;NORTE;SE;SUDESTE;1200\n2024-01-01 00:00:00;NE;NORDESTE;SE;SUDESTE;300\n');
    expect(s).toMatchObject({ dataset: 'intercambio_nacional', records: 3, series: 3, dimensions: ['id_subsistema_origem', 'id_subsistema_destino'] });
    expect(s.measures.map((m) => m.name)).toEqual(['val_intercambiomwmed']);
  });

  test('GERACAO_USINA before 2020 (no id_ons): the plant name identifies the series', () => {
    const layout = resolveDataset('GERACAO_USINA-2_2015.csv',
      ['din_instante', 'id_subsistema', 'nom_subsistema', 'id_estado', 'nom_estado', 'cod_modalidadeoperacao', 'nom_tipousina', 'nom_tipocombustivel', 'nom_usina', 'val_geracao']);
    expect(layout.dimensions.map((d) => d.name)).toEqual(['nom_usina']);
    expect(layout.labels.map((l) => l.name)).toEqual(['id_subsistema', 'nom_subsistema', 'id_estado', 'nom_estado', 'cod_modalidadeoperacao',
      'nom_tipousina', 'nom_tipocombustivel']);
  });

  test('a column a newer publication adds is kept: val_* as a measure, anything else as a label, identity unchanged', () => {
    const layout = resolveDataset('CURVA_CARGA_2026.csv', ['id_subsistema', 'nom_subsistema', 'din_instante', 'val_cargaenergiahomwmed', 'val_cargammgd', 'cod_fonte']);
    expect(layout.dimensions.map((d) => d.name)).toEqual(['id_subsistema']);
    expect(layout.measures.map((m) => [m.name, m.unit])).toEqual([['val_cargaenergiahomwmed', 'MWmed'], ['val_cargammgd', null]]);
    expect(layout.labels.map((l) => l.name)).toEqual(['nom_subsistema', 'cod_fonte']);
  });

  test('a renamed file is recognised by its header', () => {
    const layout = resolveDataset('download (3).csv', ['id_subsistema', 'nom_subsistema', 'ear_data', 'ear_max_subsistema', 'ear_verif_subsistema_mwmes', 'ear_verif_subsistema_percentual']);
    expect(layout).toMatchObject({ id: 'ear_diario_subsistema', source: 'catalog' });
  });

  test('a file named like a dataset but lacking its columns is refused, naming them', () => {
    expect(() => resolveDataset('CURVA_CARGA_2023.csv', ['id_subsistema', 'din_instante', 'valor']))
      .toThrow(new RefusedFileError("'CURVA_CARGA_2023.csv' is named like the ONS dataset curva_carga, but its header lacks nom_subsistema, val_cargaenergiahomwmed; found: id_subsistema, din_instante, valor"));
  });
});

describe('ONS datasets not in the catalog: the naming convention', () => {
  test('din_*/dat_* is the time, id_*/cod_* the identity, nom_* labels, val_* measures', async () => {
    const s = await inspect('IND_DISPONIBILIDADE_GERACAO_2023.csv', 'dat_referencia;id_subsistema;cod_tipo;nom_tipo;val_dispf;val_indisppf\n'
      + '2023-01-01;SIN;T;Térmica;91.2;3.4\n2023-02-01;SIN;T;Térmica;90.8;\n');
    expect(s).toMatchObject({
      dataset: 'ind_disponibilidade_geracao',
      datasetSource: 'convention',
      timeColumn: 'dat_referencia',
      dimensions: ['id_subsistema', 'cod_tipo'],
      records: 2,
      series: 1,
    });
    expect(s.measures.map((m) => [m.name, m.unit, m.count, m.nulls])).toEqual([['val_dispf', null, 2, 0], ['val_indisppf', null, 1, 1]]);
  });

  test('families that name their time <prefix>_data measure <prefix>_* columns (EAR by REE)', () => {
    const layout = resolveDataset('EAR_DIARIO_REE_2022.csv', ['cod_ree', 'nom_ree', 'ear_data', 'ear_max_ree', 'ear_verif_ree_mwmes']);
    expect(layout).toMatchObject({ id: 'ear_diario_ree', source: 'convention', time: { name: 'ear_data' } });
    expect(layout.measures.map((m) => m.name)).toEqual(['ear_max_ree', 'ear_verif_ree_mwmes']);
    expect(layout.dimensions.map((d) => d.name)).toEqual(['cod_ree']);
  });

  test('a file that fits neither is refused with what was expected', () => {
    expect(() => resolveDataset('clientes.csv', ['nome', 'email', 'telefone'])).toThrow(
      /^not ONS data: 'clientes.csv' matches no catalog dataset \(carga_energia, curva_carga, .*\) and its header does not follow the ONS naming convention \(a time column din_\* or dat_\*, and measures val_\*\); found columns: nome, email, telefone$/,
    );
  });

  test('a header with the same column twice is refused', () => {
    expect(() => resolveDataset('X_2023.csv', ['din_instante', 'val_a', 'VAL_A'])).toThrow("the header has the column 'val_a' twice");
  });
});
