/**
 * Benchmark of the lake engine (`npm run bench:lake`): what typical `GET /timeseries/{dataset}` requests cost on
 * Athena, and how long the local engine takes, over 25 years of curva_carga and one year of a
 * geracao_usina_2-shaped dataset.
 *
 * Inputs come from ./inputs.ts (real CURVA_CARGA_2023.csv rows, cached under os.tmpdir()), converted by the
 * bundled command (`convert FILE --out DIR`, exactly what the processing function writes: the processed zone's
 * `dataset=<id>/year=YYYY/month=MM/<file>.<source id>.parquet`); the conversion is cached too, keyed by the
 * command's bytes and the inputs.
 *
 * Each request goes through the bundled query handler (assets/timeseries/lake/query.lambda, what Lambda runs) and
 * the real @aws-sdk/client-athena to the local Athena (test/timeseries/lake/local-athena.ts: DuckDB over the
 * Parquet, the catalog of a synthesized DataLake). For each request:
 * - bytes selected: the Parquet objects under the partitions its WHERE clause selects, found as partition
 *   projection finds them: the conjuncts of the query's top-level WHERE (as sent, parameters bound) that name only
 *   partition keys, evaluated over every (year, month) of the table's projection range; then the objects under
 *   those partitions' storage location template. Athena bills what it scans, rounded up to the MB, at least
 *   10 MB a query; it reads only the columns a query needs, so the column chunks of the columns named in the
 *   query and the view's current-row order are reported too (a lower estimate);
 * - the local engine's time (DuckDB, as the local Athena reports it) for the query as sent, and for the same
 *   query with DuckDB's filter pushdown off, so that no partition (and no row group) is skipped: the baseline
 *   that measures what pruning saves. Both must return the same rows, and the files DuckDB read with pruning
 *   must lie in the selected partitions; otherwise the exit status is 1.
 *
 * Prints one JSON object to stdout; progress goes to stderr. Options: --runs N (3), --plants N (500),
 * --usd-per-tb X (5), --only curva|geracao, --cli PATH, --verbose (the handler's log lines on stderr).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join, relative, resolve } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { eachOption } from './args';
import { BenchInput, cacheRoot, GENERATOR_VERSION, prepareLakeInputs } from './inputs';
import { DataLake, PlatformStage } from '../src';
import { currentViewName } from '../src/lake/tables';
import { CURRENT_ROW_ORDER, partitionPath } from '../src/ons/layout';
import { LakeQueryEnv, TimeSeriesEnv } from '../src/timeseries/contract';
import { timeSeriesRequestEvent } from '../src/timeseries/runtime/request';
import { ENV } from '../test/helpers';
import { BILLING, billedBytes, LocalAthena, LocalQuery } from '../test/timeseries/lake/local-athena';
import { bindParameters, render, Token, tokenize } from '../test/timeseries/lake/trino-to-duckdb';

const ROOT = resolve(__dirname, '..');
/** The bench's own data layout version: bump when the conversion or the inputs change meaning. */
const LAKE_BENCH_VERSION = 'l1';
/** 25 years of curva_carga, inside the tables' partition projection (2000 to projectionEndYear, default 2050). */
const CURVA_YEARS = Array.from({ length: 25 }, (_, i) => 2000 + i);
/** A year without daylight saving time (Brazil has had none since 2019). */
const GERACAO_YEAR = 2023;
/**
 * Athena SQL queries: "$5.00 per TB of data scanned", "rounded up to the nearest megabyte, with a 10 MB minimum per
 * query" (Amazon Athena pricing, https://aws.amazon.com/athena/pricing/, as quoted on 2026-12-07; the minimum and
 * rounding are BILLING in the local Athena). A TB is taken as 2^40 bytes, as the MB is 2^20.
 */
const DEFAULT_USD_PER_TB = 5;
const TB = 2 ** 40;

interface Options {
  runs: number;
  plants: number;
  usdPerTb: number;
  only?: 'curva' | 'geracao';
  cli: string;
  verbose: boolean;
}

