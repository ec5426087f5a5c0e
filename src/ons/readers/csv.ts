import { isAscii, isUtf8 } from 'node:buffer';
import { TextDecoder } from 'node:util';
import { DecimalComma, decimalHint } from '../number';
import { clip } from '../time';
import { Cell, CsvLines, ProgressListener, RawRow, RawTable, RefusedFileError } from '../types';

/** Longest line accepted, in characters: a longer data line is rejected, a longer header refuses the file. */
export const CSV_MAX_LINE_CHARS = 1024 * 1024;

/** Bytes sniffed for a BOM and binary content. */
const SNIFF_BYTES = 64 * 1024;
/** Data lines sampled to tell comma decimals from dot decimals. */
const LOCALE_SAMPLE_LINES = 200;
/** Characters of data lines read ahead, past the sample, while no number has told the decimal style. */
const LOCALE_LOOKAHEAD_CHARS = 4 * 1024 * 1024;
/** Windows-1252 at 0x80-0x9F (what Excel and Windows in Brazil write), where Node's latin1 has C1 controls; 5 are unassigned. */
const CP1252 = '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f'
  + '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';
const DELIMITERS = [';', ',', '\t', '|'] as const;

/**
 * Reads a CSV as a stream: memory holds one chunk and one line, whatever the file's size.
 * Detects the encoding (see utf8Lines: UTF-8 with or without BOM, else Latin-1; UTF-16LE with BOM),
 * the delimiter (from the header: `;` as ONS writes, or `,`, tab, `|`), CRLF or LF, and the decimal
 * style (see detectDecimalComma). Double-quoted fields are understood within one line; ONS never quotes.
 * UTF-8 (what ONS publishes) and Latin-1 (transcoded) are split into lines as bytes and validated
 * without decoding whole chunks; the table then also offers `lines`, so processTable can read it
 * without a string per cell. Its `encoding` is final once the rows have been read.
 */
export async function readCsv(source: AsyncIterable<Uint8Array>, options: ReadCsvOptions = {}): Promise<RawTable> {
  const iterator = source[Symbol.asyncIterator]();
  const first = await sniff(iterator);
  const encoding = { name: first.encoding };
  return first.encoding === 'utf-16le'
    ? readLines(encoding, textLines(new TextDecoder('utf-16le'), first.bytes, iterator), options)
    : readLines(encoding, utf8Lines(first.bytes, first.encoding === 'utf-8-bom', iterator, encoding), options);
}

export interface ReadCsvOptions {
  /** Called as the rows of each chunk have been consumed, with the bytes of the file parsed so far (not those read ahead). */
  readonly onProgress?: ProgressListener;
  /** The file's size in bytes, the progress total. @default - unknown */
  readonly size?: number;
}

interface Line {
  readonly number: number;
  readonly text: string;
  readonly overflow?: boolean;
}

/** One chunk's lines as decoded text. */
interface TextLines {
  readonly lines: readonly Line[];
  /** Bytes of the file up to the end of these lines (within a line): the progress once they are consumed. */
  readonly end: number;
}

/** One chunk's lines as undecoded UTF-8 (see CsvLines). */
interface ByteLines {
  readonly bytes: Buffer;
  readonly first: number;
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  /** As TextLines.end. */
  readonly end: number;
}

/** One chunk's lines from either splitter: decoded text, or bytes. */
type Batch = TextLines | ByteLines;

const lineCount = (b: Batch): number => ('bytes' in b ? b.starts.length : b.lines.length);
const lineAt = (b: Batch, i: number): Line => ('bytes' in b ? byteLine(b, i) : b.lines[i]);

