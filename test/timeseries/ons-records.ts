import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PointRecord } from '../../src/timeseries/runtime/layout';
import { ONS_DATA } from '../ons-data';

/**
 * The rows of the real CARGA_ENERGIA_2013.csv (daily load per subsystem) as the records the loader hands a
 * writer, for tests of a writer on its own: `din_instante` read as Brasília wall-clock (UTC−3 in 2013 for
 * these daily instants), rows without a value skipped as the loader skips them.
 */
export function cargaEnergia2013(): PointRecord[] {
  const [header, ...lines] = readFileSync(join(ONS_DATA, 'CARGA_ENERGIA_2013.csv'), 'utf8').trim().split(/\r?\n/);
  const columns = header.split(';');
  const at = (name: string) => columns.indexOf(name);
  const records: PointRecord[] = [];
  for (const line of lines) {
    const cells = line.split(';');
    const value = cells[at('val_cargaenergiamwmed')];
    if (!value) continue;
    records.push({
      time: Date.parse(`${cells[at('din_instante')].replace(' ', 'T')}-03:00`),
      dimensions: [['id_subsistema', cells[at('id_subsistema')]]],
      measures: [['val_cargaenergiamwmed', Number(value)]],
    });
  }
  return records;
}
