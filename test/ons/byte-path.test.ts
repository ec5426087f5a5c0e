import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMeasure, parseMeasureBytes } from '../../src/ons/number';
import { readCsv } from '../../src/ons/readers/csv';
import { brasiliaToUtc, offsetAt, parseLocalTime, parseLocalTimeBytes } from '../../src/ons/time';
import { RefusedFileError } from '../../src/ons/types';
import { endsWithUnicodeSpace, startsWithUnicodeSpace } from '../../src/ons/utf8';
import { ONS_DATA } from '../ons-data';
import { Outcome, outcome } from './outcome';

/**
 * UTF-8 CSV is read from its bytes (RawTable.lines): lines split and validated as bytes, cells read
 * without strings. These tests hold it to the decoded path: the same table without `lines` (rows
 * decoded and split as strings) and the same text as UTF-16LE (decoded by TextDecoder and split into
 * lines as a string) must give the same summary, records and rejections, whatever the chunking.
 */

const HEADER = 'id_subsistema;nom_subsistema;din_instante;val_cargaenergiahomwmed';
const CURVA = 'CURVA_CARGA_2023.csv';
const SNIFF = 64 * 1024;


async function* chunked(pieces: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of pieces) yield p;
}

/** Cuts bytes at the given offsets. */
function cut(bytes: Uint8Array, offsets: readonly number[]): Uint8Array[] {
  const points = [0, ...offsets.filter((o) => o > 0 && o < bytes.length), bytes.length];
  return points.slice(1).map((end, i) => bytes.subarray(points[i], end));
}


/** The byte path: readCsv of UTF-8 offers `lines`, and processTable takes them. */
async function viaBytes(name: string, pieces: readonly Uint8Array[]): Promise<Outcome> {
  const table = await readCsv(chunked(pieces));
  expect(table.lines).toBeDefined();
  return outcome(name, table);
}

/** The same table without `lines`: rows decoded and split as strings. */
async function viaRows(name: string, pieces: readonly Uint8Array[]): Promise<Outcome> {
  const { lines, ...table } = await readCsv(chunked(pieces));
  expect(lines).toBeDefined();
  return outcome(name, table);
}

/** The text as UTF-16LE, in chunks of `chunk` bytes after the sniffed ones: TextDecoder and the string line splitter. */
async function viaUtf16(name: string, text: string, chunk: number): Promise<Outcome> {
  const bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
  const offsets: number[] = [];
  for (let at = SNIFF; at < bytes.length; at += chunk) offsets.push(at);
  const table = await readCsv(chunked(cut(bytes, offsets)));
  expect(table.encoding).toBe('utf-16le');
  expect(table.lines).toBeUndefined();
  return outcome(name, table);
}

async function expectSamePaths(
  name: string, text: string, pieces: readonly Uint8Array[] = [Buffer.from(text)], utf16Chunk = 2 ** 30,
): Promise<Outcome> {
  const bytes = await viaBytes(name, pieces);
  expect(await viaRows(name, pieces)).toEqual(bytes);
  expect(await viaUtf16(name, text, utf16Chunk)).toEqual({ ...bytes, summary: { ...bytes.summary, encoding: 'utf-16le' } });
  return bytes;
}

const hour = (h: number) => new Date(Date.UTC(2023, 0, 1, h)).toISOString().replace('T', ' ').slice(0, 19);

