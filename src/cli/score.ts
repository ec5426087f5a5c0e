import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Scoring of the evaluation set (eval/questions.json): the numbers an answer states, in pt-BR or en format,
 * against the numbers the ONS files hold; the `GET /timeseries` reruns and citations behind them; and, for a
 * question the data cannot answer, that the answer says so instead of inventing a number. No AWS, no network.
 */

/** A number the answer must state. */
export interface ExpectedNumber {
  readonly value: number;
  /** The unit the value is in (`MWmed`, `MWh`, `R$/MWh`, `%`, `MWmês`). */
  readonly unit: string;
  /** A stated number matches when it rounds to the value at this many decimals. */
  readonly decimals?: number;
  /** Or when it is within this fraction of the value (0.001: 0.1 %). */
  readonly tolerance?: number;
  readonly what: string;
}

/** A local (Brasília) date and/or time the answer must state. */
export interface ExpectedWhen {
  /** `YYYY-MM-DD`. */
  readonly date?: string;
  /** `HH:MM`, 24-hour. */
  readonly localTime?: string;
  readonly what: string;
}

export type Expected = ExpectedNumber | ExpectedWhen;

export interface EvalQuestion {
  readonly id: string;
  readonly language: 'pt' | 'en';
  readonly kind: string;
  readonly question: string;
  /** The data does not cover the question: the right answer says so and states no number. */
  readonly noData?: boolean;
  readonly why?: string;
  readonly expected: readonly Expected[];
  /** `GET /timeseries/{dataset}?…` paths that answer the question (for a scripted model and for people). */
  readonly requests: readonly string[];
  readonly note?: string;
}

export interface QuestionSet {
  readonly description?: string;
  readonly version: number;
  readonly questions: readonly EvalQuestion[];
}

/** The parts of a `POST /query` answer that are scored (knowledge/contract.ts KnowledgeQueryResponse). */
export interface ScoredResponse {
  readonly answer: string;
  readonly citations?: readonly unknown[];
  readonly queries?: ReadonlyArray<{ readonly request: string; readonly points?: number }>;
  readonly usage?: { readonly inputTokens?: number; readonly outputTokens?: number; readonly modelCalls?: number; readonly toolCalls?: number };
  readonly answeredFrom?: string;
}

export function isExpectedNumber(e: Expected): e is ExpectedNumber {
  return typeof (e as ExpectedNumber).value === 'number';
}

/** The set that ships with the package: `eval/questions.json` beside the package.json, found upwards from this module. */
export function defaultQuestionSetPath(from: string = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, 'eval', 'questions.json');
    if (existsSync(file) && existsSync(join(dir, 'package.json'))) return file;
    if (dirname(dir) === dir) throw new Error(`no eval/questions.json above ${from}`);
  }
}

