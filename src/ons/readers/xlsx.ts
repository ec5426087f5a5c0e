/**
 * XLSX reader: one worksheet of an Office Open XML workbook as a RawTable, read by random access (see zip.ts): the
 * zip directory from the file's tail, then each part inflated and parsed chunk by chunk, so memory does not grow with
 * the sheet. The shared strings are the exception: cells refer to them by index, so they are held in memory (their
 * part counts against the expanded-size limit, which bounds them).
 */
import { SaxesParser } from 'saxes';
import { bytesAccess, entryPump, RandomAccess, readZipDirectory, ZipDirectory } from './zip';
import { XLSX_MAX_EXPANDED_BYTES } from '../limits';
import { Cell, ProgressListener, RawRow, RawTable, RefusedFileError } from '../types';

export { XLSX_MAX_EXPANDED_BYTES } from '../limits';

/**
 * Bytes of CSV that take the domain core as long to read as one expanded byte of an XLSX sheet: `npm run bench:xlsx`
 * measured 1.66 (inspect of CURVA_CARGA_2021.xlsx repeated to 105 MB of sheet, against the CSV of the same rows),
 * rounded up so a workbook near the Lambda threshold goes to Batch rather than time out. The router sizes a workbook
 * with it.
 */
export const XLSX_CSV_BYTES_PER_EXPANDED_BYTE = 2;

export interface ReadXlsxOptions {
  /** Sheet name, or 0-based index in workbook order. Default: the first sheet. */
  readonly sheet?: string | number;
  /** Refuse the file when the parts read declare, or actually expand to, more than this many bytes. */
  readonly maxExpandedBytes?: number;
  /**
   * Called as the shared strings are inflated, then as the sheet's rows are consumed, with the part's bytes inflated
   * so far against its uncompressed size in the zip directory.
   */
  readonly onProgress?: ProgressListener;
}

/** What reading a workbook's sheet takes, from the zip directory and the workbook part alone (no sheet inflated). */
export interface XlsxPlan {
  /** The sheet read (its name). */
  readonly sheet: string;
  /** The parts the reader inflates (workbook, relationships, sheet, shared strings, styles) with their declared sizes. */
  readonly parts: ReadonlyArray<{ readonly name: string; readonly size: number }>;
  /** Their declared uncompressed total: what the limit is compared with. */
  readonly expandedBytes: number;
}

/** Excel's last column is XFD; cells past it are ignored so a bad `r` cannot create a huge row. */
const MAX_COLUMNS = 16384;

interface Handlers {
  open?(name: string, attrs: Record<string, string>): void;
  close?(name: string): void;
  text?(text: string): void;
}

interface Workbook {
  readonly file: RandomAccess;
  readonly directory: ZipDirectory;
  readonly sheet: string;
  readonly sheetPath: string;
  readonly sharedStringsPath: string;
  readonly stylesPath: string;
  readonly date1904: boolean;
  /** Counts each part's declared size against the limit before it is inflated. */
  budget(name: string): void;
  /** Streams a part (if present) through a sax parser, counting the bytes it expands to; reports progress under `phase`, if given. */
  parse(name: string, h: Handlers, phase?: string): Promise<void>;
  /**
   * Like parse, pulled: each call of the pump inflates and parses one chunk; false when the part is done.
   * `onBytes` gets the size of each chunk inflated.
   */
  pump(name: string, h: Handlers, onBytes?: (bytes: number) => void): Promise<() => Promise<boolean>>;
}

