/**
 * Numbers as ONS writes them: any number of decimals, exponent forms such as `0E-8` (zero in older
 * publications), and comma decimals with thousands dots (dashboard exports, Brazilian spreadsheets).
 * Empty is null, never zero.
 */

import { isAsciiSpace } from './utf8';

const DOT_NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const COMMA_NUMBER = /^[+-]?(?:\d+,?\d*|,\d+)(?:[eE][+-]?\d+)?$/;
/** Dots as thousands separators: a first group of 1 to 3 digits (not 0), then groups of exactly 3. */
const GROUPED = /^[+-]?[1-9]\d{0,2}(?:\.\d{3})+(?:,\d+)?$/;
/** The one shape that is a number either way, and a different one: `1.234` is 1.234 or 1234. */
const AMBIGUOUS = /^[+-]?[1-9]\d{0,2}\.\d{3}$/;

/**
 * How a file writes decimals. true: a decimal comma, and a dot only separates thousands (`1.234,5`,
 * `1.234` = 1234). false: a decimal point, no thousands separator (ONS open data). 'undecided': no
 * number told which (see detectDecimalComma); a value is read when it has one reading, and `1.234`,
 * which reads as two different numbers, is not a number.
 */
export type DecimalComma = boolean | 'undecided';

/**
 * Parses a measure. Returns null for an empty cell and NaN for text that is not a number in the
 * file's decimal style (see DecimalComma).
 */
export function parseMeasure(cell: string | number | null, decimalComma: DecimalComma): number | null {
  if (cell === null) return null;
  if (typeof cell === 'number') return Number.isFinite(cell) ? cell : NaN;
  const s = cell.trim();
  if (s.length === 0) return null;
  let value = NaN;
  if (decimalComma === true) {
    if (COMMA_NUMBER.test(s)) value = Number(s.replace(',', '.'));
    else if (GROUPED.test(s)) value = Number(s.replace(/\./g, '').replace(',', '.'));
  } else if (DOT_NUMBER.test(s)) {
    if (decimalComma === false || !AMBIGUOUS.test(s)) value = Number(s);
  } else if (decimalComma === 'undecided' && (COMMA_NUMBER.test(s) || GROUPED.test(s))) {
    value = Number(s.replace(/\./g, '').replace(',', '.'));
  }
  // 1e999 overflows to Infinity: not a value a measure can hold.
  return Number.isFinite(value) ? value : NaN;
}

/**
 * What a text cell says about the file's decimal style: 'comma' for a comma decimal (`50,4`,
 * `1.234,5`), 'point' for a dot that cannot separate thousands (`1.5`, `0.123`, `1234.5`); nothing
 * for anything else, `1.234` included (a decimal point, or a thousands separator).
 */
export function decimalHint(s: string): 'comma' | 'point' | undefined {
  const t = s.trim();
  if (/^[+-]?\d+,\d+$/.test(t) || (GROUPED.test(t) && t.includes(','))) return 'comma';
  if (/^[+-]?\d+\.\d+$/.test(t) && !AMBIGUOUS.test(t)) return 'point';
  return undefined;
}

/**
 * Why a cell is not a number (parseMeasure gave NaN), naming the file's decimal style when the cell
 * would be a number in the other one. `why` says how the style was decided (see RawTable.decimalEvidence).
 */
export function notANumber(text: string, decimalComma: DecimalComma, why?: string): string {
  const t = text.trim();
  const because = why ? ` (${why})` : '';
  if (decimalComma === true && t.includes('.') && (DOT_NUMBER.test(t) || /^[+-]?[\d.]+(?:,\d*)?$/.test(t))) {
    return `'${text}' is not a number in this file: it writes decimal commas${because}, where a dot only separates thousands in groups of 3 (1.234 = 1234)`;
  }
  if (decimalComma === false && ((t.includes(',') && COMMA_NUMBER.test(t)) || GROUPED.test(t))) {
    return `'${text}' is not a number in this file: it reads as dot-decimal${because}, with no thousands separator`;
  }
  if (decimalComma === 'undecided' && AMBIGUOUS.test(t)) {
    return `'${text}' is ambiguous: ${Number(t)} with a decimal point or ${Number(t.replace('.', ''))} with a thousands separator, `
      + `and ${why ?? 'no number in the file tells which'}`;
  }
  return `'${text}' is not a number`;
}

