import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { packageVersion } from '../../src/cli/main';
import { outputStem, sourceId, sourceIdentity } from '../../src/ons/layout';
import { figuresBySource } from '../duckdb';
import { ONS_DATA } from '../ons-data';
import { figures, revise } from '../revisions';

/**
 * The bundled `ons-data-platform` command, run as a user runs it: `node <bundle> ...`, in a child
 * process. The bundle is built by `npx projen bundle` before the tests run.
 */

const CLI = path.join(__dirname, '../../assets/cli/ons-data-platform/ons-data-platform.js');
const DATA = ONS_DATA;
const CURVA = path.join(DATA, 'CURVA_CARGA_2023.csv');
const PDF = path.join(DATA, 'DicionarioDados_CurvaCarga.pdf');
/** The stem of every output of a source whose key is the file name CURVA_CARGA_2023.csv (the default). */
const STEM = outputStem('CURVA_CARGA_2023', sourceId(sourceIdentity('CURVA_CARGA_2023.csv')));

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(args: string[], timeout = 60_000): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error; // includes a timeout: a hang fails the test
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'ons-cli-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Every file under `root`, relative, with `/`, sorted. */
function filesUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  return (readdirSync(root, { recursive: true }) as string[])
    .filter((e) => statSync(path.join(root, e)).isFile())
    .map((e) => e.split(path.sep).join('/'))
    .sort();
}

test('the bundle exists (npx projen bundle)', () => {
  expect(existsSync(CLI)).toBe(true);
});

