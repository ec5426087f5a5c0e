import type { APIGatewayProxyEvent } from 'aws-lambda';

/** An API Gateway (REST, proxy integration) event for `POST /query`, as the API sends it to the question handler. */
export function queryEvent(body: string | null, requestId: string, headers: Record<string, string> = { 'Content-Type': 'application/json' }): APIGatewayProxyEvent {
  return {
    resource: '/query',
    path: '/query',
    httpMethod: 'POST',
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    pathParameters: null,
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    body,
    isBase64Encoded: false,
    requestContext: { requestId, stage: 'dev', httpMethod: 'POST', resourcePath: '/query' } as APIGatewayProxyEvent['requestContext'],
  };
}
