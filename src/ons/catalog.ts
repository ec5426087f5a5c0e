/**
 * The catalog of ONS datasets the platform knows by name. Column names are normalised
 * (`normaliseColumn`): lower case, ASCII, `_` between words. Files of datasets not listed here are
 * read by the ONS naming convention (see `detect.ts`).
 */

/** Text in Portuguese and English. */
export interface Bilingual {
  readonly pt: string;
  readonly en: string;
}

/** How values of a measure combine over time. */
export type Aggregation = 'mean' | 'sum' | 'last';

export interface MeasureDefinition {
  readonly name: string;
  /** Unit as ONS writes it (MWmed, MWmês, R$/MWh, %); null when the source does not say. */
  readonly unit: string | null;
  readonly description: Bilingual;
  /** How to aggregate over time: stocks (stored energy) are never summed, prices are averaged. */
  readonly aggregation: Aggregation;
}

export interface DatasetDefinition {
  /** Dataset id: the CKAN id with `_` for `-` (e.g. `curva_carga`). */
  readonly id: string;
  readonly title: Bilingual;
  readonly description: Bilingual;
  /** File base names of this dataset, in every published format and partitioning. */
  readonly files: RegExp;
  /** Time grain, ISO 8601 duration. */
  readonly grain: 'PT30M' | 'PT1H' | 'P1D' | 'P7D';
  /** The time column. */
  readonly time: string;
  /** Identity dimensions (id_*, cod_*): the series key. Labels never split a series. */
  readonly dimensions: readonly string[];
  /** Descriptive columns (nom_*, ...), kept with each record. */
  readonly labels: readonly string[];
  readonly measures: readonly MeasureDefinition[];
  /** Columns that some publications lack; every other listed column is required. */
  readonly optional?: readonly string[];
  /** Header spellings ONS has published, mapped to the catalog's name (`id_subsistena` → `id_subsistema`). */
  readonly aliases?: Readonly<Record<string, string>>;
  /** Columns read but not kept (duplicates of another column). */
  readonly ignored?: readonly string[];
  /** An identity dimension missing from older files, and the column that identifies the series instead. */
  readonly identityFallback?: Readonly<Record<string, string>>;
}

const MWMED = 'MWmed';
const RS_MWH = 'R$/MWh';

function mean(name: string, unit: string | null, pt: string, en: string): MeasureDefinition {
  return { name, unit, description: { pt, en }, aggregation: 'mean' };
}

/** Dates in ONS file names: `_YYYY`, `_YYYY_MM` or `-YYYY` (CKAN resource names). */
const PERIOD = '[_-]\\d{4}(?:[_-]\\d{2})?';
function files(base: string): RegExp {
  return new RegExp(`^${base}${PERIOD}\\.(?:csv|xlsx|parquet)$`, 'i');
}

const SUBSYSTEM = { dimensions: ['id_subsistema'], labels: ['nom_subsistema'] } as const;

/** What a dataset id may be (catalog or `additionalDatasets`): the API, the handlers and the OpenAPI document check it. */
export const DATASET_ID = /^[a-z0-9_]{1,64}$/;

/** The values of `id_subsistema` ONS publishes, with their names; `SIN` (the whole grid) only where a file sums it. */
export const SUBSYSTEMS: Readonly<Record<string, Bilingual>> = {
  N: { pt: 'Norte', en: 'North' },
  NE: { pt: 'Nordeste', en: 'Northeast' },
  S: { pt: 'Sul', en: 'South' },
  SE: { pt: 'Sudeste/Centro-Oeste', en: 'Southeast/Center-West' },
  SIN: { pt: 'Sistema Interligado Nacional', en: 'National Interconnected System' },
};

