import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { CapturedOutput, captureOutput, EmfDocument } from './output';
import { PlatformStage } from '../../src';
import { IngestionEnv, ProcessInput, QuarantineInput, RouteResult } from '../../src/ingestion/contract';
import { AnswerEnv, AnswerTools, KnowledgeEnv, KnowledgeSyncInput } from '../../src/knowledge/contract';
import { ProcessResult, StepInput } from '../../src/ledger/contract';
import { MetricServices, metricsNamespace, OPERATION_DIMENSION, OperationsEnv, PlatformMetricDefinition, PlatformMetrics } from '../../src/runtime/contract';
import { LoadInput, LoadResult, TimeSeriesEnv } from '../../src/timeseries/contract';
import { timeSeriesRequestEvent } from '../../src/timeseries/runtime/request';
import { platformStack } from '../helpers';
import { callTools, LocalBedrockAgentRuntime, LocalBedrockRuntime, say, script } from '../knowledge/local-bedrock';
import { queryEvent } from '../knowledge/query-event';
import { ASSETS, BUCKETS, EXECUTION, handlerEnv, LocalAws, loadHandler, putObject, restoreEnv, startLocalAws } from '../local-aws';
import { closedPort } from '../local-http';
import { ONS_DATA } from '../ons-data';
import { LocalTimestream } from '../timeseries/timestream/local-timestream';

/**
 * The custom metrics of the bundled handlers, as CloudWatch would read them: the EMF documents they write
 * to stdout while doing real work against the local servers (s3rver and dynalite, the local Timestream,
 * the local Bedrock Agent Runtime). Names, units and the `service` dimension come from the operations
 * contract; values are what the handler really did. Also the correlation keys of their log lines.
 */

type Handler<E, R> = (event: E, context?: Partial<Context>) => Promise<R>;

const STAGE = 'staging';
const NAMESPACE = metricsNamespace(STAGE);
const TIMESERIES_ASSETS = join(__dirname, '..', '..', 'assets', 'timeseries', 'timestream');
const KNOWLEDGE_ASSETS = join(__dirname, '..', '..', 'assets', 'knowledge');
const TABLES = { carga_energia: 'carga_energia', curva_carga: 'curva_carga' };
const FILE = 'CARGA_ENERGIA_2013.csv';
const REFERENCE = JSON.parse(readFileSync(join(ONS_DATA, 'reference-figures.json'), 'utf8')) as Record<string, { rows: number }>;

let aws: LocalAws;
let ts: LocalTimestream;
let tsEndpoint: string;
let bedrock: LocalBedrockAgentRuntime;
let bedrockEndpoint: string;
let output: CapturedOutput;
/** Every EMF document written in this file, for the coverage test at the end. */
const emitted: EmfDocument[] = [];

/** The environment of a platform function of `service` (what createPlatformFunction sets), on top of the handler's. */
function env(service: string, overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return handlerEnv(aws, {
    ONS_STAGE: STAGE,
    TMPDIR: join(aws.scratch, 'handler-tmp'),
    [OperationsEnv.METRICS_NAMESPACE]: NAMESPACE,
    [OperationsEnv.SERVICE_NAME]: service,
    [OperationsEnv.LOG_LEVEL]: 'INFO',
    [TimeSeriesEnv.DATABASE]: 'ons_test',
    [TimeSeriesEnv.TABLES]: JSON.stringify(TABLES),
    [TimeSeriesEnv.WRITE_ENDPOINT]: tsEndpoint,
    [TimeSeriesEnv.QUERY_ENDPOINT]: tsEndpoint,
    [TimeSeriesEnv.WRITE_MAX_ATTEMPTS]: '3',
    [TimeSeriesEnv.WRITE_BASE_DELAY_MS]: '5',
    [KnowledgeEnv.KB_ID]: 'KBTEST1234',
    [KnowledgeEnv.MODEL_ARN]: 'anthropic.claude-3-haiku-20240307-v1:0',
    [KnowledgeEnv.ENDPOINT]: bedrockEndpoint,
    AWS_MAX_ATTEMPTS: '1',
    ...overrides,
  });
}

/**
 * A fresh container of a bundled handler. The Logger and Metrics read the environment on the first call,
 * so every test calls the handler it loads right away (the next load changes the environment).
 */
function fresh<E, R>(name: string, service: string, assets?: string, overrides: Record<string, string | undefined> = {}): Handler<E, R> {
  return loadHandler<E, R>(name, env(service, overrides), assets) as Handler<E, R>;
}

