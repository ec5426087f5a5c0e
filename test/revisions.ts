import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ONS_DATA } from './ons-data';
import { convertFile } from '../src/ons/convert';
import { localFile } from '../src/ons/local-file';

/**
 * Revisions of a CURVA_CARGA file (`id;name;instant;value` rows) as ONS publishes them, and the
 * figures a test expects of one, computed from the text alone (not by the code under test).
 */

/** The file with every value shifted by `delta` and the rows of the months in `drop` (`MM`) left out. */
export function revise(text: string, delta: number, drop: string[] = []): string {
  const [header, ...lines] = text.trimEnd().split('\n');
  const kept = lines.filter((l) => !drop.includes(l.split(';')[2].slice(5, 7)))
    .map((l) => {
      const cells = l.split(';');
      cells[3] = (Number(cells[3]) + delta).toFixed(8);
      return cells.join(';');
    });
  return `${[header, ...kept].join('\n')}\n`;
}

/** Rows with a numeric value and the sum of those values, straight from the file text. */
export function figures(text: string): { count: number; sum: number } {
  const values = text.trimEnd().split('\n').slice(1).map((l) => Number(l.split(';')[3])).filter(Number.isFinite);
  return { count: values.length, sum: values.reduce((s, v) => s + v, 0) };
}

const CURVA_2023 = 'CURVA_CARGA_2023.csv';

/** CURVA_CARGA_2023.csv's text, its rows (`[id, name, instant, value]`), and its monthly edition of February: every value revised (+1.5), as ONS revises a month. */
export function curvaEditions(): { text: string; rows: string[][]; february: string[][] } {
  const text = readFileSync(join(ONS_DATA, CURVA_2023), 'utf8');
  const rows = text.trimEnd().split('\n').slice(1).map((l) => l.split(';'));
  const february = rows.filter((r) => r[2].startsWith('2023-02-')).map(([s, n, t, v]) => [s, n, t, (Number(v) + 1.5).toFixed(8)]);
  return { text, rows, february };
}

/** Converts the yearly file and its February edition, published at the times given, into `outDir` as the command does. */
export async function convertCurvaEditions(outDir: string, yearlyTime: Date, monthlyTime: Date): Promise<void> {
  const { text, february } = curvaEditions();
  const monthly = join(outDir, 'CURVA_CARGA_2023_02.csv');
  writeFileSync(monthly, `${text.split('\n')[0]}\n${february.map((r) => r.join(';')).join('\n')}\n`);
  await convertFile(CURVA_2023, localFile(join(ONS_DATA, CURVA_2023)), {
    outDir, sourceKey: `ons/curva_carga/${CURVA_2023}`, sourceTime: yearlyTime,
  });
  await convertFile('CURVA_CARGA_2023_02.csv', localFile(monthly), { outDir, sourceKey: 'ons/curva_carga/CURVA_CARGA_2023_02.csv', sourceTime: monthlyTime });
}
