import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import {
  EvalQuestion, extractNumbers, isExpectedNumber, loadQuestionSet, matchesValue, saysNotCovered, scoreAnswer, ScoredResponse,
} from '../../src/cli/score';
import type { KnowledgeQueryResponse } from '../../src/knowledge/contract';
import { closedPort, LocalHttpServer, withBody } from '../local-http';

/**
 * `ons-data-platform evaluate` against a local HTTP server that answers `POST /query` as the platform does (the
 * KnowledgeQueryResponse shape), with scripted answers: right, wrong, without reruns, throttled, not JSON.
 */

const SET = loadQuestionSet();
const byId = (id: string) => SET.questions.find((q) => q.id === id)!;

/** A number as a person writes it in the question's language: `14.081,735` (pt-BR) or `14,081.735` (en). */
const written = (value: number, language: 'pt' | 'en') =>
  value.toLocaleString(language === 'pt' ? 'pt-BR' : 'en-US', { maximumFractionDigits: 3 });

const PT_MONTHS = ['janeiro', 'fevereiro', 'março', 'abril', 'maio', 'junho', 'julho', 'agosto', 'setembro', 'outubro', 'novembro', 'dezembro'];
const EN_MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** The platform's answer is what the scoring reads: a compile-time check that the two shapes agree. */
const scored = (response: KnowledgeQueryResponse): ScoredResponse => response;

/** A right answer to a question of the set, in its language, with a rerun of each of its requests. */
function rightAnswer(q: EvalQuestion): KnowledgeQueryResponse {
  const pt = q.language === 'pt';
  const parts = q.noData
    ? [pt ? 'Não há dados carregados que cubram esse pedido: o catálogo não tem esse período ou conjunto.' : 'The loaded data does not cover this question (period or dataset not loaded).']
    : q.expected.map((e) => {
      if (isExpectedNumber(e)) return `${e.what}: ${written(e.value, q.language)} ${e.unit}`;
      const [y, m, d] = (e.date ?? '').split('-').map(Number);
      const date = e.date ? (pt ? `em ${d} de ${PT_MONTHS[m - 1]} de ${y}` : `on ${EN_MONTHS[m - 1]} ${d}, ${y}`) : '';
      const h = Number(e.localTime?.slice(0, 2));
      const time = e.localTime ? (pt ? `às ${h}h${e.localTime.slice(3)}` : `at ${h % 12 || 12}:${e.localTime.slice(3)} ${h < 12 ? 'AM' : 'PM'}`) : '';
      return `${e.what}: ${date} ${time}`.trim();
    });
  return {
    queryId: `q-${q.id}`,
    sessionId: '',
    answer: parts.join('; '),
    citations: [],
    answeredFrom: 'tools',
    queries: q.noData ? [] : q.requests.map((request) => ({ request, dataset: request.split(/[/?]/)[2], measure: 'm', unit: null, points: 24 })),
    usage: { inputTokens: 1000, outputTokens: 100, modelCalls: 2, toolCalls: 1 },
  };
}

