/**
 * Benchmark: what Powertools Tracer (the X-Ray SDK) costs a data-heavy handler (`npm run bench:tracing`).
 *
 * The same work on a real ONS file (CURVA_CARGA_2023.csv, 35,040 rows): the processor's conversion to
 * Parquet (with its data card and report) and the loader's read of the Parquet parts, timed in two
 * child processes one after the other: a baseline, and one where the handlers' tracing
 * helper has been set up as in a Lambda function with tracing on (`POWERTOOLS_TRACE_ENABLED=true`, a
 * Lambda trace header), which loads the X-Ray SDK and its async hooks. Each child runs the work `--runs`
 * times (default 3) and reports its best times. Prints one JSON object; the ratio is why the processor,
 * the loaders and the Batch job do not trace their calls (PlatformFunctionOptions.traceCalls).
 *
 * Bundled with esbuild before it runs (the domain core's readers are ESM-only packages).
 */
import { fork } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { convertFile } from '../src/ons/convert';
import { localFile } from '../src/ons/local-file';
import { traced } from '../src/runtime/telemetry';
import { readPartRecords } from '../src/timeseries/runtime/part-reader';
import { ONS_DATA } from '../test/ons-data';

const FILE = 'CURVA_CARGA_2023.csv';

interface ChildResult {
  readonly mode: string;
  readonly convertMs: number;
  readonly readMs: number;
  readonly rows: number;
  readonly tracerActive: boolean;
}

/** The processor's work (the file to Parquet, a data card and a report) and the loader's read of every Parquet part. */
async function work(): Promise<{ rows: number; convertMs: number; readMs: number }> {
  const outDir = await mkdtemp(join(tmpdir(), 'bench-tracing-'));
  try {
    let started = process.hrtime.bigint();
    const converted = await convertFile(FILE, localFile(join(ONS_DATA, FILE)), { outDir });
    const convertMs = Number(process.hrtime.bigint() - started) / 1e6;
    started = process.hrtime.bigint();
    const counters = { skipped: 0, rows: 0 };
    let records = 0;
    for (const part of converted.parquet) {
      for await (const record of readPartRecords(await readFile(part.path), converted.summary.dataset, counters)) if (record) records++;
    }
    const readMs = Number(process.hrtime.bigint() - started) / 1e6;
    if (records + counters.skipped !== converted.summary.records) throw new Error(`read ${records} + ${counters.skipped} of ${converted.summary.records} records`);
    return { rows: converted.summary.records, convertMs, readMs };
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

async function child(mode: string, runs: number): Promise<void> {
  let tracerActive = false;
  if (mode === 'traced') {
    // What a handler does on its first client: the Tracer is created, the X-Ray SDK patches and hooks in.
    // What a handler does: its client is traced, and its first AWS call resolves the Lambda trace segment.
    const client = traced(new S3Client({
      region: 'us-east-1', endpoint: 'http://127.0.0.1:9', maxAttempts: 1, credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    }));
    await client.send(new HeadBucketCommand({ Bucket: 'bench' })).catch(() => undefined); // nothing listens: refused at once
    tracerActive = client.middlewareStack.identify().some((m) => /xray|XRay/i.test(m));
  }
  let convertMs = Infinity;
  let readMs = Infinity;
  let rows = 0;
  for (let i = 0; i < runs; i++) {
    const run = await work();
    rows = run.rows;
    convertMs = Math.min(convertMs, run.convertMs);
    readMs = Math.min(readMs, run.readMs);
  }
  const result: ChildResult = { mode, convertMs: Math.round(convertMs), readMs: Math.round(readMs), rows, tracerActive };
  process.send!(result);
}

/** A Lambda function's environment with tracing on: the X-Ray SDK reads it when it loads, so it is set before the child starts. */
const LAMBDA_TRACING_ENV = {
  AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
  LAMBDA_TASK_ROOT: tmpdir(),
  _X_AMZN_TRACE_ID: 'Root=1-6744d3c0-5e1c2a3b4c5d6e7f80912345;Parent=53995c3f42cd8ad8;Sampled=1',
  AWS_XRAY_CONTEXT_MISSING: 'IGNORE_ERROR',
  AWS_XRAY_DAEMON_ADDRESS: '127.0.0.1:9', // discard: nothing listens
  POWERTOOLS_TRACE_ENABLED: 'true',
};

function runChild(mode: string, runs: number): Promise<ChildResult> {
  return new Promise((resolvePromise, reject) => {
    const env = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...(mode === 'traced' ? LAMBDA_TRACING_ENV : {}) };
    const c = fork(__filename, ['--child', mode, String(runs)], { env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    c.once('message', (m) => resolvePromise(m as ChildResult));
    c.once('error', reject);
    c.once('exit', (code) => { if (code) reject(new Error(`${mode} child exited with ${code}`)); });
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return child(args[1], Number(args[2]));
  const runsAt = args.indexOf('--runs');
  const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 3;
  // One after the other, so neither competes with the other for the CPU.
  const baseline = await runChild('baseline', runs);
  const traced_ = await runChild('traced', runs);
  if (baseline.rows !== traced_.rows) throw new Error(`rows differ: ${baseline.rows} vs ${traced_.rows}`);
  console.log(JSON.stringify({
    benchmark: 'tracing',
    file: FILE,
    rows: baseline.rows,
    runs,
    processor: { baselineMs: baseline.convertMs, tracedMs: traced_.convertMs, slowdown: Number((traced_.convertMs / baseline.convertMs).toFixed(1)) },
    loaderRead: { baselineMs: baseline.readMs, tracedMs: traced_.readMs, slowdown: Number((traced_.readMs / baseline.readMs).toFixed(1)) },
    tracerActive: traced_.tracerActive,
    node: process.version,
  }, null, 2));
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