async function readLines(encoding: { name: string }, batches: AsyncGenerator<Batch>, options: ReadCsvOptions): Promise<RawTable> {
  const bytePath = encoding.name !== 'utf-16le'; // utf8Lines made the batches
  // Lines are pulled one by one only for the header and the locale sample; then a batch per chunk.
  const pulled: Batch[] = [];
  let batch = -1;
  let at = 0;
  const nextLine = async (): Promise<Line | undefined> => {
    for (;;) {
      if (batch >= 0 && at < lineCount(pulled[batch])) return lineAt(pulled[batch], at++);
      if (batch + 1 < pulled.length) {
        batch++;
        at = 0;
        continue;
      }
      const next = await batches.next();
      if (next.done) return undefined;
      pulled.push(next.value);
    }
  };

  const headerLine = await nextLine();
  if (!headerLine) throw new RefusedFileError('the file is empty');
  if (headerLine.overflow) throw new RefusedFileError(`the first line is longer than ${CSV_MAX_LINE_CHARS} characters: not a CSV header`);
  const headerText = headerLine.text.replace(/^\uFEFF/, '');
  if (headerText.trim() === '') throw new RefusedFileError('the first line (the header) is empty');
  const delimiter = detectDelimiter(headerText);
  const header = splitLine(headerText, delimiter);
  if (!Array.isArray(header)) throw new RefusedFileError(`the header cannot be read: ${header}`);
  const dataBatch = batch;
  const dataAt = at;

  // Look ahead at the data lines to decide the decimal separator; the rows start after the header all the same.
  const decimals = delimiter === ','
    ? { decimalComma: false, decimalEvidence: "its delimiter is ','" }
    : await detectDecimalComma(nextLine, delimiter);

  // Progress is reported when the consumer asks for the next batch: the rows of this one have been processed.
  const { onProgress, size } = options;
  let parsed = 0;
  const consumed = (b: Batch): void => {
    if (b.end <= parsed) return;
    parsed = b.end;
    onProgress!({ phase: 'parsing', done: parsed, total: size, unit: 'bytes' });
  };
  const rest: AsyncIterable<Batch> = {
    async *[Symbol.asyncIterator]() {
      for (let i = dataBatch; i < pulled.length; i++) {
        const b = pulled[i];
        yield i === dataBatch ? from(b, dataAt) : b;
        if (onProgress) consumed(b);
      }
      pulled.length = 0;
      for await (const b of batches) {
        yield b;
        if (onProgress) consumed(b);
      }
    },
  };
  const toRows = (lines: Batch): RawRow[] => {
    const out: RawRow[] = [];
    for (let i = 0; i < lineCount(lines); i++) {
      const row = textRow(lineAt(lines, i), delimiter);
      if (row) out.push(row);
    }
    return out;
  };
  const rowBatches: AsyncIterable<RawRow[]> = {
    async *[Symbol.asyncIterator]() {
      for await (const b of rest) yield toRows(b);
    },
  };
  const byteBatches: AsyncIterable<CsvLines> = {
    async *[Symbol.asyncIterator]() {
      for await (const b of rest as AsyncIterable<ByteLines>) yield { ...b, count: b.starts.length, row: (i) => textRow(byteLine(b, i), delimiter) };
    },
  };

  return {
    format: 'csv',
    get encoding() {
      return encoding.name;
    },
    delimiter,
    ...decimals,
    header: header.map((h) => String(h ?? '').trim()),
    batches: rowBatches,
    rows: {
      async *[Symbol.asyncIterator]() {
        for await (const b of rowBatches) yield* b;
      },
    },
    lines: bytePath ? byteBatches : undefined,
  };
}

/** The lines of a batch from line `i` on. */
function from(b: Batch, i: number): Batch {
  return 'bytes' in b
    ? { bytes: b.bytes, first: b.first + i, starts: b.starts.subarray(i), ends: b.ends.subarray(i), end: b.end }
    : { lines: b.lines.slice(i), end: b.end };
}

/** A decoded line as a row: blank lines are skipped (undefined), a line over the limit is an error. */
function textRow(line: Line, delimiter: string): RawRow | undefined {
  if (line.overflow) return { row: line.number, error: `line ${line.number} is longer than ${CSV_MAX_LINE_CHARS} characters` };
  if (line.text.length === 0 || line.text.trim().length === 0) return undefined;
  const cells = splitLine(line.text, delimiter);
  return Array.isArray(cells) ? { row: line.number, cells } : { row: line.number, error: cells };
}

