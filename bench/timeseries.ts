/**
 * Benchmark of the time-series loader's write path (`npm run bench:timeseries`).
 *
 * 1. Throughput: the loader's RecordWriter (the code the bundled loader runs: requests of 100 records
 *    grouped by series with common attributes, requests in flight, retries) writes real ONS records
 *    to a local server speaking the WriteRecords protocol with a fixed latency, in a child process (so
 *    its CPU is not the loader's). Reported per in-flight setting: records, points and requests per
 *    second, and the ratio to the bound `inFlight × 100 records ÷ latency` (target ≥ 80 %).
 * 2. Cost: the same ONS data points written by the RecordWriter as our multi-measure records, and as
 *    one record per measure value (a single-measure model at its best: one measure name per request,
 *    as a common attribute, and the same series grouping), to an in-process server; from the requests
 *    it received: WriteRecords requests and billed write units per million data points. Write units
 *    follow Timestream's metering rule (see `WRITE_METERING`).
 *
 * Records come from the repository's real ONS files in test/fixtures/ons (ONS_DATA_DIR to change), read by the domain
 * core. Prints one JSON object to stdout; progress goes to stderr. Missing a target never changes the
 * exit status; a failed check (records lost or rejected) does.
 *
 * Options: --latency-ms N (50), --in-flight 1,4,8,16,32, --requests N (minimum requests per setting, 400).
 * Bundled with esbuild before it runs (the domain core's readers are ESM-only packages).
 */
import { ChildProcess, fork } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { WriteRecordsRequest } from '@aws-sdk/client-timestream-write';
import { eachOption } from './args';
import { resolveDataset } from '../src/ons/detect';
import { localFile } from '../src/ons/local-file';
import { openTable } from '../src/ons/open';
import { processTable } from '../src/ons/process';
import { MAX_RECORDS_PER_REQUEST, meteredBytes, PointRecord, writeUnits } from '../src/timeseries/timestream/runtime/records';
import { createWriteClient, RecordWriter } from '../src/timeseries/timestream/runtime/writer';
import { ONS_DATA } from '../test/ons-data';
import { LocalTimestream, WriteRequestBody } from '../test/timeseries/timestream/local-timestream';

const TARGET_RATIO = 0.8;

/** The metering rule the write-unit figures apply (Timestream developer guide, "Metering and cost optimization → Writes"). */
const WRITE_METERING = 'Timestream for LiveAnalytics meters each WriteRecords request as the sum over its records of 8 bytes of timestamp, '
  + 'the UTF-8 bytes of every dimension name and value and every measure name, and 8 bytes per DOUBLE value; common attributes count once '
  + 'per request. Writes are billed in units of 1 KiB per request (here ceil(bytes / 1024)); repeated dimensions may be charged once even '
  + 'without common attributes (not counted here, so the figures are an upper bound). Price: USD 0.50 per million 1 KiB writes in US regions '
  + '(pricing page; varies by region).';

/** The files the records come from: one dataset per shape (one measure, four, six). */
const FILES = ['CURVA_CARGA_2023.csv', 'CMO_SEMANAL_2013.csv', 'BALANCO_ENERGIA_SUBSISTEMA_2023.csv'];

interface Options {
  latencyMs: number;
  inFlight: number[];
  minRequests: number;
}

