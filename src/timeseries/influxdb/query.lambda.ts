import { createQueryHandler } from '../runtime/request';
import { influxQueryEngine, queryConfigFromEnv } from './runtime/query';

/** `GET /timeseries/{dataset}` (API Gateway proxy integration): one page of a series from Timestream for InfluxDB (1.x-compatible /query). */
export const handler = createQueryHandler(() => influxQueryEngine(queryConfigFromEnv()));
