import { Annotations, ArnFormat, Duration, Names, Size, Stack, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { AdditionalDataset, LedgerApiEnv } from './contract';
import { LedgerFunction } from './ledger-function';
import { REQUEST_MODELS, ROUTES, RouteTarget } from './routes';
import { createPlatformFunction } from '../core/defaults';
import { IMonitor, IMonitorable, platformMetric } from '../core/monitorable';
import { acknowledgeScopedWildcards } from '../core/nag';
import { CallerInventory, functionRuntimeCalls } from '../core/permissions';
import { applyDataRemovalPolicy } from '../core/removal';
import { invokeTarget, SafeDeployment } from '../core/safe-deployment';
import { ApiThrottling, PlatformStage } from '../core/stage';
import type { DatasetTableProps } from '../lake/data-lake-props';
import { LedgerSchema } from '../ledger/contract';
import { IIngestionLedger } from '../ledger/ingestion-ledger';
import { ApiEnv, MetricServices, OPERATION_DIMENSION, PlatformMetrics, QueryOperations } from '../runtime/contract';

/**
 * Limits of a usage plan: what one API key of that plan may do. API Gateway applies a key's rate and
 * burst to each method, inside the stage's method throttling, so neither may exceed the stage's.
 */
export interface UsagePlanLimits {
  /** Requests per day (the quota), all methods together. */
  readonly requestsPerDay: number;
  /** Steady-state requests per second of one key on each method; at most the stage's method `rateLimit`. */
  readonly rateLimit: number;
  /** Requests one key may make in a burst on each method; at most the stage's method `burstLimit`. */
  readonly burstLimit: number;
}

/**
 * The usage plans of the API: every API key belongs to one. By default both scale with the stage's method
 * throttling (`PlatformStage.apiThrottling`): PROD 100 rps (burst 200) per method for all callers together.
 */
export enum ApiTier {
  /** 10,000 requests a day; per method, a fifth of the stage's method limits (PROD: 20 rps, bursts of 40). */
  BASIC = 'basic',
  /** 100,000 requests a day; per method, the stage's method limits (PROD: 100 rps, bursts of 200). */
  PREMIUM = 'premium',
}

/**
 * Options of a Cognito user-pool authorization.
 */
export interface CognitoAuthorizationOptions {
  /**
   * OAuth scopes a token must carry (any of them); without scopes, an ID token is expected.
   *
   * @default - no scope check
   */
  readonly scopes?: string[];
}

/**
 * Who may call the API's routes (every route but `GET /health`, which stays open). An API key is
 * always required too: it selects the usage plan.
 */
export class ApiAuthorization {
  /** API keys only. */
  public static apiKeyOnly(): ApiAuthorization {
    return new ApiAuthorization('apiKey');
  }

  /** A token of one of these Cognito user pools in the `Authorization` header, and an API key. */
  public static cognito(userPools: cognito.IUserPool[], options: CognitoAuthorizationOptions = {}): ApiAuthorization {
    if (userPools.length === 0) throw new Error('authorization: ApiAuthorization.cognito() needs at least one user pool');
    return new ApiAuthorization('cognito', userPools, options.scopes);
  }

  /** Requests signed with AWS Signature Version 4 by a principal allowed by `grantInvoke`, and an API key. */
  public static iam(): ApiAuthorization {
    return new ApiAuthorization('iam');
  }

  /** `apiKey`, `cognito` or `iam`. */
  public readonly kind: string;
  private readonly userPools?: cognito.IUserPool[];
  private readonly scopes?: string[];

  private constructor(kind: string, userPools?: cognito.IUserPool[], scopes?: string[]) {
    this.kind = kind;
    this.userPools = userPools;
    this.scopes = scopes;
  }

  /** @internal */
  public _methodOptions(scope: Construct): Pick<apigw.MethodOptions, 'authorizationType' | 'authorizer' | 'authorizationScopes'> {
    if (this.kind === 'iam') return { authorizationType: apigw.AuthorizationType.IAM };
    if (this.kind === 'cognito') {
      const authorizer = (scope.node.tryFindChild('Authorizer') as apigw.CognitoUserPoolsAuthorizer | undefined)
        ?? new apigw.CognitoUserPoolsAuthorizer(scope, 'Authorizer', { cognitoUserPools: this.userPools! });
      return { authorizationType: apigw.AuthorizationType.COGNITO, authorizer, authorizationScopes: this.scopes };
    }
    return { authorizationType: apigw.AuthorizationType.NONE };
  }
}

/**
 * An AWS WAF web ACL in front of the API.
 */
export interface ApiWafOptions {
  /**
   * Requests one client IP address may make in any 5 minutes before WAF blocks it (429).
   *
   * @default 2000
   */
  readonly rateLimitPerIp?: number;

  /**
   * An existing regional web ACL to associate instead of creating one (its blocks answer 403).
   *
   * @default - a web ACL with the rate-based rule is created
   */
  readonly webAclArn?: string;
}

/**
 * Options of the API that `OnsDataPlatform` passes through.
 */
export interface PlatformApiOptions {
  /**
   * Who may call the routes besides holding an API key.
   *
   * @default ApiAuthorization.apiKeyOnly()
   */
  readonly authorization?: ApiAuthorization;

  /**
   * Limits of the basic usage plan. Its rate and burst must not exceed `throttling`'s.
   *
   * @default - 10,000 requests a day; a fifth of `throttling`'s rate and burst (PROD: 20 rps, burst 40)
   */
  readonly basicPlan?: UsagePlanLimits;

  /**
   * Limits of the premium usage plan. Its rate and burst must not exceed `throttling`'s.
   *
   * @default - 100,000 requests a day; `throttling`'s rate and burst (PROD: 100 rps, burst 200)
   */
  readonly premiumPlan?: UsagePlanLimits;

  /**
   * Throttling of each method of the stage (API Gateway's `*` / `*` method setting), all keys together:
   * every method gets this limit on its own, and no usage plan may promise more.
   *
   * @default - the stage's `apiThrottling` (DEV 10/20, STAGING 50/100, PROD 100/200)
   */
  readonly throttling?: ApiThrottling;

  /**
   * Throttling of `POST /query` alone, all keys together (it spends Bedrock tokens); it replaces
   * `throttling` for that method.
   *
   * @default - the stage's `queryThrottling` (DEV 2/4, STAGING 5/10, PROD 10/20)
   */
  readonly queryThrottling?: ApiThrottling;

  /**
   * Origins allowed to call the API from a browser (CORS), e.g. `https://dashboard.example.com`.
   *
   * @default - none: no CORS headers, no preflight routes
   */
  readonly corsAllowOrigins?: string[];

  /**
   * An AWS WAF web ACL with a rate-based rule per client IP.
   *
   * @default - no web ACL (throttling and usage plans only)
   */
  readonly waf?: ApiWafOptions;

  /**
   * X-Ray tracing of the API stage.
   *
   * @default - as the stage traces its functions (off in DEV, on in STAGING and PROD)
   */
  readonly tracing?: boolean;

  /**
   * API Gateway execution logging (request bodies are never logged).
   *
   * @default apigateway.MethodLoggingLevel.ERROR
   */
  readonly executionLogging?: apigw.MethodLoggingLevel;

  /**
   * Create the account's API Gateway CloudWatch role (`AWS::ApiGateway::Account`), which execution
   * logging needs once per account and region. Turn it off when the account already has one.
   *
   * @default - true when execution logging is on
   */
  readonly cloudWatchRole?: boolean;

  /**
   * Name of the API Gateway stage: the first path segment of every URL.
   *
   * @default 'v1'
   */
  readonly stageName?: string;
}

/**
 * Properties of `PlatformApi`.
 */
export interface PlatformApiProps extends PlatformApiOptions {
  /** The stage: throttling, tracing, log retention and function defaults come from it. */
  readonly stage: PlatformStage;

  /** Encrypts the access log group and the ledger function's environment (CloudWatch Logs must be allowed to use it). */
  readonly encryptionKey: kms.IKey;

  /** Serves `GET /health` (API Gateway proxy format). */
  readonly healthFunction: lambda.IFunction;

  /**
   * Serves `GET /timeseries/{dataset}` (e.g. `ITimeSeriesStore.queryFunction`).
   *
   * @default - no time-series route
   */
  readonly timeSeriesQueryFunction?: lambda.IFunction;

  /**
   * Serves `POST /query` (e.g. `KnowledgeBase.queryFunction`).
   *
   * @default - no query route
   */
  readonly knowledgeQueryFunction?: lambda.IFunction;

  /**
   * The ingestion ledger behind `GET /datasets` and `GET /ingestions` (the API creates their function).
   *
   * @default - no ledger routes
   */
  readonly ledger?: IIngestionLedger;

  /**
   * Dataset ids the time-series store has a table for (`timeSeries: true` in `GET /datasets`).
   *
   * @default - none
   */
  readonly timeSeriesDatasets?: string[];

  /**
   * Datasets outside the catalog that have a lake table (the lake's `additionalDatasets`), listed by `GET /datasets`
   * after the catalog's.
   *
   * @default - none
   */
  readonly additionalDatasets?: DatasetTableProps[];

  /**
   * Concurrent executions reserved for the function the API creates.
   *
   * @default - no reservation
   */
  readonly reservedConcurrentExecutions?: number;

  /**
   * Publishes every function behind the API (the ones passed in and the ledger function) through
   * aliases and CodeDeploy; the integrations then invoke the aliases.
   *
   * @default - no gradual deployment: the integrations invoke the functions' `$LATEST`
   */
  readonly safeDeployment?: SafeDeployment;
}

/**
 * Default plans, from the stage's method throttling: a key's limits apply per method inside the stage's,
 * so a plan above them would promise what API Gateway never grants.
 */
function defaultPlan(tier: ApiTier, throttling: ApiThrottling): UsagePlanLimits {
  if (tier === ApiTier.PREMIUM) return { requestsPerDay: 100_000, rateLimit: throttling.rateLimit, burstLimit: throttling.burstLimit };
  return { requestsPerDay: 10_000, rateLimit: throttling.rateLimit / 5, burstLimit: Math.max(1, Math.floor(throttling.burstLimit / 5)) };
}

/**
 * Default throttle quota of an account in most Regions, all its APIs together ("Amazon API Gateway quotas":
 * 10,000 requests per second, a 5,000-request bucket; 2,500 / 1,250 in some newer Regions).
 */
const ACCOUNT_THROTTLE = { rateLimit: 10_000, burstLimit: 5_000 };

/** Resource path and method of the route that spends Bedrock tokens (its own method setting). */
const QUERY_METHOD = { path: '/query', method: 'POST' };

/** Codes and messages of API Gateway's own responses, in the API's error shape. */
const GATEWAY_RESPONSES: Array<{ type: apigw.ResponseType; status?: string; code: string; message?: string }> = [
  { type: apigw.ResponseType.DEFAULT_4XX, code: 'ClientError' },
  { type: apigw.ResponseType.DEFAULT_5XX, code: 'ServerError' },
  { type: apigw.ResponseType.BAD_REQUEST_BODY, status: '400', code: 'InvalidRequest', message: 'the body does not match the request schema (see the OpenAPI document)' },
  { type: apigw.ResponseType.BAD_REQUEST_PARAMETERS, status: '400', code: 'InvalidParameter' },
  { type: apigw.ResponseType.INVALID_API_KEY, status: '403', code: 'InvalidApiKey', message: 'a valid API key is required in the x-api-key header' },
  { type: apigw.ResponseType.ACCESS_DENIED, status: '403', code: 'AccessDenied' },
  { type: apigw.ResponseType.UNAUTHORIZED, status: '401', code: 'Unauthorized' },
  { type: apigw.ResponseType.EXPIRED_TOKEN, status: '403', code: 'ExpiredToken' },
  { type: apigw.ResponseType.INVALID_SIGNATURE, status: '403', code: 'InvalidSignature' },
  { type: apigw.ResponseType.RESOURCE_NOT_FOUND, status: '404', code: 'NotFound' },
  { type: apigw.ResponseType.REQUEST_TOO_LARGE, status: '413', code: 'PayloadTooLarge' },
  { type: apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE, status: '415', code: 'UnsupportedMediaType' },
  { type: apigw.ResponseType.THROTTLED, status: '429', code: 'TooManyRequests', message: 'too many requests; retry later' },
  { type: apigw.ResponseType.QUOTA_EXCEEDED, status: '429', code: 'QuotaExceeded', message: 'the daily quota of this API key is used up' },
  { type: apigw.ResponseType.INTEGRATION_TIMEOUT, status: '504', code: 'Timeout', message: 'the request took too long; retry with a narrower query' },
  { type: apigw.ResponseType.INTEGRATION_FAILURE, status: '502', code: 'BadGateway', message: 'the request could not be completed' },
];

/**
 * The platform's REST API (API Gateway): `GET /health` (open), `POST /query`, `GET /datasets`,
 * `GET /timeseries/{dataset}` and `GET /ingestions` (API key required), as described by the OpenAPI
 * document the package ships (`openapi/ons-data-platform.json`).
 *
 * Regional endpoint; request validation (JSON Schema model for the body of `POST /query`, required
 * query parameters of `GET /timeseries/{dataset}`); every error, API Gateway's own included, as
 * `{ "error": { "code", "message" }, "requestId" }`; two usage plans (`ApiTier`) that fit under the
 * stage's per-method throttling (from the platform stage, lower on `POST /query`); JSON access logs in a KMS-encrypted log group; X-Ray; optional Cognito or
 * IAM authorization, CORS origins and AWS WAF. API keys are created with `addApiKey()`: their values
 * are generated by API Gateway and never appear in a template.
 *
 * @example
 * const api = new PlatformApi(stack, 'Api', {
 *   stage: PlatformStage.PROD,
 *   encryptionKey: platform.encryptionKey,
 *   healthFunction: platform.healthFunction,
 *   knowledgeQueryFunction: platform.knowledgeBase.queryFunction,
 * });
 * api.addApiKey('Dashboard', { tier: ApiTier.PREMIUM });
 */
export class PlatformApi extends Construct implements IMonitorable {
  /** The API Gateway REST API. */
  public readonly restApi: apigw.RestApi;
  /** The base URL, e.g. `https://abc123.execute-api.us-east-1.amazonaws.com/v1/`. */
  public readonly url: string;
  /** The usage plan of `ApiTier.BASIC` keys. */
  public readonly basicPlan: apigw.UsagePlan;
  /** The usage plan of `ApiTier.PREMIUM` keys. */
  public readonly premiumPlan: apigw.UsagePlan;
  /** The access log group (JSON lines, one per request). */
  public readonly accessLogGroup: logs.ILogGroup;
  /** Serves `GET /datasets` and `GET /ingestions`, when a ledger was given. */
  public readonly ledgerFunction?: lambda.IFunction;
  /**
   * The log group of the web ACL's request logs (`aws-waf-logs-*`, KMS-encrypted with the platform key), when the
   * web ACL is created here.
   */
  public readonly wafLogGroup?: logs.ILogGroup;
  /** What the permission inventory needs of the ledger function. */
  private ledgerInventory?: { readonly fn: lambda.Function; readonly ledger: IIngestionLedger; readonly key: kms.IKey };
  /** The web ACL created for the API, when `waf` is set without `webAclArn`. */
  public readonly webAcl?: wafv2.CfnWebACL;
  /** The API Gateway stage name (first path segment of every URL). */
  public readonly stageName: string;
  private readonly authorization: ApiAuthorization;
  /** The platform stage's name (the metrics' namespace), not the API Gateway stage's. */
  private readonly platformStageName: string;

  constructor(scope: Construct, id: string, props: PlatformApiProps) {
    super(scope, id);
    const stage = props.stage;
    this.platformStageName = stage.name;
    const throttling = props.throttling ?? stage.apiThrottling;
    validateLimits('throttling', throttling.rateLimit, throttling.burstLimit);
    const queryThrottling = props.queryThrottling ?? stage.queryThrottling;
    validateLimits('queryThrottling', queryThrottling.rateLimit, queryThrottling.burstLimit);
    const origins = validateOrigins(props.corsAllowOrigins ?? []);
    this.authorization = props.authorization ?? ApiAuthorization.apiKeyOnly();
    const executionLogging = props.executionLogging ?? apigw.MethodLoggingLevel.ERROR;
    const stageName = props.stageName ?? 'v1';
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(stageName)) throw new Error(`stageName: '${stageName}' must be 1-128 letters, digits, - or _`);

    const accessLogGroup = new logs.LogGroup(this, 'AccessLogs', { retention: stage.logRetention, encryptionKey: props.encryptionKey });
    applyDataRemovalPolicy(accessLogGroup, stage);
    this.accessLogGroup = accessLogGroup;

    this.stageName = stageName;
    this.restApi = new apigw.RestApi(this, 'Api', {
      restApiName: `ons-data-platform-${stage.name}`,
      description: `ONS data platform (${stage.name}): time series, catalog, ingestions and questions`,
      endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
      apiKeySourceType: apigw.ApiKeySourceType.HEADER,
      minCompressionSize: Size.kibibytes(1),
      cloudWatchRole: props.cloudWatchRole ?? executionLogging !== apigw.MethodLoggingLevel.OFF,
      deployOptions: {
        stageName,
        tracingEnabled: props.tracing ?? stage.tracing === lambda.Tracing.ACTIVE,
        loggingLevel: executionLogging,
        // Bodies carry questions and tokens: never in the logs.
        dataTraceEnabled: false,
        metricsEnabled: true,
        // Per method, all callers together (the `*/*` method setting); POST /query has its own, lower one.
        throttlingRateLimit: throttling.rateLimit,
        throttlingBurstLimit: throttling.burstLimit,
        methodOptions: props.knowledgeQueryFunction ? {
          [`${QUERY_METHOD.path}/${QUERY_METHOD.method}`]: {
            throttlingRateLimit: queryThrottling.rateLimit,
            throttlingBurstLimit: queryThrottling.burstLimit,
          },
        } : undefined,
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogGroup),
        accessLogFormat: accessLogFormat(),
      },
      defaultCorsPreflightOptions: origins.length ? {
        allowOrigins: origins,
        allowMethods: ['GET', 'POST', 'OPTIONS'],
        allowHeaders: ['Content-Type', 'X-Api-Key', 'Authorization', 'X-Amz-Date', 'X-Amz-Security-Token'],
        maxAge: Duration.hours(1),
      } : undefined,
    });
    this.url = this.restApi.url;
    this.addGatewayResponses(origins, props.waf);

    const bodyValidator = this.restApi.addRequestValidator('BodyValidator', { validateRequestBody: true, validateRequestParameters: true });
    const parameterValidator = this.restApi.addRequestValidator('ParameterValidator', { validateRequestBody: false, validateRequestParameters: true });
    const models = Object.fromEntries(Object.entries(REQUEST_MODELS).map(([name, schema]) => [name, this.restApi.addModel(name, {
      modelName: name,
      contentType: 'application/json',
      schema: { schema: apigw.JsonSchemaVersion.DRAFT4, ...schema } as unknown as apigw.JsonSchema,
    })]));

    if (props.ledger) {
      const fn = createPlatformFunction(this, 'Ledger', LedgerFunction, {
        stage,
        service: MetricServices.API,
        encryptionKey: props.encryptionKey,
        description: `ONS data platform (${stage.name}): catalog and ingestion ledger API`,
        timeout: Duration.seconds(29),
        reservedConcurrentExecutions: props.reservedConcurrentExecutions,
        environment: {
          [LedgerApiEnv.TABLE]: props.ledger.tableName,
          [LedgerApiEnv.TIME_SERIES_DATASETS]: JSON.stringify(props.timeSeriesDatasets ?? []),
          ...(props.additionalDatasets?.length ? { [LedgerApiEnv.DATASETS]: JSON.stringify(props.additionalDatasets.map(additionalDataset)) } : {}),
        },
      });
      props.ledger.grantQuery(fn);
      this.ledgerInventory = { fn, ledger: props.ledger, key: props.encryptionKey };
      acknowledgeScopedWildcards(fn.role!);
      this.ledgerFunction = fn;
    }

    const targets: Record<RouteTarget, lambda.IFunction | undefined> = {
      health: props.healthFunction,
      knowledge: props.knowledgeQueryFunction,
      timeSeries: props.timeSeriesQueryFunction,
      ledger: this.ledgerFunction,
    };
    const integrations = new Map<lambda.IFunction, apigw.LambdaIntegration>();
    for (const route of ROUTES) {
      const fn = targets[route.target];
      if (!fn) continue;
      if (origins.length) setCorsOrigins(fn, origins);
      // The data routes answer through the handler toolkit (every exception a 500, counted in ServerErrors); the health
      // function answers 200 or an expected readiness 503 and throws on a fault, which the alias's Errors sees.
      const target = invokeTarget(props.safeDeployment, fn, { watchServerErrors: route.target !== 'health' });
      if (!integrations.has(fn)) integrations.set(fn, new apigw.LambdaIntegration(target, { allowTestInvoke: false }));
      const required = route.query.filter((q) => q.required);
      this.restApi.root.resourceForPath(route.path).addMethod(route.method, integrations.get(fn)!, {
        operationName: route.operationId,
        apiKeyRequired: !route.open,
        ...(route.open ? { authorizationType: apigw.AuthorizationType.NONE } : this.authorization._methodOptions(this)),
        ...(route.body ? { requestModels: { 'application/json': models[route.body] }, requestValidator: bodyValidator } : {}),
        ...(!route.body && required.length ? {
          requestParameters: Object.fromEntries(required.map((q) => [`method.request.querystring.${q.name}`, true])),
          requestValidator: parameterValidator,
        } : {}),
      });
    }

    this.basicPlan = this.addPlan(ApiTier.BASIC, props.basicPlan ?? defaultPlan(ApiTier.BASIC, throttling), throttling);
    this.premiumPlan = this.addPlan(ApiTier.PREMIUM, props.premiumPlan ?? defaultPlan(ApiTier.PREMIUM, throttling), throttling);
    this.warnAboveAccountQuota(throttling, queryThrottling, props.knowledgeQueryFunction !== undefined);

    if (props.waf) this.webAcl = this.addWaf(props.waf);
    if (this.webAcl) this.wafLogGroup = this.addWafLogging(this.webAcl, props);
    this.acknowledgeFindings(props, executionLogging);
  }

  /**
   * Creates an API key in the usage plan of `tier`. API Gateway generates its value: read it with
   * `aws apigateway get-api-key --api-key <id> --include-value` (the id is `apiKey.keyId`).
   */
  public addApiKey(id: string, options: ApiKeyOptions): apigw.IApiKey {
    const key = new apigw.ApiKey(this, id, {
      apiKeyName: options.apiKeyName,
      description: options.description ?? `ONS data platform API key (${options.tier})`,
      enabled: true,
    });
    (options.tier === ApiTier.PREMIUM ? this.premiumPlan : this.basicPlan).addApiKey(key);
    return key;
  }

  /** Lets `grantee` call every route (`execute-api:Invoke`), which IAM authorization requires. */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: [this.restApi.arnForExecuteApi('*', '/*', this.stageName)],
    });
  }

  /** Requests answered with a 5xx (API Gateway's or a handler's). */
  public metricServerError(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stageMetric('5XXError', { statistic: 'Sum', ...props });
  }

  /** Requests answered with a 4xx (validation, missing keys, throttling, unknown datasets). */
  public metricClientError(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stageMetric('4XXError', { statistic: 'Sum', ...props });
  }

  /** Requests received. */
  public metricCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stageMetric('Count', { statistic: 'SampleCount', ...props });
  }

  /** Time from request to response, API Gateway included (p99 by default). */
  public metricLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stageMetric('Latency', { statistic: 'p99', ...props });
  }

  /**
   * Time the query handler of `operation` took to answer a request, API Gateway left out (p99 over 5 minutes):
   * `getTimeSeries` (the time-series store's query function) or `query` (the knowledge base's). The metric is the
   * stage's (namespace `OnsDataPlatform/<stage>`, dimensions `service` = `api` and `operation`).
   */
  public metricQueryLatency(operation: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    const operations: string[] = Object.values(QueryOperations);
    if (!operations.includes(operation)) throw new Error(`operation: expected one of ${operations.join(', ')}, got '${operation}'`);
    return platformMetric(this.platformStageName, PlatformMetrics.QUERY_LATENCY, { ...props, dimensionsMap: { [OPERATION_DIMENSION]: operation } });
  }

  /**
   * The REST API's 5XX and 4XX rates and p99 latency, from this stage's metrics. The 5XX rate leaves out the
   * readiness route's answers (`GET /health/ready`, from its method's detailed metrics): its 503 is a report that
   * a component is down, which that component's own alarms raise, not a failure of the API.
   */
  public addMonitoring(monitor: IMonitor): void {
    const period = monitor.thresholds.period;
    const readiness = ROUTES.find((r) => r.operationId === 'getReadiness')!;
    // Detailed metrics (the stage's metricsEnabled) carry the method's dimensions: ApiName, Method, Resource, Stage.
    const readinessErrors = this.stageMetric('5XXError', {
      statistic: 'Sum', period, dimensionsMap: { ApiName: this.restApi.restApiName, Method: readiness.method, Resource: readiness.path, Stage: this.stageName },
    });
    const serverErrors = new cloudwatch.MathExpression({
      expression: 'FILL(allServerErrors, 0) - FILL(readinessServerErrors, 0)',
      usingMetrics: { allServerErrors: this.metricServerError({ period }), readinessServerErrors: readinessErrors },
      period,
      label: '5XX but readiness',
    });
    monitor.addRestApiAlarms(this.restApi, {
      serverErrors,
      clientErrors: this.metricClientError({ period }),
      count: this.metricCount({ period }),
      latency: this.metricLatency({ period }),
    });
  }

  /**
   * The calls of the API's own function (the ledger routes read the table's two indexes, never the table), for the
   * permission-closure test (test/permissions/closure.test.ts).
   * @internal
   */
  public _permissionInventory(): CallerInventory[] {
    if (!this.ledgerInventory) return [];
    const { fn, ledger, key } = this.ledgerInventory;
    return [{
      name: 'API ledger routes',
      principal: fn.role!,
      calls: [
        ...functionRuntimeCalls(fn),
        ...[LedgerSchema.BY_DATASET.name, LedgerSchema.BY_STATUS.name].map((index) => ({
          action: 'dynamodb:Query', resource: `${ledger.table.tableArn}/index/${index}`, kmsKey: key.keyArn,
        })),
      ],
    }];
  }

  private stageMetric(metricName: string, props: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/ApiGateway',
      metricName,
      dimensionsMap: { ApiName: this.restApi.restApiName, Stage: this.stageName },
      period: Duration.minutes(1),
      ...props,
    });
  }

  private addPlan(tier: ApiTier, limits: UsagePlanLimits, throttling: ApiThrottling): apigw.UsagePlan {
    const prop = `${tier}Plan`;
    validateLimits(prop, limits.rateLimit, limits.burstLimit);
    // API Gateway applies the key's limits inside the stage's method limits: more would be a promise it never keeps.
    if (limits.rateLimit > throttling.rateLimit || limits.burstLimit > throttling.burstLimit) {
      throw new Error(`${prop}: rate ${limits.rateLimit}, burst ${limits.burstLimit} exceed the stage's method throttling `
        + `(throttling: rate ${throttling.rateLimit}, burst ${throttling.burstLimit}), which API Gateway applies first; lower the plan or raise \`throttling\``);
    }
    if (!Number.isInteger(limits.requestsPerDay) || limits.requestsPerDay < 1) {
      throw new Error(`${prop}.requestsPerDay: expected a positive integer, got ${limits.requestsPerDay}`);
    }
    return this.restApi.addUsagePlan(`${tier[0].toUpperCase()}${tier.slice(1)}Plan`, {
      description: `ONS data platform API, ${tier} tier: ${limits.requestsPerDay} requests a day, ${limits.rateLimit} per second, bursts of ${limits.burstLimit}`,
      quota: { limit: limits.requestsPerDay, period: apigw.Period.DAY },
      throttle: { rateLimit: limits.rateLimit, burstLimit: limits.burstLimit },
      apiStages: [{ api: this.restApi, stage: this.restApi.deploymentStage }],
    });
  }

  /** The account's Regional quota caps every API together: method limits that add up above it cannot all be met. */
  private warnAboveAccountQuota(throttling: ApiThrottling, queryThrottling: ApiThrottling, hasQuery: boolean): void {
    const methods = this.restApi.methods.filter((m) => m.httpMethod !== 'OPTIONS');
    const total = methods.reduce((sum, m) => {
      const query = hasQuery && m.resource.path === QUERY_METHOD.path && m.httpMethod === QUERY_METHOD.method;
      return sum + (query ? queryThrottling.rateLimit : throttling.rateLimit);
    }, 0);
    if (total > ACCOUNT_THROTTLE.rateLimit) {
      Annotations.of(this).addWarningV2('ons-data-platform:apiAccountThrottle',
        `The ${methods.length} methods may take ${total} requests per second together, more than the account's default `
        + `API Gateway quota of ${ACCOUNT_THROTTLE.rateLimit} per Region (shared by every API of the account): request an increase or lower \`throttling\`.`);
    }
  }

  private addGatewayResponses(origins: string[], waf: ApiWafOptions | undefined): void {
    // A gateway response cannot pick the caller's origin from a list: CORS headers only for a single allowed origin.
    const headers = origins.length === 1 ? { 'Access-Control-Allow-Origin': `'${origins[0]}'` } : undefined;
    const iamAuthorization = this.authorization.kind === 'iam';
    const responses = [
      ...GATEWAY_RESPONSES,
      // Without IAM authorization, a missing token only means no such route (API Gateway's 403 for unknown paths).
      iamAuthorization
        ? { type: apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, status: '403', code: 'MissingAuthenticationToken', message: 'no such route, or the request is not signed' }
        : { type: apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, status: '404', code: 'NotFound', message: 'no such route (see the OpenAPI document)' },
      // The created web ACL blocks only for its rate rule.
      waf && !waf.webAclArn
        ? { type: apigw.ResponseType.WAF_FILTERED, status: '429', code: 'TooManyRequests', message: 'too many requests from this address; retry later' }
        : { type: apigw.ResponseType.WAF_FILTERED, status: '403', code: 'RequestBlocked', message: 'the request was blocked by the web application firewall' },
    ];
    for (const r of responses) {
      const message = r.message ? JSON.stringify(r.message) : '$context.error.messageString';
      this.restApi.addGatewayResponse(`Response${r.type.responseType}`, {
        type: r.type,
        statusCode: r.status,
        responseHeaders: { 'Cache-Control': "'no-store'", ...headers },
        templates: { 'application/json': `{"error":{"code":"${r.code}","message":${message}},"requestId":"$context.requestId"}` },
      });
    }
  }

  private addWaf(options: ApiWafOptions): wafv2.CfnWebACL | undefined {
    let webAclArn = options.webAclArn;
    let acl: wafv2.CfnWebACL | undefined;
    if (!webAclArn) {
      const limit = options.rateLimitPerIp ?? 2000;
      // WAF's bounds for a rate-based rule.
      if (!Number.isInteger(limit) || limit < 10 || limit > 2_000_000_000) {
        throw new Error(`waf.rateLimitPerIp: expected an integer from 10 to 2,000,000,000, got ${limit}`);
      }
      const metricName = `ons-api-${this.node.addr.slice(0, 8)}`;
      acl = new wafv2.CfnWebACL(this, 'WebAcl', {
        scope: 'REGIONAL',
        defaultAction: { allow: {} },
        visibilityConfig: { cloudWatchMetricsEnabled: true, sampledRequestsEnabled: true, metricName },
        rules: [{
          name: 'RateLimitPerIp',
          priority: 0,
          action: { block: {} },
          statement: { rateBasedStatement: { limit, aggregateKeyType: 'IP', evaluationWindowSec: 300 } },
          visibilityConfig: { cloudWatchMetricsEnabled: true, sampledRequestsEnabled: true, metricName: `${metricName}-rate` },
        }],
      });
      webAclArn = acl.attrArn;
    }
    new wafv2.CfnWebACLAssociation(this, 'WebAclAssociation', { resourceArn: this.restApi.deploymentStage.stageArn, webAclArn });
    return acl;
  }

  /**
   * Request logs of the web ACL in CloudWatch Logs, encrypted with the platform key and kept for the stage's retention,
   * with the API key and Authorization headers redacted. WAF requires the destination's name to start with
   * `aws-waf-logs-` and adds the log group's resource policy itself (PutLoggingConfiguration, "Logging web ACL traffic").
   */
  private addWafLogging(acl: wafv2.CfnWebACL, props: PlatformApiProps): logs.LogGroup {
    const logGroup = new logs.LogGroup(this, 'WafLogs', {
      logGroupName: `aws-waf-logs-${Names.uniqueResourceName(this, { maxLength: 200 })}`,
      retention: props.stage.logRetention,
      encryptionKey: props.encryptionKey,
    });
    applyDataRemovalPolicy(logGroup, props.stage);
    new wafv2.CfnLoggingConfiguration(this, 'WebAclLogging', {
      resourceArn: acl.attrArn,
      // The log group's ARN without the `:*` suffix of LogGroup.logGroupArn.
      logDestinationConfigs: [Stack.of(this).formatArn({
        service: 'logs', resource: 'log-group', resourceName: logGroup.logGroupName, arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      })],
      redactedFields: [{ singleHeader: { Name: 'x-api-key' } }, { singleHeader: { Name: 'authorization' } }],
    });
    return logGroup;
  }

  private acknowledgeFindings(props: PlatformApiProps, executionLogging: apigw.MethodLoggingLevel): void {
    const v = Validations.of(this.restApi);
    if (!props.waf) {
      const reason = 'WAF is opt-in (`waf`); stage throttling and per-key usage plans limit every client without it.';
      v.acknowledge({ id: 'AwsSolutions-APIG3', reason }, { id: 'NIST.800.53.R5-APIGWAssociatedWithWAF', reason });
    }
    v.acknowledge(
      { id: 'NIST.800.53.R5-APIGWCacheEnabledAndEncrypted', reason: 'No API cache: answers depend on the API key (usage plan) and on data loaded since, and a cache cluster is billed by the hour.' },
      { id: 'NIST.800.53.R5-APIGWSSLEnabled', reason: 'The integrations are Lambda proxies reached by API Gateway over AWS\'s network with IAM; there is no HTTP backend to present a client certificate to.' },
    );
    if (props.stage.tracing !== lambda.Tracing.ACTIVE) {
      v.acknowledge({ id: 'Serverless-APIGWXrayEnabled', reason: `X-Ray tracing follows the stage: off in '${props.stage.name}'.` });
    }
    v.acknowledge({
      id: 'AwsSolutions-COG4',
      reason: this.authorization.kind === 'cognito'
        ? 'Every data route uses the Cognito authorizer; only GET /health (no data, for probes) and CORS preflights are open.'
        : 'Callers authenticate with API keys (usage plans) or, when configured, IAM; Cognito is one `authorization` option, not a requirement.',
    });
    if (this.authorization.kind === 'apiKey') {
      v.acknowledge({
        id: 'AwsSolutions-APIG4',
        reason: 'Every route but GET /health requires an API key tied to a usage plan; Cognito or IAM authorization is opt-in (`authorization`).',
      });
    } else {
      // GET /health and CORS preflights stay open by design.
      v.acknowledge({ id: 'AwsSolutions-APIG4', reason: 'Only GET /health (no data, for load balancers and probes) and CORS preflights are open.' });
    }
    if (executionLogging === apigw.MethodLoggingLevel.OFF) {
      v.acknowledge({ id: 'AwsSolutions-APIG6', reason: 'Execution logging turned off with `executionLogging`; access logs stay on.' });
    }
    const role = this.restApi.node.tryFindChild('CloudWatchRole');
    if (role) {
      Validations.of(role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        reason: 'The account-level role API Gateway uses to write execution logs; AWS documents this managed policy for it.',
      });
    }
  }
}

