import { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, Http2Server, Http2Session, IncomingHttpHeaders } from 'node:http2';
import { AddressInfo } from 'node:net';
import { ListObjectsCommand, S3Client } from '@aws-sdk/client-s3';
import { LocalHttpServer } from '../local-http';

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

/**
 * A local bedrock-agent endpoint (REST-JSON over HTTP/1.1) for ingestion jobs, following the documentation:
 * - `StartIngestionJob` (`PUT /knowledgebases/{kb}/datasources/{ds}/ingestionjobs/`, 202) answers 409
 *   `ConflictException` while another job of the same data source or knowledge base is not ended, and when five
 *   jobs of the account run (service quotas: one per data source, one per knowledge base, five per account).
 * - `GetIngestionJob` (`GET .../ingestionjobs/{id}`) gives the job with its status (STARTING, IN_PROGRESS, then
 *   COMPLETE or FAILED), statistics and failureReasons; unknown ids: 404 `ResourceNotFoundException`.
 * - Jobs take simulated time on the fake's own clock (`advance`): 5 s starting, then 60 s plus 2 s per added or changed
 *   document. The documents are the data source's prefix in S3 as listed at the start (incremental: a document counts
 *   as new or modified against what the last COMPLETE job of the data source indexed).
 */
export interface LocalDataSource {
  readonly knowledgeBaseId: string;
  readonly bucket: string;
  readonly prefix: string;
}

interface LocalJob {
  readonly knowledgeBaseId: string;
  readonly dataSourceId: string;
  readonly ingestionJobId: string;
  readonly description?: string;
  readonly startedAt: number;
  readonly endsAt: number;
  readonly failure?: string;
  readonly documents: Map<string, string>;
  readonly statistics: Record<string, number>;
  settled?: boolean;
}

export class LocalBedrockAgent {
  private readonly server = new LocalHttpServer((req, res) => void this.handle(req, res));
  private readonly jobs = new Map<string, LocalJob>();
  private readonly indexed = new Map<string, Map<string, string>>();
  private readonly failures: string[] = [];
  /** Simulated time, ms. */
  clock = Date.UTC(2026, 0, 1);
  /** ConflictExceptions answered. */
  conflicts = 0;

  constructor(private readonly s3: S3Client, private readonly dataSources: Record<string, LocalDataSource>) {}

  start(): Promise<string> {
    return this.server.start();
  }

  close(): Promise<void> {
    return this.server.close();
  }

  advance(seconds: number): void {
    this.clock += seconds * 1000;
  }

  /** The next `count` jobs end FAILED with `reason`. */
  failNext(count: number, reason: string): void {
    for (let i = 0; i < count; i++) this.failures.push(reason);
  }

  /** Every job so far, in start order: [start, end) in simulated ms. */
  get history(): Array<{ id: string; dataSourceId: string; start: number; end: number; status: string; statistics: Record<string, number> }> {
    return [...this.jobs.values()].map((j) => ({
      id: j.ingestionJobId, dataSourceId: j.dataSourceId, start: j.startedAt, end: j.endsAt, status: this.status(j), statistics: j.statistics,
    }));
  }

  private status(job: LocalJob): string {
    if (this.clock < job.startedAt + 5000) return 'STARTING';
    if (this.clock < job.endsAt) return 'IN_PROGRESS';
    if (!job.settled) {
      job.settled = true;
      if (!job.failure) this.indexed.set(job.dataSourceId, job.documents);
    }
    return job.failure ? 'FAILED' : 'COMPLETE';
  }

