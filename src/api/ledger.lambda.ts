import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { startRequest } from '../runtime/http';
import { createLedgerClient, handleRequest, LedgerDeps, ledgerConfigFromEnv } from './runtime/ledger-api';

// Created once per container, on first use (the environment is read then).
let deps: LedgerDeps | undefined;

/** `GET /datasets` and `GET /ingestions` (API Gateway proxy integration): what the ingestion ledger knows. */
export async function handler(event: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> {
  const requestId = event.requestContext?.requestId ?? context?.awsRequestId ?? 'unknown';
  startRequest(requestId, context);
  return handleRequest(event, requestId, () => (deps ??= { config: ledgerConfigFromEnv(), client: createLedgerClient() }));
}
