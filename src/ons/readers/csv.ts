import { isUtf8 } from 'node:buffer';
import { TextDecoder } from 'node:util';
import { looksLikeCommaDecimal, looksLikeDotDecimal } from '../number';
import { Cell, CsvLines, RawRow, RawTable, RefusedFileError } from '../types';

/** Longest line accepted, in characters: a longer data line is rejected, a longer header refuses the file. */
export const CSV_MAX_LINE_CHARS = 1024 * 1024;

/** Bytes sniffed for encoding and binary content. */
const SNIFF_BYTES = 64 * 1024;
/** Data lines sampled to tell comma decimals from dot decimals. */
const LOCALE_SAMPLE_LINES = 200;
const DELIMITERS = [';', ',', '\t', '|'] as const;

/**
 * Reads a CSV as a stream: memory holds one chunk and one line, whatever the file's size.
 * Detects the encoding (UTF-8 with or without BOM, UTF-16LE with BOM, else Latin-1), the delimiter
 * (from the header: `;` as ONS writes, or `,`, tab, `|`), CRLF or LF, and comma decimals (dashboard
 * exports). Double-quoted fields are understood within one line; ONS never quotes.
 * UTF-8 (what ONS publishes) is split into lines as bytes and validated without decoding whole chunks;
 * the table then also offers `lines`, so processTable can read it without a string per cell.
 */
export async function readCsv(source: AsyncIterable<Uint8Array>): Promise<RawTable> {
  const iterator = source[Symbol.asyncIterator]();
  const first = await sniff(iterator);
  return first.encoding === 'utf-8' || first.encoding === 'utf-8-bom'
    ? readLines(first.encoding, utf8Lines(first.bytes, first.encoding === 'utf-8-bom', iterator))
    : readLines(first.encoding, textLines(first.decoder, first.bytes, iterator));
}

interface Line {
  readonly number: number;
  readonly text: string;
  readonly overflow?: boolean;
}

/** One chunk's lines as undecoded UTF-8 (see CsvLines). */
interface ByteLines {
  readonly bytes: Buffer;
  readonly first: number;
  readonly starts: Int32Array;
  readonly ends: Int32Array;
}

/** One chunk's lines from either splitter: decoded text, or bytes. */
type Batch = readonly Line[] | ByteLines;

const lineCount = (b: Batch): number => ('bytes' in b ? b.starts.length : b.length);
const lineAt = (b: Batch, i: number): Line => ('bytes' in b ? byteLine(b, i) : b[i]);

