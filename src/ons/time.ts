/**
 * ONS times are Brasília civil time with no offset. They are converted with the IANA zone
 * America/Sao_Paulo (historical daylight saving included), never with a fixed -03:00.
 */

export const ONS_TIME_ZONE = 'America/Sao_Paulo';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** A parsed local (wall-clock) time. */
export interface LocalTime {
  /** Normalised wall-clock: `YYYY-MM-DDTHH:MM:SS`. */
  readonly iso: string;
  /** The instant, UTC epoch milliseconds. */
  readonly utc: number;
  /** The wall-clock time does not exist (the clocks skipped it): `utc` is moved forward by the gap. */
  readonly skipped: boolean;
}

const ISO = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?)?$/;
const BRAZILIAN = /^(\d{1,2})\/(\d{1,2})\/(\d{4})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?$/;

const formatter = new Intl.DateTimeFormat('en-US', {
  timeZone: ONS_TIME_ZONE,
  hourCycle: 'h23',
  year: 'numeric',
  month: 'numeric',
  day: 'numeric',
  hour: 'numeric',
  minute: 'numeric',
  second: 'numeric',
});

// Offsets change only at whole UTC hours in this zone since 1914, so one lookup per hour is exact;
// and never twice within a day, so a day whose first hour agrees with the next day's first hour has one
// offset throughout (and each lookup serves two days).
const offsetCache = new Map<number, number>();
const dayCache = new Map<number, number | null>();

/** Offset (local minus UTC, in ms) of America/Sao_Paulo at a UTC instant. */
export function offsetAt(utcMs: number): number {
  const day = Math.floor(utcMs / DAY_MS);
  let whole = dayCache.get(day);
  if (whole === undefined) {
    const first = hourOffset(day * 24);
    whole = first === hourOffset(day * 24 + 24) ? first : null;
    // A few years of days: ONS files are sorted by time, and a larger cache only grows the heap with the file.
    if (dayCache.size > 2_048) dayCache.clear();
    dayCache.set(day, whole);
  }
  return whole ?? hourOffset(Math.floor(utcMs / HOUR_MS));
}

function hourOffset(hour: number): number {
  const cached = offsetCache.get(hour);
  if (cached !== undefined) return cached;
  const offset = zoneOffsetAt(hour * HOUR_MS);
  if (offsetCache.size > 4_096) offsetCache.clear(); // bounded, like dayCache
  offsetCache.set(hour, offset);
  return offset;
}

/** Offset (local minus UTC, in ms) of America/Sao_Paulo at a UTC instant, uncached and to the second (the 1914 change too). */
export function zoneOffsetAt(utcMs: number): number {
  // format() costs a third of formatToParts(); en-US numeric fields come as month, day, year, hour, minute, second.
  const [month, day, year, h, m, s] = formatter.format(utcMs).match(/\d+/g)!.map(Number);
  return Date.UTC(year, month - 1, day, h, m, s) - Math.floor(utcMs / 1000) * 1000;
}

// The last wall-clock day whose neighbouring UTC days have one same offset, and that offset.
let quietWallDay = NaN;
let quietOffset = 0;

/**
 * The UTC instant of a Brasília wall-clock time. A time that does not exist (the hour skipped when
 * daylight saving started) moves forward by the gap; an ambiguous one (the hour repeated when it
 * ended) takes the earlier instant.
 */
