import { bucketOf, CalendarBucket, DEFAULT_WEEK_RULE, isCalendarInterval, localDayStart, offsetPeriods } from '../../ons/calendar';
import { TimeSeriesPoint } from '../contract';
import type { Interval, TimeSeriesQuery } from './request';

/**
 * How every engine turns a request's interval into calendar buckets (ons/calendar.ts is the calendar; this file
 * only says how an engine's query reaches it), and the labels of an aggregated point.
 *
 * The SQL engines (Timestream, the lake) cut the local calendar in SQL without any time-zone database: the local
 * wall clock of `time` is `date_add('hour', <offset>, time)`, the offset a CASE over the stretches of one UTC
 * offset that `offsetPeriods(from, to)` gives for the request's range (instants the handler computes from the zone
 * data, never user text); then `date_trunc` cuts the local day, ISO week (Monday), month or year, and the ONS week
 * (Saturday) is the ISO week of the day two days later, moved back two days. A row's bucket is that local date,
 * which `bucketOfLocalDate` maps back to the calendar's bucket (its UTC start and labels). So the SQL engines, the
 * InfluxDB engine (which folds day pieces with the calendar) and the handler agree by construction: one calendar,
 * and the SQL only reproduces its local dates.
 *
 * Functions relied on: Trino's (Athena engine 3) and Timestream's `date_add(unit, value, timestamp)` and
 * `date_trunc(unit, timestamp)`, whose `week` is the Monday-starting ISO week (Trino "Date and time functions",
 * Truncation function; Timestream developer guide, "Date / time functions"; both compute in UTC on a `timestamp`,
 * Timestream's only zone).
 */

const HOUR = 3_600_000;

/** True when the interval is cut in local calendar days (`1d`, `1w`, `1mo`, `1y`): the engines group by local date. */
export const isCalendar = (q: TimeSeriesQuery): boolean => q.interval !== null && isCalendarInterval(q.interval);

/**
 * The local wall clock of `column` (a UTC `timestamp`) over [from, to): `date_add('hour', <offset>, column)` with
 * the offset of each stretch of `offsetPeriods`; `instant` writes a UTC instant as the engine's timestamp literal.
 * Whole hours: every offset of the zone since 1914 is one. The widest range the API accepts (1900 to 2100) has 91
 * offset changes: about 13 KB of SQL, far below Athena's 262,144-byte query string (Athena Service Quotas).
 */
export function localTimeSql(column: string, from: number, to: number, instant: (ms: number) => string): string {
  const periods = offsetPeriods(from, to);
  const hours = (offset: number) => String(Math.round(offset / HOUR));
  if (periods.length === 1) return `date_add('hour', ${hours(periods[0].offset)}, ${column})`;
  const branches = periods.slice(0, -1).map((p) => `WHEN ${column} < ${instant(p.end)} THEN ${hours(p.offset)}`);
  return `date_add('hour', CASE ${branches.join(' ')} ELSE ${hours(periods[periods.length - 1].offset)} END, ${column})`;
}

/**
 * The SQL of a calendar bucket's first local date (a `timestamp` at local midnight, as wall clock) of `column`, for
 * `1d`, `1w` (by the request's week rule), `1mo` and `1y`.
 */
export function calendarBucketSql(q: TimeSeriesQuery, column: string, instant: (ms: number) => string): string {
  const local = localTimeSql(column, Date.parse(q.from), Date.parse(q.to), instant);
  switch (q.interval) {
    case '1d': return `date_trunc('day', ${local})`;
    case '1mo': return `date_trunc('month', ${local})`;
    case '1y': return `date_trunc('year', ${local})`;
    case '1w':
      // ISO weeks start on Monday (date_trunc's week); an ONS week (Saturday to Friday) is the ISO week of the day two days on, less two days.
      return (q.week ?? DEFAULT_WEEK_RULE) === 'iso'
        ? `date_trunc('week', ${local})`
        : `date_add('day', -2, date_trunc('week', date_add('day', 2, ${local})))`;
    default: throw new Error(`not a calendar interval: ${q.interval}`);
  }
}

const LOCAL_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[ T]00:00:00(?:\.0*)?)?$/;

/**
 * The calendar bucket whose first local date an engine returned (`YYYY-MM-DD`, optionally with a midnight time):
 * the bucket of the first instant of that date. Throws on anything else (an engine answering outside the calendar).
 */
export function bucketOfLocalDate(q: TimeSeriesQuery, text: string): CalendarBucket {
  const m = LOCAL_DATE.exec(text);
  if (!m) throw new Error(`not a local date at midnight: ${text}`);
  const bucket = bucketOf(q.interval!, localDayStart(Date.UTC(+m[1], +m[2] - 1, +m[3])), q.week);
  if (bucket.local !== `${m[1]}-${m[2]}-${m[3]}`) throw new Error(`${text} does not start a ${q.interval} bucket`);
  return bucket;
}

/** The bucket of an interval that holds an instant (sub-day intervals: the fixed UTC bin). */
export const bucketAt = (q: TimeSeriesQuery, instant: number): CalendarBucket => bucketOf(q.interval as Interval, instant, q.week);

/** An aggregated point: `time` the UTC instant its bucket starts, `local` and `period` its calendar labels. */
export function aggregatedPoint(bucket: CalendarBucket, dimensions: Record<string, string | null>, value: number | null): TimeSeriesPoint {
  return { time: new Date(bucket.start).toISOString(), local: bucket.local, period: bucket.name, dimensions, value };
}
