import type { PointRecord } from '../../runtime/layout';

/**
 * InfluxDB line protocol (`measurement,tag=v field=1.5 <ns>`), as the server's parser reads it (checked
 * against a real server in the tests): in names a backslash escapes the next character and only
 * `\,` `\ ` `\=` (and `\"` in field keys) are unescaped; any other backslash is kept as is. So
 * commas and spaces (and `=` in tag keys, tag values and field keys) are escaped, a plain backslash is
 * written as it is, and what the parser cannot give back (a backslash before a special character or
 * at the end, a line break, an empty name) is refused with a reason instead of being written wrong.
 */

/** A line, or why the record cannot be written. */
export type Encoded = { readonly line: string; readonly fields: number } | { readonly reason: string };

/** The nanosecond range of InfluxDB timestamps (int64 minus the two values it reserves). */
export const MIN_NANOS = -9223372036854775806n;
export const MAX_NANOS = 9223372036854775806n;

type Kind = 'measurement' | 'tag key' | 'tag value' | 'field key';

const SPECIAL: Record<Kind, RegExp> = {
  'measurement': /[, ]/g,
  'tag key': /[,= ]/g,
  'tag value': /[,= ]/g,
  'field key': /[,= "]/g,
};

/** Why `name` cannot be written as a `kind`, or undefined. */
export function unwritable(kind: Kind, name: string): string | undefined {
  if (name === '') return `empty ${kind}`;
  if (/[\n\r]/.test(name)) return `${kind} has a line break (line protocol cannot escape it)`;
  // The parser takes "\x" as an escape for these x, and "\" at the end escapes the separator.
  if (/\\([,= "]|$)/.test(name)) return `${kind} has a backslash before a comma, space, equals sign, quote or the end (line protocol cannot keep it)`;
  if (kind === 'measurement' && name.startsWith('#')) return 'measurement starts with # (a comment line)';
  if ((kind === 'tag key' || kind === 'field key') && name === 'time') return `${kind} 'time' is reserved by InfluxDB`;
  return undefined;
}

/** A name escaped for its place in a line (check it with `unwritable` first). */
export function escapeName(kind: Kind, name: string): string {
  return name.replace(SPECIAL[kind], (c) => `\\${c}`);
}

/** A string field value: double-quoted, with `\` and `"` escaped. */
export function quoteString(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Epoch milliseconds as nanoseconds, in integer arithmetic; undefined outside InfluxDB's range. */
export function nanoseconds(ms: number): string | undefined {
  if (!Number.isSafeInteger(ms)) return undefined;
  const ns = BigInt(ms) * 1_000_000n;
  return ns < MIN_NANOS || ns > MAX_NANOS ? undefined : ns.toString();
}

/** A field value: a float (shortest round-trip form), a quoted string or a boolean; undefined when not finite. */
export function fieldValue(value: number | string | boolean): string | undefined {
  if (typeof value === 'string') return quoteString(value);
  if (typeof value === 'boolean') return String(value);
  // Line protocol reads a number without the `i` suffix as a float, exponent included (1e+21).
  return Number.isFinite(value) ? String(value) : undefined;
}

/**
 * One point as a line: tags (sorted by key, as InfluxDB prefers) without empty values, at least one
 * field, the time in nanoseconds.
 */
export function encodeLine(
  measurement: string,
  tags: ReadonlyArray<readonly [string, string]>,
  fields: ReadonlyArray<readonly [string, number | string | boolean]>,
  timeMs: number,
): Encoded {
  const problem = unwritable('measurement', measurement);
  if (problem) return { reason: problem };
  let line = escapeName('measurement', measurement);
  const sorted = tags.filter(([, v]) => v !== '').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [key, value] of sorted) {
    const why = unwritable('tag key', key) ?? unwritable('tag value', value);
    if (why) return { reason: `${why}: ${JSON.stringify(key)}` };
    line += `,${escapeName('tag key', key)}=${escapeName('tag value', value)}`;
  }
  if (fields.length === 0) return { reason: 'no field to write' };
  const parts: string[] = [];
  for (const [key, value] of fields) {
    const why = unwritable('field key', key);
    if (why) return { reason: `${why}: ${JSON.stringify(key)}` };
    const text = fieldValue(value);
    if (text === undefined) return { reason: `field ${JSON.stringify(key)} is not a finite number: ${value}` };
    parts.push(`${escapeName('field key', key)}=${text}`);
  }
  const ns = nanoseconds(timeMs);
  if (ns === undefined) return { reason: `time ${timeMs} ms is outside InfluxDB's range (1677-09-21 to 2262-04-11)` };
  return { line: `${line} ${parts.join(',')} ${ns}`, fields: parts.length };
}

/** A processed record as a line: measurement = the dataset's measurement, tags = its identity dimensions, fields = its measures. */
export function encodeRecord(measurement: string, record: PointRecord): Encoded {
  return encodeLine(measurement, record.dimensions, record.measures, record.time);
}