export const CATALOG: readonly DatasetDefinition[] = [
  {
    id: 'carga_energia',
    title: { pt: 'Carga de Energia Diária', en: 'Daily energy load' },
    description: {
      pt: 'Carga de energia diária verificada por subsistema, em MWmed. Mudanças de metodologia em 2021 e 2023 (inclusão de geração não despachada e de MMGD).',
      en: 'Verified daily energy load per subsystem, in average MW. Methodology changed in 2021 and 2023 (non-dispatched generation and distributed micro/mini-generation added).',
    },
    files: files('CARGA_ENERGIA'),
    grain: 'P1D',
    time: 'din_instante',
    ...SUBSYSTEM,
    measures: [mean('val_cargaenergiamwmed', MWMED, 'Carga de energia do dia', 'Energy load of the day')],
  },
  {
    id: 'curva_carga',
    title: { pt: 'Curva de Carga Horária', en: 'Hourly load curve' },
    description: {
      pt: 'Curva de carga horária por subsistema: o perfil de consumo de energia elétrica com discretização horária.',
      en: 'Hourly load curve per subsystem: the electricity consumption profile hour by hour.',
    },
    files: files('CURVA_CARGA'),
    grain: 'PT1H',
    time: 'din_instante',
    ...SUBSYSTEM,
    measures: [mean('val_cargaenergiahomwmed', MWMED, 'Carga de energia na hora', 'Energy load in the hour')],
  },
  {
    id: 'balanco_energia_subsistema',
    title: { pt: 'Balanço de Energia nos Subsistemas', en: 'Energy balance of the subsystems' },
    description: {
      pt: 'Balanço horário de energia por subsistema e do SIN (linha SIN = soma dos subsistemas): geração por fonte, carga e intercâmbio.',
      en: 'Hourly energy balance per subsystem and for the whole grid (the SIN row is the sum of the subsystems): generation by source, load and interchange.',
    },
    files: files('BALANCO_ENERGIA_SUBSISTEMA'),
    grain: 'PT1H',
    time: 'din_instante',
    ...SUBSYSTEM,
    aliases: { id_subsistena: 'id_subsistema' },
    measures: [
      mean('val_gerhidraulica', MWMED, 'Geração hidráulica verificada', 'Verified hydro generation'),
      mean('val_gertermica', MWMED, 'Geração térmica verificada (inclui nuclear)', 'Verified thermal generation (nuclear included)'),
      mean('val_gereolica', MWMED, 'Geração eólica verificada', 'Verified wind generation'),
      mean('val_gersolar', MWMED, 'Geração solar verificada', 'Verified solar generation'),
      mean('val_carga', MWMED, 'Carga verificada', 'Verified load'),
      mean('val_intercambio', MWMED, 'Intercâmbio líquido (positivo = exportação)', 'Net interchange (positive = export)'),
    ],
  },
  {
    id: 'cmo_semihorario',
    title: { pt: 'CMO semi-horário', en: 'Half-hourly marginal operating cost' },
    description: {
      pt: 'Custo Marginal de Operação semi-horário por subsistema (modelo DESSEM), em R$/MWh. Valores negativos são reais.',
      en: 'Half-hourly marginal operating cost per subsystem (DESSEM model), in R$/MWh. Negative values are real.',
    },
    files: files('CMO_SEMIHORARIO'),
    grain: 'PT30M',
    time: 'din_instante',
    ...SUBSYSTEM,
    measures: [mean('val_cmo', RS_MWH, 'Custo marginal de operação', 'Marginal operating cost')],
  },
  {
    id: 'cmo_semanal',
    title: { pt: 'CMO semanal por patamar de carga', en: 'Weekly marginal operating cost by load block' },
    description: {
      pt: 'Custo Marginal de Operação semanal por subsistema e patamar de carga (modelo DECOMP), em R$/MWh. A data é a sexta-feira da semana operativa.',
      en: 'Weekly marginal operating cost per subsystem and load block (DECOMP model), in R$/MWh. The date is the Friday of the operating week.',
    },
    files: files('CMO_SEMANAL'),
    grain: 'P7D',
    time: 'din_instante',
    ...SUBSYSTEM,
    measures: [
      mean('val_cmomediasemanal', RS_MWH, 'CMO médio semanal', 'Weekly average marginal cost'),
      mean('val_cmoleve', RS_MWH, 'CMO no patamar leve', 'Marginal cost, light-load block'),
      mean('val_cmomedia', RS_MWH, 'CMO no patamar médio', 'Marginal cost, medium-load block'),
      mean('val_cmopesada', RS_MWH, 'CMO no patamar pesado', 'Marginal cost, heavy-load block'),
    ],
  },
  {
    id: 'ear_diario_subsistema',
    title: { pt: 'Energia Armazenada diária por subsistema', en: 'Daily stored energy per subsystem' },
    description: {
      pt: 'Energia armazenada (EAR) diária por subsistema: capacidade máxima e energia verificada, em MWmês e em %. É um estoque: nunca somar no tempo.',
      en: 'Daily stored energy per subsystem: maximum capacity and verified energy, in MW-month and %. It is a stock: never sum it over time.',
    },
    files: files('EAR_DIARIO_SUBSISTEMA'),
    grain: 'P1D',
    time: 'ear_data',
    ...SUBSYSTEM,
    measures: [
      { ...mean('ear_max_subsistema', 'MWmês', 'Energia armazenável máxima', 'Maximum storable energy'), aggregation: 'last' },
      { ...mean('ear_verif_subsistema_mwmes', 'MWmês', 'Energia armazenada verificada', 'Verified stored energy'), aggregation: 'last' },
      { ...mean('ear_verif_subsistema_percentual', '%', 'Energia armazenada verificada, % da máxima', 'Verified stored energy, % of maximum'), aggregation: 'last' },
    ],
  },
  {
    id: 'ena_diario_subsistema',
    title: { pt: 'Energia Natural Afluente diária por subsistema', en: 'Daily natural inflow energy per subsystem' },
    description: {
      pt: 'Energia Natural Afluente (ENA) diária por subsistema, bruta e armazenável, em MWmed e em % da média de longo termo (pode passar de 100%).',
      en: 'Daily natural inflow energy per subsystem, gross and storable, in average MW and in % of the long-term mean (may exceed 100%).',
    },
    files: files('ENA_DIARIO_SUBSISTEMA'),
    grain: 'P1D',
    time: 'ena_data',
    ...SUBSYSTEM,
    measures: [
      mean('ena_bruta_regiao_mwmed', MWMED, 'ENA bruta', 'Gross natural inflow energy'),
      mean('ena_bruta_regiao_percentualmlt', '%', 'ENA bruta, % da MLT', 'Gross inflow energy, % of long-term mean'),
      mean('ena_armazenavel_regiao_mwmed', MWMED, 'ENA armazenável', 'Storable natural inflow energy'),
      mean('ena_armazenavel_regiao_percentualmlt', '%', 'ENA armazenável, % da MLT', 'Storable inflow energy, % of long-term mean'),
    ],
  },
  {
    id: 'intercambio_nacional',
    title: { pt: 'Intercâmbio entre subsistemas', en: 'Interchange between subsystems' },
    description: {
      pt: 'Intercâmbio horário verificado (e programado, quando publicado) entre pares de subsistemas, em MWmed; negativo = fluxo do destino para a origem.',
      en: 'Hourly verified (and, when published, scheduled) interchange between pairs of subsystems, in average MW; negative = flow from destination to origin.',
    },
    files: files('INTERCAMBIO_NACIONAL'),
    grain: 'PT1H',
    time: 'din_instante',
    dimensions: ['id_subsistema_origem', 'id_subsistema_destino'],
    labels: ['nom_subsistema_origem', 'nom_subsistema_destino'],
    optional: ['val_intercambioprogmwmed'],
    measures: [
      mean('val_intercambiomwmed', MWMED, 'Intercâmbio verificado', 'Verified interchange'),
      mean('val_intercambioprogmwmed', MWMED, 'Intercâmbio programado', 'Scheduled interchange'),
    ],
  },
  {
    id: 'geracao_usina_2',
    title: { pt: 'Geração por Usina em Base Horária', en: 'Hourly generation per plant' },
    description: {
      pt: 'Geração horária por usina ou conjunto de usinas, em MWmed. Negativa em usinas reversíveis; previsão (não medição) para usinas TIPO III.',
      en: 'Hourly generation per plant or plant group, in average MW. Negative for pumped storage; a forecast (not a measurement) for TIPO III plants.',
    },
    files: /^GERACAO_USINA(?:-2)?[_-]\d{4}(?:[_-]\d{2})?\.(?:csv|xlsx|parquet)$/i,
    grain: 'PT1H',
    time: 'din_instante',
    // ONS's data contract: the natural key is (din_instante, id_ons). Subsystem, state and operating mode describe
    // the plant; a mode change must not split its series (ONS repeats the hour around it: the first row is kept).
    dimensions: ['id_ons'],
    labels: ['id_subsistema', 'nom_subsistema', 'id_estado', 'nom_estado', 'cod_modalidadeoperacao', 'nom_tipousina',
      'nom_tipocombustivel', 'nom_usina', 'ceg'],
    optional: ['id_ons', 'ceg', 'nom_tipocombustivel', 'id_estado', 'nom_estado'],
    // Files before 2020 have no id_ons: the plant name is then the only thing that tells plants apart.
    identityFallback: { id_ons: 'nom_usina' },
    measures: [{ ...mean('val_geracao', MWMED, 'Geração verificada', 'Verified generation'), aggregation: 'sum' }],
  },
  {
    id: 'historico_geracao_energia',
    title: { pt: 'Histórico da Operação: Geração de Energia (exportação do painel)', en: 'Operation history: energy generation (dashboard export)' },
    description: {
      pt: 'Exportação CSV do painel "Histórico da Operação – Geração de Energia" do site do ONS (formato brasileiro: DD/MM/AAAA, vírgula decimal). Unidade não informada no arquivo.',
      en: 'CSV export of the ONS website dashboard "Operation history – energy generation" (Brazilian locale: DD/MM/YYYY, decimal comma). The file does not state the unit.',
    },
    files: /^Temporal Gera[cç][aã]o de Energia.*\.csv$/i,
    grain: 'P1D',
    time: 'data_escala_de_tempo_2_ge',
    dimensions: [],
    labels: ['cor_periodo_2_ge'],
    ignored: ['data_dica_temp_2'],
    measures: [mean('selecione_tipo_de_ge', null, 'Valor do tipo de geração escolhido no painel', 'Value of the generation type chosen in the dashboard')],
  },
];

/**
 * Normalises a column name: trimmed, lower case, accents removed, runs of other characters as `_`.
 */
export function normaliseColumn(name: string): string {
  return name.normalize('NFD').replace(/[\u0300-\u036f]/g, '').trim().toLowerCase()
    .replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
}

/** The catalog entry whose file-name pattern matches a base name. */
export function datasetForFile(baseName: string): DatasetDefinition | undefined {
  return CATALOG.find((d) => d.files.test(baseName));
}
