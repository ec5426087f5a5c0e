import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { LocalBedrockAgentRuntime } from './local-bedrock';
import { queryEvent } from './query-event';
import { KnowledgeEnv, KnowledgeQueryResponse } from '../../src/knowledge/contract';
import { DEFAULT_PROMPT_TEMPLATE } from '../../src/knowledge/runtime/query';
import { CATALOG } from '../../src/ons/catalog';
import { ApiErrorBody } from '../../src/runtime/contract';
import { expectSchema } from '../api/openapi';
import { loadHandler, restoreEnv } from '../local-aws';
import { CapturedOutput, captureOutput } from '../runtime/output';

/**
 * The bundled RAG query handler with real API Gateway proxy events, against a local bedrock-agent-runtime
 * endpoint over HTTP/2 (the real SDK client): the RetrieveAndGenerate request it sends, the response
 * mapping, every validation error (400 with the one error shape and no request sent) and the mapping of
 * Bedrock errors, whose text never reaches the caller.
 */

type Handler = (event: APIGatewayProxyEvent, context?: unknown) => Promise<APIGatewayProxyResult>;

const ASSETS = join(__dirname, '..', '..', 'assets', 'knowledge');
const KB_ID = 'KBTEST1234';
const MODEL = 'anthropic.claude-3-haiku-20240307-v1:0';
const MODEL_ARN = `arn:aws:bedrock:sa-east-1::foundation-model/${MODEL}`;
const PROFILE_ARN = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0';
const SECRET = 'internal detail arn:aws:iam::123456789012:role/secret-role';

let bedrock: LocalBedrockAgentRuntime;
let endpoint: string;
let handler: Handler;
let scratch: string;
let output: CapturedOutput;
let consoleLog: jest.SpyInstance;
let consoleError: jest.SpyInstance;
let requestCount = 0;

function env(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    AWS_REGION: 'sa-east-1',
    AWS_ACCESS_KEY_ID: 'x',
    AWS_SECRET_ACCESS_KEY: 'x',
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_ENDPOINT_URL: undefined,
    // One attempt: the error mapping is under test, not the SDK's retries.
    AWS_MAX_ATTEMPTS: '1',
    AWS_CONFIG_FILE: join(scratch, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(scratch, 'no-aws-credentials'),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    [KnowledgeEnv.KB_ID]: KB_ID,
    [KnowledgeEnv.MODEL_ARN]: MODEL,
    [KnowledgeEnv.RESULTS]: '7',
    [KnowledgeEnv.PROMPT_TEMPLATE]: undefined,
    [KnowledgeEnv.ENDPOINT]: endpoint,
    ...overrides,
  };
}

beforeAll(async () => {
  output = captureOutput();
  consoleLog = output.log;
  consoleError = output.error;
  scratch = mkdtempSync(join(tmpdir(), 'ons-kb-query-test-'));
  bedrock = new LocalBedrockAgentRuntime();
  endpoint = await bedrock.start();
  handler = loadHandler<APIGatewayProxyEvent, APIGatewayProxyResult>('query', env(), ASSETS);
});