function byteLine(b: ByteLines, i: number): Line {
  const end = b.ends[i];
  return end < 0 ? { number: b.first + i, text: '', overflow: true } : { number: b.first + i, text: b.bytes.toString('utf8', b.starts[i], end) };
}

interface Sniffed {
  readonly encoding: 'utf-8' | 'utf-8-bom' | 'utf-16le';
  readonly bytes: Uint8Array;
}

async function sniff(iterator: AsyncIterator<Uint8Array>): Promise<Sniffed> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < SNIFF_BYTES) {
    const next = await iterator.next();
    if (next.done) break;
    chunks.push(next.value);
    size += next.value.length;
  }
  const bytes = concat(chunks, size);
  if (bytes.length === 0) throw new RefusedFileError('the file is empty');
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return { encoding: 'utf-8-bom', bytes };
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return { encoding: 'utf-16le', bytes };
  const sample = bytes.subarray(0, SNIFF_BYTES);
  let control = 0;
  for (const b of sample) {
    if (b === 0) throw new RefusedFileError('the file holds binary data (NUL bytes), not CSV text');
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) control++;
  }
  if (control > sample.length / 100) throw new RefusedFileError('the file holds binary data (control characters), not CSV text');
  // UTF-8 or Latin-1: utf8Lines decides at the first byte that is not ASCII, wherever it is.
  return { encoding: 'utf-8', bytes };
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/** Splits decoded text into lines (LF or CRLF), a batch per chunk, holding at most one partial line between chunks. */
async function* textLines(decoder: TextDecoder, first: Uint8Array, rest: AsyncIterator<Uint8Array>): AsyncGenerator<TextLines> {
  let carry = '';
  let number = 0;
  let skipping = false; // inside a line that went over the limit
  const take = (text: string, final: boolean): Line[] => {
    const lines: Line[] = [];
    let data = carry + text;
    let start = 0;
    for (let nl = data.indexOf('\n'); nl >= 0; nl = data.indexOf('\n', start)) {
      number++;
      if (skipping) {
        skipping = false;
        lines.push({ number, text: '', overflow: true });
      } else {
        const end = nl > start && data.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        lines.push(end - start > CSV_MAX_LINE_CHARS ? { number, text: '', overflow: true } : { number, text: data.slice(start, end) });
      }
      start = nl + 1;
    }
    data = data.slice(start);
    if (data.length > CSV_MAX_LINE_CHARS) {
      skipping = true;
      data = '';
    }
    carry = data;
    if (final && (carry.length > 0 || skipping)) {
      number++;
      const last = carry.endsWith('\r') ? carry.slice(0, -1) : carry;
      lines.push(skipping ? { number, text: '', overflow: true } : { number, text: last });
      carry = '';
    }
    return lines;
  };
  const decode = (bytes?: Uint8Array): string => (bytes ? decoder.decode(bytes, { stream: true }) : decoder.decode());
  let end = first.length;
  yield { lines: take(decode(first), false), end };
  for (let next = await rest.next(); !next.done; next = await rest.next()) {
    end += next.value.length;
    yield { lines: take(decode(next.value), false), end };
  }
  yield { lines: take(decode(), true), end };
}

/**
 * Splits UTF-8 into lines as bytes, with the same lines, numbers and limits as textLines: a batch per
 * chunk, holding at most one partial line between chunks. Validates as the fatal decoder would, but
 * decodes only the pieces around the first and last LF of each chunk (a partial character can only
 * sit there); the rest is checked with isUtf8.
 *
 * The encoding is decided at the first byte that is not ASCII, wherever it is (until then UTF-8 and
 * Latin-1 read the same): when it starts a valid UTF-8 character, the file is UTF-8, and a later byte
 * that is not UTF-8 refuses the file (mixed encodings) naming its offset and line; when it does not,
 * the file is Latin-1 (Windows-1252), and its chunks are transcoded to UTF-8 from there on
 * (`encoding.name` becomes 'latin1'). A BOM makes the file UTF-8 from its first byte.
 */
