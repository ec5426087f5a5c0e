import { existsSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs, ParseArgsConfig } from 'node:util';
import { evaluate, EvaluationAborted, writeReport } from './evaluate';
import { ProgressDisplay, PROGRESS_HELP, ProgressSettings, ProgressStream } from './progress';
import { defaultQuestionSetPath, loadQuestionSet, QuestionSet } from './score';
import { convertFile, inspectFile, noValidRows } from '../ons/convert';
import { XLSX_MAX_EXPANDED_BYTES } from '../ons/limits';
import { localFile } from '../ons/local-file';
import { FileSummary } from '../ons/process';
import { RefusedFileError } from '../ons/types';

/** The command's name: the bin in package.json, and how its messages start. */
const NAME = 'ons-data-platform';

const EXIT_STATUS = 'Exit status: 0 success, 2 file refused (reason on stderr), 1 any other error.';

export const USAGE = `Usage: ${NAME} <command> [options]

Reads ONS files (CSV, XLSX or Parquet) with the platform's own domain core, on this machine.

Commands:
  inspect FILE            reports the file's dataset, rows, rejected rows, series, period and measures
  convert FILE --out DIR  writes what the platform's processing function writes, under DIR
  evaluate --api URL      asks a deployed API the evaluation set's questions and scores the answers

Options:
  -h, --help   this help; \`${NAME} <command> --help\` shows a command's options
  --version    prints the version and exits

${PROGRESS_HELP}

${EXIT_STATUS}
`;

const SHEET_HELP = `  --sheet NAME|INDEX   the XLSX sheet, by name or 0-based index (default: the first)
  --max-expanded-mb N  largest expanded size of an XLSX, in MiB (default ${XLSX_MAX_EXPANDED_BYTES / 1024 / 1024}), against zip bombs
  -h, --help           this help`;

export const INSPECT_USAGE = `Usage: ${NAME} inspect FILE [options]

Reads an ONS file (CSV, XLSX or Parquet) and reports its dataset, rows, records, rejected rows,
series, period (UTC) and per-measure figures. Writes nothing.

Options:
  --json               prints one JSON object on stdout instead of the report
${SHEET_HELP}

${PROGRESS_HELP}

Exit status: 0 success; 2 the file is refused, or none of its data rows is valid (the report is still
printed; the reason on stderr: \`convert\` writes the reason of each row); 1 any other error.
`;

export const CONVERT_USAGE = `Usage: ${NAME} convert FILE --out DIR [options]

Writes what the platform's processing function writes, under DIR: processed Parquet
(processed/dataset=<id>/year=YYYY/month=MM/), the data card (knowledge/cards/<id>/) and the rejected
rows with their reasons (rejected/<id>/). Every output is named after the source
(<file>.<16 hex digits of the source key>): converting a revised file into the same DIR replaces its
earlier outputs and removes the months it no longer has.

Options:
  --out DIR            where the outputs go (required)
  --source-key KEY     the source's identity, recorded in every row (default: the file name); two files
                       with the same name from different folders need different keys to keep both
  --json               prints one JSON object (the summary and the paths written) instead of the report
${SHEET_HELP}

${PROGRESS_HELP}

Exit status: 0 success; 2 the file is refused, or none of its data rows is valid (then only the
rejected-rows report is written; the reason on stderr); 1 any other error.
`;

export const EVALUATE_USAGE = `Usage: ${NAME} evaluate --api URL [options]

Asks a deployed platform API every question of an evaluation set (POST /query) and prints a JSON report:
per question pass or fail, the numbers found and expected, the queries (GET /timeseries reruns) and
citations, token usage; totals: accuracy (right numbers, or "the data does not cover it" for questions
the data cannot answer), citation and rerun presence, tokens. The set shipped with the package asks
about the ONS files in the repository's test/fixtures/ons: load them into the deployment first.

Options:
  --api URL            the API's base URL (the stage URL, e.g. https://abc123.execute-api.us-east-1.amazonaws.com/prod)
  --api-key-env NAME   sends the API key held in the environment variable NAME (x-api-key)
  --set FILE           the question set (default: the package's eval/questions.json)
  --concurrency N      questions in flight at once, 1 to 16 (default 2)
  --out FILE           also writes the report to FILE
  -h, --help           this help

Answers throttled (429, 503) are retried with backoff (Retry-After when given).

Exit status: 0 the set ran (the report says what passed); 1 the run could not be done (bad option,
unreadable set, API unreachable, refusing the key, or not answering JSON; the reason on stderr).
`;

