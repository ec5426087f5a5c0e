import { readdirSync } from 'node:fs';
import { URL } from 'node:url';
import { EvalQuestion, isExpectedNumber, loadQuestionSet } from '../../src/cli/score';
import { CATALOG } from '../../src/ons/catalog';
import { parseRequest } from '../../src/timeseries/runtime/request';
import { ONS_DATA } from '../ons-data';
import { NO_DATA_ORACLE, ORACLE, runOracle } from './oracle';

/**
 * The evaluation set (eval/questions.json) against its oracle: every expected number and time is recomputed with
 * DuckDB SQL over the raw ONS CSV files, and every no-data question is checked to be truly outside the files.
 */

const set = loadQuestionSet();
const numeric = set.questions.filter((q) => !q.noData);
const noData = set.questions.filter((q) => q.noData);

describe('the set', () => {
  test('at least 32 questions, half in Portuguese, half in English, unique ids named after their language', () => {
    expect(set.questions.length).toBeGreaterThanOrEqual(32);
    const pt = set.questions.filter((q) => q.language === 'pt');
    expect(pt.length * 2).toBe(set.questions.length);
    expect(new Set(set.questions.map((q) => q.id)).size).toBe(set.questions.length);
    for (const q of set.questions) expect(q.id.startsWith(`${q.language}-`)).toBe(true);
  });

  test('covers peaks, sums, averages, comparisons, a DST day, ONS weeks, source breakdowns, load profiles and questions the data cannot answer', () => {
    const kinds = new Set(set.questions.map((q) => q.kind));
    for (const kind of ['peak', 'sum', 'average', 'comparison', 'dst', 'week', 'sources', 'profile', 'noData']) expect(kinds).toContain(kind);
    expect(noData.length).toBeGreaterThanOrEqual(2);
    // Peaks name the local time; sums are energy in MWh.
    for (const q of set.questions.filter((x) => x.kind === 'peak')) expect(q.expected.some((e) => !isExpectedNumber(e))).toBe(true);
    for (const q of set.questions.filter((x) => x.kind === 'sum')) expect(q.expected.filter(isExpectedNumber).map((e) => e.unit)).toEqual(['MWh']);
  });

  test('every numeric question expects at least one number with a precision; no-data questions expect none and say why', () => {
    for (const q of numeric) {
      expect(q.expected.filter(isExpectedNumber).length).toBeGreaterThan(0);
      for (const e of q.expected.filter(isExpectedNumber)) expect(e.decimals !== undefined || e.tolerance !== undefined).toBe(true);
    }
    for (const q of noData) {
      expect(q.expected).toEqual([]);
      expect(q.why).toMatch(/\w/);
    }
  });

  test('every request is one the time-series API accepts: its own validation, with every catalog dataset served', () => {
    const config = { tables: Object.fromEntries(CATALOG.map((d) => [d.id, d.id])), maxPoints: 1000 };
    for (const q of set.questions) {
      for (const request of q.requests) {
        const url = new URL(request, 'https://api.example');
        const params = Object.fromEntries(url.searchParams);
        const multi = Object.fromEntries([...url.searchParams.keys()].map((k) => [k, url.searchParams.getAll(k)]));
        const parsed = parseRequest(url.pathname.split('/')[2], params, multi, config, () => 'key');
        expect({ request, interval: parsed.interval, week: parsed.week }).toEqual({
          request, interval: params.interval ?? null, week: params.interval === '1w' ? 'ons' : undefined,
        });
      }
    }
  });

  test('every request is a GET /timeseries path on a catalog dataset with an ISO period, from before to', () => {
    for (const q of set.questions) {
      expect(q.requests.length).toBeGreaterThan(0);
      for (const request of q.requests) {
        const url = new URL(request, 'https://api.example');
        const dataset = /^\/timeseries\/([a-z0-9_]+)$/.exec(url.pathname)?.[1];
        expect(CATALOG.map((d) => d.id)).toContain(dataset);
        const from = Date.parse(url.searchParams.get('from')!);
        const to = Date.parse(url.searchParams.get('to')!);
        expect(from).toBeLessThan(to);
        const measure = url.searchParams.get('measure');
        if (measure) expect(CATALOG.find((d) => d.id === dataset)!.measures.map((m) => m.name)).toContain(measure);
      }
    }
  });
});

describe('the oracle: DuckDB over the raw CSV files', () => {
  let answers: Record<string, Array<number | string | null>>;
  beforeAll(async () => {
    answers = await runOracle(ONS_DATA, { ...ORACLE, ...NO_DATA_ORACLE });
  }, 60_000);

  test('every numeric question has an oracle query, and every query a question', () => {
    expect(Object.keys(ORACLE).sort()).toEqual(numeric.map((q) => q.id).sort());
    expect(Object.keys(NO_DATA_ORACLE).every((id) => noData.some((q) => q.id === id))).toBe(true);
  });

  test.each(numeric.map((q) => [q.id, q] as const))('%s: the expected values are what the files say', (id, q: EvalQuestion) => {
    const row = answers[id];
    expect(row).toHaveLength(q.expected.length);
    q.expected.forEach((e, i) => {
      if (isExpectedNumber(e)) {
        // Stored with 3 decimals: at most half a thousandth from the oracle.
        expect(typeof row[i]).toBe('number');
        expect(Math.abs(e.value - (row[i] as number))).toBeLessThanOrEqual(0.0005 + 1e-9);
      } else {
        expect([e.date, e.localTime].filter(Boolean).join(' ')).toBe(row[i]);
      }
    });
  });

  test.each(Object.keys(NO_DATA_ORACLE))('%s: the loaded file has no rows for the period asked', (id) => {
    expect(answers[id]).toEqual([0]);
  });

  test('the datasets the no-data questions ask for have no file among the fixtures', () => {
    const files = readdirSync(ONS_DATA);
    expect(files.some((f) => /^ENA_DIARIO/i.test(f))).toBe(false);
    expect(files.some((f) => /^GERACAO_USINA/i.test(f))).toBe(false);
    expect(noData.map((q) => q.requests.map((r) => r.split('?')[0]))).toEqual(expect.arrayContaining([
      ['/timeseries/ena_diario_subsistema'], ['/timeseries/geracao_usina_2'],
    ]));
  });
});
