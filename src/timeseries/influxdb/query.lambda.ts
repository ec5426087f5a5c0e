import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { ROUTES } from '../../api/routes';
import { startRequest } from '../../api/runtime/http';
import { OPERATION_DIMENSION, PlatformMetrics } from '../../operations/contract';
import { flushMetrics, recordMetric } from '../../operations/telemetry';
import { handleRequest, QueryEngine } from '../runtime/request';
import { influxQueryEngine, queryConfigFromEnv } from './runtime/query';

// Created once per container, on first use (the environment is read then).
let engine: QueryEngine | undefined;

/** The `operation` dimension of this handler's QueryLatency: its route's operationId (`getTimeSeries`). */
const OPERATION = ROUTES.find((r) => r.target === 'timeSeries')!.operationId;

/** `GET /timeseries/{dataset}` (API Gateway proxy integration): one page of a series from Timestream for InfluxDB. */
export async function handler(event: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> {
  const requestId = event.requestContext?.requestId ?? context?.awsRequestId ?? 'unknown';
  startRequest(requestId, context);
  const started = Date.now();
  try {
    return await handleRequest(event, requestId, () => (engine ??= influxQueryEngine(queryConfigFromEnv())));
  } finally {
    recordMetric(PlatformMetrics.QUERY_LATENCY, Date.now() - started, { [OPERATION_DIMENSION]: OPERATION });
    flushMetrics();
  }
}