const EVALUATE_OPTIONS = {
  'api': { type: 'string' },
  'api-key-env': { type: 'string' },
  'set': { type: 'string' },
  'concurrency': { type: 'string' },
  'out': { type: 'string' },
  'help': { type: 'boolean', short: 'h' },
} as const;

const COMMON_OPTIONS = {
  'json': { type: 'boolean' },
  'sheet': { type: 'string' },
  'max-expanded-mb': { type: 'string' },
  'help': { type: 'boolean', short: 'h' },
} as const;

const COMMANDS = {
  inspect: { usage: INSPECT_USAGE, options: COMMON_OPTIONS },
  convert: { usage: CONVERT_USAGE, options: { ...COMMON_OPTIONS, 'out': { type: 'string' }, 'source-key': { type: 'string' } } },
  evaluate: { usage: EVALUATE_USAGE, options: EVALUATE_OPTIONS },
} as const;
type Command = keyof typeof COMMANDS;

export interface Io {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: ProgressStream;
}

export interface MainOptions {
  /** When and how often progress is shown (tests lower the thresholds and inject a clock). */
  readonly progress?: ProgressSettings;
  /** `evaluate`'s retry waits (tests shorten them). */
  readonly evaluate?: { readonly retryBaseMs?: number; readonly retryMaxMs?: number; readonly timeoutMs?: number };
  /** The environment `--api-key-env` reads (default: process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

interface EvaluateArgs {
  readonly command: 'evaluate';
  readonly api: URL;
  readonly apiKeyEnv?: string;
  readonly set?: string;
  readonly concurrency: number;
  readonly out?: string;
}

interface Args {
  readonly command: 'inspect' | 'convert';
  readonly file: string;
  readonly json: boolean;
  readonly out?: string;
  readonly sourceKey?: string;
  readonly sheet?: string | number;
  readonly maxExpandedBytes?: number;
}

/** What to do: run a command, print a text (help, version), or fail with a reason and the usage to show. */
type Parsed = Args | EvaluateArgs | { readonly print: string } | { readonly error: string; readonly usage: string };

function parse(argv: readonly string[]): Parsed {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h') return { print: USAGE };
  if (command === '--version') return { print: `${packageVersion()}\n` };
  if (command === undefined) return { error: 'no command', usage: USAGE };
  if (!Object.hasOwn(COMMANDS, command)) {
    return { error: command.startsWith('-') ? `unknown option '${command}'` : `unknown command '${command}'`, usage: USAGE };
  }
  const { usage, options } = COMMANDS[command as Command];
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    const config: ParseArgsConfig = { args: [...rest], options, strict: true, allowPositionals: true };
    ({ values, positionals } = parseArgs(config) as { values: Record<string, string | boolean | undefined>; positionals: string[] });
  } catch (error) {
    return { error: argumentError(error as Error & { code?: string }, command), usage };
  }
  if (values.help) return { print: usage };
  if (command === 'evaluate') return parseEvaluate(values, positionals);
  if (positionals.length > 1) return { error: `unexpected argument '${positionals[1]}'`, usage };
  const file = positionals[0];
  if (!file) return { error: 'FILE is missing', usage };
  if (command === 'convert' && !values.out) return { error: 'convert needs --out DIR', usage };
  const mb = values['max-expanded-mb'] as string | undefined;
  if (mb !== undefined && (!/^\d+$/.test(mb) || Number(mb) === 0)) return { error: `--max-expanded-mb needs a whole number of MiB, got '${mb}'`, usage };
  const sheet = values.sheet as string | undefined;
  return {
    command: command as Args['command'],
    file,
    json: values.json === true,
    out: values.out as string | undefined,
    sourceKey: values['source-key'] as string | undefined,
    sheet: sheet !== undefined && /^\d+$/.test(sheet) ? Number(sheet) : sheet,
    maxExpandedBytes: mb === undefined ? undefined : Number(mb) * 1024 * 1024,
  };
}

