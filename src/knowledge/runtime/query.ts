import { randomUUID } from 'node:crypto';
import {
  BedrockAgentRuntimeClient, RetrieveAndGenerateCommand,
  type RetrievalFilter, type RetrieveAndGenerateCommandOutput,
} from '@aws-sdk/client-bedrock-agent-runtime';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { CATALOG, DATASET_ID } from '../../ons/catalog';
import { dataCardDataset } from '../../ons/layout';
import { FeatureFlag } from '../../runtime/contract';
import { flag } from '../../runtime/flags';
import { header, RequestError, safeName, serve } from '../../runtime/http';
import { log, traced } from '../../runtime/telemetry';
import { KnowledgeCitation, KnowledgeEnv, KnowledgeQueryFilters, KnowledgeQueryLimits, KnowledgeQueryRequest, KnowledgeQueryResponse } from '../contract';

/**
 * `POST /query`: a question in plain language answered by Bedrock RetrieveAndGenerate over the knowledge
 * base (data cards and uploaded documents), with citations. The body is validated strictly (unknown
 * fields refused); Bedrock errors become API errors with fixed messages, never the exception text.
 *
 * Decisions:
 * - `filters.dataset` must be a catalog dataset id (src/ons/catalog.ts). Data cards of ONS datasets
 *   outside the catalog exist too, but a filter naming an unknown id would silently match nothing;
 *   such questions go without a dataset filter.
 * - The year filter keeps data cards whose period overlaps [yearFrom, yearTo]: `year_to >= yearFrom`
 *   and `year_from <= yearTo` (the metadata the data cards carry). Uploaded documents have no such
 *   metadata, so any filter restricts the answer to data cards.
 * - The question may contain tabs and line breaks; every other control character (C0, DEL, C1),
 *   bidirectional overrides and unpaired surrogates are refused.
 */

export const { MAX_QUESTION, MIN_YEAR, MAX_YEAR } = KnowledgeQueryLimits;
/** Largest body accepted (bytes): 1000 characters of 4 bytes each, with room for the rest. */
const MAX_BODY = 16 * 1024;
const SESSION_ID = new RegExp(KnowledgeQueryLimits.SESSION_ID_PATTERN);
/** Control characters other than tab, LF and CR; bidi embeddings, overrides and isolates. */
export const FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/u;
const REQUEST_FIELDS = ['question', 'sessionId', 'filters'];
const FILTER_FIELDS = ['dataset', 'yearFrom', 'yearTo'];

/** The default prompt: the knowledge base's search results, answers in the language of the question. */
export const DEFAULT_PROMPT_TEMPLATE = [
  'You answer questions about the Brazilian electricity system using data published by ONS (Operador Nacional do Sistema Elétrico).',
  'Use only the search results below. If they do not contain the answer, say that the available data does not answer the question; never invent figures.',
  'Give numbers with their units and the period they refer to.',
  'Always answer in the same language as the question (Portuguese or English, or any other language the question is written in).',
  '',
  'Search results:',
  '$search_results$',
  '',
  '$output_format_instructions$',
].join('\n');

export interface KnowledgeQueryConfig {
  readonly knowledgeBaseId: string;
  readonly modelArn: string;
  readonly numberOfResults: number;
  readonly promptTemplate: string;
}

/**
 * The model ARN for RetrieveAndGenerate: an ARN as it is; a bare foundation model id as
 * `arn:<partition>:bedrock:<region>::foundation-model/<id>`; a bare cross-region inference profile id
 * (`us.`, `eu.`, `apac.`, `global.`… prefix) as `arn:<partition>:bedrock:<region>:<account>:inference-profile/<id>`.
 */
export function modelArn(model: string, region: string, account?: string): string {
  if (model.startsWith('arn:')) return model;
  if (!/^[a-z0-9][a-z0-9.:_-]{0,199}$/i.test(model)) throw new Error(`${KnowledgeEnv.MODEL_ARN} is not a model id or ARN`);
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) throw new Error(`not a region: '${region}'`);
  const partition = region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';
  // Inference profile ids are a geography prefix and a model id: `us.anthropic.claude-…`.
  if (/^(us|eu|apac|jp|au|ca|us-gov|global)\.[a-z0-9-]+\./.test(model)) {
    if (!account || !/^\d{12}$/.test(account)) throw new Error(`${KnowledgeEnv.MODEL_ARN}: an inference profile id needs the account; give the ARN`);
    return `arn:${partition}:bedrock:${region}:${account}:inference-profile/${model}`;
  }
  return `arn:${partition}:bedrock:${region}::foundation-model/${model}`;
}

