import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

/**
 * The evaluation set's independent oracle: DuckDB SQL over the raw ONS CSV files (never the platform's readers).
 * Each file is read with its own delimiter and decimal point; `din_instante`/`ear_data` stay Brasília wall time
 * (TIMESTAMP without zone), which is how every question names its period.
 */

/** One row per question: its columns are the question's `expected` entries in order (numbers; local times as text). */
const peak = (measure: string, view: string, where: string, format: string, order = 'DESC') =>
  `SELECT ${measure}, strftime(din_instante, '${format}') FROM ${view} WHERE ${where} ORDER BY ${measure} ${order}, din_instante LIMIT 1`;
/** A month (or any range) of wall time: [from, to). */
const span = (from: string, to: string) => `din_instante >= TIMESTAMP '${from}' AND din_instante < TIMESTAMP '${to}'`;
/** Energy of hourly MWmed values: each hour's average MW over one hour is that many MWh. */
const hourlyEnergy = (measure: string) => `sum(${measure} * 1.0)`;
/** The two extreme hours of a day's hourly load: lowest value and hour, highest value and hour. */
const profile = (region: string, day: string) => `SELECT min(val_cargaenergiahomwmed), strftime(arg_min(din_instante, val_cargaenergiahomwmed), '%H:%M'),
  max(val_cargaenergiahomwmed), strftime(arg_max(din_instante, val_cargaenergiahomwmed), '%H:%M')
  FROM curva WHERE id_subsistema = '${region}' AND din_instante::DATE = DATE '${day}'`;