function parseEvaluate(values: Record<string, string | boolean | undefined>, positionals: string[]): Parsed {
  const usage = EVALUATE_USAGE;
  if (positionals.length) return { error: `unexpected argument '${positionals[0]}'`, usage };
  const api = values.api as string | undefined;
  if (!api) return { error: 'evaluate needs --api URL, the API\'s base URL', usage };
  let url: URL | undefined;
  try {
    url = new URL(api);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.search || url.hash) {
    return { error: `--api must be an http(s) base URL without a query, such as https://abc123.execute-api.us-east-1.amazonaws.com/prod; got '${api}'`, usage };
  }
  const concurrency = (values.concurrency as string | undefined) ?? '2';
  if (!/^\d+$/.test(concurrency) || +concurrency < 1 || +concurrency > 16) return { error: `--concurrency needs a whole number from 1 to 16, got '${concurrency}'`, usage };
  const apiKeyEnv = values['api-key-env'] as string | undefined;
  if (apiKeyEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(apiKeyEnv)) return { error: `--api-key-env needs the name of an environment variable, got '${apiKeyEnv}'`, usage };
  return { command: 'evaluate', api: url, apiKeyEnv, set: values.set as string | undefined, concurrency: Number(concurrency), out: values.out as string | undefined };
}

/** Runs `evaluate`; resolves to the exit status. */
async function runEvaluate(args: EvaluateArgs, io: Io, options: MainOptions): Promise<number> {
  const fail = (message: string) => {
    io.stderr.write(`${NAME} evaluate: ${message}\n`);
    return 1;
  };
  let apiKey: string | undefined;
  if (args.apiKeyEnv) {
    apiKey = (options.env ?? process.env)[args.apiKeyEnv];
    if (!apiKey) return fail(`the environment variable ${args.apiKeyEnv} (--api-key-env) is not set or empty`);
  }
  let setPath: string;
  let set: QuestionSet;
  try {
    setPath = args.set ?? defaultQuestionSetPath();
    set = loadQuestionSet(setPath);
  } catch (error) {
    return fail((error as Error).message);
  }
  try {
    const report = await evaluate({
      api: args.api,
      apiKey,
      set,
      setPath,
      concurrency: args.concurrency,
      ...options.evaluate,
      onResult: (done, r) => io.stderr.write(`[${done}/${set.questions.length}] ${r.id} ${r.pass ? 'pass' : 'error' in r ? `error: ${r.error}` : 'fail'}\n`),
    });
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (args.out) {
      try {
        await writeReport(args.out, report);
      } catch (error) {
        return fail(`cannot write the report to ${args.out}: ${(error as Error).message}`);
      }
    }
    return 0;
  } catch (error) {
    if (error instanceof EvaluationAborted) return fail(error.message);
    return fail(`unexpected error: ${(error as Error).stack ?? String(error)}`);
  }
}

/** The usage line of a usage text, and where the rest is. */
function shortUsage(usage: string): string {
  const command = usage === USAGE ? '' : ` ${usage.split(' ')[2]}`;
  return `${usage.slice(0, usage.indexOf('\n'))}\nRun '${NAME}${command} --help' for more.\n`;
}

/** util.parseArgs' errors in this command's words (its own run to several lines). */
function argumentError(error: Error & { code?: string }, command: string): string {
  const option = /'(-[^' ]+)/.exec(error.message)?.[1] ?? '';
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const owner = Object.entries(COMMANDS).find(([, c]) => Object.hasOwn(c.options, option.replace(/^--/, '')))?.[0];
    return owner && owner !== command ? `${option} is an option of ${owner}` : `unknown option '${option}'`;
  }
  if (error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    return error.message.includes('does not take an argument') ? `${option} takes no value` : `${option} needs a value`;
  }
  return error.message;
}

/**
 * The version in the package.json that declares this command's bin, searched upwards from this module: the same
 * answer from src/ (tests), lib/ (compiled) and assets/cli/ (the bundle, in the repository or in node_modules).
 */