/** Rows that exercise every way out of the byte path, and the ways it must read like the decoded one. */
const TRICKY = [
  'N;NORTE;2023-01-01 00:00:00;5990.55300000',
  'NE;NORDESTE;2023-01-01 00:00:00;0E-8',
  'S;SUL;2023-01-01 00:00:00;-0.0',
  'SE;SUDESTE/CENTRO-OESTE;2023-01-01 00:00:00;',
  'N;NÓRTE ÉÇ;2023-01-01 01:00:00;1.23456789012345678',
  ' NE ;\tNORDESTE ;2023-01-01 01:00:00;  7  ',
  'S\u00a0;SUL;2023-01-01 01:00:00;1e5',
  '\u2003SE;SUL;2023-01-01 01:00:00;.5',
  'N;😀 emoji;2023-01-01 02:00:00;5.',
  'NE;"NORDESTE;QUOTED";2023-01-01 02:00:00;"12.5"',
  'S;"unterminated;2023-01-01 02:00:00;1',
  'SE;SUDESTE;2023-01-01 02:00:00;9007199254740993',
  'N;NORTE;2023-01-01 02:00:00;1.5',
  'N;NORTE;2023-01-01 02:00:00;2.5',
  '',
  '   ',
  '\u00a0',
  'NE;NORDESTE; 2023-01-01 03:00:00 ;1e999',
  'NE;NORDESTE;2023-01-01 03:00:00;1,5',
  'S;SUL;01/01/2023 03:00:00;123',
  'S;SUL;2023-02-29 03:00:00;1',
  'S;SUL;ontem;1',
  'SE;SUDESTE;2023-01-01 03:00:00',
  'SE;SUDESTE;2023-01-01 04:00:00;1;',
  ';SUL;2023-01-01 04:00:00;1',
  '\u00a0;SUL;2023-01-01 04:00:00;1',
  'Ñ;;2023-01-01 04:00:00;-12.75E-2',
  'N\u200b;X;2023-01-01 04:00:00;+3',
  'N;NORTE;2023-01-01 00:00:00;7',
  'NE;NORDESTE;2023-01-01 00:00:00;8',
];

