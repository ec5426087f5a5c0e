import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { ROUTES } from '../../api/routes';
import { startRequest } from '../../api/runtime/http';
import { OPERATION_DIMENSION, PlatformMetrics } from '../../operations/contract';
import { flushMetrics, recordMetric } from '../../operations/telemetry';
import { TimeSeriesEnv } from '../contract';
import { handleRequest, QueryEngine } from '../runtime/request';
import { createQueryClient, queryConfigFromEnv, timestreamQueryEngine } from './runtime/query';

// Created once per container, on first use (the environment is read then).
let engine: QueryEngine | undefined;

/** The `operation` dimension of this handler's QueryLatency: its route's operationId (`getTimeSeries`). */
const OPERATION = ROUTES.find((r) => r.target === 'timeSeries')!.operationId;

/** `GET /timeseries/{dataset}` (API Gateway proxy integration): one page of a series from Timestream. */
export async function handler(event: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> {
  const requestId = event.requestContext?.requestId ?? context?.awsRequestId ?? 'unknown';
  startRequest(requestId, context);
  const started = Date.now();
  try {
    return await handleRequest(event, requestId, () => (engine ??= timestreamQueryEngine(
      createQueryClient(process.env[TimeSeriesEnv.QUERY_ENDPOINT] || undefined), queryConfigFromEnv())));
  } finally {
    recordMetric(PlatformMetrics.QUERY_LATENCY, Date.now() - started, { [OPERATION_DIMENSION]: OPERATION });
    flushMetrics();
  }
}
