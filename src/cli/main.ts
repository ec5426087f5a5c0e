import { existsSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs, ParseArgsConfig } from 'node:util';
import { ProgressDisplay, PROGRESS_HELP, ProgressSettings, ProgressStream } from './progress';
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

const COMMON_OPTIONS = {
  'json': { type: 'boolean' },
  'sheet': { type: 'string' },
  'max-expanded-mb': { type: 'string' },
  'help': { type: 'boolean', short: 'h' },
} as const;

const COMMANDS = {
  inspect: { usage: INSPECT_USAGE, options: COMMON_OPTIONS },
  convert: { usage: CONVERT_USAGE, options: { ...COMMON_OPTIONS, 'out': { type: 'string' }, 'source-key': { type: 'string' } } },
} as const;
type Command = keyof typeof COMMANDS;

export interface Io {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: ProgressStream;
}

export interface MainOptions {
  /** When and how often progress is shown (tests lower the thresholds and inject a clock). */
  readonly progress?: ProgressSettings;
}

interface Args {
  readonly command: Command;
  readonly file: string;
  readonly json: boolean;
  readonly out?: string;
  readonly sourceKey?: string;
  readonly sheet?: string | number;
  readonly maxExpandedBytes?: number;
}

/** What to do: run a command, print a text (help, version), or fail with a reason and the usage to show. */
type Parsed = Args | { readonly print: string } | { readonly error: string; readonly usage: string };

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
  if (positionals.length > 1) return { error: `unexpected argument '${positionals[1]}'`, usage };
  const file = positionals[0];
  if (!file) return { error: 'FILE is missing', usage };
  if (command === 'convert' && !values.out) return { error: 'convert needs --out DIR', usage };
  const mb = values['max-expanded-mb'] as string | undefined;
  if (mb !== undefined && (!/^\d+$/.test(mb) || Number(mb) === 0)) return { error: `--max-expanded-mb needs a whole number of MiB, got '${mb}'`, usage };
  const sheet = values.sheet as string | undefined;
  return {
    command: command as Command,
    file,
    json: values.json === true,
    out: values.out as string | undefined,
    sourceKey: values['source-key'] as string | undefined,
    sheet: sheet !== undefined && /^\d+$/.test(sheet) ? Number(sheet) : sheet,
    maxExpandedBytes: mb === undefined ? undefined : Number(mb) * 1024 * 1024,
  };
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