describe('the byte path reads like the decoded path', () => {
  test('tricky rows, LF', async () => {
    const o = await expectSamePaths(CURVA, [HEADER, ...TRICKY].join('\n') + '\n');
    expect(o.summary.rows).toBe(TRICKY.length - 3);
    expect(o.rejections.length).toBeGreaterThan(10);
    expect(o.records.find((r) => r.labels.nom_subsistema === 'NORDESTE;QUOTED')?.measures.val_cargaenergiahomwmed).toBe(12.5);
  });

  test('tricky rows, CRLF and no final newline', async () => {
    await expectSamePaths(CURVA, [HEADER, ...TRICKY].join('\r\n'));
  });

  test('a BOM (and a second one, which stays in the first column name)', async () => {
    const text = [HEADER, ...TRICKY.slice(0, 4)].join('\n') + '\n';
    for (const bom of [[0xef, 0xbb, 0xbf], [0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]]) {
      const bytes = Buffer.concat([Buffer.from(bom), Buffer.from(text)]);
      const o = await viaBytes(CURVA, [bytes]);
      expect(await viaRows(CURVA, [bytes])).toEqual(o);
      expect(o.summary).toMatchObject({ encoding: 'utf-8-bom', rows: 4, records: 4 });
    }
  });

  test('comma decimals, thousands dots, and dots that cannot separate thousands', async () => {
    const rows = ['1,5', '2,25', '-3,75', '1.234,5', '1.234', '12.345.678,9', '1,5e3', '12,', ',5', '1,2,3', '1.234.567,8', 'x', ' 4,5 ', '7',
      '1.5', '0.123', '1.23', '1234.567', '1.234.5', '1.234,', '1.234e5'].map((v, i) => `N;NORTE;${hour(i)};${v}`);
    const o = await expectSamePaths(CURVA, [HEADER, ...rows].join('\n') + '\n');
    expect(o.summary.rows).toBe(rows.length);
    expect(o.records.slice(0, 6).map((r) => r.measures.val_cargaenergiahomwmed)).toEqual([1.5, 2.25, -3.75, 1234.5, 1234, 12345678.9]);
    expect(o.rejections.map((r) => r.cells[3])).toEqual(['1,2,3', 'x', '1.5', '0.123', '1.23', '1234.567', '1.234.5', '1.234,', '1.234e5']);
  });

  test('dot decimals with comma values, and an undecided file', async () => {
    // More fields show a decimal point than a decimal comma: a dot-decimal file.
    const values = ['1.5', '2.25', '3.125', '1.234', '50,4', '1.234,5', '1.234.567', '7'];
    const dot = values.map((v, i) => `N;NORTE;${hour(i)};${v}`);
    const o = await expectSamePaths(CURVA, [HEADER, ...dot].join('\n') + '\n');
    expect(o.records.map((r) => r.measures.val_cargaenergiahomwmed)).toEqual([1.5, 2.25, 3.125, 1.234, 7]);
    // No number tells the style: each reads as its only reading, and 1.234 (two readings) is refused.
    const undecided = ['1.234', '7', '1.234.567', '-2.500'].map((v, i) => `N;NORTE;${hour(i)};${v}`);
    const u = await expectSamePaths(CURVA, [HEADER, ...undecided].join('\n') + '\n');
    expect(u.records.map((r) => r.measures.val_cargaenergiahomwmed)).toEqual([7, 1234567]);
    expect(u.rejections.map((r) => r.row)).toEqual([2, 5]);
  });

  test('other delimiters', async () => {
    const rows = ['N;NORTE;2023-01-01 00:00:00;1', 'NE;NORDESTE;2023-01-01 00:00:00;2.5', 'NE;NORDESTE;2023-01-01 00:00:00;3'];
    for (const d of [',', '\t', '|']) await expectSamePaths(CURVA, [HEADER, ...rows].join('\n').replace(/;/g, d) + '\n');
  });

  test('duplicates in and out of time order, and far apart (more than 64 instants)', async () => {
    const rows: string[] = [];
    for (let h = 0; h < 100; h++) rows.push(`N;NORTE;${hour(h)};${h}`, `NE;NORDESTE;${hour(h)};${h}`);
    rows.push(`N;NORTE;${hour(99)};1`, `N;NORTE;${hour(50)};1`, `NE;NORDESTE;${hour(36)};1`, `NE;NORDESTE;${hour(35)};1`, `S;SUL;${hour(0)};1`, `S;SUL;${hour(0)};2`);
    // One series after another (not in time order), and the epoch itself as an instant.
    for (const s of ['SE', 'X']) for (let h = 0; h < 80; h++) rows.push(`${s};A;${hour(h)};${h}`);
    rows.push(`X;A;${hour(79)};0`, `X;A;${hour(10)};0`, 'E;E;1969-12-31 21:00:00;1', 'E;E;1969-12-31 21:00:00;2');
    const o = await expectSamePaths(CURVA, [HEADER, ...rows].join('\n') + '\n');
    expect(o.rejections.map((r) => r.row)).toEqual([202, 203, 204, 205, 207, 368, 369, 371]); // every duplicate, however far back
  });

  test('many series, many rows per instant; series met first in quoted (decoded) rows and then in plain ones, and the reverse', async () => {
    const rows: string[] = [];
    for (let h = 0; h < 3; h++) {
      for (let i = 0; i < 1500; i++) {
        const id = `SERIES-IDENTITY-${i}${'é'.repeat(i % 3)}`;
        rows.push((i + h) % 5 === 0 ? `"${id}";"name ${i}";${hour(h)};${i}.5` : `${id};name ${i};${hour(h)};${i}.5`);
      }
      rows.push(`SERIES-IDENTITY-3;x;${hour(h)};1`, `"SERIES-IDENTITY-0";x;${hour(h)};1`, `SERIES-IDENTITY-1497;x;${hour(h)};1`);
    }
    const o = await expectSamePaths(CURVA, [HEADER, ...rows].join('\n') + '\n');
    expect(o.summary).toMatchObject({ rows: 4509, records: 4500, rejected: 9, series: 1500 });
  });

  test('lines at the length limit, counted in UTF-16 units as the decoded path does', async () => {
    const L = 1024 * 1024;
    const rows = [
      `NE;${'é'.repeat(700_000)};2023-01-01 00:00:00;2`,
      `S;${'x'.repeat(L - 24)};2023-01-01 00:00:00;3`, // L characters: the longest line read
      `S;${'x'.repeat(L - 23)};2023-01-01 01:00:00;4`,
      `N;${'😀'.repeat(L / 2 - 12)};2023-01-01 00:00:00;5`, // L UTF-16 units in 2L + 20 bytes
      `N;${'😀'.repeat(L / 2 - 11)};2023-01-01 01:00:00;6`,
      `SE;${'y'.repeat(3 * L)};2023-01-01 01:00:00;7`, // over the limit before its end is read
      'SE;SUDESTE;2023-01-01 00:00:00;8',
    ];
    const text = [HEADER, ...rows].join('\n') + '\n';
    const offsets: number[] = [];
    for (let at = SNIFF; at < text.length * 2; at += 1_000_003) offsets.push(at);
    const o = await expectSamePaths(CURVA, text, cut(Buffer.from(text), offsets), 2_500_009);
    expect(o.rejections.map((r) => r.row)).toEqual([4, 6, 7]);
    expect(o.summary).toMatchObject({ rows: 7, records: 4 });
  });

  test('every chunk boundary: one-byte chunks across the tricky rows after the sniffed bytes', async () => {
    const filler: string[] = [];
    for (let h = 0; filler.join('\n').length < SNIFF + 100; h++) filler.push(`N;NÓRTE;${hour(1000 + h)};${h}.25`);
    const text = [HEADER, ...filler, ...TRICKY].join('\r\n') + '\r\n';
    const bytes = Buffer.from(text);
    const start = Buffer.from([HEADER, ...filler].join('\r\n')).length - 40;
    const offsets = [SNIFF + 8];
    for (let o = start; o < bytes.length; o++) offsets.push(o);
    const whole = await expectSamePaths(CURVA, text, [bytes]);
    expect(await viaBytes(CURVA, cut(bytes, offsets))).toEqual(whole);
    expect(await viaRows(CURVA, cut(bytes, offsets))).toEqual(whole);
  });

  test.each(readdirSync(ONS_DATA).filter((f) => f.endsWith('.csv')))('%s', async (file) => {
    const bytes = readFileSync(join(ONS_DATA, file));
    const text = bytes.toString('utf8');
    // Chunks of an odd size, so lines and characters are cut everywhere.
    const offsets: number[] = [];
    for (let o = SNIFF; o < bytes.length; o += 7919) offsets.push(o);
    const o = await expectSamePaths(file, text, cut(bytes, offsets));
    expect(o.summary.rejected).toBe(0);
  });
});

