import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AthenaClient, GetQueryExecutionCommand, GetQueryResultsCommand, InvalidRequestException, QueryExecution, StartQueryExecutionCommand,
  StartQueryExecutionCommandInput, StopQueryExecutionCommand, TooManyRequestsException,
} from '@aws-sdk/client-athena';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { billedBytes, BYTES_SCANNED_LIMIT_REASON, javaDouble, LocalAthena, MAX_QUERY_STRING_BYTES } from './local-athena';
import { DataLake, PlatformStage } from '../../../src';
import { ENV } from '../../helpers';
import { convertCurvaEditions, curvaEditions } from '../../revisions';

/**
 * The local Athena, through the real @aws-sdk/client-athena over HTTP, over the Parquet the converter writes from
 * the real CURVA_CARGA_2023.csv (and a revised monthly edition of February), with the catalog of a synthesized
 * DataLake. Expected figures are computed here from the CSV text: `din_instante` is Brasília civil time.
 */
const stack = new Stack(new App(), 'Lake', { env: ENV });
const lake = new DataLake(stack, 'Lake', { stage: PlatformStage.PROD });
const template = Template.fromStack(stack);

const { rows: ROWS, february: FEBRUARY } = curvaEditions();
/** The current rows: February from the monthly edition, every other month from the yearly. */
const CURRENT = [...ROWS.filter((r) => !r[2].startsWith('2023-02-')), ...FEBRUARY];

let out: string;
let processed: string;
let athena: LocalAthena;
let client: AthenaClient;

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'local-athena-'));
  await convertCurvaEditions(out, new Date('2024-01-10T12:00:00Z'), new Date('2024-03-01T12:00:00Z'));
  processed = join(out, 'processed');
  athena = new LocalAthena({ template, processedDir: processed });
  client = athenaClient(await athena.start());
});

afterAll(async () => {
  client?.destroy();
  await athena?.close();
});

