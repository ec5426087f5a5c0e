import { DatasetLayout } from './detect';
import { FileSummary } from './process';
import { OnsRecord } from './types';

/** Series shown one by one in a card; above this, monthly figures are given for all series together. */
export const CARD_MAX_SERIES_DETAIL = 20;

interface Stat { count: number; sum: number; min: number; max: number }

function add(stats: Map<string, Stat>, key: string, value: number): void {
  const s = stats.get(key);
  if (!s) {
    stats.set(key, { count: 1, sum: value, min: value, max: value });
  } else {
    s.count++;
    s.sum += value;
    if (value < s.min) s.min = value;
    if (value > s.max) s.max = value;
  }
}

/** Where a file came from, for the card's provenance. */
export interface CardSource {
  readonly key: string;
  readonly bucket?: string;
  readonly version?: string;
  readonly contentHash: string;
}

/** The Markdown data card and its Bedrock knowledge-base metadata. */
export interface DataCard {
  readonly markdown: string;
  readonly metadata: { readonly metadataAttributes: Record<string, string | number | string[]> };
}

/**
 * Builds the data card of one file from its records: what the dataset is (Portuguese and English),
 * the period, per-series count/min/max/mean and monthly aggregates. Memory grows with series × months,
 * not with rows.
 */
export class DataCardBuilder {
  private readonly perSeries = new Map<string, Stat>();
  private readonly monthly = new Map<string, Stat>();
  private readonly monthlyAll = new Map<string, Stat>();
  private readonly seriesLabels = new Map<string, string>();
  private firstLocal?: string;
  private lastLocal?: string;

  constructor(private readonly layout: DatasetLayout) {}

  add(record: OnsRecord): void {
    if (!this.seriesLabels.has(record.series)) {
      this.seriesLabels.set(record.series, Object.values(record.labels).filter((v) => v !== null).join(' / '));
    }
    const month = record.local.slice(0, 7);
    if (!this.firstLocal || record.local < this.firstLocal) this.firstLocal = record.local;
    if (!this.lastLocal || record.local > this.lastLocal) this.lastLocal = record.local;
    for (const [measure, value] of Object.entries(record.measures)) {
      if (value === null) continue;
      add(this.perSeries, `${record.series}\u0000${measure}`, value);
      add(this.monthlyAll, `${month}\u0000${measure}`, value);
      if (this.seriesLabels.size <= CARD_MAX_SERIES_DETAIL) add(this.monthly, `${month}\u0000${record.series}\u0000${measure}`, value);
    }
  }

  build(summary: FileSummary, source: CardSource): DataCard {
    const def = this.layout.definition;
    const units = new Map(this.layout.measures.map((m) => [m.name, m.unit ?? '']));
    const detailed = this.seriesLabels.size <= CARD_MAX_SERIES_DETAIL;
    const lines: string[] = [];
    const title = def ? `${def.title.pt} / ${def.title.en}` : `${this.layout.id} (ONS)`;
    lines.push(`# ${title}`, '');
    lines.push(`- Conjunto de dados / Dataset: \`${this.layout.id}\`${def ? '' : ' (lido pela convenção de nomes do ONS / read by the ONS naming convention)'}`);
    lines.push(`- Arquivo / File: \`${source.key}\`${source.version ? ` (versão / version ${source.version})` : ''}, SHA-256 ${source.contentHash}`);
    if (source.bucket) lines.push(`- Origem / Source: s3://${source.bucket}/${source.key}`);
    lines.push(`- Período (hora de Brasília) / Period (Brasília time): ${this.firstLocal ?? '–'} → ${this.lastLocal ?? '–'}`);
    lines.push(`- Período (UTC) / Period (UTC): ${summary.start ?? '–'} → ${summary.end ?? '–'}`);
    if (def) lines.push(`- Granularidade / Grain: ${def.grain}`);
    lines.push(`- Registros / Records: ${summary.records}; linhas rejeitadas / rejected rows: ${summary.rejected}; séries / series: ${summary.series}`);
    lines.push('');
    if (def) lines.push(def.description.pt, '', def.description.en, '');
    lines.push('## Medidas / Measures', '', '| medida / measure | unidade / unit | descrição / description |', '|---|---|---|');
    for (const m of this.layout.measures) {
      const d = def?.measures.find((x) => x.name === m.name)?.description;
      lines.push(`| ${m.name} | ${m.unit ?? '?'} | ${d ? `${d.pt} / ${d.en}` : ''} |`);
    }
    lines.push('', '## Séries / Series', '', '| série / series | rótulos / labels | medida / measure | n | mín / min | máx / max | média / mean |', '|---|---|---|---|---|---|---|');
    for (const [key, s] of [...this.perSeries].sort(([a], [b]) => a.localeCompare(b))) {
      const [series, measure] = key.split('\u0000');
      lines.push(`| ${series || '(única / single)'} | ${cell(this.seriesLabels.get(series) ?? '')} | ${measure} | ${s.count} | ${fmt(s.min)} | ${fmt(s.max)} | ${fmt(s.sum / s.count)} ${units.get(measure) ?? ''} |`);
    }
    lines.push('', '## Agregados mensais / Monthly aggregates', '');
    if (detailed) {
      lines.push('| mês / month | série / series | medida / measure | n | mín / min | máx / max | média / mean |', '|---|---|---|---|---|---|---|');
      for (const [key, s] of [...this.monthly].sort(([a], [b]) => a.localeCompare(b))) {
        const [month, series, measure] = key.split('\u0000');
        lines.push(`| ${month} | ${series || '(única / single)'} | ${measure} | ${s.count} | ${fmt(s.min)} | ${fmt(s.max)} | ${fmt(s.sum / s.count)} |`);
      }
    } else {
      lines.push(`Mais de ${CARD_MAX_SERIES_DETAIL} séries: valores de todas as séries juntas. / More than ${CARD_MAX_SERIES_DETAIL} series: all series together.`, '');
      lines.push('| mês / month | medida / measure | n | mín / min | máx / max | média / mean | soma / sum |', '|---|---|---|---|---|---|---|');
      for (const [key, s] of [...this.monthlyAll].sort(([a], [b]) => a.localeCompare(b))) {
        const [month, measure] = key.split('\u0000');
        lines.push(`| ${month} | ${measure} | ${s.count} | ${fmt(s.min)} | ${fmt(s.max)} | ${fmt(s.sum / s.count)} | ${fmt(s.sum)} |`);
      }
    }
    lines.push('');
    const years = [this.firstLocal, this.lastLocal].map((t) => (t ? Number(t.slice(0, 4)) : 0));
    return {
      markdown: lines.join('\n'),
      metadata: {
        metadataAttributes: {
          dataset: this.layout.id,
          source_file: source.key.split('/').pop() ?? source.key,
          year_from: years[0],
          year_to: years[1],
          grain: def?.grain ?? 'unknown',
          records: summary.records,
          series: summary.series,
          measures: this.layout.measures.map((m) => m.name),
        },
      },
    };
  }
}

function fmt(value: number): string {
  return String(Math.round(value * 1000) / 1000);
}

/** Keeps a label from breaking the Markdown table. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
}
