import { IncomingMessage, request, ServerResponse } from 'node:http';
import { LocalHttpServer } from '../local-http';

/**
 * A local Bedrock Agent (control plane) for the health handler test: speaks restJson1 well enough for the real
 * SDK's GetKnowledgeBase (`GET /knowledgebases/{knowledgeBaseId}`), answering with the service's response shape
 * for the knowledge bases it knows and ResourceNotFoundException (404, `x-amzn-errortype`) for any other id.
 */
export class LocalBedrockAgent {
  /** Knowledge base id → its status (`ACTIVE`, `CREATING`, `FAILED`...). */
  public readonly knowledgeBases = new Map<string, string>();
  /** Delay of every answer, in ms. */
  public latencyMs = 0;
  /** When set, every answer also waits for this promise (a test releases it). */
  public hold?: Promise<unknown>;
  /** Status code of the next answers instead of serving them (e.g. 500), until cleared. */
  public failWith?: number;
  /** Paths of the requests received (unsigned ones are refused with 403). */
  public readonly requests: string[] = [];

  private readonly http = new LocalHttpServer((req, res) => this.handle(req, res));
  private readonly timers = new Set<NodeJS.Timeout>();

  async start(): Promise<string> {
    return this.http.start();
  }


  reset(): void {
    this.latencyMs = 0;
    this.hold = undefined;
    this.failWith = undefined;
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    await this.http.close();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    req.on('end', () => {
      this.requests.push(req.url ?? '');
      const { status, headers, body } = this.answer(req);
      const send = () => {
        this.timers.delete(timer);
        res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': `req-${this.requests.length}`, ...headers });
        res.end(JSON.stringify(body));
      };
      const hold = this.hold ?? Promise.resolve();
      let timer: NodeJS.Timeout;
      void hold.then(() => {
        timer = setTimeout(send, this.latencyMs);
        this.timers.add(timer);
      });
    });
  }

  private answer(req: IncomingMessage): { status: number; headers?: Record<string, string>; body: unknown } {
    const error = (status: number, type: string, message: string) => ({ status, headers: { 'x-amzn-errortype': type }, body: { message } });
    if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256')) return error(403, 'AccessDeniedException', 'request not signed');
    if (this.failWith) return error(this.failWith, 'InternalServerException', 'injected failure');
    const match = /^\/knowledgebases\/([^/?]+)$/.exec(req.url ?? '');
    if (req.method !== 'GET' || !match) return error(404, 'UnknownOperationException', `${req.method} ${req.url}`);
    const id = decodeURIComponent(match[1]);
    const status = this.knowledgeBases.get(id);
    if (!status) return error(404, 'ResourceNotFoundException', `Knowledge base with id ${id} does not exist`);
    const region = /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(String(req.headers.authorization))?.[1] ?? 'us-east-1';
    const account = '123456789012';
    return {
      status: 200,
      body: {
        knowledgeBase: {
          knowledgeBaseId: id,
          name: `ons-knowledge-${id.toLowerCase()}`,
          knowledgeBaseArn: `arn:aws:bedrock:${region}:${account}:knowledge-base/${id}`,
          description: 'ONS documents and data cards',
          roleArn: `arn:aws:iam::${account}:role/ons-knowledge-base-role`,
          knowledgeBaseConfiguration: {
            type: 'VECTOR',
            vectorKnowledgeBaseConfiguration: {
              embeddingModelArn: `arn:aws:bedrock:${region}::foundation-model/amazon.titan-embed-text-v2:0`,
            },
          },
          storageConfiguration: {
            type: 'OPENSEARCH_SERVERLESS',
            opensearchServerlessConfiguration: {
              collectionArn: `arn:aws:aoss:${region}:${account}:collection/abcdefghij0123456789`,
              vectorIndexName: 'ons-knowledge-index',
              fieldMapping: { vectorField: 'embedding', textField: 'text', metadataField: 'metadata' },
            },
          },
          status,
          createdAt: '2024-01-01T00:00:00.000Z',
          updatedAt: '2024-01-02T00:00:00.000Z',
          ...(status === 'FAILED' ? { failureReasons: ['The vector index could not be created'] } : {}),
        },
      },
    };
  }
}

/**
 * A counting proxy in front of a local server without a request log (s3rver, dynalite): forwards every request
 * unchanged (the Host header too, so the SigV4 signature still matches) and records `METHOD path` and, for the
 * JSON protocols, the `x-amz-target` operation.
 */
export class CountingProxy {
  /** Requests forwarded: `METHOD path` or the `x-amz-target` operation. */
  public readonly requests: string[] = [];
  private readonly http = new LocalHttpServer((req, res) => this.forward(req, res));

  constructor(private readonly target: string) {}

  async start(): Promise<string> {
    return this.http.start();
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const target = req.headers['x-amz-target'];
    this.requests.push(typeof target === 'string' ? target.split('.').pop()! : `${req.method} ${(req.url ?? '').split('?')[0]}`);
    const url = new URL(req.url ?? '/', this.target);
    const upstream = request(url, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  }
}