function athenaClient(endpoint: string): AthenaClient {
  return new AthenaClient({ endpoint, region: 'sa-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
}

type Start = Omit<StartQueryExecutionCommandInput, 'QueryString'>;
const context = (): Start => ({ WorkGroup: lake.workGroupName, QueryExecutionContext: { Database: lake.databaseName, Catalog: 'AwsDataCatalog' } });

/** Starts `sql`, polls until it ends (the states seen, in order), and reads every page of a success. */
async function run(sql: string, parameters?: string[], options: Start = {}, c = client) {
  const input = { QueryString: sql, ExecutionParameters: parameters, ...context(), ...options };
  const { QueryExecutionId } = await c.send(new StartQueryExecutionCommand(input));
  const states: string[] = [];
  let execution: QueryExecution;
  for (;;) {
    execution = (await c.send(new GetQueryExecutionCommand({ QueryExecutionId }))).QueryExecution!;
    states.push(execution.Status!.State!);
    if (!['QUEUED', 'RUNNING'].includes(execution.Status!.State!)) break;
  }
  const pages: Array<Array<Array<string | undefined>>> = [];
  let types: string[] = [];
  if (execution.Status!.State === 'SUCCEEDED') {
    let NextToken: string | undefined;
    do {
      const page = await c.send(new GetQueryResultsCommand({ QueryExecutionId, NextToken, MaxResults: 1000 }));
      types = page.ResultSet!.ResultSetMetadata!.ColumnInfo!.map((ci) => ci.Type!);
      pages.push(page.ResultSet!.Rows!.map((r) => r.Data!.map((d) => d.VarCharValue)));
      NextToken = page.NextToken;
    } while (NextToken);
  }
  const [header, ...rows] = pages.flat();
  return { id: QueryExecutionId!, states, execution, pages, header, rows, types };
}

/** The states in the order seen, each once. */
const distinct = (states: string[]) => states.filter((s, i) => s !== states[i - 1]);
const sum = (rows: string[][]) => rows.reduce((s, r) => s + Number(r[3]), 0);
const partitionBytes = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.parquet')).reduce((s, f) => s + statSync(join(dir, f)).size, 0);

describe('the local Athena: API, states and statistics', () => {
  test('QUEUED, then RUNNING, then SUCCEEDED; the SQL recorded as sent; data scanned = the bytes of the partition the filter selects', async () => {
    const sql = 'SELECT count(*) AS n FROM curva_carga WHERE year = 2023 AND month = 3 AND id_subsistema = ?';
    const r = await run(sql, ["'SE'"]);
    expect(r.states.slice(0, 2)).toEqual(['QUEUED', 'RUNNING']); // RUNNING for as long as DuckDB runs, too
    expect(distinct(r.states)).toEqual(['QUEUED', 'RUNNING', 'SUCCEEDED']);
    expect(r.header).toEqual(['n']);
    expect(r.rows).toEqual([[String(ROWS.filter((x) => x[0] === 'SE' && x[2].startsWith('2023-03-')).length)]]);
    expect(r.types).toEqual(['bigint']);
    expect(athena.queries.find((q) => q.id === r.id)!.sql).toBe(sql);
    expect(r.execution.Statistics!.DataScannedInBytes).toBe(partitionBytes(join(processed, 'dataset=curva_carga', 'year=2023', 'month=03')));
    expect(r.execution.Statistics!.ResultReuseInformation!.ReusedPreviousResult).toBe(false);
    expect(billedBytes(athena.queries.find((q) => q.id === r.id)!)).toBe(10 * 1024 * 1024);
  });

  test('the views prune too: a filter on year and month through <dataset>_current reads only that partition', async () => {
    const r = await run('SELECT count(*) FROM curva_carga_current WHERE year = 2023 AND month = 2');
    expect(r.rows).toEqual([[String(FEBRUARY.length)]]);
    const q = athena.queries.find((x) => x.id === r.id)!;
    expect(q.scannedFiles.every((f) => f.includes('/year=2023/month=02/'))).toBe(true);
    expect(q.scannedFiles).toHaveLength(2); // the yearly and the monthly edition of February
  });

  test('paging: the header row on the first page only, 1000 rows a page at most, values and types as Athena prints them', async () => {
    const r = await run(`SELECT id_subsistema, time, val_cargaenergiahomwmed, year, source_time FROM curva_carga
      WHERE year = 2023 AND month = 1 AND source_key = ? ORDER BY time, id_subsistema`, ["'ons/curva_carga/CURVA_CARGA_2023.csv'"]);
    const january = ROWS.filter((x) => x[2].startsWith('2023-01-'));
    expect(r.pages.map((p) => p.length)).toEqual([1000, 1000, 977]);
    expect(r.header).toEqual(['id_subsistema', 'time', 'val_cargaenergiahomwmed', 'year', 'source_time']);
    expect(r.rows).toHaveLength(january.length);
    expect(r.types).toEqual(['varchar', 'timestamp', 'double', 'integer', 'timestamp']);
    // 2023-01-01 00:00 in Brasília (UTC-3) is 03:00 UTC; the CSV's first row is N.
    const first = january.filter((x) => x[2] === '2023-01-01 00:00:00').sort((a, b) => a[0].localeCompare(b[0]))[0];
    expect(r.rows[0]).toEqual([first[0], '2023-01-01 03:00:00.000', javaDouble(Number(first[3])), '2023', '2024-01-10 12:00:00.000']);
    expect(r.rows.reduce((s, x) => s + Number(x[2]), 0)).toBeCloseTo(sum(january), 4);
  });

  test('MaxResults above 1000, results before the end, an unknown workgroup and a query string over 262,144 bytes are refused', async () => {
    const { QueryExecutionId } = await client.send(new StartQueryExecutionCommand({ QueryString: 'SELECT 1 AS x FROM curva_carga WHERE year = 2023 AND month = 1 LIMIT 1', ...context() }));
    await expect(client.send(new GetQueryResultsCommand({ QueryExecutionId }))).rejects.toThrow('Query has not yet finished. Current state: QUEUED');
    await expect(client.send(new GetQueryResultsCommand({ QueryExecutionId, MaxResults: 1001 }))).rejects.toBeInstanceOf(InvalidRequestException);
    await expect(client.send(new StartQueryExecutionCommand({ QueryString: 'SELECT 1', WorkGroup: 'primary' }))).rejects.toThrow('WorkGroup primary is not found.');
    const long = `SELECT 1 FROM curva_carga WHERE source_key = '${'x'.repeat(MAX_QUERY_STRING_BYTES)}'`;
    await expect(client.send(new StartQueryExecutionCommand({ QueryString: long, ...context() }))).rejects.toThrow(/length less than or equal to 262144/);
    const before = athena.queries.length;
    await expect(client.send(new StartQueryExecutionCommand({ QueryString: 'SELECT 1', ExecutionParameters: ['x'.repeat(1025)], ...context() }))).rejects.toBeInstanceOf(InvalidRequestException);
    expect(athena.queries).toHaveLength(before);
  });

  test('StopQueryExecution: a query stopped while QUEUED is CANCELLED and has no results', async () => {
    const { QueryExecutionId } = await client.send(new StartQueryExecutionCommand({ QueryString: 'SELECT count(*) FROM curva_carga_current', ...context() }));
    expect((await client.send(new GetQueryExecutionCommand({ QueryExecutionId }))).QueryExecution!.Status!.State).toBe('QUEUED');
    await client.send(new StopQueryExecutionCommand({ QueryExecutionId }));
    for (let i = 0; i < 3; i++) {
      expect((await client.send(new GetQueryExecutionCommand({ QueryExecutionId }))).QueryExecution!.Status!.State).toBe('CANCELLED');
    }
    await expect(client.send(new GetQueryResultsCommand({ QueryExecutionId }))).rejects.toThrow('Final query state: CANCELLED');
  });

  test('ClientRequestToken: the same request gives the same query; another text under the token is refused', async () => {
    const token = 'a'.repeat(40);
    const sql = 'SELECT count(*) FROM curva_carga WHERE year = 2023 AND month = 4';
    const a = await client.send(new StartQueryExecutionCommand({ QueryString: sql, ClientRequestToken: token, ...context() }));
    const b = await client.send(new StartQueryExecutionCommand({ QueryString: sql, ClientRequestToken: token, ...context() }));
    expect(b.QueryExecutionId).toBe(a.QueryExecutionId);
    await expect(client.send(new StartQueryExecutionCommand({ QueryString: `${sql} AND month = 5`, ClientRequestToken: token, ...context() }))).rejects.toThrow('Idempotent parameters do not match');
  });

  test('result reuse: the same query within the age reuses the result (nothing scanned); past the age it runs again', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    athena.clock = { now: () => now };
    const sql = 'SELECT sum(val_cargaenergiahomwmed) FROM curva_carga_current WHERE year = 2023 AND month = 6';
    const reuse: Start = { ResultReuseConfiguration: { ResultReuseByAgeConfiguration: { Enabled: true, MaxAgeInMinutes: 60 } } };
    const first = await run(sql, undefined, reuse);
    now += 59 * 60_000;
    const second = await run(sql, undefined, reuse);
    now += 2 * 60_000;
    const third = await run(sql, undefined, reuse);
    athena.clock = { now: () => Date.now() };
    expect(second.execution.Statistics!.ResultReuseInformation!.ReusedPreviousResult).toBe(true);
    expect(second.execution.Statistics!.DataScannedInBytes).toBe(0);
    expect(second.rows).toEqual(first.rows);
    expect(third.execution.Statistics!.ResultReuseInformation!.ReusedPreviousResult).toBe(false);
    expect(third.execution.Statistics!.DataScannedInBytes).toBeGreaterThan(0);
  });

  test('throttling: TooManyRequestsException (CONCURRENT_QUERY_LIMIT_EXCEEDED) and no query started', async () => {
    athena.throttleNextStarts(1);
    const before = athena.queries.length;
    const error = await client.send(new StartQueryExecutionCommand({ QueryString: 'SELECT 1 FROM curva_carga', ...context() })).catch((e) => e);
    expect(error).toBeInstanceOf(TooManyRequestsException);
    expect(error.Reason).toBe('CONCURRENT_QUERY_LIMIT_EXCEEDED');
    expect(athena.queries).toHaveLength(before);
  });
});

describe('execution parameters', () => {
  test('a string parameter is a value: an injection attempt is a string that matches nothing, and the table is intact', async () => {
    const sql = 'SELECT count(*) FROM curva_carga_current WHERE year = 2023 AND id_subsistema = ?';
    const attempt = await run(sql, ["'''; DROP TABLE curva_carga; --'"]);
    expect(attempt.states.at(-1)).toBe('SUCCEEDED');
    expect(attempt.rows).toEqual([['0']]);
    const orAttempt = await run(sql, ["'x'' OR ''1''=''1'"]);
    expect(orAttempt.rows).toEqual([['0']]);
    expect((await run(sql, ["'NE'"])).rows).toEqual([[String(ROWS.filter((r) => r[0] === 'NE').length)]]);
  });

  test('a value that is not one literal, a ? outside WHERE, and a count mismatch fail the query with the reason', async () => {
    const failed = async (sql: string, parameters: string[]) => {
      const r = await run(sql, parameters);
      expect(r.states.at(-1)).toBe('FAILED');
      return r.execution.Status!.StateChangeReason;
    };
    expect(await failed('SELECT count(*) FROM curva_carga WHERE id_subsistema = ?', ["'N'; DROP TABLE curva_carga"])).toMatch(/Execution parameter 1 is not a literal value/);
    expect(await failed('SELECT count(*) FROM curva_carga WHERE id_subsistema = ?', ['N'])).toMatch(/not a literal value/);
    expect(await failed('SELECT * FROM curva_carga WHERE year = ? LIMIT ?', ['2023', '10'])).toMatch(/Execution parameter 2 is in the LIMIT clause/);
    expect(await failed('SELECT count(*) FROM curva_carga WHERE year = ? AND month = ?', ['2023'])).toBe('Incorrect number of parameters: expected 2 but found 1');
    expect((await run('SELECT count(*) FROM curva_carga_current WHERE time >= from_iso8601_timestamp(?) AND time < CAST(? AS timestamp(3))',
      ["'2023-03-01T03:00:00Z'", "CAST('2023-03-02 03:00:00' AS timestamp)"])).rows).toEqual([[String(4 * 24)]]); // one day, hourly, four subsystems
  });
});

/** Local date of a CSV row, and its ISO week start and ONS week (Saturday–Friday) start, computed on the civil calendar. */
function calendar(local: string) {
  const day = local.slice(0, 10);
  const d = new Date(`${day}T00:00:00Z`);
  const isoDow = ((d.getUTCDay() + 6) % 7) + 1;
  const shift = (n: number) => new Date(d.getTime() - n * 86_400_000).toISOString().slice(0, 10);
  return { day, month: day.slice(0, 7), isoWeek: shift(isoDow - 1), onsWeek: shift((isoDow + 1) % 7) };
}

function totals(rows: string[][], key: (r: string[]) => string): Map<string, { sum: number; n: number }> {
  const m = new Map<string, { sum: number; n: number }>();
  for (const r of rows) {
    const k = key(r);
    const t = m.get(k) ?? { sum: 0, n: 0 };
    m.set(k, { sum: t.sum + Number(r[3]), n: t.n + 1 });
  }
  return m;
}

describe('calendar aggregates in Brasília time, Trino SQL through the rewrites', () => {
  const BRT = "'America/Sao_Paulo'";

  test('daily: every local day of the year for one subsystem, with its local midnight as an ISO instant', async () => {
    const sql = `SELECT CAST(date_trunc('day', time AT TIME ZONE ${BRT}) AS date) AS day,
        to_iso8601(date_trunc('day', time AT TIME ZONE ${BRT})) AS starts, sum(val_cargaenergiahomwmed) AS total, count(*) AS n
      FROM curva_carga_current
      WHERE year = 2023 AND id_subsistema = ? AND time >= from_iso8601_timestamp(?) AND time < from_iso8601_timestamp(?)
      GROUP BY 1, 2 ORDER BY 1`;
    const r = await run(sql, ["'S'", "'2023-01-01T03:00:00Z'", "'2024-01-01T03:00:00Z'"]);
    expect(r.types).toEqual(['date', 'varchar', 'double', 'bigint']);
    const expected = totals(CURRENT.filter((x) => x[0] === 'S'), (x) => calendar(x[2]).day);
    expect(r.rows.map((x) => x[0])).toEqual([...expected.keys()].sort());
    expect(r.rows).toHaveLength(365);
    for (const [day, starts, total, n] of r.rows) {
      expect(starts).toBe(`${day}T00:00:00.000-03:00`);
      expect(Number(n)).toBe(expected.get(day!)!.n);
      expect(Number(total)).toBeCloseTo(expected.get(day!)!.sum, 6);
    }
    expect(athena.queries.at(-1)!.sql).toBe(sql); // as sent, before rewriting
  });

  test('monthly: each civil month (the last three hours of a month stay in it), every subsystem', async () => {
    const r = await run(`SELECT id_subsistema, date_trunc('month', time AT TIME ZONE ${BRT}) AS month, sum(val_cargaenergiahomwmed) AS total
      FROM curva_carga_current WHERE year = 2023 GROUP BY 1, 2 ORDER BY 1, 2`);
    expect(r.types).toEqual(['varchar', 'timestamp with time zone', 'double']);
    const expected = totals(CURRENT, (x) => `${x[0]} ${calendar(x[2]).month}`);
    expect(r.rows).toHaveLength(expected.size);
    for (const [id, month, total] of r.rows) {
      expect(month).toMatch(/^2023-\d\d-01 00:00:00\.000 America\/Sao_Paulo$/);
      expect(Number(total)).toBeCloseTo(expected.get(`${id} ${month!.slice(0, 7)}`)!.sum, 4);
    }
    // The independent check of the UTC cut the issue describes: a UTC month differs from the civil one.
    const utc = await run(`SELECT sum(val_cargaenergiahomwmed) FROM curva_carga_current WHERE year = 2023 AND id_subsistema = 'SE'
      AND date_trunc('month', time) = TIMESTAMP '2023-01-01 00:00:00'`);
    expect(Number(utc.rows[0][0])).not.toBeCloseTo(expected.get('SE 2023-01')!.sum, 0);
  });

  test('weeks: the ISO week (Monday) and the ONS operative week (Saturday to Friday), with date_add and day_of_week', async () => {
    const local = `time AT TIME ZONE ${BRT}`;
    const r = await run(`SELECT CAST(date_trunc('week', ${local}) AS date) AS iso_week,
        CAST(date_add('day', -((day_of_week(${local}) + 1) % 7), date_trunc('day', ${local})) AS date) AS ons_week,
        sum(val_cargaenergiahomwmed) AS total
      FROM curva_carga_current WHERE year = 2023 AND id_subsistema = 'N' GROUP BY 1, 2 ORDER BY 1, 2`);
    const expected = totals(CURRENT.filter((x) => x[0] === 'N'), (x) => `${calendar(x[2]).isoWeek} ${calendar(x[2]).onsWeek}`);
    expect(r.rows).toHaveLength(expected.size);
    for (const [iso, ons, total] of r.rows) {
      expect(new Date(`${iso}T00:00:00Z`).getUTCDay()).toBe(1);
      expect(new Date(`${ons}T00:00:00Z`).getUTCDay()).toBe(6);
      expect(Number(total)).toBeCloseTo(expected.get(`${iso} ${ons}`)!.sum, 6);
    }
  });
});

describe('the rewrites where Trino and DuckDB differ', () => {
  test("date_diff counts whole units elapsed (Trino), date_add adds civil units, to_iso8601 of a timestamp has no offset, '?' in a literal is text", async () => {
    const r = await run(`SELECT date_diff('day', TIMESTAMP '2023-01-01 23:00:00', TIMESTAMP '2023-01-02 01:00:00') AS d0,
        date_diff('hour', TIMESTAMP '2023-01-01 23:00:00', TIMESTAMP '2023-01-02 01:00:00') AS h2,
        to_iso8601(date_add('month', 1, TIMESTAMP '2023-01-31 12:00:00')) AS feb,
        day_of_week(DATE '2023-01-01') AS sunday, week_of_year(DATE '2023-01-01') AS week52, '?' AS mark`);
    expect(r.execution.Status!.StateChangeReason).toBeUndefined();
    expect(r.rows).toEqual([['0', '2', '2023-02-28T12:00:00.000', '7', '52', '?']]);
  });
});

describe('the <dataset>_current view and the bytes-scanned cutoff', () => {
  test('the current view: one row per series and instant, February from the newer monthly edition', async () => {
    const r = await run(`SELECT count(*), sum(val_cargaenergiahomwmed), count(DISTINCT source_key) FROM curva_carga_current
      WHERE year = 2023 AND month = 2`);
    expect(Number(r.rows[0][0])).toBe(FEBRUARY.length);
    expect(Number(r.rows[0][1])).toBeCloseTo(sum(FEBRUARY), 4);
    expect(r.rows[0][2]).toBe('1');
    expect((await run('SELECT count(*) FROM curva_carga_current')).rows).toEqual([[String(ROWS.length)]]);
  });

  test('over the workgroup cutoff the query FAILS with the reason; a query that prunes to one year runs', async () => {
    // 17 years of this dataset: the 2023 partitions (the converter's Parquet) also under 2007..2022.
    const history = mkdtempSync(join(tmpdir(), 'local-athena-history-'));
    const source = join(processed, 'dataset=curva_carga', 'year=2023');
    for (let year = 2007; year <= 2023; year++) {
      for (const month of readdirSync(source)) {
        const dir = join(history, 'dataset=curva_carga', `year=${year}`, month);
        mkdirSync(dir, { recursive: true });
        for (const f of readdirSync(join(source, month))) copyFileSync(join(source, month, f), join(dir, f));
      }
    }
    const historyAthena = new LocalAthena({ template, processedDir: history, queuedPolls: 2, runningPolls: 3 });
    historyAthena.setBytesScannedCutoff(10_000_000);
    expect(() => historyAthena.setBytesScannedCutoff(9_999_999)).toThrow('BytesScannedCutoffPerQuery: at least 10000000 bytes');
    const c = athenaClient(await historyAthena.start());
    try {
      const all = await run('SELECT sum(val_cargaenergiahomwmed) FROM curva_carga', undefined, {}, c);
      expect(all.states.slice(0, 5)).toEqual(['QUEUED', 'QUEUED', 'RUNNING', 'RUNNING', 'RUNNING']);
      expect(distinct(all.states)).toEqual(['QUEUED', 'RUNNING', 'FAILED']);
      expect(all.execution.Status!.StateChangeReason).toBe(BYTES_SCANNED_LIMIT_REASON);
      expect(historyAthena.queries[0].scannedBytes).toBeGreaterThan(10_000_000);
      const year = await run('SELECT sum(val_cargaenergiahomwmed) FROM curva_carga WHERE year = 2015', undefined, {}, c);
      expect(year.states.at(-1)).toBe('SUCCEEDED');
      expect(Number(year.rows[0][0])).toBeCloseTo(sum(ROWS) + sum(FEBRUARY), 2);
      expect(year.execution.Statistics!.DataScannedInBytes).toBeLessThan(10_000_000);
    } finally {
      c.destroy();
      await historyAthena.close();
    }
  });
});