describe('bytes that are not UTF-8 after UTF-8 characters are refused at their exact offset, whatever the chunking', () => {
  /** Where the lenient decoder puts its first U+FFFD (the text holds none of its own), in bytes, and on which line. */
  function firstReplacement(bytes: Buffer): { offset: number; line: number } {
    const text = new TextDecoder('utf-8').decode(bytes);
    const before = text.slice(0, text.indexOf('\uFFFD'));
    expect(before.length).toBeLessThan(text.length);
    return { offset: Buffer.byteLength(before), line: before.split('\n').length };
  }

  const lines = [HEADER];
  for (let h = 0; h < 6000; h++) lines.push(`N;NÓRTE;${hour(h)};${h}.25`);
  const good = Buffer.from(lines.join('\n') + '\n');
  const damaged: Array<[string, Buffer]> = [];
  for (const at of [SNIFF + 5, 100_000, 150_000, good.length - 1]) {
    const b = Buffer.from(good);
    b[at] = 0xff;
    damaged.push([`0xFF at ${at}`, b]);
  }
  const o = good.indexOf('Ó', 120_000);
  const broken = Buffer.from(good);
  broken[o + 1] = 0x41;
  damaged.push(['a broken two-byte character', broken]);
  damaged.push(['a character cut at the end of the file', good.subarray(0, o + 1)]);
  const surrogate = Buffer.from(good);
  surrogate.set([0xed, 0xa0, 0x80], 130_000);
  damaged.push(['an encoded surrogate', surrogate]);
  const three = Buffer.from(good);
  three.set([0xe2, 0x82, 0x41], 140_000);
  damaged.push(['a three-byte character broken after two bytes', three]);

  test.each(damaged)('%s', async (_, bytes) => {
    const { offset, line } = firstReplacement(bytes);
    const hex = bytes[offset].toString(16).toUpperCase();
    for (const size of [1, 4096, 65_537, 1_048_576]) {
      const offsets: number[] = [];
      // One-byte chunks only around the bad bytes.
      if (size === 1) for (let at = offset - 5; at < offset + 5; at++) offsets.push(at);
      else for (let at = size; at < bytes.length; at += size) offsets.push(at);
      const pieces = cut(bytes, offsets);
      const read = async () => outcome(CURVA, await readCsv(chunked(pieces)));
      const error = await read().then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(RefusedFileError);
      expect((error as Error).message).toBe(`mixed encodings: the file is UTF-8 (it has UTF-8 characters before), but the byte at offset ${offset} `
        + `(line ${line}) is 0x${hex}, not valid UTF-8 there (Latin-1?); save the whole file in one encoding, UTF-8`);
    }
  });
});

