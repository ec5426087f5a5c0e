import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { Template } from 'aws-cdk-lib/assertions';

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

/** A view as Athena stores it in Glue (the Presto view JSON inside ViewOriginalText). */
export interface PrestoView {
  readonly originalSql: string;
  readonly catalog: string;
  readonly schema: string;
  readonly columns: Array<{ name: string; type: string }>;
}

/**
 * The Glue view `name` of a synthesized template, its ViewOriginalText resolved as CloudFormation does
 * (Fn::Join of literals and Fn::Base64) and decoded.
 */
export function viewDefinition(template: Template, name: string): { view: any; definition: PrestoView } {
  const view = Object.values(template.findResources('AWS::Glue::Table')).find((t: any) => t.Properties.TableInput.Name === name) as any;
  if (!view) throw new Error(`no Glue view ${name} in the template`);
  const [separator, parts] = view.Properties.TableInput.ViewOriginalText['Fn::Join'];
  const text = parts.map((p: any) => (typeof p === 'string' ? p : Buffer.from(p['Fn::Base64'], 'utf8').toString('base64'))).join(separator);
  const m = /^\/\* Presto View: ([A-Za-z0-9+/=]+) \*\/$/.exec(text);
  if (!m) throw new Error(`not a Presto view text: ${text.slice(0, 80)}`);
  return { view, definition: JSON.parse(Buffer.from(m[1], 'base64').toString('utf8')) };
}

/**
 * Runs `queries` against `<dataset>_current` in DuckDB: the dataset's table is the processed zone under `dir`
 * read with its Hive partitions (as the Glue table reads it), the view is the synthesized view's SQL.
 */
export async function queryCurrentView(
  template: Template, dir: string, dataset: string, queries: Record<string, string>,
): Promise<Record<string, number>> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const files = join(dir, `dataset=${dataset}`, '*', '*', '*.parquet');
    await connection.run(`CREATE VIEW ${dataset} AS SELECT * EXCLUDE (dataset) FROM read_parquet('${files}', hive_partitioning = true, union_by_name = true)`);
    await connection.run(`CREATE VIEW ${dataset}_current AS ${viewDefinition(template, `${dataset}_current`).definition.originalSql}`);
    const answers: Record<string, number> = {};
    for (const [name, sql] of Object.entries(queries)) answers[name] = Number((await connection.runAndReadAll(sql)).getRows()[0][0]);
    return answers;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
