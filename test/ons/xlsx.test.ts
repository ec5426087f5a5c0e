import { readFileSync } from 'fs';
import * as path from 'path';
import { strToU8, unzipSync, Zip, ZipDeflate, zipSync } from 'fflate';
import { planXlsx, readXlsx, ReadXlsxOptions, XLSX_MAX_EXPANDED_BYTES } from '../../src/ons/readers/xlsx';
import { bytesAccess, RandomAccess } from '../../src/ons/readers/zip';
import { RawRow, RefusedFileError } from '../../src/ons/types';
import { ONS_DATA } from '../ons-data';
import { deflated, padded, zip64 } from './zip64';

const REAL = path.join(ONS_DATA, 'CURVA_CARGA_2021.xlsx');
const NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
  + 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"';
const REL = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';

interface Book {
  /** Sheets in workbook order; `file` is the part name under xl/worksheets/. */
  sheets?: { name: string; file: string; rows: string }[];
  shared?: string[];
  /** Raw <si> bodies, for rich text. */
  sharedXml?: string[];
  numFmts?: Record<number, string>;
  /** numFmtId of each cellXfs entry (style index = position). */
  xfs?: number[];
  date1904?: boolean;
}

/** A minimal workbook as Excel lays it out, zipped with fflate. */
function book(b: Book): Uint8Array {
  const sheets = b.sheets ?? [];
  const files: Record<string, Uint8Array> = {
    '[Content_Types].xml': strToU8('<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'),
    'xl/workbook.xml': strToU8(`<?xml version="1.0" encoding="UTF-8"?><workbook ${NS}>`
      + (b.date1904 ? '<workbookPr date1904="1"/>' : '<workbookPr/>')
      + `<sheets>${sheets.map((s, i) => `<sheet name="${s.name}" sheetId="${i + 1}" r:id="rId${i + 1}"/>`).join('')}</sheets></workbook>`),
    'xl/_rels/workbook.xml.rels': strToU8('<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
      + sheets.map((s, i) => `<Relationship Id="rId${i + 1}" Type="${REL}/worksheet" Target="worksheets/${s.file}"/>`).join('')
      + `<Relationship Id="rIdS" Type="${REL}/sharedStrings" Target="sharedStrings.xml"/>`
      + `<Relationship Id="rIdT" Type="${REL}/styles" Target="/xl/styles.xml"/></Relationships>`),
  };
  for (const s of sheets) files[`xl/worksheets/${s.file}`] = strToU8(`<worksheet ${NS}><sheetData>${s.rows}</sheetData></worksheet>`);
  const si = [...(b.shared ?? []).map((t) => `<t>${t}</t>`), ...(b.sharedXml ?? [])];
  files['xl/sharedStrings.xml'] = strToU8(`<sst ${NS}>${si.map((x) => `<si>${x}</si>`).join('')}</sst>`);
  const fmts = Object.entries(b.numFmts ?? {}).map(([id, code]) => `<numFmt numFmtId="${id}" formatCode="${code}"/>`).join('');
  const xfs = (b.xfs ?? [0]).map((id) => `<xf numFmtId="${id}" fontId="0"/>`).join('');
  files['xl/styles.xml'] = strToU8(`<styleSheet ${NS}><numFmts>${fmts}</numFmts>`
    + `<cellStyleXfs><xf numFmtId="14"/></cellStyleXfs><cellXfs>${xfs}</cellXfs></styleSheet>`);
  return zipSync(files);
}

const one = (rows: string, extra: Book = {}) => book({ sheets: [{ name: 'Sheet1', file: 'sheet1.xml', rows }], ...extra });
const inl = (ref: string, text: string) => `<c r="${ref}" t="inlineStr"><is><t>${text}</t></is></c>`;
const num = (ref: string, v: number | string, s?: number) => `<c r="${ref}"${s === undefined ? '' : ` s="${s}"`}><v>${v}</v></c>`;
const HEADER = `<row r="1">${inl('A1', ' id ')}${inl('B1', 'nome')}${inl('C1', 'valor')}</row>`;

async function readAll(data: Uint8Array, options?: ReadXlsxOptions) {
  const table = await readXlsx(data, options);
  const rows: RawRow[] = [];
  for await (const r of table.rows) rows.push(r);
  return { ...table, rows };
}

