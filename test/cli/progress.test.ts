import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { ProgressDisplay, ProgressSettings } from '../../src/cli/progress';
import { ONS_DATA } from '../ons-data';
import { curvaCargaParquet } from '../ons-parquet';

/**
 * The command's progress, run in process with a recording stderr: a bar redrawn with \r when stderr is a terminal,
 * plain lines otherwise. The clock is injected (each reading advances it 1 s), so what is drawn depends on the
 * reports the domain core makes, never on how fast this machine is.
 */

interface Recorder {
  readonly isTTY?: boolean;
  readonly columns?: number;
  readonly writes: string[];
  write(text: string): boolean;
}

function recorder(isTTY: boolean): Recorder {
  const writes: string[] = [];
  return { isTTY, columns: 120, writes, write: (text) => { writes.push(text); return true; } };
}

/** A clock that advances a second at each reading. */
function ticking(): () => number {
  let t = 0;
  return () => (t += 1000);
}

async function run(args: string[], isTTY: boolean, progress: ProgressSettings) {
  const stdout = recorder(false);
  const stderr = recorder(isTTY);
  const status = await main(args, { stdout, stderr }, { progress });
  return { status, stdout: stdout.writes.join(''), stderr: stderr.writes, text: stderr.writes.join('') };
}

/** The percentages of the frames drawn, in order. */
function percents(frames: string[]): number[] {
  return frames.map((f) => /\] {0,2}(\d{1,3})% \(/.exec(f) ?? /: (\d{1,3})% \(/.exec(f)).map((m) => {
    expect(m).not.toBeNull();
    return Number(m![1]);
  });
}

/** Several increasing percentages, the first before the end of the work, the last 100. */
function expectProgressing(values: number[]): void {
  expect(new Set(values).size).toBeGreaterThanOrEqual(3);
  for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1]);
  expect(values[0]).toBeLessThan(100);
  expect(values[values.length - 1]).toBe(100);
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'ons-progress-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const CSV = path.join(ONS_DATA, 'BALANCO_ENERGIA_SUBSISTEMA_2023.csv');
const XLSX = path.join(ONS_DATA, 'CURVA_CARGA_2021.xlsx');

function parquetFile(): string {
  const file = path.join(dir, 'CURVA_CARGA_2023.parquet');
  writeFileSync(file, curvaCargaParquet(5_000));
  return file;
}

