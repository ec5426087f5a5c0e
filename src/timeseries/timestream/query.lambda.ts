import { TimeSeriesEnv } from '../contract';
import { createQueryHandler } from '../runtime/request';
import { createQueryClient, queryConfigFromEnv, timestreamQueryEngine } from './runtime/query';

/** `GET /timeseries/{dataset}` (API Gateway proxy integration): one page of a series from Timestream. */
export const handler = createQueryHandler(() =>
  timestreamQueryEngine(createQueryClient(process.env[TimeSeriesEnv.QUERY_ENDPOINT] || undefined), queryConfigFromEnv()));
