import { brasiliaToUtc, offsetAt } from './time';

/**
 * The one calendar of time-series aggregates (every engine and the API use it): the bucket that holds an
 * instant, the buckets of a range, and their labels.
 *
 * - `1d`, `1mo`, `1y`: the civil calendar of America/Sao_Paulo (ONS_TIME_ZONE), historical daylight
 *   saving included. A day runs from one local midnight to the next, so it has 23 hours on the day
 *   daylight saving began and 25 on the Saturday before it ended; where the clocks skipped midnight
 *   (every Brazilian DST start, at 00:00) the day starts at the first instant that has its date, 01:00.
 * - `1w`: seven local days, by a rule the request names (WeekRule): ISO 8601 (Monday to Sunday) or the
 *   ONS operative week (Saturday to Friday).
 * - `1m` … `1h`: fixed UTC buckets aligned on the epoch. Since 1914 every offset of the zone is a whole
 *   number of hours, so these are also aligned on the local clock; their label carries the offset,
 *   because a local hour is repeated when daylight saving ends.
 *
 * Offsets come from the runtime's ICU time-zone data (Intl, through ./time), never from a table here.
 * Exact from 1914 on: before, the zone's local mean time (-03:06:28) is not a whole hour.
 */

/** The intervals of the API (timeseries/contract.ts INTERVALS must be a subset). */
export const CALENDAR_INTERVALS = ['1m', '5m', '15m', '30m', '1h', '1d', '1w', '1mo', '1y'] as const;
export type CalendarInterval = typeof CALENDAR_INTERVALS[number];

/**
 * Where a week starts: `ons`, the ONS operative week (semana operativa of the PMO/DECOMP), Saturday to
 * Friday, named by the month of its Friday; `iso`, ISO 8601, Monday to Sunday, named by ISO week-year.
 */
export const WEEK_RULES = ['ons', 'iso'] as const;
export type WeekRule = typeof WEEK_RULES[number];

/**
 * The default week: the ONS operative week. ONS's weekly data (CMO semanal, the PMO) is kept in operative
 * weeks, so a weekly aggregate of daily or hourly ONS data lines up with them; `iso` is there for
 * calendar weeks.
 */
export const DEFAULT_WEEK_RULE: WeekRule = 'ons';