/** The configuration from the environment; throws (a 500 for the caller, the reason in the log) when it is incomplete. */
export function configFromEnv(account?: string): KnowledgeQueryConfig {
  const knowledgeBaseId = process.env[KnowledgeEnv.KB_ID];
  if (!knowledgeBaseId || !/^[0-9a-zA-Z]{1,10}$/.test(knowledgeBaseId)) throw new Error(`${KnowledgeEnv.KB_ID} is not set or not a knowledge base id`);
  const model = process.env[KnowledgeEnv.MODEL_ARN];
  if (!model) throw new Error(`${KnowledgeEnv.MODEL_ARN} is not set`);
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? '';
  const results = Number(process.env[KnowledgeEnv.RESULTS] ?? 5);
  if (!Number.isInteger(results) || results < 1 || results > 100) throw new Error(`${KnowledgeEnv.RESULTS} must be an integer from 1 to 100`);
  const promptTemplate = process.env[KnowledgeEnv.PROMPT_TEMPLATE] || DEFAULT_PROMPT_TEMPLATE;
  if (!promptTemplate.includes('$search_results$')) throw new Error(`${KnowledgeEnv.PROMPT_TEMPLATE} must contain $search_results$`);
  return { knowledgeBaseId, modelArn: modelArn(model, region, account), numberOfResults: results, promptTemplate };
}

export function createClient(endpoint?: string): BedrockAgentRuntimeClient {
  return traced(new BedrockAgentRuntimeClient(endpoint ? { endpoint } : {}));
}