/** Powers of ten that are exact doubles. */
const EXACT_POWERS_OF_TEN = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));
const TWO_TO_53 = 2 ** 53;

/**
 * parseMeasure of a cell given as UTF-8 bytes, without making a string, for the common forms: sign,
 * digits (in a comma-decimal file, grouped by thousands dots), one decimal separator, exponent. An
 * integer below 2^53 times or divided by an exact power of ten is one correctly rounded operation, so
 * the double is exactly Number()'s. Returns undefined for anything else (other characters, more
 * digits, larger exponents, `1.234` in an undecided file): parse the decoded text instead.
 */
export function parseMeasureBytes(bytes: Uint8Array, start: number, end: number, decimalComma: DecimalComma): number | null | undefined {
  while (start < end && isAsciiSpace(bytes[start])) start++;
  while (end > start && isAsciiSpace(bytes[end - 1])) end--;
  if (start === end) return null;
  let p = start;
  const negative = bytes[p] === 45;
  if (negative || bytes[p] === 43) p++;
  const point = decimalComma === true ? 44 : 46;
  const integerStart = p;
  let mantissa = 0;
  let digits = 0;
  let decimals = 0;
  let separator = false;
  let group = -1; // digits since the last thousands dot; -1: none yet
  for (; p < end; p++) {
    const c = bytes[p];
    if (c >= 48 && c <= 57) {
      mantissa = mantissa * 10 + (c - 48);
      digits++;
      if (separator) decimals++;
      else if (group >= 0) group++;
    } else if (!separator && c === point) {
      if (group >= 0 && group !== 3) return undefined;
      separator = true;
    } else if (c === 46 && !separator && decimalComma === true) {
      // A thousands dot: after 1 to 3 digits not led by 0, or after a group of 3.
      if (group >= 0 ? group !== 3 : digits < 1 || digits > 3 || bytes[integerStart] === 48) return undefined;
      group = 0;
    } else {
      break;
    }
  }
  if (digits === 0 || (group >= 0 && (p < end || (separator ? decimals === 0 : group !== 3)))) return undefined;
  // `1.234` reads as two numbers: an undecided file leaves it to parseMeasure, which refuses it.
  if (decimalComma === 'undecided' && separator && decimals === 3 && p === end && digits <= 6 && bytes[integerStart] !== 48) return undefined;
  let exponent = 0;
  if (p < end) {
    if (bytes[p] !== 101 && bytes[p] !== 69) return undefined;
    p++;
    const negativeExponent = p < end && bytes[p] === 45;
    if (negativeExponent || (p < end && bytes[p] === 43)) p++;
    const first = p;
    for (; p < end && p - first < 4 && bytes[p] >= 48 && bytes[p] <= 57; p++) exponent = exponent * 10 + (bytes[p] - 48);
    if (p === first || p < end) return undefined;
    if (negativeExponent) exponent = -exponent;
  }
  // At 2^53 or more the digits may already have been rounded.
  if (mantissa >= TWO_TO_53) return undefined;
  const scale = exponent - decimals;
  let value: number;
  if (mantissa === 0 || scale === 0) value = mantissa;
  else if (scale > 0 && scale <= 22) value = mantissa * EXACT_POWERS_OF_TEN[scale];
  else if (scale < 0 && scale >= -22) value = mantissa / EXACT_POWERS_OF_TEN[-scale];
  else return undefined;
  return negative ? -value : value;
}
