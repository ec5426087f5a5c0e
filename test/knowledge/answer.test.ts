import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AnswerStack, Ask, MODEL, TIME_SERIES_FUNCTION } from './answer-stack';
import { callTools, converseErrors, ModelTurn, say, script, ToolResultView } from './local-bedrock';
import { AnswerEnv, AnswerTools, KnowledgeEnv } from '../../src/knowledge/contract';
import { FlagsEnv, metricsNamespace, OPERATION_DIMENSION, PlatformMetricDefinition, PlatformMetrics } from '../../src/runtime/contract';
import { expectSchema } from '../api/openapi';
import { ONS_DATA } from '../ons-data';
import { labelsOf } from '../timeseries/query-contract';

/**
 * The numeric path of `POST /query` end to end: the bundled question handler with real API Gateway events, the
 * real SDK clients against a local Converse (a scripted model, as strict as the service about the conversation),
 * a local Lambda running the InfluxDB engine's bundled `GET /timeseries` handler over real ONS files, the ledger
 * in dynalite and a local Retrieve. Each scenario ends with a clear answer or a clear error; nothing the model
 * writes reaches the engine unvalidated (the Lambda and InfluxDB saw no request); the limits hold; and the numbers
 * the model got are the engine's answer to the same request and the files' own figures.
 */

const stack = new AnswerStack();
let ask: Ask;

beforeAll(async () => {
  await stack.start();
  ask = stack.handler();
}, 300_000);
afterAll(() => stack.close());
beforeEach(() => stack.reset());
// A script that threw (a wrong expectation inside a model step) would show only as a 503: fail on it by name.
afterEach(() => {
  expect(stack.runtime.hookErrors.map(String)).toEqual([]);
  expect(stack.agent.hookErrors.map(String)).toEqual([]);
});

const { QUERY_TIME_SERIES, LIST_DATASETS, SEARCH_DOCUMENTS } = AnswerTools;
const NE_15_FEB = { dataset: 'curva_carga', filters: { id_subsistema: 'NE' }, from: '2023-02-15', to: '2023-02-16' };

/** A tool result as the model read it (the handler sends JSON text first, then any notice). */
const parsed = (r: ToolResultView): any => JSON.parse(r.texts[0]);

/** Hourly load rows of CURVA_CARGA_2023.csv (the file itself, not the engine): subsystem, Brasília wall clock, MWmed. */
function curvaCarga(): Array<{ sub: string; wall: string; value: number }> {
  const [, ...rows] = readFileSync(join(ONS_DATA, 'CURVA_CARGA_2023.csv'), 'utf8').split('\n').filter((l) => l.trim());
  return rows.map((l) => l.split(';')).map(([sub, , wall, value]) => ({ sub, wall, value: Number(value) }));
}

