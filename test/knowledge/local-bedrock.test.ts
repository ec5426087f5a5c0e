import { BedrockAgentRuntimeClient, RetrieveCommand, ValidationException as AgentValidationException } from '@aws-sdk/client-bedrock-agent-runtime';
import {
  BedrockRuntimeClient, ConverseCommand, ConverseCommandInput, Message, ThrottlingException, ToolConfiguration, ValidationException,
} from '@aws-sdk/client-bedrock-runtime';
import { ANSWER_OK, callTools, converseErrors, converseProblem, LocalBedrockAgentRuntime, LocalBedrockRuntime, say, script } from './local-bedrock';

/**
 * The local Bedrock fakes themselves, with the real SDK clients (their default HTTP/2 handler): Converse answers
 * a scripted model in the service's shape, and refuses, as the service does, conversations a handler could get
 * wrong (an unanswered toolUse, a toolResult for no toolUse, tool blocks without toolConfig, …) before the model
 * sees them; Retrieve checks its bounds and answers the hook's results.
 */

const CREDENTIALS = { accessKeyId: 'x', secretAccessKey: 'x' };
const PROFILE = 'arn:aws:bedrock:sa-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0';
const TOOLS: ToolConfiguration = {
  tools: [
    { toolSpec: { name: 'query_time_series', description: 'Queries a series', inputSchema: { json: { type: 'object', properties: { dataset: { type: 'string' } } } } } },
    { toolSpec: { name: 'list_datasets', description: 'Lists the catalog', inputSchema: { json: { type: 'object', properties: {} } } } },
  ],
};

let runtime: LocalBedrockRuntime;
let agent: LocalBedrockAgentRuntime;
let client: BedrockRuntimeClient;
let agentClient: BedrockAgentRuntimeClient;

beforeAll(async () => {
  runtime = new LocalBedrockRuntime();
  agent = new LocalBedrockAgentRuntime();
  // One attempt: a retried 429 would hide what the fake answered.
  client = new BedrockRuntimeClient({ endpoint: await runtime.start(), region: 'sa-east-1', credentials: CREDENTIALS, maxAttempts: 1 });
  agentClient = new BedrockAgentRuntimeClient({ endpoint: await agent.start(), region: 'sa-east-1', credentials: CREDENTIALS, maxAttempts: 1 });
});

afterAll(async () => {
  client?.destroy();
  agentClient?.destroy();
  await runtime?.close();
  await agent?.close();
});

beforeEach(() => {
  runtime.reset();
  agent.reset();
  runtime.models = undefined;
  runtime.model = ANSWER_OK;
});

const question = (text: string): Message => ({ role: 'user', content: [{ text }] });

async function rejection(input: ConverseCommandInput): Promise<any> {
  return client.send(new ConverseCommand(input)).then(() => undefined, (e) => e);
}

