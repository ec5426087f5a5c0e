import { REQUEST_MODELS, ROUTES } from './routes';
import { HEALTH_COMPONENTS } from '../health/contract';
import { LedgerStatus } from '../ledger/contract';
import { DATASET_ID } from '../ons/catalog';
import { AGGREGATIONS, INTERVALS } from '../timeseries/contract';

/**
 * The OpenAPI 3.1 document of the platform's REST API, built from the same route table the construct
 * deploys. `npx projen docgen` writes it to `openapi/ons-data-platform.json`, which the package ships;
 * tests check the file against this function, the deployed routes against the file, and handler
 * responses against its schemas.
 * @internal
 */

const str = { type: 'string' };
const nullable = (schema: Record<string, unknown>) => ({ ...schema, type: [schema.type, 'null'] });
const bilingual = { type: 'object', additionalProperties: false, required: ['pt', 'en'], properties: { pt: str, en: str } };
const instant = { type: 'string', format: 'date-time' };
const count = { type: 'integer', minimum: 0 };
const obj = (required: string[], properties: Record<string, unknown>) => ({ type: 'object', additionalProperties: false, required, properties });

/** Response schemas, by the name the routes use. @internal */
export const RESPONSE_SCHEMAS: Record<string, Record<string, unknown>> = {
  Error: obj(['error', 'requestId'], {
    error: obj(['code', 'message'], { code: { type: 'string', pattern: '^[A-Za-z]+$' }, message: str }),
    requestId: str,
  }),
  HealthLiveness: obj(['status'], { status: { enum: ['ok'] } }),
  HealthReport: obj(['status', 'components'], {
    status: { enum: ['ok', 'degraded'] },
    components: obj([...HEALTH_COMPONENTS], Object.fromEntries(HEALTH_COMPONENTS.map((c) => [c, obj(['status'], {
      status: { enum: ['up', 'down', 'notConfigured'] },
      detail: { type: 'object', additionalProperties: str },
    })]))),
  }),
  QueryResponse: obj(['queryId', 'answer', 'citations', 'sessionId'], {
    queryId: str,
    answer: str,
    citations: {
      type: 'array',
      items: obj(['text', 'source'], {
        text: str,
        source: obj(['bucket', 'key'], { bucket: str, key: str }),
        dataset: str,
      }),
    },
    sessionId: { ...str, description: 'Pass back as sessionId for a follow-up question (empty for an answer from tools).' },
    answeredFrom: { enum: ['tools', 'documents'], description: 'tools: the model queried the time series, the catalog and the documents; documents: RetrieveAndGenerate.' },
    queries: {
      type: 'array',
      description: 'The time-series queries behind the numbers, as GET /timeseries requests to run again.',
      items: obj(['request', 'dataset', 'measure', 'unit', 'points'], {
        request: { ...str, description: 'Path and query string, relative to the API base URL.' },
        dataset: str,
        measure: str,
        unit: nullable(str),
        points: count,
      }),
    },
    usage: obj(['inputTokens', 'outputTokens', 'modelCalls', 'toolCalls'], {
      inputTokens: count, outputTokens: count, modelCalls: count, toolCalls: count,
    }),
  }),
  DatasetsResponse: obj(['datasets'], {
    datasets: {
      type: 'array',
      items: obj(['id', 'title', 'description', 'grain', 'dimensions', 'measures', 'timeSeries', 'loaded'], {
        id: str,
        title: bilingual,
        description: bilingual,
        grain: { type: ['string', 'null'], enum: ['PT30M', 'PT1H', 'P1D', 'P7D', null], description: 'null for a dataset outside the catalog (additionalDatasets).' },
        dimensions: { type: 'array', items: str },
        measures: {
          type: 'array',
          items: obj(['name', 'unit', 'description', 'aggregation'], {
            name: str, unit: nullable(str), description: bilingual, aggregation: { enum: ['mean', 'sum', 'last'] },
          }),
        },
        timeSeries: { type: 'boolean', description: 'Whether GET /timeseries/{dataset} serves it.' },
        loaded: {
          oneOf: [
            { type: 'null' },
            obj(['files', 'from', 'to', 'lastLoadedAt'], { files: count, from: nullable(instant), to: nullable(instant), lastLoadedAt: instant }),
          ],
        },
      }),
    },
  }),
  TimeSeriesResponse: obj(['dataset', 'measure', 'unit', 'interval', 'aggregation', 'from', 'to', 'points'], {
    dataset: str,
    measure: str,
    unit: nullable(str),
    interval: { enum: [...INTERVALS, null] },
    aggregation: { enum: [...AGGREGATIONS, null] },
    from: instant,
    to: instant,
    points: {
      type: 'array',
      items: obj(['time', 'dimensions', 'value'], {
        time: { ...instant, description: 'The instant (raw points), or the first instant of the bucket (UTC).' },
        local: {
          type: 'string',
          description: 'Aggregates only: where the bucket starts in Brasília time (America/Sao_Paulo): the local date (YYYY-MM-DD) for 1d, 1w, 1mo, 1y; '
            + 'the local date-time with its offset (2013-02-16T23:00-03:00) for sub-day intervals.',
        },
        period: {
          type: 'string',
          description: 'Aggregates only: the bucket\'s calendar name: 2013-02-15 (day), 2013-W07 (ISO week), 2013-02-S3 (ONS operative week), 2013-02 (month), 2013 (year); sub-day: as local.',
        },
        dimensions: { type: 'object', additionalProperties: nullable(str) },
        value: { type: ['number', 'null'] },
      }),
    },
    nextToken: str,
  }),
  IngestionsResponse: obj(['ingestions'], {
    ingestions: {
      type: 'array',
      items: obj(['key', 'versionId', 'status', 'receivedAt', 'updatedAt'], {
        key: str,
        versionId: nullable(str),
        status: { enum: Object.values(LedgerStatus) },
        dataset: str,
        kind: { enum: ['tabular', 'document'] },
        size: count,
        receivedAt: instant,
        updatedAt: instant,
        start: instant,
        end: instant,
        rows: count,
        records: count,
        rejected: count,
        series: count,
        duplicateOf: str,
        error: obj(['step', 'reason'], { step: str, reason: str, errorType: str }),
        load: obj(['status', 'at'], { status: { enum: ['loaded', 'notLoaded'] }, at: instant, points: count, rejected: count, reason: str }),
      }),
    },
    nextToken: str,
  }),
};