const context = (awsRequestId: string): Partial<Context> => ({ awsRequestId, functionName: 'fn', invokedFunctionArn: 'arn:aws:lambda:sa-east-1:123456789012:function:fn' });

beforeAll(async () => {
  aws = await startLocalAws();
  mkdirSync(join(aws.scratch, 'handler-tmp'));
  ts = new LocalTimestream();
  tsEndpoint = await ts.start();
  bedrock = new LocalBedrockAgentRuntime();
  bedrockEndpoint = await bedrock.start();
});

afterAll(async () => {
  restoreEnv();
  await bedrock?.close();
  await ts?.close();
  await aws?.close();
});

beforeEach(() => {
  output = captureOutput();
});

afterEach(() => {
  output.restore();
  emitted.push(...output.emf);
});

/** The one metric directive of a document, checked against the contract: namespace, units, `service`. */
function directive(doc: EmfDocument, service: string, extraDimensions: string[] = []) {
  expect(doc._aws.CloudWatchMetrics).toHaveLength(1);
  const d = doc._aws.CloudWatchMetrics[0];
  expect(d.Namespace).toBe(NAMESPACE);
  expect(d.Dimensions).toEqual([['service', ...extraDimensions]]);
  expect(doc.service).toBe(service);
  expect(typeof doc._aws.Timestamp).toBe('number');
  return d;
}

const metricOf = (m: PlatformMetricDefinition) => ({ Name: m.name, Unit: m.unit });

/** An API Gateway proxy event (REST). */
const logLines = (mock: jest.Mock<void, [string]>) => mock.mock.calls.map(([line]) => JSON.parse(line) as Record<string, unknown>);

let processed: LoadInput;

