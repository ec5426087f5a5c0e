import { IncomingMessage, ServerResponse } from 'node:http';
import { LocalHttpServer, withBody } from '../local-http';

/**
 * A local Timestream for InfluxDB control plane for the health handler test: speaks awsJson1_0 (`X-Amz-Target:
 * AmazonTimestreamInfluxDB.GetDbInstance`, body `{ identifier }`) well enough for the real SDK, answering with the
 * service's DbInstance shape for the instances it knows, ResourceNotFoundException (404) for any other id, and
 * AccessDeniedException (403) when asked to.
 */
export class LocalTimestreamInfluxDb {
  /** Instance id → its status (`AVAILABLE`, `CREATING`, `MODIFYING`...). */
  public readonly instances = new Map<string, string>();
  /** Answer the next requests with this error type instead (until cleared). */
  public failWith?: { status: number; type: string };
  /** Operation and body of each request (unsigned ones are refused). */
  public readonly requests: Array<{ target: string; body: unknown }> = [];
  private readonly http = new LocalHttpServer(withBody((req, res, raw) => this.handle(req, res, raw)));

  start(): Promise<string> {
    return this.http.start();
  }

  close(): Promise<void> {
    return this.http.close();
  }

  reset(): void {
    this.failWith = undefined;
    this.requests.length = 0;
  }

  private handle(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
    const target = String(req.headers['x-amz-target'] ?? '');
    const body = JSON.parse(raw.toString('utf8') || '{}') as { identifier?: string };
    this.requests.push({ target, body });
    const send = (status: number, payload: unknown) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': `tsi-${this.requests.length}` });
      res.end(JSON.stringify(payload));
    };
    const error = (status: number, type: string, message: string) => send(status, { __type: `com.amazonaws.timestreaminfluxdb#${type}`, message });
    if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256')) return error(403, 'AccessDeniedException', 'request not signed');
    if (this.failWith) return error(this.failWith.status, this.failWith.type, 'injected failure');
    if (target !== 'AmazonTimestreamInfluxDB.GetDbInstance') return error(400, 'UnknownOperationException', target);
    const status = body.identifier ? this.instances.get(body.identifier) : undefined;
    if (!status) return error(404, 'ResourceNotFoundException', `The DB instance ${body.identifier} does not exist`);
    const id = body.identifier!;
    return send(200, {
      id,
      name: `ons-influx-${id.toLowerCase()}`,
      arn: `arn:aws:timestream-influxdb:us-east-1:123456789012:db-instance/${id}`,
      status,
      endpoint: `${id}-abcdefghij.us-east-1.timestream-influxdb.amazonaws.com`,
      port: 8086,
      networkType: 'IPV4',
      dbInstanceType: 'db.influx.medium',
      dbStorageType: 'InfluxIOIncludedT1',
      allocatedStorage: 20,
      deploymentType: 'SINGLE_AZ',
      vpcSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0fedcba9876543210'],
      publiclyAccessible: false,
      vpcSecurityGroupIds: ['sg-0123456789abcdef0'],
      availabilityZone: 'us-east-1a',
      influxAuthParametersSecretArn: `arn:aws:secretsmanager:us-east-1:123456789012:secret:READONLY-InfluxDB-auth-parameters-${id}-AbCdEf`,
    });
  }
}