/** Opens the workbook: the zip directory, the workbook and its relationships, the sheet chosen; nothing else inflated. */
async function openWorkbook(data: Uint8Array | RandomAccess, options: ReadXlsxOptions): Promise<Workbook> {
  const limit = options.maxExpandedBytes ?? XLSX_MAX_EXPANDED_BYTES;
  const file = data instanceof Uint8Array ? bytesAccess(data) : data;
  checkZipSignature(await file.read(0, 4), await file.size());
  const directory = await readZipDirectory(file);
  const { entries } = directory;

  let declaredTotal = 0;
  let expanded = 0;
  const budget = (name: string) => {
    declaredTotal += entries.get(name)?.size ?? 0;
    if (declaredTotal > limit) {
      throw new RefusedFileError(`the workbook parts read (up to ${name}) declare ${declaredTotal} bytes uncompressed, over the `
        + `limit of ${limit} bytes: refused as a possible zip bomb; if the file is genuine, raise the limit `
        + '(maxExpandedBytes, or --max-expanded-mb of the command)');
    }
  };
  const pump = async (name: string, h: Handlers, onBytes?: (bytes: number) => void) => {
    const entry = entries.get(name)!;
    const parser = saxParser(name, h);
    const decoder = new TextDecoder();
    return entryPump(file, directory, entry, (chunk, final) => {
      expanded += chunk.length;
      onBytes?.(chunk.length);
      if (expanded > limit) {
        throw new RefusedFileError(`${name} expands past the limit of ${limit} bytes (maxExpandedBytes) although its zip entry `
          + `declares ${entry.size} bytes: refused as a possible zip bomb`);
      }
      parser.write(decoder.decode(chunk, { stream: !final }));
      if (final) parser.close();
    });
  };
  const parse = async (name: string, h: Handlers, phase?: string) => {
    if (!entries.has(name)) return;
    budget(name);
    const { onProgress } = options;
    if (!onProgress || !phase) {
      const next = await pump(name, h);
      while (await next());
      return;
    }
    let bytes = 0;
    const total = entries.get(name)!.size;
    const next = await pump(name, h, (n) => { bytes += n; });
    for (let more = true; more;) {
      more = await next();
      onProgress({ phase, done: bytes, total, unit: 'bytes' });
    }
  };

  // Workbook: sheet names in order, their relationship ids, the date system.
  if (!entries.has('xl/workbook.xml')) {
    const names = [...entries.keys()].slice(0, 5).join(', ');
    throw new RefusedFileError(`not an XLSX workbook: the zip archive has no xl/workbook.xml (it holds ${names || 'nothing'})`);
  }
  const sheets: { name: string; rid: string }[] = [];
  let date1904 = false;
  await parse('xl/workbook.xml', {
    open(name, a) {
      if (name === 'sheet') sheets.push({ name: a.name, rid: a[Object.keys(a).find((k) => k.endsWith(':id')) ?? 'r:id'] });
      if (name === 'workbookPr') date1904 = a.date1904 === '1' || a.date1904 === 'true';
    },
  });
  const rels = new Map<string, { type: string; path: string }>();
  await parse('xl/_rels/workbook.xml.rels', {
    open(name, a) {
      if (name === 'Relationship') rels.set(a.Id, { type: a.Type ?? '', path: resolvePart(a.Target ?? '') });
    },
  });
  const relPath = (type: string, fallback: string) =>
    [...rels.values()].find((r) => r.type.endsWith('/' + type))?.path ?? fallback;

  // Sheet choice.
  if (sheets.length === 0) throw new RefusedFileError('the workbook has no worksheets');
  const list = sheets.map((s) => `'${s.name}'`).join(', ');
  const wanted = options.sheet ?? 0;
  const sheet = typeof wanted === 'number' ? sheets[wanted] : sheets.find((s) => s.name === wanted);
  if (!sheet) {
    throw new RefusedFileError(typeof wanted === 'number'
      ? `sheet index ${wanted} does not exist: the workbook has ${sheets.length} sheet(s) (0-based): ${list}`
      : `sheet '${wanted}' does not exist: the workbook has ${list}`);
  }
  const sheetPath = rels.get(sheet.rid)?.path;
  if (!sheetPath || !entries.has(sheetPath)) {
    throw new RefusedFileError(`sheet '${sheet.name}' cannot be found: its relationship ${sheet.rid} points to `
      + `${sheetPath ?? 'nothing'} in xl/_rels/workbook.xml.rels, and that is not in the zip archive`);
  }
  return {
    file,
    directory,
    sheet: sheet.name,
    sheetPath,
    sharedStringsPath: relPath('sharedStrings', 'xl/sharedStrings.xml'),
    stylesPath: relPath('styles', 'xl/styles.xml'),
    date1904,
    budget,
    parse,
    pump,
  };
}

/**
 * What reading the sheet will inflate, from the zip directory and the (small) workbook part: the router compares it
 * with the limit and the Lambda threshold before any sheet byte is read. Refuses as readXlsx does (damaged zip, no
 * workbook, missing sheet), except for the limit, which is the caller's to compare.
 */
export async function planXlsx(data: Uint8Array | RandomAccess, options: Pick<ReadXlsxOptions, 'sheet'> = {}): Promise<XlsxPlan> {
  const book = await openWorkbook(data, { sheet: options.sheet, maxExpandedBytes: Number.POSITIVE_INFINITY });
  const { entries } = book.directory;
  const names = ['xl/workbook.xml', 'xl/_rels/workbook.xml.rels', book.sheetPath, book.sharedStringsPath, book.stylesPath];
  const parts = [...new Set(names)].filter((n) => entries.has(n)).map((name) => ({ name, size: entries.get(name)!.size }));
  return { sheet: book.sheet, parts, expandedBytes: parts.reduce((n, p) => n + p.size, 0) };
}