async function refusal(p: Promise<unknown>): Promise<RefusedFileError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(RefusedFileError);
  return e as RefusedFileError;
}

/** Overwrites the uncompressed size of `name` in its local header and in the central directory. */
function lieAboutSize(zip: Uint8Array, name: string, size: number): Uint8Array {
  const out = zip.slice();
  const dv = new DataView(out.buffer);
  const at = (o: number, len: number) => new TextDecoder().decode(out.subarray(o, o + len));
  let patched = 0;
  for (let o = 0; o + 46 < out.length; o++) {
    const sig = dv.getUint32(o, true);
    if (sig === 0x04034b50 && at(o + 30, dv.getUint16(o + 26, true)) === name) dv.setUint32(o + 22, size, true), patched++;
    if (sig === 0x02014b50 && at(o + 46, dv.getUint16(o + 28, true)) === name) dv.setUint32(o + 24, size, true), patched++;
  }
  expect(patched).toBe(2);
  return out;
}

describe('readXlsx on the real CURVA_CARGA_2021.xlsx', () => {
  let table: Awaited<ReturnType<typeof readAll>>;
  beforeAll(async () => {
    table = await readAll(readFileSync(REAL));
  });

  test('header, sheet and row count', () => {
    expect(table.format).toBe('xlsx');
    expect(table.sheet).toBe('Sheet1');
    expect(table.header).toEqual(['id_subsistema', 'nom_subsistema', 'din_instante', 'val_cargaenergiahomwmed']);
    expect(table.rows).toHaveLength(35040);
    expect(table.rows[0].row).toBe(2);
    expect(table.rows[35039].row).toBe(35041);
  });

  test('first and last rows', () => {
    const [id, name, time, value] = table.rows[0].cells!;
    expect([id, name, time]).toEqual(['N', 'NORTE', '2021-01-01 00:00:00']);
    expect(typeof value).toBe('number');
    expect(table.rows[35039].cells![2]).toBe('2021-12-31 23:00:00');
  });

  test('the measure sums to the independent reference', () => {
    const sum = table.rows.reduce((s, r) => s + (r.cells![3] as number), 0);
    expect(Math.abs(sum - 600233866.9048653) / 600233866.9048653).toBeLessThan(1e-6);
  });

  test('times are whole hours (float serials rounded), 8,760 distinct', () => {
    const times = table.rows.map((r) => r.cells![2] as string);
    expect(times.every((t) => /^\d{4}-\d{2}-\d{2} \d{2}:00:00$/.test(t))).toBe(true);
    expect(new Set(times).size).toBe(8760);
    expect(times[4]).toBe('2021-01-01 01:00:00'); // stored as 44197.04166666666
  });
});

