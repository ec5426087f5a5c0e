import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertFile } from '../../src/ons/convert';
import { localFile } from '../../src/ons/local-file';
import { ONS_DATA } from '../ons-data';

/**
 * The data card of every real ONS file (what the knowledge base indexes), checked against figures
 * derived without the code under test: reference-figures.json (Python csv + zoneinfo).
 */
const REFERENCE: Record<string, {
  rows: number; series: number; start: string; end: string; measures: Record<string, { count: number; sum: number }>;
}> = JSON.parse(readFileSync(join(ONS_DATA, 'reference-figures.json'), 'utf8'));

/** Brasília's local year of a UTC instant, by the platform's own time zone database (not the domain core's code). */
const YEAR = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/Sao_Paulo', year: 'numeric' });
const localYear = (iso: string) => Number(YEAR.format(new Date(iso)));

/** The card's per-series table: `| series | labels | measure | n | min | max | mean unit |`. */
function seriesRows(markdown: string) {
  const section = markdown.split('## Séries / Series')[1].split('## ')[0];
  return section.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| série') && !l.startsWith('|---')).map((l) => {
    const cells = l.split(' | ');
    return { measure: cells[2], n: Number(cells[3]), mean: Number(cells[6].split(' ')[0]) };
  });
}

describe.each(Object.keys(REFERENCE))('data card of %s', (file) => {
  const ref = REFERENCE[file];
  let out: string;
  let markdown: string;
  let metadata: { metadataAttributes: Record<string, unknown> };
  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'ons-card-'));
    const result = await convertFile(file, localFile(join(ONS_DATA, file)), { outDir: out, sourceKey: `ons/${file}`, sourceBucket: 'raw' });
    markdown = readFileSync(join(out, result.card), 'utf8');
    metadata = JSON.parse(readFileSync(join(out, result.cardMetadata), 'utf8'));
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  test('period in UTC and series count as the reference', () => {
    expect(markdown).toContain(`${ref.start} → ${ref.end}`);
    expect(markdown).toMatch(new RegExp(`séries / series: ${ref.series}\\b`));
    expect(metadata.metadataAttributes).toMatchObject({ series: ref.series, year_from: localYear(ref.start), year_to: localYear(ref.end) });
    expect(metadata.metadataAttributes.source_file).toBe(file);
  });

  test('per-series counts add up to each measure\'s count, and count × mean to its sum', () => {
    const rows = seriesRows(markdown);
    for (const [measure, { count, sum }] of Object.entries(ref.measures)) {
      const mine = rows.filter((r) => r.measure === measure);
      expect({ measure, count: mine.reduce((a, r) => a + r.n, 0) }).toEqual({ measure, count });
      // Means are printed to 3 decimals: each series' n × mean is within n × 0.0005 of its sum.
      const tolerance = mine.reduce((a, r) => a + r.n * 0.0005, 0) + 1e-6 * Math.abs(sum);
      expect(Math.abs(mine.reduce((a, r) => a + r.n * r.mean, 0) - sum)).toBeLessThanOrEqual(tolerance);
    }
    expect(new Set(rows.map((r) => r.measure))).toEqual(new Set(Object.keys(ref.measures)));
  });
});
