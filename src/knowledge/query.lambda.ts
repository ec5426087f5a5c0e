import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { KNOWLEDGE_QUERY_OPERATION, KnowledgeEnv } from './contract';
import { answerConfigFromEnv, answerWithTools, createAnswerDeps } from './runtime/answer';
import { configFromEnv, createClient, handleRequest, KnowledgeQueryDeps } from './runtime/query';
import { OPERATION_DIMENSION, PlatformMetrics } from '../runtime/contract';
import { startRequest } from '../runtime/http';
import { flushMetrics, recordMetric } from '../runtime/telemetry';

// Created once per container, on first use (the environment is read then).
let deps: KnowledgeQueryDeps | undefined;

/** The `operation` dimension of this handler's QueryLatency: its route's operationId (`query`). */
const OPERATION = KNOWLEDGE_QUERY_OPERATION;

function createDeps(account: string | undefined): KnowledgeQueryDeps {
  const client = createClient(process.env[KnowledgeEnv.ENDPOINT] || undefined);
  const tools = answerConfigFromEnv(account);
  const answerDeps = tools ? createAnswerDeps(tools, client) : undefined;
  return {
    client,
    config: configFromEnv(account),
    ...(answerDeps ? { answer: (request, queryId, started) => answerWithTools(request, queryId, started, answerDeps) } : {}),
  };
}

/** `POST /query` (API Gateway proxy integration): a question answered by the model with the time series, the catalog and the documents as tools (Converse), or by RetrieveAndGenerate over the knowledge base. */
export async function handler(event: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> {
  const requestId = event.requestContext?.requestId ?? context?.awsRequestId;
  // The account, for a bare inference profile id: the function's own ARN carries it.
  const account = context?.invokedFunctionArn?.split(':')[4];
  startRequest(requestId, context);
  const started = Date.now();
  try {
    return await handleRequest(event, requestId, () => (deps ??= createDeps(account)));
  } finally {
    recordMetric(PlatformMetrics.QUERY_LATENCY, Date.now() - started, { [OPERATION_DIMENSION]: OPERATION });
    flushMetrics();
  }
}