const log = (message: string) => process.stderr.write(`[bench:lake] ${message}\n`);

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    runs: 3,
    plants: 500,
    usdPerTb: DEFAULT_USD_PER_TB,
    cli: join(ROOT, 'assets', 'cli', 'ons-data-platform', 'ons-data-platform.js'),
    verbose: false,
  };
  eachOption(argv, (a) => {
    switch (a.name) {
      case '--runs': options.runs = a.positive(); break;
      case '--plants': options.plants = a.positive(); break;
      case '--usd-per-tb': {
        const v = Number(a.value());
        if (!Number.isFinite(v) || v <= 0) throw new Error('--usd-per-tb needs a positive number');
        options.usdPerTb = v;
        break;
      }
      case '--only': {
        const v = a.value();
        if (v !== 'curva' && v !== 'geracao') throw new Error('--only is curva or geracao');
        options.only = v;
        break;
      }
      case '--cli': options.cli = resolve(a.value()); break;
      case '--verbose': options.verbose = true; break;
      default: throw new Error(`unknown option ${a.name}`);
    }
  });
  return options;
}

// ---------------------------------------------------------------------------------------------
// The processed zone: the bundled command's conversion of the inputs, cached

function parquetFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.parquet')).map((f) => join(dir, f)).sort();
}