describe('--version and --help', () => {
  const PACKAGE = JSON.parse(readFileSync(path.join(__dirname, '../../package.json'), 'utf8'));

  test('--version prints the version in package.json and exits 0', () => {
    const r = cli(['--version']);
    expect(r).toEqual({ status: 0, stdout: `${PACKAGE.version}\n`, stderr: '' });
    expect(PACKAGE.bin['ons-data-platform']).toBe('assets/cli/ons-data-platform/ons-data-platform.js');
  });

  test('the version is found the same from src/ (ts-jest), lib/ (compiled) and assets/ (the bundle)', () => {
    const root = path.join(__dirname, '../..');
    expect(packageVersion()).toBe(PACKAGE.version);
    for (const from of ['lib/cli', 'assets/cli/ons-data-platform']) expect(packageVersion(path.join(root, from))).toBe(PACKAGE.version);
    expect(() => packageVersion(tmpdir())).toThrow(/no package.json declaring the ons-data-platform command above/);
  });

  test('--version from an installed package: the bin linked from node_modules/.bin reads its own package.json', () => {
    const installed = path.join(dir, 'node_modules', 'ons-data-platform');
    const bin = path.join(installed, PACKAGE.bin['ons-data-platform']);
    mkdirSync(path.dirname(bin), { recursive: true });
    copyFileSync(CLI, bin);
    writeFileSync(path.join(installed, 'package.json'), JSON.stringify({ name: 'ons-data-platform', version: '9.8.7', bin: PACKAGE.bin }));
    // The app's own package.json above it declares no such bin: it is skipped.
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0' }));
    mkdirSync(path.join(dir, 'node_modules', '.bin'));
    const link = path.join(dir, 'node_modules', '.bin', 'ons-data-platform');
    symlinkSync(path.relative(path.dirname(link), bin), link);
    const r = spawnSync(process.execPath, [link, '--version'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout).toBe('9.8.7\n');
    expect(r.status).toBe(0);
  });

  test('--help lists the commands, says `<command> --help`, and exits 0', () => {
    for (const flag of ['--help', '-h']) {
      const r = cli([flag]);
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^Usage: ons-data-platform <command> \[options\]\n/);
      expect(r.stdout).toMatch(/^ {2}inspect FILE /m);
      expect(r.stdout).toMatch(/^ {2}convert FILE --out DIR /m);
      expect(r.stdout).toContain('`ons-data-platform <command> --help`');
      expect(r.stdout).toContain('--version');
      expect(r.stdout).toContain('Exit status: 0 success, 2 file refused (reason on stderr), 1 any other error.');
    }
  });

  test.each([
    ['inspect', ['--json', '--sheet NAME|INDEX', '--max-expanded-mb N'], ['--out', '--source-key']],
    ['convert', ['--out DIR', '--source-key KEY', '--json', '--sheet NAME|INDEX', '--max-expanded-mb N'], []],
  ])('%s --help prints its own usage: its options, progress, exit status', (command, options, notOptions) => {
    for (const args of [[command, '--help'], [command, '-h'], [command, 'file.csv', '--help']]) {
      const r = cli(args);
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^Usage: ons-data-platform ${command} FILE`));
      for (const o of options) expect(r.stdout).toMatch(new RegExp(`^ {2}${o.replace(/[|]/g, '\\|')} `, 'm'));
      for (const o of notOptions) expect(r.stdout).not.toMatch(new RegExp(`^ {2}${o} `, 'm'));
      expect(r.stdout).toMatch(/^Progress \(on stderr\):$/m);
      expect(r.stdout).toMatch(/^Exit status: 0 success; 2 the file is refused, or none of its data rows is valid/m);
    }
  });
});

describe('inspect', () => {
  test('--json prints exactly one JSON object with the summary; no progress for a small file', () => {
    const r = cli(['inspect', CURVA, '--json']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
    const s = JSON.parse(r.stdout);
    expect(typeof s === 'object' && s !== null && !Array.isArray(s)).toBe(true);
    expect(Object.keys(s)).toEqual(expect.arrayContaining([
      'file', 'dataset', 'format', 'encoding', 'delimiter', 'rows', 'records', 'rejected',
      'timeColumn', 'dimensions', 'measures', 'series', 'start', 'end',
    ]));
    expect(s.measures).toHaveLength(1);
    for (const m of s.measures) expect(Object.keys(m).sort()).toEqual(['count', 'max', 'min', 'name', 'nulls', 'sum', 'unit']);
    expect(s).toMatchObject({
      file: 'CURVA_CARGA_2023.csv',
      dataset: 'curva_carga',
      format: 'csv',
      encoding: 'utf-8',
      delimiter: ';',
      rows: 35040,
      records: 35040,
      rejected: 0,
      timeColumn: 'din_instante',
      dimensions: ['id_subsistema'],
      series: 4,
      start: '2023-01-01T03:00:00.000Z',
      end: '2024-01-01T02:00:00.000Z',
    });
    expect(s.measures[0]).toMatchObject({ name: 'val_cargaenergiahomwmed', unit: 'MWmed', count: 35040, nulls: 0, min: 1364.251 });
  });

  test('the human-readable report names the dataset and the counts', () => {
    const r = cli(['inspect', CURVA]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Dataset +curva_carga \(catalog\)$/m);
    expect(r.stdout).toMatch(/^Rows +35040 read: 35040 records, 0 rejected$/m);
    expect(r.stdout).toContain('2023-01-01T03:00:00.000Z');
    expect(r.stdout).toContain('val_cargaenergiahomwmed (MWmed)');
  });
});

describe('inspect: every row rejected', () => {
  /** The real CURVA_CARGA_2023.csv with its time column (din_instante, the third) blanked: every row is refused. */
  function withoutTimes(): string {
    const [header, ...lines] = readFileSync(CURVA, 'utf8').trimEnd().split('\n');
    const file = path.join(dir, 'CURVA_CARGA_2023.csv');
    writeFileSync(file, [header, ...lines.map((l) => l.split(';').map((c, i) => (i === 2 ? '' : c)).join(';'))].join('\n') + '\n');
    return file;
  }

  test('exits 2 as convert does, with the report on stdout and the reason on stderr', () => {
    const file = withoutTimes();
    const r = cli(['inspect', file]);
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(/^Dataset +curva_carga \(catalog\)$/m);
    expect(r.stdout).toMatch(/^Rows +35040 read: 0 records, 35040 rejected$/m);
    expect(r.stderr).toBe(`ons-data-platform: ${file} refused: none of the 35040 data rows is valid; \`ons-data-platform convert\` writes the reason of each row\n`);

    const json = cli(['inspect', file, '--json']);
    expect(json.status).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ rows: 35040, records: 0, rejected: 35040, start: null, end: null });
    expect(json.stderr).toBe(r.stderr);

    // convert: the same status, the same words before the ';'.
    const converted = cli(['convert', file, '--out', path.join(dir, 'out')]);
    expect(converted.status).toBe(2);
    expect(converted.stderr.split(';')[0]).toBe(r.stderr.split(';')[0]);
  });
});