/** Reads one sheet: `data` is the whole file, or random access to it (memory then stays bounded; see the module note). */
export async function readXlsx(data: Uint8Array | RandomAccess, options: ReadXlsxOptions = {}): Promise<RawTable> {
  const book = await openWorkbook(data, options);
  const { sheetPath, date1904 } = book;
  book.budget(sheetPath);

  // Shared strings and styles (the date formats).
  const shared = await readSharedStrings(book);
  const dateStyles = await readDateStyles(book);

  // The sheet: sax events build rows into `queue`; pump() feeds the parser one compressed chunk.
  const queue: RawRow[] = [];
  let rowNum = 0;
  let cells: Cell[] = [];
  let col = -1;
  let type = 'n';
  let style = 0;
  let value = '';
  let inline = ''; // text of <is>
  let capture: 'v' | 't' | undefined;
  let phonetic = false;
  let inflated = 0; // bytes of the sheet
  const pump = await book.pump(sheetPath, {
    open(name, a) {
      if (name === 'c') {
        const c = a.r ? columnIndex(a.r) : -1;
        col = c >= 0 ? c : col + 1;
        type = a.t ?? 'n';
        style = a.s ? Number(a.s) : 0;
        value = inline = '';
      } else if (name === 'v') {
        capture = 'v';
      } else if (name === 't' && !phonetic) {
        capture = 't';
      } else if (name === 'rPh') {
        phonetic = true;
      } else if (name === 'row') {
        rowNum = a.r ? Number(a.r) : rowNum + 1;
        cells = [];
        col = -1;
      }
    },
    text(t) {
      if (capture === 'v') value += t;
      else if (capture === 't') inline += t;
    },
    close(name) {
      if (name === 'v' || name === 't') {
        capture = undefined;
      } else if (name === 'rPh') {
        phonetic = false;
      } else if (name === 'c') {
        if (col < MAX_COLUMNS) cells[col] = cellValue();
      } else if (name === 'row') {
        let empty = true;
        for (let i = 0; i < cells.length; i++) {
          if (cells[i] === undefined) cells[i] = null;
          else if (cells[i] !== null) empty = false;
        }
        if (!empty) queue.push({ row: rowNum, cells });
      }
    },
  }, (n) => { inflated += n; });
  const cellValue = (): Cell => {
    if (value === '' && type !== 'inlineStr') return null;
    let v: Cell;
    switch (type) {
      case 's':
        v = shared[Number(value)];
        if (v === undefined) throw new RefusedFileError(`${sheetPath}: row ${rowNum} refers to shared string ${value}, which does not exist`);
        break;
      case 'inlineStr': v = inline || value; break;
      case 'b': v = value === '1' ? 'TRUE' : value === '0' ? 'FALSE' : value; break;
      case 'n': {
        const n = value.trim() === '' ? NaN : Number(value);
        if (Number.isNaN(n)) return value; // not a number after all: leave it to interpretation
        return dateStyles.has(style) ? wallClock(n, date1904) : n;
      }
      default: v = value; // 'str' (formula text), 'e' (error such as #N/A), 'd' (ISO date text)
    }
    return v === '' ? null : v;
  };

  let ended = false;
  while (queue.length === 0 && !ended) ended = !(await pump());
  const first = queue.shift();
  if (!first) throw new RefusedFileError(`sheet '${book.sheet}' is empty: expected a header row`);
  const header = first.cells!.map((c) => String(c ?? '').trim());

  const { onProgress } = options;
  const phase = `sheet '${book.sheet}'`;
  const total = book.directory.entries.get(sheetPath)!.size;
  let reported = 0;
  async function* rows(): AsyncGenerator<RawRow> {
    for (;;) {
      for (const r of queue.splice(0)) {
        while (r.cells!.length < header.length) r.cells!.push(null);
        yield r;
      }
      // The rows of everything inflated so far have been consumed (the queue is drained before each pump).
      if (onProgress && inflated > reported) {
        reported = inflated;
        onProgress({ phase, done: inflated, total, unit: 'bytes' });
      }
      if (ended) return;
      ended = !(await pump());
    }
  }
  return { format: 'xlsx', sheet: book.sheet, header, rows: rows() };
}