describe('numbers in answers', () => {
  test.each([
    ['14.081,7', [14081.7]],
    ['12.345', [12.345, 12345]],
    ['12,345', [12.345, 12345]],
    ['12.345,6', [12345.6]],
    ['12,345.6', [12345.6]],
    ['12 345,6', [12345.6]],
    ['12\u202f345,6', [12345.6]],
    ['10.062.434', [10062434]],
    ['10,062,434.5', [10062434.5]],
    ['1,5', [1.5]],
    ['0,24', [0.24]],
    ['-6,18', [-6.18]],
    ['\u22126,18', [-6.18]],
    ['14081.735', [14081.735]],
  ] as Array<[string, number[]]>)('%s reads as %j', (text, values) => {
    const [found] = extractNumbers(`valor ${text} MWmed`);
    expect(found.text).toBe(text);
    expect(found.values).toEqual(values);
    expect(found.unit).toBe('MWmed');
    expect(found.calendar).toBe(false);
  });

  test('dates, times and years are not measurements; units after a number are kept, R$ before it too', () => {
    const found = extractNumbers('Em 2023-11-14 às 14:00 (14h, 15/02/2023, ano 2023): 61.217,1 MWmed, R$ 253,63 e 66,4 % e 10,06 TWh.');
    expect(found.filter((n) => !n.calendar).map((n) => [n.text, n.unit])).toEqual([['61.217,1', 'MWmed'], ['253,63', 'R$'], ['66,4', '%'], ['10,06', 'TWh']]);
  });

  test('a unit written without a space still counts; a number inside a name does not', () => {
    expect(extractNumbers('14081,7MWmed no S1').map((n) => [n.text, n.values, n.unit])).toEqual([['14081,7', [14081.7], 'MWmed']]);
  });

  test('a value matches when it rounds to the expected at its decimals, or within its tolerance', () => {
    const mw = { value: 14081.735, unit: 'MWmed', decimals: 0, what: 'x' };
    expect(matchesValue(14081.7, mw)).toBe(true);
    expect(matchesValue(14082, mw)).toBe(true);
    expect(matchesValue(14081, mw)).toBe(false);
    const mwh = { value: 10062434.529, unit: 'MWh', decimals: 0, tolerance: 0.001, what: 'x' };
    expect(matchesValue(10.06e6, mwh)).toBe(true);
    expect(matchesValue(10.05e6, mwh)).toBe(false);
    expect(matchesValue(-6.18, { value: -6.18, unit: 'R$/MWh', decimals: 2, what: 'x' })).toBe(true);
  });

  test('saying the data does not cover it, in Portuguese or English, accents or not', () => {
    for (const text of ['Não há dados para novembro.', 'Nao ha dados.', 'Esses dados não estão disponíveis.', 'The data does not cover November 2023.', 'That dataset is not loaded.']) {
      expect(saysNotCovered(text)).toBe(true);
    }
    expect(saysNotCovered('A geração foi de 9.000 MWmed.')).toBe(false);
  });
});