function log(message: string): void {
  process.stderr.write(`[bench:timeseries] ${message}\n`);
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { latencyMs: 50, inFlight: [1, 4, 8, 16, 32], minRequests: 400 };
  eachOption(argv, (a) => {
    switch (a.name) {
      case '--latency-ms': options.latencyMs = Number(a.value()); break;
      case '--in-flight': options.inFlight = a.value().split(',').map(Number); break;
      case '--requests': options.minRequests = Number(a.value()); break;
      default: throw new Error(`unknown option ${a.name}`);
    }
  });
  if (!(options.latencyMs > 0) || options.inFlight.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('bad options');
  return options;
}

/** A file's records as the loader builds them: UTC time, identity dimensions, non-null measures. */
async function recordsOf(file: string): Promise<{ dataset: string; records: PointRecord[]; points: number }> {
  const table = await openTable(localFile(join(ONS_DATA, file)));
  const layout = resolveDataset(file, table.header);
  const records: PointRecord[] = [];
  let points = 0;
  await processTable(file, table, layout, {
    record: (r) => {
      const measures = Object.entries(r.measures).filter((e): e is [string, number] => e[1] !== null);
      if (!measures.length) return;
      points += measures.length;
      records.push({ time: r.time, dimensions: Object.entries(r.dimensions), measures });
    },
  });
  return { dataset: layout.id, records, points };
}

/** One record per measure value, grouped by measure (so each request has one measure name, a common attribute). */
function singleMeasureRecords(records: readonly PointRecord[]): Map<string, PointRecord[]> {
  const byMeasure = new Map<string, PointRecord[]>();
  for (const r of records) {
    for (const [name, value] of r.measures) {
      let list = byMeasure.get(name);
      if (!list) byMeasure.set(name, (list = []));
      list.push({ time: r.time, dimensions: r.dimensions, measures: [[name, value]] });
    }
  }
  return byMeasure;
}

interface CostFigures {
  readonly points: number;
  readonly records: number;
  readonly requests: number;
  readonly payloadBytes: number;
  readonly meteredBytes: number;
  readonly writeUnits: number;
  readonly perMillionPoints: { readonly requests: number; readonly writeUnits: number; readonly usd: number };
}

/**
 * Writes records with the loader's RecordWriter to the in-process server and measures the requests it
 * received. `single`: the requests are rewritten to the single-measure shape on the way (MeasureName =
 * the one measure, MeasureValueType DOUBLE, MeasureValue), everything else as the writer built it.
 */
async function cost(
  server: LocalTimestream, endpoint: string, dataset: string, groups: Map<string, readonly PointRecord[]>, points: number, single: boolean,
): Promise<CostFigures> {
  server.reset();
  server.keepRecords = false;
  const client = createWriteClient(endpoint, 16);
  if (single) {
    client.middlewareStack.add((next) => async (args) => {
      const input = args.input as WriteRecordsRequest;
      const name = input.Records![0].MeasureValues![0].Name!;
      const rewritten: WriteRecordsRequest = {
        ...input,
        CommonAttributes: { ...input.CommonAttributes, MeasureName: name, MeasureValueType: 'DOUBLE' },
        Records: input.Records!.map(({ MeasureValues, ...r }) => ({ ...r, MeasureValue: MeasureValues![0].Value })),
      };
      return next({ ...args, input: rewritten });
    }, { step: 'initialize', name: 'singleMeasureShape' });
  }
  for (const [measureName, records] of groups) {
    const writer = new RecordWriter(client, { database: 'bench', table: dataset, measureName, version: Date.UTC(2024, 0, 1) }, { maxInFlight: 16 });
    for (const r of records) await writer.add(r);
    await writer.finish();
  }
  client.destroy();
  const received = server.of('WriteRecords');
  if (received.some((r) => r.outcome !== 'ok')) throw new Error('the server refused a request of the cost run');
  const bodies = received.map((r) => r.body as WriteRequestBody as WriteRecordsRequest);
  if (single && bodies.some((b) => b.Records!.some((r) => r.MeasureValue === undefined))) throw new Error('single-measure shape not applied');
  const units = bodies.reduce((n, b) => n + writeUnits(b), 0);
  const scale = 1e6 / points;
  return {
    points,
    records: bodies.reduce((n, b) => n + b.Records!.length, 0),
    requests: bodies.length,
    payloadBytes: received.reduce((n, r) => n + r.bytes, 0),
    meteredBytes: bodies.reduce((n, b) => n + meteredBytes(b), 0),
    writeUnits: units,
    perMillionPoints: {
      requests: Math.round(bodies.length * scale),
      writeUnits: Math.round(units * scale),
      usd: round(units * scale * 0.5 / 1e6, 4),
    },
  };
}

/** The local server in a child process (this file run with --serve), driven over IPC. */
class RemoteServer {
  static async start(latencyMs: number): Promise<RemoteServer> {
    const child = fork(__filename, ['--serve', String(latencyMs)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const endpoint = await new Promise<string>((res, rej) => {
      child.once('message', (m: { endpoint: string }) => res(m.endpoint));
      child.once('exit', (code) => rej(new Error(`server child exited with ${code}`)));
    });
    return new RemoteServer(child, endpoint);
  }

  private constructor(private readonly child: ChildProcess, readonly endpoint: string) {}

  async call(command: 'reset' | 'stats'): Promise<{ requests: number; maxConcurrent: number; refused: number }> {
    this.child.send(command);
    return new Promise((res) => this.child.once('message', res));
  }

  stop(): void {
    this.child.kill();
  }
}

async function serve(latencyMs: number): Promise<void> {
  const server = new LocalTimestream();
  server.keepRecords = false;
  server.latencyMs = latencyMs;
  const endpoint = await server.start();
  process.on('message', (command: string) => {
    const writes = server.of('WriteRecords');
    const stats = { requests: writes.length, maxConcurrent: server.maxConcurrent, refused: writes.filter((r) => r.outcome !== 'ok').length };
    if (command === 'reset') {
      server.requests.length = 0;
      server.maxConcurrent = 0;
    }
    process.send!(stats);
  });
  process.send!({ endpoint });
}

async function throughput(server: RemoteServer, dataset: string, records: readonly PointRecord[], inFlight: number, options: Options) {
  const wanted = Math.max(options.minRequests, inFlight * 40) * MAX_RECORDS_PER_REQUEST;
  await server.call('reset');
  const client = createWriteClient(server.endpoint, inFlight);
  const writer = new RecordWriter(client, { database: 'bench', table: dataset, measureName: dataset, version: Date.now() }, { maxInFlight: inFlight });
  const started = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  for (let i = 0; i < wanted; i++) await writer.add(records[i % records.length]);
  const stats = await writer.finish();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  client.destroy();
  const seen = await server.call('stats');
  if (stats.records !== wanted || stats.rejected !== 0 || seen.requests !== stats.requests || seen.refused) {
    throw new Error(`wrote ${stats.records} of ${wanted} records (${stats.rejected} rejected); the server saw ${seen.requests} requests, ${seen.refused} refused`);
  }
  const bound = inFlight * MAX_RECORDS_PER_REQUEST / (options.latencyMs / 1000);
  const recordsPerSecond = stats.records / seconds;
  return {
    inFlight,
    requests: stats.requests,
    records: stats.records,
    points: stats.points,
    seconds: round(seconds, 3),
    requestsPerSecond: round(stats.requests / seconds, 1),
    recordsPerSecond: Math.round(recordsPerSecond),
    pointsPerSecond: Math.round(stats.points / seconds),
    boundRecordsPerSecond: bound,
    ratioToBound: round(recordsPerSecond / bound, 3),
    meetsTarget: recordsPerSecond / bound >= TARGET_RATIO,
    maxConcurrentSeen: seen.maxConcurrent,
    // The loader's own CPU per request (building, serializing and signing it): what bounds the rate once latency is hidden.
    cpuMsPerRequest: round((cpu.user + cpu.system) / 1000 / stats.requests, 2),
  };
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--serve') return serve(Number(process.argv[3]));
  const options = parseOptions(process.argv.slice(2));
  // Local servers and dummy credentials: nothing here reaches AWS.
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
  const data = [];
  for (const file of FILES) {
    log(`reading ${file}`);
    data.push({ file, ...(await recordsOf(file)) });
  }

  const largest = data[data.length - 1];
  const throughputRuns = [];
  const remote = await RemoteServer.start(options.latencyMs);
  try {
    for (const inFlight of options.inFlight) {
      log(`throughput: ${largest.dataset}, ${inFlight} in flight, ${options.latencyMs} ms latency`);
      throughputRuns.push(await throughput(remote, largest.dataset, largest.records, inFlight, options));
    }
  } finally {
    remote.stop();
  }

  const server = new LocalTimestream();
  const endpoint = await server.start();
  const costs = [];
  try {
    for (const d of data) {
      log(`cost: ${d.dataset}`);
      const multiMeasure = await cost(server, endpoint, d.dataset, new Map([[d.dataset, d.records]]), d.points, false);
      const singleMeasure = await cost(server, endpoint, d.dataset, singleMeasureRecords(d.records), d.points, true);
      if (multiMeasure.records !== d.records.length || singleMeasure.records !== d.points) {
        throw new Error(`${d.dataset}: ${multiMeasure.records} multi-measure records for ${d.records.length} rows, ${singleMeasure.records} single-measure records for ${d.points} points`);
      }
      costs.push({
        file: d.file,
        dataset: d.dataset,
        measuresPerRow: round(d.points / d.records.length, 2),
        multiMeasure,
        singleMeasure,
        singleOverMulti: {
          requests: round(singleMeasure.requests / multiMeasure.requests, 2),
          writeUnits: round(singleMeasure.writeUnits / multiMeasure.writeUnits, 2),
        },
      });
    }
  } finally {
    await server.close();
  }

  const result = {
    benchmark: 'timeseries-loader-write-path',
    node: process.version,
    cpus: cpus().length,
    latencyMs: options.latencyMs,
    target: { ratioToBound: TARGET_RATIO },
    throughput: { dataset: largest.dataset, measuresPerRecord: round(largest.points / largest.records.length, 2), runs: throughputRuns },
    cost: { metering: WRITE_METERING, datasets: costs },
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench:timeseries] failed: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
