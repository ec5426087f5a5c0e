import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo, Socket } from 'node:net';

/** An HTTP server on a free port of 127.0.0.1 for the local AWS services of the tests; `close()` drops open connections. */
export class LocalHttpServer {
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  /**
   * `keepAliveTimeoutMs`: how long an idle connection stays open (default 60 s: Node's own 5 s races with SDK clients that
   * reuse a connection just as the server closes it, a `socket hang up` on a loaded machine).
   */
  constructor(
    private readonly handle: (req: IncomingMessage, res: ServerResponse) => void,
    private readonly options: { keepAliveTimeoutMs?: number } = {},
  ) {}

  /** Starts listening; returns the endpoint (`http://127.0.0.1:<port>`). */
  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = this.options.keepAliveTimeoutMs ?? 60_000;
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

/** A port on 127.0.0.1 that was just free (nothing listens on it). */
export async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => probe.close((err) => (err ? reject(err) : resolve())));
  return port;
}

/** A request handler called once the request's whole body has arrived, with it. */
export function withBody(
  handle: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks)));
  };
}