/**
 * Options of `PlatformApi.addApiKey()`.
 */
export interface ApiKeyOptions {
  /** The usage plan the key belongs to. */
  readonly tier: ApiTier;

  /**
   * Name of the key.
   *
   * @default - generated
   */
  readonly apiKeyName?: string;

  /**
   * Description of the key.
   *
   * @default - the tier
   */
  readonly description?: string;
}

function validateLimits(prop: string, rateLimit: number, burstLimit: number): void {
  if (!(rateLimit > 0) || !Number.isFinite(rateLimit)) throw new Error(`${prop}.rateLimit: expected a positive number, got ${rateLimit}`);
  if (!Number.isInteger(burstLimit) || burstLimit < 1) throw new Error(`${prop}.burstLimit: expected a positive integer, got ${burstLimit}`);
}

function validateOrigins(origins: string[]): string[] {
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(origin)) {
      throw new Error(`corsAllowOrigins: '${origin}' must be an origin (scheme://host[:port], no path) or '*'`);
    }
  }
  return origins;
}

/** Handlers answer CORS themselves (proxy integrations): they learn the allowed origins from their environment. */
function setCorsOrigins(fn: lambda.IFunction, origins: string[]): void {
  if (!(fn instanceof lambda.Function)) {
    throw new Error(`corsAllowOrigins: ${fn.node.path} is not a lambda.Function of this app, so its environment cannot carry the allowed origins`);
  }
  fn.addEnvironment(ApiEnv.CORS_ORIGINS, JSON.stringify(origins));
}

