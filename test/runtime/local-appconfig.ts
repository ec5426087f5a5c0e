import { randomUUID } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { LocalHttpServer, withBody } from '../local-http';

/** AppConfig Data's default `RequiredMinimumPollIntervalInSeconds` (StartConfigurationSession: 15 to 86400, default 60). */
export const DEFAULT_POLL_INTERVAL_SECONDS = 60;
/** A configuration token is valid for up to 24 hours (GetLatestConfiguration). */
const TOKEN_LIFETIME_MS = 24 * 3600 * 1000;

interface Token {
  readonly profile: string;
  /** What the session last served (an unchanged configuration is answered with an empty body). */
  readonly sent?: string;
  readonly intervalSeconds: number;
  /** Earliest use: the issue time plus the poll interval (the initial token is usable at once). */
  readonly notBefore: number;
  readonly expires: number;
}

/**
 * A local AWS AppConfig Data for the feature-flag tests: speaks restJson1 well enough for the real SDK
 * client Powertools Parameters uses, and follows the service's session rules (AppConfig Data API reference,
 * StartConfigurationSession and GetLatestConfiguration):
 * - StartConfigurationSession (`POST /configurationsessions`, 201 with an InitialConfigurationToken) takes
 *   `RequiredMinimumPollIntervalInSeconds` (15 to 86400, default 60; outside: BadRequestException).
 * - GetLatestConfiguration (`GET /configuration?configuration_token=`) serves the profile's content, then an
 *   empty body until it changes, with a NextPollConfigurationToken and NextPollIntervalInSeconds.
 * - Each token is valid for one call and for 24 hours: a used, unknown or expired token is a BadRequestException.
 * - A call with the next token before the session's poll interval has passed is a BadRequestException
 *   (the token is not consumed by the refused call, so a client may retry it once the interval has passed).
 * Time is `now()` (a test may move it). Unsigned requests are refused.
 */
export class LocalAppConfig {
  /** `application/environment/profile` → the JSON the profile serves (feature flags: the values form). */
  public readonly profiles = new Map<string, unknown>();
  /** Status of every answer instead of serving it (e.g. 500), until cleared. */
  public failWith?: number;
  /** Requests received: `METHOD path`. */
  public readonly requests: string[] = [];
  /** Answers given: `METHOD path status` (with the error type when refused). */
  public readonly answers: string[] = [];
  /** Sessions started: the profile and the poll interval each asked for (or got by default). */
  public readonly sessions: Array<{ profile: string; intervalSeconds: number }> = [];
  private readonly tokens = new Map<string, Token>();
  private readonly http = new LocalHttpServer(withBody((req, res, raw) => this.handle(req, res, raw)));
  /** The server's clock, in ms (a test may replace it to move time). */
  public now: () => number = () => Date.now();

  async start(): Promise<string> {
    return this.http.start();
  }


  reset(): void {
    this.profiles.clear();
    this.tokens.clear();
    this.requests.length = 0;
    this.answers.length = 0;
    this.sessions.length = 0;
    this.failWith = undefined;
    this.now = () => Date.now();
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  /** Every token stops being valid (as after 24 hours): the next poll of any session is a BadRequestException. */
  expireTokens(): void {
    this.tokens.clear();
  }

  private handle(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://local');
    const request = `${req.method} ${url.pathname}`;
    this.requests.push(request);
    const error = (status: number, type: string, message: string) => {
      this.answers.push(`${request} ${status} ${type}`);
      res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type });
      res.end(JSON.stringify({ Message: message }));
    };
    if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256')) return error(403, 'AccessDeniedException', 'request not signed');
    if (this.failWith) return error(this.failWith, 'InternalServerException', 'injected failure');
    const now = this.now();
    if (req.method === 'POST' && url.pathname === '/configurationsessions') {
      const body = JSON.parse(raw.toString('utf8') || '{}');
      const intervalSeconds = body.RequiredMinimumPollIntervalInSeconds ?? DEFAULT_POLL_INTERVAL_SECONDS;
      if (!Number.isInteger(intervalSeconds) || intervalSeconds < 15 || intervalSeconds > 86400) {
        return error(400, 'BadRequestException', 'RequiredMinimumPollIntervalInSeconds must be between 15 and 86400');
      }
      const profile = `${body.ApplicationIdentifier}/${body.EnvironmentIdentifier}/${body.ConfigurationProfileIdentifier}`;
      if (!this.profiles.has(profile)) return error(404, 'ResourceNotFoundException', `no profile ${profile}`);
      const token = randomUUID();
      this.sessions.push({ profile, intervalSeconds });
      this.tokens.set(token, { profile, intervalSeconds, notBefore: now, expires: now + TOKEN_LIFETIME_MS });
      this.answers.push(`${request} 201`);
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ InitialConfigurationToken: token }));
      return;
    }
    if (req.method === 'GET' && url.pathname === '/configuration') {
      const key = url.searchParams.get('configuration_token') ?? '';
      const token = this.tokens.get(key);
      if (!token || token.expires <= now) return error(400, 'BadRequestException', 'invalid or expired configuration token');
      if (now < token.notBefore) return error(400, 'BadRequestException', 'Request too early');
      // Single use: the next call must bring the token this answer gives.
      this.tokens.delete(key);
      const content = JSON.stringify(this.profiles.get(token.profile));
      const next = randomUUID();
      // The service answers an unchanged configuration with an empty body.
      const body = content === token.sent ? '' : content;
      this.tokens.set(next, {
        profile: token.profile,
        sent: content,
        intervalSeconds: token.intervalSeconds,
        notBefore: now + token.intervalSeconds * 1000,
        expires: now + TOKEN_LIFETIME_MS,
      });
      this.answers.push(`${request} 200${body ? '' : ' empty'}`);
      res.writeHead(200, {
        'content-type': 'application/json',
        'next-poll-configuration-token': next,
        'next-poll-interval-in-seconds': String(token.intervalSeconds),
        ...(body ? { 'version-label': 'v1' } : {}),
      });
      res.end(body);
      return;
    }
    return error(404, 'UnknownOperationException', request);
  }
}

/** The platform's four flags in the form AppConfig serves a feature-flag profile. */
export function flagValues(overrides: Record<string, Record<string, unknown>> = {}): Record<string, Record<string, unknown>> {
  return {
    ragQueries: { enabled: true },
    timeSeriesApi: { enabled: true },
    largeFileBatch: { enabled: true, lambdaMaxBytes: 268435456 },
    knowledgeBaseSync: { enabled: true },
    numericAnswers: { enabled: true },
    ...overrides,
  };
}
