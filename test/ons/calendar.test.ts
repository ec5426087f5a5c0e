import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  bucketBoundaries, bucketOf, bucketsCovering, CALENDAR_INTERVALS, CalendarBucket, CalendarInterval, DEFAULT_WEEK_RULE,
  isCalendarInterval, offsetPeriods, WeekRule,
} from '../../src/ons/calendar';
import { ONS_DATA } from '../ons-data';

/**
 * The calendar of time-series buckets against an oracle written here from the tz database, not from
 * Intl: the daylight-saving dates of America/Sao_Paulo (tzdata `southamerica`, Rule Brazil, from the
 * decrees) as data, the offset they imply, and local days, weeks, months and years derived from them.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * Brazilian daylight saving seen in America/Sao_Paulo from 1999 to its end, as [first Sunday of DST, the
 * Sunday it ended] (local dates). Both changes happen at local midnight (Rule Brazil `0:00`): DST starts
 * at 00:00 -03:00, which becomes 01:00 -02:00 (03:00Z); it ends at 00:00 -02:00, which becomes 23:00 -03:00
 * of the Saturday before (02:00Z). Decree 9,772 of 2019-04-25 abolished it: the one of 2018-11-04 was the last.
 */
const DST: ReadonlyArray<readonly [string, string]> = [
  ['1999-10-03', '2000-02-27'], // Rules 1999 only Oct 3; 2000 only Feb 27
  ['2000-10-08', '2001-02-18'], // 2000-2001 Oct Sun>=8; 2001-2006 Feb Sun>=15
  ['2001-10-14', '2002-02-17'],
  ['2002-11-03', '2003-02-16'], // 2002 only Nov 3
  ['2003-10-19', '2004-02-15'], // 2003 only Oct 19
  ['2004-11-02', '2005-02-20'], // 2004 only Nov 2 (a Tuesday, All Souls' Day)
  ['2005-10-16', '2006-02-19'], // 2005 only Oct 16
  ['2006-11-05', '2007-02-25'], // 2006 only Nov 5; 2007 only Feb 25
  ['2007-10-14', '2008-02-17'], // 2007 only Oct Sun>=8; 2008-2011 Feb Sun>=15
  ['2008-10-19', '2009-02-15'], // 2008-2017 Oct Sun>=15
  ['2009-10-18', '2010-02-21'],
  ['2010-10-17', '2011-02-20'],
  ['2011-10-16', '2012-02-26'], // 2012 only Feb Sun>=22 (Carnival)
  ['2012-10-21', '2013-02-17'], // 2013-2014 Feb Sun>=15
  ['2013-10-20', '2014-02-16'],
  ['2014-10-19', '2015-02-22'], // 2015 only Feb Sun>=22 (Carnival)
  ['2015-10-18', '2016-02-21'], // 2016-2019 Feb Sun>=15
  ['2016-10-16', '2017-02-19'],
  ['2017-10-15', '2018-02-18'],
  ['2018-11-04', '2019-02-17'], // 2018 only Nov Sun>=1 (Decree 9,242); then none (Decree 9,772)
];
const dateMs = (date: string) => Date.parse(`${date}T00:00:00Z`);
const DST_UTC = DST.map(([start, end]) => [dateMs(start) + 3 * HOUR, dateMs(end) + 2 * HOUR] as const);
const ORACLE_FROM = Date.UTC(1999, 9, 3, 3);
const ORACLE_TO = Date.UTC(2032, 0, 1);

/** Local minus UTC at an instant, from the table: -2 h inside a DST period, else -3 h. */
function oracleOffset(t: number): number {
  if (t < ORACLE_FROM || t >= ORACLE_TO) throw new Error('outside the oracle');
  return DST_UTC.some(([s, e]) => t >= s && t < e) ? -2 * HOUR : -3 * HOUR;
}
/** The local civil date of an instant (UTC-midnight ms). */
const oracleDate = (t: number) => Math.floor((t + oracleOffset(t)) / DAY) * DAY;
/** The first instant whose local date is `date`: its midnight, or 01:00 where midnight was skipped. */
function oracleDayStart(date: number): number {
  for (const offset of [-3 * HOUR, -2 * HOUR]) if (oracleOffset(date - offset) === offset) return date - offset;
  return date + 3 * HOUR; // midnight skipped: the day starts at the transition
}
const day = (text: string) => dateMs(text);
const iso = (t: number) => new Date(t).toISOString();
const span = (b: CalendarBucket) => (b.end - b.start) / HOUR;

