import { gunzipSync } from 'node:zlib';
import type { HttpResponse, InfluxConnection, Send } from '../../../src/timeseries/influxdb/runtime/http';
import { InfluxWriter } from '../../../src/timeseries/influxdb/runtime/writer';
import type { PointRecord } from '../../../src/timeseries/runtime/layout';
import type { RejectedRecord } from '../../../src/timeseries/runtime/load-object';

/**
 * The writer's reading of answers a real server gives but the loader tests cannot provoke with valid
 * lines: parse errors naming lines (InfluxDB 1.x and 2.x wording, as the servers word them), a
 * request too large (413) split in halves, and a line rejected alone after halving.
 */

const connection: InfluxConnection = { url: 'http://influx.invalid', database: 'db', retentionPolicy: 'rp', tokenSecretArn: 'arn', timeoutMs: 1000 };
const record = (i: number): PointRecord => ({ time: Date.UTC(2023, 0, 1) + i * 3_600_000, dimensions: [['id_subsistema', 'SE']], measures: [['v', i + 0.5]] });
const lineOf = (i: number) => `m,id_subsistema=SE v=${i + 0.5} ${BigInt(Date.UTC(2023, 0, 1) + i * 3_600_000) * 1_000_000n}`;

/** A fake server: `answer` sees the lines of each request. */
function fake(answer: (lines: string[]) => HttpResponse) {
  const requests: string[][] = [];
  const send: Send = async (_method, _path, headers, body) => {
    expect(headers.Authorization).toBe('Token t');
    const lines = gunzipSync(body!).toString('utf8').split('\n');
    requests.push(lines);
    return answer(lines);
  };
  return { send, requests };
}

async function write(send: Send, count: number, batchLines = 10) {
  const rejected: RejectedRecord[] = [];
  const writer = new InfluxWriter(send, connection, 'm', async () => 't', { maxInFlight: 2, batchLines, onRejected: (r) => rejected.push(r), baseDelayMs: 1 });
  for (let i = 0; i < count; i++) await writer.add(record(i));
  return { stats: await writer.finish(), rejected };
}

const json = (status: number, body: object): HttpResponse => ({ status, headers: {}, body: JSON.stringify(body) });

test('InfluxDB 1.x: "partial write: unable to parse ... dropped=0": the named lines are rejected with the reason, the rest counted', async () => {
  const { send } = fake((lines) => (lines.includes(lineOf(3))
    ? json(400, { error: `partial write: unable to parse '${lineOf(3)}': invalid field format\nunable to parse '${lineOf(5)}': bad timestamp dropped=0` })
    : { status: 204, headers: {}, body: '' }));
  const { stats, rejected } = await write(send, 12);
  expect(stats).toEqual({ requests: 2, retries: 0, records: 10, points: 10, rejected: 2 });
  expect(rejected.map((r) => [r.recordIndex, r.reason, r.line])).toEqual([
    [3, 'unable to parse: invalid field format', lineOf(3)],
    [5, 'unable to parse: bad timestamp', lineOf(5)],
  ]);
  expect(rejected[0].record).toEqual({ time: '2023-01-01T03:00:00.000Z', dimensions: { id_subsistema: 'SE' }, measures: { v: 3.5 } });
});

test('InfluxDB 2.x: {"code":"invalid","message":"partial write error (9 written): unable to parse ..."}', async () => {
  const { send } = fake(() => json(400, { code: 'invalid', message: `partial write error (9 written): unable to parse '${lineOf(7)}': invalid number` }));
  const { stats, rejected } = await write(send, 10);
  expect(stats).toMatchObject({ requests: 1, records: 9, rejected: 1 });
  expect(rejected.map((r) => r.recordIndex)).toEqual([7]);
});

test('points dropped without being named (422, dropped=1) are found by halving; the line alone gets the reason', async () => {
  const reason = 'partial write: field type conflict: input field "v" on measurement "m" is type float, already exists as type integer dropped=1';
  const { send, requests } = fake((lines) => (lines.includes(lineOf(6)) ? json(422, { code: 'unprocessable entity', message: reason }) : { status: 204, headers: {}, body: '' }));
  const { stats, rejected } = await write(send, 10);
  expect(rejected.map((r) => [r.recordIndex, r.reason])).toEqual([[6, reason]]);
  expect(stats).toMatchObject({ records: 9, points: 9, rejected: 1 });
  // Depth first: 0-9 refused; 0-4 written; 5-9 refused → 5-7 refused → 5-6 refused → 5 written, 6 rejected; 7 written; 8-9 written.
  expect(requests.map((r) => r.length)).toEqual([10, 5, 5, 3, 2, 1, 1, 1, 2]);
});

test('a request too large (413) is sent again in halves', async () => {
  const { send, requests } = fake((lines) => (lines.length > 4 ? json(413, { error: 'Request Entity Too Large' }) : { status: 204, headers: {}, body: '' }));
  const { stats, rejected } = await write(send, 10);
  expect(rejected).toEqual([]);
  expect(stats).toMatchObject({ records: 10, rejected: 0 });
  expect(requests.filter((r) => r.length <= 4).flat().sort()).toEqual(Array.from({ length: 10 }, (_, i) => lineOf(i)).sort());
});