afterAll(async () => {
  output.restore();
  restoreEnv();
  await bedrock?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const ANSWER = {
  sessionId: 'a1b2c3d4-0000-4000-8000-000000000001',
  output: { text: 'A carga média do subsistema SE em 2023 foi de 40.000 MWmed.' },
  citations: [
    {
      generatedResponsePart: { textResponsePart: { text: 'A carga média do subsistema SE em 2023 foi de 40.000 MWmed.', span: { start: 0, end: 58 } } },
      retrievedReferences: [
        {
          content: { text: '| 2023-01 | val_cargaenergiamwmed | 31 | 38000 | 42000 | 40000 |' },
          location: { type: 'S3', s3Location: { uri: 's3://ons-processed/knowledge/cards/carga_energia/CARGA_ENERGIA_2023.md' } },
          metadata: { 'dataset': 'carga_energia', 'year_from': 2023, 'year_to': 2023, 'x-amz-bedrock-kb-source-uri': 's3://ons-processed/knowledge/cards/carga_energia/CARGA_ENERGIA_2023.md' },
        },
        {
          // No dataset in the metadata: taken from the key.
          content: { text: 'Curva de carga horária, 2023.' },
          location: { type: 'S3', s3Location: { uri: 's3://ons-processed/knowledge/cards/curva_carga/CURVA_CARGA_2023.md' } },
        },
      ],
    },
    {
      generatedResponsePart: { textResponsePart: { text: 'Fonte: ONS.', span: { start: 59, end: 70 } } },
      retrievedReferences: [
        // The same passage again (dropped), and an uploaded document (no dataset).
        {
          content: { text: '| 2023-01 | val_cargaenergiamwmed | 31 | 38000 | 42000 | 40000 |' },
          location: { type: 'S3', s3Location: { uri: 's3://ons-processed/knowledge/cards/carga_energia/CARGA_ENERGIA_2023.md' } },
          metadata: { dataset: 'carga_energia' },
        },
        {
          content: { text: 'O ONS coordena a operação do SIN.' },
          location: { type: 'S3', s3Location: { uri: 's3://ons-raw/knowledge/documents/guia/ONS guia 2024.pdf' } },
        },
        // Not an S3 location: no source to cite.
        { content: { text: 'web' }, location: { type: 'WEB', webLocation: { url: 'https://example.com' } } },
      ],
    },
  ],
};

beforeEach(() => {
  bedrock.reset();
  bedrock.onRetrieveAndGenerate = () => ({ body: ANSWER });
  consoleLog.mockClear();
  consoleError.mockClear();
});

/** An API Gateway (REST, proxy integration) event for POST /query. */
function event(body: string | null, headers?: Record<string, string>): APIGatewayProxyEvent {
  return queryEvent(body, `req-${++requestCount}`, headers);
}

async function callRaw(e: APIGatewayProxyEvent, h: Handler = handler) {
  const response = await h(e);
  const body = JSON.parse(response.body);
  // Every answer, success or error, is what the shipped OpenAPI document promises.
  expectSchema(response.statusCode === 200 ? 'QueryResponse' : 'Error', body);
  return { status: response.statusCode, body, requestId: e.requestContext.requestId, headers: response.headers };
}

const call = (body: unknown) => callRaw(event(JSON.stringify(body)));
const sent = () => bedrock.requests.map((r) => r.body);

describe('the RetrieveAndGenerate request', () => {
  test('a question without filters: knowledge base, model ARN from a bare model id and the region, results, default prompt', async () => {
    const { status } = await call({ question: '  Qual foi a carga média do SE em 2023?  ' });
    expect(status).toBe(200);
    expect(bedrock.requests).toHaveLength(1);
    expect(bedrock.requests[0].method).toBe('POST');
    expect(bedrock.requests[0].path).toBe('/retrieveAndGenerate');
    expect(sent()[0]).toEqual({
      input: { text: 'Qual foi a carga média do SE em 2023?' },
      retrieveAndGenerateConfiguration: {
        type: 'KNOWLEDGE_BASE',
        knowledgeBaseConfiguration: {
          knowledgeBaseId: KB_ID,
          modelArn: MODEL_ARN,
          retrievalConfiguration: { vectorSearchConfiguration: { numberOfResults: 7 } },
          generationConfiguration: { promptTemplate: { textPromptTemplate: DEFAULT_PROMPT_TEMPLATE } },
        },
      },
    });
    expect(DEFAULT_PROMPT_TEMPLATE).toContain('$search_results$');
    expect(DEFAULT_PROMPT_TEMPLATE).toMatch(/same language as the question/);
  });

  test.each<[string, Record<string, unknown>, unknown]>([
    ['dataset only: equals', { dataset: 'curva_carga' }, { equals: { key: 'dataset', value: 'curva_carga' } }],
    ['yearFrom only: cards ending in or after it', { yearFrom: 2021 }, { greaterThanOrEquals: { key: 'year_to', value: 2021 } }],
    ['yearTo only: cards starting in or before it', { yearTo: 2022 }, { lessThanOrEquals: { key: 'year_from', value: 2022 } }],
    ['a year range: overlap, with andAll', { yearFrom: 2020, yearTo: 2022 }, {
      andAll: [{ greaterThanOrEquals: { key: 'year_to', value: 2020 } }, { lessThanOrEquals: { key: 'year_from', value: 2022 } }],
    }],
    ['dataset and one year', { dataset: 'carga_energia', yearFrom: 2023, yearTo: 2023 }, {
      andAll: [
        { equals: { key: 'dataset', value: 'carga_energia' } },
        { greaterThanOrEquals: { key: 'year_to', value: 2023 } },
        { lessThanOrEquals: { key: 'year_from', value: 2023 } },
      ],
    }],
  ])('filters, %s', async (_name, filters, filter) => {
    const { status } = await call({ question: 'Carga?', filters });
    expect(status).toBe(200);
    expect(sent()[0].retrieveAndGenerateConfiguration.knowledgeBaseConfiguration.retrievalConfiguration).toEqual({
      vectorSearchConfiguration: { numberOfResults: 7, filter },
    });
  });

  test('empty filters send no filter', async () => {
    await call({ question: 'Carga?', filters: {} });
    expect(sent()[0].retrieveAndGenerateConfiguration.knowledgeBaseConfiguration.retrievalConfiguration).toEqual({
      vectorSearchConfiguration: { numberOfResults: 7 },
    });
  });

  test('a follow-up passes the sessionId through', async () => {
    const { status, body } = await call({ question: 'And in 2022?', sessionId: ANSWER.sessionId });
    expect(status).toBe(200);
    expect(sent()[0].sessionId).toBe(ANSWER.sessionId);
    expect(body.sessionId).toBe(ANSWER.sessionId);
  });

  test('an inference profile ARN and a prompt template from the environment are sent as they are', async () => {
    const template = 'Answer in the language of the question.\n$search_results$\n$output_format_instructions$';
    const h = loadHandler<APIGatewayProxyEvent, APIGatewayProxyResult>('query', env({
      [KnowledgeEnv.MODEL_ARN]: PROFILE_ARN, [KnowledgeEnv.PROMPT_TEMPLATE]: template, [KnowledgeEnv.RESULTS]: undefined,
    }), ASSETS);
    const { status } = await callRaw(event(JSON.stringify({ question: 'What was the load?' })), h);
    expect(status).toBe(200);
    const config = sent()[0].retrieveAndGenerateConfiguration.knowledgeBaseConfiguration;
    expect(config.modelArn).toBe(PROFILE_ARN);
    expect(config.generationConfiguration.promptTemplate.textPromptTemplate).toBe(template);
    expect(config.retrievalConfiguration.vectorSearchConfiguration.numberOfResults).toBe(5);
  });

  test('a bare inference profile id is made an ARN with the account of the function', async () => {
    const h = loadHandler<APIGatewayProxyEvent, APIGatewayProxyResult>('query', env({
      [KnowledgeEnv.MODEL_ARN]: 'us.anthropic.claude-3-5-haiku-20241022-v1:0', AWS_REGION: 'us-east-1',
    }), ASSETS) as Handler;
    const context = { awsRequestId: 'x', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:q' };
    const response = await h(event(JSON.stringify({ question: 'Load?' })), context);
    expect(response.statusCode).toBe(200);
    expect(sent()[0].retrieveAndGenerateConfiguration.knowledgeBaseConfiguration.modelArn).toBe(PROFILE_ARN);
  });

  test('a prompt template without $search_results$ is a configuration error: 500, nothing sent', async () => {
    const h = loadHandler<APIGatewayProxyEvent, APIGatewayProxyResult>('query', env({ [KnowledgeEnv.PROMPT_TEMPLATE]: 'Answer.' }), ASSETS);
    const { status, body } = await callRaw(event(JSON.stringify({ question: 'Load?' })), h);
    expect(status).toBe(500);
    expect(body.error.code).toBe('InternalError');
    expect(JSON.stringify(body)).not.toContain('search_results');
    expect(bedrock.requests).toHaveLength(0);
  });
});

describe('the response', () => {
  test('answer, citations with source and dataset (metadata, then the key), sessionId, queryId', async () => {
    const { status, body, requestId, headers } = await call({ question: 'Qual foi a carga média do SE em 2023?' });
    expect(status).toBe(200);
    expect(headers).toMatchObject({ 'content-type': 'application/json' });
    expect(body as KnowledgeQueryResponse).toEqual({
      queryId: requestId,
      answer: ANSWER.output.text,
      answeredFrom: 'documents',
      citations: [
        {
          text: '| 2023-01 | val_cargaenergiamwmed | 31 | 38000 | 42000 | 40000 |',
          source: { bucket: 'ons-processed', key: 'knowledge/cards/carga_energia/CARGA_ENERGIA_2023.md' },
          dataset: 'carga_energia',
        },
        {
          text: 'Curva de carga horária, 2023.',
          source: { bucket: 'ons-processed', key: 'knowledge/cards/curva_carga/CURVA_CARGA_2023.md' },
          dataset: 'curva_carga',
        },
        { text: 'O ONS coordena a operação do SIN.', source: { bucket: 'ons-raw', key: 'knowledge/documents/guia/ONS guia 2024.pdf' } },
      ],
      sessionId: ANSWER.sessionId,
    });
  });

  test('no citations: an empty list', async () => {
    bedrock.onRetrieveAndGenerate = () => ({ body: { sessionId: 'sess-2', output: { text: 'Não há dados.' } } });
    const { status, body } = await call({ question: 'Carga em 1990?' });
    expect(status).toBe(200);
    expect(body).toMatchObject({ answer: 'Não há dados.', citations: [], sessionId: 'sess-2' });
  });

  test('a JSON log line with the request id, without the question', async () => {
    const { requestId } = await call({ question: 'Qual foi a carga média do SE em 2023?', filters: { dataset: 'carga_energia' } });
    const lines = consoleLog.mock.calls.map((c) => JSON.parse(c[0] as string));
    expect(lines).toEqual([expect.objectContaining({ level: 'INFO', message: 'query', requestId, citations: 3, filters: { dataset: 'carga_energia' } })]);
    expect(consoleLog.mock.calls[0][0]).not.toContain('carga média');
  });
});

describe('validation errors: 400 (413, 415) with the one error shape, nothing sent to Bedrock', () => {
  const long = 'a'.repeat(1001);
  test.each<[string, string | null, Record<string, string> | undefined, number, string, RegExp]>([
    ['no body', null, undefined, 400, 'InvalidRequest', /JSON object with a question/],
    ['not JSON', '{"question": "x"', undefined, 400, 'InvalidRequest', /not valid JSON/],
    ['a JSON array', '["question"]', undefined, 400, 'InvalidRequest', /JSON object/],
    ['a JSON string', '"question"', undefined, 400, 'InvalidRequest', /JSON object/],
    ['wrong content type', JSON.stringify({ question: 'x' }), { 'content-type': 'text/plain' }, 415, 'UnsupportedMediaType', /application\/json/],
    ['form content', 'question=x', { 'Content-Type': 'application/x-www-form-urlencoded' }, 415, 'UnsupportedMediaType', /application\/json/],
    ['no question', JSON.stringify({ filters: {} }), undefined, 400, 'InvalidRequest', /question is required/],
    ['question not a string', JSON.stringify({ question: 42 }), undefined, 400, 'InvalidRequest', /question is required/],
    ['empty question', JSON.stringify({ question: '' }), undefined, 400, 'InvalidRequest', /must not be empty/],
    ['blank question', JSON.stringify({ question: ' \n\t ' }), undefined, 400, 'InvalidRequest', /must not be empty/],
    ['1001 characters', JSON.stringify({ question: long }), undefined, 400, 'InvalidRequest', /at most 1000 characters/],
    ['a NUL', JSON.stringify({ question: 'carga\u0000' }), undefined, 400, 'InvalidRequest', /control characters/],
    ['an escape sequence', JSON.stringify({ question: 'carga \u001b[31m' }), undefined, 400, 'InvalidRequest', /control characters/],
    ['DEL', JSON.stringify({ question: 'carga\u007f' }), undefined, 400, 'InvalidRequest', /control characters/],
    ['a C1 control', JSON.stringify({ question: 'carga\u0085' }), undefined, 400, 'InvalidRequest', /control characters/],
    ['a bidi override', JSON.stringify({ question: 'carga \u202e2023' }), undefined, 400, 'InvalidRequest', /control characters/],
    ['an unpaired surrogate', '{"question":"carga \\ud800"}', undefined, 400, 'InvalidRequest', /control characters/],
    ['sessionId with a space', JSON.stringify({ question: 'x', sessionId: 'abc def' }), undefined, 400, 'InvalidRequest', /sessionId/],
    ['sessionId with a quote', JSON.stringify({ question: 'x', sessionId: "abc'--" }), undefined, 400, 'InvalidRequest', /sessionId/],
    ['sessionId too long', JSON.stringify({ question: 'x', sessionId: 'a'.repeat(101) }), undefined, 400, 'InvalidRequest', /sessionId/],
    ['sessionId too short', JSON.stringify({ question: 'x', sessionId: 'a' }), undefined, 400, 'InvalidRequest', /sessionId/],
    ['sessionId not a string', JSON.stringify({ question: 'x', sessionId: 12345 }), undefined, 400, 'InvalidRequest', /sessionId/],
    ['unknown field', JSON.stringify({ question: 'x', model: 'other' }), undefined, 400, 'UnknownField', /unknown field 'model'/],
    ['unknown filter field', JSON.stringify({ question: 'x', filters: { region: 'SE' } }), undefined, 400, 'UnknownField', /unknown filter 'region'/],
    ['filters not an object', JSON.stringify({ question: 'x', filters: ['dataset'] }), undefined, 400, 'InvalidRequest', /filters must be an object/],
    ['filters null', JSON.stringify({ question: 'x', filters: null }), undefined, 400, 'InvalidRequest', /filters must be an object/],
    ['unknown dataset', JSON.stringify({ question: 'x', filters: { dataset: 'no_such_dataset' } }), undefined, 400, 'InvalidRequest', /catalog dataset/],
    ['dataset with quotes', JSON.stringify({ question: 'x', filters: { dataset: "curva_carga' OR 1=1" } }), undefined, 400, 'InvalidRequest', /catalog dataset/],
    ['dataset not a string', JSON.stringify({ question: 'x', filters: { dataset: ['curva_carga'] } }), undefined, 400, 'InvalidRequest', /catalog dataset/],
    ['yearFrom > yearTo', JSON.stringify({ question: 'x', filters: { yearFrom: 2023, yearTo: 2022 } }), undefined, 400, 'InvalidRequest', /yearFrom must not be after/],
    ['yearFrom a string', JSON.stringify({ question: 'x', filters: { yearFrom: '2023' } }), undefined, 400, 'InvalidRequest', /yearFrom must be an integer/],
    ['yearFrom not an integer', JSON.stringify({ question: 'x', filters: { yearFrom: 2023.5 } }), undefined, 400, 'InvalidRequest', /yearFrom must be an integer/],
    ['yearFrom before 2000', JSON.stringify({ question: 'x', filters: { yearFrom: 1999 } }), undefined, 400, 'InvalidRequest', /yearFrom must be an integer year from 2000 to 2100/],
    ['yearTo after 2100', JSON.stringify({ question: 'x', filters: { yearTo: 2101 } }), undefined, 400, 'InvalidRequest', /yearTo must be an integer/],
    ['a field name that is not an identifier', JSON.stringify({ 'question': 'x', '<script>': 1 }), undefined, 400, 'UnknownField', /a field with an invalid name/],
    ['an oversized body', JSON.stringify({ question: 'x', pad: 'y'.repeat(20_000) }), undefined, 413, 'PayloadTooLarge', /at most/],
  ])('%s', async (_name, body, headers, status, code, message) => {
    const e = event(body, headers);
    const response = await callRaw(e);
    expect(response.status).toBe(status);
    expect(Object.keys(response.body).sort()).toEqual(['error', 'requestId']);
    const expected: ApiErrorBody = { error: { code, message: expect.stringMatching(message) }, requestId: e.requestContext.requestId };
    expect(response.body).toEqual(expected);
    expect(bedrock.requests).toHaveLength(0);
    // Nothing of the input is echoed but plain field names.
    for (const unsafe of ['no_such_dataset', 'OR 1=1', '<script>', 'abc def', 'other']) expect(JSON.stringify(response.body)).not.toContain(unsafe);
  });

  test('exactly 1000 characters (of any script) and multi-line questions are accepted', async () => {
    expect((await call({ question: 'ç'.repeat(999) + '😀' })).status).toBe(200);
    expect((await call({ question: 'Carga do SE\nem 2023?\tE do NE?' })).status).toBe(200);
    expect(sent()[1].input.text).toBe('Carga do SE\nem 2023?\tE do NE?');
  });

  test('a base64-encoded body and content-type with charset are accepted', async () => {
    const e = event(Buffer.from(JSON.stringify({ question: 'Carga?' })).toString('base64'), { 'content-type': 'application/json; charset=utf-8' });
    const { status } = await callRaw({ ...e, isBase64Encoded: true });
    expect(status).toBe(200);
    expect(sent()[0].input.text).toBe('Carga?');
  });

  test('every catalog dataset is accepted as a filter', async () => {
    for (const d of CATALOG) expect((await call({ question: 'x', filters: { dataset: d.id } })).status).toBe(200);
  });
});

describe('Bedrock errors become API errors without the exception text', () => {
  test.each<[string, number, number, string, RegExp]>([
    ['ThrottlingException', 429, 429, 'TooManyRequests', /retry later/],
    ['ServiceQuotaExceededException', 400, 429, 'TooManyRequests', /retry later/],
    ['AccessDeniedException', 403, 503, 'ModelNotAccessible', /generation model is not accessible/],
    ['ValidationException', 400, 400, 'InvalidQuestion', /could not be processed/],
    ['ResourceNotFoundException', 404, 503, 'KnowledgeBaseUnavailable', /knowledge base is not available/],
    ['InternalServerException', 500, 500, 'InternalError', /could not be completed/],
    ['DependencyFailedException', 424, 500, 'InternalError', /could not be completed/],
  ])('%s (HTTP %d) → %d', async (error, bedrockStatus, status, code, message) => {
    bedrock.onRetrieveAndGenerate = () => ({ error, status: bedrockStatus, message: SECRET });
    const { status: got, body, requestId } = await call({ question: 'Carga?', sessionId: ANSWER.sessionId });
    expect(got).toBe(status);
    expect(body).toEqual({ error: { code, message: expect.stringMatching(message) }, requestId });
    const text = JSON.stringify(body);
    expect(text).not.toContain('secret-role');
    expect(text).not.toContain(error);
    // The details go to the log, with the request id.
    const logged = consoleError.mock.calls.map((c) => JSON.parse(c[0] as string));
    expect(logged).toContainEqual(expect.objectContaining({ level: 'ERROR', message: 'bedrock error', requestId, errorType: error, errorMessage: SECRET }));
  });

  test('an error type the SDK does not model (HTTP 502) is a 500 without its text', async () => {
    bedrock.onRetrieveAndGenerate = () => ({ error: 'Weird', status: 502, message: SECRET });
    const { status, body } = await call({ question: 'Carga?' });
    expect(status).toBe(500);
    expect(JSON.stringify(body)).not.toContain('secret-role');
  });
});