describe('readXlsx cells', () => {
  test('text-cell measures stay strings; numbers, booleans, gaps, padding, row numbers', async () => {
    const t = await readAll(one(HEADER
      + `<row r="2">${inl('A2', 'N')}<c r="B2" t="s"><v>0</v></c>${inl('C2', '0E-8')}</row>`
      + `<row r="3">${inl('A3', 'S')}<c r="C3" t="str"><v>123.45</v></c></row>`
      + '<row r="4"><c r="A4" s="0"/></row>' // styled but empty: skipped
      + `<row r="7">${num('A7', 42)}<c r="B7" t="b"><v>1</v></c>${num('C7', '-1.5E-3')}${num('E7', 7)}</row>`
      + `<row r="8">${inl('B8', 'só B')}</row>`, { shared: ['NORTE'] }));
    expect(t.header).toEqual(['id', 'nome', 'valor']);
    expect(t.rows).toEqual([
      { row: 2, cells: ['N', 'NORTE', '0E-8'] },
      { row: 3, cells: ['S', null, '123.45'] },
      { row: 7, cells: [42, 'TRUE', -0.0015, null, 7] },
      { row: 8, cells: [null, 'só B', null] },
    ]);
  });

  test('rich text: runs concatenated, preserved spaces kept, phonetic runs dropped', async () => {
    const t = await readAll(one(HEADER
      + '<row r="2"><c r="A2" t="inlineStr"><is><r><t>NORD</t></r><r><rPr><b/></rPr><t>ESTE</t></r></is></c>'
      + '<c r="B2" t="s"><v>0</v></c><c r="C2" t="inlineStr"><is><t xml:space="preserve"> a &amp; b </t></is></c>'
      + '<c r="D2" t="inlineStr"><is><t>漢字</t><rPh sb="0" eb="2"><t>カンジ</t></rPh></is></c></row>',
    { sharedXml: ['<r><t>SUDESTE</t></r><r><t xml:space="preserve"> / CO</t></r><rPh sb="0" eb="1"><t>x</t></rPh>'] }));
    expect(t.rows[0].cells).toEqual(['NORDESTE', 'SUDESTE / CO', ' a & b ', '漢字']);
  });

  test('dates: custom and built-in formats give wall-clock text; other formats stay numbers', async () => {
    const t = await readAll(one(HEADER
      + `<row r="2">${num('A2', 44197.04166666666, 1)}${num('B2', 44561.5, 2)}${num('C2', 44197.25, 3)}</row>`
      + `<row r="3">${num('A3', 44197, 4)}${num('B3', 1, 2)}${num('C3', 0.75, 5)}</row>`,
    { numFmts: { 164: 'dd/mm/yyyy hh:mm', 165: '0.00&quot; dias&quot;', 166: '[Red]#,##0' }, xfs: [0, 164, 14, 165, 166, 20] }));
    expect(t.rows.map((r) => r.cells)).toEqual([
      ['2021-01-01 01:00:00', '2021-12-31 12:00:00', 44197.25],
      [44197, '1900-01-01 00:00:00', '1899-12-31 18:00:00'],
    ]);
  });

  test('date1904 workbooks', async () => {
    const t = await readAll(one(`${HEADER}<row r="2">${num('A2', 42735, 1)}${num('B2', 0, 1)}</row>`, { date1904: true, xfs: [0, 22] }));
    expect(t.rows[0].cells).toEqual(['2021-01-01 00:00:00', '1904-01-01 00:00:00', null]);
  });
});

test('a workbook from a streaming zip writer (sizes in data descriptors) reads the same', async () => {
  const plain = one(`${HEADER}<row r="2">${inl('A2', 'N')}${num('C2', 1.5)}</row>`);
  const parts: Uint8Array[] = [];
  const zip = new Zip((err, chunk) => {
    if (err) throw err;
    parts.push(chunk);
  });
  for (const [name, bytes] of Object.entries(unzipSync(plain))) {
    const entry = new ZipDeflate(name);
    zip.add(entry);
    entry.push(bytes, true);
  }
  zip.end();
  const streamed = new Uint8Array(Buffer.concat(parts));
  expect(Math.floor(streamed[6] / 8) % 2).toBe(1); // general purpose flag bit 3: sizes follow the data
  expect((await readAll(streamed)).rows).toEqual((await readAll(plain)).rows);
});

describe('readXlsx sheet choice', () => {
  // Workbook order differs from part names: the first sheet lives in sheet2.xml.
  const data = book({
    sheets: [
      { name: 'Resumo', file: 'sheet2.xml', rows: `<row r="1">${inl('A1', 'resumo')}</row><row r="2">${num('A2', 1)}</row>` },
      { name: 'Dados', file: 'sheet1.xml', rows: `<row r="1">${inl('A1', 'dados')}</row><row r="2">${num('A2', 2)}</row>` },
    ],
  });

  test('default is the first sheet in workbook order', async () => {
    const t = await readAll(data);
    expect([t.sheet, t.header, t.rows[0].cells]).toEqual(['Resumo', ['resumo'], [1]]);
  });

  test('by name and by index', async () => {
    for (const sheet of ['Dados', 1]) {
      const t = await readAll(data, { sheet });
      expect([t.sheet, t.header, t.rows[0].cells]).toEqual(['Dados', ['dados'], [2]]);
    }
  });

  test('unknown name or index is refused, naming the sheets', async () => {
    expect((await refusal(readXlsx(data, { sheet: 'Plan1' }))).message).toBe("sheet 'Plan1' does not exist: the workbook has 'Resumo', 'Dados'");
    expect((await refusal(readXlsx(data, { sheet: 2 }))).message).toMatch(/sheet index 2 does not exist.*2 sheet\(s\).*'Resumo', 'Dados'/);
  });

  test('a workbook without sheets is refused', async () => {
    expect((await refusal(readXlsx(book({})))).message).toBe('the workbook has no worksheets');
  });

  test('an empty sheet is refused', async () => {
    expect((await refusal(readXlsx(one('')))).message).toMatch(/sheet 'Sheet1' is empty: expected a header row/);
  });
});

