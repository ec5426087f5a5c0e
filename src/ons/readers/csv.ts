import { TextDecoder } from 'node:util';
import { looksLikeCommaDecimal, looksLikeDotDecimal } from '../number';
import { Cell, RawRow, RawTable, RefusedFileError } from '../types';

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
 */
export async function readCsv(source: AsyncIterable<Uint8Array>): Promise<RawTable> {
  const iterator = source[Symbol.asyncIterator]();
  const first = await sniff(iterator);
  const batches = lineBatches(first.decoder, first.bytes, iterator);
  // Lines are pulled one by one only for the header and the locale sample; then a batch per chunk.
  let queue: Line[] = [];
  let at = 0;
  const nextLine = async (): Promise<Line | undefined> => {
    while (at >= queue.length) {
      const next = await batches.next();
      if (next.done) return undefined;
      queue = next.value;
      at = 0;
    }
    return queue[at++];
  };

  const headerLine = await nextLine();
  if (!headerLine) throw new RefusedFileError('the file is empty');
  if (headerLine.overflow) throw new RefusedFileError(`the first line is longer than ${CSV_MAX_LINE_CHARS} characters: not a CSV header`);
  const headerText = headerLine.text.replace(/^\uFEFF/, '');
  if (headerText.trim() === '') throw new RefusedFileError('the first line (the header) is empty');
  const delimiter = detectDelimiter(headerText);
  const header = splitLine(headerText, delimiter);
  if (!Array.isArray(header)) throw new RefusedFileError(`the header cannot be read: ${header}`);

  // Look ahead at the first data lines to decide the decimal separator, then hand them back first.
  const sample: Line[] = [];
  while (sample.length < LOCALE_SAMPLE_LINES) {
    const line = await nextLine();
    if (!line) break;
    sample.push(line);
  }
  const decimalComma = delimiter !== ',' && detectDecimalComma(sample, delimiter);

  const toRows = (lines: readonly Line[]): RawRow[] => {
    const out: RawRow[] = [];
    for (const line of lines) {
      if (line.overflow) {
        out.push({ row: line.number, error: `line ${line.number} is longer than ${CSV_MAX_LINE_CHARS} characters` });
        continue;
      }
      if (line.text.length === 0 || line.text.trim().length === 0) continue;
      const cells = splitLine(line.text, delimiter);
      out.push(Array.isArray(cells) ? { row: line.number, cells } : { row: line.number, error: cells });
    }
    return out;
  };
  const rowBatches: AsyncIterable<RawRow[]> = {
    async *[Symbol.asyncIterator]() {
      yield toRows([...sample, ...queue.slice(at)]);
      for await (const lines of batches) yield toRows(lines);
    },
  };

  return {
    format: 'csv',
    encoding: first.encoding,
    delimiter,
    decimalComma,
    header: header.map((h) => String(h ?? '').trim()),
    batches: rowBatches,
    rows: {
      async *[Symbol.asyncIterator]() {
        for await (const batch of rowBatches) yield* batch;
      },
    },
  };
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

interface Line {
  readonly number: number;
  readonly text: string;
  readonly overflow?: boolean;
}

/** Splits decoded text into lines (LF or CRLF), a batch per chunk, holding at most one partial line between chunks. */
async function* lineBatches(decoder: TextDecoder, first: Uint8Array, rest: AsyncIterator<Uint8Array>): AsyncGenerator<Line[]> {
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
      throw new RefusedFileError(`the file starts as UTF-8 but has bytes that are not UTF-8 after byte ${offset} (mixed encodings?); save it in one encoding`);
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
