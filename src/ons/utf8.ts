/**
 * Helpers for reading cells straight from UTF-8 bytes with the same results as the decoded strings.
 */

/** The ASCII characters String.prototype.trim removes: tab, LF, VT, FF, CR, space. */
export function isAsciiSpace(byte: number): boolean {
  return byte === 32 || (byte >= 9 && byte <= 13);
}

/**
 * Whether the UTF-8 at `start` (before `end`) begins with a non-ASCII character String.prototype.trim
 * removes: U+00A0, U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF.
 */
export function startsWithUnicodeSpace(bytes: Uint8Array, start: number, end: number): boolean {
  const b0 = bytes[start];
  if (b0 === 0xc2) return end - start >= 2 && bytes[start + 1] === 0xa0;
  return end - start >= 3 && isUnicodeSpace3(b0, bytes[start + 1], bytes[start + 2]);
}

/** Whether the UTF-8 before `end` (from `start`) ends with a non-ASCII character String.prototype.trim removes. */
export function endsWithUnicodeSpace(bytes: Uint8Array, start: number, end: number): boolean {
  if (end - start >= 2 && bytes[end - 2] === 0xc2 && bytes[end - 1] === 0xa0) return true;
  return end - start >= 3 && isUnicodeSpace3(bytes[end - 3], bytes[end - 2], bytes[end - 1]);
}

function isUnicodeSpace3(b0: number, b1: number, b2: number): boolean {
  switch (b0) {
    case 0xe1: return b1 === 0x9a && b2 === 0x80; // U+1680
    case 0xe2: return (b1 === 0x80 && ((b2 >= 0x80 && b2 <= 0x8a) || b2 === 0xa8 || b2 === 0xa9 || b2 === 0xaf)) // U+2000–200A, 2028, 2029, 202F
      || (b1 === 0x81 && b2 === 0x9f); // U+205F
    case 0xe3: return b1 === 0x80 && b2 === 0x80; // U+3000
    case 0xef: return b1 === 0xbb && b2 === 0xbf; // U+FEFF
    default: return false;
  }
}

/** Whether `a[aStart, aEnd)` and `b[bStart, bEnd)` hold the same bytes. */
export function sameBytes(a: Uint8Array, aStart: number, aEnd: number, b: Uint8Array, bStart: number, bEnd: number): boolean {
  if (aEnd - aStart !== bEnd - bStart) return false;
  for (let i = aStart, j = bStart; i < aEnd; i++, j++) if (a[i] !== b[j]) return false;
  return true;
}
