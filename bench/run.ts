/**
 * Benchmark of the `ons-data-platform` command (`npm run bench`).
 *
 * For each input (a GERACAO_USINA-2-shaped file and CURVA_CARGA repeated, both ≥ 200 MiB, built from
 * real ONS rows by ./inputs.ts and cached under os.tmpdir()), measures the throughput of `inspect` and
 * `convert` and, side by side, of a plain csv-parse pass over the same bytes (the baseline). Then
 * compares the peak memory (RSS) of a 50 MiB and a 200 MiB input.
 *
 * Every measurement is one fresh child process, timed from spawn to exit: `node` running the bundled
 * CLI (assets/cli/ons-data-platform/ons-data-platform.js, what users run; build it with
 * `npx projen bundle`) or `node` running the bundled csv-parse baseline (./csv-parse-child.ts).
 * Each timing runs --runs times (default 2), interleaved, and the best run is reported.
 * Peak RSS comes from `/usr/bin/time -f %M`, or from ./max-rss.ts when that is not available.
 *
 * Prints one JSON object to stdout; progress goes to stderr. Targets (reported, never failing):
 * inspect ≥ 3× the csv-parse throughput, and the 200 MiB input using at most 20% more memory than
 * the 50 MiB one. The run fails (exit 1) only when a check on the figures fails (wrong row counts,
 * rejected rows, a child process that failed), since the figures would then mean nothing.
 *
 * Options: --runs N, --only geracao|curva, --no-convert, --large-mib N (200), --small-mib N (50),
 * --cli PATH, --rss time|wrapper.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import { join, relative, resolve } from 'node:path';
import { buildSync } from 'esbuild';
import { eachOption } from './args';
import { BenchInput, cacheRoot, GENERATOR_VERSION, InputSet, MIB, prepareInputs } from './inputs';

const ROOT = resolve(__dirname, '..');
const TARGET_RATIO = 3;
const MEMORY_LIMIT = 1.2;

interface Options {
  runs: number;
  only?: string;
  convert: boolean;
  largeMiB: number;
  smallMiB: number;
  cli: string;
  rss: 'time' | 'wrapper';
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    runs: 2,
    convert: true,
    largeMiB: 200,
    smallMiB: 50,
    cli: join(ROOT, 'assets', 'cli', 'ons-data-platform', 'ons-data-platform.js'),
    rss: existsSync('/usr/bin/time') ? 'time' : 'wrapper',
  };
  eachOption(argv, (a) => {
    switch (a.name) {
      case '--runs': options.runs = a.positive(); break;
      case '--only': options.only = a.value(); break;
      case '--no-convert': options.convert = false; break;
      case '--large-mib': options.largeMiB = a.positive(); break;
      case '--small-mib': options.smallMiB = a.positive(); break;
      case '--cli': options.cli = resolve(a.value()); break;
      case '--rss': {
        const v = a.value();
        if (v !== 'time' && v !== 'wrapper') throw new Error('--rss is time or wrapper');
        options.rss = v;
        break;
      }
      default: throw new Error(`unknown option '${a.name}'`);
    }
  });
  if (options.smallMiB >= options.largeMiB) throw new Error('--small-mib must be below --large-mib');
  return options;
}

// ---------------------------------------------------------------------------------------------
// Child processes

interface ChildRun {
  readonly seconds: number;
  readonly peakRssKiB: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
}

class Runner {
  private readonly dir: string;
  private readonly wrapper?: string;
  private count = 0;

  constructor(readonly rss: 'time' | 'wrapper', work: string) {
    this.dir = work;
    if (rss === 'wrapper') this.wrapper = bundle('max-rss.ts', work);
  }

  /** Runs `node SCRIPT ARGS...` in a fresh process; wall time from spawn to exit, peak RSS. */
  async node(script: string, args: readonly string[]): Promise<ChildRun> {
    const rssFile = join(this.dir, `rss-${process.pid}-${this.count++}.txt`);
    rmSync(rssFile, { force: true });
    const [command, commandArgs] = this.rss === 'time'
      ? ['/usr/bin/time', ['-f', '%M', '-o', rssFile, process.execPath, script, ...args]]
      : [process.execPath, [this.wrapper!, rssFile, script, ...args]];
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const started = process.hrtime.bigint();
    const code = await new Promise<number | null>((done, fail) => {
      const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (b: Buffer) => stdout.push(b));
      child.stderr.on('data', (b: Buffer) => stderr.push(b));
      child.on('error', fail);
      child.on('close', (c) => done(c));
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const rssText = existsSync(rssFile) ? readFileSync(rssFile, 'utf8').trim().split('\n').pop()! : '';
    rmSync(rssFile, { force: true });
    return {
      seconds,
      peakRssKiB: Number(rssText) || NaN,
      stdout: Buffer.concat(stdout).toString('utf8'),
      stderr: Buffer.concat(stderr).toString('utf8'),
      code,
    };
  }
}

