import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { TimeSeriesEnv } from '../contract';
import { createQueryClient, handleRequest, QueryDeps, queryConfigFromEnv } from './runtime/query';

// Created once per container, on first use (the environment is read then).
let deps: QueryDeps | undefined;

/** `GET /timeseries/{dataset}` (API Gateway proxy integration): one page of a series from Timestream. */
export async function handler(event: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> {
  const requestId = event.requestContext?.requestId ?? context?.awsRequestId ?? 'unknown';
  return handleRequest(event, requestId, () => (deps ??= {
    client: createQueryClient(process.env[TimeSeriesEnv.QUERY_ENDPOINT] || undefined),
    config: queryConfigFromEnv(),
  }));
}