async function* utf8Lines(first: Uint8Array, bom: boolean, rest: AsyncIterator<Uint8Array>, encoding: { name: string }): AsyncGenerator<ByteLines> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let offset = 0; // of the chunk being checked, in the file
  let tail = Buffer.alloc(0); // the last 3 bytes before it (a character cut there began in them)
  let utf8 = bom; // a BOM or a whole multi-byte character seen: Latin-1 is out
  let latin1 = false;
  /** The chunk (undefined: the end of the file) as UTF-8 for the splitter. */
  const check = (chunk: Uint8Array | undefined): Uint8Array | undefined => {
    if (latin1) return chunk && toUtf8(chunk);
    if (wellFormed(decoder, chunk)) {
      if (!utf8 && chunk && !isAscii(chunk)) utf8 = holdsWholeCharacter(chunk);
    } else {
      // From the start of the character the decoder was in, begun in the previous chunk, if any.
      const cut = cutCharacter(tail);
      const bytes = Buffer.concat([tail.subarray(tail.length - cut), chunk ?? new Uint8Array(0)]);
      const bad = chunk ? firstNotUtf8(bytes) : 0;
      if (utf8 || bad !== firstNotAscii(bytes)) throw mixedEncodings(bytes, bad, offset - cut, number + 1, bom);
      latin1 = true;
      encoding.name = 'latin1';
      carry = toUtf8(carry); // ASCII, and the first character cut at the end of the last chunk
      return chunk && toUtf8(chunk);
    }
    if (chunk) tail = Buffer.concat([tail, chunk.subarray(Math.max(0, chunk.length - 3))]).subarray(-3);
    offset += chunk?.length ?? 0;
    return chunk;
  };

  let carry: Buffer = Buffer.alloc(0);
  let number = 0;
  let skipping = false; // inside a line that went over the limit
  let capacity = 1024; // lines per batch, as many as the largest batch so far
  const take = (data: Buffer, final: boolean, end: number): ByteLines => {
    let starts = new Int32Array(capacity);
    let ends = new Int32Array(capacity);
    let n = 0;
    const push = (lineStart: number, lineEnd: number): void => {
      if (n === starts.length) {
        capacity *= 2;
        const biggerStarts = new Int32Array(capacity);
        const biggerEnds = new Int32Array(capacity);
        biggerStarts.set(starts);
        biggerEnds.set(ends);
        starts = biggerStarts;
        ends = biggerEnds;
      }
      starts[n] = lineStart;
      ends[n++] = lineEnd;
    };
    const firstNumber = number + 1;
    let start = 0;
    for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10, start)) {
      number++;
      if (skipping) {
        skipping = false;
        push(start, -1);
      } else {
        const lineEnd = nl > start && data[nl - 1] === 13 ? nl - 1 : nl;
        push(start, utf16Length(data, start, lineEnd) > CSV_MAX_LINE_CHARS ? -1 : lineEnd);
      }
      start = nl + 1;
    }
    carry = data.subarray(start);
    if (utf16Length(carry, 0, carry.length) > CSV_MAX_LINE_CHARS) {
      skipping = true;
      carry = Buffer.alloc(0);
    }
    if (final && (carry.length > 0 || skipping)) {
      number++;
      // No LF: the carry is the whole line.
      push(start, skipping ? -1 : data.length - (data[data.length - 1] === 13 ? 1 : 0));
      carry = Buffer.alloc(0);
    }
    return { bytes: data, first: firstNumber, starts: starts.subarray(0, n), ends: ends.subarray(0, n), end };
  };
  /**
   * The lines a chunk completes: the line begun in the last chunk is joined on its own, so a chunk is never copied.
   * `start`/`end`: the chunk's place in the file, as it was read (before any transcoding), for progress.
   */
  function* lines(chunk: Uint8Array, start: number, end: number): Generator<ByteLines> {
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (carry.length > 0) {
      const nl = bytes.indexOf(10);
      yield take(Buffer.concat([carry, nl < 0 ? bytes : bytes.subarray(0, nl + 1)]), false, start);
      if (nl < 0) return;
      bytes = bytes.subarray(nl + 1);
    }
    yield take(bytes, false, end);
  }

  // The decoder of the string path drops a leading BOM; so do the lines.
  let read = first.length;
  const head = check(first)!;
  yield* lines(bom ? head.subarray(3) : head, 0, read);
  for (let next = await rest.next(); !next.done; next = await rest.next()) {
    const start = read;
    read += next.value.length;
    yield* lines(check(next.value)!, start, read);
  }
  check(undefined);
  yield take(carry, true, read);
}

