import { randomBytes } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, Http2Server, Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { AddressInfo } from 'node:net';
import { ListObjectsCommand, S3Client } from '@aws-sdk/client-s3';
import { LocalHttpServer } from '../local-http';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: any;
}

export type StubReply =
  | { readonly body: unknown }
  | { readonly error: string; readonly status: number; readonly message: string };

/**
 * A cleartext HTTP/2 server speaking REST-JSON (the bedrock-runtime and bedrock-agent-runtime SDK clients' default
 * handler is HTTP/2): it records every request and answers with what `route` returns, `undefined` meaning an
 * unknown operation (404).
 */
class LocalHttp2Json {
  private server?: Http2Server;
  private readonly sessions = new Set<Http2Session>();
  readonly requests: RecordedRequest[] = [];
  /** Errors thrown by a test's hook or script (answered 500): a test should expect none. */
  readonly hookErrors: Error[] = [];

  constructor(private readonly route: (method: string, path: string, body: any) => StubReply | undefined | Promise<StubReply | undefined>) {}

  async start(): Promise<string> {
    this.server = createServer();
    this.server.on('session', (session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
    });
    this.server.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => void this.answer(stream, headers, Buffer.concat(chunks).toString('utf8')));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private async answer(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, text: string): Promise<void> {
    const method = String(headers[':method']);
    const path = String(headers[':path']);
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    this.requests.push({ method, path, headers, body });
    let reply: StubReply;
    try {
      reply = (await this.route(method, path, body)) ?? { error: 'UnknownOperationException', status: 404, message: 'unknown operation' };
    } catch (e) {
      // A test's hook that throws is the test's bug, not the client's: a 500, and kept for the test to see.
      this.hookErrors.push(e as Error);
      reply = { error: 'InternalServerException', status: 500, message: `local fake: ${(e as Error).message}` };
    }
    const requestId = randomBytes(16).toString('hex');
    // The client gave up (its deadline): nothing to answer.
    if (stream.destroyed || stream.closed) return;
    if ('error' in reply) {
      stream.respond({ ':status': reply.status, 'content-type': 'application/json', 'x-amzn-errortype': reply.error, 'x-amzn-requestid': requestId });
      stream.end(JSON.stringify({ message: reply.message }));
    } else {
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-amzn-requestid': requestId });
      stream.end(JSON.stringify(reply.body));
    }
  }

