import { stat } from 'node:fs/promises';
import { convertFile, inspectFile } from '../ons/convert';
import { XLSX_MAX_EXPANDED_BYTES } from '../ons/limits';
import { localFile } from '../ons/local-file';
import { FileSummary } from '../ons/process';
import { RefusedFileError } from '../ons/types';

export const USAGE = `Usage:
  ons-data-platform inspect FILE [--json] [--sheet NAME|INDEX] [--max-expanded-mb N]
  ons-data-platform convert FILE --out DIR [--source-key KEY] [--json] [--sheet NAME|INDEX] [--max-expanded-mb N]

inspect  reads an ONS file (CSV, XLSX or Parquet) and reports its dataset, rows, records,
         rejected rows, series, period (UTC) and per-measure figures; --json prints one JSON object.
convert  writes what the platform's processing function writes, under DIR: processed Parquet
         (processed/dataset=<id>/year=YYYY/month=MM/), the data card (knowledge/cards/<id>/) and
         the rejected rows with their reasons (rejected/<id>/). Every output is named after the
         source (<file>.<16 hex digits of the source key>): converting a revised file into the same
         DIR replaces its earlier outputs and removes the months it no longer has.

--source-key       the source's identity, recorded in every row (default: the file name); two files
                   with the same name from different folders need different keys to keep both.

--max-expanded-mb  largest expanded size of an XLSX workbook (default ${XLSX_MAX_EXPANDED_BYTES / 1024 / 1024}), against zip bombs.

Exit status: 0 success, 2 file refused (reason on stderr), 1 any other error.
`;

/** Progress goes to stderr for files at least this large. */
const PROGRESS_MIN_BYTES = 32 * 1024 * 1024;

export interface Io {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

interface Args {
  readonly command: string;
  readonly file: string;
  readonly json: boolean;
  readonly out?: string;
  readonly sourceKey?: string;
  readonly sheet?: string | number;
  readonly maxExpandedBytes?: number;
}

function parseArgs(argv: readonly string[]): Args | string {
  const [command, ...rest] = argv;
  if (command !== 'inspect' && command !== 'convert') return command ? `unknown command '${command}'` : 'no command';
  let file: string | undefined;
  let out: string | undefined;
  let sourceKey: string | undefined;
  let sheet: string | number | undefined;
  let maxExpandedBytes: number | undefined;
  let json = false;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--json') {
      json = true;
      continue;
    }
    if (a === '--out' || a === '--source-key' || a === '--sheet' || a === '--max-expanded-mb') {
      const value = rest[++i];
      if (value === undefined) return `${a} needs a value`;
      if (a === '--out') {
        out = value;
      } else if (a === '--source-key') {
        if (command !== 'convert') return '--source-key is an option of convert';
        sourceKey = value;
      } else if (a === '--sheet') {
        sheet = /^\d+$/.test(value) ? Number(value) : value;
      } else {
        if (!/^\d+$/.test(value) || Number(value) === 0) return `--max-expanded-mb needs a whole number of MiB, got '${value}'`;
        maxExpandedBytes = Number(value) * 1024 * 1024;
      }
      continue;
    }
    if (a.startsWith('--')) return `unknown option '${a}'`;
    if (file !== undefined) return `unexpected argument '${a}'`;
    file = a;
  }
  if (!file) return 'FILE is missing';
  if (command === 'convert' && !out) return 'convert needs --out DIR';
  return { command, file, json, out, sourceKey, sheet, maxExpandedBytes };
}

/** Runs the command; resolves to the exit status. */
export async function main(argv: readonly string[], io: Io = process): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(USAGE);
    return 0;
  }
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    io.stderr.write(`ons-data-platform: ${args}\n\n${USAGE}`);
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
    io.stderr.write(`ons-data-platform: cannot read ${args.file}: ${(error as Error).message}\n`);
    return 1;
  }
  const onProgress = progressReporter(args.file, size, io);
  try {
    const source = localFile(args.file);
    if (args.command === 'inspect') {
      const summary = await inspectFile(args.file, source, { sheet: args.sheet, maxExpandedBytes: args.maxExpandedBytes, onProgress });
      io.stdout.write(args.json ? `${JSON.stringify(summary)}\n` : describe(summary));
    } else {
      const result = await convertFile(args.file, source, {
        sheet: args.sheet, maxExpandedBytes: args.maxExpandedBytes, onProgress, outDir: args.out!, sourceKey: args.sourceKey, sourceTime: modified,
      });
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
    if (error instanceof RefusedFileError) {
      io.stderr.write(`ons-data-platform: ${args.file} refused: ${error.message}\n`);
      return 2;
    }
    io.stderr.write(`ons-data-platform: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

function progressReporter(file: string, size: number, io: Io): ((bytes: number) => void) | undefined {
  if (size < PROGRESS_MIN_BYTES) return undefined;
  let last = 0;
  return (bytes) => {
    const now = Date.now();
    if (now - last < 1000 && bytes < size) return;
    last = now;
    io.stderr.write(`ons-data-platform: ${file}: ${Math.floor((bytes / size) * 100)}% (${(bytes / 1e6).toFixed(1)} of ${(size / 1e6).toFixed(1)} MB)\n`);
  };
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