describe('scoreAnswer', () => {
  const peak = byId('pt-peak-ne-day');
  const reruns = (q: EvalQuestion) => q.requests.map((request) => ({ request, points: 24 }));

  test('a right answer in pt-BR format passes: the number, the local time, the rerun', () => {
    const s = scoreAnswer(peak, { answer: 'O pico foi de 14.081,7 MWmed, às 22h00 (horário de Brasília).', queries: reruns(peak), citations: [] });
    expect(s).toMatchObject({ pass: true, correct: true, rerun: true, citation: true });
    expect(s.expected.map((e) => e.found)).toEqual([true, true]);
    expect(s.expected[0].matched).toBe('14.081,7 MWmed');
  });

  test('a right answer in en format passes, with the time written as 10 PM', () => {
    const s = scoreAnswer(peak, { answer: 'The peak was 14,081.7 MW at 10 PM local time.', queries: reruns(peak) });
    expect(s.correct).toBe(true);
  });

  test('a wrong number scores wrong, and so does the right number at the wrong time', () => {
    const wrong = scoreAnswer(peak, { answer: 'O pico foi de 13.950,6 MWmed às 21:00.', queries: reruns(peak) });
    expect(wrong).toMatchObject({ pass: false, correct: false });
    expect(wrong.expected.map((e) => e.found)).toEqual([false, false]);
    expect(wrong.numbersFound).toEqual(['13.950,6']);
    const late = scoreAnswer(peak, { answer: 'O pico foi de 14.081,7 MWmed às 23:00.', queries: reruns(peak) });
    expect(late.expected.map((e) => e.found)).toEqual([true, false]);
    expect(late.pass).toBe(false);
  });

  test('right numbers without a rerun or citation: correct, but missing, and not a pass', () => {
    const s = scoreAnswer(peak, { answer: 'O pico foi de 14.081,7 MWmed às 22:00.', citations: [], queries: [] });
    expect(s).toMatchObject({ correct: true, rerun: false, citation: false, pass: false });
    const cited = scoreAnswer(peak, { answer: 'O pico foi de 14.081,7 MWmed às 22:00.', citations: [{ text: 'card' }] });
    expect(cited).toMatchObject({ correct: true, rerun: false, citation: true, pass: false });
  });

  test('an energy sum in TWh or in millions of MWh is scaled to MWh; too coarse a figure is wrong', () => {
    const sum = byId('pt-sum-s-march');
    expect(scoreAnswer(sum, { answer: 'Cerca de 10,06 TWh.', queries: reruns(sum) }).correct).toBe(true);
    expect(scoreAnswer(sum, { answer: 'Foram 10.062.435 MWh.', queries: reruns(sum) }).correct).toBe(true);
    expect(scoreAnswer(sum, { answer: 'Foram 10,1 milhões de MWh.', queries: reruns(sum) }).correct).toBe(false);
  });

  test('a negative price and a date written with an ordinal', () => {
    const min = byId('pt-min-cmo-se');
    const s = scoreAnswer(min, { answer: 'O menor CMO foi −6,18 R$/MWh, em 1º de janeiro de 2022, às 7h.', queries: reruns(min) });
    expect(s.expected.map((e) => e.found)).toEqual([true, true]);
  });

  test('a no-data question passes when the answer says so and states no measurement', () => {
    const q = byId('pt-nodata-wind-nov');
    const s = scoreAnswer(q, { answer: 'Não há dados de geração eólica para novembro de 2023: o balanço carregado termina em 19/09/2023.', queries: [] });
    expect(s).toMatchObject({ pass: true, correct: true, noData: { saysNotCovered: true, inventedNumbers: [] } });
  });

  test('a no-data question answered with an invented number fails, even with the phrase', () => {
    const q = byId('pt-nodata-wind-nov');
    const invented = scoreAnswer(q, { answer: 'A geração eólica do Nordeste em novembro de 2023 foi de 9.512,3 MWmed.', queries: [] });
    expect(invented).toMatchObject({ pass: false, correct: false, noData: { saysNotCovered: false, inventedNumbers: ['9.512,3 MWmed'] } });
    const hedged = scoreAnswer(q, { answer: 'Não há dados de novembro, mas estimo 9.512,3 MWmed.' });
    expect(hedged).toMatchObject({ pass: false, noData: { saysNotCovered: true, inventedNumbers: ['9.512,3 MWmed'] } });
    const silent = scoreAnswer(q, { answer: 'Não sei.' });
    expect(silent.pass).toBe(false);
  });

  test('every question of the shipped set passes with its right answer, and fails with every number shifted by 1 %', () => {
    for (const q of SET.questions) {
      const right = scored(rightAnswer(q));
      expect(scoreAnswer(q, right)).toMatchObject({ id: q.id, pass: true });
      if (q.noData) continue;
      const shifted = right.answer.replace(/[\d.,]+(?= (MWmed|MWh|R\$\/MWh|%|MWmês))/g, (n) =>
        written(Number(q.language === 'pt' ? n.replace(/\./g, '').replace(',', '.') : n.replace(/,/g, '')) * 1.01, q.language));
      expect({ id: q.id, correct: scoreAnswer(q, { ...right, answer: shifted }).correct }).toEqual({ id: q.id, correct: false });
    }
  });
});

/** A local platform API: answers `POST /query` with `respond(question)`, records every request. */
class FakeApi {
  readonly requests: Array<{ method?: string; url?: string; headers: IncomingMessage['headers']; body: any }> = [];
  private readonly server: LocalHttpServer;
  url = '';
  private stage = '';
  constructor(private readonly respond: (question: string, res: ServerResponse, attempt: number) => void) {
    this.server = new LocalHttpServer(withBody((req, res, raw) => {
      const text = raw.toString('utf8');
      let body: any;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      this.requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      if (req.method !== 'POST' || req.url !== `${this.stage}/query`) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not Found"}');
        return;
      }
      const attempt = this.requests.filter((r) => r.body?.question === body?.question).length;
      this.respond(body?.question, res, attempt);
    }));
  }
  async start(stage = '/prod'): Promise<string> {
    this.stage = stage;
    this.url = `${await this.server.start()}${stage}`;
    return this.url;
  }
  close = () => this.server.close();
}

const json = (res: ServerResponse, body: unknown, status = 200) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