export const ORACLE: Readonly<Record<string, string>> = {
  'pt-peak-ne-day': peak('val_cargaenergiahomwmed', 'curva', `id_subsistema = 'NE' AND ${span('2023-02-15', '2023-02-16')}`, '%H:%M'),
  'en-peak-se-year': peak('val_cargaenergiahomwmed', 'curva', `id_subsistema = 'SE' AND ${span('2023-01-01', '2024-01-01')}`, '%Y-%m-%d %H:%M'),
  'pt-peak-solar-sin': peak('val_gersolar', 'balanco', 'id_subsistema = \'SIN\'', '%Y-%m-%d %H:%M'),
  'en-peak-cmo-ne': peak('val_cmo', 'cmo', 'id_subsistema = \'NE\'', '%Y-%m-%d %H:%M'),
  'pt-min-cmo-se': peak('val_cmo', 'cmo', 'id_subsistema = \'SE\'', '%Y-%m-%d %H:%M', 'ASC'),
  'pt-min-ear-n': `SELECT ear_verif_subsistema_percentual, strftime(ear_data, '%Y-%m-%d') FROM ear WHERE id_subsistema = 'N'
    ORDER BY ear_verif_subsistema_percentual, ear_data LIMIT 1`,
  'pt-sum-s-march': `SELECT ${hourlyEnergy('val_cargaenergiahomwmed')} FROM curva WHERE id_subsistema = 'S' AND ${span('2023-03-01', '2023-04-01')}`,
  'en-sum-wind-ne-aug': `SELECT ${hourlyEnergy('val_gereolica')} FROM balanco WHERE id_subsistema = 'NE' AND ${span('2023-08-01', '2023-09-01')}`,
  'pt-sum-thermal-se-q1': `SELECT ${hourlyEnergy('val_gertermica')} FROM balanco WHERE id_subsistema = 'SE' AND ${span('2023-01-01', '2023-04-01')}`,
  // March 2013 had no clock change: every day is 24 hours.
  'en-sum-ne-march-2013': `SELECT sum(val_cargaenergiamwmed * 24) FROM carga WHERE id_subsistema = 'NE' AND ${span('2013-03-01', '2013-04-01')}`,
  'pt-avg-sin-july': `SELECT avg(val_carga) FROM balanco WHERE id_subsistema = 'SIN' AND ${span('2023-07-01', '2023-08-01')}`,
  'en-avg-n-year': `SELECT avg(val_cargaenergiahomwmed) FROM curva WHERE id_subsistema = 'N' AND ${span('2023-01-01', '2024-01-01')}`,
  'pt-avg-cmo-se-aug': `SELECT avg(val_cmo) FROM cmo WHERE id_subsistema = 'SE' AND ${span('2022-08-01', '2022-09-01')}`,
  'en-avg-n-july-2013': `SELECT avg(val_cargaenergiamwmed) FROM carga WHERE id_subsistema = 'N' AND ${span('2013-07-01', '2013-08-01')}`,
  'en-avg-interchange-ne-july': `SELECT avg(val_intercambio) FROM balanco WHERE id_subsistema = 'NE' AND ${span('2023-07-01', '2023-08-01')}`,
  'pt-compare-s-jan-jul': `SELECT avg(val_cargaenergiahomwmed) FILTER (WHERE month(din_instante) = 1), avg(val_cargaenergiahomwmed) FILTER (WHERE month(din_instante) = 7)
    FROM curva WHERE id_subsistema = 'S'`,
  'en-compare-ne-s-may': `SELECT avg(val_cargaenergiahomwmed) FILTER (WHERE id_subsistema = 'NE'), avg(val_cargaenergiahomwmed) FILTER (WHERE id_subsistema = 'S')
    FROM curva WHERE ${span('2023-05-01', '2023-06-01')}`,
  'en-compare-se-days': `SELECT avg(val_cargaenergiahomwmed) FILTER (WHERE din_instante::DATE = DATE '2023-04-15'), avg(val_cargaenergiahomwmed) FILTER (WHERE din_instante::DATE = DATE '2023-04-17')
    FROM curva WHERE id_subsistema = 'SE'`,
  'pt-compare-ear-ne': `SELECT max(ear_verif_subsistema_percentual) FILTER (WHERE ear_data = DATE '2022-01-01'), max(ear_verif_subsistema_percentual) FILTER (WHERE ear_data = DATE '2022-12-31')
    FROM ear WHERE id_subsistema = 'NE'`,
  // Daylight saving began at 00:00 on 2013-10-20: the local day had 23 hours, which ICU (America/Sao_Paulo) counts here.
  'pt-dst-start-se': `SELECT val_cargaenergiamwmed, val_cargaenergiamwmed * (epoch(DATE '2013-10-21'::TIMESTAMPTZ) - epoch(DATE '2013-10-20'::TIMESTAMPTZ)) / 3600
    FROM carga WHERE id_subsistema = 'SE' AND din_instante::DATE = DATE '2013-10-20'`,
  'en-dst-end-s': `SELECT max(val_cargaenergiamwmed) FILTER (WHERE din_instante = TIMESTAMP '2013-02-16 00:00'), max(val_cargaenergiamwmed) FILTER (WHERE din_instante = TIMESTAMP '2013-02-17 00:00')
    FROM carga WHERE id_subsistema = 'S'`,
  // The operative week holding the DST start: Saturday 2013-10-19 to Friday 2013-10-25, the mean of its seven daily values.
  'en-dst-week-ne': `SELECT CASE WHEN count(val_cargaenergiamwmed) = 7 THEN avg(val_cargaenergiamwmed) END FROM carga WHERE id_subsistema = 'NE' AND ${span('2013-10-19', '2013-10-26')}`,
  'pt-week-wind-ne': `SELECT ${hourlyEnergy('val_gereolica')} FROM balanco WHERE id_subsistema = 'NE' AND ${opWeek(2023, 3, 3)}`,
  'en-week-se-load': `SELECT avg(val_cargaenergiahomwmed) FROM curva WHERE id_subsistema = 'SE' AND ${opWeek(2023, 7, 1)}`,
  'pt-week-cmo-semanal-se': 'SELECT val_cmomediasemanal FROM cmo_semanal WHERE id_subsistema = \'SE\' AND din_instante = DATE \'2013-03-15\'',
  'pt-sources-sin-june': `SELECT avg(val_gerhidraulica), avg(val_gertermica), avg(val_gereolica), avg(val_gersolar)
    FROM balanco WHERE id_subsistema = 'SIN' AND ${span('2023-06-01', '2023-07-01')}`,
  'en-sources-ne-wind-share': `SELECT 100 * sum(val_gereolica) / sum(val_gerhidraulica + val_gertermica + val_gereolica + val_gersolar), avg(val_gereolica)
    FROM balanco WHERE id_subsistema = 'NE' AND ${span('2023-08-01', '2023-09-01')}`,
  'en-sources-s-q2': `SELECT avg(val_gerhidraulica), avg(val_gertermica) FROM balanco WHERE id_subsistema = 'S' AND ${span('2023-04-01', '2023-07-01')}`,
  'pt-profile-se-day': profile('SE', '2023-01-10'),
  'en-profile-s-day': profile('S', '2023-06-14'),
  'en-ear-se-end-may': 'SELECT ear_verif_subsistema_mwmes, ear_verif_subsistema_percentual FROM ear WHERE id_subsistema = \'SE\' AND ear_data = DATE \'2022-05-31\'',
};

/**
 * The ONS operative week `n` of a month, computed here from its definition rather than src/ons/calendar.ts: weeks
 * run Saturday to Friday and belong to the month of their Friday; week 1 ends on the month's first Friday.
 */
function opWeek(year: number, month: number, n: number): string {
  const first = new Date(Date.UTC(year, month - 1, 1));
  const firstFriday = 1 + ((5 - first.getUTCDay() + 7) % 7);
  const friday = new Date(Date.UTC(year, month - 1, firstFriday + 7 * (n - 1)));
  const saturday = new Date(friday.getTime() - 6 * 86_400_000);
  const next = new Date(friday.getTime() + 86_400_000);
  return span(saturday.toISOString().slice(0, 10), next.toISOString().slice(0, 10));
}

