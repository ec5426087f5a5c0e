import { DuckDBConnection, DuckDBInstance, DuckDBTimestampValue } from '@duckdb/node-api';
import { LocalTimestream, QueryAnswer, StoredRecord } from './local-timestream';
import { MACROS, QueryFailure, timestreamToDuckDb } from '../lake/trino-to-duckdb';

/**
 * The local Timestream's Query: the SQL the handler sent, executed in DuckDB over the records WriteRecords stored
 * (one DuckDB table per Timestream table in a schema per database: `time`, `measure_name`, the dimensions as
 * VARCHAR, the measures as DOUBLE, as Timestream's multi-measure records read), after the Timestream and Trino
 * rewrites of `lake/trino-to-duckdb.ts`. Pages as Timestream does: at most MaxRows rows, a NextToken while rows
 * remain (an opaque token that names the query text, so another query's token is a ValidationException). A column
 * no record has is Timestream's ValidationException ("Column '…' does not exist").
 */

const ERROR = (type: string, message: string): QueryAnswer => ({ status: 400, body: { __type: `com.amazonaws.timestream.v20181101#${type}`, message } });
/** Query MaxRows: "Valid Range: Minimum value of 1. Maximum value of 1000" (Timestream Query API reference). */
const MAX_ROWS = 1000;

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** A timestamp as Timestream prints it: `2023-01-01 03:00:00.000000000` (UTC). */
function timestreamTime(micros: bigint): string {
  const ms = Number(micros / 1000n);
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${pad(Number(((micros % 1_000_000n) + 1_000_000n) % 1_000_000n), 6)}000`;
}

interface Database {
  readonly generation: number;
  readonly instance: DuckDBInstance;
  readonly connection: DuckDBConnection;
}

/**
 * Answers Query from the store of `ts`, its tables in `databaseName`; `tableNames` exist before any record (as the
 * construct creates them: `time` and `measure_name` only). `answer` is for `ts.onQuery`.
 */
export function duckDbQueries(
  ts: LocalTimestream, databaseName: string, tableNames: readonly string[] = [],
): { answer: (body: any) => Promise<QueryAnswer>; close: () => void } {
  let db: Database | undefined;
  /** Results of the queries paged so far, by token. */
  const results = new Map<string, { sql: string; rows: unknown[][] }>();

  async function database(): Promise<Database> {
    if (db?.generation === ts.generation) return db;
    close();
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    await connection.run("SET TimeZone = 'UTC'");
    for (const macro of MACROS) await connection.run(macro);
    const tables = new Map<string, { dims: Set<string>; measures: Set<string> }>();
    for (const t of tableNames) tables.set(t, { dims: new Set(), measures: new Set() });
    // Records keep their table but not the database: every table is in the one database the tests query.
    const byTable = new Map<string, StoredRecord[]>();
    for (const r of ts.store.values()) {
      const t = tables.get(r.table) ?? { dims: new Set<string>(), measures: new Set<string>() };
      Object.keys(r.dimensions).forEach((d) => t.dims.add(d));
      Object.keys(r.measures).forEach((m) => t.measures.add(m));
      tables.set(r.table, t);
      const list = byTable.get(r.table) ?? [];
      list.push(r);
      byTable.set(r.table, list);
    }
    const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
    await connection.run(`CREATE SCHEMA ${q(databaseName)}`);
    for (const [table, t] of tables) {
      const dims = [...t.dims];
      const measures = [...t.measures];
      const columns = ['"time" TIMESTAMP', 'measure_name VARCHAR', ...dims.map((d) => `${q(d)} VARCHAR`), ...measures.map((m) => `${q(m)} DOUBLE`)];
      await connection.run(`CREATE TABLE ${q(databaseName)}.${q(table)} (${columns.join(', ')})`);
      const appender = await connection.createAppender(table, databaseName);
      for (const r of byTable.get(table) ?? []) {
        appender.appendTimestamp(new DuckDBTimestampValue(BigInt(r.time) * 1000n));
        appender.appendVarchar(r.measureName);
        for (const d of dims) {
          if (r.dimensions[d] === undefined) appender.appendNull();
          else appender.appendVarchar(r.dimensions[d]);
        }
        for (const m of measures) {
          if (r.measures[m] === undefined) appender.appendNull();
          else appender.appendDouble(r.measures[m]);
        }
        appender.endRow();
      }
      appender.closeSync();
    }
    db = { generation: ts.generation, instance, connection };
    return db;
  }

  function close(): void {
    db?.connection.closeSync();
    db?.instance.closeSync();
    db = undefined;
  }

  async function answer(body: { QueryString?: string; MaxRows?: number; NextToken?: string }): Promise<QueryAnswer> {
    const sql = body.QueryString ?? '';
    const maxRows = body.MaxRows ?? MAX_ROWS;
    if (!Number.isInteger(maxRows) || maxRows < 1 || maxRows > MAX_ROWS) return ERROR('ValidationException', `MaxRows must be 1 to ${MAX_ROWS}`);
    let rows: unknown[][];
    let offset = 0;
    if (body.NextToken !== undefined) {
      const m = /^page:(\d+):(\d+)$/.exec(body.NextToken);
      const cached = m ? results.get(m[1]) : undefined;
      if (!m || !cached || cached.sql !== sql) return ERROR('ValidationException', 'Invalid pagination token');
      rows = cached.rows;
      offset = Number(m[2]);
    } else {
      let duck: string;
      try {
        duck = timestreamToDuckDb(sql);
      } catch (e) {
        if (e instanceof QueryFailure) return ERROR('ValidationException', e.message);
        throw e;
      }
      try {
        const reader = await (await database()).connection.runAndReadAll(duck);
        rows = reader.getRows();
      } catch (e) {
        const message = (e as Error).message;
        const column = /Referenced column "?([^"\s]+)"? not found/.exec(message);
        if (column) return ERROR('ValidationException', `line 1:1: Column '${column[1]}' does not exist`);
        return ERROR('ValidationException', message);
      }
      results.set(String(results.size), { sql, rows });
    }
    const id = body.NextToken ? body.NextToken.split(':')[1] : String(results.size - 1);
    const page = rows.slice(offset, offset + maxRows);
    return {
      body: {
        QueryId: `q-${id}`,
        ColumnInfo: [],
        Rows: page.map((row) => ({
          Data: row.map((v) => (v === null || v === undefined ? { NullValue: true }
            : v instanceof DuckDBTimestampValue ? { ScalarValue: timestreamTime(v.micros) }
              : { ScalarValue: String(v) })),
        })),
        ...(offset + maxRows < rows.length ? { NextToken: `page:${id}:${offset + maxRows}` } : {}),
      },
    };
  }

  return { answer, close };
}