describe('readXlsx refusals', () => {
  test('not a zip', async () => {
    expect((await refusal(readXlsx(strToU8('id_subsistema;val\nN;1\n')))).message)
      .toMatch(/^not an XLSX file: an XLSX is a zip archive.*first bytes: 69 64 5f 73/);
    const xls = new Uint8Array(512);
    xls.set([0xd0, 0xcf, 0x11, 0xe0]);
    expect((await refusal(readXlsx(xls))).message).toMatch(/legacy binary \.xls: save it as \.xlsx/);
    expect((await refusal(readXlsx(new Uint8Array(0)))).message).toMatch(/first bytes: none/);
  });

  test('a damaged zip', async () => {
    const garbage = new Uint8Array(4096).map((_, i) => (i * 7919) % 251);
    garbage.set([0x50, 0x4b, 0x03, 0x04]);
    expect((await refusal(readXlsx(garbage))).message).toMatch(/zip archive is damaged or truncated/);
    const truncated = one(HEADER).subarray(0, 300);
    expect((await refusal(readXlsx(truncated))).message).toMatch(/damaged or truncated/);
  });

  test('a zip that is not a workbook', async () => {
    expect((await refusal(readXlsx(zipSync({ 'data.csv': strToU8('a;b\n1;2\n') })))).message)
      .toBe('not an XLSX workbook: the zip archive has no xl/workbook.xml (it holds data.csv)');
  });

  test('a sheet whose part is missing', async () => {
    const files = unzipSync(one(HEADER));
    delete files['xl/worksheets/sheet1.xml'];
    expect((await refusal(readXlsx(zipSync(files)))).message).toBe("sheet 'Sheet1' cannot be found: its relationship rId1 "
      + 'points to xl/worksheets/sheet1.xml in xl/_rels/workbook.xml.rels, and that is not in the zip archive');
  });

  test('malformed sheet XML', async () => {
    expect((await refusal(readXlsx(one('<row r="1"><c r="A1"><v>1</c></row>')))).message)
      .toMatch(/xl\/worksheets\/sheet1.xml is not well-formed XML/);
  });

  describe('zip bomb', () => {
    // ~2 MB of sheet XML that deflates to a few KB (rows and cells without `r` are numbered in order).
    const rows = '<row><c t="inlineStr"><is><t>N</t></is></c></row>'.repeat(40000);
    const bomb = one(HEADER + rows);
    const limit = 1_000_000;

    test('the fixture is a real (if small) bomb that reads fine under the default limit', async () => {
      expect(XLSX_MAX_EXPANDED_BYTES).toBe(2 * 1024 * 1024 * 1024);
      expect(bomb.length).toBeLessThan(limit / 20);
      const t = await readAll(bomb);
      expect(t.rows).toHaveLength(40000);
      expect(t.rows[39999]).toEqual({ row: 40001, cells: ['N', null, null] });
    });

    test('refused up front from the declared sizes', async () => {
      expect((await refusal(readXlsx(bomb, { maxExpandedBytes: limit }))).message).toMatch(
        /declare \d+ bytes uncompressed, over the limit of 1000000 bytes: refused as a possible zip bomb/);
    });

    test('refused while inflating when the zip directory lies about the size', async () => {
      const liar = lieAboutSize(bomb, 'xl/worksheets/sheet1.xml', 1000);
      expect((await readAll(liar)).rows).toHaveLength(40000); // the lie alone does not break reading
      expect((await refusal(readAll(liar, { maxExpandedBytes: limit }))).message).toBe('xl/worksheets/sheet1.xml expands past '
        + 'the limit of 1000000 bytes (maxExpandedBytes) although its zip entry declares 1000 bytes: refused as a possible zip bomb');
    });
  });
});

