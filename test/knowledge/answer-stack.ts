import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { LocalBedrockAgentRuntime, LocalBedrockRuntime } from './local-bedrock';
import { AnswerEnv, KnowledgeEnv } from '../../src/knowledge/contract';
import { FlagsEnv, MetricServices, metricsNamespace, OperationsEnv } from '../../src/runtime/contract';
import { InfluxDbEnv, LoadInput, LoadResult, TimeSeriesEnv } from '../../src/timeseries/contract';
import { handlerEnv, ingester, LocalAws, loadHandler, restoreEnv, startLocalAws } from '../local-aws';
import { LocalLambda } from '../local-lambda';
import { LocalSecretsManager } from '../local-secrets-manager';
import { queryEvent } from './query-event';
import { flagValues, LocalAppConfig } from '../runtime/local-appconfig';
import { CapturedOutput, captureOutput } from '../runtime/output';
import { InfluxProxy, LocalInfluxDb, RETENTION_POLICY } from '../timeseries/influxdb/local-influxdb';
import { DATABASE, event as timeSeriesEvent } from '../timeseries/query-contract';

/**
 * Everything the question handler's numeric path talks to, local, for its tests and the evaluation harness:
 * - the bundled knowledge query handler (`assets/knowledge/query.lambda`) called with API Gateway proxy events;
 * - a local bedrock-runtime (Converse, scripted model) and bedrock-agent-runtime (Retrieve, RetrieveAndGenerate);
 * - a local Lambda whose time-series function is the InfluxDB engine's bundled query handler, registered under
 *   its alias ARN, over a real InfluxDB 1.x (behind a recording proxy) holding real ONS files loaded by the
 *   engine's bundled loader after the bundled router and processor (so the ledger in dynalite knows them too);
 * - a local AppConfig Data serving the feature flags.
 */

export type Env = Record<string, string | undefined>;

export const KB_ID = 'KBTEST1234';
export const MODEL = 'anthropic.claude-3-5-haiku-20241022-v1:0';
export const TIME_SERIES_FUNCTION = 'arn:aws:lambda:us-east-1:123456789012:function:ons-dev-timeseries-query:live';
export const TABLES = {
  curva_carga: 'curva_carga',
  carga_energia: 'carga_energia',
  balanco_energia_subsistema: 'balanco_energia_subsistema',
  intercambio_nacional: 'intercambio_nacional',
  historico_geracao_energia: 'historico_geracao_energia',
};
/** Real ONS files loaded: hourly load 2023, daily load 2013, hourly balance 2023. */
export const FILES = ['CURVA_CARGA_2023.csv', 'CARGA_ENERGIA_2013.csv', 'BALANCO_ENERGIA_SUBSISTEMA_2023.csv'];
/** The engine's page size: the time-series tool must ask for no more than this. */
export const ENGINE_MAX_POINTS = 500;

const READ_TOKEN = 'influx-read-token-answer-test';
const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ons-influx-read-Ans123';

export interface Answer {
  status: number;
  body: any;
  requestId: string;
}

export type Ask = (body: unknown) => Promise<Answer>;