describe('LocalBedrockRuntime (Converse)', () => {
  test('a two-turn tool loop with parallel calls: the service\'s response shape, ids joined to results, usage as scripted', async () => {
    runtime.model = script(
      callTools([
        { name: 'list_datasets', input: {} },
        { name: 'query_time_series', input: { dataset: 'curva_carga' } },
      ], { text: 'Vou consultar.', usage: { inputTokens: 120, outputTokens: 30 } }),
      (results) => say(`got ${results.map((r) => `${r.name}=${r.json?.points ?? r.text}`).join(',')}`, { inputTokens: 200, outputTokens: 10 }),
    );
    const messages: Message[] = [question('Qual o pico de carga do NE?')];
    const first = await client.send(new ConverseCommand({ modelId: PROFILE, messages, toolConfig: TOOLS, inferenceConfig: { maxTokens: 512 } }));
    expect(first.stopReason).toBe('tool_use');
    expect(first.usage).toEqual({ inputTokens: 120, outputTokens: 30, totalTokens: 150 });
    expect(first.metrics?.latencyMs).toBeGreaterThan(0);
    const reply = first.output!.message!;
    expect(reply.role).toBe('assistant');
    expect(reply.content![0]).toEqual({ text: 'Vou consultar.' });
    const uses = reply.content!.slice(1).map((b) => b.toolUse!);
    expect(uses.map((u) => u.name)).toEqual(['list_datasets', 'query_time_series']);
    expect(uses[1].input).toEqual({ dataset: 'curva_carga' });
    for (const u of uses) expect(u.toolUseId).toMatch(/^tooluse_[A-Za-z0-9_-]{22}$/);
    expect(new Set(uses.map((u) => u.toolUseId)).size).toBe(2);

    messages.push(reply, {
      role: 'user',
      content: [
        { toolResult: { toolUseId: uses[0].toolUseId!, content: [{ text: 'curva_carga' }] } },
        { toolResult: { toolUseId: uses[1].toolUseId!, content: [{ json: { points: 24 } }], status: 'success' } },
      ],
    });
    const second = await client.send(new ConverseCommand({ modelId: PROFILE, messages, toolConfig: TOOLS, inferenceConfig: { maxTokens: 512 } }));
    expect(second.stopReason).toBe('end_turn');
    expect(second.output!.message!.content).toEqual([{ text: 'got list_datasets=curva_carga,query_time_series=24' }]);
    // The ARN arrives URL-encoded in the path and is recorded decoded.
    expect(runtime.exchanges.map((e) => e.modelId)).toEqual([PROFILE, PROFILE]);
    expect(runtime.requests[0].path).toBe(`/model/${encodeURIComponent(PROFILE)}/converse`);
    expect(runtime.usage).toEqual({ inputTokens: 320, outputTokens: 40, calls: 2 });
  });

  test('refuses a toolUse left unanswered, and the model is not asked', async () => {
    let asked = 0;
    runtime.model = () => (asked++, say('never'));
    const messages: Message[] = [
      question('q'),
      { role: 'assistant', content: [{ toolUse: { toolUseId: 'tooluse_a', name: 'list_datasets', input: {} } }, { toolUse: { toolUseId: 'tooluse_b', name: 'list_datasets', input: {} } }] },
      { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_a', content: [{ text: 'x' }] } }] },
    ];
    const e = await rejection({ modelId: PROFILE, messages, toolConfig: TOOLS });
    expect(e).toBeInstanceOf(ValidationException);
    expect(e.$metadata.httpStatusCode).toBe(400);
    expect(e.message).toBe('Expected toolResult blocks at messages.2.content for the following Ids: tooluse_b');
    expect(asked).toBe(0);
    expect(runtime.exchanges[0].error?.error).toBe('ValidationException');
  });

  test.each<[string, ConverseCommandInput, RegExp]>([
    ['a toolResult for no toolUse', {
      modelId: PROFILE,
      toolConfig: TOOLS,
      messages: [question('q'), { role: 'assistant', content: [{ toolUse: { toolUseId: 'tooluse_a', name: 'list_datasets', input: {} } }] },
        { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_a', content: [{ text: 'x' }] } }, { toolResult: { toolUseId: 'tooluse_z', content: [{ text: 'y' }] } }] }],
    }, /exceeds the number of toolUse blocks/],
    ['a toolResult answering another id', {
      modelId: PROFILE,
      toolConfig: TOOLS,
      messages: [question('q'), { role: 'assistant', content: [{ toolUse: { toolUseId: 'tooluse_a', name: 'list_datasets', input: {} } }] },
        { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_z', content: [{ text: 'y' }] } }] }],
    }, /unknown toolUseId tooluse_z/],
    ['a conversation ending on an unanswered toolUse', {
      modelId: PROFILE,
      toolConfig: TOOLS,
      messages: [question('q'), { role: 'assistant', content: [{ toolUse: { toolUseId: 'tooluse_a', name: 'list_datasets', input: {} } }] }],
    }, /^Expected toolResult blocks at messages\.2\.content for the following Ids: tooluse_a$/],
    ['tool blocks without toolConfig', {
      modelId: PROFILE,
      messages: [question('q'), { role: 'assistant', content: [{ toolUse: { toolUseId: 'tooluse_a', name: 'list_datasets', input: {} } }] },
        { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_a', content: [{ text: 'x' }] } }] }],
    }, /^The toolConfig field must be defined when using toolUse and toolResult content blocks\.$/],
    ['an error toolResult without content', {
      modelId: PROFILE,
      toolConfig: TOOLS,
      messages: [question('q'), { role: 'assistant', content: [{ toolUse: { toolUseId: 'tooluse_a', name: 'list_datasets', input: {} } }] },
        { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_a', content: [], status: 'error' } }] }],
    }, /cannot be empty when status value is error/],
    ['a conversation starting with the assistant', { modelId: PROFILE, messages: [{ role: 'assistant', content: [{ text: 'hi' }] }] }, /must start with a user message/],
    ['two user messages in a row', { modelId: PROFILE, messages: [question('a'), question('b')] }, /must alternate between user and assistant/],
    ['a blank text block', { modelId: PROFILE, messages: [question('  ')] }, /is blank/],
    ['a tool name with a dot', {
      modelId: PROFILE,
      messages: [question('q')],
      toolConfig: { tools: [{ toolSpec: { name: 'query.series', inputSchema: { json: { type: 'object' } } } }] },
    }, /toolSpec\.name' failed to satisfy constraint/],
    ['an input schema that is not an object', {
      modelId: PROFILE,
      messages: [question('q')],
      toolConfig: { tools: [{ toolSpec: { name: 'q', inputSchema: { json: { type: 'string' } } } }] },
    }, /inputSchema\.json\.type must be object/],
    ['maxTokens 0', { modelId: PROFILE, messages: [question('q')], inferenceConfig: { maxTokens: 0 } }, /inferenceConfig\.maxTokens/],
    ['a toolChoice naming no tool', { modelId: PROFILE, messages: [question('q')], toolConfig: { ...TOOLS, toolChoice: { tool: { name: 'nope' } } } }, /no tool named nope/],
  ])('refuses %s with ValidationException', async (_name, input, message) => {
    let asked = 0;
    runtime.model = () => (asked++, say('never'));
    const e = await rejection(input);
    expect(e).toBeInstanceOf(ValidationException);
    expect(e.message).toMatch(message);
    expect(asked).toBe(0);
  });

  test('the same conversation, made valid, is accepted (the checks above are not blanket refusals)', async () => {
    runtime.model = script(say('first'), say('second'));
    const messages: Message[] = [question('q'), { role: 'assistant', content: [{ toolUse: { toolUseId: 'tooluse_a', name: 'list_datasets', input: {} } }] },
      { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_a', content: [], status: 'success' } }, { text: 'and?' }] }];
    const out = await client.send(new ConverseCommand({ modelId: PROFILE, messages, toolConfig: TOOLS }));
    expect(out.output?.message?.content).toEqual([{ text: 'second' }]);
  });

  test('for a model family that wants tool results alone in their turn, a text block beside them is refused', async () => {
    runtime.toolResultTurns = (id) => id.startsWith('meta.');
    const messages: Message[] = [question('q'), { role: 'assistant', content: [{ toolUse: { toolUseId: 'tooluse_a', name: 'list_datasets', input: {} } }] },
      { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_a', content: [{ text: 'x' }] } }, { text: 'Answer now.' }] }];
    try {
      const e = await rejection({ modelId: 'meta.llama3-1-70b-instruct-v1:0', messages, toolConfig: TOOLS });
      expect(e).toBeInstanceOf(ValidationException);
      expect(e.message).toBe('messages.2.content: Conversation blocks and tool result blocks cannot be provided in the same turn.');
      // The same conversation is fine for a model without the rule.
      expect((await client.send(new ConverseCommand({ modelId: PROFILE, messages, toolConfig: TOOLS }))).stopReason).toBe('end_turn');
    } finally {
      runtime.toolResultTurns = () => false;
    }
  });

  test('scripted service errors reach the client as the SDK\'s exceptions; an exhausted script is a 500', async () => {
    runtime.model = script(converseErrors.throttling());
    const throttled = await rejection({ modelId: PROFILE, messages: [question('q')] });
    expect(throttled).toBeInstanceOf(ThrottlingException);
    expect(throttled.$metadata.httpStatusCode).toBe(429);
    runtime.model = script(converseErrors.timeout());
    expect((await rejection({ modelId: PROFILE, messages: [question('q')] })).name).toBe('ModelTimeoutException');
    runtime.model = script();
    const exhausted = await rejection({ modelId: PROFILE, messages: [question('q')] });
    expect(exhausted.name).toBe('InternalServerException');
    expect(exhausted.message).toMatch(/turn 0/);
  });

  test('a slow model (delayMs) outlasts a client deadline; the fake then answers the next call', async () => {
    runtime.model = script({ ...say('late'), delayMs: 400 });
    const started = Date.now();
    const e = await client.send(new ConverseCommand({ modelId: PROFILE, messages: [question('q')] }), { abortSignal: AbortSignal.timeout(100) }).then(() => undefined, (err) => err);
    expect(e?.name).toMatch(/AbortError|TimeoutError/);
    expect(Date.now() - started).toBeLessThan(400);
    await new Promise((resolve) => setTimeout(resolve, 400));
    runtime.model = ANSWER_OK;
    const ok = await client.send(new ConverseCommand({ modelId: PROFILE, messages: [question('q')] }));
    expect(ok.output?.message?.content).toEqual([{ text: 'ok' }]);
  });

  test('a model id outside `models` is refused', async () => {
    runtime.models = ['anthropic.claude-3-haiku-20240307-v1:0'];
    const e = await rejection({ modelId: 'anthropic.claude-v2', messages: [question('q')] });
    expect(e).toBeInstanceOf(ValidationException);
    expect(e.message).toBe('The provided model identifier is invalid.');
    const ok = await client.send(new ConverseCommand({ modelId: 'anthropic.claude-3-haiku-20240307-v1:0', messages: [question('q')] }));
    expect(ok.output?.message?.content).toEqual([{ text: 'ok' }]);
  });

  test('converseProblem accepts a valid tool round (so the strict checks are only as strict as the service)', () => {
    expect(converseProblem({
      messages: [{ role: 'user', content: [{ text: 'q' }] }, { role: 'assistant', content: [{ text: 't' }, { toolUse: { toolUseId: 'a', name: 'n', input: {} } }] },
        { role: 'user', content: [{ toolResult: { toolUseId: 'a', content: [{ json: { x: 1 } }] } }] }],
      toolConfig: { tools: [{ toolSpec: { name: 'n', inputSchema: { json: { type: 'object' } } } }], toolChoice: { auto: {} } },
      inferenceConfig: { maxTokens: 1, temperature: 0 },
      system: [{ text: 'be exact' }],
      guardrailConfig: { guardrailIdentifier: 'g', guardrailVersion: '1' },
    })).toBeUndefined();
  });
});

describe('LocalBedrockAgentRuntime (Retrieve)', () => {
  test('answers the hook\'s results for the knowledge base asked', async () => {
    agent.onRetrieve = (kb, body) => ({
      body: {
        retrievalResults: [{
          content: { text: `${kb}: ${body.retrievalQuery.text}`, type: 'TEXT' },
          location: { type: 'S3', s3Location: { uri: 's3://ons-raw/knowledge/documents/guia.pdf' } },
          metadata: { 'x-amz-bedrock-kb-source-uri': 's3://ons-raw/knowledge/documents/guia.pdf' },
          score: 0.73,
        }],
      },
    });
    const out = await agentClient.send(new RetrieveCommand({
      knowledgeBaseId: 'KBTEST1234',
      retrievalQuery: { text: 'semana operativa' },
      retrievalConfiguration: { vectorSearchConfiguration: { numberOfResults: 3 } },
    }));
    expect(out.retrievalResults).toEqual([{
      content: { text: 'KBTEST1234: semana operativa', type: 'TEXT' },
      location: { type: 'S3', s3Location: { uri: 's3://ons-raw/knowledge/documents/guia.pdf' } },
      metadata: { 'x-amz-bedrock-kb-source-uri': 's3://ons-raw/knowledge/documents/guia.pdf' },
      score: 0.73,
    }]);
    expect(agent.retrieves).toEqual([{ knowledgeBaseId: 'KBTEST1234', body: expect.objectContaining({ retrievalQuery: { text: 'semana operativa' } }) }]);
  });

  test('refuses numberOfResults over 100 without asking the hook', async () => {
    let asked = 0;
    agent.onRetrieve = () => (asked++, { body: { retrievalResults: [] } });
    const e = await agentClient.send(new RetrieveCommand({
      knowledgeBaseId: 'KBTEST1234',
      retrievalQuery: { text: 'x' },
      retrievalConfiguration: { vectorSearchConfiguration: { numberOfResults: 101 } },
    })).then(() => undefined, (err) => err);
    expect(e).toBeInstanceOf(AgentValidationException);
    expect(e.message).toMatch(/numberOfResults/);
    expect(asked).toBe(0);
  });
});