/** Latin-1 (Windows-1252) bytes as UTF-8. */
function toUtf8(latin1: Uint8Array): Buffer {
  const text = Buffer.from(latin1.buffer, latin1.byteOffset, latin1.byteLength).toString('latin1');
  return Buffer.from(text.replace(/[\x80-\x9f]/g, (c) => CP1252[c.charCodeAt(0) - 0x80]), 'utf8');
}

/** Bytes of a UTF-8 sequence from its lead byte. */
const sequenceLength = (lead: number): number => (lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4);

/** Whether valid UTF-8 that is not all ASCII holds a whole multi-byte character, not only one cut at its end. */
function holdsWholeCharacter(chunk: Uint8Array): boolean {
  const i = firstNotAscii(chunk);
  // A continuation byte ends a character begun in the chunk before.
  return chunk[i] < 0xc0 || i + sequenceLength(chunk[i]) <= chunk.length;
}

/** How many bytes of valid UTF-8 belong to a character cut at its end (0 to 3). */
function cutCharacter(bytes: Uint8Array): number {
  for (let k = 1; k <= 3 && k <= bytes.length; k++) {
    const b = bytes[bytes.length - k];
    if (b < 0x80) return 0;
    if (b >= 0xc0) return sequenceLength(b) > k ? k : 0;
  }
  return 0;
}

function firstNotAscii(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length && bytes[i] < 0x80) i++;
  return i;
}

/** Where the first sequence the fatal decoder refuses starts, in bytes that begin at a character. */
function firstNotUtf8(bytes: Buffer): number {
  // The lenient decoder puts U+FFFD where the fatal one throws; a U+FFFD the file holds is EF BF BD.
  const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes, { stream: true });
  let at = 0;
  let offset = 0;
  for (let i = text.indexOf('\uFFFD'); i >= 0; i = text.indexOf('\uFFFD', i + 1)) {
    offset += Buffer.byteLength(text.slice(at, i));
    if (bytes[offset] !== 0xef || bytes[offset + 1] !== 0xbf || bytes[offset + 2] !== 0xbd) return offset;
    offset += 3;
    at = i + 1;
  }
  return 0; // not reached: the fatal decoder refused these bytes
}

/** The refusal of a UTF-8 file with bytes that are not UTF-8 at `bad` of `bytes` (at `offset` of the file, on line `line` or after). */
function mixedEncodings(bytes: Buffer, bad: number, offset: number, line: number, bom: boolean): RefusedFileError {
  for (let nl = bytes.indexOf(10); nl >= 0 && nl < bad; nl = bytes.indexOf(10, nl + 1)) line++;
  const hex = bytes[bad].toString(16).toUpperCase().padStart(2, '0');
  return new RefusedFileError(
    `mixed encodings: the file is UTF-8 (${bom ? 'it starts with a UTF-8 BOM' : 'it has UTF-8 characters before'}), but the byte at offset `
    + `${offset + bad} (line ${line}) is 0x${hex}, not valid UTF-8 there (Latin-1?); save the whole file in one encoding, UTF-8`,
  );
}

/** Whether a chunk continues the UTF-8 the decoder has seen (undefined: the end of the file, nothing may be left over). */
function wellFormed(decoder: TextDecoder, chunk: Uint8Array | undefined): boolean {
  try {
    if (!chunk) {
      decoder.decode();
      return true;
    }
    const a = chunk.indexOf(10);
    if (a < 0) {
      decoder.decode(chunk, { stream: true });
      return true;
    }
    // Between the first and the last LF every character is whole; the decoder's state there is empty.
    const b = chunk.lastIndexOf(10);
    decoder.decode(chunk.subarray(0, a + 1), { stream: true });
    decoder.decode(chunk.subarray(b + 1), { stream: true });
    return isUtf8(chunk.subarray(a + 1, b + 1));
  } catch {
    return false;
  }
}