describe('ingestion', () => {
  test('processor: RecordsProcessed and RecordsRejected of the real ONS file, one EMF document, service ingestion', async () => {
    const key = `incoming/${FILE}`;
    await putObject(aws, BUCKETS.raw, key, readFileSync(join(ONS_DATA, FILE)));
    const route = fresh<StepInput, RouteResult>('route', MetricServices.INGESTION);
    const routed = await route({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION });
    expect(output.emf).toEqual([]); // the router emits no metric

    const processFile = fresh<ProcessInput, ProcessResult>('process', MetricServices.INGESTION);
    const result = await processFile({ source: routed.source, executionArn: EXECUTION }, context('process-1'));
    expect(result.status).toBe('processed');
    expect(result.records! + result.rejected!).toBe(REFERENCE[FILE].rows);

    expect(output.emf).toHaveLength(1);
    const [doc] = output.emf;
    const d = directive(doc, PlatformMetrics.RECORDS_PROCESSED.service);
    expect(d.Metrics).toEqual([metricOf(PlatformMetrics.RECORDS_PROCESSED), metricOf(PlatformMetrics.RECORDS_REJECTED)]);
    expect(doc[PlatformMetrics.RECORDS_PROCESSED.name]).toBe(result.records);
    expect(doc[PlatformMetrics.RECORDS_REJECTED.name]).toBe(result.rejected);
    expect(doc[PlatformMetrics.RECORDS_PROCESSED.name]).toBeGreaterThan(0);

    // The log lines carry the execution and the object key, and the Lambda request id.
    const done = logLines(output.log).find((l) => l.message === 'processed')!;
    expect(done).toMatchObject({
      level: 'INFO', service: MetricServices.INGESTION, executionArn: EXECUTION, objectKey: key, function_request_id: 'process-1', records: result.records,
    });
    expect(new Date(done.timestamp as string).toISOString()).toBe(done.timestamp);
    processed = { source: routed.source, executionArn: EXECUTION, processed: result };

    // The same file again: a replay settled by the first run, nothing processed, no metric.
    await processFile({ source: routed.source, executionArn: EXECUTION });
    expect(output.emf).toHaveLength(1);
  });

  test('Batch entrypoint: the same metrics as the processor Lambda, on the job\'s stdout', async () => {
    const file = 'EAR_DIARIO_SUBSISTEMA_2022.csv';
    const key = `incoming/batch/${file}`;
    await putObject(aws, BUCKETS.raw, key, readFileSync(join(ONS_DATA, file)));
    const jobEnv: Record<string, string> = {};
    const merged = {
      ...process.env,
      ...env(MetricServices.INGESTION),
      [IngestionEnv.JOB_INPUT]: JSON.stringify({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION }),
    };
    for (const [k, v] of Object.entries(merged)) if (v !== undefined) jobEnv[k] = v;
    const stdout = await new Promise<string>((resolve, reject) => {
      const dir = join(ASSETS, 'batch', 'entrypoint');
      const child = spawn(process.execPath, [join(dir, 'index.js')], { cwd: dir, env: jobEnv, stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}`))));
    });
    const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as EmfDocument);
    const docs = lines.filter((l) => '_aws' in l);
    emitted.push(...docs);
    expect(docs).toHaveLength(1);
    const d = directive(docs[0], PlatformMetrics.RECORDS_PROCESSED.service);
    expect(d.Metrics).toEqual([metricOf(PlatformMetrics.RECORDS_PROCESSED), metricOf(PlatformMetrics.RECORDS_REJECTED)]);
    expect(docs[0][PlatformMetrics.RECORDS_PROCESSED.name]).toBe(REFERENCE[file].rows);
    expect(docs[0][PlatformMetrics.RECORDS_REJECTED.name]).toBe(0);
    expect(lines.find((l) => l.message === 'job done')).toMatchObject({ level: 'INFO', executionArn: EXECUTION, objectKey: key, service: MetricServices.INGESTION });
  });

  test('Batch job log group: metric filters turn those EMF lines into the contract\'s metrics (awslogs extracts no EMF)', async () => {
    const doc = emitted.find((d) => d[PlatformMetrics.RECORDS_PROCESSED.name] !== undefined && d.service === MetricServices.INGESTION)!;
    expect(doc).toBeDefined();
    const { template } = platformStack(PlatformStage.STAGING);
    const batchMetrics: string[] = [PlatformMetrics.RECORDS_PROCESSED.name, PlatformMetrics.RECORDS_REJECTED.name];
    const filters = Object.values(template.findResources('AWS::Logs::MetricFilter')).map((r: any) => r.Properties)
      .filter((p) => batchMetrics.includes(p.MetricTransformations[0].MetricName));
    expect(filters).toHaveLength(2);
    expect(new Set(filters.map((f) => JSON.stringify(f.LogGroupName))).size).toBe(1); // both on the job's log group
    for (const f of filters) {
      const [t] = f.MetricTransformations;
      const metric = Object.values(PlatformMetrics).find((m) => m.name === t.MetricName)!;
      expect([PlatformMetrics.RECORDS_PROCESSED, PlatformMetrics.RECORDS_REJECTED]).toContain(metric);
      expect(t).toEqual({
        MetricNamespace: NAMESPACE, MetricName: metric.name, MetricValue: `$.${metric.name}`, Unit: metric.unit, Dimensions: [{ Key: 'service', Value: '$.service' }],
      });
      // The pattern selects the documents that carry the metric, and the value and dimension resolve on the real document.
      expect(f.FilterPattern).toBe(`{ $.${metric.name} >= 0 }`);
      expect(doc[metric.name]).toBeGreaterThanOrEqual(0);
      expect(doc.service).toBe(metric.service);
    }
  });

  test('quarantine: FilesQuarantined = 1 per file; its WARN line carries the execution and the key', async () => {
    const key = 'incoming/setup.exe';
    const body = Buffer.from('MZ not an ONS file');
    await putObject(aws, BUCKETS.raw, key, body);
    const quarantine = fresh<QuarantineInput, unknown>('quarantine', MetricServices.INGESTION);
    await quarantine({ source: { bucket: BUCKETS.raw, key, size: body.length }, executionArn: EXECUTION, step: 'Route', reason: "'.exe' files are not supported" }, context('q-1'));

    expect(output.emf).toHaveLength(1);
    const [doc] = output.emf;
    const d = directive(doc, PlatformMetrics.FILES_QUARANTINED.service);
    expect(d.Metrics).toEqual([metricOf(PlatformMetrics.FILES_QUARANTINED)]);
    expect(doc[PlatformMetrics.FILES_QUARANTINED.name]).toBe(1);
    expect(logLines(output.error)).toEqual([expect.objectContaining({
      level: 'WARN', message: 'quarantined', executionArn: EXECUTION, objectKey: key, function_request_id: 'q-1', service: MetricServices.INGESTION,
    })]);

    // A second file: its own document, value 1 again (one per invocation, not accumulated).
    const second = 'incoming/other.exe';
    await putObject(aws, BUCKETS.raw, second, body);
    await quarantine({ source: { bucket: BUCKETS.raw, key: second }, executionArn: EXECUTION, step: 'Route', reason: 'unsupported' });
    expect(output.emf.map((e) => e[PlatformMetrics.FILES_QUARANTINED.name])).toEqual([1, 1]);
  });

  test('without the namespace the platform sets (not a platform function), no metrics at all', async () => {
    const key = 'incoming/third.exe';
    await putObject(aws, BUCKETS.raw, key, Buffer.from('x'));
    const quarantine = fresh<QuarantineInput, unknown>('quarantine', MetricServices.INGESTION, undefined, { [OperationsEnv.METRICS_NAMESPACE]: undefined });
    await quarantine({ source: { bucket: BUCKETS.raw, key }, executionArn: EXECUTION, step: 'Route', reason: 'unsupported' });
    expect(output.emf).toEqual([]);
    expect(output.other).toEqual([]);
  });
});

describe('time series', () => {
  test('loader: PointsWritten and RecordsRejectedByStore as the store answered, service timeseries', async () => {
    const sudeste = (r: { dimensions: Record<string, string> }) => r.dimensions.id_subsistema === 'SE';
    ts.rejectIf = (r) => (sudeste(r) && new Date(r.time).getUTCMonth() === 0 ? 'outside the ingestion window' : undefined);
    const load = fresh<LoadInput, LoadResult>('load', MetricServices.TIME_SERIES, TIMESERIES_ASSETS);
    const result = await load(processed, context('load-1'));
    expect(result.status).toBe('loaded');
    expect(result.rejected).toBeGreaterThan(0);
    expect(result.points).toBeGreaterThan(0);

    expect(output.emf).toHaveLength(1);
    const [doc] = output.emf;
    const d = directive(doc, PlatformMetrics.POINTS_WRITTEN.service);
    expect(PlatformMetrics.POINTS_REJECTED.service).toBe(PlatformMetrics.POINTS_WRITTEN.service);
    expect(d.Metrics).toEqual([metricOf(PlatformMetrics.POINTS_WRITTEN), metricOf(PlatformMetrics.POINTS_REJECTED)]);
    expect(doc[PlatformMetrics.POINTS_WRITTEN.name]).toBe(result.points);
    expect(doc[PlatformMetrics.POINTS_REJECTED.name]).toBe(result.rejected);
  });

  test('loader: when the store rejects everything the step fails, and the metrics are still published', async () => {
    ts.reset();
    ts.rejectIf = () => 'rejected by the test';
    const load = fresh<LoadInput, LoadResult>('load', MetricServices.TIME_SERIES, TIMESERIES_ASSETS);
    await expect(load(processed)).rejects.toMatchObject({ name: 'NothingWritten' });

    expect(output.emf).toHaveLength(1);
    const [doc] = output.emf;
    directive(doc, PlatformMetrics.POINTS_WRITTEN.service);
    expect(doc[PlatformMetrics.POINTS_WRITTEN.name]).toBe(0);
    expect(doc[PlatformMetrics.POINTS_REJECTED.name]).toBe(ts.sentRecords().length);
    expect(doc[PlatformMetrics.POINTS_REJECTED.name]).toBeGreaterThan(0);
    ts.reset();
  });

  test('time-series query: QueryLatency in ms with operation getTimeSeries, for answers and refusals alike', async () => {
    const query = fresh<APIGatewayProxyEvent, APIGatewayProxyResult>('query', MetricServices.API, TIMESERIES_ASSETS);
    const started = Date.now();
    const ok = await query(timeSeriesRequestEvent('curva_carga', { from: '2023-01-01T00:00:00Z', to: '2023-02-01T00:00:00Z' }, 'api-req-1'), context('lambda-req-1'));
    const elapsed = Date.now() - started;
    expect(ok.statusCode).toBe(200);
    const refused = await query(timeSeriesRequestEvent('nope', {}, 'api-req-2'));
    expect(refused.statusCode).toBe(404);
    expect(refused.body).not.toMatch(/Error:|\bat /);

    expect(output.emf).toHaveLength(2);
    for (const doc of output.emf) {
      const d = directive(doc, PlatformMetrics.QUERY_LATENCY.service, [OPERATION_DIMENSION]);
      expect(d.Metrics).toEqual([metricOf(PlatformMetrics.QUERY_LATENCY)]);
      expect(doc[OPERATION_DIMENSION]).toBe('getTimeSeries');
    }
    const latency = output.emf[0][PlatformMetrics.QUERY_LATENCY.name] as number;
    expect(latency).toBeGreaterThanOrEqual(0);
    expect(latency).toBeLessThanOrEqual(elapsed);

    // The API log line: the API Gateway request id and the Lambda request id.
    expect(logLines(output.log)[0]).toMatchObject({
      level: 'INFO', message: 'query', requestId: 'api-req-1', function_request_id: 'lambda-req-1', service: MetricServices.API, status: 200,
    });
  });
});

describe('API server errors', () => {
  test('a 5xx answer of a published version: one ServerErrors document of its own, by function name and version; QueryLatency unchanged', async () => {
    const onQuery = ts.onQuery;
    ts.onQuery = () => { throw new Error('the local store broke'); };
    try {
      const query = fresh<APIGatewayProxyEvent, APIGatewayProxyResult>('query', MetricServices.API, TIMESERIES_ASSETS, {
        AWS_LAMBDA_FUNCTION_NAME: 'ons-timeseries-query', AWS_LAMBDA_FUNCTION_VERSION: '12',
      });
      const failed = await query(timeSeriesRequestEvent('curva_carga', { from: '2023-01-01T00:00:00Z', to: '2023-02-01T00:00:00Z' }, 'api-req-5xx'), context('lambda-req-5xx'));
      expect(failed.statusCode).toBeGreaterThanOrEqual(500);
    } finally {
      ts.onQuery = onQuery;
    }
    const errors = output.emf.filter((d) => d[PlatformMetrics.SERVER_ERRORS.name] !== undefined);
    expect(errors).toHaveLength(1);
    expect(errors[0]._aws.CloudWatchMetrics).toEqual([{
      Namespace: NAMESPACE, Dimensions: [['FunctionName', 'FunctionVersion']], Metrics: [metricOf(PlatformMetrics.SERVER_ERRORS)],
    }]);
    expect(errors[0]).toMatchObject({ FunctionName: 'ons-timeseries-query', FunctionVersion: '12', ServerErrors: 1 });
    const latency = output.emf.filter((d) => d[PlatformMetrics.QUERY_LATENCY.name] !== undefined);
    expect(latency).toHaveLength(1);
    const d = directive(latency[0], PlatformMetrics.QUERY_LATENCY.service, [OPERATION_DIMENSION]);
    expect(d.Metrics).toEqual([metricOf(PlatformMetrics.QUERY_LATENCY)]);
  });
});

describe('knowledge', () => {
  test('knowledge query: QueryLatency in ms with operation query', async () => {
    bedrock.onRetrieveAndGenerate = () => ({ body: { sessionId: 'a1b2c3d4-0000-4000-8000-000000000001', output: { text: 'Resposta.' }, citations: [] } });
    const query = fresh<APIGatewayProxyEvent, APIGatewayProxyResult>('query', MetricServices.API, KNOWLEDGE_ASSETS);
    const started = Date.now();
    const response = await query(queryEvent(JSON.stringify({ question: 'Qual foi a carga média do SE em 2023?' }), 'api-req-3'), context('lambda-req-3'));
    const elapsed = Date.now() - started;
    expect(response.statusCode).toBe(200);

    expect(output.emf).toHaveLength(1);
    const [doc] = output.emf;
    const d = directive(doc, PlatformMetrics.QUERY_LATENCY.service, [OPERATION_DIMENSION]);
    expect(d.Metrics).toEqual([metricOf(PlatformMetrics.QUERY_LATENCY)]);
    expect(doc[OPERATION_DIMENSION]).toBe('query');
    expect(doc[PlatformMetrics.QUERY_LATENCY.name]).toBeGreaterThanOrEqual(0);
    expect(doc[PlatformMetrics.QUERY_LATENCY.name]).toBeLessThanOrEqual(elapsed);
    expect(logLines(output.log)).toEqual([expect.objectContaining({ requestId: 'api-req-3', function_request_id: 'lambda-req-3' })]);
  });
});

describe('knowledge, numeric path', () => {
  test('a question answered with tools: model tokens and tool calls of the question, beside QueryLatency (service api, operation query)', async () => {
    const runtime = new LocalBedrockRuntime();
    const runtimeEndpoint = await runtime.start();
    try {
      runtime.model = script(
        callTools([{ name: AnswerTools.LIST_DATASETS, input: {} }], { usage: { inputTokens: 700, outputTokens: 20 } }),
        say('Nenhum dado carregado.', { inputTokens: 900, outputTokens: 12 }),
      );
      const query = fresh<APIGatewayProxyEvent, APIGatewayProxyResult>('query', MetricServices.API, KNOWLEDGE_ASSETS, {
        [AnswerEnv.TIME_SERIES_FUNCTION]: 'arn:aws:lambda:sa-east-1:123456789012:function:ts-query:live',
        [AnswerEnv.TIME_SERIES_DATASETS]: JSON.stringify(['curva_carga']),
        [AnswerEnv.RUNTIME_ENDPOINT]: runtimeEndpoint,
        // Never called: the model asks no time series.
        [AnswerEnv.LAMBDA_ENDPOINT]: `http://127.0.0.1:${await closedPort()}`,
      });
      const response = await query(queryEvent(JSON.stringify({ question: 'Qual foi o pico de carga do NE?' }), 'api-req-4'), context('lambda-req-4'));
      expect(response.statusCode).toBe(200);
      expect(JSON.parse(response.body).answeredFrom).toBe('tools');

      expect(output.emf).toHaveLength(1);
      const [doc] = output.emf;
      const d = directive(doc, MetricServices.API, [OPERATION_DIMENSION]);
      const numeric = [PlatformMetrics.MODEL_INPUT_TOKENS, PlatformMetrics.MODEL_OUTPUT_TOKENS, PlatformMetrics.TOOL_CALLS];
      expect(d.Metrics).toEqual(expect.arrayContaining([...numeric, PlatformMetrics.QUERY_LATENCY].map(metricOf)));
      expect(d.Metrics).toHaveLength(4);
      for (const m of numeric) expect(m.service).toBe(MetricServices.API);
      expect(doc[PlatformMetrics.MODEL_INPUT_TOKENS.name]).toBe(1600);
      expect(doc[PlatformMetrics.MODEL_OUTPUT_TOKENS.name]).toBe(32);
      expect(doc[PlatformMetrics.TOOL_CALLS.name]).toBe(1);
      expect(doc[OPERATION_DIMENSION]).toBe('query');
    } finally {
      await runtime.close();
    }
  });
});