/** The points the engine answers to a rerun of `request` (a `GET /timeseries/...` path), as the tool gives them to the model. */
async function rerun(request: string): Promise<any[]> {
  const url = new URL(request, 'https://api.example.com');
  const dataset = url.pathname.replace(/^\/timeseries\//, '');
  const direct = await stack.timeseries(dataset, Object.fromEntries(url.searchParams));
  expect(direct.status).toBe(200);
  expect(direct.body.nextToken).toBeUndefined();
  return direct.body.points.map((p: any) => ({
    local: p.local ?? labelsOf('1m', Date.parse(p.time)).local,
    ...(p.period && p.period !== p.local ? { period: p.period } : {}),
    ...p.dimensions,
    value: p.value,
  }));
}

/** The EMF value of a metric the question handler wrote for this question: one document, as the contract declares the metric. */
function metric(definition: PlatformMetricDefinition): unknown {
  const docs = stack.output.emf.filter((d) => definition.name in d);
  expect(docs).toHaveLength(1);
  expect(docs[0]._aws.CloudWatchMetrics).toEqual([{
    Namespace: metricsNamespace('dev'),
    Dimensions: [['service', OPERATION_DIMENSION]],
    Metrics: expect.arrayContaining([{ Name: definition.name, Unit: definition.unit }]),
  }]);
  expect(docs[0]).toMatchObject({ service: definition.service, [OPERATION_DIMENSION]: 'query' });
  return docs[0][definition.name];
}

/** Every Converse request the handler sent was one the service accepts, and asked the configured model with the three tools. */
function expectValidConversation(): void {
  expect(stack.runtime.exchanges.length).toBeGreaterThan(0);
  for (const e of stack.runtime.exchanges) {
    expect(e.error?.error).not.toBe('ValidationException');
    expect(e.modelId).toContain(MODEL);
    expect(e.body.toolConfig.tools.map((t: any) => t.toolSpec.name).sort()).toEqual([LIST_DATASETS, QUERY_TIME_SERIES, SEARCH_DOCUMENTS].sort());
  }
}

/** Nothing reached the time-series function or the engine. */
function expectNoEngineRequest(): void {
  expect(stack.lambda.requests).toEqual([]);
  expect(stack.engineQueries()).toBe(0);
}

describe('answers from the tools', () => {
  test('a multi-step loop: catalog, then the series; the answer holds the file\'s own peak, the query reruns to the same points', async () => {
    let peak: any;
    let series: any;
    stack.runtime.model = script(
      callTools([{ name: LIST_DATASETS, input: {} }], { usage: { inputTokens: 900, outputTokens: 40 } }),
      (results) => {
        const catalog = parsed(results[0]);
        const curva = catalog.datasets.find((d: any) => d.id === 'curva_carga');
        // The catalog says what is loaded: 2023 (from the ledger, in Brasília time).
        expect(curva.loaded.from).toMatch(/^2023-01-01/);
        expect(curva.measures.map((m: any) => m.name)).toContain('val_cargaenergiahomwmed');
        return callTools([{ name: QUERY_TIME_SERIES, input: NE_15_FEB }], { usage: { inputTokens: 1500, outputTokens: 60 } });
      },
      (results) => {
        series = parsed(results[0]);
        peak = series.points.reduce((a: any, b: any) => (b.value > a.value ? b : a));
        return say(`O pico de carga do Nordeste em 15/02/2023 foi ${peak.value} ${series.unit} às ${peak.local}.`, { inputTokens: 2400, outputTokens: 35 });
      },
    );
    const { status, body } = await ask({ question: 'Qual foi o pico de carga horária do Nordeste em 15 de fevereiro de 2023, e a que horas?' });
    expect(status).toBe(200);
    expectValidConversation();

    // The file's own peak, read here from the CSV.
    const day = curvaCarga().filter((r) => r.sub === 'NE' && r.wall.startsWith('2023-02-15'));
    expect(day).toHaveLength(24);
    const filePeak = day.reduce((a, b) => (b.value > a.value ? b : a));
    expect(peak.value).toBe(filePeak.value);
    expect(peak.local).toBe(`${filePeak.wall.slice(0, 10)}T${filePeak.wall.slice(11, 16)}-03:00`);
    expect(body.answer).toContain(String(filePeak.value));

    expect(body).toMatchObject({ answeredFrom: 'tools', sessionId: '', citations: [] });
    expect(body.queries).toEqual([{ request: expect.stringMatching(/^\/timeseries\/curva_carga\?/), dataset: 'curva_carga', measure: 'val_cargaenergiahomwmed', unit: expect.any(String), points: 24 }]);
    // The rerun answers the points the model read.
    expect(series.points).toHaveLength(24);
    expect(await rerun(body.queries[0].request)).toEqual(series.points);

    // Usage: the fake's, summed; the same in the metrics.
    expect(body.usage).toEqual({ inputTokens: 4800, outputTokens: 135, modelCalls: 3, toolCalls: 2 });
    expect(stack.runtime.usage).toEqual({ inputTokens: 4800, outputTokens: 135, calls: 3 });
    expect(metric(PlatformMetrics.MODEL_INPUT_TOKENS)).toBe(4800);
    expect(metric(PlatformMetrics.MODEL_OUTPUT_TOKENS)).toBe(135);
    expect(metric(PlatformMetrics.TOOL_CALLS)).toBe(2);
    // The engine was invoked once, by its alias ARN, with a GET /timeseries proxy event.
    expect(stack.lambda.requests).toEqual([expect.objectContaining({ functionName: TIME_SERIES_FUNCTION, qualifier: 'live', invocationType: 'RequestResponse', status: 200 })]);
    expect(stack.lambda.requests[0].payload).toMatchObject({ httpMethod: 'GET', resource: '/timeseries/{dataset}', pathParameters: { dataset: 'curva_carga' } });
    // What the shipped OpenAPI document promises.
    expectSchema('QueryResponse', body);
  });

  test('parallel calls in one message (two periods and the documents): one answered from data, one not covered, citations kept', async () => {
    stack.agent.onRetrieve = () => ({
      body: {
        retrievalResults: [{
          content: { text: 'Carga de energia: média horária em MWmed.' },
          location: { type: 'S3', s3Location: { uri: 's3://ons-raw/knowledge/documents/DicionarioDados_CurvaCarga.pdf' } },
          score: 0.8,
        }],
      },
    });
    const month = (year: number) => ({ dataset: 'curva_carga', filters: { id_subsistema: 'S' }, from: `${year}-01-01`, to: `${year}-02-01`, interval: '1mo', aggregation: 'avg' });
    let seen: any[] = [];
    stack.runtime.model = script(
      callTools([
        { name: QUERY_TIME_SERIES, input: month(2022) },
        { name: QUERY_TIME_SERIES, input: month(2023) },
        { name: SEARCH_DOCUMENTS, input: { query: 'carga horária unidade' } },
      ]),
      (results) => {
        seen = results.map(parsed);
        return say(seen[1].points.length ? `Janeiro de 2023: ${seen[1].points[0].value} MWmed; janeiro de 2022 não está carregado.` : 'sem dados');
      },
    );
    const { status, body } = await ask({ question: 'Compare a carga média do Sul em janeiro de 2022 e janeiro de 2023.' });
    expect(status).toBe(200);
    expectValidConversation();
    // All three results came back in one user message, each joined to its call.
    expect(stack.runtime.exchanges).toHaveLength(2);
    expect(seen).toHaveLength(3);
    expect(seen[0].points).toEqual([]);
    expect(seen[0].note).toMatch(/does not cover/);
    const january = curvaCarga().filter((r) => r.sub === 'S' && r.wall.startsWith('2023-01'));
    expect(january).toHaveLength(31 * 24);
    const average = january.reduce((s, r) => s + r.value, 0) / january.length;
    expect(seen[1].points).toHaveLength(1);
    expect(seen[1].points[0].value).toBeCloseTo(average, 6);
    expect(seen[2].passages).toEqual([expect.objectContaining({ text: 'Carga de energia: média horária em MWmed.' })]);
    expect(body.queries.map((q: any) => q.points)).toEqual([0, 1]);
    expect(body.citations).toEqual([{ text: 'Carga de energia: média horária em MWmed.', source: { bucket: 'ons-raw', key: 'knowledge/documents/DicionarioDados_CurvaCarga.pdf' } }]);
    expect(stack.lambda.requests).toHaveLength(2);
    expect(stack.agent.retrieves).toHaveLength(1);
    expect(body.usage.toolCalls).toBe(3);
  });

  test.each<[string, Record<string, unknown>]>([
    ['daily max of one subsystem', { dataset: 'curva_carga', filters: { id_subsistema: 'NE' }, from: '2023-02-01', to: '2023-03-01', interval: '1d', aggregation: 'max' }],
    ['ONS weeks, every subsystem', { dataset: 'curva_carga', from: '2023-01-07', to: '2023-02-04', interval: '1w', week: 'ons', aggregation: 'avg' }],
    ['monthly wind generation sum of a multi-measure dataset', { dataset: 'balanco_energia_subsistema', measure: 'val_gereolica', from: '2023-01-01', to: '2024-01-01', interval: '1mo', aggregation: 'sum', filters: { id_subsistema: 'NE' } }],
    ['raw hours of a day', NE_15_FEB],
    ['a period with an offset, across subsystems', { dataset: 'carga_energia', from: '2013-02-10T00:00-02:00', to: '2013-02-20T00:00-03:00', interval: '1d' }],
  ])('the tool result is the engine\'s answer to the same GET /timeseries request: %s', async (_name, input) => {
    let result: any;
    stack.runtime.model = script(callTools([{ name: QUERY_TIME_SERIES, input }]), (results) => {
      result = parsed(results[0]);
      return say('ok');
    });
    const { status, body } = await ask({ question: 'números, por favor' });
    expect(status).toBe(200);
    expect(stack.runtime.exchanges[1].body.messages[2].content[0].toolResult.status).toBe('success');
    expect(result.points.length).toBeGreaterThan(0);
    expect(body.queries).toHaveLength(1);
    expect(body.queries[0].points).toBe(result.points.length);
    expect(await rerun(body.queries[0].request)).toEqual(result.points);
  });
});

describe('untrusted tool input: refused before the engine, the refusal goes back to the model', () => {
  /** A model that makes one call, then answers with the error text it got. */
  function oneCall(name: string, input: unknown): { results: () => ToolResultView[] } {
    let got: ToolResultView[] = [];
    stack.runtime.model = script(callTools([{ name, input }]), (results) => {
      got = results;
      return say(`Não consegui: ${parsed(results[0]).error}`);
    });
    return { results: () => got };
  }

  test('an unknown dataset: a tool error naming the datasets there are; the answer says so', async () => {
    const call = oneCall(QUERY_TIME_SERIES, { dataset: 'preco_spot', from: '2023-01-01', to: '2023-02-01' });
    const { status, body } = await ask({ question: 'Qual o preço spot de janeiro?' });
    expect(status).toBe(200);
    expectValidConversation();
    expectNoEngineRequest();
    const [result] = call.results();
    expect(result.status).toBe('error');
    expect(parsed(result).error).toMatch(/dataset must be one of .*curva_carga/);
    expect(body.answer).toMatch(/^Não consegui: dataset must be one of/);
    expect(body.queries).toEqual([]);
    expect(body.usage.toolCalls).toBe(1);
  });

  test('ten years of raw points: refused before the engine; the same years aggregated are answered', async () => {
    let refusal: any;
    let yearly: any;
    stack.runtime.model = script(
      callTools([{ name: QUERY_TIME_SERIES, input: { dataset: 'curva_carga', from: '2013-01-01', to: '2023-01-01' } }]),
      (results) => {
        refusal = results[0];
        expect(stack.lambda.requests).toEqual([]);
        return callTools([{ name: QUERY_TIME_SERIES, input: { dataset: 'curva_carga', from: '2013-01-01', to: '2024-01-01', interval: '1y', aggregation: 'max' } }]);
      },
      (results) => {
        yearly = parsed(results[0]);
        return say('ok');
      },
    );
    const { status, body } = await ask({ question: 'Todos os valores horários dos últimos dez anos' });
    expect(status).toBe(200);
    expectValidConversation();
    expect(refusal.status).toBe('error');
    expect(parsed(refusal).error).toMatch(/points, more than the \d+ a question may read/);
    // Only the aggregated request reached the engine: one invocation.
    expect(stack.lambda.requests).toHaveLength(1);
    expect(stack.lambda.requests[0].payload.queryStringParameters).toMatchObject({ interval: '1y', aggregation: 'max' });
    // 2023 is the only year loaded: one point per subsystem.
    expect(yearly.points.map((p: any) => p.id_subsistema).sort()).toEqual(['N', 'NE', 'S', 'SE']);
    expect(body.queries).toHaveLength(1);
  });

  test.each<[string, Record<string, unknown>]>([
    ['a catalog dataset the time-series store does not serve', { ...NE_15_FEB, dataset: 'cmo_semanal' }],
    ['SQL in a filter value', { ...NE_15_FEB, filters: { id_subsistema: "NE' OR 1=1 --" } }],
    ['InfluxQL in a filter value', { ...NE_15_FEB, filters: { id_subsistema: 'NE"; DROP MEASUREMENT curva_carga' } }],
    ['InfluxQL in the measure', { ...NE_15_FEB, measure: 'val_cargaenergiahomwmed" FROM /.*/ --' }],
    ['SQL in the dataset', { ...NE_15_FEB, dataset: "curva_carga' UNION SELECT 1 --" }],
    ['a filter naming a parameter', { ...NE_15_FEB, filters: { nextToken: 'abc' } }],
    ['an unknown dimension', { ...NE_15_FEB, filters: { "id_subsistema = 'NE' OR 1": 'x' } }],
    ['an unknown field', { ...NE_15_FEB, sql: 'DROP MEASUREMENT curva_carga' }],
    ['a time that is not one', { ...NE_15_FEB, from: "2023-02-15' OR '1'='1" }],
    ['a number instead of a string', { ...NE_15_FEB, from: 20230215 }],
  ])('%s: a tool error, no request to Lambda or InfluxDB, the value not echoed', async (_name, input) => {
    const call = oneCall(QUERY_TIME_SERIES, input);
    const { status } = await ask({ question: 'carga do NE' });
    expect(status).toBe(200);
    expectValidConversation();
    expectNoEngineRequest();
    const [result] = call.results();
    expect(result.status).toBe('error');
    const filters = (input.filters ?? {}) as object;
    for (const value of [...Object.values(input), ...Object.values(filters), ...Object.keys(filters)]) {
      if (typeof value === 'string' && /['";=]/.test(value)) expect(result.text).not.toContain(value);
    }
    // The measurement is still there.
    expect((await stack.timeseries('curva_carga', { from: '2023-02-15T00:00-03:00', to: '2023-02-16T00:00-03:00', id_subsistema: 'NE' })).body.points).toHaveLength(24);
  });

  test('an unknown tool name: a tool error, the loop goes on', async () => {
    const call = oneCall('run_sql', { sql: 'SELECT 1' });
    const { status } = await ask({ question: 'q' });
    expect(status).toBe(200);
    expect(parsed(call.results()[0]).error).toMatch(/no such tool/);
    expectNoEngineRequest();
  });
});

describe('limits', () => {
  test('a model that never stops calling tools: at most MAX_TOOL_CALLS, one last turn to answer, then 502 AnswerIncomplete', async () => {
    const limited = stack.handler({ [AnswerEnv.MAX_TOOL_CALLS]: '3' });
    stack.runtime.model = () => callTools([{ name: LIST_DATASETS, input: {} }]);
    const { status, body } = await limited({ question: 'de novo e de novo' });
    expect(status).toBe(502);
    expectSchema('Error', body);
    expect(body.error.code).toBe('AnswerIncomplete');
    expectValidConversation();
    // Three tool rounds, then the turn that was told to answer.
    expect(stack.runtime.exchanges).toHaveLength(4);
    // The notice rides in the tool results of the last round (a text block beside them, some model families refuse).
    const last = stack.runtime.exchanges[3].body.messages.at(-1);
    expect(last.content).toHaveLength(1);
    expect(last.content[0].toolResult.content.at(-1).text).toMatch(/No more tool calls/);
    expect(metric(PlatformMetrics.TOOL_CALLS)).toBe(3);
  });

  test('the model obeys the last turn: a 200 answer after exactly MAX_TOOL_CALLS calls; a parallel overflow is answered with errors', async () => {
    const limited = stack.handler({ [AnswerEnv.MAX_TOOL_CALLS]: '3' });
    let second: ToolResultView[] = [];
    stack.runtime.model = script(
      callTools([{ name: LIST_DATASETS, input: {} }, { name: LIST_DATASETS, input: {} }]),
      callTools([{ name: QUERY_TIME_SERIES, input: NE_15_FEB }, { name: QUERY_TIME_SERIES, input: { ...NE_15_FEB, filters: { id_subsistema: 'SE' } } }]),
      (results) => {
        second = results;
        return say('Só consegui o Nordeste.');
      },
    );
    const { status, body } = await limited({ question: 'NE e SE' });
    expect(status).toBe(200);
    expectValidConversation();
    expect(second.map((r) => r.status ?? 'success')).toEqual(['success', 'error']);
    expect(parsed(second[1]).error).toMatch(/limit/);
    expect(stack.lambda.requests).toHaveLength(1);
    expect(body.usage).toMatchObject({ toolCalls: 3, modelCalls: 3 });
  });

  test('a model family that wants tool results alone in their turn (Llama) gets the last-turn notice inside them, and answers', async () => {
    const llama = 'meta.llama3-1-70b-instruct-v1:0';
    stack.runtime.toolResultTurns = (id) => id.includes('meta.llama');
    try {
      const limited = stack.handler({ [AnswerEnv.MAX_TOOL_CALLS]: '2', [KnowledgeEnv.MODEL_ARN]: llama });
      stack.runtime.model = script(
        callTools([{ name: LIST_DATASETS, input: {} }]),
        callTools([{ name: QUERY_TIME_SERIES, input: NE_15_FEB }]),
        (results) => say(`Pico: ${Math.max(...parsed(results[0]).points.map((p: any) => p.value))} MWmed`),
      );
      const { status, body } = await limited({ question: 'pico do NE em 15/02/2023' });
      expect({ status, error: body.error }).toEqual({ status: 200, error: undefined });
      expect(stack.runtime.exchanges.map((e) => e.error)).toEqual([undefined, undefined, undefined]);
      expect(stack.runtime.exchanges[0].modelId).toContain(llama);
      expect(body.usage).toMatchObject({ toolCalls: 2, modelCalls: 3 });
    } finally {
      stack.runtime.toolResultTurns = () => false;
    }
  });

  test('a slow model: the deadline ends the question with 504 AnswerTimeout, inside the configured time', async () => {
    const hurried = stack.handler({ [AnswerEnv.DEADLINE_MS]: '1000' });
    stack.runtime.model = script(
      callTools([{ name: LIST_DATASETS, input: {} }]),
      { ...say('late'), delayMs: 3000 },
    );
    const started = Date.now();
    const { status, body } = await hurried({ question: 'devagar' });
    expect(status).toBe(504);
    expect(body.error.code).toBe('AnswerTimeout');
    expect(Date.now() - started).toBeLessThan(2500);
  });

  test('a stalled engine: the tool call ends at the deadline, and so does the question (504), well before the engine gives up', async () => {
    const hurried = stack.handler({ [AnswerEnv.DEADLINE_MS]: '1500' });
    stack.proxy.failNext('stall', 1, '/query');
    stack.runtime.model = script(callTools([{ name: QUERY_TIME_SERIES, input: NE_15_FEB }]), say('tarde demais'));
    const started = Date.now();
    const { status, body } = await hurried({ question: 'pico do NE' });
    const elapsed = Date.now() - started;
    expect(status).toBe(504);
    expect(body.error.code).toBe('AnswerTimeout');
    expect(elapsed).toBeLessThan(2000);
    // The model was not asked again: no time was left for it.
    expect(stack.runtime.exchanges).toHaveLength(1);
    expect(stack.lambda.requests).toHaveLength(1);
    // Let the stalled engine call end (its own 2 s timeout) before the next test.
    await new Promise((resolve) => setTimeout(resolve, 2500 - elapsed));
  });

  test.each<[string, ModelTurn]>([
    ['no content at all', { content: [], stopReason: 'end_turn' }],
    ['tool calls with stop reason end_turn (nothing to run, no text)', { ...callTools([{ name: LIST_DATASETS, input: {} }]), stopReason: 'end_turn' }],
    ['text cut at the token limit (max_tokens)', { content: [{ text: 'O pico foi de 14.0' }], stopReason: 'max_tokens' }],
  ])('a model that ends without a whole answer (%s): 502 AnswerIncomplete, not a partial answer', async (_name, turn) => {
    stack.runtime.model = script(turn);
    const { status, body } = await ask({ question: 'q' });
    expect(status).toBe(502);
    expect(body.error.code).toBe('AnswerIncomplete');
    expectNoEngineRequest();
  });

  test('a throttled model: 429 TooManyRequests, the service\'s text not passed on', async () => {
    stack.runtime.model = () => converseErrors.throttling();
    const { status, body } = await ask({ question: 'q' });
    expect(status).toBe(429);
    expectSchema('Error', body);
    expect(body.error.code).toBe('TooManyRequests');
    expect(JSON.stringify(body)).not.toContain('Too many requests, please wait');
    expectNoEngineRequest();
  });

  test('throttled in the middle of a loop: 429, after the one engine call already made', async () => {
    stack.runtime.model = script(callTools([{ name: QUERY_TIME_SERIES, input: NE_15_FEB }]), converseErrors.throttling());
    const { status, body } = await ask({ question: 'q' });
    expect(status).toBe(429);
    expect(body.error.code).toBe('TooManyRequests');
    expect(stack.lambda.requests).toHaveLength(1);
  });

  test.each<[string, () => ModelTurn, number, string]>([
    ['access denied', () => converseErrors.accessDenied(), 503, 'ModelNotAccessible'],
    ['model timeout', () => converseErrors.timeout(), 503, 'ModelUnavailable'],
    ['service unavailable', () => converseErrors.unavailable(), 503, 'ModelUnavailable'],
  ])('a model error (%s): a clear error, never the service\'s text', async (_name, turn, code, error) => {
    stack.runtime.model = turn;
    const { status, body } = await ask({ question: 'q' });
    expect(status).toBe(code);
    expect(body.error.code).toBe(error);
  });

  test('the time-series function throttled or failing: a tool error to the model, which answers without the figure', async () => {
    stack.lambda.throttle = () => true;
    let got: any;
    stack.runtime.model = script(callTools([{ name: QUERY_TIME_SERIES, input: NE_15_FEB }]), (results) => {
      got = results[0];
      return say('O valor não está disponível agora.');
    });
    const { status, body } = await ask({ question: 'q' });
    expect(status).toBe(200);
    expect(got.status).toBe('error');
    expect(got.text).not.toMatch(/Rate Exceeded|TooManyRequests|arn:aws/);
    expect(body.queries).toEqual([]);
    expect(stack.engineQueries()).toBe(0);
  });
});

describe('the engine failing, and the guardrail', () => {
  test.each<[string, number, string, RegExp]>([
    ['refuses the read token (the engine answers 500)', 401, JSON.stringify({ error: 'authorization failed' }), /answered 500/],
    ['is busy (the engine answers 503)', 503, JSON.stringify({ error: 'unavailable' }), /answered 503/],
  ])('InfluxDB %s: a tool error naming the request and status, nothing of the engine\'s text; the model answers without the figure', async (_name, status, text, expected) => {
    stack.proxy.failNext({ status, body: text }, 1, '/query');
    let got: ToolResultView | undefined;
    stack.runtime.model = script(callTools([{ name: QUERY_TIME_SERIES, input: NE_15_FEB }]), (results) => {
      got = results[0];
      return say('O número não está disponível agora.');
    });
    const { status: answered, body } = await ask({ question: 'pico do NE' });
    expect(answered).toBe(200);
    expect(got!.status).toBe('error');
    expect(parsed(got!).error).toMatch(expected);
    expect(parsed(got!).error).toMatch(/^GET \/timeseries\/curva_carga\?/);
    expect(got!.text).not.toMatch(/authorization failed|unavailable|influx/i);
    expect(body.queries).toEqual([]);
    expect(stack.lambda.requests).toHaveLength(1);
  });

  test('with a guardrail: every Converse call carries it; an intervention is the answer, with the usage', async () => {
    const guarded = stack.handler({ [AnswerEnv.GUARDRAIL_ID]: 'gr-abc123', [AnswerEnv.GUARDRAIL_VERSION]: '2' });
    stack.runtime.model = script(
      callTools([{ name: LIST_DATASETS, input: {} }]),
      { content: [{ text: 'Não posso responder a isso.' }], stopReason: 'guardrail_intervened', usage: { inputTokens: 10, outputTokens: 5 } },
    );
    const { status, body } = await guarded({ question: 'algo proibido' });
    expect(status).toBe(200);
    expect(body.answer).toBe('Não posso responder a isso.');
    expect(stack.runtime.exchanges).toHaveLength(2);
    for (const e of stack.runtime.exchanges) expect(e.body.guardrailConfig).toEqual({ guardrailIdentifier: 'gr-abc123', guardrailVersion: '2' });
    expect(body.usage).toMatchObject({ modelCalls: 2, toolCalls: 1 });
  });
});

describe('the documents path', () => {
  test('numericAnswers off: RetrieveAndGenerate, no Converse call', async () => {
    const ragOnly = stack.handler({ [FlagsEnv.PROFILE]: 'rag-only' });
    stack.agent.onRetrieveAndGenerate = () => ({ body: { sessionId: 'session-rag', output: { text: 'Dos documentos.' }, citations: [] } });
    const { status, body } = await ragOnly({ question: 'Qual foi o pico de carga do Nordeste?' });
    expect(status).toBe(200);
    expect(body).toMatchObject({ answer: 'Dos documentos.', sessionId: 'session-rag', answeredFrom: 'documents' });
    expect(body.usage).toBeUndefined();
    expect(stack.runtime.exchanges).toEqual([]);
    expect(stack.agent.requests.map((r) => r.path)).toEqual(['/retrieveAndGenerate']);
    expectNoEngineRequest();
  });

  test('a follow-up (sessionId) stays with RetrieveAndGenerate', async () => {
    stack.agent.onRetrieveAndGenerate = () => ({ body: { sessionId: 'session-rag', output: { text: 'Seguindo.' }, citations: [] } });
    const { status, body } = await ask({ question: 'e no Sul?', sessionId: 'session-rag' });
    expect(status).toBe(200);
    expect(body.answeredFrom).toBe('documents');
    expect(stack.runtime.exchanges).toEqual([]);
  });
});