  private view(job: LocalJob): Record<string, unknown> {
    const status = this.status(job);
    return {
      knowledgeBaseId: job.knowledgeBaseId,
      dataSourceId: job.dataSourceId,
      ingestionJobId: job.ingestionJobId,
      ...(job.description ? { description: job.description } : {}),
      status,
      statistics: status === 'COMPLETE' || status === 'FAILED' ? job.statistics : { numberOfDocumentsScanned: 0 },
      ...(status === 'FAILED' ? { failureReasons: [job.failure] } : {}),
      startedAt: new Date(job.startedAt).toISOString(),
      updatedAt: new Date(Math.min(this.clock, job.endsAt)).toISOString(),
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
    const reply = (status: number, payload: unknown, error?: string) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': 'local', ...(error ? { 'x-amzn-errortype': error } : {}) });
      res.end(JSON.stringify(payload));
    };
    const match = /^\/knowledgebases\/([^/]+)\/datasources\/([^/]+)\/ingestionjobs\/([^/?]*)/.exec(req.url ?? '');
    if (!match) return reply(404, { message: 'unknown operation' }, 'UnknownOperationException');
    const [, knowledgeBaseId, dataSourceId, jobId] = match.map(decodeURIComponent);
    const source = this.dataSources[dataSourceId];
    if (!source || source.knowledgeBaseId !== knowledgeBaseId) return reply(404, { message: 'no such data source' }, 'ResourceNotFoundException');
    if (req.method === 'GET' && jobId) {
      const job = this.jobs.get(jobId);
      if (!job || job.dataSourceId !== dataSourceId) return reply(404, { message: `no ingestion job ${jobId}` }, 'ResourceNotFoundException');
      return reply(200, { ingestionJob: this.view(job) });
    }
    if (req.method !== 'PUT' || jobId) return reply(404, { message: 'unknown operation' }, 'UnknownOperationException');
    const running = [...this.jobs.values()].filter((j) => !['COMPLETE', 'FAILED'].includes(this.status(j)));
    if (running.some((j) => j.dataSourceId === dataSourceId || j.knowledgeBaseId === knowledgeBaseId) || running.length >= 5) {
      this.conflicts++;
      return reply(409, { message: 'An ingestion job is already running for this data source or knowledge base' }, 'ConflictException');
    }
    const documents = await this.list(source);
    const before = this.indexed.get(dataSourceId) ?? new Map<string, string>();
    const docs = [...documents.keys()].filter((k) => !k.endsWith('.metadata.json'));
    const changed = (k: string) => before.has(k) && before.get(k) !== documents.get(k);
    const failure = this.failures.shift();
    const added = docs.filter((k) => !before.has(k)).length;
    const modified = docs.filter(changed).length;
    const statistics = {
      numberOfDocumentsScanned: docs.length,
      numberOfMetadataDocumentsScanned: documents.size - docs.length,
      numberOfNewDocumentsIndexed: failure ? 0 : added,
      numberOfModifiedDocumentsIndexed: failure ? 0 : modified,
      numberOfMetadataDocumentsModified: 0,
      numberOfDocumentsDeleted: [...before.keys()].filter((k) => !documents.has(k) && !k.endsWith('.metadata.json')).length,
      numberOfDocumentsFailed: failure ? added + modified : 0,
    };
    const id = `J${String(this.jobs.size + 1).padStart(9, '0')}`;
    const job: LocalJob = {
      knowledgeBaseId,
      dataSourceId,
      ingestionJobId: id,
      description: body.description,
      startedAt: this.clock,
      endsAt: this.clock + 65_000 + 2000 * (added + modified),
      failure,
      documents,
      statistics,
    };
    this.jobs.set(id, job);
    return reply(202, { ingestionJob: this.view(job) });
  }

  private async list(source: LocalDataSource): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    let Marker: string | undefined;
    for (;;) {
      const page = await this.s3.send(new ListObjectsCommand({ Bucket: source.bucket, Prefix: source.prefix, Marker }));
      for (const o of page.Contents ?? []) found.set(o.Key!, o.ETag ?? '');
      if (!page.IsTruncated || !page.Contents?.length) return found;
      Marker = page.Contents[page.Contents.length - 1].Key;
    }
  }
}
