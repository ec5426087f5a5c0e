import { DuckDBInstance } from '@duckdb/node-api';

/**
 * The independent oracle: DuckDB reads the processed zone under `dir` as the Glue table does (hive
 * partitions `dataset=/year=/month=` under the processed prefix) and answers, per source key, the
 * rows, the sum of `measure`, the source versions and the months (`YYYY-MM`) it sees of `dataset`.
 */
export interface SourceFigures {
  readonly count: number;
  readonly sum: number;
  readonly versions: (string | null)[];
  readonly months: string[];
}

export async function figuresBySource(dir: string, dataset: string, measure: string): Promise<Map<string, SourceFigures>> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(`
      SELECT source_key, count(*)::INTEGER AS count, sum("${measure}") AS sum,
             list(DISTINCT source_version ORDER BY source_version) AS versions,
             list(DISTINCT year || '-' || month ORDER BY year || '-' || month) AS months
      FROM read_parquet('${dir}/dataset=*/year=*/month=*/*.parquet', hive_partitioning = true)
      WHERE dataset = '${dataset}'
      GROUP BY source_key`);
    return new Map(reader.getRowObjectsJS().map((r) => [r.source_key as string, {
      count: r.count as number, sum: r.sum as number, versions: r.versions as (string | null)[], months: r.months as string[],
    }]));
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