/** The oracle's first local date of the bucket of a local date. */
function oracleFirstDate(interval: CalendarInterval, date: number, week: WeekRule): number {
  const d = new Date(date);
  if (interval === '1d') return date;
  if (interval === '1mo') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  if (interval === '1y') return Date.UTC(d.getUTCFullYear(), 0, 1);
  // Walk back to the week's first weekday: Monday (1) for ISO, Saturday (6) for ONS.
  let first = date;
  while (new Date(first).getUTCDay() !== (week === 'iso' ? 1 : 6)) first -= DAY;
  return first;
}

/**
 * ISO 8601 week of a Monday, by the rule "week 1 is the week holding 4 January" (the implementation uses
 * the equivalent Thursday rule).
 */
function oracleIsoWeek(monday: number): string {
  const mondayOfWeek1 = (year: number) => oracleFirstDate('1w', Date.UTC(year, 0, 4), 'iso');
  let year = new Date(monday).getUTCFullYear() + 1;
  while (mondayOfWeek1(year) > monday) year--;
  return `${year}-W${String((monday - mondayOfWeek1(year)) / (7 * DAY) + 1).padStart(2, '0')}`;
}

describe('days, months and years are the civil calendar of America/Sao_Paulo', () => {
  test('the oracle table agrees with itself: DST periods run October/November to February, Sundays except 2004-11-02', () => {
    for (const [start, end] of DST) {
      expect([start, new Date(dateMs(start)).getUTCDay()]).toEqual([start, start === '2004-11-02' ? 2 : 0]);
      expect(new Date(dateMs(end)).getUTCDay()).toBe(0);
    }
  });

  test.each([
    ['2013-10-20', '2013-10-20T03:00:00.000Z', 23], // DST start: midnight skipped, the day starts at 01:00 -02:00
    ['2013-02-16', '2013-02-16T02:00:00.000Z', 25], // the Saturday before DST ended: 23:00 happened twice
    ['2017-10-15', '2017-10-15T03:00:00.000Z', 23],
    ['2018-02-17', '2018-02-17T02:00:00.000Z', 25],
    ['2018-11-04', '2018-11-04T03:00:00.000Z', 23], // the last DST start
    ['2019-02-16', '2019-02-16T02:00:00.000Z', 25], // the last DST end
    ['2004-11-02', '2004-11-02T03:00:00.000Z', 23], // a Tuesday
    ['2019-11-03', '2019-11-03T03:00:00.000Z', 24], // would have been DST under the old rules: none since 2019
    ['2023-01-01', '2023-01-01T03:00:00.000Z', 24],
  ])('the local day %s starts at %s and has %d hours', (date, start, hours) => {
    for (const t of [Date.parse(start), Date.parse(start) + hours * HOUR - 1]) {
      const b = bucketOf('1d', t);
      expect({ start: iso(b.start), hours: span(b), local: b.local, name: b.name }).toEqual({ start, hours, local: date, name: date });
    }
    expect(bucketOf('1d', Date.parse(start) - 1).name).not.toBe(date);
    expect(bucketOf('1d', Date.parse(start) + hours * HOUR).name).not.toBe(date);
  });

  test('every local day of 2019-02-17 to 2030 has 24 hours and starts at 03:00Z (no DST since 2019)', () => {
    const days = [...bucketsCovering('1d', Date.parse('2019-02-17T03:00:00Z'), Date.UTC(2031, 0, 1, 3))];
    expect(days).toHaveLength((Date.UTC(2031, 0, 1) - Date.UTC(2019, 1, 17)) / DAY);
    expect(days.filter((b) => span(b) !== 24 || new Date(b.start).getUTCHours() !== 3)).toEqual([]);
  });

  test('February 2013, across the DST end: 28 days and 1 hour, from 02:00Z to 03:00Z', () => {
    const feb = bucketOf('1mo', Date.parse('2013-02-17T12:00:00Z'));
    expect({ ...feb, start: iso(feb.start), end: iso(feb.end) }).toEqual({
      start: '2013-02-01T02:00:00.000Z', end: '2013-03-01T03:00:00.000Z', local: '2013-02-01', name: '2013-02',
    });
    expect(span(feb)).toBe(28 * 24 + 1);
    // Its last three hours in UTC (00:00Z to 03:00Z of 1 March) are still February in Brasília.
    expect(bucketOf('1mo', Date.parse('2013-03-01T02:59:59.999Z')).name).toBe('2013-02');
    expect(bucketOf('1mo', Date.parse('2013-03-01T03:00:00Z')).name).toBe('2013-03');
    // October 2013 loses an hour; March 2013 has none of the changes.
    expect(span(bucketOf('1mo', Date.parse('2013-10-10T00:00:00Z')))).toBe(31 * 24 - 1);
    expect(span(bucketOf('1mo', Date.parse('2013-03-10T00:00:00Z')))).toBe(31 * 24);
  });

  test('years start at local midnight of 1 January, in DST (02:00Z) until 2019, in standard time after', () => {
    expect([2000, 2013, 2019, 2020, 2030].map((y) => iso(bucketOf('1y', Date.UTC(y, 5, 1)).start))).toEqual([
      '2000-01-01T02:00:00.000Z', '2013-01-01T02:00:00.000Z', '2019-01-01T02:00:00.000Z', '2020-01-01T03:00:00.000Z', '2030-01-01T03:00:00.000Z',
    ]);
    // 2019 began in DST and ended without: 365 days and 1 hour.
    expect(span(bucketOf('1y', Date.UTC(2019, 5, 1)))).toBe(365 * 24 + 1);
  });
});