describe('reading cells from bytes gives exactly what the string functions give', () => {
  function numbers(): string[] {
    const out = ['0E-8', '0e-8', '-0', '-0.0', '+0', '+5', '.5', '5.', '1e5', '1E+5', '1e-5', '1.5e-3', '-1.5E3', '00012.500', '1e0001', '1e00001',
      '9007199254740991', '9007199254740992', '9007199254740993', '123456789012345678', '0.1234567890123456789', '1e22', '1e23', '1e-22',
      '1e-23', '5e-324', '1.7976931348623157e308', '1e999', '-1e999', '0.000000000000000000000000001', '4.35', '0.1', '0.3', '2.675',
      '1.005', '123.456e-2', '1e', 'e5', '.', '+', '-', '', ' ', '  7  ', '\t8\r', '\u00a09', '9\u00a0', '1.2.3', '1,5', ',5', '1,', '1.234,5',
      'abc', '0x10', 'Infinity', 'NaN', '1_0', '1 0', '+-1', '--1', '1e+-5', '1.e5', '.e5', '5990.55300000', '10455.81799999', '-305.45199585',
      // Thousands dots (comma-decimal files) and the one ambiguous shape (undecided files).
      '1.234', '-1.234', '+1.234', '999.999', '1.000', '1.234,5', '12.345.678,9', '1.000.000', '38.123,4567', '-1.234,5', '0.123', '00.123',
      '01.234', '1.23', '1.2345', '1234.567', '1.234.5', '1.234,', '1.234e5', '1.234,5e3', '1.23.456', '.234', ' 1.234 ', '1.234,5,6',
      '9.007.199.254.740.993', '9.007.199.254.740.991', '1.234.567.890,123456789', '1.', '1.,5', ',', '1,234.5'];
    // Random decimals: 1 to 20 digits, any decimals, optional exponent and sign (deterministic).
    let x = 987654321;
    const next = (n: number) => {
      x = (x * 48271) % 2147483647;
      return x % n;
    };
    for (let i = 0; i < 20_000; i++) {
      const digits = Array.from({ length: 1 + next(20) }, () => String(next(10))).join('');
      const point = next(digits.length + 1);
      let int = digits.slice(0, point);
      // Sometimes thousands dots: mostly every 3 digits from the right, sometimes anywhere.
      if (next(4) === 0) int = next(5) ? int.replace(/\B(?=(\d{3})+$)/g, '.') : int.replace(/\B(?=(\d{2})+$)/g, '.');
      let s = `${['', '-', '+'][next(3)]}${int}${next(4) ? '.' : ','}${digits.slice(point)}`;
      if (next(4) === 0) s += `${next(2) ? 'e' : 'E'}${['', '-', '+'][next(3)]}${next(40)}`;
      out.push(s);
    }
    return out;
  }

  test.each([false, true, 'undecided'] as const)('parseMeasureBytes or its fallback = parseMeasure (decimal comma %p)', (comma) => {
    let fast = 0;
    for (const s of numbers()) {
      const bytes = Buffer.from(`;${s};`);
      const read = parseMeasureBytes(bytes, 1, bytes.length - 1, comma);
      if (read !== undefined) fast++;
      const value = read === undefined ? parseMeasure(s, comma) : read;
      if (!Object.is(value, parseMeasure(s, comma))) throw new Error(`${JSON.stringify(s)}: ${value} vs ${parseMeasure(s, comma)}`);
    }
    expect(fast).toBeGreaterThan(3_000);
  });

  test('ONS number forms take the fast path', () => {
    for (const s of ['5990.55300000', '0E-8', '0.0', '415.154', '-305.45199585', '12721', '']) {
      expect(parseMeasureBytes(Buffer.from(s), 0, s.length, false)).not.toBeUndefined();
    }
    // A spreadsheet's Brazilian locale: thousands dots, decimal comma.
    for (const s of ['38.123,4567', '1.234', '987,5', '-12.345.678,9', '0', '12721']) {
      expect(parseMeasureBytes(Buffer.from(s), 0, s.length, true)).not.toBeUndefined();
    }
  });

  test('parseLocalTimeBytes = parseLocalTime, or leaves the text to it', () => {
    const texts = ['2023-01-01 00:00:00', '2023-01-01', '2018-11-04 00:30:00', '2019-02-16 23:30:00', '2024-02-29 12:00:00',
      '2023-02-29 00:00:00', '2023-13-01 00:00:00', '2023-01-01 24:00:00', '2023-01-01 23:60:00', '1799-12-31 00:00:00',
      '1800-01-01 00:00:00', '0099-01-01', '9999-12-31 23:59:59', '2023-01-0a 00:00:00', ' 2023-01-01 00:00:00', '2023-01-01T00:00:00',
      '2023-01-01 00:00', '01/01/2023', '1887-06-01 12:00:00', '2023-00-10', '2023-01-00'];
    let fast = 0;
    for (const text of texts) {
      const read = parseLocalTimeBytes(Buffer.from(text), 0, text.length);
      if (read === undefined) continue;
      fast++;
      const expected = parseLocalTime(text);
      expect(typeof expected).toBe('object');
      expect({ utc: read.utc, iso: read.iso }).toEqual({ utc: (expected as { utc: number }).utc, iso: (expected as { iso: string }).iso });
    }
    expect(fast).toBe(8);
  });

  test('the non-ASCII spaces of trim() are exactly those the byte checks see, at either end', () => {
    for (let c = 0x80; c <= 0x1ffff; c++) {
      if (c >= 0xd800 && c <= 0xdfff) continue;
      const ch = String.fromCodePoint(c);
      const trimmed = `${ch}x`.trim() === 'x';
      const start = Buffer.from(`${ch}x`);
      const end = Buffer.from(`x${ch}`);
      if (startsWithUnicodeSpace(start, 0, start.length) !== trimmed || endsWithUnicodeSpace(end, 0, end.length) !== trimmed) {
        throw new Error(`U+${c.toString(16)}: trim() ${trimmed ? 'removes' : 'keeps'} it`);
      }
    }
  });
});

