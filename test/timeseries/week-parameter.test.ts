import { DEFAULT_WEEK_RULE } from '../../src/ons/calendar';
import { RequestError } from '../../src/runtime/http';
import { parseRequest, QueryConfig, TimeSeriesQuery } from '../../src/timeseries/runtime/request';

/**
 * The `week` parameter of `GET /timeseries/{dataset}` in the request model every engine shares: where a
 * `1w` bucket starts (ons/calendar.ts), validated before any query is built.
 */

const config: QueryConfig = { tables: { curva_carga: 'curva_carga' }, maxPoints: 100 };
const RANGE = { from: '2013-01-01', to: '2014-01-01' };
const parse = (params: Record<string, string>): TimeSeriesQuery => parseRequest('curva_carga', params, null, config, () => 'key');

function refusal(params: Record<string, string>): { status: number; code: string; message: string } {
  try {
    parse(params);
  } catch (e) {
    if (e instanceof RequestError) return { status: e.status, code: e.code, message: e.message };
    throw e;
  }
  throw new Error('accepted');
}

test('interval=1w without week: the default rule, ons', () => {
  expect(DEFAULT_WEEK_RULE).toBe('ons');
  expect(parse({ ...RANGE, interval: '1w' }).week).toBe('ons');
});

test.each(['ons', 'iso'])('interval=1w&week=%s', (week) => {
  expect(parse({ ...RANGE, interval: '1w', aggregation: 'sum', week }).week).toBe(week);
});

test.each(['1d', '1mo', '1h'])('interval=%s: no week in the query', (interval) => {
  expect(parse({ ...RANGE, interval })).not.toHaveProperty('week');
});

test.each([
  ['an unknown rule', { interval: '1w', week: 'us' }, 'week must be one of ons, iso'],
  ['upper case', { interval: '1w', week: 'ISO' }, 'week must be one of ons, iso'],
  ['a quote', { interval: '1w', week: "iso' OR '1'='1" }, 'week must be one of ons, iso'],
  ['empty', { interval: '1w', week: '' }, 'week must be one of ons, iso'],
  ['another interval', { interval: '1d', week: 'iso' }, 'week applies only to interval=1w'],
  ['no interval', { week: 'ons' }, 'week applies only to interval=1w'],
])('%s: 400 naming week, the value not echoed', (_, params, message) => {
  expect(refusal({ ...RANGE, ...params })).toEqual({ status: 400, code: 'InvalidParameter', message });
});
