import { BedrockAgentRuntimeClient, RetrieveCommand } from '@aws-sdk/client-bedrock-agent-runtime';
import {
  BedrockRuntimeClient, ContentBlock, ConverseCommand, type ConverseCommandOutput, Message, Tool, ToolResultBlock, ToolUseBlock,
} from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { buildFilter, citationKey, citationOf, configFromEnv, FORBIDDEN, isCatalogDataset, isObject, mapBedrockError } from './query';
import { LedgerEnv } from '../../ledger/contract';
import { listDatasets } from '../../ledger/runtime/datasets';
import { bucketOf } from '../../ons/calendar';
import { CATALOG, SUBSYSTEMS } from '../../ons/catalog';
import { brasiliaToUtc } from '../../ons/time';
import { PlatformMetrics } from '../../runtime/contract';
import { integerEnv } from '../../runtime/handler';
import { RequestError } from '../../runtime/http';
import { log, recordMetric, traced } from '../../runtime/telemetry';
import { AGGREGATIONS, INTERVALS, TimeSeriesResponse } from '../../timeseries/contract';
import { parseRequest as parseTimeSeriesRequest, timeSeriesRequestEvent } from '../../timeseries/runtime/request';
import {
  AnswerEnv, AnswerLimitRanges, AnswerLimits, AnswerQuery, AnswerTools, AnswerUsage, KnowledgeCitation, KnowledgeQueryRequest, KnowledgeQueryResponse,
} from '../contract';

/**
 * `POST /query` with numbers: the model (Bedrock Converse) calls three tools the handler runs: `query_time_series`
 * (the very `GET /timeseries/{dataset}` request, invoked on the time-series query function, so the same validation
 * and engine answer), `list_datasets` (the catalog and what the ledger says is loaded) and `search_documents`
 * (Retrieve on the knowledge base), until it answers.
 *
 * Decisions:
 * - Every tool input is untrusted: unknown fields are refused, the time-series request goes through the API's own
 *   parser before the function is invoked (which parses it again), and a refusal goes back to the model as a tool
 *   error with the parser's message (it never echoes the value).
 * - No raw years: a request whose points (period ÷ interval or grain, times the subsystems left unfiltered) would
 *   pass `maxPoints` is refused before the engine is asked; an answer over it (or paged) is refused too.
 * - Bounded: at most `maxToolCalls` tool calls (then the model gets errors and one last turn to answer), the whole
 *   exchange inside `deadlineMs` (each model call and tool call gets what is left).
 * - Times the model writes are Brasília wall-clock (`YYYY-MM-DD`, `YYYY-MM-DDTHH:MM`), or instants with an offset;
 *   the reruns carry them with their offset, and every point comes back with its local time.
 * - A follow-up (`sessionId`) stays with RetrieveAndGenerate, whose session it is: this path keeps no session.
 */

export interface AnswerConfig {
  readonly modelId: string;
  readonly knowledgeBaseId: string;
  readonly numberOfResults: number;
  readonly timeSeriesFunction: string;
  readonly timeSeriesDatasets: ReadonlySet<string>;
  readonly ledgerTable: string;
  readonly maxToolCalls: number;
  readonly maxPoints: number;
  readonly deadlineMs: number;
  readonly guardrail?: { readonly id: string; readonly version: string };
}

export interface AnswerDeps {
  readonly runtime: BedrockRuntimeClient;
  readonly agentRuntime: BedrockAgentRuntimeClient;
  readonly lambda: LambdaClient;
  readonly ledger: DynamoDBDocumentClient;
  readonly config: AnswerConfig;
}