async function readLines(encoding: string, batches: AsyncGenerator<Batch>): Promise<RawTable> {
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

  // Look ahead at the first data lines to decide the decimal separator; the rows start after the header all the same.
  const sample: Line[] = [];
  while (sample.length < LOCALE_SAMPLE_LINES) {
    const line = await nextLine();
    if (!line) break;
    sample.push(line);
  }
  const decimalComma = delimiter !== ',' && detectDecimalComma(sample, delimiter);

  const rest: AsyncIterable<Batch> = {
    async *[Symbol.asyncIterator]() {
      for (let i = dataBatch; i < pulled.length; i++) yield i === dataBatch ? from(pulled[i], dataAt) : pulled[i];
      pulled.length = 0;
      for await (const b of batches) yield b;
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
  const utf8 = encoding === 'utf-8' || encoding === 'utf-8-bom';
  const byteBatches: AsyncIterable<CsvLines> = {
    async *[Symbol.asyncIterator]() {
      // utf8Lines made every batch of a UTF-8 file.
      for await (const b of rest as AsyncIterable<ByteLines>) yield { ...b, count: b.starts.length, row: (i) => textRow(byteLine(b, i), delimiter) };
    },
  };

  return {
    format: 'csv',
    encoding,
    delimiter,
    decimalComma,
    header: header.map((h) => String(h ?? '').trim()),
    batches: rowBatches,
    rows: {
      async *[Symbol.asyncIterator]() {
        for await (const b of rowBatches) yield* b;
      },
    },
    lines: utf8 ? byteBatches : undefined,
  };
}

/** The lines of a batch from line `i` on. */
function from(b: Batch, i: number): Batch {
  return 'bytes' in b ? { bytes: b.bytes, first: b.first + i, starts: b.starts.subarray(i), ends: b.ends.subarray(i) } : b.slice(i);
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
  readonly encoding: string;
  readonly decoder: TextDecoder;
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
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    return { encoding: 'utf-8-bom', decoder: new TextDecoder('utf-8', { ignoreBOM: false, fatal: true }), bytes };
  }
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return { encoding: 'utf-16le', decoder: new TextDecoder('utf-16le'), bytes };
  const sample = bytes.subarray(0, SNIFF_BYTES);
  let control = 0;
  for (const b of sample) {
    if (b === 0) throw new RefusedFileError('the file holds binary data (NUL bytes), not CSV text');
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) control++;
  }
  if (control > sample.length / 100) throw new RefusedFileError('the file holds binary data (control characters), not CSV text');
  try {
    // stream: true tolerates a multi-byte character cut at the end of the sample.
    new TextDecoder('utf-8', { fatal: true }).decode(sample, { stream: true });
    // Fatal: bytes that are not UTF-8 further on refuse the file instead of turning into U+FFFD.
    return { encoding: 'utf-8', decoder: new TextDecoder('utf-8', { fatal: true }), bytes };
  } catch {
    return { encoding: 'latin1', decoder: new TextDecoder('latin1'), bytes };
  }
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

function notUtf8(offset: number): RefusedFileError {
  return new RefusedFileError(`the file starts as UTF-8 but has bytes that are not UTF-8 after byte ${offset} (mixed encodings?); save it in one encoding`);
}

/** Splits decoded text into lines (LF or CRLF), a batch per chunk, holding at most one partial line between chunks. */
async function* textLines(decoder: TextDecoder, first: Uint8Array, rest: AsyncIterator<Uint8Array>): AsyncGenerator<Line[]> {
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
  let offset = 0;
  const decode = (bytes?: Uint8Array): string => {
    try {
      return bytes ? decoder.decode(bytes, { stream: true }) : decoder.decode();
    } catch {
      throw notUtf8(offset);
    } finally {
      offset += bytes?.length ?? 0;
    }
  };
  yield take(decode(first), false);
  for (let next = await rest.next(); !next.done; next = await rest.next()) {
    yield take(decode(next.value), false);
  }
  yield take(decode(), true);
}

/**
 * Splits UTF-8 into lines as bytes, with the same lines, numbers and limits as textLines: a batch per
 * chunk, holding at most one partial line between chunks. Refuses bytes that are not UTF-8 at the
 * same chunk as the fatal decoder would, but decodes only the pieces around the first and last LF of
 * each chunk (a partial character can only sit there); the rest is checked with isUtf8.
 */
async function* utf8Lines(first: Uint8Array, bom: boolean, rest: AsyncIterator<Uint8Array>): AsyncGenerator<ByteLines> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let offset = 0;
  const check = (chunk: Uint8Array | undefined): void => {
    if (!wellFormed(decoder, chunk)) throw notUtf8(offset);
    offset += chunk?.length ?? 0;
  };

  let carry: Buffer = Buffer.alloc(0);
  let number = 0;
  let skipping = false; // inside a line that went over the limit
  let capacity = 1024; // lines per batch, as many as the largest batch so far
  const take = (data: Buffer, final: boolean): ByteLines => {
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
        const end = nl > start && data[nl - 1] === 13 ? nl - 1 : nl;
        push(start, utf16Length(data, start, end) > CSV_MAX_LINE_CHARS ? -1 : end);
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
    return { bytes: data, first: firstNumber, starts: starts.subarray(0, n), ends: ends.subarray(0, n) };
  };
  /** The lines a chunk completes: the line begun in the last chunk is joined on its own, so a chunk is never copied. */
  function* lines(chunk: Uint8Array): Generator<ByteLines> {
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (carry.length > 0) {
      const nl = bytes.indexOf(10);
      yield take(Buffer.concat([carry, nl < 0 ? bytes : bytes.subarray(0, nl + 1)]), false);
      if (nl < 0) return;
      bytes = bytes.subarray(nl + 1);
    }
    yield take(bytes, false);
  }

  check(first);
  // The decoder of the string path drops a leading BOM; so do the lines.
  yield* lines(bom ? first.subarray(3) : first);
  for (let next = await rest.next(); !next.done; next = await rest.next()) {
    check(next.value);
    yield* lines(next.value);
  }
  check(undefined);
  yield take(carry, true);
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

function detectDecimalComma(lines: readonly Line[], delimiter: string): boolean {
  let comma = 0;
  let dot = 0;
  for (const line of lines) {
    if (line.overflow) continue;
    for (const field of line.text.split(delimiter)) {
      if (looksLikeCommaDecimal(field)) comma++;
      else if (looksLikeDotDecimal(field)) dot++;
    }
  }
  return comma > 0 && dot === 0;
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