  reset(): void {
    this.requests.length = 0;
    this.hookErrors.length = 0;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    // The handler's client keeps its session open: close them, or close() waits for ever.
    for (const session of this.sessions) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const validation = (message: string): StubReply => ({ error: 'ValidationException', status: 400, message });

/**
 * A local bedrock-agent-runtime endpoint over cleartext HTTP/2 in the REST-JSON protocol:
 * `POST /retrieveAndGenerate` answered by `onRetrieveAndGenerate`, and `POST /knowledgebases/{id}/retrieve`
 * (Retrieve) answered by `onRetrieve` after the request is checked as the service checks it (query text
 * 1 to 20,000 characters, `numberOfResults` 1 to 100). Every request is recorded.
 */
export class LocalBedrockAgentRuntime {
  private readonly server = new LocalHttp2Json((method, path, body) => this.route(method, path, body));
  readonly requests = this.server.requests;
  readonly hookErrors = this.server.hookErrors;
  onRetrieveAndGenerate: (body: any) => StubReply = () => ({ body: { sessionId: 'session-1', output: { text: '' }, citations: [] } });
  /** Gets the knowledge base id (decoded) and the request body; the default finds nothing. */
  onRetrieve: (knowledgeBaseId: string, body: any) => StubReply = () => ({ body: { retrievalResults: [] } });

  start(): Promise<string> {
    return this.server.start();
  }

  /** The Retrieve requests so far, with their knowledge base id. */
  get retrieves(): Array<{ knowledgeBaseId: string; body: any }> {
    return this.requests.flatMap((r) => {
      const m = RETRIEVE_PATH.exec(r.path);
      return r.method === 'POST' && m ? [{ knowledgeBaseId: decodeURIComponent(m[1]), body: r.body }] : [];
    });
  }

  private route(method: string, path: string, body: any): StubReply | undefined {
    if (method !== 'POST') return undefined;
    if (path === '/retrieveAndGenerate') return this.onRetrieveAndGenerate(body);
    const m = RETRIEVE_PATH.exec(path);
    if (!m) return undefined;
    const text = body?.retrievalQuery?.text;
    if (typeof text !== 'string' || text.length < 1 || text.length > 20_000) {
      return validation('1 validation error detected: Value at \'retrievalQuery.text\' failed to satisfy constraint: Member must have length between 1 and 20000');
    }
    const n = body?.retrievalConfiguration?.vectorSearchConfiguration?.numberOfResults;
    if (n !== undefined && (!Number.isInteger(n) || n < 1 || n > 100)) {
      return validation('1 validation error detected: Value at \'retrievalConfiguration.vectorSearchConfiguration.numberOfResults\' failed to satisfy constraint: Member must have value between 1 and 100');
    }
    return this.onRetrieve(decodeURIComponent(m[1]), body);
  }

  reset(): void {
    this.server.reset();
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

const RETRIEVE_PATH = /^\/knowledgebases\/([^/?]+)\/retrieve$/;

/**
 * A local bedrock-agent endpoint (REST-JSON over HTTP/1.1) for ingestion jobs, following the documentation:
 * - `StartIngestionJob` (`PUT /knowledgebases/{kb}/datasources/{ds}/ingestionjobs/`, 202) answers 409
 *   `ConflictException` while another job of the same data source or knowledge base is not ended, and when five
 *   jobs of the account run (service quotas: one per data source, one per knowledge base, five per account).
 * - `GetIngestionJob` (`GET .../ingestionjobs/{id}`) gives the job with its status (STARTING, IN_PROGRESS, then
 *   COMPLETE or FAILED), statistics and failureReasons; unknown ids: 404 `ResourceNotFoundException`.
 * - Jobs take simulated time on the fake's own clock (`advance`): 5 s starting, then 60 s plus 2 s per added or changed
 *   document. The documents are the data source's prefix in S3 as listed at the start (incremental: a document counts
 *   as new or modified against what the last COMPLETE job of the data source indexed).
 */
export interface LocalDataSource {
  readonly knowledgeBaseId: string;
  readonly bucket: string;
  readonly prefix: string;
}

interface LocalJob {
  readonly knowledgeBaseId: string;
  readonly dataSourceId: string;
  readonly ingestionJobId: string;
  readonly description?: string;
  readonly startedAt: number;
  readonly endsAt: number;
  readonly failure?: string;
  readonly documents: Map<string, string>;
  readonly statistics: Record<string, number>;
  settled?: boolean;
}

export class LocalBedrockAgent {
  private readonly server = new LocalHttpServer((req, res) => void this.handle(req, res));
  private readonly jobs = new Map<string, LocalJob>();
  private readonly indexed = new Map<string, Map<string, string>>();
  private readonly failures: string[] = [];
  /** Simulated time, ms. */
  clock = Date.UTC(2026, 0, 1);
  /** ConflictExceptions answered. */
  conflicts = 0;

  constructor(private readonly s3: S3Client, private readonly dataSources: Record<string, LocalDataSource>) {}

  start(): Promise<string> {
    return this.server.start();
  }

  close(): Promise<void> {
    return this.server.close();
  }

  advance(seconds: number): void {
    this.clock += seconds * 1000;
  }

  /** The next `count` jobs end FAILED with `reason`. */
  failNext(count: number, reason: string): void {
    for (let i = 0; i < count; i++) this.failures.push(reason);
  }

  /** Every job so far, in start order: [start, end) in simulated ms. */
  get history(): Array<{ id: string; dataSourceId: string; start: number; end: number; status: string; statistics: Record<string, number> }> {
    return [...this.jobs.values()].map((j) => ({
      id: j.ingestionJobId, dataSourceId: j.dataSourceId, start: j.startedAt, end: j.endsAt, status: this.status(j), statistics: j.statistics,
    }));
  }

  private status(job: LocalJob): string {
    if (this.clock < job.startedAt + 5000) return 'STARTING';
    if (this.clock < job.endsAt) return 'IN_PROGRESS';
    if (!job.settled) {
      job.settled = true;
      if (!job.failure) this.indexed.set(job.dataSourceId, job.documents);
    }
    return job.failure ? 'FAILED' : 'COMPLETE';
  }

  private view(job: LocalJob): Record<string, unknown> {
    const status = this.status(job);
    return {
      knowledgeBaseId: job.knowledgeBaseId,
      dataSourceId: job.dataSourceId,
      ingestionJobId: job.ingestionJobId,
      ...(job.description ? { description: job.description } : {}),
      status,
      statistics: status === 'COMPLETE' || status === 'FAILED' ? job.statistics : { numberOfDocumentsScanned: 0 },
      ...(status === 'FAILED' ? { failureReasons: [job.failure] } : {}),
      startedAt: new Date(job.startedAt).toISOString(),
      updatedAt: new Date(Math.min(this.clock, job.endsAt)).toISOString(),
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
    const reply = (status: number, payload: unknown, error?: string) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': 'local', ...(error ? { 'x-amzn-errortype': error } : {}) });
      res.end(JSON.stringify(payload));
    };
    const match = /^\/knowledgebases\/([^/]+)\/datasources\/([^/]+)\/ingestionjobs\/([^/?]*)/.exec(req.url ?? '');
    if (!match) return reply(404, { message: 'unknown operation' }, 'UnknownOperationException');
    const [, knowledgeBaseId, dataSourceId, jobId] = match.map(decodeURIComponent);
    const source = this.dataSources[dataSourceId];
    if (!source || source.knowledgeBaseId !== knowledgeBaseId) return reply(404, { message: 'no such data source' }, 'ResourceNotFoundException');
    if (req.method === 'GET' && jobId) {
      const job = this.jobs.get(jobId);
      if (!job || job.dataSourceId !== dataSourceId) return reply(404, { message: `no ingestion job ${jobId}` }, 'ResourceNotFoundException');
      return reply(200, { ingestionJob: this.view(job) });
    }
    if (req.method !== 'PUT' || jobId) return reply(404, { message: 'unknown operation' }, 'UnknownOperationException');
    const running = [...this.jobs.values()].filter((j) => !['COMPLETE', 'FAILED'].includes(this.status(j)));
    if (running.some((j) => j.dataSourceId === dataSourceId || j.knowledgeBaseId === knowledgeBaseId) || running.length >= 5) {
      this.conflicts++;
      return reply(409, { message: 'An ingestion job is already running for this data source or knowledge base' }, 'ConflictException');
    }
    const documents = await this.list(source);
    const before = this.indexed.get(dataSourceId) ?? new Map<string, string>();
    const docs = [...documents.keys()].filter((k) => !k.endsWith('.metadata.json'));
    const changed = (k: string) => before.has(k) && before.get(k) !== documents.get(k);
    const failure = this.failures.shift();
    const added = docs.filter((k) => !before.has(k)).length;
    const modified = docs.filter(changed).length;
    const statistics = {
      numberOfDocumentsScanned: docs.length,
      numberOfMetadataDocumentsScanned: documents.size - docs.length,
      numberOfNewDocumentsIndexed: failure ? 0 : added,
      numberOfModifiedDocumentsIndexed: failure ? 0 : modified,
      numberOfMetadataDocumentsModified: 0,
      numberOfDocumentsDeleted: [...before.keys()].filter((k) => !documents.has(k) && !k.endsWith('.metadata.json')).length,
      numberOfDocumentsFailed: failure ? added + modified : 0,
    };
    const id = `J${String(this.jobs.size + 1).padStart(9, '0')}`;
    const job: LocalJob = {
      knowledgeBaseId,
      dataSourceId,
      ingestionJobId: id,
      description: body.description,
      startedAt: this.clock,
      endsAt: this.clock + 65_000 + 2000 * (added + modified),
      failure,
      documents,
      statistics,
    };
    this.jobs.set(id, job);
    return reply(202, { ingestionJob: this.view(job) });
  }

  private async list(source: LocalDataSource): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    let Marker: string | undefined;
    for (;;) {
      const page = await this.s3.send(new ListObjectsCommand({ Bucket: source.bucket, Prefix: source.prefix, Marker }));
      for (const o of page.Contents ?? []) found.set(o.Key!, o.ETag ?? '');
      if (!page.IsTruncated || !page.Contents?.length) return found;
      Marker = page.Contents[page.Contents.length - 1].Key;
    }
  }
}

/**
 * A local bedrock-runtime endpoint over cleartext HTTP/2 (the SDK client's default handler, `NodeHttp2Handler`):
 * Converse, `POST /model/{modelId}/converse` in REST-JSON, answered by a scripted model.
 *
 * It checks a request as strictly as the service where a lenient fake would hide a handler bug, and answers 400
 * `ValidationException` (with the service's wording where known) when:
 * - `messages` is empty, does not start with a user message, or does not alternate user and assistant;
 * - a content block is not exactly one known member, a text block is blank;
 * - a toolUse of an assistant message is not answered by a toolResult with its id in the next (user) message, or a
 *   toolResult answers no toolUse of the previous message, or an id is answered twice;
 * - an error toolResult has no content;
 * - the conversation holds toolUse or toolResult blocks and `toolConfig` is absent;
 * - a tool's name is not `^[a-zA-Z0-9_-]{1,64}$`, is repeated, or its `inputSchema.json` is not a JSON object;
 *   `toolChoice.tool.name` names no tool;
 * - `inferenceConfig.maxTokens` is not an integer ≥ 1, `temperature` or `topP` is outside [0, 1];
 * - `guardrailConfig` lacks its identifier or version; the model id is not one of `models` (when given).
 * Only a valid request reaches the scripted model.
 */

export type ContentBlock =
  | { readonly text: string }
  | { readonly toolUse: { readonly toolUseId?: string; readonly name: string; readonly input: unknown } };

export type StopReason = 'end_turn' | 'tool_use' | 'max_tokens' | 'stop_sequence' | 'guardrail_intervened' | 'content_filtered';

/** What the model answers in one turn. Usage defaults to an estimate from the request's and reply's lengths. */
export interface ModelReply {
  readonly content: ContentBlock[];
  readonly stopReason: StopReason;
  readonly usage?: { readonly inputTokens: number; readonly outputTokens: number };
  readonly latencyMs?: number;
  /** Real time the fake waits before answering (a slow model, for deadlines). */
  readonly delayMs?: number;
}

/** A Converse error, as the service answers it (`x-amzn-errortype`, status, message). */
export interface ModelError {
  readonly error: string;
  readonly status: number;
  readonly message: string;
}

export type ModelTurn = ModelReply | ModelError;

/** A toolResult of the request's last message, joined to the toolUse it answers. */
export interface ToolResultView {
  readonly toolUseId: string;
  /** The tool the model called, and the input it gave. */
  readonly name: string;
  readonly input: any;
  readonly status?: 'success' | 'error';
  /** The `json` of the result's first json block, if any. */
  readonly json?: any;
  /** The result's text blocks, joined by newlines. */
  readonly text: string;
  /** The result's text blocks. */
  readonly texts: string[];
}

/** One Converse call as the scripted model sees it. */
export interface ConverseCall {
  readonly modelId: string;
  readonly body: any;
  /** Assistant messages in the request: 0 for the question, 1 after the first tool round, … (a retry repeats it). */
  readonly turn: number;
  /** The toolResults of the last message (empty on turn 0). */
  readonly results: ToolResultView[];
}

export type ScriptedModel = (call: ConverseCall) => ModelTurn;

export const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const TOOL_USE_ID = /^[a-zA-Z0-9_-]{1,64}$/;
const CONTENT_MEMBERS = ['text', 'image', 'document', 'video', 'toolUse', 'toolResult', 'guardContent', 'cachePoint', 'reasoningContent', 'citationsContent'];

/** Service errors of Converse, for scripts. */
export const converseErrors = {
  throttling: (): ModelError => ({ error: 'ThrottlingException', status: 429, message: 'Too many requests, please wait before trying again.' }),
  validation: (message: string): ModelError => ({ error: 'ValidationException', status: 400, message }),
  accessDenied: (): ModelError => ({ error: 'AccessDeniedException', status: 403, message: "You don't have access to the model with the specified model ID." }),
  timeout: (): ModelError => ({ error: 'ModelTimeoutException', status: 408, message: 'Model has timed out in processing the request. Try your request again.' }),
  unavailable: (): ModelError => ({ error: 'ServiceUnavailableException', status: 503, message: 'Bedrock is unable to process your request.' }),
  modelError: (): ModelError => ({ error: 'ModelErrorException', status: 424, message: 'The model produced an invalid response.' }),
  notReady: (): ModelError => ({ error: 'ModelNotReadyException', status: 429, message: 'Model is not ready to serve inference requests.' }),
  internal: (): ModelError => ({ error: 'InternalServerException', status: 500, message: 'The server encountered an internal error.' }),
};

/** A final answer. */
export function say(text: string, usage?: ModelReply['usage']): ModelReply {
  return { content: [{ text }], stopReason: 'end_turn', ...(usage ? { usage } : {}) };
}

/** One message of tool calls (several: parallel calls), optionally after a text block; the server gives each an id. */
export function callTools(calls: Array<{ name: string; input: unknown }>, options: { text?: string; usage?: ModelReply['usage'] } = {}): ModelReply {
  return {
    content: [...(options.text ? [{ text: options.text }] : []), ...calls.map(({ name, input }) => ({ toolUse: { name, input } }))],
    stopReason: 'tool_use',
    ...(options.usage ? { usage: options.usage } : {}),
  };
}

/** A step of a script: a fixed turn, or a function of the last tool results (and the whole call). */
export type Step = ModelTurn | ((results: ToolResultView[], call: ConverseCall) => ModelTurn);

/**
 * A model that plays `steps[turn]` at each turn; past the last step it answers a 500 (the test's script ran out,
 * which a test sees as the handler asking more than the script foresaw).
 */
export function script(...steps: Step[]): ScriptedModel {
  return (call) => {
    const step = steps[call.turn];
    if (step === undefined) return { error: 'InternalServerException', status: 500, message: `script has ${steps.length} steps, turn ${call.turn} asked` };
    return typeof step === 'function' ? step(call.results, call) : step;
  };
}

const isObject = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The first problem of a Converse request, in the service's words where known; undefined: valid. `toolResultTurns`:
 * a user message holding toolResult blocks may hold nothing else, as some model families require (Meta Llama,
 * Mistral: "Conversation blocks and tool result blocks cannot be provided in the same turn."); Anthropic's allow it.
 */
export function converseProblem(body: any, options: { toolResultTurns?: boolean } = {}): string | undefined {
  if (!isObject(body)) return 'Malformed input request, please reformat your input and try again.';
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) return 'A conversation must start with a user message. Try again with a conversation that starts with a user message.';
  if (messages[0]?.role !== 'user') return 'A conversation must start with a user message. Try again with a conversation that starts with a user message.';
  let toolBlocks = false;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (!isObject(m) || (m.role !== 'user' && m.role !== 'assistant')) return `messages.${i}.role: must be user or assistant`;
    if (i > 0 && messages[i - 1].role === m.role) {
      return 'A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.';
    }
    if (!Array.isArray(m.content) || m.content.length === 0) return `The content field in the Message object at messages.${i} is empty. Add a ContentBlock object to the content field and try again.`;
    for (let j = 0; j < m.content.length; j++) {
      const block = m.content[j];
      const keys = isObject(block) ? Object.keys(block) : [];
      if (keys.length !== 1 || !CONTENT_MEMBERS.includes(keys[0])) return `messages.${i}.content.${j}: a ContentBlock must hold exactly one member`;
      if ('text' in block && (typeof block.text !== 'string' || block.text.trim() === '')) {
        return `The text field in the ContentBlock object at messages.${i}.content.${j} is blank. Add text to the text field, and try again.`;
      }
      if ('toolUse' in block) {
        toolBlocks = true;
        if (m.role !== 'assistant') return `messages.${i}.content.${j}: toolUse blocks are only valid in assistant messages`;
        const u = block.toolUse;
        if (!isObject(u) || typeof u.toolUseId !== 'string' || !TOOL_USE_ID.test(u.toolUseId)) return `messages.${i}.content.${j}.toolUse.toolUseId: invalid`;
        if (typeof u.name !== 'string' || !TOOL_NAME.test(u.name)) return `messages.${i}.content.${j}.toolUse.name: invalid`;
        if (!('input' in u)) return `messages.${i}.content.${j}.toolUse.input: missing`;
      }
      if ('toolResult' in block) {
        toolBlocks = true;
        if (m.role !== 'user') return `messages.${i}.content.${j}: toolResult blocks are only valid in user messages`;
        const r = block.toolResult;
        if (!isObject(r) || typeof r.toolUseId !== 'string' || !TOOL_USE_ID.test(r.toolUseId)) return `messages.${i}.content.${j}.toolResult.toolUseId: invalid`;
        if (r.status !== undefined && r.status !== 'success' && r.status !== 'error') return `messages.${i}.content.${j}.toolResult.status: must be success or error`;
        if (!Array.isArray(r.content)) return `messages.${i}.content.${j}.toolResult.content: missing`;
        if (r.status === 'error' && r.content.length === 0) {
          return `The content field at messages.${i}.content.${j}.toolResult cannot be empty when status value is error.`;
        }
        for (const c of r.content) {
          const ck = isObject(c) ? Object.keys(c) : [];
          if (ck.length !== 1 || !['text', 'json', 'image', 'document', 'video'].includes(ck[0])) return `messages.${i}.content.${j}.toolResult.content: a block must hold exactly one member`;
          if ('json' in c && !isObject(c.json) && !Array.isArray(c.json)) return `messages.${i}.content.${j}.toolResult.content.json: must be a JSON document`;
          if ('text' in c && typeof c.text !== 'string') return `messages.${i}.content.${j}.toolResult.content.text: must be a string`;
        }
      }
    }
    // Every toolUse is answered in the next message, which answers nothing else.
    const uses: string[] = m.role === 'assistant' ? m.content.filter((b: any) => 'toolUse' in b).map((b: any) => b.toolUse.toolUseId) : [];
    if (new Set(uses).size !== uses.length) return `messages.${i}.content: toolUse ids must be unique`;
    const prev = i > 0 ? messages[i - 1] : undefined;
    if (m.role === 'user') {
      const answered: string[] = m.content.filter((b: any) => 'toolResult' in b).map((b: any) => b.toolResult.toolUseId);
      const asked: string[] = prev ? prev.content.filter((b: any) => 'toolUse' in b).map((b: any) => b.toolUse.toolUseId) : [];
      if (options.toolResultTurns && answered.length > 0 && answered.length < m.content.length) {
        return `messages.${i}.content: Conversation blocks and tool result blocks cannot be provided in the same turn.`;
      }
      if (answered.length > asked.length) return `The number of toolResult blocks at messages.${i}.content exceeds the number of toolUse blocks of previous turn.`;
      const unknown = answered.filter((id) => !asked.includes(id));
      if (unknown.length) return `messages.${i}.content: toolResult for unknown toolUseId ${unknown.join(', ')}`;
      if (new Set(answered).size !== answered.length) return `messages.${i}.content: a toolUseId is answered twice`;
      const missing = asked.filter((id) => !answered.includes(id));
      if (missing.length) return `Expected toolResult blocks at messages.${i}.content for the following Ids: ${missing.join(', ')}`;
    }
    if (uses.length && i === messages.length - 1) return `Expected toolResult blocks at messages.${i + 1}.content for the following Ids: ${uses.join(', ')}`;
  }
  const toolConfig = body.toolConfig;
  if (toolBlocks && toolConfig === undefined) return 'The toolConfig field must be defined when using toolUse and toolResult content blocks.';
  if (toolConfig !== undefined) {
    if (!isObject(toolConfig) || !Array.isArray(toolConfig.tools) || toolConfig.tools.length === 0) return 'toolConfig.tools: must hold at least one tool';
    const names = new Set<string>();
    for (let t = 0; t < toolConfig.tools.length; t++) {
      const spec = toolConfig.tools[t]?.toolSpec;
      if (!isObject(spec)) return `toolConfig.tools.${t}: must be a toolSpec`;
      if (typeof spec.name !== 'string' || !TOOL_NAME.test(spec.name)) {
        return `1 validation error detected: Value at 'toolConfig.tools.${t}.member.toolSpec.name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_-]{1,64}$`;
      }
      if (names.has(spec.name)) return `toolConfig.tools: tool names must be unique (${spec.name})`;
      names.add(spec.name);
      if (spec.description !== undefined && (typeof spec.description !== 'string' || spec.description.length < 1)) return `toolConfig.tools.${t}.toolSpec.description: must not be empty`;
      if (!isObject(spec.inputSchema) || !isObject(spec.inputSchema.json) || spec.inputSchema.json.type !== 'object') {
        return `The value at toolConfig.tools.${t}.toolSpec.inputSchema.json.type must be object`;
      }
    }
    const choice = toolConfig.toolChoice;
    if (choice !== undefined) {
      if (!isObject(choice) || Object.keys(choice).length !== 1 || !['auto', 'any', 'tool'].includes(Object.keys(choice)[0])) return 'toolConfig.toolChoice: must be one of auto, any, tool';
      if ('tool' in choice && !names.has(choice.tool?.name)) return `toolConfig.toolChoice.tool.name: no tool named ${choice.tool?.name}`;
    }
  }
  const inference = body.inferenceConfig;
  if (inference !== undefined) {
    if (!isObject(inference)) return 'inferenceConfig: must be an object';
    if (inference.maxTokens !== undefined && (!Number.isInteger(inference.maxTokens) || inference.maxTokens < 1)) {
      return "1 validation error detected: Value at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1";
    }
    for (const k of ['temperature', 'topP']) {
      if (inference[k] !== undefined && (typeof inference[k] !== 'number' || inference[k] < 0 || inference[k] > 1)) {
        return `1 validation error detected: Value at 'inferenceConfig.${k}' failed to satisfy constraint: Member must have value between 0 and 1`;
      }
    }
  }
  if (body.system !== undefined) {
    if (!Array.isArray(body.system)) return 'system: must be a list';
    for (let k = 0; k < body.system.length; k++) {
      const b = body.system[k];
      if (!isObject(b) || Object.keys(b).length !== 1) return `system.${k}: a SystemContentBlock must hold exactly one member`;
      if ('text' in b && (typeof b.text !== 'string' || b.text.trim() === '')) return `The text field in the SystemContentBlock object at system.${k} is blank.`;
    }
  }
  const guardrail = body.guardrailConfig;
  if (guardrail !== undefined && (!isObject(guardrail) || typeof guardrail.guardrailIdentifier !== 'string' || typeof guardrail.guardrailVersion !== 'string')) {
    return 'guardrailConfig: guardrailIdentifier and guardrailVersion are required';
  }
  return undefined;
}

/** The toolResults of the request's last message, each joined to the toolUse it answers. */
function lastResults(messages: any[]): ToolResultView[] {
  const last = messages[messages.length - 1];
  const prev = messages[messages.length - 2];
  if (last?.role !== 'user' || !prev) return [];
  const uses = new Map<string, any>(prev.content.filter((b: any) => 'toolUse' in b).map((b: any) => [b.toolUse.toolUseId, b.toolUse]));
  return last.content.filter((b: any) => 'toolResult' in b).map((b: any) => {
    const r = b.toolResult;
    const use = uses.get(r.toolUseId);
    const json = r.content.find((c: any) => 'json' in c)?.json;
    return {
      toolUseId: r.toolUseId,
      name: use.name,
      input: use.input,
      ...(r.status ? { status: r.status } : {}),
      ...(json !== undefined ? { json } : {}),
      texts: r.content.filter((c: any) => 'text' in c).map((c: any) => c.text),
      text: r.content.filter((c: any) => 'text' in c).map((c: any) => c.text).join('\n'),
    };
  });
}

/** A tool-use id like the service's (`tooluse_` and 22 URL-safe characters). */
function toolUseId(): string {
  return `tooluse_${randomBytes(16).toString('base64url').slice(0, 22)}`;
}

const estimateTokens = (value: unknown) => Math.max(1, Math.ceil(JSON.stringify(value).length / 4));

export interface ConverseExchange {
  readonly modelId: string;
  readonly body: any;
  /** The answer body (200), or the error answered. */
  readonly reply?: any;
  readonly error?: ModelError;
}

/** The default model: answers every question `ok`. */
export const ANSWER_OK: ScriptedModel = () => say('ok');

export class LocalBedrockRuntime {
  private readonly server = new LocalHttp2Json((method, path, body) => this.route(method, path, body));
  /** Every HTTP request, valid or not. */
  readonly requests = this.server.requests;
  /** Errors thrown by the script (each answered 500). */
  readonly hookErrors = this.server.hookErrors;
  /** Every Converse call with what was answered. */
  readonly exchanges: ConverseExchange[] = [];
  model: ScriptedModel = ANSWER_OK;
  /** When set, only these model ids (or ARNs) are accepted. */
  models?: string[];
  /** Model ids whose user turns of tool results may hold nothing else (see `converseProblem`). */
  toolResultTurns: (modelId: string) => boolean = () => false;