describe('the whole range the API accepts, 1900 to 2100', () => {
  test('local days are contiguous and last 23, 24 or 25 hours, but 1 January 1914, when local mean time (-03:06:28) ended', () => {
    const days = [...bucketsCovering('1d', Date.UTC(1900, 0, 1), Date.UTC(2100, 0, 1))];
    // 00:00Z of 1 January 1900 is still 31 December 1899 in Brasília.
    expect(days[0].name).toBe('1899-12-31');
    expect(days.slice(1).filter((b, i) => b.start !== days[i].end)).toEqual([]);
    const odd = days.filter((b) => ![23, 24, 25].includes(span(b))).map((b) => [b.name, iso(b.start), span(b).toFixed(4)]);
    // tzdata: LMT until 1914-01-01 00:00 local (03:06:28Z), then -03:00: that day starts at 00:06:28 and has 23 h 53 min 32 s.
    expect(odd).toEqual([['1914-01-01', '1914-01-01T03:06:28.000Z', (23 + 53 / 60 + 32 / 3600).toFixed(4)]]);
    // As many 23-hour days as 25-hour ones: every DST season that began also ended.
    expect(days.filter((b) => span(b) === 23).length).toBe(days.filter((b) => span(b) === 25).length);
  });

  test('an empty range has no buckets; isCalendarInterval tells the local-calendar intervals from the UTC steps', () => {
    expect([...bucketsCovering('1d', Date.UTC(2013, 0, 1), Date.UTC(2013, 0, 1))]).toEqual([]);
    expect(bucketBoundaries('1mo', Date.UTC(2013, 1, 1), Date.UTC(2013, 0, 1))).toEqual([]);
    expect(CALENDAR_INTERVALS.filter(isCalendarInterval)).toEqual(['1d', '1w', '1mo', '1y']);
  });
});