/** Converts every input with the bundled command into one output directory (reused while the command and the inputs are the same). */
function convertAll(inputs: readonly BenchInput[], cli: string, plants: number): string {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npx projen bundle\` first`);
  const key = createHash('sha256').update(readFileSync(cli)).update(JSON.stringify(inputs.map((i) => [i.path, i.bytes]))).digest('hex').slice(0, 16);
  const out = join(cacheRoot(), `lake-${GENERATOR_VERSION}`, `converted-${LAKE_BENCH_VERSION}-${plants}-${key}`);
  if (existsSync(join(out, 'done'))) {
    log(`processed zone ${out}: cached`);
    return out;
  }
  const partial = `${out}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const started = Date.now();
  for (const input of inputs) {
    const t = Date.now();
    const result = spawnSync(process.execPath, [cli, 'convert', input.path, '--out', partial, '--json'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (result.status !== 0) throw new Error(`convert ${input.path} exited ${result.status}: ${result.stderr.slice(-2000)}`);
    const summary = JSON.parse(result.stdout).summary;
    // The figures would mean nothing over a partial conversion.
    if (summary.rows !== input.rows || summary.records !== input.rows || summary.rejected !== 0) {
      throw new Error(`convert ${input.path}: ${summary.rows} rows, ${summary.records} records, ${summary.rejected} rejected; expected ${input.rows} records`);
    }
    log(`converted ${relative(cacheRoot(), input.path)} (${summary.records} records) in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  writeFileSync(join(partial, 'done'), new Date().toISOString());
  rmSync(out, { recursive: true, force: true });
  renameSync(partial, out);
  log(`processed zone ${out}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Partitions a query selects, as partition projection finds them

interface Projection {
  readonly keys: readonly string[];
  /** Every projected partition, as key → value. */
  readonly partitions: ReadonlyArray<Readonly<Record<string, number>>>;
}

/** The projected partitions of a Glue table (integer projections only, which is what the lake's tables use). */
function projectionOf(template: Template, table: string): Projection {
  const t = Object.values(template.findResources('AWS::Glue::Table')).map((r: any) => r.Properties.TableInput).find((i: any) => i.Name === table);
  if (!t) throw new Error(`no Glue table ${table} in the template`);
  const parameters = t.Parameters ?? {};
  if (parameters['projection.enabled'] !== 'true') throw new Error(`table ${table} has no partition projection`);
  const keys: string[] = t.PartitionKeys.map((k: any) => k.Name);
  let partitions: Array<Record<string, number>> = [{}];
  for (const key of keys) {
    if (parameters[`projection.${key}.type`] !== 'integer') throw new Error(`table ${table}: projection of ${key} is not an integer range`);
    const [from, to] = String(parameters[`projection.${key}.range`]).split(',').map(Number);
    const values = Array.from({ length: to - from + 1 }, (_, i) => from + i);
    partitions = partitions.flatMap((p) => values.map((v) => ({ ...p, [key]: v })));
  }
  return { keys, partitions };
}

const code = (tokens: readonly Token[]) => tokens.filter((t) => t.kind !== 'ws' && t.kind !== 'comment');
const isWord = (t: Token | undefined, w: string) => t?.kind === 'word' && t.text.toLowerCase() === w;
const unquote = (t: Token) => (t.kind === 'quoted' ? t.text.slice(1, -1).replace(/""/g, '"') : t.text).toLowerCase();

/** The conjuncts (AND at the top level, BETWEEN's AND excepted) of the outermost WHERE clause. */
function whereConjuncts(tokens: readonly Token[]): Token[][] {
  const c = code(tokens);
  let depth = 0;
  let start = -1;
  for (let i = 0; i < c.length; i++) {
    if (c[i].text === '(') {depth++;} else if (c[i].text === ')') {depth--;} else if (depth === 0 && isWord(c[i], 'where')) {
      start = i + 1;
      break;
    }
  }
  if (start < 0) return [];
  const conjuncts: Token[][] = [];
  let current: Token[] = [];
  let between = false;
  depth = 0;
  for (let i = start; i < c.length; i++) {
    const t = c[i];
    if (t.text === '(') depth++;
    else if (t.text === ')') depth--;
    if (depth === 0 && ['group', 'order', 'limit', 'offset', 'having', 'union', 'window'].some((w) => isWord(t, w))) break;
    if (depth === 0 && isWord(t, 'between')) between = true;
    if (depth === 0 && isWord(t, 'and')) {
      if (between) {
        between = false;
      } else {
        conjuncts.push(current);
        current = [];
        continue;
      }
    }
    current.push(t);
  }
  if (current.length > 0) conjuncts.push(current);
  return conjuncts;
}

const PREDICATE_WORDS = new Set(['and', 'or', 'not', 'between', 'in', 'is', 'null', 'true', 'false', 'cast', 'as', 'integer', 'int', 'bigint']);

/**
 * The projected partitions the query's WHERE keeps: the conjuncts that name only partition keys (what partition
 * pruning can evaluate before reading anything), with their parameters bound, run in DuckDB over the projection.
 */
async function selectedPartitions(query: LocalQuery, projection: Projection): Promise<Array<Record<string, number>>> {
  const bound = bindParameters(tokenize(query.sql), query.parameters);
  const keys = new Set(projection.keys.map((k) => k.toLowerCase()));
  const pruning = whereConjuncts(bound).filter((conj) => conj.some((t) => (t.kind === 'quoted' || t.kind === 'word') && keys.has(unquote(t)))
    && conj.every((t) => (t.kind === 'quoted' ? keys.has(unquote(t)) : t.kind !== 'word' || keys.has(unquote(t)) || PREDICATE_WORDS.has(t.text.toLowerCase()))));
  const values = projection.partitions.map((p) => `(${projection.keys.map((k) => p[k]).join(', ')})`).join(', ');
  const columns = projection.keys.map((k) => `"${k}"`).join(', ');
  const where = pruning.length === 0 ? 'true' : pruning.map((conj) => `(${render(conj.map((t) => ({ ...t, text: ` ${t.text}` })))})`).join(' AND ');
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(`SELECT ${columns} FROM (VALUES ${values}) AS p(${columns}) WHERE ${where} ORDER BY ${columns}`);
    return reader.getRowObjectsJS().map((row) => Object.fromEntries(projection.keys.map((k) => [k, Number(row[k])])));
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** Bytes of the named columns' chunks in these Parquet files (what a columnar reader fetches, footers aside). */
async function columnBytes(files: readonly string[], columns: ReadonlySet<string>): Promise<number> {
  if (files.length === 0) return 0;
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const list = files.map((f) => `'${f.replace(/'/g, "''")}'`).join(', ');
    const reader = await connection.runAndReadAll(`SELECT path_in_schema AS name, sum(total_compressed_size) AS bytes FROM parquet_metadata([${list}]) GROUP BY 1`);
    return reader.getRowObjectsJS().filter((r) => columns.has(String(r.name).toLowerCase())).reduce((s, r) => s + Number(r.bytes), 0);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

// ---------------------------------------------------------------------------------------------
// The handler, and DuckDB with or without pruning

/**
 * The baseline: DuckDB opened with its filter pushdown optimizer off, so no filter reaches the Parquet scan and
 * every file of the dataset is read (Hive partition and row-group pruning are both done by that pushdown). The
 * local Athena opens one DuckDB per query; the option is added where it opens it, and it is the only change.
 */
let pruning = true;
const createDuckDb = DuckDBInstance.create.bind(DuckDBInstance);
DuckDBInstance.create = (path?: string, options?: Record<string, string>) =>
  createDuckDb(path, pruning ? options : { ...options, disabled_optimizers: 'filter_pushdown' });

