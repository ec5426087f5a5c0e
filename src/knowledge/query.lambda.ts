import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { KnowledgeEnv } from './contract';
import { configFromEnv, createClient, handleRequest, KnowledgeQueryDeps } from './runtime/query';

// Created once per container, on first use (the environment is read then).
let deps: KnowledgeQueryDeps | undefined;

/** `POST /query` (API Gateway proxy integration): a question answered by Bedrock RetrieveAndGenerate over the knowledge base. */
export async function handler(event: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> {
  const requestId = event.requestContext?.requestId ?? context?.awsRequestId;
  // The account, for a bare inference profile id: the function's own ARN carries it.
  const account = context?.invokedFunctionArn?.split(':')[4];
  return handleRequest(event, requestId, () => (deps ??= {
    client: createClient(process.env[KnowledgeEnv.ENDPOINT] || undefined),
    config: configFromEnv(account),
  }));
}
