// Writes docs/catalog.md from the catalog in src/ons/catalog.ts, so the page cannot drift from the code.
import { writeFileSync } from 'node:fs';
import { CATALOG } from '../src/ons/catalog';

const lines = [
  '<!-- Generated from src/ons/catalog.ts by build-tools/catalog-doc.ts (npx projen docgen). Do not edit. -->',
  '# ONS dataset catalog',
  '',
  'Datasets the domain core knows by name. A file is matched by its name first, then by its header (a renamed file);',
  'ONS files of other datasets are read by the naming convention: `din_*`/`dat_*` (or `<prefix>_data`) is the time,',
  '`id_*`/`cod_*` identify the series, `nom_*` and other text columns are labels, `val_*` (or `<prefix>_*`) are measures.',
  'Times are Brasília civil time, converted to UTC with the zone `America/Sao_Paulo`.',
  '',
  '| dataset | files | grain | time | identity | labels | measures (unit, aggregation over time) |',
  '|---|---|---|---|---|---|---|',
];
for (const d of CATALOG) {
  const files = `\`${d.files.source.replace(/\|/g, '\\|')}\``;
  const aliases = Object.entries(d.aliases ?? {}).map(([from, to]) => ` (header \`${from}\` read as \`${to}\`)`).join('');
  const fallback = Object.entries(d.identityFallback ?? {}).map(([dim, col]) => `; without \`${dim}\`: \`${col}\``).join('');
  const optional = new Set(d.optional ?? []);
  const name = (c: string) => `\`${c}\`${optional.has(c) ? ' (optional)' : ''}`;
  lines.push([
    `**${d.id}**<br>${d.title.pt} / ${d.title.en}`,
    files,
    d.grain,
    `\`${d.time}\``,
    (d.dimensions.map(name).join(', ') || '(one series)') + aliases + fallback,
    d.labels.map(name).join(', '),
    d.measures.map((m) => `${name(m.name)} (${m.unit ?? 'unit not stated'}, ${m.aggregation})`).join('<br>'),
  ].join(' | ').replace(/^/, '| ').replace(/$/, ' |'));
}
lines.push('', '## Descriptions', '');
for (const d of CATALOG) lines.push(`- **${d.id}**: ${d.description.en} / ${d.description.pt}`);
writeFileSync('docs/catalog.md', `${lines.join('\n')}\n`);
