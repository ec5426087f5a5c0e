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