function checkZipSignature(data: Uint8Array, size: number): void {
  if (size >= 22 && data[0] === 0x50 && data[1] === 0x4b) return;
  const bytes = Array.from(data.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  const hint = data[0] === 0xd0 && data[1] === 0xcf ? ' It looks like a legacy binary .xls: save it as .xlsx.' : '';
  throw new RefusedFileError('not an XLSX file: an XLSX is a zip archive, but this file does not start with the zip '
    + `signature "PK" (first bytes: ${bytes || 'none'}).${hint}`);
}

/** A relationship target under xl/ as a zip entry name ("worksheets/a.xml", "/xl/x.xml", "../xl/x.xml"). */
function resolvePart(target: string): string {
  const segs = target.startsWith('/') ? [] : ['xl'];
  for (const s of target.split('/')) {
    if (s === '..') segs.pop();
    else if (s && s !== '.') segs.push(s);
  }
  return segs.join('/');
}

/** 0-based column of an A1 reference, or -1 when it has no letters. */
function columnIndex(ref: string): number {
  let n = 0;
  for (let i = 0; i < ref.length; i++) {
    let c = ref.charCodeAt(i);
    if (c >= 97) c -= 32; // lower case
    if (c < 65 || c > 90) break;
    n = n * 26 + c - 64;
  }
  return n - 1;
}

/**
 * An Excel serial as the wall-clock text YYYY-MM-DD HH:MM:SS, rounded to the second (serials are float:
 * 44197.04166666666 is 01:00). Serials below 60 get a day added for Excel's fictitious 1900-02-29 (serial 60 itself
 * shows as 1900-02-28).
 */
function wallClock(serial: number, date1904: boolean): Cell {
  const days = date1904 ? serial + 1462 : serial < 60 ? serial + 1 : serial;
  const d = new Date(Math.round((days - 25569) * 86400) * 1000);
  if (Number.isNaN(d.getTime())) return serial;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} `
    + `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

async function readSharedStrings(book: Workbook): Promise<string[]> {
  const out: string[] = [];
  let text = '';
  let inT = false;
  let phonetic = false;
  await book.parse(book.sharedStringsPath, {
    open(name) {
      if (name === 'si') text = '';
      else if (name === 'rPh') phonetic = true;
      else if (name === 't') inT = !phonetic;
    },
    text(t) {
      if (inT) text += t;
    },
    close(name) {
      if (name === 'si') out.push(text);
      else if (name === 'rPh') phonetic = false;
      else if (name === 't') inT = false;
    },
  }, 'shared strings');
  return out;
}

/** Indexes (cell `s` values) of the cellXfs styles whose number format is a date or time. */
async function readDateStyles(book: Workbook): Promise<Set<number>> {
  const codes = new Map<number, string>();
  const xfs: number[] = [];
  let inCellXfs = false;
  await book.parse(book.stylesPath, {
    open(name, a) {
      if (name === 'numFmt') codes.set(Number(a.numFmtId), a.formatCode ?? '');
      else if (name === 'cellXfs') inCellXfs = true;
      else if (name === 'xf' && inCellXfs) xfs.push(Number(a.numFmtId ?? 0));
    },
    close(name) {
      if (name === 'cellXfs') inCellXfs = false;
    },
  });
  const isDate = (id: number) => {
    const code = codes.get(id);
    if (code === undefined) return (id >= 14 && id <= 22) || (id >= 45 && id <= 47);
    // date/time letters outside "quoted text", [brackets] (colours, locales), \escapes and _/* fillers
    return /[ymdhs]/i.test(code.replace(/"[^"]*"|\[[^\]]*\]|\\.|[_*]./g, ''));
  };
  const out = new Set<number>();
  for (let i = 0; i < xfs.length; i++) if (isDate(xfs[i])) out.add(i);
  return out;
}

/** A parser reporting local element names (prefixes such as x: dropped) and failing with RefusedFileError. */
function saxParser(path: string, h: Handlers): SaxesParser {
  const p = new SaxesParser({ position: false });
  const local = (n: string) => n.slice(n.indexOf(':') + 1);
  p.on('error', (e) => {
    throw new RefusedFileError(`not a readable XLSX: ${path} is not well-formed XML (${e.message})`);
  });
  if (h.open) p.on('opentag', (t) => h.open!(local(t.name), t.attributes as Record<string, string>));
  if (h.close) p.on('closetag', (t) => h.close!(local(t.name)));
  if (h.text) {
    p.on('text', h.text);
    p.on('cdata', h.text);
  }
  return p;
}
