import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { requestIdOf, respond } from './runtime/http';

/** `GET /datasets` and `GET /ingestions` (API Gateway proxy integration): what the ingestion ledger knows. */
export async function handler(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  return respond(501, { error: { code: 'NotImplemented', message: 'not yet' }, requestId: requestIdOf(event) }, event);
}
