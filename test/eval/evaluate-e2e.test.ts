import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { main } from '../../src/cli/main';
import { EvalQuestion, isExpectedNumber, loadQuestionSet, QuestionSet } from '../../src/cli/score';
import { AnswerTools } from '../../src/knowledge/contract';
import { AnswerStack } from '../knowledge/answer-stack';
import { callTools, ConverseCall, ModelTurn, say, ToolResultView } from '../knowledge/local-bedrock';
import { queryEvent } from '../knowledge/query-event';
import { loadHandler } from '../local-aws';
import { LocalHttpServer, withBody } from '../local-http';

/**
 * `ons-data-platform evaluate` end to end: the command asks a local HTTP API whose `POST /query` is the bundled
 * question handler (real API Gateway events), over the answer stack (InfluxDB engine with real ONS files behind a
 * local Lambda, local Converse). The model is a scripted "reporter" that runs the set's own requests through the
 * `query_time_series` tool and reports the points it got: right numbers must pass, numbers off by 1 % must fail.
 */

const SET = loadQuestionSet();
/** The datasets the answer stack loads (answer-stack.ts FILES: curva_carga 2023, carga_energia 2013, balanco 2023). */
const LOADED = new Set(['curva_carga', 'carga_energia', 'balanco_energia_subsistema']);
/** Questions on loaded datasets that a reporter of points cannot pass by the set's design (a value derived from the points). */
const LEFT_OUT: Record<string, string> = {
  // The share of wind in % and the mean from monthly sums are computed from the points, not read from them.
  'en-sources-ne-wind-share': 'a share in % and a mean derived from four monthly sums',
  // The day's energy is MWmed × 23 h (the DST day), a product the reporter does not compute.
  'pt-dst-start-se': 'MWh of a 23-hour day derived from the daily MWmed',
  // Daily MWmed summed must be × 24 h to be MWh: the engine's sum of daily values is not the expected energy.
  'en-sum-ne-march-2013': 'MWh derived as the daily MWmed × 24 h',
  // The quarter's total is the sum of the three monthly sums the request answers (interval 1mo).
  'pt-sum-thermal-se-q1': 'a quarter total derived from three monthly sums',
};
const datasetOf = (request: string) => new URL(request, 'https://api.example.com').pathname.replace(/^\/timeseries\//, '');
const SUBSET: EvalQuestion[] = SET.questions.filter((q) => !(q.id in LEFT_OUT) && q.requests.every((r) => LOADED.has(datasetOf(r))));

/** The `query_time_series` input for one of the set's `GET /timeseries/...` requests. */
function toolInput(request: string): Record<string, unknown> {
  const url = new URL(request, 'https://api.example.com');
  const input: Record<string, unknown> = { dataset: datasetOf(request) };
  const filters: Record<string, string> = {};
  for (const [name, value] of url.searchParams) {
    if (['measure', 'from', 'to', 'interval', 'aggregation', 'week'].includes(name)) input[name] = value;
    else filters[name] = value;
  }
  if (Object.keys(filters).length) input.filters = filters;
  return input;
}

/** A number as written in the question's language: `14.081,735` (pt-BR) or `14,081.735` (en). */
const written = (value: number, language: 'pt' | 'en') =>
  value.toLocaleString(language === 'pt' ? 'pt-BR' : 'en-US', { maximumFractionDigits: 3 });

/** The text of a reporter that states every point it got (times `factor`), and says so when a request got none. */
function report(q: EvalQuestion, results: ToolResultView[], factor: number): string {
  const pt = q.language === 'pt';
  return results.map((r) => {
    // A tool error would be the handler refusing the set's own request: fail the test by name (hookErrors).
    if (r.status === 'error') throw new Error(`${q.id}: ${r.name} refused ${JSON.stringify(r.input)}: ${r.text}`);
    const series = JSON.parse(r.texts[0]);
    if (series.points.length === 0) {
      return pt ? `Não há dados para ${series.measure} de ${series.from} a ${series.to}: os dados carregados não cobrem esse período.`
        : `There is no data for ${series.measure} from ${series.from} to ${series.to}: the loaded data does not cover this period.`;
    }
    const lines = series.points.map((p: any) => {
      // The local time as Brasília wall clock (`2023-02-15 22:00`), or the bucket's period when aggregated.
      const when = p.period ?? `${p.local.slice(0, 10)} ${p.local.slice(11, 16)}`;
      return `${when}: ${written(p.value * factor, q.language)} ${series.unit ?? ''}`.trim();
    });
    return `${series.measure} (${series.aggregation ?? (pt ? 'valores' : 'values')}): ${lines.join('; ')}.`;
  }).join('\n');
}

/** A model that, for the question of the conversation, calls the tool with each of its requests, then reports the points. */
function reporter(factor: number): (call: ConverseCall) => ModelTurn {
  return (call) => {
    const text = call.body.messages[0].content[0].text;
    const q = SUBSET.find((x) => x.question === text);
    if (!q) throw new Error(`not a question of the subset: ${text}`);
    if (call.turn === 0) return callTools(q.requests.map((r) => ({ name: AnswerTools.QUERY_TIME_SERIES, input: toolInput(r) })));
    if (call.turn === 1) return say(report(q, call.results, factor));
    throw new Error(`${q.id}: turn ${call.turn} was not expected`);
  };
}

const stack = new AnswerStack();
let server: LocalHttpServer;
let api: string;
let dir: string;
let setFile: string;
let requestCount = 0;

/** `POST /query` as API Gateway gives it to the bundled question handler; its statusCode, headers and body back. */
function serve(handler: (e: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>) {
  return withBody((req, res, raw) => void (async () => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'POST' || path !== '/query') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'Missing Authentication Token' }));
      return;
    }
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v ?? '']));
    const event = queryEvent(raw.toString('utf8'), `eval-req-${++requestCount}`, headers);
    try {
      const result = await handler(event);
      res.writeHead(result.statusCode, result.headers as Record<string, string>).end(result.body);
    } catch (error) {
      // A handler that throws is what API Gateway answers 502 for.
      res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ message: `Internal server error: ${(error as Error).message}` }));
    }
  })());
}