/**
 * Length in UTF-16 code units (a JS string's length) of the complete characters of valid UTF-8 bytes,
 * counted only when the byte length could exceed the line limit.
 */
function utf16Length(bytes: Uint8Array, start: number, end: number): number {
  if (end - start <= CSV_MAX_LINE_CHARS) return end - start;
  let units = 0;
  for (let i = start; i < end;) {
    const b = bytes[i];
    const size = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
    if (i + size > end) break; // a character cut at the end of the chunk: not decoded yet
    units += size === 4 ? 2 : 1;
    i += size;
  }
  return units;
}

function detectDelimiter(header: string): string {
  let best = '';
  let bestCount = 0;
  for (const d of DELIMITERS) {
    const count = header.split(d).length - 1;
    if (count > bestCount) {
      best = d;
      bestCount = count;
    }
  }
  if (!best) {
    throw new RefusedFileError(`no delimiter in the header (expected ';' as ONS writes, or ',', tab or '|'): '${header.slice(0, 80)}'`);
  }
  return best;
}

/**
 * The decimal style (see DecimalComma) from the fields of the first 200 data lines: a decimal comma
 * (`50,4`, `1.234,5`) or a dot that cannot separate thousands (`1.5`, `0.123`), whichever more fields
 * show (a tie is a point, as ONS writes). `1.234` tells nothing. When no field tells, the lines
 * further on are read until one does, up to 4 MiB of text; none by then, or in the whole file: undecided.
 */
async function detectDecimalComma(
  nextLine: () => Promise<Line | undefined>, delimiter: string,
): Promise<{ decimalComma: DecimalComma; decimalEvidence: string }> {
  let comma = 0;
  let point = 0;
  let firstComma = '';
  let firstPoint = '';
  let lines = 0;
  let chars = 0;
  let line: Line | undefined;
  while (lines < LOCALE_SAMPLE_LINES || (comma + point === 0 && chars < LOCALE_LOOKAHEAD_CHARS)) {
    line = await nextLine();
    if (!line) break;
    lines++;
    chars += line.overflow ? CSV_MAX_LINE_CHARS : line.text.length;
    if (line.overflow) continue;
    for (const field of line.text.split(delimiter)) {
      const hint = decimalHint(field);
      if (hint === 'comma' && comma++ === 0) firstComma = `as in '${clip(field.trim(), 30)}' on line ${line.number}`;
      if (hint === 'point' && point++ === 0) firstPoint = `as in '${clip(field.trim(), 30)}' on line ${line.number}`;
    }
  }
  if (comma > point) return { decimalComma: true, decimalEvidence: firstComma };
  if (point > 0) return { decimalComma: false, decimalEvidence: firstPoint };
  return { decimalComma: 'undecided', decimalEvidence: `no number in ${line ? `the file's first ${lines} data lines` : 'the file'} tells which` };
}

/** Splits one line; understands double quotes (with `""` escapes) within the line. Returns a reason when it cannot. */
export function splitLine(line: string, delimiter: string): Cell[] | string {
  if (line.indexOf('"') < 0) return line.split(delimiter);
  const cells: Cell[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let value = '';
      let j = i + 1;
      for (;;) {
        const q = line.indexOf('"', j);
        if (q < 0) return 'unterminated quoted field (quoted fields may not span lines)';
        value += line.slice(j, q);
        if (line[q + 1] === '"') {
          value += '"';
          j = q + 2;
        } else {
          j = q + 1;
          break;
        }
      }
      if (j < line.length && !line.startsWith(delimiter, j)) return `unexpected text after a closing quote at character ${j + 1}`;
      cells.push(value);
      i = j + delimiter.length;
    } else {
      const d = line.indexOf(delimiter, i);
      const end = d < 0 ? line.length : d;
      cells.push(line.slice(i, end));
      i = end + delimiter.length;
    }
    if (i > line.length) break;
  }
  return cells;
}
