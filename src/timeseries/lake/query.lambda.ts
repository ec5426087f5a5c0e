import { LakeQueryEnv } from '../contract';
import { createQueryHandler } from '../runtime/request';
import { createAthenaClient, lakeQueryEngine, queryConfigFromEnv } from './runtime/query';

/** `GET /timeseries/{dataset}` (API Gateway proxy integration): one page of a series from the lake, queried with Athena. */
export const handler = createQueryHandler(() =>
  lakeQueryEngine(createAthenaClient(process.env[LakeQueryEnv.ATHENA_ENDPOINT] || undefined), queryConfigFromEnv()));