describe('knowledge-base sync', () => {
  test('a failed ingestion job: KnowledgeBaseSyncJobsFailed = 1, service knowledge', async () => {
    const sync = fresh<KnowledgeSyncInput, { status: string; next: string }>('sync', MetricServices.KNOWLEDGE, KNOWLEDGE_ASSETS);
    // The sync machine's record step after GetIngestionJob answered FAILED (no request was claimed by this batch).
    const result = await sync({
      action: 'record',
      holder: 'arn:aws:states:sa-east-1:123456789012:execution:sync:local',
      batch: 'b-1',
      dataSourceId: 'DS123',
      attempt: 1,
      job: { IngestionJobId: 'JOB1', Status: 'FAILED', FailureReasons: ['the embedding model throttled'] },
    }, context('lambda-req-4'));
    expect(result).toMatchObject({ status: 'FAILED', next: 'retry' });
    expect(output.emf).toHaveLength(1);
    const [doc] = output.emf;
    const d = directive(doc, PlatformMetrics.KNOWLEDGE_SYNC_JOBS_FAILED.service);
    expect(d.Metrics).toEqual([metricOf(PlatformMetrics.KNOWLEDGE_SYNC_JOBS_FAILED)]);
    expect(doc[PlatformMetrics.KNOWLEDGE_SYNC_JOBS_FAILED.name]).toBe(1);
  });
});

describe('the contract', () => {
  test('every PlatformMetrics entry is emitted by a handler, with its unit and its service', () => {
    const seen = new Map<string, Array<{ unit: string; service: unknown }>>();
    for (const doc of emitted) {
      for (const m of doc._aws.CloudWatchMetrics[0].Metrics) {
        seen.set(m.Name, [...(seen.get(m.Name) ?? []), { unit: m.Unit, service: doc.service }]);
      }
    }
    for (const metric of Object.values(PlatformMetrics)) {
      // ServerErrors is per function and version: no service dimension.
      const service = metric === PlatformMetrics.SERVER_ERRORS ? undefined : metric.service;
      expect(seen.get(metric.name)).toEqual(expect.arrayContaining([{ unit: metric.unit, service }]));
      for (const found of seen.get(metric.name)!) expect(found).toEqual({ unit: metric.unit, service });
    }
    // And nothing the contract does not name.
    expect([...seen.keys()].sort()).toEqual(Object.values(PlatformMetrics).map((m) => m.name).sort());
  });
});