/** The numeric path's configuration, or undefined when no time-series function is set (RetrieveAndGenerate only). */
export function answerConfigFromEnv(account?: string): AnswerConfig | undefined {
  const timeSeriesFunction = process.env[AnswerEnv.TIME_SERIES_FUNCTION];
  if (!timeSeriesFunction) return undefined;
  const base = configFromEnv(account);
  const ledgerTable = process.env[LedgerEnv.TABLE];
  if (!ledgerTable) throw new Error(`${LedgerEnv.TABLE} is not set (the catalog tool reads the ledger)`);
  let datasets: unknown;
  try {
    datasets = JSON.parse(process.env[AnswerEnv.TIME_SERIES_DATASETS] ?? '[]');
  } catch {
    datasets = undefined;
  }
  if (!Array.isArray(datasets) || !datasets.every((d) => typeof d === 'string')) throw new Error(`${AnswerEnv.TIME_SERIES_DATASETS} must be a JSON array of dataset ids`);
  const guardrailId = process.env[AnswerEnv.GUARDRAIL_ID];
  const guardrailVersion = process.env[AnswerEnv.GUARDRAIL_VERSION];
  if (!!guardrailId !== !!guardrailVersion) throw new Error(`${AnswerEnv.GUARDRAIL_ID} and ${AnswerEnv.GUARDRAIL_VERSION} go together`);
  return {
    modelId: base.modelArn,
    knowledgeBaseId: base.knowledgeBaseId,
    numberOfResults: base.numberOfResults,
    timeSeriesFunction,
    timeSeriesDatasets: new Set(datasets as string[]),
    ledgerTable,
    maxToolCalls: integerEnv(AnswerEnv.MAX_TOOL_CALLS, AnswerLimits.MAX_TOOL_CALLS, ...AnswerLimitRanges.MAX_TOOL_CALLS),
    maxPoints: integerEnv(AnswerEnv.MAX_POINTS, AnswerLimits.MAX_POINTS, ...AnswerLimitRanges.MAX_POINTS),
    deadlineMs: integerEnv(AnswerEnv.DEADLINE_MS, AnswerLimits.DEADLINE_MS, ...AnswerLimitRanges.DEADLINE_MS),
    ...(guardrailId && guardrailVersion ? { guardrail: { id: guardrailId, version: guardrailVersion } } : {}),
  };
}

/** The clients of the numeric path: endpoints from the environment (tests), short timeouts (API Gateway waits 29 s). */
export function createAnswerDeps(config: AnswerConfig, agentRuntime: BedrockAgentRuntimeClient): AnswerDeps {
  const runtimeEndpoint = process.env[AnswerEnv.RUNTIME_ENDPOINT] || undefined;
  const lambdaEndpoint = process.env[AnswerEnv.LAMBDA_ENDPOINT] || undefined;
  const requestHandler = { connectionTimeout: 2_000, requestTimeout: 10_000, throwOnRequestTimeout: true };
  return {
    config,
    agentRuntime,
    runtime: traced(new BedrockRuntimeClient({ ...(runtimeEndpoint ? { endpoint: runtimeEndpoint } : {}) })),
    lambda: traced(new LambdaClient({ ...(lambdaEndpoint ? { endpoint: lambdaEndpoint } : {}), requestHandler })),
    ledger: DynamoDBDocumentClient.from(traced(new DynamoDBClient({ requestHandler: { ...requestHandler, requestTimeout: 5_000 } }))),
  };
}

/** What the model is told: the tools' rules and the ONS conventions it cannot guess. */
export function systemPrompt(now: number): string {
  const today = bucketOf('1d', now).local;
  const subsystems = Object.entries(SUBSYSTEMS).map(([code, name]) => `${code} = ${name.pt} / ${name.en}`).join('; ');
  return [
    'You answer questions about the Brazilian electricity system with data published by ONS (Operador Nacional do Sistema Elétrico).',
    `Use ${AnswerTools.LIST_DATASETS} to learn which datasets, measures, units and periods are loaded; ${AnswerTools.QUERY_TIME_SERIES} for every number; ${AnswerTools.SEARCH_DOCUMENTS} for definitions, methodology and text.`,
    'Let the engine aggregate (interval and aggregation): ask for raw points only over short periods.',
    'Times are Brasília local time (America/Sao_Paulo): from is inclusive, to is exclusive. The ONS operative week runs Saturday to Friday (interval 1w, week ons).',
    `Subsystems (id_subsistema): ${subsystems}.`,
    'Average power in MWmed over a period, times the hours of the period, is energy in MWh.',
    'Give every number with its unit and its local time or period. If the tools show the data does not cover the question (a period not loaded, a dataset absent), say so: never invent or estimate a figure.',
    'Answer in the language of the question.',
    `Today is ${today} in Brasília.`,
  ].join('\n');
}