/** Views over the raw files in `dir` (test/fixtures/ons). */
const VIEWS = (dir: string) => {
  const csv = (file: string, columns: Record<string, string>) =>
    `read_csv('${join(dir, file)}', delim = ';', decimal_separator = '.', header = true, auto_detect = false, columns = ${JSON.stringify(columns).replace(/"/g, '\'')})`;
  return [
    `CREATE VIEW curva AS SELECT * FROM ${csv('CURVA_CARGA_2023.csv', { id_subsistema: 'VARCHAR', nom_subsistema: 'VARCHAR', din_instante: 'TIMESTAMP', val_cargaenergiahomwmed: 'DOUBLE' })}`,
    `CREATE VIEW balanco AS SELECT id_subsistena AS id_subsistema, * EXCLUDE (id_subsistena) FROM ${csv('BALANCO_ENERGIA_SUBSISTEMA_2023.csv', {
      id_subsistena: 'VARCHAR',
      nom_subsistema: 'VARCHAR',
      din_instante: 'TIMESTAMP',
      val_gerhidraulica: 'DOUBLE',
      val_gertermica: 'DOUBLE',
      val_gereolica: 'DOUBLE',
      val_gersolar: 'DOUBLE',
      val_carga: 'DOUBLE',
      val_intercambio: 'DOUBLE',
    })}`,
    `CREATE VIEW carga AS SELECT * FROM ${csv('CARGA_ENERGIA_2013.csv', { id_subsistema: 'VARCHAR', nom_subsistema: 'VARCHAR', din_instante: 'TIMESTAMP', val_cargaenergiamwmed: 'DOUBLE' })}`,
    `CREATE VIEW cmo AS SELECT * FROM ${csv('CMO_SEMIHORARIO_2022.csv', { id_subsistema: 'VARCHAR', nom_subsistema: 'VARCHAR', din_instante: 'TIMESTAMP', val_cmo: 'DOUBLE' })}`,
    `CREATE VIEW ear AS SELECT * FROM ${csv('EAR_DIARIO_SUBSISTEMA_2022.csv', {
      id_subsistema: 'VARCHAR', nom_subsistema: 'VARCHAR', ear_data: 'DATE', ear_max_subsistema: 'DOUBLE', ear_verif_subsistema_mwmes: 'DOUBLE', ear_verif_subsistema_percentual: 'DOUBLE',
    })}`,
    `CREATE VIEW cmo_semanal AS SELECT * FROM ${csv('CMO_SEMANAL_2013.csv', {
      id_subsistema: 'VARCHAR', nom_subsistema: 'VARCHAR', din_instante: 'DATE', val_cmomediasemanal: 'DOUBLE', val_cmoleve: 'DOUBLE', val_cmomedia: 'DOUBLE', val_cmopesada: 'DOUBLE',
    })}`,
  ];
};

/** Runs every query of `queries` over the files in `dir`; each answer is its one row, values as JS numbers or strings. */
export async function runOracle(
  dir: string, queries: Readonly<Record<string, string>> = ORACLE,
): Promise<Record<string, Array<number | string | null>>> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    // Local wall time is Brasília time: hours of a civil day (23 or 25 when daylight saving changed) come from ICU.
    await connection.run('SET TimeZone = \'America/Sao_Paulo\'');
    for (const view of VIEWS(dir)) await connection.run(view);
    const answers: Record<string, Array<number | string | null>> = {};
    for (const [id, sql] of Object.entries(queries)) {
      const rows = (await connection.runAndReadAll(sql)).getRowsJS();
      if (rows.length !== 1) throw new Error(`oracle ${id}: ${rows.length} rows, expected 1`);
      answers[id] = rows[0].map((v) => (typeof v === 'bigint' ? Number(v) : v === null ? null : typeof v === 'number' ? v : typeof v === 'object' && 'toDouble' in (v as any) ? (v as any).toDouble() : String(v)));
    }
    return answers;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/**
 * What the no-data questions rest on: each query counts the rows a loaded file has for the period asked, which
 * must be 0 (a dataset that is absent is checked against the file names instead).
 */
export const NO_DATA_ORACLE: Readonly<Record<string, string>> = {
  'pt-nodata-wind-nov': `SELECT count(*)::INTEGER FROM balanco WHERE ${span('2023-09-20', '2024-01-01')}`,
  'pt-nodata-2024': 'SELECT count(*)::INTEGER FROM curva WHERE din_instante >= TIMESTAMP \'2024-01-01\'',
  'en-nodata-cmo-gap': `SELECT count(*)::INTEGER FROM cmo WHERE ${span('2022-12-05', '2022-12-06')}`,
};