/** Reads and checks a question set (default: the one shipped in the package). Throws with the first fault found. */
export function loadQuestionSet(path: string = defaultQuestionSetPath()): QuestionSet {
  let set: QuestionSet;
  try {
    set = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read the question set ${path}: ${(error as Error).message}`);
  }
  const fault = (why: string) => new Error(`question set ${path}: ${why}`);
  if (!set || !Array.isArray(set.questions) || set.questions.length === 0) throw fault('no "questions" array');
  const ids = new Set<string>();
  for (const [i, q] of set.questions.entries()) {
    const where = `questions[${i}]${typeof q?.id === 'string' ? ` (${q.id})` : ''}`;
    if (typeof q?.id !== 'string' || !q.id) throw fault(`${where} has no id`);
    if (ids.has(q.id)) throw fault(`${where}: the id is used twice`);
    ids.add(q.id);
    if (q.language !== 'pt' && q.language !== 'en') throw fault(`${where}: language must be pt or en`);
    if (typeof q.question !== 'string' || !q.question.trim()) throw fault(`${where} has no question`);
    if (!Array.isArray(q.expected) || !Array.isArray(q.requests)) throw fault(`${where} needs "expected" and "requests" arrays`);
    if (!q.noData && q.expected.length === 0) throw fault(`${where} expects nothing and is not a noData question`);
    for (const e of q.expected) {
      if (isExpectedNumber(e)) {
        if (e.decimals === undefined && e.tolerance === undefined) throw fault(`${where}: ${e.what} needs decimals or tolerance`);
      } else if (!(e.date && /^\d{4}-\d{2}-\d{2}$/.test(e.date)) && !(e.localTime && /^\d{2}:\d{2}$/.test(e.localTime))) {
        throw fault(`${where}: an expected entry needs a value, a date (YYYY-MM-DD) or a localTime (HH:MM)`);
      }
    }
  }
  return set;
}

/** A number as written in an answer, with every value it can be read as (`12.345` is 12.345 in English, 12345 in Portuguese). */
export interface FoundNumber {
  readonly text: string;
  readonly values: readonly number[];
  /** The unit written right after it, as written (`MWh`, `GW`, `%`, `R$/MWh`), if any. */
  readonly unit?: string;
  /** A date, a time of day or a year: not a measurement. */
  readonly calendar: boolean;
}

// Spaces that group thousands in pt-BR and SI style: space, no-break space, narrow no-break space, thin space.
const GROUP_SPACE = '[ \\u00a0\\u202f\\u2009]';
const NUMBER = new RegExp(
  // A unit may follow with no space (`14081,7MW`); a letter before is part of a name (`S1`, `W07`).
  `(?<![\\w.,])[-\\u2212]?(?:\\d{1,3}(?:${GROUP_SPACE}\\d{3})+(?:[.,]\\d+)?(?!\\d)|\\d+(?:[.,]\\d+)*)`,
  'gu',
);
// Units a measurement is followed by; the scale is relative to the unit's base (MW, MWh), `mil`/`thousand` and `milhões`/`million` too.
const UNIT_AFTER = /^\s*(%|R\$\s*\/\s*MWh|(?:mil(?:hões|hão)?|thousand|million)?\s*(?:de\s+)?(?:[kMGT]W(?:h|med|\s*médios?|-?m[eê]s|month)?|MWh)|mil(?:hões|hão)?\b|thousand\b|million\b)/u;
const DATE_OR_TIME = /^\d{4}-\d{2}-\d{2}|^\d{1,2}\/\d{1,2}\/\d{2,4}$|^\d{1,2}[:h]\d{2}$/;

/** Every number in a text, in pt-BR (`12.345,6`, `12 345,6`) or en (`12,345.6`) format, with the unit after it. */
export function extractNumbers(text: string): FoundNumber[] {
  const found: FoundNumber[] = [];
  // Dates and times first, so that their parts are not read as numbers.
  const calendar = /\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?|\b\d{1,2}\/\d{1,2}\/\d{4}\b|\b\d{1,2}[:h]\d{2}\b|\b\d{1,2}h\b/g;
  const masked = text.replace(calendar, (m) => {
    found.push({ text: m, values: [], calendar: true });
    return ' '.repeat(m.length);
  });
  for (const match of masked.matchAll(NUMBER)) {
    const raw = match[0];
    const values = readings(raw);
    if (values.length === 0) continue;
    const after = masked.slice(match.index! + raw.length, match.index! + raw.length + 24);
    const unit = UNIT_AFTER.exec(after)?.[1]?.trim();
    const before = masked.slice(Math.max(0, match.index! - 4), match.index!);
    const money = /R\$\s*$/.test(before);
    const year = /^(19|20)\d{2}$/.test(raw) && !unit && !money;
    found.push({ text: raw, values, unit: unit ?? (money ? 'R$' : undefined), calendar: year || DATE_OR_TIME.test(raw) });
  }
  return found;
}

/** The values a written number can be read as. */
function readings(raw: string): number[] {
  const negative = /^[-\u2212]/.test(raw);
  const s = raw.replace(/^[-\u2212]/, '');
  const sign = (v: number) => (negative ? -v : v);
  const spaced = new RegExp(`^(\\d{1,3}(?:${GROUP_SPACE}\\d{3})+)(?:[.,](\\d+))?$`, 'u').exec(s);
  if (spaced) return [sign(Number(`${spaced[1].replace(/\D/g, '')}.${spaced[2] ?? '0'}`))];
  const dots = (s.match(/\./g) ?? []).length;
  const commas = (s.match(/,/g) ?? []).length;
  if (dots && commas) {
    // The last separator is the decimal one; the other groups thousands.
    const decimal = s.lastIndexOf('.') > s.lastIndexOf(',') ? '.' : ',';
    const group = decimal === '.' ? ',' : '.';
    const [int, frac = ''] = s.split(decimal);
    if (frac.includes(group) || s.split(decimal).length > 2 || !grouped(int, group)) return [];
    return [sign(Number(`${int.split(group).join('')}.${frac}`))];
  }
  const sep = dots ? '.' : commas ? ',' : '';
  if (!sep) return [sign(Number(s))];
  const parts = s.split(sep);
  if (parts.length > 2) return grouped(s, sep) ? [sign(Number(parts.join('')))] : [];
  // One separator: before three digits it may group thousands as well as mark decimals.
  const asDecimal = sign(Number(`${parts[0]}.${parts[1]}`));
  return grouped(s, sep) ? [asDecimal, sign(Number(parts.join('')))] : [asDecimal];
}

/** `1.234.567` with `.`: a first group of 1 to 3 digits (not a leading 0), then groups of exactly 3. */
function grouped(s: string, sep: string): boolean {
  const groups = s.split(sep);
  return groups.length > 1 && /^[1-9]\d{0,2}$/.test(groups[0]) && groups.slice(1).every((g) => /^\d{3}$/.test(g));
}

/** How many base units a written unit is: `GW` against `MWmed` is 1000, `mil MWh` 1000, `TWh` against `MWh` 10⁶. */
function scaleOf(written: string | undefined): number {
  if (!written) return 1;
  let scale = 1;
  if (/^mil(?!h)/.test(written) || /^thousand/.test(written)) scale *= 1e3;
  if (/^milh/.test(written) || /^million/.test(written)) scale *= 1e6;
  const prefix = /([kMGT])W/.exec(written)?.[1];
  if (prefix) scale *= { k: 1e-3, M: 1, G: 1e3, T: 1e6 }[prefix]!;
  return scale;
}

/** True when `x` is the expected value by the entry's rule: the same rounded at `decimals`, or within `tolerance`. */
export function matchesValue(x: number, e: ExpectedNumber): boolean {
  if (e.decimals !== undefined) {
    const f = 10 ** e.decimals;
    // Rounds half away from zero, with a margin for binary fractions (1.005 × 100 = 100.49999…).
    const round = (v: number) => Math.sign(v) * Math.round(Math.abs(v) * f + 1e-9);
    if (round(x) === round(e.value)) return true;
  }
  return e.tolerance !== undefined && Math.abs(x - e.value) <= e.tolerance * Math.abs(e.value);
}

const MONTHS = {
  pt: ['janeiro', 'fevereiro', 'março', 'abril', 'maio', 'junho', 'julho', 'agosto', 'setembro', 'outubro', 'novembro', 'dezembro'],
  en: ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'],
};

/** The ways an answer may write a date: ISO, dd/mm/yyyy, `14 de novembro`, `14 November`, `November 14`. */
function mentionsDate(text: string, date: string): boolean {
  const [y, m, d] = date.split('-').map(Number);
  const lower = text.toLowerCase();
  if (lower.includes(date)) return true;
  if (new RegExp(`(?<!\\d)0?${d}/0?${m}(?:/(?:${y}|${y % 100}))?(?!\\d)`).test(lower)) return true;
  const pt = MONTHS.pt[m - 1];
  const en = MONTHS.en[m - 1];
  const day = `0?${d}(?:º|st|nd|rd|th)?`;
  return new RegExp(`(?<!\\d)${day}\\s+(?:de\\s+)?(?:${pt}|${en}|${en.slice(0, 3)}\\b)`).test(lower)
    || new RegExp(`(?:${en}|${en.slice(0, 3)}\\.?)\\s+${day}(?!\\d)`).test(lower);
}

/** The ways an answer may write a local time: `14:00`, `14h`, `14h00`, `2 PM`, `2:00 p.m.`. */
function mentionsTime(text: string, time: string): boolean {
  const [h, min] = time.split(':').map(Number);
  const mm = String(min).padStart(2, '0');
  const lower = text.toLowerCase();
  if (new RegExp(`(?<!\\d)0?${h}(?::|h\\s?)${mm}(?!\\d)`).test(lower)) return true;
  if (min === 0 && new RegExp(`(?<!\\d)0?${h}\\s?h(?![a-z0-9])|(?<!\\d)0?${h}\\s?(?:hora|horas|o'clock)\\b`).test(lower)) return true;
  const h12 = h % 12 === 0 ? 12 : h % 12;
  const meridiem = h < 12 ? 'a\\.?\\s?m\\.?' : 'p\\.?\\s?m\\.?';
  return new RegExp(`(?<!\\d)${h12}(?::${mm})?\\s?${meridiem}`).test(lower) && (min === 0 || lower.includes(`${h12}:${mm}`));
}

/**
 * Phrases that say the data does not cover a question, compared without accents and case. Documented in
 * docs/evaluation.md; an answer to a no-data question passes only with one of them and no invented number.
 */
export const NO_DATA_PHRASES: Readonly<Record<'pt' | 'en', readonly string[]>> = {
  pt: [
    'nao ha dados', 'nao tenho dados', 'sem dados', 'nao possuo dados', 'nao existem dados', 'nao encontrei dados', 'nao ha registros',
    'nao estao disponiveis', 'nao esta disponivel', 'nao disponivel', 'indisponive', 'nao cobre', 'nao cobrem', 'nao abrange', 'nao abrangem',
    'nao foram carregados', 'nao foi carregado', 'nao esta carregado', 'nao estao carregados', 'nao consta', 'fora do periodo', 'nao inclui', 'nao incluem',
  ],
  en: [
    'no data', 'not covered', 'does not cover', 'do not cover', "doesn't cover", "don't cover", 'not available', 'unavailable', 'not loaded',
    'no records', 'outside the period', 'outside the range', 'outside the loaded', 'does not include', 'do not include', "doesn't include",
    'not in the data', 'no time series',
  ],
};

const fold = (s: string) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().replace(/[\u2019`]/g, "'");

/** True when the answer says, in Portuguese or English, that the data does not cover the question. */
export function saysNotCovered(answer: string): boolean {
  const text = fold(answer);
  return [...NO_DATA_PHRASES.pt, ...NO_DATA_PHRASES.en].some((p) => text.includes(fold(p)));
}

/** The outcome of one expected entry. */
export interface ExpectedOutcome {
  readonly what: string;
  readonly expected: string;
  readonly found: boolean;
  /** The text in the answer that matched. */
  readonly matched?: string;
}

export interface QuestionScore {
  readonly id: string;
  readonly language: 'pt' | 'en';
  readonly kind: string;
  /** The numbers (or the no-data outcome) are right and, for a numeric question, the answer names a rerunnable query. */
  readonly pass: boolean;
  /** Every expected number and time found (numeric), or "says not covered" with no invented number (no-data). */
  readonly correct: boolean;
  readonly expected: readonly ExpectedOutcome[];
  /** Numbers the answer states (measurements only: dates, times and years left out), as written. */
  readonly numbersFound: readonly string[];
  /** No-data questions: whether the answer says the data does not cover it, and the measurements it states anyway. */
  readonly noData?: { readonly saysNotCovered: boolean; readonly inventedNumbers: readonly string[] };
  /** `queries` holds at least one `GET /timeseries/…` request (the rerun of the numbers). */
  readonly rerun: boolean;
  /** `citations` or `queries` is not empty. */
  readonly citation: boolean;
  readonly queries: readonly string[];
  readonly citations: number;
  readonly usage?: ScoredResponse['usage'];
  readonly answeredFrom?: string;
  readonly answer: string;
}

/** Scores one answer to one question of the set. */
export function scoreAnswer(question: EvalQuestion, response: ScoredResponse): QuestionScore {
  const answer = typeof response.answer === 'string' ? response.answer : '';
  const found = extractNumbers(answer);
  const measurements = found.filter((n) => !n.calendar);
  const queries = (response.queries ?? []).map((q) => q?.request).filter((r): r is string => typeof r === 'string');
  const rerun = queries.some((r) => /^\/timeseries\/[a-z0-9_]+\?/.test(r));
  const citations = Array.isArray(response.citations) ? response.citations.length : 0;
  const citation = citations > 0 || queries.length > 0;

  let correct: boolean;
  let expected: ExpectedOutcome[] = [];
  let noData: QuestionScore['noData'];
  if (question.noData) {
    // A number with a measurement unit is an answer the data cannot give; plain counts (days, hours) are not.
    const invented = measurements.filter((n) => n.unit !== undefined).map((n) => `${n.text}${n.unit ? ` ${n.unit}` : ''}`);
    const says = saysNotCovered(answer);
    noData = { saysNotCovered: says, inventedNumbers: invented };
    correct = says && invented.length === 0;
  } else {
    expected = question.expected.map((e) => {
      if (isExpectedNumber(e)) {
        const hit = measurements.find((n) => n.values.some((v) => matchesValue(v * scaleOf(n.unit), e)));
        return { what: e.what, expected: `${e.value} ${e.unit}`, found: hit !== undefined, ...(hit ? { matched: `${hit.text}${hit.unit ? ` ${hit.unit}` : ''}` } : {}) };
      }
      const ok = (!e.date || mentionsDate(answer, e.date)) && (!e.localTime || mentionsTime(answer, e.localTime));
      return { what: e.what, expected: [e.date, e.localTime].filter(Boolean).join(' '), found: ok };
    });
    correct = expected.every((e) => e.found);
  }
  return {
    id: question.id,
    language: question.language,
    kind: question.kind,
    pass: correct && (question.noData ? true : rerun),
    correct,
    expected,
    numbersFound: measurements.map((n) => n.text),
    ...(noData ? { noData } : {}),
    rerun,
    citation,
    queries,
    citations,
    ...(response.usage ? { usage: response.usage } : {}),
    ...(response.answeredFrom ? { answeredFrom: response.answeredFrom } : {}),
    answer,
  };
}

/** Totals of a run. */
export interface EvaluationTotals {
  readonly questions: number;
  readonly passed: number;
  /** Questions whose numbers (or no-data outcome) were right, over all questions. */
  readonly accuracy: number;
  /** Expected numbers and times found, over all of them (partial credit). */
  readonly valueAccuracy: number;
  /** Numeric questions whose answer had citations or queries, over numeric questions (a no-data answer has nothing to cite). */
  readonly citationPresence: number;
  /** Numeric questions whose answer named a `GET /timeseries` rerun, over numeric questions. */
  readonly rerunPresence: number;
  /** Questions with no answer (HTTP error, timeout, not JSON). */
  readonly errors: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly modelCalls: number;
  readonly toolCalls: number;
}

/** The totals of a run over `questions`, of which `scores` were answered (the others count as failed). */
export function totals(questions: readonly EvalQuestion[], scores: readonly QuestionScore[]): EvaluationTotals {
  const ratio = (n: number, d: number) => (d === 0 ? 0 : Math.round((n / d) * 10_000) / 10_000);
  const sum = (key: 'inputTokens' | 'outputTokens' | 'modelCalls' | 'toolCalls') => scores.reduce((t, s) => t + (Number(s.usage?.[key]) || 0), 0);
  const numeric = questions.filter((q) => !q.noData);
  return {
    questions: questions.length,
    passed: scores.filter((s) => s.pass).length,
    accuracy: ratio(scores.filter((s) => s.correct).length, questions.length),
    valueAccuracy: ratio(scores.flatMap((s) => s.expected).filter((v) => v.found).length, numeric.reduce((t, q) => t + q.expected.length, 0)),
    citationPresence: ratio(scores.filter((s) => s.expected.length > 0 && s.citation).length, numeric.length),
    rerunPresence: ratio(scores.filter((s) => s.expected.length > 0 && s.rerun).length, numeric.length),
    errors: questions.length - scores.length,
    inputTokens: sum('inputTokens'),
    outputTokens: sum('outputTokens'),
    modelCalls: sum('modelCalls'),
    toolCalls: sum('toolCalls'),
  };
}
