import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { constants, crc32, deflateRawSync } from 'node:zlib';
import { strToU8, Zip, ZipInputFile, zipSync } from 'fflate';
import { convertFile, ConvertResult, inspectFile } from '../../src/ons/convert';
import { resolveDataset } from '../../src/ons/detect';
import { outputStem, sourceId, sourceIdentity } from '../../src/ons/layout';
import { localFile } from '../../src/ons/local-file';
import { FileSummary, processTable, Rejection } from '../../src/ons/process';
import { CSV_MAX_LINE_CHARS, readCsv } from '../../src/ons/readers/csv';
import { readXlsx, XLSX_MAX_EXPANDED_BYTES } from '../../src/ons/readers/xlsx';
import { OnsRecord, RawRow, RefusedFileError } from '../../src/ons/types';
import { ONS_DATA } from '../ons-data';

/**
 * Bad input, file by file: every case ends in a refusal a person can act on (RefusedFileError with a
 * reason) or in per-row rejections with the row number and the reason; never a crash, a hang or a row
 * that vanishes (rows = records + rejected, always). Fixtures are written to a temp dir per test.
 */

const DATA = ONS_DATA;
const HEADER = 'id_subsistema;nom_subsistema;din_instante;val_cargaenergiahomwmed';
const CURVA = 'CURVA_CARGA_2023.csv';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'ons-bad-input-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, content: string | Uint8Array): string {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
}

/** The lines of a `;` file: header plus rows, LF, final newline. */
function csv(...rows: string[]): string {
  return [HEADER, ...rows].join('\n') + '\n';
}

/** Every file under `root`, relative, with `/`. */
function filesUnder(root: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(root, { recursive: true }) as string[];
  } catch {
    return [];
  }
  return entries.filter((e) => statSync(path.join(root, e)).isFile()).map((e) => e.split(path.sep).join('/')).sort();
}

/** The error a promise rejects with; fails the test when it resolves. */
async function refusal(p: Promise<unknown>): Promise<RefusedFileError> {
  const outcome = await p.then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e }));
  if (outcome.ok) throw new Error(`expected a RefusedFileError, but it resolved: ${JSON.stringify(outcome.v)?.slice(0, 300)}`);
  expect(outcome.e).toBeInstanceOf(RefusedFileError);
  return outcome.e as RefusedFileError;
}

/** Parses a `;` CSV as we write it (double quotes, `""` escapes; no field spans lines). Independent of src. */
function parseRejectedCsv(text: string): string[][] {
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n').map((line) => {
    const cells: string[] = [];
    let i = 0;
    for (;;) {
      let cell = '';
      if (line[i] === '"') {
        i++;
        for (;;) {
          const q = line.indexOf('"', i);
          if (q < 0) throw new Error(`unterminated quote in ${line}`);
          cell += line.slice(i, q);
          if (line[q + 1] === '"') {
            cell += '"';
            i = q + 2;
          } else {
            i = q + 1;
            break;
          }
        }
      } else {
        const d = line.indexOf(';', i);
        cell = line.slice(i, d < 0 ? line.length : d);
        i = d < 0 ? line.length : d;
      }
      cells.push(cell);
      if (i >= line.length) break;
      expect(line[i]).toBe(';');
      i++;
      if (i === line.length) {
        cells.push('');
        break;
      }
    }
    return cells;
  });
}

interface Outcome {
  readonly summary: FileSummary;
  readonly records: OnsRecord[];
  readonly rejections: Rejection[];
  /** The rejected-rows CSV convertFile wrote, parsed: header row first; undefined when none was written. */
  readonly rejectedCsv?: string[][];
  readonly result: ConvertResult;
}

/**
 * Reads a file three ways: inspectFile, readCsv + processTable with a sink (records and rejections),
 * and convertFile (the rejected-rows CSV read back). Checks that rows = records + rejected and that the
 * three agree.
 */
