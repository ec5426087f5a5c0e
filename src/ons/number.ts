/**
 * Numbers as ONS writes them: any number of decimals, exponent forms such as `0E-8` (zero in older
 * publications), and comma decimals in dashboard exports. Empty is null, never zero.
 */

import { isAsciiSpace } from './utf8';

const DOT_NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const COMMA_NUMBER = /^[+-]?(?:\d+,?\d*|,\d+)(?:[eE][+-]?\d+)?$/;
const COMMA_WITH_THOUSANDS = /^[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?$/;

/**
 * Parses a measure. Returns null for an empty cell and NaN for text that is not a number.
 * With `decimalComma`, `1234,5` and `1.234,5` are read; a value with only a dot is read as a decimal point.
 */
export function parseMeasure(cell: string | number | null, decimalComma: boolean): number | null {
  if (cell === null) return null;
  if (typeof cell === 'number') return Number.isFinite(cell) ? cell : NaN;
  const s = cell.trim();
  if (s.length === 0) return null;
  let value = NaN;
  if (DOT_NUMBER.test(s)) value = Number(s);
  else if (decimalComma && COMMA_NUMBER.test(s)) value = Number(s.replace(',', '.'));
  else if (decimalComma && COMMA_WITH_THOUSANDS.test(s)) value = Number(s.replace(/\./g, '').replace(',', '.'));
  // 1e999 overflows to Infinity: not a value a measure can hold.
  return Number.isFinite(value) ? value : NaN;
}

/** Whether a text cell looks like a comma-decimal number (`50,411304`), for locale detection. */
export function looksLikeCommaDecimal(s: string): boolean {
  return /^[+-]?\d+,\d+$/.test(s.trim());
}

/** Whether a text cell looks like a dot-decimal number with a fractional part. */
export function looksLikeDotDecimal(s: string): boolean {
  return /^[+-]?\d+\.\d+$/.test(s.trim());
}

/** Powers of ten that are exact doubles. */
const EXACT_POWERS_OF_TEN = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));
const TWO_TO_53 = 2 ** 53;

/**
 * parseMeasure of a cell given as UTF-8 bytes, without making a string, for the common forms: sign,
 * digits, one decimal separator, exponent. An integer below 2^53 times or divided by an exact power of
 * ten is one correctly rounded operation, so the double is exactly Number()'s. Returns undefined for
 * anything else (other characters, more digits, larger exponents): parse the decoded text instead.
 */
export function parseMeasureBytes(bytes: Uint8Array, start: number, end: number, decimalComma: boolean): number | null | undefined {
  while (start < end && isAsciiSpace(bytes[start])) start++;
  while (end > start && isAsciiSpace(bytes[end - 1])) end--;
  if (start === end) return null;
  let p = start;
  const negative = bytes[p] === 45;
  if (negative || bytes[p] === 43) p++;
  let mantissa = 0;
  let digits = 0;
  let decimals = 0;
  let separator = false;
  for (; p < end; p++) {
    const c = bytes[p];
    if (c >= 48 && c <= 57) {
      mantissa = mantissa * 10 + (c - 48);
      digits++;
      if (separator) decimals++;
    } else if (!separator && (c === 46 || (decimalComma && c === 44))) {
      separator = true;
    } else {
      break;
    }
  }
  if (digits === 0) return undefined;
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