type Handler = (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;

function loadHandler(env: Record<string, string>): Handler {
  const asset = join(ROOT, 'assets', 'timeseries', 'lake', 'query.lambda', 'index.js');
  if (!existsSync(asset)) throw new Error(`${asset} is missing: run \`npx projen bundle\` first`);
  Object.assign(process.env, env);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(asset) as { handler: Handler }).handler;
}

let requestCount = 0;
const event = (dataset: string, query: Record<string, string>) => timeSeriesRequestEvent(dataset, query, `bench-${++requestCount}`);

// ---------------------------------------------------------------------------------------------
// The requests

interface Request {
  readonly name: string;
  readonly query: Record<string, string>;
}

/** Typical requests over a dataset whose last full year is `year` and whose data starts in `first` (Brasília civil periods). */
function requests(year: number, first: number, filter: Record<string, string>): Request[] {
  // Mid-June: no DST in any year the lake covers from June to mid-October, so -03:00 is the civil offset.
  return [
    { name: 'a day of raw points', query: { ...filter, from: `${year}-06-15T00:00:00-03:00`, to: `${year}-06-16T00:00:00-03:00` } },
    { name: 'a month by hour', query: { ...filter, from: `${year}-06-01T00:00:00-03:00`, to: `${year}-07-01T00:00:00-03:00`, interval: '1h', aggregation: 'avg' } },
    { name: 'a year by day', query: { ...filter, from: `${year}-01-01T00:00:00-03:00`, to: `${year + 1}-01-01T00:00:00-03:00`, interval: '1d', aggregation: 'avg' } },
    { name: '25 years by month', query: { ...filter, from: `${first}-01-01T00:00:00-03:00`, to: `${first + 25}-01-01T00:00:00-03:00`, interval: '1mo', aggregation: 'avg' } },
  ];
}

