import { RequestError } from '../../src/runtime/http';
import { bucketOfLocalDate, calendarBucketSql, localTimeSql } from '../../src/timeseries/runtime/buckets';
import { parseRequest, QueryConfig, TimeSeriesQuery } from '../../src/timeseries/runtime/request';

/**
 * How the SQL engines reach the calendar (runtime/buckets.ts): the local wall clock by a CASE over the range's UTC
 * offsets, the bucket SQL of each calendar interval, and a returned local date mapped back to its bucket. The
 * engines' answers on real data are checked by the query contract; this pins the pieces.
 */

const config: QueryConfig = { tables: { curva_carga: 'curva_carga' }, maxPoints: 100 };
const query = (params: Record<string, string>): TimeSeriesQuery => parseRequest('curva_carga', params, null, config, () => 'key');
const instant = (ms: number) => `T'${new Date(ms).toISOString()}'`;

test('the local clock over 2013: -02:00 until DST ended, -03:00, then -02:00 from DST start', () => {
  expect(localTimeSql('time', Date.parse('2013-01-01T00:00:00Z'), Date.parse('2014-01-01T00:00:00Z'), instant)).toBe(
    "date_add('hour', CASE WHEN time < T'2013-02-17T02:00:00.000Z' THEN -2 WHEN time < T'2013-10-20T03:00:00.000Z' THEN -3 ELSE -2 END, time)");
});

test('one offset (after 2019): no CASE', () => {
  expect(localTimeSql('"time"', Date.parse('2023-01-01T00:00:00Z'), Date.parse('2024-01-01T00:00:00Z'), instant)).toBe("date_add('hour', -3, \"time\")");
});

test.each([
  ['1d', {}, "date_trunc('day', date_add('hour', -3, time))"],
  ['1mo', {}, "date_trunc('month', date_add('hour', -3, time))"],
  ['1y', {}, "date_trunc('year', date_add('hour', -3, time))"],
  ['1w', { week: 'iso' }, "date_trunc('week', date_add('hour', -3, time))"],
  ['1w', { week: 'ons' }, "date_add('day', -2, date_trunc('week', date_add('day', 2, date_add('hour', -3, time))))"],
  ['1w', {}, "date_add('day', -2, date_trunc('week', date_add('day', 2, date_add('hour', -3, time))))"],
])('%s %j', (interval, extra, sql) => {
  expect(calendarBucketSql(query({ from: '2023-01-01', to: '2023-03-01', interval, ...extra }), 'time', instant)).toBe(sql);
});

test('a local date back to its bucket: the DST-start day starts at 01:00 local (03:00Z) and has 23 hours', () => {
  const b = bucketOfLocalDate(query({ from: '2013-10-01', to: '2013-11-01', interval: '1d' }), '2013-10-20 00:00:00.000000000');
  expect({ ...b, hours: (b.end - b.start) / 3_600_000 }).toEqual({
    start: Date.parse('2013-10-20T03:00:00Z'), end: Date.parse('2013-10-21T02:00:00Z'), local: '2013-10-20', name: '2013-10-20', hours: 23,
  });
  const week = bucketOfLocalDate(query({ from: '2013-02-01', to: '2013-03-01', interval: '1w' }), '2013-02-16 00:00:00.000');
  expect(week).toMatchObject({ local: '2013-02-16', name: '2013-02-S4', start: Date.parse('2013-02-16T02:00:00Z'), end: Date.parse('2013-02-23T03:00:00Z') });
});

test.each([
  ['not the first day of an ONS week (a Monday)', { interval: '1w' }, '2013-02-18'],
  ['not the first day of a month', { interval: '1mo' }, '2013-02-02'],
  ['not midnight', { interval: '1d' }, '2013-02-02 03:00:00'],
  ['not a date', { interval: '1d' }, 'x'],
])('an engine answer outside the calendar is an error, not a point: %s', (_name, params, text) => {
  const q = query({ from: '2013-01-01', to: '2014-01-01', ...params });
  expect(() => bucketOfLocalDate(q, text)).toThrow(Error);
  expect(() => bucketOfLocalDate(q, text)).not.toThrow(RequestError);
});