interface Run { status: number; stdout: string; stderr: string; report?: any }
async function evaluateCli(args: string[], env: Record<string, string> = {}, timeoutMs = 5000): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const status = await main(['evaluate', ...args], { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t), isTTY: false } as any }, {
    evaluate: { retryBaseMs: 1, retryMaxMs: 20, timeoutMs }, env,
  });
  return { status, stdout, stderr, report: status === 0 ? JSON.parse(stdout) : undefined };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'ons-eval-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A set file of the given questions of the shipped set. */
function setOf(...ids: string[]): string {
  const file = path.join(dir, 'set.json');
  writeFileSync(file, JSON.stringify({ version: 1, questions: ids.map(byId) }));
  return file;
}

describe('ons-data-platform evaluate', () => {
  const answers = new Map(SET.questions.map((q) => [q.question, rightAnswer(q)]));

  test('the shipped set, answered right in each language\'s format: every question passes, tokens summed, report also in --out', async () => {
    const api = new FakeApi((question, res) => json(res, answers.get(question)));
    try {
      const out = path.join(dir, 'report.json');
      const r = await evaluateCli(['--api', await api.start(), '--concurrency', '4', '--out', out]);
      expect(r.stderr).toContain(`[${SET.questions.length}/${SET.questions.length}]`);
      expect(r.status).toBe(0);
      expect(r.report.totals).toEqual({
        questions: SET.questions.length,
        passed: SET.questions.length,
        accuracy: 1,
        valueAccuracy: 1,
        citationPresence: 1,
        rerunPresence: 1,
        errors: 0,
        inputTokens: 1000 * SET.questions.length,
        outputTokens: 100 * SET.questions.length,
        modelCalls: 2 * SET.questions.length,
        toolCalls: SET.questions.length,
      });
      expect(r.report.results.map((x: any) => x.id)).toEqual(SET.questions.map((q) => q.id));
      expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(r.report);
      expect(api.requests.every((x) => x.method === 'POST' && x.url === '/prod/query' && x.headers['x-api-key'] === undefined)).toBe(true);
      expect(api.requests.map((x) => x.body)).toEqual(expect.arrayContaining(SET.questions.map((q) => ({ question: q.question }))));
    } finally {
      await api.close();
    }
  });

  test('a wrong number, a missing rerun and an invented number for a no-data question each score as such', async () => {
    const set = setOf('pt-peak-ne-day', 'en-sum-wind-ne-aug', 'en-avg-n-year', 'en-nodata-ena');
    const api = new FakeApi((question, res) => {
      const right = answers.get(question)!;
      if (question === byId('pt-peak-ne-day').question) return json(res, { ...right, answer: 'O pico foi de 13.950,6 MWmed às 21:00.' });
      if (question === byId('en-sum-wind-ne-aug').question) return json(res, { ...right, queries: [], citations: [] });
      if (question === byId('en-nodata-ena').question) return json(res, { ...right, answer: 'The ENA of the Southeast in January 2022 was 45,210 MWmed.' });
      return json(res, right);
    });
    try {
      const r = await evaluateCli(['--api', `${await api.start()}/`, '--set', set]);
      expect(r.status).toBe(0);
      const [wrong, norerun, right, invented] = r.report.results;
      expect(wrong).toMatchObject({ id: 'pt-peak-ne-day', pass: false, correct: false, numbersFound: ['13.950,6'] });
      expect(wrong.expected).toEqual([
        { what: expect.any(String), expected: '14081.735 MWmed', found: false },
        { what: expect.any(String), expected: '22:00', found: false },
      ]);
      expect(norerun).toMatchObject({ id: 'en-sum-wind-ne-aug', pass: false, correct: true, rerun: false, citation: false, queries: [] });
      expect(right).toMatchObject({ id: 'en-avg-n-year', pass: true, queries: byId('en-avg-n-year').requests });
      expect(invented).toMatchObject({ id: 'en-nodata-ena', pass: false, noData: { saysNotCovered: false, inventedNumbers: ['45,210 MWmed'] } });
      expect(r.report.totals).toMatchObject({ questions: 4, passed: 1, accuracy: 0.5, citationPresence: 0.6667, rerunPresence: 0.6667, errors: 0 });
    } finally {
      await api.close();
    }
  });

  test('429 answers are retried with backoff until the answer comes; throttled past every try is a question error', async () => {
    const set = setOf('en-avg-n-year', 'pt-avg-sin-july');
    const api = new FakeApi((question, res, attempt) => {
      if (question === byId('en-avg-n-year').question && attempt <= 2) return json(res, { message: 'Too Many Requests' }, 429);
      if (question === byId('pt-avg-sin-july').question) {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '0.01' }).end('{"message":"Too Many Requests"}');
        return;
      }
      return json(res, answers.get(question));
    });
    try {
      const r = await evaluateCli(['--api', await api.start(), '--set', set, '--concurrency', '1']);
      expect(r.status).toBe(0);
      expect(r.report.results[0]).toMatchObject({ id: 'en-avg-n-year', pass: true, attempts: 3 });
      expect(r.report.results[1]).toMatchObject({ id: 'pt-avg-sin-july', pass: false, status: 429, attempts: 5, error: expect.stringMatching(/still throttled \(429\) after every retry/) });
      expect(r.report.totals).toMatchObject({ questions: 2, passed: 1, errors: 1, accuracy: 0.5 });
      expect(api.requests).toHaveLength(3 + 5);
    } finally {
      await api.close();
    }
  });

  test('the API key from --api-key-env goes in x-api-key; a refused or missing key stops the run with what to do', async () => {
    const set = setOf('en-avg-n-year', 'pt-avg-sin-july');
    const api = new FakeApi((_question, res) => json(res, { message: 'Forbidden' }, 403));
    const ok = new FakeApi((question, res) => json(res, answers.get(question)));
    try {
      const url = await api.start();
      const noKey = await evaluateCli(['--api', url, '--set', set]);
      expect(noKey).toMatchObject({ status: 1, stdout: '' });
      expect(noKey.stderr).toMatch(/^ons-data-platform evaluate: the API refused the request \(403\): the API needs a key: --api-key-env NAME/);
      expect(api.requests).toHaveLength(1);
      const badKey = await evaluateCli(['--api', url, '--set', set, '--api-key-env', 'ONS_KEY'], { ONS_KEY: 'wrong' });
      expect(badKey.stderr).toMatch(/the key in --api-key-env is not accepted/);
      const unset = await evaluateCli(['--api', url, '--set', set, '--api-key-env', 'ONS_KEY']);
      expect(unset.stderr).toBe('ons-data-platform evaluate: the environment variable ONS_KEY (--api-key-env) is not set or empty\n');
      const good = await evaluateCli(['--api', await ok.start(), '--set', set, '--api-key-env', 'ONS_KEY'], { ONS_KEY: 'k3y' });
      expect(good.status).toBe(0);
      expect(ok.requests.map((x) => x.headers['x-api-key'])).toEqual(['k3y', 'k3y']);
    } finally {
      await api.close();
      await ok.close();
    }
  });

  test('an unreachable API, a URL that is not an API, an answer that is not JSON: exit 1 with the reason', async () => {
    const port = await closedPort();
    const unreachable = await evaluateCli(['--api', `http://127.0.0.1:${port}/prod`, '--set', setOf('en-avg-n-year')]);
    expect(unreachable).toMatchObject({ status: 1, stdout: '' });
    expect(unreachable.stderr).toBe(`ons-data-platform evaluate: cannot reach the API at http://127.0.0.1:${port}: ECONNREFUSED (check --api: the stage's base URL of a deployed stack, reachable from here)\n`);

    for (const bad of ['not a url', 'ftp://example.com/prod', 'https://example.com/prod?stage=1']) {
      const r = await evaluateCli(['--api', bad]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`--api must be an http(s) base URL without a query, such as https://abc123.execute-api.us-east-1.amazonaws.com/prod; got '${bad}'`);
    }
    expect((await evaluateCli([])).stderr).toContain('evaluate needs --api URL');
    expect((await evaluateCli(['--api', 'http://127.0.0.1:1', '--concurrency', '0'])).stderr).toContain('--concurrency needs a whole number from 1 to 16');

    const html = new FakeApi((_question, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!DOCTYPE html><html>console</html>'));
    try {
      const r = await evaluateCli(['--api', await html.start(), '--set', setOf('en-avg-n-year', 'pt-avg-sin-july')]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('the API answered 200 with text/html that is not JSON ("<!DOCTYPE html><html>console</html>"): is --api the base URL');
      const wrongStage = await evaluateCli(['--api', `${html.url}/query`, '--set', setOf('en-avg-n-year')]);
      expect(wrongStage.stderr).toMatch(/no POST \/query at http:\/\/127\.0\.0\.1:\d+\/prod\/query\/query \(404\): is --api the stage's base URL\?/);
    } finally {
      await html.close();
    }
  });

  test('a server error on one question is reported on it; the others are scored', async () => {
    const api = new FakeApi((question, res) => (question === byId('en-avg-n-year').question
      ? json(res, { message: 'Internal server error' }, 500) : json(res, answers.get(question))));
    try {
      const r = await evaluateCli(['--api', await api.start(), '--set', setOf('pt-avg-sin-july', 'en-avg-n-year')]);
      expect(r.status).toBe(0);
      expect(r.report.results[1]).toEqual({
        id: 'en-avg-n-year',
        language: 'en',
        kind: 'average',
        pass: false,
        status: 500,
        attempts: 1,
        error: 'the API answered 500: {"message":"Internal server error"}',
        question: byId('en-avg-n-year').question,
      });
      expect(r.report.totals).toMatchObject({ questions: 2, passed: 1, errors: 1 });
    } finally {
      await api.close();
    }
  });

  test('JSON without an answer, and no answer in time, are errors of their question', async () => {
    const api = new FakeApi((question, res) => {
      if (question === byId('pt-avg-sin-july').question) return json(res, answers.get(question));
      if (question === byId('en-avg-n-year').question) return json(res, { message: 'Endpoint request timed out' });
      return undefined; // never answers
    });
    try {
      const r = await evaluateCli(['--api', await api.start(), '--set', setOf('pt-avg-sin-july', 'en-avg-n-year', 'en-compare-ne-s-may')], {}, 300);
      expect(r.status).toBe(0);
      expect(r.report.results.map((x: any) => x.error)).toEqual([
        undefined, 'the API answered 200 with JSON that has no "answer" text: {"message":"Endpoint request timed out"}', 'no answer within 0.3 s',
      ]);
      expect(r.report.totals).toMatchObject({ questions: 3, passed: 1, errors: 2, accuracy: 0.3333, valueAccuracy: 0.25 });
    } finally {
      await api.close();
    }
  });

  test('a set that is not one is refused before any request', async () => {
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ version: 1, questions: [{ id: 'a', language: 'pt', question: 'x', expected: [{ value: 1, unit: 'MW', what: 'x' }], requests: [] }] }));
    const r = await evaluateCli(['--api', 'http://127.0.0.1:1/prod', '--set', file]);
    expect(r.stderr).toBe(`ons-data-platform evaluate: question set ${file}: questions[0] (a): x needs decimals or tolerance\n`);
    const missing = await evaluateCli(['--api', 'http://127.0.0.1:1/prod', '--set', path.join(dir, 'none.json')]);
    expect(missing.stderr).toMatch(/cannot read the question set .*none\.json: ENOENT/);
  });
});

describe('the bundled command', () => {
  const CLI = path.join(__dirname, '../../assets/cli/ons-data-platform/ons-data-platform.js');

  test('finds the shipped set beside its package.json and runs it against the API', async () => {
    expect(existsSync(CLI)).toBe(true);
    const answers = new Map(SET.questions.map((q) => [q.question, rightAnswer(q)]));
    const api = new FakeApi((question, res) => json(res, answers.get(question)));
    try {
      const url = await api.start();
      // Asynchronous: the server answering it runs in this process.
      const child = spawn(process.execPath, [CLI, 'evaluate', '--api', url, '--concurrency', '8'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect({ status, stderr: stderr.split('\n').filter((l) => !/^\[\d+\/\d+\] \S+ pass$/.test(l)).join('\n') }).toEqual({ status: 0, stderr: '' });
      const report = JSON.parse(stdout);
      expect(report.set).toBe(path.join(__dirname, '../../eval/questions.json'));
      expect(report.totals).toMatchObject({ questions: SET.questions.length, passed: SET.questions.length });
    } finally {
      await api.close();
    }
  }, 60_000);
});