/** Errors each route can answer with, besides the gateway's 403/429/5xx. */
const ROUTE_ERRORS: Record<string, string[]> = {
  getHealth: [],
  getReadiness: ['503'],
  query: ['400', '413', '415', '429', '500', '503'],
  listDatasets: ['400', '500', '503'],
  getTimeSeries: ['400', '404', '500', '503'],
  listIngestions: ['400', '500', '503'],
};

const ERROR_DESCRIPTIONS: Record<string, string> = {
  400: 'Invalid request (the error code says which check failed)',
  403: 'Missing or invalid API key, or not authorized',
  404: 'No such dataset or route',
  413: 'Body too large',
  415: 'The body is not JSON',
  429: 'Throttled (stage, usage plan or WAF rate limit) or quota exceeded',
  500: 'Internal error (details in the logs, under the requestId)',
  503: 'A dependency is busy or unavailable, or the feature is turned off (FeatureDisabled); retry later',
};

/** The OpenAPI 3.1 document. @internal */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    const parameters = [
      ...[...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({
        name, in: 'path', required: true, schema: { type: 'string', pattern: DATASET_ID.source }, description: 'A dataset id (see GET /datasets).',
      })),
      ...route.query.map((p) => ({ name: p.name, in: 'query', required: p.required, description: p.description, schema: p.schema })),
    ];
    // The readiness check answers 503 with its report (which component is down), not with an Error.
    const degraded = (code: string) => code === '503' && route.response === 'HealthReport';
    const errorResponses = Object.fromEntries([...ROUTE_ERRORS[route.operationId], ...(route.open ? [] : ['403']), '429'].sort().map((code) => [code, {
      description: degraded(code) ? 'Degraded: a configured component is down' : ERROR_DESCRIPTIONS[code],
      content: { 'application/json': { schema: { $ref: `#/components/schemas/${degraded(code) ? route.response : 'Error'}` } } },
    }]));
    paths[route.path] = {
      ...paths[route.path],
      [route.method.toLowerCase()]: {
        operationId: route.operationId,
        summary: route.summary,
        ...(route.open ? { security: [] } : {}),
        ...(parameters.length ? { parameters } : {}),
        ...(route.body ? {
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${route.body}` } } } },
        } : {}),
        responses: {
          200: { description: 'Success', content: { 'application/json': { schema: { $ref: `#/components/schemas/${route.response}` } } } },
          ...errorResponses,
        },
      },
    };
  }
  const { title: _title, ...queryRequest } = REQUEST_MODELS.QueryRequest;
  return {
    openapi: '3.1.0',
    info: {
      title: 'ONS data platform API',
      version,
      description: 'Time series, the catalog, the ingestion ledger and questions over the open data of ONS. '
        + 'Every error, API Gateway\'s own included, has the shape of the Error schema.',
    },
    paths,
    components: {
      schemas: { QueryRequest: queryRequest, ...RESPONSE_SCHEMAS },
      securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' } },
    },
    security: [{ apiKey: [] }],
  };
}
