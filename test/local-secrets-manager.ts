import { IncomingMessage, ServerResponse } from 'node:http';
import { LocalHttpServer, withBody } from './local-http';

/**
 * A local Secrets Manager (awsJson1_1) for the real SDK client: GetSecretValue and PutSecretValue on the secrets it
 * holds; a signed request for anything else, or an unknown secret, is ResourceNotFoundException.
 */
export class LocalSecretsManager {
  public readonly secrets = new Map<string, string>();
  public readonly requests: Array<{ target: string; secretId?: string }> = [];
  private readonly server = new LocalHttpServer(withBody((req, res, raw) => this.handle(req, res, raw)));

  start(): Promise<string> {
    return this.server.start();
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private handle(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
    const target = String(req.headers['x-amz-target'] ?? '');
    let body: { SecretId?: string; SecretString?: string } = {};
    try {
      body = JSON.parse(raw.toString('utf8') || '{}');
    } catch {
      // answered below as not found
    }
    this.requests.push({ target, secretId: body.SecretId });
    const headers = { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': `sm-${this.requests.length}` };
    const id = body.SecretId;
    const known = id !== undefined && this.secrets.has(id);
    const signed = String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256');
    const name = String(id).split(':').pop();
    if (signed && known && target === 'secretsmanager.GetSecretValue') {
      res.writeHead(200, headers);
      res.end(JSON.stringify({
        ARN: id, Name: name, SecretString: this.secrets.get(id!), VersionId: 'v1', VersionStages: ['AWSCURRENT'], CreatedDate: 1700000000,
      }));
    } else if (signed && known && target === 'secretsmanager.PutSecretValue' && typeof body.SecretString === 'string') {
      this.secrets.set(id!, body.SecretString);
      res.writeHead(200, headers);
      res.end(JSON.stringify({ ARN: id, Name: name, VersionId: `v${this.requests.length}`, VersionStages: ['AWSCURRENT'] }));
    } else {
      res.writeHead(400, headers);
      res.end(JSON.stringify({ __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." }));
    }
  }
}
