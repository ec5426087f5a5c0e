import { DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { CATALOG, DatasetDefinition } from '../../ons/catalog';
import { AdditionalDataset, DatasetLoaded, DatasetSummary, DatasetsResponse, LedgerSchema } from '../contract';
import { IN_LAKE } from './ledger';

/**
 * What the lake holds of each dataset, read from the ledger's `byDataset` index (never a Scan): `GET /datasets` and the
 * question handler's catalog tool answer from it.
 */

/** Catalog datasets queried at once. */
const DATASET_CONCURRENCY = 4;

type Item = Record<string, unknown>;

/** What a ledger read may touch: every name goes through ExpressionAttributeNames (many are reserved words). */
export function attributeNames(attributes: readonly string[]): { expression: string; names: Record<string, string> } {
  const map: Record<string, string> = {};
  const paths = attributes.map((path) => path.split('.').map((part) => {
    const alias = `#${part.replace(/[^A-Za-z0-9]/g, '')}`;
    map[alias] = part;
    return alias;
  }).join('.'));
  return { expression: paths.join(', '), names: map };
}

/** What the lake holds of one dataset, from every page of its `byDataset` items in the lake. */
async function loadedOf(client: DynamoDBDocumentClient, table: string, dataset: string): Promise<{ loaded: DatasetLoaded | null; queries: number }> {
  const index = LedgerSchema.BY_DATASET;
  let files = 0;
  let from: string | null = null;
  let to: string | null = null;
  let last: string | null = null;
  let queries = 0;
  const later = (a: string | null, b: unknown, pick: 'min' | 'max'): string | null => {
    if (typeof b !== 'string' || Number.isNaN(Date.parse(b))) return a;
    if (a === null) return b;
    // Instants compared as instants: `…00Z` and `…00.000Z` are the same time in different spellings.
    return (pick === 'min' ? Date.parse(b) < Date.parse(a) : Date.parse(b) > Date.parse(a)) ? b : a;
  };
  const projection = attributeNames(['start', 'end', 'updatedAt']);
  let ExclusiveStartKey: Item | undefined;
  do {
    queries++;
    const page = await queryLedger(client, {
      TableName: table,
      IndexName: index.name,
      KeyConditionExpression: '#ip = :ip',
      FilterExpression: `#status IN (${IN_LAKE.map((_, i) => `:s${i}`).join(', ')})`,
      ProjectionExpression: projection.expression,
      ExpressionAttributeNames: { ...projection.names, '#ip': index.partitionKey, '#status': 'status' },
      ExpressionAttributeValues: { ':ip': dataset, ...Object.fromEntries(IN_LAKE.map((s, i) => [`:s${i}`, s])) },
      ExclusiveStartKey,
    });
    for (const item of page.Items ?? []) {
      files++;
      from = later(from, item.start, 'min');
      to = later(to, item.end, 'max');
      last = later(last, item.updatedAt, 'max');
    }
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return { loaded: files === 0 ? null : { files, from, to, lastLoadedAt: last ?? '' }, queries };
}

/**
 * Every catalog dataset, then every dataset outside it with a lake table (the lake's `additionalDatasets`), with what
 * the lake holds of it; the per-dataset reads run DATASET_CONCURRENCY at a time.
 */
export async function listDatasets(
  client: DynamoDBDocumentClient, table: string, timeSeriesDatasets: ReadonlySet<string>, additionalDatasets: readonly AdditionalDataset[] = [],
): Promise<{ body: DatasetsResponse; queries: number }> {
  const additional = additionalDatasets.filter((d) => !CATALOG.some((c) => c.id === d.id));
  const ids = [...CATALOG.map((d) => d.id), ...additional.map((d) => d.id)];
  const results: Array<{ loaded: DatasetLoaded | null; queries: number }> = new Array(ids.length);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      results[i] = await loadedOf(client, table, ids[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(DATASET_CONCURRENCY, ids.length) }, worker));
  const timeSeries = (id: string) => timeSeriesDatasets.has(id);
  const datasets = [
    ...CATALOG.map((d, i) => summary(d, timeSeries(d.id), results[i].loaded)),
    ...additional.map((d, i) => additionalSummary(d, timeSeries(d.id), results[CATALOG.length + i].loaded)),
  ];
  return { body: { datasets }, queries: results.reduce((n, r) => n + r.queries, 0) };
}

/** A dataset outside the catalog: what its table was described with (one text for both languages), no grain, means over time. */
function additionalSummary(d: AdditionalDataset, timeSeries: boolean, loaded: DatasetLoaded | null): DatasetSummary {
  const text = (t: string) => ({ pt: t, en: t });
  return {
    id: d.id,
    title: text(d.id),
    description: text(d.description ?? `Dataset ${d.id} (outside the catalog)`),
    grain: null,
    dimensions: [...d.dimensions],
    measures: d.measures.map((m) => ({ name: m.name, unit: m.unit ?? null, description: text(m.description ?? m.name), aggregation: 'mean' })),
    timeSeries,
    loaded,
  };
}

function summary(d: DatasetDefinition, timeSeries: boolean, loaded: DatasetLoaded | null): DatasetSummary {
  return {
    id: d.id,
    title: { pt: d.title.pt, en: d.title.en },
    description: { pt: d.description.pt, en: d.description.en },
    grain: d.grain,
    dimensions: [...d.dimensions],
    measures: d.measures.map((m) => ({
      name: m.name,
      unit: m.unit,
      description: { pt: m.description.pt, en: m.description.en },
      aggregation: m.aggregation,
    })),
    timeSeries,
    loaded,
  };
}

const BUSY = new Set([
  'ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded', 'LimitExceededException',
  'InternalServerError', 'ServiceUnavailable', 'TimeoutError', 'RequestTimeout', 'RequestTimeoutException',
]);

/** A Query the ledger could not answer now (throttled, a 5xx, a timeout, no connection): the caller may retry. */
export class LedgerBusy extends Error {
  constructor(readonly cause: Error & { code?: string }) {
    super(cause?.message);
    this.name = 'LedgerBusy';
  }
}

/** One Query; a busy or unreachable ledger becomes LedgerBusy, any other failure stays as it is (a 500). */
export async function queryLedger(client: DynamoDBDocumentClient, input: QueryCommandInput) {
  try {
    return await client.send(new QueryCommand(input));
  } catch (error) {
    const e = error as Error & { code?: string; $metadata?: { httpStatusCode?: number } };
    const status = e?.$metadata?.httpStatusCode;
    // No HTTP answer at all (refused, reset, DNS, socket timeout) means the ledger could not be reached; a missing
    // credential is a configuration fault, not a busy ledger.
    const unreachable = status === undefined && e?.name !== 'CredentialsProviderError';
    if (BUSY.has(e?.name) || (status ?? 0) >= 500 || unreachable) throw new LedgerBusy(e);
    throw error;
  }
}