export function packageVersion(from: string = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { version?: string; bin?: Record<string, string> };
      if (pkg.bin?.[NAME] && pkg.version) return pkg.version;
    }
    if (dirname(dir) === dir) throw new Error(`no package.json declaring the ${NAME} command above ${from}`);
  }
}

/** Runs the command; resolves to the exit status. */
export async function main(argv: readonly string[], io: Io = process, options: MainOptions = {}): Promise<number> {
  const args = parse(argv);
  if ('print' in args) {
    io.stdout.write(args.print);
    return 0;
  }
  if ('error' in args) {
    io.stderr.write(`${NAME}: ${args.error}\n\n${shortUsage(args.usage)}`);
    return 1;
  }
  if (args.command === 'evaluate') return runEvaluate(args, io, options);
  let size: number;
  let modified: Date;
  try {
    const info = await stat(args.file);
    if (!info.isFile()) throw new Error('not a regular file');
    size = info.size;
    modified = info.mtime;
  } catch (error) {
    io.stderr.write(`${NAME}: cannot read ${args.file}: ${(error as Error).message}\n`);
    return 1;
  }
  const progress = new ProgressDisplay(args.file, size, io.stderr, options.progress);
  const onProgress = progress.listener;
  try {
    const source = localFile(args.file);
    if (args.command === 'inspect') {
      const summary = await inspectFile(args.file, source, { sheet: args.sheet, maxExpandedBytes: args.maxExpandedBytes, onProgress });
      progress.end(true);
      io.stdout.write(args.json ? `${JSON.stringify(summary)}\n` : describe(summary));
      if (summary.records === 0) {
        // As convert refuses it: the same status and wording, after the report.
        io.stderr.write(`${NAME}: ${args.file} refused: ${noValidRows(summary)}; \`${NAME} convert\` writes the reason of each row\n`);
        return 2;
      }
    } else {
      const result = await convertFile(args.file, source, {
        sheet: args.sheet, maxExpandedBytes: args.maxExpandedBytes, onProgress, outDir: args.out!, sourceKey: args.sourceKey, sourceTime: modified,
      });
      progress.end(true);
      if (args.json) {
        io.stdout.write(`${JSON.stringify(result)}\n`);
      } else {
        io.stdout.write(describe(result.summary));
        io.stdout.write(`Written under ${args.out}:\n`);
        for (const p of result.parquet) io.stdout.write(`  ${p.relativePath} (${p.rows} records)\n`);
        io.stdout.write(`  ${result.card}\n  ${result.cardMetadata}\n`);
        if (result.rejected) io.stdout.write(`  ${result.rejected} (${result.summary.rejected} rows)\n`);
        if (result.removed.length) io.stdout.write(`Removed (outputs of an earlier version of this source):\n${result.removed.map((r) => `  ${r}\n`).join('')}`);
      }
    }
    return 0;
  } catch (error) {
    progress.end(false);
    if (error instanceof RefusedFileError) {
      io.stderr.write(`${NAME}: ${args.file} refused: ${error.message}\n`);
      return 2;
    }
    io.stderr.write(`${NAME}: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

function describe(s: FileSummary): string {
  const lines = [
    `File      ${s.file} (${[s.format, s.encoding, s.delimiter && `'${s.delimiter === '\t' ? '\\t' : s.delimiter}'`].filter(Boolean).join(', ')})`,
    `Dataset   ${s.dataset} (${s.datasetSource === 'catalog' ? 'catalog' : 'by the ONS naming convention'})`,
    `Rows      ${s.rows} read: ${s.records} records, ${s.rejected} rejected`,
    `Series    ${s.series}${s.dimensions.length ? ` (by ${s.dimensions.join(', ')})` : ''}`,
    `Time      ${s.timeColumn}: ${s.start ?? '–'} → ${s.end ?? '–'} (UTC)`,
    'Measures',
    ...s.measures.map((m) => `  ${m.name}${m.unit ? ` (${m.unit})` : ''}: ${m.count} values, ${m.nulls} empty, min ${m.min ?? '–'}, max ${m.max ?? '–'}, sum ${m.sum}`),
  ];
  return `${lines.join('\n')}\n`;
}
