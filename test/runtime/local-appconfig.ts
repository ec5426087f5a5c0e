import { randomUUID } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { LocalHttpServer } from '../local-http';

/**
 * A local AWS AppConfig Data for the feature-flag tests: speaks restJson1 well enough for the real SDK
 * client Powertools Parameters uses. StartConfigurationSession (`POST /configurationsessions`, 201 with
 * an InitialConfigurationToken) and GetLatestConfiguration (`GET /configuration?configuration_token=`,
 * the profile's content, then an empty body until it changes, as the service does), for the profiles it
 * knows by application, environment and profile identifier; BadRequestException / ResourceNotFoundException
 * otherwise. Unsigned requests are refused.
 */
export class LocalAppConfig {
  /** `application/environment/profile` → the JSON the profile serves (feature flags: the values form). */
  public readonly profiles = new Map<string, unknown>();
  /** Status of every answer instead of serving it (e.g. 500), until cleared. */
  public failWith?: number;
  /** Requests received: `METHOD path`. */
  public readonly requests: string[] = [];
  private readonly sessions = new Map<string, { profile: string; sent?: string }>();
  private readonly http = new LocalHttpServer((req, res) => this.handle(req, res));

  async start(): Promise<string> {
    return this.http.start();
  }


  reset(): void {
    this.profiles.clear();
    this.sessions.clear();
    this.requests.length = 0;
    this.failWith = undefined;
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://local');
      this.requests.push(`${req.method} ${url.pathname}`);
      const error = (status: number, type: string, message: string) => {
        res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type });
        res.end(JSON.stringify({ Message: message }));
      };
      if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256')) return error(403, 'AccessDeniedException', 'request not signed');
      if (this.failWith) return error(this.failWith, 'InternalServerException', 'injected failure');
      if (req.method === 'POST' && url.pathname === '/configurationsessions') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        const profile = `${body.ApplicationIdentifier}/${body.EnvironmentIdentifier}/${body.ConfigurationProfileIdentifier}`;
        if (!this.profiles.has(profile)) return error(404, 'ResourceNotFoundException', `no profile ${profile}`);
        const token = randomUUID();
        this.sessions.set(token, { profile });
        res.writeHead(201, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ InitialConfigurationToken: token }));
      }
      if (req.method === 'GET' && url.pathname === '/configuration') {
        const session = this.sessions.get(url.searchParams.get('configuration_token') ?? '');
        if (!session) return error(400, 'BadRequestException', 'invalid configuration token');
        const content = JSON.stringify(this.profiles.get(session.profile));
        const next = randomUUID();
        // The service answers an unchanged configuration with an empty body.
        const body = content === session.sent ? '' : content;
        this.sessions.set(next, { profile: session.profile, sent: content });
        res.writeHead(200, {
          'content-type': 'application/json',
          'next-poll-configuration-token': next,
          'next-poll-interval-in-seconds': '15',
          'version-label': 'v1',
        });
        return res.end(body);
      }
      return error(404, 'UnknownOperationException', `${req.method} ${url.pathname}`);
    });
  }
}

/** The platform's four flags in the form AppConfig serves a feature-flag profile. */
export function flagValues(overrides: Record<string, Record<string, unknown>> = {}): Record<string, Record<string, unknown>> {
  return {
    ragQueries: { enabled: true },
    timeSeriesApi: { enabled: true },
    largeFileBatch: { enabled: true, lambdaMaxBytes: 268435456 },
    knowledgeBaseSync: { enabled: true },
    ...overrides,
  };
}