describe('random access', () => {
  const real = new Uint8Array(readFileSync(REAL));
  const parts = unzipSync(real);
  /** Independent figures of the real file: rows and the measure's sum (reference-figures.json). */
  const check = async (data: Uint8Array | RandomAccess) => {
    const t = await readAll(data as Uint8Array);
    expect(t.header).toEqual(['id_subsistema', 'nom_subsistema', 'din_instante', 'val_cargaenergiahomwmed']);
    expect(t.rows).toHaveLength(35040);
    expect(t.rows[35039].cells!.slice(0, 3)).toEqual(['SE', 'SUDESTE', '2021-12-31 23:00:00']);
    const sum = t.rows.reduce((n, r) => n + (r.cells![3] as number), 0);
    expect(Math.abs(sum - 600233866.9048653) / 600233866.9048653).toBeLessThan(1e-6);
  };

  test('the real workbook is read in reads of at most 256 KiB, never the whole file', async () => {
    const reads: number[] = [];
    const inner = bytesAccess(real);
    await check({ size: inner.size, read: (p, n) => (reads.push(n), inner.read(p, n)) });
    expect(Math.max(...reads)).toBeLessThanOrEqual(256 * 1024);
    expect(reads.reduce((a, b) => a + b, 0)).toBeLessThan(real.length + 128 * 1024); // each byte about once, plus the tail
  });

  test('the real workbook rewritten as ZIP64 reads the same', async () => {
    const chunks = zip64(Object.entries(parts).map(([name, bytes]) => deflated(name, bytes)));
    await check(new Uint8Array(Buffer.concat(chunks)));
  });

  test('the real workbook stored (no compression) reads the same', async () => {
    const stored = zipSync(parts, { level: 0 });
    expect(stored.length).toBeGreaterThan(6_000_000);
    await check(stored);
  });

  test('planXlsx: the parts read and their declared sizes, without inflating the sheet', async () => {
    const plan = await planXlsx(real);
    const names = ['xl/workbook.xml', 'xl/_rels/workbook.xml.rels', 'xl/worksheets/sheet1.xml', 'xl/sharedStrings.xml', 'xl/styles.xml'];
    expect(plan).toEqual({ sheet: 'Sheet1', parts: names.map((name) => ({ name, size: parts[name].length })), expandedBytes: 6195356 });
    expect(names.reduce((n, name) => n + parts[name].length, 0)).toBe(6195356);
  });

  test('planXlsx on a ZIP64 workbook whose real sheet is padded to 5 GiB reads only its directory and workbook', async () => {
    const sheet = new TextDecoder().decode(parts['xl/worksheets/sheet1.xml']);
    const cut = sheet.indexOf('</sheetData>');
    const big = padded('xl/worksheets/sheet1.xml', strToU8(sheet.slice(0, cut)), 5 * 1024, strToU8(sheet.slice(cut)));
    const others = Object.entries(parts).filter(([name]) => name !== 'xl/worksheets/sheet1.xml').map(([name, bytes]) => deflated(name, bytes));
    const data = new Uint8Array(Buffer.concat(zip64([...others, big])));
    let read = 0;
    const inner = bytesAccess(data);
    const plan = await planXlsx({ size: inner.size, read: (p, n) => (read += n, inner.read(p, n)) });
    expect(plan.expandedBytes).toBe(6195356 + 5 * 1024 ** 3);
    expect(read).toBeLessThan(80 * 1024);
    expect((await refusal(readXlsx(data))).message).toMatch(/^the workbook parts read \(up to xl\/worksheets\/sheet1.xml\) declare 5374902516 bytes/); // workbook, rels, sheet
  });

  test('an encrypted part is refused with the reason', async () => {
    const out = real.slice();
    const dv = new DataView(out.buffer);
    for (let o = 0; o + 46 < out.length; o++) {
      if (dv.getUint32(o, true) === 0x02014b50 && new TextDecoder().decode(out.subarray(o + 46, o + 46 + dv.getUint16(o + 28, true))) === 'xl/workbook.xml') {
        dv.setUint16(o + 8, dv.getUint16(o + 8, true) + 1, true);
      }
    }
    expect((await refusal(readXlsx(out))).message).toBe('not a readable XLSX: xl/workbook.xml is encrypted; save the workbook without a password');
  });
});