export class AnswerStack {
  aws!: LocalAws;
  output!: CapturedOutput;
  readonly influx = new LocalInfluxDb();
  readonly proxy = new InfluxProxy(() => this.influx.url);
  readonly secrets = new LocalSecretsManager();
  readonly runtime = new LocalBedrockRuntime();
  readonly agent = new LocalBedrockAgentRuntime();
  readonly lambda = new LocalLambda();
  readonly appconfig = new LocalAppConfig();
  private scratch!: string;
  private base: Env = {};
  private engine!: (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;
  private requestCount = 0;

  async start(): Promise<void> {
    this.output = captureOutput();
    this.scratch = mkdtempSync(join(tmpdir(), 'ons-answer-test-'));
    this.aws = await startLocalAws();
    await this.influx.start();
    this.secrets.secrets.set(SECRET_ARN, READ_TOKEN);
    this.appconfig.profiles.set('ons/dev/flags', flagValues({ numericAnswers: { enabled: true } }));
    this.appconfig.profiles.set('ons/dev/rag-only', flagValues({ numericAnswers: { enabled: false } }));
    this.base = handlerEnv(this.aws, {
      TMPDIR: this.scratch,
      [OperationsEnv.METRICS_NAMESPACE]: metricsNamespace('dev'),
      [OperationsEnv.SERVICE_NAME]: MetricServices.TIME_SERIES,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: await this.secrets.start(),
      AWS_ENDPOINT_URL_APPCONFIGDATA: await this.appconfig.start(),
      [InfluxDbEnv.URL]: await this.proxy.start(),
      [InfluxDbEnv.RETENTION_POLICY]: RETENTION_POLICY,
      [InfluxDbEnv.TOKEN_SECRET_ARN]: SECRET_ARN,
      // A stalled InfluxDB ends the engine's call in 2 s (a test's stall must not outlive it).
      [InfluxDbEnv.REQUEST_TIMEOUT_MS]: '2000',
      [TimeSeriesEnv.DATABASE]: DATABASE,
      [TimeSeriesEnv.TABLES]: JSON.stringify(TABLES),
      [TimeSeriesEnv.MAX_POINTS]: String(ENGINE_MAX_POINTS),
      [TimeSeriesEnv.WRITE_BASE_DELAY_MS]: '5',
      [KnowledgeEnv.KB_ID]: KB_ID,
      [KnowledgeEnv.MODEL_ARN]: MODEL,
      [KnowledgeEnv.RESULTS]: '5',
      [KnowledgeEnv.PROMPT_TEMPLATE]: undefined,
      [KnowledgeEnv.ENDPOINT]: await this.agent.start(),
      [AnswerEnv.TIME_SERIES_FUNCTION]: TIME_SERIES_FUNCTION,
      [AnswerEnv.TIME_SERIES_DATASETS]: JSON.stringify(Object.keys(TABLES)),
      [AnswerEnv.MAX_TOOL_CALLS]: undefined,
      [AnswerEnv.MAX_POINTS]: undefined,
      [AnswerEnv.DEADLINE_MS]: undefined,
      [AnswerEnv.GUARDRAIL_ID]: undefined,
      [AnswerEnv.GUARDRAIL_VERSION]: undefined,
      [AnswerEnv.RUNTIME_ENDPOINT]: await this.runtime.start(),
      [AnswerEnv.LAMBDA_ENDPOINT]: await this.lambda.start(),
      [FlagsEnv.APPLICATION]: 'ons',
      [FlagsEnv.ENVIRONMENT]: 'dev',
      [FlagsEnv.PROFILE]: 'flags',
      [FlagsEnv.KILL_SWITCH_ENVIRONMENT]: undefined,
      [FlagsEnv.KILL_SWITCH_PROFILE]: undefined,
      // One attempt per SDK call: the handler's own handling of a throttled model is under test, not the SDK's retries.
      AWS_MAX_ATTEMPTS: '1',
    });
    const assets = join(__dirname, '..', '..', 'assets', 'timeseries', 'influxdb');
    const ingest = ingester(this.aws, this.base);
    const load = loadHandler<LoadInput, LoadResult>('load', this.base, assets);
    for (const file of FILES) {
      const result = await load(await ingest(file));
      if (result.status !== 'loaded' || result.rejected !== 0) throw new Error(`${file}: ${JSON.stringify(result)}`);
    }
    this.engine = loadHandler<APIGatewayProxyEvent, APIGatewayProxyResult>('query', this.base, assets);
    this.lambda.register(TIME_SERIES_FUNCTION, (e: APIGatewayProxyEvent) => this.engine(e));
  }

  /** The environment the question handler gets, with overrides. */
  env(overrides: Env = {}): Env {
    // The question handler is an API function (the construct's service for it).
    return { ...this.base, [OperationsEnv.SERVICE_NAME]: MetricServices.API, ...overrides };
  }

  /** A fresh question handler container with this environment (it reads the environment on its first call). */
  handler(overrides: Env = {}): Ask {
    const handler = loadHandler<APIGatewayProxyEvent, APIGatewayProxyResult>('query', this.env(overrides), join(__dirname, '..', '..', 'assets', 'knowledge'));
    return async (body) => {
      const e = this.questionEvent(typeof body === 'string' ? body : JSON.stringify(body));
      const response = await handler(e);
      return { status: response.statusCode, body: JSON.parse(response.body), requestId: e.requestContext.requestId };
    };
  }

  /** The engine answering `GET /timeseries/{dataset}?query` directly (not through Lambda or the question handler). */
  async timeseries(dataset: string, query: Record<string, string>): Promise<{ status: number; body: any }> {
    const response = await this.engine(timeSeriesEvent(dataset, query));
    return { status: response.statusCode, body: JSON.parse(response.body) };
  }

  /** Queries InfluxDB received since the last reset. */
  engineQueries(): number {
    return this.proxy.of('/query').length;
  }

  reset(): void {
    this.runtime.reset();
    this.agent.reset();
    this.lambda.reset();
    this.lambda.throttle = undefined;
    this.proxy.reset();
    this.output.log.mockClear();
    this.output.error.mockClear();
    this.output.emf.length = 0;
  }

  private questionEvent(body: string): APIGatewayProxyEvent {
    return queryEvent(body, `answer-req-${++this.requestCount}`);
  }

  async close(): Promise<void> {
    this.output?.restore();
    restoreEnv();
    for (const stop of [() => this.runtime.close(), () => this.agent.close(), () => this.lambda.close(), () => this.appconfig.close(),
      () => this.proxy.close(), () => this.secrets.close(), () => this.influx.stop(), () => this.aws?.close()]) {
      await stop().catch(() => undefined);
    }
    if (this.scratch) rmSync(this.scratch, { recursive: true, force: true });
  }
}