export function brasiliaToUtc(wallMs: number): number {
  const wallDay = Math.floor(wallMs / DAY_MS);
  if (wallDay === quietWallDay) return wallMs - quietOffset;
  const before = offsetAt(wallMs - DAY_MS);
  const after = offsetAt(wallMs + DAY_MS);
  if (before === after) {
    // Whatever the candidate gives, the answer is wallMs - before; for the whole wall day when the days around have one offset.
    if (dayCache.get(wallDay - 1) === before && dayCache.get(wallDay + 1) === before) {
      quietWallDay = wallDay;
      quietOffset = before;
    }
    return wallMs - before;
  }
  const candidates = [before, after];
  let best: number | undefined;
  for (const offset of candidates) {
    const utc = wallMs - offset;
    if (offsetAt(utc) === offset && (best === undefined || utc < best)) best = utc;
  }
  return best ?? wallMs - before;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days in a month of the proleptic Gregorian calendar (Date.UTC's; parseLocalTime refuses years before 1800). */
function daysIn(year: number, month: number): number {
  return month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : DAYS_IN_MONTH[month - 1];
}

/** A parsed time whose normalised text is made only when asked for (inspect never asks). */
class WallClock implements LocalTime {
  private text?: string;

  constructor(private readonly wall: number, readonly utc: number, private gap?: boolean) {}

  get iso(): string {
    return (this.text ??= new Date(this.wall).toISOString().slice(0, 19));
  }

  get skipped(): boolean {
    return (this.gap ??= this.wall - this.utc !== offsetAt(this.utc));
  }
}

/**
 * Parses an ONS local time: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` (or with `T`), and the Brazilian
 * `DD/MM/YYYY[ HH:MM[:SS]]` of dashboard exports (day first, padding optional). Date-only values are
 * local midnight. Returns a reason string when the text is not a valid time.
 */
export function parseLocalTime(text: string): LocalTime | string {
  const s = text.trim();
  let y: number; let mo: number; let d: number; let h = 0; let mi = 0; let sec = 0;
  let m: RegExpExecArray | null = null;
  // Fast path for ONS's own `YYYY-MM-DD[ HH:MM:SS]`, read by position.
  if ((s.length === 19 || s.length === 10) && s.charCodeAt(4) === 45 && s.charCodeAt(7) === 45
    && (s.length === 10 || (s.charCodeAt(10) === 32 && s.charCodeAt(13) === 58 && s.charCodeAt(16) === 58))) {
    y = digits(s, 0, 4); mo = digits(s, 5, 2); d = digits(s, 8, 2);
    if (s.length === 19) { h = digits(s, 11, 2); mi = digits(s, 14, 2); sec = digits(s, 17, 2); }
    if (Number.isNaN(y + mo + d + h + mi + sec)) return `'${clip(s)}' is not a date or date-time (expected YYYY-MM-DD[ HH:MM:SS] or DD/MM/YYYY[ HH:MM:SS])`;
  } else if ((m = ISO.exec(s))) {
    y = +m[1]; mo = +m[2]; d = +m[3];
    if (m[4] !== undefined) { h = +m[4]; mi = +m[5]; sec = m[6] !== undefined ? +m[6] : 0; }
  } else if ((m = BRAZILIAN.exec(s))) {
    d = +m[1]; mo = +m[2]; y = +m[3];
    if (m[4] !== undefined) { h = +m[4]; mi = +m[5]; sec = m[6] !== undefined ? +m[6] : 0; }
  } else {
    return s.length === 0 ? 'empty time' : `'${clip(s)}' is not a date or date-time (expected YYYY-MM-DD[ HH:MM:SS] or DD/MM/YYYY[ HH:MM:SS])`;
  }
  return wallClock(y, mo, d, h, mi, sec) ?? `'${clip(s)}' is not a valid date-time`;
}

/**
 * parseLocalTime of ONS's own `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD` given as UTF-8 bytes, without a
 * string. Undefined for any other text and for a time parseLocalTime refuses: parse the decoded text then.
 */
export function parseLocalTimeBytes(bytes: Uint8Array, start: number, end: number): LocalTime | undefined {
  const length = end - start;
  if ((length !== 19 && length !== 10) || bytes[start + 4] !== 45 || bytes[start + 7] !== 45
    || (length === 19 && (bytes[start + 10] !== 32 || bytes[start + 13] !== 58 || bytes[start + 16] !== 58))) return undefined;
  const y = byteDigits(bytes, start, 4); const mo = byteDigits(bytes, start + 5, 2); const d = byteDigits(bytes, start + 8, 2);
  const timed = length === 19;
  const h = timed ? byteDigits(bytes, start + 11, 2) : 0;
  const mi = timed ? byteDigits(bytes, start + 14, 2) : 0;
  const sec = timed ? byteDigits(bytes, start + 17, 2) : 0;
  return Number.isNaN(y + mo + d + h + mi + sec) ? undefined : wallClock(y, mo, d, h, mi, sec);
}

/** A valid wall-clock time from its fields, or undefined. */
function wallClock(y: number, mo: number, d: number, h: number, mi: number, sec: number): LocalTime | undefined {
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || sec > 59 || y < 1800) return undefined;
  const wall = Date.UTC(y, mo - 1, d, h, mi, sec);
  const utc = brasiliaToUtc(wall);
  // A day with one offset throughout (brasiliaToUtc just said so) skips no time: no lookup needed.
  return new WallClock(wall, utc, Math.floor(wall / DAY_MS) === quietWallDay ? false : undefined);
}

/** The decimal number written in `length` ASCII digits at `start`, or NaN. */
function digits(s: string, start: number, length: number): number {
  let n = 0;
  for (let i = start; i < start + length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return NaN;
    n = n * 10 + c;
  }
  return n;
}

/** digits() of bytes. */
function byteDigits(bytes: Uint8Array, start: number, length: number): number {
  let n = 0;
  for (let i = start; i < start + length; i++) {
    const c = bytes[i] - 48;
    if (c < 0 || c > 9) return NaN;
    n = n * 10 + c;
  }
  return n;
}

/** Shortens a value quoted in a reason, so one bad cell cannot flood a report. */
export function clip(value: string, max = 60): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}