  start(): Promise<string> {
    return this.server.start();
  }

  /** Summed usage of the 200 answers. */
  get usage(): { inputTokens: number; outputTokens: number; calls: number } {
    const ok = this.exchanges.filter((e) => e.reply);
    return {
      inputTokens: ok.reduce((s, e) => s + e.reply.usage.inputTokens, 0),
      outputTokens: ok.reduce((s, e) => s + e.reply.usage.outputTokens, 0),
      calls: ok.length,
    };
  }

  private async route(method: string, path: string, body: any): Promise<StubReply | undefined> {
    const m = /^\/model\/([^/?]+)\/converse$/.exec(path);
    if (method !== 'POST' || !m) return undefined;
    const modelId = decodeURIComponent(m[1]);
    const record = (e: Omit<ConverseExchange, 'modelId' | 'body'>): void => void this.exchanges.push({ modelId, body, ...e });
    if (this.models && !this.models.includes(modelId)) {
      const error = converseErrors.validation('The provided model identifier is invalid.');
      record({ error });
      return error;
    }
    const problem = converseProblem(body, { toolResultTurns: this.toolResultTurns(modelId) });
    if (problem) {
      const error = converseErrors.validation(problem);
      record({ error });
      return error;
    }
    const call: ConverseCall = {
      modelId,
      body,
      turn: body.messages.filter((x: any) => x.role === 'assistant').length,
      results: lastResults(body.messages),
    };
    const turn = this.model(call);
    if ('error' in turn) {
      record({ error: turn });
      return turn;
    }
    if (turn.delayMs) await new Promise((resolve) => setTimeout(resolve, turn.delayMs));
    const content = turn.content.map((b) => ('toolUse' in b ? { toolUse: { ...b.toolUse, toolUseId: b.toolUse.toolUseId ?? toolUseId() } } : b));
    const inputTokens = turn.usage?.inputTokens ?? estimateTokens([body.system, body.messages, body.toolConfig]);
    const outputTokens = turn.usage?.outputTokens ?? estimateTokens(content);
    const reply = {
      output: { message: { role: 'assistant', content } },
      stopReason: turn.stopReason,
      usage: { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens },
      metrics: { latencyMs: turn.latencyMs ?? 100 },
    };
    record({ reply });
    return { body: reply };
  }

  reset(): void {
    this.server.reset();
    this.exchanges.length = 0;
  }

  close(): Promise<void> {
    return this.server.close();
  }
}