/** Bundles a bench script into one plain JavaScript file, so its child runs like the bundled CLI (no ts-node). */
function bundle(entry: string, work: string): string {
  const outfile = join(work, entry.replace(/\.ts$/, '.js'));
  buildSync({
    entryPoints: [join(__dirname, entry)], bundle: true, platform: 'node', target: 'node20', outfile, logLevel: 'warning',
  });
  return outfile;
}

// ---------------------------------------------------------------------------------------------
// Measurements

interface Measurement {
  readonly seconds: number;
  readonly mbPerSec: number;
  readonly rowsPerSec: number;
  readonly peakRssMB: number;
  readonly runs: ReadonlyArray<{ seconds: number; peakRssMB: number }>;
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const mb = (kib: number) => round((kib * 1024) / 1e6, 1);

function summarise(input: BenchInput, runs: readonly ChildRun[]): Measurement {
  const best = Math.min(...runs.map((r) => r.seconds));
  return {
    seconds: round(best, 3),
    mbPerSec: round(input.bytes / 1e6 / best),
    rowsPerSec: Math.round(input.rows / best),
    peakRssMB: mb(Math.max(...runs.map((r) => r.peakRssKiB))),
    runs: runs.map((r) => ({ seconds: round(r.seconds, 3), peakRssMB: mb(r.peakRssKiB) })),
  };
}

class Checks {
  readonly failures: string[] = [];
  count = 0;

  expect(ok: boolean, what: string): void {
    this.count++;
    if (!ok) {
      this.failures.push(what);
      log(`CHECK FAILED: ${what}`);
    }
  }
}

interface CliSummary { rows: number; records: number; rejected: number }

function parseJson<T>(run: ChildRun, what: string, checks: Checks): T | undefined {
  checks.expect(run.code === 0, `${what}: exit status ${run.code}${run.code === 0 ? '' : `; stderr: ${run.stderr.slice(-2000)}`}`);
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    checks.expect(false, `${what}: stdout is not JSON: ${run.stdout.slice(0, 500)}`);
    return undefined;
  }
}

function checkSummary(summary: CliSummary | undefined, input: BenchInput, what: string, checks: Checks): void {
  if (!summary) return;
  checks.expect(summary.rows === input.rows, `${what}: ${summary.rows} rows read, expected ${input.rows}`);
  checks.expect(summary.records === input.rows, `${what}: ${summary.records} records, expected ${input.rows}`);
  checks.expect(summary.rejected === 0, `${what}: ${summary.rejected} rows rejected, expected none`);
}

interface Tools {
  readonly runner: Runner;
  readonly csvParse: string;
  readonly cli: string;
  readonly work: string;
  readonly checks: Checks;
}

async function csvParse(tools: Tools, input: BenchInput): Promise<ChildRun> {
  const run = await tools.runner.node(tools.csvParse, [input.path]);
  const out = parseJson<{ records: number }>(run, `csv-parse ${input.path}`, tools.checks);
  if (out) tools.checks.expect(out.records === input.rows + 1, `csv-parse ${input.path}: ${out.records} records, expected ${input.rows + 1} (header included)`);
  return run;
}

async function inspect(tools: Tools, input: BenchInput): Promise<ChildRun> {
  const run = await tools.runner.node(tools.cli, ['inspect', input.path, '--json']);
  checkSummary(parseJson<CliSummary>(run, `inspect ${input.path}`, tools.checks), input, `inspect ${input.path}`, tools.checks);
  return run;
}

interface ConvertFigures { parquetFiles: number; parquetBytes: number }

