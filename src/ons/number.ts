/**
 * Numbers as ONS writes them: any number of decimals, exponent forms such as `0E-8` (zero in older
 * publications), and comma decimals in dashboard exports. Empty is null, never zero.
 */

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