/** One JSON object per request: who, what, how it ended and how long it took. */
function accessLogFormat(): apigw.AccessLogFormat {
  return apigw.AccessLogFormat.custom(JSON.stringify({
    requestId: apigw.AccessLogField.contextRequestId(),
    extendedRequestId: apigw.AccessLogField.contextExtendedRequestId(),
    requestTime: apigw.AccessLogField.contextRequestTime(),
    ip: apigw.AccessLogField.contextIdentitySourceIp(),
    userAgent: apigw.AccessLogField.contextIdentityUserAgent(),
    apiKeyId: apigw.AccessLogField.contextIdentityApiKeyId(),
    caller: apigw.AccessLogField.contextIdentityCaller(),
    user: apigw.AccessLogField.contextIdentityUser(),
    httpMethod: apigw.AccessLogField.contextHttpMethod(),
    resourcePath: apigw.AccessLogField.contextResourcePath(),
    protocol: apigw.AccessLogField.contextProtocol(),
    status: apigw.AccessLogField.contextStatus(),
    responseLength: apigw.AccessLogField.contextResponseLength(),
    responseLatency: apigw.AccessLogField.contextResponseLatency(),
    integrationLatency: apigw.AccessLogField.contextIntegrationLatency(),
    integrationStatus: apigw.AccessLogField.contextIntegrationStatus(),
    errorType: apigw.AccessLogField.contextErrorResponseType(),
    errorMessage: apigw.AccessLogField.contextErrorMessage(),
    wafStatus: apigw.AccessLogField.contextWafResponseCode(),
    xrayTraceId: apigw.AccessLogField.contextXrayTraceId(),
  }));
}

/** What `GET /datasets` shows of a dataset outside the catalog. */
function additionalDataset(d: DatasetTableProps): AdditionalDataset {
  return {
    id: d.datasetId,
    ...(d.description ? { description: d.description } : {}),
    dimensions: d.dimensions ?? [],
    measures: d.measures.map((m) => ({
      name: m.name, ...(m.unit ? { unit: m.unit } : {}), ...(m.description ? { description: m.description } : {}),
    })),
  };
}