describe('convert', () => {
  test('writes the monthly Parquet partitions of 2023 and the data card, lists them, and leaves no .partial file', () => {
    const out = path.join(dir, 'out');
    const r = cli(['convert', CURVA, '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Dataset +curva_carga \(catalog\)$/m);
    const listed = r.stdout.slice(r.stdout.indexOf(`Written under ${out}:\n`)).split('\n').slice(1)
      .filter((l) => l.length > 0)
      .map((l) => /^ {2}(\S+)(?: \((\d+) (?:records|rows)\))?$/.exec(l))
      .map((m) => {
        expect(m).not.toBeNull();
        return { file: m![1], count: m![2] === undefined ? undefined : Number(m![2]) };
      });
    for (const { file } of listed) expect(existsSync(path.join(out, file))).toBe(true);

    // Local times are all in 2023, so only year=2023, one partition per month.
    const parquet = listed.filter((l) => l.file.endsWith('.parquet'));
    expect(parquet.map((p) => p.file.replace(/[^/]+$/, ''))).toEqual(
      Array.from({ length: 12 }, (_, i) => `processed/dataset=curva_carga/year=2023/month=${String(i + 1).padStart(2, '0')}/`));
    expect(parquet.every((p) => p.file.endsWith(`/${STEM}.parquet`))).toBe(true);
    // Hours per month × 4 subsystems.
    expect(parquet.map((p) => p.count)).toEqual([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31].map((d) => d * 24 * 4));
    for (const p of parquet) expect(readFileSync(path.join(out, p.file)).subarray(0, 4).toString('latin1')).toBe('PAR1');

    const others = listed.filter((l) => !l.file.endsWith('.parquet')).map((l) => l.file);
    expect(others).toEqual([`knowledge/cards/curva_carga/${STEM}.md`, `knowledge/cards/curva_carga/${STEM}.md.metadata.json`]);
    expect(readFileSync(path.join(out, others[0]), 'utf8').length).toBeGreaterThan(0);
    expect(() => JSON.parse(readFileSync(path.join(out, others[1]), 'utf8'))).not.toThrow();

    // What is on disk is exactly what was listed: nothing partial, no rejected-rows file.
    const files = filesUnder(out);
    expect(files.filter((f) => f.includes('.partial'))).toEqual([]);
    expect(files).toEqual(listed.map((l) => l.file).sort());
  });

  test('--json prints one JSON object with the written paths', () => {
    const out = path.join(dir, 'out');
    const r = cli(['convert', CURVA, '--out', out, '--json']);
    expect(r.status).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
    const result = JSON.parse(r.stdout);
    expect(result.summary).toMatchObject({ rows: 35040, records: 35040, rejected: 0 });
    expect(result.parquet).toHaveLength(12);
    expect(result.rejected).toBeUndefined();
    for (const f of [...result.parquet.map((p: { relativePath: string }) => p.relativePath), result.card, result.cardMetadata]) {
      expect(existsSync(path.join(out, f))).toBe(true);
    }
  });

  test('a file whose every row is bad exits 2 and leaves only the rejected-rows CSV', () => {
    const file = path.join(dir, 'CURVA_CARGA_2023.csv');
    writeFileSync(file, [
      'id_subsistema;nom_subsistema;din_instante;val_cargaenergiahomwmed',
      'N;NORTE;ontem;1',
      'NE;NORDESTE;2023-01-01 00:00:00;abc',
      ';SUL;2023-01-01 00:00:00;1',
    ].join('\n') + '\n');
    const out = path.join(dir, 'out');
    const r = cli(['convert', file, '--out', out]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const report = path.join(out, `rejected/curva_carga/${STEM}.rejected.csv`);
    expect(r.stderr).toBe(`ons-data-platform: ${file} refused: none of the 3 data rows is valid; reasons per row in ${report}\n`);
    expect(filesUnder(out)).toEqual([`rejected/curva_carga/${STEM}.rejected.csv`]);
    const lines = readFileSync(report, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => l.split(';')[0])).toEqual(['row', '2', '3', '4']);
  });
});

describe('convert: one current version per source', () => {
  const MEASURE = 'val_cargaenergiahomwmed';
  const V1 = readFileSync(CURVA, 'utf8');
  const months = (n: number) => Array.from({ length: n }, (_, i) => `2023-${String(i + 1).padStart(2, '0')}`);

  /** What DuckDB reads under out/processed, per source key. */
  const lake = (out: string) => figuresBySource(path.join(out, 'processed'), 'curva_carga', MEASURE);

  test('a revised file replaces its earlier outputs (same names), drops the months it no longer has, and its rejected rows go with it', async () => {
    const file = path.join(dir, 'CURVA_CARGA_2023.csv');
    const out = path.join(dir, 'out');
    writeFileSync(file, V1);
    expect(cli(['convert', file, '--out', out]).status).toBe(0);
    const first = filesUnder(out);

    // v2: values changed, December gone, one row that is refused.
    const v2 = revise(V1, 1.5, ['12']).replace(/\nN;NORTE;2023-01-01 00:00:00;[^\n]*/, '\nN;NORTE;2023-01-01 00:00:00;abc');
    writeFileSync(file, v2);
    const r = cli(['convert', file, '--out', out]);
    expect(r.status).toBe(0);
    const removed = first.filter((f) => f.includes('/month=12/'));
    expect(removed).toHaveLength(1);
    expect(r.stdout).toContain(`Removed (outputs of an earlier version of this source):\n  ${removed[0]}\n`);
    const rejected = `rejected/curva_carga/${STEM}.rejected.csv`;
    expect(filesUnder(out)).toEqual([...first.filter((f) => f !== removed[0]), rejected].sort());
    const expected = figures(v2);
    let seen = (await lake(out)).get('CURVA_CARGA_2023.csv');
    expect(seen?.count).toBe(expected.count);
    expect(expected.count).toBe(figures(revise(V1, 1.5, ['12'])).count - 1);
    expect(seen?.sum).toBeCloseTo(expected.sum, 3);
    expect(seen?.months).toEqual(months(11));

    // v3 = v1 again: December back, no rejected rows any more.
    writeFileSync(file, V1);
    const again = cli(['convert', file, '--out', out, '--json']);
    expect(again.status).toBe(0);
    expect(JSON.parse(again.stdout).removed).toEqual([rejected]);
    expect(filesUnder(out)).toEqual(first);
    seen = (await lake(out)).get('CURVA_CARGA_2023.csv');
    expect(seen?.count).toBe(figures(V1).count);
    expect(seen?.sum).toBeCloseTo(figures(V1).sum, 3);
  });

  test('the same file name under another --source-key keeps its own outputs beside the first', async () => {
    const out = path.join(dir, 'out');
    expect(cli(['convert', CURVA, '--out', out]).status).toBe(0);
    const other = path.join(dir, 'mirror', 'CURVA_CARGA_2023.csv');
    mkdirSync(path.dirname(other));
    const revised = revise(V1, 7, ['01']);
    writeFileSync(other, revised);
    const r = cli(['convert', other, '--out', out, '--source-key', 'mirror/CURVA_CARGA_2023.csv']);
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain('Removed');
    const seen = await lake(out);
    expect(seen.get('CURVA_CARGA_2023.csv')).toMatchObject({ count: figures(V1).count, months: months(12) });
    expect(seen.get('mirror/CURVA_CARGA_2023.csv')).toMatchObject({ count: figures(revised).count, months: months(12).slice(1) });
    expect(seen.get('mirror/CURVA_CARGA_2023.csv')?.sum).toBeCloseTo(figures(revised).sum, 3);
    expect(filesUnder(path.join(out, 'knowledge'))).toHaveLength(4);
  });

  test('a revision that is refused leaves the earlier outputs as they were: only its rejected-rows report is new', async () => {
    const file = path.join(dir, 'CURVA_CARGA_2023.csv');
    const out = path.join(dir, 'out');
    writeFileSync(file, V1);
    expect(cli(['convert', file, '--out', out]).status).toBe(0);
    const first = filesUnder(out);
    writeFileSync(file, 'id_subsistema;nom_subsistema;din_instante;val_cargaenergiahomwmed\nN;NORTE;ontem;1\n');
    expect(cli(['convert', file, '--out', out]).status).toBe(2);
    expect(filesUnder(out)).toEqual([...first, `rejected/curva_carga/${STEM}.rejected.csv`].sort());
    const seen = (await lake(out)).get('CURVA_CARGA_2023.csv');
    expect(seen?.count).toBe(figures(V1).count);
    expect(seen?.sum).toBeCloseTo(figures(V1).sum, 3);
  });
});

describe('refusals and errors', () => {
  test('the PDF in the data folder: exit 2, the reason on stderr, nothing on stdout, nothing written', () => {
    const out = path.join(dir, 'out');
    for (const args of [['inspect', PDF], ['inspect', PDF, '--json'], ['convert', PDF, '--out', out]]) {
      const r = cli(args);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`ons-data-platform: ${PDF} refused: this is a PDF document, not a table of data (documents belong in the knowledge base)\n`);
    }
    expect(filesUnder(out)).toEqual([]);
  });

  test('an empty file: exit 2, the reason on stderr, nothing on stdout', () => {
    const file = path.join(dir, 'CURVA_CARGA_2023.csv');
    writeFileSync(file, '');
    for (const args of [['inspect', file], ['convert', file, '--out', path.join(dir, 'out')]]) {
      const r = cli(args);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`ons-data-platform: ${file} refused: the file is empty\n`);
    }
    expect(filesUnder(path.join(dir, 'out'))).toEqual([]);
  });

  test('a missing file, or a directory: exit 1', () => {
    const missing = path.join(dir, 'nope.csv');
    const r = cli(['inspect', missing]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^ons-data-platform: cannot read ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ENOENT`));
    const d = cli(['inspect', dir]);
    expect(d.status).toBe(1);
    expect(d.stdout).toBe('');
    expect(d.stderr).toContain('not a regular file');
  });

  test.each([
    [[], 'no command'],
    [['frobnicate', 'x.csv'], "unknown command 'frobnicate'"],
    [['inspect'], 'FILE is missing'],
    [['inspect', 'a.csv', '--bogus'], "unknown option '--bogus'"],
    [['inspect', 'a.csv', 'b.csv'], "unexpected argument 'b.csv'"],
    [['convert', 'a.csv'], 'convert needs --out DIR'],
    [['convert', 'a.csv', '--out'], '--out needs a value'],
    [['convert', 'a.csv', '--out', '--json'], '--out needs a value'],
    [['inspect', 'a.csv', '--source-key', 'k'], '--source-key is an option of convert'],
    [['inspect', 'a.csv', '--max-expanded-mb', '1.5'], "--max-expanded-mb needs a whole number of MiB, got '1.5'"],
    [['inspect', 'a.csv', '--json=yes'], '--json takes no value'],
    [['inspect', 'a.csv', '-x'], "unknown option '-x'"],
    [['--bogus'], "unknown option '--bogus'"],
    [['-V'], "unknown option '-V'"],
  ])('a bad command line %j exits 1 with the reason and the short usage on stderr', (args, reason) => {
    const r = cli(args);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const command = ['inspect', 'convert'].includes(args[0]) ? ` ${args[0]}` : '';
    const lines = r.stderr.split('\n');
    expect(lines[0]).toBe(`ons-data-platform: ${reason}`);
    expect(lines[1]).toBe('');
    expect(lines[2]).toMatch(new RegExp(`^Usage: ons-data-platform${command} `));
    expect(lines.slice(3)).toEqual([`Run 'ons-data-platform${command} --help' for more.`, '']);
  });
});

test('progress lines go to stderr for a file of 32 MiB or more when stderr is not a terminal: plain lines, no \\r', () => {
  // CURVA_CARGA_2023 repeated with the years shifted (2030, 2031, ...), so every row stays valid.
  const text = readFileSync(CURVA, 'utf8');
  const header = text.slice(0, text.indexOf('\n') + 1);
  const body = text.slice(header.length);
  const file = path.join(dir, 'CURVA_CARGA_2030.csv');
  const fd = openSync(file, 'w');
  let size = writeSync(fd, header);
  let copies = 0;
  while (size < 32 * 1024 * 1024) size += writeSync(fd, body.replace(/;2023-/g, `;${2030 + copies++}-`));
  closeSync(fd);
  expect(statSync(file).size).toBeGreaterThanOrEqual(32 * 1024 * 1024);

  const r = cli(['inspect', file, '--json'], 120_000);
  expect(r.status).toBe(0);
  const s = JSON.parse(r.stdout);
  expect(s).toMatchObject({ rows: 35040 * copies, records: 35040 * copies, rejected: 0, series: 4, start: '2030-01-01T03:00:00.000Z' });
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines.length).toBeGreaterThanOrEqual(1);
  const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  for (const l of lines) expect(l).toMatch(new RegExp(`^ons-data-platform: ${escaped}: \\d{1,3}% \\(\\d+\\.\\d of \\d+\\.\\d MB, parsing\\)$`));
  expect(lines[lines.length - 1]).toMatch(/: 100% \(/);
  expect(r.stderr).not.toMatch(/[\r\x1b]/);
}, 180_000);