async function run(name: string, content: string | Uint8Array): Promise<Outcome> {
  const file = write(name, content);
  const summary = await inspectFile(file, localFile(file));
  expect(summary.rows).toBe(summary.records + summary.rejected);

  const table = await readCsv(localFile(file).stream());
  const records: OnsRecord[] = [];
  const rejections: Rejection[] = [];
  const processed = await processTable(name, table, resolveDataset(name, table.header), {
    record: (r) => { records.push(r); },
    rejected: (r) => { rejections.push(r); },
  });
  expect(processed).toEqual(summary);
  expect(records).toHaveLength(summary.records);
  expect(rejections).toHaveLength(summary.rejected);

  const outDir = path.join(dir, 'out');
  const result = await convertFile(file, localFile(file), { outDir });
  expect(result.summary).toEqual(summary);
  const rejectedCsv = result.rejected ? parseRejectedCsv(readFileSync(path.join(outDir, result.rejected), 'utf8')) : undefined;
  expect(rejectedCsv ? rejectedCsv.length - 1 : 0).toBe(summary.rejected);
  expect(filesUnder(outDir).filter((f) => f.endsWith('.partial'))).toEqual([]);
  return { summary, records, rejections, rejectedCsv, result };
}

/** Row number and reason of each rejection. */
const reasons = (o: Outcome) => o.rejections.map((r) => [r.row, r.reason]);