/** Where two results differ, numbers equal to a relative 1e-12 (a sum over files read in another order differs in its last bits). */
type Rows = ReadonlyArray<ReadonlyArray<string | undefined>>;
function firstDifference(a: Rows, b: Rows): string | undefined {
  const num = (v: string | undefined) => (v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined);
  const same = (x: string | undefined, y: string | undefined) => {
    const [p, q] = [num(x), num(y)];
    return p === undefined || q === undefined ? x === y : Math.abs(p - q) <= 1e-12 * Math.max(Math.abs(p), Math.abs(q));
  };
  if (a.length !== b.length) return `${a.length} rows against ${b.length}`;
  const i = a.findIndex((row, n) => row.length !== b[n].length || row.some((v, j) => !same(v, b[n][j])));
  return i < 0 ? undefined : `row ${i}: ${JSON.stringify(a[i])} against ${JSON.stringify(b[i])}`;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const timing = (xs: readonly number[]) => ({ best: Math.round(Math.min(...xs)), median: Math.round(median(xs)) });
const mb = (bytes: number) => Math.round(bytes / 1e4) / 100;
const usd = (x: number) => Number(x.toPrecision(3));

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const inputs = await prepareLakeInputs({ curvaYears: CURVA_YEARS, geracaoYear: GERACAO_YEAR, plants: options.plants }, log);
  const all = [...(options.only === 'geracao' ? [] : inputs.curva), ...(options.only === 'curva' ? [] : inputs.geracao)];
  const converted = convertAll(all, options.cli, options.plants);
  const processedDir = join(converted, 'processed');

  const stack = new Stack(new App(), 'LakeBench', { env: ENV });
  new DataLake(stack, 'Lake', { stage: PlatformStage.PROD });
  const template = Template.fromStack(stack);
  const athena = new LocalAthena({ template, processedDir });
  // The workgroup's cutoff (100 GiB in PROD) is far above these datasets; it stays as synthesized.
  const endpoint = await athena.start();

  // The plant of the geracao requests: the first of the first file (a nuclear unit, Angra 1, producing every hour).
  const geracaoPlant = readFileSync(inputs.geracao[0].path, 'utf8').split('\n', 2)[1].split(';')[9];
  const datasets = [
    { id: 'curva_carga', key: 'curva', input: inputs.curva, requests: requests(CURVA_YEARS[CURVA_YEARS.length - 1], CURVA_YEARS[0], {}) },
    { id: 'geracao_usina_2', key: 'geracao', input: inputs.geracao, requests: requests(GERACAO_YEAR, CURVA_YEARS[0], { id_ons: geracaoPlant }) },
  ].filter((d) => !options.only || d.key === options.only);

  const handler = loadHandler({
    AWS_REGION: ENV.region,
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    [TimeSeriesEnv.DATABASE]: athena.database,
    [TimeSeriesEnv.TABLES]: JSON.stringify(Object.fromEntries(datasets.map((d) => [d.id, currentViewName(d.id)]))),
    [LakeQueryEnv.WORK_GROUP]: athena.workGroup,
    [LakeQueryEnv.ATHENA_ENDPOINT]: endpoint,
    [LakeQueryEnv.POLL_DELAY_MS]: '1',
    // Every run executes its query: with result reuse on, the second identical request would be answered from the first.
    [LakeQueryEnv.RESULT_REUSE_MINUTES]: '0',
  });
  // The handler logs a JSON line per request on stdout, where the bench's own JSON goes.
  const stdoutWrite = process.stdout.write.bind(process.stdout);
  const quiet = (chunk: any, ...rest: any[]) => (options.verbose ? process.stderr.write(chunk, ...rest) : true);
  process.stdout.write = quiet as typeof process.stdout.write;

  const failures: string[] = [];
  const results: unknown[] = [];
  const datasetFigures: unknown[] = [];
  for (const d of datasets) {
    const root = join(processedDir, partitionPath(d.id));
    const files = parquetFiles(root);
    const totalBytes = files.reduce((s, f) => s + statSync(f).size, 0);
    const projection = projectionOf(template, d.id);
    const view = currentViewName(d.id);
    const tableColumns: string[] = Object.values(template.findResources('AWS::Glue::Table')).map((r: any) => r.Properties.TableInput)
      .find((i: any) => i.Name === d.id).StorageDescriptor.Columns.map((c: any) => c.Name.toLowerCase());
    const totalColumns = new Set(tableColumns);
    datasetFigures.push({
      dataset: d.id,
      inputs: {
        files: d.input.length,
        bytes: d.input.reduce((s, i) => s + i.bytes, 0),
        rows: d.input.reduce((s, i) => s + i.rows, 0),
        description: d.input[0].description,
      },
      parquet: { files: files.length, bytes: totalBytes, columnBytes: await columnBytes(files, totalColumns) },
      view,
    });
    for (const r of d.requests) {
      const runs: Array<{ pruned: LocalQuery; baseline: LocalQuery; prunedMs: number; baselineMs: number; points: number }> = [];
      for (let run = 0; run < options.runs; run++) {
        const call = async (prune: boolean) => {
          pruning = prune;
          const before = athena.queries.length;
          const t = performance.now();
          const response = await handler(event(d.id, r.query));
          const ms = performance.now() - t;
          pruning = true;
          const body = JSON.parse(response.body);
          if (response.statusCode !== 200) throw new Error(`${d.id} ${r.name}: ${response.statusCode} ${response.body}`);
          const sent = athena.queries.slice(before);
          if (sent.length !== 1 || sent[0].state !== 'SUCCEEDED') throw new Error(`${d.id} ${r.name}: expected one query, got ${sent.map((q) => q.state).join(', ')}`);
          return { query: sent[0], ms, points: body.points.length as number };
        };
        // Interleaved, so that both see the same machine load.
        const pruned = await call(true);
        const baseline = await call(false);
        runs.push({ pruned: pruned.query, baseline: baseline.query, prunedMs: pruned.ms, baselineMs: baseline.ms, points: pruned.points });
      }
      const first = runs[0].pruned;
      const partitions = await selectedPartitions(first, projection);
      const dirs = partitions.map((p) => join(processedDir, partitionPath(d.id, String(p.year), String(p.month).padStart(2, '0'))));
      const selected = dirs.flatMap((dir) => parquetFiles(dir));
      const selectedBytes = selected.reduce((s, f) => s + statSync(f).size, 0);
      const referenced = new Set([...tokenize(first.sql).filter((t) => t.kind === 'quoted').map(unquote), ...CURRENT_ROW_ORDER.map((o) => o.column)]
        .filter((c) => totalColumns.has(c)));
      const selectedColumnBytes = await columnBytes(selected, referenced);
      const allColumnBytes = await columnBytes(files, referenced);

      // Checks: the same rows either way; DuckDB read only files of the selected partitions, and the baseline all of them.
      for (const x of runs) {
        const differ = firstDifference(x.pruned.rows ?? [], x.baseline.rows ?? []);
        if (differ) failures.push(`${d.id} ${r.name}: the baseline returned other rows (${differ})`);
        const outside = x.pruned.scannedFiles.filter((f) => !selected.includes(f));
        if (outside.length > 0) failures.push(`${d.id} ${r.name}: DuckDB read ${outside.length} files outside the selected partitions`);
        if (x.baseline.scannedFiles.length !== files.length) failures.push(`${d.id} ${r.name}: the baseline read ${x.baseline.scannedFiles.length} of ${files.length} files`);
      }
      const billed = billedBytes({ scannedBytes: selectedBytes });
      const billedColumns = billedBytes({ scannedBytes: selectedColumnBytes });
      const billedAll = billedBytes({ scannedBytes: totalBytes });
      const per1000 = (bytes: number) => usd((1000 * bytes / TB) * options.usdPerTb);
      const range = partitions.length === 0 ? null
        : `${partitions[0].year}-${String(partitions[0].month).padStart(2, '0')}..${partitions.at(-1)!.year}-${String(partitions.at(-1)!.month).padStart(2, '0')}`;
      results.push({
        dataset: d.id,
        request: r.name,
        query: r.query,
        rows: first.rows?.length,
        pointsFirstPage: runs[0].points,
        partitionsSelected: partitions.length,
        partitionRange: range,
        partitionsWithData: dirs.filter((dir) => parquetFiles(dir).length > 0).length,
        filesSelected: selected.length,
        filesReadByDuckDb: first.scannedFiles.length,
        bytesSelected: selectedBytes,
        columnsRead: [...referenced].sort(),
        columnBytesSelected: selectedColumnBytes,
        datasetBytes: totalBytes,
        billedBytes: billed,
        usdPer1000Requests: per1000(billed),
        usdPer1000RequestsColumnsOnly: per1000(billedColumns),
        baseline: {
          bytesSelected: totalBytes,
          columnBytes: allColumnBytes,
          billedBytes: billedAll,
          usdPer1000Requests: per1000(billedAll),
        },
        engineMs: timing(runs.map((x) => x.pruned.engineMillis)),
        baselineEngineMs: timing(runs.map((x) => x.baseline.engineMillis)),
        handlerMs: timing(runs.map((x) => x.prunedMs)),
        baselineHandlerMs: timing(runs.map((x) => x.baselineMs)),
      });
      log(`${d.id} ${r.name}: ${partitions.length} partitions, ${mb(selectedBytes)} MB of ${mb(totalBytes)} MB, `
        + `DuckDB ${median(runs.map((x) => x.pruned.engineMillis))} ms (no pruning: ${median(runs.map((x) => x.baseline.engineMillis))} ms), `
        + `USD ${per1000(billed)} per 1,000 requests`);
    }
  }
  process.stdout.write = stdoutWrite;
  await athena.close();

  const output = {
    bench: 'lake-query',
    generatedAt: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
    options: { runs: options.runs, plants: options.plants },
    pricing: {
      usdPerTb: options.usdPerTb,
      tbBytes: TB,
      minimumBytesPerQuery: BILLING.minimumBytes,
      roundUpToBytes: BILLING.roundToBytes,
      source: 'https://aws.amazon.com/athena/pricing/ (SQL queries: USD 5.00 per TB scanned, rounded up to the nearest MB, 10 MB minimum per query), as quoted by secondary sources on 2026-12-07 (confirm for your region)',
    },
    method: {
      bytesSelected: 'Parquet objects under the partitions selected by the conjuncts of the query\'s WHERE (as sent, parameters bound) that name only partition keys, '
        + 'evaluated over the table\'s projection range (partition projection), as Athena prunes before it reads',
      columnBytes: 'column chunks of the columns named in the query and the view\'s current-row order (Athena reads only those columns of a Parquet file)',
      engineMs: 'DuckDB time reported by the local Athena (views, query, results), best and median of the runs',
      baseline: 'the same request with DuckDB\'s filter_pushdown optimizer off: no Hive partition or row-group pruning, every file read',
      handlerMs: 'the bundled handler end to end (StartQueryExecution, polls from 1 ms doubling, GetQueryResults of the first page)',
    },
    datasets: datasetFigures,
    requests: results,
    checks: { failures },
    elapsedSeconds: Math.round((Date.now() - started) / 1000),
  };
  process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
  if (failures.length > 0) {
    for (const f of failures) log(`CHECK FAILED: ${f}`);
    process.exitCode = 1;
  }
}

main().catch((error) => {
  process.stderr.write(`[bench:lake] ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