/** The tools, as Converse declares them. */
export function toolSpecs(datasets: readonly string[]): Tool[] {
  const text = (description: string, extra: Record<string, unknown> = {}) => ({ type: 'string', description, ...extra });
  return [
    {
      toolSpec: {
        name: AnswerTools.LIST_DATASETS,
        description: 'The datasets of the platform: measures with units, identity dimensions (with known values), time grain, and the period loaded.',
        inputSchema: { json: { type: 'object', properties: {}, additionalProperties: false } },
      },
    },
    {
      toolSpec: {
        name: AnswerTools.QUERY_TIME_SERIES,
        description: 'Runs GET /timeseries/{dataset}: points of one measure over a period, raw or aggregated per interval on the Brasília calendar.',
        inputSchema: {
          json: {
            type: 'object',
            required: ['dataset', 'from', 'to'],
            additionalProperties: false,
            properties: {
              dataset: text('Dataset id', { enum: [...datasets] }),
              measure: text('Measure name (required when the dataset has several)'),
              filters: { type: 'object', description: 'Identity dimension values, e.g. {"id_subsistema": "NE"}', additionalProperties: { type: 'string' } },
              from: text('Start, inclusive: YYYY-MM-DD or YYYY-MM-DDTHH:MM in Brasília time'),
              to: text('End, exclusive: YYYY-MM-DD or YYYY-MM-DDTHH:MM in Brasília time'),
              interval: text('Bucket size; omit for raw points', { enum: [...INTERVALS] }),
              aggregation: text('Aggregation per bucket (default avg)', { enum: [...AGGREGATIONS] }),
              week: text('With interval 1w: ons (Saturday to Friday, default) or iso', { enum: ['ons', 'iso'] }),
            },
          },
        },
      },
    },
    {
      toolSpec: {
        name: AnswerTools.SEARCH_DOCUMENTS,
        description: 'Searches the documents and data cards of the knowledge base; returns passages with their source.',
        inputSchema: {
          json: {
            type: 'object',
            required: ['query'],
            additionalProperties: false,
            properties: { query: text('What to search for (1 to 1000 characters)'), dataset: text('Only data cards of this catalog dataset') },
          },
        },
      },
    },
  ] as Tool[];
}

/** A tool call refused or failed: the message goes back to the model (and never holds the input). */
class ToolError extends Error {}

function onlyFields(input: Record<string, unknown>, fields: readonly string[]): void {
  const unknown = Object.keys(input).find((k) => !fields.includes(k));
  if (unknown !== undefined) throw new ToolError(`unknown field; accepted: ${fields.join(', ')}`);
}

const LOCAL_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}))?$/;