describe('time zone lookups', () => {
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone: 'America/Sao_Paulo', hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
  });
  const zoneOffset = (utc: number) => {
    const p = Object.fromEntries(fmt.formatToParts(new Date(utc)).filter((x) => x.type !== 'literal').map((x) => [x.type, Number(x.value)]));
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - utc;
  };

  // 1914-01-01 03:06:28 UTC, when local mean time ended, is the one change not at a whole UTC hour.
  test('offsetAt agrees with the zone at every hour of 1913, 1914 (after local mean time) and 2012-2019', () => {
    const ranges = [
      [Date.UTC(1913, 0, 1), Date.UTC(1914, 0, 1)],
      [Date.UTC(1914, 0, 2), Date.UTC(1915, 0, 1)],
      [Date.UTC(2012, 0, 1), Date.UTC(2020, 0, 1)],
    ];
    for (const [from, to] of ranges) {
      for (let t = from; t < to; t += 3_600_000) {
        if (offsetAt(t + 1_800_000) !== zoneOffset(t + 1_800_000)) throw new Error(`${new Date(t).toISOString()}`);
      }
    }
  });

  test('brasiliaToUtc: each wall-clock hour of 2012-2020 maps to the earliest instant showing it, or past the gap', () => {
    for (let wall = Date.UTC(2012, 0, 1); wall < Date.UTC(2020, 0, 1); wall += 3_600_000) {
      const utc = brasiliaToUtc(wall);
      const shows = utc + zoneOffset(utc);
      const earlier = utc - 3_600_000;
      const ok = shows === wall ? earlier + zoneOffset(earlier) !== wall : shows === wall + 3_600_000 && zoneOffset(utc) !== wall - utc;
      if (!ok) throw new Error(`${new Date(wall).toISOString()} → ${new Date(utc).toISOString()}`);
    }
  });
});
