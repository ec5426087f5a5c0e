import { LocalInfluxDb2 } from './local-influxdb2';
import { LoadErrors } from '../../../src/timeseries/contract';
import { createSender, type InfluxConnection } from '../../../src/timeseries/influxdb/runtime/http';
import { InfluxWriter } from '../../../src/timeseries/influxdb/runtime/writer';
import type { PointRecord } from '../../../src/timeseries/runtime/layout';
import type { RejectedRecord } from '../../../src/timeseries/runtime/load-object';

/**
 * The loader's writer against the InfluxDB 2 fake's data endpoints, which follow the OSS 2.x documentation: a 400
 * rejects the whole batch and names only its first malformed line, and a token writes only where its permissions say.
 */

const influx = new LocalInfluxDb2();
let connection: InfluxConnection;
const bucket = () => influx.buckets[0];
const DATABASE = 'ons_data_platform_dev';

function token(action: 'read' | 'write', id = bucket().id): string {
  const auth = {
    id: influx.id(),
    token: `${action}-${influx.id()}`,
    status: 'active' as const,
    description: action,
    orgID: influx.org.id,
    permissions: [{ action, resource: { type: 'buckets', id, orgID: influx.org.id } }],
  };
  influx.authorizations.push(auth);
  return auth.token;
}

/** Hourly load of one subsystem, shaped as the processor emits CURVA_CARGA records. */
function records(count: number): PointRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    time: Date.UTC(2023, 0, 1, 3) + i * 3_600_000, dimensions: [['id_subsistema', 'SE']], measures: [['val_cargaenergiahomwmed', 30_000 + i * 0.5]],
  }));
}

async function write(apiToken: string, points: PointRecord[], batchLines = 10) {
  const rejected: RejectedRecord[] = [];
  const writer = new InfluxWriter(createSender(connection, 2), connection, 'curva_carga', async () => apiToken, {
    maxInFlight: 1, batchLines, onRejected: (r) => rejected.push(r), baseDelayMs: 1, maxAttempts: 2,
  });
  for (const p of points) await writer.add(p);
  return { stats: await writer.finish(), rejected };
}

beforeAll(async () => {
  connection = { url: await influx.start(), database: DATABASE, retentionPolicy: 'autogen', tokenSecretArn: 'arn:unused', timeoutMs: 5000 };
});
afterAll(() => influx.close());
beforeEach(() => {
  influx.authorizations.length = 0;
  influx.points.clear();
  influx.unparsable = () => undefined;
  influx.dbrps.length = 0;
  influx.dbrps.push({ id: influx.id(), orgID: influx.org.id, bucketID: bucket().id, database: DATABASE, retention_policy: 'autogen', default: true });
});

describe('a 400 rejects the whole batch (OSS 2.x)', () => {
  test('the lines the server does not name are sent again and counted only once written; the named ones are rejected', async () => {
    const points = records(10);
    // Two lines this server refuses (a stricter parser or a limit): it names only the first of a batch.
    const refused = [3, 7].map((i) => `=${points[i].measures[0][1]} `);
    influx.unparsable = (line) => (refused.some((v) => line.includes(v)) ? 'value out of range' : undefined);
    const { stats, rejected } = await write(token('write'), points);
    expect(rejected.map((r) => [r.recordIndex, r.reason])).toEqual([[3, 'unable to parse: value out of range'], [7, 'unable to parse: value out of range']]);
    const stored = influx.points.get(bucket().id) ?? [];
    expect(stored).toHaveLength(8);
    // What the writer counts as written is what the server holds.
    expect(stats).toMatchObject({ records: stored.length, points: stored.length, rejected: 2 });
  });

  test('a batch without a bad line is written at once', async () => {
    const { stats } = await write(token('write'), records(25));
    expect(stats).toMatchObject({ requests: 3, records: 25, rejected: 0 });
    expect(influx.points.get(bucket().id)).toHaveLength(25);
  });
});

describe('token permissions (OSS 2.x: 401 for a token without the permission)', () => {
  test('a read token cannot write: the load fails as refused, nothing written', async () => {
    await expect(write(token('read'), records(3))).rejects.toMatchObject({ name: LoadErrors.WRITE_REFUSED });
    expect(influx.points.size).toBe(0);
  });

  test('a write token on another bucket cannot write to this one', async () => {
    await expect(write(token('write', 'ffffffffffffffff'), records(3))).rejects.toMatchObject({ name: LoadErrors.WRITE_REFUSED });
  });

  test('a write token cannot query; a read token can', async () => {
    const send = createSender(connection, 1);
    const query = (apiToken: string) => send('GET', `/query?db=${DATABASE}&rp=autogen&q=${encodeURIComponent('SELECT * FROM curva_carga')}`, { Authorization: `Token ${apiToken}` });
    expect((await query(token('write'))).status).toBe(401);
    const allowed = await query(token('read'));
    expect(allowed.status).toBe(200);
    expect(JSON.parse(allowed.body)).toEqual({ results: [{ statement_id: 0 }] });
  });
});