/** A bucket: a half-open UTC range and its labels. */
export interface CalendarBucket {
  /** First instant, UTC epoch ms (inclusive). */
  readonly start: number;
  /** The next bucket's start, UTC epoch ms (exclusive). */
  readonly end: number;
  /**
   * Local date the bucket starts on, `YYYY-MM-DD` (a week's first day, a month's or year's first day);
   * for sub-day intervals the local date-time with its offset, `YYYY-MM-DDTHH:MM-03:00`.
   */
  readonly local: string;
  /**
   * The bucket's calendar name: `YYYY-MM-DD` (day), `YYYY-Www` (ISO week, ISO week-year), `YYYY-MM-Sn`
   * (ONS operative week n of the operative month, the month of its Friday), `YYYY-MM`, `YYYY`; for
   * sub-day intervals the same as `local`. Calendar names sort as text in time order; a sub-day name
   * sorts as the ISO-8601 instant it is (as text it would not: a local hour repeats when DST ends).
   */
  readonly name: string;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const FIXED: Readonly<Record<string, number>> = { '1m': MINUTE, '5m': 5 * MINUTE, '15m': 15 * MINUTE, '30m': 30 * MINUTE, '1h': HOUR };

/** True for the intervals cut in local calendar days (`1d`, `1w`, `1mo`, `1y`). */
export function isCalendarInterval(interval: CalendarInterval): boolean {
  return FIXED[interval] === undefined;
}

/** A civil date (proleptic Gregorian), as its UTC-midnight epoch ms: date arithmetic with no zone in it. */
type DateMs = number;

/** The local (America/Sao_Paulo) civil date of an instant. */
export function localDateOf(instant: number): DateMs {
  return Math.floor((instant + offsetAt(instant)) / DAY) * DAY;
}

/**
 * The first instant of a local civil date: local midnight, or, when the clocks skipped midnight, the
 * first instant after the gap (brasiliaToUtc moves a skipped wall time forward by the gap).
 */
export function localDayStart(date: DateMs): number {
  return brasiliaToUtc(date);
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');
const ymd = (date: DateMs) => new Date(date).toISOString().slice(0, 10);

/** The local civil date (as DateMs) starting the calendar bucket that holds a local date. */
function firstDate(interval: CalendarInterval, date: DateMs, week: WeekRule): DateMs {
  const d = new Date(date);
  switch (interval) {
    case '1d': return date;
    case '1w': {
      const back = week === 'iso' ? (d.getUTCDay() + 6) % 7 : (d.getUTCDay() + 1) % 7;
      return date - back * DAY;
    }
    case '1mo': return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    case '1y': return Date.UTC(d.getUTCFullYear(), 0, 1);
    default: throw new Error(`not a calendar interval: ${interval}`);
  }
}

/** The first local date of the next calendar bucket. */
function nextDate(interval: CalendarInterval, first: DateMs): DateMs {
  const d = new Date(first);
  switch (interval) {
    case '1d': return first + DAY;
    case '1w': return first + 7 * DAY;
    case '1mo': return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    default: return Date.UTC(d.getUTCFullYear() + 1, 0, 1);
  }
}

/** The calendar name of the bucket whose first local date is `first`. */
function calendarName(interval: CalendarInterval, first: DateMs, week: WeekRule): string {
  const day = ymd(first);
  switch (interval) {
    case '1d': return day;
    case '1mo': return day.slice(0, 7);
    case '1y': return day.slice(0, 4);
    default: {
      if (week === 'iso') {
        // ISO 8601: the week belongs to the year of its Thursday, and week 1 holds the year's first Thursday.
        const thursday = new Date(first + 3 * DAY);
        const dayOfYear = (thursday.getTime() - Date.UTC(thursday.getUTCFullYear(), 0, 1)) / DAY;
        return `${thursday.getUTCFullYear()}-W${pad(Math.floor(dayOfYear / 7) + 1)}`;
      }
      // An operative week belongs to the month of its Friday (the CMO_SEMANAL files date each week by it).
      const friday = new Date(first + 6 * DAY);
      return `${friday.getUTCFullYear()}-${pad(friday.getUTCMonth() + 1)}-S${Math.floor((friday.getUTCDate() - 1) / 7) + 1}`;
    }
  }
}

/** `-03:00`-style text of an offset in ms. */
function offsetText(offset: number): string {
  const minutes = Math.round(Math.abs(offset) / MINUTE);
  return `${offset < 0 ? '-' : '+'}${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;
}

function fixedBucket(size: number, instant: number): CalendarBucket {
  const start = Math.floor(instant / size) * size;
  const offset = offsetAt(start);
  const local = `${new Date(start + offset).toISOString().slice(0, 16)}${offsetText(offset)}`;
  return { start, end: start + size, local, name: local };
}

function calendarBucket(interval: CalendarInterval, first: DateMs, week: WeekRule): CalendarBucket {
  return {
    start: localDayStart(first),
    end: localDayStart(nextDate(interval, first)),
    local: ymd(first),
    name: calendarName(interval, first, week),
  };
}

/** The bucket of `interval` that holds `instant` (UTC epoch ms). `week` matters only for `1w`. */
export function bucketOf(interval: CalendarInterval, instant: number, week: WeekRule = DEFAULT_WEEK_RULE): CalendarBucket {
  const size = FIXED[interval];
  if (size !== undefined) return fixedBucket(size, instant);
  return calendarBucket(interval, firstDate(interval, localDateOf(instant), week), week);
}

/**
 * The buckets of `interval` that meet [from, to) (UTC epoch ms), in time order: the first one holds
 * `from` (so it may start before it), the last one holds `to - 1`. Lazy: take what a page needs.
 */
export function* bucketsCovering(
  interval: CalendarInterval, from: number, to: number, week: WeekRule = DEFAULT_WEEK_RULE,
): Generator<CalendarBucket> {
  if (!(from < to)) return;
  const size = FIXED[interval];
  if (size !== undefined) {
    for (let start = Math.floor(from / size) * size; start < to; start += size) yield fixedBucket(size, start);
    return;
  }
  for (let first = firstDate(interval, localDateOf(from), week); ; first = nextDate(interval, first)) {
    const bucket = calendarBucket(interval, first, week);
    if (bucket.start >= to) return;
    yield bucket;
  }
}

/**
 * The UTC boundaries of the buckets that meet [from, to): every bucket's start, then the last one's end
 * (n buckets, n + 1 boundaries). For an engine that can only group by UTC hour (or fixed offset): the
 * hours in [b[i], b[i+1]) make bucket i, since every boundary is on a whole UTC hour from 1914 on.
 */
export function bucketBoundaries(interval: CalendarInterval, from: number, to: number, week: WeekRule = DEFAULT_WEEK_RULE): number[] {
  const out: number[] = [];
  for (const b of bucketsCovering(interval, from, to, week)) {
    if (out.length === 0) out.push(b.start);
    out.push(b.end);
  }
  return out;
}

/** A stretch of time with one UTC offset. */
export interface OffsetPeriod {
  /** UTC epoch ms, inclusive. */
  readonly start: number;
  /** UTC epoch ms, exclusive. */
  readonly end: number;
  /** Local minus UTC, ms (-3 h standard time, -2 h daylight saving). */
  readonly offset: number;
}

/**
 * [from, to) cut where the zone's offset changes. For an engine that groups by a fixed offset (shift
 * the time by `offset`, then cut UTC days): one query per period gives local days, and local months
 * and years are unions of those days.
 */
export function offsetPeriods(from: number, to: number): OffsetPeriod[] {
  const out: OffsetPeriod[] = [];
  let start = from;
  let offset = offsetAt(from);
  // The zone never changed its offset twice within a day, and changes it on whole UTC hours (from 1914):
  // walk a day at a time, and hour by hour only through the day whose ends differ.
  for (let t = from; t < to;) {
    const next = Math.min(t + DAY, to);
    if (offsetAt(next) === offset) {
      t = next;
      continue;
    }
    let change = Math.floor(t / HOUR) * HOUR + HOUR;
    while (offsetAt(change) === offset) change += HOUR;
    if (change >= to) break;
    out.push({ start, end: change, offset });
    start = t = change;
    offset = offsetAt(change);
  }
  out.push({ start, end: to, offset });
  return out;
}