describe('weeks: ISO (Monday to Sunday) and ONS operative (Saturday to Friday)', () => {
  test(`the default is ${DEFAULT_WEEK_RULE}`, () => {
    expect(DEFAULT_WEEK_RULE).toBe('ons');
    expect(bucketOf('1w', Date.parse('2013-01-01T12:00:00Z'))).toEqual(bucketOf('1w', Date.parse('2013-01-01T12:00:00Z'), 'ons'));
  });

  test('across the 2012/2013 year boundary', () => {
    const t = Date.parse('2013-01-01T12:00:00Z');
    const ons = bucketOf('1w', t, 'ons');
    const isoWeek = bucketOf('1w', t, 'iso');
    // In DST (-02:00): local midnight is 02:00Z.
    expect({ start: iso(ons.start), end: iso(ons.end), local: ons.local, name: ons.name }).toEqual({
      start: '2012-12-29T02:00:00.000Z', end: '2013-01-05T02:00:00.000Z', local: '2012-12-29', name: '2013-01-S1',
    });
    expect({ start: iso(isoWeek.start), end: iso(isoWeek.end), local: isoWeek.local, name: isoWeek.name }).toEqual({
      start: '2012-12-31T02:00:00.000Z', end: '2013-01-07T02:00:00.000Z', local: '2012-12-31', name: '2013-W01',
    });
    // 2014-12-29 (Monday) opens ISO week 1 of 2015; 2010-01-03 (Sunday) closes week 53 of 2009.
    expect(bucketOf('1w', Date.parse('2014-12-30T12:00:00Z'), 'iso').name).toBe('2015-W01');
    expect(bucketOf('1w', Date.parse('2010-01-03T12:00:00Z'), 'iso').name).toBe('2009-W53');
  });

  test('ISO week 53: 2020-12-28 to 2021-01-03, and the years that have one', () => {
    const w53 = bucketOf('1w', Date.parse('2021-01-01T12:00:00Z'), 'iso');
    expect({ start: iso(w53.start), end: iso(w53.end), name: w53.name }).toEqual({
      start: '2020-12-28T03:00:00.000Z', end: '2021-01-04T03:00:00.000Z', name: '2020-W53',
    });
    const weeks = new Map<string, number>();
    for (const b of bucketsCovering('1w', Date.UTC(2000, 0, 3, 12), Date.UTC(2030, 11, 29, 12), 'iso')) {
      const year = b.name.slice(0, 4);
      weeks.set(year, (weeks.get(year) ?? 0) + 1);
    }
    // Years starting on a Thursday, and leap years starting on a Wednesday.
    const long = ['2004', '2009', '2015', '2020', '2026'];
    for (const [year, n] of weeks) expect([year, n]).toEqual([year, long.includes(year) ? 53 : 52]);
  });

  test('a week across the DST start (167 h) and the DST end (169 h), both rules', () => {
    for (const week of ['ons', 'iso'] as const) {
      expect([week, span(bucketOf('1w', Date.parse('2013-10-20T12:00:00Z'), week))]).toEqual([week, 167]);
      expect([week, span(bucketOf('1w', Date.parse('2013-02-16T12:00:00Z'), week))]).toEqual([week, 169]);
    }
    // The ONS week of the DST start: Saturday 19 October 00:00 -03:00 to Saturday 26 October 00:00 -02:00.
    const ons = bucketOf('1w', Date.parse('2013-10-20T12:00:00Z'), 'ons');
    expect([iso(ons.start), iso(ons.end), ons.local, ons.name]).toEqual(['2013-10-19T03:00:00.000Z', '2013-10-26T02:00:00.000Z', '2013-10-19', '2013-10-S4']);
  });

  test('the ONS operative weeks of CMO_SEMANAL_2013: each row, dated by its Friday, is the last day of its own week, named in 2013', () => {
    const lines = readFileSync(join(ONS_DATA, 'CMO_SEMANAL_2013.csv'), 'utf8').trim().split('\n');
    const column = lines[0].split(';').indexOf('din_instante');
    const fridays = [...new Set(lines.slice(1).map((l) => l.split(';')[column]))];
    expect(fridays).toHaveLength(52);
    const names = new Set<string>();
    for (const friday of fridays) {
      const week = bucketOf('1w', oracleDayStart(day(friday)), 'ons');
      expect({ friday, last: iso(oracleDate(week.end - 1)).slice(0, 10), first: week.local, name: week.name.slice(0, 7) })
        .toEqual({ friday, last: friday, first: iso(day(friday) - 6 * DAY).slice(0, 10), name: friday.slice(0, 7) });
      names.add(week.name);
    }
    expect(names.size).toBe(52);
    expect([...names].slice(0, 6)).toEqual(['2013-01-S1', '2013-01-S2', '2013-01-S3', '2013-01-S4', '2013-02-S1', '2013-02-S2']);
    expect([...names].at(-1)).toBe('2013-12-S4');
    // The next week (28 Dec 2013 to 3 Jan 2014) belongs to 2014, as in the CMO_SEMANAL_2014 file.
    expect(bucketOf('1w', Date.parse('2013-12-28T12:00:00Z'), 'ons').name).toBe('2014-01-S1');
  });
});