const bad = (message: string) => new RequestError(400, 'InvalidRequest', message);

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates the body of a `POST /query`; throws RequestError (400, 413, 415) with a message that echoes no input. */
export function parseRequest(event: APIGatewayProxyEvent): KnowledgeQueryRequest {
  const contentType = header(event, 'content-type');
  if (contentType !== undefined && !/^application\/json\s*(;\s*charset=utf-8\s*)?$/i.test(contentType.trim())) {
    throw new RequestError(415, 'UnsupportedMediaType', 'the body must be JSON (content-type: application/json)');
  }
  if (event.body === null || event.body === undefined || event.body === '') throw bad('the body must be a JSON object with a question');
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  if (Buffer.byteLength(text, 'utf8') > MAX_BODY) throw new RequestError(413, 'PayloadTooLarge', `the body must be at most ${MAX_BODY} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('the body is not valid JSON');
  }
  if (!isObject(parsed)) throw bad('the body must be a JSON object with a question');
  for (const name of Object.keys(parsed)) {
    if (!REQUEST_FIELDS.includes(name)) throw new RequestError(400, 'UnknownField', `unknown field ${safeName(name, 'field')}; accepted: ${REQUEST_FIELDS.join(', ')}`);
  }

  if (typeof parsed.question !== 'string') throw bad('question is required: a string of 1 to 1000 characters');
  const question = parsed.question.trim();
  const length = [...question].length;
  if (length === 0) throw bad('question must not be empty');
  if (length > MAX_QUESTION) throw bad(`question must be at most ${MAX_QUESTION} characters`);
  if (FORBIDDEN.test(question) || /\p{Cs}/u.test(question)) throw bad('question must not contain control characters');

  let sessionId: string | undefined;
  if (parsed.sessionId !== undefined) {
    if (typeof parsed.sessionId !== 'string' || !SESSION_ID.test(parsed.sessionId)) {
      throw bad('sessionId must be the sessionId of a previous answer (2 to 100 letters, digits and . _ : -)');
    }
    sessionId = parsed.sessionId;
  }

  let filters: KnowledgeQueryFilters | undefined;
  if (parsed.filters !== undefined) {
    if (!isObject(parsed.filters)) throw bad('filters must be an object with dataset, yearFrom and/or yearTo');
    const f = parsed.filters;
    for (const name of Object.keys(f)) {
      if (!FILTER_FIELDS.includes(name)) throw new RequestError(400, 'UnknownField', `unknown filter ${safeName(name, 'field')}; accepted: ${FILTER_FIELDS.join(', ')}`);
    }
    if (f.dataset !== undefined) {
      if (!isCatalogDataset(f.dataset)) {
        throw bad(`filters.dataset must be a catalog dataset: one of ${CATALOG.map((d) => d.id).join(', ')}`);
      }
    }
    for (const name of ['yearFrom', 'yearTo'] as const) {
      const y = f[name];
      if (y !== undefined && (typeof y !== 'number' || !Number.isInteger(y) || y < MIN_YEAR || y > MAX_YEAR)) {
        throw bad(`filters.${name} must be an integer year from ${MIN_YEAR} to ${MAX_YEAR}`);
      }
    }
    if (typeof f.yearFrom === 'number' && typeof f.yearTo === 'number' && f.yearFrom > f.yearTo) {
      throw bad('filters.yearFrom must not be after filters.yearTo');
    }
    filters = {
      ...(f.dataset !== undefined ? { dataset: f.dataset as string } : {}),
      ...(f.yearFrom !== undefined ? { yearFrom: f.yearFrom as number } : {}),
      ...(f.yearTo !== undefined ? { yearTo: f.yearTo as number } : {}),
    };
  }
  return { question, ...(sessionId ? { sessionId } : {}), ...(filters ? { filters } : {}) };
}

/** The metadata filter of the data cards (`dataset`, `year_from`, `year_to`); undefined without filters. */
export function buildFilter(filters: KnowledgeQueryFilters | undefined): RetrievalFilter | undefined {
  const all: RetrievalFilter[] = [];
  if (filters?.dataset !== undefined) all.push({ equals: { key: 'dataset', value: filters.dataset } });
  // Overlap of the card's [year_from, year_to] with the asked range.
  if (filters?.yearFrom !== undefined) all.push({ greaterThanOrEquals: { key: 'year_to', value: filters.yearFrom } });
  if (filters?.yearTo !== undefined) all.push({ lessThanOrEquals: { key: 'year_from', value: filters.yearTo } });
  if (all.length === 0) return undefined;
  // andAll takes at least two members.
  return all.length === 1 ? all[0] : { andAll: all };
}

/** Bedrock errors as API errors: fixed messages, never the exception text. */
export function mapBedrockError(error: unknown): RequestError | undefined {
  const name = (error as Error)?.name;
  switch (name) {
    case 'ThrottlingException':
    case 'ServiceQuotaExceededException':
      return new RequestError(429, 'TooManyRequests', 'too many questions at the moment; retry later');
    case 'AccessDeniedException':
      return new RequestError(503, 'ModelNotAccessible', 'the generation model is not accessible (model access not enabled or not permitted); contact the operator');
    case 'ValidationException':
      return new RequestError(400, 'InvalidQuestion', 'the question could not be processed with these parameters (the session may have expired: retry without sessionId)');
    case 'ResourceNotFoundException':
      return new RequestError(503, 'KnowledgeBaseUnavailable', 'the knowledge base is not available; retry later');
    default:
      return undefined;
  }
}

/** A catalog dataset's id (the filters and the search tool accept no other). */
export function isCatalogDataset(value: unknown): value is string {
  return typeof value === 'string' && DATASET_ID.test(value) && CATALOG.some((d) => d.id === value);
}

/** `s3://bucket/key` as `{ bucket, key }`. */
function parseS3Uri(uri: string | undefined): { bucket: string; key: string } | undefined {
  const m = uri ? /^s3:\/\/([^/]+)\/(.+)$/.exec(uri) : null;
  return m ? { bucket: m[1], key: m[2] } : undefined;
}

function datasetOf(metadata: Record<string, unknown> | undefined, key: string): string | undefined {
  const fromMetadata = metadata?.dataset;
  if (typeof fromMetadata === 'string' && DATASET_ID.test(fromMetadata)) return fromMetadata;
  return dataCardDataset(key);
}

/** A retrieved passage as a citation: its S3 object and the dataset of its data card; undefined when not from S3. */
export function citationOf(uri: string | undefined, text: string, metadata: Record<string, unknown> | undefined): KnowledgeCitation | undefined {
  const source = parseS3Uri(uri);
  if (!source) return undefined;
  const dataset = datasetOf(metadata, source.key);
  return { text, source, ...(dataset ? { dataset } : {}) };
}

/** The same passage of the same object is cited once. */
export const citationKey = (c: KnowledgeCitation): string => `${c.source.bucket}\u0000${c.source.key}\u0000${c.text}`;

/** The answer and its citations (one per retrieved S3 passage, duplicates dropped). */
export function mapResponse(output: RetrieveAndGenerateCommandOutput, queryId: string, sessionId?: string): KnowledgeQueryResponse {
  const citations: KnowledgeCitation[] = [];
  const seen = new Set<string>();
  for (const citation of output.citations ?? []) {
    for (const ref of citation.retrievedReferences ?? []) {
      const cited = citationOf(ref.location?.s3Location?.uri, ref.content?.text ?? '', ref.metadata as Record<string, unknown> | undefined);
      if (!cited || seen.has(citationKey(cited))) continue;
      seen.add(citationKey(cited));
      citations.push(cited);
    }
  }
  return { queryId, answer: output.output?.text ?? '', citations, sessionId: output.sessionId ?? sessionId ?? '', answeredFrom: 'documents' };
}

/** A question answered by the numeric path (answer.ts), given the validated request, its id and when it started. */
export type ToolAnswer = (
  request: KnowledgeQueryRequest, queryId: string, started: number,
) => Promise<{ body: KnowledgeQueryResponse; log: Record<string, unknown> }>;

export interface KnowledgeQueryDeps {
  readonly client: BedrockAgentRuntimeClient;
  readonly config: KnowledgeQueryConfig;
  /** The numeric path (Converse with tools); absent: RetrieveAndGenerate only. */
  readonly answer?: ToolAnswer;
}

/** The whole API Gateway proxy exchange: validation, RetrieveAndGenerate, one JSON error shape, a log line per request. */
export async function handleRequest(
  event: APIGatewayProxyEvent, requestId: string | undefined, deps: () => KnowledgeQueryDeps,
): Promise<APIGatewayProxyResult> {
  const queryId = requestId ?? randomUUID();
  return serve(event, queryId, 'query', async () => {
    if (!(await flag(FeatureFlag.RAG_QUERIES)).enabled) throw new RequestError(503, 'FeatureDisabled', 'questions are turned off for now (feature flag ragQueries); retry later');
    const started = Date.now();
    const request = parseRequest(event);
    const { client, config, answer } = deps();
    // A follow-up stays with RetrieveAndGenerate: the session is its own.
    if (answer && !request.sessionId && (await flag(FeatureFlag.NUMERIC_ANSWERS)).enabled) {
      const { body, log: fields } = await answer(request, queryId, started);
      return { body, log: { questionLength: [...request.question].length, filters: request.filters ?? null, ...fields } };
    }
    const filter = buildFilter(request.filters);
    let output: RetrieveAndGenerateCommandOutput;
    try {
      output = await client.send(new RetrieveAndGenerateCommand({
        input: { text: request.question },
        ...(request.sessionId ? { sessionId: request.sessionId } : {}),
        retrieveAndGenerateConfiguration: {
          type: 'KNOWLEDGE_BASE',
          knowledgeBaseConfiguration: {
            knowledgeBaseId: config.knowledgeBaseId,
            modelArn: config.modelArn,
            retrievalConfiguration: { vectorSearchConfiguration: { numberOfResults: config.numberOfResults, ...(filter ? { filter } : {}) } },
            generationConfiguration: { promptTemplate: { textPromptTemplate: config.promptTemplate } },
          },
        },
      }));
    } catch (error) {
      const e = error as Error & { $metadata?: { httpStatusCode?: number; requestId?: string } };
      // The exception text goes to the log only, never to the caller.
      log('ERROR', 'bedrock error', {
        requestId: queryId,
        errorType: e?.name,
        errorMessage: e?.message,
        bedrockStatus: e?.$metadata?.httpStatusCode,
        bedrockRequestId: e?.$metadata?.requestId,
      });
      throw mapBedrockError(error) ?? new RequestError(500, 'InternalError', 'the request could not be completed');
    }
    const body = mapResponse(output, queryId, request.sessionId);
    return {
      body,
      log: {
        answeredFrom: 'documents',
        questionLength: [...request.question].length,
        followUp: !!request.sessionId,
        filters: request.filters ?? null,
        citations: body.citations.length,
      },
    };
  });
}