describe('files refused as a whole', () => {
  test('an empty file (0 bytes)', async () => {
    const file = write(CURVA, '');
    expect((await refusal(inspectFile(file, localFile(file)))).message).toBe('the file is empty');
    const outDir = path.join(dir, 'out');
    expect((await refusal(convertFile(file, localFile(file), { outDir }))).message).toBe('the file is empty');
    expect(filesUnder(outDir)).toEqual([]);
  });

  test('a header and no data rows', async () => {
    for (const content of [`${HEADER}\n`, HEADER, `${HEADER}\n\n\n`, `${HEADER}\r\n`]) {
      const file = write(CURVA, content);
      expect((await refusal(inspectFile(file, localFile(file)))).message).toBe('the file has a header but no data rows');
      const outDir = path.join(dir, 'out');
      expect((await refusal(convertFile(file, localFile(file), { outDir }))).message).toBe('the file has a header but no data rows');
      expect(filesUnder(outDir)).toEqual([]);
    }
  });

  test('binary garbage (random bytes with NULs)', async () => {
    // Deterministic pseudo-random bytes (so no run can start with a zip, PDF or BOM signature by chance).
    const bytes = new Uint8Array(200_000);
    let x = 20231;
    for (let i = 0; i < bytes.length; i++) {
      x = (x * 48271) % 2147483647; // Park-Miller
      bytes[i] = x % 256;
    }
    bytes.set([0x13, 0x37, 0x00, 0x42], 0);
    const file = write('garbage.csv', bytes);
    expect((await refusal(inspectFile(file, localFile(file)))).message).toBe('the file holds binary data (NUL bytes), not CSV text');
    const outDir = path.join(dir, 'out');
    await refusal(convertFile(file, localFile(file), { outDir }));
    expect(filesUnder(outDir)).toEqual([]);
  });

  test('a single 5 MB line with no newline is refused, not read as a header', async () => {
    const file = write(CURVA, 'id_subsistema;' + 'x'.repeat(5 * 1024 * 1024));
    expect((await refusal(inspectFile(file, localFile(file)))).message)
      .toBe(`the first line is longer than ${CSV_MAX_LINE_CHARS} characters: not a CSV header`);
  });

  test('a CSV that is not ONS data is refused naming the convention', async () => {
    const file = write('contacts.csv', 'name,email\nann,a@x\n');
    const message = (await refusal(inspectFile(file, localFile(file)))).message;
    expect(message).toMatch(/^not ONS data: 'contacts\.csv' matches no catalog dataset \(carga_energia, curva_carga, /);
    expect(message).toContain('its header does not follow the ONS naming convention (a time column din_* or dat_*, and measures val_*)');
    expect(message).toMatch(/found columns: name, email$/);
  });

  test('a CSV named like an ONS dataset but with other columns is refused naming the missing columns', async () => {
    const file = write(CURVA, 'name,email\nann,a@x\n');
    expect((await refusal(inspectFile(file, localFile(file)))).message).toBe(`'${CURVA}' is named like the ONS dataset curva_carga, `
      + 'but its header lacks din_instante, id_subsistema, nom_subsistema, val_cargaenergiahomwmed; found: name, email');
  });
});

describe('delimiters', () => {
  test('a comma-separated ONS-like file is read (the delimiter is detected)', async () => {
    const o = await run(CURVA, [
      HEADER.replace(/;/g, ','),
      'N,NORTE,2023-01-01 00:00:00,5000.5',
      'NE,NORDESTE,2023-01-01 00:00:00,10000.25',
    ].join('\n') + '\n');
    expect(o.summary).toMatchObject({ delimiter: ',', rows: 2, records: 2, rejected: 0, dataset: 'curva_carga' });
    expect(o.records.map((r) => [r.dimensions.id_subsistema, r.labels.nom_subsistema, r.measures.val_cargaenergiahomwmed]))
      .toEqual([['N', 'NORTE', 5000.5], ['NE', 'NORDESTE', 10000.25]]);
    expect(o.rejectedCsv).toBeUndefined();
  });

  test("rows using ',' in a ';' file are rejected with the expected field count", async () => {
    const o = await run(CURVA, csv(
      'N;NORTE;2023-01-01 00:00:00;5000.5',
      'NE,NORDESTE,2023-01-01 00:00:00,10000.25',
      'S;SUL;2023-01-01 00:00:00;9000',
      'SE,SUDESTE,2023-01-01 00:00:00,40000',
    ));
    expect(o.summary).toMatchObject({ delimiter: ';', rows: 4, records: 2, rejected: 2 });
    expect(reasons(o)).toEqual([
      [3, "expected 4 fields separated by ';', found 1"],
      [5, "expected 4 fields separated by ';', found 1"],
    ]);
    expect(o.records.map((r) => r.row)).toEqual([2, 4]);
    expect(o.rejectedCsv).toEqual([
      ['row', 'reason', ...HEADER.split(';')],
      ['3', "expected 4 fields separated by ';', found 1", 'NE,NORDESTE,2023-01-01 00:00:00,10000.25'],
      ['5', "expected 4 fields separated by ';', found 1", 'SE,SUDESTE,2023-01-01 00:00:00,40000'],
    ]);
  });

  test('quoted fields with the delimiter (and escaped quotes) inside are read correctly', async () => {
    const o = await run(CURVA, csv(
      'N;"NORTE;AMAZONIA";2023-01-01 00:00:00;"5000.5"',
      '"NE";"NORDESTE ""NE""";"2023-01-01 00:00:00";10000',
      'S;"SUL;2023-01-01 00:00:00;9000',
    ));
    expect(o.summary).toMatchObject({ rows: 3, records: 2, rejected: 1 });
    expect(o.records.map((r) => [r.dimensions.id_subsistema, r.labels.nom_subsistema, r.measures.val_cargaenergiahomwmed]))
      .toEqual([['N', 'NORTE;AMAZONIA', 5000.5], ['NE', 'NORDESTE "NE"', 10000]]);
    expect(reasons(o)).toEqual([[4, 'unterminated quoted field (quoted fields may not span lines)']]);
  });
});

describe('damaged lines', () => {
  test('a truncated last line (fewer fields, no final newline) is rejected; the others are kept', async () => {
    const o = await run(CURVA, [
      HEADER,
      'N;NORTE;2023-01-01 00:00:00;5000.5',
      'NE;NORDESTE;2023-01-01 00:00:00;10000',
      'S;SUL;2023-01-01 00:00:00',
    ].join('\n'));
    expect(o.summary).toMatchObject({ rows: 3, records: 2, rejected: 1 });
    expect(reasons(o)).toEqual([[4, "expected 4 fields separated by ';', found 3"]]);
    expect(o.rejectedCsv![1]).toEqual(['4', "expected 4 fields separated by ';', found 3", 'S', 'SUL', '2023-01-01 00:00:00']);
  });

  test('a 5 MB data line is rejected as over the limit, and the following rows are still read', async () => {
    const o = await run(CURVA, csv(
      'N;NORTE;2023-01-01 00:00:00;5000.5',
      `NE;${'x'.repeat(5 * 1024 * 1024)};2023-01-01 00:00:00;1`,
      'S;SUL;2023-01-01 00:00:00;9000',
      'SE;SUDESTE;2023-01-01 00:00:00;40000',
    ));
    expect(o.summary).toMatchObject({ rows: 4, records: 3, rejected: 1 });
    expect(reasons(o)).toEqual([[3, `line 3 is longer than ${CSV_MAX_LINE_CHARS} characters`]]);
    expect(o.records.map((r) => [r.row, r.dimensions.id_subsistema])).toEqual([[2, 'N'], [4, 'S'], [5, 'SE']]);
    expect(o.rejectedCsv![1]).toEqual(['3', `line 3 is longer than ${CSV_MAX_LINE_CHARS} characters`]);
  });
});

describe('labels that look like spreadsheet formulas', () => {
  test('are kept as data in records, and neutralised with a leading quote in the rejected CSV; numbers are not', async () => {
    const o = await run(CURVA, csv(
      // kept
      'N;=1+2;2023-01-01 00:00:00;5000.5',
      'NE;+SUM(A1:A9);2023-01-01 00:00:00;10000',
      'S;-cmd;2023-01-01 00:00:00;9000',
      'SE;@foo;2023-01-01 00:00:00;40000',
      'N;-3.6;2023-01-01 01:00:00;-3.6',
      // rejected for another reason
      'N;=1+2;2023-01-01 02:00:00;abc',
      'NE;+SUM(A1:A9);ontem;-3.6',
      'S;-cmd;2023-01-01 02:00:00;1e',
      ';@foo;2023-01-01 02:00:00;+5',
      'SE;-3.6;=NOW();-3.60000000',
    ));
    expect(o.summary).toMatchObject({ rows: 10, records: 5, rejected: 5 });
    expect(o.records.map((r) => r.labels.nom_subsistema)).toEqual(['=1+2', '+SUM(A1:A9)', '-cmd', '@foo', '-3.6']);
    expect(o.records[4].measures.val_cargaenergiahomwmed).toBe(-3.6);
    expect(o.rejectedCsv).toEqual([
      ['row', 'reason', ...HEADER.split(';')],
      ['7', "val_cargaenergiahomwmed: 'abc' is not a number", 'N', "'=1+2", '2023-01-01 02:00:00', 'abc'],
      ['8', "din_instante: 'ontem' is not a date or date-time (expected YYYY-MM-DD[ HH:MM:SS] or DD/MM/YYYY[ HH:MM:SS])",
        'NE', "'+SUM(A1:A9)", 'ontem', '-3.6'],
      ['9', "val_cargaenergiahomwmed: '1e' is not a number", 'S', "'-cmd", '2023-01-01 02:00:00', '1e'],
      ['10', 'id_subsistema is empty: it identifies the series', '', "'@foo", '2023-01-01 02:00:00', '+5'],
      ['11', "din_instante: '=NOW()' is not a date or date-time (expected YYYY-MM-DD[ HH:MM:SS] or DD/MM/YYYY[ HH:MM:SS])",
        'SE', '-3.6', "'=NOW()", '-3.60000000'],
    ]);
  });
});

describe('encodings and line endings', () => {
  test('Latin-1 accented labels: encoding latin1, labels decoded correctly', async () => {
    const o = await run(CURVA, Buffer.from(csv(
      'SE;SUDESTE/CENTRO-OESTE;2023-01-01 00:00:00;40000',
      'NE;Região Nordeste;2023-01-01 00:00:00;10000',
      'S;Sul (Paraná, Santa Catarina);2023-01-01 00:00:00;9000',
    ), 'latin1'));
    expect(o.summary).toMatchObject({ encoding: 'latin1', rows: 3, records: 3, rejected: 0 });
    expect(o.records.map((r) => r.labels.nom_subsistema)).toEqual(['SUDESTE/CENTRO-OESTE', 'Região Nordeste', 'Sul (Paraná, Santa Catarina)']);
  });

  test('a Latin-1 label after the first 64 KiB is not silently replaced by U+FFFD', async () => {
    const rows: string[] = [];
    for (let h = 0; h < 2000; h++) {
      const t = new Date(Date.UTC(2023, 0, 1, h)).toISOString().replace('T', ' ').slice(0, 19);
      rows.push(`N;NORTE;${t};${5000 + h}.5`);
    }
    rows.push('NE;Região Nordeste;2023-01-01 00:00:00;10000');
    const content = Buffer.from(csv(...rows), 'latin1');
    expect(content.indexOf(0xe3)).toBeGreaterThan(64 * 1024); // the only non-ASCII byte lies past the encoding sniff
    const row = rows.length + 1;
    let outcome: string;
    try {
      const o = await run(CURVA, content);
      expect(o.records.map((r) => r.labels.nom_subsistema).filter((l) => String(l).includes('\uFFFD'))).toEqual([]);
      const record = o.records.find((r) => r.row === row);
      outcome = record ? String(record.labels.nom_subsistema) : o.rejections.find((r) => r.row === row)!.reason;
    } catch (e) {
      if (!(e instanceof RefusedFileError)) throw e;
      outcome = e.message;
    }
    // Decoded correctly, or rejected/refused with a reason about the text encoding: never a silent U+FFFD.
    expect(outcome).toMatch(/^Região Nordeste$|encoding|UTF-8|Latin-1|latin1/i);
  });

  test('a UTF-8 BOM: encoding utf-8-bom and the first header column is still id_subsistema', async () => {
    const body = csv('N;NORTE;2023-01-01 00:00:00;5000.5', 'NE;NORDESTE;2023-01-01 00:00:00;10000');
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body, 'utf8')]);
    const o = await run(CURVA, bytes);
    expect(o.summary).toMatchObject({ encoding: 'utf-8-bom', dataset: 'curva_carga', dimensions: ['id_subsistema'], rows: 2, records: 2, rejected: 0 });
    const table = await readCsv(localFile(path.join(dir, CURVA)).stream());
    expect(table.header[0]).toBe('id_subsistema');
    expect(table.header).toEqual(HEADER.split(';'));
    expect(o.records.map((r) => r.dimensions.id_subsistema)).toEqual(['N', 'NE']);
  });

  test('CRLF line endings: no \\r left in any value, counts right', async () => {
    const lines = [HEADER, 'N;NORTE;2023-01-01 00:00:00;5000.5', 'NE;NORDESTE;2023-01-01 00:00:00;', 'S;SUL;2023-01-01 00:00:00;x'];
    const o = await run(CURVA, lines.join('\r\n') + '\r\n');
    expect(o.summary).toMatchObject({ rows: 3, records: 2, rejected: 1 });
    expect(o.summary.measures[0]).toMatchObject({ count: 1, nulls: 1, sum: 5000.5 });
    expect(JSON.stringify(o.records)).not.toContain('\\r');
    expect(o.records.map((r) => [r.labels.nom_subsistema, r.localRaw, r.measures.val_cargaenergiahomwmed]))
      .toEqual([['NORTE', '2023-01-01 00:00:00', 5000.5], ['NORDESTE', '2023-01-01 00:00:00', null]]);
    expect(reasons(o)).toEqual([[4, "val_cargaenergiahomwmed: 'x' is not a number"]]);
    expect(o.rejections[0].cells).toEqual(['S', 'SUL', '2023-01-01 00:00:00', 'x']);
    expect(readFileSync(path.join(dir, 'out', o.result.rejected!), 'utf8')).not.toContain('\r');
  });

  test('CRLF split across chunks (\\r at the end of one chunk, \\n at the start of the next)', async () => {
    const lines = [HEADER];
    for (let h = 0; h < 3000; h++) {
      const t = new Date(Date.UTC(2023, 0, 1, h)).toISOString().replace('T', ' ').slice(0, 19);
      lines.push(`S;SUL;${t};${h}.25`);
    }
    const bytes = Buffer.from(lines.join('\r\n') + '\r\n');
    async function* chunks() {
      // Cut after every \r past the first 64 KiB, and in 5,000-byte pieces before it.
      let start = 0;
      while (start < bytes.length) {
        let end = Math.min(start + 5000, bytes.length);
        if (start > 64 * 1024) end = bytes.indexOf(0x0d, start) + 1 || bytes.length;
        yield bytes.subarray(start, end);
        start = end;
      }
    }
    const table = await readCsv(chunks());
    const rows: RawRow[] = [];
    for await (const r of table.rows) rows.push(r);
    expect(rows).toHaveLength(3000);
    expect(rows.filter((r) => r.cells?.length !== 4 || JSON.stringify(r.cells).includes('\\r'))).toEqual([]);
    expect(rows[2999]).toEqual({ row: 3001, cells: ['S', 'SUL', '2023-05-05 23:00:00', '2999.25'] });
  });
});

