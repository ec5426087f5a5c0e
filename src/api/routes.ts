import { KNOWLEDGE_QUERY_OPERATION, KnowledgeQueryLimits } from '../knowledge/contract';
import { LedgerStatus } from '../ledger/contract';
import { DEFAULT_WEEK_RULE, WEEK_RULES } from '../ons/calendar';
import { CATALOG, DATASET_ID } from '../ons/catalog';
import { AGGREGATIONS, INTERVALS, TIME_SERIES_OPERATION } from '../timeseries/contract';

/**
 * The routes of the platform's REST API: what `PlatformApi` deploys and what the shipped OpenAPI
 * document describes (a test checks the two against each other).
 * @internal
 */

/** Which function serves a route. @internal */
export type RouteTarget = 'health' | 'knowledge' | 'timeSeries' | 'ledger';

/** A query parameter of a route. @internal */
export interface RouteParameter {
  readonly name: string;
  readonly required: boolean;
  readonly description: string;
  readonly schema: Record<string, unknown>;
}

/** @internal */
export interface ApiRoute {
  readonly path: string;
  readonly method: 'GET' | 'POST';
  readonly operationId: string;
  readonly summary: string;
  readonly target: RouteTarget;
  /** Everything but `/health` (liveness) needs an API key (and the configured authorization). */
  readonly open: boolean;
  readonly query: readonly RouteParameter[];
  /** Name of the request body model (a key of `REQUEST_MODELS`). */
  readonly body?: keyof typeof REQUEST_MODELS;
  /** Name of the success response schema (a key of the OpenAPI components). */
  readonly response: string;
}

/** Identity dimensions of every catalog dataset: the series filters of `GET /timeseries/{dataset}`. */
export const DIMENSION_PARAMETERS = [...new Set(CATALOG.flatMap((d) => d.dimensions))].sort();

const catalogIds = CATALOG.map((d) => d.id);

/**
 * JSON Schema (draft 4, what API Gateway models support) of each request body. Only keywords that
 * mean the same in draft 4 and 2020-12, so the OpenAPI 3.1 document can carry them unchanged.
 * @internal
 */
export const REQUEST_MODELS = {
  QueryRequest: {
    title: 'QueryRequest',
    type: 'object',
    additionalProperties: false,
    required: ['question'],
    properties: {
      question: {
        type: 'string',
        minLength: 1,
        maxLength: KnowledgeQueryLimits.MAX_QUESTION,
        description: 'A question in plain language (any language; the answer comes in the same language).',
      },
      sessionId: {
        type: 'string',
        pattern: KnowledgeQueryLimits.SESSION_ID_PATTERN,
        description: 'The sessionId of a previous answer, for a follow-up question.',
      },
      filters: {
        type: 'object',
        additionalProperties: false,
        properties: {
          dataset: { type: 'string', enum: catalogIds, description: 'Only data cards of this catalog dataset.' },
          yearFrom: { type: 'integer', minimum: KnowledgeQueryLimits.MIN_YEAR, maximum: KnowledgeQueryLimits.MAX_YEAR },
          yearTo: { type: 'integer', minimum: KnowledgeQueryLimits.MIN_YEAR, maximum: KnowledgeQueryLimits.MAX_YEAR },
        },
      },
    },
  },
} as const;

const token = (what: string): RouteParameter => ({
  name: 'nextToken',
  required: false,
  description: `The nextToken of the previous page of ${what}, with the same other parameters.`,
  schema: { type: 'string', maxLength: 8192 },
});

/** @internal */
export const ROUTES: readonly ApiRoute[] = [
  {
    path: '/health',
    method: 'GET',
    operationId: 'getHealth',
    summary: 'Liveness: the API and its function answer (no API key, no call to any service); for load balancers and uptime checks.',
    target: 'health',
    open: true,
    query: [],
    response: 'HealthLiveness',
  },
  {
    path: '/health/ready',
    method: 'GET',
    operationId: 'getReadiness',
    summary: 'Readiness: whether every component of the platform is reachable (API key; the report is cached up to healthReadinessCacheTtl, 30 s by default).',
    target: 'health',
    open: false,
    query: [],
    response: 'HealthReport',
  },
  {
    path: '/query',
    method: 'POST',
    operationId: KNOWLEDGE_QUERY_OPERATION,
    summary: 'A question answered from the knowledge base (data cards and documents), with citations.',
    target: 'knowledge',
    open: false,
    query: [],
    body: 'QueryRequest',
    response: 'QueryResponse',
  },
  {
    path: '/datasets',
    method: 'GET',
    operationId: 'listDatasets',
    summary: 'The catalog, with what the lake holds of each dataset.',
    target: 'ledger',
    open: false,
    query: [],
    response: 'DatasetsResponse',
  },
  {
    path: '/timeseries/{dataset}',
    method: 'GET',
    operationId: TIME_SERIES_OPERATION,
    summary: 'One page of the points of a dataset\'s measure, raw or aggregated by interval.',
    target: 'timeSeries',
    open: false,
    query: [
      { name: 'from', required: true, description: 'Start, inclusive: ISO-8601 date or date-time with Z or an offset.', schema: { type: 'string', maxLength: 40 } },
      { name: 'to', required: true, description: 'End, exclusive: ISO-8601 date or date-time with Z or an offset.', schema: { type: 'string', maxLength: 40 } },
      {
        name: 'measure',
        required: false,
        description: 'The measure (see GET /datasets); optional when the dataset has one.',
        schema: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,63}$' },
      },
      { name: 'interval', required: false, description: 'Aggregate by this interval: 1d, 1w, 1mo and 1y are days, weeks, months and years of the Brasília civil calendar (America/Sao_Paulo, historical daylight saving included: a day may have 23 or 25 hours); 1m to 1h are fixed UTC bins, aligned on the Brasília clock.', schema: { type: 'string', enum: [...INTERVALS] } },
      { name: 'aggregation', required: false, description: 'How to aggregate (needs interval; default avg).', schema: { type: 'string', enum: [...AGGREGATIONS] } },
      {
        name: 'week',
        required: false,
        description: `With interval=1w only: ons, the ONS operative week (Saturday to Friday), or iso (Monday to Sunday); default ${DEFAULT_WEEK_RULE}.`,
        schema: { type: 'string', enum: [...WEEK_RULES] },
      },
      token('points'),
      ...DIMENSION_PARAMETERS.map((name) => ({
        name,
        required: false,
        description: 'Only series with this value of the identity dimension (datasets that have it; see GET /datasets).',
        schema: { type: 'string', minLength: 1, maxLength: 100 },
      })),
    ],
    response: 'TimeSeriesResponse',
  },
  {
    path: '/ingestions',
    method: 'GET',
    operationId: 'listIngestions',
    summary: 'Ingestion ledger entries, newest first.',
    target: 'ledger',
    open: false,
    query: [
      { name: 'status', required: false, description: 'Only entries with this status.', schema: { type: 'string', enum: Object.values(LedgerStatus) } },
      { name: 'dataset', required: false, description: 'Only entries of this dataset.', schema: { type: 'string', pattern: DATASET_ID.source } },
      { name: 'limit', required: false, description: 'Entries per page (default 25).', schema: { type: 'integer', minimum: 1, maximum: 100 } },
      token('entries'),
    ],
    response: 'IngestionsResponse',
  },
];
