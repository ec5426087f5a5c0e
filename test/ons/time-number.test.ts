import { parseMeasure } from '../../src/ons/number';
import { brasiliaToUtc, parseLocalTime } from '../../src/ons/time';

const utc = (text: string) => {
  const t = parseLocalTime(text);
  if (typeof t === 'string') throw new Error(t);
  return new Date(t.utc).toISOString();
};

describe('Brasília civil time to UTC', () => {
  test.each([
    // Without daylight saving (UTC-3).
    ['2023-01-01 00:00:00', '2023-01-01T03:00:00.000Z'],
    ['2021-07-15 12:30:00', '2021-07-15T15:30:00.000Z'],
    // Summer time in force (UTC-2), e.g. January 2013 and December 2018.
    ['2013-01-15 10:00:00', '2013-01-15T12:00:00.000Z'],
    ['2018-12-01 00:00:00', '2018-12-01T02:00:00.000Z'],
    // 2018-11-04 00:00-00:59 did not exist (clocks jumped to 01:00): move forward by the gap.
    ['2018-11-04 00:00:00', '2018-11-04T03:00:00.000Z'],
    ['2018-11-04 00:30:00', '2018-11-04T03:30:00.000Z'],
    ['2018-11-04 01:00:00', '2018-11-04T03:00:00.000Z'],
    // 2019-02-16 23:00-23:59 happened twice (clocks went back at 00:00): take the earlier instant.
    ['2019-02-16 23:30:00', '2019-02-17T01:30:00.000Z'],
    ['2019-02-17 00:00:00', '2019-02-17T03:00:00.000Z'],
    // Date only: local midnight.
    ['2013-12-01', '2013-12-01T02:00:00.000Z'],
    ['2022-06-30', '2022-06-30T03:00:00.000Z'],
    // Other spellings.
    ['2023-01-01T05:00:00', '2023-01-01T08:00:00.000Z'],
    ['2023-01-01 05:00', '2023-01-01T08:00:00.000Z'],
    ['01/06/2023 00:00:00', '2023-06-01T03:00:00.000Z'],
    ['1/6/2023', '2023-06-01T03:00:00.000Z'],
    ['25/12/2023', '2023-12-25T03:00:00.000Z'],
  ])('%s → %s', (local, expected) => {
    expect(utc(local)).toBe(expected);
  });

  test('keeps the normalised wall-clock', () => {
    expect(parseLocalTime('1/6/2023')).toMatchObject({ iso: '2023-06-01T00:00:00' });
    expect(parseLocalTime('2013-02-02 00:00:01')).toMatchObject({ iso: '2013-02-02T00:00:01' });
  });

  test('an ambiguous hour gives two distinct instants an hour apart from its neighbours', () => {
    // 22:30 (first pass, UTC-2) < 23:30 (first pass) < 00:30 next day (UTC-3).
    const times = ['2019-02-16 22:30:00', '2019-02-16 23:30:00', '2019-02-17 00:30:00'].map(utc);
    expect(times).toEqual(['2019-02-17T00:30:00.000Z', '2019-02-17T01:30:00.000Z', '2019-02-17T03:30:00.000Z']);
  });

  test.each([
    ['2023-02-30 00:00:00', "'2023-02-30 00:00:00' is not a valid date-time"],
    ['2023-13-01', "'2023-13-01' is not a valid date-time"],
    ['2023-01-01 24:00:00', "'2023-01-01 24:00:00' is not a valid date-time"],
    ['ontem', "'ontem' is not a date or date-time (expected YYYY-MM-DD[ HH:MM:SS] or DD/MM/YYYY[ HH:MM:SS])"],
    ['', 'empty time'],
    ['12/31/2023', "'12/31/2023' is not a valid date-time"],
  ])('%j is refused with a reason', (text, reason) => {
    expect(parseLocalTime(text)).toBe(reason);
  });

  test('brasiliaToUtc agrees with the zone database across 25 years of midnights', () => {
    const fmt = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/Sao_Paulo', hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
    for (let day = Date.UTC(2000, 0, 1); day < Date.UTC(2025, 0, 1); day += 86_400_000 * 7 + 3_600_000 * 5) {
      const instant = brasiliaToUtc(day);
      // The instant, shown in the zone, is the wall-clock asked for (or later, inside a gap).
      const shown = fmt.format(new Date(instant)).replace(', ', 'T');
      const asked = new Date(day).toISOString().slice(0, 16);
      expect(shown >= asked).toBe(true);
      expect(instant - day).toBeGreaterThanOrEqual(2 * 3_600_000);
      expect(instant - day).toBeLessThanOrEqual(3 * 3_600_000);
    }
  });
});

describe('measures', () => {
  test.each([
    ['10455.81799999', false, 10455.81799999],
    ['0E-8', false, 0],
    ['-3.60000000', false, -3.6],
    ['415.154', false, 415.154],
    ['1.93200004', false, 1.93200004],
    ['12721', false, 12721],
    ['  7.5 ', false, 7.5],
    ['1e3', false, 1000],
    ['50,411304', true, 50.411304],
    ['1.234,5', true, 1234.5],
    ['-0,5', true, -0.5],
    ['1.234', true, 1234],
    [9060.566985830001, false, 9060.566985830001],
  ])('%j (decimal comma %p) → %p', (cell, comma, expected) => {
    expect(parseMeasure(cell, comma)).toBe(expected);
  });

  test.each([[''], ['   '], [null]])('%j is null, never zero', (cell) => {
    expect(parseMeasure(cell, false)).toBeNull();
  });

  test.each([['abc'], ['12,3,4'], ['1e'], ['0x10'], ['Infinity'], ['NaN'], ['1 000'], ['50,4']])('%j is not a number (dot-decimal file)', (cell) => {
    expect(parseMeasure(cell, false)).toBeNaN();
  });
});