describe('on a terminal: one line redrawn with \\r, ended with a newline', () => {
  test.each([
    ['CSV', () => CSV, 'parsing'],
    ['XLSX', () => XLSX, "sheet '"],
    ['Parquet', parquetFile, 'row group '],
  ])('%s: the bar moves through several percentages before the work ends', async (_, file, phase) => {
    const r = await run(['inspect', file()], true, { now: ticking(), delayMs: 0, redrawMs: 0 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Rows +\d+ read: \d+ records, 0 rejected$/m);
    // Every write but the last redraws the line from its start; the last ends it. No ANSI escapes.
    const [end, ...draws] = [...r.stderr].reverse();
    expect(end).toBe('\n');
    expect(draws.length).toBeGreaterThanOrEqual(3);
    for (const d of draws) expect(d).toMatch(/^\r[^\r\n]+$/);
    expect(r.text).not.toContain('\x1b');
    const frames = draws.reverse().map((d) => d.slice(1).trimEnd());
    for (const f of frames) {
      expect(f.length).toBeLessThan(120);
      expect(f).toMatch(/^\[[#-]{24}\] +\d{1,3}% \(\d+(\.\d)? of \d+(\.\d)? (MB|rows), .+\) /);
      expect(f.endsWith(path.basename(file()))).toBe(true);
    }
    // Nothing is drawn twice (the end draws the last state only when it was held back).
    for (let i = 1; i < frames.length; i++) expect(frames[i]).not.toBe(frames[i - 1]);
    const sheetFrames = frames.filter((f) => f.includes(phase));
    expect(sheetFrames.length).toBeGreaterThanOrEqual(3);
    expectProgressing(percents(sheetFrames));
  });

  test('a file that is read before the delay shows no bar at all', async () => {
    // The clock stands still: the work never reaches the 0.5 s delay.
    const r = await run(['inspect', CSV], true, { now: () => 0 });
    expect(r.status).toBe(0);
    expect(r.stderr).toEqual([]);
  });

  test('a redraw of a shorter line pads it with spaces over the last one; a line is cut to the terminal\'s width', () => {
    const stream = recorder(true); // 120 columns
    const display = new ProgressDisplay('/data/a.csv', 10, stream, { now: ticking(), delayMs: 0, redrawMs: 0 });
    display.update({ phase: 'a phase with a much longer name', done: 1e6, total: 1e7, unit: 'bytes' });
    display.update({ phase: 'x', done: 2e6, total: 1e7, unit: 'bytes' });
    display.end(true);
    const long = '[##----------------------] 10% (1.0 of 10.0 MB, a phase with a much longer name) a.csv';
    const short = '[#####-------------------] 20% (2.0 of 10.0 MB, x) a.csv';
    expect(stream.writes).toEqual([`\r${long}`, `\r${short}${' '.repeat(long.length - short.length)}`, '\n']);

    const narrow = { ...recorder(true), columns: 40 };
    const cut = new ProgressDisplay('/data/a.csv', 10, narrow, { now: ticking(), delayMs: 0, redrawMs: 0 });
    cut.update({ phase: 'x', done: 2e6, total: 1e7, unit: 'bytes' });
    expect(narrow.writes).toEqual([`\r${short.slice(0, 39)}`]);
  });

  test('on an error the line is ended before the reason', async () => {
    const file = parquetFile();
    // The last row groups' data overwritten (the footer stays readable): the refusal comes after progress was drawn.
    const corrupted = readFileSync(file);
    const footerLength = corrupted.readUInt32LE(corrupted.length - 8);
    const dataEnd = corrupted.length - 8 - footerLength;
    corrupted.fill(0xff, dataEnd - 2000, dataEnd);
    writeFileSync(file, corrupted);
    const r = await run(['inspect', file], true, { now: ticking(), delayMs: 0, redrawMs: 0 });
    expect(r.status).toBe(2);
    const refusal = r.stderr.findIndex((w) => w.startsWith('ons-data-platform: '));
    expect(refusal).toBeGreaterThan(1);
    expect(r.stderr[refusal - 1]).toBe('\n');
    expect(r.stderr[refusal]).toMatch(/refused: Parquet row group \d cannot be read/);
  });
});

describe('not a terminal: plain lines, no \\r and no ANSI', () => {
  test.each([
    ['CSV', () => CSV],
    ['XLSX', () => XLSX],
    ['Parquet', parquetFile],
  ])('%s: a line per report the interval lets through, increasing to 100%%', async (_, file) => {
    const f = file();
    const r = await run(['inspect', f], false, { now: ticking(), minBytes: 0, lineMs: 0 });
    expect(r.status).toBe(0);
    expect(r.text).not.toMatch(/[\r\x1b]/);
    for (const w of r.stderr) expect(w).toMatch(new RegExp(`^ons-data-platform: ${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\d{1,3}% \\(.+\\)\\n$`));
    const last = percents(r.stderr.filter((w) => !w.includes('shared strings')));
    expectProgressing(last);
  });

  test('the size threshold and the interval hold lines back: nothing for a file below it, the last line always', async () => {
    const small = await run(['inspect', CSV], false, { now: ticking(), minBytes: statSync(CSV).size + 1, lineMs: 0 });
    expect(small.stderr).toEqual([]);
    // An interval longer than the whole run: the first report, then only the 100% one.
    const sparse = await run(['inspect', CSV], false, { now: ticking(), minBytes: 0, lineMs: 1e9 });
    expect(percents(sparse.stderr)).toEqual([expect.any(Number), 100]);
    expect(percents(sparse.stderr)[0]).toBeLessThan(100);
  });
});