describe('XLSX', () => {
  const NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    + 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"';
  const REL = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';
  const WORKBOOK = `<workbook ${NS}><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>`;
  const RELS = '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    + `<Relationship Id="rId1" Type="${REL}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>`;

  /**
   * A workbook whose sheet is `<worksheet><sheetData>` + `spaces` MiB of blanks + `</sheetData></worksheet>`.
   * The blanks are deflated once (1 MiB → about 1 KiB, ending on a byte-aligned sync flush) and the
   * compressed block repeated, so a sheet of hundreds of MiB costs a few hundred KiB and well under a
   * second to build. `declared` (default: the true size) is the uncompressed size the zip directory states.
   */
  function blankSheetBook(spaces: number, declared?: number): Uint8Array {
    const parts: Uint8Array[] = [];
    const zip = new Zip((err, data) => {
      if (err) throw err;
      parts.push(data);
    });
    const add = (filename: string, chunks: Uint8Array[], size: number, crc: number) => {
      const file: ZipInputFile = { filename, size, crc, compression: 8 };
      zip.add(file);
      chunks.forEach((c, i) => file.ondata!(null, new Uint8Array(c), i === chunks.length - 1));
    };
    for (const [name, text] of [['xl/workbook.xml', WORKBOOK], ['xl/_rels/workbook.xml.rels', RELS]]) {
      const data = strToU8(text);
      add(name, [deflateRawSync(data)], data.length, crc32(data));
    }
    const head = strToU8(`<worksheet ${NS}><sheetData>`);
    const tail = strToU8('</sheetData></worksheet>');
    const block = new Uint8Array(1024 * 1024).fill(0x20);
    const blockDeflated = deflateRawSync(block, { finishFlush: constants.Z_SYNC_FLUSH });
    let crc = crc32(head);
    const chunks = [deflateRawSync(head, { finishFlush: constants.Z_SYNC_FLUSH })];
    for (let i = 0; i < spaces; i++) {
      crc = crc32(block, crc);
      chunks.push(blockDeflated);
    }
    crc = crc32(tail, crc);
    chunks.push(deflateRawSync(tail));
    add('xl/worksheets/sheet1.xml', chunks, declared ?? head.length + spaces * block.length + tail.length, crc);
    zip.end();
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((offset, p) => {
      out.set(p, offset);
      return offset + p.length;
    }, 0);
    return out;
  }

  test('a zip bomb (a sheet expanding past the default limit) is refused before it is inflated', async () => {
    const mib = XLSX_MAX_EXPANDED_BYTES / (1024 * 1024) + 8;
    const bomb = blankSheetBook(mib);
    expect(bomb.length).toBeLessThan(XLSX_MAX_EXPANDED_BYTES / 500); // deflate tops out near 1032:1
    const file = write('CURVA_CARGA_2021.xlsx', bomb);
    const message = (await refusal(inspectFile(file, localFile(file)))).message;
    expect(message).toMatch(new RegExp('^the workbook parts read \\(up to xl/worksheets/sheet1\\.xml\\) declare \\d+ bytes uncompressed, '
      + `over the limit of ${XLSX_MAX_EXPANDED_BYTES} bytes: refused as a possible zip bomb`));
    const declared = Number(/declare (\d+) bytes/.exec(message)![1]);
    expect(declared).toBeGreaterThan(mib * (1024 * 1024));
    const outDir = path.join(dir, 'out');
    await refusal(convertFile(file, localFile(file), { outDir }));
    expect(filesUnder(outDir)).toEqual([]);
  });

  test('a zip bomb whose directory understates the size is refused while inflating (readXlsx, small limit)', async () => {
    // Through inspectFile this would mean inflating and parsing 2 GiB: too slow for a unit test.
    const liar = blankSheetBook(16, 1000);
    const limit = 4 * 1024 * 1024;
    const read = async () => {
      const table = await readXlsx(liar, { maxExpandedBytes: limit });
      for await (const row of table.rows) void row;
    };
    expect((await refusal(read())).message).toBe(`xl/worksheets/sheet1.xml expands past the limit of ${limit} bytes (maxExpandedBytes) `
      + 'although its zip entry declares 1000 bytes: refused as a possible zip bomb');
  });

  test('an XLSX with no sheets is refused', async () => {
    const file = write('CURVA_CARGA_2021.xlsx', zipSync({
      'xl/workbook.xml': strToU8(`<workbook ${NS}><sheets/></workbook>`),
      'xl/_rels/workbook.xml.rels': strToU8('<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>'),
    }));
    expect((await refusal(inspectFile(file, localFile(file)))).message).toBe('the workbook has no worksheets');
  });
});