beforeAll(async () => {
  await stack.start();
  const handler = loadHandler<APIGatewayProxyEvent, APIGatewayProxyResult>('query', stack.env(), join(__dirname, '..', '..', 'assets', 'knowledge'));
  server = new LocalHttpServer(serve(handler));
  api = await server.start();
  dir = mkdtempSync(join(tmpdir(), 'ons-eval-e2e-'));
  setFile = join(dir, 'subset.json');
  const subset: QuestionSet = { ...SET, description: 'the questions the answer stack\'s files answer', questions: SUBSET };
  writeFileSync(setFile, JSON.stringify(subset));
}, 300_000);
afterAll(async () => {
  await server?.close();
  await stack.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => stack.reset());
afterEach(() => expect(stack.runtime.hookErrors.map(String)).toEqual([]));

async function evaluateCli(): Promise<{ status: number; stdout: string; stderr: string; report: any }> {
  let stdout = '';
  let stderr = '';
  const status = await main(['evaluate', '--api', api, '--set', setFile, '--concurrency', '2'],
    { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t), isTTY: false } as any },
    { evaluate: { retryBaseMs: 1, retryMaxMs: 20, timeoutMs: 30_000 } });
  return { status, stdout, stderr, report: status === 0 ? JSON.parse(stdout) : undefined };
}

test('the subset: every question on the loaded files, and the no-data questions they answer', () => {
  expect(SUBSET.length).toBeGreaterThanOrEqual(20);
  expect(SUBSET.map((q) => q.id)).toEqual(expect.arrayContaining(['pt-nodata-wind-nov', 'pt-nodata-2024', 'pt-peak-ne-day', 'en-dst-end-s']));
  // Every left-out question is in the set, on the loaded files.
  for (const id of Object.keys(LEFT_OUT)) expect(SET.questions.find((q) => q.id === id)?.requests.every((r) => LOADED.has(datasetOf(r)))).toBe(true);
});

test('a faithful reporter of the engine\'s points passes every question of the subset, with its reruns', async () => {
  stack.runtime.model = reporter(1);
  const r = await evaluateCli();
  expect(r.stderr).not.toMatch(/ons-data-platform evaluate:/);
  expect(r.status).toBe(0);
  const failed = r.report.results.filter((x: any) => !x.pass).map((x: any) => ({ id: x.id, error: x.error, expected: x.expected, answer: x.answer }));
  expect(failed).toEqual([]);
  expect(r.report.totals).toMatchObject({
    questions: SUBSET.length,
    passed: SUBSET.length,
    accuracy: 1,
    valueAccuracy: 1,
    citationPresence: 1,
    rerunPresence: 1,
    errors: 0,
    modelCalls: 2 * SUBSET.length,
    toolCalls: SUBSET.reduce((n, q) => n + q.requests.length, 0),
  });
  // The reruns are the set's own requests, as the handler built them from the tool inputs.
  for (const result of r.report.results) {
    const q = SUBSET.find((x) => x.id === result.id)!;
    expect(result.queries).toHaveLength(q.requests.length);
    const parts = (request: string) => ({ dataset: datasetOf(request), params: Object.fromEntries(new URL(request, 'https://api.example.com').searchParams) });
    // The tool calls of one turn run in parallel: the queries come in the order they ended.
    const sorted = (requests: string[]) => requests.map(parts).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    expect(sorted(result.queries)).toEqual(sorted([...q.requests]));
  }
  // Every question went through the bundled handler to the engine.
  expect(stack.lambda.requests.length).toBe(SUBSET.reduce((n, q) => n + q.requests.length, 0));
}, 180_000);

test('a reporter whose every number is 1 % too high fails every numeric question; the report shows which numbers were missed', async () => {
  stack.runtime.model = reporter(1.01);
  const r = await evaluateCli();
  expect(r.status).toBe(0);
  const byId = new Map<string, any>(r.report.results.map((x: any) => [x.id, x]));
  for (const q of SUBSET) {
    const result = byId.get(q.id);
    if (q.noData) {
      // No number to get wrong: the no-data answers still pass.
      expect(result).toMatchObject({ pass: true, correct: true });
      continue;
    }
    expect(result).toMatchObject({ pass: false, correct: false, rerun: true });
    // Each expected number is reported as not found, and the wrong numbers are listed.
    for (const [i, e] of q.expected.entries()) {
      if (isExpectedNumber(e)) expect(result.expected[i]).toMatchObject({ what: e.what, found: false });
    }
    expect(result.numbersFound.length).toBeGreaterThan(0);
  }
  const noData = SUBSET.filter((q) => q.noData).length;
  expect(r.report.totals).toMatchObject({ questions: SUBSET.length, passed: noData, errors: 0, rerunPresence: 1 });
  expect(r.report.totals.accuracy).toBeCloseTo(noData / SUBSET.length, 4);
  expect(r.report.totals.valueAccuracy).toBeLessThan(1);
}, 180_000);
