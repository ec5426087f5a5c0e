import { LocalInfluxDb } from './local-influxdb';
import { encodeLine, encodeRecord, escapeName, nanoseconds, quoteString, unwritable } from '../../../src/timeseries/influxdb/runtime/line-protocol';

/**
 * Line protocol: escaping of every kind of name with adversarial text, quoting of string fields,
 * nanosecond timestamps in integer arithmetic, and refusals of what cannot be written; the escaping
 * is proven by writing the lines to a real InfluxDB and reading back exactly the names and values.
 */

let influx: LocalInfluxDb;

beforeAll(async () => {
  influx = new LocalInfluxDb();
  await influx.start();
});

afterAll(async () => {
  await influx?.stop();
});

describe('escaping', () => {
  test.each<[Parameters<typeof escapeName>[0], string, string]>([
    ['measurement', 'a,b c=d', 'a\\,b\\ c=d'],
    ['tag key', 'a,b c=d', 'a\\,b\\ c\\=d'],
    ['tag value', 'São Paulo (SE/CO), 2=3', 'São\\ Paulo\\ (SE/CO)\\,\\ 2\\=3'],
    ['field key', 'val "x"=1, y', 'val\\ \\"x\\"\\=1\\,\\ y'],
    ['tag value', 'back\\slash', 'back\\slash'],
  ])('%s %j', (kind, name, escaped) => {
    expect(unwritable(kind, name)).toBeUndefined();
    expect(escapeName(kind, name)).toBe(escaped);
  });

  test('string field values are double-quoted with quotes and backslashes escaped', () => {
    expect(quoteString('say "hi" \\ bye')).toBe('"say \\"hi\\" \\\\ bye"');
  });

  test('a record: tags sorted, empty tag values left out, measures as floats, time in ns', () => {
    const encoded = encodeRecord('curva_carga', {
      time: 1672542000000, dimensions: [['id_subsistema', 'SE'], ['cod_area', '']], measures: [['val_a', 6211.5], ['val_b', -0], ['val_c', 1e21]],
    });
    expect(encoded).toEqual({ line: 'curva_carga,id_subsistema=SE val_a=6211.5,val_b=0,val_c=1e+21 1672542000000000000', fields: 3 });
  });
});

describe('nanosecond timestamps in integer arithmetic', () => {
  test.each<[number, string | undefined]>([
    [0, '0'],
    // As doubles these products are 1672542000123000064 and 9223372036853999616: exact only in BigInt.
    [1672542000123, '1672542000123000000'],
    [9223372036854, '9223372036854000000'],
    [-9223372036854, '-9223372036854000000'],
    [9223372036855, undefined],
    [-9223372036855, undefined],
    [1.5, undefined],
    [Number.NaN, undefined],
  ])('%d ms', (ms, ns) => {
    expect(nanoseconds(ms)).toBe(ns);
  });
});

describe('what cannot be written is refused with a reason', () => {
  const ok = { m: 'm', tags: [['k', 'v']] as Array<[string, string]>, fields: [['f', 1]] as Array<[string, number]>, t: 0 };
  test.each<[string, Parameters<typeof encodeLine>, RegExp]>([
    ['NaN', [ok.m, ok.tags, [['f', Number.NaN]], 0], /not a finite number/],
    ['Infinity', [ok.m, ok.tags, [['f', Infinity]], 0], /not a finite number/],
    ['time after 2262', [ok.m, ok.tags, ok.fields, Date.UTC(2262, 4, 1)], /outside InfluxDB's range/],
    ['time before 1677', [ok.m, ok.tags, ok.fields, Date.UTC(1677, 0, 1)], /outside InfluxDB's range/],
    ['no field', [ok.m, ok.tags, [], 0], /no field/],
    ['empty measurement', ['', ok.tags, ok.fields, 0], /empty measurement/],
    ['comment measurement', ['#m', ok.tags, ok.fields, 0], /comment/],
    ['line break in a tag value', [ok.m, [['k', 'a\nb']], ok.fields, 0], /line break/],
    ['carriage return in a field key', [ok.m, ok.tags, [['f\r', 1]], 0], /line break/],
    ['backslash at the end of a tag value', [ok.m, [['k', 'a\\']], ok.fields, 0], /backslash/],
    ['backslash before a comma', [ok.m, [['k', 'a\\,b']], ok.fields, 0], /backslash/],
    ['tag key time', [ok.m, [['time', 'x']], ok.fields, 0], /reserved/],
    ['field key time', [ok.m, ok.tags, [['time', 1]], 0], /reserved/],
  ])('%s', (_name, args, reason) => {
    expect(encodeLine(...args)).toEqual({ reason: expect.stringMatching(reason) });
  });
});

describe('round trip through a real InfluxDB', () => {
  test('adversarial measurement, tag and field names and values come back exactly', async () => {
    const measurements = ['m,comma', 'm space', 'm=equals', 'm\\backslash', 'ünï "cødé"'];
    const tags: Array<[string, string]> = [
      ['k,comma', 'v,comma'], ['k space', 'v space'], ['k=eq', 'v=eq'], ['k\\bs', 'a\\b'], ['nome', "São Paulo (SE/CO) it's"], ['k"q', '"dq"'], ['empty', ''],
    ];
    const fields: Array<[string, number | string | boolean]> = [
      ['f,comma', 1.5], ['f space', -0.25], ['f=eq', 1e21], ['f"q', 1e-7], ['f\\bs', 123456789.12345679], ['max', Number.MAX_VALUE], ['tiny', Number.MIN_VALUE],
      ['zero', 0], ['text', 'say "hi" \\ bye, a=b'], ['flag', true],
    ];
    const lines = measurements.map((m, i) => {
      const encoded = encodeLine(m, tags, fields, Date.UTC(2023, 0, 1) + i);
      if ('reason' in encoded) throw new Error(encoded.reason);
      return encoded.line;
    });
    expect(await influx.write(lines.join('\n'))).toEqual({ status: 204, body: '' });

    const series = await influx.query('SELECT * FROM /.*/');
    expect(series.map((s) => s.name).sort()).toEqual([...measurements].sort());
    for (const [i, m] of measurements.entries()) {
      const s = series.find((x) => x.name === m)!;
      expect(s.values).toHaveLength(1);
      const row = Object.fromEntries(s.columns.map((c, j) => [c, s.values[0][j]]));
      const expected = {
        time: Date.UTC(2023, 0, 1) + i,
        ...Object.fromEntries(tags.filter(([, v]) => v !== '')),
        ...Object.fromEntries(fields),
      };
      expect(row).toEqual(expected);
    }
    // The empty tag value was left out (line protocol has no empty tag values), so there is no such tag key.
    const keys = await influx.query('SHOW TAG KEYS FROM /.*/');
    expect(new Set(keys.flatMap((k) => k.values.map((v) => v[0])))).toEqual(new Set(tags.filter(([, v]) => v !== '').map(([k]) => k)));
  });

  test('the smallest and largest nanosecond times InfluxDB takes', async () => {
    const min = Math.ceil(-9223372036854775806 / 1e6);
    const max = Math.floor(9223372036854775806 / 1e6);
    const lines = [min, max].map((t) => (encodeLine('edges', [], [['v', t]], t) as { line: string }).line);
    expect(await influx.write(lines.join('\n'))).toEqual({ status: 204, body: '' });
    const [s] = await influx.query('SELECT "v" FROM "edges" WHERE time >= -9223372036854775806 AND time <= 9223372036854775806');
    expect(s.values).toEqual([[min, min], [max, max]]);
  });
});