describe('rows rejected with their number and reason', () => {
  test('timestamps that do not parse name the time column and the value', async () => {
    const o = await run(CURVA, csv(
      'N;NORTE;2023-01-01 00:00:00;5000.5',
      'N;NORTE;2023-13-45 25:00:00;5000.5',
      'N;NORTE;ontem;5000.5',
      'N;NORTE;2023-02-29 00:00:00;5000.5',
      'N;NORTE;;5000.5',
      'N;NORTE;2023-01-01 01:00:00;5000.5',
    ));
    expect(o.summary).toMatchObject({ rows: 6, records: 2, rejected: 4 });
    expect(reasons(o)).toEqual([
      [3, "din_instante: '2023-13-45 25:00:00' is not a valid date-time"],
      [4, "din_instante: 'ontem' is not a date or date-time (expected YYYY-MM-DD[ HH:MM:SS] or DD/MM/YYYY[ HH:MM:SS])"],
      [5, "din_instante: '2023-02-29 00:00:00' is not a valid date-time"],
      [6, 'din_instante: empty time'],
    ]);
    expect(o.rejectedCsv!.slice(1).map((r) => [r[0], r[4]])).toEqual([
      ['3', '2023-13-45 25:00:00'], ['4', 'ontem'], ['5', '2023-02-29 00:00:00'], ['6', ''],
    ]);
  });

  test('measures that are not numbers are rejected naming the measure', async () => {
    const bad = ['12,3,4', 'abc', '1e', '0x10', 'Infinity', '-Infinity', 'NaN', '1.2.3', '-'];
    const o = await run(CURVA, csv(
      'N;NORTE;2023-01-01 00:00:00;5000.5',
      ...bad.map((v, i) => `N;NORTE;2023-01-01 ${String(i + 1).padStart(2, '0')}:00:00;${v}`),
    ));
    expect(o.summary).toMatchObject({ rows: bad.length + 1, records: 1, rejected: bad.length });
    expect(reasons(o)).toEqual(bad.map((v, i) => [i + 3, `val_cargaenergiahomwmed: '${v}' is not a number`]));
  });

  test('with several measures, the reason names the one that is wrong', async () => {
    const header = 'id_subsistema;nom_subsistema;din_instante;val_cmomediasemanal;val_cmoleve;val_cmomedia;val_cmopesada';
    const o = await run('CMO_SEMANAL_2013.csv', [
      header,
      'N;NORTE;2013-01-04;10.5;9.5;10.5;11.5',
      'NE;NORDESTE;2013-01-04;10.5;9.5;dez;11.5',
    ].join('\n') + '\n');
    expect(reasons(o)).toEqual([[3, "val_cmomedia: 'dez' is not a number"]]);
  });

  test('a measure that overflows to Infinity (1e999) is rejected, not recorded as Infinity', async () => {
    const o = await run(CURVA, csv(
      'N;NORTE;2023-01-01 00:00:00;5000.5',
      'NE;NORDESTE;2023-01-01 00:00:00;1e999',
      'S;SUL;2023-01-01 00:00:00;-1e999',
    ));
    expect(o.records.map((r) => r.measures.val_cargaenergiahomwmed).filter((v) => v !== null && !Number.isFinite(v))).toEqual([]);
    expect(o.summary.measures[0]).toMatchObject({ count: 1, sum: 5000.5, min: 5000.5, max: 5000.5 });
    expect(o.summary).toMatchObject({ rows: 3, records: 1, rejected: 2 });
    expect(o.rejections.map((r) => r.row)).toEqual([3, 4]);
    for (const r of o.rejections) expect(r.reason).toMatch(/^val_cargaenergiahomwmed: .*1e999/);
  });

  test('duplicate (series, time) rows: the first is kept, the later rejected as a duplicate of it', async () => {
    const o = await run(CURVA, csv(
      'N;NORTE;2023-01-01 00:00:00;5000.5',
      'NE;NORDESTE;2023-01-01 00:00:00;10000',
      'N;Norte;2023-01-01 00:00:00;1',
      'N;NORTE;2023-01-01 01:00:00;5100',
      'NE;NORDESTE;2023-01-01 00:00:00;2',
    ));
    expect(o.summary).toMatchObject({ rows: 5, records: 3, rejected: 2, series: 2 });
    expect(o.rejections.map((r) => r.row)).toEqual([4, 6]);
    // The wording may change; the facts in it may not: which row it duplicates, the instant, which row is kept.
    expect(o.rejections[0].reason).toMatch(/^duplicate of row 2\b.*same series and time.*2023-01-01T00:00:00.*the first row is kept/);
    expect(o.rejections[1].reason).toMatch(/^duplicate of row 3\b.*same series and time.*2023-01-01T00:00:00.*the first row is kept/);
    expect(o.records.map((r) => [r.row, r.measures.val_cargaenergiahomwmed])).toEqual([[2, 5000.5], [3, 10000], [5, 5100]]);
  });

  test('an empty identity dimension is rejected', async () => {
    const o = await run(CURVA, csv(
      'N;NORTE;2023-01-01 00:00:00;5000.5',
      ';NORDESTE;2023-01-01 00:00:00;10000',
      '   ;SUL;2023-01-01 00:00:00;9000',
    ));
    expect(o.summary).toMatchObject({ rows: 3, records: 1, rejected: 2, series: 1 });
    expect(reasons(o)).toEqual([
      [3, 'id_subsistema is empty: it identifies the series'],
      [4, 'id_subsistema is empty: it identifies the series'],
    ]);
  });

  test('a file whose every row is bad: refused, and only the rejected-rows report is left', async () => {
    const file = write(CURVA, csv('N;NORTE;ontem;1', 'NE;NORDESTE;2023-01-01 00:00:00;abc'));
    const outDir = path.join(dir, 'out');
    const report = path.join(outDir, `rejected/curva_carga/${outputStem('CURVA_CARGA_2023', sourceId(sourceIdentity('CURVA_CARGA_2023.csv')))}.rejected.csv`);
    expect((await refusal(convertFile(file, localFile(file), { outDir }))).message)
      .toBe(`none of the 2 data rows is valid; reasons per row in ${report}`);
    expect(filesUnder(outDir)).toEqual([`rejected/curva_carga/${outputStem('CURVA_CARGA_2023', sourceId(sourceIdentity('CURVA_CARGA_2023.csv')))}.rejected.csv`]);
    expect(parseRejectedCsv(readFileSync(report, 'utf8')).map((r) => r.slice(0, 2))).toEqual([
      ['row', 'reason'],
      ['2', "din_instante: 'ontem' is not a date or date-time (expected YYYY-MM-DD[ HH:MM:SS] or DD/MM/YYYY[ HH:MM:SS])"],
      ['3', "val_cargaenergiahomwmed: 'abc' is not a number"],
    ]);
  });
});

test('the real CURVA_CARGA_2023.csv cut in the middle of its last line: that row rejected, the 35,039 others kept', async () => {
  const real = readFileSync(path.join(DATA, CURVA), 'utf8');
  const lastLine = real.slice(real.lastIndexOf('\n', real.length - 2) + 1, -1);
  expect(lastLine).toMatch(/^SE;SUDESTE;2023-12-31 23:00:00;\d+\.\d{8}$/);
  const cut = real.slice(0, real.length - 1 - lastLine.length) + lastLine.split(';').slice(0, 3).join(';');
  const file = write(CURVA, cut);
  const s = await inspectFile(file, localFile(file));
  expect(s).toMatchObject({ rows: 35040, records: 35039, rejected: 1, start: '2023-01-01T03:00:00.000Z', end: '2024-01-01T02:00:00.000Z' });
  const table = await readCsv(localFile(file).stream());
  const rejections: Rejection[] = [];
  await processTable(CURVA, table, resolveDataset(CURVA, table.header), { rejected: (r) => { rejections.push(r); } });
  expect(rejections.map((r) => [r.row, r.reason])).toEqual([[35041, "expected 4 fields separated by ';', found 3"]]);
});
