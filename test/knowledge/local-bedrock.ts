import { createServer, Http2Server, Http2Session, IncomingHttpHeaders } from 'node:http2';
import { AddressInfo } from 'node:net';

/**
 * A local bedrock-agent-runtime endpoint over cleartext HTTP/2 (the SDK client's default handler speaks
 * HTTP/2): `POST /retrieveAndGenerate` in the REST-JSON protocol. It records every request and answers
 * with what `onRetrieveAndGenerate` returns: a JSON body (200) or an error (`x-amzn-errortype`, status, message).
 */

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: any;
}

export type StubReply =
  | { readonly body: unknown }
  | { readonly error: string; readonly status: number; readonly message: string };

export class LocalBedrockAgentRuntime {
  private server?: Http2Server;
  private readonly sessions = new Set<Http2Session>();
  readonly requests: RecordedRequest[] = [];
  onRetrieveAndGenerate: (body: any) => StubReply = () => ({ body: { sessionId: 'session-1', output: { text: '' }, citations: [] } });

  async start(): Promise<string> {
    this.server = createServer();
    this.server.on('session', (session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
    });
    this.server.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const method = String(headers[':method']);
        const path = String(headers[':path']);
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = text;
        }
        this.requests.push({ method, path, headers, body });
        if (method !== 'POST' || path !== '/retrieveAndGenerate') {
          stream.respond({ ':status': 404, 'content-type': 'application/json', 'x-amzn-errortype': 'UnknownOperationException' });
          stream.end('{"message":"unknown operation"}');
          return;
        }
        const reply = this.onRetrieveAndGenerate(body);
        if ('error' in reply) {
          stream.respond({ ':status': reply.status, 'content-type': 'application/json', 'x-amzn-errortype': reply.error, 'x-amzn-requestid': 'stub-request' });
          stream.end(JSON.stringify({ message: reply.message }));
        } else {
          stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-amzn-requestid': 'stub-request' });
          stream.end(JSON.stringify(reply.body));
        }
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  reset(): void {
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    // The handler's client keeps its session open: close them, or close() waits for ever.
    for (const session of this.sessions) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