describe('sub-day buckets are UTC-aligned, labelled with the local time and offset', () => {
  test('30 min and 1 h through the repeated hour of 2013-02-16', () => {
    const labels = [...bucketsCovering('1h', Date.parse('2013-02-17T00:00:00Z'), Date.parse('2013-02-17T04:00:00Z'))].map((b) => [iso(b.start), b.local]);
    expect(labels).toEqual([
      ['2013-02-17T00:00:00.000Z', '2013-02-16T22:00-02:00'],
      ['2013-02-17T01:00:00.000Z', '2013-02-16T23:00-02:00'],
      ['2013-02-17T02:00:00.000Z', '2013-02-16T23:00-03:00'],
      ['2013-02-17T03:00:00.000Z', '2013-02-17T00:00-03:00'],
    ]);
    const half = bucketOf('30m', Date.parse('2013-10-20T03:45:00Z'));
    expect([iso(half.start), iso(half.end), half.local, half.name]).toEqual(['2013-10-20T03:30:00.000Z', '2013-10-20T04:00:00.000Z', '2013-10-20T01:30-02:00', '2013-10-20T01:30-02:00']);
  });
});

describe('every hour of 2000 to 2030', () => {
  const from = Date.UTC(2000, 0, 1, 3);
  const to = Date.UTC(2031, 0, 1, 3);
  const cases: ReadonlyArray<readonly [CalendarInterval, WeekRule]> = [
    ['1d', 'ons'], ['1w', 'ons'], ['1w', 'iso'], ['1mo', 'ons'], ['1y', 'ons'], ['1h', 'ons'], ['30m', 'ons'],
  ];

  test.each(cases)('%s (week %s): bucketOf(hour) holds the hour and equals the oracle\'s bucket', (interval, week) => {
    const wrong: string[] = [];
    for (let t = from; t < to; t += HOUR) {
      const b = bucketOf(interval, t + 1_234, week);
      let start: number;
      let end: number;
      if (interval === '1h' || interval === '30m') {
        start = t;
        end = t + (interval === '1h' ? HOUR : HOUR / 2);
      } else {
        const first = oracleFirstDate(interval, oracleDate(t), week);
        const next = interval === '1d' ? first + DAY : interval === '1w' ? first + 7 * DAY
          : interval === '1mo' ? Date.UTC(new Date(first).getUTCFullYear(), new Date(first).getUTCMonth() + 1, 1) : Date.UTC(new Date(first).getUTCFullYear() + 1, 0, 1);
        start = oracleDayStart(first);
        end = oracleDayStart(next);
        const name = interval === '1d' ? iso(first).slice(0, 10) : interval === '1mo' ? iso(first).slice(0, 7) : interval === '1y' ? iso(first).slice(0, 4)
          : week === 'iso' ? oracleIsoWeek(first) : b.name;
        if (b.name !== name || b.local !== iso(first).slice(0, 10)) wrong.push(`${iso(t)}: ${b.name} ${b.local}, expected ${name}`);
      }
      if (b.start !== start || b.end !== end || !(b.start <= t + 1_234 && t + 1_234 < b.end)) {
        wrong.push(`${iso(t)}: [${iso(b.start)}, ${iso(b.end)}), expected [${iso(start)}, ${iso(end)})`);
      }
      if (wrong.length > 5) break;
    }
    expect(wrong).toEqual([]);
  });

  test.each(CALENDAR_INTERVALS.filter((i) => !['1m', '5m', '15m'].includes(i)).flatMap((i) => [[i, 'ons'], [i, 'iso']] as const))(
    '%s (week %s): bucketsCovering is contiguous, covers the range, names strictly increase', (interval, week) => {
      const subDay = interval === '30m' || interval === '1h';
      // Sub-day buckets are fixed UTC steps: the years 2012 to 2014 (two DST ends, two starts) show their labels.
      const [lo, hi] = subDay ? [Date.UTC(2012, 0, 1, 0, 17), Date.UTC(2015, 0, 1)] : [from + 17 * 60_000, to];
      const buckets = [...bucketsCovering(interval, lo, hi, week)];
      expect(buckets[0].start).toBeLessThanOrEqual(lo);
      expect(buckets[0].end).toBeGreaterThan(lo);
      expect(buckets.at(-1)!.start).toBeLessThan(hi);
      expect(buckets.at(-1)!.end).toBeGreaterThanOrEqual(hi);
      // Calendar names sort as text; a sub-day label (a local time repeats when DST ends) is read as the ISO-8601 instant it is.
      const order = (label: string) => subDay ? Date.parse(label) : label;
      const breaks = buckets.slice(1).filter((b, i) => b.start !== buckets[i].end
        || !(order(b.name) > order(buckets[i].name)) || !(order(b.local) > order(buckets[i].local)));
      expect(breaks).toEqual([]);
      if (subDay) expect(buckets.filter((b) => Date.parse(b.local) !== b.start)).toEqual([]);
      const boundaries = bucketBoundaries(interval, lo, hi, week);
      expect(boundaries).toEqual([buckets[0].start, ...buckets.map((b) => b.end)]);
      // Every calendar boundary on a whole UTC hour: hourly UTC groups fold into these buckets.
      if (!subDay) expect(boundaries.filter((b) => b % HOUR !== 0)).toEqual([]);
    });

  test('offsetPeriods: the DST periods of the table, exactly', () => {
    const periods = offsetPeriods(from, to);
    const expected: Array<{ start: number; end: number; offset: number }> = [];
    let start = from;
    for (const [s, e] of DST_UTC) {
      if (e <= from) continue;
      if (s > start) expected.push({ start, end: s, offset: -3 * HOUR });
      expected.push({ start: Math.max(s, from), end: e, offset: -2 * HOUR });
      start = e;
    }
    expected.push({ start, end: to, offset: -3 * HOUR });
    expect(periods.map((p) => [iso(p.start), iso(p.end), p.offset / HOUR])).toEqual(expected.map((p) => [iso(p.start), iso(p.end), p.offset / HOUR]));
  });
});