/** A time the model wrote: Brasília wall-clock as the instant with its offset; anything else is left to the API's parser. */
export function localToInstant(value: string): string {
  const m = LOCAL_TIME.exec(value);
  if (!m) return value;
  const [, y, mo, d, h = '00', mi = '00'] = m;
  const wall = Date.UTC(+y, +mo - 1, +d, +h, +mi);
  if (Number.isNaN(wall)) return value;
  const utc = brasiliaToUtc(wall);
  const offset = (wall - utc) / 60_000;
  const sign = offset < 0 ? '-' : '+';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${y}-${mo}-${d}T${h}:${mi}:00${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
}

const GRAIN_MS: Record<string, number> = { PT30M: 1_800_000, PT1H: 3_600_000, P1D: 86_400_000, P7D: 7 * 86_400_000 };
const INTERVAL_MS: Record<string, number> = {
  '1m': 60_000, '5m': 300_000, '15m': 900_000, '30m': 1_800_000, '1h': 3_600_000, '1d': 86_400_000, '1w': 7 * 86_400_000, '1mo': 28 * 86_400_000, '1y': 365 * 86_400_000,
};

/** A validated time-series tool call: the API's query parameters and the rerunnable request. */
export interface TimeSeriesCall {
  readonly dataset: string;
  readonly params: Record<string, string>;
  readonly request: string;
  readonly estimate: number;
}

/** Validates a `query_time_series` input as `GET /timeseries/{dataset}` validates its parameters; throws ToolError. */
export function timeSeriesCall(input: unknown, config: Pick<AnswerConfig, 'timeSeriesDatasets' | 'maxPoints'>): TimeSeriesCall {
  if (!isObject(input)) throw new ToolError('the input must be an object');
  onlyFields(input, ['dataset', 'measure', 'filters', 'from', 'to', 'interval', 'aggregation', 'week']);
  const strings = ['dataset', 'measure', 'from', 'to', 'interval', 'aggregation', 'week'] as const;
  for (const name of strings) {
    if (input[name] !== undefined && typeof input[name] !== 'string') throw new ToolError(`${name} must be a string`);
  }
  const dataset = input.dataset as string | undefined;
  if (dataset === undefined || !config.timeSeriesDatasets.has(dataset)) {
    throw new ToolError(`dataset must be one of ${[...config.timeSeriesDatasets].join(', ')} (the datasets with time series)`);
  }
  const params: Record<string, string> = {};
  if (input.measure !== undefined) params.measure = input.measure as string;
  if (input.filters !== undefined) {
    if (!isObject(input.filters)) throw new ToolError('filters must be an object of dimension name to value');
    for (const [name, value] of Object.entries(input.filters)) {
      if (typeof value !== 'string') throw new ToolError('every filter value must be a string');
      if (['measure', 'from', 'to', 'interval', 'aggregation', 'week', 'nextToken'].includes(name)) throw new ToolError('filters may name identity dimensions only');
      params[name] = value;
    }
  }
  for (const name of ['from', 'to'] as const) {
    if (input[name] !== undefined) params[name] = localToInstant(input[name] as string);
  }
  for (const name of ['interval', 'aggregation', 'week'] as const) {
    if (input[name] !== undefined) params[name] = input[name] as string;
  }
  const tables = Object.fromEntries([...config.timeSeriesDatasets].map((id) => [id, id]));
  let query;
  try {
    query = parseTimeSeriesRequest(dataset, params, null, { tables, maxPoints: config.maxPoints }, () => '');
  } catch (error) {
    if (error instanceof RequestError) throw new ToolError(error.message);
    throw error;
  }
  const grain = CATALOG.find((d) => d.id === dataset)?.grain;
  const step = query.interval ? INTERVAL_MS[query.interval] : GRAIN_MS[grain ?? 'PT30M'];
  const filtered = new Set(query.filters.map(([name]) => name));
  const series = query.dimensions.reduce((n, d) => n * (filtered.has(d) ? 1 : d === 'id_subsistema' ? Object.keys(SUBSYSTEMS).length : 1), 1);
  const estimate = Math.ceil((Date.parse(query.to) - Date.parse(query.from)) / step) * series;
  if (estimate > config.maxPoints) {
    throw new ToolError(`this asks for about ${estimate} points, more than the ${config.maxPoints} a question may read: `
      + 'ask for a coarser interval with an aggregation, a shorter period, or filter one series');
  }
  const request = `/timeseries/${dataset}?${new URLSearchParams(params).toString()}`;
  return { dataset, params, request, estimate };
}

/** What one question has done so far. */
interface Exchange {
  readonly queryId: string;
  readonly deadline: number;
  readonly queries: AnswerQuery[];
  readonly citations: KnowledgeCitation[];
  readonly seen: Set<string>;
  toolCalls: number;
  /** Time-series requests sent: each gets its own request id (`<queryId>:<n>`), parallel calls included. */
  sent: number;
}

const remaining = (x: Exchange) => x.deadline - Date.now();

async function runTimeSeries(deps: AnswerDeps, x: Exchange, input: unknown): Promise<unknown> {
  const call = timeSeriesCall(input, deps.config);
  const invoked = await deps.lambda.send(new InvokeCommand({
    FunctionName: deps.config.timeSeriesFunction,
    Payload: Buffer.from(JSON.stringify(timeSeriesRequestEvent(call.dataset, call.params, `${x.queryId}:${++x.sent}`))),
  }), { abortSignal: AbortSignal.timeout(Math.max(1, remaining(x))) });
  const payload = invoked.Payload ? Buffer.from(invoked.Payload).toString('utf8') : '';
  if (invoked.FunctionError) {
    log('ERROR', 'time-series function failed', { requestId: x.queryId, functionError: invoked.FunctionError, payload: payload.slice(0, 500) });
    throw new ToolError('the time-series engine failed; try again later or answer without this figure');
  }
  const result = JSON.parse(payload || '{}') as { statusCode?: number; body?: string };
  const body = JSON.parse(result.body ?? '{}');
  if (result.statusCode !== 200) {
    // The API's own message: it names the parameter at fault and never echoes a value.
    const message = typeof body?.error?.message === 'string' ? body.error.message : 'the request failed';
    throw new ToolError(`GET ${call.request} answered ${result.statusCode}: ${message}`);
  }
  const answer = body as TimeSeriesResponse;
  if (answer.nextToken !== undefined || answer.points.length > deps.config.maxPoints) {
    throw new ToolError(`the answer holds more than the ${deps.config.maxPoints} points a question may read: ask for a coarser interval or a shorter period`);
  }
  x.queries.push({ request: call.request, dataset: answer.dataset, measure: answer.measure, unit: answer.unit, points: answer.points.length });
  return {
    request: call.request,
    dataset: answer.dataset,
    measure: answer.measure,
    unit: answer.unit,
    interval: answer.interval,
    aggregation: answer.aggregation,
    from: call.params.from,
    to: call.params.to,
    points: answer.points.map((p) => ({
      local: p.local ?? bucketOf('1m', Date.parse(p.time)).local,
      ...(p.period && p.period !== p.local ? { period: p.period } : {}),
      ...p.dimensions,
      value: p.value,
    })),
    ...(answer.points.length === 0 ? { note: 'no points: the data loaded does not cover this request' } : {}),
  };
}

async function runCatalog(deps: AnswerDeps, input: unknown): Promise<unknown> {
  if (!isObject(input)) throw new ToolError('the input must be an object');
  onlyFields(input, []);
  const { body } = await listDatasets(deps.ledger, deps.config.ledgerTable, deps.config.timeSeriesDatasets);
  return {
    datasets: body.datasets.filter((d) => d.timeSeries).map((d) => ({
      id: d.id,
      title: d.title,
      grain: d.grain,
      dimensions: Object.fromEntries(d.dimensions.map((name) => [name, name === 'id_subsistema' ? Object.keys(SUBSYSTEMS) : 'any'])),
      measures: d.measures.map((m) => ({ name: m.name, unit: m.unit, description: m.description.en, aggregation: m.aggregation })),
      loaded: d.loaded ? { files: d.loaded.files, from: d.loaded.from && bucketOf('1m', Date.parse(d.loaded.from)).local, to: d.loaded.to && bucketOf('1m', Date.parse(d.loaded.to)).local } : null,
    })),
  };
}

async function runSearch(deps: AnswerDeps, x: Exchange, input: unknown, request: KnowledgeQueryRequest): Promise<unknown> {
  if (!isObject(input)) throw new ToolError('the input must be an object');
  onlyFields(input, ['query', 'dataset']);
  const text = typeof input.query === 'string' ? input.query.trim() : '';
  if (text.length === 0 || [...text].length > 1000 || FORBIDDEN.test(text) || /\p{Cs}/u.test(text)) throw new ToolError('query must be 1 to 1000 characters without control characters');
  if (input.dataset !== undefined && !isCatalogDataset(input.dataset)) {
    throw new ToolError(`dataset must be a catalog dataset: one of ${CATALOG.map((d) => d.id).join(', ')}`);
  }
  // The caller's filters bound every search; the model may narrow them to a dataset.
  const filter = buildFilter({ ...request.filters, ...(input.dataset ? { dataset: input.dataset as string } : {}) });
  const output = await deps.agentRuntime.send(new RetrieveCommand({
    knowledgeBaseId: deps.config.knowledgeBaseId,
    retrievalQuery: { text },
    retrievalConfiguration: { vectorSearchConfiguration: { numberOfResults: deps.config.numberOfResults, ...(filter ? { filter } : {}) } },
  }), { abortSignal: AbortSignal.timeout(Math.max(1, remaining(x))) });
  const passages = [];
  for (const result of output.retrievalResults ?? []) {
    const cited = citationOf(result.location?.s3Location?.uri, result.content?.text ?? '', result.metadata as Record<string, unknown> | undefined);
    if (!cited) continue;
    if (!x.seen.has(citationKey(cited))) {
      x.seen.add(citationKey(cited));
      x.citations.push(cited);
    }
    passages.push({ source: cited.source.key, ...(cited.dataset ? { dataset: cited.dataset } : {}), text: cited.text.slice(0, 2000) });
  }
  return { passages };
}

async function runTool(deps: AnswerDeps, x: Exchange, use: ToolUseBlock, request: KnowledgeQueryRequest): Promise<ToolResultBlock> {
  const started = Date.now();
  let status: 'success' | 'error' = 'success';
  let result: unknown;
  try {
    switch (use.name) {
      case AnswerTools.QUERY_TIME_SERIES: result = await runTimeSeries(deps, x, use.input); break;
      case AnswerTools.LIST_DATASETS: result = await runCatalog(deps, use.input); break;
      case AnswerTools.SEARCH_DOCUMENTS: result = await runSearch(deps, x, use.input, request); break;
      default: throw new ToolError(`no such tool; the tools are ${Object.values(AnswerTools).join(', ')}`);
    }
  } catch (error) {
    status = 'error';
    if (error instanceof ToolError) {
      result = { error: error.message };
    } else {
      const e = error as Error;
      // The failure's text stays in the log: the model (and so the caller) gets a fixed message.
      log('ERROR', 'tool failed', { requestId: x.queryId, tool: use.name, errorType: e?.name, errorMessage: e?.message });
      result = { error: e?.name === 'TimeoutError' || e?.name === 'AbortError' ? 'the tool ran out of time' : 'the tool failed; answer without it or say the figure is unavailable' };
    }
  }
  log('INFO', 'tool call', { requestId: x.queryId, tool: use.name, status, durationMs: Date.now() - started });
  return { toolUseId: use.toolUseId, status, content: [{ text: JSON.stringify(result) }] };
}

/** Converse errors as API errors: fixed messages, never the exception text; undefined for a fault of ours (500). */
export function mapConverseError(error: unknown): RequestError | undefined {
  switch ((error as Error)?.name) {
    case 'ThrottlingException':
    case 'ServiceQuotaExceededException':
    case 'AccessDeniedException':
      return mapBedrockError(error);
    case 'ModelTimeoutException':
    case 'ModelNotReadyException':
    case 'ServiceUnavailableException':
    case 'InternalServerException':
      return new RequestError(503, 'ModelUnavailable', 'the generation model is not answering now; retry later');
    case 'TimeoutError':
    case 'AbortError':
      return new RequestError(504, 'AnswerTimeout', 'the answer took longer than a question may take; ask a narrower question');
    default:
      return undefined;
  }
}

/** Tokens one model call may write: an answer with its figures, or a round of tool calls. */
const MAX_ANSWER_TOKENS = 2048;

const textOf = (message: Message | undefined) => (message?.content ?? []).map((b) => b.text ?? '').filter((t) => t).join('\n').trim();

/** Answers a question with the tools: the Converse loop, bounded in tool calls and time. */
export async function answerWithTools(
  request: KnowledgeQueryRequest, queryId: string, started: number, deps: AnswerDeps,
): Promise<{ body: KnowledgeQueryResponse; log: Record<string, unknown> }> {
  const { config } = deps;
  const x: Exchange = { queryId, deadline: started + config.deadlineMs, queries: [], citations: [], seen: new Set(), toolCalls: 0, sent: 0 };
  const usage = { inputTokens: 0, outputTokens: 0, modelCalls: 0 };
  const messages: Message[] = [{ role: 'user', content: [{ text: request.question }] }];
  const tools = toolSpecs([...config.timeSeriesDatasets]);
  let answer: string | undefined;
  let stopReason: string | undefined;
  try {
    for (;;) {
      if (remaining(x) < 500) throw mapConverseError({ name: 'TimeoutError' });
      let output: ConverseCommandOutput;
      try {
        output = await deps.runtime.send(new ConverseCommand({
          modelId: config.modelId,
          system: [{ text: systemPrompt(Date.now()) }],
          messages,
          inferenceConfig: { maxTokens: MAX_ANSWER_TOKENS, temperature: 0 },
          toolConfig: { tools },
          ...(config.guardrail ? { guardrailConfig: { guardrailIdentifier: config.guardrail.id, guardrailVersion: config.guardrail.version } } : {}),
        }), { abortSignal: AbortSignal.timeout(remaining(x)) });
      } catch (error) {
        const e = error as Error & { $metadata?: { httpStatusCode?: number; requestId?: string } };
        log('ERROR', 'bedrock error', { requestId: queryId, errorType: e?.name, errorMessage: e?.message, bedrockStatus: e?.$metadata?.httpStatusCode, bedrockRequestId: e?.$metadata?.requestId });
        throw mapConverseError(error) ?? new RequestError(500, 'InternalError', 'the request could not be completed');
      }
      usage.modelCalls++;
      usage.inputTokens += output.usage?.inputTokens ?? 0;
      usage.outputTokens += output.usage?.outputTokens ?? 0;
      stopReason = output.stopReason;
      const message: Message = output.output && 'message' in output.output && output.output.message ? output.output.message : { role: 'assistant', content: [] };
      const uses = (message.content ?? []).flatMap((b) => (b.toolUse ? [b.toolUse] : []));
      if (stopReason !== 'tool_use' || uses.length === 0) {
        answer = textOf(message);
        // An empty 200 would read as an answer: no text is no answer.
        if (!answer) throw new RequestError(502, 'AnswerIncomplete', 'the model gave no answer; ask the question again or more narrowly');
        // A reply cut at the token limit may have lost a number or its unit: never passed off as complete.
        if (stopReason === 'max_tokens') throw new RequestError(502, 'AnswerIncomplete', 'the answer was longer than the model may write; ask a narrower question');
        break;
      }
      messages.push({ role: 'assistant', content: message.content });
      if (x.toolCalls >= config.maxToolCalls) {
        // The model had its last turn to answer and asked for more tools again.
        throw new RequestError(502, 'AnswerIncomplete', `the model did not answer within the ${config.maxToolCalls} tool calls a question may make; ask a narrower question`);
      }
      const allowed = uses.slice(0, config.maxToolCalls - x.toolCalls);
      const results: ContentBlock[] = [];
      const ran = await Promise.all(allowed.map((use) => runTool(deps, x, use, request)));
      x.toolCalls += allowed.length;
      for (const use of uses) {
        const done = ran.find((r) => r.toolUseId === use.toolUseId);
        results.push({
          toolResult: done ?? {
            toolUseId: use.toolUseId, status: 'error', content: [{ text: JSON.stringify({ error: 'tool call limit reached' }) }],
          },
        });
      }
      if (x.toolCalls >= config.maxToolCalls) {
        // Inside the tool results, not a text block beside them: some model families (Llama, Mistral) refuse a turn mixing both.
        const notice = { text: `No more tool calls: you have made the ${config.maxToolCalls} a question may make. Answer now with what the tools returned, and say what is missing.` };
        for (const block of results) block.toolResult!.content = [...(block.toolResult!.content ?? []), notice];
      }
      messages.push({ role: 'user', content: results });
    }
  } finally {
    recordMetric(PlatformMetrics.MODEL_INPUT_TOKENS, usage.inputTokens);
    recordMetric(PlatformMetrics.MODEL_OUTPUT_TOKENS, usage.outputTokens);
    recordMetric(PlatformMetrics.TOOL_CALLS, x.toolCalls);
  }
  const total: AnswerUsage = { ...usage, toolCalls: x.toolCalls };
  return {
    body: { queryId, answer: answer ?? '', citations: x.citations, sessionId: '', answeredFrom: 'tools', queries: x.queries, usage: total },
    log: { answeredFrom: 'tools', stopReason, ...total, queries: x.queries.length, citations: x.citations.length },
  };
}