async function convert(tools: Tools, input: BenchInput): Promise<ChildRun & ConvertFigures> {
  const out = join(tools.work, `convert-${process.pid}`);
  rmSync(out, { recursive: true, force: true });
  try {
    const run = await tools.runner.node(tools.cli, ['convert', input.path, '--out', out, '--json']);
    const what = `convert ${input.path}`;
    const result = parseJson<{ summary: CliSummary; parquet: Array<{ rows: number; bytes: number }> }>(run, what, tools.checks);
    checkSummary(result?.summary, input, what, tools.checks);
    const parquet = result?.parquet ?? [];
    const parquetRows = parquet.reduce((s, p) => s + p.rows, 0);
    if (result) tools.checks.expect(parquetRows === input.rows, `${what}: ${parquetRows} rows in Parquet, expected ${input.rows}`);
    return { ...run, parquetFiles: parquet.length, parquetBytes: parquet.reduce((s, p) => s + p.bytes, 0) };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function describeRun(what: string, input: BenchInput, run: ChildRun): string {
  return `${what}: ${run.seconds.toFixed(2)} s, ${(input.bytes / 1e6 / run.seconds).toFixed(1)} MB/s, peak RSS ${mb(run.peakRssKiB)} MB`;
}

async function throughput(tools: Tools, set: InputSet, options: Options) {
  const input = set.large;
  const runs: { csvParse: ChildRun[]; inspect: ChildRun[]; convert: Array<ChildRun & ConvertFigures> } = { csvParse: [], inspect: [], convert: [] };
  // Interleaved, so a slow spell of the machine does not hit one contender only.
  for (let i = 1; i <= options.runs; i++) {
    const tag = `${set.key} ${(input.bytes / 1e6).toFixed(0)} MB run ${i}/${options.runs}`;
    runs.csvParse.push(await csvParse(tools, input));
    log(describeRun(`${tag} csv-parse`, input, runs.csvParse[runs.csvParse.length - 1]));
    runs.inspect.push(await inspect(tools, input));
    log(describeRun(`${tag} inspect`, input, runs.inspect[runs.inspect.length - 1]));
    if (options.convert) {
      runs.convert.push(await convert(tools, input));
      log(describeRun(`${tag} convert`, input, runs.convert[runs.convert.length - 1]));
    }
  }
  return runs;
}

// ---------------------------------------------------------------------------------------------
// Context

function git(args: string[]): string | undefined {
  const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function cliInfo(cli: string) {
  const bytes = readFileSync(cli);
  const stale = newestMtime(join(ROOT, 'src')) > statSync(cli).mtimeMs;
  if (stale) log(`WARNING: files under src/ are newer than ${relative(ROOT, cli)}: run \`npx projen bundle\` to measure the current code`);
  return {
    path: cli.startsWith(`${ROOT}/`) ? relative(ROOT, cli) : cli,
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    olderThanSrc: stale,
    gitCommit: git(['rev-parse', 'HEAD']),
    srcUncommittedChanges: (git(['status', '--porcelain', '--', 'src']) ?? '') !== '',
  };
}

function machine() {
  const cpus = os.cpus();
  let csvParseVersion: string | undefined;
  try {
    csvParseVersion = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'csv-parse', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    csvParseVersion = undefined;
  }
  return {
    cpuModel: cpus[0]?.model,
    cpus: cpus.length,
    availableParallelism: os.availableParallelism(),
    memoryGB: round(os.totalmem() / 1e9, 1),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
    csvParse: csvParseVersion,
    loadAverageAtStart: os.loadavg().map((l) => round(l)),
  };
}

function inputJson(input: BenchInput) {
  return { file: input.path, bytes: input.bytes, mb: round(input.bytes / 1e6, 1), rows: input.rows, description: input.description };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  if (!existsSync(options.cli)) {
    log(`no CLI bundle at ${options.cli}: run \`npx projen bundle\` first`);
    return 1;
  }
  const work = join(cacheRoot(), 'work');
  mkdirSync(work, { recursive: true });
  const cli = cliInfo(options.cli);
  const machineAtStart = machine();
  const tools: Tools = {
    runner: new Runner(options.rss, work),
    csvParse: bundle('csv-parse-child.ts', work),
    cli: options.cli,
    work,
    checks: new Checks(),
  };

  const sets = await prepareInputs(options.largeMiB * MIB, options.smallMiB * MIB, log, options.only);
  if (sets.length === 0) throw new Error(`--only ${options.only}: no such input (geracao, curva)`);

  const results: Record<string, unknown> = {};
  const memory: Record<string, unknown> = {};
  const holds: boolean[] = [];
  const convertHolds: boolean[] = [];
  for (const set of sets) {
    log(`${set.key}: ${set.large.path} (${(set.large.bytes / 1e6).toFixed(1)} MB, ${set.large.rows} rows)`);
    const runs = await throughput(tools, set, options);
    const base = summarise(set.large, runs.csvParse);
    const insp = summarise(set.large, runs.inspect);
    const conv = runs.convert.length ? summarise(set.large, runs.convert) : undefined;
    const ratio = round(base.seconds / insp.seconds);
    results[set.key] = {
      input: inputJson(set.large),
      csvParse: base,
      inspect: insp,
      convert: conv && { ...conv, parquetFiles: runs.convert[0].parquetFiles, parquetBytes: runs.convert[0].parquetBytes },
      ratioInspectToCsvParse: ratio,
      ratioConvertToCsvParse: conv && round(base.seconds / conv.seconds),
      targetRatio: TARGET_RATIO,
      meetsTarget: ratio >= TARGET_RATIO,
    };
    log(`${set.key}: inspect / csv-parse throughput = ${ratio}× (target ≥ ${TARGET_RATIO}×: ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'})`);

    // Memory: the small input once per command; the large one's figure is the highest of its timed runs.
    const small = set.small;
    const smallInspect = await inspect(tools, small);
    log(describeRun(`${set.key} ${(small.bytes / 1e6).toFixed(0)} MB inspect (memory)`, small, smallInspect));
    const inspectRatio = round(insp.peakRssMB / mb(smallInspect.peakRssKiB), 3);
    const entry: Record<string, unknown> = {
      inspect50MB: {
        file: small.path, bytes: small.bytes, rows: small.rows, peakRssMB: mb(smallInspect.peakRssKiB), seconds: round(smallInspect.seconds, 3),
      },
      inspect200MB: { file: set.large.path, bytes: set.large.bytes, rows: set.large.rows, peakRssMB: insp.peakRssMB },
      ratio: inspectRatio,
      holds: inspectRatio <= MEMORY_LIMIT,
    };
    holds.push(inspectRatio <= MEMORY_LIMIT);
    log(`${set.key}: inspect peak RSS ${insp.peakRssMB} MB vs ${mb(smallInspect.peakRssKiB)} MB = ${inspectRatio}× (limit ${MEMORY_LIMIT}×)`);
    if (conv) {
      const smallConvert = await convert(tools, small);
      log(describeRun(`${set.key} ${(small.bytes / 1e6).toFixed(0)} MB convert (memory)`, small, smallConvert));
      const convertRatio = round(conv.peakRssMB / mb(smallConvert.peakRssKiB), 3);
      entry.convert50MB = { peakRssMB: mb(smallConvert.peakRssKiB), seconds: round(smallConvert.seconds, 3) };
      entry.convert200MB = { peakRssMB: conv.peakRssMB };
      entry.convertRatio = convertRatio;
      entry.convertHolds = convertRatio <= MEMORY_LIMIT;
      convertHolds.push(convertRatio <= MEMORY_LIMIT);
      log(`${set.key}: convert peak RSS ${conv.peakRssMB} MB vs ${mb(smallConvert.peakRssKiB)} MB = ${convertRatio}×`);
    }
    memory[set.key] = entry;
  }

  const cliAfter = createHash('sha256').update(readFileSync(options.cli)).digest('hex');
  if (cliAfter !== cli.sha256) log(`WARNING: ${cli.path} changed during the run: the figures may mix two builds`);
  const report = {
    benchmark: 'ons-data-platform inspect/convert throughput and peak memory, csv-parse as the baseline',
    startedAt: new Date(started).toISOString(),
    durationSeconds: round((Date.now() - started) / 1000, 1),
    method: {
      timing: `wall clock of one fresh child process from spawn to exit (node start-up included): node running the bundled CLI, or node running the bundled csv-parse baseline; best of ${options.runs} runs, interleaved`,
      runs: options.runs,
      best: 'the fastest run (seconds); peakRssMB is the highest of the runs',
      csvParseBaseline: "csv-parse streaming parse, delimiter ';', no casting, records counted (1 MiB reads, like the CLI)",
      units: 'MB = 10^6 bytes; input sizes are MiB targets (200 MiB ≥ 200 MB); rows exclude the header',
      peakRss: options.rss === 'time' ? '/usr/bin/time -f %M (max RSS of the child, KiB), shown in MB' : 'process.resourceUsage().maxRSS written by bench/max-rss.ts on exit, shown in MB',
      memoryComparison: 'inspect (and convert) of the 50 MiB input (a prefix of the 200 MiB one, same shape), one run, against the 200 MiB runs',
      generatorVersion: GENERATOR_VERSION,
    },
    cli: { ...cli, changedDuringRun: cliAfter !== cli.sha256 },
    machine: { ...machineAtStart, loadAverageAtEnd: os.loadavg().map((l) => round(l)) },
    inputs: sets.flatMap((s) => [{ key: s.key, size: 'large', ...inputJson(s.large) }, { key: s.key, size: 'small', ...inputJson(s.small) }]),
    results,
    memory: {
      limitRatio: MEMORY_LIMIT,
      ...memory,
      holds: holds.every(Boolean),
      convertHolds: convertHolds.length ? convertHolds.every(Boolean) : undefined,
    },
    targets: {
      inspectAtLeast3xCsvParse: Object.fromEntries(Object.entries(results).map(([k, r]) => [k, (r as { meetsTarget: boolean }).meetsTarget])),
      memoryWithin20Percent: holds.every(Boolean),
    },
    checks: { ok: tools.checks.failures.length === 0, count: tools.checks.count, failures: tools.checks.failures },
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  log(`done in ${report.durationSeconds} s`);
  return tools.checks.failures.length === 0 ? 0 : 1;
}

main().then((code) => { process.exitCode = code; }, (error) => {
  log(`failed: ${(error as Error).stack ?? String(error)}`);
  process.exitCode = 1;
});