describe('real data: CURVA_CARGA_2023 summed per local day', () => {
  const lines = readFileSync(join(ONS_DATA, 'CURVA_CARGA_2023.csv'), 'utf8').trim().split('\n');
  const header = lines[0].split(';');
  const time = header.indexOf('din_instante');
  const value = header.indexOf('val_cargaenergiahomwmed');
  const rows = lines.slice(1).map((l) => l.split(';'));

  /** The oracle's instant of a local `YYYY-MM-DD HH:MM:SS` (a skipped time moves forward by the gap). */
  function instantOf(text: string): number {
    const wall = Date.parse(`${text.replace(' ', 'T')}Z`);
    const valid = [-3 * HOUR, -2 * HOUR].map((o) => wall - o).filter((t) => oracleOffset(t) === wall - t);
    return valid.length ? Math.min(...valid) : wall + 3 * HOUR;
  }

  test.each([
    ['as published (2023, no DST)', 2023],
    ['moved to 2013 (DST ended 17 February, started 20 October)', 2013],
  ])('%s: sums per local date equal sums per 1d bucket (and per month)', (_, year) => {
    const byDate = new Map<string, number>();
    const byBucket = new Map<string, number>();
    const byMonth = new Map<string, number>();
    const byMonthBucket = new Map<string, number>();
    const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
    for (const r of rows) {
      if (r[value] === '') continue;
      const text = `${year}${r[time].slice(4)}`;
      const v = Number(r[value]);
      add(byDate, text.slice(0, 10), v);
      add(byMonth, text.slice(0, 7), v);
      const t = instantOf(text);
      add(byBucket, bucketOf('1d', t).name, v);
      add(byMonthBucket, bucketOf('1mo', t).name, v);
    }
    expect(byBucket.size).toBe(365);
    expect([...byBucket.keys()]).toEqual([...byDate.keys()]);
    for (const [date, sum] of byDate) expect(Math.abs(byBucket.get(date)! - sum)).toBeLessThanOrEqual(Math.abs(sum) * 1e-12);
    expect([...byMonthBucket.keys()]).toEqual([...byMonth.keys()]);
    for (const [month, sum] of byMonth) expect(Math.abs(byMonthBucket.get(month)! - sum)).toBeLessThanOrEqual(Math.abs(sum) * 1e-12);
  });

  test('the UTC-cut day (what the engines did) differs: the last three local hours land in the next UTC day', () => {
    const utcDay = (text: string) => iso(instantOf(text)).slice(0, 10);
    expect(utcDay('2023-01-31 21:00:00')).toBe('2023-02-01');
    expect(bucketOf('1d', instantOf('2023-01-31 21:00:00')).name).toBe('2023-01-31');
  });
});
